//! `coffer resolve`: references in JSON replaced by values, every other
//! byte kept.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::TestEnv;

/// The seed's executor webhook headers.
const HEADERS: &str = r#"{"Content-Type": "application/json", "Authorization": {"vault": "api-keys", "key": "external-api-token"}}"#;

fn store() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys", "database"]);
    env.put("api-keys", "external-api-token", "token-SENTINEL");
    env.put(
        "database",
        "read-replica-password",
        "pw \"quoted\"\nline 2 ✓",
    );
    env
}

#[test]
fn the_seed_webhook_headers_resolve_against_the_sample_store() {
    let env = TestEnv::new();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let key = fs::read_to_string(repo.join("demo/demo-identity.txt")).unwrap();
    fs::write(env.work.join("headers.json"), HEADERS).unwrap();
    let input = env.work.join("headers.json");
    let r = env
        .run_with(&["resolve", input.to_str().unwrap()], |c| {
            c.current_dir(repo).env("COFFER_AGE_KEY", &key);
        })
        .ok();
    assert_eq!(
        r.stdout(),
        r#"{"Content-Type": "application/json", "Authorization": "demo-external-api-token-0000"}"#
    );
}

#[test]
fn resolve_keeps_every_byte_but_the_references() {
    let env = store();
    let doc = "\u{feff}{\n\t\"url\" : \"https://example.com/ü\",\n  \"retries\": 3.50e0,\n  \"headers\": [ {\"key\" :\"read-replica-password\",\"vault\":\"database\"} ,\n    {\"vault\": \"api-keys\", \"key\": \"external-api-token\"}],\n  \"not\": {\"vault\": \"api-keys\", \"key\": \"external-api-token\", \"x\": 1}\n}\n";
    let r = env
        .run_stdin(&["resolve"], doc.as_bytes())
        .ok()
        .stderr_has("is not a reference; left as it is");
    assert_eq!(
        r.stdout(),
        "\u{feff}{\n\t\"url\" : \"https://example.com/ü\",\n  \"retries\": 3.50e0,\n  \"headers\": [ \"pw \\\"quoted\\\"\\nline 2 ✓\" ,\n    \"token-SENTINEL\"],\n  \"not\": {\"vault\": \"api-keys\", \"key\": \"external-api-token\", \"x\": 1}\n}\n"
    );
    let parsed: serde_json::Value =
        serde_json::from_str(r.stdout().trim_start_matches('\u{feff}')).unwrap();
    assert_eq!(parsed["headers"][0], "pw \"quoted\"\nline 2 ✓");
}

#[test]
fn resolve_names_every_reference_that_does_not_resolve() {
    let env = store();
    let doc = "{\n  \"a\": {\"vault\": \"api-keys\", \"key\": \"missing-token\"},\n  \"b\": {\"vault\": \"no-vault\", \"key\": \"x-y-z\"},\n  \"c\": {\"vault\": \"api-keys\", \"key\": \"external-api-token\"}\n}";
    fs::write(env.work.join("in.json"), doc).unwrap();
    let r = env
        .run(&["resolve", "in.json"])
        .fails("2 references in in.json do not resolve:")
        .stderr_has("in.json:2:8: secret \"missing-token\" not found in vault \"api-keys\"")
        .stderr_has("in.json:3:8: vault \"no-vault\" not found")
        .transcript("resolve/2-references-in-in-json-do-not-resolve");
    assert!(r.stdout().is_empty());
    env.run_stdin(
        &["resolve", "-"],
        br#"{"vault": "api-keys", "key": "Bad Name"}"#,
    )
    .fails("stdin:1:1: invalid secret name \"Bad Name\"")
    .transcript("resolve/stdin-1-1-invalid-secret-name-bad-name");
}

#[test]
fn resolve_refuses_a_document_that_is_not_json() {
    let env = store();
    let r = env
        .run_stdin(&["resolve"], b"{\n  \"token\": \"SENTINEL\",\n}\n")
        .fails("stdin is not valid JSON: line 3, column 1")
        .stderr_has("YAML is not supported")
        .transcript("resolve/stdin-is-not-valid-json-line-3-column-1");
    assert!(!r.stderr().contains("SENTINEL"));
}

#[test]
fn resolve_decrypts_only_the_secrets_it_uses() {
    let env = store();
    env.put("api-keys", "broken", "x");
    let dir = env.store().join("api-keys");
    fs::write(
        dir.join("broken.age"),
        fs::read(dir.join("external-api-token.age")).unwrap(),
    )
    .unwrap();
    let r = env.run_stdin(&["resolve"], HEADERS.as_bytes()).ok();
    assert!(r.stdout().contains("\"Authorization\": \"token-SENTINEL\""));
}

#[test]
fn resolve_writes_out_atomically_with_mode_0600() {
    let env = store();
    fs::write(env.work.join("headers.json"), HEADERS).unwrap();
    let out = env.work.join("resolved.json");
    fs::write(&out, "old").unwrap();
    let r = env
        .run(&["resolve", "headers.json", "-o", "resolved.json"])
        .ok();
    assert!(r.stdout().is_empty());
    assert!(fs::read_to_string(&out).unwrap().contains("token-SENTINEL"));
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let target = env.work.join("elsewhere.json");
    fs::write(&target, "keep").unwrap();
    std::os::unix::fs::symlink(&target, env.work.join("link.json")).unwrap();
    env.run(&["resolve", "headers.json", "-o", "link.json"])
        .fails("could not write link.json: it is a symbolic link")
        .transcript("resolve/could-not-write-link-json-it-is-a");
    assert_eq!(fs::read_to_string(&target).unwrap(), "keep");
}

#[test]
fn resolve_without_references_copies_its_input() {
    let env = store();
    let doc = "[1, {\"a\": null}]\n";
    let r = env
        .run_stdin(&["resolve"], doc.as_bytes())
        .ok()
        .stderr_has("holds no references");
    assert_eq!(r.stdout(), doc);
}
