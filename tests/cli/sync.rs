//! `coffer sync` against the local stand-in of the platform's API.

use std::fs;

use crate::common::{Run, TestEnv};
use coffer_standin::{Config, Fault, StandIn};

const WS: &str = "4f6d2c1e-8a3b-4c5d-9e7f-0123456789ab";
const TOKEN: &str = "standin-token";

/// A store with two vaults and three secrets, and a stand-in.
fn setup() -> (TestEnv, StandIn) {
    let env = TestEnv::new();
    env.init(&["api-keys", "database"]);
    env.put("api-keys", "stripe-secret-key", "sk_live_one");
    env.put("api-keys", "sendgrid-api-key", "SG.two");
    env.put("database", "read-replica-password", "three");
    (env, StandIn::start(Config::default()))
}

/// A store synced once, whose `api-keys/stripe-secret-key` then changed
/// to `sk_live_rotated`.
fn synced_then_rotated() -> (TestEnv, StandIn) {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "stripe-secret-key"],
        b"sk_live_rotated",
    )
    .ok();
    (env, s)
}

/// Runs `coffer sync ARGS` against the stand-in with `token`.
fn sync_with(env: &TestEnv, s: &StandIn, token: &str, args: &[&str]) -> Run {
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    env.run_with(&all, |c| {
        c.env("TAILOR_PLATFORM_URL", s.url())
            .env("TAILOR_PLATFORM_TOKEN", token)
            .env("TAILOR_PLATFORM_WORKSPACE_ID", WS)
            .env("COFFER_SYNC_RETRY_BASE_MS", "1");
    })
}

fn sync(env: &TestEnv, s: &StandIn, args: &[&str]) -> Run {
    sync_with(env, s, TOKEN, args)
}

#[test]
fn first_sync_creates_every_vault_and_secret_with_the_platforms_names() {
    let (env, s) = setup();
    let r = sync(&env, &s, &[]).ok();
    assert_eq!(
        r.stdout(),
        "+ api-keys/\n+ api-keys/sendgrid-api-key\n+ api-keys/stripe-secret-key\n\
         + database/\n+ database/read-replica-password\n"
    );
    assert!(r.stderr().contains("Synced to workspace"), "{}", r.stderr());
    assert_eq!(s.vaults(WS), ["api-keys", "database"]);
    assert_eq!(
        s.value(WS, "api-keys", "stripe-secret-key").as_deref(),
        Some("sk_live_one")
    );
    assert_eq!(
        s.value(WS, "database", "read-replica-password").as_deref(),
        Some("three")
    );
    let calls = s.calls();
    let create = calls
        .iter()
        .find(|c| c.method == "CreateSecretManagerSecret")
        .unwrap();
    assert_eq!(
        create.fields,
        [
            "secretmanagerSecretName",
            "secretmanagerSecretValue",
            "secretmanagerVaultName",
            "workspaceId"
        ]
    );
    let vault = calls
        .iter()
        .find(|c| c.method == "CreateSecretManagerVault")
        .unwrap();
    assert_eq!(vault.fields, ["secretmanagerVaultName", "workspaceId"]);
    for c in &calls {
        assert_eq!(c.headers["content-type"], "application/json");
        assert_eq!(c.headers["connect-protocol-version"], "1");
        assert_eq!(c.headers["authorization"], format!("Bearer {TOKEN}"));
    }
    let mut writes = s.writes();
    writes.sort();
    assert_eq!(
        writes,
        [
            "CreateSecretManagerSecret",
            "CreateSecretManagerSecret",
            "CreateSecretManagerSecret",
            "CreateSecretManagerVault",
            "CreateSecretManagerVault"
        ]
    );
}

#[test]
fn a_second_sync_with_nothing_changed_sends_no_write() {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    s.clear_calls();
    let r = sync(&env, &s, &[]).ok();
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    assert_eq!(
        r.stdout(),
        "= api-keys/sendgrid-api-key\n= api-keys/stripe-secret-key\n\
         = database/read-replica-password\n"
    );
}

#[test]
fn a_changed_value_sends_exactly_one_update() {
    let (env, s) = synced_then_rotated();
    s.clear_calls();
    let r = sync(&env, &s, &[]).ok();
    assert_eq!(s.writes(), ["UpdateSecretManagerSecret"]);
    assert!(
        r.stdout()
            .contains("~ api-keys/stripe-secret-key (changed locally)"),
        "{}",
        r.stdout()
    );
    assert_eq!(
        s.value(WS, "api-keys", "stripe-secret-key").as_deref(),
        Some("sk_live_rotated")
    );
}

#[test]
fn a_value_changed_on_the_platform_is_pushed_again() {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    s.set_value(WS, "api-keys", "sendgrid-api-key", "changed-in-the-console");
    s.clear_calls();
    let r = sync(&env, &s, &[]).ok();
    assert!(
        r.stdout()
            .contains("~ api-keys/sendgrid-api-key (changed on the platform since the last sync)"),
        "{}",
        r.stdout()
    );
    assert_eq!(s.writes(), ["UpdateSecretManagerSecret"]);
    assert_eq!(
        s.value(WS, "api-keys", "sendgrid-api-key").as_deref(),
        Some("SG.two")
    );
    s.clear_calls();
    sync(&env, &s, &[]).ok();
    assert!(s.writes().is_empty());
}

#[test]
fn a_fresh_clone_without_state_pushes_each_secret_once() {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    fs::remove_dir_all(env.home.join(".local/state/coffer/sync")).unwrap();
    s.clear_calls();
    let r = sync(&env, &s, &[]).ok();
    assert!(r.stdout().contains("(no record of a previous sync)"));
    assert_eq!(s.writes().len(), 3);
    s.clear_calls();
    sync(&env, &s, &[]).ok();
    assert!(s.writes().is_empty());
}

#[test]
fn the_state_lives_outside_the_repository_and_holds_no_value() {
    let (env, s) = setup();
    let before = env.snapshot();
    sync(&env, &s, &[]).ok();
    assert_eq!(env.snapshot(), before, "sync wrote into the store");
    let dir = env.dir.path().join("state");
    sync(&env, &s, &[]).ok();
    let r = env.run_with(&["sync"], |c| {
        c.env("TAILOR_PLATFORM_URL", s.url())
            .env("TAILOR_PLATFORM_TOKEN", TOKEN)
            .env("TAILOR_PLATFORM_WORKSPACE_ID", WS)
            .env("COFFER_SYNC_STATE_DIR", &dir);
    });
    r.ok();
    let files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let json = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let text = fs::read_to_string(json).unwrap();
    for v in ["sk_live_one", "SG.two", "three"] {
        assert!(!text.contains(v), "{text}");
    }
    assert!(text.contains("updateTime"), "{text}");
}

/// Syncs again and checks that nothing was written: the store and the
/// platform agree, and the state knows it.
fn assert_a_resync_writes_nothing(env: &TestEnv, s: &StandIn) {
    s.clear_calls();
    sync(env, s, &[]).ok();
    assert!(s.writes().is_empty(), "{:?}", s.writes());
}

/// The state file of the first sync, in the default state directory.
fn state_file(env: &TestEnv) -> std::path::PathBuf {
    let dir = env.home.join(".local/state/coffer/sync");
    fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .expect("a state file")
}

/// A state file that is not the state (damaged, or written by something
/// else) is set aside with a warning: every secret is pushed once more,
/// and the state is written anew.
#[test]
fn a_damaged_state_file_is_set_aside_with_a_warning_and_every_secret_pushed_once_more() {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    fs::write(state_file(&env), "not the state").unwrap();
    s.clear_calls();
    let r = sync(&env, &s, &[]).ok();
    assert!(
        r.stderr().contains(
            "warning: the sync state file could not be read; every secret will be pushed once more"
        ),
        "{}",
        r.stderr()
    );
    assert_eq!(s.writes().len(), 3, "{:?}", s.writes());
    assert_a_resync_writes_nothing(&env, &s);
}

/// A link planted as the state file is not followed: it could make coffer
/// read another file as its state, and write it.
#[test]
fn a_state_file_that_is_a_link_is_refused() {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    let state = state_file(&env);
    let elsewhere = env.dir.path().join("elsewhere.json");
    fs::rename(&state, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &state).unwrap();
    s.clear_calls();
    sync(&env, &s, &[]).fails("is a symbolic link; coffer does not follow links to its own files");
    assert!(s.writes().is_empty(), "{:?}", s.writes());
}

/// A state file written before file digests (version 2) is still read:
/// nothing is pushed again, and the file is written anew with them.
#[test]
fn a_state_file_from_before_file_digests_is_read_and_nothing_is_pushed_again() {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    let json = state_file(&env);
    let text = fs::read_to_string(&json).unwrap();
    assert!(
        text.contains("\"version\": 3") && text.contains("fileDigest"),
        "{text}"
    );
    // As version 2 wrote it: the same records without their file digests.
    let mut state: serde_json::Value = serde_json::from_str(&text).unwrap();
    state["version"] = 2.into();
    for vault in state["vaults"].as_object_mut().unwrap().values_mut() {
        for record in vault.as_object_mut().unwrap().values_mut() {
            assert!(
                record
                    .as_object_mut()
                    .unwrap()
                    .remove("fileDigest")
                    .is_some()
            );
        }
    }
    let old = serde_json::to_string_pretty(&state).unwrap();
    fs::write(&json, &old).unwrap();
    s.clear_calls();
    let r = sync(&env, &s, &[]).ok();
    assert!(s.writes().is_empty(), "{:?}", s.writes());
    assert!(!r.stderr().contains("could not be read"), "{}", r.stderr());
    let text = fs::read_to_string(&json).unwrap();
    assert!(
        text.contains("\"version\": 3") && text.contains("fileDigest"),
        "{text}"
    );
}

#[test]
fn a_state_directory_inside_the_store_is_refused() {
    let (env, s) = setup();
    let r = env.run_with(&["sync"], |c| {
        c.env("TAILOR_PLATFORM_URL", s.url())
            .env("TAILOR_PLATFORM_TOKEN", TOKEN)
            .env("TAILOR_PLATFORM_WORKSPACE_ID", WS)
            .env("COFFER_SYNC_STATE_DIR", env.store().join("state"));
    });
    r.fails("refusing to keep the sync state inside the store")
        .transcript("sync/refusing-to-keep-the-sync-state-inside");
    assert!(s.calls().is_empty());
}

#[test]
fn nothing_is_deleted_remotely_without_prune() {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    env.run(&[
        "delete",
        "-V",
        "api-keys",
        "-n",
        "sendgrid-api-key",
        "--yes",
    ])
    .ok();
    s.set_value(WS, "old-vault", "leftover", "x");
    assert_a_resync_writes_nothing(&env, &s);
    assert!(s.value(WS, "api-keys", "sendgrid-api-key").is_some());
    assert!(s.value(WS, "old-vault", "leftover").is_some());
}

#[test]
fn prune_deletes_what_the_store_no_longer_has() {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    env.run(&[
        "delete",
        "-V",
        "api-keys",
        "-n",
        "sendgrid-api-key",
        "--yes",
    ])
    .ok();
    s.set_value(WS, "old-vault", "leftover", "x");
    s.clear_calls();
    let r = sync(&env, &s, &["--prune"]).ok();
    assert!(r.stdout().contains("- api-keys/sendgrid-api-key\n"));
    assert!(r.stdout().contains("- old-vault/leftover\n- old-vault/\n"));
    assert_eq!(s.secrets(WS, "api-keys"), ["stripe-secret-key"]);
    assert_eq!(s.vaults(WS), ["api-keys", "database"]);
    // Secrets first, then their vault.
    assert_eq!(
        s.writes(),
        [
            "DeleteSecretManagerSecret",
            "DeleteSecretManagerSecret",
            "DeleteSecretManagerVault"
        ]
    );
}

#[test]
fn prune_with_a_vault_flag_only_touches_that_vault() {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    s.set_value(WS, "api-keys", "stale", "x");
    s.set_value(WS, "database", "stale", "x");
    s.set_value(WS, "old-vault", "leftover", "x");
    sync(&env, &s, &["--prune", "-V", "api-keys"]).ok();
    assert!(s.value(WS, "api-keys", "stale").is_none());
    assert!(s.value(WS, "database", "stale").is_some());
    assert!(s.value(WS, "old-vault", "leftover").is_some());
}

#[test]
fn a_large_prune_without_a_terminal_needs_yes() {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    for i in 0..4 {
        s.set_value(WS, "api-keys", &format!("stale-{i}"), "x");
    }
    s.clear_calls();
    sync(&env, &s, &["--prune"])
        .fails("refusing to delete 4 things from the platform without confirmation")
        .stderr_has("hint: check the plan above, then pass --yes")
        .transcript("sync/refusing-to-delete-4-things-from-the");
    assert!(s.writes().is_empty());
    sync(&env, &s, &["--prune", "--yes"]).ok();
    assert_eq!(s.secrets(WS, "api-keys").len(), 2);
}

#[test]
fn dry_run_prints_the_plan_and_sends_no_write() {
    let (env, s) = setup();
    let r = sync(&env, &s, &["--dry-run"]).ok();
    assert!(r.stdout().contains("+ api-keys/stripe-secret-key"));
    assert!(r.stderr().contains("Dry run"), "{}", r.stderr());
    assert!(s.writes().is_empty());
    assert!(s.vaults(WS).is_empty());
}

#[test]
fn sync_completes_through_injected_503s_429s_and_dropped_connections() {
    let (env, s) = setup();
    s.fail_next(2, Fault::Unavailable);
    s.fail_next(1, Fault::ResourceExhausted);
    s.fail_next(1, Fault::Drop);
    s.fail_next(1, Fault::Unavailable);
    sync(&env, &s, &[]).ok();
    assert_eq!(
        s.value(WS, "api-keys", "stripe-secret-key").as_deref(),
        Some("sk_live_one")
    );
    assert_eq!(s.secrets(WS, "api-keys").len(), 2);
    s.clear_calls();
    sync(&env, &s, &[]).ok();
    assert!(s.writes().is_empty());
}

#[test]
fn writes_whose_responses_were_lost_count_as_done() {
    let (env, s) = setup();
    s.commit_then_fail_next_writes(5);
    sync(&env, &s, &[]).ok();
    assert_eq!(s.vaults(WS), ["api-keys", "database"]);
    assert_eq!(
        s.value(WS, "api-keys", "sendgrid-api-key").as_deref(),
        Some("SG.two")
    );
    assert_a_resync_writes_nothing(&env, &s);
}

#[test]
fn a_run_that_fails_part_way_says_what_was_not_applied_and_the_next_finishes() {
    let (env, s) = setup();
    s.break_vault("database");
    let r = sync(&env, &s, &[])
        .fails("2 of 5 changes were not applied (3 were)")
        .stderr_has("failed: + database/: CreateSecretManagerVault: the platform is unavailable")
        .stderr_has(
            "not attempted: + database/read-replica-password: its vault could not be created",
        )
        .stderr_has("hint: run `coffer sync` again to finish")
        .transcript("sync/2-of-5-changes-were-not-applied-3-were");
    assert!(r.stderr().contains("attempts"), "{}", r.stderr());
    assert_eq!(s.secrets(WS, "api-keys").len(), 2);
    s.repair();
    s.clear_calls();
    let r = sync(&env, &s, &[]).ok();
    assert_eq!(
        r.stdout(),
        "= api-keys/sendgrid-api-key\n= api-keys/stripe-secret-key\n\
         + database/\n+ database/read-replica-password\n"
    );
    let mut writes = s.writes();
    writes.sort();
    assert_eq!(
        writes,
        ["CreateSecretManagerSecret", "CreateSecretManagerVault"]
    );
}

#[test]
fn a_wrong_token_fails_clearly() {
    let (env, s) = setup();
    sync_with(&env, &s, "not-the-token", &[])
        .fails("could not read the workspace: ListSecretManagerVaults: the platform did not accept the token (unauthenticated)")
        .stderr_has("hint: TAILOR_PLATFORM_TOKEN was refused")
.transcript("sync/could-not-read-the-workspace");
    assert!(s.writes().is_empty());
}

#[test]
fn a_read_only_token_is_told_to_get_a_write_token() {
    // One vault, so that what is refused does not depend on timing: its
    // creation, and everything after it is not attempted.
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-secret-key", "sk_live_one");
    let s = StandIn::start(Config::default());
    let r = sync_with(&env, &s, "standin-read-only-token", &[])
        .fails("were not applied")
        .stderr_has("permission_denied")
        .stderr_has("hint: personal access tokens are read-only unless created with --write")
        .transcript("sync/a-read-only-token-cannot-write");
    // The summary says what happened: nothing (a refused write is not a
    // write), never "synced" or "nothing to sync".
    assert!(
        r.stderr().contains("Nothing was changed in workspace") && r.stderr().contains("0 writes)"),
        "{}",
        r.stderr()
    );
    assert!(!r.stderr().contains("Synced") && !r.stderr().contains("nothing to sync"));
    assert_eq!(s.writes(), ["CreateSecretManagerVault"]);
    // Refused once, it stops rather than send every other write: at most
    // the two vault creations, which may be sent together, reach the
    // platform (how many depends on timing).
    let (env, s) = setup();
    let r = sync_with(&env, &s, "standin-read-only-token", &[]).fails("were not applied");
    assert!(r.stderr().contains("Nothing was changed"), "{}", r.stderr());
    let writes = s.writes();
    assert!((1..=2).contains(&writes.len()), "{writes:?}");
    assert!(
        writes
            .iter()
            .all(|w| w.contains("CreateSecretManagerVault")),
        "{writes:?}"
    );
}

#[test]
fn missing_or_invalid_settings_are_clear_errors() {
    let (env, s) = setup();
    env.run_with(&["sync"], |c| {
        c.env("TAILOR_PLATFORM_TOKEN", TOKEN);
    })
    .fails("no workspace given")
    .stderr_has("hint: pass --workspace-id UUID or set TAILOR_PLATFORM_WORKSPACE_ID")
    .transcript("sync/no-workspace-given");
    env.run_with(&["sync", "--workspace-id", WS], |_| {})
        .fails("no platform token: TAILOR_PLATFORM_TOKEN is not set")
        .stderr_has("--write")
        .transcript("sync/no-platform-token-tailor-platform-token");
    env.run_with(&["sync", "--workspace-id", "my-workspace"], |c| {
        c.env("TAILOR_PLATFORM_TOKEN", TOKEN);
    })
    .fails("invalid workspace id (12 characters): it must be a UUID")
    .transcript("sync/invalid-workspace-id-12-characters-it");
    env.run_with(&["sync", "-w", WS], |c| {
        c.env("TAILOR_PLATFORM_TOKEN", TOKEN)
            .env("TAILOR_PLATFORM_URL", "http://platform.example.com");
    })
    .fails("plain http is accepted for a loopback host only")
    .transcript("sync/plain-http-is-accepted-for-a-loopback");
    sync(&env, &s, &["-V", "no-such-vault"])
        .fails("vault \"no-such-vault\" not found")
        .transcript("sync/vault-no-such-vault-not-found");
    assert!(s.calls().is_empty());
}

#[test]
fn lists_longer_than_a_page_are_followed_to_the_end() {
    let env = TestEnv::new();
    env.init(&["many"]);
    for i in 0..8 {
        env.put("many", &format!("secret-{i}"), &format!("value-{i}"));
    }
    let s = StandIn::start(Config {
        page_size: 3,
        ..Config::default()
    });
    sync(&env, &s, &[]).ok();
    assert_eq!(s.secrets(WS, "many").len(), 8);
    s.clear_calls();
    sync(&env, &s, &[]).ok();
    assert!(s.writes().is_empty());
    let pages = s
        .calls()
        .iter()
        .filter(|c| c.method == "ListSecretManagerSecrets")
        .count();
    assert_eq!(pages, 3);
    // With a remote secret on the last page only, prune finds it.
    s.set_value(WS, "many", "zz-last", "x");
    sync(&env, &s, &["--prune"]).ok();
    assert!(s.value(WS, "many", "zz-last").is_none());
}

#[test]
fn vaults_managed_by_define_secret_manager_are_skipped_with_a_warning() {
    let (env, s) = setup();
    s.set_value(WS, "database", "from-the-sdk", "x");
    s.set_labels(WS, "database", &[("sdk-name", "my-app")]);
    let r = sync(&env, &s, &["--prune"]).ok();
    assert!(
        r.stderr()
            .contains("warning: database/: managed by the SDK's defineSecretManager()"),
        "{}",
        r.stderr()
    );
    assert!(s.value(WS, "database", "read-replica-password").is_none());
    assert!(s.value(WS, "database", "from-the-sdk").is_some());
    assert!(
        s.writes()
            .iter()
            .all(|w| !w.contains("Vault") || w == "CreateSecretManagerVault")
    );
}

/// The platform SDK reads `TAILOR_PLATFORM_URL`, else `PLATFORM_URL`: so
/// does coffer, and the first wins when both are set.
#[test]
fn platform_url_is_a_fallback_for_tailor_platform_url() {
    let (env, s) = setup();
    env.run_with(&["sync"], |c| {
        c.env("PLATFORM_URL", s.url())
            .env("TAILOR_PLATFORM_TOKEN", TOKEN)
            .env("TAILOR_PLATFORM_WORKSPACE_ID", WS)
            .env("COFFER_SYNC_RETRY_BASE_MS", "1");
    })
    .ok();
    assert_eq!(s.vaults(WS), ["api-keys", "database"]);
    // Both set: TAILOR_PLATFORM_URL wins (this one refuses plain http to a
    // host that is not loopback, so it cannot have been the one used).
    env.run_with(&["sync"], |c| {
        c.env("PLATFORM_URL", s.url())
            .env("TAILOR_PLATFORM_URL", "http://platform.example.invalid")
            .env("TAILOR_PLATFORM_TOKEN", TOKEN)
            .env("TAILOR_PLATFORM_WORKSPACE_ID", WS);
    })
    .fails("invalid platform URL \"http://platform.example.invalid\"");
}

/// `tailor-sdk secret create` on a managed vault "releases" it: it drops
/// `sdk-name` and `sdk-version` but keeps `sdk-app-id`, and the SDK's next
/// deploy still treats the vault as its own. coffer must too; and a vault
/// whose `sdk-name` is empty is nobody's.
#[test]
fn a_released_vault_still_carrying_sdk_app_id_is_left_to_the_sdk() {
    let (env, s) = setup();
    s.set_value(WS, "database", "from-the-sdk", "x");
    s.set_labels(WS, "database", &[("sdk-app-id", "app-0042")]);
    let r = sync(&env, &s, &["--prune"]).ok();
    assert!(
        r.stderr().contains(
            "warning: database/: deployed by a platform SDK application (label sdk-app-id)"
        ),
        "{}",
        r.stderr()
    );
    assert!(s.value(WS, "database", "from-the-sdk").is_some());
    assert!(s.value(WS, "database", "read-replica-password").is_none());
    // An empty sdk-name is not managed: coffer syncs (and prunes) it.
    s.set_labels(WS, "database", &[("sdk-name", "")]);
    sync(&env, &s, &["--prune", "--yes"]).ok();
    assert!(s.value(WS, "database", "from-the-sdk").is_none());
    assert!(s.value(WS, "database", "read-replica-password").is_some());
}

#[test]
fn unverified_and_tampered_secrets_are_never_pushed() {
    let (env, s) = setup();
    // An entry without a MAC: a contribution nobody accepted yet.
    let manifest = env.store().join("api-keys/vault.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    let mut out = String::new();
    let mut in_stripe = false;
    for line in text.lines() {
        if line.starts_with("[secrets.") {
            in_stripe = line == "[secrets.stripe-secret-key]";
        }
        if !(in_stripe && line.starts_with("mac = ")) {
            out.push_str(line);
            out.push('\n');
        }
    }
    fs::write(&manifest, out).unwrap();
    // A swapped file: its digest no longer matches.
    fs::copy(
        env.store().join("api-keys/stripe-secret-key.age"),
        env.store().join("database/read-replica-password.age"),
    )
    .unwrap();
    let r = sync(&env, &s, &[])
        .fails("1 secret failed verification and was not pushed")
        .stderr_has("warning: api-keys/stripe-secret-key: unverified contribution")
        .transcript("sync/1-secret-failed-verification-and-was");
    assert!(
        r.stderr()
            .contains("database/read-replica-password failed verification")
    );
    assert!(r.stdout().contains("! api-keys/stripe-secret-key"));
    assert_eq!(s.secrets(WS, "api-keys"), ["sendgrid-api-key"]);
    assert!(s.secrets(WS, "database").is_empty());
}

#[test]
fn json_output_describes_the_plan_and_its_outcome() {
    let (env, s) = setup();
    let r = sync(&env, &s, &["--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["workspaceId"], WS);
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[0]["vault"], "api-keys");
    assert!(steps[0].get("secret").is_none());
    assert_eq!(steps[0]["action"], "create");
    assert_eq!(steps[1]["secret"], "sendgrid-api-key");
    assert!(steps.iter().all(|s| s["result"] == "applied"));
    assert_eq!(v["writes"], 5);
    let r = sync(&env, &s, &["--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout()).unwrap();
    assert_eq!(v["writes"], 0);
    assert!(
        v["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["result"] == "unchanged")
    );
}

#[test]
fn no_value_or_token_appears_in_any_output() {
    let sentinel = "SENTINEL-VALUE-7d1e";
    let token = "SENTINEL-TOKEN-93ab";
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "sentinel", sentinel);
    let s = StandIn::start(Config {
        token: token.into(),
        read_only_token: Some("SENTINEL-RO-TOKEN-5c2f".into()),
        ..Config::default()
    });
    let mut runs = Vec::new();
    for json in [&[][..], &["--json"][..]] {
        runs.push(sync_with(&env, &s, token, json));
        runs.push(sync_with(&env, &s, "SENTINEL-RO-TOKEN-5c2f", json));
        runs.push(sync_with(&env, &s, "SENTINEL-BAD-TOKEN-0000", json));
        s.set_value(WS, "api-keys", "sentinel", "elsewhere");
        s.break_vault("api-keys");
        runs.push(sync_with(&env, &s, token, json));
        s.repair();
        s.commit_then_fail_next_writes(1);
        runs.push(sync_with(
            &env,
            &s,
            token,
            &[json, &["--prune", "--dry-run"]].concat(),
        ));
        runs.push(sync_with(&env, &s, token, json));
    }
    assert!(runs.iter().any(|r| r.code() == 0));
    assert!(runs.iter().any(|r| r.code() == 1));
    for r in &runs {
        for out in [r.stdout(), r.stderr()] {
            for secret in [sentinel, token, "SENTINEL-RO-TOKEN", "SENTINEL-BAD-TOKEN"] {
                assert!(!out.contains(secret), "{secret} leaked in:\n{out}");
            }
        }
    }
    assert_eq!(
        s.value(WS, "api-keys", "sentinel").as_deref(),
        Some(sentinel)
    );
}

#[test]
fn sync_waits_as_long_as_a_429s_retry_after_asks() {
    let (env, s) = setup();
    s.fail_next(1, Fault::RetryAfter(1));
    sync(&env, &s, &[]).ok();
    // The first request (the vault list) is sent alone: its retry is the
    // next call, sent no sooner than asked although the backoff is 1 ms.
    let calls = s.calls();
    assert_eq!(calls[0].status, 429);
    assert_eq!(calls[1].method, calls[0].method);
    let waited = calls[1].at - calls[0].at;
    assert!(waited >= std::time::Duration::from_secs(1), "{waited:?}");
    assert_eq!(s.secrets(WS, "api-keys").len(), 2);
}

#[test]
fn a_platform_asking_to_wait_an_hour_gets_no_retry_and_the_error_says_how_long() {
    let (env, s) = setup();
    s.fail_next(1, Fault::RetryAfter(3600));
    sync(&env, &s, &[])
        .fails("it asked to retry after 3600 s")
        .stderr_has("resource_exhausted")
        .stderr_has("hint: the platform is limiting requests")
        .transcript("sync/it-asked-to-retry-after-3600-s");
    assert_eq!(s.calls().len(), 1);
    assert!(s.vaults(WS).is_empty());
}

#[test]
fn a_write_asked_to_wait_an_hour_stops_the_run_and_the_next_run_finishes() {
    let (env, s) = setup();
    s.fail_next_writes(1, Fault::RetryAfter(3600));
    // No transcript: which vault creation meets the fault depends on which
    // request arrives first, so the lines differ from run to run.
    sync(&env, &s, &[])
        .fails("it asked to retry after 3600 s")
        .stderr_has("not applied")
        .stderr_has(": the platform asked for a longer wait than a run makes");
    // Both vault creations may be in flight at once; nothing after them
    // is sent.
    assert!(s.writes().len() <= 2, "{:?}", s.writes());
    assert!(s.writes().iter().all(|m| m == "CreateSecretManagerVault"));
    s.clear_calls();
    sync(&env, &s, &[]).ok();
    assert_eq!(s.secrets(WS, "api-keys").len(), 2);
    assert_eq!(s.secrets(WS, "database").len(), 1);
}

/// A hostile platform answers a write with a message that repeats a
/// value: JSON-escaped, Go-quoted, cut short, or another secret's value
/// (one it holds from an earlier sync). None of them reaches the output.
#[test]
fn a_hostile_platform_cannot_make_sync_print_a_value_in_any_form() {
    use coffer_standin::Echo;
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let first = "first\"SENTINEL\\value\twith-quotes-and-more";
    let second = "second-SENTINEL-value-\"quoted\"\\slash";
    env.put("api-keys", "first-key", first);
    env.put("api-keys", "second-key", second);
    let s = StandIn::start(Config::default());
    sync(&env, &s, &[]).ok();
    for how in [Echo::Json, Echo::GoQuoted, Echo::Truncated, Echo::Other] {
        // A new value to push, and a platform that echoes.
        let new = format!("third-{how:?}-\"SENTINEL\"\\new\nvalue-long-enough");
        env.run_stdin(
            &["update", "-V", "api-keys", "-n", "first-key"],
            new.as_bytes(),
        )
        .ok();
        s.fail_next_writes(1, Fault::Echo(how));
        let r = sync(&env, &s, &[]).fails("not applied");
        let all = format!("{}{}", r.stdout(), r.stderr());
        assert!(!all.contains("SENTINEL"), "{how:?}: {all}");
        assert!(
            all.contains("[redacted]") || all.contains("message withheld"),
            "{how:?}: the message must still be reported: {all}"
        );
        sync(&env, &s, &[]).ok();
    }
    // The JSON report carries the same scrubbed message.
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "second-key"],
        b"json-\"SENTINEL\"-value-long-enough",
    )
    .ok();
    s.fail_next_writes(1, Fault::Echo(Echo::Json));
    let r = sync(&env, &s, &["--json"]).fails("not applied");
    assert!(!r.stdout().contains("SENTINEL"), "{}", r.stdout());
    assert!(r.stdout().contains("[redacted]"), "{}", r.stdout());
}

/// `sync` reads the platform while it reads the store. A hostile
/// platform answering a re-sync's first read with a value it holds (one
/// the run has not decrypted: its file is the one last pushed) shows
/// nothing of it: the message waits until the store's values are known.
#[test]
fn a_hostile_platform_answering_the_first_read_of_a_resync_with_a_value_shows_none_of_it() {
    use coffer_standin::Echo;
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "only-key", "only-SENTINEL-value-long-enough");
    let s = StandIn::start(Config::default());
    sync(&env, &s, &[]).ok();
    s.fail_next(1, Fault::Echo(Echo::Other));
    let r = sync(&env, &s, &[]).fails("could not read the workspace");
    let all = format!("{}{}", r.stdout(), r.stderr());
    assert!(!all.contains("SENTINEL"), "{all}");
    assert!(
        all.contains("[redacted]") || all.contains("message withheld"),
        "the message must still be reported: {all}"
    );
}

/// `sync` reads the platform while it reads the store. When the store
/// cannot be read (here, no identity opens the vault key), the run ends
/// with that error at once: it does not wait for the listing, here held
/// up by a platform that asks for a 5-second wait, and so never sends the
/// request again.
#[test]
fn a_store_that_cannot_be_read_ends_sync_without_waiting_for_a_slow_platform() {
    let (env, s) = setup();
    let stranger = env.dir.path().join("stranger.txt");
    env.identity_file(&stranger, 0o600);
    s.fail_next(1, Fault::RetryAfter(5));
    sync(&env, &s, &["-i", stranger.to_str().unwrap()]).fails("no identity can open vault");
    let lists = s
        .calls()
        .iter()
        .filter(|c| c.method == "ListSecretManagerVaults")
        .count();
    assert!(lists <= 1, "the listing was retried: {lists} requests");
}

/// A second sync of the same target waits for the first to release the
/// state; it must then plan against the platform as the first left it,
/// not as it was while the first was still writing. Otherwise the value
/// the first sync pushed looks "changed on the platform" to the second,
/// which pushes it again.
#[test]
fn a_sync_that_waits_for_another_plans_against_what_that_one_pushed() {
    use std::time::{Duration, Instant};
    let (env, s) = synced_then_rotated();
    // The first sync's update is asked to wait, holding the state's lock.
    s.fail_next_writes(1, Fault::RetryAfter(3));
    s.clear_calls();
    std::thread::scope(|t| {
        let first = t.spawn(|| sync(&env, &s, &[]));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !s
            .calls()
            .iter()
            .any(|c| c.method == "UpdateSecretManagerSecret")
        {
            assert!(Instant::now() < deadline, "the first sync sent no update");
            std::thread::sleep(Duration::from_millis(10));
        }
        let second = sync(&env, &s, &[]);
        let first = first.join().unwrap().ok();
        assert!(first.stdout().contains("~ api-keys/stripe-secret-key"));
        let second = second.ok();
        assert!(
            second.stderr().contains("waiting for another coffer sync"),
            "the second sync did not wait: {}",
            second.stderr()
        );
        assert_eq!(
            second.stdout(),
            "= api-keys/sendgrid-api-key\n= api-keys/stripe-secret-key\n\
             = database/read-replica-password\n"
        );
    });
    // The first sync's update, refused once then sent again; nothing else.
    assert_eq!(s.writes(), ["UpdateSecretManagerSecret"; 2]);
}

/// A secret someone removed could read is still pushed (the platform must
/// keep working), with a warning that it is due for rotation.
#[test]
fn rotation_due_secrets_are_pushed_with_a_warning() {
    let (env, s) = setup();
    let bob_key = env.identity_file(&env.dir.path().join("bob.txt"), 0o600);
    env.run(&["recipients", "add", "bob", &bob_key]).ok();
    env.run(&["recipients", "remove", "bob", "--yes"]).ok();
    let r = sync(&env, &s, &[]).ok();
    assert!(
        r.stderr().contains(
            "warning: api-keys/stripe-secret-key is due for rotation: someone who could read it was removed"
        ),
        "{}",
        r.stderr()
    );
    assert_eq!(
        s.value(WS, "api-keys", "stripe-secret-key").as_deref(),
        Some("sk_live_one")
    );
    let v: serde_json::Value =
        serde_json::from_str(&sync(&env, &s, &["--json", "--dry-run"]).ok().stdout()).unwrap();
    let step = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["secret"] == "stripe-secret-key")
        .unwrap();
    assert_eq!(step["rotationDue"], true, "{step}");
}

/// More than 3 deletions on a terminal: coffer shows the plan and asks;
/// anything but "yes" deletes nothing, "yes" deletes them.
#[test]
fn a_large_prune_on_a_terminal_asks_and_deletes_only_on_yes() {
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    for i in 0..4 {
        s.set_value(WS, "api-keys", &format!("stale-{i}"), "x");
    }
    let prune = || {
        let mut c = env.cmd();
        c.args(["sync", "--prune"])
            .env("TAILOR_PLATFORM_URL", s.url())
            .env("TAILOR_PLATFORM_TOKEN", TOKEN)
            .env("TAILOR_PLATFORM_WORKSPACE_ID", WS)
            .env("COFFER_SYNC_RETRY_BASE_MS", "1");
        c
    };
    let prompt = "Delete 4 things from the platform, as listed above? Type \"yes\" to continue: ";
    s.clear_calls();
    let (out, code) = crate::common::run_in_pty(prune(), Some(prompt), "y\n");
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("- api-keys/stale-0"),
        "the plan comes first: {out}"
    );
    assert!(out.contains("sync cancelled: nothing was changed"), "{out}");
    assert!(s.writes().is_empty());
    let (out, code) = crate::common::run_in_pty(prune(), Some(prompt), "yes\n");
    assert_eq!(code, 0, "{out}");
    assert_eq!(s.secrets(WS, "api-keys").len(), 2);
}

/// The sync state lives outside the repository, in a directory only its
/// owner can enter, in files only its owner can read.
#[test]
fn the_sync_state_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (env, s) = setup();
    sync(&env, &s, &[]).ok();
    let dir = env.home.join(".local/state/coffer/sync");
    let mode = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{dir:?} has mode {mode:o}");
    let files: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "json"))
    );
    for f in files {
        let mode = fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{f:?} has mode {mode:o}");
    }
}

/// `COFFER_SYNC_STATE_DIR` pointing into the store is refused however it
/// is spelled: through `..`, `.`, a relative path or a link.
#[test]
fn a_state_directory_inside_the_store_is_refused_however_it_is_spelled() {
    let (env, s) = setup();
    fs::create_dir(env.work.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(env.store(), env.work.join("link")).unwrap();
    let store = env.store();
    let spellings = [
        store.join("state").display().to_string(),
        env.work
            .join("elsewhere/../vaults/state")
            .display()
            .to_string(),
        env.work
            .join("nope/../vaults/./state")
            .display()
            .to_string(),
        "vaults/state".to_owned(),
        "./elsewhere/../vaults/api-keys/../state".to_owned(),
        env.work.join("link/state").display().to_string(),
    ];
    for dir in spellings {
        env.run_with(&["sync"], |c| {
            c.env("TAILOR_PLATFORM_URL", s.url())
                .env("TAILOR_PLATFORM_TOKEN", TOKEN)
                .env("TAILOR_PLATFORM_WORKSPACE_ID", WS)
                .env("COFFER_SYNC_STATE_DIR", &dir);
        })
        .fails("refusing to keep the sync state inside the store");
    }
    assert!(s.writes().is_empty());
    assert!(!store.join("state").exists());
}
