//! Benchmark (not a test): syncs a store of 1,000 secrets to the local
//! stand-in and prints the requests sent and the wall time, for a first
//! sync and for a re-sync with nothing changed. Run `bench/sync.sh`, which
//! builds coffer in release mode and passes its path:
//!
//! ```sh
//! target/release/examples/sync_bench target/release/coffer [SECRETS]
//! ```

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use coffer::{Identities, SecretName, SecretValue, Store, Time, VaultName};
use coffer_standin::{Config, StandIn};

const WS: &str = "4f6d2c1e-8a3b-4c5d-9e7f-0123456789ab";
const PAGE_SIZE: usize = 100;

fn coffer(bin: &Path, dir: &Path, url: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(bin)
        .args(args)
        .env_clear()
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("PATH", "/usr/bin:/bin")
        .env("USER", "bench")
        .env("TAILOR_PLATFORM_URL", url)
        .env("TAILOR_PLATFORM_TOKEN", "standin-token")
        .env("TAILOR_PLATFORM_WORKSPACE_ID", WS)
        .current_dir(dir.join("work"))
        .output()
        .expect("run coffer");
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        panic!("coffer {args:?} failed");
    }
    out
}

fn main() {
    let mut args = std::env::args().skip(1);
    let bin = args
        .next()
        .expect("usage: sync_bench PATH-TO-COFFER [SECRETS]");
    let bin = Path::new(&bin).canonicalize().expect("the coffer binary");
    let n: usize = args.next().map_or(1000, |s| s.parse().expect("a count"));

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for d in ["home", "config", "work"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    let s = StandIn::start(Config {
        page_size: PAGE_SIZE,
        ..Config::default()
    });
    let url = s.url();
    coffer(&bin, dir, &url, &["init"]);
    coffer(&bin, dir, &url, &["vault", "create", "bench", "--yes"]);

    // Fill the vault through the library: one transaction, not n processes.
    let text = std::fs::read(dir.join("config/coffer/identity.txt")).unwrap();
    let ids = Identities::from_text(&text, "bench identity", age::NoCallbacks).unwrap();
    let store = Store::open(&dir.join("work/vaults")).unwrap();
    let name: VaultName = "bench".parse().unwrap();
    let vault = store.vault(&name).unwrap();
    let key = vault.unlock(&ids).unwrap();
    let mut w = vault.write().unwrap();
    for i in 0..n {
        let secret: SecretName = format!("secret-{i:05}").parse().unwrap();
        let value = SecretValue::from_string(format!("value-{i}-{}", "x".repeat(40))).unwrap();
        w.create(&key, &secret, &value, Time::now()).unwrap();
    }
    w.commit().unwrap();

    println!(
        "coffer sync: {n} secrets in 1 vault to the local stand-in (loopback, page size {PAGE_SIZE})"
    );
    for label in ["first sync", "re-sync, nothing changed"] {
        s.clear_calls();
        let start = Instant::now();
        coffer(&bin, dir, &url, &["sync", "--quiet"]);
        let elapsed = start.elapsed();
        let calls = s.calls();
        let writes = calls.iter().filter(|c| c.is_write()).count();
        println!(
            "  {label:<26} {:>5} requests ({writes:>4} writes)  {:>7.3} s",
            calls.len(),
            elapsed.as_secs_f64()
        );
    }
    assert_eq!(s.secrets(WS, "bench").len(), n);
}
