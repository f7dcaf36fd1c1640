use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::{TestEnv, have_tool, tool};

#[test]
fn keygen_writes_a_private_identity_and_prints_its_recipient() {
    let env = TestEnv::new();
    let r = env.run(&["keygen"]).ok();
    let recipient = r.stdout();
    assert!(
        recipient.starts_with("age1") && recipient.ends_with('\n'),
        "{recipient:?}"
    );
    let path = env.default_identity();
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.contains(&format!("# public key: {}", recipient.trim())));
    assert!(text.contains("AGE-SECRET-KEY-1"));
    assert!(
        !r.stderr().contains("AGE-SECRET-KEY"),
        "the identity is never printed"
    );
}

#[test]
fn keygen_never_overwrites_an_identity() {
    let env = TestEnv::new();
    env.run(&["keygen", "-o", "me.txt"]).ok();
    let before = fs::read(env.work.join("me.txt")).unwrap();
    env.run(&["keygen", "-o", "me.txt"])
        .fails("already exists")
        .stderr_has("hint: choose another path")
        .transcript("keys/keygen-never-overwrites-an-identity");
    assert_eq!(fs::read(env.work.join("me.txt")).unwrap(), before);
}

#[test]
fn keygen_falls_back_to_home_config_without_xdg() {
    let env = TestEnv::new();
    env.run_with(&["keygen"], |c| {
        c.env_remove("XDG_CONFIG_HOME");
    })
    .ok();
    assert!(env.home.join(".config/coffer/identity.txt").is_file());
}

#[test]
fn init_creates_an_identity_and_names_the_user_by_login() {
    let env = TestEnv::new();
    env.run(&["init"]).ok().stderr_has("Created your identity");
    let config = fs::read_to_string(env.store().join("coffer.toml")).unwrap();
    let public = env.default_public_key();
    assert!(
        config.contains(&format!("alice = \"{public}\"")),
        "{config}"
    );
    assert!(env.store().join(".gitignore").is_file());
}

#[test]
fn init_uses_an_existing_identity_and_a_given_name() {
    let env = TestEnv::new();
    let key = env.dir.path().join("k.txt");
    let public = env.identity_file(&key, 0o600);
    env.run(&[
        "init",
        "--name",
        "bob.smith",
        "--identity",
        key.to_str().unwrap(),
    ])
    .ok();
    let config = fs::read_to_string(env.store().join("coffer.toml")).unwrap();
    assert!(
        config.contains(&format!("\"bob.smith\" = \"{public}\"")),
        "{config}"
    );
    assert!(!env.default_identity().exists(), "no identity generated");
}

#[test]
fn init_refuses_an_existing_store() {
    let env = TestEnv::new();
    env.run(&["init"]).ok();
    let before = env.snapshot();
    env.run(&["init"])
        .fails("already exists")
        .transcript("keys/init-refuses-an-existing-store");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn init_refuses_an_invalid_name() {
    let env = TestEnv::new();
    env.run(&["init", "--name", "bad name"])
        .fails("invalid recipient name")
        .stderr_has("--name")
        .transcript("keys/invalid-recipient-name");
    assert!(!env.store().exists());
}

#[test]
fn init_honours_store_flag() {
    let env = TestEnv::new();
    env.run(&["init", "--store", "secrets"]).ok();
    assert!(env.work.join("secrets/coffer.toml").is_file());
    env.run(&["--store", "secrets", "vault", "create", "app"])
        .ok();
    assert!(env.work.join("secrets/app/vault.toml").is_file());
}

#[test]
fn world_readable_identity_is_refused() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v1");
    fs::set_permissions(env.default_identity(), fs::Permissions::from_mode(0o644)).unwrap();
    env.run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("accessible by other users (mode 0644)")
        .stderr_has("chmod 600")
        .transcript("keys/accessible-by-other-users-mode-0644");
}

#[test]
fn missing_key_lists_every_place_tried() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v1");
    fs::remove_file(env.default_identity()).unwrap();
    let r = env
        .run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("no identity found")
        .transcript("keys/no-identity-found");
    let err = r.stderr();
    for place in [
        "COFFER_AGE_KEY (not set)",
        "COFFER_IDENTITY (not set)",
        "identity.txt (not found)",
        "id_ed25519 (not found)",
        "id_rsa (not found)",
    ] {
        assert!(err.contains(place), "{place} missing from:\n{err}");
    }
}

#[test]
fn wrong_key_says_no_identity_can_open_the_vault() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v1");
    let other = env.dir.path().join("other.txt");
    env.identity_file(&other, 0o600);
    let r = env
        .run(&[
            "get",
            "-V",
            "api-keys",
            "-n",
            "stripe-key",
            "-i",
            other.to_str().unwrap(),
        ])
        .fails("no identity can open vault \"api-keys\"")
        .transcript("keys/no-identity-can-open-vault-api-keys");
    assert!(r.stderr().contains("(no match)"));
    assert!(r.stdout().is_empty());
}

#[test]
fn identity_flag_works_before_or_after_the_subcommand() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v1");
    let id = env.default_identity();
    let moved = env.dir.path().join("moved.txt");
    fs::rename(&id, &moved).unwrap();
    let m = moved.to_str().unwrap();
    assert_eq!(
        env.run(&["--identity", m, "get", "-V", "api-keys", "-n", "stripe-key"])
            .ok()
            .stdout(),
        "v1"
    );
    assert_eq!(
        env.run(&["get", "-V", "api-keys", "-n", "stripe-key", "-i", m])
            .ok()
            .stdout(),
        "v1"
    );
}

#[test]
fn identity_from_environment_variables() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v1");
    let text = fs::read_to_string(env.default_identity()).unwrap();
    let moved = env.dir.path().join("moved.txt");
    fs::rename(env.default_identity(), &moved).unwrap();
    let r = env.run_with(&["get", "-V", "api-keys", "-n", "stripe-key"], |c| {
        c.env("COFFER_AGE_KEY", &text);
    });
    assert_eq!(r.ok().stdout(), "v1");
    let r = env.run_with(&["get", "-V", "api-keys", "-n", "stripe-key"], |c| {
        c.env("COFFER_IDENTITY", &moved);
    });
    assert_eq!(r.ok().stdout(), "v1");
}

#[test]
fn malformed_coffer_age_key_names_the_line_but_not_the_content() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v1");
    let r = env.run_with(&["get", "-V", "api-keys", "-n", "stripe-key"], |c| {
        c.env(
            "COFFER_AGE_KEY",
            "# ci key\nAGE-SECRET-KEY-1SENTINELGARBAGE\n",
        );
    });
    let r = r
        .fails("COFFER_AGE_KEY: line 2 is not an age identity")
        .transcript("keys/coffer-age-key-line-2-is-not-an-age");
    assert!(!r.stderr().contains("SENTINEL"));
}

#[test]
fn explicit_identity_file_that_does_not_exist_is_an_error() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v1");
    env.run(&[
        "get",
        "-V",
        "api-keys",
        "-n",
        "stripe-key",
        "-i",
        "nope.txt",
    ])
    .fails("no such file")
    .transcript("keys/no-such-file");
    env.run_with(&["get", "-V", "api-keys", "-n", "stripe-key"], |c| {
        c.env("COFFER_IDENTITY", "/nonexistent/key.txt");
    })
    .fails("COFFER_IDENTITY=/nonexistent/key.txt: no such file")
    .transcript("keys/coffer-identity-nonexistent-key-txt-no");
}

#[test]
fn ssh_keys_in_home_are_used() {
    if !have_tool("ssh-keygen") {
        return;
    }
    let env = TestEnv::new();
    let ssh = env.home.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    let key = ssh.join("id_ed25519");
    let out = tool(
        &env,
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "alice@test",
            "-f",
            key.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    // init picks the SSH key up as alice's recipient.
    env.run(&["init"]).ok();
    let config = fs::read_to_string(env.store().join("coffer.toml")).unwrap();
    assert!(config.contains("alice = \"ssh-ed25519 "), "{config}");
    assert!(!config.contains("alice@test"), "comments are dropped");
    env.run(&["vault", "create", "api-keys"]).ok();
    env.put("api-keys", "stripe-key", "from-ssh");
    assert_eq!(env.get("api-keys", "stripe-key"), "from-ssh");
}

#[test]
fn a_broken_ssh_key_does_not_block_a_working_identity() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v1");
    let ssh = env.home.join(".ssh");
    fs::create_dir_all(&ssh).unwrap();
    fs::write(
        ssh.join("id_rsa"),
        "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    fs::set_permissions(ssh.join("id_rsa"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(ssh.join("id_ed25519"), "whatever").unwrap();
    fs::set_permissions(ssh.join("id_ed25519"), fs::Permissions::from_mode(0o644)).unwrap();
    let r = env.run(&["get", "-V", "api-keys", "-n", "stripe-key"]).ok();
    assert_eq!(r.stdout(), "v1");
    assert!(
        r.stderr().contains("warning: an identity file was skipped"),
        "{}",
        r.stderr()
    );
}
