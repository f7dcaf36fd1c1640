//! Changes to several vaults and `coffer.toml` as one transaction.

use std::fs;

use crate::error::{Error, Result};
use crate::store::config::Config;
use crate::store::layout::CONFIG_FILE;
use crate::store::root::{Store, StoreLock};
use crate::store::txn::Txn;
use crate::store::vault::{Vault, VaultWrite};

impl Store {
    /// Starts a [`Batch`]: takes the exclusive lock for the whole of it.
    pub fn batch(&self) -> Result<Batch<'_>> {
        let lock = self.lock_write(&[])?;
        Ok(Batch {
            store: self,
            lock,
            txn: Txn::new(&self.root),
            config: None,
        })
    }
}

/// Changes to several vaults and `coffer.toml`, committed as one
/// transaction under the store's exclusive lock (held from
/// [`Store::batch`] to [`Batch::commit`]). Open each vault's
/// [`VaultWrite`] with [`Vault::write_in`], change it, and [`Batch::stage`]
/// it. Dropping a batch without committing changes nothing.
#[derive(Debug)]
pub struct Batch<'s> {
    store: &'s Store,
    lock: StoreLock,
    txn: Txn,
    config: Option<Config>,
}

impl<'s> Batch<'s> {
    /// Returns whether taking the lock finished an interrupted change.
    pub fn recovered_interrupted_change(&self) -> bool {
        self.lock.recovered.journal
    }

    /// Returns the configuration as this batch will write it (re-read
    /// under the lock: another process may have changed it).
    pub fn config(&mut self) -> Result<&mut Config> {
        if self.config.is_none() {
            self.config = Some(Config::load(&self.store.root.join(CONFIG_FILE))?);
        }
        Ok(self.config.as_mut().expect("just set"))
    }

    /// Adds a vault's staged changes to the batch.
    pub fn stage(&mut self, write: VaultWrite<'_>) -> Result<()> {
        let txn = write.into_txn()?;
        self.txn.absorb(txn);
        Ok(())
    }

    /// Writes every staged change at once, atomically and durably.
    pub fn commit(mut self) -> Result<()> {
        if let Some(config) = &self.config {
            let text = config.to_text();
            // Validate what we are about to write, as a reader would.
            Config::parse(&text, config.path())?;
            let current = fs::read_to_string(self.store.root.join(CONFIG_FILE))
                .map_err(|e| Error::io("read", self.store.root.join(CONFIG_FILE), e))?;
            if text != current {
                self.txn.put(CONFIG_FILE, text.as_bytes())?;
            }
        }
        let txn = std::mem::replace(&mut self.txn, Txn::new(&self.store.root));
        txn.commit()
    }
}

impl Vault<'_> {
    /// Reads the manifest for changes to be staged into `batch`, which
    /// already holds the store's exclusive lock.
    pub fn write_in<'a>(&'a self, _batch: &Batch<'_>) -> Result<VaultWrite<'a>> {
        self.write_with(None)
    }
}
