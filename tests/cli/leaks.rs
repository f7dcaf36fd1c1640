//! No leak, anywhere: every command runs against a store whose values hold
//! a random sentinel, and the sentinel may appear only on the stdout of the
//! commands whose job is to print values. Never on stderr, never in a file
//! under the store or in a temp directory as plaintext, never on a command
//! line that coffer builds (traced with strace when available).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::common::{PATH, TestEnv, have_tool};
use coffer_standin::{Config, StandIn};

const WS: &str = "4f6d2c1e-8a3b-4c5d-9e7f-0123456789ab";

/// What a command may do with a value.
#[derive(Clone, Copy, PartialEq)]
enum May {
    /// Print values on stdout (`get`, `export`, `run`'s program, `resolve`,
    /// `diff --show-values`).
    PrintValues,
    /// Never show a value anywhere.
    Nothing,
}

struct Case {
    args: Vec<String>,
    stdin: Vec<u8>,
    may: May,
    /// The exit status the case is set up to end with.
    code: i32,
}

/// A case that succeeds (see [`Case::exits`] for one that must not).
fn case(args: &[&str], stdin: &str, may: May) -> Case {
    Case {
        args: args.iter().map(|s| s.to_string()).collect(),
        stdin: stdin.as_bytes().to_vec(),
        may,
        code: 0,
    }
}

impl Case {
    /// The case ends with `code` on purpose (an error path, or `run`'s
    /// program's own status).
    fn exits(mut self, code: i32) -> Case {
        self.code = code;
        self
    }
}

/// Returns every file under `dir` (following no links) whose bytes hold
/// `needle`, skipping `allowed`.
fn files_holding(dir: &Path, needle: &[u8], allowed: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if p.file_name().is_some_and(|n| n == ".git") {
                // git's object store holds only what coffer wrote: ciphertext.
                continue;
            }
            out.extend(files_holding(&p, needle, allowed));
        } else if ft.is_file() && !allowed.contains(&p) {
            let bytes = fs::read(&p).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn a_sentinel_value_appears_only_where_values_belong() {
    let sentinel = format!(
        "SENTINEL{:016x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
    );
    let env = TestEnv::new();
    let tmp = env.dir.path().join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    env.init(&["api-keys", "database"]);
    let git_ok = have_tool("git");
    let strace_ok = have_tool("strace");
    if git_ok {
        for args in [
            &["init", "-q"][..],
            &["add", "."],
            &["commit", "-qm", "store"],
        ] {
            assert!(crate::common::tool(&env, "git", args).status.success());
        }
    }
    for (v, n) in [
        ("api-keys", "stripe-key"),
        ("api-keys", "external-api-token"),
        ("database", "db-password"),
    ] {
        env.put(v, n, &format!("{sentinel}-{n}"));
    }
    let (bob, bob_key) = {
        let p = env.dir.path().join("bob.txt");
        let k = env.identity_file(&p, 0o600);
        (p, k)
    };
    let s = StandIn::start(Config::default());
    fs::write(
        env.work.join("headers.json"),
        r#"{"Authorization": {"vault": "api-keys", "key": "external-api-token"}}"#,
    )
    .unwrap();
    fs::write(
        env.work.join("app.ts"),
        "const h = { vault: \"api-keys\", key: \"external-api-token\" };\n",
    )
    .unwrap();
    fs::write(
        env.work.join("leaked.txt"),
        format!("oops {sentinel}-stripe-key\n"),
    )
    .unwrap();
    let import = env.dir.path().join("import.env");
    fs::write(
        &import,
        format!("STRIPE_KEY=\"{sentinel}-imported\"\nNEW_ONE='{sentinel}-new'\n"),
    )
    .unwrap();
    let bad_import = env.dir.path().join("bad.env");
    fs::write(
        &bad_import,
        format!("lower_case={sentinel}-bad\nA=\"{sentinel}-unclosed\n"),
    )
    .unwrap();
    let exported = env.dir.path().join("exported.env");
    let (b, i, bi, ex) = (
        bob.to_str().unwrap(),
        import.to_str().unwrap(),
        bad_import.to_str().unwrap(),
        exported.to_str().unwrap(),
    );
    let new_value = format!("{sentinel}-updated\n");

    use May::*;
    let mut cases = vec![
        case(&["--help"], "", Nothing),
        case(&["list", "-V", "api-keys"], "", Nothing),
        case(&["list", "-V", "api-keys", "--json"], "", Nothing),
        case(&["vault", "list", "--json"], "", Nothing),
        case(
            &["get", "-V", "api-keys", "-n", "stripe-key"],
            "",
            PrintValues,
        ),
        case(
            &["get", "-V", "api-keys", "-n", "stripe-key", "-i", b],
            "",
            Nothing,
        )
        .exits(1), // bob is no recipient yet
        case(
            &["update", "-V", "api-keys", "-n", "stripe-key"],
            &new_value,
            Nothing,
        ),
        case(
            &["update", "-V", "api-keys", "-n", "stripe-key"],
            &new_value,
            Nothing,
        ),
        case(
            &["create", "-V", "api-keys", "-n", "stripe-key"],
            &new_value,
            Nothing,
        )
        .exits(1), // it exists
        Case {
            args: ["create", "-V", "api-keys", "-n", "other-key"]
                .map(String::from)
                .to_vec(),
            stdin: [sentinel.as_bytes(), b"\xff\xfe"].concat(),
            may: Nothing,
            code: 1, // not UTF-8
        },
        case(
            &[
                "create",
                "-V",
                "api-keys",
                "-n",
                "contributed",
                "--contribute",
            ],
            &format!("{sentinel}-c"),
            Nothing,
        ),
        case(&["export", "-V", "api-keys"], "", Nothing).exits(1), // refuses: a contribution
        case(&["verify", "--accept", "--yes"], "", Nothing),
        case(&["export", "-V", "api-keys"], "", PrintValues),
        case(
            &["export", "-V", "api-keys", "--format", "json"],
            "",
            PrintValues,
        ),
        case(&["export", "-V", "api-keys", "-o", ex], "", Nothing),
        case(&["import", "-V", "api-keys", i, "--dry-run"], "", Nothing),
        case(&["import", "-V", "api-keys", i], "", Nothing),
        case(&["import", "-V", "api-keys", bi], "", Nothing).exits(1),
        case(
            &["run", "-V", "api-keys", "--", "printenv", "STRIPE_KEY"],
            "",
            PrintValues,
        ),
        case(
            &["run", "-V", "api-keys", "--", "sh", "-c", "exit 3"],
            "",
            Nothing,
        )
        .exits(3),
        case(&["resolve", "headers.json"], "", PrintValues),
        case(&["refs", "check", "."], "", Nothing),
        case(&["refs", "check", ".", "--json"], "", Nothing),
        case(&["verify"], "", Nothing),
        case(&["verify", "--json"], "", Nothing),
        case(&["recipients", "add", "bob", &bob_key], "", Nothing),
        case(
            &["get", "-V", "api-keys", "-n", "stripe-key", "-i", b],
            "",
            PrintValues,
        ),
        case(&["recipients", "list", "--json"], "", Nothing),
        case(&["recipients", "remove", "bob", "--yes"], "", Nothing),
        case(&["rotation", "--json"], "", Nothing),
        case(&["rekey"], "", Nothing),
        case(&["rekey", "--new-key"], "", Nothing),
        case(&["sync", "--dry-run"], "", Nothing),
        case(&["sync"], "", Nothing),
        case(&["sync", "--json"], "", Nothing),
        case(
            &["delete", "-V", "api-keys", "-n", "new-one", "--yes"],
            "",
            Nothing,
        ),
        case(&["completions", "bash"], "", Nothing),
        case(&["man"], "", Nothing),
    ];
    if git_ok {
        cases.extend([
            case(&["diff"], "", Nothing),
            case(&["diff", "--json"], "", Nothing),
            case(&["diff", "--show-values"], "", PrintValues),
            case(&["git", "setup"], "", Nothing),
            case(&["scan", "."], "", Nothing),
            case(&["scan", "--json", "."], "", Nothing),
        ]);
    }
    let needle = sentinel.as_bytes();
    let trace = env.dir.path().join("exec.trace");
    let mut traced_children = 0;
    for (n, c) in cases.iter().enumerate() {
        let mut cmd = if strace_ok {
            let mut s = std::process::Command::new("strace");
            s.args(["-f", "-qq", "-s", "65536", "-e", "trace=execve", "-o"])
                .arg(&trace)
                .arg(env!("CARGO_BIN_EXE_coffer"));
            s
        } else {
            std::process::Command::new(env!("CARGO_BIN_EXE_coffer"))
        };
        cmd.args(&c.args)
            .env_clear()
            .env("HOME", &env.home)
            .env("XDG_CONFIG_HOME", &env.config)
            .env("XDG_STATE_HOME", env.dir.path().join("state"))
            .env("PATH", PATH)
            .env("USER", "alice")
            .env("TMPDIR", &tmp)
            .env("TAILOR_PLATFORM_URL", s.url())
            .env("TAILOR_PLATFORM_TOKEN", "standin-token")
            .env("TAILOR_PLATFORM_WORKSPACE_ID", WS)
            .env("COFFER_SYNC_RETRY_BASE_MS", "1")
            .current_dir(&env.work)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let _ = child.stdin.take().unwrap().write_all(&c.stdin);
        }
        let out = child.wait_with_output().unwrap();
        let what = format!("case {n}: coffer {:?}", c.args);
        // A case that fails where it should succeed (or the reverse) tests
        // another path than it claims to.
        assert_eq!(
            out.status.code(),
            Some(c.code),
            "{what}: exit status\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains(&sentinel),
            "{what}: value on stderr:\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{what}: {stderr}");
        let on_stdout = out.stdout.windows(needle.len()).any(|w| w == needle);
        match c.may {
            Nothing => assert!(!on_stdout, "{what}: value on stdout"),
            // Each of these cases is set up to print a value: if it does not,
            // the case tests nothing.
            PrintValues => assert!(on_stdout, "{what}: printed no value:\n{stderr}"),
        }
        let plain = files_holding(&env.store(), needle, &[]);
        assert!(
            plain.is_empty(),
            "{what}: plaintext in the store: {plain:?}"
        );
        let temps = files_holding(&tmp, needle, &[]);
        assert!(temps.is_empty(), "{what}: plaintext in TMPDIR: {temps:?}");
        let state = files_holding(&env.dir.path().join("state"), needle, &[]);
        assert!(
            state.is_empty(),
            "{what}: plaintext in the sync state: {state:?}"
        );
        let config = files_holding(&env.config, needle, &[]);
        assert!(
            config.is_empty(),
            "{what}: plaintext in the config dir: {config:?}"
        );
        if strace_ok {
            let t = fs::read_to_string(&trace).unwrap_or_default();
            let execs: Vec<&str> = t.lines().filter(|l| l.contains("execve(")).collect();
            assert!(!execs.is_empty(), "{what}: strace saw no exec");
            traced_children += execs.len() - 1;
            for line in execs {
                assert!(
                    !line.contains(&sentinel),
                    "{what}: a value on a command line: {line}"
                );
            }
        }
    }
    if strace_ok {
        // run's program, git, and the shell: command lines coffer built.
        assert!(
            traced_children >= 3,
            "only {traced_children} child commands traced"
        );
    }
    // The value did reach the places it was meant to.
    assert!(fs::read_to_string(&exported).unwrap().contains(&sentinel));
    assert!(
        s.value(WS, "api-keys", "stripe-key")
            .is_some_and(|v| v.contains(&sentinel))
    );
}
