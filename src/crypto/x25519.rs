//! X25519 stanzas through aws-lc-rs.
//!
//! Every bulk operation costs one X25519 agreement per secret, and the age
//! crate's (x25519-dalek) takes about twice as long as aws-lc-rs's here; it
//! also recomputes the identity's public key for every stanza. These two
//! types implement the age X25519 recipient stanza exactly as the age spec
//! (c2sp.org/age) and the age crate do, with aws-lc-rs for the agreement
//! and for opening the wrapped file key (ChaCha20-Poly1305), and age-core's
//! own HKDF and wrapping. The tests check them against the age crate and its
//! CCTV test vectors.

use age::secrecy::ExposeSecret;
use zeroize::{Zeroize, Zeroizing};

/// The stanza tag and HKDF label of the age spec's X25519 recipient type.
const X25519_TAG: &str = "X25519";
const X25519_LABEL: &[u8] = b"age-encryption.org/v1/X25519";

/// An age X25519 identity whose agreements run through aws-lc-rs, with its
/// public key computed once.
pub(crate) struct X25519Identity {
    secret: aws_lc_rs::agreement::PrivateKey,
    pub(crate) public: [u8; 32],
}

impl X25519Identity {
    /// Builds the identity from its 32 raw bytes (the Bech32 data of an
    /// `AGE-SECRET-KEY-1…` string).
    pub(crate) fn from_raw(raw: &[u8; 32]) -> X25519Identity {
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
pub(crate) fn raw_identity(identity: &age::x25519::Identity) -> Zeroizing<[u8; 32]> {
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
        let mut wrapped = Zeroizing::new(body);
        let plain = open_file_key(&key, &mut wrapped)?;
        Some(Ok(age_core::format::FileKey::init_with_mut(|k| {
            k.copy_from_slice(plain)
        })))
    }
}

/// Opens a wrapped file key (ChaCha20-Poly1305 under `key`, the all-zero
/// nonce, as every age recipient type wraps it) in place, through aws-lc-rs:
/// for a 32-byte message its AEAD costs a fraction of the RustCrypto one's
/// set-up. `None` if it does not open (not this identity's stanza).
fn open_file_key<'b>(key: &[u8; 32], wrapped: &'b mut [u8; 32]) -> Option<&'b [u8]> {
    use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("a 32-byte key"));
    let plain = key
        .open_in_place(Nonce::assume_unique_for_key([0; 12]), Aad::empty(), wrapped)
        .ok()?;
    (plain.len() == age_core::format::FILE_KEY_BYTES).then_some(&*plain)
}

/// An age X25519 recipient whose agreements run through aws-lc-rs.
pub(crate) struct X25519Recipient(pub(crate) [u8; 32]);

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

/// Whether `s` is an age X25519 recipient (`age1…`) in its canonical,
/// lowercase form: a vault's public key as manifests and trust records
/// hold it.
pub fn is_canonical_recipient(s: &str) -> bool {
    s.parse::<age::x25519::Recipient>().is_ok() && s.to_lowercase() == s
}
