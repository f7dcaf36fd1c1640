//! The docs' examples, run for real: every ```console block of the README
//! and of `docs/*.md` is a transcript. `$ command` lines run in `bash`, in
//! a fresh directory holding a copy of the sample store (`vaults/`) with
//! the demo identity in `COFFER_AGE_KEY` and `coffer` on `PATH`; the lines
//! after it are what the command prints (stdout and stderr together). A
//! line `...` stands for any number of lines, `[..]` for any text within
//! a line, and a last line `[exit: N]` for a failure's status. (Every
//! other `coffer` line of a shell block is checked to parse by a unit test
//! of the command line.)

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::{PATH, TestEnv};

struct Block {
    file: String,
    line: usize,
    steps: Vec<(String, Vec<String>)>,
}

fn blocks() -> Vec<Block> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut out = Vec::new();
    for f in files {
        let text = fs::read_to_string(&f).unwrap();
        let name = f.strip_prefix(root).unwrap().display().to_string();
        let mut cur: Option<Block> = None;
        for (i, line) in text.lines().enumerate() {
            if line.trim_start() == "```console" {
                cur = Some(Block {
                    file: name.clone(),
                    line: i + 1,
                    steps: Vec::new(),
                });
            } else if line.trim_start() == "```" {
                if let Some(b) = cur.take() {
                    out.push(b);
                }
            } else if let Some(b) = cur.as_mut() {
                if let Some(cmd) = line.strip_prefix("$ ") {
                    b.steps.push((cmd.to_owned(), Vec::new()));
                } else if let Some(step) = b.steps.last_mut() {
                    step.1.push(line.to_owned());
                }
            }
        }
    }
    out
}

/// Whether `actual` matches `expected`, with `...` and `[..]`.
fn matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if e == "..." => (0..=actual.len()).any(|n| matches(rest, &actual[n..])),
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(e, a) && matches(rest, more)),
    }
}

fn line_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split("[..]").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let mut pos = 0;
    for (i, p) in parts.iter().enumerate() {
        if i == 0 {
            if !actual.starts_with(p) {
                return false;
            }
            pos = p.len();
        } else if i == parts.len() - 1 {
            return actual.len() >= pos + p.len() && actual.ends_with(p);
        } else {
            match actual[pos..].find(p) {
                Some(at) => pos += at + p.len(),
                None => return false,
            }
        }
    }
    true
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            fs::copy(&p, &dest).unwrap();
        }
    }
}

#[test]
fn every_console_example_in_the_docs_prints_what_it_shows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = fs::read_to_string(root.join("demo/demo-identity.txt")).unwrap();
    let all = blocks();
    assert!(!all.is_empty(), "no console blocks found");
    let mut failures = Vec::new();
    for b in &all {
        let env = TestEnv::new();
        copy_dir(&root.join("vaults"), &env.store());
        let bin = env.dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_coffer"), bin.join("coffer")).unwrap();
        for (cmd, expected) in &b.steps {
            let out = std::process::Command::new("bash")
                .args(["-c", &format!("{cmd} 2>&1")])
                .current_dir(&env.work)
                .env_clear()
                .env("PATH", format!("{}:{PATH}", bin.display()))
                .env("HOME", &env.home)
                .env("XDG_CONFIG_HOME", &env.config)
                .env("USER", "alice")
                .env("COFFER_AGE_KEY", &demo)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let mut actual: Vec<&str> = text.lines().collect();
            let code = out.status.code().unwrap_or(-1);
            let status = format!("[exit: {code}]");
            if code != 0 {
                actual.push(&status);
            }
            if !matches(expected, &actual) {
                failures.push(format!(
                    "{}:{}: $ {cmd}\n--- expected\n{}\n--- actual\n{}",
                    b.file,
                    b.line,
                    expected.join("\n"),
                    actual.join("\n")
                ));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_console_matcher_takes_wildcards_and_nothing_else() {
    let e = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(matches(&e(&["a", "...", "d"]), &["a", "b", "c", "d"]));
    assert!(matches(&e(&["a [..] c"]), &["a b c"]));
    assert!(!matches(&e(&["a [..] c"]), &["a b d"]));
    assert!(!matches(&e(&["a"]), &["a", "b"]));
    assert!(!matches(&e(&["a", "b"]), &["a"]));
}
