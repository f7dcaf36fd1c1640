//! Reading the local side of a sync: every secret in scope, decrypted and
//! verified, with the keyed digest the state compares.

use std::collections::BTreeMap;
use std::fmt;

use crate::crypto::identity::Identities;
use crate::error::{Error, IntegrityProblem, Result};
use crate::name::{SecretName, VaultName};
use crate::secret::SecretValue;
use crate::store::root::Store;

/// One secret of the store, read and verified.
pub enum LocalSecret {
    /// It verifies; ready to push.
    Ready {
        /// The value.
        value: SecretValue,
        /// Its keyed digest (see [`crate::crypto::VaultKey::value_digest`]).
        digest: [u8; 32],
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
}

/// Returns the domain of a secret's keyed digest in the state: the
/// target's id first, so that one value pushed to two targets has two
/// unrelated digests.
pub(crate) fn digest_domain(target_id: &str, vault: &VaultName, name: &SecretName) -> String {
    format!("{target_id}/{vault}/{name}")
}

/// Opens, verifies and decrypts every secret of `vaults`. A secret that
/// fails verification is kept as [`LocalSecret::Failed`] (reported, never
/// pushed); a vault that cannot be opened is an error. `target_id` is
/// [`crate::sync::remote::Remote::target_id`].
pub fn read_local(
    store: &Store,
    vaults: &[VaultName],
    identities: &Identities,
    target_id: &str,
) -> Result<Vec<LocalVault>> {
    let mut out = Vec::with_capacity(vaults.len());
    for name in vaults {
        let vault = store.vault(name)?;
        let key = vault.unlock(identities)?;
        let read = vault.read()?;
        let mut secrets = BTreeMap::new();
        for (secret, entry) in &read.manifest().secrets {
            let local = match read.get(&key, secret) {
                Ok(value) => LocalSecret::Ready {
                    digest: key.value_digest(&digest_domain(target_id, name, secret), &value),
                    value,
                    rotation_due: entry.rotation.is_some(),
                },
                Err(Error::Integrity {
                    problem: IntegrityProblem::Unverified,
                    ..
                }) => LocalSecret::Unverified,
                Err(Error::Integrity { problem, .. }) => LocalSecret::Failed(problem),
                Err(e) => return Err(e),
            };
            secrets.insert(secret.clone(), local);
        }
        out.push(LocalVault {
            name: name.clone(),
            secrets,
        });
    }
    Ok(out)
}
