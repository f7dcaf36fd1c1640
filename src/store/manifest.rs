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

use crate::crypto::mac::{hex, push_hex, unhex32};
use crate::crypto::recipient::RecipientKey;
use crate::crypto::{MacInput, VaultKey};
use crate::error::{Error, Result, toml_message};
use crate::name::{RecipientName, SecretName, VaultName};
use crate::time::Time;

/// The manifest format this version of coffer writes.
pub const FORMAT_VERSION: i64 = 2;

/// The first format, which coffer still reads (and upgrades on its first
/// write): one vault key, no epochs.
pub const FORMAT_V1: i64 = 1;

/// The first line of every manifest.
const HEADER_COMMENT: &str = "# coffer vault manifest: written by coffer, see docs/format.md";

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
    /// The epoch of the vault key its file is encrypted to (always 1 in
    /// format 1).
    pub epoch: u32,
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
    /// The format it was read in ([`FORMAT_V1`] or [`FORMAT_VERSION`]);
    /// coffer only ever writes the latter.
    pub format: i64,
    /// The current vault key's epoch (1 in format 1).
    pub epoch: u32,
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
    epoch: Option<i64>,
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
    epoch: Option<i64>,
    mac: Option<String>,
    rotate_since: Option<String>,
    rotate_removed: Option<Vec<String>>,
}

impl Manifest {
    /// Returns a manifest for a new, empty vault.
    pub fn new(
        created: Time,
        public_key: String,
        recipients: BTreeMap<RecipientName, RecipientKey>,
    ) -> Manifest {
        Manifest {
            format: FORMAT_VERSION,
            epoch: 1,
            created,
            public_key,
            recipients_mac: None,
            recipients,
            secrets: BTreeMap::new(),
        }
    }

    /// Parses and validates a manifest. `path` is for error messages.
    ///
    /// A manifest in exactly the layout coffer writes is read line by line
    /// (much faster than TOML for a large vault); anything else goes to
    /// [`Manifest::parse_toml`], which accepts and refuses exactly the same
    /// manifests, reads any TOML layout and explains what is wrong.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Manifest> {
        if let Some(m) = std::str::from_utf8(bytes)
            .ok()
            .and_then(canonical::manifest)
        {
            return Ok(m);
        }
        Manifest::parse_toml(bytes, path)
    }

    /// Parses a manifest as [`Manifest::parse_toml`] does, for `verify`,
    /// without its memory: a manifest in coffer's own layout is read line
    /// by line and taken only if writing it back gives the very same bytes,
    /// so that the strict parser reads the same manifest from them (the
    /// round trip is tested byte for byte); anything else is parsed
    /// strictly. (The strict parser holds a table of every value: at
    /// 10,000 secrets, most of `verify`'s memory.)
    pub fn parse_strict(bytes: &[u8], path: &Path) -> Result<Manifest> {
        if let Some(m) = std::str::from_utf8(bytes)
            .ok()
            .and_then(canonical::manifest)
            && m.to_bytes() == bytes
        {
            return Ok(m);
        }
        Manifest::parse_toml(bytes, path)
    }

    /// Parses the manifest's vault-wide fields, without its secrets (the
    /// result has none): enough to check a vault key against it.
    pub fn parse_header(bytes: &[u8], path: &Path) -> Result<Manifest> {
        if let Some(m) = canonical::header_only(bytes, true) {
            return Ok(m);
        }
        let mut m = Manifest::parse(bytes, path)?;
        m.secrets.clear();
        Ok(m)
    }

    /// Parses the manifest's vault-wide fields and the entry of `name` alone
    /// (the result lists no other secret). In coffer's own layout the entry
    /// is found directly, without reading the others: `get` on a large
    /// vault stays as fast as on a small one. Otherwise, or if the entry is
    /// not there, the whole manifest is parsed.
    pub fn parse_one(bytes: &[u8], path: &Path, name: &SecretName) -> Result<Manifest> {
        if let Some(m) = canonical::one(bytes, name) {
            return Ok(m);
        }
        let mut m = Manifest::parse(bytes, path)?;
        m.secrets.retain(|n, _| n == name);
        Ok(m)
    }

    /// Returns the line that starts the table of `name` in coffer's own
    /// layout, with the newlines around it: what to look for in a manifest
    /// read piece by piece.
    pub(crate) fn table_line(name: &SecretName) -> Vec<u8> {
        canonical::table_line(name)
    }

    /// Parses the vault-wide fields from the first bytes of a manifest in
    /// coffer's own layout and the entry of `name` from the bytes after its
    /// [`Manifest::table_line`], which occurs once in the file, up to the
    /// next table or, if `complete`, the end of the file. `None` if either
    /// part is not in that layout: then use [`Manifest::parse_one`].
    pub(crate) fn parse_one_from_parts(
        prefix: &[u8],
        after: &[u8],
        complete: bool,
        name: &SecretName,
    ) -> Option<Manifest> {
        canonical::one_from_parts(prefix, after, complete, name)
    }

    /// Reads the vault-wide fields from the first bytes of a manifest in
    /// coffer's own layout, if they hold them all; `None` otherwise (then
    /// read the whole file and use [`Manifest::parse_header`]).
    pub(crate) fn parse_header_prefix(prefix: &[u8]) -> Option<Manifest> {
        canonical::header_only(prefix, false)
    }

    /// Parses and validates a manifest of any TOML layout (what `verify`
    /// uses). `path` is for error messages.
    pub fn parse_toml(bytes: &[u8], path: &Path) -> Result<Manifest> {
        let err = |message: String| Error::Manifest {
            path: path.to_owned(),
            message,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| err("it is not UTF-8 text".into()))?;
        let table: toml::Table = toml::from_str(text).map_err(|e| {
            if has_conflict_markers(text) {
                Error::ConflictMarkers {
                    path: path.to_owned(),
                }
            } else {
                err(toml_message(&e))
            }
        })?;
        match table.get("format") {
            Some(toml::Value::Integer(FORMAT_VERSION | FORMAT_V1)) => {}
            Some(toml::Value::Integer(v)) => {
                return Err(err(format!(
                    "format {v} is not supported (this coffer reads formats {FORMAT_V1} and {FORMAT_VERSION}); a newer coffer may read it"
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
        let v2 = raw.format == FORMAT_VERSION;
        let epoch_field = |what: &str, e: Option<i64>, max: u32| -> Result<u32> {
            match (v2, e) {
                (false, None) => Ok(1),
                (false, Some(_)) => Err(err(format!("{what}: `epoch` is not a format 1 field"))),
                (true, None) => Err(err(format!("{what}: `epoch` is missing"))),
                (true, Some(e)) if e >= 1 && e <= i64::from(max) => Ok(e as u32),
                (true, Some(e)) => {
                    Err(err(format!("{what}: epoch {e} is not between 1 and {max}")))
                }
            }
        };
        let epoch = epoch_field(
            "the vault",
            raw.epoch,
            crate::crypto::vault_key::MAX_EPOCHS as u32,
        )?;

        let time = |what: &str, s: &str| s.parse::<Time>().map_err(|e| err(format!("{what}: {e}")));
        let created = time("created", &raw.created)?;
        if !crate::crypto::is_canonical_recipient(&raw.public_key) {
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
                    epoch: epoch_field(&at("its key"), e.epoch, epoch)?,
                    created: time(&at("created"), &e.created)?,
                    updated: time(&at("updated"), &e.updated)?,
                    digest,
                    mac,
                    rotation,
                },
            );
        }
        Ok(Manifest {
            format: raw.format,
            epoch,
            created,
            public_key: raw.public_key,
            recipients_mac,
            recipients,
            secrets,
        })
    }

    /// Serialises the manifest: deterministic, sorted, trailing newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut s = String::with_capacity(1024);
        s.push_str(HEADER_COMMENT);
        s.push('\n');
        let v2 = self.format != FORMAT_V1;
        let _ = writeln!(s, "format = {}", self.format);
        let _ = writeln!(s, "created = \"{}\"", self.created);
        let _ = writeln!(s, "public-key = \"{}\"", self.public_key);
        if v2 {
            let _ = writeln!(s, "epoch = {}", self.epoch);
        }
        if let Some(mac) = &self.recipients_mac {
            let _ = writeln!(s, "recipients-mac = \"{}\"", hex(mac));
        }
        s.push_str("\n[recipients]\n");
        for (name, key) in &self.recipients {
            let _ = writeln!(s, "{} = \"{key}\"", toml_key(name.as_str()));
        }
        let mut b = s.into_bytes();
        b.reserve(self.secrets.len() * 260);
        for (name, e) in &self.secrets {
            b.extend_from_slice(b"\n[secrets.");
            b.extend_from_slice(name.as_str().as_bytes());
            b.extend_from_slice(b"]\ncreated = \"");
            e.created.push_to(&mut b);
            b.extend_from_slice(b"\"\nupdated = \"");
            e.updated.push_to(&mut b);
            b.extend_from_slice(b"\"\ndigest = \"sha256:");
            push_hex(&mut b, &e.digest);
            b.extend_from_slice(b"\"\n");
            if v2 {
                b.extend_from_slice(b"epoch = ");
                b.extend_from_slice(e.epoch.to_string().as_bytes());
                b.push(b'\n');
            }
            if let Some(mac) = &e.mac {
                b.extend_from_slice(b"mac = \"");
                push_hex(&mut b, mac);
                b.extend_from_slice(b"\"\n");
            }
            if let Some(r) = &e.rotation {
                b.extend_from_slice(b"rotate-since = \"");
                r.since.push_to(&mut b);
                b.extend_from_slice(b"\"\nrotate-removed = [");
                for (i, n) in r.removed.iter().enumerate() {
                    if i > 0 {
                        b.extend_from_slice(b", ");
                    }
                    b.push(b'"');
                    b.extend_from_slice(n.as_str().as_bytes());
                    b.push(b'"');
                }
                b.extend_from_slice(b"]\n");
            }
        }
        b
    }

    /// Computes and stores the recipients MAC.
    pub fn seal_recipients(&mut self, vault: &VaultName, key: &VaultKey) {
        debug_assert_eq!(self.format, FORMAT_VERSION, "coffer seals format 2 only");
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
        entry.mac = Some(key.mac(&entry_mac_input(FORMAT_VERSION, vault, name, entry)));
    }

    /// Checks an entry's MAC; false if it has none.
    pub fn entry_verifies(
        &self,
        vault: &VaultName,
        name: &SecretName,
        entry: &Entry,
        key: &VaultKey,
    ) -> bool {
        Manifest::entry_verifies_as(self.format, vault, name, entry, key)
    }

    /// Checks an entry's MAC as a manifest of `format` computes it; false
    /// if it has none.
    pub fn entry_verifies_as(
        format: i64,
        vault: &VaultName,
        name: &SecretName,
        entry: &Entry,
        key: &VaultKey,
    ) -> bool {
        entry
            .mac
            .as_ref()
            .is_some_and(|m| key.verify_mac(&entry_mac_input(format, vault, name, entry), m))
    }

    /// Returns whether this manifest is in format 1, which coffer reads
    /// but never writes: a key holder must [`Manifest::upgrade`] it first.
    pub fn is_v1(&self) -> bool {
        self.format == FORMAT_V1
    }

    /// Upgrades a format-1 manifest to format 2 in memory, with the vault
    /// key it was written under (a one-key keyring): every sealed entry's
    /// format-1 MAC is checked, then it is sealed again in format 2 with
    /// epoch 1; unaccepted contributions stay unaccepted; the recipients
    /// are sealed again if their MAC verified (else they stay unsealed,
    /// an edit awaiting approval as before). Refuses, naming them, if any
    /// entry fails its MAC: sealing it again would launder a forgery.
    /// A no-op on a format-2 manifest.
    pub fn upgrade(&mut self, vault: &VaultName, key: &VaultKey) -> Result<()> {
        if !self.is_v1() {
            return Ok(());
        }
        debug_assert_eq!(key.epoch(), 1);
        let failed: Vec<&str> = self
            .secrets
            .iter()
            .filter(|(n, e)| e.mac.is_some() && !self.entry_verifies(vault, n, e, key))
            .map(|(n, _)| n.as_str())
            .collect();
        if !failed.is_empty() {
            return Err(Error::RekeyBlocked {
                vault: vault.to_string(),
                count: failed.len(),
                names: failed.join(", "),
            });
        }
        let recipients_ok = self.recipients_verify(vault, key);
        self.format = FORMAT_VERSION;
        self.epoch = 1;
        for (name, e) in self.secrets.iter_mut() {
            e.epoch = 1;
            if e.mac.is_some() {
                Manifest::seal_entry(vault, name, e, key);
            }
        }
        if recipients_ok {
            self.seal_recipients(vault, key);
        } else {
            self.recipients_mac = None;
        }
        Ok(())
    }
}

/// Returns whether `text` holds the markers git leaves in a file it merged
/// line by line with conflicts (`<<<<<<< `, `=======`, `>>>>>>> ` at the
/// start of a line): a store file merged without coffer's driver.
pub(crate) fn has_conflict_markers(text: &str) -> bool {
    let mut seen = [false; 3];
    for l in text.lines() {
        if l.starts_with("<<<<<<< ") || l == "<<<<<<<" {
            seen[0] = true;
        } else if l == "=======" {
            seen[1] = true;
        } else if l.starts_with(">>>>>>> ") || l == ">>>>>>>" {
            seen[2] = true;
        }
    }
    seen.iter().all(|s| *s)
}

/// Returns whether `k` is a bare TOML key.
fn is_bare(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Reading a manifest laid out exactly as [`Manifest::to_bytes`] writes it,
/// line by line, without a TOML parser.
///
/// Each function returns `None` at the first byte that departs from that
/// layout, and at any value [`Manifest::parse_toml`] would refuse; the
/// caller then falls back to the TOML parser. So whatever the input, the
/// result is either `None` or exactly what the TOML parser returns (the
/// tests check this on mutated manifests).
mod canonical {
    use std::collections::BTreeMap;

    use super::{Entry, FORMAT_V1, FORMAT_VERSION, HEADER_COMMENT, Manifest, RotationDue, is_bare};
    use crate::crypto::mac::unhex32;
    use crate::crypto::recipient::RecipientKey;
    use crate::name::{RecipientName, SecretName};
    use crate::time::Time;

    /// The text still to read.
    struct Lines<'a>(&'a str);

    impl<'a> Lines<'a> {
        /// The next line, without its newline; `None` at the end or on an
        /// unterminated last line.
        fn next(&mut self) -> Option<&'a str> {
            let end = memchr::memchr(b'\n', self.0.as_bytes())?;
            let line = &self.0[..end];
            self.0 = &self.0[end + 1..];
            Some(line)
        }

        fn peek(&self) -> Option<&'a str> {
            memchr::memchr(b'\n', self.0.as_bytes()).map(|end| &self.0[..end])
        }
    }

    /// The value of a line that is exactly `key = "value"`, with a value
    /// that needs no escape.
    fn quoted<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        let v = line
            .strip_prefix(key)?
            .strip_prefix(" = \"")?
            .strip_suffix('"')?;
        // Printable ASCII only, and nothing TOML would unescape.
        v.bytes()
            .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
            .then_some(v)
    }

    /// The value of a line that is exactly `key = "value"`, for a value
    /// that its own parser checks byte by byte (a time, hex digits), so
    /// that nothing TOML would unescape can pass.
    fn checked_later<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        line.strip_prefix(key)?
            .strip_prefix(" = \"")?
            .strip_suffix('"')
    }

    /// The vault-wide fields and `[recipients]`, up to the blank line
    /// before the first secret (or the end).
    /// Parses `epoch = N` (N from 1 to `max`, no leading zero or sign).
    pub(super) fn epoch(line: &str, max: u32) -> Option<u32> {
        let v = line.strip_prefix("epoch = ")?;
        if v.is_empty()
            || v.len() > 10
            || v.starts_with('0')
            || !v.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let e: u32 = v.parse().ok()?;
        (e <= max).then_some(e)
    }

    fn header(l: &mut Lines<'_>) -> Option<Manifest> {
        if l.next()? != HEADER_COMMENT {
            return None;
        }
        let format = match l.next()? {
            "format = 1" => FORMAT_V1,
            "format = 2" => FORMAT_VERSION,
            _ => return None,
        };
        let created: Time = quoted(l.next()?, "created")?.parse().ok()?;
        let public_key = quoted(l.next()?, "public-key")?;
        if !crate::crypto::is_canonical_recipient(public_key) {
            return None;
        }
        let epoch = if format == FORMAT_V1 {
            1
        } else {
            epoch(l.next()?, crate::crypto::vault_key::MAX_EPOCHS as u32)?
        };
        let mut line = l.next()?;
        let recipients_mac = match quoted(line, "recipients-mac") {
            Some(mac) => {
                line = l.next()?;
                Some(unhex32(mac)?)
            }
            None => None,
        };
        if !line.is_empty() || l.next()? != "[recipients]" {
            return None;
        }
        let mut recipients: BTreeMap<RecipientName, RecipientKey> = BTreeMap::new();
        while let Some(line) = l.peek().filter(|line| !line.is_empty()) {
            l.next();
            let (name, rest) = match line.strip_prefix('"') {
                Some(quoted_name) => {
                    let (name, rest) = quoted_name.split_once('"')?;
                    if is_bare(name) {
                        return None;
                    }
                    (name, rest)
                }
                None => {
                    let (name, _) = line.split_once(' ')?;
                    if !is_bare(name) {
                        return None;
                    }
                    (name, &line[name.len()..])
                }
            };
            let key = quoted(rest, "")?;
            let name: RecipientName = name.parse().ok()?;
            let parsed: RecipientKey = key.parse().ok()?;
            if parsed.to_string() != key
                || recipients
                    .last_key_value()
                    .is_some_and(|(last, _)| *last >= name)
            {
                return None;
            }
            recipients.insert(name, parsed);
        }
        // A vault nobody can open is refused by the TOML parser's checks.
        if recipients.is_empty() {
            return None;
        }
        Some(Manifest {
            format,
            epoch,
            created,
            public_key: public_key.to_owned(),
            recipients_mac,
            recipients,
            secrets: BTreeMap::new(),
        })
    }

    /// One secret's lines, after its `[secrets.<name>]` line, up to the
    /// blank line before the next one (or the end).
    fn entry(l: &mut Lines<'_>, m: &Manifest) -> Option<Entry> {
        let created: Time = checked_later(l.next()?, "created")?.parse().ok()?;
        let updated: Time = checked_later(l.next()?, "updated")?.parse().ok()?;
        let digest = unhex32(checked_later(l.next()?, "digest")?.strip_prefix("sha256:")?)?;
        let epoch = if m.format == FORMAT_V1 {
            1
        } else {
            epoch(l.next()?, m.epoch)?
        };
        let mac = match l.peek().and_then(|line| checked_later(line, "mac")) {
            Some(mac) => {
                l.next();
                Some(unhex32(mac)?)
            }
            None => None,
        };
        let rotation = match l
            .peek()
            .and_then(|line| checked_later(line, "rotate-since"))
        {
            Some(since) => {
                l.next();
                let since: Time = since.parse().ok()?;
                let list = l
                    .next()?
                    .strip_prefix("rotate-removed = [")?
                    .strip_suffix(']')?;
                let mut removed: Vec<RecipientName> = Vec::new();
                for item in list.split(", ") {
                    let name: RecipientName =
                        item.strip_prefix('"')?.strip_suffix('"')?.parse().ok()?;
                    if removed.last().is_some_and(|last| *last >= name) {
                        return None;
                    }
                    removed.push(name);
                }
                Some(RotationDue { since, removed })
            }
            None => None,
        };
        // Another secret follows, or nothing does.
        if !(l.0.is_empty() || l.0.starts_with("\n[secrets.")) {
            return None;
        }
        Some(Entry {
            epoch,
            created,
            updated,
            digest,
            mac,
            rotation,
        })
    }

    /// A whole manifest.
    pub(super) fn manifest(text: &str) -> Option<Manifest> {
        let mut l = Lines(text);
        let mut m = header(&mut l)?;
        // An entry takes about 260 bytes.
        let mut secrets: Vec<(SecretName, Entry)> = Vec::with_capacity(text.len() / 200);
        while !l.0.is_empty() {
            if !l.next()?.is_empty() {
                return None;
            }
            let name: SecretName = l
                .next()?
                .strip_prefix("[secrets.")?
                .strip_suffix(']')?
                .parse()
                .ok()?;
            if secrets.last().is_some_and(|(last, _)| *last >= name) {
                return None;
            }
            let e = entry(&mut l, &m)?;
            secrets.push((name, e));
        }
        // Sorted already: the map is built in one pass.
        m.secrets = secrets.into_iter().collect();
        Some(m)
    }

    /// What separates one table from the next.
    const NEXT_SECRET: &[u8] = b"\n\n[secrets.";

    /// Returns the text up to and including the newline before the next
    /// `[secrets.` table (or the end), and where the rest starts. Only that
    /// part needs to be valid UTF-8.
    fn up_to_next_secret(bytes: &[u8], complete: bool) -> Option<(&str, usize)> {
        let end = match memchr::memmem::find(bytes, NEXT_SECRET) {
            Some(at) => at + 1,
            None if complete => bytes.len(),
            None => return None,
        };
        Some((std::str::from_utf8(&bytes[..end]).ok()?, end))
    }

    /// The vault-wide fields of a manifest, or of its first bytes when
    /// `complete` is false, followed by secrets or nothing. The secrets
    /// are not read.
    pub(super) fn header_only(bytes: &[u8], complete: bool) -> Option<Manifest> {
        let (text, _) = up_to_next_secret(bytes, complete)?;
        let mut l = Lines(text);
        let m = header(&mut l)?;
        l.0.is_empty().then_some(m)
    }

    /// The line that starts a secret's table, with the newlines around it.
    pub(super) fn table_line(name: &SecretName) -> Vec<u8> {
        format!("\n[secrets.{name}]\n").into_bytes()
    }

    /// The vault-wide fields and one secret's entry, found directly; the
    /// other entries are not read. `None` also when the entry is not
    /// there: only a full parse can tell that a secret is absent.
    pub(super) fn one(bytes: &[u8], name: &SecretName) -> Option<Manifest> {
        let needle = table_line(name);
        let mut hits = memchr::memmem::find_iter(bytes, &needle);
        let at = hits.next()?;
        // Listed twice: only the full parse can say what that means.
        if hits.next().is_some() {
            return None;
        }
        one_from_parts(bytes, &bytes[at + needle.len()..], true, name)
    }

    /// The vault-wide fields, from the first bytes of a manifest, and the
    /// entry of `name`, from the bytes after its table line (the only
    /// one), up to the next table or, if `complete`, the end of the file.
    pub(super) fn one_from_parts(
        prefix: &[u8],
        after: &[u8],
        complete: bool,
        name: &SecretName,
    ) -> Option<Manifest> {
        let mut m = header_only(prefix, false)?;
        let (text, _) = up_to_next_secret(after, complete)?;
        let mut l = Lines(text);
        let e = entry(&mut l, &m)?;
        if !l.0.is_empty() {
            return None;
        }
        m.secrets.insert(name.clone(), e);
        Some(m)
    }
}

/// Returns a TOML key: bare if it can be, quoted otherwise (recipient
/// names may contain '.').
fn toml_key(k: &str) -> String {
    if is_bare(k) {
        k.to_owned()
    } else {
        format!("\"{k}\"")
    }
}

/// The message MACed for a vault's recipients: the domain
/// `coffer.v1 recipients`, the vault name, the public key, the creation time,
/// the number of recipients, then each recipient's name and canonical key in
/// name order. Every field is length-prefixed (see `docs/format.md`).
///
/// Format 2 uses the domain `coffer.v2 recipients` and adds the current
/// epoch, as a count, after the public key.
pub(crate) fn recipients_mac_input(vault: &VaultName, m: &Manifest) -> MacInput {
    let v1 = m.format == FORMAT_V1;
    let mut i = MacInput::new(if v1 {
        "coffer.v1 recipients"
    } else {
        "coffer.v2 recipients"
    });
    i.field(vault.as_str().as_bytes())
        .field(m.public_key.as_bytes());
    if !v1 {
        i.count(m.epoch as usize);
    }
    i.field(m.created.to_string().as_bytes())
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
///
/// Format 2 uses the domain `coffer.v2 secret` and adds the entry's epoch,
/// as a count, after the digest.
pub(crate) fn entry_mac_input(
    format: i64,
    vault: &VaultName,
    name: &SecretName,
    e: &Entry,
) -> MacInput {
    let v1 = format == FORMAT_V1;
    let mut i = MacInput::new(if v1 {
        "coffer.v1 secret"
    } else {
        "coffer.v2 secret"
    });
    i.field(vault.as_str().as_bytes())
        .field(name.as_str().as_bytes())
        .field(&e.digest);
    if !v1 {
        i.count(e.epoch as usize);
    }
    i.field_with(|b| e.created.push_to(b))
        .field_with(|b| e.updated.push_to(b));
    match &e.rotation {
        None => {
            i.count(0);
        }
        Some(r) => {
            i.count(1)
                .field_with(|b| r.since.push_to(b))
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
                epoch: 1,
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
        assert!(m.entry_verifies(&vault, &a, ea, &key));
        // The same entry under another name (a swap) does not verify.
        assert!(!m.entry_verifies(&vault, &b, ea, &key));
        let mut changed = ea.clone();
        changed.digest[0] ^= 1;
        assert!(!m.entry_verifies(&vault, &a, &changed, &key));
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
                good.replace("format = 2", "format = 3"),
                "format 3 is not supported",
            ),
            (good.replace("format = 2\n", ""), "no `format` field"),
            (
                good.replacen("\nepoch = 1\n", "\n", 1),
                "`epoch` is missing",
            ),
            (
                good.replacen("epoch = 1\nmac", "epoch = 2\nmac", 1),
                "epoch 2 is not between 1 and 1",
            ),
            (
                good.replace("format = 2", "format = 1"),
                "`epoch` is not a format 1 field",
            ),
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

    /// Manifests that use every optional part of the layout.
    fn varied() -> Vec<Manifest> {
        let (_, _, m) = sample();
        let mut rotated = m.clone();
        rotated.secrets.values_mut().next().unwrap().rotation = Some(RotationDue {
            since: "2026-02-01T00:00:00.000Z".parse().unwrap(),
            removed: vec!["bob".parse().unwrap(), "carol".parse().unwrap()],
        });
        let mut unsealed = rotated.clone();
        unsealed.recipients_mac = None;
        unsealed.secrets.values_mut().last().unwrap().mac = None;
        let mut empty = m.clone();
        empty.secrets.clear();
        vec![m, rotated, unsealed, empty]
    }

    fn without_secrets(m: &Manifest) -> Manifest {
        let mut h = m.clone();
        h.secrets.clear();
        h
    }

    #[test]
    fn canonical_reader_agrees_with_toml() {
        let p = Path::new("vault.toml");
        for m in varied() {
            let bytes = m.to_bytes();
            let text = std::str::from_utf8(&bytes).unwrap();
            assert_eq!(canonical::manifest(text).as_ref(), Some(&m));
            assert_eq!(Manifest::parse_toml(&bytes, p).unwrap(), m);
            let header = without_secrets(&m);
            assert_eq!(canonical::header_only(&bytes, true).as_ref(), Some(&header));
            for cut in 0..bytes.len() {
                if let Some(h) = Manifest::parse_header_prefix(&bytes[..cut]) {
                    assert_eq!(h, header);
                }
            }
            assert_eq!(Manifest::parse_header(&bytes, p).unwrap(), header);
            for (name, e) in &m.secrets {
                let mut one = header.clone();
                one.secrets.insert(name.clone(), e.clone());
                assert_eq!(canonical::one(&bytes, name).as_ref(), Some(&one));
                assert_eq!(Manifest::parse_one(&bytes, p, name).unwrap(), one);
            }
            let missing: SecretName = "not-there".parse().unwrap();
            assert_eq!(canonical::one(&bytes, &missing), None);
            assert_eq!(Manifest::parse_one(&bytes, p, &missing).unwrap(), header);
        }
    }

    /// Damaged and rearranged manifests: the line reader either gives up
    /// or reads exactly what the TOML parser reads, and so does `verify`'s
    /// [`Manifest::parse_strict`]. (Reading the header or
    /// one entry does not look at the rest, so those agree with the TOML
    /// parser whenever it succeeds.)
    #[test]
    fn canonical_reader_never_disagrees_with_toml() {
        let p = Path::new("vault.toml");
        let (mut tried, mut read) = (0, 0);
        for m in varied() {
            let text = String::from_utf8(m.to_bytes()).unwrap();
            let mut variants = Vec::new();
            for i in 0..text.len() {
                let (a, b) = text.split_at(i);
                variants.push(format!("{a}{}", &b[1..]));
                variants.push(format!("{a}a{}", &b[1..]));
                for c in [" ", "\n", "\"", "0", "\\", "\r"] {
                    variants.push(format!("{a}{c}{b}"));
                }
            }
            let lines: Vec<&str> = text.split_inclusive('\n').collect();
            for i in 0..lines.len() {
                let mut dropped = lines.clone();
                dropped.remove(i);
                variants.push(dropped.concat());
                let mut doubled = lines.clone();
                doubled.insert(i, lines[i]);
                variants.push(doubled.concat());
                if i + 1 < lines.len() {
                    let mut swapped = lines.clone();
                    swapped.swap(i, i + 1);
                    variants.push(swapped.concat());
                }
            }
            for v in &variants {
                tried += 1;
                let toml = Manifest::parse_toml(v.as_bytes(), p).ok();
                if let Some(fast) = canonical::manifest(v) {
                    read += 1;
                    assert_eq!(toml.as_ref(), Some(&fast), "{v}");
                }
                assert_eq!(Manifest::parse_strict(v.as_bytes(), p).ok(), toml, "{v}");
                let Some(toml) = toml else { continue };
                if let Some(h) = canonical::header_only(v.as_bytes(), true) {
                    assert_eq!(h, without_secrets(&toml), "{v}");
                }
                for name in toml.secrets.keys() {
                    if let Some(one) = canonical::one(v.as_bytes(), name) {
                        assert_eq!(one.secrets.len(), 1);
                        assert_eq!(without_secrets(&one), without_secrets(&toml), "{v}");
                        assert_eq!(one.secrets.get(name), toml.secrets.get(name), "{v}");
                    }
                }
            }
        }
        assert!(tried > 5000 && read > 100, "{read} of {tried}");
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
        m.format = FORMAT_V1;
        m.recipients_mac = Some(key.mac(&recipients_mac_input(&vault, &m)));
        let name: SecretName = "stripe-secret-key".parse().unwrap();
        let mut e = Entry {
            epoch: 1,
            created: t,
            updated: "2026-01-02T03:04:05.678Z".parse().unwrap(),
            digest: crate::crypto::digest(b"example ciphertext"),
            mac: None,
            rotation: None,
        };
        e.mac = Some(key.mac(&entry_mac_input(FORMAT_V1, &vault, &name, &e)));
        m.secrets.insert(name, e);
        (vault, key, m)
    }

    /// The keyring of the format-2 example: epoch 2, then the format-1
    /// example's key as epoch 1.
    const KEYRING: &str = "# public key: age1gq637wjv24g7rujv3p9e6vgnnspjf9kra78cgdk5hzdj6khr259s29msj8\n\
        AGE-SECRET-KEY-1FKFEW342NDPUV0F6U2FCXH244ZHPZRNQVP0KQYX2F08PUTQJA6PSVWEFPU\n\
        AGE-SECRET-KEY-1XW32UD02RCR39Z7KTTMVE6EKN0VFK3H3AKCK496SRAQ9PVCWE0KS6M7CDD\n";

    /// The format-2 worked example, built by the code, checked against
    /// vectors computed independently (`docs/vectors/format2.py`, Python's
    /// standard library only) and against `docs/format.md`.
    #[test]
    fn format_2_example_matches_the_independent_vectors_and_the_doc() {
        let v: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/vectors/format2.json")).unwrap();
        let key = VaultKey::from_identity_file(KEYRING, Path::new("x")).unwrap();
        assert_eq!(key.epoch(), 2);
        assert_eq!(key.public().to_string(), v["public_key"]);
        let vault: VaultName = "api-keys".parse().unwrap();
        let mut recipients = BTreeMap::new();
        recipients.insert("alice".parse().unwrap(), ALICE.parse().unwrap());
        let t: Time = "2026-01-01T00:00:00.000Z".parse().unwrap();
        let mut m = Manifest::new(t, key.public().to_string(), recipients);
        m.epoch = key.epoch();
        m.seal_recipients(&vault, &key);
        let mut e1 = Entry {
            epoch: 1,
            created: t,
            updated: "2026-01-01T12:00:00.000Z".parse().unwrap(),
            digest: crate::crypto::digest(b"example ciphertext 1"),
            mac: None,
            rotation: Some(RotationDue {
                since: "2026-01-03T00:00:00.000Z".parse().unwrap(),
                removed: vec!["bob".parse().unwrap()],
            }),
        };
        let n1: SecretName = "sendgrid-api-key".parse().unwrap();
        Manifest::seal_entry(&vault, &n1, &mut e1, &key);
        let mut e2 = Entry {
            epoch: 2,
            created: t,
            updated: "2026-01-04T03:04:05.678Z".parse().unwrap(),
            digest: crate::crypto::digest(b"example ciphertext"),
            mac: None,
            rotation: None,
        };
        let n2: SecretName = "stripe-secret-key".parse().unwrap();
        Manifest::seal_entry(&vault, &n2, &mut e2, &key);
        m.secrets.insert(n1, e1);
        m.secrets.insert(n2, e2);

        assert_eq!(hex(&key.mac_key_bytes()), v["mac_key"]);
        assert_eq!(
            hex(recipients_mac_input(&vault, &m).bytes()),
            v["recipients_message"]
        );
        let text = String::from_utf8(m.to_bytes()).unwrap();
        assert_eq!(text, v["manifest"].as_str().unwrap());
        for (i, (name, e)) in m.secrets.iter().enumerate() {
            let want = &v["secrets"][i];
            assert_eq!(want["name"], name.as_str());
            assert_eq!(
                hex(entry_mac_input(FORMAT_VERSION, &vault, name, e).bytes()),
                want["message"]
            );
            assert_eq!(hex(&e.mac.unwrap()), want["mac"]);
        }
        // What the code parses back is the same manifest, through both readers.
        let back = Manifest::parse(text.as_bytes(), Path::new("v")).unwrap();
        assert_eq!(back, m);
        assert_eq!(
            Manifest::parse_toml(text.as_bytes(), Path::new("v")).unwrap(),
            m
        );
        let doc = include_str!("../../docs/format.md");
        assert!(
            doc.contains(&text),
            "docs/format.md must contain, verbatim:\n{text}"
        );
        for needle in [
            v["mac_key"].as_str().unwrap(),
            v["recipients_message"].as_str().unwrap(),
            v["secrets"][0]["message"].as_str().unwrap(),
            v["secrets"][1]["message"].as_str().unwrap(),
        ] {
            assert!(doc.contains(needle), "docs/format.md must contain {needle}");
        }
    }

    #[test]
    fn documented_example_is_what_the_code_computes() {
        let (vault, key, m) = example();
        let doc = include_str!("../../docs/format.md");
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
        let input = entry_mac_input(m.format, &vault, name, entry);
        assert!(
            doc.contains(&hex(input.bytes())),
            "entry MAC message missing"
        );
        assert!(doc.contains(&hex(&key.mac_key_bytes())), "MAC key missing");
        assert!(doc.contains(&key.public().to_string()));
    }
}
