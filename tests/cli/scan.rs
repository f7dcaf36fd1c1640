//! `coffer scan` and the pre-commit hook.

use std::fs;

use crate::common::{TestEnv, have_tool};
use crate::git::{commit_all, git, git_out, repo};

#[test]
fn scan_finds_a_pasted_value_and_names_the_secret_not_the_value() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    env.put("api-keys", "pin-code", "1234");
    fs::create_dir_all(env.work.join("src")).unwrap();
    fs::write(
        env.work.join("src/config.rs"),
        "// config\nconst KEY: &str = \"sk_live_original_value\";\n",
    )
    .unwrap();
    fs::write(
        env.work.join(".env"),
        "STRIPE=sk_live_original_value\nPIN=1234\n",
    )
    .unwrap();
    fs::write(env.work.join(".gitignore"), "ignored.log\n").unwrap();
    fs::write(env.work.join("ignored.log"), "second value\n").unwrap();
    let r = env.run(&["scan"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    let r = r.transcript("scan/found-a-value");
    assert_eq!(
        r.stdout(),
        ".env:1: api-keys/stripe-key\nsrc/config.rs:2: api-keys/stripe-key\n"
    );
    let err = r.stderr();
    assert!(
        err.contains("error: found the value of 1 secret in 2 files"),
        "{err}"
    );
    assert!(
        err.contains("note: not looking for 1 value shorter than 8 characters (too many false matches): api-keys/pin-code"),
        "{err}"
    );
    assert!(!err.contains("sk_live") && !r.stdout().contains("sk_live"));
    // One path, and JSON.
    let r = env.run(&["scan", "src", "--json"]);
    assert_eq!(r.code(), 1);
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v[0]["path"], "src/config.rs");
    assert_eq!(v[0]["line"], 2);
    assert_eq!(v[0]["secret"], "stripe-key");
    // A clean tree passes.
    fs::remove_file(env.work.join("src/config.rs")).unwrap();
    fs::remove_file(env.work.join(".env")).unwrap();
    env.run(&["scan"]).ok().stderr_has("No values found");
}

#[test]
fn the_pre_commit_hook_refuses_a_staged_value() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    env.run(&["git", "setup", "--pre-commit"]).ok();
    env.run(&["git", "setup", "--pre-commit", "--check"]).ok();
    fs::write(env.work.join("app.env"), "TOKEN=second value\n").unwrap();
    git(&env, &["add", "app.env"]);
    let out = git_out(&env, &["commit", "-qm", "leak"]);
    assert!(!out.status.success(), "the hook must stop the commit");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("app.env:1: api-keys/mmm-two"), "{all}");
    assert!(!all.contains("second value"), "{all}");
    // The hook checks what is staged, not the working tree.
    fs::write(env.work.join("app.env"), "TOKEN=from-the-environment\n").unwrap();
    assert!(
        !git_out(&env, &["commit", "-qm", "still staged"])
            .status
            .success()
    );
    git(&env, &["add", "app.env"]);
    commit_all(&env, "clean");
}

#[test]
fn setup_does_not_overwrite_someone_elses_pre_commit_hook() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    let hook = env.work.join(".git/hooks/pre-commit");
    fs::write(&hook, "#!/bin/sh\nmake lint\n").unwrap();
    env.run(&["git", "setup", "--pre-commit"])
        .fails("already exists and is not coffer's")
        .stderr_has("scan --staged")
        .transcript("scan/already-exists-and-is-not-coffer-s");
    assert_eq!(fs::read_to_string(&hook).unwrap(), "#!/bin/sh\nmake lint\n");
}

#[test]
fn scan_without_any_identity_fails_instead_of_searching_for_nothing() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_original_value");
    fs::write(env.work.join("leak.txt"), "sk_live_original_value\n").unwrap();
    fs::rename(env.default_identity(), env.dir.path().join("away.txt")).unwrap();
    env.run(&["scan", "."])
        .fails("no vault could be opened (no identity was found)")
        .transcript("scan/no-identity-no-values");
    env.run(&["scan", ".", "--allow-no-key"])
        .ok()
        .stderr_has("nothing to look for: no identity was found");
}

#[test]
fn a_non_members_scan_fails_instead_of_passing_silently() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_original_value");
    // Someone else's identity: a valid key that opens no vault here.
    let other = env.dir.path().join("other.txt");
    env.run(&["keygen", "-o", other.to_str().unwrap()]).ok();
    env.run(&["scan", ".", "-i", other.to_str().unwrap()])
        .fails("none of your identities opens them")
        .transcript("scan/non-member-no-values");
    // A store with no values has nothing to look for, and that is fine.
    let empty = TestEnv::new();
    empty.init(&["api-keys"]);
    empty.run(&["scan", "."]).ok();
}

#[test]
fn scan_of_a_path_that_does_not_exist_says_so() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_original_value");
    env.run(&["scan", "no/such/dir"])
        .fails("does not exist")
        .transcript("scan/does-not-exist");
}
