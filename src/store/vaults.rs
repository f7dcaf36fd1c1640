//! Creating, opening, listing and deleting vaults: the [`Store`] methods
//! that need [`Vault`]. They live here, not in `root.rs`, so that the
//! store's root (which every vault holds) depends on no vault code.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use crate::crypto::encrypt_to_keys;
use crate::crypto::identity::Identities;
use crate::crypto::recipient::RecipientKey;
use crate::crypto::vault_key::VaultKey;
use crate::error::{Error, RecipientChange, Result};
use crate::fsio;
use crate::name::{RecipientName, VaultName};
use crate::store::layout::{self, MANIFEST_FILE, VAULT_KEY_FILE};
use crate::store::manifest::Manifest;
use crate::store::root::Store;
use crate::store::team;
use crate::store::vault::Vault;
use crate::time::Time;

/// A vault as `vault list` shows it.
#[derive(Clone, Debug)]
pub struct VaultSummary {
    /// The vault's name.
    pub name: VaultName,
    /// When it was created.
    pub created: Time,
    /// When a secret in it last changed (or its creation time).
    pub updated: Time,
    /// How many secrets it holds.
    pub secrets: usize,
}

impl Store {
    /// Opens a vault by name.
    pub fn vault(&self, name: &VaultName) -> Result<Vault<'_>> {
        let dir = self.root.join(name.as_str());
        if !fsio::check_not_symlink(&dir)? || !dir.join(MANIFEST_FILE).exists() {
            return Err(Error::VaultNotFound {
                name: name.to_string(),
            });
        }
        Ok(Vault::new(self, name.clone(), dir))
    }

    /// Summarises every vault, for `vault list`.
    pub fn vault_summaries(&self) -> Result<Vec<VaultSummary>> {
        let mut out = Vec::new();
        for name in self.vault_names()? {
            let vault = self.vault(&name)?;
            let read = vault.read()?;
            let m = read.manifest();
            let updated = m
                .secrets
                .values()
                .map(|e| e.updated)
                .max()
                .map_or(m.created, |u| u.max(m.created));
            out.push(VaultSummary {
                name,
                created: m.created,
                updated,
                secrets: m.secrets.len(),
            });
        }
        Ok(out)
    }

    /// Returns who a new vault would be encrypted to (every recipient that
    /// `coffer.toml` gives access to it), and which of them nobody has
    /// vouched for: a recipient is vouched for if it is one of the user's
    /// own identities, or if every existing vault the user can open lists
    /// it, with the same key, under a valid MAC. `coffer.toml` is not
    /// authenticated, and a vault the user can open may have been planted
    /// by whoever planted the recipient, so anything less must be shown to
    /// the user and confirmed before [`Store::create_vault`].
    ///
    /// Fails closed: only a vault this machine has seen before (its trust
    /// record holds a key the keyring carries) vouches; a vault that lists
    /// one of the user's keys but does not open, whose keyring breaks
    /// continuity, or whose recipients do not verify, vouches for nobody
    /// and makes every recipient but the user's own unvouched, with the
    /// reason in the third list (for the user to read before answering).
    pub fn new_vault_recipients(
        &self,
        name: &VaultName,
        identities: &Identities,
    ) -> Result<(BTreeMap<RecipientName, RecipientKey>, Vec<RecipientChange>)> {
        let (r, u, _) = self.new_vault_recipients_checked(name, identities)?;
        Ok((r, u))
    }

    /// [`Store::new_vault_recipients`], with the reasons why vaults that
    /// should have vouched could not (each a sentence naming the vault).
    #[allow(clippy::type_complexity)]
    pub fn new_vault_recipients_checked(
        &self,
        name: &VaultName,
        identities: &Identities,
    ) -> Result<(
        BTreeMap<RecipientName, RecipientKey>,
        Vec<RecipientChange>,
        Vec<String>,
    )> {
        if fsio::check_not_symlink(&self.root.join(name.as_str()))? {
            return Err(Error::VaultExists {
                name: name.to_string(),
            });
        }
        let recipients = self.config().desired_for(name);
        if recipients.is_empty() {
            return Err(Error::NoRecipientsLeft {
                vault: name.to_string(),
            });
        }
        use crate::store::trust::Trust;
        let own = identities.recipients();
        let record = self.trust_record()?;
        let mut lists = Vec::new();
        let mut problems = Vec::new();
        for v in self.vault_names()? {
            let vault = self.vault(&v)?;
            // It should open for us if its manifest or coffer.toml says so.
            let desired_for_us = self
                .config()
                .desired_for(&v)
                .values()
                .any(|k| own.contains(k));
            let listed_for_us = match vault.read() {
                Ok(read) => {
                    desired_for_us || read.manifest().recipients.values().any(|k| own.contains(k))
                }
                Err(e) => {
                    problems.push(format!("vault {v} cannot be read: {e}"));
                    continue;
                }
            };
            let key = match vault.unlock_untrusted(identities) {
                Ok(k) => k,
                Err(Error::NoMatchingIdentity { .. }) if !listed_for_us => continue,
                Err(e) => {
                    problems.push(format!(
                        "vault {v} lists one of your keys but does not open: {e}"
                    ));
                    continue;
                }
            };
            match record.as_ref().map(|r| r.check(&v, &key)) {
                Some(Trust::Continues) => {}
                Some(Trust::Broken { .. }) => {
                    problems.push(format!(
                        "vault {v} was replaced: its keyring does not hold the key this machine last saw"
                    ));
                    continue;
                }
                // Never seen here: it may have been planted with the
                // recipient it would vouch for.
                Some(Trust::New) | None => continue,
            }
            let read = vault.read()?;
            if read.recipients_verify(&key) {
                lists.push(read.manifest().recipients.clone());
            } else {
                problems.push(format!(
                    "vault {v}: its recipients do not verify (edited without the vault key)"
                ));
            }
        }
        let unvouched: BTreeMap<RecipientName, RecipientKey> = recipients
            .iter()
            .filter(|(n, k)| {
                !own.contains(k)
                    && (!problems.is_empty()
                        || lists.is_empty()
                        || !lists.iter().all(|l| l.get(*n) == Some(*k)))
            })
            .map(|(n, k)| (n.clone(), k.clone()))
            .collect();
        Ok((
            recipients,
            team::diff(&BTreeMap::new(), &unvouched),
            problems,
        ))
    }

    /// Creates a vault: a new vault key, encrypted to `recipients` (from
    /// [`Store::new_vault_recipients`], after the user confirmed any that
    /// nobody vouched for), and an empty manifest. The vault appears
    /// atomically.
    pub fn create_vault<C: crate::crypto::Callbacks>(
        &self,
        name: &VaultName,
        recipients: &BTreeMap<RecipientName, RecipientKey>,
        now: Time,
        callbacks: C,
    ) -> Result<()> {
        let dir = self.root.join(name.as_str());
        if recipients.is_empty() {
            return Err(Error::NoRecipientsLeft {
                vault: name.to_string(),
            });
        }
        let recipients = recipients.clone();
        let _lock = self.lock_write(&[])?;
        if fsio::check_not_symlink(&dir)? {
            return Err(Error::VaultExists {
                name: name.to_string(),
            });
        }
        let key = VaultKey::generate();
        let keys: Vec<&RecipientKey> = recipients.values().collect();
        let key_file = encrypt_to_keys(
            &keys,
            key.to_identity_file(&recipients).as_bytes(),
            callbacks,
        )?;
        let mut manifest = Manifest::new(now, key.public().to_string(), recipients);
        manifest.seal_recipients(name, &key);

        let tmp = tempfile::Builder::new()
            .prefix(fsio::TMP_PREFIX)
            .tempdir_in(&self.root)
            .map_err(|e| Error::io("create a temporary directory in", &self.root, e))?;
        for (file, bytes) in [
            (VAULT_KEY_FILE, key_file),
            (MANIFEST_FILE, manifest.to_bytes()),
        ] {
            fsio::write_atomic(tmp.path(), file, &bytes, layout::STORE_FILE_MODE)?;
        }
        set_dir_mode(tmp.path())?;
        let tmp = tmp.keep();
        if let Err(e) = fs::rename(&tmp, &dir) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(Error::io("create", &dir, e));
        }
        fsio::fsync_dir(&self.root)?;
        // This machine made the key: it is the first one it trusts.
        if let Some(mut record) = self.trust_record()? {
            record.record(name, &key)?;
        }
        Ok(())
    }

    /// Deletes an empty vault. Refuses a vault that still holds secrets
    /// (listed or not), saying how many.
    pub fn delete_vault(&self, name: &VaultName) -> Result<()> {
        let vault = self.vault(name)?;
        let write = vault.write()?;
        let count = write.secret_count_on_disk()?;
        if count > 0 {
            return Err(Error::VaultNotEmpty {
                name: name.to_string(),
                count,
            });
        }
        let trash = self
            .root
            .join(format!("{}{}", layout::TRASH_PREFIX, name.as_str()));
        fs::rename(vault.dir(), &trash).map_err(|e| Error::io("remove", vault.dir(), e))?;
        fsio::fsync_dir(&self.root)?;
        let r = match fs::remove_dir_all(&trash) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &trash, e)),
        };
        drop(write);
        r
    }
}

/// Vault directories are world-readable, like the rest of a checkout.
fn set_dir_mode(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io("set permissions on", dir, e))
}
