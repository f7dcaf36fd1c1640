//! `coffer diff`: the decrypted difference between two states of the store,
//! read through real git.

use crate::common::{TestEnv, have_tool};
use crate::git::{commit_all, git, repo};

fn update(env: &TestEnv, name: &str, value: &str) {
    env.run_stdin(&["update", "-V", "api-keys", "-n", name], value.as_bytes())
        .ok();
}

#[test]
fn diff_against_the_last_commit_lists_changes_without_values() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    update(&env, "stripe-key", "sk_live_rotated_value");
    env.put("api-keys", "new-token", "a brand new token");
    env.run(&["delete", "-V", "api-keys", "-n", "mmm-two", "--yes"])
        .ok();
    commit_all(&env, "changes");
    let out = env.run(&["diff", "HEAD~1"]).ok().stdout();
    assert_eq!(
        out,
        "--- HEAD~1\n+++ working tree\n\
         api-keys/mmm-two: removed (12 bytes)\n\
         api-keys/new-token: added (17 bytes)\n\
         api-keys/stripe-key: changed (22 bytes -> 21 bytes)\n"
    );
    assert!(!out.contains("sk_live"));
    // Asked for, the values show as a line diff.
    let out = env
        .run(&["diff", "HEAD~1", "HEAD", "--show-values"])
        .ok()
        .stdout();
    assert!(out.contains("--- HEAD~1\n+++ HEAD\n"), "{out}");
    assert!(
        out.contains(
            "api-keys/stripe-key: changed (22 bytes -> 21 bytes)\n    -sk_live_original_value\n    +sk_live_rotated_value\n"
        ),
        "{out}"
    );
    assert!(out.contains("    +a brand new token\n"), "{out}");
}

#[test]
fn diff_of_the_working_tree_and_exit_code() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    env.run(&["diff", "--exit-code"])
        .ok()
        .stderr_has("No differences between HEAD and the working tree.");
    update(&env, "stripe-key", "sk_live_uncommitted");
    let r = env.run(&["diff", "--exit-code"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert_eq!(r.stderr(), "", "differences are not an error message");
    assert!(r.stdout().contains("api-keys/stripe-key: changed"));
    // Without --exit-code, differences are a success.
    env.run(&["diff"]).ok();
}

#[test]
fn diff_json_has_one_record_per_change() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    update(&env, "stripe-key", "sk_live_rotated_value");
    let out = env.run(&["diff", "--json"]).ok().stdout();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["from"], "HEAD");
    assert_eq!(v["to"], "working tree");
    let s = &v["vaults"][0]["secrets"][0];
    assert_eq!(s["name"], "stripe-key");
    assert_eq!(s["change"], "changed");
    assert_eq!(s["compared"], true);
    assert_eq!(s["oldLength"], 22);
    assert!(s.get("newValue").is_none(), "no values unless asked");
    let out = env.run(&["diff", "--json", "--show-values"]).ok().stdout();
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["vaults"][0]["secrets"][0]["newValue"],
        "sk_live_rotated_value"
    );
}

#[test]
fn diff_shows_recipients_and_a_replaced_key_with_unchanged_values() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    let bob_key = env.identity_file(&env.dir.path().join("bob.txt"), 0o600);
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    let out = env.run(&["diff"]).ok().stdout();
    assert!(
        out.contains("api-keys: recipient + bob (added, SHA256:"),
        "{out}"
    );
    commit_all(&env, "bob");
    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    let out = env.run(&["diff", "-V", "api-keys"]).ok().stdout();
    assert!(
        out.contains("api-keys: new vault key, epoch 2 (the keyring keeps the old ones)"),
        "{out}"
    );
    assert!(!out.contains("vault key replaced"), "{out}");
    assert!(out.contains("api-keys: recipient - bob (removed"), "{out}");
    assert!(
        out.contains(
            "api-keys/stripe-key: manifest entry changed, value unchanged; marked for rotation (bob removed)"
        ),
        "{out}"
    );
}

#[test]
fn diff_without_a_key_still_shows_what_changed() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    update(&env, "stripe-key", "sk_live_rotated_value");
    std::fs::rename(env.default_identity(), env.dir.path().join("away.txt")).unwrap();
    let r = env.run(&["diff"]).ok();
    assert!(
        r.stdout().contains(
            "api-keys/stripe-key: file changed (22 bytes -> 21 bytes; no key to compare the values)"
        ),
        "{}",
        r.stdout()
    );
    assert!(
        r.stderr().contains("values were not compared"),
        "{}",
        r.stderr()
    );
}

#[test]
fn diff_reports_a_tampered_secret_instead_of_comparing_it() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    // A file swapped for another secret's: its digest no longer matches.
    let dir = env.store().join("api-keys");
    std::fs::copy(dir.join("mmm-two.age"), dir.join("stripe-key.age")).unwrap();
    let out = env.run(&["diff"]).ok().stdout();
    assert!(
        out.contains("api-keys/stripe-key: not compared: in working tree: its file does not match the manifest's digest"),
        "{out}"
    );
}

#[test]
fn diff_of_an_unknown_revision_names_it() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    env.run(&["diff", "no-such-branch"])
        .fails("unknown revision \"no-such-branch\"")
        .stderr_has("hint: `git log --oneline` shows the commits")
        .transcript("diff/unknown-revision-no-such-branch");
}

#[test]
fn diff_outside_a_git_repository_says_so() {
    if !have_tool("git") {
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.run(&["diff"])
        .fails("is not inside a git work tree")
        .transcript("diff/is-not-inside-a-git-work-tree");
    let _ = git; // (the helper is shared with the other modules)
}

#[test]
fn diff_of_a_vault_that_never_existed_names_it() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    env.run(&["diff", "-V", "no-such-vault"])
        .fails("vault \"no-such-vault\" not found")
        .transcript("diff/vault-no-such-vault-not-found");
}

#[test]
fn git_missing_from_path_is_an_error_that_says_so() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    // Only a relative PATH entry, which coffer never searches.
    std::fs::create_dir_all(env.work.join("bin")).unwrap();
    env.run_with(&["diff"], |c| {
        c.env("PATH", "bin");
    })
    .fails("git was not found on PATH")
    .stderr_has("hint: install git")
    .transcript("diff/git-was-not-found-on-path");
}
