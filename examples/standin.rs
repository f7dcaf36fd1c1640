//! A local stand-in of the Tailor Platform's Secret Manager API, for
//! trying `coffer sync` without an account (see docs/sync.md):
//!
//! ```sh
//! cargo run --example standin -- --port 8080
//! ```
//!
//! It listens on 127.0.0.1 only, keeps everything in memory, accepts the
//! token `standin-token` (and `standin-read-only-token`, which may only
//! read), and returns at most 3 items per list page. `GET /_standin/stats`
//! counts the requests it received. The same code backs the tests
//! (`crates/coffer-standin`).

use coffer_standin::{Config, StandIn};

fn main() {
    let mut config = Config::default();
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match a.as_str() {
            "--port" => {
                port = value("--port")
                    .parse()
                    .unwrap_or_else(|_| usage("bad --port"))
            }
            "--token" => config.token = value("--token"),
            "--page-size" => {
                config.page_size = value("--page-size")
                    .parse()
                    .unwrap_or_else(|_| usage("bad --page-size"))
            }
            "--cascade" => config.cascade_vault_delete = true,
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    let s = StandIn::start_on(config, port);
    eprintln!("stand-in listening: export TAILOR_PLATFORM_URL={}", s.url());
    loop {
        std::thread::park();
    }
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("error: {problem}");
    }
    eprintln!("usage: standin [--port N] [--token T] [--page-size N] [--cascade]");
    std::process::exit(if problem.is_empty() { 0 } else { 2 });
}
