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
