//! The store's layout on disk: every file name, size limit and mode, and
//! [`classify`], which says what a path inside a store is.
//!
//! This is the one place that knows what the files of a store are called.
//! Everything that dispatches on a file name (the journal, `verify`, `diff`,
//! git's merge driver and textconv, `git setup`) asks [`classify`] instead
//! of matching names itself, so a new store file is added here once.
//!
//! ```text
//! vaults/                    the store (STORE_DIR)
//!   coffer.toml              the team's recipients (CONFIG_FILE)
//!   .gitignore               ignores coffer's temporary files (GITIGNORE_FILE)
//!   <vault>/                 one directory per vault
//!     vault.toml             the manifest (MANIFEST_FILE)
//!     vault-key.age          the vault key, for its recipients (VAULT_KEY_FILE)
//!     <secret>.age           one file per secret (secret_file_name)
//! ```

use crate::name::{SecretName, VaultName};

pub use crate::fsio::TMP_PREFIX;

/// The usual name of the store directory inside a repository.
pub const STORE_DIR: &str = "vaults";
/// The store configuration: the team's named recipients.
pub const CONFIG_FILE: &str = "coffer.toml";
/// A vault's manifest.
pub const MANIFEST_FILE: &str = "vault.toml";
/// A vault's key, encrypted to its recipients.
pub const VAULT_KEY_FILE: &str = "vault-key.age";
/// The extension of a secret's file.
pub const SECRET_EXT: &str = ".age";
/// The store's own `.gitignore`.
pub const GITIGNORE_FILE: &str = ".gitignore";
/// What the store's `.gitignore` says: coffer's temporary files never
/// belong in a commit.
pub const GITIGNORE: &str = "# coffer's temporary files: see docs/format.md\n.coffer-*\n";
/// Prefix of a vault directory being deleted.
pub const TRASH_PREFIX: &str = ".coffer-trash-";
/// The journal file of a committed, not yet applied, transaction.
pub const JOURNAL: &str = ".coffer-journal";

/// Mode of files in the store: ciphertext and manifests are public, and
/// git checks files out 0644 anyway.
pub const STORE_FILE_MODE: u32 = 0o644;

/// The largest `coffer.toml` coffer reads.
pub const MAX_CONFIG_LEN: u64 = 4 << 20;
/// The largest manifest coffer reads.
pub const MAX_MANIFEST_LEN: u64 = 64 << 20;
/// The largest secret file coffer reads: a 128 KiB value, armored, with
/// room for its header.
pub const MAX_SECRET_FILE_LEN: u64 = 256 << 10;
/// The largest `vault-key.age` coffer reads (many recipients, plugin
/// stanzas).
pub const MAX_VAULT_KEY_FILE_LEN: u64 = 1 << 20;

/// Returns the file name of a secret: `<name>.age`.
pub fn secret_file_name(name: &SecretName) -> String {
    format!("{}{SECRET_EXT}", name.as_str())
}

/// What a path inside a store is, by its name alone (nothing is read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreFile {
    /// `coffer.toml`.
    Config,
    /// The store's `.gitignore`.
    Gitignore,
    /// A vault's `vault.toml`.
    Manifest(VaultName),
    /// A vault's `vault-key.age`.
    VaultKey(VaultName),
    /// A secret's file.
    Secret(VaultName, SecretName),
    /// One of coffer's temporary files, the journal, or a vault being
    /// deleted: never part of a commit.
    Transient,
    /// Anything else: not part of a store.
    Other,
}

/// Says what `rel` is, a path relative to the store directory with `/`
/// separators (`coffer.toml`, `api-keys/stripe-key.age`). A name that is
/// not a valid vault or secret name is [`StoreFile::Other`].
pub fn classify(rel: &str) -> StoreFile {
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        [name] if *name == CONFIG_FILE => StoreFile::Config,
        [name] if *name == GITIGNORE_FILE => StoreFile::Gitignore,
        [name] if is_transient(name) => StoreFile::Transient,
        [vault, name] => {
            if is_transient(name) || is_transient(vault) {
                return StoreFile::Transient;
            }
            let Ok(vault) = vault.parse::<VaultName>() else {
                return StoreFile::Other;
            };
            classify_in_vault(vault, name)
        }
        _ => StoreFile::Other,
    }
}

/// Says what a file named `name` in `vault`'s directory is.
pub fn classify_in_vault(vault: VaultName, name: &str) -> StoreFile {
    if name == MANIFEST_FILE {
        StoreFile::Manifest(vault)
    } else if name == VAULT_KEY_FILE {
        StoreFile::VaultKey(vault)
    } else if is_transient(name) {
        StoreFile::Transient
    } else if let Some(secret) = secret_name_of(name) {
        StoreFile::Secret(vault, secret)
    } else {
        StoreFile::Other
    }
}

/// Returns the secret a file name holds (`stripe-key.age`), if it is one.
pub fn secret_name_of(file_name: &str) -> Option<SecretName> {
    file_name.strip_suffix(SECRET_EXT)?.parse().ok()
}

/// Returns whether `name` is one of coffer's transient files.
fn is_transient(name: &str) -> bool {
    name.starts_with(TMP_PREFIX) || name.starts_with(TRASH_PREFIX) || name == JOURNAL
}

/// Returns whether `rel` may be the target of a journal step: `coffer.toml`,
/// or a vault's manifest, key or secret file. A journal is read from disk,
/// so this is what keeps a planted one inside the store.
pub fn is_journal_target(rel: &str) -> bool {
    matches!(
        classify(rel),
        StoreFile::Config | StoreFile::Manifest(_) | StoreFile::VaultKey(_) | StoreFile::Secret(..)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> VaultName {
        s.parse().unwrap()
    }

    #[test]
    fn every_store_file_is_classified_by_its_name() {
        assert_eq!(classify("coffer.toml"), StoreFile::Config);
        assert_eq!(classify(".gitignore"), StoreFile::Gitignore);
        assert_eq!(
            classify("api-keys/vault.toml"),
            StoreFile::Manifest(v("api-keys"))
        );
        assert_eq!(
            classify("api-keys/vault-key.age"),
            StoreFile::VaultKey(v("api-keys"))
        );
        assert_eq!(
            classify("api-keys/stripe-key.age"),
            StoreFile::Secret(v("api-keys"), "stripe-key".parse().unwrap())
        );
        assert_eq!(classify(".coffer-journal"), StoreFile::Transient);
        assert_eq!(classify("api-keys/.coffer-tmp-x1"), StoreFile::Transient);
        assert_eq!(
            classify(".coffer-trash-api-keys/vault.toml"),
            StoreFile::Transient
        );
        for other in [
            "README.md",
            "a/notes.txt",
            "Api-keys/vault.toml",
            "a/Bad.age",
            "api-keys/b/stripe-key.age",
            "../x/vault.toml",
            "/coffer.toml",
            "",
        ] {
            assert_eq!(classify(other), StoreFile::Other, "{other}");
        }
    }

    #[test]
    fn journal_targets_stay_inside_the_store() {
        assert!(is_journal_target("coffer.toml"));
        assert!(is_journal_target("api-keys/stripe-key.age"));
        assert!(!is_journal_target(".gitignore"));
        assert!(!is_journal_target("api-keys/.coffer-tmp-1"));
        assert!(!is_journal_target("/etc/passwd"));
        assert!(!is_journal_target("api-keys/../../x.age"));
    }
}
