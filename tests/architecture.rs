//! The architecture of `docs/architecture.md`, checked from the code's own
//! `use` paths and calls, so that it cannot drift: the parts are layers, no
//! two files import each other round a cycle, and each of the rules that
//! give one file one job (the environment, stdout, the age crate, the
//! store's file names) holds.
//!
//! The reading is textual, like a reviewer's: comments, string contents and
//! test code (from a file's first `#[cfg(test)]`, and `tests.rs` files) are
//! left out before anything is matched.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// One source file of `src/`.
struct File {
    /// Its path under `src/`, with `/` separators: `store/vault.rs`.
    rel: String,
    /// Its module path: `["store", "vault"]` (`mod.rs` names its folder).
    module: Vec<String>,
    /// Its code with comments, string contents and test code removed.
    code: String,
    /// Its code with comments and test code removed, strings kept.
    code_with_strings: String,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn files() -> Vec<File> {
    let mut out = Vec::new();
    let mut stack = vec![src()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            if p.extension().is_none_or(|x| x != "rs") || p.file_name().unwrap() == "tests.rs" {
                continue;
            }
            let rel = p
                .strip_prefix(src())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            let mut module: Vec<String> = rel
                .trim_end_matches(".rs")
                .split('/')
                .map(str::to_owned)
                .collect();
            if matches!(
                module.last().map(String::as_str),
                Some("mod" | "lib" | "main")
            ) {
                module.pop();
            }
            let text = fs::read_to_string(&p).unwrap();
            let code_with_strings = without_tests(&strip(&text, false));
            let code = without_tests(&strip(&text, true));
            out.push(File {
                rel,
                module,
                code,
                code_with_strings,
            });
        }
    }
    // Modules declared under `#[cfg(test)]` (`mod test_seed;`) are test
    // code, like `tests.rs` files.
    let test_only: Vec<String> = out
        .iter()
        .flat_map(|f| {
            let dir = match f.rel.rsplit_once('/') {
                Some((d, _)) if f.rel.ends_with("mod.rs") => format!("{d}/"),
                Some((d, file)) => format!("{d}/{}/", file.trim_end_matches(".rs")),
                None if f.rel == "lib.rs" || f.rel == "main.rs" => String::new(),
                None => format!("{}/", f.rel.trim_end_matches(".rs")),
            };
            let text = fs::read_to_string(src().join(&f.rel)).unwrap();
            let mut found = Vec::new();
            let mut rest = text.as_str();
            while let Some(i) = rest.find("#[cfg(test)]") {
                rest = &rest[i + "#[cfg(test)]".len()..];
                let decl = rest.trim_start();
                let decl = decl.strip_prefix("pub(crate) ").unwrap_or(decl);
                if let Some(name) = decl.strip_prefix("mod ").and_then(|d| d.split(';').next())
                    && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                {
                    found.push(format!("{dir}{name}.rs"));
                    found.push(format!("{dir}{name}/mod.rs"));
                }
            }
            found
        })
        .collect();
    out.retain(|f| !test_only.contains(&f.rel));
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// Removes comments (and, if asked, the contents of string and char
/// literals, keeping the quotes).
fn strip(text: &str, strings: bool) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if b[i] == b'r'
            && (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
        {
            // A raw string: r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(b[i] as char);
                i += 1;
                continue;
            }
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let start = j + 1;
            let mut k = start;
            while k < b.len() && !b[k..].starts_with(&close) {
                k += 1;
            }
            out.push('"');
            if !strings {
                out.push_str(&text[start..k.min(b.len())]);
            }
            out.push('"');
            i = (k + close.len()).min(b.len());
        } else if b[i] == b'"' {
            let mut k = i + 1;
            while k < b.len() && b[k] != b'"' {
                if b[k] == b'\\' {
                    k += 1;
                }
                k += 1;
            }
            out.push('"');
            if !strings {
                out.push_str(&text[i + 1..k.min(b.len())]);
            }
            out.push('"');
            i = (k + 1).min(b.len());
        } else if b[i] == b'\'' && b.get(i + 2) == Some(&b'\'') && b[i + 1] != b'\\' {
            // A char literal such as '"' or '{' (lifetimes never close).
            out.push_str("' '");
            i += 3;
        } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
            let mut k = i + 2;
            while k < b.len() && b[k] != b'\'' {
                k += 1;
            }
            out.push_str("' '");
            i = k + 1;
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn without_tests(code: &str) -> String {
    match code.find("#[cfg(test)]") {
        Some(i) => code[..i].to_owned(),
        None => code.to_owned(),
    }
}

/// The part a file belongs to.
fn part(rel: &str) -> &str {
    match rel.split_once('/') {
        Some(("sync", rest)) if rest.starts_with("tailor/") => "sync/tailor",
        Some((dir, _)) => dir,
        None => match rel {
            "error.rs" | "name.rs" | "time.rs" | "secret.rs" | "fsio.rs" => "ground",
            other => other,
        },
    }
}

/// A part's floor: a part may import only parts on lower floors (and
/// itself). Parts on one floor never import each other.
fn floor(part: &str) -> u32 {
    match part {
        "ground" => 0,
        "crypto" => 1,
        "store" => 2,
        "git" | "sync" | "runtime" => 3,
        "sync/tailor" => 4,
        "fuzzing.rs" => 5,
        "lib.rs" => 6,
        "cli" => 7,
        "main.rs" => 8,
        other => panic!("{other}: a file outside the parts of docs/architecture.md"),
    }
}

/// Every `crate::…`, `super::…` and `self::…` path a file names.
fn paths(f: &File) -> Vec<Vec<String>> {
    let code = &f.code;
    let mut found: Vec<Vec<String>> = Vec::new();
    // `use` statements, with their braces expanded.
    let mut rest = code.as_str();
    while let Some(i) = rest.find("use ") {
        let before_ok = i == 0 || !rest.as_bytes()[i - 1].is_ascii_alphanumeric();
        let after = &rest[i + 4..];
        let end = after.find(';').unwrap_or(after.len());
        let stmt: String = after[..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if before_ok
            && (stmt.starts_with("crate::")
                || stmt.starts_with("super::")
                || stmt.starts_with("self::"))
        {
            expand(&stmt, &mut found);
        }
        rest = &after[end.min(after.len())..];
    }
    // Paths written inline: `crate::store::layout::X`.
    for root in ["crate::", "super::"] {
        let mut s = code.as_str();
        while let Some(i) = s.find(root) {
            let ok = i == 0
                || !(s.as_bytes()[i - 1].is_ascii_alphanumeric()
                    || s.as_bytes()[i - 1] == b'_'
                    || s.as_bytes()[i - 1] == b':');
            let tail = &s[i..];
            let len = tail
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(tail.len());
            if ok {
                found.push(
                    tail[..len]
                        .split("::")
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect(),
                );
            }
            s = &s[i + root.len()..];
        }
    }
    // Resolve to module paths from the crate root: `self` is the file's
    // own module, each `super` one module up.
    let me = &f.module;
    found
        .into_iter()
        .filter_map(|p| {
            let (head, tail) = p.split_first()?;
            let path: Vec<String> = match head.as_str() {
                "crate" => tail.to_vec(),
                "self" => me.iter().chain(tail).cloned().collect(),
                "super" => {
                    let mut base = me.clone();
                    let mut q = &p[..];
                    while q.first().map(String::as_str) == Some("super") {
                        base.pop();
                        q = &q[1..];
                    }
                    base.into_iter().chain(q.iter().cloned()).collect()
                }
                _ => return None,
            };
            (!path.is_empty()).then_some(path)
        })
        .collect()
}

/// Expands `a::{b, c::{d, e}}` into whole paths.
fn expand(stmt: &str, out: &mut Vec<Vec<String>>) {
    fn go(prefix: &[String], body: &str, out: &mut Vec<Vec<String>>) {
        let mut depth = 0;
        let mut cur = String::new();
        let mut items = Vec::new();
        for ch in body.chars() {
            match ch {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if ch == ',' && depth == 0 {
                items.push(std::mem::take(&mut cur));
            } else {
                cur.push(ch);
            }
        }
        items.push(cur);
        for it in items {
            let it = it.trim();
            if it.is_empty() {
                continue;
            }
            if let Some(open) = it.find('{') {
                let base: Vec<String> = it[..open]
                    .split("::")
                    .filter(|x| !x.is_empty())
                    .map(str::to_owned)
                    .collect();
                let inner = &it[open + 1..it.rfind('}').unwrap_or(it.len())];
                let mut p = prefix.to_vec();
                p.extend(base);
                go(&p, inner, out);
            } else {
                let name = it.split(" as ").next().unwrap();
                let mut p = prefix.to_vec();
                p.extend(
                    name.split("::")
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned),
                );
                out.push(p);
            }
        }
    }
    go(&[], stmt, out);
}

/// The import graph between files: `store/vault.rs -> store/root.rs`.
fn graph(files: &[File]) -> BTreeMap<String, BTreeSet<String>> {
    // The library and the binary are two crates: `crate::` in `cli/` is
    // the binary's root.
    let lib: BTreeMap<Vec<String>, &str> = files
        .iter()
        .filter(|f| !f.rel.starts_with("cli/") && f.rel != "main.rs")
        .map(|f| (f.module.clone(), f.rel.as_str()))
        .collect();
    let bin: BTreeMap<Vec<String>, &str> = files
        .iter()
        .filter(|f| f.rel.starts_with("cli/") || f.rel == "main.rs")
        .map(|f| (f.module.clone(), f.rel.as_str()))
        .collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let mods = if f.rel.starts_with("cli/") || f.rel == "main.rs" {
            &bin
        } else {
            &lib
        };
        let edges = g.entry(f.rel.clone()).or_default();
        for p in paths(f) {
            let target = (1..=p.len()).rev().find_map(|n| mods.get(&p[..n]).copied());
            if let Some(t) = target
                && t != f.rel
                && t != "lib.rs"
                && t != "main.rs"
            {
                edges.insert(t.to_owned());
            }
        }
    }
    g
}

#[test]
fn no_file_imports_another_round_a_cycle() {
    let g = graph(&files());
    // Depth-first search for a back edge; report the cycle it closes.
    fn visit(
        n: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(n.to_owned(), 1);
        stack.push(n.to_owned());
        for m in g.get(n).into_iter().flatten() {
            match state.get(m.as_str()) {
                Some(1) => {
                    let i = stack.iter().position(|x| x == m).unwrap();
                    let mut c = stack[i..].to_vec();
                    c.push(m.clone());
                    return Some(c);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, g, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.to_owned(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in g.keys() {
        if !state.contains_key(n.as_str()) {
            let cycle = visit(n, &g, &mut state, &mut Vec::new());
            assert!(
                cycle.is_none(),
                "an import cycle: {}",
                cycle.unwrap().join(" -> ")
            );
        }
    }
}

#[test]
fn every_part_imports_only_the_layers_below_it() {
    let g = graph(&files());
    let mut wrong = Vec::new();
    for (from, tos) in &g {
        for to in tos {
            let (a, b) = (part(from), part(to));
            // A part's mod.rs may re-export its sub-part (sync's tailor).
            let face = from.ends_with("mod.rs") && b.starts_with(&format!("{a}/"));
            if a != b && floor(b) >= floor(a) && !face {
                wrong.push(format!("{from} ({a}) -> {to} ({b})"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports that run up or across a layer:\n{}",
        wrong.join("\n")
    );
}

/// The files whose code contains any of `needles`, except `allowed`.
fn offenders(
    files: &[File],
    needles: &[&str],
    allowed: impl Fn(&str) -> bool,
    strings: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for f in files {
        if allowed(&f.rel) {
            continue;
        }
        let code = if strings {
            &f.code_with_strings
        } else {
            &f.code
        };
        for n in needles {
            if code.contains(n) {
                out.push(format!("{}: {n}", f.rel));
            }
        }
    }
    out
}

#[test]
fn only_cli_env_reads_the_environment() {
    let bad = offenders(
        &files(),
        &[
            "env::var",
            "env::vars",
            "env::current_dir",
            "env::home_dir",
            "env::args",
        ],
        |rel| rel == "cli/env.rs",
        false,
    );
    assert!(
        bad.is_empty(),
        "the environment is read outside src/cli/env.rs:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_library_never_prints_and_only_cli_render_writes_stdout() {
    let all = files();
    let lib_prints = offenders(
        &all,
        &[
            "print!(",
            "println!(",
            "eprint!(",
            "eprintln!(",
            "dbg!(",
            "stdout()",
            "stderr()",
        ],
        |rel| rel.starts_with("cli/") || rel == "main.rs",
        false,
    );
    assert!(
        lib_prints.is_empty(),
        "the library prints:\n{}",
        lib_prints.join("\n")
    );
    let mut cli_stdout = offenders(
        &all,
        &["print!(", "println!(", "stdout().lock", "stdout().write"],
        |rel| !rel.starts_with("cli/") || rel == "cli/render.rs",
        false,
    );
    cli_stdout.extend(
        all.iter()
            .filter(|f| f.rel.starts_with("cli/") && f.rel != "cli/render.rs")
            .filter(|f| {
                f.code
                    .replace("stdout().is_terminal()", "")
                    .contains("stdout()")
            })
            .map(|f| format!("{}: stdout()", f.rel)),
    );
    assert!(
        cli_stdout.is_empty(),
        "stdout written outside src/cli/render.rs:\n{}",
        cli_stdout.join("\n")
    );
}

#[test]
fn only_crypto_uses_the_age_crate() {
    let bad = offenders(
        &files(),
        &["age::", "age_core::"],
        |rel| rel.starts_with("crypto/"),
        false,
    );
    assert!(
        bad.is_empty(),
        "the age crate is used outside src/crypto/:\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_store_names_the_store_files() {
    // A literal that is exactly a store file's name is code that finds or
    // dispatches on files; messages that mention one are longer strings.
    let bad = offenders(
        &files(),
        &[
            "\"coffer.toml\"",
            "\"vault.toml\"",
            "\"vault-key.age\"",
            "\".age\"",
            "\".coffer-journal\"",
        ],
        |rel| rel == "store/layout.rs",
        true,
    );
    assert!(
        bad.is_empty(),
        "store file names outside src/store/layout.rs:\n{}",
        bad.join("\n")
    );
}

#[test]
fn only_store_spells_the_store_files_even_in_messages() {
    // Messages format `store::layout`'s constants, so a renamed file is
    // renamed everywhere. The ground layer sits below `store/` and cannot
    // import it: its messages may spell the names.
    let bad = offenders(
        &files(),
        &["vault.toml", "vault-key.age", "coffer.toml", "\".age\""],
        |rel| rel.starts_with("store/") || rel == "error.rs" || rel == "name.rs",
        true,
    );
    assert!(
        bad.is_empty(),
        "store file names spelled outside src/store/ (use store::layout):\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_reader_sees_imports_and_not_strings_or_comments() {
    // The checks above are only as good as the reading: make sure it finds
    // a nested `use` and ignores a path inside a comment or a string.
    let f = File {
        rel: "store/x.rs".into(),
        module: vec!["store".into(), "x".into()],
        code: without_tests(&strip(
            "use crate::{a::{b, c}, d};\n// use crate::e;\nlet s = \"crate::f\";\nsuper::g::h();\n#[cfg(test)]\nuse crate::i;",
            true,
        )),
        code_with_strings: String::new(),
    };
    let got: BTreeSet<String> = paths(&f).into_iter().map(|p| p.join("::")).collect();
    let want: BTreeSet<String> = ["a::b", "a::c", "d", "store::g::h"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(got, want);
}
