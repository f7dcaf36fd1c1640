//! `coffer run`: secrets in a program's environment, and the program's
//! exit status, signals and stdio exactly as if it ran on its own.

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::TestEnv;

fn store() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys", "database"]);
    env.put("api-keys", "stripe-secret-key", "sk_test_SENTINEL");
    env.put("api-keys", "sendgrid-api-key", "SG.SENTINEL");
    env.put("database", "read-replica-password", "pw-SENTINEL");
    env
}

/// Replaces a secret's file with another one's: it no longer verifies.
fn tamper(env: &TestEnv, vault: &str, name: &str, with: &str) {
    let dir = env.store().join(vault);
    fs::copy(
        dir.join(format!("{with}.age")),
        dir.join(format!("{name}.age")),
    )
    .unwrap();
}

#[test]
fn run_passes_a_secret_as_its_upper_case_variable() {
    let env = store();
    let r = env
        .run(&[
            "run",
            "-V",
            "api-keys",
            "--",
            "printenv",
            "STRIPE_SECRET_KEY",
        ])
        .ok();
    assert_eq!(r.stdout(), "sk_test_SENTINEL\n");
    assert!(!r.stderr().contains("SENTINEL"));
}

/// The check from the issue, on the sample store of a fresh clone.
#[test]
fn run_reads_the_sample_store() {
    let env = TestEnv::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let key = fs::read_to_string(repo.join("demo/demo-identity.txt")).unwrap();
    let r = env
        .run_with(
            &[
                "run",
                "-V",
                "api-keys",
                "--",
                "printenv",
                "STRIPE_SECRET_KEY",
            ],
            |c| {
                c.current_dir(repo).env("COFFER_AGE_KEY", &key);
            },
        )
        .ok();
    assert_eq!(r.stdout(), "sk_test_DEMO_0000000000000000000000000\n");
}

#[test]
fn run_without_vault_flags_passes_every_vault() {
    let env = store();
    let r = env
        .run(&[
            "run",
            "--",
            "sh",
            "-c",
            "echo $STRIPE_SECRET_KEY $SENDGRID_API_KEY $READ_REPLICA_PASSWORD",
        ])
        .ok();
    assert_eq!(r.stdout(), "sk_test_SENTINEL SG.SENTINEL pw-SENTINEL\n");
    let r = env
        .run(&[
            "run",
            "-V",
            "database",
            "--",
            "printenv",
            "STRIPE_SECRET_KEY",
        ])
        .output;
    assert_eq!(r.status.code(), Some(1), "only the vaults asked for");
}

#[test]
fn run_passes_stdio_and_the_exit_status_through() {
    let env = store();
    let r = env.run_stdin(
        &[
            "run",
            "-V",
            "api-keys",
            "--",
            "sh",
            "-c",
            "read line; echo \"got $line\"; echo oops >&2; exit 7",
        ],
        b"hello\n",
    );
    assert_eq!(r.code(), 7);
    assert_eq!(r.stdout(), "got hello\n");
    assert_eq!(r.stderr(), "oops\n");
}

#[test]
fn run_dies_of_the_signal_that_killed_the_program() {
    let env = store();
    let r = env.run(&["run", "-V", "api-keys", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(r.output.status.signal(), Some(15));
}

#[test]
fn signals_sent_to_coffer_reach_the_program() {
    let env = store();
    let mut child = env
        .cmd()
        .args([
            "run",
            "-V",
            "api-keys",
            "--",
            "sh",
            "-c",
            "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    let pid = rustix::process::Pid::from_child(&child);
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "still running");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(42));
}

#[test]
fn the_program_starts_with_no_signals_ignored() {
    // Rust ignores SIGPIPE in its own processes; the program must not
    // inherit that, or `coffer run -- producer | head` would misbehave.
    let env = store();
    let r = env
        .run(&[
            "run",
            "-V",
            "api-keys",
            "--",
            "grep",
            "SigIgn",
            "/proc/self/status",
        ])
        .ok();
    let mask = r
        .stdout()
        .trim()
        .trim_start_matches("SigIgn:")
        .trim()
        .to_owned();
    let mask = u64::from_str_radix(&mask, 16).unwrap();
    let sigpipe = 1 << (13 - 1);
    assert_eq!(mask & sigpipe, 0, "SIGPIPE is ignored: {mask:#x}");
}

#[test]
fn run_hides_coffer_keys_from_the_program() {
    let env = store();
    let identity = fs::read_to_string(env.default_identity()).unwrap();
    let r = env
        .run_with(&["run", "-V", "api-keys", "--", "env"], |c| {
            c.env("COFFER_AGE_KEY", &identity)
                .env("COFFER_IDENTITY", env.default_identity())
                .env("KEEP_ME", "kept");
        })
        .ok();
    let out = r.stdout();
    assert!(!out.contains("COFFER_AGE_KEY") && !out.contains("COFFER_IDENTITY"));
    assert!(!out.contains("AGE-SECRET-KEY"));
    assert!(out.contains("KEEP_ME=kept\n") && out.contains("STRIPE_SECRET_KEY=sk_test_SENTINEL\n"));
}

#[test]
fn secrets_never_reach_the_program_command_line() {
    let env = store();
    let r = env
        .run(&[
            "run",
            "-V",
            "api-keys",
            "--",
            "sh",
            "-c",
            "tr '\\0' ' ' < /proc/$$/cmdline",
        ])
        .ok();
    assert!(!r.stdout().contains("SENTINEL"), "{}", r.stdout());
}

#[test]
fn run_keeps_variables_already_set_unless_told_to_override() {
    let env = store();
    let r = env
        .run_with(
            &[
                "run",
                "-V",
                "api-keys",
                "--",
                "printenv",
                "STRIPE_SECRET_KEY",
            ],
            |c| {
                c.env("STRIPE_SECRET_KEY", "from-the-shell");
            },
        )
        .ok()
        .stderr_has("STRIPE_SECRET_KEY is already set; keeping it");
    assert_eq!(r.stdout(), "from-the-shell\n");
    let r = env
        .run_with(
            &[
                "run",
                "-V",
                "api-keys",
                "--override",
                "--",
                "printenv",
                "STRIPE_SECRET_KEY",
            ],
            |c| {
                c.env("STRIPE_SECRET_KEY", "from-the-shell");
            },
        )
        .ok();
    assert_eq!(r.stdout(), "sk_test_SENTINEL\n");
}

#[test]
fn run_needs_no_key_when_every_variable_is_already_set() {
    let env = store();
    fs::remove_file(env.default_identity()).unwrap();
    let r = env
        .run_with(
            &[
                "run",
                "-V",
                "api-keys",
                "--only",
                "stripe-secret-key",
                "--",
                "printenv",
                "STRIPE_SECRET_KEY",
            ],
            |c| {
                c.env("STRIPE_SECRET_KEY", "set");
            },
        )
        .ok();
    assert_eq!(r.stdout(), "set\n");
}

#[test]
fn run_prefixes_variable_names() {
    let env = store();
    let r = env
        .run(&[
            "run",
            "-V",
            "api-keys",
            "--prefix",
            "APP_",
            "--",
            "printenv",
            "APP_STRIPE_SECRET_KEY",
        ])
        .ok();
    assert_eq!(r.stdout(), "sk_test_SENTINEL\n");
    env.run(&["run", "--prefix", "1X", "--", "true"])
        .fails("--prefix \"1X\" cannot start an environment variable name")
        .transcript("run/prefix-1x-cannot-start-an-environment");
}

#[test]
fn run_refuses_two_secrets_that_would_set_one_variable() {
    let env = store();
    env.run(&["vault", "create", "other"]).ok();
    env.put("other", "stripe-secret-key", "other-SENTINEL");
    let r = env
        .run(&["run", "--", "printenv"])
        .fails("secrets api-keys/stripe-secret-key and other/stripe-secret-key would both set STRIPE_SECRET_KEY")
.transcript("run/secrets-api-keys-stripe-secret-key-and");
    assert!(r.stdout().is_empty());
    env.run(&["run", "-V", "other", "--", "printenv", "STRIPE_SECRET_KEY"])
        .ok();
}

#[test]
fn run_only_decrypts_the_secrets_it_passes() {
    let env = store();
    tamper(&env, "api-keys", "sendgrid-api-key", "stripe-secret-key");
    let r = env
        .run(&["run", "-V", "api-keys", "--", "true"])
        .fails("secret \"sendgrid-api-key\" in vault \"api-keys\" failed verification")
        .transcript("run/secret-sendgrid-api-key-in-vault-api");
    assert!(!r.stderr().contains("SENTINEL"));
    let r = env
        .run(&[
            "run",
            "-V",
            "api-keys",
            "--only",
            "stripe-secret-key",
            "--",
            "env",
        ])
        .ok();
    assert!(r.stdout().contains("STRIPE_SECRET_KEY=sk_test_SENTINEL\n"));
    assert!(!r.stdout().contains("SENDGRID"));
}

#[test]
fn run_reports_a_missing_vault_secret_or_program() {
    let env = store();
    env.run(&["run", "-V", "nope", "--", "true"])
        .fails("vault \"nope\" not found")
        .transcript("run/vault-nope-not-found");
    env.run(&["run", "-V", "api-keys", "--only", "nope", "--", "true"])
        .fails("secret \"nope\" not found in vault \"api-keys\"")
        .transcript("run/secret-nope-not-found-in-vault-api-keys");
    env.run(&["run", "--only", "nope", "--", "true"])
        .fails("secret \"nope\" (--only) is in none of the vaults api-keys, database")
        .transcript("run/secret-nope-only-is-in-none-of-the");
    let r = env.run(&["run", "-V", "api-keys", "--", "no-such-program-here"]);
    assert_eq!(r.code(), 127);
    assert!(
        r.stderr()
            .contains("could not run \"no-such-program-here\": command not found")
    );
    let r = env.run(&["run", "-V", "api-keys", "--", "/"]);
    assert_eq!(r.code(), 126);
    assert_eq!(env.run(&["run", "-V", "api-keys"]).code(), 2);
}

#[test]
fn run_refuses_a_value_an_environment_cannot_hold() {
    let env = store();
    env.run_stdin(
        &["create", "-V", "api-keys", "-n", "with-nul"],
        b"a\0SENTINEL",
    )
    .ok();
    let r = env
        .run(&["run", "-V", "api-keys", "--", "true"])
        .fails("secret \"with-nul\" in vault \"api-keys\" contains a NUL byte")
        .transcript("run/secret-with-nul-in-vault-api-keys");
    assert!(!r.stderr().contains("SENTINEL"));
}

#[test]
fn arguments_after_the_command_are_the_program_s_own() {
    let env = store();
    let r = env
        .run(&[
            "run", "-V", "api-keys", "--", "echo", "-q", "--store", "x", "-V",
        ])
        .ok();
    assert_eq!(r.stdout(), "-q --store x -V\n");
}

#[test]
fn run_in_a_store_without_vaults_says_there_is_nothing_to_pass() {
    let env = TestEnv::new();
    env.init(&[]);
    env.run(&["run", "--", "true"])
        .fails("the store holds no vaults, so there is nothing to pass")
        .stderr_has("coffer vault create")
        .transcript("run/the-store-holds-no-vaults-so-there-is");
}

#[test]
fn the_program_holds_no_lock_on_the_store_so_it_can_write_to_it() {
    let env = store();
    // The program is coffer itself, updating a secret: it would wait for
    // the store's lock (and give up after a second) if `run` passed its
    // own lock on to the program.
    let r = env
        .run_with(
            &[
                "run",
                "-V",
                "api-keys",
                "--",
                "sh",
                "-c",
                "printf new-value | \"$0\" update -V api-keys -n sendgrid-api-key",
                env!("CARGO_BIN_EXE_coffer"),
            ],
            |c| {
                c.env("COFFER_LOCK_TIMEOUT", "1");
            },
        )
        .ok();
    assert!(!r.stderr().contains("lock"), "{}", r.stderr());
    let v = env
        .run(&["get", "-V", "api-keys", "-n", "sendgrid-api-key"])
        .ok();
    assert_eq!(v.stdout(), "new-value");
}

/// Values are handed over in the plan's order: with vaults given out of
/// their sorted order, a variable already set, and --only, each variable
/// still holds its own secret's value.
#[test]
fn run_never_sets_a_secret_in_another_secrets_variable() {
    let env = TestEnv::new();
    env.init(&["zeta", "alpha"]);
    for (vault, name) in [
        ("zeta", "b-two"),
        ("zeta", "a-one"),
        ("zeta", "c-three"),
        ("alpha", "y-last"),
        ("alpha", "d-first"),
    ] {
        env.put(vault, name, &format!("{vault}/{name}"));
    }
    let show =
        "printf '%s|%s|%s|%s|%s' \"$A_ONE\" \"$B_TWO\" \"$C_THREE\" \"$D_FIRST\" \"$Y_LAST\"";
    let r = env
        .run(&["run", "-V", "zeta", "-V", "alpha", "--", "sh", "-c", show])
        .ok();
    assert_eq!(
        r.stdout(),
        "zeta/a-one|zeta/b-two|zeta/c-three|alpha/d-first|alpha/y-last"
    );
    let r = env
        .run_with(
            &[
                "run", "-V", "alpha", "-V", "zeta", "--only", "y-last", "--only", "b-two",
                "--only", "c-three", "--", "sh", "-c", show,
            ],
            |c| {
                c.env("C_THREE", "kept");
            },
        )
        .ok();
    assert_eq!(r.stdout(), "|zeta/b-two|kept||alpha/y-last");
}
