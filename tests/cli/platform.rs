//! The platform's command lines work verbatim with `coffer` in place of
//! `tailor-sdk`, and one flag names a vault everywhere.

use crate::common::TestEnv;

#[test]
fn the_platforms_secret_command_lines_work_verbatim() {
    let env = TestEnv::new();
    env.init(&[]);
    env.run(&["secret", "vault", "create", "--name", "my-vault"])
        .ok()
        .stderr_has("Vault: my-vault created");
    env.run(&[
        "secret",
        "create",
        "--vault-name",
        "my-vault",
        "--name",
        "db-pass",
        "--value",
        "X",
    ])
    .ok()
    .stderr_has("Secret: db-pass created in vault: my-vault");
    env.run(&[
        "secret", "update", "-V", "my-vault", "-n", "db-pass", "-v", "Y",
    ])
    .ok()
    .stderr_has("Secret: db-pass updated in vault: my-vault");
    assert_eq!(env.get("my-vault", "db-pass"), "Y");
    // The same output, JSON included, as the top-level spelling.
    for (tree, top) in [
        (
            &["secret", "list", "--vault-name", "my-vault", "--json"][..],
            &["list", "-V", "my-vault", "--json"][..],
        ),
        (&["secret", "vault", "list", "-j"], &["vault", "list", "-j"]),
        (&["secret", "vault"], &["vault", "list"]),
        (&["secret"], &["vault", "list"]),
    ] {
        assert_eq!(
            env.run(tree).ok().stdout(),
            env.run(top).ok().stdout(),
            "{tree:?}"
        );
    }
    env.run(&[
        "secret",
        "delete",
        "--vault-name",
        "my-vault",
        "--name",
        "db-pass",
        "--yes",
    ])
    .ok()
    .stderr_has("Secret: db-pass deleted from vault: my-vault");
    env.run(&["secret", "vault", "delete", "--name", "my-vault", "--yes"])
        .ok()
        .stderr_has("Vault: my-vault deleted");
}

#[test]
fn secret_vault_delete_without_a_terminal_asks_for_yes_as_the_platform_does() {
    let env = TestEnv::new();
    env.init(&["my-vault"]);
    let r = env.run(&["secret", "vault", "delete", "--name", "my-vault"]);
    assert_eq!(r.code(), 1);
    r.transcript("platform/vault-delete-without-yes");
    assert!(env.store().join("my-vault").is_dir());
}

#[test]
fn dash_capital_v_is_the_vault_everywhere_and_never_the_version() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    // Before the command, -V is not a flag of coffer's: a usage error, not
    // the version and a success.
    let r = env.run(&["-V", "api-keys", "list"]);
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert_eq!(r.stdout(), "");
    let r = env.run(&["--version"]).ok();
    assert!(r.stdout().starts_with("coffer "), "{}", r.stdout());
    // verify, rekey and recipients take -V/--vault-name, and --vault still.
    for args in [
        &["verify", "-V", "api-keys"][..],
        &["verify", "--vault-name", "api-keys"],
        &["verify", "--vault", "api-keys"],
        &["recipients", "list", "-V", "api-keys"],
        &["rekey", "-V", "api-keys"],
    ] {
        env.run(args).ok();
    }
    let r = env.run(&["verify", "-V", "nope"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
}

#[test]
fn completions_offer_the_platforms_tree() {
    let env = TestEnv::new();
    let bash = env.run(&["completions", "bash"]).ok().stdout();
    assert!(
        bash.contains("coffer__subcmd__secret__subcmd__vault"),
        "no secret vault in bash completions"
    );
}
