//! The vault key: a vault's own X25519 identity, stored in `vault-key.age`
//! encrypted to the vault's recipients, and the keys derived from it.
//!
//! Two levels of encryption (see `docs/format.md`): each secret is encrypted
//! to the vault key's public half alone. The manifest's MACs use a key
//! derived from the vault key with HKDF-SHA256, so only holders of the vault
//! key can write entries that verify.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::iter;
use std::path::Path;

use age::secrecy::ExposeSecret;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::age_file::{DecryptErr, OneStanza, decrypt, encrypt};
use crate::crypto::mac::MacInput;
use crate::crypto::recipient::RecipientKey;
use crate::crypto::x25519::{X25519Identity, X25519Recipient, raw_identity};
use crate::error::{Error, IntegrityProblem, Result};
use crate::name::RecipientName;
use crate::secret::SecretValue;

/// HKDF `info` for the manifest MAC key.
const MAC_KEY_INFO: &[u8] = b"coffer.v1 manifest mac key";

/// HKDF `info` for the key of [`VaultKey::value_digest`].
const VALUE_DIGEST_INFO: &[u8] = b"coffer.v1 sync state";

/// A vault's own identity, decrypted from `vault-key.age`, and the MAC key
/// derived from it. Never printed: no `Display`, redacted `Debug`.
pub struct VaultKey {
    identity: age::x25519::Identity,
    /// The same key, for X25519 through aws-lc-rs.
    fast: Box<X25519Identity>,
    public: age::x25519::Recipient,
    mac_key: Zeroizing<[u8; 32]>,
    /// The recipients `vault-key.age` was encrypted to, as recorded inside
    /// it (empty for a key that was just generated).
    listed: BTreeMap<RecipientName, RecipientKey>,
    digest_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VaultKey({} [secret redacted])", self.public)
    }
}

impl VaultKey {
    /// Generates a fresh vault key.
    pub fn generate() -> VaultKey {
        VaultKey::from_identity(age::x25519::Identity::generate())
    }

    fn from_identity(identity: age::x25519::Identity) -> VaultKey {
        let raw = raw_identity(&identity);
        let mut mac_key = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(None, raw.as_ref())
            .expand(MAC_KEY_INFO, mac_key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut digest_key = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(None, raw.as_ref())
            .expand(VALUE_DIGEST_INFO, digest_key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let fast = Box::new(X25519Identity::from_raw(&raw));
        let public = identity.to_public();
        VaultKey {
            identity,
            fast,
            public,
            mac_key,
            listed: BTreeMap::new(),
            digest_key,
        }
    }

    /// Returns the recipients recorded inside `vault-key.age` when it was
    /// written: who it is encrypted to. Authentic, since only a holder of
    /// this key can have written it; used to tell which recipient a
    /// hand-edited manifest added.
    pub fn listed_recipients(&self) -> &BTreeMap<RecipientName, RecipientKey> {
        &self.listed
    }

    /// Returns the vault's public key, to which its secrets are encrypted.
    pub fn public(&self) -> &age::x25519::Recipient {
        &self.public
    }

    /// Returns the identity file text stored inside `vault-key.age`: a
    /// standard age identity file, usable with `age -d -i`, whose comments
    /// record the recipients it is encrypted to.
    pub(crate) fn to_identity_file(
        &self,
        recipients: &BTreeMap<RecipientName, RecipientKey>,
    ) -> Zeroizing<String> {
        let mut s = format!(
            "# coffer vault key: keep secret\n# public key: {}\n",
            self.public
        );
        for (name, key) in recipients {
            s.push_str(&format!("# recipient: {name} {key}\n"));
        }
        let mut text = Zeroizing::new(s);
        text.push_str(self.identity.to_string().expose_secret());
        text.push('\n');
        text
    }

    /// Parses the plaintext of `vault-key.age`: exactly one X25519 identity,
    /// comments and blank lines ignored.
    pub(crate) fn from_identity_file(text: &str, path: &Path) -> Result<VaultKey> {
        let bad = |message: &str| Error::Decrypt {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        let mut found = None;
        let mut listed = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("# recipient: ") {
                let (name, key) = rest
                    .split_once(' ')
                    .ok_or_else(|| bad("a recipient line has no key"))?;
                let name: RecipientName = name
                    .parse()
                    .map_err(|_| bad("a recipient line has an invalid name"))?;
                let key: RecipientKey = key
                    .parse()
                    .map_err(|_| bad("a recipient line has an invalid key"))?;
                listed.insert(name, key);
                continue;
            }
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if found.is_some() {
                return Err(bad("it holds more than one identity"));
            }
            found = Some(
                line.parse::<age::x25519::Identity>()
                    .map_err(|_| bad("it does not hold an age X25519 identity"))?,
            );
        }
        let mut key = found
            .map(VaultKey::from_identity)
            .ok_or_else(|| bad("it holds no identity"))?;
        key.listed = listed;
        Ok(key)
    }

    /// Returns the derived MAC key, for the documented test vector.
    #[cfg(test)]
    pub(crate) fn mac_key_bytes(&self) -> [u8; 32] {
        *self.mac_key
    }

    /// Computes the MAC of a length-prefixed message (see [`MacInput`]).
    pub(crate) fn mac(&self, input: &MacInput) -> [u8; 32] {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.mac_key.as_ref())
            .expect("HMAC takes any key length");
        m.update(&input.0);
        m.finalize().into_bytes().into()
    }

    /// Checks a MAC in constant time.
    pub(crate) fn verify_mac(&self, input: &MacInput, mac: &[u8; 32]) -> bool {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.mac_key.as_ref())
            .expect("HMAC takes any key length");
        m.update(&input.0);
        m.verify_slice(mac).is_ok()
    }

    /// Returns a keyed digest of a value: HMAC-SHA256 under a key derived
    /// from the vault key (HKDF info `coffer.v1 sync state`) over the
    /// length-prefixed `domain` and value. Someone who reads a stored
    /// digest but holds no vault key learns nothing about the value, not
    /// even whether two secrets share it (their domains differ).
    pub fn value_digest(&self, domain: &str, value: &SecretValue) -> [u8; 32] {
        let mut input = MacInput::new(domain);
        input.field(value.expose_secret().as_bytes());
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.digest_key.as_ref())
            .expect("HMAC takes any key length");
        m.update(&input.0);
        let out = m.finalize().into_bytes().into();
        input.0.zeroize();
        out
    }

    /// Encrypts a value to this vault key (one X25519 stanza, armored).
    pub fn encrypt_value(&self, value: &SecretValue) -> Result<Vec<u8>> {
        encrypt(
            iter::once(&X25519Recipient(self.fast.public) as &dyn age::Recipient),
            value.expose_secret().as_bytes(),
        )
    }

    /// Decrypts a secret file's bytes. The file must be armored and hold
    /// exactly one stanza; the plaintext must be a valid value.
    pub fn decrypt_value(&self, ciphertext: &[u8]) -> Result<SecretValue, IntegrityProblem> {
        let one = OneStanza {
            inner: &self.fast,
            stanzas: Cell::new(0),
        };
        let plain = decrypt(ciphertext, iter::once(&one as &dyn age::Identity)).map_err(|e| {
            if one.stanzas.get() != 1 {
                IntegrityProblem::Malformed(format!(
                    "it has {} recipient stanzas, not 1",
                    one.stanzas.get()
                ))
            } else {
                IntegrityProblem::Malformed(e.to_string())
            }
        })?;
        SecretValue::from_bytes(plain.to_vec()).map_err(|e| {
            IntegrityProblem::Malformed(format!("its plaintext is not a valid value: {e}"))
        })
    }
}

/// Decrypts `vault-key.age` with the user's identities.
pub(crate) fn decrypt_vault_key<'a>(
    ciphertext: &[u8],
    path: &Path,
    identities: impl Iterator<Item = &'a dyn age::Identity>,
) -> std::result::Result<VaultKey, DecryptFailure> {
    match decrypt(ciphertext, identities) {
        Ok(plain) => {
            let text = std::str::from_utf8(&plain).map_err(|_| {
                DecryptFailure::Other(Error::Decrypt {
                    path: path.to_owned(),
                    message: "its plaintext is not text".into(),
                })
            })?;
            VaultKey::from_identity_file(text, path).map_err(DecryptFailure::Other)
        }
        Err(DecryptErr::Age(age::DecryptError::NoMatchingKeys)) => Err(DecryptFailure::NoMatch),
        Err(e) => Err(DecryptFailure::Other(Error::Decrypt {
            path: path.to_owned(),
            message: e.to_string(),
        })),
    }
}

/// Why `vault-key.age` did not open.
pub(crate) enum DecryptFailure {
    /// None of the identities matched a stanza.
    NoMatch,
    /// Anything else.
    Other(Error),
}
