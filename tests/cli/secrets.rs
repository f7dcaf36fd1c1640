use std::fs;

use crate::common::{TestEnv, Transcript, run_in_pty};

/// The seed's own command lines, as a platform user would type them.
#[test]
fn the_seed_command_lines_behave_like_the_platform() {
    let env = TestEnv::new();
    env.init(&[]);
    env.run(&["vault", "create", "--name", "api-keys"])
        .ok()
        .stderr_has("Vault: api-keys created");
    env.run(&[
        "create",
        "--vault-name",
        "api-keys",
        "--name",
        "stripe-secret-key",
        "--value",
        "sk_live_xxxxx",
    ])
    .ok()
    .stderr_has("Secret: stripe-secret-key created in vault: api-keys")
    .stderr_has("warning: --value puts the secret on the command line");
    assert_eq!(env.get("api-keys", "stripe-secret-key"), "sk_live_xxxxx");
    env.run(&[
        "update",
        "--vault-name",
        "api-keys",
        "--name",
        "stripe-secret-key",
        "--value",
        "sk_live_yyyyy",
    ])
    .ok()
    .stderr_has("Secret: stripe-secret-key updated in vault: api-keys");
    assert_eq!(env.get("api-keys", "stripe-secret-key"), "sk_live_yyyyy");
    let list = env.run(&["vault", "list"]).ok().stdout();
    assert!(list.contains("api-keys"));
    let list = env.run(&["list", "--vault-name", "api-keys"]).ok();
    assert!(list.stdout().contains("stripe-secret-key"));
    assert!(
        !list.stdout().contains("sk_live"),
        "list never shows values"
    );
    env.run(&[
        "delete",
        "--vault-name",
        "api-keys",
        "--name",
        "stripe-secret-key",
        "--yes",
    ])
    .ok()
    .stderr_has("Secret: stripe-secret-key deleted from vault: api-keys");
    assert!(!env.store().join("api-keys/stripe-secret-key.age").exists());
    env.run(&["vault", "delete", "api-keys", "--yes"])
        .ok()
        .stderr_has("Vault: api-keys deleted");
    assert_eq!(env.run(&["vault", "list", "--json"]).ok().stdout(), "[]\n");
}

#[test]
fn create_refuses_an_existing_secret_and_update_a_missing_one() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "one");
    let before = env.snapshot();
    env.run_stdin(&["create", "-V", "api-keys", "-n", "stripe-key"], b"two")
        .fails("secret \"stripe-key\" already exists in vault \"api-keys\"")
        .stderr_has("coffer update")
        .transcript("secrets/secret-stripe-key-already-exists-in");
    env.run_stdin(&["update", "-V", "api-keys", "-n", "missing-key"], b"two")
        .fails("secret \"missing-key\" not found in vault \"api-keys\"")
        .transcript("secrets/secret-missing-key-not-found-in-vault");
    env.run(&["delete", "-V", "api-keys", "-n", "missing-key", "--yes"])
        .fails("not found")
        .transcript("secrets/delete-of-a-missing-secret");
    env.run(&["get", "-V", "api-keys", "-n", "missing-key"])
        .fails("not found")
        .transcript("secrets/get-of-a-missing-secret");
    assert_eq!(env.snapshot(), before);
    assert_eq!(env.get("api-keys", "stripe-key"), "one");
}

#[test]
fn bad_secret_names_are_refused_before_touching_the_disk() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let before = env.snapshot();
    let long = "a".repeat(64);
    let mut t = Transcript::new("secrets/bad_secret_names_are_refused_before_touching_the_disk");
    for bad in ["../x", "A", "a/b", &long, "ab", "-ab", "a.b", "vault-key"] {
        let flag = format!("--name={bad}");
        let r = env.run_stdin(&["create", "-V", "api-keys", &flag], b"v");
        t.record(bad, r.fails("invalid secret name"));
    }
    t.check();
    assert_eq!(env.snapshot(), before);
}

#[test]
fn stdin_values_lose_exactly_one_trailing_newline() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.run_stdin(&["create", "-V", "api-keys", "-n", "one-line"], b"value\n")
        .ok();
    env.run_stdin(
        &["create", "-V", "api-keys", "-n", "two-lines"],
        b"line1\nline2\n\n",
    )
    .ok();
    env.run_stdin(
        &["create", "-V", "api-keys", "-n", "crlf-line"],
        b"value\r\n",
    )
    .ok();
    assert_eq!(env.get("api-keys", "one-line"), "value");
    assert_eq!(env.get("api-keys", "two-lines"), "line1\nline2\n");
    assert_eq!(env.get("api-keys", "crlf-line"), "value");
}

#[test]
fn value_file_is_read_exactly() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let pem = "-----BEGIN CERT-----\nMIIB\n-----END CERT-----\n";
    fs::write(env.work.join("cert.pem"), pem).unwrap();
    env.run(&[
        "create",
        "-V",
        "api-keys",
        "-n",
        "tls-cert",
        "--value-file",
        "cert.pem",
    ])
    .ok();
    assert_eq!(env.get("api-keys", "tls-cert"), pem);
    env.run_stdin(
        &[
            "update",
            "-V",
            "api-keys",
            "-n",
            "tls-cert",
            "--value-file",
            "-",
        ],
        b"piped\n",
    )
    .ok();
    assert_eq!(env.get("api-keys", "tls-cert"), "piped");
    env.run(&[
        "create",
        "-V",
        "api-keys",
        "-n",
        "other-one",
        "--value-file",
        "nope.txt",
    ])
    .fails("could not read nope.txt")
    .transcript("secrets/could-not-read-nope-txt");
}

#[test]
fn value_and_value_file_conflict() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let r = env.run(&[
        "create",
        "-V",
        "api-keys",
        "-n",
        "x-key",
        "-v",
        "a",
        "--value-file",
        "f",
    ]);
    assert_eq!(r.code(), 2, "usage error");
}

#[test]
fn invalid_values_are_refused_and_change_nothing() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "good");
    let before = env.snapshot();
    env.run_stdin(
        &["create", "-V", "api-keys", "-n", "binary-key"],
        &[0x66, 0xff, 0x00],
    )
    .fails("not valid UTF-8")
    .stderr_has("base64")
    .transcript("secrets/not-valid-utf-8");
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "stripe-key"],
        &vec![b'a'; 128 * 1024 + 1],
    )
    .fails("over the limit of 131072 bytes")
    .transcript("secrets/over-the-limit-of-131072-bytes");
    env.run_stdin(&["create", "-V", "api-keys", "-n", "empty-key"], b"\n")
        .fails("the value is empty")
        .transcript("secrets/the-value-is-empty");
    assert_eq!(env.snapshot(), before);
    // Exactly the limit is fine.
    env.run_stdin(
        &["create", "-V", "api-keys", "-n", "big-key"],
        &vec![b'a'; 128 * 1024],
    )
    .ok();
    assert_eq!(env.get("api-keys", "big-key").len(), 128 * 1024);
}

#[test]
fn a_value_file_far_over_the_limit_reports_its_real_size() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let big = env.work.join("big.txt");
    std::fs::write(&big, vec![b'a'; 266_668]).unwrap();
    let before = env.snapshot();
    env.run(&[
        "create",
        "-V",
        "api-keys",
        "-n",
        "big-key",
        "--value-file",
        "big.txt",
    ])
    .fails("is 266668 bytes, over the limit of 131072 bytes")
    .transcript("secrets/value-file-far-over-the-limit");
    // On stdin the size is not known: it says so, never a wrong size.
    env.run_stdin(
        &["create", "-V", "api-keys", "-n", "big-key"],
        &vec![b'a'; 266_668],
    )
    .fails("the value in stdin is over the limit of 131072 bytes")
    .transcript("secrets/stdin-far-over-the-limit");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn unchanged_update_writes_nothing() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "same");
    env.put("api-keys", "other-key", "x");
    let before = env.snapshot();
    env.run_stdin(&["update", "-V", "api-keys", "-n", "stripe-key"], b"same\n")
        .ok()
        .stderr_has("unchanged");
    assert_eq!(env.snapshot(), before, "no file rewritten");
}

#[test]
fn update_touches_only_its_file_and_the_manifest() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "one");
    env.put("api-keys", "other-key", "x");
    let before = env.snapshot();
    env.run_stdin(&["update", "-V", "api-keys", "-n", "stripe-key"], b"two")
        .ok();
    let after = env.snapshot();
    let changed: Vec<String> = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.0.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(changed, ["stripe-key.age", "vault.toml"]);
    let manifest = fs::read_to_string(env.store().join("api-keys/vault.toml")).unwrap();
    let section = |m: &str| {
        let start = m.find("[secrets.other-key]").unwrap();
        let len = m[start + 1..]
            .find("\n[")
            .map_or(m.len() - start, |i| i + 1);
        m[start..start + len].to_owned()
    };
    let other = section(&manifest);
    let before_manifest = String::from_utf8(
        before
            .iter()
            .find(|(p, _)| p.ends_with("vault.toml"))
            .unwrap()
            .1
            .clone(),
    )
    .unwrap();
    assert_eq!(
        section(&before_manifest),
        other,
        "the other entry is byte-identical"
    );
}

#[test]
fn get_prints_the_value_exactly_with_a_newline_only_on_a_terminal() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.run_stdin(
        &[
            "create",
            "-V",
            "api-keys",
            "-n",
            "two-lines",
            "--value-file",
            "-",
        ],
        b"a\nb",
    )
    .ok();
    let r = env.run(&["get", "-V", "api-keys", "-n", "two-lines"]).ok();
    assert_eq!(r.output.stdout, b"a\nb");
    assert_eq!(r.stderr(), "");
    let mut c = env.cmd();
    c.args(["get", "-V", "api-keys", "-n", "two-lines"]);
    let (out, code) = run_in_pty(c, None, "");
    assert_eq!(code, 0);
    assert_eq!(out, "a\r\nb\r\n", "the terminal shows a final newline");
}

#[test]
fn value_is_asked_for_without_echo_on_a_terminal() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let mut c = env.cmd();
    c.args(["create", "-V", "api-keys", "-n", "typed-key"]);
    let (out, code) = run_in_pty(c, Some("Value for api-keys/typed-key: "), "hunter2-typed\n");
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("hunter2"),
        "the typed value is not echoed: {out:?}"
    );
    assert_eq!(env.get("api-keys", "typed-key"), "hunter2-typed");
}

#[test]
fn delete_asks_to_type_the_name_on_a_terminal() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v");
    let mut c = env.cmd();
    c.args(["delete", "-V", "api-keys", "-n", "stripe-key"]);
    let (out, code) = run_in_pty(c, Some("(\"stripe-key\"): "), "wrong\n");
    assert_eq!(code, 1);
    assert!(out.contains("Secret deletion cancelled"), "{out}");
    assert_eq!(env.get("api-keys", "stripe-key"), "v");
    let mut c = env.cmd();
    c.args(["delete", "-V", "api-keys", "-n", "stripe-key"]);
    let (out, code) = run_in_pty(c, Some("(\"stripe-key\"): "), "stripe-key\n");
    assert_eq!(code, 0, "{out}");
    env.run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("not found")
        .transcript("secrets/get-after-delete");
}

#[test]
fn delete_without_a_terminal_needs_yes() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v");
    let before = env.snapshot();
    env.run(&["delete", "-V", "api-keys", "-n", "stripe-key"])
        .fails("without confirmation")
        .transcript("secrets/delete-without-a-terminal-needs-yes");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn list_shows_names_and_times_never_values() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "zeta-key", "SENTINEL-VALUE-1");
    env.put("api-keys", "alpha-key", "SENTINEL-VALUE-2");
    let table = env.run(&["list", "-V", "api-keys"]).ok();
    let stdout = table.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[0].starts_with("NAME"));
    assert!(lines[1].starts_with("alpha-key") && lines[2].starts_with("zeta-key"));
    let json = env.run(&["list", "-V", "api-keys", "--json"]).ok().stdout();
    assert!(!table.stdout().contains("SENTINEL") && !json.contains("SENTINEL"));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["name"], "alpha-key");
    assert!(rows[0]["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[test]
fn failed_write_leaves_no_temporary_files() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v");
    env.run_stdin(&["create", "-V", "api-keys", "-n", "stripe-key"], b"x")
        .fails("already exists")
        .transcript("secrets/create-after-a-failed-write");
    let names: Vec<String> = fs::read_dir(env.store().join("api-keys"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with(".coffer")), "{names:?}");
}
