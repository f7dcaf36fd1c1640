//! Moving in: `import --from sops` through the real `sops` (with an age
//! key made here), and plain YAML and nested JSON.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{PATH, TestEnv, have_tool};

fn store() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env
}

/// An age key for sops, in the test directory. Returns (key file,
/// public key).
fn sops_key(env: &TestEnv) -> (PathBuf, String) {
    let key = env.dir.path().join("sops-age.txt");
    let out = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .env_clear()
        .env("PATH", PATH)
        .output()
        .unwrap();
    assert!(out.status.success());
    let public = fs::read_to_string(&key)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_owned();
    (key, public)
}

/// Encrypts `plain` (named like the file to make, so sops picks the
/// format) with the real sops.
fn sops_encrypt(env: &TestEnv, public: &str, name: &str, plain: &str) -> PathBuf {
    let src = env.work.join(format!("plain-{}", name.replace('/', "-")));
    fs::write(&src, plain).unwrap();
    let out = Command::new("sops")
        .args(["--encrypt", "--age", public])
        .arg(&src)
        .env_clear()
        .env("HOME", &env.home)
        .env("PATH", PATH)
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .current_dir(&env.work)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sops: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::remove_file(&src).unwrap();
    let dst = env.work.join(name);
    fs::write(&dst, &out.stdout).unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("s3cr3t"));
    dst
}

fn have_sops() -> bool {
    have_tool("sops") && have_tool("age-keygen")
}

fn import_sops(env: &TestEnv, key: &Path, file: &str, extra: &[&str]) -> crate::common::Run {
    let mut args = vec!["import", "-V", "api-keys", "--from", "sops", file];
    args.extend_from_slice(extra);
    env.run_with(&args, |c| {
        c.env("SOPS_AGE_KEY_FILE", key)
            .env("SOPS_DISABLE_VERSION_CHECK", "1");
    })
}

#[test]
fn sops_yaml_json_dotenv_and_ini_files_import_value_by_value() {
    if !have_sops() {
        return;
    }
    let env = store();
    let (key, public) = sops_key(&env);
    let yaml = sops_encrypt(
        &env,
        &public,
        "secrets.yaml",
        "db:\n  password: \"s3cr3t 'q' \\\"d\\\"\"\n  port: 5432\nstripe_secret_key: |\n  line 1\n  line 2\n",
    );
    let _ = yaml;
    import_sops(&env, &key, "secrets.yaml", &[])
        .ok()
        .stderr_has("+ db-password\n+ db-port\n+ stripe-secret-key\n")
        .stderr_has("3 created, 0 updated, 0 unchanged");
    assert_eq!(env.get("api-keys", "db-password"), "s3cr3t 'q' \"d\"");
    assert_eq!(env.get("api-keys", "db-port"), "5432");
    assert_eq!(env.get("api-keys", "stripe-secret-key"), "line 1\nline 2\n");
    // Again: nothing changes.
    let before = env.snapshot();
    import_sops(&env, &key, "secrets.yaml", &[])
        .ok()
        .stderr_has("0 created, 0 updated, 3 unchanged");
    assert_eq!(env.snapshot(), before);

    sops_encrypt(
        &env,
        &public,
        "app.json",
        "{\"API_TOKEN\": \"s3cr3t-json\", \"nested\": {\"Key.Name\": \"v\\nw\"}}",
    );
    import_sops(&env, &key, "app.json", &[]).ok();
    assert_eq!(env.get("api-keys", "api-token"), "s3cr3t-json");
    assert_eq!(env.get("api-keys", "nested-key-name"), "v\nw");

    sops_encrypt(
        &env,
        &public,
        "prod.env",
        "SENDGRID_KEY=s3cr3t=with=equals\nOTHER_VALUE=x y\n",
    );
    import_sops(&env, &key, "prod.env", &[]).ok();
    assert_eq!(env.get("api-keys", "sendgrid-key"), "s3cr3t=with=equals");
    assert_eq!(env.get("api-keys", "other-value"), "x y");

    sops_encrypt(
        &env,
        &public,
        "legacy.ini",
        "[database]\nuser = admin\npass = s3cr3t-ini\n",
    );
    import_sops(&env, &key, "legacy.ini", &[]).ok();
    assert_eq!(env.get("api-keys", "database-pass"), "s3cr3t-ini");
    assert_eq!(env.get("api-keys", "database-user"), "admin");
}

#[test]
fn a_dry_run_reads_through_sops_and_writes_nothing() {
    if !have_sops() {
        return;
    }
    let env = store();
    let (key, public) = sops_key(&env);
    sops_encrypt(&env, &public, "s.yaml", "a_key: s3cr3t\n");
    let before = env.snapshot();
    import_sops(&env, &key, "s.yaml", &["--dry-run"])
        .ok()
        .stderr_has("+ a-key\n")
        .stderr_has("nothing was written");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn names_that_cannot_be_mapped_or_collide_are_listed_before_anything_is_written() {
    if !have_sops() {
        return;
    }
    let env = store();
    let (key, public) = sops_key(&env);
    sops_encrypt(
        &env,
        &public,
        "bad.yaml",
        "db:\n  password: s3cr3t1\ndb.password: s3cr3t2\nx: s3cr3t3\ngood_one: s3cr3t4\nempty: null\n",
    );
    let before = env.snapshot();
    import_sops(&env, &key, "bad.yaml", &[])
        .transcript("migrate/3-entries-in-bad-yaml-cannot-be-imported");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_file_sops_cannot_decrypt_is_an_error_and_changes_nothing() {
    if !have_sops() {
        return;
    }
    let env = store();
    let (_, public) = sops_key(&env);
    sops_encrypt(&env, &public, "s.yaml", "a_key: s3cr3t\n");
    let other = env.dir.path().join("other-key.txt");
    Command::new("age-keygen")
        .arg("-o")
        .arg(&other)
        .env_clear()
        .env("PATH", PATH)
        .output()
        .unwrap();
    let before = env.snapshot();
    let r = import_sops(&env, &other, "s.yaml", &[]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    // sops's own message comes first; coffer's error ends the output.
    let err = r.stderr();
    assert!(
        err.contains("error: sops could not decrypt s.yaml (exit "),
        "{err}"
    );
    assert!(!err.contains("s3cr3t"));
    assert_eq!(env.snapshot(), before);
}

#[test]
fn a_missing_sops_is_named_with_how_to_install_it() {
    let env = store();
    fs::write(env.work.join("s.yaml"), "a: b\n").unwrap();
    let empty = env.dir.path().join("empty-bin");
    fs::create_dir(&empty).unwrap();
    // A `sops` planted in the current directory (a repository could ship
    // one) is never run: relative PATH entries are not searched.
    let planted = env.work.join("sops");
    let marker = env.dir.path().join("planted-ran");
    fs::write(
        &planted,
        format!("#!/bin/sh\ntouch '{}'\necho '{{}}'\n", marker.display()),
    )
    .unwrap();
    fs::set_permissions(&planted, fs::Permissions::from_mode(0o755)).unwrap();
    env.run_with(
        &["import", "-V", "api-keys", "--from", "sops", "s.yaml"],
        |c| {
            c.env("PATH", format!(".:sops-dir:{}", empty.display()));
        },
    )
    .transcript("migrate/sops-was-not-found-on-path");
    assert!(!marker.exists(), "the planted sops ran");
}

#[test]
fn plain_yaml_and_nested_json_import_by_the_flattening_rule() {
    let env = store();
    fs::write(
        env.work.join("config.yml"),
        "# comment\ndatabase:\n  url: \"postgres://u:p@h/db\"\n  pool_size: 5\nfeature-flags:\n  new_ui: true\n",
    )
    .unwrap();
    env.run(&["import", "-V", "api-keys", "config.yml"])
        .ok()
        .stderr_has("+ database-pool-size\n+ database-url\n+ feature-flags-new-ui\n");
    assert_eq!(env.get("api-keys", "database-url"), "postgres://u:p@h/db");
    assert_eq!(env.get("api-keys", "feature-flags-new-ui"), "true");
    fs::write(
        env.work.join("nested.json"),
        "{\"svc\": {\"api\": {\"token\": \"t-1\"}}, \"list\": [\"a\", \"b\"]}",
    )
    .unwrap();
    env.run(&["import", "-V", "api-keys", "nested.json"])
        .ok()
        .stderr_has("+ list-0\n+ list-1\n+ svc-api-token\n");
    assert_eq!(env.get("api-keys", "svc-api-token"), "t-1");
}

#[test]
fn a_yaml_file_that_is_not_a_mapping_is_refused() {
    let env = store();
    fs::write(env.work.join("list.yaml"), "- a\n- b\n").unwrap();
    env.run(&["import", "-V", "api-keys", "list.yaml"])
        .transcript("migrate/list-yaml-is-not-a-valid-yaml-import");
    fs::write(env.work.join("bad.yaml"), "a: [unclosed\n").unwrap();
    env.run(&["import", "-V", "api-keys", "bad.yaml"])
        .transcript("migrate/bad-yaml-is-not-a-valid-yaml-import");
}

#[test]
fn sops_needs_a_file_and_ini_needs_sops() {
    let env = store();
    env.run(&["import", "-V", "api-keys", "--from", "sops", "-"])
        .transcript("migrate/from-sops-needs-a-file-not-stdin");
    fs::write(env.work.join("legacy.ini"), "[db]\npass = x\n").unwrap();
    env.run(&["import", "-V", "api-keys", "legacy.ini"])
        .transcript("migrate/coffer-reads-ini-files-only-through-sops");
}

/// Steps 1 and 2 of docs/migrate.md's sops migration, as written there.
fn documented_steps() -> (String, String) {
    let docs = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/migrate.md")).unwrap();
    let start = docs.find("# 1. One vault per sops file").unwrap();
    let two = docs.find("# 2. Check nothing was lost").unwrap();
    let end = docs.find("# 3. Point programs").unwrap();
    (docs[start..two].to_owned(), docs[two..end].to_owned())
}

#[test]
fn the_documented_check_finds_nothing_lost() {
    if !have_sops() || !have_tool("jq") || !have_tool("bash") {
        return;
    }
    let env = TestEnv::new();
    env.init(&[]);
    let (key, public) = sops_key(&env);
    fs::create_dir(env.work.join("secrets")).unwrap();
    sops_encrypt(
        &env,
        &public,
        "secrets/prod.enc.yaml",
        "db:\n  password: \"s3cr3t 'q' \\\"d\\\" $x\"\n  port: 5432\nStripe_Key: |\n  multi\n  line\nflags: [true, off]\n",
    );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_coffer")).parent().unwrap();
    let run = |script: &str| {
        let out = Command::new("bash")
            .args(["-c", &format!("set -e -o pipefail\n{script}")])
            .env_clear()
            .env("HOME", &env.home)
            .env("XDG_CONFIG_HOME", &env.config)
            .env("PATH", format!("{}:{PATH}", bin_dir.display()))
            .env("SOPS_AGE_KEY_FILE", &key)
            .env("SOPS_DISABLE_VERSION_CHECK", "1")
            .current_dir(&env.work)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (import, check) = documented_steps();
    let (ok, _, err) = run(&import);
    assert!(ok, "{err}");
    let (ok, out, err) = run(&check);
    assert!(ok, "{out}{err}");
    assert_eq!(out, "identical\n");
    // And it does catch a loss.
    env.run(&["delete", "-V", "prod", "-n", "db-port", "--yes"])
        .ok();
    let (_, out, _) = run(&check);
    assert!(!out.contains("identical"), "{out}");
    assert!(out.contains(">   \"db-port\": \"5432\","), "{out}");
}
