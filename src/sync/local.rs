//! Reading the local side of a sync: every secret in scope, verified, and
//! decrypted unless its file is the one whose value was last pushed, with
//! the keyed digests the state compares.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::crypto::identity::Identities;
use crate::error::{Error, IntegrityProblem, Result};
use crate::name::{SecretName, VaultName};
use crate::secret::SecretValue;
use crate::store::manifest::Entry;
use crate::store::root::Store;
use crate::sync::state::State;

/// One secret of the store, read and verified.
pub enum LocalSecret {
    /// It verifies; ready to push.
    Ready {
        /// The value.
        value: SecretValue,
        /// Its keyed digest (see [`crate::crypto::VaultKey::value_digest`]).
        digest: [u8; 32],
        /// The keyed digest of the file it was read from (see
        /// [`crate::crypto::VaultKey::file_digest`]).
        file_digest: [u8; 32],
        /// Someone who could read it was removed: it should be rotated.
        rotation_due: bool,
    },
    /// It verifies (the entry's MAC, the file's digest), and its file is
    /// byte-identical to the one whose value this machine last pushed (the
    /// state's keyed file digest says so): its value is that value, so it
    /// was not decrypted. [`read_values`] decrypts it when the plan needs
    /// the value after all.
    Unchanged {
        /// The keyed digest of its file.
        file_digest: [u8; 32],
        /// Someone who could read it was removed: it should be rotated.
        rotation_due: bool,
    },
    /// A write-only contribution nobody has accepted yet: never pushed.
    Unverified,
    /// It failed verification: never pushed.
    Failed(IntegrityProblem),
}

impl fmt::Debug for LocalSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalSecret::Ready { rotation_due, .. } => f
                .debug_struct("Ready")
                .field("rotation_due", rotation_due)
                .finish_non_exhaustive(),
            LocalSecret::Unchanged { rotation_due, .. } => f
                .debug_struct("Unchanged")
                .field("rotation_due", rotation_due)
                .finish_non_exhaustive(),
            LocalSecret::Unverified => f.write_str("Unverified"),
            LocalSecret::Failed(p) => f.debug_tuple("Failed").field(p).finish(),
        }
    }
}

/// One vault of the store, read and verified.
#[derive(Debug)]
pub struct LocalVault {
    /// Its name.
    pub name: VaultName,
    /// Its secrets.
    pub secrets: BTreeMap<SecretName, LocalSecret>,
    /// How many secret files were decrypted to read it (by [`read_local`]
    /// and [`read_values`]): what a re-sync with nothing changed avoids.
    pub decrypted: usize,
}

/// Returns the domain of a secret's keyed digest in the state: the
/// target's id first, so that one value pushed to two targets has two
/// unrelated digests.
pub(crate) fn digest_domain(target_id: &str, vault: &VaultName, name: &SecretName) -> String {
    format!("{target_id}/{vault}/{name}")
}

/// Opens and verifies every secret of `vaults`, decrypting each whose
/// file is not the one `state` records as last pushed (those are
/// [`LocalSecret::Unchanged`]: verified, not decrypted). A secret that
/// fails verification is kept as [`LocalSecret::Failed`] (reported, never
/// pushed); a vault that cannot be opened is an error. `target_id` is
/// [`crate::sync::remote::Remote::target_id`].
pub fn read_local(
    store: &Store,
    vaults: &[VaultName],
    identities: &Identities,
    target_id: &str,
    state: &State,
) -> Result<Vec<LocalVault>> {
    use rayon::prelude::*;
    let mut out = Vec::with_capacity(vaults.len());
    for name in vaults {
        let vault = store.vault(name)?;
        let key = vault.unlock(identities)?;
        let read = vault.read()?;
        let entries: Vec<_> = read.manifest().secrets.iter().collect();
        // Each secret on its own, on every core, with whether it was
        // decrypted.
        let read_one = |(secret, entry): &(&SecretName, &Entry)| {
            let domain = digest_domain(target_id, name, secret);
            let file_digest = key.file_digest(&domain, &entry.digest);
            let pushed = state
                .get(name.as_str(), secret.as_str())
                .and_then(|r| r.file_digest);
            let rotation_due = entry.rotation.is_some();
            if pushed == Some(file_digest) {
                // Every check `get` makes but the decryption: the bytes
                // are those that decrypted to the value last pushed.
                let checked = read.check(&key, secret).map(|_| LocalSecret::Unchanged {
                    file_digest,
                    rotation_due,
                });
                Ok((classify(checked)?, false))
            } else {
                let value = read.get(&key, secret).map(|value| LocalSecret::Ready {
                    digest: key.value_digest(&domain, &value),
                    file_digest,
                    value,
                    rotation_due,
                });
                Ok((classify(value)?, true))
            }
        };
        let locals: Vec<Result<(LocalSecret, bool)>> = entries.par_iter().map(read_one).collect();
        let mut decrypted = 0;
        let mut secrets = BTreeMap::new();
        for ((secret, _), local) in entries.into_iter().zip(locals) {
            let (local, was_decrypted) = local?;
            decrypted += usize::from(was_decrypted);
            secrets.insert(secret.clone(), local);
        }
        out.push(LocalVault {
            name: name.clone(),
            secrets,
            decrypted,
        });
    }
    Ok(out)
}

/// Decrypts the secrets `needed` names, per vault (those
/// [`crate::sync::plan::values_needed`] returns: unchanged here, but to be
/// pushed after all, having drifted on the target, say), turning each into
/// [`LocalSecret::Ready`] (or [`LocalSecret::Failed`]). Only
/// [`LocalSecret::Unchanged`] secrets are read: a name `local` holds
/// otherwise, or not at all, is skipped, as is a vault it lacks. The store is read again: a file
/// changed since [`read_local`] is read as it is now.
pub fn read_values(
    store: &Store,
    local: &mut [LocalVault],
    identities: &Identities,
    target_id: &str,
    needed: &[(VaultName, Vec<SecretName>)],
) -> Result<()> {
    for (vault_name, names) in needed {
        let Some(lv) = local.iter_mut().find(|lv| lv.name == *vault_name) else {
            continue;
        };
        if names.is_empty() {
            continue;
        }
        let vault = store.vault(&lv.name)?;
        let key = vault.unlock(identities)?;
        let read = vault.read()?;
        for secret in names {
            // Only what the run holds without having decrypted it: a
            // secret already decrypted, or refused, stays as it is.
            if !matches!(lv.secrets.get(secret), Some(LocalSecret::Unchanged { .. })) {
                continue;
            }
            // A secret deleted since is an error (not found): the store
            // changed under the sync.
            lv.decrypted += 1;
            let value = read.get(&key, secret);
            let entry = read.manifest().secrets.get(secret);
            let local = classify(value.map(|value| {
                let entry = entry.expect("a secret read has an entry");
                let domain = digest_domain(target_id, &lv.name, secret);
                LocalSecret::Ready {
                    digest: key.value_digest(&domain, &value),
                    file_digest: key.file_digest(&domain, &entry.digest),
                    value,
                    rotation_due: entry.rotation.is_some(),
                }
            }))?;
            lv.secrets.insert(secret.clone(), local);
        }
    }
    Ok(())
}

/// Returns a reader, to run later on any thread, of the values of every
/// [`LocalSecret::Unchanged`] secret of `local` (those a run holds without
/// having decrypted them), or `None` when there is none. The vault keys
/// are unlocked now. The reader returns `None` when any of them can no
/// longer be read and verified.
#[allow(clippy::type_complexity)]
pub fn unread_values(
    store: Arc<Store>,
    local: &[LocalVault],
    identities: &Identities,
) -> Result<Option<Box<dyn FnOnce() -> Option<Vec<SecretValue>> + Send>>> {
    let mut wanted = Vec::new();
    for lv in local {
        let names: Vec<SecretName> = lv
            .secrets
            .iter()
            .filter(|(_, s)| matches!(s, LocalSecret::Unchanged { .. }))
            .map(|(n, _)| n.clone())
            .collect();
        if !names.is_empty() {
            let key = store.vault(&lv.name)?.unlock(identities)?;
            wanted.push((lv.name.clone(), names, key));
        }
    }
    if wanted.is_empty() {
        return Ok(None);
    }
    Ok(Some(Box::new(move || {
        let mut values = Vec::new();
        for (name, names, key) in wanted {
            let vault = store.vault(&name).ok()?;
            let read = vault.read().ok()?;
            for (_, value) in read.get_many(&key, &names).ok()? {
                values.push(value.ok()?);
            }
        }
        Some(values)
    })))
}

/// Keeps a secret's integrity problem as its state; any other error ends
/// the read.
fn classify(read: Result<LocalSecret>) -> Result<LocalSecret> {
    match read {
        Ok(s) => Ok(s),
        Err(Error::Integrity {
            problem: IntegrityProblem::Unverified,
            ..
        }) => Ok(LocalSecret::Unverified),
        Err(Error::Integrity { problem, .. }) => Ok(LocalSecret::Failed(problem)),
        Err(e) => Err(e),
    }
}
