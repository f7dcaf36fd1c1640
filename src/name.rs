//! Validated names: vaults, secrets and recipients.
//!
//! Vault and secret names follow the platform's own rule,
//! `^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`, so that everything stored locally can
//! be synced. File names inside the store are always derived from one of
//! these types, never from raw input, which is what keeps `../x`, `a/b`, NUL
//! and unicode look-alikes out of the file system.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
pub use crate::error::NameKind;

/// Returns why `s` is not a valid platform resource name, or `None` if it is.
/// The sync engine asks this of names the platform lists: one that breaks
/// the platform's own rule is never sent back in a delete.
pub fn platform_name_problem(s: &str) -> Option<&'static str> {
    let b = s.as_bytes();
    if b.is_empty() {
        return Some("it is empty");
    }
    if !s.is_ascii() {
        return Some("it contains a character that is not ASCII");
    }
    if b.len() < 3 {
        return Some("it is shorter than 3 characters");
    }
    if b.len() > 63 {
        return Some("it is longer than 63 characters");
    }
    if b.iter().any(|&c| c.is_ascii_uppercase()) {
        return Some("it contains an uppercase letter");
    }
    if !b
        .iter()
        .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        return Some("it may only contain a-z, 0-9 and '-'");
    }
    if b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Some("it must start and end with a letter or digit");
    }
    None
}

macro_rules! platform_name {
    ($(#[$doc:meta])* $ty:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            /// Returns the name as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                let problem = platform_name_problem(s).or_else(|| {
                    ($kind == NameKind::Secret && s == RESERVED_SECRET_NAME)
                        .then_some("it is reserved: vault-key.age holds the vault's key")
                });
                match problem {
                    None => Ok($ty(s.to_owned())),
                    Some(reason) => Err(Error::InvalidName {
                        kind: $kind,
                        name: s.to_owned(),
                        reason,
                    }),
                }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

platform_name!(
    /// A vault name: `^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`. Also the name of
    /// the vault's directory.
    VaultName,
    NameKind::Vault
);

platform_name!(
    /// A secret name: `^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`, except
    /// `vault-key`, whose file name belongs to the vault key. The secret's
    /// file is `<name>.age`.
    SecretName,
    NameKind::Secret
);

/// The one platform-valid secret name coffer reserves: `vault-key.age` is
/// the vault's key file.
pub const RESERVED_SECRET_NAME: &str = "vault-key";

/// The name of a recipient (a person, a CI job, a hardware key) in
/// `coffer.toml`: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, starting with a
/// letter or digit. Wider than platform names because login names are.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecipientName(String);

impl RecipientName {
    /// Returns the name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for RecipientName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let problem = if s.is_empty() {
            Some("it is empty")
        } else if !s.is_ascii() {
            Some("it contains a character that is not ASCII")
        } else if s.len() > 64 {
            Some("it is longer than 64 characters")
        } else if !s.as_bytes()[0].is_ascii_alphanumeric() {
            Some("it must start with a letter or digit")
        } else if !s
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
        {
            Some("it may only contain letters, digits, '.', '_' and '-'")
        } else {
            None
        };
        match problem {
            None => Ok(RecipientName(s.to_owned())),
            Some(reason) => Err(Error::InvalidName {
                kind: NameKind::Recipient,
                name: s.to_owned(),
                reason,
            }),
        }
    }
}

impl std::borrow::Borrow<str> for RecipientName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecipientName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_platform_names() {
        for ok in ["api-keys", "abc", "a-b", "a--b", "0ab", &"a".repeat(63)] {
            assert!(ok.parse::<VaultName>().is_ok(), "{ok}");
            assert!(ok.parse::<SecretName>().is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_names_outside_the_platform_rule() {
        let long = "a".repeat(64);
        for bad in [
            "",
            "a",
            "ab",
            "A",
            "Abc",
            "../x",
            "a/b",
            "a\\b",
            ".",
            "..",
            "-ab",
            "ab-",
            "a_b",
            "a.b",
            "a\0b",
            "аbc", // Cyrillic 'а'
            "ab\u{200c}c",
            &long,
        ] {
            assert!(bad.parse::<VaultName>().is_err(), "{bad:?}");
            assert!(bad.parse::<SecretName>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn vault_key_is_reserved_for_secrets_only() {
        assert!("vault-key".parse::<SecretName>().is_err());
        assert!("vault-key".parse::<VaultName>().is_ok());
        assert!("vault-keys".parse::<SecretName>().is_ok());
    }

    #[test]
    fn recipient_names_allow_login_names() {
        for ok in ["alice", "Alice.Smith", "ci_bot", "x"] {
            assert!(ok.parse::<RecipientName>().is_ok(), "{ok}");
        }
        for bad in ["", "-x", "a b", "a/b", "é", &"a".repeat(65)] {
            assert!(bad.parse::<RecipientName>().is_err(), "{bad:?}");
        }
    }
}
