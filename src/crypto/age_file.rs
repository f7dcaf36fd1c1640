//! age files: ASCII-armored encryption to a list of recipients, strict
//! decryption, and the stanza rules coffer holds every file to (one real
//! stanza per secret file, at most a few grease stanzas).

use std::cell::Cell;
use std::io::{Read, Write};

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

/// Decrypts an ASCII-armored age file with the first of `identities` that
/// opens it.
///
/// The armor is removed by the age crate. The header is then parsed once,
/// with age-core's own stanza parser, its MAC checked and the payload key
/// derived as the age spec says; a payload of one STREAM chunk (every
/// secret coffer writes, values being at most 128 KiB) is opened with one
/// ChaCha20-Poly1305 call, and a longer one is handed to the age crate's
/// decryptor. Why not the age crate for everything: its header reader
/// re-parses the header after every line it reads and its stream reader
/// zeroes a 64 KiB buffer, which together cost more per secret than the
/// rest of a read (`docs/design-notes.md`). The tests hold this reader to
/// the age crate's verdict, file for file, on the CCTV test vectors and on
/// mutated files.
pub(crate) fn decrypt(
    ciphertext: &[u8],
    identities: &[&dyn age::Identity],
) -> std::result::Result<Zeroizing<Vec<u8>>, DecryptErr> {
    if !ciphertext.starts_with(ARMOR_BEGIN.as_bytes()) {
        return Err(DecryptErr::NotArmored);
    }
    // The binary file is ciphertext only: nothing in it needs wiping.
    let mut bin = Vec::with_capacity(ciphertext.len() / 4 * 3);
    ArmoredReader::new(ciphertext)
        .read_to_end(&mut bin)
        .map_err(DecryptErr::Payload)?;
    decrypt_binary(&bin, identities)
}

/// The size of a STREAM chunk on disk: 64 KiB of plaintext and its tag.
const ENCRYPTED_CHUNK_LEN: usize = 64 * 1024 + 16;

/// Decrypts a binary (unarmored) age file: see [`decrypt`].
pub(crate) fn decrypt_binary(
    bin: &[u8],
    identities: &[&dyn age::Identity],
) -> std::result::Result<Zeroizing<Vec<u8>>, DecryptErr> {
    use age_core::secrecy::ExposeSecret;
    use hmac::Mac;

    let header = parse_header(bin)?;
    let (nonce, payload) = split_payload(bin, &header)?;
    // Before any identity is asked: a plugin (a hardware key's touch) must
    // be run once per file, and the age crate asks it itself.
    if payload.len() >= ENCRYPTED_CHUNK_LEN {
        return decrypt_with_age(bin, identities);
    }
    let file_key = identities
        .iter()
        .find_map(|i| i.unwrap_stanzas(&header.stanzas))
        .unwrap_or(Err(age::DecryptError::NoMatchingKeys))
        .map_err(DecryptErr::Age)?;
    let file_key = file_key.expose_secret();
    // The header MAC: HMAC-SHA256 under HKDF(file key, "header") of the
    // header up to and including "---".
    let mac_key = Zeroizing::new(age_core::primitives::hkdf(&[], b"header", file_key));
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(mac_key.as_ref())
        .expect("HMAC takes any key length");
    mac.update(&bin[..header.mac_input_len]);
    mac.verify_slice(&header.mac)
        .map_err(|_| DecryptErr::Age(age::DecryptError::InvalidMac))?;

    // One chunk, so the last: STREAM's nonce is the chunk counter (0, in
    // 11 bytes) and the last-chunk flag (1). An empty plaintext is allowed
    // here, as the first chunk.
    let payload_key = Zeroizing::new(age_core::primitives::hkdf(nonce, b"payload", file_key));
    let mut stream_nonce = [0u8; 12];
    stream_nonce[11] = 1;
    let Some(tag_at) = payload.len().checked_sub(16) else {
        return Err(bad_chunk());
    };
    let mut out = Zeroizing::new(payload.to_vec());
    let key = aws_lc_rs::aead::LessSafeKey::new(
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::CHACHA20_POLY1305, payload_key.as_ref())
            .expect("a 32-byte key"),
    );
    key.open_in_place(
        aws_lc_rs::aead::Nonce::assume_unique_for_key(stream_nonce),
        aws_lc_rs::aead::Aad::empty(),
        &mut out,
    )
    .map_err(|_| bad_chunk())?;
    out.truncate(tag_at);
    Ok(out)
}

/// Splits what follows the header into the payload's 16-byte nonce and its
/// chunks; a file with no chunk at all is truncated.
fn split_payload<'b>(
    bin: &'b [u8],
    header: &Header,
) -> std::result::Result<(&'b [u8; 16], &'b [u8]), DecryptErr> {
    match bin[header.len..].split_first_chunk::<16>() {
        Some((nonce, payload)) if !payload.is_empty() => Ok((nonce, payload)),
        _ => Err(DecryptErr::Payload(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "age file is truncated",
        ))),
    }
}

/// Whether `len` bytes of chunks can be a STREAM payload, as far as their
/// length tells: each chunk holds at least its 16-byte tag, every chunk
/// but the last is full, and only a first chunk may be empty.
fn chunks_len_sound(len: usize) -> bool {
    match (len / ENCRYPTED_CHUNK_LEN, len % ENCRYPTED_CHUNK_LEN) {
        (0, last) => last >= 16,
        (_, 0) => true,
        (_, last) => last > 16,
    }
}

fn bad_chunk() -> DecryptErr {
    DecryptErr::Payload(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "decryption error",
    ))
}

/// The age crate's own decryptor, for payloads of more than one chunk.
fn decrypt_with_age(
    bin: &[u8],
    identities: &[&dyn age::Identity],
) -> std::result::Result<Zeroizing<Vec<u8>>, DecryptErr> {
    let d = age::Decryptor::new_buffered(bin).map_err(|e| match e {
        age::DecryptError::Io(io) => DecryptErr::Payload(io),
        e => DecryptErr::Age(e),
    })?;
    let mut r = d
        .decrypt(identities.iter().copied())
        .map_err(DecryptErr::Age)?;
    let mut out = Zeroizing::new(Vec::new());
    r.read_to_end(&mut out).map_err(DecryptErr::Payload)?;
    Ok(out)
}

/// A parsed age v1 header.
struct Header {
    stanzas: Vec<age_core::format::Stanza>,
    mac: [u8; 32],
    /// The length of the header up to and including `---`: what its MAC
    /// covers.
    mac_input_len: usize,
    /// The header's whole length, through the newline after the MAC.
    len: usize,
}

/// Parses an age v1 header from the start of a whole binary file, in one
/// pass. age-core's parsers are streaming ones: on a prefix of a file they
/// give the same answer as on the whole file once they give one at all,
/// which is what lets the age crate feed them a line at a time and this
/// reader the whole file; "incomplete" here means the file ends inside
/// its header.
fn parse_header(bin: &[u8]) -> std::result::Result<Header, DecryptErr> {
    const MAGIC: &[u8] = b"age-encryption.org/";
    const V1: &[u8] = b"age-encryption.org/v1\n";
    let incomplete = || {
        DecryptErr::Payload(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "Incomplete header",
        ))
    };
    let invalid = || DecryptErr::Age(age::DecryptError::InvalidHeader);
    let Some(mut rest) = bin.strip_prefix(V1) else {
        return Err(if V1.starts_with(bin) {
            incomplete()
        } else if bin.starts_with(MAGIC) {
            // Another version of the format ("age-encryption.org/v2"…).
            DecryptErr::Age(age::DecryptError::UnknownFormat)
        } else {
            invalid()
        });
    };
    let mut stanzas = Vec::new();
    loop {
        match age_core::format::read::legacy_age_stanza(rest) {
            Ok((r, s)) => {
                stanzas.push(age_core::format::Stanza::from(s));
                rest = r;
            }
            Err(e) if e.is_incomplete() => return Err(incomplete()),
            Err(_) => break,
        }
    }
    if stanzas.is_empty() {
        return Err(invalid());
    }
    let mac_input_len = bin.len() - rest.len() + 3;
    let Some(line) = rest.strip_prefix(b"--- ") else {
        return Err(if b"--- ".starts_with(rest) {
            incomplete()
        } else {
            invalid()
        });
    };
    // 43 characters of canonical unpadded base64, then a newline.
    let (Some(encoded), Some(newline)) = (line.get(..43), line.get(43)) else {
        return Err(incomplete());
    };
    let mut mac = [0u8; 33];
    use base64::Engine as _;
    match base64::engine::general_purpose::STANDARD_NO_PAD.decode_slice(encoded, &mut mac) {
        Ok(32) => {}
        _ => return Err(invalid()),
    }
    if *newline != b'\n' {
        return Err(invalid());
    }
    // One scrypt stanza may only ever be alone (age refuses the header).
    if stanzas.len() > 1 && stanzas.iter().any(|s| s.tag == "scrypt") {
        return Err(invalid());
    }
    Ok(Header {
        stanzas,
        mac: mac[..32].try_into().expect("32 bytes"),
        mac_input_len,
        len: bin.len() - line.len() + 44,
    })
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
    let mut bin = Vec::with_capacity(ciphertext.len() / 4 * 3);
    ArmoredReader::new(ciphertext)
        .read_to_end(&mut bin)
        .map_err(|e| e.to_string())?;
    let header = parse_header(&bin).map_err(|e| e.to_string())?;
    // A file cut short is unsound even where its header is whole (age
    // refuses it before any key is tried).
    let (_, chunks) = split_payload(&bin, &header).map_err(|e| e.to_string())?;
    if !chunks_len_sound(chunks.len()) {
        return Err("age file is truncated".into());
    }
    let grease = header.stanzas.iter().filter(|s| is_grease(s)).count();
    Ok(StanzaCount {
        real: header.stanzas.len() - grease,
        grease,
    })
}

/// Wraps the vault identity to insist on a single (non-grease) stanza: a
/// secret file with more than one was not written by coffer.
pub(crate) struct OneStanza<'a> {
    pub(crate) inner: &'a X25519Identity,
    /// How many real stanzas the header had, once it was asked.
    pub(crate) stanzas: Cell<Option<usize>>,
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
        self.stanzas.set(Some(stanzas.len() - grease));
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
