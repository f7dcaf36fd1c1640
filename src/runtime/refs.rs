//! Finding `{ vault, key }` references in source and configuration files.
//!
//! Applications name a secret with an object of exactly two members,
//! `vault` and `key`, whose values are strings: in the platform SDK's
//! TypeScript (`{ vault: "api-keys", key: "stripe-secret-key" }`), in
//! JSON, or in YAML. These scanners find them so that `refs check` can
//! tell whether each names a secret that exists.
//!
//! They are scanners, not parsers: they read any bytes, never fail and
//! never panic, and find what a careful reader would. The script scanner
//! (JavaScript, TypeScript, JSON and JSONC, since JSON is a subset of the
//! JavaScript literal syntax) tokenizes strings, template literals,
//! comments and regular expressions, so a brace or quote inside one of
//! them is not mistaken for code. The YAML scanner follows block mappings
//! by indentation and reads flow mappings (`{vault: a, key: b}`).

use std::path::Path;

use crate::runtime::json::{Locator, Position};

/// The kinds of file the scanners read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    /// JavaScript, TypeScript, JSON or JSONC.
    Script,
    /// YAML.
    Yaml,
    /// A config-file template for `coffer inject` (`.tpl`, `.tmpl`,
    /// `.template`): `{{ coffer://VAULT/SECRET }}` references.
    Template,
}

impl SourceKind {
    /// Returns the kind of a file from its extension, if it is one the
    /// scanners read.
    pub fn for_path(path: &Path) -> Option<SourceKind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "js" | "jsx" | "mjs" | "cjs" | "ts" | "tsx" | "mts" | "cts" | "json" | "jsonc"
            | "json5" => Some(SourceKind::Script),
            "yaml" | "yml" => Some(SourceKind::Yaml),
            "tpl" | "tmpl" | "template" => Some(SourceKind::Template),
            _ => None,
        }
    }
}

/// A reference found in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// Where the object starts (its `{`, or its first key in YAML).
    pub at: Position,
    /// The vault, as written (unescaped).
    pub vault: String,
    /// The secret, as written (unescaped).
    pub key: String,
}

/// What a scan found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// References whose vault and key are string literals, in file order.
    pub references: Vec<Reference>,
    /// Objects with `vault` and `key` members whose values are variables,
    /// which cannot be checked without running the program.
    pub dynamic: Vec<Position>,
}

/// Scans a file's bytes as `kind`.
pub fn scan(kind: SourceKind, text: &[u8]) -> Found {
    match kind {
        SourceKind::Script => scan_script(text),
        SourceKind::Yaml => scan_yaml(text),
        SourceKind::Template => scan_template(text),
    }
}

/// Scans an `inject` template. The references that are well formed are
/// found (a malformed one is `inject`'s error to report, with its line
/// and column); none is dynamic.
pub fn scan_template(text: &[u8]) -> Found {
    let refs = match crate::runtime::template::parse(text) {
        Ok(refs) => refs,
        // Still check what is there: parse each line on its own, so that
        // one malformed reference does not hide the others.
        Err(_) => {
            let mut refs = Vec::new();
            let mut start = 0;
            for line in text.split_inclusive(|&b| b == b'\n') {
                if let Ok(found) = crate::runtime::template::parse(line) {
                    for mut r in found {
                        r.at = Position::at(text, start + r.span.start);
                        refs.push(r);
                    }
                }
                start += line.len();
            }
            refs
        }
    };
    Found {
        references: refs
            .into_iter()
            .map(|r| Reference {
                at: r.at,
                vault: r.vault.to_string(),
                key: r.name.to_string(),
            })
            .collect(),
        dynamic: Vec::new(),
    }
}

// ---------------------------------------------------------------------------
// JavaScript, TypeScript and JSON

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    /// An identifier or keyword.
    Ident(String),
    /// A string literal, unescaped (`None` if unterminated or not UTF-8).
    Str(Option<String>),
    /// A template literal: `Some` text if it has no `${}` substitution.
    Template(Option<String>),
    /// A number.
    Num,
    /// A regular expression literal.
    Regex,
    /// Any other character.
    Punct(u8),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Brace {
    /// `{` in code.
    Code,
    /// `${` inside a template literal.
    Template,
}

fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b >= 0x80
}

fn is_ident_byte(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

/// Keywords after which a `/` starts a regular expression, not a division.
const REGEX_AFTER: &[&str] = &[
    "return",
    "typeof",
    "instanceof",
    "in",
    "of",
    "new",
    "delete",
    "void",
    "throw",
    "case",
    "do",
    "else",
    "yield",
    "await",
];

struct Lexer<'a> {
    s: &'a [u8],
    pos: usize,
    braces: Vec<Brace>,
    toks: Vec<(Tok, usize)>,
}

impl Lexer<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        self.s.get(i).copied()
    }

    fn regex_allowed(&self) -> bool {
        match self.toks.last() {
            None => true,
            Some((Tok::Punct(b')' | b']' | b'}'), _)) => false,
            Some((Tok::Punct(_), _)) => true,
            Some((Tok::Ident(w), _)) => REGEX_AFTER.contains(&w.as_str()),
            Some(_) => false,
        }
    }

    fn run(mut self) -> Vec<(Tok, usize)> {
        if self.s.starts_with(b"#!") {
            self.skip_line();
        }
        while let Some(b) = self.at(self.pos) {
            let start = self.pos;
            match b {
                b if b.is_ascii_whitespace() => self.pos += 1,
                b'/' if self.at(start + 1) == Some(b'/') => self.skip_line(),
                b'/' if self.at(start + 1) == Some(b'*') => {
                    self.pos = find(self.s, start + 2, b"*/").map_or(self.s.len(), |i| i + 2);
                }
                b'/' if self.regex_allowed() => match self.regex_end(start + 1) {
                    Some(end) => {
                        self.pos = end;
                        self.toks.push((Tok::Regex, start));
                    }
                    None => {
                        self.pos += 1;
                        self.toks.push((Tok::Punct(b'/'), start));
                    }
                },
                b'"' | b'\'' => {
                    let s = self.string(b);
                    self.toks.push((Tok::Str(s), start));
                }
                b'`' => {
                    self.pos += 1;
                    let t = self.template_part();
                    self.toks.push((Tok::Template(t), start));
                }
                b'{' => {
                    self.pos += 1;
                    self.braces.push(Brace::Code);
                    self.toks.push((Tok::Punct(b'{'), start));
                }
                b'}' => {
                    self.pos += 1;
                    if self.braces.pop() == Some(Brace::Template) {
                        // Back inside the template literal after `${…}`.
                        let _ = self.template_part();
                        self.toks.push((Tok::Template(None), start));
                    } else {
                        self.toks.push((Tok::Punct(b'}'), start));
                    }
                }
                b if is_ident_start(b) => {
                    while self.at(self.pos).is_some_and(is_ident_byte) {
                        self.pos += 1;
                    }
                    let word = String::from_utf8_lossy(&self.s[start..self.pos]).into_owned();
                    self.toks.push((Tok::Ident(word), start));
                }
                b if b.is_ascii_digit()
                    || (b == b'.' && self.at(start + 1).is_some_and(|c| c.is_ascii_digit())) =>
                {
                    while self
                        .at(self.pos)
                        .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_')
                    {
                        self.pos += 1;
                    }
                    self.toks.push((Tok::Num, start));
                }
                b => {
                    self.pos += 1;
                    self.toks.push((Tok::Punct(b), start));
                }
            }
        }
        self.toks
    }

    fn skip_line(&mut self) {
        while self.at(self.pos).is_some_and(|b| b != b'\n') {
            self.pos += 1;
        }
    }

    /// Returns the end of a regular expression whose body starts at `i`,
    /// or `None` if the line ends first (then it was a division).
    fn regex_end(&self, mut i: usize) -> Option<usize> {
        let mut class = false;
        loop {
            match self.at(i)? {
                b'\n' | b'\r' => return None,
                b'\\' => i += 2,
                b'[' => {
                    class = true;
                    i += 1;
                }
                b']' => {
                    class = false;
                    i += 1;
                }
                b'/' if !class => {
                    i += 1;
                    while self.at(i).is_some_and(|b| b.is_ascii_alphabetic()) {
                        i += 1;
                    }
                    return Some(i);
                }
                _ => i += 1,
            }
        }
    }

    /// Reads a quoted string at its opening quote. An unescaped line break
    /// ends an unterminated string (as it would be a syntax error).
    fn string(&mut self, quote: u8) -> Option<String> {
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.at(self.pos) {
                None | Some(b'\n') => return None,
                Some(b'\\') => self.pos += 2,
                Some(q) if q == quote => {
                    let body = self.s.get(start..self.pos)?;
                    self.pos += 1;
                    return unescape_js(body);
                }
                Some(_) => self.pos += 1,
            }
        }
    }

    /// Reads template text up to its closing backquote (returning the text
    /// when it was all plain) or up to a `${` (returning `None` and
    /// entering the substitution).
    fn template_part(&mut self) -> Option<String> {
        let start = self.pos;
        loop {
            match self.at(self.pos) {
                None => return None,
                Some(b'\\') => self.pos += 2,
                Some(b'`') => {
                    let body = self.s.get(start..self.pos);
                    self.pos += 1;
                    return body.and_then(unescape_js);
                }
                Some(b'$') if self.at(self.pos + 1) == Some(b'{') => {
                    self.pos += 2;
                    self.braces.push(Brace::Template);
                    return None;
                }
                Some(_) => self.pos += 1,
            }
        }
    }
}

/// Returns the index of `needle` in `s` at or after `from`.
fn find(s: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    s.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Unescapes the body of a JavaScript string literal; `None` if it is not
/// valid UTF-8 or an escape is malformed.
fn unescape_js(body: &[u8]) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    if !body.contains('\\') {
        return Some(body.to_owned());
    }
    let mut out = String::with_capacity(body.len());
    let mut chars = body.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '0' => out.push('\0'),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
            }
            '\n' | '\u{2028}' | '\u{2029}' => {}
            'x' => {
                let h: String = chars.by_ref().take(2).collect();
                out.push(char::from_u32(u32::from_str_radix(&h, 16).ok()?)?);
            }
            'u' => {
                let code = if chars.peek() == Some(&'{') {
                    chars.next();
                    let h: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    if h.is_empty() || h.len() > 6 {
                        return None;
                    }
                    u32::from_str_radix(&h, 16).ok()?
                } else {
                    let h: String = chars.by_ref().take(4).collect();
                    if h.len() != 4 {
                        return None;
                    }
                    u32::from_str_radix(&h, 16).ok()?
                };
                // Surrogates cannot be names; refuse rather than guess.
                out.push(char::from_u32(code)?);
            }
            other => out.push(other),
        }
    }
    Some(out)
}

/// What one property value was.
enum PropValue {
    Literal(String),
    Variable,
}

/// Tries to read `{ vault: …, key: … }` starting at the `{` token `i`.
fn match_object(toks: &[(Tok, usize)], i: usize) -> Option<(PropValue, PropValue)> {
    let mut j = i + 1;
    let (mut vault, mut key) = (None, None);
    let mut count = 0;
    loop {
        if count == 2 && matches!(toks.get(j), Some((Tok::Punct(b'}'), _))) {
            break;
        }
        let name = match toks.get(j) {
            Some((Tok::Ident(n), _)) => n.as_str(),
            Some((Tok::Str(Some(n)), _)) => n.as_str(),
            _ => return None,
        };
        if !matches!(toks.get(j + 1), Some((Tok::Punct(b':'), _))) {
            return None;
        }
        let value = match toks.get(j + 2) {
            Some((Tok::Str(Some(v)) | Tok::Template(Some(v)), _)) => PropValue::Literal(v.clone()),
            // `string` is a TypeScript type annotation, not a variable.
            Some((Tok::Ident(v), _)) if v != "string" => PropValue::Variable,
            _ => return None,
        };
        let slot = match name {
            "vault" => &mut vault,
            "key" => &mut key,
            _ => return None,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(value);
        count += 1;
        match toks.get(j + 3) {
            Some((Tok::Punct(b','), _)) => j += 4,
            Some((Tok::Punct(b'}'), _)) if count == 2 => break,
            _ => return None,
        }
    }
    Some((vault?, key?))
}

/// Scans JavaScript, TypeScript or JSON source.
pub fn scan_script(text: &[u8]) -> Found {
    let lexer = Lexer {
        s: text,
        pos: 0,
        braces: Vec::new(),
        toks: Vec::new(),
    };
    let toks = lexer.run();
    let mut locator = Locator::new(text);
    let mut found = Found::default();
    for (i, (tok, offset)) in toks.iter().enumerate() {
        if *tok != Tok::Punct(b'{') {
            continue;
        }
        match match_object(&toks, i) {
            Some((PropValue::Literal(vault), PropValue::Literal(key))) => {
                found.references.push(Reference {
                    at: locator.at(*offset),
                    vault,
                    key,
                })
            }
            Some(_) => found.dynamic.push(locator.at(*offset)),
            None => {}
        }
    }
    found
}

// ---------------------------------------------------------------------------
// YAML

/// One `key: value` line of a block mapping.
struct Entry {
    key: String,
    /// The value, if it is a scalar on the same line.
    scalar: Option<String>,
    /// Whether it has nested content (a collection, a block scalar…).
    nested: bool,
}

/// A block mapping being read: its indentation and entries so far.
struct Mapping {
    indent: usize,
    at: Position,
    entries: Vec<Entry>,
}

impl Mapping {
    fn reference(&self) -> Option<Reference> {
        let [a, b] = self.entries.as_slice() else {
            return None;
        };
        let (vault, key) = match (a.key.as_str(), b.key.as_str()) {
            ("vault", "key") => (a, b),
            ("key", "vault") => (b, a),
            _ => return None,
        };
        if vault.nested || key.nested {
            return None;
        }
        Some(Reference {
            at: self.at,
            vault: vault.scalar.clone()?,
            key: key.scalar.clone()?,
        })
    }
}

struct YamlScan {
    stack: Vec<Mapping>,
    found: Found,
}

impl YamlScan {
    /// Closes every mapping indented more than `indent`.
    fn close_deeper(&mut self, indent: usize) {
        while self.stack.last().is_some_and(|m| m.indent > indent) {
            if let Some(r) = self.stack.pop().and_then(|m| m.reference()) {
                self.found.references.push(r);
            }
        }
    }

    /// Marks the innermost open entry as having nested content.
    fn nest(&mut self) {
        if let Some(e) = self.stack.last_mut().and_then(|m| m.entries.last_mut()) {
            e.nested = true;
        }
    }
}

/// What matters about one YAML line.
struct LineInfo {
    /// Where its content ends: at a comment (a `#` at the start or after a
    /// space, outside quotes), or at the end of the line.
    end: usize,
    /// The net change in flow-bracket depth over the content.
    depth: isize,
    /// Where each `{` outside quotes is.
    braces: Vec<usize>,
}

fn yaml_line(line: &[u8]) -> LineInfo {
    let mut info = LineInfo {
        end: line.len(),
        depth: 0,
        braces: Vec::new(),
    };
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while let Some(&b) = line.get(i) {
        match quote {
            Some(b'\'') if b == b'\'' => {
                if line.get(i + 1) == Some(&b'\'') {
                    i += 1;
                } else {
                    quote = None;
                }
            }
            Some(b'"') if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'#' if i == 0 || matches!(line.get(i - 1), Some(b' ' | b'\t')) => {
                    info.end = i;
                    return info;
                }
                // A quote opens a quoted scalar only where one may start.
                b'\'' | b'"'
                    if i == 0
                        || matches!(
                            line.get(i - 1),
                            Some(b' ' | b'\t' | b'{' | b'[' | b',' | b':' | b'-')
                        ) =>
                {
                    quote = Some(b)
                }
                b'{' => {
                    info.depth += 1;
                    info.braces.push(i);
                }
                b'[' => info.depth += 1,
                b'}' | b']' => info.depth -= 1,
                _ => {}
            },
        }
        i += 1;
    }
    info
}

/// Reads a scalar: quoted (unescaped) or plain (trimmed).
fn yaml_scalar(s: &[u8]) -> Option<String> {
    let s = trim(s);
    let text = std::str::from_utf8(s).ok()?;
    match s.first() {
        Some(b'\'') => {
            let body = text.strip_prefix('\'')?.strip_suffix('\'')?;
            Some(body.replace("''", "'"))
        }
        Some(b'"') => {
            let body = text.strip_prefix('"')?.strip_suffix('"')?;
            if body.contains('\\') {
                unescape_js(body.as_bytes())
            } else {
                Some(body.to_owned())
            }
        }
        Some(b'&' | b'*' | b'!' | b'|' | b'>' | b'{' | b'[' | b'@' | b'`') | None => None,
        Some(_) => Some(text.to_owned()),
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

/// Splits `key: rest` (the `:` followed by a space or the end), for a
/// plain or quoted key. Returns the key and the offset of the rest.
fn yaml_key(content: &[u8]) -> Option<(String, usize)> {
    let colon = match content.first()? {
        q @ (b'\'' | b'"') => {
            let close = content.iter().skip(1).position(|b| b == q)? + 1;
            if content.get(close + 1) != Some(&b':') {
                return None;
            }
            close + 1
        }
        b'?' | b'-' | b'[' | b'{' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' => return None,
        _ => content
            .windows(2)
            .position(|w| w[0] == b':' && (w[1] == b' ' || w[1] == b'\t'))
            .or_else(|| content.ends_with(b":").then(|| content.len() - 1))?,
    };
    let key = yaml_scalar(&content[..colon])?;
    Some((key, colon + 1))
}

/// Reads a flow mapping `{vault: a, key: b}` at `text[start]` (which is
/// at `at`); it may span lines.
fn yaml_flow(text: &[u8], start: usize, at: Position) -> Option<Reference> {
    let mut i = start + 1;
    let mut entries: Vec<(String, String)> = Vec::new();
    let skip_ws = |i: &mut usize| {
        while text.get(*i).is_some_and(|b| b.is_ascii_whitespace()) {
            *i += 1;
        }
    };
    // Returns the end of a flow scalar starting at `i`.
    let scalar_end = |i: usize, key: bool| -> Option<usize> {
        match text.get(i)? {
            q @ (b'\'' | b'"') => {
                let mut j = i + 1;
                loop {
                    match text.get(j)? {
                        b'\\' if *q == b'"' => j += 2,
                        b if b == q => return Some(j + 1),
                        _ => j += 1,
                    }
                }
            }
            b'{' | b'[' | b'}' | b']' | b',' => None,
            _ => {
                let mut j = i;
                while let Some(&b) = text.get(j) {
                    let stop = match b {
                        b',' | b'}' | b']' | b'{' | b'[' => true,
                        b':' => key && text.get(j + 1).is_some_and(|c| c.is_ascii_whitespace()),
                        b'#' => text
                            .get(j.wrapping_sub(1))
                            .is_some_and(|c| c.is_ascii_whitespace()),
                        _ => false,
                    };
                    if stop {
                        break;
                    }
                    j += 1;
                }
                Some(j)
            }
        }
    };
    loop {
        skip_ws(&mut i);
        if text.get(i) == Some(&b'}') && entries.len() == 2 {
            break;
        }
        let kend = scalar_end(i, true)?;
        let key = yaml_scalar(text.get(i..kend)?)?;
        i = kend;
        skip_ws(&mut i);
        if text.get(i) != Some(&b':') {
            return None;
        }
        i += 1;
        skip_ws(&mut i);
        let vend = scalar_end(i, false)?;
        let value = yaml_scalar(text.get(i..vend)?)?;
        i = vend;
        entries.push((key, value));
        if entries.len() > 2 {
            return None;
        }
        skip_ws(&mut i);
        match text.get(i)? {
            b',' => i += 1,
            b'}' if entries.len() == 2 => break,
            _ => return None,
        }
    }
    let [(k1, v1), (k2, v2)] = <[(String, String); 2]>::try_from(entries).ok()?;
    let (vault, key) = match (k1.as_str(), k2.as_str()) {
        ("vault", "key") => (v1, v2),
        ("key", "vault") => (v2, v1),
        _ => return None,
    };
    Some(Reference { at, vault, key })
}

/// Scans YAML.
pub fn scan_yaml(text: &[u8]) -> Found {
    let mut y = YamlScan {
        stack: Vec::new(),
        found: Found::default(),
    };
    // Two cursors, as flow mappings and block keys each come in order.
    let (mut flow_locator, mut block_locator) = (Locator::new(text), Locator::new(text));
    // Inside a block scalar (`|`, `>`): lines indented more than this.
    let mut block_scalar: Option<usize> = None;
    // Inside a flow collection spanning lines: its bracket depth.
    let mut flow_depth = 0isize;
    let mut offset = 0;
    for raw in text.split(|&b| b == b'\n') {
        let line_start = offset;
        offset += raw.len() + 1;
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        let indent = line.iter().take_while(|&&b| b == b' ').count();
        let blank = trim(line).is_empty();
        if let Some(n) = block_scalar {
            if blank || indent > n {
                continue;
            }
            block_scalar = None;
        }
        let info = yaml_line(line);
        let (content, depth) = (&line[..info.end], info.depth);
        // Every `{` outside quotes and comments may open a flow mapping.
        for i in info.braces {
            let at = flow_locator.at(line_start + i);
            if let Some(r) = yaml_flow(text, line_start + i, at) {
                y.found.references.push(r);
            }
        }
        if flow_depth > 0 {
            flow_depth += depth;
            continue;
        }
        if trim(content).is_empty() {
            continue;
        }
        if indent == 0 && (content.starts_with(b"---") || content.starts_with(b"...")) {
            y.close_deeper(0);
            if let Some(r) = y.stack.pop().and_then(|m| m.reference()) {
                y.found.references.push(r);
            }
            continue;
        }
        // Sequence entries: `- ` moves the content right.
        let mut col = indent;
        while content.get(col) == Some(&b'-')
            && content
                .get(col + 1)
                .is_none_or(|b| *b == b' ' || *b == b'\t')
        {
            y.close_deeper(col);
            y.nest();
            col += 1;
            while content.get(col).is_some_and(|b| *b == b' ' || *b == b'\t') {
                col += 1;
            }
        }
        let rest = &content[col.min(content.len())..];
        if rest.is_empty() {
            continue;
        }
        let Some((key, value_at)) = yaml_key(rest) else {
            // A scalar, a flow collection or a continuation: nested content.
            y.close_deeper(col);
            y.nest();
            flow_depth = depth.max(0);
            continue;
        };
        y.close_deeper(col);
        if y.stack.last().is_none_or(|m| m.indent < col) {
            y.nest();
            y.stack.push(Mapping {
                indent: col,
                at: block_locator.at(line_start + col),
                entries: Vec::new(),
            });
        }
        let value = trim(rest.get(value_at..).unwrap_or_default());
        let mut entry = Entry {
            key,
            scalar: None,
            nested: false,
        };
        match value.first() {
            None => {}
            Some(b'|' | b'>') => {
                entry.nested = true;
                block_scalar = Some(col);
            }
            Some(b'{' | b'[') => {
                entry.nested = true;
                flow_depth = depth.max(0);
            }
            Some(_) => entry.scalar = yaml_scalar(value),
        }
        if let Some(m) = y.stack.last_mut() {
            m.entries.push(entry);
        }
    }
    y.close_deeper(0);
    if let Some(r) = y.stack.pop().and_then(|m| m.reference()) {
        y.found.references.push(r);
    }
    y.found.references.sort_by_key(|r| r.at);
    y.found
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn refs(kind: SourceKind, s: &str) -> Vec<(String, String, usize)> {
        scan(kind, s.as_bytes())
            .references
            .into_iter()
            .map(|r| (r.vault, r.key, r.at.line))
            .collect()
    }

    fn r(v: &str, k: &str, line: usize) -> (String, String, usize) {
        (v.into(), k.into(), line)
    }

    /// An executor like the seed's: a webhook header from the secret
    /// manager, on line 12.
    const EXECUTOR: &str = include_str!("../../tests/fixtures/executor.ts");

    #[test]
    fn finds_the_executor_webhook_reference() {
        let found = scan_script(EXECUTOR.as_bytes());
        assert_eq!(found.references.len(), 1);
        let r = &found.references[0];
        assert_eq!(
            (r.vault.as_str(), r.key.as_str()),
            ("api-keys", "external-api-token")
        );
        assert_eq!((r.at.line, r.at.column), (12, 22));
        assert!(found.dynamic.is_empty());
    }

    #[test]
    fn finds_script_references_in_every_spelling() {
        let src = r#"
const a = { vault: 'v1', key: 'k1' };
const b = {key:"k2",vault:"v2"};
const c = {
  "vault": "v3",
  'key': `k3`,
};
const d = { nested: { vault: "v4", key: "k\x34" } };
const e = [{ vault: "v5", key: "k5" }, { vault: "v6", key: "k6" }];
"#;
        assert_eq!(
            refs(SourceKind::Script, src),
            [
                r("v1", "k1", 2),
                r("v2", "k2", 3),
                r("v3", "k3", 4),
                r("v4", "k4", 8),
                r("v5", "k5", 9),
                r("v6", "k6", 9),
            ]
        );
    }

    #[test]
    fn ignores_lookalikes_in_comments_strings_templates_and_regexes() {
        let src = r#"
// { vault: "c1", key: "k" }
/* { vault: "c2", key: "k" } */
const s = "{ vault: 'c3', key: 'k' }";
const t = `${x} { vault: "c4", key: "k" } ${ { vault: "real", key: "in-template" } }`;
const re = /{ vault: "c5", key: "k" }/g;
const q = a / 2; const w = { vault: "after-division", key: "k" };
const x = { vault: "v", key: "k", extra: 1 };
const y = { vault: "v" };
const z = { vault: "v", vault: "w" };
type T = { vault: string; key: string };
type U = { vault: string, key: string };
"#;
        assert_eq!(
            refs(SourceKind::Script, src),
            [r("real", "in-template", 5), r("after-division", "k", 7)]
        );
    }

    #[test]
    fn notes_references_built_from_variables() {
        let found = scan_script(b"f({ vault: VAULT, key: \"k\" });\nf({ vault, key });");
        assert!(found.references.is_empty());
        assert_eq!(found.dynamic.len(), 1);
        assert_eq!(found.dynamic[0].line, 1);
    }

    #[test]
    fn json_is_scanned_as_script() {
        let doc = "{\n  \"headers\": {\n    \"Authorization\": {\"vault\": \"api-keys\", \"key\": \"t\"}\n  }\n}";
        assert_eq!(refs(SourceKind::Script, doc), [r("api-keys", "t", 3)]);
    }

    #[test]
    fn finds_yaml_references() {
        let doc = r#"
headers:
  Content-Type: application/json
  Authorization:
    vault: api-keys
    key: external-api-token   # the token
  Other: {vault: "database", key: 'read-replica-password'}
list:
  - vault: v3
    key: k3
  - key: k4
    vault: v4
  -   vault: v5
      key: k5
multi: {
  vault: v6,
  key: k6
}
"#;
        assert_eq!(
            refs(SourceKind::Yaml, doc),
            [
                r("api-keys", "external-api-token", 5),
                r("database", "read-replica-password", 7),
                r("v3", "k3", 9),
                r("v4", "k4", 11),
                r("v5", "k5", 13),
                r("v6", "k6", 15),
            ]
        );
    }

    #[test]
    fn yaml_mappings_that_are_not_exactly_references_are_skipped() {
        let doc = r#"
a:
  vault: v
  key: k
  extra: 1
b:
  vault: v
  key:
    nested: 1
c:
  vault: v
  key: |
    vault: x
    key: y
d: "{vault: q, key: r}"
e: # {vault: q, key: r}
  vault: v
---
vault: top
key: level
"#;
        assert_eq!(refs(SourceKind::Yaml, doc), [r("top", "level", 19)]);
    }

    #[test]
    fn kinds_come_from_extensions() {
        assert_eq!(
            SourceKind::for_path(Path::new("a/b.ts")),
            Some(SourceKind::Script)
        );
        assert_eq!(
            SourceKind::for_path(Path::new("x.JSON")),
            Some(SourceKind::Script)
        );
        assert_eq!(
            SourceKind::for_path(Path::new("c.yml")),
            Some(SourceKind::Yaml)
        );
        assert_eq!(SourceKind::for_path(Path::new("README.md")), None);
        assert_eq!(SourceKind::for_path(Path::new("Makefile")), None);
    }

    proptest! {
        #![proptest_config(crate::test_seed::config())]
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = scan_script(&bytes);
            let _ = scan_yaml(&bytes);
        }

        #[test]
        fn never_panics_on_code_like_text(s in "[{}\\[\\]:,'\"`$/*\\\\#|>\n -a-z0-9]{0,120}") {
            let _ = scan_script(s.as_bytes());
            let _ = scan_yaml(s.as_bytes());
        }
    }

    #[test]
    fn templates_are_scanned_even_when_one_reference_is_malformed() {
        let text = b"a={{ coffer://api-keys/one-key }}\nb={{ coffer://api-keys/x | nope }}\n  c={{op://db-main/two-key}}\n";
        let found = scan(SourceKind::Template, text);
        let got: Vec<(usize, usize, &str, &str)> = found
            .references
            .iter()
            .map(|r| (r.at.line, r.at.column, r.vault.as_str(), r.key.as_str()))
            .collect();
        assert_eq!(
            got,
            [(1, 3, "api-keys", "one-key"), (3, 5, "db-main", "two-key")]
        );
        assert_eq!(
            SourceKind::for_path(Path::new("app.conf.tmpl")),
            Some(SourceKind::Template)
        );
    }
}
