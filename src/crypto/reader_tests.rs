//! coffer's age reader (`age_file::decrypt`) held to the age crate's
//! verdict: the same files open, to the same plaintext, and the same files
//! are refused, on the CCTV test vectors, at every chunk boundary, and on
//! every single-byte change, truncation and deletion of a small file, then
//! on random changes of armored ones.

use std::cell::Cell;
use std::io::Read;

use proptest::prelude::*;

use crate::crypto::age_file::*;
use crate::crypto::tests::testkit_dir_or_skip;
use crate::crypto::x25519::*;

/// What the age crate makes of a file: its plaintext, or `None`. Armored
/// input is read through age's armor reader, as coffer's reader always
/// did before it parsed headers itself.
fn age_verdict(file: &[u8], ids: &[&dyn age::Identity]) -> Option<Vec<u8>> {
    let read = |r: &mut dyn std::io::BufRead| -> Option<Vec<u8>> {
        let d = age::Decryptor::new_buffered(r).ok()?;
        let mut out = Vec::new();
        d.decrypt(ids.iter().copied())
            .ok()?
            .read_to_end(&mut out)
            .ok()?;
        Some(out)
    };
    if file.starts_with(ARMOR_BEGIN.as_bytes()) {
        read(&mut std::io::BufReader::new(
            age::armor::ArmoredReader::new(file),
        ))
    } else {
        read(&mut &file[..])
    }
}

/// What coffer's reader makes of it.
fn our_verdict(file: &[u8], ids: &[&dyn age::Identity]) -> Option<Vec<u8>> {
    let out = if file.starts_with(ARMOR_BEGIN.as_bytes()) {
        decrypt(file, ids)
    } else {
        decrypt_binary(file, ids)
    };
    out.ok().map(|p| p.to_vec())
}

fn same_verdict(file: &[u8], ids: &[&dyn age::Identity], what: &str) {
    assert_eq!(our_verdict(file, ids), age_verdict(file, ids), "{what}");
}

/// A key, and a file of `len` bytes encrypted to it (binary, and armored).
fn sample(len: usize) -> (age::x25519::Identity, Vec<u8>, Vec<u8>) {
    let id = age::x25519::Identity::generate();
    let plain: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let armored = encrypt(
        std::iter::once(&id.to_public() as &dyn age::Recipient),
        &plain,
    )
    .unwrap();
    let mut binary = Vec::new();
    age::armor::ArmoredReader::new(&armored[..])
        .read_to_end(&mut binary)
        .unwrap();
    (id, binary, armored)
}

#[test]
fn the_reader_agrees_with_the_age_crate_on_every_cctv_vector() {
    let Some(dir) = testkit_dir_or_skip() else {
        return;
    };
    let (mut opened, mut refused) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path()).unwrap();
        let Some(split) = bytes.windows(2).position(|w| w == b"\n\n") else {
            continue;
        };
        let head = std::str::from_utf8(&bytes[..split]).unwrap();
        if head.contains("compressed:") || head.contains("passphrase:") {
            continue;
        }
        let ids: Vec<age::x25519::Identity> = head
            .lines()
            .filter_map(|l| l.strip_prefix("identity:"))
            .map(|i| i.trim().parse().unwrap())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let ours: Vec<X25519Identity> = ids.iter().map(X25519Identity::from_age).collect();
        let body = &bytes[split + 2..];
        // With the age crate's identities and with coffer's own.
        let theirs: Vec<&dyn age::Identity> = ids.iter().map(|i| i as _).collect();
        let fast: Vec<&dyn age::Identity> = ours.iter().map(|i| i as _).collect();
        same_verdict(body, &theirs, &name);
        same_verdict(body, &fast, &name);
        match our_verdict(body, &fast) {
            Some(_) => opened += 1,
            None => refused += 1,
        }
    }
    assert!(
        opened >= 10 && refused >= 40,
        "{opened} opened, {refused} refused"
    );
}

#[test]
fn the_reader_agrees_with_the_age_crate_at_every_chunk_boundary() {
    const CHUNK: usize = 64 * 1024;
    for len in [
        0,
        1,
        40,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK,
        2 * CHUNK + 5,
    ] {
        let (id, binary, armored) = sample(len);
        let ids = [&id as &dyn age::Identity];
        let opened = our_verdict(&armored, &ids).expect("a sound file opens");
        assert_eq!(opened.len(), len);
        assert_eq!(count_stanzas(&armored).map(|c| c.real), Ok(1));
        same_verdict(&armored, &ids, &format!("{len} bytes, armored"));
        same_verdict(&binary, &ids, &format!("{len} bytes"));
        // Cut at, and next to, each chunk's end, and one byte short.
        let header = binary.len() - 16 - len - 16 * len.div_ceil(CHUNK).max(1);
        let mut cuts = vec![binary.len() - 1, header, header + 16, header + 17];
        for chunk in 1..=len / CHUNK {
            let end = header + 16 + chunk * (CHUNK + 16);
            cuts.extend([end - 1, end, end + 1]);
        }
        for cut in cuts.into_iter().filter(|&c| c < binary.len()) {
            same_verdict(&binary[..cut], &ids, &format!("{len} bytes cut at {cut}"));
        }
    }
}

#[test]
fn the_reader_agrees_with_the_age_crate_on_every_change_to_a_small_file() {
    let (id, binary, _) = sample(40);
    let ids = [&id as &dyn age::Identity];
    for at in 0..binary.len() {
        for flip in [0x01, 0x20, 0x80] {
            let mut changed = binary.clone();
            changed[at] ^= flip;
            same_verdict(&changed, &ids, &format!("byte {at} xor {flip:#x}"));
        }
        let mut newline = binary.clone();
        newline[at] = b'\n';
        same_verdict(&newline, &ids, &format!("byte {at} made a newline"));
        let mut deleted = binary.clone();
        deleted.remove(at);
        same_verdict(&deleted, &ids, &format!("byte {at} deleted"));
        same_verdict(&binary[..at], &ids, &format!("cut at {at}"));
    }
    let mut longer = binary.clone();
    longer.push(0);
    same_verdict(&longer, &ids, "a byte appended");
}

proptest! {
    #![proptest_config(crate::test_seed::config())]
    #[test]
    fn the_reader_agrees_with_the_age_crate_on_changed_armored_files(
        len in 0usize..200,
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
    ) {
        let (id, _, armored) = sample(len);
        let ids = [&id as &dyn age::Identity];
        let mut file = armored.clone();
        for (at, byte, kind) in edits {
            let at = at.index(file.len());
            match kind {
                0 => file[at] = byte,
                1 => { file.remove(at); }
                _ => file.insert(at, byte),
            }
        }
        prop_assert_eq!(our_verdict(&file, &ids), age_verdict(&file, &ids));
    }
}

/// Armors a binary age file as coffer writes them.
fn armor(binary: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::new();
    let mut w =
        age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor).unwrap();
    w.write_all(binary).unwrap();
    w.finish().unwrap();
    out
}

#[test]
fn count_stanzas_refuses_a_file_whose_payload_was_cut_off_as_age_does() {
    const CHUNK: usize = 64 * 1024;
    for len in [0, 40, CHUNK, CHUNK + 40] {
        let (id, binary, armored) = sample(len);
        let ids = [&id as &dyn age::Identity];
        assert_eq!(count_stanzas(&armored).unwrap().real, 1);
        let header = binary.len() - 16 - len - 16 * len.div_ceil(CHUNK).max(1);
        // No nonce, half a nonce, a nonce and no chunk, a chunk without a
        // whole tag, and past a full chunk an empty last chunk or one
        // without a whole tag. (A cut at a chunk's end needs the key to
        // tell.)
        let mut cuts = vec![header, header + 8, header + 16, header + 16 + 15];
        if len > CHUNK {
            cuts.extend([header + 16 + CHUNK + 16 + 16, header + 16 + CHUNK + 16 + 15]);
        }
        for cut in cuts {
            assert_eq!(
                age_verdict(&binary[..cut], &ids),
                None,
                "{len} cut at {cut}"
            );
            assert!(
                count_stanzas(&armor(&binary[..cut])).is_err(),
                "{len} bytes cut at {cut} counted as a sound file"
            );
        }
    }
}

/// An identity that counts how often it is asked to open a header, as a
/// plugin (a hardware key's touch) would be run.
struct Asked<'a>(&'a age::x25519::Identity, Cell<usize>);

impl age::Identity for Asked<'_> {
    fn unwrap_stanza(
        &self,
        stanza: &age_core::format::Stanza,
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.0.unwrap_stanza(stanza)
    }
    fn unwrap_stanzas(
        &self,
        stanzas: &[age_core::format::Stanza],
    ) -> Option<Result<age_core::format::FileKey, age::DecryptError>> {
        self.1.set(self.1.get() + 1);
        self.0.unwrap_stanzas(stanzas)
    }
}

#[test]
fn a_file_over_one_chunk_asks_each_identity_once_not_twice() {
    for len in [40, 64 * 1024, 3 * 64 * 1024] {
        let (id, _, armored) = sample(len);
        let asked = Asked(&id, Cell::new(0));
        let plain = decrypt(&armored, &[&asked as &dyn age::Identity]).unwrap();
        assert_eq!(plain.len(), len);
        assert_eq!(
            asked.1.get(),
            1,
            "{len} bytes: a hardware key would be touched twice"
        );
    }
}

/// A binary age file built by hand: `extra` (raw header lines, stanzas or
/// anything else) after a real X25519 stanza, a MAC that covers them, and
/// one chunk of `plain` followed by `trailer`.
fn hand_built(id: &age::x25519::Identity, extra: &str, plain: &[u8], trailer: &[u8]) -> Vec<u8> {
    use age::Recipient as _;
    use age_core::secrecy::ExposeSecret;
    use hmac::Mac;
    let file_key = age_core::format::FileKey::new(Box::new([7u8; 16]));
    let (stanzas, _) = id.to_public().wrap_file_key(&file_key).unwrap();
    let mut head = b"age-encryption.org/v1\n".to_vec();
    for s in &stanzas {
        head.extend_from_slice(format!("-> {} {}\n", s.tag, s.args.join(" ")).as_bytes());
        use base64::Engine as _;
        head.extend_from_slice(
            base64::engine::general_purpose::STANDARD_NO_PAD
                .encode(&s.body)
                .as_bytes(),
        );
        head.push(b'\n');
    }
    head.extend_from_slice(extra.as_bytes());
    head.extend_from_slice(b"---");
    let fk = file_key.expose_secret();
    let mac_key = age_core::primitives::hkdf(&[], b"header", fk);
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&mac_key).unwrap();
    mac.update(&head);
    use base64::Engine as _;
    let tag = base64::engine::general_purpose::STANDARD_NO_PAD.encode(mac.finalize().into_bytes());
    head.extend_from_slice(format!(" {tag}\n").as_bytes());
    let nonce = [5u8; 16];
    head.extend_from_slice(&nonce);
    let payload_key = age_core::primitives::hkdf(&nonce, b"payload", fk);
    let key = aws_lc_rs::aead::LessSafeKey::new(
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::CHACHA20_POLY1305, &payload_key)
            .unwrap(),
    );
    let mut chunk = plain.to_vec();
    let mut n = [0u8; 12];
    n[11] = 1;
    key.seal_in_place_append_tag(
        aws_lc_rs::aead::Nonce::assume_unique_for_key(n),
        aws_lc_rs::aead::Aad::empty(),
        &mut chunk,
    )
    .unwrap();
    head.extend_from_slice(&chunk);
    head.extend_from_slice(trailer);
    head
}

#[test]
fn the_reader_agrees_with_the_age_crate_on_hand_built_headers() {
    let id = age::x25519::Identity::generate();
    let ids = [&id as &dyn age::Identity];
    let b64 = |n: usize| -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(vec![0xa5u8; n])
    };
    let wrap = |s: String| -> String {
        let mut out = String::new();
        for c in s.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(c).unwrap());
            out.push('\n');
        }
        out
    };
    let mut extras = vec![
        String::new(),
        "-> x-grease\n\n".into(),
        "-> x-grease a b c\n".into(),
        "-> x-grease\n".into(),
        "-> scrypt AAAAAAAAAAAAAAAAAAAAAA 10\n".to_owned() + &b64(32) + "\n",
        "-> x-grease\r\n\n".into(),
        "-> x-grease \n\n".into(),
        "->  x-grease\n\n".into(),
        "-> x-grease\nAAAA=\n".into(),
        "-> x-grease\nAB\n".into(),
        "-> x-grease\nAQ\n".into(),
        "-> x-grease\nA\n".into(),
        "-> \n\n".into(),
        "--> x\n\n".into(),
        "-> x-grease\n".to_owned() + &b64(64) + "\n",
    ];
    for n in [1, 2, 3, 47, 48, 49, 95, 96] {
        // Canonical (a short last line) and, where 0 mod 64, legacy.
        extras.push(format!("-> x-grease {n}\n{}", wrap(b64(n))));
        let body = wrap(b64(n));
        if body.ends_with("\n") && b64(n).len() % 64 == 0 {
            extras.push(format!("-> x-grease {n}\n{body}\n"));
        }
        extras.push(format!("-> x-grease {n}\n{}", b64(n) + "\n"));
    }
    let (mut checked, mut opened) = (0, 0);
    for extra in &extras {
        for (plain, trailer) in [
            (&b"value"[..], &b""[..]),
            (b"", b""),
            (b"value", b"\n"),
            (b"value", b"x"),
        ] {
            let file = hand_built(&id, extra, plain, trailer);
            same_verdict(&file, &ids, &format!("{extra:?} {plain:?} {trailer:?}"));
            same_verdict(
                &armor(&file),
                &ids,
                &format!("armored {extra:?} {trailer:?}"),
            );
            checked += 1;
            opened += usize::from(our_verdict(&file, &ids).is_some());
        }
    }
    // A sound hand-built file opens: the builder is right.
    assert_eq!(
        our_verdict(&hand_built(&id, "", b"v", b""), &ids).as_deref(),
        Some(&b"v"[..])
    );
    // Both open some (grease of every shape, legacy bodies) and refuse
    // others (a bad body, a scrypt stanza beside X25519, trailing bytes).
    assert!(
        checked > 40 && opened > 10 && opened < checked,
        "{opened} of {checked}"
    );
}

#[test]
fn the_reader_agrees_with_the_age_crate_on_a_mac_with_stray_bits() {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let id = age::x25519::Identity::generate();
    let ids = [&id as &dyn age::Identity];
    let file = hand_built(&id, "", b"value", b"");
    let at = file.windows(4).position(|w| w == b"--- ").unwrap() + 4 + 42;
    let index = ALPHABET.iter().position(|&c| c == file[at]).unwrap();
    // The last of 43 characters carries 2 bits past the MAC's 256: each
    // setting of them decodes to the same MAC, and only zero is canonical.
    for stray in 1..4 {
        let mut changed = file.clone();
        changed[at] = ALPHABET[(index & !3) | stray];
        same_verdict(&changed, &ids, &format!("stray bits {stray}"));
        assert_eq!(our_verdict(&changed, &ids), None, "stray bits {stray}");
    }
}
