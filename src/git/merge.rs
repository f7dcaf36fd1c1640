//! Three-way merges of a vault at the level of secrets and recipients, for
//! git's merge driver (`docs/git.md`).
//!
//! git calls a driver once per file that both sides changed, with the
//! ancestor's, our and their version of that file only. So every driver
//! here follows one rule that the others can predict from the files they
//! see, without talking to each other:
//!
//! - a secret's file and its manifest entry always come from the same side;
//!   an entry follows the file git will keep, which the manifest driver can
//!   tell from the digests: a file changed on one side only is taken from
//!   that side, and a file changed on both is decided by the `.age` driver,
//!   which keeps ours (so the manifest keeps our entry);
//! - the `.age` driver compares the two values in memory: the same value is
//!   a clean merge, different values are a conflict that keeps ours;
//! - recipients are merged by name. Without a new vault key nobody can have
//!   been removed (removal replaces the key), so both sides' lists only
//!   grew, and the result is their union, re-sealed with the vault key;
//! - if the two sides have different current vault keys (one started a new
//!   epoch, say to remove someone, while the other wrote under the old
//!   key), nothing is merged: an entry from the older side is sealed and
//!   encrypted under an epoch the removed people held, so it must be written
//!   again, with a new value. That is a conflict that says so, with the
//!   steps;
//! - a format-1 side (from a branch older than the vault's upgrade) is
//!   upgraded in memory with the vault key first (its MACs checked), so
//!   that entries of both formats never mix; without the key, that is a
//!   conflict.
//!
//! Entries are taken whole, so their MACs stay valid; only re-sealing
//! merged recipients needs the vault key. No plaintext is written anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use crate::crypto::identity::Identities;
use crate::crypto::recipient::RecipientKey;
use crate::crypto::{self, VaultKey};
use crate::error::Result;
use crate::name::{RecipientName, SecretName, VaultName};
use crate::store::config::Config;
use crate::store::manifest::{Entry, Manifest};

/// One side of a merge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The branch being merged into (git's `%A`).
    Ours,
    /// The branch being merged (git's `%B`).
    Theirs,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Ours => "our side",
            Side::Theirs => "their side",
        })
    }
}

/// Why a manifest could not be merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ManifestConflict {
    /// One side replaced the vault key while the other changed secrets or
    /// recipients under the old one.
    KeyReplaced {
        /// The side that replaced the key.
        side: Side,
        /// Who that side removed.
        removed: Vec<RecipientName>,
        /// The secrets the other side added or changed under the old key.
        stale: Vec<SecretName>,
        /// Whether the other side changed the recipients too.
        other_recipients: bool,
    },
    /// Both sides replaced the vault key.
    BothReplacedKey,
    /// The two sides hold different vaults (created separately).
    DifferentVaults,
    /// Both sides gave a recipient name different keys.
    RecipientClash {
        /// The names.
        names: Vec<RecipientName>,
    },
    /// Both sides changed the recipients, and re-sealing the merged list
    /// needs the vault key, which the user's identities do not open.
    RecipientsNeedKey,
    /// One side's recipients fail their MAC (edited without the key), so
    /// merging them would approve the edit.
    RecipientsUnverified {
        /// The side.
        side: Side,
    },
    /// One side is in format 1 and the other in format 2: upgrading the
    /// older one needs the vault key (or failed: `names` did not verify).
    FormatUpgrade {
        /// Entries whose format-1 MAC failed, if that was the problem.
        names: String,
    },
}

impl fmt::Display for ManifestConflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |v: &[SecretName]| v.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(", ");
        match self {
            ManifestConflict::KeyReplaced {
                side,
                removed,
                stale,
                other_recipients,
            } => {
                write!(f, "{side} replaced the vault key")?;
                if !removed.is_empty() {
                    let who: Vec<&str> = removed.iter().map(|n| n.as_str()).collect();
                    write!(f, " (removing {})", who.join(", "))?;
                }
                let other = match side {
                    Side::Ours => Side::Theirs,
                    Side::Theirs => Side::Ours,
                };
                write!(f, ", while {other}")?;
                if !stale.is_empty() {
                    write!(f, " wrote {} under the old key", names(stale))?;
                    if *other_recipients {
                        f.write_str(" and")?;
                    }
                }
                if *other_recipients {
                    f.write_str(" changed the recipients")?;
                }
                if stale.is_empty() && !*other_recipients {
                    f.write_str(" changed the manifest")?;
                }
                Ok(())
            }
            ManifestConflict::BothReplacedKey => f.write_str("both sides replaced the vault key"),
            ManifestConflict::DifferentVaults => {
                f.write_str("the two sides hold different vaults of the same name")
            }
            ManifestConflict::RecipientClash { names } => {
                let who: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
                write!(
                    f,
                    "both sides gave {} a different key",
                    who.join(", ")
                )
            }
            ManifestConflict::RecipientsNeedKey => f.write_str(
                "both sides changed the recipients, and re-sealing the merged list needs the vault key, which none of your identities opens",
            ),
            ManifestConflict::RecipientsUnverified { side } => write!(
                f,
                "the recipients on {side} do not verify (edited without the vault key); merging them would approve the edit"
            ),
            ManifestConflict::FormatUpgrade { names } if names.is_empty() => f.write_str(
                "one side is in format 1 and the other in format 2, and upgrading it needs the vault key, which none of your identities opens",
            ),
            ManifestConflict::FormatUpgrade { names } => write!(
                f,
                "one side is in format 1, and upgrading it failed: {names} did not verify"
            ),
        }
    }
}

/// Something worth telling about a clean manifest merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MergeNote {
    /// Both sides changed the secret's file; the `.age` driver compares
    /// the values (and keeps ours).
    BothChanged(SecretName),
    /// One side deleted the secret and the other changed it; git leaves
    /// the changed file in place, and the manifest keeps its entry.
    DeletedAndChanged {
        /// The secret.
        secret: SecretName,
        /// The side that deleted it.
        deleted_by: Side,
    },
}

/// The result of merging manifests.
#[derive(Clone, Debug)]
pub struct ManifestMerge {
    /// The merged manifest; ours, unchanged, when there is a conflict.
    pub manifest: Manifest,
    /// Why it could not be merged; empty for a clean merge.
    pub conflicts: Vec<ManifestConflict>,
    /// Things worth telling.
    pub notes: Vec<MergeNote>,
}

/// Merges maps by key, three ways: a key changed on one side takes that
/// side's value; changed on both to the same value is fine; changed on both
/// differently is a clash (ours kept). A missing key is a value too
/// (`None`), so additions and deletions merge the same way.
pub fn merge_by_name<K: Ord + Clone, V: PartialEq + Clone>(
    base: &BTreeMap<K, V>,
    ours: &BTreeMap<K, V>,
    theirs: &BTreeMap<K, V>,
) -> (BTreeMap<K, V>, Vec<K>) {
    let keys: BTreeSet<&K> = base
        .keys()
        .chain(ours.keys())
        .chain(theirs.keys())
        .collect();
    let mut out = BTreeMap::new();
    let mut clashes = Vec::new();
    for k in keys {
        let (o, a, b) = (base.get(k), ours.get(k), theirs.get(k));
        let pick = if a == b || b == o {
            a
        } else if a == o {
            b
        } else {
            clashes.push(k.clone());
            a
        };
        if let Some(v) = pick {
            out.insert(k.clone(), v.clone());
        }
    }
    (out, clashes)
}

/// Returns true if merging these manifests needs the vault key: both sides
/// changed the recipients (same key), so the merged list must be re-sealed.
pub fn needs_key(base: Option<&Manifest>, ours: &Manifest, theirs: &Manifest) -> bool {
    let empty = BTreeMap::new();
    let base_recipients = base.map_or(&empty, |b| &b.recipients);
    let formats_differ = [Some(ours), Some(theirs), base]
        .iter()
        .flatten()
        .any(|m| m.format != ours.format);
    (ours.public_key == theirs.public_key && formats_differ)
        || (ours.public_key == theirs.public_key
            && ours.recipients != theirs.recipients
            && ours.recipients != *base_recipients
            && theirs.recipients != *base_recipients)
}

/// Merges three versions of a vault's manifest (see the module docs).
/// `key` is the vault key, needed only when [`needs_key`] says so.
///
/// This decides which kind of merge it is (identical, mixed formats,
/// different vaults, a replaced key) and hands recipients and secrets to
/// their own merges; any conflict keeps our manifest.
pub fn merge_manifests(
    vault: &VaultName,
    base: Option<&Manifest>,
    ours: &Manifest,
    theirs: &Manifest,
    key: Option<&VaultKey>,
) -> ManifestMerge {
    let conflict = |c: ManifestConflict| ManifestMerge {
        manifest: ours.clone(),
        conflicts: vec![c],
        notes: Vec::new(),
    };
    if ours == theirs {
        return ManifestMerge {
            manifest: ours.clone(),
            conflicts: Vec::new(),
            notes: Vec::new(),
        };
    }
    // Mixed formats: upgrade the format-1 sides with the key first.
    let mixed = [Some(ours), Some(theirs), base]
        .iter()
        .flatten()
        .any(|m| m.format != ours.format);
    if mixed && ours.public_key == theirs.public_key {
        return match upgrade_sides(vault, base, ours, theirs, key) {
            Ok((b, o, t)) => merge_manifests(vault, b.as_ref(), &o, &t, key),
            Err(c) => conflict(c),
        };
    }
    if ours.created != theirs.created {
        return conflict(ManifestConflict::DifferentVaults);
    }
    // A vault created on both sides at once has no common base: treat it
    // as an empty vault with the same key.
    let empty_base;
    let base = match base {
        Some(b) => b,
        None if ours.public_key == theirs.public_key => {
            empty_base = Manifest::new(ours.created, ours.public_key.clone(), BTreeMap::new());
            &empty_base
        }
        None => return conflict(ManifestConflict::DifferentVaults),
    };
    if ours.public_key != theirs.public_key {
        return conflict(key_replaced(base, ours, theirs));
    }

    let mut merged = ours.clone();
    if let Err(c) = merge_recipients(vault, base, ours, theirs, key, &mut merged) {
        return conflict(c);
    }
    let mut notes = Vec::new();
    merged.secrets = merge_secrets(base, ours, theirs, &mut notes);
    ManifestMerge {
        manifest: merged,
        conflicts: Vec::new(),
        notes,
    }
}

/// The three sides of a merge after [`upgrade_sides`]: base (if any),
/// ours, theirs.
type UpgradedSides = (Option<Manifest>, Manifest, Manifest);

/// Upgrades the format-1 sides of a mixed-format merge (those under the
/// vault's current key) with `key`, checking their MACs, so that entries of
/// both formats never mix. Without the key, or if an upgrade fails, that is
/// the conflict.
fn upgrade_sides(
    vault: &VaultName,
    base: Option<&Manifest>,
    ours: &Manifest,
    theirs: &Manifest,
    key: Option<&VaultKey>,
) -> std::result::Result<UpgradedSides, ManifestConflict> {
    let Some(key) = key else {
        return Err(ManifestConflict::FormatUpgrade {
            names: String::new(),
        });
    };
    let up = |m: &Manifest| -> std::result::Result<Manifest, ManifestConflict> {
        let mut m = m.clone();
        if m.public_key == key.public().to_string() && m.is_v1() {
            m.upgrade(vault, key)
                .map_err(|e| ManifestConflict::FormatUpgrade {
                    names: match e {
                        crate::error::Error::RekeyBlocked { names, .. } => names,
                        other => other.to_string(),
                    },
                })?;
        }
        Ok(m)
    };
    match (base.map(up).transpose(), up(ours), up(theirs)) {
        (Ok(b), Ok(o), Ok(t)) => Ok((b, o, t)),
        (Err(c), _, _) | (_, Err(c), _) | (_, _, Err(c)) => Err(c),
    }
}

/// The conflict when the two sides have different vault keys: which side
/// replaced it, whom that removed, and what the other side wrote under the
/// old key (which must be written again).
fn key_replaced(base: &Manifest, ours: &Manifest, theirs: &Manifest) -> ManifestConflict {
    let (ours_new, theirs_new) = (
        ours.public_key != base.public_key,
        theirs.public_key != base.public_key,
    );
    if ours_new && theirs_new {
        return ManifestConflict::BothReplacedKey;
    }
    let (side, replaced, other) = if ours_new {
        (Side::Ours, ours, theirs)
    } else {
        (Side::Theirs, theirs, ours)
    };
    let removed = crate::store::team::diff(&base.recipients, &replaced.recipients)
        .into_iter()
        .filter(|c| c.kind != crate::error::ChangeKind::Added)
        .filter_map(|c| c.name.parse().ok())
        .collect();
    let stale = other
        .secrets
        .iter()
        .filter(|(n, e)| base.secrets.get(*n) != Some(*e))
        .map(|(n, _)| n.clone())
        .collect();
    ManifestConflict::KeyReplaced {
        side,
        removed,
        stale,
        other_recipients: other.recipients != base.recipients,
    }
}

/// Merges the recipients (same vault key on both sides) into `merged`,
/// which starts as ours: a change on one side is taken whole; changes on
/// both are merged by name, after checking both MACs, and re-sealed with
/// `key`.
fn merge_recipients(
    vault: &VaultName,
    base: &Manifest,
    ours: &Manifest,
    theirs: &Manifest,
    key: Option<&VaultKey>,
    merged: &mut Manifest,
) -> std::result::Result<(), ManifestConflict> {
    if ours.recipients == theirs.recipients {
        // Same list; the MACs are equal too if both are valid.
    } else if ours.recipients == base.recipients {
        merged.recipients = theirs.recipients.clone();
        merged.recipients_mac = theirs.recipients_mac;
    } else if theirs.recipients == base.recipients {
        // Ours already.
    } else {
        let Some(key) = key else {
            return Err(ManifestConflict::RecipientsNeedKey);
        };
        for (side, m) in [(Side::Ours, ours), (Side::Theirs, theirs)] {
            if !m.recipients_verify(vault, key) {
                return Err(ManifestConflict::RecipientsUnverified { side });
            }
        }
        let (recipients, clashes) =
            merge_by_name(&base.recipients, &ours.recipients, &theirs.recipients);
        if !clashes.is_empty() {
            return Err(ManifestConflict::RecipientClash { names: clashes });
        }
        merged.recipients = recipients;
        merged.seal_recipients(vault, key);
    }
    Ok(())
}

/// Merges the secrets: each entry follows the file git keeps (see
/// [`pick_entry`]), with a note for each choice worth telling.
fn merge_secrets(
    base: &Manifest,
    ours: &Manifest,
    theirs: &Manifest,
    notes: &mut Vec<MergeNote>,
) -> BTreeMap<SecretName, Entry> {
    let names: BTreeSet<&SecretName> = base
        .secrets
        .keys()
        .chain(ours.secrets.keys())
        .chain(theirs.secrets.keys())
        .collect();
    let mut secrets = BTreeMap::new();
    for name in names {
        let (o, a, b) = (
            base.secrets.get(name),
            ours.secrets.get(name),
            theirs.secrets.get(name),
        );
        let pick = pick_entry(name, o, a, b, notes);
        if let Some(e) = pick {
            secrets.insert(name.clone(), e.clone());
        }
    }
    secrets
}

/// Picks the entry matching the file git will keep for this secret.
fn pick_entry<'a>(
    name: &SecretName,
    o: Option<&'a Entry>,
    a: Option<&'a Entry>,
    b: Option<&'a Entry>,
    notes: &mut Vec<MergeNote>,
) -> Option<&'a Entry> {
    if a == b || b == o {
        return a;
    }
    if a == o {
        return b;
    }
    let digest = |e: Option<&Entry>| e.map(|e| e.digest);
    let (d_o, d_a, d_b) = (digest(o), digest(a), digest(b));
    match (a, b) {
        // Deleted on one side, changed on the other. If the file itself did
        // not change, git deletes it cleanly; otherwise git keeps the
        // changed file (a modify/delete conflict), and so do we.
        (None, Some(eb)) => {
            if d_b == d_o {
                None
            } else {
                notes.push(MergeNote::DeletedAndChanged {
                    secret: name.clone(),
                    deleted_by: Side::Ours,
                });
                Some(eb)
            }
        }
        (Some(ea), None) => {
            if d_a == d_o {
                None
            } else {
                notes.push(MergeNote::DeletedAndChanged {
                    secret: name.clone(),
                    deleted_by: Side::Theirs,
                });
                Some(ea)
            }
        }
        (Some(ea), Some(eb)) => {
            if d_a == d_b {
                // The same file, different metadata (say, one side accepted
                // a contribution): prefer the sealed entry, then ours.
                if ea.mac.is_none() && eb.mac.is_some() {
                    Some(eb)
                } else {
                    Some(ea)
                }
            } else if d_a == d_o {
                Some(eb) // only theirs changed the file: git takes theirs
            } else if d_b == d_o {
                Some(ea)
            } else {
                // Both changed the file: the .age driver keeps ours.
                notes.push(MergeNote::BothChanged(name.clone()));
                Some(ea)
            }
        }
        (None, None) => None,
    }
}

/// How two versions of a secret's file compare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretFiles {
    /// They hold the same value.
    Same,
    /// They hold different values.
    Different,
    /// One side does not decrypt with this vault key (it was written under
    /// another key, or is damaged).
    Unreadable(Side),
}

/// Compares the values of two versions of a secret's file, in memory.
pub fn compare_secret_files(key: &VaultKey, ours: &[u8], theirs: &[u8]) -> SecretFiles {
    // Either side may be encrypted to any epoch of the keyring.
    let a = match key.decrypt_value_any(ours) {
        Ok(v) => v,
        Err(_) => return SecretFiles::Unreadable(Side::Ours),
    };
    let b = match key.decrypt_value_any(theirs) {
        Ok(v) => v,
        Err(_) => return SecretFiles::Unreadable(Side::Theirs),
    };
    if a.ct_eq(&b) {
        SecretFiles::Same
    } else {
        SecretFiles::Different
    }
}

/// The result of merging `vault-key.age`.
#[derive(Debug)]
pub enum VaultKeyMerge {
    /// The vault key, encrypted to both sides' recipients.
    Merged(Vec<u8>),
    /// One side could not be opened with the user's identities.
    CannotOpen(Side),
    /// The two sides hold different vault keys.
    KeyReplaced,
    /// Both sides gave a name different keys.
    RecipientClash(Vec<RecipientName>),
}

/// Merges two versions of `vault-key.age` that hold the same vault key but
/// were encrypted to different recipients: the result is encrypted to the
/// union of the recipients recorded inside each (nobody can have been
/// removed without a new key). Needs the user's identities to open both.
pub fn merge_vault_keys<C: crate::crypto::Callbacks>(
    ours: &[u8],
    theirs: &[u8],
    ids: &Identities,
    callbacks: C,
) -> Result<VaultKeyMerge> {
    let path = Path::new(crate::store::layout::VAULT_KEY_FILE);
    let Some(a) = crate::git::diff::open_vault_key(ours, path, ids)? else {
        return Ok(VaultKeyMerge::CannotOpen(Side::Ours));
    };
    let Some(b) = crate::git::diff::open_vault_key(theirs, path, ids)? else {
        return Ok(VaultKeyMerge::CannotOpen(Side::Theirs));
    };
    if a.public().to_string() != b.public().to_string() {
        return Ok(VaultKeyMerge::KeyReplaced);
    }
    let (la, lb) = (a.listed_recipients(), b.listed_recipients());
    let (merged, clashes) = merge_by_name(&BTreeMap::new(), la, lb);
    if !clashes.is_empty() {
        return Ok(VaultKeyMerge::RecipientClash(clashes));
    }
    let keys: Vec<&RecipientKey> = merged.values().collect();
    let file = crypto::encrypt_to_keys(&keys, a.to_identity_file(&merged).as_bytes(), callbacks)?;
    Ok(VaultKeyMerge::Merged(file))
}

/// Merges three versions of `coffer.toml` by recipient name, starting from
/// ours (its comments and layout kept) and applying their changes. Returns
/// the text and the names both sides changed differently (ours kept).
pub fn merge_configs(
    base: Option<&str>,
    ours: &str,
    theirs: &str,
    path: &Path,
) -> Result<(String, Vec<RecipientName>)> {
    let mut merged = Config::parse(ours, path)?;
    let theirs = Config::parse(theirs, path)?;
    let base = match base {
        Some(b) => Config::parse(b, path)?.recipients().clone(),
        None => BTreeMap::new(),
    };
    let (result, clashes) = merge_by_name(&base, merged.recipients(), theirs.recipients());
    let before = merged.recipients().clone();
    for (name, member) in &result {
        if before.get(name) != Some(member) {
            merged.set_recipient(name, member);
        }
    }
    for name in before.keys() {
        if !result.contains_key(name) {
            merged.remove_recipient(name);
        }
    }
    let text = merged.to_text();
    Config::parse(&text, path)?; // what we write must read back
    Ok((text, clashes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Time;

    fn t(s: &str) -> Time {
        format!("2026-01-0{s}T00:00:00.000Z").parse().unwrap()
    }

    fn rk() -> RecipientKey {
        age::x25519::Identity::generate()
            .to_public()
            .to_string()
            .parse()
            .unwrap()
    }

    struct Fixture {
        vault: VaultName,
        key: VaultKey,
        base: Manifest,
    }

    fn entry(key: &VaultKey, vault: &VaultName, name: &str, seed: u8) -> (SecretName, Entry) {
        let n: SecretName = name.parse().unwrap();
        let mut e = Entry {
            epoch: 1,
            created: t("1"),
            updated: t("2"),
            digest: [seed; 32],
            mac: None,
            rotation: None,
        };
        Manifest::seal_entry(vault, &n, &mut e, key);
        (n, e)
    }

    fn fixture() -> Fixture {
        let vault: VaultName = "api-keys".parse().unwrap();
        let key = VaultKey::generate();
        let mut recipients = BTreeMap::new();
        recipients.insert("alice".parse().unwrap(), rk());
        let mut base = Manifest::new(t("1"), key.public().to_string(), recipients);
        base.seal_recipients(&vault, &key);
        for (name, seed) in [("aaa-one", 1), ("mmm-two", 2)] {
            let (n, e) = entry(&key, &vault, name, seed);
            base.secrets.insert(n, e);
        }
        Fixture { vault, key, base }
    }

    fn names(m: &Manifest) -> Vec<&str> {
        m.secrets.keys().map(|n| n.as_str()).collect()
    }

    #[test]
    fn disjoint_and_adjacent_additions_merge() {
        let f = fixture();
        let mut ours = f.base.clone();
        let mut theirs = f.base.clone();
        // Adjacent in sort order: nothing between them in the file.
        let (n, e) = entry(&f.key, &f.vault, "mmm-three", 3);
        ours.secrets.insert(n, e);
        let (n, e) = entry(&f.key, &f.vault, "mmm-twa", 4);
        theirs.secrets.insert(n, e);
        let m = merge_manifests(&f.vault, Some(&f.base), &ours, &theirs, None);
        assert!(m.conflicts.is_empty());
        assert_eq!(
            names(&m.manifest),
            ["aaa-one", "mmm-three", "mmm-twa", "mmm-two"]
        );
        // Entries are taken whole: every MAC still verifies.
        for (n, e) in &m.manifest.secrets {
            assert!(m.manifest.entry_verifies(&f.vault, n, e, &f.key));
        }
        assert!(m.manifest.recipients_verify(&f.vault, &f.key));
    }

    #[test]
    fn entries_follow_the_file_git_keeps() {
        let f = fixture();
        let aaa: SecretName = "aaa-one".parse().unwrap();
        let mmm: SecretName = "mmm-two".parse().unwrap();
        let mut ours = f.base.clone();
        let mut theirs = f.base.clone();
        // Ours updates aaa; theirs deletes it: git keeps our changed file.
        ours.secrets
            .insert(aaa.clone(), entry(&f.key, &f.vault, "aaa-one", 9).1);
        theirs.secrets.remove(&aaa);
        // Both update mmm: the .age driver decides, keeping ours.
        ours.secrets
            .insert(mmm.clone(), entry(&f.key, &f.vault, "mmm-two", 7).1);
        theirs
            .secrets
            .insert(mmm.clone(), entry(&f.key, &f.vault, "mmm-two", 8).1);
        let m = merge_manifests(&f.vault, Some(&f.base), &ours, &theirs, None);
        assert!(m.conflicts.is_empty());
        assert_eq!(m.manifest.secrets[&aaa].digest, [9; 32]);
        assert_eq!(m.manifest.secrets[&mmm].digest, [7; 32]);
        assert_eq!(
            m.notes,
            [
                MergeNote::DeletedAndChanged {
                    secret: aaa.clone(),
                    deleted_by: Side::Theirs
                },
                MergeNote::BothChanged(mmm.clone()),
            ]
        );
        // Deleted on one side, untouched on the other: deleted.
        let mut ours = f.base.clone();
        ours.secrets.remove(&aaa);
        let mut theirs = f.base.clone();
        theirs
            .secrets
            .insert(mmm.clone(), entry(&f.key, &f.vault, "mmm-two", 5).1);
        let m = merge_manifests(&f.vault, Some(&f.base), &ours, &theirs, None);
        assert_eq!(names(&m.manifest), ["mmm-two"]);
        assert_eq!(m.manifest.secrets[&mmm].digest, [5; 32]);
    }

    #[test]
    fn recipients_merge_by_name_and_are_resealed() {
        let f = fixture();
        let mut ours = f.base.clone();
        let mut theirs = f.base.clone();
        ours.recipients.insert("bob".parse().unwrap(), rk());
        ours.seal_recipients(&f.vault, &f.key);
        theirs.recipients.insert("carol".parse().unwrap(), rk());
        theirs.seal_recipients(&f.vault, &f.key);
        assert!(needs_key(Some(&f.base), &ours, &theirs));
        let m = merge_manifests(&f.vault, Some(&f.base), &ours, &theirs, None);
        assert_eq!(m.conflicts, [ManifestConflict::RecipientsNeedKey]);
        assert_eq!(m.manifest, ours, "a conflict leaves ours as it was");
        let m = merge_manifests(&f.vault, Some(&f.base), &ours, &theirs, Some(&f.key));
        assert!(m.conflicts.is_empty());
        let who: Vec<&str> = m.manifest.recipients.keys().map(|n| n.as_str()).collect();
        assert_eq!(who, ["alice", "bob", "carol"]);
        assert!(m.manifest.recipients_verify(&f.vault, &f.key));
        // A recipient slipped in by hand on one side is not approved by a merge.
        let mut forged = theirs.clone();
        forged.recipients.insert("mallory".parse().unwrap(), rk());
        let m = merge_manifests(&f.vault, Some(&f.base), &ours, &forged, Some(&f.key));
        assert_eq!(
            m.conflicts,
            [ManifestConflict::RecipientsUnverified { side: Side::Theirs }]
        );
        // The same name with two keys is a clash.
        let mut other = theirs.clone();
        other.recipients.insert("bob".parse().unwrap(), rk());
        other.seal_recipients(&f.vault, &f.key);
        let m = merge_manifests(&f.vault, Some(&f.base), &ours, &other, Some(&f.key));
        assert_eq!(
            m.conflicts,
            [ManifestConflict::RecipientClash {
                names: vec!["bob".parse().unwrap()]
            }]
        );
    }

    #[test]
    fn a_replaced_vault_key_is_a_conflict_naming_what_was_written_under_the_old_one() {
        let f = fixture();
        let new_key = VaultKey::generate();
        let mut ours = f.base.clone();
        ours.public_key = new_key.public().to_string();
        ours.recipients.clear();
        ours.recipients.insert(
            "alice".parse().unwrap(),
            f.base.recipients.values().next().unwrap().clone(),
        );
        let mut theirs = f.base.clone();
        let (n, e) = entry(&f.key, &f.vault, "new-token", 6);
        theirs.secrets.insert(n.clone(), e);
        let m = merge_manifests(&f.vault, Some(&f.base), &ours, &theirs, None);
        assert_eq!(
            m.conflicts,
            [ManifestConflict::KeyReplaced {
                side: Side::Ours,
                removed: vec![],
                stale: vec![n],
                other_recipients: false,
            }]
        );
        assert_eq!(
            m.conflicts[0].to_string(),
            "our side replaced the vault key, while their side wrote new-token under the old key"
        );
    }

    #[test]
    fn vault_key_files_merge_to_the_union_of_recipients() {
        use age::secrecy::ExposeSecret;
        let me = age::x25519::Identity::generate();
        let ids = Identities::from_text(
            me.to_string().expose_secret().as_bytes(),
            "test",
            age::NoCallbacks,
        )
        .unwrap();
        let mine: RecipientKey = me.to_public().to_string().parse().unwrap();
        let key = VaultKey::generate();
        let file = |names: &[(&str, &RecipientKey)]| {
            let rs: BTreeMap<RecipientName, RecipientKey> = names
                .iter()
                .map(|(n, k)| (n.parse().unwrap(), (*k).clone()))
                .collect();
            let keys: Vec<&RecipientKey> = rs.values().collect();
            crypto::encrypt_to_keys(
                &keys,
                key.to_identity_file(&rs).as_bytes(),
                age::NoCallbacks,
            )
            .unwrap()
        };
        let (bob, carol) = (rk(), rk());
        let ours = file(&[("alice", &mine), ("bob", &bob)]);
        let theirs = file(&[("alice", &mine), ("carol", &carol)]);
        let VaultKeyMerge::Merged(out) =
            merge_vault_keys(&ours, &theirs, &ids, age::NoCallbacks).unwrap()
        else {
            panic!("expected a merge");
        };
        let k = crate::git::diff::open_vault_key(&out, Path::new("k"), &ids)
            .unwrap()
            .unwrap();
        assert_eq!(k.public().to_string(), key.public().to_string());
        let who: Vec<&str> = k.listed_recipients().keys().map(|n| n.as_str()).collect();
        assert_eq!(who, ["alice", "bob", "carol"]);
        assert_eq!(crypto::count_stanzas(&out).unwrap().real, 3);
        // Another vault key on one side: not merged.
        let other = VaultKey::generate();
        let rs: BTreeMap<RecipientName, RecipientKey> =
            [("alice".parse().unwrap(), mine.clone())].into();
        let keys: Vec<&RecipientKey> = rs.values().collect();
        let replaced = crypto::encrypt_to_keys(
            &keys,
            other.to_identity_file(&rs).as_bytes(),
            age::NoCallbacks,
        )
        .unwrap();
        assert!(matches!(
            merge_vault_keys(&ours, &replaced, &ids, age::NoCallbacks).unwrap(),
            VaultKeyMerge::KeyReplaced
        ));
    }

    #[test]
    fn configs_merge_by_name_keeping_our_layout() {
        let (a, b, c) = (rk(), rk(), rk());
        let base = format!("# team\nformat = 1\n\n[recipients]\nalice = \"{a}\"\n");
        let ours = format!("{base}bob = \"{b}\" # our comment\n");
        let theirs = format!("{base}carol = \"{c}\"\n");
        let (text, clashes) = merge_configs(
            Some(&base),
            &ours,
            &theirs,
            Path::new(crate::store::layout::CONFIG_FILE),
        )
        .unwrap();
        assert!(clashes.is_empty());
        assert!(text.starts_with(&ours), "ours kept as written: {text}");
        assert!(text.contains(&format!("carol = \"{c}\"")));
        // Removed on their side, untouched on ours: removed.
        let theirs = "# team\nformat = 1\n\n[recipients]\n".to_owned();
        let (text, _) = merge_configs(
            Some(&base),
            &ours,
            &theirs,
            Path::new(crate::store::layout::CONFIG_FILE),
        )
        .unwrap();
        assert!(!text.contains("alice"));
        assert!(text.contains("bob"));
    }
}
