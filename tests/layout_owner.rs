//! Only `src/store/` knows what the store's files are called: everything
//! else asks `store::layout`. This fails if a store file name is spelled
//! out in code anywhere else in `src/` (comments and docs may name them).

use std::fs;
use std::path::{Path, PathBuf};

/// The names only `src/store/` may spell.
const NAMES: [&str; 4] = ["vault.toml", "vault-key.age", "coffer.toml", "\".age\""];

/// Files that still spell a name in a user-facing message, and why they
/// may. Each should go when it can.
const ALLOWED: [(&str, &str); 4] = [
    // The ground layer sits below `store/` (layout imports it): its
    // messages cannot format layout's constants without an import cycle.
    ("src/error.rs", "ground layer, below store/"),
    ("src/name.rs", "ground layer, below store/"),
    // Owned by other changes in flight; messages only.
    ("src/cli/recipients.rs", "messages; being changed elsewhere"),
    ("src/cli/vault.rs", "a message; being changed elsewhere"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `text` that name a store file in code, not in a comment.
fn offending_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let code = line.trim_start();
            !code.starts_with("//") && NAMES.iter().any(|n| code.contains(n))
        })
        .map(|(i, line)| (i + 1, line.trim().to_owned()))
        .collect()
}

#[test]
fn only_the_store_spells_store_file_names() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let mut found = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel.starts_with("src/store/") || ALLOWED.iter().any(|(f, _)| *f == rel) {
            continue;
        }
        for (line, code) in offending_lines(&fs::read_to_string(&path).unwrap()) {
            found.push(format!("{rel}:{line}: {code}"));
        }
    }
    assert!(
        found.is_empty(),
        "store file names spelled outside src/store/ (use store::layout):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_sees_names_in_code_and_not_in_comments() {
    let text = "/// reads vault.toml\n// coffer.toml\nlet p = dir.join(\"vault-key.age\");\nif f.ends_with(\".age\") {}\nlet ok = layout::MANIFEST_FILE;\n";
    let lines: Vec<usize> = offending_lines(text).into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines, [3, 4]);
}
