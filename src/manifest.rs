//! The vault manifest, `vault.toml`: what a vault holds, who can open it,
//! and the MACs that bind it all to the vault key.
//!
//! The manifest is written only by coffer and is deterministic: the same
//! state always serialises to the same bytes, entries sorted by name, one
//! table per secret, and no field that changes on every write. That is what
//! lets git merge two branches that touch different secrets. Parsing is
//! strict (unknown fields, non-canonical times and bad names are errors),
//! because a manifest is attacker-writable input. The normative description
//! is `docs/format.md`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::Deserialize;

use crate::crypto::{MacInput, VaultKey};
use crate::error::{Error, Result};
use crate::name::{RecipientName, SecretName, VaultName};
use crate::recipient::RecipientKey;
use crate::time::Time;

/// The manifest format this version of coffer reads and writes.
pub const FORMAT_VERSION: i64 = 1;

/// The largest manifest coffer will read, in bytes (about 400,000 secrets).
pub const MAX_MANIFEST_LEN: u64 = 64 << 20;

/// A secret that must be rotated: someone who could read it was removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationDue {
    /// When the first such recipient was removed.
    pub since: Time,
    /// Who was removed, sorted.
    pub removed: Vec<RecipientName>,
}

/// One secret's manifest entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// When the secret was created.
    pub created: Time,
    /// When its value last changed.
    pub updated: Time,
    /// SHA-256 of its `.age` file.
    pub digest: [u8; 32],
    /// HMAC-SHA256 over the entry (see [`entry_mac_input`]); `None` for a
    /// write-only contribution that no recipient has accepted yet.
    pub mac: Option<[u8; 32]>,
    /// Set when a recipient who could read it was removed.
    pub rotation: Option<RotationDue>,
}

/// A parsed `vault.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// When the vault was created.
    pub created: Time,
    /// The vault key's public half: every secret is encrypted to it.
    pub public_key: String,
    /// HMAC-SHA256 over the vault name, public key, creation time and
    /// recipients (see [`recipients_mac_input`]).
    pub recipients_mac: Option<[u8; 32]>,
    /// Who can open the vault: the names and keys `vault-key.age` is
    /// encrypted to.
    pub recipients: BTreeMap<RecipientName, RecipientKey>,
    /// The secrets, by name.
    pub secrets: BTreeMap<SecretName, Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawManifest {
    format: i64,
    created: String,
    public_key: String,
    recipients_mac: Option<String>,
    #[serde(default)]
    recipients: BTreeMap<String, String>,
    #[serde(default)]
    secrets: BTreeMap<String, RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawEntry {
    created: String,
    updated: String,
    digest: String,
    mac: Option<String>,
    rotate_since: Option<String>,
    rotate_removed: Option<Vec<String>>,
}

/// Encodes bytes as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Decodes exactly 32 bytes of lowercase hex.
pub(crate) fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let nib = |c: u8| match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        };
        out[i] = nib(pair[0])? << 4 | nib(pair[1])?;
    }
    Some(out)
}

impl Manifest {
    /// Returns a manifest for a new, empty vault.
    pub fn new(
        created: Time,
        public_key: String,
        recipients: BTreeMap<RecipientName, RecipientKey>,
    ) -> Manifest {
        Manifest {
            created,
            public_key,
            recipients_mac: None,
            recipients,
            secrets: BTreeMap::new(),
        }
    }

    /// Parses and validates a manifest. `path` is for error messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Manifest> {
        let err = |message: String| Error::Manifest {
            path: path.to_owned(),
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| err("it is not UTF-8 text".into()))?;
        let table: toml::Table = toml::from_str(text).map_err(|e| err(toml_message(&e)))?;
        match table.get("format") {
            Some(toml::Value::Integer(FORMAT_VERSION)) => {}
            Some(toml::Value::Integer(v)) => {
                return Err(err(format!(
                    "format {v} is not supported (this coffer reads format {FORMAT_VERSION}); a newer coffer may read it"
                )));
            }
            Some(_) => return Err(err("`format` must be an integer".into())),
            None => {
                return Err(err(
                    "it has no `format` field; is it a coffer manifest?".into()
                ));
            }
        }
        let raw: RawManifest = table.try_into().map_err(|e| err(toml_message(&e)))?;
        debug_assert_eq!(raw.format, FORMAT_VERSION);

        let time = |what: &str, s: &str| s.parse::<Time>().map_err(|e| err(format!("{what}: {e}")));
        let created = time("created", &raw.created)?;
        if raw.public_key.parse::<age::x25519::Recipient>().is_err()
            || raw.public_key.to_lowercase() != raw.public_key
        {
            return Err(err("public-key is not an age X25519 recipient".into()));
        }
        let recipients_mac = match &raw.recipients_mac {
            Some(m) => {
                Some(unhex32(m).ok_or_else(|| err("recipients-mac is not 64 hex digits".into()))?)
            }
            None => None,
        };
        let mut recipients = BTreeMap::new();
        for (name, key) in raw.recipients {
            let n: RecipientName = name
                .parse()
                .map_err(|e: Error| err(format!("[recipients]: {e}")))?;
            let k: RecipientKey = key
                .parse()
                .map_err(|e: Error| err(format!("recipient {name:?}: {e}")))?;
            if k.to_string() != key {
                return Err(err(format!(
                    "recipient {name:?}: key is not in canonical form"
                )));
            }
            recipients.insert(n, k);
        }
        if recipients.is_empty() {
            return Err(err(
                "it lists no recipients: nobody could open the vault".into()
            ));
        }
        let mut secrets = BTreeMap::new();
        for (name, e) in raw.secrets {
            let n: SecretName = name
                .parse()
                .map_err(|e: Error| err(format!("[secrets]: {e}")))?;
            let at = |what: &str| format!("secret {name:?}: {what}");
            let digest = e
                .digest
                .strip_prefix("sha256:")
                .and_then(unhex32)
                .ok_or_else(|| err(at("digest must be \"sha256:\" and 64 hex digits")))?;
            let mac = match &e.mac {
                Some(m) => Some(unhex32(m).ok_or_else(|| err(at("mac is not 64 hex digits")))?),
                None => None,
            };
            let rotation = match (e.rotate_since, e.rotate_removed) {
                (None, None) => None,
                (Some(since), Some(removed)) => {
                    let since = time(&at("rotate-since"), &since)?;
                    let mut names = Vec::with_capacity(removed.len());
                    for r in removed {
                        names.push(
                            r.parse::<RecipientName>()
                                .map_err(|e: Error| err(at(&format!("rotate-removed: {e}"))))?,
                        );
                    }
                    if names.is_empty() || !names.windows(2).all(|w| w[0] < w[1]) {
                        return Err(err(at(
                            "rotate-removed must be a sorted list of distinct names",
                        )));
                    }
                    Some(RotationDue {
                        since,
                        removed: names,
                    })
                }
                _ => return Err(err(at("rotate-since and rotate-removed go together"))),
            };
            secrets.insert(
                n,
                Entry {
                    created: time(&at("created"), &e.created)?,
                    updated: time(&at("updated"), &e.updated)?,
                    digest,
                    mac,
                    rotation,
                },
            );
        }
        Ok(Manifest {
            created,
            public_key: raw.public_key,
            recipients_mac,
            recipients,
            secrets,
        })
    }

    /// Serialises the manifest: deterministic, sorted, trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(256 + self.secrets.len() * 260);
        s.push_str("# coffer vault manifest: written by coffer, see docs/format.md\n");
        let _ = writeln!(s, "format = {FORMAT_VERSION}");
        let _ = writeln!(s, "created = \"{}\"", self.created);
        let _ = writeln!(s, "public-key = \"{}\"", self.public_key);
        if let Some(mac) = &self.recipients_mac {
            let _ = writeln!(s, "recipients-mac = \"{}\"", hex(mac));
        }
        s.push_str("\n[recipients]\n");
        for (name, key) in &self.recipients {
            let _ = writeln!(s, "{} = \"{key}\"", toml_key(name.as_str()));
        }
        for (name, e) in &self.secrets {
            let _ = writeln!(s, "\n[secrets.{name}]");
            let _ = writeln!(s, "created = \"{}\"", e.created);
            let _ = writeln!(s, "updated = \"{}\"", e.updated);
            let _ = writeln!(s, "digest = \"sha256:{}\"", hex(&e.digest));
            if let Some(mac) = &e.mac {
                let _ = writeln!(s, "mac = \"{}\"", hex(mac));
            }
            if let Some(r) = &e.rotation {
                let _ = writeln!(s, "rotate-since = \"{}\"", r.since);
                let names: Vec<String> = r.removed.iter().map(|n| format!("\"{n}\"")).collect();
                let _ = writeln!(s, "rotate-removed = [{}]", names.join(", "));
            }
        }
        s.into_bytes()
    }

    /// Computes and stores the recipients MAC.
    pub fn seal_recipients(&mut self, vault: &VaultName, key: &VaultKey) {
        self.recipients_mac = Some(key.mac(&recipients_mac_input(vault, self)));
    }

    /// Checks the recipients MAC.
    pub fn recipients_verify(&self, vault: &VaultName, key: &VaultKey) -> bool {
        self.recipients_mac
            .as_ref()
            .is_some_and(|m| key.verify_mac(&recipients_mac_input(vault, self), m))
    }

    /// Computes and stores an entry's MAC.
    pub fn seal_entry(vault: &VaultName, name: &SecretName, entry: &mut Entry, key: &VaultKey) {
        entry.mac = Some(key.mac(&entry_mac_input(vault, name, entry)));
    }

    /// Checks an entry's MAC; false if it has none.
    pub fn entry_verifies(
        vault: &VaultName,
        name: &SecretName,
        entry: &Entry,
        key: &VaultKey,
    ) -> bool {
        entry
            .mac
            .as_ref()
            .is_some_and(|m| key.verify_mac(&entry_mac_input(vault, name, entry), m))
    }
}

/// Returns a TOML key: bare if it can be, quoted otherwise (recipient
/// names may contain '.').
fn toml_key(k: &str) -> String {
    if k.bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        k.to_owned()
    } else {
        format!("\"{k}\"")
    }
}

/// Returns the message of a TOML error, with its line, but without the
/// source excerpt the crate adds (which could quote a value).
pub(crate) fn toml_message(e: &dyn std::fmt::Display) -> String {
    let full = e.to_string();
    let mut lines = full.lines();
    let first = lines.next().unwrap_or("invalid TOML").trim().to_owned();
    // toml's messages look like "TOML parse error at line 3, column 7" followed
    // by an excerpt of the offending line and a final explanation; keep the
    // location and the explanation only.
    let last = full
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('|') && !l.contains('^'))
        .unwrap_or("")
        .trim()
        .to_owned();
    if last.is_empty() || last == first {
        first
    } else {
        format!("{first}: {last}")
    }
}

/// The message MACed for a vault's recipients: the domain
/// `coffer.v1 recipients`, the vault name, the public key, the creation time,
/// the number of recipients, then each recipient's name and canonical key in
/// name order. Every field is length-prefixed (see `docs/format.md`).
pub(crate) fn recipients_mac_input(vault: &VaultName, m: &Manifest) -> MacInput {
    let mut i = MacInput::new("coffer.v1 recipients");
    i.field(vault.as_str().as_bytes())
        .field(m.public_key.as_bytes())
        .field(m.created.to_string().as_bytes())
        .count(m.recipients.len());
    for (name, key) in &m.recipients {
        i.field(name.as_str().as_bytes())
            .field(key.to_string().as_bytes());
    }
    i
}

/// The message MACed for one secret: the domain `coffer.v1 secret`, the
/// vault name, the secret name, the raw 32-byte digest, the created and
/// updated times, then the rotation mark as a count (0 or 1) followed, if
/// present, by its time, the number of removed names and each name.
pub(crate) fn entry_mac_input(vault: &VaultName, name: &SecretName, e: &Entry) -> MacInput {
    let mut i = MacInput::new("coffer.v1 secret");
    i.field(vault.as_str().as_bytes())
        .field(name.as_str().as_bytes())
        .field(&e.digest)
        .field(e.created.to_string().as_bytes())
        .field(e.updated.to_string().as_bytes());
    match &e.rotation {
        None => {
            i.count(0);
        }
        Some(r) => {
            i.count(1)
                .field(r.since.to_string().as_bytes())
                .count(r.removed.len());
            for n in &r.removed {
                i.field(n.as_str().as_bytes());
            }
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (VaultName, VaultKey, Manifest) {
        let key = VaultKey::generate();
        let vault: VaultName = "api-keys".parse().unwrap();
        let mut recipients = BTreeMap::new();
        recipients.insert(
            "alice".parse().unwrap(),
            age::x25519::Identity::generate()
                .to_public()
                .to_string()
                .parse()
                .unwrap(),
        );
        recipients.insert(
            "ci.bot".parse().unwrap(),
            age::x25519::Identity::generate()
                .to_public()
                .to_string()
                .parse()
                .unwrap(),
        );
        let t: Time = "2026-01-01T00:00:00.000Z".parse().unwrap();
        let mut m = Manifest::new(t, key.public().to_string(), recipients);
        m.seal_recipients(&vault, &key);
        for (i, name) in ["zeta-one", "alpha-two"].iter().enumerate() {
            let n: SecretName = name.parse().unwrap();
            let mut e = Entry {
                created: t,
                updated: t,
                digest: [i as u8; 32],
                mac: None,
                rotation: None,
            };
            Manifest::seal_entry(&vault, &n, &mut e, &key);
            m.secrets.insert(n, e);
        }
        (vault, key, m)
    }

    #[test]
    fn round_trips_byte_for_byte() {
        let (_, _, mut m) = sample();
        m.secrets.values_mut().next().unwrap().rotation = Some(RotationDue {
            since: "2026-02-01T00:00:00.000Z".parse().unwrap(),
            removed: vec!["bob".parse().unwrap(), "carol".parse().unwrap()],
        });
        let bytes = m.to_bytes();
        let back = Manifest::parse(&bytes, Path::new("vault.toml")).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to_bytes(), bytes, "deterministic");
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.find("[secrets.alpha-two]").unwrap() < text.find("[secrets.zeta-one]").unwrap()
        );
        assert!(text.contains("\"ci.bot\" = "));
    }

    #[test]
    fn macs_bind_names_and_digests() {
        let (vault, key, m) = sample();
        assert!(m.recipients_verify(&vault, &key));
        let other: VaultName = "other-vault".parse().unwrap();
        assert!(!m.recipients_verify(&other, &key));
        let (a, b): (SecretName, SecretName) =
            ("alpha-two".parse().unwrap(), "zeta-one".parse().unwrap());
        let ea = &m.secrets[&a];
        assert!(Manifest::entry_verifies(&vault, &a, ea, &key));
        // The same entry under another name (a swap) does not verify.
        assert!(!Manifest::entry_verifies(&vault, &b, ea, &key));
        let mut changed = ea.clone();
        changed.digest[0] ^= 1;
        assert!(!Manifest::entry_verifies(&vault, &a, &changed, &key));
        let mut added = m.clone();
        added.recipients.insert(
            "mallory".parse().unwrap(),
            age::x25519::Identity::generate()
                .to_public()
                .to_string()
                .parse()
                .unwrap(),
        );
        assert!(!added.recipients_verify(&vault, &key));
    }

    #[test]
    fn strict_parsing() {
        let (_, _, m) = sample();
        let good = String::from_utf8(m.to_bytes()).unwrap();
        let cases = [
            (
                good.replace("format = 1", "format = 2"),
                "format 2 is not supported",
            ),
            (good.replace("format = 1\n", ""), "no `format` field"),
            (
                good.replace("[secrets.alpha-two]", "[secrets.Alpha]"),
                "invalid secret name",
            ),
            (
                good.replace("[secrets.alpha-two]", "[secrets.\"../x\"]"),
                "invalid secret name",
            ),
            (
                good.replacen("digest = \"sha256:", "digest = \"md5:", 1),
                "digest must be",
            ),
            (
                good.replacen(
                    "created = \"2026-01-01T00:00:00.000Z\"",
                    "created = \"2026-01-01\"",
                    1,
                ),
                "created",
            ),
            (good.clone() + "surprise = 1\n", "unknown field"),
            (
                good[..good.len() / 2].to_owned() + "\n[[[",
                "TOML parse error",
            ),
            (String::new(), "no `format` field"),
        ];
        for (text, want) in cases {
            let err = Manifest::parse(text.as_bytes(), Path::new("v.toml"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "want {want:?} in {err:?}");
        }
        assert!(Manifest::parse(b"\xff\xfe", Path::new("v.toml")).is_err());
    }

    #[test]
    fn hex_round_trip() {
        let b = [0xab; 32];
        assert_eq!(unhex32(&hex(&b)), Some(b));
        assert_eq!(
            unhex32(&"AB".repeat(32)),
            None,
            "uppercase is not canonical"
        );
        assert_eq!(unhex32("ab"), None);
    }
}

/// The worked example in `docs/format.md`: anyone writing a compatible
/// reader can check their MAC code against these values.
#[cfg(test)]
mod format_vector {
    use super::*;

    pub(super) const VAULT_KEY: &str =
        "AGE-SECRET-KEY-1XW32UD02RCR39Z7KTTMVE6EKN0VFK3H3AKCK496SRAQ9PVCWE0KS6M7CDD";
    pub(super) const ALICE: &str = "age14u7hx9g8n65fd6gw5hmk6nmg8ee39gjk8l903762ag79sc2p75hq5ym553";

    pub(super) fn example() -> (VaultName, VaultKey, Manifest) {
        let key = VaultKey::from_identity_file(VAULT_KEY, Path::new("x")).unwrap();
        let vault: VaultName = "api-keys".parse().unwrap();
        let mut recipients = BTreeMap::new();
        recipients.insert("alice".parse().unwrap(), ALICE.parse().unwrap());
        let t: Time = "2026-01-01T00:00:00.000Z".parse().unwrap();
        let mut m = Manifest::new(t, key.public().to_string(), recipients);
        m.seal_recipients(&vault, &key);
        let name: SecretName = "stripe-secret-key".parse().unwrap();
        let mut e = Entry {
            created: t,
            updated: "2026-01-02T03:04:05.678Z".parse().unwrap(),
            digest: crate::crypto::digest(b"example ciphertext"),
            mac: None,
            rotation: None,
        };
        Manifest::seal_entry(&vault, &name, &mut e, &key);
        m.secrets.insert(name, e);
        (vault, key, m)
    }

    #[test]
    fn documented_example_is_what_the_code_computes() {
        let (vault, key, m) = example();
        let doc = include_str!("../docs/format.md");
        let text = String::from_utf8(m.to_bytes()).unwrap();
        assert!(
            doc.contains(&text),
            "docs/format.md must contain, verbatim:\n{text}"
        );
        let input = recipients_mac_input(&vault, &m);
        assert!(
            doc.contains(&hex(input.bytes())),
            "recipients MAC message missing"
        );
        let (name, entry) = m.secrets.iter().next().unwrap();
        let input = entry_mac_input(&vault, name, entry);
        assert!(
            doc.contains(&hex(input.bytes())),
            "entry MAC message missing"
        );
        assert!(doc.contains(&hex(&key.mac_key_bytes())), "MAC key missing");
        assert!(doc.contains(&key.public().to_string()));
    }
}
