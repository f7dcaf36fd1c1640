//! Format 2: keyrings in epochs, removal that rewrites two files, what a
//! removed member can and cannot open, and a store written by format-1
//! coffer read, verified and upgraded exactly.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{TestEnv, have_tool, tool};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format1");

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// The format-1 fixture store in a fresh test world, with its identities
/// (mode 0600) in the test directory. Returns alice's identity path.
fn format1_store() -> (TestEnv, PathBuf, PathBuf) {
    let env = TestEnv::new();
    copy_dir(&Path::new(FIXTURE).join("vaults"), &env.store());
    let mut ids = Vec::new();
    for who in ["alice", "outsider"] {
        let p = env.dir.path().join(format!("{who}.txt"));
        fs::copy(Path::new(FIXTURE).join(format!("{who}.txt")), &p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        ids.push(p);
    }
    let outsider = ids.pop().unwrap();
    let alice = ids.pop().unwrap();
    (env, alice, outsider)
}

/// `(vault, secret, value)` for every secret of the fixture.
fn fixture_values() -> Vec<(String, String, String)> {
    fs::read_to_string(Path::new(FIXTURE).join("values.txt"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut it = l.splitn(3, ' ');
            (
                it.next().unwrap().to_owned(),
                it.next().unwrap().to_owned(),
                it.next().unwrap().to_owned(),
            )
        })
        .collect()
}

const CONTRIBUTIONS: [(&str, &str); 3] = [
    ("api-keys", "github-token"),
    ("api-keys", "webhook-secret"),
    ("database", "read-replica-password"),
];

fn as_id<'a>(id: &'a Path, args: &[&'a str]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    v.extend(["-i", id.to_str().unwrap()]);
    v
}

fn rotation(env: &TestEnv, id: &Path) -> Vec<(String, String, Vec<String>, String)> {
    let out = env.run(&as_id(id, &["rotation", "--json"])).ok().stdout();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    rows.iter()
        .map(|r| {
            (
                r["vault"].as_str().unwrap().to_owned(),
                r["name"].as_str().unwrap().to_owned(),
                r["removed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_owned())
                    .collect(),
                r["since"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Checks every value, rotation mark and contribution of the fixture.
fn check_fixture_state(env: &TestEnv, alice: &Path) {
    for (v, n, value) in fixture_values() {
        let r = env.run(&as_id(alice, &["get", "-V", &v, "-n", &n]));
        if CONTRIBUTIONS.contains(&(v.as_str(), n.as_str())) {
            r.fails("unverified contribution");
        } else {
            assert_eq!(r.ok().stdout(), value, "{v}/{n}");
        }
    }
    let rot = rotation(env, alice);
    let names: Vec<(&str, &str, Vec<String>)> = rot
        .iter()
        .map(|(v, n, r, _)| (v.as_str(), n.as_str(), r.clone()))
        .collect();
    assert_eq!(
        names,
        [
            ("api-keys", "github-token", vec!["carol".to_owned()]),
            ("api-keys", "sendgrid-api-key", vec!["carol".to_owned()]),
        ]
    );
    assert_eq!(rot[0].3, "2026-11-30T12:36:30.786Z");
    let r = env.run(&as_id(alice, &["verify", "--json"]));
    assert_eq!(r.code(), 1);
    let report: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    let mut kinds = Vec::new();
    for v in report["vaults"].as_array().unwrap() {
        for p in v["problems"].as_array().unwrap() {
            kinds.push(format!(
                "{}/{}:{}",
                v["name"].as_str().unwrap(),
                p["secret"].as_str().unwrap_or("-"),
                p["kind"].as_str().unwrap()
            ));
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            "api-keys/github-token:unverified",
            "api-keys/webhook-secret:unverified",
            "database/read-replica-password:unverified"
        ],
        "only the pending contributions: {report}"
    );
}

fn manifest(env: &TestEnv, vault: &str) -> String {
    fs::read_to_string(env.store().join(vault).join("vault.toml")).unwrap()
}

fn secret_files(env: &TestEnv) -> Vec<(PathBuf, Vec<u8>)> {
    env.snapshot()
        .into_iter()
        .filter(|(p, _)| p.extension().is_some_and(|e| e == "age") && !p.ends_with("vault-key.age"))
        .collect()
}

#[test]
fn a_format_1_store_reads_verifies_and_keeps_everything_through_rekey_upgrade() {
    let (env, alice, _) = format1_store();
    check_fixture_state(&env, &alice);
    assert!(manifest(&env, "api-keys").contains("\nformat = 1\n"));
    let keys_before: Vec<Vec<u8>> = ["api-keys", "database"]
        .iter()
        .map(|v| fs::read(env.store().join(v).join("vault-key.age")).unwrap())
        .collect();
    let files_before = secret_files(&env);

    env.run(&as_id(&alice, &["rekey", "--upgrade"]))
        .ok()
        .stderr_has("upgraded to format 2");
    for (v, before) in ["api-keys", "database"].iter().zip(&keys_before) {
        let m = manifest(&env, v);
        assert!(
            m.contains("\nformat = 2\n") && m.contains("\nepoch = 1\n"),
            "{m}"
        );
        assert_eq!(
            &fs::read(env.store().join(v).join("vault-key.age")).unwrap(),
            before,
            "the keyring of one key needs no change"
        );
    }
    assert_eq!(secret_files(&env), files_before, "no secret file changed");
    check_fixture_state(&env, &alice);
    // Upgrading again writes nothing.
    let snap = env.snapshot();
    env.run(&as_id(&alice, &["rekey", "--upgrade"])).ok();
    assert_eq!(env.snapshot(), snap);

    // Format-1 contributions are not bound to their names: accepting them
    // takes an explicit flag, after reading the warning.
    let snap = env.snapshot();
    env.run(&as_id(&alice, &["verify", "--accept", "--yes"]))
        .fails("is not bound to that name: it was written by format-1 coffer")
        .stderr_has("NOT BOUND to this name")
        .stderr_has("--allow-unbound");
    assert_eq!(env.snapshot(), snap, "nothing accepted");
    // The contributions are still exactly what was contributed.
    env.run(&as_id(
        &alice,
        &["verify", "--accept", "--yes", "--allow-unbound"],
    ))
    .ok();
    for (v, n, value) in fixture_values() {
        assert_eq!(
            env.run(&as_id(&alice, &["get", "-V", &v, "-n", &n]))
                .ok()
                .stdout(),
            value,
            "{v}/{n}"
        );
    }
    // An accepted contribution keeps its rotation mark.
    assert_eq!(rotation(&env, &alice).len(), 2);
}

#[test]
fn a_format_1_vault_is_upgraded_by_its_first_write_and_only_that_vault() {
    let (env, alice, _) = format1_store();
    env.run_stdin(
        &as_id(
            &alice,
            &["update", "-V", "api-keys", "-n", "stripe-secret-key"],
        ),
        b"sk_live_fixture_0001-new",
    )
    .ok();
    assert!(manifest(&env, "api-keys").contains("\nformat = 2\n"));
    assert!(manifest(&env, "database").contains("\nformat = 1\n"));
    assert_eq!(
        env.run(&as_id(
            &alice,
            &["get", "-V", "api-keys", "-n", "stripe-secret-key"]
        ))
        .ok()
        .stdout(),
        "sk_live_fixture_0001-new"
    );
    assert_eq!(
        env.run(&as_id(
            &alice,
            &["get", "-V", "api-keys", "-n", "sendgrid-api-key"]
        ))
        .ok()
        .stdout(),
        "SG.fixture-0002"
    );
    assert_eq!(rotation(&env, &alice).len(), 2);
}

#[test]
fn a_keyless_write_to_a_format_1_vault_is_refused_until_a_recipient_upgrades_it() {
    let (env, alice, outsider) = format1_store();
    let before = env.snapshot();
    env.run_stdin(
        &as_id(
            &outsider,
            &["create", "-V", "database", "-n", "new-one", "--contribute"],
        ),
        b"x",
    )
    .fails("is in format 1")
    .stderr_has("coffer rekey --upgrade");
    assert_eq!(env.snapshot(), before);
    env.run(&as_id(&alice, &["rekey", "--upgrade"])).ok();
    env.run_stdin(
        &as_id(
            &outsider,
            &["create", "-V", "database", "-n", "new-one", "--contribute"],
        ),
        b"x",
    )
    .ok();
}

#[test]
fn removing_from_a_format_1_vault_upgrades_it_and_keeps_every_value() {
    let (env, alice, _) = format1_store();
    let files_before = secret_files(&env);
    env.run(&as_id(&alice, &["recipients", "remove", "bob", "--yes"]))
        .ok()
        .stderr_has("new vault key (epoch 2)");
    assert_eq!(secret_files(&env), files_before, "no secret file changed");
    let m = manifest(&env, "api-keys");
    assert!(
        m.contains("\nformat = 2\n") && m.contains("\nepoch = 2\n"),
        "{m}"
    );
    for (v, n, value) in fixture_values() {
        if CONTRIBUTIONS.contains(&(v.as_str(), n.as_str())) {
            continue;
        }
        assert_eq!(
            env.run(&as_id(&alice, &["get", "-V", &v, "-n", &n]))
                .ok()
                .stdout(),
            value
        );
    }
    // Every secret is now due, with carol's older mark kept.
    let rot = rotation(&env, &alice);
    let gh = rot.iter().find(|r| r.1 == "github-token").unwrap();
    assert_eq!(gh.2, ["bob", "carol"]);
    assert_eq!(gh.3, "2026-11-30T12:36:30.786Z");
    assert_eq!(rot.len(), 6);
}

/// Decrypts `file` with the `age` CLI and identity file `id`.
fn age_decrypt(env: &TestEnv, id: &Path, file: &Path) -> std::process::Output {
    tool(
        env,
        "age",
        &["-d", "-i", id.to_str().unwrap(), file.to_str().unwrap()],
    )
}

#[test]
fn a_value_written_after_a_removal_does_not_open_with_the_removed_members_keys() {
    if !have_tool("age") {
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "old-secret", "value-before");
    let bob = env.add_member("bob");
    let dir = env.store().join("api-keys");
    // Bob keeps the vault key he was given (and his own key).
    let kept = age_decrypt(&env, &bob, &dir.join("vault-key.age"));
    assert!(kept.status.success());
    let kept_path = env.dir.path().join("bob-kept-vault-key.txt");
    fs::write(&kept_path, &kept.stdout).unwrap();
    assert!(
        age_decrypt(&env, &kept_path, &dir.join("old-secret.age"))
            .status
            .success()
    );

    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    env.put("api-keys", "new-secret", "value-after");
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "old-secret"],
        b"value-changed-after",
    )
    .ok();
    for name in ["new-secret", "old-secret"] {
        let file = dir.join(format!("{name}.age"));
        for id in [&bob, &kept_path] {
            let out = age_decrypt(&env, id, &file);
            assert!(!out.status.success(), "{name} opened with {id:?}");
            assert!(!String::from_utf8_lossy(&out.stdout).contains("after"));
        }
    }
    // Nor does bob's key open the new keyring.
    assert!(
        !age_decrypt(&env, &bob, &dir.join("vault-key.age"))
            .status
            .success()
    );
    // A member's keyring opens every value with the plain age CLI, in two
    // commands, whatever its epoch.
    let alice = env.default_identity();
    let ring = age_decrypt(&env, &alice, &dir.join("vault-key.age"));
    assert!(ring.status.success());
    let ring_path = env.dir.path().join("vk.txt");
    fs::write(&ring_path, &ring.stdout).unwrap();
    let text = String::from_utf8(ring.stdout).unwrap();
    assert_eq!(text.matches("AGE-SECRET-KEY-1").count(), 2, "two epochs");
    assert!(text.contains("# epoch 2: ") && text.contains("# epoch 1: "));
    assert_eq!(
        age_decrypt(&env, &ring_path, &dir.join("new-secret.age")).stdout,
        b"value-after"
    );
    // The removed member's file from before is still at epoch 1 until
    // `rekey --reencrypt`, and then closed to bob's kept key too.
    env.put("api-keys", "third", "value-3");
    env.run(&["rekey", "--reencrypt"]).ok();
    let m = fs::read_to_string(dir.join("vault.toml")).unwrap();
    assert!(!m.contains("\nepoch = 1\n"), "{m}");
    assert_eq!(env.get("api-keys", "old-secret"), "value-changed-after");
    env.run(&["verify"]).ok();
}

#[test]
fn rekey_reencrypt_closes_the_current_files_to_an_old_key() {
    if !have_tool("age") {
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "kept-secret", "value-kept");
    let bob = env.add_member("bob");
    let dir = env.store().join("api-keys");
    let kept = age_decrypt(&env, &bob, &dir.join("vault-key.age"));
    let kept_path = env.dir.path().join("kept.txt");
    fs::write(&kept_path, &kept.stdout).unwrap();
    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    // Without re-encryption the unchanged file still opens with the old
    // key: the same bytes are in git history anyway.
    assert!(
        age_decrypt(&env, &kept_path, &dir.join("kept-secret.age"))
            .status
            .success()
    );
    env.run(&["rekey", "--reencrypt"])
        .ok()
        .stderr_has("1 secrets re-encrypted");
    assert!(
        !age_decrypt(&env, &kept_path, &dir.join("kept-secret.age"))
            .status
            .success()
    );
    assert_eq!(env.get("api-keys", "kept-secret"), "value-kept");
    // Still due for rotation: re-encrypting does not change the value.
    assert!(env.run(&["rotation"]).ok().stdout().contains("kept-secret"));
}

/// Builds, as an attacker with write access and no vault key would, a
/// replacement for `vault` from public information alone: a fresh vault
/// key wrapped to exactly the recipients in `coffer.toml`, and a manifest
/// MACed with it (coffer itself does the work, in a scratch store holding
/// a copy of the victim's `coffer.toml`). Copies it over the victim's.
fn replace_from_public_information(env: &TestEnv, vault: &str) {
    let scratch = env.dir.path().join("attacker");
    fs::create_dir_all(scratch.join("vaults")).unwrap();
    fs::copy(
        env.store().join("coffer.toml"),
        scratch.join("vaults/coffer.toml"),
    )
    .unwrap();
    let mallory = env.dir.path().join("mallory.txt");
    env.identity_file(&mallory, 0o600);
    env.run_with(
        &[
            "vault",
            "create",
            vault,
            "--yes",
            "-i",
            mallory.to_str().unwrap(),
        ],
        |c| {
            c.current_dir(&scratch);
        },
    )
    .ok();
    let target = env.store().join(vault);
    fs::remove_dir_all(&target).unwrap();
    copy_dir(&scratch.join("vaults").join(vault), &target);
}

#[test]
fn a_vault_replaced_from_public_information_is_refused_on_a_machine_that_had_seen_it() {
    let env = TestEnv::new();
    env.init(&["api-keys", "database"]);
    env.put("api-keys", "stripe-key", "value-one");
    assert_eq!(env.get("api-keys", "stripe-key"), "value-one");
    replace_from_public_information(&env, "api-keys");
    // verify with the key passes on the replacement itself: it is well
    // formed and encrypted to exactly the right people...
    let before = env.snapshot();
    // ...but this machine saw another key, which the new keyring lacks.
    for args in [&["verify"][..], &["export", "-V", "api-keys"]] {
        let r = env.run(args);
        assert_eq!(r.code(), 1, "{args:?}: {}", r.stderr());
        let out = r.stdout() + &r.stderr();
        assert!(out.contains("was replaced"), "{args:?}: {out}");
    }
    env.run_stdin(&["create", "-V", "api-keys", "-n", "new-one"], b"secret")
        .fails("vault \"api-keys\" was replaced")
        .stderr_has("(was SHA256:")
        .stderr_has("coffer vault trust api-keys");
    // The other vault is untouched and still works.
    env.put("database", "db-password", "v");
    // Nothing was written to the replaced vault.
    let after: Vec<_> = env
        .snapshot()
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains("api-keys"))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(p, _)| p.to_string_lossy().contains("api-keys"))
        .collect();
    assert_eq!(after, before);
    // A new vault is not vouched for by a vault that breaks continuity.
    env.run(&["vault", "create", "third"])
        .fails("without confirmation")
        .stderr_has("api-keys was replaced");
    // Accepting needs a confirmation; then it is trusted.
    env.run(&["vault", "trust", "api-keys"])
        .fails("without confirmation")
        .stderr_has("last seen:");
    env.run(&["vault", "trust", "api-keys", "--yes"]).ok();
    env.run_stdin(&["create", "-V", "api-keys", "-n", "new-one"], b"secret")
        .ok();
}

#[test]
fn a_vault_rebuilt_by_a_removed_member_from_their_old_key_is_refused() {
    if !have_tool("age") {
        return;
    }
    let env = TestEnv::new();
    let alice_pub = env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "value-one");
    let bob = env.add_member("bob");
    let dir = env.store().join("api-keys");
    // Bob keeps the keyring and the manifest as they were before removal.
    let kept = age_decrypt(&env, &bob, &dir.join("vault-key.age"));
    assert!(kept.status.success());
    let kept_path = env.dir.path().join("kept.txt");
    fs::write(&kept_path, &kept.stdout).unwrap();
    let old_manifest = fs::read(dir.join("vault.toml")).unwrap();

    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    env.put("api-keys", "after-removal", "new-value");
    // Bob rebuilds the vault from his old key, wrapped to alice only.
    let forged = tool(
        &env,
        "age",
        &["-e", "-a", "-r", &alice_pub, kept_path.to_str().unwrap()],
    );
    assert!(forged.status.success());
    fs::write(dir.join("vault-key.age"), &forged.stdout).unwrap();
    fs::write(dir.join("vault.toml"), &old_manifest).unwrap();

    env.run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("was replaced");
    env.run_stdin(&["create", "-V", "api-keys", "-n", "next"], b"for bob?")
        .fails("was replaced");
    let r = env.run(&["verify"]);
    assert_eq!(r.code(), 1);
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

fn commit_all(env: &TestEnv, message: &str) {
    git(env, &["add", "-A"]);
    git(env, &["commit", "-qm", message]);
}

#[test]
fn verify_base_passes_a_removal_and_lists_new_vaults() {
    if !have_tool("git") {
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v");
    env.add_member("bob");
    git(&env, &["init", "-q"]);
    commit_all(&env, "base");
    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    env.run(&["vault", "create", "database"]).ok();
    commit_all(&env, "remove bob, add a vault");
    env.run(&["verify", "--base", "HEAD~1"])
        .ok()
        .stderr_has("api-keys: keyring at HEAD (epoch 2) carries the vault key at HEAD~1")
        .stderr_has("database: new since HEAD~1: vault key SHA256:")
        .stderr_has("  alice SHA256:");
}

#[test]
fn verify_base_fails_a_vault_replaced_without_its_key() {
    if !have_tool("git") || !have_tool("age") {
        return;
    }
    let env = TestEnv::new();
    let alice_pub = env.init(&["api-keys", "database"]);
    env.put("api-keys", "stripe-key", "v");
    let bob = env.add_member("bob");
    let dir = env.store().join("api-keys");
    let kept = age_decrypt(&env, &bob, &dir.join("vault-key.age"));
    let kept_path = env.dir.path().join("kept.txt");
    fs::write(&kept_path, &kept.stdout).unwrap();
    let old_manifest = fs::read(dir.join("vault.toml")).unwrap();
    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    git(&env, &["init", "-q"]);
    commit_all(&env, "base");

    // A removed member's rebuild from the old key, in a pull request.
    let forged = tool(
        &env,
        "age",
        &["-e", "-a", "-r", &alice_pub, kept_path.to_str().unwrap()],
    );
    fs::write(dir.join("vault-key.age"), &forged.stdout).unwrap();
    fs::write(dir.join("vault.toml"), &old_manifest).unwrap();
    // And a replacement of the other vault from public information.
    replace_from_public_information(&env, "database");
    commit_all(&env, "pull request");
    // CI is a fresh machine: no trust record to catch it.
    let ci_state = env.dir.path().join("ci-state");
    let r = env.run_with(&["verify", "--base", "HEAD~1"], |c| {
        c.env("XDG_STATE_HOME", &ci_state);
    });
    assert_eq!(r.code(), 1, "{}", r.stderr());
    let err = r.stderr();
    assert!(
        err.contains("api-keys: REPLACED: the keyring at HEAD (SHA256:"),
        "{err}"
    );
    assert!(err.contains("database: REPLACED"), "{err}");
    assert!(
        err.contains("the store at HEAD breaks continuity with HEAD~1"),
        "{err}"
    );
}

#[test]
fn a_branch_still_in_format_1_merges_with_one_upgraded_entry_by_entry() {
    if !have_tool("git") {
        return;
    }
    let (env, alice, _) = format1_store();
    // alice's key is the default identity, as git's merge driver finds it.
    // (`tool` runs git with HOME only, so ~/.config too.)
    for default in [
        env.default_identity(),
        env.home.join(".config/coffer/identity.txt"),
    ] {
        fs::create_dir_all(default.parent().unwrap()).unwrap();
        fs::copy(&alice, &default).unwrap();
        fs::set_permissions(&default, fs::Permissions::from_mode(0o600)).unwrap();
    }
    git(&env, &["init", "-q", "-b", "main"]);
    env.run(&["git", "setup"]).ok();
    commit_all(&env, "format-1 store");
    // feature: a format-1 coffer deletes a secret (entry and file).
    git(&env, &["checkout", "-qb", "feature"]);
    let m = env.store().join("api-keys/vault.toml");
    let text = fs::read_to_string(&m).unwrap();
    let start = text.find("\n[secrets.stripe-secret-key]").unwrap();
    let end = text[start + 1..].find("\n[secrets.").unwrap() + start + 1;
    fs::write(&m, format!("{}{}", &text[..start], &text[end..])).unwrap();
    fs::remove_file(env.store().join("api-keys/stripe-secret-key.age")).unwrap();
    commit_all(&env, "delete, format 1");
    // main: a write with the key upgrades the vault to format 2.
    git(&env, &["checkout", "-q", "main"]);
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "sendgrid-api-key"],
        b"SG.new",
    )
    .ok();
    commit_all(&env, "update, format 2");
    let out = tool(&env, "git", &["merge", "--no-edit", "feature"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = manifest(&env, "api-keys");
    assert!(merged.contains("\nformat = 2\n"), "{merged}");
    assert!(!merged.contains("stripe-secret-key"), "{merged}");
    assert_eq!(env.get("api-keys", "sendgrid-api-key"), "SG.new");
    // Only the pending contributions remain to review.
    let r = env.run(&["verify", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    for v in report["vaults"].as_array().unwrap() {
        for p in v["problems"].as_array().unwrap() {
            assert_eq!(p["kind"], "unverified", "{report}");
        }
    }
}

/// A store in a git repository with a sealed secret, a rotation-due one
/// (bob removed) and a bound contribution, all committed.
fn store_with_contribution_history() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sealed-stripe");
    env.put("api-keys", "sendgrid-key", "sealed-sendgrid");
    env.add_member("bob");
    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "stripe-key"],
        b"rotated",
    )
    .ok();
    git(&env, &["init", "-q"]);
    commit_all(&env, "store");
    env
}

/// Edits the entry of `name` in api-keys' manifest with `f`.
fn edit_entry(env: &TestEnv, name: &str, f: impl Fn(&str) -> String) {
    let path = env.store().join("api-keys/vault.toml");
    let text = fs::read_to_string(&path).unwrap();
    let start = text.find(&format!("\n[secrets.{name}]")).unwrap() + 1;
    let end = text[start..]
        .find("\n\n[secrets.")
        .map_or(text.len(), |e| start + e + 1);
    let new = f(&text[start..end]);
    fs::write(&path, format!("{}{}{}", &text[..start], new, &text[end..])).unwrap();
}

#[test]
fn a_keyless_writer_cannot_move_a_sealed_value_to_another_name_through_acceptance() {
    if !have_tool("git") {
        return;
    }
    let env = store_with_contribution_history();
    let dir = env.store().join("api-keys");
    // Copy sealed stripe-key's file and entry (MAC dropped) under a new name.
    fs::copy(dir.join("stripe-key.age"), dir.join("stolen-copy.age")).unwrap();
    let path = dir.join("vault.toml");
    let text = fs::read_to_string(&path).unwrap();
    let start = text.find("\n[secrets.stripe-key]").unwrap() + 1;
    let entry = &text[start..];
    let entry = &entry[..entry.find("\n\n").map_or(entry.len(), |e| e + 1)];
    let copied: String = entry
        .replace("[secrets.stripe-key]", "[secrets.stolen-copy]")
        .lines()
        .filter(|l| !l.starts_with("mac = "))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(
        &path,
        format!(
            "{}\n{copied}",
            text.trim_end_matches('\n').to_owned() + "\n"
        ),
    )
    .unwrap();
    // And a real contribution moved to another name.
    env.run_stdin(
        &[
            "create",
            "-V",
            "api-keys",
            "-n",
            "real-one",
            "--contribute",
            "-i",
            "/dev/null",
        ],
        b"contributed",
    )
    .ok();
    let snap = env.snapshot();
    env.run(&["verify", "--accept", "--yes"])
        .fails("contribution \"stolen-copy\" of vault \"api-keys\" is not bound to that name")
        .stderr_has("stolen-copy (NOT BOUND to this name");
    assert_eq!(env.snapshot(), snap);
    // A contribution's file moved under another name is refused too.
    fs::remove_file(dir.join("stolen-copy.age")).unwrap();
    env.run(&["delete", "-V", "api-keys", "-n", "stolen-copy", "--yes"])
        .ok();
    fs::copy(dir.join("real-one.age"), dir.join("sendgrid-key.age")).unwrap();
    edit_entry(&env, "sendgrid-key", |e| {
        let digest = format!(
            "sha256:{}",
            sha256_hex(&fs::read(dir.join("sendgrid-key.age")).unwrap())
        );
        e.lines()
            .filter(|l| !l.starts_with("mac = "))
            .map(|l| {
                if l.starts_with("digest = ") {
                    format!("digest = \"{digest}\"\n")
                } else if l.starts_with("epoch = ") {
                    "epoch = 2\n".to_owned() // the key real-one is encrypted to
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    });
    env.run(&["verify", "--accept", "--yes"])
        .fails("its plaintext says it is api-keys/real-one")
        .stderr_has("replaces the sealed value committed at HEAD");
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// What a keyless writer does to make a rotation-due secret stop being due:
/// replace sendgrid-key (due since bob's removal) with a contribution, and
/// strip the rotation mark from its entry.
fn contribute_and_strip_the_rotation_mark(env: &TestEnv) {
    env.run_stdin(
        &[
            "update",
            "-V",
            "api-keys",
            "-n",
            "sendgrid-key",
            "--contribute",
            "-i",
            "/dev/null",
        ],
        b"bob-knows-this",
    )
    .ok();
    edit_entry(env, "sendgrid-key", |e| {
        e.lines()
            .filter(|l| !l.starts_with("rotate-"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
}

#[test]
fn a_keyless_writer_cannot_drop_a_rotation_mark_through_acceptance() {
    if !have_tool("git") {
        return;
    }
    let env = store_with_contribution_history();
    // sendgrid-key is due (bob removed). A keyless writer replaces it with a
    // contribution and strips the mark.
    contribute_and_strip_the_rotation_mark(&env);
    assert!(
        !fs::read_to_string(env.store().join("api-keys/vault.toml"))
            .unwrap()
            .contains("rotate-since")
    );
    env.run(&["verify", "--accept", "--yes"])
        .ok()
        .stderr_has("sendgrid-key (replaces the sealed value committed at HEAD; drops or changes the rotation mark committed at HEAD");
    let rot = env.run(&["rotation"]).ok().stdout();
    assert!(rot.contains("sendgrid-key") && rot.contains("bob"), "{rot}");
    assert_eq!(env.get("api-keys", "sendgrid-key"), "bob-knows-this");
}

#[test]
fn accept_show_values_shows_each_value_on_a_terminal_and_only_there() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.run_stdin(
        &[
            "create",
            "-V",
            "api-keys",
            "-n",
            "new-token",
            "--contribute",
            "-i",
            "/dev/null",
        ],
        b"contributed-value-42",
    )
    .ok();
    let r = env
        .run(&["verify", "--accept", "--show-values", "--yes"])
        .fails("--show-values shows values on a terminal only");
    assert!(!r.stderr().contains("contributed-value-42"));
    let mut c = env.cmd();
    c.args(["verify", "--accept", "--show-values"]);
    let (screen, code) = crate::common::run_in_pty(
        c,
        Some("Accept them as values of vault api-keys? [y/N] "),
        "y\n",
    );
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("value: contributed-value-42"), "{screen}");
    assert_eq!(env.get("api-keys", "new-token"), "contributed-value-42");
}

#[test]
fn verify_base_fails_a_rotation_mark_dropped_without_the_key() {
    if !have_tool("git") {
        return;
    }
    let env = store_with_contribution_history();
    contribute_and_strip_the_rotation_mark(&env);
    commit_all(&env, "pull request");
    env.run(&["verify", "--base", "HEAD~1"])
        .fails("the store at HEAD breaks continuity with HEAD~1")
        .stderr_has(
            "api-keys: rotation marks at HEAD~1 dropped without the vault key: sendgrid-key",
        );
    // A key holder's update clears a mark legitimately.
    git(&env, &["reset", "-q", "--hard", "HEAD~1"]);
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "sendgrid-key"],
        b"new-value",
    )
    .ok();
    commit_all(&env, "rotated");
    env.run(&["verify", "--base", "HEAD~1"]).ok();
}

/// The trust record files of `env` (default state directory).
fn trust_records(env: &TestEnv) -> Vec<PathBuf> {
    let dir = env.home.join(".local/state/coffer/trust");
    match fs::read_dir(&dir) {
        Ok(d) => d.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn the_trust_record_is_private_follows_rotations_and_a_damaged_one_is_an_error() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v");
    let records = trust_records(&env);
    assert_eq!(records.len(), 1, "one file per store");
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&records[0]), 0o600);
    assert_eq!(mode(records[0].parent().unwrap()), 0o700);
    let first = fs::read_to_string(&records[0]).unwrap();
    assert!(first.contains("api-keys age1"), "{first}");
    // A removal is a rotation, not a replacement: followed, and recorded.
    env.add_member("bob");
    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    assert_eq!(env.get("api-keys", "stripe-key"), "v");
    let second = fs::read_to_string(&records[0]).unwrap();
    assert_ne!(first, second, "the record advanced to the new key");
    // XDG_STATE_HOME moves it.
    let state = env.dir.path().join("state");
    env.run_with(&["get", "-V", "api-keys", "-n", "stripe-key"], |c| {
        c.env("XDG_STATE_HOME", &state);
    })
    .ok();
    assert_eq!(fs::read_dir(state.join("coffer/trust")).unwrap().count(), 1);
    // A damaged record is an error, not a reason to trust anew.
    fs::write(&records[0], "api-keys not-a-key\n").unwrap();
    env.run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("does not parse (line 1)")
        .stderr_has("move it aside");
}

#[test]
fn a_vault_that_lists_my_key_but_does_not_open_stops_vault_create() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let (_, mallory_key) = {
        let p = env.dir.path().join("mallory.txt");
        let k = env.identity_file(&p, 0o600);
        (p, k)
    };
    // A keyless writer adds mallory to coffer.toml and spoils the one vault
    // that would refuse to vouch for her: its keyring is replaced by one
    // nobody here can open.
    let config = env.store().join("coffer.toml");
    let text = fs::read_to_string(&config).unwrap();
    fs::write(&config, format!("{text}mallory = \"{mallory_key}\"\n")).unwrap();
    let other = env.dir.path().join("other.txt");
    let other_key = env.identity_file(&other, 0o600);
    let junk = tool(
        &env,
        "age",
        &["-e", "-a", "-r", &other_key, other.to_str().unwrap()],
    );
    if !junk.status.success() {
        assert!(!have_tool("age"));
        return;
    }
    fs::write(env.store().join("api-keys/vault-key.age"), &junk.stdout).unwrap();
    let r = env
        .run(&["vault", "create", "new-vault"])
        .fails("without confirmation");
    let err = r.stderr();
    assert!(
        err.contains("vault api-keys lists one of your keys but does not open"),
        "{err}"
    );
    assert!(err.contains("mallory"), "{err}");
    assert!(!env.store().join("new-vault").exists());
}
