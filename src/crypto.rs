//! Everything that touches age, digests and MACs.
//!
//! Two levels of encryption (see `docs/format.md`): each vault has its own
//! X25519 identity, the *vault key*, stored in `vault-key.age` encrypted to
//! the vault's recipients; each secret is encrypted to the vault key's
//! public half alone. The manifest's MACs use a key derived from the vault
//! key with HKDF-SHA256, so only holders of the vault key can write entries
//! that verify.

use std::cell::Cell;
use std::io::{Read, Write};
use std::iter;
use std::path::Path;

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::secrecy::ExposeSecret;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use zeroize::{Zeroize, Zeroizing};

use std::collections::BTreeMap;

use crate::error::{Error, IntegrityProblem, Result};
use crate::name::RecipientName;
use crate::recipient::RecipientKey;
use crate::secret::SecretValue;

/// The first line of every ASCII-armored age file.
pub const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

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

/// Encrypts `plaintext` to `recipients`, ASCII-armored.
pub(crate) fn encrypt<'a>(
    recipients: impl Iterator<Item = &'a dyn age::Recipient>,
    plaintext: &[u8],
) -> Result<Vec<u8>> {
    let err = |e: &dyn std::fmt::Display| Error::Encrypt {
        message: e.to_string(),
    };
    let enc = age::Encryptor::with_recipients(recipients).map_err(|e| err(&e))?;
    let mut out = Vec::with_capacity(plaintext.len() * 4 / 3 + 400);
    let armor = ArmoredWriter::wrap_output(&mut out, Format::AsciiArmor).map_err(|e| err(&e))?;
    let mut w = enc.wrap_output(armor).map_err(|e| err(&e))?;
    w.write_all(plaintext).map_err(|e| err(&e))?;
    w.finish()
        .and_then(|armor| armor.finish())
        .map_err(|e| err(&e))?;
    Ok(out)
}

/// Why an age file did not decrypt. Its `Display` is age's message, which
/// never contains plaintext.
#[derive(Debug)]
pub(crate) enum DecryptErr {
    /// The file does not start with the armor line.
    NotArmored,
    /// age refused it.
    Age(age::DecryptError),
    /// Reading the payload failed (bad armor, truncated, failed chunk MAC).
    Payload(std::io::Error),
}

impl std::fmt::Display for DecryptErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecryptErr::NotArmored => f.write_str("it is not an ASCII-armored age file"),
            DecryptErr::Age(e) => write!(f, "{e}"),
            DecryptErr::Payload(e) => write!(f, "{e}"),
        }
    }
}

/// Decrypts an ASCII-armored age file.
pub(crate) fn decrypt<'a>(
    ciphertext: &[u8],
    identities: impl Iterator<Item = &'a dyn age::Identity>,
) -> std::result::Result<Zeroizing<Vec<u8>>, DecryptErr> {
    if !ciphertext.starts_with(ARMOR_BEGIN.as_bytes()) {
        return Err(DecryptErr::NotArmored);
    }
    let reader = ArmoredReader::new(ciphertext);
    let d = age::Decryptor::new_buffered(std::io::BufReader::new(reader)).map_err(|e| match e {
        age::DecryptError::Io(io) => DecryptErr::Payload(io),
        e => DecryptErr::Age(e),
    })?;
    let mut r = d.decrypt(identities).map_err(DecryptErr::Age)?;
    let mut out = Zeroizing::new(Vec::new());
    r.read_to_end(&mut out).map_err(DecryptErr::Payload)?;
    Ok(out)
}

/// The most "grease" stanzas (random unknown types that age writers add to
/// keep parsers honest, tag `*-grease`) a coffer file may carry.
pub const MAX_GREASE: usize = 4;

/// Returns true for a grease stanza, which recipients ignore.
fn is_grease(s: &age_core::format::Stanza) -> bool {
    s.tag.ends_with("-grease")
}

/// The stanzas of an age header: how many are real (for a recipient) and
/// how many are grease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StanzaCount {
    /// Stanzas for a recipient.
    pub real: usize,
    /// Grease stanzas (ignored by every recipient).
    pub grease: usize,
}

/// Counts the stanzas of an armored age file without any key, for
/// structural checks. Returns an error message if the header is invalid.
pub fn count_stanzas(ciphertext: &[u8]) -> std::result::Result<StanzaCount, String> {
    if !ciphertext.starts_with(ARMOR_BEGIN.as_bytes()) {
        return Err("it is not an ASCII-armored age file".into());
    }
    let counter = Counter(Cell::new(None));
    let reader = std::io::BufReader::new(ArmoredReader::new(ciphertext));
    let d = age::Decryptor::new_buffered(reader).map_err(|e| e.to_string())?;
    let _ = d.decrypt(iter::once(&counter as &dyn age::Identity));
    counter.0.get().ok_or_else(|| "it has no header".to_owned())
}

struct Counter(Cell<Option<StanzaCount>>);

impl age::Identity for Counter {
    fn unwrap_stanza(
        &self,
        _: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        None
    }
    fn unwrap_stanzas(
        &self,
        stanzas: &[age_core::format::Stanza],
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        let grease = stanzas.iter().filter(|s| is_grease(s)).count();
        self.0.set(Some(StanzaCount {
            real: stanzas.len() - grease,
            grease,
        }));
        None
    }
}

/// Wraps the vault identity to insist on a single (non-grease) stanza: a
/// secret file with more than one was not written by coffer.
struct OneStanza<'a> {
    inner: &'a X25519Identity,
    stanzas: Cell<usize>,
}

impl age::Identity for OneStanza<'_> {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.inner.unwrap_stanza(stanza)
    }
    fn unwrap_stanzas(
        &self,
        stanzas: &[age_core::format::Stanza],
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        let grease = stanzas.iter().filter(|s| is_grease(s)).count();
        self.stanzas.set(stanzas.len() - grease);
        if stanzas.len() - grease != 1 || grease > MAX_GREASE {
            return Some(Err(age::DecryptError::InvalidHeader));
        }
        stanzas
            .iter()
            .find(|s| !is_grease(s))
            .and_then(|s| self.inner.unwrap_stanza(s))
    }
}

// X25519 stanzas through aws-lc-rs.
//
// Every bulk operation costs one X25519 agreement per secret, and the age
// crate's (x25519-dalek) takes about twice as long as aws-lc-rs's here; it
// also recomputes the identity's public key for every stanza. These two
// types implement the age X25519 recipient stanza exactly as the age spec
// (c2sp.org/age) and the age crate do, with aws-lc-rs for the agreement and
// age-core's own HKDF and ChaCha20-Poly1305. The tests check them against
// the age crate and its CCTV test vectors.

/// The stanza tag and HKDF label of the age spec's X25519 recipient type.
const X25519_TAG: &str = "X25519";
const X25519_LABEL: &[u8] = b"age-encryption.org/v1/X25519";

/// An age X25519 identity whose agreements run through aws-lc-rs, with its
/// public key computed once.
pub(crate) struct X25519Identity {
    secret: aws_lc_rs::agreement::PrivateKey,
    public: [u8; 32],
}

impl X25519Identity {
    /// Builds the identity from its 32 raw bytes (the Bech32 data of an
    /// `AGE-SECRET-KEY-1…` string).
    fn from_raw(raw: &[u8; 32]) -> X25519Identity {
        use aws_lc_rs::agreement::{PrivateKey, X25519};
        let secret = PrivateKey::from_private_key(&X25519, raw)
            .expect("any 32 bytes are an X25519 private key");
        let mut public = [0u8; 32];
        public.copy_from_slice(
            secret
                .compute_public_key()
                .expect("an X25519 key has a public key")
                .as_ref(),
        );
        X25519Identity { secret, public }
    }

    /// The same identity as an age one.
    pub(crate) fn from_age(identity: &age::x25519::Identity) -> X25519Identity {
        X25519Identity::from_raw(&raw_identity(identity))
    }
}

/// The 32 raw bytes of an age X25519 identity (the Bech32 data of its
/// `AGE-SECRET-KEY-1…` string), wiped when dropped.
fn raw_identity(identity: &age::x25519::Identity) -> Zeroizing<[u8; 32]> {
    let encoded = identity.to_string();
    let (_, mut bytes) =
        bech32::decode(encoded.expose_secret()).expect("age encodes identities as valid bech32");
    let mut raw = Zeroizing::new([0u8; 32]);
    raw.copy_from_slice(&bytes);
    bytes.zeroize();
    raw
}

impl age::Identity for X25519Identity {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        use aws_lc_rs::agreement::{UnparsedPublicKey, X25519, agree};
        use base64::Engine as _;
        if stanza.tag != X25519_TAG {
            return None;
        }
        // A valid, canonical stanza: one argument, the 32-byte ephemeral
        // share in unpadded base64 (trailing bits zero), a 32-byte body.
        let [arg] = stanza.args.as_slice() else {
            return Some(Err(age::DecryptError::InvalidHeader));
        };
        let mut share = [0u8; 33];
        match base64::engine::general_purpose::STANDARD_NO_PAD.decode_slice(arg, &mut share) {
            Ok(32) => {}
            _ => return Some(Err(age::DecryptError::InvalidHeader)),
        }
        let share: [u8; 32] = share[..32].try_into().expect("32 bytes");
        let Ok(body) = <[u8; 32]>::try_from(stanza.body.as_slice()) else {
            return Some(Err(age::DecryptError::InvalidHeader));
        };
        // aws-lc-rs refuses a share whose agreement is all zeros (a
        // low-order point), as the spec requires.
        let mut shared = Zeroizing::new([0u8; 32]);
        let agreed = agree(
            &self.secret,
            UnparsedPublicKey::new(&X25519, &share),
            (),
            |s| {
                shared.copy_from_slice(s);
                Ok(())
            },
        );
        if agreed.is_err() {
            return Some(Err(age::DecryptError::InvalidHeader));
        }
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(&share);
        salt[32..].copy_from_slice(&self.public);
        let key = Zeroizing::new(age_core::primitives::hkdf(
            &salt,
            X25519_LABEL,
            shared.as_ref(),
        ));
        // Not ours if it does not decrypt: another stanza may be.
        let mut plain =
            age_core::primitives::aead_decrypt(&key, age_core::format::FILE_KEY_BYTES, &body)
                .ok()?;
        let file_key = age_core::format::FileKey::init_with_mut(|k| k.copy_from_slice(&plain));
        plain.zeroize();
        Some(Ok(file_key))
    }
}

/// An age X25519 recipient whose agreements run through aws-lc-rs.
pub(crate) struct X25519Recipient([u8; 32]);

impl X25519Recipient {
    /// The same recipient as an age one.
    pub(crate) fn from_age(recipient: &age::x25519::Recipient) -> X25519Recipient {
        let (_, bytes) =
            bech32::decode(&recipient.to_string()).expect("age encodes recipients as valid bech32");
        X25519Recipient(bytes.try_into().expect("age recipients are 32 bytes"))
    }
}

impl age::Recipient for X25519Recipient {
    fn wrap_file_key(
        &self,
        file_key: &age_core::format::FileKey,
    ) -> Result<
        (
            Vec<age_core::format::Stanza>,
            std::collections::HashSet<String>,
        ),
        age::EncryptError,
    > {
        use aws_lc_rs::agreement::{PrivateKey, UnparsedPublicKey, X25519, agree};
        use base64::Engine as _;
        let failed = |what: &str| {
            age::EncryptError::Io(std::io::Error::other(format!("X25519 {what} failed")))
        };
        // The ephemeral secret comes from the operating system's generator,
        // as the age crate's does (aws-lc-rs's own generator spends ~30 ms
        // gathering jitter entropy on first use).
        let mut secret = Zeroizing::new([0u8; 32]);
        fill_random(secret.as_mut()).map_err(|_| failed("key generation"))?;
        let ephemeral = PrivateKey::from_private_key(&X25519, secret.as_ref())
            .map_err(|_| failed("key generation"))?;
        let mut share = [0u8; 32];
        share.copy_from_slice(
            ephemeral
                .compute_public_key()
                .map_err(|_| failed("key generation"))?
                .as_ref(),
        );
        let mut shared = Zeroizing::new([0u8; 32]);
        // Fails for a low-order recipient key, whose agreement is all zeros.
        agree(
            &ephemeral,
            UnparsedPublicKey::new(&X25519, &self.0),
            (),
            |s| {
                shared.copy_from_slice(s);
                Ok(())
            },
        )
        .map_err(|_| failed("agreement"))?;
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(&share);
        salt[32..].copy_from_slice(&self.0);
        let key = Zeroizing::new(age_core::primitives::hkdf(
            &salt,
            X25519_LABEL,
            shared.as_ref(),
        ));
        let body = age_core::primitives::aead_encrypt(&key, file_key.expose_secret());
        Ok((
            vec![age_core::format::Stanza {
                tag: X25519_TAG.to_owned(),
                args: vec![base64::engine::general_purpose::STANDARD_NO_PAD.encode(share)],
                body,
            }],
            std::collections::HashSet::new(),
        ))
    }
}

/// Fills `buf` from the operating system's random number generator.
fn fill_random(buf: &mut [u8]) -> std::io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        match rustix::rand::getrandom(&mut buf[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Returns the SHA-256 of a file's bytes.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A MAC message built from length-prefixed fields: each field is its
/// length as a big-endian u64 followed by its bytes, so no two different
/// field lists encode the same way.
#[derive(Default)]
pub(crate) struct MacInput(Vec<u8>);

impl MacInput {
    pub(crate) fn new(domain: &str) -> MacInput {
        let mut m = MacInput(Vec::with_capacity(256));
        m.field(domain.as_bytes());
        m
    }

    pub(crate) fn field(&mut self, bytes: &[u8]) -> &mut MacInput {
        self.0
            .extend_from_slice(&(bytes.len() as u64).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    pub(crate) fn count(&mut self, n: usize) -> &mut MacInput {
        self.0.extend_from_slice(&(n as u64).to_be_bytes());
        self
    }

    #[cfg(test)]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
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

/// Encrypts `plaintext` to a list of recipient keys, ASCII-armored. Plugin
/// recipients are grouped by plugin, and each plugin binary is run once.
pub(crate) fn encrypt_to_keys<C: age::Callbacks>(
    keys: &[&crate::recipient::RecipientKey],
    plaintext: &[u8],
    callbacks: C,
) -> Result<Vec<u8>> {
    use crate::recipient::RecipientKey;
    let mut boxed: Vec<Box<dyn age::Recipient>> = Vec::new();
    let mut plugins: std::collections::BTreeMap<String, Vec<age::plugin::Recipient>> =
        Default::default();
    for k in keys {
        match k {
            RecipientKey::X25519(r) => boxed.push(Box::new(X25519Recipient::from_age(r))),
            RecipientKey::Ssh(r) => boxed.push(Box::new(r.clone())),
            RecipientKey::Plugin(p) => plugins
                .entry(p.plugin().to_owned())
                .or_default()
                .push(p.clone()),
        }
    }
    for (name, rs) in plugins {
        let p = age::plugin::RecipientPluginV1::new(&name, &rs, &[], callbacks.clone()).map_err(
            |_| Error::Encrypt {
                message: format!("the plugin binary age-plugin-{name} was not found on PATH"),
            },
        )?;
        boxed.push(Box::new(p));
    }
    encrypt(
        boxed.iter().map(|b| b.as_ref() as &dyn age::Recipient),
        plaintext,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_are_armored_with_one_stanza() {
        let k = VaultKey::generate();
        let v = SecretValue::from_string("sk_live_\"quoted\"\nline2 ✓".into()).unwrap();
        let ct = k.encrypt_value(&v).unwrap();
        assert!(ct.starts_with(ARMOR_BEGIN.as_bytes()));
        assert_eq!(count_stanzas(&ct).unwrap().real, 1);
        assert_eq!(
            k.decrypt_value(&ct).unwrap().expose_secret(),
            v.expose_secret()
        );
    }

    #[test]
    fn value_digests_are_keyed_and_bound_to_their_domain() {
        let (a, b) = (VaultKey::generate(), VaultKey::generate());
        let v = SecretValue::from_string("same value".into()).unwrap();
        let w = SecretValue::from_string("other value".into()).unwrap();
        assert_eq!(a.value_digest("d", &v), a.value_digest("d", &v));
        assert_ne!(a.value_digest("d", &v), a.value_digest("d", &w));
        assert_ne!(a.value_digest("d", &v), a.value_digest("e", &v));
        assert_ne!(a.value_digest("d", &v), b.value_digest("d", &v));
        // Not the plain SHA-256 of the value, nor the manifest MAC key.
        assert_ne!(a.value_digest("d", &v), digest(b"same value"));
    }

    #[test]
    fn another_vault_key_cannot_decrypt() {
        let (a, b) = (VaultKey::generate(), VaultKey::generate());
        let v = SecretValue::from_string("x".into()).unwrap();
        assert!(b.decrypt_value(&a.encrypt_value(&v).unwrap()).is_err());
    }

    #[test]
    fn two_stanza_secret_files_are_refused() {
        let k = VaultKey::generate();
        let other = age::x25519::Identity::generate().to_public();
        let ct = encrypt(
            [
                &k.public as &dyn age::Recipient,
                &other as &dyn age::Recipient,
            ]
            .into_iter(),
            b"v",
        )
        .unwrap();
        assert_eq!(count_stanzas(&ct).unwrap().real, 2);
        let err = k.decrypt_value(&ct).unwrap_err();
        assert!(matches!(err, IntegrityProblem::Malformed(m) if m.contains("2 recipient stanzas")));
    }

    #[test]
    fn identity_file_round_trips_and_mac_key_is_stable() {
        let k = VaultKey::generate();
        let mut rs = BTreeMap::new();
        let alice: RecipientKey = age::x25519::Identity::generate()
            .to_public()
            .to_string()
            .parse()
            .unwrap();
        rs.insert("alice".parse().unwrap(), alice);
        let text = k.to_identity_file(&rs);
        let k2 = VaultKey::from_identity_file(&text, Path::new("x")).unwrap();
        assert_eq!(k.public.to_string(), k2.public.to_string());
        assert_eq!(k2.listed_recipients(), &rs);
        let mut m = MacInput::new("t");
        m.field(b"a");
        assert_eq!(k.mac(&m), k2.mac(&m));
        assert!(k2.verify_mac(&m, &k.mac(&m)));
        assert!(!VaultKey::generate().verify_mac(&m, &k.mac(&m)));
    }

    #[test]
    fn mac_input_is_length_prefixed() {
        let mut a = MacInput::new("d");
        a.field(b"ab").field(b"c");
        let mut b = MacInput::new("d");
        b.field(b"a").field(b"bc");
        assert_ne!(a.bytes(), b.bytes());
    }

    #[test]
    fn aws_lc_x25519_stanzas_interoperate_with_the_age_crate() {
        for _ in 0..20 {
            let theirs = age::x25519::Identity::generate();
            let ours = X25519Identity::from_age(&theirs);
            let recipient = X25519Recipient::from_age(&theirs.to_public());
            assert_eq!(ours.public, recipient.0);
            // Ours to theirs, theirs to ours, ours to ours.
            let ct = age::encrypt(&recipient, b"one").unwrap();
            assert_eq!(age::decrypt(&theirs, &ct).unwrap(), b"one");
            let ct = age::encrypt(&theirs.to_public(), b"two").unwrap();
            assert_eq!(age::decrypt(&ours, &ct).unwrap(), b"two");
            let ct = age::encrypt(&recipient, b"three").unwrap();
            assert_eq!(age::decrypt(&ours, &ct).unwrap(), b"three");
            // Someone else's stanza is not ours.
            let other = age::x25519::Identity::generate().to_public();
            let ct = age::encrypt(&other, b"four").unwrap();
            assert!(matches!(
                age::decrypt(&ours, &ct),
                Err(age::DecryptError::NoMatchingKeys)
            ));
        }
    }

    /// Finds the CCTV test vectors (c2sp.org/CCTV/age) that the age crate
    /// ships in its source, in Cargo's registry.
    fn testkit_dir() -> Option<std::path::PathBuf> {
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
        let mut found = Vec::new();
        for registry in std::fs::read_dir(cargo_home.join("registry/src")).ok()? {
            let Ok(registry) = registry else { continue };
            for krate in std::fs::read_dir(registry.path()).ok()? {
                let Ok(krate) = krate else { continue };
                let dir = krate.path().join("tests/testdata/testkit");
                let name = krate.file_name().to_string_lossy().into_owned();
                if name.starts_with("age-0.12.") && dir.is_dir() {
                    found.push(dir);
                }
            }
        }
        found.sort();
        found.pop()
    }

    /// How a file decrypts: the plaintext's SHA-256, or where and why it
    /// failed.
    fn outcome(file: &[u8], ids: &[&dyn age::Identity]) -> String {
        let reader = std::io::BufReader::new(ArmoredReader::new(file));
        let d = match age::Decryptor::new_buffered(reader) {
            Ok(d) => d,
            Err(e) => return format!("header: {e}"),
        };
        let mut r = match d.decrypt(ids.iter().copied()) {
            Ok(r) => r,
            Err(e) => return format!("decrypt: {e}"),
        };
        let mut out = Vec::new();
        match r.read_to_end(&mut out) {
            Ok(_) => format!("ok {}", crate::manifest::hex(&digest(&out))),
            Err(e) => format!("payload: {e} after {}", crate::manifest::hex(&digest(&out))),
        }
    }

    #[test]
    fn aws_lc_x25519_passes_the_cctv_vectors_as_the_age_crate_does() {
        let Some(dir) = testkit_dir() else {
            assert!(
                std::env::var_os("COFFER_REQUIRE_TOOLS").is_none(),
                "the age crate's test vectors are not in Cargo's registry"
            );
            eprintln!("skipped: the age crate's CCTV test vectors were not found");
            return;
        };
        let mut x25519 = 0;
        let mut checked = 0;
        let mut entries: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(entry.path()).unwrap();
            let Some(split) = bytes.windows(2).position(|w| w == b"\n\n") else {
                continue;
            };
            let head = std::str::from_utf8(&bytes[..split]).unwrap();
            let body = &bytes[split + 2..];
            let field = |key: &'static str| {
                head.lines()
                    .filter_map(move |l| l.strip_prefix(key))
                    .map(str::trim)
            };
            if field("compressed:").next().is_some() || field("passphrase:").next().is_some() {
                continue;
            }
            let theirs: Vec<age::x25519::Identity> =
                field("identity:").map(|i| i.parse().unwrap()).collect();
            if theirs.is_empty() {
                continue;
            }
            let ours: Vec<X25519Identity> = theirs.iter().map(X25519Identity::from_age).collect();
            let theirs_dyn: Vec<&dyn age::Identity> =
                theirs.iter().map(|i| i as &dyn age::Identity).collect();
            let ours_dyn: Vec<&dyn age::Identity> =
                ours.iter().map(|i| i as &dyn age::Identity).collect();
            let got = outcome(body, &ours_dyn);
            assert_eq!(got, outcome(body, &theirs_dyn), "{name}");
            // The X25519 vectors are also checked against what they expect
            // (the age crate departs from a few of the others, on armor).
            if name.starts_with("x25519") {
                let expect = field("expect:").next().unwrap();
                if expect == "success" {
                    let payload = field("payload:").next().unwrap();
                    assert_eq!(got, format!("ok {payload}"), "{name}");
                } else {
                    assert!(!got.starts_with("ok "), "{name}: {got}");
                }
                x25519 += 1;
                let no_match = got.contains(&age::DecryptError::NoMatchingKeys.to_string());
                assert_eq!(expect == "no match", no_match, "{name}: {got}");
            }
            checked += 1;
        }
        assert!(
            x25519 >= 14 && checked >= 50,
            "{x25519} X25519 vectors of {checked}"
        );
    }

    #[test]
    fn binary_age_files_are_refused() {
        let k = VaultKey::generate();
        let ct = age::encrypt(&k.public, b"v").unwrap();
        assert!(k.decrypt_value(&ct).is_err());
        assert!(count_stanzas(&ct).is_err());
    }
}
