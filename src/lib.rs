//! coffer: an encrypted, local-first secret store that lives in a git
//! repository.
//!
//! A store is a directory (normally `vaults/`) holding `coffer.toml` (the
//! team's recipients) and one directory per vault. A vault holds its
//! manifest (`vault.toml`, plaintext), its own age identity encrypted to the
//! vault's recipients (`vault-key.age`), and one age file per secret,
//! encrypted to the vault key alone. `docs/format.md` is the normative
//! description of the format, and `docs/architecture.md` the map of this
//! crate.
//!
//! The library is layered, each layer importing only those below it:
//!
//! ```text
//! git/  sync/  runtime/       what coffer does with a store
//!        store/               the store on disk
//!        crypto/              age, keys, digests, MACs
//! error name time secret fsio the ground every part stands on
//! ```
//!
//! It never prints, prompts or reads the environment: callers pass in what
//! it needs (where identities live, the current time, callbacks for
//! hardware keys) and get typed results and errors back. Plaintext values
//! are [`secret::SecretValue`]s, readable only through `expose_secret()`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The ground.
pub mod error;
pub mod fsio;
pub mod name;
pub mod secret;
pub mod time;

// The parts, from the bottom up.
pub mod crypto;
pub mod git;
pub mod runtime;
pub mod store;
pub mod sync;

#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
mod test_seed;

pub use crypto::{Identities, IdentitySources, RecipientKey};
pub use error::{Error, Result};
pub use name::{RecipientName, SecretName, VaultName};
pub use secret::SecretValue;
pub use store::{Change, LockWait, Recovered, Store, Vault};
pub use time::Time;
