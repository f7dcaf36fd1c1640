//! `export --format shell|fish` evaluated by real shells, and the direnv
//! recipe of docs/shell.md run by the real `direnv` and `bash`.

use std::fs;
use std::path::Path;
use std::process::Command;

use crate::common::{PATH, TestEnv, have_tool};

/// Values that break naive quoting: quotes of both kinds, backslashes,
/// `$` and backquotes, newlines (also trailing), tabs, unicode, a leading
/// dash.
const VALUES: &[(&str, &str, &str)] = &[
    ("quotes", "QUOTES", "it's \"quoted\" '' \\' end"),
    ("backslashes", "BACKSLASHES", "a\\b\\\\c\\n\\'\\"),
    ("dollars", "DOLLARS", "$HOME ${x} $(id) `id` $'x' !! %s"),
    ("multi-line", "MULTI_LINE", "line 1\nline 2\n\n"),
    ("unicode", "UNICODE", "é 😀 \u{2028} ü\ttab"),
    ("dash-first", "DASH_FIRST", "-n -e"),
    ("spaces", "SPACES", "  leading and trailing  "),
];

fn store_with_values() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    for (name, _, value) in VALUES {
        // From a file, exactly (stdin loses one trailing newline).
        let f = env.dir.path().join("value");
        fs::write(&f, value).unwrap();
        let f = f.to_str().unwrap();
        env.run(&["create", "-V", "api-keys", "-n", name, "--value-file", f])
            .ok();
    }
    env
}

/// The script prints each variable, NUL-terminated, with printf (the
/// same line in POSIX shells and fish).
fn printer(vars: &[&str]) -> String {
    vars.iter()
        .map(|v| format!("printf '%s\\0' \"${v}\"\n"))
        .collect()
}

fn expected() -> Vec<u8> {
    let mut out = Vec::new();
    for (_, _, v) in VALUES {
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

fn shell_cmd(env: &TestEnv, shell: &str, script: &Path) -> Vec<u8> {
    let out = Command::new(shell)
        .arg(script)
        .env_clear()
        .env("HOME", &env.home)
        .env("XDG_CONFIG_HOME", &env.config)
        .env("XDG_DATA_HOME", env.dir.path().join("data"))
        .env("PATH", PATH)
        .current_dir(&env.work)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{shell} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn posix_shells_eval_the_export_back_to_every_byte() {
    let env = store_with_values();
    let exported = env
        .run(&["export", "-V", "api-keys", "--format", "shell"])
        .ok()
        .stdout();
    assert!(exported.starts_with("export "), "{exported}");
    let vars: Vec<&str> = VALUES.iter().map(|(_, v, _)| *v).collect();
    fs::write(env.work.join("exported.sh"), &exported).unwrap();
    // Through eval and command substitution, as users load it.
    let script = format!("eval \"$(cat exported.sh)\"\n{}", printer(&vars));
    fs::write(env.work.join("check.sh"), script).unwrap();
    let mut ran = 0;
    for shell in ["bash", "dash"] {
        if !have_tool(shell) {
            continue;
        }
        let got = shell_cmd(&env, shell, &env.work.join("check.sh"));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&expected()),
            "{shell} read back different values"
        );
        ran += 1;
    }
    if have_tool("sh") {
        // And as a file sourced with `.`.
        let script = format!(". ./exported.sh\n{}", printer(&vars));
        fs::write(env.work.join("check2.sh"), script).unwrap();
        assert_eq!(
            shell_cmd(&env, "sh", &env.work.join("check2.sh")),
            expected()
        );
        ran += 1;
    }
    assert!(ran > 0 || std::env::var("COFFER_REQUIRE_TOOLS").is_err());
}

#[test]
fn fish_sources_the_fish_export_back_to_every_byte() {
    if !have_tool("fish") {
        return;
    }
    let env = store_with_values();
    let exported = env
        .run(&["export", "-V", "api-keys", "--format", "fish"])
        .ok()
        .stdout();
    assert!(exported.starts_with("set -gx "), "{exported}");
    fs::write(env.work.join("exported.fish"), &exported).unwrap();
    let vars: Vec<&str> = VALUES.iter().map(|(_, v, _)| *v).collect();
    // `| source`, as docs/shell.md shows it.
    let script = format!("cat exported.fish | source\n{}", printer(&vars));
    fs::write(env.work.join("check.fish"), script).unwrap();
    let got = shell_cmd(&env, "fish", &env.work.join("check.fish"));
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected())
    );
}

/// The `.envrc` of docs/shell.md.
const ENVRC: &str = "\
watch_file vaults/api-keys/vault.toml
eval \"$(coffer export -V api-keys --format shell)\"
";

#[test]
fn direnv_loads_the_vault_and_reloads_when_a_value_changes() {
    if !have_tool("direnv") || !have_tool("bash") {
        return;
    }
    let env = store_with_values();
    let docs = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/shell.md")).unwrap();
    assert!(
        docs.contains(ENVRC),
        "docs/shell.md shows the tested .envrc"
    );
    fs::write(env.work.join(".envrc"), ENVRC).unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_coffer")).parent().unwrap();
    let path = format!("{}:{PATH}", bin_dir.display());
    let coffer = env!("CARGO_BIN_EXE_coffer");
    let vars: Vec<&str> = VALUES.iter().map(|(_, v, _)| *v).collect();
    // One bash session: load, change a value, load again (direnv sees the
    // watched manifest change; its clock is in seconds).
    let script = format!(
        "set -e\ndirenv allow .\neval \"$(direnv export bash)\"\n{}\
         sleep 1.1\nprintf 'new value\\n' | {coffer} update -V api-keys -n quotes\n\
         eval \"$(direnv export bash)\"\nprintf '%s\\0' \"$QUOTES\"\n",
        printer(&vars)
    );
    fs::write(env.dir.path().join("session.sh"), script).unwrap();
    let out = Command::new("bash")
        .arg(env.dir.path().join("session.sh"))
        .env_clear()
        .env("HOME", &env.home)
        .env("XDG_CONFIG_HOME", &env.config)
        .env("XDG_DATA_HOME", env.dir.path().join("data"))
        .env("XDG_CACHE_HOME", env.dir.path().join("cache"))
        .env("PATH", &path)
        .env("DIRENV_LOG_FORMAT", "")
        .current_dir(&env.work)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "direnv session failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want = expected();
    want.extend_from_slice(b"new value\0");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&want)
    );
}

/// The hardware-key recipe of docs/shell.md: the export cached per
/// manifest on the memory file system.
const ENVRC_CACHED: &str = "\
watch_file vaults/api-keys/vault.toml
cache=\"${XDG_RUNTIME_DIR:-/dev/shm}/coffer-direnv-$(id -u)-$(sha256sum vaults/api-keys/vault.toml | cut -c1-32)\"
if [ ! -s \"$cache\" ]; then
  rm -f \"${XDG_RUNTIME_DIR:-/dev/shm}/coffer-direnv-$(id -u)-\"*
  (umask 077 && coffer export -V api-keys --format shell > \"$cache.tmp\" && mv \"$cache.tmp\" \"$cache\")
fi
. \"$cache\"
";

#[test]
fn the_cached_direnv_recipe_opens_the_vault_once_per_manifest() {
    if !have_tool("direnv") || !have_tool("bash") || !have_tool("sha256sum") {
        return;
    }
    let env = store_with_values();
    let docs = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/shell.md")).unwrap();
    assert!(
        docs.contains(ENVRC_CACHED),
        "docs/shell.md shows the tested recipe"
    );
    fs::write(env.work.join(".envrc"), ENVRC_CACHED).unwrap();
    let run_dir = tempfile::Builder::new()
        .prefix("coffer-test-run-")
        .tempdir_in("/dev/shm")
        .unwrap();
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_coffer")).parent().unwrap();
    let path = format!("{}:{PATH}", bin_dir.display());
    // Each call is a new shell entering the directory.
    let enter = || {
        let out = Command::new("bash")
            .args([
                "-c",
                "direnv allow . && eval \"$(direnv export bash)\" && printf '%s\\0' \"$QUOTES\"",
            ])
            .env_clear()
            .env("HOME", &env.home)
            .env("XDG_CONFIG_HOME", &env.config)
            .env("XDG_DATA_HOME", env.dir.path().join("data"))
            .env("XDG_CACHE_HOME", env.dir.path().join("cache"))
            .env("XDG_RUNTIME_DIR", run_dir.path())
            .env("PATH", &path)
            .env("DIRENV_LOG_FORMAT", "")
            .current_dir(&env.work)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, first, err) = enter();
    assert!(ok, "{err}");
    assert_eq!(first, format!("{}\0", VALUES[0].2));
    // Without the key, the cache still loads: the vault is not opened.
    let id = env.default_identity();
    let saved = fs::read(&id).unwrap();
    fs::remove_file(&id).unwrap();
    let (ok, second, err) = enter();
    assert!(ok, "{err}");
    assert_eq!(second, first);
    // A changed value changes the manifest: a new cache entry, made with
    // the key, and the old one removed.
    fs::write(&id, &saved).unwrap();
    fs::set_permissions(&id, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    env.run_stdin(&["update", "-V", "api-keys", "-n", "quotes"], b"changed")
        .ok();
    let (ok, third, err) = enter();
    assert!(ok, "{err}");
    assert_eq!(third, "changed\0");
    let entries: Vec<_> = fs::read_dir(run_dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "one cache file per vault");
}
