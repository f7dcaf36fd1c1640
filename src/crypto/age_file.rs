//! age files: ASCII-armored encryption to a list of recipients, strict
//! decryption, and the stanza rules coffer holds every file to (one real
//! stanza per secret file, at most a few grease stanzas).

use std::cell::Cell;
use std::io::{Read, Write};
use std::iter;

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use zeroize::Zeroizing;

use crate::crypto::x25519::{X25519Identity, X25519Recipient};
use crate::error::{Error, Result};

/// The first line of every ASCII-armored age file.
pub const ARMOR_BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";

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
pub(crate) struct OneStanza<'a> {
    pub(crate) inner: &'a X25519Identity,
    pub(crate) stanzas: Cell<usize>,
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

/// Encrypts `plaintext` to a list of recipient keys, ASCII-armored. Plugin
/// recipients are grouped by plugin, and each plugin binary is run once.
pub(crate) fn encrypt_to_keys<C: age::Callbacks>(
    keys: &[&crate::crypto::recipient::RecipientKey],
    plaintext: &[u8],
    callbacks: C,
) -> Result<Vec<u8>> {
    use crate::crypto::recipient::RecipientKey;
    // The published demo key opens the sample store, where it is the only
    // recipient. Beside anyone else it would hand their secrets to whoever
    // reads coffer's repository, however the key got into the list (a
    // hand-edited coffer.toml approved, a rekey): refused here, where every
    // vault key is encrypted.
    if keys.iter().any(|k| k.is_published_demo()) && !keys.iter().all(|k| k.is_published_demo()) {
        return Err(Error::Encrypt {
            message: "a recipient is coffer's published demo key, which anyone can decrypt; it may only ever be a vault's sole recipient (the sample store)".into(),
        });
    }
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

/// Returns the length of the plaintext of an armored age file, computed
/// from its size alone (no key needed: sizes are public anyway), or `None`
/// if it is not a well-formed armored age file.
pub fn plaintext_len(armored: &[u8]) -> Option<usize> {
    if !armored.starts_with(ARMOR_BEGIN.as_bytes()) {
        return None;
    }
    let mut bin = Vec::with_capacity(armored.len());
    ArmoredReader::new(armored).read_to_end(&mut bin).ok()?;
    // The header ends with the line "--- <mac>"; the payload follows.
    let mac_line = bin.windows(5).position(|w| w == b"\n--- ")? + 1;
    let header_end = mac_line + bin[mac_line..].iter().position(|&b| b == b'\n')? + 1;
    // Payload: a 16-byte nonce, then chunks of up to 64 KiB, each with a
    // 16-byte tag; only an empty plaintext has an empty chunk.
    const CHUNK: usize = 64 * 1024 + 16;
    let body = (bin.len() - header_end).checked_sub(16)?;
    if body < 16 {
        return None;
    }
    Some(body - 16 * body.div_ceil(CHUNK))
}

/// Encrypts `plaintext` to the X25519 recipient `public` (a vault's public
/// key, already validated), ASCII-armored: what a contribution is written
/// with by someone who cannot open the vault.
pub fn encrypt_to_recipient(public: &str, plaintext: &[u8]) -> crate::error::Result<Vec<u8>> {
    let recipient: age::x25519::Recipient =
        public.parse().map_err(|_| crate::error::Error::Encrypt {
            message: "the vault's public key is not an X25519 recipient".into(),
        })?;
    let fast = X25519Recipient::from_age(&recipient);
    encrypt(std::iter::once(&fast as &dyn age::Recipient), plaintext)
}
