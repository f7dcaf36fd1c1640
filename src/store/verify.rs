//! `verify`: everything that can be checked about a store, with or without
//! a key.
//!
//! Without a key: structure. Every entry has its file and every file its
//! entry, names are valid, nothing is a link, files are armored age with
//! the right number of stanzas and within size limits, digests match, no
//! transaction is half applied, and `coffer.toml` agrees with each vault's
//! recipients. With a key: also the vault key against the manifest, the
//! recipients MAC, every entry's MAC, and that every secret decrypts.
//!
//! Before checking, verification finishes a change that was interrupted
//! after its commit point and removes temp files left by interrupted
//! commands, as any coffer command would, and says so: the state it then
//! checks is the one every later command sees.

use std::fs;
use std::path::Path;

use crate::crypto::identity::Identities;
use crate::crypto::recipient::RecipientKey;
use crate::crypto::{self, MAX_GREASE, VaultKey};
use crate::error::{Error, Result};
use crate::fsio;
use crate::fsio::TMP_PREFIX;
use crate::name::VaultName;
use crate::store::layout::MAX_MANIFEST_LEN;
use crate::store::layout::TRASH_PREFIX;
use crate::store::layout::{
    self, CONFIG_FILE, GITATTRIBUTES_FILE, GITIGNORE_FILE, JOURNAL, StoreFile,
};
use crate::store::layout::{
    MANIFEST_FILE, MAX_SECRET_FILE_LEN, MAX_VAULT_KEY_FILE_LEN, VAULT_KEY_FILE,
};
use crate::store::manifest::Manifest;
use crate::store::root::Store;
use crate::store::team;

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The secret concerned, if any.
    pub secret: Option<String>,
    /// A stable identifier for scripts (`digest-mismatch`, `bad-mac`…).
    pub kind: &'static str,
    /// What is wrong, for people. Never contains a value.
    pub message: String,
}

/// The findings for one vault.
#[derive(Clone, Debug, Default)]
pub struct VaultReport {
    /// The vault's name (as found on disk).
    pub name: String,
    /// Whether it was checked with its key.
    pub keyed: bool,
    /// How many secrets its manifest lists.
    pub secrets: usize,
    /// Problems: the store does not hold as it should.
    pub problems: Vec<Finding>,
    /// Warnings: worth knowing, not wrong (rotation due, leftovers).
    pub warnings: Vec<Finding>,
}

/// The findings for a store.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Problems outside any vault.
    pub problems: Vec<Finding>,
    /// Warnings outside any vault.
    pub warnings: Vec<Finding>,
    /// One report per vault, by name.
    pub vaults: Vec<VaultReport>,
}

impl Report {
    /// Returns true if there is no problem anywhere.
    pub fn ok(&self) -> bool {
        self.problems.is_empty() && self.vaults.iter().all(|v| v.problems.is_empty())
    }
}

fn finding(secret: Option<&str>, kind: &'static str, message: impl Into<String>) -> Finding {
    Finding {
        secret: secret.map(str::to_owned),
        kind,
        message: message.into(),
    }
}

/// Verifies the store. `only` restricts the check to some vaults;
/// `identities`, when given, adds the keyed checks for each vault they open.
pub fn verify(
    store: &Store,
    only: &[VaultName],
    identities: Option<&Identities>,
) -> Result<Report> {
    let mut report = Report::default();
    recover(store, &mut report)?;
    // Vault keys are opened before the lock (a hardware key may wait).
    let mut keys = open_keys(store, only, identities)?;
    let _lock = store.lock_read()?;
    let mut vault_dirs = scan_root(store, only, &mut report)?;
    for v in only {
        if !vault_dirs.contains(v) {
            return Err(Error::VaultNotFound {
                name: v.to_string(),
            });
        }
    }
    vault_dirs.sort();
    for name in vault_dirs {
        let key = keys.remove(&name);
        let held = identities.map(Identities::recipients).unwrap_or_default();
        report.vaults.push(verify_vault(store, &name, key, held)?);
    }
    Ok(report)
}

/// Finishes an interrupted change and removes leftover temp files, as any
/// command would, and records a warning for each thing it did.
fn recover(store: &Store, report: &mut Report) -> Result<()> {
    let recovered = store.recover()?;
    if recovered.journal {
        report.warnings.push(finding(
            None,
            "interrupted",
            "a change had been committed but not fully applied (a command was interrupted); it is now finished",
        ));
    }
    if recovered.temps > 0 {
        report.warnings.push(finding(
            None,
            "leftover",
            format!(
                "removed {} temporary file{} left by an interrupted command",
                recovered.temps,
                if recovered.temps == 1 { "" } else { "s" }
            ),
        ));
    }
    Ok(())
}

/// Unlocks the key of each vault to check (all, or those in `only`) with
/// `identities`; empty without identities. A failure to unlock is kept per
/// vault, to be reported by the keyed checks.
fn open_keys(
    store: &Store,
    only: &[VaultName],
    identities: Option<&Identities>,
) -> Result<std::collections::BTreeMap<VaultName, Result<VaultKey>>> {
    let mut keys = std::collections::BTreeMap::new();
    if let Some(ids) = identities {
        for name in store.vault_names()? {
            if !only.is_empty() && !only.contains(&name) {
                continue;
            }
            let unlocked = store.vault(&name).and_then(|v| v.unlock(ids));
            keys.insert(name, unlocked);
        }
    }
    Ok(keys)
}

/// Checks the entries of the store root (links, leftovers, stray files,
/// directory names) and returns the vault directories to verify (those in
/// `only`, or all), unsorted.
fn scan_root(store: &Store, only: &[VaultName], report: &mut Report) -> Result<Vec<VaultName>> {
    let root = store.root();
    let mut vault_dirs = Vec::new();
    for entry in fs::read_dir(root).map_err(|e| Error::io("list", root, e))? {
        let entry = entry.map_err(|e| Error::io("list", root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ft = entry
            .file_type()
            .map_err(|e| Error::io("inspect", entry.path(), e))?;
        // Files coffer (or `coffer git setup`) writes here: a committed
        // link in their place would aim those writes elsewhere (coffer
        // never writes through one, and says so here).
        if [CONFIG_FILE, GITIGNORE_FILE, GITATTRIBUTES_FILE, JOURNAL].contains(&name.as_str()) {
            if ft.is_symlink() {
                report.problems.push(finding(
                    None,
                    "symlink",
                    format!("{name} is a symbolic link"),
                ));
            }
            continue;
        }
        if name.starts_with(TMP_PREFIX) || name.starts_with(TRASH_PREFIX) {
            report.warnings.push(finding(
                None,
                "leftover",
                format!(
                    "{name} is left over from an interrupted command (the next write removes it)"
                ),
            ));
            continue;
        }
        if name.starts_with('.') {
            continue;
        }
        if ft.is_symlink() {
            report.problems.push(finding(
                None,
                "symlink",
                format!("{name} is a symbolic link; coffer refuses links inside the store"),
            ));
            continue;
        }
        if !ft.is_dir() {
            report.problems.push(finding(
                None,
                "unexpected-file",
                format!("{name} is not part of a coffer store"),
            ));
            continue;
        }
        match name.parse::<VaultName>() {
            Ok(v) => {
                if only.is_empty() || only.contains(&v) {
                    vault_dirs.push(v);
                }
            }
            Err(e) => report.problems.push(finding(
                None,
                "bad-name",
                format!("directory {name:?} is not a vault: {e}"),
            )),
        }
    }
    Ok(vault_dirs)
}

/// Verifies one vault: its manifest, vault key file, pending team changes,
/// entries and files, then (with `key`) the keyed checks. `held` are the
/// recipients of the identities at hand: one the manifest lists must open
/// the vault key.
fn verify_vault(
    store: &Store,
    name: &VaultName,
    key: Option<Result<VaultKey>>,
    held: &[RecipientKey],
) -> Result<VaultReport> {
    let dir = store.root().join(name.as_str());
    let mut r = VaultReport {
        name: name.to_string(),
        ..Default::default()
    };
    let Some(manifest) = load_manifest(&dir, &mut r) else {
        return Ok(r);
    };
    r.secrets = manifest.secrets.len();
    check_vault_key_file(&dir, &manifest, &mut r);
    check_pending_team(store, name, &manifest, &mut r);
    // Each secret file is read once, on every core, for the checks with
    // and without the key; what they find is reported in this order.
    let usable = match &key {
        Some(Ok(k)) if k.is_current(&manifest.public_key, manifest.epoch) => Some(k),
        _ => None,
    };
    let mut entries = check_entries(&dir, name, &manifest, usable);
    for e in &mut entries {
        r.problems.append(&mut e.keyless);
    }
    for (sname, entry) in &manifest.secrets {
        rotation_warning(sname, entry, &mut r);
    }
    check_files_listed(&dir, name, &manifest, &mut r)?;
    if let Some(key) = key {
        keyed_checks(name, &manifest, key, held, entries, &mut r);
    }
    Ok(r)
}

/// Reads and parses the vault's manifest; a missing or unreadable one is a
/// problem recorded in `r`, and `None` (nothing else can be checked).
fn load_manifest(dir: &Path, r: &mut VaultReport) -> Option<Manifest> {
    let manifest_path = dir.join(MANIFEST_FILE);
    if !manifest_path.exists() {
        r.problems.push(finding(
            None,
            "no-manifest",
            "the directory has no vault.toml",
        ));
        return None;
    }
    match fsio::read_file(&manifest_path, MAX_MANIFEST_LEN)
        .and_then(|b| Manifest::parse_strict(&b, &manifest_path))
    {
        Ok(m) => Some(m),
        Err(e) => {
            r.problems
                .push(finding(None, "bad-manifest", e.to_string()));
            None
        }
    }
}

/// Checks the vault key file without a key: readable, sound, and one
/// stanza per recipient the manifest lists.
fn check_vault_key_file(dir: &Path, manifest: &Manifest, r: &mut VaultReport) {
    let key_path = dir.join(VAULT_KEY_FILE);
    let key_bytes = match fsio::read_file(&key_path, MAX_VAULT_KEY_FILE_LEN).map_err(read_problem) {
        Ok(b) => Some(b),
        Err(e) => {
            r.problems
                .push(finding(None, "vault-key", format!("vault-key.age: {e}")));
            None
        }
    };
    if let Some(bytes) = &key_bytes {
        match crypto::count_stanzas(bytes) {
            Ok(c) if c.real != manifest.recipients.len() || c.grease > MAX_GREASE => {
                r.problems.push(finding(
                    None,
                    "vault-key-stanzas",
                    format!(
                        "vault-key.age has {} recipient stanzas but the manifest lists {} recipients",
                        c.real,
                        manifest.recipients.len()
                    ),
                ))
            }
            Ok(_) => {}
            Err(e) => r
                .problems
                .push(finding(None, "vault-key", format!("vault-key.age: {e}"))),
        }
    }
}

/// Checks `coffer.toml` against the manifest's recipients (unauthenticated
/// without a key): a change not yet approved is a problem.
fn check_pending_team(store: &Store, name: &VaultName, manifest: &Manifest, r: &mut VaultReport) {
    let desired = store.config().desired_for(name);
    let pending = team::diff(&manifest.recipients, &desired);
    if !pending.is_empty() {
        let list: Vec<String> = pending.iter().map(|c| c.to_string()).collect();
        r.problems.push(finding(
            None,
            "unapproved-recipients",
            format!(
                "coffer.toml asks for recipient changes not yet approved: {}; someone who can open the vault must run `coffer recipients approve --vault {name}`",
                list.join(", ")
            ),
        ));
    }
}

/// What the checks of one manifest entry found.
struct EntryFindings {
    /// Without the key: the file, its stanzas, its digest, a missing MAC.
    keyless: Vec<Finding>,
    /// With the key: the entry's MAC, the file's decryption.
    keyed: Vec<Finding>,
}

/// Checks every manifest entry, in parallel, reading each file once: that
/// it has a sound file matching its digest and is verified (has a MAC);
/// with `key`, that a sealed entry's MAC verifies and its file (when it
/// matches the digest) decrypts. Returns the findings in name order.
fn check_entries(
    dir: &Path,
    name: &VaultName,
    manifest: &Manifest,
    key: Option<&VaultKey>,
) -> Vec<EntryFindings> {
    use rayon::prelude::*;
    // A vault directory that cannot be opened (a link swapped in since it
    // was listed) is every entry's problem: its files are not read by path
    // instead, which would follow the link.
    let files = fsio::Dir::open(dir).map_err(read_problem);
    let entries: Vec<_> = manifest.secrets.iter().collect();
    entries
        .into_par_iter()
        .map(|(sname, entry)| {
            let s = Some(sname.as_str());
            let mut keyless = Vec::new();
            let mut keyed = Vec::new();
            let file = layout::secret_file_name(sname);
            let bytes = match &files {
                Ok(files) => files
                    .read_file(&file, MAX_SECRET_FILE_LEN)
                    .map_err(read_problem),
                Err(problem) => Err(problem.clone()),
            };
            let sound = match bytes {
                Err(e) => {
                    keyless.push(finding(s, "secret-file", e));
                    None
                }
                Ok(bytes) => {
                    match crypto::count_stanzas(&bytes) {
                        Ok(c) if c.real != 1 || c.grease > MAX_GREASE => keyless.push(finding(
                            s,
                            "secret-stanzas",
                            format!("its file has {} recipient stanzas, not 1", c.real),
                        )),
                        Ok(_) => {}
                        Err(e) => keyless.push(finding(
                            s,
                            "secret-file",
                            format!("its file is malformed: {e}"),
                        )),
                    }
                    if crypto::digest(&bytes) == entry.digest {
                        Some(bytes)
                    } else {
                        keyless.push(finding(
                            s,
                            "digest-mismatch",
                            "its file does not match the manifest's digest (replaced, rolled back or damaged)",
                        ));
                        None
                    }
                }
            };
            if entry.mac.is_none() {
                keyless.push(finding(
                    s,
                    "unverified",
                    format!("an unverified contribution: a recipient must accept it with `coffer verify --accept --vault {name}`"),
                ));
            } else if let Some(key) = key {
                if !manifest.entry_verifies(name, sname, entry, key) {
                    keyed.push(finding(
                        s,
                        "bad-mac",
                        "its manifest entry does not verify (written without the vault key, or damaged)",
                    ));
                } else if let Some(bytes) = sound
                    && let Err(p) = key.decrypt_value_at(entry.epoch, &bytes)
                {
                    keyed.push(finding(s, "decrypt", format!("it does not decrypt: {p}")));
                }
            }
            EntryFindings { keyless, keyed }
        })
        .collect()
}

/// Warns of a value due for rotation.
fn rotation_warning(
    sname: &crate::name::SecretName,
    entry: &crate::store::manifest::Entry,
    r: &mut VaultReport,
) {
    if let Some(rot) = &entry.rotation {
        let who: Vec<&str> = rot.removed.iter().map(|n| n.as_str()).collect();
        r.warnings.push(finding(
            Some(sname.as_str()),
            "rotation-due",
            format!(
                "due for rotation since {} ({} removed): set a new value with `coffer update`",
                rot.since,
                who.join(", ")
            ),
        ));
    }
}

/// Checks that every file in the vault directory belongs: listed in the
/// manifest, or a leftover temp file (a warning).
fn check_files_listed(
    dir: &Path,
    name: &VaultName,
    manifest: &Manifest,
    r: &mut VaultReport,
) -> Result<()> {
    for entry in layout::list_vault_dir(dir, name)? {
        let fname = entry.file_name;
        let listed = match entry.kind {
            StoreFile::Manifest(_) | StoreFile::VaultKey(_) => continue,
            // Only temporary files are left over by a command; a journal or
            // trash directory inside a vault is nothing coffer made.
            StoreFile::Transient if fname.starts_with(TMP_PREFIX) => {
                r.warnings.push(finding(
                    None,
                    "leftover",
                    format!(
                        "{fname} is left over from an interrupted command (the next write removes it)"
                    ),
                ));
                continue;
            }
            StoreFile::Secret(_, n) => manifest.secrets.contains_key(&n),
            _ => false,
        };
        if !listed {
            r.problems.push(finding(
                None,
                "unlisted-file",
                format!("{fname} is not listed in the manifest"),
            ));
        }
    }
    Ok(())
}

/// Says why a store file could not be read, as a verify finding.
fn read_problem(e: Error) -> String {
    match e {
        Error::Symlink { .. } => "it is a symbolic link".into(),
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            "its file is missing".into()
        }
        Error::Io { source, .. } => source.to_string(),
        e => e.to_string(),
    }
}

/// The checks that need the vault key: that `key` (the outcome of
/// unlocking) opened the vault key the manifest names, the recipients MAC
/// and list, and every entry's MAC and decryption.
fn keyed_checks(
    name: &VaultName,
    manifest: &Manifest,
    key: Result<VaultKey>,
    held: &[RecipientKey],
    entries: Vec<EntryFindings>,
    r: &mut VaultReport,
) {
    let Some(key) = opened_key(manifest, key, held, r) else {
        return;
    };
    r.keyed = true;
    if !key.is_current(&manifest.public_key, manifest.epoch) {
        // The manifest changed between unlock and our read: report, don't guess.
        r.problems.push(finding(
            None,
            "vault-key",
            "the vault key does not match the manifest",
        ));
        return;
    }
    check_recipients_keyed(name, manifest, &key, r);
    for mut e in entries {
        r.problems.append(&mut e.keyed);
    }
}

/// Returns the key that opened the vault, or records why there is none.
fn opened_key(
    manifest: &Manifest,
    key: Result<VaultKey>,
    held: &[RecipientKey],
    r: &mut VaultReport,
) -> Option<VaultKey> {
    match key {
        Ok(k) => Some(k),
        Err(Error::NoMatchingIdentity { .. }) => {
            // A key the manifest lists that cannot open the vault key means
            // vault-key.age was replaced or damaged (or the manifest lists a
            // key it was never encrypted to): nobody may be able to open
            // the vault, and CI holding such a key must fail, not skip.
            if let Some((who, _)) = manifest.recipients.iter().find(|(_, k)| held.contains(k)) {
                r.problems.push(finding(
                    None,
                    "vault-key-unopenable",
                    format!(
                        "vault-key.age does not open with the key of recipient {who}, which the manifest lists: it was replaced or damaged (restore it from git, or have another recipient check it)"
                    ),
                ));
                return None;
            }
            r.warnings.push(finding(
                None,
                "not-keyed",
                "no identity can open this vault: checked without its key",
            ));
            None
        }
        Err(e) => {
            r.problems.push(finding(None, "vault-key", e.to_string()));
            None
        }
    }
}

/// Checks the manifest's recipients against the vault key: their MAC, and
/// that the vault key file is encrypted to exactly them.
fn check_recipients_keyed(
    name: &VaultName,
    manifest: &Manifest,
    key: &VaultKey,
    r: &mut VaultReport,
) {
    if !manifest.recipients_verify(name, key) {
        let changes = team::diff(key.listed_recipients(), &manifest.recipients);
        let list: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        r.problems.push(finding(
            None,
            "recipients-mac",
            format!(
                "the manifest's recipients were edited without the vault key{}",
                if list.is_empty() {
                    String::new()
                } else {
                    format!(": {}", list.join(", "))
                }
            ),
        ));
    } else if key.listed_recipients() != &manifest.recipients {
        r.problems.push(finding(
            None,
            "vault-key-recipients",
            format!("vault-key.age is not encrypted to exactly the manifest's recipients; run `coffer rekey --vault {name}`"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::SecretName;
    use crate::secret::SecretValue;
    use crate::time::Time;

    #[test]
    fn a_vault_directory_that_became_a_link_is_reported_not_read_through() {
        let (d, store, ids) = crate::store::testing::store_with_vault("api-keys");
        let vname: VaultName = "api-keys".parse().unwrap();
        let vault = store.vault(&vname).unwrap();
        let key = vault.unlock(&ids).unwrap();
        let name: SecretName = "stripe-key".parse().unwrap();
        let mut w = vault.write().unwrap();
        let value = SecretValue::from_string("v".into()).unwrap();
        w.create(&key, &name, &value, Time::now()).unwrap();
        w.commit().unwrap();
        let manifest = vault.read().unwrap().manifest().clone();
        let sound = check_entries(vault.dir(), &vname, &manifest, Some(&key));
        assert!(sound[0].keyless.is_empty() && sound[0].keyed.is_empty());
        // The directory swapped for a link to a copy after it was listed.
        let link = d.path().join("swapped");
        std::os::unix::fs::symlink(vault.dir(), &link).unwrap();
        let found = check_entries(&link, &vname, &manifest, Some(&key));
        let messages: Vec<&str> = found[0]
            .keyless
            .iter()
            .map(|f| f.message.as_str())
            .collect();
        assert_eq!(messages, ["it is a symbolic link"]);
    }
}
