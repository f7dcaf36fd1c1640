//! Teams: adding, removing and approving recipients, rotation tracking,
//! rekey, write-only contributions, hardware keys and `verify`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{PATH, TestEnv, have_tool, run_in_pty_with, tool};

/// A second identity file; returns its path and recipient.
fn person(env: &TestEnv, name: &str) -> (PathBuf, String) {
    let path = env.dir.path().join(format!("{name}.txt"));
    let recipient = env.identity_file(&path, 0o600);
    (path, recipient)
}

fn get_as(env: &TestEnv, id: &Path, vault: &str, name: &str) -> crate::common::Run {
    env.run(&["get", "-V", vault, "-n", name, "-i", id.to_str().unwrap()])
}

fn git(env: &TestEnv, args: &[&str]) -> String {
    let out = tool(env, "git", args);
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn two_vaults() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys", "database"]);
    for (v, n) in [
        ("api-keys", "stripe-key"),
        ("api-keys", "sendgrid-key"),
        ("database", "db-password"),
    ] {
        env.put(v, n, &format!("value-of-{n}"));
    }
    env
}

#[test]
fn adding_a_recipient_rewraps_only_the_vault_keys() {
    if !have_tool("git") {
        return;
    }
    let env = two_vaults();
    git(&env, &["init", "-q"]);
    git(&env, &["add", "."]);
    git(&env, &["commit", "-qm", "store"]);
    let (bob, bob_key) = person(&env, "bob");
    env.run(&["recipients", "add", "bob", &bob_key])
        .ok()
        .stderr_has("vault-key.age re-encrypted; no secret changed");
    let status = git(&env, &["status", "--porcelain"]);
    assert_eq!(
        status,
        " M vaults/api-keys/vault-key.age\n M vaults/api-keys/vault.toml\n M vaults/coffer.toml\n M vaults/database/vault-key.age\n M vaults/database/vault.toml\n",
    );
    for (v, n) in [
        ("api-keys", "stripe-key"),
        ("api-keys", "sendgrid-key"),
        ("database", "db-password"),
    ] {
        assert_eq!(
            get_as(&env, &bob, v, n).ok().stdout(),
            format!("value-of-{n}")
        );
    }
    // The manifest's secret entries did not change either.
    let diff = git(&env, &["diff", "-U0", "vaults/api-keys/vault.toml"]);
    let changed: Vec<&str> = diff
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert_eq!(changed.len(), 3, "{diff}");
    assert!(changed[0].starts_with("-recipients-mac") && changed[1].starts_with("+recipients-mac"));
    assert!(changed[2].starts_with("+bob = "));
}

#[test]
fn adding_the_same_recipient_again_changes_nothing() {
    let env = two_vaults();
    let (_, bob_key) = person(&env, "bob");
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    let before = env.snapshot();
    env.run(&["recipients", "add", "bob", &bob_key])
        .ok()
        .stderr_has("nothing to do");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_recipient_with_another_key_is_refused() {
    let env = two_vaults();
    let (_, bob_key) = person(&env, "bob");
    let (_, other) = person(&env, "other");
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    env.run(&["recipients", "add", "bob", &other])
        .fails("recipient bob already exists with another key")
        .stderr_has("remove them first")
        .transcript("teams/recipient-bob-already-exists-with");
    env.run(&["recipients", "add", "robert", &bob_key])
        .fails("already belongs to recipient bob")
        .transcript("teams/already-belongs-to-recipient-bob");
}

#[test]
fn keys_come_from_stdin_or_a_public_key_file_but_never_a_private_one() {
    let env = two_vaults();
    let (bob, bob_key) = person(&env, "bob");
    env.run_stdin(
        &["recipients", "add", "bob", "-"],
        format!("{bob_key}\n").as_bytes(),
    )
    .ok();
    let pubfile = env.dir.path().join("carol.pub");
    let (_, carol_key) = person(&env, "carol");
    fs::write(&pubfile, format!("# carol's key\n{carol_key}\n")).unwrap();
    env.run(&["recipients", "add", "carol", pubfile.to_str().unwrap()])
        .ok();
    let config = fs::read_to_string(env.store().join("coffer.toml")).unwrap();
    assert!(config.contains(&bob_key) && config.contains(&carol_key));
    env.run(&["recipients", "add", "dave", bob.to_str().unwrap()])
        .fails("holds a private key, not a public one")
        .transcript("teams/holds-a-private-key-not-a-public-one");
    let secret_text = fs::read_to_string(&bob).unwrap();
    let r = env
        .run(&["recipients", "add", "dave", secret_text.trim()])
        .fails("private identity")
        .transcript("teams/a-private-identity-as-a-recipient");
    assert!(
        !r.stderr().contains(&secret_text.trim()[20..]),
        "the key is never echoed"
    );
}

#[test]
fn plugin_recipients_with_a_path_separator_are_refused() {
    let env = two_vaults();
    let before = env.snapshot();
    env.run(&["recipients", "add", "pwn", "age1pwn/pwn19gt89dfz"])
        .fails("plugin name \"pwn/pwn\"")
        .transcript("teams/plugin-name-pwn-pwn");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn ssh_recipients_can_read_after_being_added() {
    if !have_tool("ssh-keygen") {
        return;
    }
    let env = two_vaults();
    for kind in ["ed25519", "rsa"] {
        let key = env.dir.path().join(format!("id_{kind}"));
        let out = tool(
            &env,
            "ssh-keygen",
            &[
                "-q",
                "-t",
                kind,
                "-N",
                "",
                "-C",
                "bob@laptop",
                "-f",
                key.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{out:?}");
        let name = format!("bob-{kind}");
        env.run(&[
            "recipients",
            "add",
            &name,
            &format!("{}.pub", key.display()),
        ])
        .ok();
        assert_eq!(
            get_as(&env, &key, "api-keys", "stripe-key").ok().stdout(),
            "value-of-stripe-key"
        );
    }
    let list = env.run(&["recipients", "list"]).ok().stdout();
    assert!(
        list.contains("ssh-ed25519") && list.contains("ssh-rsa"),
        "{list}"
    );
}

#[test]
fn a_recipient_added_by_hand_is_refused_until_approved() {
    let env = two_vaults();
    let (carol, carol_key) = person(&env, "carol");
    let config = env.store().join("coffer.toml");
    let mut text = fs::read_to_string(&config).unwrap();
    text.push_str(&format!("carol = \"{carol_key}\"\n"));
    fs::write(&config, text).unwrap();
    let fp = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(carol_key.as_bytes());
        d[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let before = env.snapshot();
    env.run_stdin(&["create", "-V", "api-keys", "-n", "new-key"], b"v")
        .fails("has recipient changes that no one holding its key has approved")
        .stderr_has(&format!("+ carol (added, SHA256:{fp})"))
        .transcript("teams/has-recipient-changes-that-no-one");
    env.run(&["rekey"])
        .fails("carol")
        .transcript("teams/an-unapproved-recipient-blocks-rekey");
    env.run(&["vault", "create", "third-vault"])
        .fails("carol")
        .transcript("teams/an-unapproved-recipient-blocks-vault-create");
    assert_eq!(env.snapshot(), before, "nothing was encrypted");
    get_as(&env, &carol, "api-keys", "stripe-key")
        .fails("no identity can open")
        .transcript("teams/an-unapproved-recipient-cannot-read");
    // verify (CI) flags it, and list shows it pending.
    env.run(&["verify"])
        .fails("verification failed")
        .transcript("teams/verify-flags-an-unapproved-recipient");
    let list = env.run(&["recipients", "list"]).ok().stdout();
    assert!(list.contains("add pending in api-keys"), "{list}");
    // Approval needs a terminal or --yes.
    env.run(&["recipients", "approve"])
        .fails("without confirmation")
        .stderr_has("+ carol")
        .transcript("teams/approve-without-a-terminal-needs-yes");
    env.run(&["recipients", "approve", "--yes"]).ok();
    assert_eq!(
        get_as(&env, &carol, "api-keys", "stripe-key").ok().stdout(),
        "value-of-stripe-key"
    );
    env.run_stdin(&["create", "-V", "api-keys", "-n", "new-key"], b"v")
        .ok();
    env.run(&["verify"]).ok();
}

#[test]
fn removing_a_member_rotates_and_tracks_what_they_could_read() {
    if !have_tool("git") {
        return;
    }
    let env = two_vaults();
    let (bob, bob_key) = person(&env, "bob");
    // Bob can open api-keys only.
    env.run(&["recipients", "add", "bob", &bob_key, "--vault", "api-keys"])
        .ok();
    assert_eq!(
        get_as(&env, &bob, "api-keys", "stripe-key").ok().stdout(),
        "value-of-stripe-key"
    );
    get_as(&env, &bob, "database", "db-password")
        .fails("no identity can open")
        .transcript("teams/a-non-member-cannot-read-database");
    git(&env, &["init", "-q"]);
    git(&env, &["add", "."]);
    git(&env, &["commit", "-qm", "bob can read api-keys"]);

    env.run(&["recipients", "remove", "bob", "--yes"])
        .ok()
        .stderr_has("new vault key (epoch 2); vault-key.age and vault.toml rewritten, no secret file changed, 2 marked due for rotation");
    // Only api-keys changed, and only its keyring and manifest (plus
    // coffer.toml): no secret file, and bob could not open database.
    let status = git(&env, &["status", "--porcelain"]);
    let mut changed: Vec<&str> = status.lines().map(|l| l[3..].trim()).collect();
    changed.sort();
    assert_eq!(
        changed,
        [
            "vaults/api-keys/vault-key.age",
            "vaults/api-keys/vault.toml",
            "vaults/coffer.toml"
        ],
        "{status}"
    );
    for name in ["stripe-key", "sendgrid-key"] {
        get_as(&env, &bob, "api-keys", name)
            .fails("no identity can open")
            .transcript("teams/a-removed-member-cannot-read-api-keys");
        // Bob's copy of the old vault key does not open the new files either.
    }
    assert!(
        !fs::read_to_string(env.store().join("coffer.toml"))
            .unwrap()
            .contains("bob")
    );
    let rotation: Vec<serde_json::Value> =
        serde_json::from_str(&env.run(&["rotation", "--json"]).ok().stdout()).unwrap();
    let names: Vec<(&str, &str)> = rotation
        .iter()
        .map(|r| (r["vault"].as_str().unwrap(), r["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [("api-keys", "sendgrid-key"), ("api-keys", "stripe-key")]
    );
    assert_eq!(rotation[0]["removed"], serde_json::json!(["bob"]));
    let list = env.run(&["list", "-V", "api-keys"]).ok().stdout();
    assert!(list.contains("rotation due (bob removed)"), "{list}");
    // Values are intact, and an update clears the mark; the same value does not.
    assert_eq!(env.get("api-keys", "stripe-key"), "value-of-stripe-key");
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "stripe-key"],
        b"value-of-stripe-key",
    )
    .ok()
    .stderr_has("still due for rotation");
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "stripe-key"],
        b"rotated",
    )
    .ok();
    let rotation: Vec<serde_json::Value> =
        serde_json::from_str(&env.run(&["rotation", "--json"]).ok().stdout()).unwrap();
    assert_eq!(rotation.len(), 1);
    assert_eq!(rotation[0]["name"], "sendgrid-key");
    env.run(&["verify"]).ok().stdout();
}

#[test]
fn removing_a_member_refuses_to_seal_again_an_entry_forged_without_the_key() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "value-one");
    env.put("api-keys", "webhook-secret", "value-two");
    let (_, bob_key) = person(&env, "bob");
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    // A keyless writer edits an entry (a later update time, as if they
    // had replaced the value); its MAC no longer verifies.
    let path = env.store().join("api-keys/vault.toml");
    let text = fs::read_to_string(&path).unwrap();
    let at = text.find("[secrets.webhook-secret]").unwrap();
    let (head, tail) = text.split_at(at);
    let tail = tail.replacen("updated = \"20", "updated = \"21", 1);
    fs::write(&path, format!("{head}{tail}")).unwrap();
    let forged = fs::read_to_string(&path).unwrap();
    assert_ne!(forged, text, "the test must change the entry");
    let before = env.snapshot();

    env.run(&["recipients", "remove", "bob", "--yes"]).fails(
        "cannot re-encrypt vault \"api-keys\": 1 secret failed verification (webhook-secret)",
    );
    // Nothing written: bob is still a recipient.
    assert_eq!(env.snapshot(), before);
}

#[test]
fn removing_a_member_never_launders_a_swapped_secret_file() {
    // Enough secrets to matter; removal reads no secret file, so a file
    // swapped for another's stays a digest mismatch under the new key.
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let dotenv: String = (0..60).map(|i| format!("KEY_{i:02}=value-{i}\n")).collect();
    env.run_stdin(&["import", "-V", "api-keys", "-"], dotenv.as_bytes())
        .ok();
    let (_, bob_key) = person(&env, "bob");
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    let dir = env.store().join("api-keys");
    fs::copy(dir.join("key-01.age"), dir.join("key-40.age")).unwrap();
    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    env.run(&["get", "-V", "api-keys", "-n", "key-40"])
        .fails("key-40");
    let r = env.run(&["verify"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    let report = r.stdout() + &r.stderr();
    assert!(report.contains("key-40"), "{report}");
    assert_eq!(env.get("api-keys", "key-41"), "value-41");
}

#[test]
fn removing_from_one_vault_keeps_the_others() {
    let env = two_vaults();
    let (bob, bob_key) = person(&env, "bob");
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    let r = env
        .run(&[
            "recipients",
            "remove",
            "bob",
            "--vault",
            "database",
            "--yes",
        ])
        .ok();
    // The summary speaks of that vault only.
    assert!(
        r.stderr()
            .contains("bob cannot read any value written from now on in database;"),
        "{}",
        r.stderr()
    );
    get_as(&env, &bob, "database", "db-password")
        .fails("no identity can open")
        .transcript("teams/removed-from-database-cannot-read-it");
    assert_eq!(
        get_as(&env, &bob, "api-keys", "stripe-key").ok().stdout(),
        "value-of-stripe-key"
    );
    let config = fs::read_to_string(env.store().join("coffer.toml")).unwrap();
    assert!(
        config.contains("bob = { key = ") && config.contains("vaults = [\"api-keys\"]"),
        "{config}"
    );
    env.run(&["verify"]).ok();
}

#[test]
fn removing_an_unknown_recipient_or_the_last_one_is_refused() {
    let env = two_vaults();
    env.run(&["recipients", "remove", "nobody", "--yes"])
        .fails("no recipient named \"nobody\"")
        .transcript("teams/no-recipient-named-nobody");
    let before = env.snapshot();
    env.run(&["recipients", "remove", "alice", "--yes"])
        .fails("would have no recipients left")
        .transcript("teams/would-have-no-recipients-left");
    assert_eq!(
        env.snapshot()
            .iter()
            .filter(|(p, _)| !p.ends_with("coffer.toml"))
            .collect::<Vec<_>>(),
        before
            .iter()
            .filter(|(p, _)| !p.ends_with("coffer.toml"))
            .collect::<Vec<_>>(),
        "no vault changed"
    );
}

#[test]
fn removing_where_you_cannot_open_the_vault_fails_loudly() {
    let env = two_vaults();
    let (bob, bob_key) = person(&env, "bob");
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    let (carol, carol_key) = person(&env, "carol");
    env.run(&[
        "recipients",
        "add",
        "carol",
        &carol_key,
        "--vault",
        "api-keys",
    ])
    .ok();
    // Carol cannot open database, so she cannot take bob out of it.
    env.run(&[
        "recipients",
        "remove",
        "bob",
        "-i",
        carol.to_str().unwrap(),
        "--yes",
    ])
    .fails("bob can still open database")
    .transcript("teams/bob-can-still-open-database");
    assert_eq!(
        get_as(&env, &bob, "database", "db-password").ok().stdout(),
        "value-of-db-password"
    );
    get_as(&env, &bob, "api-keys", "stripe-key")
        .fails("no identity can open")
        .transcript("teams/half-removed-member-cannot-read-api-keys");
    // Someone who can finishes it: coffer.toml already says bob is gone.
    env.run(&["recipients", "approve", "--yes"]).ok();
    get_as(&env, &bob, "database", "db-password")
        .fails("no identity can open")
        .transcript("teams/removed-member-cannot-read-database");
}

#[test]
fn recipients_list_json_shows_scope_membership_and_pending_changes() {
    let env = two_vaults();
    let (_, bob_key) = person(&env, "bob");
    env.run(&["recipients", "add", "bob", &bob_key, "--vault", "api-keys"])
        .ok();
    let rows: Vec<serde_json::Value> =
        serde_json::from_str(&env.run(&["recipients", "list", "--json"]).ok().stdout()).unwrap();
    assert_eq!(rows.len(), 2);
    let bob = &rows[1];
    assert_eq!(bob["name"], "bob");
    assert_eq!(bob["key"], bob_key.as_str());
    assert_eq!(bob["kind"], "x25519");
    assert_eq!(bob["scope"], serde_json::json!(["api-keys"]));
    assert_eq!(bob["vaults"], serde_json::json!(["api-keys"]));
    assert_eq!(bob["pending"], serde_json::json!([]));
    assert!(bob["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    assert_eq!(rows[0]["scope"], serde_json::Value::Null);
}

#[test]
fn rekey_with_nothing_stale_writes_nothing_and_new_key_rotates() {
    let env = two_vaults();
    let before = env.snapshot();
    env.run(&["rekey"])
        .ok()
        .stderr_has("Vault api-keys: up to date");
    assert_eq!(env.snapshot(), before);
    let old_key = fs::read(env.store().join("api-keys/vault-key.age")).unwrap();
    env.run(&["rekey", "--vault", "api-keys", "--new-key"])
        .ok()
        .stderr_has("new vault key");
    assert_ne!(
        fs::read(env.store().join("api-keys/vault-key.age")).unwrap(),
        old_key
    );
    assert_eq!(env.get("api-keys", "stripe-key"), "value-of-stripe-key");
    let rotation = env.run(&["rotation", "--json"]).ok().stdout();
    assert_eq!(rotation, "[]\n", "a key rotation on request removes nobody");
    env.run(&["verify"]).ok();
}

/// Stages, in `env`'s store, the state a crash leaves after the commit
/// point of `rekey --new-key` on api-keys: the journal is written and half
/// of its renames are done. Returns the store as it is after the rekey.
fn interrupt_a_rekey(env: &TestEnv, copy: &Path) -> PathBuf {
    let vault = env.store().join("api-keys");
    copy_dir(&env.store(), copy);
    env.run(&[
        "--store",
        copy.to_str().unwrap(),
        "rekey",
        "--new-key",
        "--vault",
        "api-keys",
    ])
    .ok();
    let files = [
        "sendgrid-key.age",
        "stripe-key.age",
        "vault-key.age",
        "vault.toml",
    ];
    let mut journal = String::from("coffer-journal 1\n");
    for (i, f) in files.iter().enumerate() {
        let new = fs::read(copy.join("api-keys").join(f)).unwrap();
        let temp = format!(".coffer-tmp-{i}");
        journal.push_str(&format!("put api-keys/{temp} api-keys/{f}\n"));
        if i < 2 {
            fs::write(vault.join(f), new).unwrap(); // already renamed
        } else {
            fs::write(vault.join(&temp), new).unwrap(); // not yet
        }
    }
    journal.push_str("commit\n");
    fs::write(env.store().join(".coffer-journal"), journal).unwrap();
    copy.join("api-keys")
}

#[test]
fn an_interrupted_rekey_is_explained_and_finished_by_verify() {
    let env = two_vaults();
    let after = interrupt_a_rekey(&env, &env.dir.path().join("copy"));
    let out = env.run(&["verify"]).ok().stdout();
    assert!(
        out.contains("warning: a change had been committed but not fully applied"),
        "{out}"
    );
    assert!(out.contains("2 vaults, 3 secrets: ok"), "{out}");
    assert_eq!(env.get("api-keys", "stripe-key"), "value-of-stripe-key");
    let vault = env.store().join("api-keys");
    assert_eq!(
        fs::read(vault.join("vault-key.age")).unwrap(),
        fs::read(after.join("vault-key.age")).unwrap()
    );
    assert_eq!(
        fs::read(vault.join("vault.toml")).unwrap(),
        fs::read(after.join("vault.toml")).unwrap()
    );
}

#[test]
fn an_interrupted_rekey_is_finished_by_the_next_command() {
    let env = two_vaults();
    interrupt_a_rekey(&env, &env.dir.path().join("copy"));
    env.run(&["rekey"])
        .ok()
        .stderr_has("Finished an interrupted change");
    env.run(&["verify"]).ok();
    let env = two_vaults();
    interrupt_a_rekey(&env, &env.dir.path().join("copy"));
    // A plain read finishes it too, and sees the new state.
    assert_eq!(env.get("api-keys", "sendgrid-key"), "value-of-sendgrid-key");
    assert!(!env.store().join(".coffer-journal").exists());
    env.run(&["verify"]).ok();
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_non_recipient_contributes_and_a_recipient_accepts() {
    let env = two_vaults();
    let (dave, _) = person(&env, "dave");
    let d = dave.to_str().unwrap();
    env.run_stdin(
        &["create", "-V", "api-keys", "-n", "daves-key", "-i", d],
        b"from dave",
    )
    .fails("no identity can open vault")
    .stderr_has("--contribute")
    .transcript("teams/no-identity-can-open-vault");
    env.run_stdin(
        &[
            "create",
            "-V",
            "api-keys",
            "-n",
            "daves-key",
            "-i",
            d,
            "--contribute",
        ],
        b"from dave",
    )
    .ok()
    .stderr_has("as an unverified contribution");
    // Also without any identity at all.
    let id = env.default_identity();
    let hidden = env.dir.path().join("hidden.txt");
    fs::rename(&id, &hidden).unwrap();
    env.run_stdin(
        &[
            "update",
            "-V",
            "api-keys",
            "-n",
            "stripe-key",
            "--contribute",
        ],
        b"replaced by someone",
    )
    .ok();
    fs::rename(&hidden, &id).unwrap();

    let list = env.run(&["list", "-V", "api-keys"]).ok().stdout();
    assert!(list.contains("unverified contribution"), "{list}");
    env.run(&["get", "-V", "api-keys", "-n", "daves-key"])
        .fails("unverified contribution")
        .stderr_has("coffer verify --accept")
        .transcript("teams/unverified-contribution");
    let r = env.run(&["verify", "--json"]);
    assert_eq!(r.code(), 1);
    let report: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let kinds: Vec<&str> = report["vaults"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["unverified", "unverified"]);
    env.run(&["verify", "--accept"])
        .fails("without confirmation")
        .stderr_has("daves-key")
        .transcript("teams/accept-without-a-terminal-needs-yes");
    env.run(&["verify", "--accept", "--yes"])
        .ok()
        .stderr_has("accepted 2 contributions");
    assert_eq!(env.get("api-keys", "daves-key"), "from dave");
    assert_eq!(env.get("api-keys", "stripe-key"), "replaced by someone");
}

#[test]
fn removing_a_member_when_a_contributions_file_is_missing_leaves_it_unaccepted() {
    let env = two_vaults();
    let (_, bob_key) = person(&env, "bob");
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    env.run_stdin(
        &["create", "-V", "api-keys", "-n", "gone-one", "--contribute"],
        b"x",
    )
    .ok();
    fs::remove_file(env.store().join("api-keys").join("gone-one.age")).unwrap();
    // Removal reads no secret file: it goes through, and the contribution
    // stays unaccepted (and now due for rotation) with its file missing.
    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    env.run(&["verify", "--accept", "--yes"]).fails("gone-one");
}

/// Contributes `name` (a test value) to api-keys.
fn contribute(env: &TestEnv, name: &str) {
    env.run_stdin(
        &["create", "-V", "api-keys", "-n", name, "--contribute"],
        b"contributed",
    )
    .ok();
}

/// Runs `verify --accept` on a terminal, calling `at_prompt` while it asks
/// about api-keys, then answering `answer`. Returns what the terminal
/// showed and the exit code.
fn accept_on_a_terminal(env: &TestEnv, answer: &str, at_prompt: impl FnOnce()) -> (String, i32) {
    let mut c = env.cmd();
    c.args(["verify", "--accept"]);
    run_in_pty_with(
        c,
        Some("Accept them as values of vault api-keys? [y/N] "),
        answer,
        at_prompt,
    )
}

#[test]
fn accepting_refuses_when_contributions_change_while_the_user_reviews_them() {
    let env = two_vaults();
    contribute(&env, "shown-one");
    // Someone slips in another contribution while the list is shown.
    let (out, code) = accept_on_a_terminal(&env, "y\n", || contribute(&env, "slipped-in"));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("the contributions to vault api-keys changed while you were reviewing them; nothing was accepted")
            && out.contains("hint: run the command again"),
        "{out}"
    );
    let list = env.run(&["list", "-V", "api-keys"]).ok().stdout();
    assert_eq!(list.matches("unverified contribution").count(), 2, "{list}");
}

#[test]
fn answering_no_accepts_nothing() {
    let env = two_vaults();
    contribute(&env, "shown-one");
    let (out, code) = accept_on_a_terminal(&env, "n\n", || {});
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error: not confirmed; nothing changed"),
        "{out}"
    );
    let list = env.run(&["list", "-V", "api-keys"]).ok().stdout();
    assert!(list.contains("unverified contribution"), "{list}");
}

#[test]
fn a_contribution_that_does_not_decrypt_is_not_accepted() {
    let env = two_vaults();
    env.run_stdin(
        &["create", "-V", "api-keys", "-n", "bad-one", "--contribute"],
        b"x",
    )
    .ok();
    // Replace its file with one for another key, fixing the digest.
    let dir = env.store().join("api-keys");
    let other = age::x25519::Identity::generate().to_public();
    let ct = age::encrypt_and_armor(&other, b"x").unwrap();
    fs::write(dir.join("bad-one.age"), &ct).unwrap();
    let manifest = fs::read_to_string(dir.join("vault.toml")).unwrap();
    use sha2::Digest;
    let digest = format!("{:x}", sha2::Sha256::digest(ct.as_bytes()));
    let start = manifest.find("[secrets.bad-one]").unwrap();
    let at = start + manifest[start..].find("digest = \"sha256:").unwrap() + 17;
    let fixed = format!("{}{digest}{}", &manifest[..at], &manifest[at + 64..]);
    fs::write(dir.join("vault.toml"), fixed).unwrap();
    let before = env.snapshot();
    env.run(&["verify", "--accept", "--yes"])
        .fails("bad-one")
        .transcript("teams/accepting-a-contribution-that-does-not-decrypt");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn verify_names_the_cause_of_each_problem() {
    let env = two_vaults();
    env.run(&["verify"]).ok();
    let dir = env.store().join("api-keys");
    let stripe = fs::read(dir.join("stripe-key.age")).unwrap();
    let sendgrid = fs::read(dir.join("sendgrid-key.age")).unwrap();

    // A swapped file.
    fs::write(dir.join("stripe-key.age"), &sendgrid).unwrap();
    let out = env
        .run(&["verify"])
        .fails("verification failed")
        .transcript("teams/verify-names-a-swapped-file")
        .stdout();
    assert!(
        out.contains("stripe-key: its file does not match the manifest's digest"),
        "{out}"
    );
    // Without any key, the structure check still catches it.
    let hidden = env.dir.path().join("hidden.txt");
    fs::rename(env.default_identity(), &hidden).unwrap();
    let out = env
        .run(&["verify"])
        .fails("verification failed")
        .transcript("teams/verify-without-a-key")
        .stdout();
    assert!(
        out.contains("structure only") && out.contains("does not match the manifest's digest"),
        "{out}"
    );
    fs::rename(&hidden, env.default_identity()).unwrap();
    fs::write(dir.join("stripe-key.age"), &stripe).unwrap();

    // A missing file, and a file nobody listed.
    fs::rename(dir.join("stripe-key.age"), dir.join("stray-key.age")).unwrap();
    let out = env
        .run(&["verify"])
        .fails("verification failed")
        .transcript("teams/verify-names-a-stray-file")
        .stdout();
    assert!(out.contains("stripe-key: its file is missing"), "{out}");
    assert!(
        out.contains("stray-key.age is not listed in the manifest"),
        "{out}"
    );
    fs::rename(dir.join("stray-key.age"), dir.join("stripe-key.age")).unwrap();

    // An extra stanza in the vault key: someone slipped a recipient in.
    let alice = fs::read_to_string(env.default_identity()).unwrap();
    let mallory = age::x25519::Identity::generate().to_public();
    let alice_id: age::x25519::Identity = alice
        .lines()
        .find(|l| l.starts_with("AGE-SECRET"))
        .unwrap()
        .parse()
        .unwrap();
    let original = fs::read(dir.join("vault-key.age")).unwrap();
    let plain = {
        let d =
            age::Decryptor::new_buffered(age::armor::ArmoredReader::new(&original[..])).unwrap();
        let mut r = d
            .decrypt(std::iter::once(&alice_id as &dyn age::Identity))
            .unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut v).unwrap();
        v
    };
    let enc = age::Encryptor::with_recipients(
        [
            &alice_id.to_public() as &dyn age::Recipient,
            &mallory as &dyn age::Recipient,
        ]
        .into_iter(),
    )
    .unwrap();
    let mut out = Vec::new();
    let armor =
        age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).unwrap();
    let mut w = enc.wrap_output(armor).unwrap();
    std::io::Write::write_all(&mut w, &plain).unwrap();
    w.finish().unwrap().finish().unwrap();
    fs::write(dir.join("vault-key.age"), &out).unwrap();
    let report = env.run(&["verify", "--json"]).stdout();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["ok"], false);
    let problems = &report["vaults"][0]["problems"];
    assert_eq!(problems[0]["kind"], "vault-key-stanzas", "{problems}");
    assert!(
        problems[0]["message"]
            .as_str()
            .unwrap()
            .contains("2 recipient stanzas but the manifest lists 1")
    );
    fs::write(dir.join("vault-key.age"), &original).unwrap();
    env.run(&["verify"]).ok();
}

#[test]
fn verify_reports_junk_in_the_store_and_only_checks_named_vaults() {
    let env = two_vaults();
    fs::create_dir(env.store().join("Not_A_Vault")).unwrap();
    let out = env
        .run(&["verify"])
        .fails("verification failed")
        .transcript("teams/verify-reports-junk-in-the-store")
        .stdout();
    assert!(out.contains("\"Not_A_Vault\" is not a vault"), "{out}");
    fs::remove_dir(env.store().join("Not_A_Vault")).unwrap();
    env.run(&["verify", "--vault", "database"]).ok();
    env.run(&["verify", "--vault", "nope-vault"])
        .fails("not found")
        .transcript("teams/verify-of-an-unknown-vault");
}

/// Copies the test plugin into a directory to put on PATH, or skips.
pub fn counter_plugin(env: &TestEnv) -> Option<PathBuf> {
    let bin = Path::new(env!("CARGO_BIN_EXE_coffer"));
    let built = bin.parent().unwrap().join("examples/age-plugin-counter");
    if !built.is_file() {
        if std::env::var("COFFER_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("{} is missing: `cargo test` builds it", built.display());
        }
        eprintln!(
            "note: skipping: the test plugin is not built (run `cargo test`, not `--test cli`)"
        );
        return None;
    }
    let dir = env.dir.path().join("plugins");
    fs::create_dir_all(&dir).unwrap();
    fs::copy(&built, dir.join("age-plugin-counter")).unwrap();
    fs::set_permissions(
        dir.join("age-plugin-counter"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    Some(dir)
}

/// A new identity of the test plugin, written 0600: its recipient and the
/// identity file's path.
pub fn counter_identity(env: &TestEnv, plugins: &Path) -> (String, PathBuf) {
    let out = std::process::Command::new(plugins.join("age-plugin-counter"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# recipient: "))
        .unwrap()
        .to_owned();
    let identity = env.dir.path().join("yubikey.txt");
    fs::write(&identity, text).unwrap();
    fs::set_permissions(&identity, fs::Permissions::from_mode(0o600)).unwrap();
    (recipient, identity)
}

#[test]
fn a_hardware_key_is_asked_once_per_vault_not_once_per_secret() {
    let env = TestEnv::new();
    let Some(plugins) = counter_plugin(&env) else {
        return;
    };
    env.init(&["api-keys", "database"]);
    for i in 0..10 {
        env.put("api-keys", &format!("secret-{i:02}"), &format!("v{i}"));
    }
    env.put("database", "db-password", "pw");
    let (recipient, identity) = counter_identity(&env, &plugins);
    let log = env.dir.path().join("plugin.log");
    let path = format!("{}:{PATH}", plugins.display());
    let with_plugin = |c: &mut std::process::Command| {
        c.env("PATH", &path).env("COFFER_TEST_PLUGIN_LOG", &log);
    };
    env.run_with(&["recipients", "add", "yubikey", &recipient], with_plugin)
        .ok();
    fs::write(&log, "").unwrap();
    let id = identity.to_str().unwrap();
    let r = env.run_with(&["verify", "-i", id], with_plugin).ok();
    assert!(
        r.stdout()
            .contains("api-keys: ok (10 secrets, with its key)"),
        "{}",
        r.stdout()
    );
    let runs = fs::read_to_string(&log).unwrap();
    assert_eq!(
        runs, "identity-v1\nidentity-v1\n",
        "one plugin run per vault, for 11 secrets"
    );
    let r = env.run_with(
        &["get", "-V", "api-keys", "-n", "secret-07", "-i", id],
        with_plugin,
    );
    assert_eq!(r.ok().stdout(), "v7");
    // `run` with a key that may wait on the user opens it outside the
    // store's lock, once per vault.
    fs::write(&log, "").unwrap();
    let r = env.run_with(
        &[
            "run",
            "-V",
            "api-keys",
            "-i",
            id,
            "--",
            "printenv",
            "SECRET_07",
        ],
        with_plugin,
    );
    assert_eq!(r.ok().stdout(), "v7\n");
    assert_eq!(fs::read_to_string(&log).unwrap(), "identity-v1\n");
    // A plugin is only ever run for an identity or recipient that names it.
    fs::write(&log, "").unwrap();
    env.run_with(&["verify"], with_plugin).ok();
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "recipient-v1\n".repeat(0)
    );
}

/// A vault planted by someone without a key, encrypted to alice and
/// listing mallory, must not vouch for mallory when alice creates a vault.
#[test]
fn a_planted_vault_does_not_vouch_for_its_recipients() {
    let env = two_vaults();
    let alice_key = env.default_public_key();
    // Mallory builds a vault in their own store, encrypted to alice too...
    let (mallory, mallory_key) = person(&env, "mallory");
    let theirs = env.dir.path().join("mallory-store");
    let m = mallory.to_str().unwrap();
    let t = theirs.to_str().unwrap();
    env.run(&["--store", t, "init", "--name", "mallory", "-i", m])
        .ok();
    env.run(&[
        "--store",
        t,
        "recipients",
        "add",
        "alice",
        &alice_key,
        "-i",
        m,
    ])
    .ok();
    env.run(&[
        "--store",
        t,
        "vault",
        "create",
        "team-tools",
        "-i",
        m,
        "--yes",
    ])
    .ok();
    // ...plants it, and scopes themselves to it and to a vault to come.
    copy_dir(&theirs.join("team-tools"), &env.store().join("team-tools"));
    let config = env.store().join("coffer.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(
        &config,
        format!("{text}mallory = {{ key = \"{mallory_key}\", vaults = [\"team-tools\", \"prod-db\"] }}\n"),
    )
    .unwrap();
    let before = env.snapshot();
    env.run(&["vault", "create", "prod-db"])
        .fails("refusing to create the vault without confirmation")
        .stderr_has("mallory SHA256:")
        .transcript("teams/refusing-to-create-the-vault-without");
    assert_eq!(env.snapshot(), before);
    // With --yes the user takes responsibility (and was shown the list).
    env.run(&["vault", "create", "prod-db", "--yes"])
        .ok()
        .stderr_has("mallory");
}

#[test]
fn a_contribution_keeps_the_rotation_mark() {
    let env = two_vaults();
    let (bob, bob_key) = person(&env, "bob");
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    // Bob puts back the old value he knows, as a contribution.
    env.run_stdin(
        &[
            "update",
            "-V",
            "api-keys",
            "-n",
            "stripe-key",
            "--contribute",
            "-i",
            bob.to_str().unwrap(),
        ],
        b"value-of-stripe-key",
    )
    .ok();
    let due = env.run(&["rotation", "--json"]).ok().stdout();
    assert!(due.contains("\"stripe-key\""), "{due}");
    env.run(&["verify", "--accept", "--yes"])
        .ok()
        .stderr_has("stripe-key (due for rotation: make sure this is a new value)");
    let due = env.run(&["rotation", "--json"]).ok().stdout();
    assert!(
        due.contains("\"stripe-key\""),
        "still due after acceptance: {due}"
    );
}

/// `recipients remove`, run by alice with no terminal and no `--yes`, used
/// to remove her from every vault at once. Removal now says what it will
/// do and asks like any destructive command.
#[test]
fn removing_a_recipient_without_a_terminal_or_yes_asks_and_changes_nothing() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "value-one");
    let (_, bob_key) = person(&env, "bob");
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    let before = env.snapshot();
    env.run(&["recipients", "remove", "bob"])
        .fails("refusing to remove recipient \"bob\" without confirmation")
        .transcript("teams/remove-without-a-terminal");
    assert_eq!(env.snapshot(), before);
    // Removing yourself says so first, and still asks.
    let r = env
        .run(&["recipients", "remove", "alice"])
        .fails("without confirmation");
    assert!(r.stderr().contains("alice is you"), "{}", r.stderr());
    assert_eq!(env.snapshot(), before);
}

#[test]
fn removing_a_recipient_on_a_terminal_needs_their_name_typed() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "value-one");
    let (_, bob_key) = person(&env, "bob");
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    let before = env.snapshot();
    let prompt = "Enter the recipient name to confirm removal (\"bob\"): ";
    let remove = || {
        let mut c = env.cmd();
        c.args(["recipients", "remove", "bob"]);
        c
    };
    let (screen, code) = crate::common::run_in_pty(remove(), Some(prompt), "bobby\n");
    assert_eq!(code, 1, "{screen}");
    assert!(screen.contains("removal cancelled"), "{screen}");
    assert_eq!(env.snapshot(), before);
    let (screen, code) = crate::common::run_in_pty(remove(), Some(prompt), "bob\n");
    assert_eq!(code, 0, "{screen}");
    assert!(
        !env.run(&["recipients", "list"])
            .ok()
            .stdout()
            .contains("bob ")
    );
}
