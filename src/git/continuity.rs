//! `verify --base`: does every vault's keyring in one state carry the
//! current vault key of an earlier state? A legitimate keyring always
//! does (a removal adds a key, never drops one), so one that does not was
//! built by someone who did not hold the key: a replacement. Also lists
//! the vaults that are new since the earlier state, for review.

use std::path::Path;

use crate::crypto::identity::Identities;
use crate::crypto::recipient::RecipientKey;
use crate::git::diff::{Snapshot, open_vault_key};
use crate::name::{RecipientName, VaultName};
use crate::store::layout::{MANIFEST_FILE, VAULT_KEY_FILE};
use crate::store::manifest::Manifest;
use crate::store::trust::key_fingerprint;

/// What was found for one vault.
#[derive(Debug, PartialEq, Eq)]
pub enum Continuity {
    /// Its keyring and manifest are byte for byte those of the base.
    Unchanged,
    /// The keyring at head holds the base's current key.
    Continues {
        /// The current epoch at head.
        epoch: u32,
    },
    /// The keyring at head lacks the base's current key.
    Broken {
        /// The base's current key's fingerprint.
        base: String,
        /// Head's current key's fingerprint.
        head: String,
    },
    /// Changed, and no identity opens it at head: continuity unknown.
    Unchecked {
        /// Why.
        reason: String,
    },
    /// New since the base.
    New {
        /// Its current key's fingerprint.
        key: String,
        /// Its recipients, with their key fingerprints.
        recipients: Vec<(RecipientName, String)>,
    },
    /// Gone since the base.
    Removed,
    /// The keyring continues, but entries that were rotation-due at the
    /// base lost their mark without being sealed again by a key holder (a
    /// key holder clears a mark only by storing a new value).
    MarksDropped {
        /// The secrets.
        names: Vec<crate::name::SecretName>,
    },
}

impl Continuity {
    /// True for what fails the check: a break, or a changed vault whose
    /// continuity could not be checked.
    pub fn fails(&self) -> bool {
        matches!(
            self,
            Continuity::Broken { .. }
                | Continuity::Unchecked { .. }
                | Continuity::MarksDropped { .. }
        )
    }
}

/// Compares every vault of `head` with `base` (see the module docs).
pub fn check(base: &Snapshot, head: &Snapshot, ids: &Identities) -> Vec<(VaultName, Continuity)> {
    let mut out = Vec::new();
    for name in base.vaults.keys() {
        if !head.vaults.contains_key(name) {
            out.push((name.clone(), Continuity::Removed));
        }
    }
    for (name, h) in &head.vaults {
        let manifest_path = Path::new(name.as_str()).join(MANIFEST_FILE);
        let key_path = Path::new(name.as_str()).join(VAULT_KEY_FILE);
        let head_manifest = Manifest::parse(&h.manifest, &manifest_path);
        let Some(b) = base.vaults.get(name) else {
            let c = match head_manifest {
                Ok(m) => Continuity::New {
                    key: key_fingerprint(&m.public_key),
                    recipients: m
                        .recipients
                        .iter()
                        .map(|(n, k): (&RecipientName, &RecipientKey)| (n.clone(), k.fingerprint()))
                        .collect(),
                },
                Err(e) => Continuity::Unchecked {
                    reason: format!("its manifest does not parse: {e}"),
                },
            };
            out.push((name.clone(), c));
            continue;
        };
        if b.manifest == h.manifest && b.vault_key == h.vault_key {
            out.push((name.clone(), Continuity::Unchanged));
            continue;
        }
        let base_public = match Manifest::parse(&b.manifest, &manifest_path) {
            Ok(m) => m.public_key,
            Err(e) => {
                out.push((
                    name.clone(),
                    Continuity::Unchecked {
                        reason: format!("its manifest at the base does not parse: {e}"),
                    },
                ));
                continue;
            }
        };
        let key = match &h.vault_key {
            None => Err(format!("it has no {VAULT_KEY_FILE}")),
            Some(bytes) => match open_vault_key(bytes, &key_path, ids) {
                Ok(Some(k)) => Ok(k),
                Ok(None) => Err("no identity given opens it".to_owned()),
                Err(e) => Err(e.to_string()),
            },
        };
        let c = match key {
            Err(reason) => Continuity::Unchecked { reason },
            Ok(k) => {
                let head_public = k.public().to_string();
                let matches_manifest = head_manifest
                    .as_ref()
                    .is_ok_and(|m| m.public_key == head_public && m.epoch == k.epoch());
                if !matches_manifest {
                    Continuity::Unchecked {
                        reason: "its keyring does not match its manifest".into(),
                    }
                } else if k.contains_public(&base_public) {
                    let dropped =
                        match (&head_manifest, Manifest::parse(&b.manifest, &manifest_path)) {
                            (Ok(hm), Ok(bm)) => dropped_marks(name, &bm, hm, &k),
                            _ => Vec::new(),
                        };
                    if dropped.is_empty() {
                        Continuity::Continues { epoch: k.epoch() }
                    } else {
                        Continuity::MarksDropped { names: dropped }
                    }
                } else {
                    Continuity::Broken {
                        base: key_fingerprint(&base_public),
                        head: key_fingerprint(&head_public),
                    }
                }
            }
        };
        out.push((name.clone(), c));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Returns the secrets rotation-due in `base` whose entry in `head` no
/// longer carries that mark (every removed name, since no later) and is not
/// sealed under a MAC that verifies: a mark only a keyless writer could
/// have dropped. A deleted secret is not listed (deletion is visible, and
/// needs no key by design).
fn dropped_marks(
    vault: &VaultName,
    base: &Manifest,
    head: &Manifest,
    key: &crate::crypto::VaultKey,
) -> Vec<crate::name::SecretName> {
    let mut out = Vec::new();
    for (name, b) in &base.secrets {
        let (Some(r), Some(h)) = (&b.rotation, head.secrets.get(name)) else {
            continue;
        };
        let kept = h.rotation.as_ref().is_some_and(|hr| {
            hr.since <= r.since && r.removed.iter().all(|n| hr.removed.contains(n))
        });
        if kept || head.entry_verifies(vault, name, h, key) {
            continue;
        }
        out.push(name.clone());
    }
    out
}
