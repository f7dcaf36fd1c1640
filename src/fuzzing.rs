//! Fuzz targets, shared by `cargo fuzz` (in `fuzz/`) and by the corpus
//! replay that `cargo test` runs on stable (`tests/corpus.rs`).
//!
//! Each target feeds arbitrary bytes to one parser of untrusted input and
//! checks the properties that must hold whatever the input: no panic, and
//! for anything that parses, a round trip to the same value and the same
//! bytes. Not part of the API.

use std::path::Path;
use std::str::FromStr;

use crate::crypto::recipient::RecipientKey;
use crate::name::{RecipientName, SecretName, VaultName};
use crate::store::config::Config;
use crate::store::layout::{CONFIG_FILE, MANIFEST_FILE};
use crate::store::manifest::Manifest;

/// A fuzz target: arbitrary bytes in, a panic if a property fails.
pub type Target = fn(&[u8]);

/// Every target, by name, as `cargo fuzz` and the replay know them.
pub const TARGETS: &[(&str, Target)] = &[
    ("manifest", manifest),
    ("config", config),
    ("recipient", recipient),
    ("names", names),
    ("journal", journal),
    ("dotenv", dotenv),
    ("refs", refs),
    ("json", json),
];

/// Runs the target called `name` on `data`. Panics on an unknown name.
pub fn run(name: &str, data: &[u8]) {
    let (_, f) = TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target named {name}"));
    f(data)
}

/// `vault.toml`: parses, and what parses serialises to bytes that parse
/// back to the same manifest and serialise the same way.
pub fn manifest(data: &[u8]) {
    let path = Path::new(MANIFEST_FILE);
    if let Ok(m) = Manifest::parse(data, path) {
        let bytes = m.to_bytes();
        let again = Manifest::parse(&bytes, path).expect("a written manifest parses");
        assert_eq!(again, m);
        assert_eq!(again.to_bytes(), bytes);
    }
}

/// `coffer.toml`: parses, and edits keep it parseable.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new(CONFIG_FILE);
    if let Ok(mut c) = Config::parse(text, path) {
        let again = Config::parse(&c.to_text(), path).expect("a parsed config re-parses");
        assert_eq!(again.recipients(), c.recipients());
        if let Some(name) = c.recipients().keys().next().cloned() {
            c.remove_recipient(&name);
            let removed = Config::parse(&c.to_text(), path).expect("removal keeps it valid");
            assert!(!removed.recipients().contains_key(&name));
        }
    }
}

/// A recipient key: what parses prints canonically and parses back equal.
pub fn recipient(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(k) = RecipientKey::from_str(text) {
        let canonical = k.to_string();
        let again: RecipientKey = canonical.parse().expect("canonical form parses");
        assert_eq!(again, k);
        assert_eq!(again.to_string(), canonical);
        assert!(k.fingerprint().starts_with("SHA256:"));
        if let Some(p) = k.plugin_name() {
            assert!(!p.contains('/') && !p.contains('\\'));
        }
    }
}

/// Names: anything accepted is safe as a file name.
pub fn names(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for ok in [
        VaultName::from_str(text).map(|n| n.to_string()).ok(),
        SecretName::from_str(text).map(|n| n.to_string()).ok(),
        RecipientName::from_str(text).map(|n| n.to_string()).ok(),
    ]
    .into_iter()
    .flatten()
    {
        assert_eq!(ok, text);
        assert!(
            ok.is_ascii() && !ok.contains('/') && !ok.contains('\0') && ok != "." && ok != ".."
        );
        assert!(!ok.is_empty() && ok.len() <= 64);
    }
}

/// The transaction journal: a planted one never names a path outside the
/// store, nor a temporary file anywhere but next to its target.
pub fn journal(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let inside = |path: &str| {
        !path.starts_with('/')
            && !path
                .split('/')
                .any(|c| c == ".." || c == "." || c.is_empty())
            && path.split('/').count() <= 2
    };
    let dir = |path: &str| path.rsplit_once('/').map(|(d, _)| d.to_owned());
    for (temp, target) in crate::store::txn::journal_steps(text) {
        assert!(inside(&target));
        if let Some(temp) = temp {
            assert!(inside(&temp));
            assert_eq!(dir(&temp), dir(&target));
        }
    }
}

/// dotenv files (`import`): what parses writes back and re-parses to the
/// same names and values.
pub fn dotenv(data: &[u8]) {
    if let Ok(assignments) = crate::runtime::dotenv::parse(data) {
        let pairs: Vec<(&str, &str)> = assignments
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str()))
            .collect();
        let written = crate::runtime::dotenv::write(pairs.iter().copied());
        let again =
            crate::runtime::dotenv::parse(written.as_bytes()).expect("written dotenv parses");
        let back: Vec<(&str, &str)> = again
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(back, pairs);
    }
}

/// `{ vault, key }` references in source files (`refs check`): any bytes
/// scan without a panic, and positions stay inside the input.
pub fn refs(data: &[u8]) {
    let lines = data.split(|&b| b == b'\n').count();
    for found in [
        crate::runtime::refs::scan_script(data),
        crate::runtime::refs::scan_yaml(data),
    ] {
        for r in &found.references {
            assert!(r.at.line >= 1 && r.at.line <= lines, "{:?}", r.at);
        }
        for p in &found.dynamic {
            assert!(p.line >= 1 && p.line <= lines, "{p:?}");
        }
    }
}

/// JSON documents (`resolve`) and flat objects (`import`): replacing every
/// reference keeps a valid document with no reference left; a flat object
/// writes back and re-parses the same.
pub fn json(data: &[u8]) {
    if let Ok(found) = crate::runtime::json::find_references(data) {
        let spans: Vec<(std::ops::Range<usize>, &str)> = found
            .references
            .iter()
            .map(|r| {
                assert!(r.span.start < r.span.end && r.span.end <= data.len());
                (r.span.clone(), "replaced \"value\"\n")
            })
            .collect();
        let out = crate::runtime::json::replace_spans(data, spans.iter().cloned());
        let again =
            crate::runtime::json::find_references(&out).expect("a resolved document is valid JSON");
        assert!(again.references.is_empty());
    }
    if let Ok(members) = crate::runtime::json::parse_flat_object(data) {
        let pairs: Vec<(&str, &str)> = members
            .iter()
            .map(|m| (m.name.as_str(), m.value.as_str()))
            .collect();
        let written = crate::runtime::json::write_flat_object(pairs.iter().copied());
        let again = crate::runtime::json::parse_flat_object(written.as_bytes())
            .expect("written JSON parses");
        let back: Vec<(&str, &str)> = again
            .iter()
            .map(|m| (m.name.as_str(), m.value.as_str()))
            .collect();
        assert_eq!(back, pairs);
    }
}
