//! `coffer inject`: templates filled exactly, checked without a key, and
//! written privately.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::{TestEnv, have_tool};

fn store() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "db-password", "p\"a's\\s\nword");
    env.put("api-keys", "api-token", "tok_123");
    env
}

const TEMPLATE: &str = "\
# app config {{ not a reference }} {{ .Values.x }}
token: {{coffer://api-keys/api-token}}
json: {\"pw\": {{ coffer://api-keys/db-password | json }}}
yaml: {{ op://api-keys/db-password | yaml }}
b64: {{ coffer://api-keys/db-password | base64 }}\r
tail without newline é";

#[test]
fn a_template_is_filled_and_every_other_byte_is_kept() {
    let env = store();
    fs::write(env.work.join("app.yml.tpl"), TEMPLATE).unwrap();
    let r = env.run(&["inject", "app.yml.tpl"]).ok();
    let want = "\
# app config {{ not a reference }} {{ .Values.x }}
token: tok_123
json: {\"pw\": \"p\\\"a's\\\\s\\nword\"}
yaml: \"p\\\"a's\\\\s\\nword\"
b64: B64\r
tail without newline é";
    // base64 of the value itself, not of anything escaped.
    let want = want.replace("B64", &base64_of("p\"a's\\s\nword"));
    assert_eq!(r.stdout(), want);
}

fn base64_of(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::new();
    for c in b.chunks(3) {
        let n = ((c[0] as u32) << 16)
            | ((*c.get(1).unwrap_or(&0) as u32) << 8)
            | (*c.get(2).unwrap_or(&0) as u32);
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn the_yaml_and_json_filters_read_back_exactly_with_python() {
    if !have_tool("python3") {
        return;
    }
    let env = store();
    let tricky = "a: b # c\n- d \"e\" 'f' \\g\u{2028}h\u{85}i\ttab ü";
    env.put("api-keys", "tricky-one", tricky);
    fs::write(
        env.work.join("t.tpl"),
        "y: {{ coffer://api-keys/tricky-one | yaml }}\n",
    )
    .unwrap();
    fs::write(
        env.work.join("j.tpl"),
        "{\"j\": {{ coffer://api-keys/tricky-one | json }}}\n",
    )
    .unwrap();
    env.run(&["inject", "t.tpl", "-o", "out.yml"]).ok();
    env.run(&["inject", "j.tpl", "-o", "out.json"]).ok();
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml\ny=yaml.safe_load(open('out.yml',encoding='utf-8'))['y']\nj=json.load(open('out.json',encoding='utf-8'))['j']\nassert y==j, (y, j)\nsys.stdout.write(json.dumps(y))",
        ])
        .current_dir(&env.work)
        .output()
        .unwrap();
    if String::from_utf8_lossy(&out.stderr).contains("No module named 'yaml'") {
        eprintln!("note: skipping: PyYAML is not installed");
        return;
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back: String = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(back, tricky);
}

#[test]
fn the_output_file_is_private_and_never_written_through_a_link() {
    let env = store();
    fs::write(
        env.work.join("t.tpl"),
        "x={{ coffer://api-keys/api-token }}\n",
    )
    .unwrap();
    env.run(&["inject", "t.tpl", "-o", "out.env"])
        .ok()
        .stderr_has("Wrote out.env with 1 reference filled in.");
    let out = env.work.join("out.env");
    assert_eq!(fs::read_to_string(&out).unwrap(), "x=tok_123\n");
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let victim = env.dir.path().join("victim");
    fs::write(&victim, "keep").unwrap();
    std::os::unix::fs::symlink(&victim, env.work.join("link.env")).unwrap();
    env.run(&["inject", "t.tpl", "-o", "link.env"])
        .transcript("inject/could-not-write-link-env-it-is-a-link");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
}

#[test]
fn check_needs_no_key_and_names_line_and_column_of_missing_secrets() {
    let env = store();
    fs::write(
        env.work.join("t.tpl"),
        "a={{ coffer://api-keys/api-token }}\n  b={{ coffer://api-keys/gone-one }} c={{ op://no-vault/x-y-z }}\n",
    )
    .unwrap();
    // No identity at all: --check reads only the manifests.
    fs::remove_file(env.default_identity()).unwrap();
    env.run(&["inject", "--check", "t.tpl"])
        .transcript("inject/2-references-in-t-tpl-do-not-resolve");
    fs::write(
        env.work.join("ok.tpl"),
        "a={{ coffer://api-keys/api-token }}\n",
    )
    .unwrap();
    env.run(&["inject", "--check", "ok.tpl"])
        .ok()
        .stderr_has("ok.tpl: 1 reference names a secret that exists.");
}

#[test]
fn malformed_references_are_errors_with_line_and_column() {
    let env = store();
    fs::write(
        env.work.join("t.tpl"),
        "ok {{ coffer://api-keys/api-token }}\n{{ op://vault/item/field }}\n  {{ coffer://api-keys/api-token | upper }}\n{{ coffer://api-keys/api-token\n",
    )
    .unwrap();
    env.run(&["inject", "t.tpl", "-o", "out"])
        .transcript("inject/3-references-in-t-tpl-are-not-well-formed");
    assert!(!env.work.join("out").exists());
}

#[test]
fn refs_check_reads_templates_too() {
    let env = store();
    fs::create_dir(env.work.join("deploy")).unwrap();
    fs::write(
        env.work.join("deploy/app.conf.tpl"),
        "pw={{ coffer://api-keys/db-password }}\nx={{ coffer://api-keys/missing-one }}\n",
    )
    .unwrap();
    let r = env.run(&["refs", "check", "deploy"]);
    assert_eq!(r.code(), 1, "{}", r.stderr());
    r.transcript("inject/refs-check-finds-a-missing-secret-in-a-template");
}
