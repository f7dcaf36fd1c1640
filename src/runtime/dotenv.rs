//! The dotenv format: a strict reader and a writer whose output every
//! reader here reads back exactly.
//!
//! A file is a sequence of lines. Each is blank, a comment (`#` first), or
//! an assignment `[export ]NAME=VALUE`, with optional spaces and tabs
//! around `=`. `VALUE` is one of:
//!
//! - empty, or *bare*: the rest of the line, trimmed, up to a `#` that
//!   follows a space or tab (an inline comment). No escapes.
//! - `'single-quoted'` or `` `backquoted` ``: literal, no escapes, may span
//!   lines.
//! - `"double-quoted"`: may span lines; `\n`, `\r`, `\t`, `\"`, `\\` and
//!   `\$` are escapes, and any other backslash is kept as it is.
//!
//! After a quoted value only spaces, tabs and a `#` comment may follow. A
//! line that is none of these, an unclosed quote, or a name given twice is
//! an error naming the line (never its content: it may be a value).
//!
//! [`write()`] quotes each value as the simplest form that reads back
//! exactly: bare when it is made of `A-Z a-z 0-9 _ - . , : / @ % + = ^`
//! only; single quotes when it has no `'` and no line break; double quotes
//! otherwise, escaping `\`, `"` and carriage returns and keeping newlines
//! as they are.

use std::collections::HashMap;
use std::fmt;

use zeroize::Zeroizing;

/// One assignment read from a file.
pub struct Assignment {
    /// The variable name as written.
    pub name: String,
    /// The value, unquoted and unescaped.
    pub value: Zeroizing<String>,
    /// The line it starts on (1-based).
    pub line: usize,
}

impl fmt::Debug for Assignment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Assignment")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .field("line", &self.line)
            .finish()
    }
}

/// Why a file did not parse. Its `Display` names a line and at most a
/// variable name, never a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The line (1-based).
    pub line: usize,
    /// What is wrong there.
    pub problem: Problem,
}

/// What is wrong on a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The text is not valid UTF-8.
    NotUtf8,
    /// The line is not blank, a comment or `NAME=value`.
    NotAnAssignment,
    /// A quoted value is never closed.
    Unclosed {
        /// The variable.
        name: String,
        /// The quote character.
        quote: char,
    },
    /// Something other than a comment follows a quoted value.
    AfterQuote {
        /// The variable.
        name: String,
    },
    /// The variable was already set on an earlier line.
    Duplicate {
        /// The variable.
        name: String,
        /// The earlier line.
        first: usize,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: ", self.line)?;
        match &self.problem {
            Problem::NotUtf8 => f.write_str("it is not valid UTF-8"),
            Problem::NotAnAssignment => {
                f.write_str("expected NAME=value, a # comment or a blank line")
            }
            Problem::Unclosed { name, quote } => {
                write!(
                    f,
                    "the value of {name} opens with {quote} but is never closed"
                )
            }
            Problem::AfterQuote { name } => write!(
                f,
                "unexpected text after the closing quote of {name}'s value (only a # comment may follow)"
            ),
            Problem::Duplicate { name, first } => {
                write!(f, "{name} is set again (first set on line {first})")
            }
        }
    }
}

impl std::error::Error for ParseError {}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Reads a dotenv file. Every line is an assignment, a comment or blank;
/// anything else is an error.
pub fn parse(input: &[u8]) -> Result<Vec<Assignment>, ParseError> {
    let text = match std::str::from_utf8(input) {
        Ok(t) => t,
        Err(e) => {
            let line = 1 + input[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            return Err(ParseError {
                line,
                problem: Problem::NotUtf8,
            });
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser {
        s: text.as_bytes(),
        text,
        pos: 0,
        line: 1,
    };
    let mut out: Vec<Assignment> = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    while p.pos < p.s.len() {
        if let Some(a) = p.line()? {
            if let Some(&first) = seen.get(&a.name) {
                return Err(ParseError {
                    line: a.line,
                    problem: Problem::Duplicate {
                        name: a.name,
                        first,
                    },
                });
            }
            seen.insert(a.name.clone(), a.line);
            out.push(a);
        }
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    line: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
    }

    fn err(&self, line: usize, problem: Problem) -> ParseError {
        ParseError { line, problem }
    }

    /// Consumes the end of a line (`\n`, `\r\n` or the end of the text);
    /// returns false if something else is there.
    fn end_of_line(&mut self) -> bool {
        match self.peek() {
            None => true,
            Some(b'\n') => {
                self.pos += 1;
                self.line += 1;
                true
            }
            Some(b'\r') if self.s.get(self.pos + 1) == Some(&b'\n') => {
                self.pos += 2;
                self.line += 1;
                true
            }
            _ => false,
        }
    }

    fn skip_comment(&mut self) {
        if self.peek() == Some(b'#') {
            // Up to the newline; a \r before it is part of the comment.
            while self.peek().is_some_and(|b| b != b'\n') {
                self.pos += 1;
            }
        }
    }

    /// Reads one logical line: `Ok(None)` for a blank or comment line.
    fn line(&mut self) -> Result<Option<Assignment>, ParseError> {
        let start_line = self.line;
        self.skip_blanks();
        self.skip_comment();
        if self.end_of_line() {
            return Ok(None);
        }
        if self.peek() == Some(b'\r') {
            // A lone \r before the end of a comment line.
            self.pos += 1;
            if self.end_of_line() {
                return Ok(None);
            }
            return Err(self.err(start_line, Problem::NotAnAssignment));
        }
        if self.s[self.pos..].starts_with(b"export")
            && self.s.get(self.pos + 6).is_some_and(|&b| is_blank(b))
        {
            self.pos += 6;
            self.skip_blanks();
        }
        let name_start = self.pos;
        while self.peek().is_some_and(is_name_byte) {
            self.pos += 1;
        }
        let name = &self.text[name_start..self.pos];
        self.skip_blanks();
        if name.is_empty() || self.peek() != Some(b'=') {
            return Err(self.err(start_line, Problem::NotAnAssignment));
        }
        let name = name.to_owned();
        self.pos += 1;
        self.skip_blanks();
        let value = match self.peek() {
            Some(q @ (b'\'' | b'`')) => {
                self.pos += 1;
                let start = self.pos;
                let Some(len) = self.s[start..].iter().position(|&b| b == q) else {
                    return Err(self.err(
                        start_line,
                        Problem::Unclosed {
                            name,
                            quote: q as char,
                        },
                    ));
                };
                let v = &self.text[start..start + len];
                self.line += v.bytes().filter(|&b| b == b'\n').count();
                self.pos = start + len + 1;
                Zeroizing::new(v.to_owned())
            }
            Some(b'"') => {
                self.pos += 1;
                self.double_quoted(&name, start_line)?
            }
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|b| b != b'\n') {
                    if self.peek() == Some(b'#')
                        && self.s.get(self.pos - 1).is_some_and(|&b| is_blank(b))
                    {
                        break;
                    }
                    self.pos += 1;
                }
                let raw = &self.text[start..self.pos];
                let v = raw.trim_end_matches([' ', '\t', '\r']);
                self.skip_comment();
                if self.peek() == Some(b'\r') {
                    self.pos += 1;
                }
                if !self.end_of_line() {
                    return Err(self.err(start_line, Problem::NotAnAssignment));
                }
                return Ok(Some(Assignment {
                    name,
                    value: Zeroizing::new(v.to_owned()),
                    line: start_line,
                }));
            }
        };
        self.skip_blanks();
        self.skip_comment();
        if self.peek() == Some(b'\r') {
            self.pos += 1;
        }
        if !self.end_of_line() {
            return Err(self.err(start_line, Problem::AfterQuote { name }));
        }
        Ok(Some(Assignment {
            name,
            value,
            line: start_line,
        }))
    }

    /// Reads a double-quoted value after its opening quote.
    fn double_quoted(
        &mut self,
        name: &str,
        start_line: usize,
    ) -> Result<Zeroizing<String>, ParseError> {
        let mut v = Zeroizing::new(String::new());
        let mut run = self.pos;
        loop {
            let Some(b) = self.peek() else {
                return Err(self.err(
                    start_line,
                    Problem::Unclosed {
                        name: name.to_owned(),
                        quote: '"',
                    },
                ));
            };
            match b {
                b'"' => {
                    v.push_str(&self.text[run..self.pos]);
                    self.pos += 1;
                    return Ok(v);
                }
                b'\\' => {
                    v.push_str(&self.text[run..self.pos]);
                    let unescaped = match self.s.get(self.pos + 1) {
                        Some(b'n') => Some('\n'),
                        Some(b'r') => Some('\r'),
                        Some(b't') => Some('\t'),
                        Some(b'"') => Some('"'),
                        Some(b'\\') => Some('\\'),
                        Some(b'$') => Some('$'),
                        _ => None,
                    };
                    match unescaped {
                        Some(c) => {
                            v.push(c);
                            self.pos += 2;
                        }
                        None => {
                            // Kept as it is, like other dotenv readers.
                            v.push('\\');
                            self.pos += 1;
                        }
                    }
                    run = self.pos;
                }
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                _ => self.pos += 1,
            }
        }
    }
}

/// Returns whether `c` may appear in a bare (unquoted) value.
fn is_bare(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '_' | '-' | '.' | ',' | ':' | '/' | '@' | '%' | '+' | '=' | '^'
        )
}

/// Appends `value` to `out`, quoted as the module docs describe.
pub fn quote_into(out: &mut String, value: &str) {
    if !value.is_empty() && value.chars().all(is_bare) {
        out.push_str(value);
    } else if !value.contains(['\'', '\n', '\r']) {
        out.push('\'');
        out.push_str(value);
        out.push('\'');
    } else {
        out.push('"');
        for c in value.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\r' => out.push_str("\\r"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

/// Writes `NAME=value` lines, one per pair, each value quoted so that
/// [`parse`] reads it back exactly.
pub fn write<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for (name, value) in pairs {
        // Grow by hand: a reallocation would leave a copy behind unwiped.
        let need = out.len() + name.len() + 2 * value.len() + 4;
        if need > out.capacity() {
            let mut bigger = Zeroizing::new(String::with_capacity(need.max(2 * out.capacity())));
            bigger.push_str(&out);
            out = bigger;
        }
        out.push_str(name);
        out.push('=');
        quote_into(&mut out, value);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_ok(s: &str) -> Vec<(String, String)> {
        parse(s.as_bytes())
            .unwrap()
            .into_iter()
            .map(|a| (a.name, a.value.to_string()))
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn error(s: &str) -> ParseError {
        parse(s.as_bytes()).unwrap_err()
    }

    #[test]
    fn reads_the_common_forms() {
        let text = "\
# a comment
  # an indented comment

A=plain
export B = spaced out  # trailing comment
C='single # not a comment'  # comment
D=\"double \\\"quoted\\\" \\n\\t \\$HOME \\\\ \\q\"
E=
F=a#b
G=\"line one
line two\"
H='multi
line'
I=`back'tick`
J=  x=y
K=\"\" # empty
";
        assert_eq!(
            parse_ok(text),
            pairs(&[
                ("A", "plain"),
                ("B", "spaced out"),
                ("C", "single # not a comment"),
                ("D", "double \"quoted\" \n\t $HOME \\ \\q"),
                ("E", ""),
                ("F", "a#b"),
                ("G", "line one\nline two"),
                ("H", "multi\nline"),
                ("I", "back'tick"),
                ("J", "x=y"),
                ("K", ""),
            ])
        );
    }

    #[test]
    fn reads_crlf_files_and_a_bom() {
        assert_eq!(
            parse_ok("\u{feff}A=1\r\nB='2'\r\n# c\r\n\r\nC=\"3\" # x\r\nD=4"),
            pairs(&[("A", "1"), ("B", "2"), ("C", "3"), ("D", "4")])
        );
    }

    #[test]
    fn line_numbers_count_multi_line_values() {
        let got = parse(b"A=\"x\ny\nz\"\n\nB='p\nq'\nC=1\n").unwrap();
        let lines: Vec<usize> = got.iter().map(|a| a.line).collect();
        assert_eq!(lines, [1, 5, 7]);
        let e = error("A=\"x\ny\"\nthis is not an assignment\n");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn refuses_what_it_does_not_understand_naming_only_the_line() {
        let e = error("A=1\nsk_live_SECRET\n");
        assert_eq!(e.line, 2);
        assert_eq!(e.problem, Problem::NotAnAssignment);
        assert!(!e.to_string().contains("SECRET"));
        for bad in [
            "=value", "A B=1", "export A", "A", "A:1", "\rA=1", "A\"=1", "A=\"x\"y", "A='x' y",
        ] {
            let e = parse(bad.as_bytes()).unwrap_err();
            assert_eq!(e.line, 1, "{bad:?}");
        }
        assert_eq!(
            error("X=1\nA=\"never closed\nB=2\n").problem,
            Problem::Unclosed {
                name: "A".into(),
                quote: '"'
            }
        );
        assert!(matches!(
            error("A='x").problem,
            Problem::Unclosed { quote: '\'', .. }
        ));
        assert_eq!(
            error("A=1\nB=2\nA=3\n"),
            ParseError {
                line: 3,
                problem: Problem::Duplicate {
                    name: "A".into(),
                    first: 1
                }
            }
        );
        assert_eq!(parse(b"A=1\nB=\xff\n").unwrap_err().line, 2);
        let e = error("A=\"secret-sentinel\"oops");
        assert!(!e.to_string().contains("sentinel"), "{e}");
    }

    #[test]
    fn writes_the_simplest_exact_quoting() {
        let out = write([
            ("A", "sk_test_123-abc.def/x@y:z"),
            ("B", "two words"),
            ("C", "say \"hi\" $HOME #1 \\"),
            ("D", "it's"),
            ("E", "line 1\nline 2\r\n"),
        ]);
        assert_eq!(
            out.as_str(),
            "A=sk_test_123-abc.def/x@y:z\n\
             B='two words'\n\
             C='say \"hi\" $HOME #1 \\'\n\
             D=\"it's\"\n\
             E=\"line 1\nline 2\\r\n\"\n"
        );
    }

    fn value() -> impl Strategy<Value = String> {
        let tricky = prop_oneof![
            Just('\n'),
            Just('\r'),
            Just('"'),
            Just('\''),
            Just('`'),
            Just('#'),
            Just('='),
            Just('\\'),
            Just('$'),
            Just(' '),
            Just('\t'),
            Just('é'),
            Just('🔑'),
            Just('\u{0}'),
            Just('\u{feff}'),
            any::<char>(),
            proptest::char::range('a', 'z'),
        ];
        proptest::collection::vec(tricky, 1..40).prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(crate::test_seed::config())]
        #[test]
        fn every_value_round_trips(values in proptest::collection::vec(value(), 1..8)) {
            let named: Vec<(String, &str)> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("VAR_{i}"), v.as_str()))
                .collect();
            let text = write(named.iter().map(|(n, v)| (n.as_str(), *v)));
            let back = parse(text.as_bytes()).unwrap();
            prop_assert_eq!(back.len(), named.len());
            for (a, (n, v)) in back.iter().zip(&named) {
                prop_assert_eq!(&a.name, n);
                prop_assert_eq!(a.value.as_str(), *v);
            }
        }

        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn never_panics_on_dotenv_like_text(s in "[A-Z=#'\"`\\\\ \t\r\nex$]{0,60}") {
            let _ = parse(s.as_bytes());
        }
    }
}
