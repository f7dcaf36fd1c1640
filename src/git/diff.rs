//! Comparing two states of a store: which vaults, recipients and secrets
//! were added, removed or changed, with values compared in memory.
//!
//! A state is a [`Snapshot`]: the raw files of each vault, read from the
//! working tree ([`Snapshot::from_store`]) or from a commit through git
//! ([`Snapshot::from_git`]). [`diff`] compares two of them. Where the
//! user's identities open a vault, every secret that differs is verified
//! in each state (its entry's MAC, its file's digest) before its values are
//! decrypted and compared; a secret that fails verification is reported as
//! such, never compared. Without a key, a change is still visible (digests
//! and sizes are public), just not whether the value itself changed.
//!
//! Nothing here writes anything: values live in memory only, as
//! [`SecretValue`]s, and are kept only when the caller asks for them.

use crate::crypto::plaintext_len;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::crypto::identity::Identities;
use crate::crypto::{self, DecryptFailure, VaultKey};
use crate::error::{IntegrityProblem, RecipientChange, Result};
use crate::fsio;
use crate::git::repo::Git;
use crate::name::{SecretName, VaultName};
use crate::secret::SecretValue;
use crate::store::layout::{self, MAX_MANIFEST_LEN, StoreFile};
use crate::store::layout::{
    MANIFEST_FILE, MAX_SECRET_FILE_LEN, MAX_VAULT_KEY_FILE_LEN, VAULT_KEY_FILE,
};
use crate::store::manifest::{Entry, Manifest};
use crate::store::root::Store;
use crate::store::team;

/// The label of the working tree in diffs.
pub const WORKING_TREE: &str = "working tree";

/// The files of one vault in one state, as bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VaultFiles {
    /// `vault.toml`.
    pub manifest: Vec<u8>,
    /// `vault-key.age`, if present.
    pub vault_key: Option<Vec<u8>>,
    /// Every `<name>.age` file with a valid secret name.
    pub secrets: BTreeMap<SecretName, Vec<u8>>,
}

/// One state of a store: its vaults' files.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// What the state is, for messages: `HEAD`, `working tree`…
    pub label: String,
    /// The vaults, by name.
    pub vaults: BTreeMap<VaultName, VaultFiles>,
}

impl Snapshot {
    /// Reads the store's current files (every vault, or only `only`), each
    /// vault under its shared lock.
    pub fn from_store(store: &Store, only: Option<&VaultName>) -> Result<Snapshot> {
        let mut snap = Snapshot {
            label: WORKING_TREE.into(),
            vaults: BTreeMap::new(),
        };
        for name in store.vault_names()? {
            if only.is_some_and(|o| *o != name) {
                continue;
            }
            let vault = store.vault(&name)?;
            let _read = vault.read()?; // the lock, and a finished journal
            let dir = vault.dir();
            let mut files = VaultFiles {
                manifest: fsio::read_file(&dir.join(MANIFEST_FILE), MAX_MANIFEST_LEN)?,
                ..VaultFiles::default()
            };
            let key_path = dir.join(VAULT_KEY_FILE);
            if fsio::check_not_symlink(&key_path)? {
                files.vault_key = Some(fsio::read_file(&key_path, MAX_VAULT_KEY_FILE_LEN)?);
            }
            for entry in layout::list_vault_dir(dir, &name)? {
                if let StoreFile::Secret(_, secret) = entry.kind {
                    let bytes = fsio::read_file(&entry.path, MAX_SECRET_FILE_LEN)?;
                    files.secrets.insert(secret, bytes);
                }
            }
            snap.vaults.insert(name, files);
        }
        Ok(snap)
    }

    /// Reads the store as it is in `commit`, through git. `prefix` is the
    /// store directory relative to the top of the repository (`vaults`),
    /// `/`-separated. A store or vault absent from the commit is empty.
    pub fn from_git(
        git: &Git,
        commit: &str,
        prefix: &str,
        only: Option<&VaultName>,
        label: &str,
    ) -> Result<Snapshot> {
        Snapshot::read_git(git, commit, prefix, only, label, true)
    }

    /// Reads each vault's manifest and `vault-key.age` at `commit`, as
    /// [`Snapshot::from_git`] does, but no secret file: what continuity
    /// checks need, without reading 10,000 blobs they do not look at.
    pub fn keys_from_git(git: &Git, commit: &str, prefix: &str, label: &str) -> Result<Snapshot> {
        Snapshot::read_git(git, commit, prefix, None, label, false)
    }

    fn read_git(
        git: &Git,
        commit: &str,
        prefix: &str,
        only: Option<&VaultName>,
        label: &str,
        with_secrets: bool,
    ) -> Result<Snapshot> {
        let prefix = prefix.trim_end_matches('/');
        let listing_prefix = match only {
            Some(v) if prefix.is_empty() => v.to_string(),
            Some(v) => format!("{prefix}/{v}"),
            None => prefix.to_owned(),
        };
        let mut wanted = Vec::new();
        for e in git.ls_tree(commit, &listing_prefix)? {
            let rel = if prefix.is_empty() {
                e.path.as_str()
            } else {
                match e
                    .path
                    .strip_prefix(prefix)
                    .and_then(|r| r.strip_prefix('/'))
                {
                    Some(r) => r,
                    None => continue,
                }
            };
            if !e.is_file() {
                continue;
            }
            let (vault, kind) = match layout::classify(rel) {
                StoreFile::Manifest(v) => (v, FileKind::Manifest),
                StoreFile::VaultKey(v) => (v, FileKind::VaultKey),
                StoreFile::Secret(v, s) if with_secrets => (v, FileKind::Secret(s)),
                _ => continue,
            };
            wanted.push((vault, kind, e.oid));
        }
        let oids: Vec<String> = wanted.iter().map(|(_, _, o)| o.clone()).collect();
        let blobs = git.read_blobs(&oids, MAX_MANIFEST_LEN)?;
        let mut all: BTreeMap<VaultName, (Option<Vec<u8>>, VaultFiles)> = BTreeMap::new();
        for ((vault, kind, _), blob) in wanted.into_iter().zip(blobs) {
            let Some(bytes) = blob else { continue };
            let slot = all.entry(vault).or_default();
            match kind {
                FileKind::Manifest => slot.0 = Some(bytes),
                FileKind::VaultKey => slot.1.vault_key = Some(bytes),
                FileKind::Secret(s) => {
                    slot.1.secrets.insert(s, bytes);
                }
            }
        }
        let vaults = all
            .into_iter()
            .filter_map(|(name, (manifest, mut files))| {
                files.manifest = manifest?;
                Some((name, files))
            })
            .collect();
        Ok(Snapshot {
            label: label.to_owned(),
            vaults,
        })
    }
}

enum FileKind {
    Manifest,
    VaultKey,
    Secret(SecretName),
}

/// How a vault differs between two states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VaultChange {
    /// Only in the new state.
    Added,
    /// Only in the old state.
    Removed,
    /// In both, with differences.
    Modified,
}

/// How a secret differs between two states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretChange {
    /// Only in the new state.
    Added,
    /// Only in the old state.
    Removed,
    /// Its value changed (or, without a key, its file did).
    Changed,
    /// Its file was re-encrypted; the value is the same.
    Reencrypted,
    /// Only its manifest entry changed (a rotation mark, an acceptance).
    Metadata,
    /// It fails verification in one of the states, so it was not compared.
    Unverified,
}

impl SecretChange {
    /// A stable identifier, for JSON.
    pub fn as_str(&self) -> &'static str {
        match self {
            SecretChange::Added => "added",
            SecretChange::Removed => "removed",
            SecretChange::Changed => "changed",
            SecretChange::Reencrypted => "re-encrypted",
            SecretChange::Metadata => "metadata",
            SecretChange::Unverified => "unverified",
        }
    }
}

/// One secret's difference.
#[derive(Debug)]
pub struct SecretDiff {
    /// The secret.
    pub name: SecretName,
    /// What changed.
    pub change: SecretChange,
    /// The value's length in the old state, if known.
    pub old_len: Option<usize>,
    /// The value's length in the new state, if known.
    pub new_len: Option<usize>,
    /// Whether both values were decrypted and compared.
    pub compared: bool,
    /// Changes to the entry besides the value (rotation marks, acceptance).
    pub notes: Vec<String>,
    /// Why it was not compared (`in HEAD: its manifest entry does not
    /// verify…`), or a problem of an added secret.
    pub problem: Option<String>,
    /// The old value, when the caller asked for values and it verified.
    pub old_value: Option<SecretValue>,
    /// The new value, likewise.
    pub new_value: Option<SecretValue>,
}

/// One vault's differences.
#[derive(Debug)]
pub struct VaultDiff {
    /// The vault.
    pub name: VaultName,
    /// Added, removed or modified.
    pub change: VaultChange,
    /// True if the current vault key changed and the new keyring does not
    /// show that it carries the old one (see `key_epoch`).
    pub key_replaced: bool,
    /// `Some(epoch)` if the current vault key changed to a new epoch whose
    /// keyring (opened with the user's key) holds the old current key: a
    /// rotation, not a replacement.
    pub key_epoch: Option<u32>,
    /// Recipients added, removed or given another key.
    pub recipients: Vec<RecipientChange>,
    /// Problems of the vault as a whole (a manifest that does not parse,
    /// recipients that do not verify), each naming its state.
    pub problems: Vec<String>,
    /// Whether a key opened the vault in the old and in the new state.
    pub keyed: (bool, bool),
    /// The secrets that differ, by name.
    pub secrets: Vec<SecretDiff>,
}

/// The differences between two states.
#[derive(Debug)]
pub struct StoreDiff {
    /// The old state's label.
    pub from: String,
    /// The new state's label.
    pub to: String,
    /// The vaults that differ, by name.
    pub vaults: Vec<VaultDiff>,
}

impl StoreDiff {
    /// Returns true if nothing differs.
    pub fn is_empty(&self) -> bool {
        self.vaults.is_empty()
    }
}

/// Opens a `vault-key.age` with the user's identities: `Ok(None)` if none
/// of them is a recipient.
pub fn open_vault_key(bytes: &[u8], path: &Path, ids: &Identities) -> Result<Option<VaultKey>> {
    match crypto::decrypt_vault_key(bytes, path, ids.iter()) {
        Ok(k) => Ok(Some(k)),
        Err(DecryptFailure::NoMatch) => Ok(None),
        Err(DecryptFailure::Other(e)) => Err(e),
    }
}

/// The state of one side of a vault, opened for comparison.
struct Side<'a> {
    label: &'a str,
    manifest: Option<Manifest>,
    files: Option<&'a VaultFiles>,
    key: Option<VaultKey>,
}

/// Compares `old` with `new`. With `ids`, vaults the user can open are
/// verified and their values compared; with `keep_values`, the values of
/// changed secrets are returned too (for `--show-values`).
pub fn diff(
    old: &Snapshot,
    new: &Snapshot,
    ids: Option<&Identities>,
    keep_values: bool,
) -> Result<StoreDiff> {
    let mut out = StoreDiff {
        from: old.label.clone(),
        to: new.label.clone(),
        vaults: Vec::new(),
    };
    let names: BTreeSet<&VaultName> = old.vaults.keys().chain(new.vaults.keys()).collect();
    for name in names {
        let (a, b) = (old.vaults.get(name), new.vaults.get(name));
        if a == b {
            continue;
        }
        if let Some(d) = diff_vault(name, (&old.label, a), (&new.label, b), ids, keep_values)? {
            out.vaults.push(d);
        }
    }
    Ok(out)
}

fn open_side<'a>(
    vault: &VaultName,
    label: &'a str,
    files: Option<&'a VaultFiles>,
    ids: Option<&Identities>,
    problems: &mut Vec<String>,
    reuse: Option<(&VaultFiles, &VaultKey)>,
) -> Result<Side<'a>> {
    let mut side = Side {
        label,
        manifest: None,
        files,
        key: None,
    };
    let Some(f) = files else {
        return Ok(side);
    };
    let path = Path::new(vault.as_str()).join(MANIFEST_FILE);
    match Manifest::parse(&f.manifest, &path) {
        Ok(m) => side.manifest = Some(m),
        Err(e) => {
            problems.push(format!("in {label}: {e}"));
            return Ok(side);
        }
    }
    let (Some(ids), Some(kb)) = (ids, &f.vault_key) else {
        return Ok(side);
    };
    // The same vault-key.age in both states is opened once (a hardware
    // key is asked once).
    let key = match reuse {
        Some((other, k)) if other.vault_key.as_ref() == Some(kb) => Some(reopen(k, &path)?),
        _ => open_vault_key(kb, &Path::new(vault.as_str()).join(VAULT_KEY_FILE), ids)
            .unwrap_or_else(|e| {
                problems.push(format!("in {label}: {e}"));
                None
            }),
    };
    if let Some(k) = key {
        let m = side.manifest.as_ref().expect("parsed above");
        if k.public().to_string() != m.public_key {
            problems.push(format!(
                "in {label}: {VAULT_KEY_FILE} does not match the manifest's public key"
            ));
        } else {
            side.key = Some(k);
        }
    }
    Ok(side)
}

/// Copies a vault key (the type is deliberately not `Clone`).
fn reopen(k: &VaultKey, path: &Path) -> Result<VaultKey> {
    VaultKey::from_identity_file(&k.to_identity_file(k.listed_recipients()), path)
}

fn diff_vault(
    name: &VaultName,
    (old_label, old_files): (&str, Option<&VaultFiles>),
    (new_label, new_files): (&str, Option<&VaultFiles>),
    ids: Option<&Identities>,
    keep_values: bool,
) -> Result<Option<VaultDiff>> {
    let mut problems = Vec::new();
    let old = open_side(name, old_label, old_files, ids, &mut problems, None)?;
    let reuse = match (&old.files, &old.key) {
        (Some(f), Some(k)) => Some((*f, k)),
        _ => None,
    };
    let new = open_side(name, new_label, new_files, ids, &mut problems, reuse)?;
    let change = match (old_files, new_files) {
        (None, Some(_)) => VaultChange::Added,
        (Some(_), None) => VaultChange::Removed,
        _ => VaultChange::Modified,
    };
    let mut d = VaultDiff {
        name: name.clone(),
        change,
        key_replaced: false,
        key_epoch: None,
        recipients: Vec::new(),
        problems,
        keyed: (old.key.is_some(), new.key.is_some()),
        secrets: Vec::new(),
    };
    let empty = BTreeMap::new();
    let (om, nm) = (old.manifest.as_ref(), new.manifest.as_ref());
    if (old_files.is_some() && om.is_none()) || (new_files.is_some() && nm.is_none()) {
        // A manifest that does not parse: nothing more can be said.
        return Ok(Some(d));
    }
    if let (Some(o), Some(n)) = (om, nm) {
        d.key_replaced = o.public_key != n.public_key;
        if d.key_replaced
            && let Some(k) = &new.key
            && k.contains_public(&o.public_key)
        {
            d.key_replaced = false;
            d.key_epoch = Some(k.epoch());
        }
        d.recipients = team::diff(&o.recipients, &n.recipients);
        let recipients_touched = o.recipients != n.recipients
            || o.recipients_mac != n.recipients_mac
            || o.public_key != n.public_key;
        if recipients_touched {
            for side in [&old, &new] {
                if let (Some(k), Some(m)) = (&side.key, &side.manifest)
                    && !m.recipients_verify(name, k)
                {
                    d.problems.push(format!(
                        "in {}: its recipients do not verify (edited without the vault key)",
                        side.label
                    ));
                }
            }
        }
    } else if let Some(n) = nm {
        d.recipients = team::diff(&BTreeMap::new(), &n.recipients);
    }
    let old_entries = om.map_or(&empty, |m| &m.secrets);
    let new_entries = nm.map_or(&empty, |m| &m.secrets);
    let secrets: BTreeSet<&SecretName> = old_entries.keys().chain(new_entries.keys()).collect();
    for s in secrets {
        let (oe, ne) = (old_entries.get(s), new_entries.get(s));
        let of = old.files.and_then(|f| f.secrets.get(s));
        let nf = new.files.and_then(|f| f.secrets.get(s));
        if oe == ne && of == nf {
            continue;
        }
        d.secrets.push(diff_secret(
            name,
            s,
            (&old, oe, of),
            (&new, ne, nf),
            keep_values,
        ));
    }
    let changed = !d.secrets.is_empty()
        || !d.recipients.is_empty()
        || d.key_replaced
        || !d.problems.is_empty()
        || change != VaultChange::Modified;
    Ok(changed.then_some(d))
}

/// What one state says about a secret.
enum Checked {
    /// It verified; the value if a key opened it, and its length.
    Fine(Option<SecretValue>, Option<usize>),
    /// It failed verification.
    Problem(String),
}

fn check(
    format: i64,
    vault: &VaultName,
    name: &SecretName,
    e: &Entry,
    file: Option<&Vec<u8>>,
    key: Option<&VaultKey>,
) -> Checked {
    let Some(file) = file else {
        return Checked::Problem(IntegrityProblem::MissingFile.to_string());
    };
    if crypto::digest(file) != e.digest {
        return Checked::Problem(IntegrityProblem::DigestMismatch.to_string());
    }
    let Some(key) = key else {
        return Checked::Fine(None, plaintext_len(file));
    };
    if e.mac.is_none() {
        return Checked::Problem(IntegrityProblem::Unverified.to_string());
    }
    if !Manifest::entry_verifies_as(format, vault, name, e, key) {
        return Checked::Problem(IntegrityProblem::BadMac.to_string());
    }
    match key.decrypt_value_at(e.epoch, file) {
        Ok(v) => {
            let len = v.len();
            Checked::Fine(Some(v), Some(len))
        }
        Err(p) => Checked::Problem(p.to_string()),
    }
}

fn entry_notes(old: &Entry, new: &Entry) -> Vec<String> {
    let mut notes = Vec::new();
    match (&old.rotation, &new.rotation) {
        (None, Some(r)) => {
            let who: Vec<&str> = r.removed.iter().map(|n| n.as_str()).collect();
            notes.push(format!("marked for rotation ({} removed)", who.join(", ")));
        }
        (Some(_), None) => notes.push("rotation mark cleared".into()),
        (Some(a), Some(b)) if a != b => notes.push("rotation mark changed".into()),
        _ => {}
    }
    match (old.mac.is_some(), new.mac.is_some()) {
        (false, true) => notes.push("contribution accepted".into()),
        (true, false) => notes.push("now an unverified contribution".into()),
        _ => {}
    }
    notes
}

fn diff_secret(
    vault: &VaultName,
    name: &SecretName,
    (old, oe, of): (&Side<'_>, Option<&Entry>, Option<&Vec<u8>>),
    (new, ne, nf): (&Side<'_>, Option<&Entry>, Option<&Vec<u8>>),
    keep_values: bool,
) -> SecretDiff {
    let mut d = SecretDiff {
        name: name.clone(),
        change: SecretChange::Changed,
        old_len: None,
        new_len: None,
        compared: false,
        notes: Vec::new(),
        problem: None,
        old_value: None,
        new_value: None,
    };
    let checked = |side: &Side<'_>, e: Option<&Entry>, f: Option<&Vec<u8>>| {
        let format = side.manifest.as_ref().map_or(2, |m| m.format);
        e.map(|e| check(format, vault, name, e, f, side.key.as_ref()))
    };
    let (oc, nc) = (checked(old, oe, of), checked(new, ne, nf));
    let keep = |v: Option<SecretValue>| if keep_values { v } else { None };
    match (oc, nc) {
        (None, None) => {
            // Only a file without an entry changed: verify reports it.
            d.change = SecretChange::Unverified;
            d.problem = Some(format!(
                "in {}: its file is not listed in the manifest",
                new.label
            ));
        }
        (None, Some(n)) => {
            d.change = SecretChange::Added;
            match n {
                Checked::Fine(v, len) => {
                    d.new_len = len;
                    d.new_value = keep(v);
                }
                Checked::Problem(p) => d.problem = Some(format!("in {}: {p}", new.label)),
            }
        }
        (Some(o), None) => {
            d.change = SecretChange::Removed;
            match o {
                Checked::Fine(v, len) => {
                    d.old_len = len;
                    d.old_value = keep(v);
                }
                Checked::Problem(_) => d.old_len = of.and_then(|f| plaintext_len(f)),
            }
        }
        (Some(Checked::Problem(p)), Some(_)) => {
            d.change = SecretChange::Unverified;
            d.problem = Some(format!("in {}: {p}", old.label));
        }
        (Some(_), Some(Checked::Problem(p))) => {
            d.change = SecretChange::Unverified;
            d.problem = Some(format!("in {}: {p}", new.label));
        }
        (Some(Checked::Fine(ov, ol)), Some(Checked::Fine(nv, nl))) => {
            d.old_len = ol;
            d.new_len = nl;
            d.notes = entry_notes(oe.expect("checked"), ne.expect("checked"));
            let same_file = of == nf;
            match (ov, nv) {
                (Some(a), Some(b)) => {
                    d.compared = true;
                    d.change = if !a.ct_eq(&b) {
                        SecretChange::Changed
                    } else if same_file {
                        SecretChange::Metadata
                    } else {
                        SecretChange::Reencrypted
                    };
                    if d.change == SecretChange::Changed {
                        d.old_value = keep(Some(a));
                        d.new_value = keep(Some(b));
                    }
                }
                _ => {
                    d.change = if same_file {
                        SecretChange::Metadata
                    } else {
                        SecretChange::Changed
                    };
                }
            }
        }
    }
    d
}

/// Returns a line diff of two values: each line prefixed with `-`, `+` or
/// a space, every line ending in a newline. A missing side is empty.
pub fn value_diff(
    old: Option<&SecretValue>,
    new: Option<&SecretValue>,
) -> zeroize::Zeroizing<String> {
    let (a, b) = (
        old.map_or("", |v| v.expose_secret()),
        new.map_or("", |v| v.expose_secret()),
    );
    let mut out = zeroize::Zeroizing::new(String::new());
    let diff = similar::TextDiff::from_lines(a, b);
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => '-',
            similar::ChangeTag::Insert => '+',
            similar::ChangeTag::Equal => ' ',
        };
        out.push(sign);
        out.push_str(change.value());
        if !change.value().ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::manifest::Entry;
    use crate::time::Time;

    fn value(s: &str) -> SecretValue {
        SecretValue::from_string(s.into()).unwrap()
    }

    #[test]
    fn plaintext_length_is_read_from_the_size_alone() {
        let k = VaultKey::generate();
        for len in [1, 7, 8, 100, 65535, 65536, 65537, 131072] {
            let ct = k.encrypt_value(&value(&"x".repeat(len))).unwrap();
            assert_eq!(plaintext_len(&ct), Some(len), "length {len}");
        }
        assert_eq!(plaintext_len(b"not age"), None);
    }

    #[test]
    fn value_diff_shows_lines() {
        let d = value_diff(Some(&value("a\nb\nc")), Some(&value("a\nB\nc")));
        assert_eq!(d.as_str(), " a\n-b\n+B\n c\n");
        let d = value_diff(None, Some(&value("new")));
        assert_eq!(d.as_str(), "+new\n");
    }

    /// Builds a one-vault snapshot holding `secrets` under `key`.
    fn snapshot(
        label: &str,
        key: &VaultKey,
        ids_recipient: &crate::crypto::recipient::RecipientKey,
        secrets: &[(&str, &str)],
    ) -> Snapshot {
        let vault: VaultName = "api-keys".parse().unwrap();
        let t: Time = "2026-01-01T00:00:00.000Z".parse().unwrap();
        let mut recipients = BTreeMap::new();
        recipients.insert("alice".parse().unwrap(), ids_recipient.clone());
        let mut m = Manifest::new(t, key.public().to_string(), recipients.clone());
        m.seal_recipients(&vault, key);
        let mut files = VaultFiles::default();
        let keys: Vec<&crate::crypto::recipient::RecipientKey> = recipients.values().collect();
        files.vault_key = Some(
            crypto::encrypt_to_keys(
                &keys,
                key.to_identity_file(&recipients).as_bytes(),
                age::NoCallbacks,
            )
            .unwrap(),
        );
        for (n, v) in secrets {
            let name: SecretName = n.parse().unwrap();
            let ct = key.encrypt_value(&value(v)).unwrap();
            let mut e = Entry {
                epoch: 1,
                created: t,
                updated: t,
                digest: crypto::digest(&ct),
                mac: None,
                rotation: None,
            };
            Manifest::seal_entry(&vault, &name, &mut e, key);
            m.secrets.insert(name.clone(), e);
            files.secrets.insert(name, ct);
        }
        files.manifest = m.to_bytes();
        Snapshot {
            label: label.into(),
            vaults: [(vault, files)].into(),
        }
    }

    #[test]
    fn reports_added_removed_changed_and_reencrypted_without_values() {
        let id = age::x25519::Identity::generate();
        use age::secrecy::ExposeSecret;
        let ids = Identities::from_text(
            id.to_string().expose_secret().as_bytes(),
            "test",
            age::NoCallbacks,
        )
        .unwrap();
        let r: crate::crypto::recipient::RecipientKey = id.to_public().to_string().parse().unwrap();
        let key = VaultKey::generate();
        let old = snapshot(
            "HEAD",
            &key,
            &r,
            &[
                ("same-one", "unchanged value"),
                ("gone-one", "old"),
                ("edit-one", "before"),
            ],
        );
        let mut new = snapshot(
            WORKING_TREE,
            &key,
            &r,
            &[
                ("same-one", "unchanged value"),
                ("edit-one", "after!!"),
                ("new-one", "fresh"),
            ],
        );
        // Keep `same-one` byte-identical except for a re-encryption check below.
        let d = diff(&old, &new, Some(&ids), false).unwrap();
        let v = &d.vaults[0];
        let kinds: Vec<(&str, SecretChange)> = v
            .secrets
            .iter()
            .map(|s| (s.name.as_str(), s.change))
            .collect();
        assert_eq!(
            kinds,
            [
                ("edit-one", SecretChange::Changed),
                ("gone-one", SecretChange::Removed),
                ("new-one", SecretChange::Added),
                ("same-one", SecretChange::Reencrypted),
            ]
        );
        let edit = &v.secrets[0];
        assert_eq!((edit.old_len, edit.new_len), (Some(6), Some(7)));
        assert!(edit.old_value.is_none(), "values only when asked");
        // A file swapped under its entry is reported, not compared.
        let vault: VaultName = "api-keys".parse().unwrap();
        let files = new.vaults.get_mut(&vault).unwrap();
        let n: SecretName = "edit-one".parse().unwrap();
        files
            .secrets
            .insert(n, key.encrypt_value(&value("forged")).unwrap());
        let d = diff(&old, &new, Some(&ids), true).unwrap();
        let edit = &d.vaults[0].secrets[0];
        assert_eq!(edit.change, SecretChange::Unverified);
        assert!(edit.problem.as_deref().unwrap().contains("in working tree"));
        assert!(edit.new_value.is_none());
        // Without a key: changes are still visible, values are not compared.
        let d = diff(&old, &new, None, true).unwrap();
        let v = &d.vaults[0];
        assert_eq!(v.keyed, (false, false));
        assert!(
            v.secrets
                .iter()
                .all(|s| !s.compared && s.old_value.is_none())
        );
    }
}
