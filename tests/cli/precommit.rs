//! The repository's `.pre-commit-hooks.yaml`, run by the real `pre-commit`
//! (from PyPI) in a temporary repository, hermetically (its cache in the
//! test directory).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{PATH, TestEnv, tool};

/// Finds `pre-commit` on the developer's PATH (pip puts it in a Python's
/// scripts directory, often not on the tests' fixed PATH). Skips with a
/// note unless COFFER_REQUIRE_TOOLS=1.
fn find_pre_commit() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(std::env::split_paths(PATH))
        .map(|d| d.join("pre-commit"))
        .find(|p| p.is_file());
    if found.is_none() {
        if std::env::var("COFFER_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("pre-commit is required (COFFER_REQUIRE_TOOLS=1) but not on PATH");
        }
        eprintln!("note: skipping: pre-commit is not installed (pip install pre-commit)");
    }
    found
}

fn git(dir: &Path, env: &TestEnv, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .env_clear()
        .env("HOME", &env.home)
        .env("PATH", PATH)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn pre_commit(env: &TestEnv, exe: &Path, args: &[&str]) -> Output {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_coffer")).parent().unwrap();
    let path = format!(
        "{}:{}:{PATH}",
        bin_dir.display(),
        exe.parent().unwrap().display()
    );
    Command::new(exe)
        .args(args)
        .env_clear()
        .env("HOME", &env.home)
        .env("XDG_CONFIG_HOME", &env.config)
        .env("PATH", path)
        .env("PRE_COMMIT_HOME", env.dir.path().join("pre-commit-cache"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .current_dir(&env.work)
        .output()
        .unwrap()
}

#[test]
fn pre_commit_runs_the_scan_and_verify_hooks() {
    let Some(exe) = find_pre_commit() else {
        return;
    };
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_0123456789abcdef");
    // The hooks repository: the repository's own .pre-commit-hooks.yaml,
    // committed in a local clone-like repository.
    let hooks = env.dir.path().join("hooks-repo");
    fs::create_dir(&hooks).unwrap();
    fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/.pre-commit-hooks.yaml"),
        hooks.join(".pre-commit-hooks.yaml"),
    )
    .unwrap();
    git(&hooks, &env, &["init", "-q", "-b", "main"]);
    git(&hooks, &env, &["add", "."]);
    git(&hooks, &env, &["commit", "-q", "-m", "hooks"]);
    let rev = String::from_utf8(
        tool(
            &env,
            "git",
            &["-C", hooks.to_str().unwrap(), "rev-parse", "HEAD"],
        )
        .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();

    git(&env.work, &env, &["init", "-q", "-b", "main"]);
    fs::write(
        env.work.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n  - repo: {}\n    rev: {rev}\n    hooks:\n      - id: coffer-scan\n      - id: coffer-verify\n",
            hooks.display()
        ),
    )
    .unwrap();
    fs::write(env.work.join("README"), "nothing secret\n").unwrap();
    git(&env.work, &env, &["add", "."]);
    let ok = pre_commit(&env, &exe, &["run"]);
    let shown = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(
        ok.status.success(),
        "{shown}\n{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        shown.contains("coffer scan") && shown.contains("Passed"),
        "{shown}"
    );
    assert!(shown.contains("coffer verify"), "{shown}");

    // A staged file holding a value: the scan hook fails, naming the file.
    fs::write(
        env.work.join("config.js"),
        "const k = 'sk_live_0123456789abcdef';\n",
    )
    .unwrap();
    git(&env.work, &env, &["add", "config.js"]);
    let bad = pre_commit(&env, &exe, &["run"]);
    let shown = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert!(!bad.status.success(), "{shown}");
    assert!(shown.contains("config.js"), "{shown}");
    assert!(
        !shown.contains("sk_live_0123456789abcdef"),
        "the value is never shown"
    );

    // A tampered store: the verify hook fails.
    git(&env.work, &env, &["rm", "-q", "--cached", "config.js"]);
    fs::write(env.store().join("api-keys/stripe-key.age"), b"junk").unwrap();
    git(&env.work, &env, &["add", "-A", "vaults"]);
    let tampered = pre_commit(&env, &exe, &["run", "coffer-verify"]);
    let shown = String::from_utf8_lossy(&tampered.stdout).into_owned();
    assert!(!tampered.status.success(), "{shown}");
    assert!(shown.contains("stripe-key"), "{shown}");
}
