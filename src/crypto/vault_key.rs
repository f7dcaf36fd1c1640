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

/// The most keys a keyring may hold: one per removal over a vault's life;
/// far more than any team needs, and a bound on what a reader parses.
pub const MAX_EPOCHS: usize = 4096;

/// One key of a keyring.
struct EpochKey {
    identity: age::x25519::Identity,
    /// The same key, for X25519 through aws-lc-rs.
    fast: Box<X25519Identity>,
    public: age::x25519::Recipient,
}

impl EpochKey {
    fn new(identity: age::x25519::Identity) -> EpochKey {
        let raw = raw_identity(&identity);
        let fast = Box::new(X25519Identity::from_raw(&raw));
        let public = identity.to_public();
        EpochKey {
            identity,
            fast,
            public,
        }
    }
}

/// A vault's keyring, decrypted from `vault-key.age`: the current vault key
/// and every earlier one (its *epochs*, numbered from 1, the current one
/// highest), and the keys derived from the current one. Never printed: no
/// `Display`, redacted `Debug`.
///
/// New values are encrypted to the current key; a stored value is
/// decrypted with the key of the epoch its manifest entry records, so a
/// read costs one X25519 operation however long the keyring is.
pub struct VaultKey {
    /// Newest first: `keys[0]` is the current key, of epoch `keys.len()`.
    keys: Vec<EpochKey>,
    /// The current key's public half as manifests record it (`age1…`):
    /// compared on every read, so encoded once.
    current_public: String,
    /// The derived MAC key itself, kept for the documented test vector.
    #[cfg_attr(not(test), allow(dead_code))]
    mac_key: Zeroizing<[u8; 32]>,
    /// HMAC keyed with `mac_key`, cloned for each MAC (saves hashing the
    /// key pads every time: removal computes two MACs per secret).
    mac_state: Hmac<Sha256>,
    /// The recipients `vault-key.age` was encrypted to, as recorded inside
    /// it (empty for a key that was just generated).
    listed: BTreeMap<RecipientName, RecipientKey>,
    digest_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "VaultKey({} epoch {} [secret redacted])",
            self.keys[0].public,
            self.keys.len()
        )
    }
}

impl VaultKey {
    /// Generates a fresh keyring of one key (epoch 1).
    pub fn generate() -> VaultKey {
        VaultKey::from_keys(vec![EpochKey::new(age::x25519::Identity::generate())])
    }

    /// Returns the successor keyring: a fresh current key, then every key
    /// of this one. Only a holder of the current key can make it, which is
    /// what continuity checks rely on.
    pub fn successor(&self) -> VaultKey {
        let mut keys = vec![EpochKey::new(age::x25519::Identity::generate())];
        for k in &self.keys {
            keys.push(EpochKey::new(k.identity.clone()));
        }
        VaultKey::from_keys(keys)
    }

    fn from_keys(keys: Vec<EpochKey>) -> VaultKey {
        let raw = raw_identity(&keys[0].identity);
        let mut mac_key = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(None, raw.as_ref())
            .expand(MAC_KEY_INFO, mac_key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mut digest_key = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<Sha256>::new(None, raw.as_ref())
            .expand(VALUE_DIGEST_INFO, digest_key.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let mac_state = <Hmac<Sha256> as Mac>::new_from_slice(mac_key.as_ref())
            .expect("HMAC takes any key length");
        VaultKey {
            current_public: keys[0].public.to_string(),
            keys,
            mac_state,
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

    /// Returns the current key's public half, to which new values are
    /// encrypted.
    pub fn public(&self) -> &age::x25519::Recipient {
        &self.keys[0].public
    }

    /// Returns whether the current key is the one a manifest records: the
    /// public key `public_key` (its `age1…` string) at `epoch`.
    pub fn is_current(&self, public_key: &str, epoch: u32) -> bool {
        self.current_public == public_key && self.epoch() == epoch
    }

    /// Returns the current epoch: the number of keys in the keyring.
    pub fn epoch(&self) -> u32 {
        self.keys.len() as u32
    }

    /// Returns the public key of every epoch, newest first, with its
    /// epoch number.
    pub fn epochs(&self) -> impl Iterator<Item = (u32, &age::x25519::Recipient)> {
        let n = self.keys.len() as u32;
        self.keys
            .iter()
            .enumerate()
            .map(move |(i, k)| (n - i as u32, &k.public))
    }

    /// Returns whether the keyring holds the key whose public half is
    /// `public` (in its canonical `age1…` form): the continuity check.
    pub fn contains_public(&self, public: &str) -> bool {
        self.keys.iter().any(|k| k.public.to_string() == public)
    }

    /// Returns the identity file text stored inside `vault-key.age`: a
    /// standard age identity file holding every key, newest first, usable
    /// with `age -d -i`, whose comments record the epochs and the
    /// recipients it is encrypted to.
    pub(crate) fn to_identity_file(
        &self,
        recipients: &BTreeMap<RecipientName, RecipientKey>,
    ) -> Zeroizing<String> {
        let mut s = format!(
            "# coffer vault key: keep secret\n# public key: {}\n",
            self.keys[0].public
        );
        if self.keys.len() > 1 {
            for (epoch, public) in self.epochs() {
                s.push_str(&format!("# epoch {epoch}: {public}\n"));
            }
        }
        for (name, key) in recipients {
            s.push_str(&format!("# recipient: {name} {key}\n"));
        }
        let mut text = Zeroizing::new(s);
        for k in &self.keys {
            text.push_str(k.identity.to_string().expose_secret());
            text.push('\n');
        }
        text
    }

    /// Parses the plaintext of `vault-key.age`: one or more X25519
    /// identities, newest first (format 1 wrote exactly one); comments and
    /// blank lines ignored except `# recipient:` lines.
    pub(crate) fn from_identity_file(text: &str, path: &Path) -> Result<VaultKey> {
        let bad = |message: &str| Error::Decrypt {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        let mut keys = Vec::new();
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
            if keys.len() == MAX_EPOCHS {
                return Err(bad("it holds more keys than a keyring may"));
            }
            let identity = line
                .parse::<age::x25519::Identity>()
                .map_err(|_| bad("it does not hold age X25519 identities only"))?;
            keys.push(EpochKey::new(identity));
        }
        if keys.is_empty() {
            return Err(bad("it holds no identity"));
        }
        let mut distinct = std::collections::BTreeSet::new();
        if !keys.iter().all(|k| distinct.insert(k.public.to_string())) {
            return Err(bad("it holds the same key twice"));
        }
        let mut key = VaultKey::from_keys(keys);
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
        let mut m = self.mac_state.clone();
        m.update(&input.0);
        m.finalize().into_bytes().into()
    }

    /// Checks a MAC in constant time.
    pub(crate) fn verify_mac(&self, input: &MacInput, mac: &[u8; 32]) -> bool {
        let mut m = self.mac_state.clone();
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

    /// Returns a keyed digest of a secret file's SHA-256, under the same
    /// key as [`VaultKey::value_digest`] and with a message that cannot be
    /// one of its (a first field of its own, which holds no `/`). The sync
    /// state keeps it so that a file byte-identical to the one last pushed
    /// is not decrypted again; keyed, so that a state file written by
    /// someone without the vault key cannot make a changed file pass for
    /// the one pushed.
    pub fn file_digest(&self, domain: &str, sha256: &[u8; 32]) -> [u8; 32] {
        let mut input = MacInput::new("coffer sync file");
        input.field(domain.as_bytes()).field(sha256);
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(self.digest_key.as_ref())
            .expect("HMAC takes any key length");
        m.update(&input.0);
        m.finalize().into_bytes().into()
    }

    /// Encrypts a value to the current key (one X25519 stanza, armored).
    pub fn encrypt_value(&self, value: &SecretValue) -> Result<Vec<u8>> {
        encrypt(
            iter::once(&X25519Recipient(self.keys[0].fast.public) as &dyn age::Recipient),
            value.expose_secret().as_bytes(),
        )
    }

    /// Decrypts a secret file's bytes with the current key (see
    /// [`VaultKey::decrypt_value_at`]).
    pub fn decrypt_value(&self, ciphertext: &[u8]) -> Result<SecretValue, IntegrityProblem> {
        self.decrypt_value_at(self.epoch(), ciphertext)
    }

    /// Decrypts a value with whichever key of the keyring opens it, newest
    /// first: for a file seen without its manifest entry (git history).
    /// Costs one X25519 operation per key tried.
    pub fn decrypt_value_any(&self, ciphertext: &[u8]) -> Result<SecretValue, IntegrityProblem> {
        let mut first = None;
        for epoch in (1..=self.epoch()).rev() {
            match self.decrypt_value_at(epoch, ciphertext) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        Err(first.expect("a keyring holds at least one key"))
    }

    /// Decrypts a secret file's bytes with the key of `epoch`. The file
    /// must be armored and hold exactly one stanza; the plaintext must be a
    /// valid value.
    pub fn decrypt_value_at(
        &self,
        epoch: u32,
        ciphertext: &[u8],
    ) -> Result<SecretValue, IntegrityProblem> {
        let n = self.keys.len() as u32;
        if epoch == 0 || epoch > n {
            return Err(IntegrityProblem::Malformed(format!(
                "its entry names key epoch {epoch}, but the keyring holds epochs 1 to {n}"
            )));
        }
        let one = OneStanza {
            inner: &self.keys[(n - epoch) as usize].fast,
            stanzas: Cell::new(None),
        };
        // A file refused before its stanzas were looked at (bad armor, a
        // truncated payload) says why, not "0 stanzas".
        let plain = decrypt(ciphertext, &[&one as &dyn age::Identity]).map_err(|e| {
            match one.stanzas.get() {
                Some(n) if n != 1 => {
                    IntegrityProblem::Malformed(format!("it has {n} recipient stanzas, not 1"))
                }
                _ => IntegrityProblem::Malformed(e.to_string()),
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
    let identities: Vec<&dyn age::Identity> = identities.collect();
    match decrypt(ciphertext, &identities) {
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
