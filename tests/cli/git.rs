//! `coffer git setup`, the merge driver and textconv, with real git: the
//! scenarios of docs/git.md, run end to end.

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::common::{PATH, TestEnv, have_tool};

/// Runs git in the work directory with the same hermetic environment coffer
/// gets, so the drivers git starts find the test identity.
pub fn git_out(env: &TestEnv, args: &[&str]) -> Output {
    git_cmd(env, args).output().unwrap()
}

pub fn git_cmd(env: &TestEnv, args: &[&str]) -> Command {
    let mut c = Command::new("git");
    c.args(args)
        .env_clear()
        .env("HOME", &env.home)
        .env("XDG_CONFIG_HOME", &env.config)
        .env("PATH", PATH)
        .env("USER", "alice")
        .env("TMPDIR", env.dir.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .current_dir(&env.work);
    c
}

/// Runs git and insists that it succeeds; returns stdout.
#[track_caller]
pub fn git(env: &TestEnv, args: &[&str]) -> String {
    let out = git_out(env, args);
    assert!(
        out.status.success(),
        "git {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A repository with a store, `coffer git setup` done and committed, on
/// branch `main`, with two secrets in vault `api-keys`.
pub fn repo() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_original_value");
    env.put("api-keys", "mmm-two", "second value");
    git(&env, &["init", "-q", "-b", "main"]);
    env.run(&["git", "setup"]).ok();
    git(&env, &["add", "."]);
    git(&env, &["commit", "-qm", "store"]);
    env
}

pub fn commit_all(env: &TestEnv, msg: &str) {
    git(env, &["add", "-A"]);
    git(env, &["commit", "-qm", msg]);
}

fn update(env: &TestEnv, vault: &str, name: &str, value: &str) {
    env.run_stdin(&["update", "-V", vault, "-n", name], value.as_bytes())
        .ok();
}

fn merge(env: &TestEnv, branch: &str) -> Output {
    git_out(env, &["merge", "--no-edit", branch])
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Two branches from the same commit: `f` runs on `feature`, then `g` on
/// `main`, each committing.
fn branches(env: &TestEnv, f: impl FnOnce(&TestEnv), g: impl FnOnce(&TestEnv)) {
    git(env, &["checkout", "-qb", "feature"]);
    f(env);
    commit_all(env, "feature");
    git(env, &["checkout", "-q", "main"]);
    g(env);
    commit_all(env, "main");
}

#[test]
fn setup_is_idempotent_and_check_lists_what_is_missing() {
    if !have_tool("git") {
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    git(&env, &["init", "-q"]);
    let r = env
        .run(&["git", "setup", "--check"])
        .fails("git is not fully set up")
        .transcript("git/git-is-not-fully-set-up");
    assert!(
        r.stdout()
            .contains("missing  vaults/.gitattributes: *.age diff=coffer merge=coffer -text")
    );
    assert!(
        r.stdout()
            .contains("missing  git config merge.coffer.driver")
    );
    assert!(r.stderr().contains("hint: run `coffer git setup`"));
    env.run(&["git", "setup"])
        .ok()
        .stderr_has("Updated vaults/.gitattributes");
    let attrs = fs::read_to_string(env.store().join(".gitattributes")).unwrap();
    let config = fs::read_to_string(env.work.join(".git/config")).unwrap();
    env.run(&["git", "setup"])
        .ok()
        .stderr_has("already set up for coffer; nothing changed");
    assert_eq!(
        fs::read_to_string(env.store().join(".gitattributes")).unwrap(),
        attrs
    );
    assert_eq!(
        fs::read_to_string(env.work.join(".git/config")).unwrap(),
        config
    );
    let r = env.run(&["git", "setup", "--check"]).ok();
    assert!(!r.stdout().contains("missing"), "{}", r.stdout());
    // A user's own attributes are kept; only what is missing is added.
    fs::write(env.store().join(".gitattributes"), "*.md text\n").unwrap();
    env.run(&["git", "setup"]).ok();
    let attrs = fs::read_to_string(env.store().join(".gitattributes")).unwrap();
    assert!(attrs.starts_with("*.md text\n# coffer"), "{attrs}");
    assert!(config.contains("git textconv"));
}

/// A file outside the repository that a planted link points at.
fn victim(env: &TestEnv, name: &str) -> PathBuf {
    let p = env.home.join(name);
    fs::write(&p, "export PATH=/usr/bin\n").unwrap();
    p
}

#[test]
fn setup_refuses_a_gitattributes_that_is_a_link_to_a_file_outside_the_repository() {
    if !have_tool("git") {
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    git(&env, &["init", "-q"]);
    let bashrc = victim(&env, ".bashrc");
    let link = env.store().join(".gitattributes");
    std::os::unix::fs::symlink(&bashrc, &link).unwrap();
    env.run(&["git", "setup"])
        .fails(".gitattributes is a symbolic link; coffer git setup does not write through links")
        .stderr_has("hint: check where it points");
    assert_eq!(fs::read_link(&link).unwrap(), bashrc);
    assert_eq!(
        fs::read_to_string(&bashrc).unwrap(),
        "export PATH=/usr/bin\n"
    );
    // Nothing else was set up either: the attributes come first.
    assert!(
        !fs::read_to_string(env.work.join(".git/config"))
            .unwrap()
            .contains("coffer")
    );
}

#[test]
fn setup_refuses_a_pre_commit_hook_that_is_a_link() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    let target = victim(&env, "elsewhere-hook");
    let hook = env.work.join(".git/hooks/pre-commit");
    fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&target, &hook).unwrap();
    env.run(&["git", "setup", "--pre-commit"])
        .fails("pre-commit is a symbolic link; coffer git setup does not write through links");
    assert_eq!(fs::read_link(&hook).unwrap(), target);
    assert_eq!(
        fs::read_to_string(&target).unwrap(),
        "export PATH=/usr/bin\n"
    );
}

#[test]
fn setup_refuses_a_hooks_directory_that_is_a_link() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    let elsewhere = env.home.join("hooks-elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let hooks = env.work.join(".git/hooks");
    fs::remove_dir_all(&hooks).ok();
    std::os::unix::fs::symlink(&elsewhere, &hooks).unwrap();
    env.run(&["git", "setup", "--pre-commit"])
        .fails("hooks is a symbolic link; coffer git setup does not write through links");
    assert_eq!(fs::read_link(&hooks).unwrap(), elsewhere);
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn setup_writes_an_executable_hook_and_no_temporary_file() {
    if !have_tool("git") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let env = repo();
    env.run(&["git", "setup", "--pre-commit"]).ok();
    let hooks = env.work.join(".git/hooks");
    let hook = hooks.join("pre-commit");
    assert!(fs::read_to_string(&hook).unwrap().contains("scan --staged"));
    assert_eq!(
        fs::metadata(&hook).unwrap().permissions().mode() & 0o777,
        0o755
    );
    let leftovers: Vec<String> = fs::read_dir(&hooks)
        .unwrap()
        .chain(fs::read_dir(env.store()).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".coffer-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn setup_outside_a_git_repository_says_so() {
    if !have_tool("git") {
        return;
    }
    let env = TestEnv::new();
    env.init(&[]);
    env.run(&["git", "setup"])
        .fails("is not inside a git work tree")
        .stderr_has("hint: run it inside a git repository")
        .transcript("git/is-not-inside-a-git-work-tree");
}

#[test]
fn branches_adding_different_secrets_to_one_vault_merge_cleanly() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    branches(
        &env,
        |e| e.put("api-keys", "aaa-first", "value from feature"),
        |e| e.put("api-keys", "zzz-last", "value from main"),
    );
    let out = merge(&env, "feature");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(git(&env, &["status", "--porcelain"]), "");
    env.run(&["verify"]).ok();
    assert_eq!(env.get("api-keys", "aaa-first"), "value from feature");
    assert_eq!(env.get("api-keys", "zzz-last"), "value from main");
}

#[test]
fn branches_adding_secrets_that_sort_next_to_each_other_merge_cleanly() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    // Both land between stripe-key's neighbours: the same spot in vault.toml.
    branches(
        &env,
        |e| e.put("api-keys", "mmm-three", "three"),
        |e| e.put("api-keys", "mmm-twa", "twa"),
    );
    let out = merge(&env, "feature");
    assert!(out.status.success(), "{}", stderr(&out));
    env.run(&["verify"]).ok();
    let list = env.run(&["list", "-V", "api-keys", "--json"]).ok().stdout();
    for n in ["mmm-three", "mmm-twa", "mmm-two", "stripe-key"] {
        assert!(list.contains(n), "{list}");
    }
}

#[test]
fn the_same_secret_changed_differently_on_both_sides_is_a_conflict_naming_it() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    branches(
        &env,
        |e| update(e, "api-keys", "stripe-key", "sk_live_from_feature"),
        |e| update(e, "api-keys", "stripe-key", "sk_live_from_main"),
    );
    let out = merge(&env, "feature");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(
            "secret stripe-key of vault api-keys was changed to different values on both sides"
        ),
        "{err}"
    );
    assert!(
        err.contains("coffer update -V api-keys -n stripe-key"),
        "{err}"
    );
    assert!(!err.contains("sk_live_from"), "no value in messages: {err}");
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), err);
    assert!(all.contains("CONFLICT (content): Merge conflict in vaults/api-keys/stripe-key.age"));
    assert_eq!(
        git(&env, &["status", "--porcelain"]),
        "UU vaults/api-keys/stripe-key.age\n"
    );
    // No conflict markers anywhere: the store still verifies, with ours.
    env.run(&["verify"]).ok();
    assert_eq!(env.get("api-keys", "stripe-key"), "sk_live_from_main");
    // The user picks a value; the merge commits and verifies.
    update(&env, "api-keys", "stripe-key", "sk_live_chosen");
    git(&env, &["add", "vaults/api-keys"]);
    git(&env, &["commit", "-qm", "merge", "--no-edit"]);
    env.run(&["verify"]).ok();
}

#[test]
fn the_same_secret_changed_to_the_same_value_on_both_sides_merges_cleanly() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    branches(
        &env,
        |e| update(e, "api-keys", "stripe-key", "sk_live_agreed"),
        |e| update(e, "api-keys", "stripe-key", "sk_live_agreed"),
    );
    let out = merge(&env, "feature");
    assert!(out.status.success(), "{}", stderr(&out));
    env.run(&["verify"]).ok();
    assert_eq!(env.get("api-keys", "stripe-key"), "sk_live_agreed");
}

#[test]
fn a_secret_deleted_on_one_side_and_updated_on_the_other_keeps_the_update() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    branches(
        &env,
        |e| {
            e.run(&["delete", "-V", "api-keys", "-n", "mmm-two", "--yes"])
                .ok();
        },
        |e| update(e, "api-keys", "mmm-two", "updated on main"),
    );
    let out = merge(&env, "feature");
    assert_eq!(out.status.code(), Some(1), "git reports modify/delete");
    let err = stderr(&out);
    assert!(
        err.contains("api-keys/mmm-two was deleted on their side and changed on the other"),
        "{err}"
    );
    // The tree keeps the changed secret, consistently: verify passes.
    env.run(&["verify"]).ok();
    assert_eq!(env.get("api-keys", "mmm-two"), "updated on main");
    // Either way out works: here, honour the deletion.
    env.run(&["delete", "-V", "api-keys", "-n", "mmm-two", "--yes"])
        .ok();
    git(&env, &["add", "-A", "vaults"]);
    git(&env, &["commit", "-qm", "merge", "--no-edit"]);
    env.run(&["verify"]).ok();
}

#[test]
fn recipients_added_on_both_sides_merge_by_name() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    let bob = env.dir.path().join("bob.txt");
    let carol = env.dir.path().join("carol.txt");
    let bob_key = env.identity_file(&bob, 0o600);
    let carol_key = env.identity_file(&carol, 0o600);
    branches(
        &env,
        |e| {
            e.run(&["recipients", "add", "bob", &bob_key]).ok();
        },
        |e| {
            e.run(&["recipients", "add", "carol", &carol_key]).ok();
        },
    );
    let out = merge(&env, "feature");
    assert!(out.status.success(), "{}", stderr(&out));
    env.run(&["verify"]).ok();
    for id in [&bob, &carol] {
        let v = env
            .run(&[
                "get",
                "-V",
                "api-keys",
                "-n",
                "stripe-key",
                "-i",
                id.to_str().unwrap(),
            ])
            .ok()
            .stdout();
        assert_eq!(v, "sk_live_original_value");
    }
    let config = fs::read_to_string(env.store().join("coffer.toml")).unwrap();
    assert!(
        config.contains("bob = ") && config.contains("carol = "),
        "{config}"
    );
}

#[test]
fn recipients_merged_without_the_vault_key_are_a_conflict_that_says_so() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    let bob_key = env.identity_file(&env.dir.path().join("bob.txt"), 0o600);
    let carol_key = env.identity_file(&env.dir.path().join("carol.txt"), 0o600);
    branches(
        &env,
        |e| {
            e.run(&["recipients", "add", "bob", &bob_key]).ok();
        },
        |e| {
            e.run(&["recipients", "add", "carol", &carol_key]).ok();
        },
    );
    // Someone without any key runs the merge.
    let mine = env.default_identity();
    fs::rename(&mine, env.dir.path().join("away.txt")).unwrap();
    let out = merge(&env, "feature");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("needs the vault key"), "{err}");
    assert!(
        err.contains("someone who can open the vault must run the merge"),
        "{err}"
    );
}

#[test]
fn a_replaced_vault_key_conflicts_with_secrets_written_under_the_old_one() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    let bob_key = env.identity_file(&env.dir.path().join("bob.txt"), 0o600);
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    commit_all(&env, "bob");
    branches(
        &env,
        |e| e.put("api-keys", "late-token", "written under the old key"),
        |e| {
            e.run(&["recipients", "remove", "bob", "--yes"]).ok();
        },
    );
    let out = merge(&env, "feature");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("our side replaced the vault key (removing bob), while their side wrote late-token under the old key"),
        "{err}"
    );
    assert!(
        err.contains("git restore --source=HEAD --staged --worktree -- vaults/api-keys"),
        "{err}"
    );
    // Following the hint gives a verifiable store again.
    git(
        &env,
        &[
            "restore",
            "--source=HEAD",
            "--staged",
            "--worktree",
            "--",
            "vaults/api-keys",
        ],
    );
    env.put("api-keys", "late-token", "a new value");
    git(&env, &["add", "-A"]);
    git(&env, &["commit", "-qm", "merge", "--no-edit"]);
    env.run(&["verify"]).ok();
}

#[test]
fn git_diff_shows_which_secret_changed_but_not_its_value() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    update(&env, "api-keys", "stripe-key", "sk_live_new_value_123");
    let d = git(&env, &["diff"]);
    assert!(d.contains("+++ b/vaults/api-keys/stripe-key.age"), "{d}");
    assert!(
        d.contains("-<coffer secret, 22 bytes, value hidden>"),
        "{d}"
    );
    assert!(
        d.contains("+<coffer secret, 21 bytes, value hidden>"),
        "{d}"
    );
    assert!(
        d.contains("[secrets.stripe-key]") || d.contains("updated = "),
        "{d}"
    );
    assert!(!d.contains("sk_live"), "{d}");
    assert!(!d.contains("BEGIN AGE"), "no ciphertext noise: {d}");
    commit_all(&env, "rotate stripe");
    let log = git(&env, &["log", "-p", "-1"]);
    assert!(
        log.contains("+<coffer secret, 21 bytes, value hidden>"),
        "{log}"
    );
    // Opting in shows the values, in git show as in git diff.
    git(&env, &["config", "coffer.showValues", "true"]);
    let show = git(
        &env,
        &["show", "HEAD", "--", "vaults/api-keys/stripe-key.age"],
    );
    assert!(
        show.contains("-sk_live_original_value\n+sk_live_new_value_123\n"),
        "{show}"
    );
    // Without a key, git diff keeps working, masked.
    fs::rename(env.default_identity(), env.dir.path().join("away.txt")).unwrap();
    let show = git(
        &env,
        &["show", "HEAD", "--", "vaults/api-keys/stripe-key.age"],
    );
    assert!(
        show.contains("+<coffer secret, 21 bytes; no vault key you hold opens it>"),
        "{show}"
    );
}

#[test]
fn git_log_shows_values_encrypted_to_a_vault_key_replaced_since() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    update(&env, "api-keys", "stripe-key", "sk_live_before_rotation");
    commit_all(&env, "before");
    let bob_key = env.identity_file(&env.dir.path().join("bob.txt"), 0o600);
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    commit_all(&env, "bob");
    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    commit_all(&env, "rotated");
    git(&env, &["config", "coffer.showValues", "true"]);
    let log = git(&env, &["log", "-p", "--", "vaults/api-keys/stripe-key.age"]);
    assert!(
        log.contains("-sk_live_original_value\n+sk_live_before_rotation\n"),
        "{log}"
    );
    assert!(!log.contains("no vault key you hold opens it"), "{log}");
}

#[test]
fn git_diff_of_the_vault_key_shows_the_recipient_count() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    let bob_key = env.identity_file(&env.dir.path().join("bob.txt"), 0o600);
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    let d = git(&env, &["diff", "--", "vaults/api-keys/vault-key.age"]);
    assert!(
        d.contains("-<coffer vault key, encrypted to 1 recipient>"),
        "{d}"
    );
    assert!(
        d.contains("+<coffer vault key, encrypted to 2 recipients>"),
        "{d}"
    );
    assert!(!d.contains("AGE-SECRET-KEY"), "{d}");
}

#[test]
fn commands_that_change_nothing_leave_git_status_clean() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    let clean = |what: &str| {
        assert_eq!(git(&env, &["status", "--porcelain"]), "", "after {what}");
    };
    update(&env, "api-keys", "stripe-key", "sk_live_original_value");
    clean("update with the same value");
    env.run(&["rekey"]).ok();
    clean("rekey with nothing stale");
    env.run(&["verify", "--accept", "--yes"]).ok();
    clean("verify --accept with nothing to accept");
    env.run(&["recipients", "approve", "--yes"]).ok();
    clean("recipients approve with nothing pending");
    env.run(&["git", "setup"]).ok();
    clean("git setup, again");
    // A real change touches exactly its own files.
    update(&env, "api-keys", "mmm-two", "changed");
    assert_eq!(
        git(&env, &["status", "--porcelain"]),
        " M vaults/api-keys/mmm-two.age\n M vaults/api-keys/vault.toml\n"
    );
}

#[test]
fn the_merge_driver_keeps_a_store_elsewhere_working() {
    if !have_tool("git") {
        return;
    }
    // A store that is not `vaults/` at the top: `secrets/vaults`.
    let env = TestEnv::new();
    env.run(&["keygen"]).ok();
    let store: PathBuf = env.work.join("secrets");
    fs::create_dir_all(&store).unwrap();
    env.run_with(&["init"], |c| {
        c.current_dir(&store);
    })
    .ok();
    let run = |args: &[&str]| {
        env.run_with(args, |c| {
            c.current_dir(&store);
        })
    };
    run(&["vault", "create", "api-keys"]).ok();
    git(&env, &["init", "-q", "-b", "main"]);
    run(&["git", "setup"]).ok();
    commit_all(&env, "store");
    git(&env, &["checkout", "-qb", "feature"]);
    let put = |name: &str| {
        let mut c = env.cmd();
        c.args(["create", "-V", "api-keys", "-n", name, "--value-file", "-"])
            .current_dir(&store)
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"some value")
            .unwrap();
        assert!(child.wait().unwrap().success());
    };
    put("aaa-one");
    commit_all(&env, "a");
    git(&env, &["checkout", "-q", "main"]);
    put("zzz-two");
    commit_all(&env, "z");
    let out = merge(&env, "feature");
    assert!(out.status.success(), "{}", stderr(&out));
    run(&["verify"]).ok();
    let d = git(
        &env,
        &[
            "show",
            "HEAD~1",
            "--",
            "secrets/vaults/api-keys/zzz-two.age",
        ],
    );
    assert!(d.contains("<coffer secret, 10 bytes, value hidden>"), "{d}");
}

/// Set up from a shell whose PATH has coffer, then used by a git that runs
/// without it (an IDE, a desktop client): the drivers must still run.
#[test]
fn drivers_set_up_from_a_shell_still_run_from_a_git_without_coffer_on_its_path() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_original_value");
    git(&env, &["init", "-q", "-b", "main"]);
    let bin = env.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_coffer"), bin.join("coffer")).unwrap();
    let shell_path = format!("{}:{PATH}", bin.display());
    env.run_with(&["git", "setup"], |c| {
        c.env("PATH", &shell_path);
    })
    .ok();
    let textconv = git(&env, &["config", "diff.coffer.textconv"]);
    assert!(
        textconv.starts_with('/'),
        "not an absolute command: {textconv}"
    );
    commit_all(&env, "store");
    update(&env, "api-keys", "stripe-key", "sk_live_changed_value");
    // git's own PATH (the test's) has no coffer.
    let out = git_out(&env, &["diff"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("not found"), "{}", stderr(&out));
    assert!(text.contains("stripe-key"), "{text}");
    // A bare `coffer` recorded by an older setup is reported by --check.
    git(
        &env,
        &["config", "diff.coffer.textconv", "coffer git textconv"],
    );
    let r = env
        .run(&["git", "setup", "--check"])
        .fails("not fully set up")
        .transcript("git/check-a-driver-git-may-not-find");
    assert!(
        r.stdout()
            .contains("a program git may not find from an IDE"),
        "{}",
        r.stdout()
    );
}

/// `COFFER_SHOW_VALUES=1` opts one git command in to decrypted values,
/// like `coffer.showValues`; without it, values stay hidden.
#[test]
fn coffer_show_values_opts_one_git_command_in_to_values() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    update(&env, "api-keys", "stripe-key", "sk_live_new_value_123");
    commit_all(&env, "rotate stripe");
    let args = ["show", "HEAD", "--", "vaults/api-keys/stripe-key.age"];
    let hidden = git(&env, &args);
    assert!(!hidden.contains("sk_live"), "{hidden}");
    for on in ["1", "true"] {
        let out = git_cmd(&env, &args)
            .env("COFFER_SHOW_VALUES", on)
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&out.stdout);
        assert!(
            shown.contains("-sk_live_original_value\n+sk_live_new_value_123\n"),
            "COFFER_SHOW_VALUES={on}: {shown}"
        );
    }
}

/// git can cache textconv output in notes (`diff.coffer.cachetextconv`),
/// which would keep decrypted values in the repository's objects. Setup
/// turns the cache off even where it was on, and a `git log -p` with
/// values shown leaves no notes behind.
#[test]
fn git_setup_turns_the_textconv_cache_off_so_no_value_lands_in_git_notes() {
    if !have_tool("git") {
        return;
    }
    let env = repo();
    update(&env, "api-keys", "stripe-key", "sk_live_new_value_123");
    commit_all(&env, "rotate stripe");
    git(&env, &["config", "diff.coffer.cachetextconv", "true"]);
    env.run(&["git", "setup", "--check"])
        .fails("git is not fully set up");
    env.run(&["git", "setup"]).ok();
    assert_eq!(
        git(&env, &["config", "--bool", "diff.coffer.cachetextconv"]),
        "false\n"
    );
    git(&env, &["config", "coffer.showValues", "true"]);
    let log = git(&env, &["log", "-p"]);
    assert!(log.contains("+sk_live_new_value_123"), "{log}");
    let notes = git(&env, &["for-each-ref", "refs/notes/"]);
    assert_eq!(notes, "", "textconv output was cached in notes");
}

/// A merge made before `coffer git setup` leaves git's conflict markers in
/// `vault.toml`: coffer says so, and its steps (setup, then merge the file
/// again with `git checkout -m`) work.
#[test]
fn conflict_markers_in_a_manifest_point_to_setup_and_a_merge_again() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_original_value");
    git(&env, &["init", "-q", "-b", "main"]);
    commit_all(&env, "store");
    git(&env, &["checkout", "-qb", "side"]);
    env.put("api-keys", "side-key", "value-from-side");
    commit_all(&env, "side");
    git(&env, &["checkout", "-q", "main"]);
    env.put("api-keys", "main-key", "value-from-main");
    commit_all(&env, "main");
    // No driver: git merges vault.toml line by line and conflicts.
    let out = merge(&env, "side");
    assert!(!out.status.success(), "expected a conflict");
    env.run(&["list", "-V", "api-keys"])
        .fails("holds git conflict markers")
        .transcript("git/conflict-markers-in-a-manifest");
    env.run(&["git", "setup"]).ok();
    git(
        &env,
        &["checkout", "-m", "--", "vaults/api-keys/vault.toml"],
    );
    let list = env.run(&["list", "-V", "api-keys"]).ok().stdout();
    assert!(
        list.contains("main-key") && list.contains("side-key"),
        "{list}"
    );
}
