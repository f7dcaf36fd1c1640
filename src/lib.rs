//! coffer: an encrypted, local-first secret store that lives in a git
//! repository.
//!
//! A store is a directory (normally `vaults/`) holding `coffer.toml` (the
//! team's recipients) and one directory per vault. A vault holds its
//! manifest (`vault.toml`, plaintext), its own age identity encrypted to the
//! vault's recipients (`vault-key.age`), and one age file per secret,
//! encrypted to the vault key alone. `docs/format.md` is the normative
//! description of the format.
//!
//! This crate is the library behind the `coffer` command. It never prints,
//! prompts or reads the environment: callers pass in what it needs (where
//! identities live, the current time, callbacks for hardware keys) and get
//! typed results and errors back. Plaintext values are
//! [`secret::SecretValue`]s, readable only through `expose_secret()`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod crypto;
pub mod diff;
pub mod dotenv;
pub mod envname;
pub mod error;
pub(crate) mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod git;
pub mod identity;
pub mod json;
pub mod manifest;
pub mod merge;
pub mod name;
pub mod output;
pub mod recipient;
pub mod refs;
pub mod scan;
pub mod secret;
pub mod store;
pub mod sync;
pub mod team;
pub mod time;
pub mod vault;
pub mod verify;

pub use error::{Error, Result};
pub use fsutil::{LockWait, Recovered};
pub use identity::{Identities, IdentitySources};
pub use name::{RecipientName, SecretName, VaultName};
pub use recipient::RecipientKey;
pub use secret::SecretValue;
pub use store::Store;
pub use time::Time;
pub use vault::{Change, Vault};
