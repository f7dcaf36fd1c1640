//! The only writer of data on stdout: tables, JSON documents, raw values,
//! and the plurals that commentary uses.
//!
//! Every read command renders through [`Out`], so the output style is
//! decided here once:
//!
//! - `--json` (`-j`, global, as the platform's CLI has it) prints exactly
//!   one JSON document on one line, compact, followed by a newline: what
//!   `tailor-sdk` prints (`JSON.stringify`), and what `jq` and line-based
//!   tools take most easily. Field names are the platform's lowerCamelCase
//!   where it has a shape, and the command's documented names elsewhere.
//! - Tables are aligned columns under an upper-case header, two spaces
//!   apart, with no trailing spaces; an empty table prints nothing (the
//!   command says so on stderr).
//! - Everything ends with a newline, and a closed pipe (`coffer list | head`)
//!   is not an error.
//!
//! A new output format is a new method here and a match in the commands
//! that offer it.

use std::io::{self, Write};

use serde::Serialize;
use zeroize::Zeroizing;

use super::error::{CliError, CliResult};

/// A named thing with its times, in the platform's JSON shape
/// (`[{"name","createdAt","updatedAt"}]`): `list` and `vault list`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TimesRow {
    pub name: String,
    pub created_at: String,
    pub updated_at: String,
}

/// How this run writes its data.
#[derive(Clone, Copy, Debug, Default)]
pub struct Out {
    json: bool,
}

impl Out {
    pub fn new(json: bool) -> Out {
        Out { json }
    }

    /// Whether `--json` was given.
    pub fn json(&self) -> bool {
        self.json
    }

    /// Prints one JSON document: compact, on one line, with a newline.
    /// The text is wiped from memory afterwards: `diff --show-values`
    /// puts values in it.
    pub fn json_doc<T: Serialize + ?Sized>(&self, value: &T) -> CliResult {
        let mut s = Zeroizing::new(
            serde_json::to_string(value)
                .map_err(|e| CliError::new(format!("could not write JSON: {e}")))?,
        );
        s.push('\n');
        self.bytes(s.as_bytes())
    }

    /// Prints rows as an aligned table under `header` (nothing at all when
    /// there are no rows).
    pub fn table(&self, header: &[&str], rows: &[Vec<String>]) -> CliResult {
        if rows.is_empty() {
            return Ok(());
        }
        self.bytes(table_text(header, rows).as_bytes())
    }

    /// Writes bytes to stdout as they are (a value, an exported file).
    pub fn bytes(&self, bytes: &[u8]) -> CliResult {
        let mut out = io::stdout().lock();
        match out.write_all(bytes).and_then(|()| out.flush()) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            r => r.map_err(|e| CliError::new(format!("could not write to stdout: {e}"))),
        }
    }
}

/// Returns `s` safe to print on a terminal or in a log line: control
/// characters (C0, DEL, C1) and the Unicode marks that reorder or hide text
/// (bidirectional overrides and isolates, zero-width characters) become
/// `\u{..}` escapes (`\n`, `\r`, `\t` for the common three), and `\` becomes
/// `\\` so that an escape cannot be forged.
///
/// Every name coffer did not validate itself goes through here before it
/// is printed: file names found in the store, names from the platform,
/// paths found by `scan` and `refs`. Otherwise a newline in a file name
/// forges an `ok` line in `verify`, and an escape sequence rewrites the
/// terminal. Validated names (secret and vault names) never change.
pub fn esc(s: &str) -> std::borrow::Cow<'_, str> {
    fn unsafe_char(c: char) -> bool {
        c == '\\'
            || c.is_control()
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    }
    if !s.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// [`esc`] for a path (not UTF-8 bytes are shown as the replacement
/// character).
pub fn esc_path(p: &std::path::Path) -> String {
    esc(&p.to_string_lossy()).into_owned()
}

/// The text of an aligned table: columns two spaces apart, padded to the
/// widest cell (in characters), no trailing spaces.
fn table_text(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

/// `n` and the noun that goes with it: `1 secret`, `2 secrets`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", pick(n, one, many))
}

/// The word that goes with `n`: `one` for 1, `many` otherwise (`was` and
/// `were`, `does` and `do`, `it` and `them`).
pub fn pick<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// The plural `s` for a regular noun: `""` for 1, `"s"` otherwise.
pub fn s(n: usize) -> &'static str {
    pick(n, "", "s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_on_characters_and_trim_trailing_spaces() {
        let t = table_text(
            &["NAME", "SECRETS"],
            &[
                vec!["api-keys".into(), "2".into()],
                vec!["é".into(), "".into()],
            ],
        );
        assert_eq!(t, "NAME      SECRETS\napi-keys  2\né\n");
    }

    #[test]
    fn escaping_leaves_ordinary_names_and_escapes_control_characters() {
        assert!(matches!(
            esc("stripe-key.age"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(esc("naïve café"), "naïve café");
        assert_eq!(esc("a\nb: ok"), "a\\nb: ok");
        assert_eq!(esc("\u{1b}[2Jx"), "\\u{1b}[2Jx");
        assert_eq!(esc("a\\nb"), "a\\\\nb");
        assert_eq!(esc("\r\t\u{7f}\u{9b}"), "\\r\\t\\u{7f}\\u{9b}");
        assert_eq!(esc("x\u{202e}y"), "x\\u{202e}y");
    }

    #[test]
    fn plurals_pick_the_word_for_one_and_for_the_rest() {
        assert_eq!(count(1, "secret", "secrets"), "1 secret");
        assert_eq!(count(0, "secret", "secrets"), "0 secrets");
        assert_eq!(pick(2, "was", "were"), "were");
        assert_eq!(s(1), "");
        assert_eq!(s(3), "s");
    }
}
