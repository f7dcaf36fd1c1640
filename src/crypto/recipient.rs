//! Recipient public keys: who a vault key is encrypted to.
//!
//! Three kinds, as in age: native X25519 (`age1…`), SSH (`ssh-ed25519`,
//! `ssh-rsa`) and plugin recipients (`age1<plugin>1…`, for hardware keys).
//! Keys are stored in their canonical text form (SSH comments dropped), so
//! the same key always compares and MACs the same way.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::error::Error;

/// A recipient's public key.
#[derive(Clone)]
pub enum RecipientKey {
    /// A native age X25519 recipient, `age1…`.
    X25519(age::x25519::Recipient),
    /// An `ssh-ed25519` or `ssh-rsa` public key.
    Ssh(age::ssh::Recipient),
    /// An age plugin recipient, `age1<plugin>1…`. Encrypting to it runs the
    /// plugin binary `age-plugin-<plugin>` from `PATH`.
    Plugin(age::plugin::Recipient),
}

/// The public key of coffer's published demo identity
/// (`demo/demo-identity.txt`, committed so that a fresh clone can open the
/// sample store). Anyone can decrypt what is encrypted to it, so coffer uses
/// it for the sample store alone.
pub const DEMO_RECIPIENT: &str = "age1d98pstnju53zy8z0atrzxfmv4p4l9m8vesqk4dr5fyhxn7ny5gssrljrpz";

impl RecipientKey {
    /// Returns whether this is the published demo key ([`DEMO_RECIPIENT`]).
    pub fn is_published_demo(&self) -> bool {
        matches!(self, RecipientKey::X25519(r) if r.to_string() == DEMO_RECIPIENT)
    }

    /// Returns a short kind label: `x25519`, `ssh-ed25519`, `ssh-rsa` or
    /// `plugin:<name>`.
    pub fn kind(&self) -> String {
        match self {
            RecipientKey::X25519(_) => "x25519".into(),
            RecipientKey::Ssh(r) => r.to_string().split(' ').next().unwrap_or("ssh").to_owned(),
            RecipientKey::Plugin(p) => format!("plugin:{}", p.plugin()),
        }
    }

    /// Returns the key's fingerprint: `SHA256:` and the first 16 bytes of
    /// the SHA-256 of its canonical text, in hex. Short enough to read
    /// aloud, long enough to compare.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(self.to_string().as_bytes());
        let mut s = String::from("SHA256:");
        for b in &digest[..16] {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }

    /// Returns the plugin name if this is a plugin recipient.
    pub fn plugin_name(&self) -> Option<&str> {
        match self {
            RecipientKey::Plugin(p) => Some(p.plugin()),
            _ => None,
        }
    }
}

impl FromStr for RecipientKey {
    type Err = Error;

    /// Parses a recipient. Surrounding whitespace is ignored, and so is the
    /// comment of an SSH public key.
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        let bad = |reason: String| Error::InvalidRecipient { reason };
        if s.starts_with("ssh-") {
            return s
                .parse::<age::ssh::Recipient>()
                .map(RecipientKey::Ssh)
                .map_err(|e| {
                    use age::ssh::ParseRecipientKeyError as P;
                    bad(match e {
                        P::RsaModulusTooLarge => "the ssh-rsa key is larger than 4096 bits".into(),
                        P::RsaModulusTooSmall => "the ssh-rsa key is smaller than 2048 bits".into(),
                        P::Unsupported(t) => format!(
                            "SSH keys of type {t:?} are not supported (use ssh-ed25519 or ssh-rsa)"
                        ),
                        _ => "it is not a valid ssh-ed25519 or ssh-rsa public key".into(),
                    })
                });
        }
        if let Ok(r) = s.parse::<age::x25519::Recipient>() {
            return Ok(RecipientKey::X25519(r));
        }
        // `get` rather than slicing: the input may be any text, and a
        // multi-byte character must not land on a slice boundary.
        if s.len() > 4 && s.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("age1")) {
            // A plugin recipient's HRP is `age1<name>`, and bech32 puts the
            // last '1' before the data: check the name against the age
            // plugin grammar ourselves, so that a path separator gets a
            // clear error rather than a generic parse failure.
            let name = s
                .rfind('1')
                .filter(|&i| i > 4)
                .and_then(|sep| s.get(4..sep));
            if let Some(name) = name
                && let Some(c) = name
                    .chars()
                    .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.' | '_')))
            {
                return Err(bad(format!(
                    "the plugin name {name:?} contains {c:?}; age plugin names may only contain letters, digits, '+', '-', '.' and '_'"
                )));
            }
            if let Ok(r) = s.parse::<age::plugin::Recipient>() {
                return Ok(RecipientKey::Plugin(r));
            }
            return Err(bad(
                "it is not a valid age recipient (bad checksum or length)".into(),
            ));
        }
        if s.starts_with("AGE-SECRET-KEY-") || s.starts_with("AGE-PLUGIN-") {
            return Err(bad(
                "this is a private identity, not a public recipient; never share it".into(),
            ));
        }
        Err(bad(
            "expected an age recipient (age1…), an SSH public key (ssh-ed25519 …, ssh-rsa …) or a plugin recipient (age1<plugin>1…)".into(),
        ))
    }
}

impl fmt::Display for RecipientKey {
    /// The canonical text form: what `coffer.toml` and manifests store.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecipientKey::X25519(r) => r.fmt(f),
            RecipientKey::Ssh(r) => r.fmt(f),
            RecipientKey::Plugin(r) => r.fmt(f),
        }
    }
}

impl fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecipientKey({self})")
    }
}

impl PartialEq for RecipientKey {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for RecipientKey {}

#[cfg(test)]
mod tests {
    use super::*;

    const SSH_ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHsKLqeplhpW+uObz5dvMgjz1OxfM/XXUB+VHtZ6isGN alice@rust";

    #[test]
    fn parses_each_kind_and_canonicalises() {
        let x = age::x25519::Identity::generate().to_public().to_string();
        let k: RecipientKey = format!("  {x}\n").parse().unwrap();
        assert_eq!(k.to_string(), x);
        assert_eq!(k.kind(), "x25519");

        let k: RecipientKey = SSH_ED.parse().unwrap();
        assert_eq!(k.kind(), "ssh-ed25519");
        assert!(!k.to_string().contains("alice@rust"), "comment dropped");
        assert_eq!(k, SSH_ED.trim_end_matches(" alice@rust").parse().unwrap());
    }

    #[test]
    fn plugin_recipients_are_parsed_and_named() {
        // A syntactically valid plugin recipient (bech32 with HRP age1yubikey).
        let hrp = bech32::Hrp::parse("age1yubikey").unwrap();
        let s = bech32::encode::<bech32::Bech32>(hrp, &[7u8; 33]).unwrap();
        let k: RecipientKey = s.parse().unwrap();
        assert_eq!(k.plugin_name(), Some("yubikey"));
        assert_eq!(k.kind(), "plugin:yubikey");
    }

    #[test]
    fn plugin_names_with_path_separators_are_refused() {
        let err = "age1pwn/pwn19gt89dfz".parse::<RecipientKey>().unwrap_err();
        assert!(err.to_string().contains("plugin name"), "{err}");
        let err = "age1..\\x1qqqqqq".parse::<RecipientKey>().unwrap_err();
        assert!(err.to_string().contains("plugin name"), "{err}");
    }

    #[test]
    fn private_keys_are_recognised_and_never_echoed() {
        let sk = age::x25519::Identity::generate();
        use secrecy::ExposeSecret;
        let text = sk.to_string().expose_secret().to_owned();
        let err = text.parse::<RecipientKey>().unwrap_err().to_string();
        assert!(err.contains("private identity"));
        assert!(!err.contains(&text[15..]), "the key must not be echoed");
    }

    #[test]
    fn multi_byte_characters_at_any_offset_do_not_panic() {
        // Found by the `recipient` fuzz target: slicing at byte 4.
        for s in [
            "ssh\u{4d8}d25519 AAAA",
            "agé1xyz",
            "age\u{20ac}1q",
            "age1é1qqq",
            "ä",
        ] {
            assert!(s.parse::<RecipientKey>().is_err(), "{s}");
        }
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "hello",
            "age1",
            "age1qqqq",
            "ssh-ed25519 AAAA",
            "ecdsa-sha2-nistp256 AAAA",
        ] {
            assert!(bad.parse::<RecipientKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints_are_stable_and_distinct() {
        let a: RecipientKey = age::x25519::Identity::generate()
            .to_public()
            .to_string()
            .parse()
            .unwrap();
        let b: RecipientKey = age::x25519::Identity::generate()
            .to_public()
            .to_string()
            .parse()
            .unwrap();
        assert_eq!(a.fingerprint(), a.clone().fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(a.fingerprint().starts_with("SHA256:"));
        assert_eq!(a.fingerprint().len(), 7 + 32);
    }
}
