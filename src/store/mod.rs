//! The store on disk: its layout, its configuration, each vault's
//! manifest, key and secrets, the team of recipients, transactions and the
//! lock, and `verify`.
//!
//! - `layout`: every file name, limit and mode, and `classify`;
//! - `txn`: multi-file transactions, the journal, the lock;
//! - `config`: `coffer.toml`;
//! - `manifest`: `vault.toml` and its canonical reader and writer;
//! - `root`: the [`Store`] itself: finding, opening, locking;
//! - `vault`: one vault, read and written under the lock;
//! - `team`: who can open a vault, and changing it;
//! - `vaults`: creating and deleting vaults;
//! - `batch`: changes to several vaults as one transaction;
//! - `verify`: everything that can be checked about a store.
//!
//! Files inside this part import each other by file; everything above
//! imports the names re-exported here.

pub mod batch;
pub mod config;
pub mod layout;
pub mod manifest;
pub mod root;
pub mod team;
#[cfg(test)]
pub(crate) mod testing;
pub mod trust;
pub mod txn;
pub mod vault;
pub mod vaults;
pub mod verify;

pub use batch::Batch;
pub use config::{Config, Member};
pub use layout::{CONFIG_FILE, MANIFEST_FILE, STORE_DIR, StoreFile, VAULT_KEY_FILE, classify};
pub use manifest::{Entry, Manifest, RotationDue};
pub use root::Store;
pub use txn::{LockWait, Recovered};
pub use vault::{Change, Vault, VaultRead, VaultWrite};
pub use vaults::VaultSummary;
