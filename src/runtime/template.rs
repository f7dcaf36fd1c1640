//! Config-file templates: `{{ coffer://VAULT/SECRET }}` references replaced
//! by values, the way `op inject` fills `{{ op://… }}` ones.
//!
//! A reference is `{{`, optional spaces or tabs, `coffer://VAULT/SECRET`
//! (or `op://VAULT/SECRET`, so that templates written for `op inject` move
//! over unchanged), then any number of filters `| NAME`, then `}}`, all on
//! one line. Every other byte of the template — including `{{ … }}` that
//! does not start with one of the two schemes, as Helm or Jinja use — is
//! copied through untouched.
//!
//! A `{{` followed by a scheme that is not a well-formed reference (a bad
//! name, an `op://vault/item/field` with three parts, an unknown filter, no
//! closing `}}`) is an error naming its line and column, never silently
//! left in the output.
//!
//! Filters, applied left to right, make a value safe inside a file's own
//! syntax:
//!
//! - `json`: a JSON string, quotes included (`"a\"b"`);
//! - `yaml`: a YAML double-quoted scalar, quotes included;
//! - `shell`: a POSIX shell single-quoted word (`'it'\''s'`);
//! - `base64`: standard base64 with padding.

use std::fmt;

use base64::Engine as _;
use zeroize::Zeroizing;

use crate::name::{SecretName, VaultName};
use crate::runtime::json::{self, Position};
use crate::runtime::shell;

/// A filter applied to a value before it is put in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    /// A JSON string literal.
    Json,
    /// A YAML double-quoted scalar.
    Yaml,
    /// A POSIX shell single-quoted word.
    Shell,
    /// Standard base64.
    Base64,
}

impl Filter {
    fn parse(s: &str) -> Option<Filter> {
        Some(match s {
            "json" => Filter::Json,
            "yaml" => Filter::Yaml,
            "shell" => Filter::Shell,
            "base64" => Filter::Base64,
            _ => return None,
        })
    }
}

/// The schemes a reference may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `coffer://`.
    Coffer,
    /// `op://` (1Password's `op inject` spelling).
    Op,
}

/// One reference in a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The byte range of the whole `{{ … }}`.
    pub span: std::ops::Range<usize>,
    /// Where the `{{` is.
    pub at: Position,
    /// How it was spelled.
    pub scheme: Scheme,
    /// The vault.
    pub vault: VaultName,
    /// The secret.
    pub name: SecretName,
    /// The filters, in the order they apply.
    pub filters: Vec<Filter>,
}

/// A reference that is not well formed. Its `Display` names the position
/// and what was written there (template text, never a value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// Where the reference starts.
    pub at: Position,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.at.line, self.at.column, self.problem)
    }
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn skip_blanks(text: &[u8], mut i: usize) -> usize {
    while i < text.len() && is_blank(text[i]) {
        i += 1;
    }
    i
}

/// The longest template text shown in an error.
const MAX_SHOWN: usize = 60;

fn shown(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    if s.chars().count() > MAX_SHOWN {
        let cut: String = s.chars().take(MAX_SHOWN).collect();
        format!("{cut}…")
    } else {
        s.into_owned()
    }
}

/// Finds every reference in `text`. Returns them in order, or every
/// malformed one.
pub fn parse(text: &[u8]) -> Result<Vec<Reference>, Vec<TemplateError>> {
    let mut refs = Vec::new();
    let mut errors = Vec::new();
    let mut i = 0;
    while let Some(off) = memchr::memmem::find(&text[i..], b"{{") {
        let start = i + off;
        let body = skip_blanks(text, start + 2);
        let scheme = if text[body..].starts_with(b"coffer://") {
            Some((Scheme::Coffer, body + 9))
        } else if text[body..].starts_with(b"op://") {
            Some((Scheme::Op, body + 5))
        } else {
            None
        };
        let Some((scheme, path_start)) = scheme else {
            // Not ours: `{{{` may still hold one one byte on.
            i = start + 1;
            continue;
        };
        match parse_one(text, start, scheme, path_start) {
            Ok(r) => {
                i = r.span.end;
                refs.push(r);
            }
            Err((problem, resume)) => {
                errors.push(TemplateError {
                    at: Position::at(text, start),
                    problem,
                });
                i = resume;
            }
        }
    }
    if errors.is_empty() {
        Ok(refs)
    } else {
        Err(errors)
    }
}

/// Parses the reference whose `{{` is at `start`. On error, returns the
/// problem and where to go on looking.
fn parse_one(
    text: &[u8],
    start: usize,
    scheme: Scheme,
    path_start: usize,
) -> Result<Reference, (String, usize)> {
    let line_end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |o| start + o);
    let fail = |problem: String| (problem, start + 2);
    let mut i = path_start;
    while i < line_end && !is_blank(text[i]) && text[i] != b'|' && text[i] != b'}' {
        i += 1;
    }
    let path = &text[path_start..i];
    let written = shown(&text[start..i]);
    let Ok(path) = std::str::from_utf8(path) else {
        return Err(fail(format!("{written}: not valid UTF-8")));
    };
    let parts: Vec<&str> = path.split('/').collect();
    let scheme_text = match scheme {
        Scheme::Coffer => "coffer://",
        Scheme::Op => "op://",
    };
    if parts.len() != 2 {
        let why = if scheme == Scheme::Op && parts.len() == 3 {
            format!(
                "{scheme_text}{path} names an item and a field; a coffer secret is {scheme_text}VAULT/SECRET"
            )
        } else {
            format!("{scheme_text}{path} is not {scheme_text}VAULT/SECRET")
        };
        return Err(fail(why));
    }
    let vault: VaultName = parts[0]
        .parse()
        .map_err(|e| fail(format!("{scheme_text}{path}: {e}")))?;
    let name: SecretName = parts[1]
        .parse()
        .map_err(|e| fail(format!("{scheme_text}{path}: {e}")))?;
    let mut filters = Vec::new();
    loop {
        i = skip_blanks(text, i);
        if text[i..line_end].starts_with(b"}}") {
            i += 2;
            break;
        }
        if i < line_end && text[i] == b'|' {
            let f_start = skip_blanks(text, i + 1);
            let mut f_end = f_start;
            while f_end < line_end && (text[f_end].is_ascii_alphanumeric() || text[f_end] == b'_') {
                f_end += 1;
            }
            let word = String::from_utf8_lossy(&text[f_start..f_end]);
            match Filter::parse(&word) {
                Some(f) => filters.push(f),
                None if word.is_empty() => {
                    return Err(fail(format!(
                        "{scheme_text}{path}: a filter name must follow `|` (json, yaml, shell or base64)"
                    )));
                }
                None => {
                    return Err(fail(format!(
                        "{scheme_text}{path}: unknown filter `{word}` (json, yaml, shell or base64)"
                    )));
                }
            }
            i = f_end;
            continue;
        }
        return Err(fail(format!(
            "{scheme_text}{path}: expected `}}}}` to close the reference on the same line"
        )));
    }
    Ok(Reference {
        span: start..i,
        at: Position::at(text, start),
        scheme,
        vault,
        name,
        filters,
    })
}

/// Appends `value` as a YAML double-quoted scalar: `\` and `"` escaped,
/// and every character YAML would fold or refuse (control characters, the
/// Unicode line and paragraph separators, NEL, BOM) as an escape.
pub fn yaml_quote_into(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20
                || c == '\u{7f}'
                || ('\u{80}'..='\u{9f}').contains(&c)
                || c == '\u{2028}'
                || c == '\u{2029}'
                || c == '\u{feff}' =>
            {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Applies `filters` to `value`, left to right.
pub fn apply(value: &str, filters: &[Filter]) -> Zeroizing<String> {
    let mut cur = Zeroizing::new(value.to_owned());
    for f in filters {
        let mut next = Zeroizing::new(String::with_capacity(cur.len() * 6 + 2));
        match f {
            Filter::Json => json::quote_into(&mut next, &cur),
            Filter::Yaml => yaml_quote_into(&mut next, &cur),
            Filter::Shell => shell::quote_posix_into(&mut next, &cur),
            Filter::Base64 => {
                base64::engine::general_purpose::STANDARD.encode_string(cur.as_bytes(), &mut next)
            }
        }
        cur = next;
    }
    cur
}

/// Renders `text` with each reference replaced by `value(reference)` after
/// its filters; every other byte is copied as it is.
pub fn render<'v>(
    text: &[u8],
    refs: &[Reference],
    mut value: impl FnMut(&Reference) -> &'v str,
) -> Zeroizing<Vec<u8>> {
    let filled: Vec<Zeroizing<String>> = refs.iter().map(|r| apply(value(r), &r.filters)).collect();
    let len = text.len() + filled.iter().map(|f| f.len()).sum::<usize>();
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    let mut at = 0;
    for (r, f) in refs.iter().zip(&filled) {
        out.extend_from_slice(&text[at..r.span.start]);
        out.extend_from_slice(f.as_bytes());
        at = r.span.end;
    }
    out.extend_from_slice(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render_with(text: &str, v: &str) -> String {
        let refs = parse(text.as_bytes()).unwrap();
        String::from_utf8(render(text.as_bytes(), &refs, |_| v).to_vec()).unwrap()
    }

    #[test]
    fn references_with_and_without_spaces_are_replaced_and_nothing_else() {
        let t =
            "a: {{coffer://api/stripe-key}}\nb: {{  op://api/stripe-key\t}} {{ .Values.x }}\r\n";
        assert_eq!(render_with(t, "V"), "a: V\nb: V {{ .Values.x }}\r\n");
    }

    #[test]
    fn filters_chain_left_to_right() {
        let t = "{{ coffer://api/key-one | base64 | json }}";
        assert_eq!(render_with(t, "hi"), "\"aGk=\"");
        assert_eq!(
            render_with("{{ coffer://api/key-one|shell }}", "it's"),
            "'it'\\''s'"
        );
        assert_eq!(
            render_with("{{ coffer://api/key-one | yaml }}", "a\"\n\u{2028}"),
            "\"a\\\"\\n\\u2028\""
        );
    }

    #[test]
    fn malformed_references_name_line_and_column() {
        let t = "x\n  {{ op://vault/item/field }} {{ coffer://api/key-one | nope }}\n{{ coffer://api/key-one";
        let errs = parse(t.as_bytes()).unwrap_err();
        let shown: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(shown[0].starts_with("2:3: op://vault/item/field names an item"));
        assert!(shown[1].starts_with("2:31: coffer://api/key-one: unknown filter `nope`"));
        assert!(shown[2].starts_with("3:1: "));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panicking_and_render_keeps_the_rest(
            text in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
        ) {
            if let Ok(refs) = parse(&text) {
                let out = render(&text, &refs, |_| "");
                let kept: usize = text.len() - refs.iter().map(|r| r.span.len()).sum::<usize>();
                proptest::prop_assert_eq!(out.len(), kept);
            }
        }

        #[test]
        fn references_among_arbitrary_text_are_all_found(
            before in "[^{]{0,20}",
            after in "[^{]{0,20}",
            spaces in " {0,3}",
        ) {
            let t = format!("{before}{{{{{spaces}coffer://api/key-one{spaces}}}}}{after}");
            proptest::prop_assert_eq!(render_with(&t, "V"), format!("{before}V{after}"));
        }
    }

    #[test]
    fn triple_braces_still_find_the_reference() {
        assert_eq!(render_with("{{{coffer://api/key-one}}}", "v"), "{v}");
    }
}
