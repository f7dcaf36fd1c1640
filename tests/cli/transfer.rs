//! `coffer export` and `coffer import`: dotenv and JSON files in and out,
//! exactly.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use proptest::prelude::*;

use crate::common::TestEnv;

/// A dotenv file in the form `export` writes: every value as its simplest
/// exact quoting, in name order.
const CANONICAL: &str = "\
API_TOKEN=tok_123-abc.def/x@y:z
DATABASE_URL='postgres://u:p@h/db?sslmode=require&x=$HOME'
GREETING='say \"hi\" # not a comment'
PRIVATE_KEY=\"-----BEGIN KEY-----
abc\\\\def
it's multi-line
-----END KEY-----\"
";

fn store() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env
}

#[test]
fn an_env_file_imports_reimports_unchanged_and_exports_back_identically() {
    let env = store();
    fs::write(env.work.join("app.env"), CANONICAL).unwrap();
    env.run(&["import", "-V", "api-keys", "app.env"])
        .ok()
        .stderr_has("+ api-token\n+ database-url\n+ greeting\n+ private-key\n")
        .stderr_has("4 created, 0 updated, 0 unchanged");
    assert_eq!(
        env.get("api-keys", "greeting"),
        "say \"hi\" # not a comment"
    );
    assert_eq!(
        env.get("api-keys", "private-key"),
        "-----BEGIN KEY-----\nabc\\def\nit's multi-line\n-----END KEY-----"
    );

    let before = env.snapshot();
    env.run(&["import", "-V", "api-keys", "app.env"])
        .ok()
        .stderr_has("= api-token\n= database-url\n= greeting\n= private-key\n")
        .stderr_has("0 created, 0 updated, 4 unchanged");
    assert_eq!(
        env.snapshot(),
        before,
        "an unchanged import rewrites nothing"
    );

    let r = env.run(&["export", "-V", "api-keys"]).ok();
    assert_eq!(r.stdout(), CANONICAL);
}

#[test]
fn import_reads_the_dotenv_conventions() {
    let env = store();
    let text = "\
# comment
export STRIPE_SECRET_KEY = sk_live_1  # inline comment

MULTI=\"line 1
line 2\\tTabbed \\\"q\\\" \\\\ \\$\"
SINGLE='  spaced  '
";
    env.run_stdin(&["import", "-V", "api-keys", "-"], text.as_bytes())
        .ok();
    assert_eq!(env.get("api-keys", "stripe-secret-key"), "sk_live_1");
    assert_eq!(
        env.get("api-keys", "multi"),
        "line 1\nline 2\tTabbed \"q\" \\ $"
    );
    assert_eq!(env.get("api-keys", "single"), "  spaced  ");
}

#[test]
fn import_updates_changed_secrets_and_leaves_the_others() {
    let env = store();
    env.put("api-keys", "same-one", "v1");
    env.put("api-keys", "changed-one", "old");
    env.put("api-keys", "not-in-file", "kept");
    let r = env
        .run_stdin(
            &["import", "-V", "api-keys", "-"],
            b"SAME_ONE=v1\nCHANGED_ONE=new\nNEW_ONE=fresh\n",
        )
        .ok();
    assert!(
        r.stderr()
            .contains("~ changed-one\n+ new-one\n= same-one\n")
    );
    assert_eq!(env.get("api-keys", "changed-one"), "new");
    assert_eq!(env.get("api-keys", "not-in-file"), "kept");
}

#[test]
fn import_dry_run_shows_the_summary_and_changes_nothing() {
    let env = store();
    env.put("api-keys", "same-one", "v1");
    env.put("api-keys", "changed-one", "old");
    let before = env.snapshot();
    env.run_stdin(
        &["import", "-V", "api-keys", "--dry-run", "-"],
        b"SAME_ONE=v1\nCHANGED_ONE=new\nNEW_ONE=fresh\n",
    )
    .ok()
    .stderr_has("~ changed-one\n+ new-one\n= same-one\n")
    .stderr_has("1 to create, 1 to update, 1 unchanged; nothing was written");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn import_reports_every_name_that_cannot_be_a_secret_and_imports_nothing() {
    let env = store();
    let before = env.snapshot();
    let text = "GOOD_ONE=x\nlower_case=SENTINEL\nA=SENTINEL\n_LEADING=SENTINEL\nVAULT_KEY=SENTINEL\nEMPTY=\n";
    let r = env
        .run_stdin(&["import", "-V", "api-keys", "-"], text.as_bytes())
        .fails("5 entries in stdin cannot be imported:")
        .stderr_has("line 2: lower_case: only A-Z, 0-9 and _ map to secret names")
        .stderr_has("line 3: A: as a secret name, it is shorter than 3 characters")
        .stderr_has(
            "line 4: _LEADING: as a secret name, it must start and end with a letter or digit",
        )
        .stderr_has("line 5: VAULT_KEY: it maps to vault-key, a reserved name")
        .stderr_has("line 6: EMPTY: the value is empty")
        .stderr_has("nothing was imported")
        .transcript("transfer/5-entries-in-stdin-cannot-be-imported");
    assert!(!r.stderr().contains("SENTINEL"));
    assert_eq!(env.snapshot(), before);
}

#[test]
fn import_errors_name_the_line_and_never_the_value() {
    let env = store();
    let r = env
        .run_stdin(
            &["import", "-V", "api-keys", "-"],
            b"A_B=1\nsk_live_SENTINEL\n",
        )
        .fails("stdin is not a valid env file: line 2: expected NAME=value")
        .transcript("transfer/stdin-is-not-a-valid-env-file-line-2");
    assert!(!r.stderr().contains("SENTINEL"));
    env.run_stdin(
        &["import", "-V", "api-keys", "-"],
        b"OPEN=\"SENTINEL\nNEXT=1\n",
    )
    .fails("line 1: the value of OPEN opens with \" but is never closed")
    .transcript("transfer/line-1-the-value-of-open-opens-with-but");
    env.run_stdin(&["import", "-V", "api-keys", "-"], b"ABC=1\nABC=2\n")
        .fails("line 2: ABC is set again (first set on line 1)")
        .transcript("transfer/line-2-abc-is-set-again-first-set-on");
    env.run(&["import", "-V", "api-keys", "missing.env"])
        .fails("could not read missing.env")
        .transcript("transfer/could-not-read-missing-env");
    env.run_stdin(&["import", "-V", "nope", "-"], b"ABC=1\n")
        .fails("vault \"nope\" not found")
        .transcript("transfer/vault-nope-not-found");
}

#[test]
fn import_refuses_a_value_over_the_limit_and_says_so_for_an_empty_file() {
    let env = store();
    let big = format!("SMALL=1\nBIG={}\n", "x".repeat(128 * 1024 + 1));
    env.run_stdin(&["import", "-V", "api-keys", "-"], big.as_bytes())
        .fails("line 2: BIG: the value is 131073 bytes, over the limit of 131072 bytes")
        .transcript("transfer/line-2-big-the-value-is-131073-bytes");
    let before = env.snapshot();
    env.run_stdin(&["import", "-V", "api-keys", "-"], b"# nothing here\n\n")
        .ok()
        .stderr_has("stdin holds no entries: nothing to import.");
    assert_eq!(env.snapshot(), before);
}

#[test]
fn import_json_takes_secret_names_or_variable_names() {
    let env = store();
    fs::write(
        env.work.join("in.json"),
        r#"{"stripe-secret-key": "sk\n\"1\"", "SENDGRID_API_KEY": "sg"}"#,
    )
    .unwrap();
    env.run(&["import", "-V", "api-keys", "in.json"]).ok();
    assert_eq!(env.get("api-keys", "stripe-secret-key"), "sk\n\"1\"");
    assert_eq!(env.get("api-keys", "sendgrid-api-key"), "sg");
    env.run_stdin(
        &["import", "-V", "api-keys", "--format", "json", "-"],
        br#"{"abc-def": "1", "ABC_DEF": "2"}"#,
    )
    .fails("line 1: ABC_DEF and abc-def (line 1) both name secret abc-def")
    .transcript("transfer/line-1-abc-def-and-abc-def-line-1-both");
    let r = env
        .run_stdin(
            &["import", "-V", "api-keys", "--format", "json", "-"],
            br#"{"abc-def": "SENTINEL", "n": 1}"#,
        )
        // A number is a value now (nested JSON imports by the flattening
        // rule), but "n" names no secret.
        .fails("key n: as a secret name, \"n\": it is shorter than 3 characters")
        .transcript("transfer/1-entry-in-stdin-cannot-be-imported-n");
    assert!(!r.stderr().contains("SENTINEL"));
}

#[test]
fn export_writes_json_and_env_files_privately() {
    let env = store();
    env.put("api-keys", "stripe-secret-key", "sk \"1\"\nx");
    env.put("api-keys", "sendgrid-api-key", "sg");
    let r = env
        .run(&["export", "-V", "api-keys", "--format", "json"])
        .ok();
    assert_eq!(
        r.stdout(),
        "{\n  \"sendgrid-api-key\": \"sg\",\n  \"stripe-secret-key\": \"sk \\\"1\\\"\\nx\"\n}\n"
    );
    env.run(&["export", "-V", "api-keys", "-o", "out.json"])
        .ok()
        .stderr_has("Exported 2 secrets from vault api-keys to out.json");
    let out = env.work.join("out.json");
    assert_eq!(fs::read_to_string(&out).unwrap(), r.stdout());
    assert_eq!(
        fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600
    );
    env.run(&["export", "-V", "api-keys", "-o", "out.env"]).ok();
    assert_eq!(
        fs::read_to_string(env.work.join("out.env")).unwrap(),
        "SENDGRID_API_KEY=sg\nSTRIPE_SECRET_KEY=\"sk \\\"1\\\"\nx\"\n"
    );
}

#[test]
fn export_fails_naming_a_secret_that_does_not_verify() {
    let env = store();
    env.put("api-keys", "good-one", "SENTINEL-GOOD");
    env.put("api-keys", "bad-one", "SENTINEL-BAD");
    let dir = env.store().join("api-keys");
    fs::copy(dir.join("good-one.age"), dir.join("bad-one.age")).unwrap();
    let r = env
        .run(&["export", "-V", "api-keys", "-o", "out.env"])
        .fails("secret \"bad-one\" in vault \"api-keys\" failed verification")
        .transcript("transfer/secret-bad-one-in-vault-api-keys-failed");
    assert!(r.stdout().is_empty() && !r.stderr().contains("SENTINEL"));
    assert!(!env.work.join("out.env").exists());
}

fn value() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        Just('\n'),
        Just('"'),
        Just('\''),
        Just('#'),
        Just('='),
        Just('\\'),
        Just('$'),
        Just(' '),
        Just('\r'),
        Just('é'),
        Just('🔑'),
        proptest::char::range('a', 'z'),
        any::<char>(),
    ];
    proptest::collection::vec(c, 1..24).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..crate::common::proptest_config() })]

    /// Values of every shape survive export then import, through both
    /// formats, exactly.
    #[test]
    fn export_then_import_round_trips_every_value(values in proptest::collection::vec(value(), 1..6)) {
        let env = TestEnv::new();
        env.init(&["source", "copy"]);
        let names: Vec<String> = (0..values.len()).map(|i| format!("secret-{i}")).collect();
        let map: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .cloned()
            .zip(values.iter().cloned().map(serde_json::Value::String))
            .collect();
        let json = serde_json::to_string(&map).unwrap();
        env.run_stdin(&["import", "-V", "source", "--format", "json", "-"], json.as_bytes()).ok();
        let exported = env.run(&["export", "-V", "source"]).ok().output.stdout;
        env.run_stdin(&["import", "-V", "copy", "-"], &exported).ok();
        let back = env.run(&["export", "-V", "copy", "--format", "json"]).ok().stdout();
        let back: std::collections::BTreeMap<String, String> = serde_json::from_str(&back).unwrap();
        for (name, want) in names.iter().zip(&values) {
            prop_assert_eq!(&back[name], want);
        }
        // And importing the export again changes nothing.
        let r = env.run_stdin(&["import", "-V", "copy", "-"], &exported).ok();
        let want = format!("0 created, 0 updated, {} unchanged", values.len());
        prop_assert!(r.stderr().contains(&want), "{}", r.stderr());
    }
}

/// `N` assignments with distinct names (`SECRET_0000000=v0`…).
fn many_lines(n: usize) -> String {
    let mut text = String::with_capacity(n * 24);
    for i in 0..n {
        text.push_str(&format!("SECRET_{i:07}=v{i}\n"));
    }
    text
}

/// 300,000 lines used to take minutes (each line's duplicate check and
/// each dry-run lookup scanned every line before it). No timing assertion:
/// a quadratic import would not finish within the test run's own limits.
#[test]
fn import_of_300000_lines_completes_a_dry_run_and_finds_a_duplicate_at_the_end() {
    let env = store();
    let mut text = many_lines(300_000);
    fs::write(env.work.join("big.env"), &text).unwrap();
    env.run(&["import", "-V", "api-keys", "--dry-run", "big.env"])
        .ok()
        .stderr_has("300000 to create, 0 to update, 0 unchanged; nothing was written");
    // The duplicate is found against the first line, 300,000 lines back.
    text.push_str("SECRET_0000000=again\n");
    fs::write(env.work.join("big.env"), &text).unwrap();
    let before = env.snapshot();
    env.run(&["import", "-V", "api-keys", "big.env"])
        .fails("line 300001: SECRET_0000000 is set again (first set on line 1)");
    // In JSON, two spellings of one name reach the import's own check.
    let mut json = String::from("{");
    for i in 0..300_000 {
        json.push_str(&format!("\"secret-{i:07}\": \"v\",\n"));
    }
    json.push_str("\"SECRET_0000000\": \"again\"}\n");
    fs::write(env.work.join("big.json"), &json).unwrap();
    env.run(&["import", "-V", "api-keys", "big.json"]).fails(
        "line 300001: SECRET_0000000 and secret-0000000 (line 1) both name secret secret-0000000",
    );
    assert_eq!(env.snapshot(), before);
}
