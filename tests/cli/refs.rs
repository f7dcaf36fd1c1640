//! `coffer refs check`: dangling references are caught before deploy.

use std::fs;

use crate::common::TestEnv;

/// An executor like the seed's, with its webhook header from the secret
/// manager (line 12).
const EXECUTOR: &str = include_str!("../fixtures/executor.ts");

fn store() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "external-api-token", "SENTINEL");
    fs::create_dir_all(env.work.join("src/executors")).unwrap();
    env
}

fn write(env: &TestEnv, path: &str, text: &str) {
    let p = env.work.join(path);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

#[test]
fn refs_check_fails_naming_the_line_of_a_reference_to_a_missing_secret() {
    let env = store();
    write(
        &env,
        "src/executors/notify.ts",
        &EXECUTOR.replace("external-api-token", "missing-api-token"),
    );
    write(&env, "src/executors/ok.ts", EXECUTOR);
    let r = env
        .run(&["refs", "check"])
        .fails("1 of 2 references does not name a secret in the store:")
        .stderr_has(
            "src/executors/notify.ts:12:22: secret \"missing-api-token\" not found in vault \"api-keys\"",
        )
.transcript("refs/1-of-2-references-does-not-name-a");
    assert_eq!(
        r.stdout(),
        "src/executors/notify.ts:12:22: api-keys/missing-api-token\n\
         src/executors/ok.ts:12:22: api-keys/external-api-token\n"
    );
}

#[test]
fn refs_check_passes_when_every_reference_names_a_secret() {
    let env = store();
    write(&env, "src/executors/ok.ts", EXECUTOR);
    write(
        &env,
        "config/headers.json",
        r#"{"Authorization": {"vault": "api-keys", "key": "external-api-token"}}"#,
    );
    write(
        &env,
        "deploy/values.yaml",
        "headers:\n  Authorization:\n    vault: api-keys\n    key: external-api-token\n",
    );
    write(
        &env,
        "README.md",
        "{ vault: \"api-keys\", key: \"not-scanned\" }\n",
    );
    let r = env
        .run(&["refs", "check"])
        .ok()
        .stderr_has("3 references (");
    assert_eq!(
        r.stdout(),
        "config/headers.json:1:19: api-keys/external-api-token\n\
         deploy/values.yaml:3:5: api-keys/external-api-token\n\
         src/executors/ok.ts:12:22: api-keys/external-api-token\n"
    );
}

#[test]
fn refs_check_reports_missing_vaults_and_invalid_names() {
    let env = store();
    write(
        &env,
        "app.js",
        "f({ vault: 'nope', key: 'x-y' });\nf({ vault: 'Bad_Vault', key: 'x-y' });\nf({ vault: 'api-keys', key: 'Bad_Key' });\nf({ vault: VAULT, key: 'x' });\n",
    );
    env.run(&["refs", "check", "app.js"])
        .fails("3 of 3 references do not name a secret in the store:")
        .stderr_has("app.js:1:3: vault \"nope\" not found")
        .stderr_has("app.js:2:3: invalid vault name \"Bad_Vault\": it contains an uppercase letter")
        .stderr_has("app.js:3:3: invalid secret name \"Bad_Key\": it contains an uppercase letter")
        .stderr_has("note: app.js:4:3: a reference built from variables cannot be checked")
        .transcript("refs/3-of-3-references-do-not-name-a-secret");
}

#[test]
fn refs_check_respects_gitignore_and_skips_hidden_files() {
    let env = store();
    write(&env, ".gitignore", "dist/\n");
    write(
        &env,
        "dist/bundle.js",
        "x = { vault: 'api-keys', key: 'gone' };",
    );
    write(
        &env,
        ".cache/x.js",
        "x = { vault: 'api-keys', key: 'gone' };",
    );
    write(
        &env,
        "src/a.js",
        "x = { vault: 'api-keys', key: 'external-api-token' };",
    );
    let r = env.run(&["refs", "check"]).ok();
    assert_eq!(r.stdout(), "src/a.js:1:5: api-keys/external-api-token\n");
    // Named on the command line, a file is read whatever its name.
    write(
        &env,
        "headers.txt",
        "{\"vault\": \"api-keys\", \"key\": \"gone\"}",
    );
    env.run(&["refs", "check", "headers.txt", "src"])
        .fails("headers.txt:1:1: secret \"gone\" not found")
        .transcript("refs/headers-txt-1-1-secret-gone-not-found");
}

#[test]
fn refs_check_json_output_lists_every_reference_with_its_status() {
    let env = store();
    write(
        &env,
        "a.ts",
        "const h = { vault: \"api-keys\", key: \"external-api-token\" };\nconst g = {\n  key: \"gone\",\n  vault: \"api-keys\",\n};\nconst d = { vault: v, key: k };\n",
    );
    let r = env
        .run(&["refs", "check", "--json"])
        .fails("1 of 2 references does not name a secret")
        .transcript("refs/1-of-2-references-does-not-name-a-secret");
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "references": [
                {"file": "a.ts", "line": 1, "column": 11, "vault": "api-keys", "key": "external-api-token", "status": "ok"},
                {"file": "a.ts", "line": 2, "column": 11, "vault": "api-keys", "key": "gone", "status": "missing-secret"},
            ],
            "unchecked": [{"file": "a.ts", "line": 6, "column": 11}],
            "dangling": 1,
        })
    );
}

#[test]
fn refs_check_needs_no_key() {
    let env = store();
    fs::remove_file(env.default_identity()).unwrap();
    write(
        &env,
        "a.ts",
        "({ vault: 'api-keys', key: 'external-api-token' })",
    );
    env.run(&["refs", "check"]).ok();
}

#[test]
fn refs_check_refuses_a_path_that_does_not_exist() {
    let env = store();
    env.run(&["refs", "check", "no/such/dir"])
        .fails("no/such/dir does not exist")
        .transcript("refs/no-such-dir-does-not-exist");
}

#[test]
fn refs_check_with_nothing_to_find_says_so() {
    let env = store();
    let r = env
        .run(&["refs", "check"])
        .ok()
        .stderr_has("No references found");
    assert!(r.stdout().is_empty());
}

#[test]
fn refs_check_skips_files_too_large_to_be_configuration() {
    let env = store();
    let mut big = String::from("x = { vault: 'api-keys', key: 'gone' };\n");
    big.push_str(&" ".repeat(16 << 20));
    write(&env, "dist.js", &big);
    env.run(&["refs", "check"])
        .ok()
        .stderr_has("warning: skipped dist.js: it is larger than 16 MiB");
}
