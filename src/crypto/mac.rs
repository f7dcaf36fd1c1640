//! Digests and MACs: SHA-256 of files, the length-prefixed MAC messages
//! the manifest authenticates, and the hex form they are stored in.

use sha2::{Digest as _, Sha256};

/// Returns the SHA-256 of a file's bytes.
pub fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A MAC message built from length-prefixed fields: each field is its
/// length as a big-endian u64 followed by its bytes, so no two different
/// field lists encode the same way.
#[derive(Default)]
pub(crate) struct MacInput(pub(crate) Vec<u8>);

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

    /// Appends a byte field whose bytes `fill` pushes (no temporary
    /// buffer: the length is written in front afterwards).
    pub(crate) fn field_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) -> &mut MacInput {
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 8]);
        fill(&mut self.0);
        let len = (self.0.len() - at - 8) as u64;
        self.0[at..at + 8].copy_from_slice(&len.to_be_bytes());
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

/// Encodes bytes as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = Vec::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    String::from_utf8(s).expect("hex digits are ASCII")
}

/// Appends bytes as lowercase hex.
pub(crate) fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for chunk in bytes.chunks(32) {
        let mut buf = [0u8; 64];
        for (pair, b) in buf.chunks_exact_mut(2).zip(chunk) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 15)];
        }
        out.extend_from_slice(&buf[..chunk.len() * 2]);
    }
}

/// Decodes exactly 32 bytes of lowercase hex.
pub(crate) fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 0xff,
        }
    }
    let mut out = [0u8; 32];
    let mut bad = 0;
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        let (hi, lo) = (nib(pair[0]), nib(pair[1]));
        bad |= hi | lo;
        *o = hi << 4 | (lo & 15);
    }
    (bad & 0xf0 == 0).then_some(out)
}
