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
