//! Tests of the crypto part: round trips, stanza rules, the derived keys,
//! and the aws-lc-rs X25519 stanzas against the age crate.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::crypto::age_file::*;
use crate::crypto::mac::*;
use crate::crypto::recipient::RecipientKey;
use crate::crypto::vault_key::*;
use crate::crypto::x25519::*;
use crate::error::IntegrityProblem;
use crate::secret::SecretValue;

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
            k.public() as &dyn age::Recipient,
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
    assert_eq!(k.public().to_string(), k2.public().to_string());
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

/// The CCTV test vectors, or `None` with a note that the test is skipped
/// (a failure where `COFFER_REQUIRE_TOOLS` is set: CI must run it).
pub(crate) fn testkit_dir_or_skip() -> Option<std::path::PathBuf> {
    let dir = testkit_dir();
    if dir.is_none() {
        assert!(
            std::env::var_os("COFFER_REQUIRE_TOOLS").is_none(),
            "the age crate's test vectors are not in Cargo's registry"
        );
        eprintln!("skipped: the age crate's CCTV test vectors were not found");
    }
    dir
}

/// How a file decrypts: the plaintext's SHA-256, or where and why it
/// failed.
fn outcome(file: &[u8], ids: &[&dyn age::Identity]) -> String {
    let reader = std::io::BufReader::new(age::armor::ArmoredReader::new(file));
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
        Ok(_) => format!("ok {}", crate::crypto::mac::hex(&digest(&out))),
        Err(e) => format!(
            "payload: {e} after {}",
            crate::crypto::mac::hex(&digest(&out))
        ),
    }
}

#[test]
fn aws_lc_x25519_passes_the_cctv_vectors_as_the_age_crate_does() {
    let Some(dir) = testkit_dir_or_skip() else {
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
    let ct = age::encrypt(k.public(), b"v").unwrap();
    assert!(k.decrypt_value(&ct).is_err());
    assert!(count_stanzas(&ct).is_err());
}

#[test]
fn a_keyring_keeps_its_epochs_newest_first_and_opens_each_with_its_own_key() {
    let one = VaultKey::generate();
    let two = one.successor();
    let three = two.successor();
    assert_eq!(
        (one.epoch(), two.epoch(), three.epoch()),
        (1, 2, 3),
        "epochs count the keys"
    );
    let v = SecretValue::from_string("epoch-one value".into()).unwrap();
    let ct1 = one.encrypt_value(&v).unwrap();
    let ct3 = three.encrypt_value(&v).unwrap();
    // Round trip through the identity file: order and keys are kept.
    let text = three.to_identity_file(&BTreeMap::new());
    let back = VaultKey::from_identity_file(&text, Path::new("x")).unwrap();
    assert_eq!(back.public().to_string(), three.public().to_string());
    let epochs: Vec<(u32, String)> = back.epochs().map(|(e, p)| (e, p.to_string())).collect();
    assert_eq!(epochs[2], (1, one.public().to_string()));
    assert!(back.contains_public(&one.public().to_string()));
    assert!(!one.contains_public(&three.public().to_string()));
    // One key per read: the entry's epoch picks it.
    assert_eq!(
        back.decrypt_value_at(1, &ct1).unwrap().expose_secret(),
        "epoch-one value"
    );
    assert!(back.decrypt_value_at(3, &ct1).is_err());
    assert!(back.decrypt_value_at(4, &ct1).is_err());
    assert!(back.decrypt_value_at(0, &ct1).is_err());
    assert_eq!(
        back.decrypt_value_any(&ct1).unwrap().expose_secret(),
        "epoch-one value"
    );
    // The old key does not open what the new one encrypted.
    assert!(one.decrypt_value_any(&ct3).is_err());
    // Each epoch's MAC key differs.
    let mut m = MacInput::new("t");
    m.field(b"a");
    assert_ne!(one.mac(&m), three.mac(&m));
}

#[test]
fn a_keyring_with_a_repeated_key_or_no_key_is_refused() {
    let one = VaultKey::generate();
    let text = one.to_identity_file(&BTreeMap::new());
    let key_line = text.lines().last().unwrap().to_owned();
    let doubled = format!("{}{key_line}\n", text.as_str());
    let err = VaultKey::from_identity_file(&doubled, Path::new("x")).unwrap_err();
    assert!(err.to_string().contains("the same key twice"), "{err}");
    let err = VaultKey::from_identity_file("# nothing\n", Path::new("x")).unwrap_err();
    assert!(err.to_string().contains("holds no identity"), "{err}");
}

#[test]
fn a_secret_file_cut_short_says_so_not_that_it_has_0_stanzas() {
    let k = VaultKey::generate();
    let v = SecretValue::from_string("x".into()).unwrap();
    let ct = k.encrypt_value(&v).unwrap();
    let mut bin = Vec::new();
    age::armor::ArmoredReader::new(&ct[..])
        .read_to_end(&mut bin)
        .unwrap();
    // Cut after the nonce, and before it: the header is whole.
    for cut in [bin.len() - (1 + 16), bin.len() - (1 + 16 + 16)] {
        let mut armored = Vec::new();
        {
            use std::io::Write;
            let mut w = age::armor::ArmoredWriter::wrap_output(
                &mut armored,
                age::armor::Format::AsciiArmor,
            )
            .unwrap();
            w.write_all(&bin[..cut]).unwrap();
            w.finish().unwrap();
        }
        let err = k.decrypt_value(&armored).unwrap_err();
        assert!(
            matches!(&err, IntegrityProblem::Malformed(m) if m.contains("truncated")),
            "cut at {cut}: {err:?}"
        );
    }
}
