//! Every way a stored secret can be tampered with is caught before its
//! value is printed.

use std::fs;

use crate::common::{TestEnv, Transcript};

fn store_with_two() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "SENTINEL-STRIPE");
    env.put("api-keys", "sendgrid-key", "SENTINEL-SENDGRID");
    env
}

#[test]
fn swapped_secret_files_are_caught() {
    let env = store_with_two();
    let dir = env.store().join("api-keys");
    let a = fs::read(dir.join("stripe-key.age")).unwrap();
    let b = fs::read(dir.join("sendgrid-key.age")).unwrap();
    fs::write(dir.join("stripe-key.age"), &b).unwrap();
    fs::write(dir.join("sendgrid-key.age"), &a).unwrap();
    let mut t = Transcript::new("integrity/swapped_secret_files_are_caught");
    for name in ["stripe-key", "sendgrid-key"] {
        let r = env
            .run(&["get", "-V", "api-keys", "-n", name])
            .fails(&format!(
                "secret \"{name}\" in vault \"api-keys\" failed verification"
            ));
        let r = t.record(name, r);
        assert!(r.stderr().contains("does not match the manifest's digest"));
        assert!(r.stdout().is_empty() && !r.stderr().contains("SENTINEL"));
    }
    t.check();
}

#[test]
fn a_file_rolled_back_on_its_own_is_caught() {
    let env = store_with_two();
    let dir = env.store().join("api-keys");
    let old = fs::read(dir.join("stripe-key.age")).unwrap();
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "stripe-key"],
        b"SENTINEL-NEW",
    )
    .ok();
    fs::write(dir.join("stripe-key.age"), old).unwrap();
    let r = env
        .run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("failed verification")
        .transcript("integrity/failed-verification");
    assert!(r.stdout().is_empty());
}

#[test]
fn a_forged_manifest_entry_is_caught() {
    let env = store_with_two();
    let dir = env.store().join("api-keys");
    // Someone without the vault key replaces the file with one encrypted to
    // the (public) vault key, and fixes the digest in the manifest.
    let manifest = fs::read_to_string(dir.join("vault.toml")).unwrap();
    let public = manifest
        .lines()
        .find_map(|l| l.strip_prefix("public-key = \""))
        .unwrap()
        .trim_end_matches('"');
    let recipient: age::x25519::Recipient = public.parse().unwrap();
    let forged = age::encrypt_and_armor(&recipient, b"attacker-value").unwrap();
    fs::write(dir.join("stripe-key.age"), &forged).unwrap();
    use sha2::Digest;
    let digest = format!("{:x}", sha2::Sha256::digest(forged.as_bytes()));
    let entry_start = manifest.find("[secrets.stripe-key]").unwrap();
    let line_start = entry_start + manifest[entry_start..].find("digest = ").unwrap();
    let line_end = line_start + manifest[line_start..].find('\n').unwrap();
    let forged_manifest = format!(
        "{}digest = \"sha256:{digest}\"{}",
        &manifest[..line_start],
        &manifest[line_end..]
    );
    fs::write(dir.join("vault.toml"), forged_manifest).unwrap();
    let r = env
        .run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("its manifest entry does not verify")
        .transcript("integrity/its-manifest-entry-does-not-verify");
    assert!(!r.stdout().contains("attacker"));
    // The other secret still reads.
    assert_eq!(env.get("api-keys", "sendgrid-key"), "SENTINEL-SENDGRID");
}

#[test]
fn a_deleted_secret_file_is_reported_missing() {
    let env = store_with_two();
    fs::remove_file(env.store().join("api-keys/stripe-key.age")).unwrap();
    env.run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("its file is missing")
        .transcript("integrity/its-file-is-missing");
}

#[test]
fn a_symlinked_secret_file_is_refused() {
    let env = store_with_two();
    let dir = env.store().join("api-keys");
    fs::rename(
        dir.join("stripe-key.age"),
        env.dir.path().join("elsewhere.age"),
    )
    .unwrap();
    std::os::unix::fs::symlink(
        env.dir.path().join("elsewhere.age"),
        dir.join("stripe-key.age"),
    )
    .unwrap();
    env.run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("symbolic link")
        .transcript("integrity/a-symlinked-secret-file");
}

#[test]
fn a_damaged_manifest_is_a_clear_error() {
    let env = store_with_two();
    let path = env.store().join("api-keys/vault.toml");
    let text = fs::read_to_string(&path).unwrap();
    fs::write(&path, &text[..text.len() / 2]).unwrap();
    env.run(&["list", "-V", "api-keys"])
        .fails("vault.toml")
        .stderr_has("restore it from git")
        .transcript("integrity/a-damaged-manifest");
    fs::write(&path, text.replace("format = 2", "format = 9")).unwrap();
    env.run(&["list", "-V", "api-keys"])
        .fails("format 9 is not supported")
        .transcript("integrity/format-9-is-not-supported");
}

#[test]
fn recipients_edited_without_the_vault_key_block_encryption() {
    let env = store_with_two();
    let path = env.store().join("api-keys/vault.toml");
    let text = fs::read_to_string(&path).unwrap();
    let mallory = age::x25519::Identity::generate().to_public().to_string();
    let edited = text.replace(
        "[recipients]\n",
        &format!("[recipients]\nmallory = \"{mallory}\"\n"),
    );
    fs::write(&path, edited).unwrap();
    let before = env.snapshot();
    let fingerprint = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(mallory.as_bytes());
        d[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    env.run_stdin(&["create", "-V", "api-keys", "-n", "new-key"], b"v")
        .fails("vault \"api-keys\" has recipient changes that no one holding its key has approved (its vault.toml was edited without the key)")
        .stderr_has(&format!("+ mallory (added, SHA256:{fingerprint})"))
        .stderr_has("coffer recipients approve --vault api-keys")
.transcript("integrity/vault-api-keys-has-recipient-changes");
    assert_eq!(env.snapshot(), before);
    // Reading is still possible: each entry has its own MAC.
    assert_eq!(env.get("api-keys", "stripe-key"), "SENTINEL-STRIPE");
}

#[test]
fn a_replaced_vault_key_is_caught() {
    let env = store_with_two();
    let dir = env.store().join("api-keys");
    // A vault key encrypted to alice, but not the one the manifest names.
    let alice: age::x25519::Recipient = fs::read_to_string(env.store().join("coffer.toml"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("alice = \""))
        .unwrap()
        .trim_end_matches('"')
        .parse()
        .unwrap();
    let other = age::x25519::Identity::generate();
    use age::secrecy::ExposeSecret;
    let ct = age::encrypt_and_armor(&alice, other.to_string().expose_secret().as_bytes()).unwrap();
    fs::write(dir.join("vault-key.age"), ct).unwrap();
    env.run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("does not match the public key in its manifest")
        .transcript("integrity/does-not-match-the-public-key-in-its");
}

/// `get` may read the manifest's header and its own entry only (so that it
/// costs the same in a vault of ten thousand secrets): damage elsewhere in
/// the manifest cannot change the value it returns (it returns the right
/// one or refuses), and every other reader (`list`, `verify`, any write)
/// refuses the manifest.
#[test]
fn get_reads_its_own_entry_and_every_other_reader_refuses_damage_elsewhere() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_fast_reader");
    env.put("api-keys", "other-key", "other-value");
    let path = env.store().join("api-keys/vault.toml");
    let good = fs::read_to_string(&path).unwrap();
    let other_table = "[secrets.other-key]\n";
    assert!(good.contains(other_table));
    for (case, damaged) in [
        (
            "an unknown field in another entry",
            good.replace(other_table, &format!("{other_table}colour = \"red\"\n")),
        ),
        (
            "another entry's table twice",
            format!("{good}{other_table}created = \"2026-01-01T00:00:00.000Z\"\n"),
        ),
    ] {
        fs::write(&path, &damaged).unwrap();
        // The right value, or a refusal: never anything else.
        let r = env.run(&["get", "-V", "api-keys", "-n", "stripe-key"]);
        if r.code() == 0 {
            assert_eq!(r.stdout(), "sk_live_fast_reader", "{case}");
        } else {
            assert!(r.stderr().contains("vault.toml"), "{case}: {}", r.stderr());
            assert_eq!(r.stdout(), "", "{case}");
        }
        env.run(&["get", "-V", "api-keys", "-n", "other-key"])
            .fails("vault.toml");
        env.run(&["list", "-V", "api-keys"]).fails("vault.toml");
        let r = env.run(&["verify"]);
        assert_eq!(r.code(), 1, "{case}: verify must fail");
        let before = env.snapshot();
        env.run_stdin(
            &["update", "-V", "api-keys", "-n", "stripe-key"],
            b"new-value",
        )
        .fails("vault.toml");
        assert_eq!(env.snapshot(), before, "{case}: a write must refuse it");
    }
    fs::write(&path, good).unwrap();
    env.run(&["verify"]).ok();
}
