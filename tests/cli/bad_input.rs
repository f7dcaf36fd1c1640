//! The bad-input corpus: every malformed, oversized, planted or hostile
//! input gets a clear error, exit code 1, no panic, and a store left as it
//! was. Static cases live in `tests/bad-input/<kind>/<case>.*` with the
//! whole expected stderr in `<case>.expect` (normalised as transcripts are,
//! see `common::transcript`; `COFFER_BLESS=1` rewrites them); the rest are
//! built here and compared with transcripts under `tests/transcripts/bad_input/`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{PATH, Run, TestEnv, Transcript, transcript};

/// The cases of one kind: name, input file, expected-stderr file. Every
/// input has its `.expect`, and every `.expect` its input.
fn corpus(kind: &str) -> Vec<(String, PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/bad-input")
        .join(kind);
    let mut out = Vec::new();
    let mut expects = Vec::new();
    for e in fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "expect") {
            expects.push(p);
            continue;
        }
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let expect = p.with_extension("expect");
        out.push((name, p, expect));
    }
    out.sort();
    assert!(!out.is_empty());
    for e in expects {
        assert!(
            out.iter().any(|(_, _, x)| *x == e),
            "{} has no input file next to it",
            e.display()
        );
    }
    out
}

/// Asserts a clean refusal: exit 1, stderr starting with `error:` and
/// holding `needle`, no panic, and nothing changed by the command. Returns
/// the run for its transcript.
#[track_caller]
fn refused(env: &TestEnv, case: &str, r: Run, needle: &str, before: &[(PathBuf, Vec<u8>)]) -> Run {
    let err = r.stderr();
    assert_eq!(r.code(), 1, "{case}: exit {}:\n{err}", r.code());
    assert!(err.starts_with("error: "), "{case}: {err}");
    assert!(!err.contains("panicked"), "{case}: {err}");
    assert!(err.contains(needle), "{case}: want {needle:?} in:\n{err}");
    assert_eq!(env.snapshot(), before, "{case}: the store changed");
    r
}

/// Asserts a clean refusal whose whole stderr is the corpus file `expect`.
#[track_caller]
fn refused_as(env: &TestEnv, case: &str, r: Run, expect: &Path, before: &[(PathBuf, Vec<u8>)]) {
    let r = refused(env, case, r, "", before);
    let context = format!("case {case}: coffer {:?}", r.args);
    transcript::assert_file(expect, &r.stderr_normalised(), &context);
}

fn store() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "SENTINEL-BAD-INPUT");
    env
}

#[test]
fn malformed_manifests_are_refused_clearly() {
    let env = store();
    let path = env.store().join("api-keys/vault.toml");
    let good = fs::read(&path).unwrap();
    for (case, file, expect) in corpus("manifest") {
        fs::write(&path, fs::read(&file).unwrap()).unwrap();
        let before = env.snapshot();
        for args in [
            &["list", "-V", "api-keys"][..],
            &["get", "-V", "api-keys", "-n", "stripe-key"],
        ] {
            let r = env.run(args);
            refused_as(&env, &case, r, &expect, &before);
        }
        // verify reports it as a problem, not a crash.
        let r = env.run(&["verify"]);
        assert_eq!(r.code(), 1, "{case}");
        assert!(!r.stderr().contains("panicked"), "{case}");
    }
    fs::write(&path, good).unwrap();
    env.run(&["verify"]).ok();
}

#[test]
fn malformed_configs_are_refused_clearly() {
    let env = store();
    let path = env.store().join("coffer.toml");
    for (case, file, expect) in corpus("config") {
        fs::write(&path, fs::read(&file).unwrap()).unwrap();
        let before = env.snapshot();
        let r = env.run(&["vault", "list"]);
        refused_as(&env, &case, r, &expect, &before);
    }
}

#[test]
fn a_100_mb_manifest_is_refused_without_reading_it() {
    let env = store();
    let path = env.store().join("api-keys/vault.toml");
    let f = fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(100 << 20).unwrap(); // sparse: costs no disk
    let before = env.snapshot_names();
    env.run(&["list", "-V", "api-keys"])
        .fails("over the limit")
        .transcript("bad_input/a_100_mb_manifest_is_refused_without_reading_it");
    assert_eq!(env.snapshot_names(), before);
}

#[test]
fn truncated_and_oversized_secret_files_are_refused() {
    let env = store();
    let file = env.store().join("api-keys/stripe-key.age");
    let good = fs::read(&file).unwrap();
    let mut t = Transcript::new("bad_input/truncated_and_oversized_secret_files_are_refused");
    for (case, bytes, expect) in [
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "failed verification",
        ),
        ("empty", Vec::new(), "failed verification"),
        (
            "binary",
            b"age-encryption.org/v1\n".to_vec(),
            "failed verification",
        ),
    ] {
        fs::write(&file, &bytes).unwrap();
        let before = env.snapshot();
        let r = env.run(&["get", "-V", "api-keys", "-n", "stripe-key"]);
        t.record(case, refused(&env, case, r, expect, &before));
    }
    let f = fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(300 << 10).unwrap();
    let r = env.run(&["get", "-V", "api-keys", "-n", "stripe-key"]);
    t.record("oversized", r.fails("over the limit"));
    t.check();
    fs::write(&file, &good).unwrap();
    assert_eq!(env.get("api-keys", "stripe-key"), "SENTINEL-BAD-INPUT");
}

/// An armored age file encrypted to `n` random recipients.
fn many_stanzas(n: usize) -> Vec<u8> {
    let recipients: Vec<age::x25519::Recipient> = (0..n)
        .map(|_| age::x25519::Identity::generate().to_public())
        .collect();
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .unwrap();
    let mut out = Vec::new();
    let armor =
        age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).unwrap();
    let mut w = enc.wrap_output(armor).unwrap();
    std::io::Write::write_all(&mut w, b"x").unwrap();
    w.finish().unwrap().finish().unwrap();
    out
}

/// An age file with thousands of stanzas: the header parser stays linear
/// and the count is reported.
#[test]
fn an_age_file_with_thousands_of_stanzas_is_refused() {
    let env = store();
    // 1,800 stanzas still fit under the 256 KiB limit for a secret file.
    fs::write(
        env.store().join("api-keys/stripe-key.age"),
        many_stanzas(1800),
    )
    .unwrap();
    let before = env.snapshot();
    let mut t = Transcript::new("bad_input/an_age_file_with_thousands_of_stanzas_is_refused");
    let r = env.run(&["get", "-V", "api-keys", "-n", "stripe-key"]);
    t.record(
        "secret file",
        refused(&env, "stanzas", r, "failed verification", &before),
    );
    let r = env.run(&["verify"]);
    assert_eq!(r.code(), 1);
    assert!(
        r.stdout()
            .contains("its file has 1800 recipient stanzas, not 1"),
        "{}",
        r.stdout()
    );
    // 5,000 in vault-key.age (its limit is 1 MiB).
    fs::write(
        env.store().join("api-keys/vault-key.age"),
        many_stanzas(5000),
    )
    .unwrap();
    let before = env.snapshot();
    let r = env.run(&["get", "-V", "api-keys", "-n", "stripe-key"]);
    t.record(
        "vault key",
        refused(
            &env,
            "vault key stanzas",
            r,
            "no identity can open vault",
            &before,
        ),
    );
    t.check();
}

#[test]
fn symlinked_secret_files_and_vaults_are_refused() {
    let env = store();
    let dir = env.store().join("api-keys");
    let outside = env.dir.path().join("outside.age");
    fs::rename(dir.join("stripe-key.age"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, dir.join("stripe-key.age")).unwrap();
    let before = env.snapshot();
    for args in [
        &["get", "-V", "api-keys", "-n", "stripe-key"][..],
        &[
            "update",
            "-V",
            "api-keys",
            "-n",
            "stripe-key",
            "--value-file",
            "/etc/hostname",
        ],
    ] {
        let r = env.run(args);
        assert_eq!(r.code(), 1, "{args:?}: {}", r.stderr());
        assert_eq!(env.snapshot(), before);
    }
    let r = env.run(&["verify"]);
    assert!(
        r.stdout().contains("it is a symbolic link"),
        "{}",
        r.stdout()
    );
    fs::remove_file(dir.join("stripe-key.age")).unwrap();
    fs::rename(&outside, dir.join("stripe-key.age")).unwrap();
    // A vault directory that is a link.
    let moved = env.dir.path().join("moved-vault");
    fs::rename(&dir, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &dir).unwrap();
    let before = env.snapshot_names();
    env.run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("symbolic link")
        .transcript("bad_input/symlinked_secret_files_and_vaults_are_refused");
    assert_eq!(env.snapshot_names(), before);
}

/// Runs coffer, killing it if it has not finished in 30 seconds: a command
/// that waits on a FIFO never would.
fn run_or_hang(env: &TestEnv, args: &[&str]) -> std::process::Output {
    use std::process::Stdio;
    let mut child = env
        .cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("coffer {args:?} hung on a FIFO");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_fifo_planted_as_a_secret_file_is_refused_instead_of_hanging() {
    let env = store();
    let file = env.store().join("api-keys/stripe-key.age");
    fs::remove_file(&file).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(&file)
        .status()
        .unwrap();
    assert!(made.success());
    for args in [
        &["get", "-V", "api-keys", "-n", "stripe-key"][..],
        &["export", "-V", "api-keys"],
    ] {
        let out = run_or_hang(&env, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a regular file"), "{args:?}: {err}");
    }
    let out = run_or_hang(&env, &["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("not a regular file"), "{report}");
    env.run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("not a regular file")
        .transcript("bad_input/a_fifo_planted_as_a_secret_file_is_refused_instead_of_hanging");
}

#[test]
fn hostile_names_are_refused_before_touching_the_disk() {
    let env = store();
    let before = env.snapshot();
    let long = "a".repeat(64);
    let mut t = Transcript::new("bad_input/hostile_names_are_refused_before_touching_the_disk");
    for bad in [
        "..",
        "../x",
        "a/b",
        "/abs",
        "a\\b",
        "аbc",
        "strіpe-key",
        "ab\u{200c}c",
        "x\u{202e}y",
        &long,
        "-rf",
        "CON",
        "vault-key",
    ] {
        for args in [
            vec!["create", "-V", "api-keys", "--value-file", "/etc/hostname"],
            vec!["vault", "create"],
        ] {
            let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            args.push(format!("--name={bad}"));
            let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
            let r = env.run(&argv);
            if args[0] == "vault" && bad == "vault-key" {
                continue; // a valid vault name
            }
            t.record(bad, refused(&env, bad, r, "invalid", &before));
        }
    }
    t.check();
}

#[test]
fn bad_values_are_refused() {
    let env = store();
    let before = env.snapshot();
    let mut t = Transcript::new("bad_input/bad_values_are_refused");
    let r = env.run_stdin(
        &["create", "-V", "api-keys", "-n", "bad-value"],
        b"ok\xff\xfe",
    );
    t.record(
        "not utf-8",
        refused(&env, "not utf-8", r, "not valid UTF-8", &before),
    );
    let r = env.run_stdin(
        &["create", "-V", "api-keys", "-n", "bad-value"],
        &vec![b'x'; (128 << 10) + 1],
    );
    t.record(
        "too large",
        refused(&env, "too large", r, "over the limit", &before),
    );
    let r = env.run_stdin(&["create", "-V", "api-keys", "-n", "bad-value"], b"");
    t.record("empty", refused(&env, "empty", r, "empty", &before));
    t.check();
}

#[test]
fn a_wrong_key_is_refused() {
    let env = store();
    let other = env.dir.path().join("other.txt");
    env.identity_file(&other, 0o600);
    let before = env.snapshot();
    let r = env.run(&[
        "get",
        "-V",
        "api-keys",
        "-n",
        "stripe-key",
        "-i",
        other.to_str().unwrap(),
    ]);
    let mut t = Transcript::new("bad_input/a_wrong_key_is_refused");
    t.record(
        "wrong key",
        refused(&env, "wrong key", r, "no identity can open vault", &before),
    );
    let bad = env.dir.path().join("garbage.txt");
    fs::write(&bad, "not a key at all\n").unwrap();
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o600)).unwrap();
    let r = env.run(&[
        "get",
        "-V",
        "api-keys",
        "-n",
        "stripe-key",
        "-i",
        bad.to_str().unwrap(),
    ]);
    t.record(
        "garbage key",
        refused(
            &env,
            "garbage key",
            r,
            "line 1 is not an age identity",
            &before,
        ),
    );
    t.check();
}

/// A plugin name with a path separator never reaches `exec`: a binary
/// planted where such a name would resolve (relative to the current
/// directory, and on PATH) never runs, whichever way the name arrives.
#[test]
fn a_planted_plugin_binary_never_runs() {
    let env = store();
    let marker = env.dir.path().join("PWNED");
    let script = format!("#!/bin/sh\ntouch {}\n", marker.display());
    let plant = |dir: &Path| {
        fs::create_dir_all(dir.join("age-plugin-pwn")).unwrap();
        for p in [dir.join("age-plugin-pwn/pwn"), dir.join("age-plugin-pwn")] {
            if p.is_dir() {
                continue;
            }
            fs::write(&p, &script).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        }
    };
    plant(&env.work);
    let bin = env.dir.path().join("bin");
    plant(&bin);
    let path = format!("{}:{PATH}", bin.display());
    let with_path = |c: &mut std::process::Command| {
        c.env("PATH", &path);
    };
    let before = env.snapshot();
    // As a recipient on the command line.
    let r = env.run_with(
        &["recipients", "add", "pwn", "age1pwn/pwn19gt89dfz"],
        with_path,
    );
    let mut t = Transcript::new("bad_input/a_planted_plugin_binary_never_runs");
    t.record(
        "recipient",
        refused(&env, "recipient", r, "plugin name \"pwn/pwn\"", &before),
    );
    // As an identity.
    let id = env.dir.path().join("pwn-identity.txt");
    fs::write(&id, "AGE-PLUGIN-PWN/PWN-1QQQQQQ\n").unwrap();
    fs::set_permissions(&id, fs::Permissions::from_mode(0o600)).unwrap();
    let r = env.run_with(
        &[
            "get",
            "-V",
            "api-keys",
            "-n",
            "stripe-key",
            "-i",
            id.to_str().unwrap(),
        ],
        with_path,
    );
    t.record(
        "identity",
        refused(
            &env,
            "identity",
            r,
            "line 1 is not an age identity",
            &before,
        ),
    );
    // Slipped into coffer.toml and into the manifest by hand.
    let config = env.store().join("coffer.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("{text}pwn = \"age1pwn/pwn19gt89dfz\"\n")).unwrap();
    let before = env.snapshot();
    for args in [
        &["vault", "create", "new-vault"][..],
        &["rekey"],
        &["recipients", "approve", "--yes"],
    ] {
        let r = env.run_with(args, with_path);
        t.record("config", refused(&env, "config", r, "plugin name", &before));
    }
    fs::write(&config, text).unwrap();
    let manifest = env.store().join("api-keys/vault.toml");
    let m = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        m.replace(
            "[recipients]\n",
            "[recipients]\npwn = \"age1pwn/pwn19gt89dfz\"\n",
        ),
    )
    .unwrap();
    let before = env.snapshot();
    let r = env.run_with(&["rekey", "--new-key"], with_path);
    t.record(
        "manifest",
        refused(&env, "manifest", r, "plugin name", &before),
    );
    assert!(!marker.exists(), "the planted binary ran");
    t.check();
}

#[test]
fn malformed_import_files_are_refused_without_echoing_values() {
    let env = store();
    let cases: &[(&str, &[u8], &str)] = &[
        ("no-equals.env", b"JUST_A_NAME\n", "line 1"),
        ("unclosed.env", b"A=\"SENTINEL-UNCLOSED\n", "line 1"),
        ("not-utf8.env", b"A=\xff\xfe\n", "line 1"),
        ("bad-name.env", b"lower_case=SENTINEL-X\n", "lower_case"),
        ("dup.env", b"A_KEY=1\nA_KEY=2\n", "A_KEY"),
        ("bad.json", b"{\"a-key\": \"SENTINEL-J\"", "bad.json"),
        // Nested objects are flattened (a-key.x is a-key-x); a null is not
        // a value.
        ("nested.json", b"{\"a-key\": {\"x\": null}}", "bad"),
    ];
    let before = env.snapshot();
    let mut t =
        Transcript::new("bad_input/malformed_import_files_are_refused_without_echoing_values");
    for (name, bytes, expect) in cases {
        let file = env.dir.path().join(name);
        fs::write(&file, bytes).unwrap();
        let r = env.run(&["import", "-V", "api-keys", file.to_str().unwrap()]);
        assert!(!r.stderr().contains("SENTINEL"), "{name}: {}", r.stderr());
        let expect = if *expect == "bad" { "" } else { expect };
        t.record(name, refused(&env, name, r, expect, &before));
    }
    t.check();
}
