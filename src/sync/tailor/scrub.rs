//! What a platform message may show: nothing coffer holds.
//!
//! A hostile or broken platform can echo what it was sent in an error
//! message, and not only verbatim: JSON-escaped, Go-quoted (`%q`), cut
//! short, or another secret's value sent earlier. The client keeps every
//! value of the run (and the token) here, in each of those forms, and
//! every message is passed through [`Scrubber::scrub`] before it leaves
//! the client. Only the Connect error's `code` and `message` fields are
//! ever read from an error body; the message is then scrubbed, stripped of
//! control characters and cut to [`MAX_SHOWN`] characters.

use zeroize::Zeroizing;

/// The longest platform message shown, in characters.
pub const MAX_SHOWN: usize = 300;

/// The longest message looked at: the rest is never shown anyway.
const MAX_READ: usize = 4096;

/// A needle shorter than this is not redacted in place: a message holding
/// it is withheld whole (a short value could hide in any word, and a
/// partial redaction would say where it is). From this length on, any
/// prefix of at least this many bytes is redacted as well.
const MIN_PART: usize = 8;

pub(crate) const WITHHELD: &str = "(message withheld: it may contain a value)";

/// Every form of every value the run holds.
#[derive(Default)]
pub struct Scrubber {
    needles: Vec<Zeroizing<Vec<u8>>>,
}

impl Scrubber {
    /// Adds a secret (a value or the token) in its raw, JSON-escaped and
    /// Go-quoted forms. Empty secrets are ignored: they cannot leak.
    pub fn hold(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        for form in forms(secret) {
            if !self.needles.iter().any(|n| **n == *form) {
                self.needles.push(form);
            }
        }
    }

    /// Returns `message` with every held secret removed (see the module
    /// documentation), or a placeholder when a short one occurs in it.
    pub fn scrub(&self, message: &str) -> String {
        let read: String = message.chars().take(MAX_READ).collect();
        let bytes = read.as_bytes();
        // Byte ranges to redact.
        let mut cut = vec![false; bytes.len()];
        for n in &self.needles {
            if n.len() < MIN_PART {
                if contains(bytes, n) {
                    return WITHHELD.to_owned();
                }
                continue;
            }
            let head = &n[..MIN_PART];
            let mut i = 0;
            while i + MIN_PART <= bytes.len() {
                if &bytes[i..i + MIN_PART] == head {
                    let len = bytes[i..]
                        .iter()
                        .zip(n.iter())
                        .take_while(|(a, b)| a == b)
                        .count();
                    cut[i..i + len].iter_mut().for_each(|c| *c = true);
                    i += len;
                } else {
                    i += 1;
                }
            }
        }
        let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if cut[i] {
                out.extend_from_slice(b"[redacted]");
                while i < bytes.len() && cut[i] {
                    i += 1;
                }
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        let text = String::from_utf8_lossy(&out);
        let mut shown: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_SHOWN)
            .collect();
        if text.chars().count() > MAX_SHOWN {
            shown.push('…');
        }
        shown
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The raw secret, its JSON string body and its Go `%q` body (without
/// the quotes: an echo may drop them).
fn forms(secret: &str) -> Vec<Zeroizing<Vec<u8>>> {
    let raw = Zeroizing::new(secret.as_bytes().to_vec());
    let json = Zeroizing::new(serde_json::to_string(secret).expect("strings serialise"));
    let json = Zeroizing::new(json[1..json.len() - 1].as_bytes().to_vec());
    let go = Zeroizing::new(go_quote(secret).into_bytes());
    let mut out = vec![raw];
    for f in [json, go] {
        if !out.iter().any(|o| **o == *f) {
            out.push(f);
        }
    }
    out
}

/// Go's `strconv.Quote` body: `\a \b \f \n \r \t \v \\ \"`, other control
/// characters as `\x..` or `\u....`, printable characters as they are.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(values: &[&str]) -> Scrubber {
        let mut s = Scrubber::default();
        for v in values {
            s.hold(v);
        }
        s
    }

    const V: &str = "pa\"ss\\word\nline-two\tSENTINEL";

    #[test]
    fn a_value_is_removed_raw_json_escaped_go_quoted_and_cut_short() {
        let s = with(&[V, "other-secret-SENTINEL"]);
        let json = serde_json::to_string(V).unwrap();
        let go = format!("\"{}\"", go_quote(V));
        for echoed in [
            format!("bad value {V} here"),
            format!("bad value {json} here"),
            format!("invalid request {{\"secretmanagerSecretValue\":{json}}}"),
            format!("bad value {go}"),
            format!("bad value {}… (truncated)", &json[..12]),
            "conflicts with other-secret-SENTINEL".to_owned(),
            "conflicts with other-se".to_owned(),
        ] {
            let out = s.scrub(&echoed);
            assert!(!out.contains("SENTINEL"), "{echoed:?} gave {out:?}");
            assert!(
                !out.contains("ss\\\\word") && !out.contains("pa\\\"ss"),
                "{out}"
            );
            assert!(!out.contains("other-se"), "{out}");
            assert!(out.contains("[redacted]"), "{out}");
        }
    }

    #[test]
    fn a_short_value_withholds_the_message_and_others_pass_unchanged() {
        let s = with(&["abc12", V]);
        assert_eq!(s.scrub("name abc12 is bad"), WITHHELD);
        assert_eq!(
            s.scrub("vault \"api-keys\" not found"),
            "vault \"api-keys\" not found"
        );
        // Seven bytes of a long value are not enough to redact.
        assert_eq!(s.scrub("pa\"ss\\w"), "pa\"ss\\w");
    }

    #[test]
    fn messages_are_cut_and_lose_control_characters() {
        let s = Scrubber::default();
        let long = "x".repeat(1000);
        let out = s.scrub(&long);
        assert_eq!(out.chars().count(), MAX_SHOWN + 1);
        assert!(out.ends_with('…'));
        assert_eq!(s.scrub("a\u{1b}[2Jb\nc"), "a [2Jb c");
    }

    #[test]
    fn go_quoting_matches_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "a\\\"b\\\\c\\n\\x01é");
    }
}
