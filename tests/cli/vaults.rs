use std::fs;

use crate::common::{TestEnv, Transcript, run_in_pty};

#[test]
fn vault_create_accepts_positional_and_name_flag() {
    let env = TestEnv::new();
    env.init(&[]);
    env.run(&["vault", "create", "api-keys"])
        .ok()
        .stderr_has("Vault: api-keys created");
    env.run(&["vault", "create", "--name", "database"])
        .ok()
        .stderr_has("Vault: database created");
    for v in ["api-keys", "database"] {
        let dir = env.store().join(v);
        assert!(dir.join("vault.toml").is_file());
        assert!(dir.join("vault-key.age").is_file());
    }
}

#[test]
fn vault_create_refuses_a_duplicate() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let before = env.snapshot();
    env.run(&["vault", "create", "api-keys"])
        .fails("vault \"api-keys\" already exists")
        .transcript("vaults/vault-api-keys-already-exists");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn bad_vault_names_are_refused_before_touching_the_disk() {
    let env = TestEnv::new();
    env.init(&[]);
    let before = env.snapshot();
    let long = "a".repeat(64);
    let mut t = Transcript::new("vaults/bad_vault_names_are_refused_before_touching_the_disk");
    for bad in ["../x", "A", "a/b", "ab", "-ab", "ab-", "a_b", &long, "аbc"] {
        let r = env.run(&["vault", "create", &format!("--name={bad}")]);
        t.record(
            bad,
            r.fails("invalid vault name")
                .stderr_has("hint: names are 3 to 63 characters"),
        );
    }
    t.check();
    assert_eq!(env.snapshot(), before);
    assert!(!env.work.join("x").exists());
}

#[test]
fn vault_list_prints_a_table_and_the_platform_json() {
    let env = TestEnv::new();
    env.init(&["database", "api-keys"]);
    env.put("api-keys", "stripe-key", "v");
    let table = env.run(&["vault", "list"]).ok().stdout();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("NAME"), "{table}");
    assert!(
        lines[1].starts_with("api-keys") && lines[2].starts_with("database"),
        "sorted: {table}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&env.run(&["vault", "list", "--json"]).ok().stdout()).unwrap();
    let arr = json.as_array().unwrap();
    assert_eq!(arr.len(), 2);
    for row in arr {
        let obj = row.as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(|k| k.as_str()).collect();
        assert_eq!(keys, ["createdAt", "name", "updatedAt"]);
        for t in ["createdAt", "updatedAt"] {
            let s = obj[t].as_str().unwrap();
            assert!(
                s.parse::<jiff::Timestamp>().is_ok() && s.ends_with('Z'),
                "{s}"
            );
        }
    }
    assert_eq!(arr[0]["name"], "api-keys");
}

#[test]
fn empty_lists_print_an_empty_json_array() {
    let env = TestEnv::new();
    env.init(&[]);
    assert_eq!(env.run(&["vault", "list", "--json"]).ok().stdout(), "[]\n");
    assert_eq!(env.run(&["vault", "list"]).ok().stdout(), "");
    env.run(&["vault", "create", "api-keys"]).ok();
    assert_eq!(
        env.run(&["list", "-V", "api-keys", "--json"]).ok().stdout(),
        "[]\n"
    );
    assert_eq!(env.run(&["list", "-V", "api-keys"]).ok().stdout(), "");
}

#[test]
fn vault_delete_refuses_a_vault_with_secrets_saying_how_many() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "one-secret", "1");
    env.put("api-keys", "two-secret", "2");
    let before = env.snapshot();
    env.run(&["vault", "delete", "api-keys", "--yes"])
        .fails("vault \"api-keys\" still holds 2 secrets")
        .stderr_has("coffer list -V api-keys")
        .transcript("vaults/vault-api-keys-still-holds-2-secrets");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn vault_delete_without_a_terminal_needs_yes() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.run(&["vault", "delete", "api-keys"])
        .fails("without confirmation")
        .stderr_has("--yes")
        .transcript("vaults/delete-without-a-terminal-needs-yes");
    assert!(env.store().join("api-keys").exists());
    env.run(&["vault", "delete", "--name", "api-keys", "--yes"])
        .ok()
        .stderr_has("Vault: api-keys deleted");
    assert!(!env.store().join("api-keys").exists());
    let left: Vec<_> = fs::read_dir(env.store())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left.len(),
        2,
        "only coffer.toml and .gitignore remain: {left:?}"
    );
}

#[test]
fn vault_delete_asks_to_type_the_name_on_a_terminal() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let mut c = env.cmd();
    c.args(["vault", "delete", "api-keys"]);
    let (out, code) = run_in_pty(c, Some("(\"api-keys\"): "), "api-kays\n");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("deletion cancelled"), "{out}");
    assert!(env.store().join("api-keys").exists());

    let mut c = env.cmd();
    c.args(["vault", "delete", "api-keys"]);
    let (out, code) = run_in_pty(c, Some("(\"api-keys\"): "), "api-keys\n");
    assert_eq!(code, 0, "{out}");
    assert!(!env.store().join("api-keys").exists());
}

#[test]
fn unknown_vault_is_a_clear_error() {
    let env = TestEnv::new();
    env.init(&[]);
    env.run(&["list", "-V", "nope-vault"])
        .fails("vault \"nope-vault\" not found")
        .stderr_has("coffer vault list")
        .transcript("vaults/vault-nope-vault-not-found");
    env.run(&["vault", "delete", "nope-vault", "--yes"])
        .fails("not found")
        .transcript("vaults/delete-of-an-unknown-vault");
}

#[test]
fn store_is_found_from_a_subdirectory_and_by_flag_or_variable() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let sub = env.work.join("src/deep");
    fs::create_dir_all(&sub).unwrap();
    let r = env.run_with(&["vault", "list", "--json"], |c| {
        c.current_dir(&sub);
    });
    assert!(r.ok().stdout().contains("api-keys"));
    let elsewhere = env.dir.path();
    let store = env.store();
    let r = env.run_with(
        &[
            "--store",
            store.to_str().unwrap(),
            "vault",
            "list",
            "--json",
        ],
        |c| {
            c.current_dir(elsewhere);
        },
    );
    assert!(r.ok().stdout().contains("api-keys"));
    let r = env.run_with(&["vault", "list", "--json"], |c| {
        c.current_dir(elsewhere).env("COFFER_STORE", &store);
    });
    assert!(r.ok().stdout().contains("api-keys"));
    // The repository directory works too.
    let r = env.run_with(
        &[
            "vault",
            "list",
            "--json",
            "--store",
            env.work.to_str().unwrap(),
        ],
        |c| {
            c.current_dir(elsewhere);
        },
    );
    assert!(r.ok().stdout().contains("api-keys"));
}

#[test]
fn no_store_is_a_clear_error_with_a_hint() {
    let env = TestEnv::new();
    env.run(&["vault", "list"])
        .fails("no coffer store found")
        .stderr_has("coffer init")
        .transcript("vaults/no-coffer-store-found");
    env.run(&["--store", "nowhere", "vault", "list"])
        .fails("is not a coffer store")
        .transcript("vaults/is-not-a-coffer-store");
}

#[test]
fn symlinked_vault_directory_is_refused() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "v");
    std::os::unix::fs::symlink(
        env.store().join("api-keys"),
        env.store().join("linked-vault"),
    )
    .unwrap();
    env.run(&["list", "-V", "linked-vault"])
        .fails("symbolic link")
        .transcript("vaults/list-of-a-symlinked-vault");
    env.run(&["get", "-V", "linked-vault", "-n", "stripe-key"])
        .fails("symbolic link")
        .transcript("vaults/get-from-a-symlinked-vault");
}
