//! The output layer: `--json` is global, every command that offers it prints
//! one compact JSON document on one line, and a command without a JSON form
//! refuses the flag instead of ignoring it.

use crate::common::TestEnv;

fn store() -> TestEnv {
    let env = TestEnv::new();
    env.init(&["api-keys"]);
    env.put("api-keys", "stripe-key", "sk_live_output_test");
    env
}

/// Parses stdout as exactly one line holding one JSON document.
#[track_caller]
fn one_json_line(stdout: &str) -> serde_json::Value {
    assert!(stdout.ends_with('\n'), "no trailing newline: {stdout:?}");
    assert_eq!(stdout.lines().count(), 1, "not one line: {stdout:?}");
    serde_json::from_str(stdout.trim_end()).unwrap_or_else(|e| panic!("{e}: {stdout:?}"))
}

#[test]
fn json_is_a_global_flag_before_or_after_the_command() {
    let env = store();
    let before = env.run(&["-j", "list", "-V", "api-keys"]).ok().stdout();
    let after = env.run(&["list", "-V", "api-keys", "--json"]).ok().stdout();
    assert_eq!(before, after);
    let v = one_json_line(&before);
    assert_eq!(v[0]["name"], "stripe-key");
    assert!(v[0]["createdAt"].is_string() && v[0]["updatedAt"].is_string());
}

#[test]
fn every_command_that_offers_json_prints_one_compact_line() {
    let env = store();
    std::fs::write(
        env.work.join("app.ts"),
        "const k = { vault: \"api-keys\", key: \"stripe-key\" };\n",
    )
    .unwrap();
    for args in [
        &["vault", "list", "--json"][..],
        &["list", "-V", "api-keys", "--json"],
        &["recipients", "list", "--json"],
        &["rotation", "--json"],
        &["verify", "--json"],
        &["refs", "check", "--json"],
    ] {
        let r = env.run(args).ok();
        one_json_line(&r.stdout());
    }
    // scan finds nothing here: still one document, an empty list.
    let r = env.run(&["scan", "--json"]).ok();
    assert_eq!(one_json_line(&r.stdout()), serde_json::json!([]));
}

#[test]
fn json_on_a_command_with_no_json_output_is_a_usage_error() {
    let env = store();
    let r = env.run(&["get", "-V", "api-keys", "-n", "stripe-key", "--json"]);
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert_eq!(r.stdout(), "", "the value must not be printed");
    r.transcript("output/json-on-get");
    let r = env.run(&["vault", "delete", "api-keys", "--yes", "-j"]);
    assert_eq!(r.code(), 2);
    assert!(env.store().join("api-keys").is_dir(), "nothing may be done");
}

/// `-q` silences status lines, never data, warnings or errors.
#[test]
fn quiet_drops_status_lines_but_keeps_data_warnings_and_errors() {
    let env = store();
    // A status line without -q, none with it; the data is the same.
    let loud = env
        .run_stdin(
            &["update", "-V", "api-keys", "-n", "stripe-key"],
            b"v2-value",
        )
        .ok();
    assert!(!loud.stderr().is_empty(), "update says what it did");
    let quiet = env
        .run_stdin(
            &["-q", "update", "-V", "api-keys", "-n", "stripe-key"],
            b"v3-value",
        )
        .ok();
    assert_eq!(quiet.stderr(), "");
    assert_eq!(env.get("api-keys", "stripe-key"), "v3-value");
    let r = env
        .run(&["get", "-q", "-V", "api-keys", "-n", "stripe-key"])
        .ok();
    assert_eq!(r.stdout(), "v3-value");
    // Errors still reach stderr.
    env.run(&["-q", "get", "-V", "api-keys", "-n", "nope-key"])
        .fails("not found");
    // Warnings too: a value given on the command line is visible to others.
    let r = env
        .run(&[
            "-q",
            "create",
            "-V",
            "api-keys",
            "-n",
            "cli-key",
            "-v",
            "on-the-line",
        ])
        .ok();
    assert!(r.stderr().contains("warning:"), "{}", r.stderr());
}
