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
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use coffer::{Identities, SecretName, SecretValue, Store, Time, VaultName};
use coffer_standin::{Config, StandIn};

const WS: &str = "4f6d2c1e-8a3b-4c5d-9e7f-0123456789ab";
const PAGE_SIZE: usize = 100;

/// The next sync is the re-sync (see `SYNC_BENCH_WRAP`).
static RESYNC: AtomicBool = AtomicBool::new(false);

fn coffer(bin: &Path, dir: &Path, url: &str, args: &[&str]) -> std::process::Output {
    // `SYNC_BENCH_WRAP="perf record -g -o FILE --"` runs the re-sync
    // under a profiler.
    let wrap = std::env::var("SYNC_BENCH_WRAP")
        .ok()
        .filter(|_| args == ["sync", "--quiet"] && RESYNC.load(Ordering::Relaxed));
    let mut cmd = match &wrap {
        Some(w) => {
            let mut words = w.split_whitespace();
            let mut c = Command::new(words.next().expect("a command"));
            c.args(words).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    let out = cmd
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
    // Wall time includes the stand-in, which runs in this process; the
    // CPU time is coffer's own (its user and system time).
    // The re-sync's reads sent again by the most basic client: with `list`,
    // the floor of a re-sync with nothing changed.
    let mut replay = std::time::Duration::ZERO;
    for label in ["first sync", "re-sync, nothing changed"] {
        s.clear_calls();
        RESYNC.store(label.starts_with("re-sync"), Ordering::Relaxed);
        let cpu = children_cpu();
        let start = Instant::now();
        coffer(&bin, dir, &url, &["sync", "--quiet"]);
        let elapsed = start.elapsed();
        let cpu = children_cpu() - cpu;
        let calls = s.calls();
        let writes = calls.iter().filter(|c| c.is_write()).count();
        if writes == 0 {
            replay = s.replay(&calls);
        }
        println!(
            "  {label:<26} {:>5} requests ({writes:>4} writes)  {:>7.3} s, coffer's CPU {:>6.3} s",
            calls.len(),
            elapsed.as_secs_f64(),
            cpu
        );
    }
    let cpu = children_cpu();
    let start = Instant::now();
    coffer(&bin, dir, &url, &["list", "-V", "bench"]);
    println!(
        "  {:<26} {:>5} requests ({:>4} writes)  {:>7.3} s, coffer's CPU {:>6.3} s",
        "list (for comparison)",
        0,
        0,
        start.elapsed().as_secs_f64(),
        children_cpu() - cpu
    );
    println!(
        "  {:<26} {:>29} {:>7.3} s (a bare client, the same requests)",
        "the re-sync's reads alone",
        "",
        replay.as_secs_f64()
    );
    assert_eq!(s.secrets(WS, "bench").len(), n);
}

/// The user and system time of every child waited for so far, in seconds.
fn children_cpu() -> f64 {
    // SAFETY: rusage is plain data, filled in by the kernel.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pointer to a rusage.
    let r = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut u) };
    assert_eq!(r, 0, "getrusage");
    let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}
