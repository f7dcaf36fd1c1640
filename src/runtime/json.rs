//! A small strict JSON reader that keeps byte positions, and the writers
//! that go with it.
//!
//! `resolve` must rewrite a document byte for byte except for the objects
//! it replaces, so it cannot go through a parsed tree (which would lose
//! whitespace, key order and number spellings). This reader checks the
//! whole document against RFC 8259 and reports where each *reference*
//! is: an object with exactly two members, `"vault"` and `"key"`, whose
//! values are strings. [`replace_spans`] then splices strings in their
//! place. The same reader parses the flat `{"name": "value"}` objects that
//! `import` reads, so that values go straight into wiped buffers and a
//! name given twice is an error, not a silent "last one wins".
//!
//! Every function here takes bytes and returns a result; none panics on
//! any input, and nesting is limited so that a hostile document cannot
//! exhaust the stack.

use std::fmt;
use std::ops::Range;

use zeroize::Zeroizing;

/// The deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 256;

/// Where something is in a text: 1-based line and column (in characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    /// The line, from 1.
    pub line: usize,
    /// The column in characters, from 1.
    pub column: usize,
}

impl Position {
    /// Returns the position of byte `offset` in `text`.
    pub fn at(text: &[u8], offset: usize) -> Position {
        let before = text.get(..offset).unwrap_or(text);
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        Position {
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            column: 1 + before[line_start..]
                .iter()
                .filter(|&&b| (b & 0xC0) != 0x80)
                .count(),
        }
    }
}

/// Finds positions for offsets that mostly come in increasing order, in
/// time linear in the text overall (going back restarts from the top).
pub(crate) struct Locator<'a> {
    text: &'a [u8],
    offset: usize,
    pos: Position,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(text: &'a [u8]) -> Locator<'a> {
        Locator {
            text,
            offset: 0,
            pos: Position { line: 1, column: 1 },
        }
    }

    /// Returns the position of byte `offset`.
    pub(crate) fn at(&mut self, offset: usize) -> Position {
        if offset < self.offset {
            *self = Locator::new(self.text);
        }
        let end = offset.min(self.text.len());
        for &b in self.text.get(self.offset..end).unwrap_or_default() {
            if b == b'\n' {
                self.pos.line += 1;
                self.pos.column = 1;
            } else if (b & 0xC0) != 0x80 {
                self.pos.column += 1;
            }
        }
        self.offset = end.max(self.offset);
        self.pos
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a document was refused. Its `Display` gives a position and a
/// description, never a piece of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonError {
    /// Where.
    pub at: Position,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.at.line, self.at.column, self.message
        )
    }
}

impl std::error::Error for JsonError {}

/// An object that is exactly a reference, `{"vault": …, "key": …}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonReference {
    /// Its bytes in the document, braces included.
    pub span: Range<usize>,
    /// Where its opening brace is.
    pub at: Position,
    /// The `vault` member's string, unescaped.
    pub vault: String,
    /// The `key` member's string, unescaped.
    pub key: String,
}

/// What [`find_references`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct References {
    /// Every reference, in document order.
    pub references: Vec<JsonReference>,
    /// Objects with both a `vault` and a `key` member that are not exactly
    /// references (another member, or a value that is not a string): left
    /// as they are, but probably worth a warning.
    pub lookalikes: Vec<Position>,
}

/// Checks that `input` is one JSON document and finds its references.
pub fn find_references(input: &[u8]) -> Result<References, JsonError> {
    let mut p = Reader::new(input)?;
    p.find = true;
    p.document()?;
    Ok(p.found)
}

/// One member of a flat object read by [`parse_flat_object`].
pub struct Member {
    /// The member's name, unescaped.
    pub name: String,
    /// Its string value, unescaped.
    pub value: Zeroizing<String>,
    /// Where the name is.
    pub at: Position,
}

impl fmt::Debug for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .field("at", &self.at)
            .finish()
    }
}

/// Reads a document that is one object whose values are all strings, in
/// document order. A name given twice is an error.
pub fn parse_flat_object(input: &[u8]) -> Result<Vec<Member>, JsonError> {
    let mut p = Reader::new(input)?;
    p.ws();
    if p.peek() != Some(b'{') {
        return Err(p.err("expected an object of names and string values"));
    }
    p.pos += 1;
    let mut out: Vec<Member> = Vec::new();
    let mut names: std::collections::HashSet<String> = std::collections::HashSet::new();
    p.ws();
    if p.peek() == Some(b'}') {
        p.pos += 1;
    } else {
        loop {
            p.ws();
            let name_at = p.pos;
            if p.peek() != Some(b'"') {
                return Err(p.err("expected a member name in double quotes"));
            }
            let name = p.string()?;
            if !names.insert(name.to_string()) {
                return Err(JsonError {
                    at: Position::at(input, name_at),
                    message: format!("{:?} is given twice", name.as_str()),
                });
            }
            p.ws();
            p.expect(b':')?;
            p.ws();
            if p.peek() != Some(b'"') {
                return Err(JsonError {
                    at: Position::at(input, p.pos),
                    message: format!("the value of {:?} is not a string", name.as_str()),
                });
            }
            let value = p.string()?;
            out.push(Member {
                name: name.to_string(),
                value,
                at: p.locator.at(name_at),
            });
            p.ws();
            match p.peek() {
                Some(b',') => p.pos += 1,
                Some(b'}') => {
                    p.pos += 1;
                    break;
                }
                _ => return Err(p.err("expected ',' or '}'")),
            }
        }
    }
    p.ws();
    if p.pos != input.len() {
        return Err(p.err("unexpected text after the object"));
    }
    Ok(out)
}

/// Appends `s` to `out` as a JSON string, quotes included. Only `"`, `\`
/// and control characters are escaped; everything else is kept as UTF-8.
pub fn quote_into(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 15] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The most bytes [`quote_into`] writes for `s`.
fn quoted_len_bound(s: &str) -> usize {
    2 + 6 * s.len()
}

/// Writes a flat object, one member per line, in the order given:
/// `{"name": "value", …}` with two-space indentation and a final newline.
pub fn write_flat_object<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)> + Clone,
) -> Zeroizing<String> {
    // Sized up front: growing a wiped buffer would leave copies behind.
    let cap = 4 + pairs
        .clone()
        .into_iter()
        .map(|(n, v)| 8 + quoted_len_bound(n) + quoted_len_bound(v))
        .sum::<usize>();
    let mut out = Zeroizing::new(String::with_capacity(cap));
    out.push('{');
    let mut first = true;
    for (name, value) in pairs {
        out.push_str(if first { "\n  " } else { ",\n  " });
        first = false;
        quote_into(&mut out, name);
        out.push_str(": ");
        quote_into(&mut out, value);
    }
    out.push_str(if first { "}\n" } else { "\n}\n" });
    out
}

/// Returns `input` with each span replaced by a JSON string holding the
/// paired text. Spans must be in order and must not overlap (as
/// [`find_references`] returns them); one that does not fit is skipped.
pub fn replace_spans<'a>(
    input: &[u8],
    replacements: impl IntoIterator<Item = (Range<usize>, &'a str)> + Clone,
) -> Zeroizing<Vec<u8>> {
    let cap = input.len()
        + replacements
            .clone()
            .into_iter()
            .map(|(_, s)| quoted_len_bound(s))
            .sum::<usize>();
    let mut out = Zeroizing::new(Vec::with_capacity(cap));
    let mut quoted = Zeroizing::new(String::new());
    let mut done = 0;
    for (span, text) in replacements {
        if span.start < done || span.end < span.start || span.end > input.len() {
            continue;
        }
        out.extend_from_slice(&input[done..span.start]);
        quoted.clear();
        quoted.reserve(quoted_len_bound(text));
        quote_into(&mut quoted, text);
        out.extend_from_slice(quoted.as_bytes());
        quoted.clear();
        done = span.end;
    }
    out.extend_from_slice(&input[done..]);
    out
}

/// A cursor over a document already checked to be UTF-8.
struct Reader<'a> {
    s: &'a [u8],
    locator: Locator<'a>,
    pos: usize,
    depth: usize,
    find: bool,
    found: References,
}

/// What an object member's value was, as far as references care.
enum Kind {
    Str(Zeroizing<String>),
    Other,
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Result<Reader<'a>, JsonError> {
        if let Err(e) = std::str::from_utf8(input) {
            return Err(JsonError {
                at: Position::at(input, e.valid_up_to()),
                message: "the text is not valid UTF-8".into(),
            });
        }
        let mut r = Reader {
            s: input,
            locator: Locator::new(input),
            pos: 0,
            depth: 0,
            find: false,
            found: References::default(),
        };
        // A byte order mark is not JSON, but editors write one.
        if input.starts_with("\u{feff}".as_bytes()) {
            r.pos = 3;
        }
        Ok(r)
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn err(&self, message: &str) -> JsonError {
        let message = if self.pos >= self.s.len() {
            format!("{message}, found the end of the text")
        } else {
            message.to_owned()
        };
        JsonError {
            at: Position::at(self.s, self.pos),
            message,
        }
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err(&format!("expected '{}'", b as char)))
        }
    }

    fn document(&mut self) -> Result<(), JsonError> {
        self.ws();
        self.value()?;
        self.ws();
        if self.pos != self.s.len() {
            return Err(self.err("unexpected text after the document"));
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Kind, JsonError> {
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Kind::Str(self.string()?)),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }

    fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("arrays and objects are nested too deeply"));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Kind, JsonError> {
        let start = self.pos;
        self.enter()?;
        self.pos += 1;
        let (mut count, mut vault, mut key) = (0usize, None, None);
        let (mut has_vault, mut has_key) = (false, false);
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                if self.peek() != Some(b'"') {
                    return Err(self.err("expected a member name in double quotes"));
                }
                let name = self.string()?;
                self.ws();
                self.expect(b':')?;
                self.ws();
                let v = self.value()?;
                count += 1;
                if self.find {
                    match (name.as_str(), v) {
                        ("vault", v) => {
                            has_vault = true;
                            vault = match v {
                                Kind::Str(s) => Some(s),
                                Kind::Other => None,
                            };
                        }
                        ("key", v) => {
                            has_key = true;
                            key = match v {
                                Kind::Str(s) => Some(s),
                                Kind::Other => None,
                            };
                        }
                        _ => {}
                    }
                }
                self.ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err("expected ',' or '}'")),
                }
            }
        }
        self.depth -= 1;
        if has_vault && has_key {
            match (count, vault, key) {
                (2, Some(vault), Some(key)) => {
                    let at = self.locator.at(start);
                    self.found.references.push(JsonReference {
                        span: start..self.pos,
                        at,
                        vault: vault.to_string(),
                        key: key.to_string(),
                    })
                }
                _ => {
                    let at = self.locator.at(start);
                    self.found.lookalikes.push(at)
                }
            }
        }
        Ok(Kind::Other)
    }

    fn array(&mut self) -> Result<Kind, JsonError> {
        self.enter()?;
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                self.value()?;
                self.ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b']') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.err("expected ',' or ']'")),
                }
            }
        }
        self.depth -= 1;
        Ok(Kind::Other)
    }

    fn literal(&mut self, word: &[u8]) -> Result<Kind, JsonError> {
        if self.s[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(Kind::Other)
        } else {
            Err(self.err("expected a value"))
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Kind, JsonError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("expected a digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err("expected a digit after '.'"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err("expected a digit in the exponent"));
            }
        }
        Ok(Kind::Other)
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let Some(h) = self.s.get(self.pos..self.pos + 4) else {
            return Err(self.err("expected four hex digits after \\u"));
        };
        let mut n = 0u32;
        for &b in h {
            let d = (b as char)
                .to_digit(16)
                .ok_or_else(|| self.err("expected four hex digits after \\u"))?;
            n = n * 16 + d;
        }
        self.pos += 4;
        Ok(n)
    }

    /// Reads a string at the opening quote, returning it unescaped.
    fn string(&mut self) -> Result<Zeroizing<String>, JsonError> {
        let open = self.pos;
        self.pos += 1;
        // The unescaped text is never longer than the escaped one: size the
        // buffer once so no unwiped copy is left behind by growth.
        let raw_len = self.s[self.pos..]
            .iter()
            .position(|&b| b == b'"')
            .unwrap_or(self.s.len() - self.pos);
        let mut out = Zeroizing::new(String::with_capacity(raw_len));
        let mut run = self.pos;
        loop {
            let Some(b) = self.peek() else {
                self.pos = open;
                return Err(self.err("this string is never closed"));
            };
            match b {
                b'"' => {
                    push_str(&mut out, &self.s[run..self.pos]);
                    self.pos += 1;
                    return Ok(out);
                }
                b'\\' => {
                    push_str(&mut out, &self.s[run..self.pos]);
                    self.pos += 1;
                    let c = match self.peek() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.pos..].starts_with(b"\\u") {
                                    return Err(
                                        self.err("a \\u escape is half of a surrogate pair")
                                    );
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(
                                        self.err("a \\u escape is half of a surrogate pair")
                                    );
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            let c = char::from_u32(code).ok_or_else(|| {
                                self.err("a \\u escape is half of a surrogate pair")
                            })?;
                            push_char(&mut out, c);
                            run = self.pos;
                            continue;
                        }
                        _ => return Err(self.err("invalid escape in a string")),
                    };
                    push_char(&mut out, c);
                    self.pos += 1;
                    run = self.pos;
                }
                0..0x20 => return Err(self.err("a control character must be escaped in a string")),
                _ => self.pos += 1,
            }
        }
    }
}

/// Appends bytes known to be UTF-8 (the input was checked), keeping the
/// buffer from reallocating where it can.
fn push_str(out: &mut Zeroizing<String>, bytes: &[u8]) {
    let s = std::str::from_utf8(bytes).unwrap_or_default();
    reserve_wiped(out, s.len());
    out.push_str(s);
}

fn push_char(out: &mut Zeroizing<String>, c: char) {
    reserve_wiped(out, c.len_utf8());
    out.push(c);
}

/// Grows a wiped buffer by moving into a new one, so that the old
/// allocation is wiped rather than freed as it is.
fn reserve_wiped(out: &mut Zeroizing<String>, more: usize) {
    if out.len() + more > out.capacity() {
        let mut bigger = Zeroizing::new(String::with_capacity((out.len() + more) * 2));
        bigger.push_str(out);
        *out = bigger;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refs(s: &str) -> Vec<(String, String, usize, usize)> {
        find_references(s.as_bytes())
            .unwrap()
            .references
            .into_iter()
            .map(|r| (r.vault, r.key, r.at.line, r.at.column))
            .collect()
    }

    #[test]
    fn finds_the_webhook_header_reference() {
        let doc = r#"{"Content-Type": "application/json", "Authorization": {"vault": "api-keys", "key": "external-api-token"}}"#;
        let found = find_references(doc.as_bytes()).unwrap();
        assert_eq!(found.references.len(), 1);
        let r = &found.references[0];
        assert_eq!(
            (r.vault.as_str(), r.key.as_str()),
            ("api-keys", "external-api-token")
        );
        assert_eq!(
            &doc[r.span.clone()],
            r#"{"vault": "api-keys", "key": "external-api-token"}"#
        );
        assert_eq!((r.at.line, r.at.column), (1, 55));
    }

    #[test]
    fn finds_references_anywhere_in_either_order_and_unescapes_them() {
        let doc = "[\n {\"key\": \"k1\", \"vault\": \"v1\"},\n {\"a\": [{ \"vault\" : \"v\\u0032\" , \"key\":\"k\\/2\" }]},\n {\"vault\": \"v3\", \"key\": \"k3\"}\n]";
        assert_eq!(
            refs(doc),
            [
                ("v1".into(), "k1".into(), 2, 2),
                ("v2".into(), "k/2".into(), 3, 9),
                ("v3".into(), "k3".into(), 4, 2),
            ]
        );
        assert_eq!(refs(r#"{"vault":"v","key":"k"}"#).len(), 1);
    }

    #[test]
    fn objects_that_are_not_exactly_references_are_lookalikes() {
        let doc = r#"[{"vault": "v", "key": "k", "x": 1}, {"vault": 1, "key": "k"},
                      {"vault": "v"}, {"vault": "v", "vault": "w"}, {"vault": "v", "key": null}]"#;
        let found = find_references(doc.as_bytes()).unwrap();
        assert!(found.references.is_empty());
        assert_eq!(found.lookalikes.len(), 3);
    }

    #[test]
    fn refuses_documents_that_are_not_json() {
        for bad in [
            "",
            "{",
            "}",
            "{\"a\" 1}",
            "{\"a\": 1,}",
            "[1,]",
            "01",
            "1.",
            "1e",
            "-",
            "tru",
            "\"\\x\"",
            "\"a\nb\"",
            "\"\\ud800\"",
            "\"\\udc00x\"",
            "{'a': 1}",
            "{a: 1}",
            "1 2",
            "\"open",
            "[\"\\u12\"]",
            "NaN",
        ] {
            assert!(find_references(bad.as_bytes()).is_err(), "{bad:?}");
        }
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(find_references(deep.as_bytes()).is_err());
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(find_references(ok.as_bytes()).is_ok());
        let e = find_references(b"{\n  \"a\": 1,\n  \"b\": tru\n}").unwrap_err();
        assert_eq!((e.at.line, e.at.column), (3, 8));
        assert!(find_references(b"\xef\xbb\xbf {\"a\": -0.5e+3}").is_ok());
        assert!(find_references(b"\"\xff\"").is_err());
    }

    #[test]
    fn errors_never_quote_the_document() {
        let e = find_references(br#"{"token": "sk_live_sentinel" oops}"#).unwrap_err();
        assert!(!e.to_string().contains("sentinel"), "{e}");
        let e = parse_flat_object(br#"{"A": "sk_live_sentinel", "B": 5}"#).unwrap_err();
        assert!(!e.to_string().contains("sentinel"), "{e}");
        assert!(e.to_string().contains("\"B\" is not a string"), "{e}");
    }

    #[test]
    fn replaces_spans_leaving_every_other_byte_alone() {
        let doc =
            "{\n  \"n\": 1.50e3,\n  \"h\": {\"vault\": \"v\", \"key\": \"k\"} ,\"z\":[ ]\n}\n";
        let found = find_references(doc.as_bytes()).unwrap();
        let value = "line\n\"quoted\" \\ ✓ \u{1}";
        let out = replace_spans(
            doc.as_bytes(),
            found.references.iter().map(|r| (r.span.clone(), value)),
        );
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            "{\n  \"n\": 1.50e3,\n  \"h\": \"line\\n\\\"quoted\\\" \\\\ ✓ \\u0001\" ,\"z\":[ ]\n}\n"
        );
    }

    #[test]
    fn reads_flat_objects_and_refuses_anything_else() {
        let got = parse_flat_object(b" {\"A\": \"1\", \"b-c\": \"x\\ny\"} ").unwrap();
        let got: Vec<(&str, &str)> = got
            .iter()
            .map(|m| (m.name.as_str(), m.value.as_str()))
            .collect();
        assert_eq!(got, [("A", "1"), ("b-c", "x\ny")]);
        assert!(parse_flat_object(b"{}").unwrap().is_empty());
        for bad in [
            "[]",
            "{\"a\": 1}",
            "{\"a\": {}}",
            "{\"a\": \"1\", \"a\": \"2\"}",
            "{\"a\": \"1\"} x",
            "{\"a\": \"1\",}",
            "\"a\"",
        ] {
            assert!(parse_flat_object(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn writes_flat_objects() {
        assert_eq!(write_flat_object([]).as_str(), "{}\n");
        assert_eq!(
            write_flat_object([("a", "1"), ("b", "\"\n\u{7f}é")]).as_str(),
            "{\n  \"a\": \"1\",\n  \"b\": \"\\\"\\n\u{7f}é\"\n}\n"
        );
    }

    proptest! {
        #![proptest_config(crate::test_seed::config())]
        #[test]
        fn flat_objects_round_trip(values in proptest::collection::vec(any::<String>(), 0..6)) {
            let names: Vec<String> = (0..values.len()).map(|i| format!("n{i}")).collect();
            let text = write_flat_object(names.iter().map(String::as_str).zip(values.iter().map(String::as_str)));
            prop_assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
            let back = parse_flat_object(text.as_bytes()).unwrap();
            let back: Vec<&str> = back.iter().map(|m| m.value.as_str()).collect();
            let want: Vec<&str> = values.iter().map(String::as_str).collect();
            prop_assert_eq!(back, want);
        }

        #[test]
        fn agrees_with_serde_json_on_validity(s in "[\\[\\]{}\",:0-9a-z\\\\ .eE+-]{0,30}") {
            let ours = find_references(s.as_bytes()).is_ok();
            let theirs = serde_json::from_str::<serde_json::Value>(&s).is_ok();
            prop_assert_eq!(ours, theirs, "{:?}", s);
        }

        #[test]
        fn the_locator_agrees_with_position(
            text in "(é|a|\n){0,40}",
            offsets in proptest::collection::vec(0usize..50, 0..8),
        ) {
            let mut l = Locator::new(text.as_bytes());
            for o in offsets {
                let o = o.min(text.len());
                prop_assert_eq!(l.at(o), Position::at(text.as_bytes(), o));
            }
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = find_references(&bytes);
            let _ = parse_flat_object(&bytes);
        }
    }
}
