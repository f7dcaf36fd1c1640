//! coffer's files are plain age: the real `age` CLI reads them, and a file
//! written by the `age` CLI behind coffer's back is not trusted.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::{TestEnv, have_tool, tool};

#[test]
fn age_cli_reads_any_secret_in_two_steps() {
    if !have_tool("age") {
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    let value = "sk_live_\"quoted\" #hash =eq\nsecond line ✓";
    env.run_stdin(
        &[
            "create",
            "-V",
            "api-keys",
            "-n",
            "stripe-key",
            "--value-file",
            "-",
        ],
        value.as_bytes(),
    )
    .ok();
    let id = env.default_identity();
    let vk = env.dir.path().join("vk.txt");
    // Step 1: the vault key, with the user's identity.
    let out = tool(
        &env,
        "age",
        &[
            "-d",
            "-i",
            id.to_str().unwrap(),
            "-o",
            vk.to_str().unwrap(),
            "vaults/api-keys/vault-key.age",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    fs::set_permissions(&vk, fs::Permissions::from_mode(0o600)).unwrap();
    // Step 2: the secret, with the vault key as an ordinary identity file.
    let out = tool(
        &env,
        "age",
        &[
            "-d",
            "-i",
            vk.to_str().unwrap(),
            "vaults/api-keys/stripe-key.age",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), value);
}

#[test]
fn a_file_encrypted_by_the_age_cli_is_not_trusted() {
    if !have_tool("age") {
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "genuine");
    let manifest = fs::read_to_string(env.store().join("api-keys/vault.toml")).unwrap();
    let public = manifest
        .lines()
        .find_map(|l| l.strip_prefix("public-key = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_owned();
    let plain = env.dir.path().join("plain.txt");
    fs::write(&plain, "replaced-by-hand").unwrap();
    let out = tool(
        &env,
        "age",
        &[
            "-e",
            "-a",
            "-r",
            &public,
            "-o",
            "vaults/api-keys/stripe-key.age",
            plain.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = env
        .run(&["get", "-V", "api-keys", "-n", "stripe-key"])
        .fails("failed verification")
        .transcript("interop/failed-verification");
    assert!(!r.stdout().contains("replaced-by-hand"));
}

#[test]
fn an_identity_made_by_age_keygen_works() {
    if !have_tool("age-keygen") {
        return;
    }
    let env = TestEnv::new();
    let key = env.dir.path().join("age-key.txt");
    let out = tool(&env, "age-keygen", &["-o", key.to_str().unwrap()]);
    assert!(out.status.success());
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    let k = key.to_str().unwrap();
    env.run(&["init", "-i", k]).ok();
    env.run(&["vault", "create", "api-keys", "-i", k]).ok();
    env.run_stdin(
        &["create", "-V", "api-keys", "-n", "stripe-key", "-i", k],
        b"v",
    )
    .ok();
    assert_eq!(
        env.run(&["get", "-V", "api-keys", "-n", "stripe-key", "-i", k])
            .ok()
            .stdout(),
        "v"
    );
}

#[test]
fn unchanged_update_leaves_git_status_clean() {
    if !have_tool("git") {
        return;
    }
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "same");
    let git = |args: &[&str]| {
        let out = tool(&env, "git", args);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "store"]);
    env.run_stdin(&["update", "-V", "api-keys", "-n", "stripe-key"], b"same")
        .ok();
    assert_eq!(git(&["status", "--porcelain"]), "", "nothing changed");
    env.run_stdin(
        &["update", "-V", "api-keys", "-n", "stripe-key"],
        b"different",
    )
    .ok();
    let status = git(&["status", "--porcelain"]);
    assert_eq!(
        status,
        " M vaults/api-keys/stripe-key.age\n M vaults/api-keys/vault.toml\n"
    );
}

/// The README's escape hatch, run as written (in bash, with the real `age`):
/// the keyring goes through a pipe and opens the secret.
#[test]
fn the_readmes_escape_hatch_works_as_written() {
    if !have_tool("age") {
        return;
    }
    let readme =
        fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("age -d -i <("))
        .expect("the README shows the escape hatch");
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_escape_hatch_value");
    let me = env.default_identity();
    let cmd = line
        .replace("me.txt", me.to_str().unwrap())
        .replace("vaults/V/", "vaults/api-keys/")
        .replace("NAME.age", "stripe-key.age");
    let out = std::process::Command::new("bash")
        .args(["-c", &cmd])
        .current_dir(&env.work)
        .env_clear()
        .env("PATH", crate::common::PATH)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "sk_live_escape_hatch_value"
    );
    // Nothing of the keyring was left on disk.
    let left: Vec<_> = fs::read_dir(&env.work)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["vaults"]);
}
