//! Attacks by another local user, a repository writer without a key and a
//! hostile platform, tried the way an attacker would, and refused.

use std::fs;
use std::os::unix::fs::chown;

use crate::common::TestEnv;

/// The uid of `nobody`: another user who owns nothing of ours.
const OTHER_UID: u32 = 65534;

/// Whether this process may give files away (it must be root).
fn can_chown() -> bool {
    let probe = tempfile::tempdir().unwrap();
    let ok = chown(probe.path(), Some(OTHER_UID), None).is_ok();
    if !ok {
        if std::env::var("COFFER_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("this test needs to run as root to create another user's files");
        }
        eprintln!("note: skipping: creating another user's files needs root");
    }
    ok
}

fn chown_tree(path: &std::path::Path, uid: u32) {
    chown(path, Some(uid), None).unwrap();
    if path.is_dir() {
        for e in fs::read_dir(path).unwrap() {
            chown_tree(&e.unwrap().path(), uid);
        }
    }
}

/// Another user plants `vaults/` in a shared directory above the victim's
/// working directory: discovery must not pick it up.
#[test]
fn a_store_planted_by_another_user_above_the_working_directory_is_refused() {
    if !can_chown() {
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "attacker-value-1234");
    // The "shared" directory is the test's work dir, handed to another
    // user with the store in it; the victim works in a directory of their
    // own below it.
    let project = env.work.join("project");
    fs::create_dir(&project).unwrap();
    chown_tree(&env.store(), OTHER_UID);
    chown(&env.work, Some(OTHER_UID), None).unwrap();
    let marker = env.dir.path().join("ran");
    let before = env.snapshot();
    let in_project = |c: &mut std::process::Command| {
        c.current_dir(&project);
    };
    let r = env.run_with(
        &[
            "run",
            "-V",
            "api-keys",
            "--",
            "touch",
            marker.to_str().unwrap(),
        ],
        in_project,
    );
    assert_eq!(r.code(), 1, "{}", r.stderr());
    r.transcript("hardening/store-owned-by-another-user");
    assert!(
        !marker.exists(),
        "the program must not run with the planted values"
    );
    env.run_with(
        &[
            "create",
            "-V",
            "api-keys",
            "-n",
            "victim-key",
            "-v",
            "victim-secret",
        ],
        in_project,
    )
    .fails("owned by another user");
    assert_eq!(env.snapshot(), before, "nothing may be written into it");
    // Accepted on purpose: the allow-list, or naming the store.
    let store = env.store();
    env.run_with(&["list", "-V", "api-keys"], |c| {
        c.current_dir(&project)
            .env("COFFER_SAFE_DIRECTORIES", &store);
    })
    .ok();
    env.run_with(
        &["list", "-V", "api-keys", "--store", store.to_str().unwrap()],
        in_project,
    )
    .ok();
}

/// With `.` or an empty entry in `PATH` (some shells' set-ups), a plugin
/// binary planted in the current directory must never run: not on a `get`
/// with a plugin identity, not on `recipients add` of a plugin recipient.
#[test]
fn a_plugin_planted_in_the_current_directory_never_runs() {
    let env = TestEnv::new();
    let Some(plugins) = crate::teams::counter_plugin(&env) else {
        return;
    };
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_plugin_path_test");
    let (recipient, identity) = crate::teams::counter_identity(&env, &plugins);
    // The plugin sits in the working directory, reachable only through
    // the relative entries of PATH.
    fs::copy(
        plugins.join("age-plugin-counter"),
        env.work.join("age-plugin-counter"),
    )
    .unwrap();
    fs::set_permissions(
        env.work.join("age-plugin-counter"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let log = env.dir.path().join("plugin.log");
    for path in [
        format!(".:{}", crate::common::PATH),
        format!(":{}", crate::common::PATH),
    ] {
        let planted = |c: &mut std::process::Command| {
            c.env("PATH", &path).env("COFFER_TEST_PLUGIN_LOG", &log);
        };
        let r = env.run_with(
            &[
                "get",
                "-V",
                "api-keys",
                "-n",
                "stripe-key",
                "-i",
                identity.to_str().unwrap(),
            ],
            planted,
        );
        assert_eq!(r.code(), 1, "{}", r.stderr());
        env.run_with(&["recipients", "add", "yubikey", &recipient], planted)
            .fails("age-plugin-counter");
        assert!(!log.exists(), "the planted plugin ran (PATH={path})");
    }
    // The same plugin on an absolute PATH entry does run: the test sees it.
    let real = format!("{}:{}", plugins.display(), crate::common::PATH);
    env.run_with(&["recipients", "add", "yubikey", &recipient], |c| {
        c.env("PATH", &real).env("COFFER_TEST_PLUGIN_LOG", &log);
    })
    .ok();
    assert!(
        log.exists(),
        "the plugin on an absolute PATH entry must run"
    );
}

/// A writer of the repository plants secrets named after variables that
/// make programs run code as they start (`bash-env`, `ld-preload`,
/// `node-options`…): `run` refuses them before decrypting anything, and
/// the shell never reads the attacker's start-up file.
#[test]
fn run_refuses_a_planted_secret_that_would_make_the_shell_run_attacker_code() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let marker = env.dir.path().join("attacker-ran");
    let script = env.dir.path().join("evil.sh");
    fs::write(&script, format!("touch '{}'\n", marker.display())).unwrap();
    env.put("api-keys", "bash-env", script.to_str().unwrap());
    let r = env.run(&["run", "-V", "api-keys", "--", "bash", "-c", "true"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(!marker.exists(), "bash must not have read BASH_ENV");
    r.transcript("hardening/run-refuses-bash-env");
    // Every class of the list, one name each.
    for (name, var) in [
        ("ld-preload", "LD_PRELOAD"),
        ("dyld-insert-libraries", "DYLD_INSERT_LIBRARIES"),
        ("prompt-command", "PROMPT_COMMAND"),
        ("node-options", "NODE_OPTIONS"),
        ("pythonstartup", "PYTHONSTARTUP"),
        ("perl5opt", "PERL5OPT"),
        ("java-tool-options", "JAVA_TOOL_OPTIONS"),
        ("git-ssh-command", "GIT_SSH_COMMAND"),
        ("path", "PATH"),
    ] {
        env.put("api-keys", name, "attacker-value");
        let r = env.run(&["run", "-V", "api-keys", "--only", name, "--", "true"]);
        assert_eq!(r.code(), 1, "{name}: {}", r.stderr());
        assert!(
            r.stderr()
                .contains(&format!("would set {var}, which coffer refuses"))
                && r.stderr().contains(&format!("--allow-var {var}")),
            "{name}: {}",
            r.stderr()
        );
    }
}

/// Allowed by name, the variable is set; allowing another name is not
/// enough, and a prefix makes the name harmless.
#[test]
fn run_sets_a_refused_variable_only_when_allowed_by_its_own_name() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "node-options", "--max-old-space-size=64");
    env.run(&["run", "-V", "api-keys", "--allow-var", "PATH", "--", "true"])
        .fails("would set NODE_OPTIONS");
    let r = env
        .run(&[
            "run",
            "-V",
            "api-keys",
            "--allow-var",
            "NODE_OPTIONS",
            "--",
            "printenv",
            "NODE_OPTIONS",
        ])
        .ok();
    assert_eq!(r.stdout(), "--max-old-space-size=64\n");
    let r = env
        .run(&[
            "run",
            "-V",
            "api-keys",
            "--prefix",
            "APP_",
            "--",
            "printenv",
            "APP_NODE_OPTIONS",
        ])
        .ok();
    assert_eq!(r.stdout(), "--max-old-space-size=64\n");
}

/// A keyless writer replaces `vault-key.age` with a well-formed file of
/// the right shape (one stanza per listed recipient) that opens for
/// nobody: CI, holding a key the manifest lists, must fail, not report
/// "structure only" and pass.
#[test]
fn verify_fails_when_a_listed_key_cannot_open_a_replaced_vault_key() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_SENTINEL");
    let other = TestEnv::new();
    other.init(&["api-keys"]);
    let junk = fs::read(other.store().join("api-keys/vault-key.age")).unwrap();
    fs::write(env.store().join("api-keys/vault-key.age"), junk).unwrap();
    let r = env.run(&["verify"]).fails("verification failed");
    assert!(
        r.stdout()
            .contains("vault-key.age does not open with the key of recipient"),
        "{}",
        r.stdout()
    );
    r.transcript("hardening/verify-replaced-vault-key");
    // Without a listed key there is no evidence either way: structure only.
    let hidden = env.dir.path().join("hidden.txt");
    fs::rename(env.default_identity(), &hidden).unwrap();
    let r = env.run(&["verify"]);
    assert!(r.stdout().contains("structure only"), "{}", r.stdout());
    assert!(
        !r.stdout().contains("does not open with the key"),
        "{}",
        r.stdout()
    );
}

/// A keyless writer commits a file whose name holds a newline and an
/// escape sequence: `verify` reports it, escaped, and cannot be made to
/// print a forged `ok` line or move the terminal's cursor.
#[test]
fn verify_escapes_file_names_so_a_newline_cannot_forge_an_ok_line() {
    let env = TestEnv::new();
    env.init(&["api-keys", "database"]);
    env.put("api-keys", "stripe-key", "sk_live_SENTINEL");
    env.put("database", "db-password", "pw_SENTINEL");
    let forged = "x.age\ndatabase: ok (0 secrets, with its key)\n\u{1b}[2J";
    fs::write(env.store().join("api-keys").join(forged), "junk").unwrap();
    let r = env.run(&["verify"]).fails("verification failed");
    let out = r.stdout();
    assert!(!out.contains('\u{1b}'), "{out:?}");
    assert!(
        !out.lines()
            .any(|l| l.starts_with("database: ok (0 secrets")),
        "a forged line: {out}"
    );
    assert!(
        out.contains("x.age\\ndatabase: ok (0 secrets, with its key)\\n\\u{1b}[2J is not listed in the manifest"),
        "{out}"
    );
}

/// A hostile platform lists secret names that break its own rule, with a
/// newline that would forge a plan line and an escape sequence: the plan
/// and the summary show them escaped, and no delete is ever sent for them.
#[test]
fn sync_escapes_platform_names_and_never_deletes_one_that_breaks_the_rule() {
    use coffer_standin::{Config, StandIn};
    const WS: &str = "4f6d2c1e-8a3b-4c5d-9e7f-0123456789ab";
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_value");
    let s = StandIn::start(Config::default());
    let evil = "evil\n+ api-keys/forged\u{1b}[2J";
    s.set_value(WS, "api-keys", evil, "x");
    s.set_value(WS, "api-keys", "stale-key", "x");
    let r = env
        .run_with(&["sync", "--prune", "--yes"], |c| {
            c.env("TAILOR_PLATFORM_URL", s.url())
                .env("TAILOR_PLATFORM_TOKEN", "standin-token")
                .env("TAILOR_PLATFORM_WORKSPACE_ID", WS)
                .env("COFFER_SYNC_RETRY_BASE_MS", "1");
        })
        .ok();
    let all = format!("{}{}", r.stdout(), r.stderr());
    assert!(!all.contains('\u{1b}'), "{all:?}");
    assert!(!all.lines().any(|l| l == "+ api-keys/forged"), "{all}");
    assert!(
        r.stdout().contains(
            "! api-keys/evil\\n+ api-keys/forged\\u{1b}[2J (the platform listed this name"
        ),
        "{}",
        r.stdout()
    );
    assert!(s.value(WS, "api-keys", evil).is_some(), "it was deleted");
    assert!(s.value(WS, "api-keys", "stale-key").is_none());
}

/// File names found by `scan` and `refs check` are printed escaped.
#[test]
fn scan_and_refs_escape_the_file_names_they_print() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_SENTINEL_1234");
    let name = "leak\nok.txt:1: fine\u{1b}]0;title\u{7}";
    fs::write(env.work.join(name), "key = sk_live_SENTINEL_1234\n").unwrap();
    let r = env.run(&["scan", "."]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(!r.stdout().contains('\u{1b}') && !r.stdout().contains('\u{7}'));
    assert!(
        r.stdout()
            .contains("leak\\nok.txt:1: fine\\u{1b}]0;title\\u{7}:1: api-keys/stripe-key"),
        "{}",
        r.stdout()
    );
    let refs = "refs\n\u{1b}[31m.json";
    fs::write(
        env.work.join(refs),
        r#"{"h": {"vault": "api-keys", "key": "missing-key"}}"#,
    )
    .unwrap();
    let r = env.run(&["refs", "check", "."]);
    let all = format!("{}{}", r.stdout(), r.stderr());
    assert!(!all.contains('\u{1b}'), "{all:?}");
    assert!(all.contains("refs\\n\\u{1b}[31m.json"), "{all}");
}

/// Files coffer writes outside the store are never written through a
/// link: `keygen -o` onto a link (even a dangling one) refuses and creates
/// nothing where it points; `man --dir` replaces a planted link with its
/// page and leaves the link's target alone; neither leaves a temp file.
#[test]
fn keygen_and_man_never_write_through_a_planted_link() {
    let env = TestEnv::new();
    let victim = env.dir.path().join("bashrc");
    fs::write(&victim, "# the user's own file\n").unwrap();
    let dangling = env.dir.path().join("not-yet");
    std::os::unix::fs::symlink(&victim, env.work.join("key.txt")).unwrap();
    std::os::unix::fs::symlink(&dangling, env.work.join("new-key.txt")).unwrap();
    for name in ["key.txt", "new-key.txt"] {
        env.run(&["keygen", "-o", name]).fails("already exists");
    }
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        "# the user's own file\n"
    );
    assert!(!dangling.exists(), "keygen wrote through a dangling link");
    // A fresh name is written whole, 0600, with nothing left beside it.
    env.run(&["keygen", "-o", "fresh.txt"]).ok();
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(env.work.join("fresh.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, 0o600);
    let man = env.dir.path().join("man1");
    fs::create_dir(&man).unwrap();
    std::os::unix::fs::symlink(&victim, man.join("coffer.1")).unwrap();
    env.run(&["man", "--dir", man.to_str().unwrap()]).ok();
    assert_eq!(
        fs::read_to_string(&victim).unwrap(),
        "# the user's own file\n"
    );
    assert!(
        !fs::symlink_metadata(man.join("coffer.1"))
            .unwrap()
            .is_symlink()
    );
    for dir in [&env.work, &man] {
        let temps: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".coffer-tmp"))
            .collect();
        assert!(temps.is_empty(), "{temps:?}");
    }
}

/// A committed link where coffer (or `git setup`) writes in the store is
/// a problem `verify` reports.
#[test]
fn verify_reports_a_link_where_coffer_writes_in_the_store() {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.run(&["verify"]).ok();
    for name in [".gitattributes", ".gitignore"] {
        let path = env.store().join(name);
        let _ = fs::remove_file(&path);
        std::os::unix::fs::symlink("../../home/.bashrc", &path).unwrap();
        let r = env.run(&["verify"]).fails("verification failed");
        assert!(
            r.stdout().contains(&format!("{name} is a symbolic link")),
            "{name}: {}",
            r.stdout()
        );
        fs::remove_file(&path).unwrap();
    }
}

/// A fresh clone holds `vaults` as a link to somewhere else: `init` refuses
/// it rather than write the store's files through it.
#[test]
fn init_refuses_a_store_directory_that_is_a_link() {
    let env = TestEnv::new();
    let elsewhere = env.dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.store()).unwrap();
    env.run(&["keygen"]).ok();
    env.run(&["init"]).fails("symbolic link");
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
}
