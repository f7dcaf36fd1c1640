//! Finding plaintext values where they do not belong: files in the work
//! tree (or staged for a commit) that contain the value of a secret.
//!
//! A [`Scanner`] holds every value long enough to search for and finds
//! them all in one pass over a file (Aho-Corasick). Values shorter than
//! [`MIN_LEN`] bytes are skipped: they match too much by chance. Results
//! name the file, the line and the secret, never the value.

use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, MatchKind};

use crate::error::{Error, Result};
use crate::name::{SecretName, VaultName};
use crate::secret::SecretValue;

/// Values shorter than this (in bytes) are not searched for.
pub const MIN_LEN: usize = 8;

/// Files larger than this are not read (64 MiB).
pub const MAX_FILE_LEN: u64 = 64 << 20;

/// A secret by name: what a finding reports.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretRef {
    /// The vault.
    pub vault: VaultName,
    /// The secret.
    pub name: SecretName,
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.vault, self.name)
    }
}

/// One place a value was found.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Finding {
    /// The file, as given to the scanner (relative to the scanned root).
    pub path: PathBuf,
    /// The 1-based line.
    pub line: usize,
    /// Whose value it is.
    pub secret: SecretRef,
}

/// Searches bytes for many values at once.
pub struct Scanner {
    automaton: Option<AhoCorasick>,
    secrets: Vec<SecretRef>,
    skipped: Vec<SecretRef>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("secrets", &self.secrets)
            .field("skipped", &self.skipped)
            .finish_non_exhaustive()
    }
}

impl Scanner {
    /// Builds a scanner for these values. Values shorter than [`MIN_LEN`]
    /// are skipped (see [`Scanner::skipped`]).
    ///
    /// The automaton keeps its own copy of the values, in memory only,
    /// until the scanner is dropped.
    pub fn new(values: Vec<(SecretRef, SecretValue)>) -> Result<Scanner> {
        let mut secrets = Vec::new();
        let mut skipped = Vec::new();
        let mut patterns: Vec<&[u8]> = Vec::new();
        for (r, v) in &values {
            if v.len() < MIN_LEN {
                skipped.push(r.clone());
            } else {
                secrets.push(r.clone());
                patterns.push(v.expose_secret().as_bytes());
            }
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .match_kind(MatchKind::Standard)
                    .build(&patterns)
                    .map_err(|e| {
                        Error::io(
                            "search for the values of",
                            "the store",
                            std::io::Error::other(e.to_string()),
                        )
                    })?,
            )
        };
        Ok(Scanner {
            automaton,
            secrets,
            skipped,
        })
    }

    /// Returns how many values are searched for.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    /// Returns true if there is nothing to search for.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Returns the secrets skipped for being too short.
    pub fn skipped(&self) -> &[SecretRef] {
        &self.skipped
    }

    /// Returns every (line, secret) where a value occurs in `bytes`, sorted,
    /// each pair once.
    pub fn find(&self, bytes: &[u8]) -> Vec<(usize, SecretRef)> {
        let Some(ac) = &self.automaton else {
            return Vec::new();
        };
        let mut hits = Vec::new();
        let mut line = 1;
        let mut counted = 0;
        for m in ac.find_overlapping_iter(bytes) {
            // Matches come in order of their end; count newlines up to
            // each start (starts may step back a little for long values).
            if m.start() >= counted {
                line += memchr_count(&bytes[counted..m.start()]);
                counted = m.start();
            } else {
                line -= memchr_count(&bytes[m.start()..counted]);
                counted = m.start();
            }
            hits.push((line, self.secrets[m.pattern().as_usize()].clone()));
        }
        hits.sort();
        hits.dedup();
        hits
    }
}

fn memchr_count(b: &[u8]) -> usize {
    b.iter().filter(|&&c| c == b'\n').count()
}

/// Whether a walk includes hidden files (`.env`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hidden {
    /// Include them, as git does.
    Include,
    /// Skip them, as ripgrep does.
    Skip,
}

/// One step of a [`walk_files`].
#[derive(Debug)]
pub enum Walked {
    /// A regular file.
    File {
        /// Its path (under the root it was found from).
        path: PathBuf,
        /// 0 for a root named by the caller, 1 for a file in it…
        depth: usize,
        /// Its size in bytes, if it could be read.
        len: Option<u64>,
    },
    /// Something could not be walked.
    Error {
        /// What went wrong, for a message.
        message: String,
        /// The path concerned, if known.
        path: Option<PathBuf>,
    },
}

/// Walks the regular files under `roots` the way git sees a tree:
/// `.gitignore` (even outside a git checkout: a CI tarball),
/// `.git/info/exclude` and global excludes respected, the `.git`
/// directory and symbolic links skipped, sorted by name. The one walker
/// `scan` and `refs check` share.
pub fn walk_files(roots: &[PathBuf], hidden: Hidden) -> impl Iterator<Item = Walked> {
    let mut builder = ignore::WalkBuilder::new(roots.first().map_or(Path::new("."), |p| p));
    for r in roots.iter().skip(1) {
        builder.add(r);
    }
    let walk = builder
        .hidden(hidden == Hidden::Skip)
        .parents(true)
        .git_ignore(true)
        .git_exclude(true)
        .git_global(true)
        .require_git(false)
        .follow_links(false)
        .filter_entry(|e| e.file_name() != ".git")
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();
    walk.filter_map(|entry| match entry {
        Err(e) => Some(Walked::Error {
            message: e.to_string(),
            path: error_path(&e),
        }),
        Ok(e) if e.file_type().is_some_and(|t| t.is_file()) => Some(Walked::File {
            len: e.metadata().ok().map(|m| m.len()),
            depth: e.depth(),
            path: e.into_path(),
        }),
        Ok(_) => None,
    })
}

/// Scans the files under `root` that git would consider (`.gitignore`,
/// `.git/info/exclude` and global excludes respected; hidden files such as
/// `.env` included; the `.git` directory and symbolic links skipped).
/// Paths in findings are relative to `root`. Unreadable files are skipped
/// and returned as the second list.
pub fn scan_tree(root: &Path, scanner: &Scanner) -> Result<(Vec<Finding>, Vec<PathBuf>)> {
    let mut findings = Vec::new();
    let mut unreadable = Vec::new();
    if scanner.is_empty() {
        return Ok((findings, unreadable));
    }
    for walked in walk_files(&[root.to_owned()], Hidden::Include) {
        let path = match walked {
            Walked::Error { path, .. } => {
                unreadable.extend(path);
                continue;
            }
            // Files too large to be configuration are not read.
            Walked::File { len, .. } if len.is_some_and(|l| l > MAX_FILE_LEN) => continue,
            Walked::File { path, .. } => path,
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                unreadable.push(path);
                continue;
            }
        };
        let rel = path.strip_prefix(root).unwrap_or(&path).to_owned();
        for (line, secret) in scanner.find(&bytes) {
            findings.push(Finding {
                path: rel.clone(),
                line,
                secret,
            });
        }
    }
    Ok((findings, unreadable))
}

fn error_path(e: &ignore::Error) -> Option<PathBuf> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &str, n: &str) -> SecretRef {
        SecretRef {
            vault: v.parse().unwrap(),
            name: n.parse().unwrap(),
        }
    }

    fn scanner() -> Scanner {
        Scanner::new(vec![
            (
                r("api-keys", "stripe-key"),
                SecretValue::from_string("sk_live_abcdef123".into()).unwrap(),
            ),
            (
                r("api-keys", "short-pin"),
                SecretValue::from_string("1234".into()).unwrap(),
            ),
            (
                r("database", "db-password"),
                SecretValue::from_string("hunter2hunter2".into()).unwrap(),
            ),
            (
                r("database", "inner-one"),
                SecretValue::from_string("abcdef123".into()).unwrap(),
            ),
        ])
        .unwrap()
    }

    #[test]
    fn finds_every_value_with_its_line_and_skips_short_ones() {
        let s = scanner();
        assert_eq!(s.len(), 3);
        assert_eq!(s.skipped(), [r("api-keys", "short-pin")]);
        let text = b"line one 1234\nKEY=sk_live_abcdef123\n\nx hunter2hunter2 hunter2hunter2\n";
        assert_eq!(
            s.find(text),
            [
                (2, r("api-keys", "stripe-key")),
                // One value inside another is found too.
                (2, r("database", "inner-one")),
                (4, r("database", "db-password")),
            ]
        );
        assert!(s.find(b"nothing here").is_empty());
    }

    #[test]
    fn one_walker_skips_or_includes_hidden_files_and_knows_named_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join(".gitignore"), "ignored.txt\n").unwrap();
        std::fs::write(root.join("src/a.js"), "abc").unwrap();
        std::fs::write(root.join(".env"), "x").unwrap();
        std::fs::write(root.join("ignored.txt"), "x").unwrap();
        let files = |roots: &[PathBuf], hidden| -> Vec<(String, usize, Option<u64>)> {
            walk_files(roots, hidden)
                .map(|w| match w {
                    Walked::File { path, depth, len } => (
                        path.strip_prefix(root).unwrap().display().to_string(),
                        depth,
                        len,
                    ),
                    Walked::Error { message, .. } => panic!("{message}"),
                })
                .collect()
        };
        let all = [root.to_owned()];
        assert_eq!(
            files(&all, Hidden::Include),
            [
                (".env".into(), 1, Some(1)),
                (".gitignore".into(), 1, Some(12)),
                ("src/a.js".into(), 2, Some(3)),
            ]
        );
        assert_eq!(files(&all, Hidden::Skip), [("src/a.js".into(), 2, Some(3))]);
        let named = [root.join("ignored.txt"), root.join("src")];
        assert_eq!(
            files(&named, Hidden::Skip),
            [
                ("ignored.txt".into(), 0, Some(1)),
                ("src/a.js".into(), 1, Some(3))
            ]
        );
    }

    #[test]
    fn walks_the_tree_as_git_would() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".gitignore"), "ignored.txt\n").unwrap();
        std::fs::write(root.join("src/config.rs"), "a\nb = \"hunter2hunter2\"\n").unwrap();
        std::fs::write(root.join(".env"), "STRIPE=sk_live_abcdef123\n").unwrap();
        std::fs::write(root.join("ignored.txt"), "hunter2hunter2").unwrap();
        std::fs::write(root.join(".git/config"), "hunter2hunter2").unwrap();
        let (found, _) = scan_tree(root, &scanner()).unwrap();
        let got: Vec<(String, usize, String)> = found
            .iter()
            .map(|f| (f.path.display().to_string(), f.line, f.secret.to_string()))
            .collect();
        assert_eq!(
            got,
            [
                (".env".into(), 1, "api-keys/stripe-key".into()),
                (".env".into(), 1, "database/inner-one".into()),
                ("src/config.rs".into(), 2, "database/db-password".into()),
            ]
        );
    }
}
