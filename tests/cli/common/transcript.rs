//! Transcripts: whole-stderr comparisons against files kept in the
//! repository, so that every `error:`, `hint:` and `warning:` line a user
//! sees is pinned, not just a substring of it.
//!
//! Expected output lives in `tests/transcripts/<area>/<what>.stderr`
//! (and, for the bad-input corpus, in `tests/bad-input/<kind>/<case>.expect`).
//! What legitimately varies from run to run is normalised before comparing:
//! the test's temporary directories become `[STORE]`, `[WORK]`, `[CONFIG]`,
//! `[HOME]` and `[TMP]`, the coffer binary `[COFFER]`, a loopback port
//! `[PORT]`, and a key fingerprint (`SHA256:` and 32 hex digits, of keys
//! the tests generate) `SHA256:[FINGERPRINT]`.
//!
//! When a message changes on purpose, rewrite the files and review the diff:
//!
//! ```sh
//! COFFER_BLESS=1 cargo test --test cli
//! git diff tests/
//! ```
//!
//! A missing or empty expected file is a failure (outside bless mode), so a
//! transcript can never match anything by accident.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Whether this run rewrites expected files instead of comparing
/// (`COFFER_BLESS=1`).
pub fn blessing() -> bool {
    std::env::var("COFFER_BLESS").as_deref() == Ok("1")
}

/// The file holding transcript `name` (`area/what`).
pub fn path(name: &str) -> PathBuf {
    assert!(
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_/".contains(c)),
        "transcript names are ASCII paths: {name:?}"
    );
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/transcripts")
        .join(format!("{name}.stderr"))
}

/// Replaces what varies between runs in `text`: each `(value, placeholder)`
/// in `redactions` (longest values first, so a store path inside the work
/// directory becomes `[STORE]`, not `[WORK]/vaults`), then the coffer
/// binary, loopback ports and fingerprints.
pub fn normalise(text: &str, redactions: &[(String, &'static str)]) -> String {
    let mut sorted: Vec<_> = redactions.iter().filter(|(v, _)| !v.is_empty()).collect();
    sorted.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
    let mut out = text.to_owned();
    for (value, placeholder) in sorted {
        out = out.replace(value.as_str(), placeholder);
    }
    // Hints that quote a command line name the binary under test, which
    // lives in this checkout's target directory.
    let bin = env!("CARGO_BIN_EXE_coffer");
    out = out.replace(bin, "[COFFER]");
    if let Ok(real) = Path::new(bin).canonicalize() {
        out = out.replace(&real.display().to_string(), "[COFFER]");
    }
    redact_fingerprints(&redact_ports(&out))
}

/// `SHA256:` and 32 hex digits → `SHA256:[FINGERPRINT]`: the tests
/// generate their keys, so fingerprints differ on every run (tests that
/// care about one check it with a needle).
fn redact_fingerprints(text: &str) -> String {
    const TAG: &str = "SHA256:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(TAG) {
        let after = &rest[i + TAG.len()..];
        let hex = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        out.push_str(&rest[..i + TAG.len()]);
        if hex == 32 {
            out.push_str("[FINGERPRINT]");
            rest = &after[hex..];
        } else {
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// `127.0.0.1:41234` → `127.0.0.1:[PORT]`: the stand-in listens on a port
/// the kernel picks.
fn redact_ports(text: &str) -> String {
    const HOST: &str = "127.0.0.1:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(HOST) {
        let after = &rest[i + HOST.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..i + HOST.len()]);
        out.push_str(if digits > 0 { "[PORT]" } else { "" });
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// Names blessed in this run, with what was written: one name used for two
/// different outputs is a test bug that blessing would otherwise hide.
static BLESSED: Mutex<BTreeMap<PathBuf, String>> = Mutex::new(BTreeMap::new());

/// Compares `actual` (already normalised) with the file at `expected`, or
/// rewrites the file under `COFFER_BLESS=1`. `context` says what ran.
#[track_caller]
pub fn assert_file(expected: &Path, actual: &str, context: &str) {
    if blessing() {
        let mut blessed = BLESSED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(earlier) = blessed.get(expected) {
            assert_eq!(
                earlier,
                actual,
                "{} is used for two different outputs; give each its own name\n{context}",
                shown(expected)
            );
            return;
        }
        blessed.insert(expected.to_owned(), actual.to_owned());
        assert!(
            !actual.trim().is_empty(),
            "nothing to bless into {}: the command printed nothing\n{context}",
            shown(expected)
        );
        if fs::read_to_string(expected).ok().as_deref() != Some(actual) {
            fs::create_dir_all(expected.parent().unwrap()).unwrap();
            fs::write(expected, actual).unwrap();
            eprintln!("note: blessed {}", shown(expected));
        }
        return;
    }
    let want = fs::read_to_string(expected).unwrap_or_default();
    assert!(
        !want.trim().is_empty(),
        "{} is missing or empty; run with COFFER_BLESS=1 to write it, then review it\n{context}",
        shown(expected)
    );
    if want != actual {
        panic!(
            "stderr differs from {} (COFFER_BLESS=1 rewrites it if the change is meant)\n{}\n{context}",
            shown(expected),
            diff(&want, actual)
        );
    }
}

/// A line diff small enough to read in a test failure: `-` expected, `+`
/// actual, the common prefix and suffix left out.
fn diff(want: &str, got: &str) -> String {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let head = w.iter().zip(&g).take_while(|(a, b)| a == b).count();
    let tail = w[head..]
        .iter()
        .rev()
        .zip(g[head..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = String::from("--- expected\n+++ actual\n");
    for l in &w[head..w.len() - tail] {
        out.push_str(&format!("-{l}\n"));
    }
    for l in &g[head..g.len() - tail] {
        out.push_str(&format!("+{l}\n"));
    }
    if w.len() == g.len() && head + tail >= w.len() {
        out.push_str("(the lines are equal; the difference is a trailing newline)\n");
    }
    out
}

/// Every transcript file is named by some test, so that a renamed or
/// deleted test does not leave a stale file behind that nothing checks.
#[test]
fn every_transcript_file_is_used_by_a_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = String::new();
    for e in fs::read_dir(root.join("tests/cli")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rs") {
            sources.push_str(&fs::read_to_string(&p).unwrap());
        }
    }
    let dir = root.join("tests/transcripts");
    let mut stack = vec![dir.clone()];
    let mut unused = Vec::new();
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "stderr") {
                seen += 1;
                let rel = p.strip_prefix(&dir).unwrap().with_extension("");
                let name = format!("\"{}\"", rel.display());
                if !sources.contains(&name) {
                    unused.push(rel);
                }
            }
        }
    }
    assert!(seen > 0, "no transcripts found in {}", dir.display());
    assert!(
        unused.is_empty(),
        "transcripts no test names (delete them, or fix the name): {unused:?}"
    );
}

/// `path` relative to the repository, for messages.
fn shown(path: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}
