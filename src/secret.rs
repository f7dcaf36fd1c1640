//! Secret values: UTF-8 text held in memory that is wiped on drop.
//!
//! A [`SecretValue`] has no `Display` and a redacted `Debug`; the only way to
//! read it is [`SecretValue::expose_secret`], so every place that handles a
//! plaintext value can be found with grep.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, ValueProblem};

/// The largest value coffer stores, in bytes (128 KiB, the platform CLI's
/// limit for piped values).
pub const MAX_VALUE_LEN: usize = 128 * 1024;

/// A secret value: valid UTF-8, not empty, at most [`MAX_VALUE_LEN`] bytes.
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    /// Validates raw bytes as a value. The bytes are wiped whatever the
    /// outcome.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<SecretValue, Error> {
        let bytes = Zeroizing::new(bytes);
        if bytes.is_empty() {
            return Err(Error::Value(ValueProblem::Empty));
        }
        if bytes.len() > MAX_VALUE_LEN {
            return Err(Error::Value(ValueProblem::TooLarge {
                len: bytes.len(),
                max: MAX_VALUE_LEN,
            }));
        }
        match std::str::from_utf8(&bytes) {
            Ok(s) => Ok(SecretValue(SecretString::from(s.to_owned()))),
            Err(e) => Err(Error::Value(ValueProblem::NotUtf8 {
                offset: e.valid_up_to(),
            })),
        }
    }

    /// Validates a string as a value.
    pub fn from_string(s: String) -> Result<SecretValue, Error> {
        SecretValue::from_bytes(s.into_bytes())
    }

    /// Returns the plaintext. Every call site is a place where the value
    /// leaves coffer's protection; keep them few.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// Returns the length of the value in bytes (not secret: ciphertext
    /// sizes reveal it anyway).
    pub fn len(&self) -> usize {
        self.0.expose_secret().len()
    }

    /// Always false: values are never empty.
    pub fn is_empty(&self) -> bool {
        self.0.expose_secret().is_empty()
    }

    /// Compares two values in constant time.
    pub fn ct_eq(&self, other: &SecretValue) -> bool {
        let (a, b) = (
            self.expose_secret().as_bytes(),
            other.expose_secret().as_bytes(),
        );
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue([redacted])")
    }
}

/// Strips one trailing newline (`\n` or `\r\n`), as the platform CLI does
/// for piped input.
pub fn strip_one_newline(bytes: &mut Vec<u8>) {
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let v = SecretValue::from_string("hunter2-sentinel".into()).unwrap();
        assert!(!format!("{v:?}").contains("hunter2"));
    }

    #[test]
    fn refuses_empty_oversized_and_invalid_utf8() {
        assert!(matches!(
            SecretValue::from_bytes(vec![]),
            Err(Error::Value(ValueProblem::Empty))
        ));
        assert!(matches!(
            SecretValue::from_bytes(vec![b'a'; MAX_VALUE_LEN + 1]),
            Err(Error::Value(ValueProblem::TooLarge { .. }))
        ));
        assert!(SecretValue::from_bytes(vec![b'a'; MAX_VALUE_LEN]).is_ok());
        assert!(matches!(
            SecretValue::from_bytes(vec![b'o', b'k', 0xff]),
            Err(Error::Value(ValueProblem::NotUtf8 { offset: 2 }))
        ));
    }

    #[test]
    fn strips_exactly_one_newline() {
        for (input, want) in [
            (&b"v\n"[..], &b"v"[..]),
            (b"v\r\n", b"v"),
            (b"v\n\n", b"v\n"),
            (b"v", b"v"),
            (b"", b""),
        ] {
            let mut b = input.to_vec();
            strip_one_newline(&mut b);
            assert_eq!(b, want);
        }
    }

    #[test]
    fn constant_time_equality() {
        let a = SecretValue::from_string("abc".into()).unwrap();
        let b = SecretValue::from_string("abc".into()).unwrap();
        let c = SecretValue::from_string("abd".into()).unwrap();
        let d = SecretValue::from_string("abcd".into()).unwrap();
        assert!(a.ct_eq(&b));
        assert!(!a.ct_eq(&c));
        assert!(!a.ct_eq(&d));
    }
}
