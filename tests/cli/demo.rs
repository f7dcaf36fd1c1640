//! coffer's published demo identity opens the sample store and nothing
//! else: it never becomes a real store's recipient, however it reaches
//! coffer (the README's try-it line, a shell that kept it exported).

use std::path::Path;

use crate::common::TestEnv;

fn demo_identity() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("demo/demo-identity.txt"))
        .unwrap()
}

fn demo_public() -> String {
    demo_identity()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned()
}

#[test]
fn init_with_the_demo_identity_in_the_environment_refuses_instead_of_making_it_a_recipient() {
    let env = TestEnv::new();
    let r = env.run_with(&["init"], |c| {
        c.env("COFFER_AGE_KEY", demo_identity());
    });
    assert_eq!(r.code(), 1, "{}", r.stderr());
    r.transcript("demo/init-with-the-demo-identity");
    assert!(!env.store().exists(), "no store may be created");
    assert!(
        !env.default_identity().exists(),
        "no identity may be created instead"
    );
}

#[test]
fn a_real_store_sets_the_demo_identity_aside_and_never_adds_the_demo_key() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_real_value_1");
    // The user's own identity still works beside it, with a warning.
    let r = env
        .run_with(&["get", "-V", "api-keys", "-n", "stripe-key"], |c| {
            c.env("COFFER_AGE_KEY", demo_identity());
        })
        .ok();
    assert_eq!(r.stdout(), "sk_live_real_value_1");
    assert!(
        r.stderr().contains("published demo identity"),
        "{}",
        r.stderr()
    );
    // The demo key cannot be added as a recipient...
    let before = env.snapshot();
    env.run(&["recipients", "add", "demo", &demo_public()])
        .fails("published demo key")
        .transcript("demo/recipients-add-the-demo-key");
    assert_eq!(env.snapshot(), before);
    // ...nor slip in through a hand-edited coffer.toml into a new vault.
    let config = env.store().join("coffer.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[recipients.demo]\nkey = \"{}\"\n",
        demo_public()
    ));
    std::fs::write(&config, text).unwrap();
    let before = env.snapshot();
    env.run(&["vault", "create", "more-keys", "--yes"])
        .fails("published demo key")
        .transcript("demo/vault-create-for-the-demo-key");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn the_readme_try_it_line_leaves_nothing_in_the_shell() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.contains("demo/demo-identity.txt") && l.contains("cargo run"))
        .expect("the README has a try-it line");
    let env = TestEnv::new();
    let script = format!(
        "cd '{}' && {} ; printf '[%s]' \"${{COFFER_AGE_KEY:-unset}}\"",
        env!("CARGO_MANIFEST_DIR"),
        line.replace("cargo run -q --", env!("CARGO_BIN_EXE_coffer"))
    );
    let out = std::process::Command::new("bash")
        .args(["-c", &script])
        .env_clear()
        .env("PATH", crate::common::PATH)
        .env("HOME", &env.home)
        .env("XDG_CONFIG_HOME", &env.config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("sk_test_DEMO"),
        "the line must work: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.ends_with("[unset]"),
        "the demo key stayed in the shell: {stdout}"
    );
}

/// However the demo key gets into a vault's list, the vault key is never
/// encrypted to it beside a real recipient: here, a hand-edited
/// `coffer.toml` that someone with the key approves.
#[test]
fn approving_a_hand_added_demo_key_is_refused_where_vault_keys_are_encrypted() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_real_value_2");
    let config = env.store().join("coffer.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[recipients.demo]\nkey = \"{}\"\n",
        demo_public()
    ));
    std::fs::write(&config, text).unwrap();
    let before = env.snapshot();
    env.run(&["recipients", "approve", "--yes"])
        .fails("published demo key")
        .transcript("demo/approve-a-hand-added-demo-key");
    assert_eq!(env.snapshot(), before);
}
