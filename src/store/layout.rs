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
//!   .gitattributes           routes store files to coffer's git drivers (GITATTRIBUTES_FILE)
//!   <vault>/                 one directory per vault
//!     vault.toml             the manifest (MANIFEST_FILE)
//!     vault-key.age          the vault key, for its recipients (VAULT_KEY_FILE)
//!     <secret>.age           one file per secret (secret_file_name)
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
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
/// The store's `.gitattributes`, which `coffer git setup` writes: it routes
/// store files to coffer's git drivers (see `encrypted_files_pattern`).
pub const GITATTRIBUTES_FILE: &str = ".gitattributes";
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
    if is_transient(name) {
        return StoreFile::Transient;
    }
    match kind_of_file_name(name) {
        FileKind::Manifest => StoreFile::Manifest(vault),
        FileKind::VaultKey => StoreFile::VaultKey(vault),
        FileKind::Secret(secret) => StoreFile::Secret(vault, secret),
        FileKind::Config | FileKind::Other => StoreFile::Other,
    }
}

/// What a store file is by its base name alone, for paths whose vault is
/// unknown or beside the point (what git hands its drivers).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// `coffer.toml`.
    Config,
    /// `vault.toml`.
    Manifest,
    /// `vault-key.age`.
    VaultKey,
    /// `<secret>.age`, with a valid secret name.
    Secret(SecretName),
    /// Anything else.
    Other,
}

/// Says what a file called `file_name` (a base name, no `/`) is.
pub fn kind_of_file_name(file_name: &str) -> FileKind {
    if file_name == CONFIG_FILE {
        FileKind::Config
    } else if file_name == MANIFEST_FILE {
        FileKind::Manifest
    } else if file_name == VAULT_KEY_FILE {
        FileKind::VaultKey
    } else if let Some(secret) = secret_name_of(file_name) {
        FileKind::Secret(secret)
    } else {
        FileKind::Other
    }
}

/// Says what a path git hands a textconv driver is: a file of the work
/// tree (`vaults/api-keys/stripe-key.age`) or git's temporary copy of an
/// old version, which git names `XXXXXX_<base name>`
/// (`/tmp/Ab3xYz_stripe-key.age`).
///
/// The base name is tried whole first. Only if it is no store file is the
/// part after its last `_` tried: no store file name contains `_` (secret
/// names are lowercase letters, digits and `-`, see `name.rs`), so
/// whatever precedes the last `_` is git's.
pub fn kind_of_git_copy(path: &Path) -> FileKind {
    let Some(base) = path.file_name().and_then(|n| n.to_str()) else {
        return FileKind::Other;
    };
    match kind_of_file_name(base) {
        FileKind::Other => match base.rsplit_once('_') {
            Some((_, original)) => kind_of_file_name(original),
            None => FileKind::Other,
        },
        kind => kind,
    }
}

/// The pattern, relative to the store directory, that matches every file
/// that is age-encrypted: secrets and vault keys (`*.age`).
pub fn encrypted_files_pattern() -> String {
    format!("*{SECRET_EXT}")
}

/// A git pathspec glob for every vault's key, for a store at `prefix`
/// (relative to the top of the work tree, `/`-separated, empty for the
/// top itself).
pub fn vault_keys_glob(prefix: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() {
        format!("*/{VAULT_KEY_FILE}")
    } else {
        format!("{prefix}/*/{VAULT_KEY_FILE}")
    }
}

/// One entry of a vault's directory, classified.
#[derive(Clone, Debug)]
pub struct VaultDirEntry {
    /// The entry's name (lossily decoded: a name that is not UTF-8 is
    /// never a store file).
    pub file_name: String,
    /// The entry's path.
    pub path: PathBuf,
    /// What it is.
    pub kind: StoreFile,
}

/// Lists the directory of `vault` at `dir`, every entry classified,
/// sorted by name.
pub fn list_vault_dir(dir: &Path, vault: &VaultName) -> Result<Vec<VaultDirEntry>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let kind = classify_in_vault(vault.clone(), &file_name);
        out.push(VaultDirEntry {
            file_name,
            path: entry.path(),
            kind,
        });
    }
    out.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    Ok(out)
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
    fn git_temporary_copies_are_classified_by_their_original_name() {
        let k = |p: &str| kind_of_git_copy(Path::new(p));
        let secret = |s: &str| FileKind::Secret(s.parse().unwrap());
        assert_eq!(k("/tmp/Ab3xYz_stripe-key.age"), secret("stripe-key"));
        assert_eq!(k("vaults/api-keys/stripe-key.age"), secret("stripe-key"));
        assert_eq!(k("/tmp/Q1w2e3_vault-key.age"), FileKind::VaultKey);
        assert_eq!(k("vaults/api-keys/vault-key.age"), FileKind::VaultKey);
        assert_eq!(k("/tmp/Ab3xYz_vault.toml"), FileKind::Manifest);
        assert_eq!(k("/tmp/a_b_coffer.toml"), FileKind::Config);
        // Not store files, with or without git's prefix.
        assert_eq!(k("/tmp/Ab3xYz_Bad.age"), FileKind::Other);
        assert_eq!(k("/tmp/Ab3xYz_notes.txt"), FileKind::Other);
        assert_eq!(k("/tmp/stripe_key"), FileKind::Other);
        assert_eq!(k("/"), FileKind::Other);
    }

    #[test]
    fn git_patterns_name_the_store_files() {
        assert_eq!(encrypted_files_pattern(), "*.age");
        assert_eq!(vault_keys_glob(""), "*/vault-key.age");
        assert_eq!(vault_keys_glob("vaults"), "vaults/*/vault-key.age");
        assert_eq!(vault_keys_glob("a/b/"), "a/b/*/vault-key.age");
    }

    #[test]
    fn a_vault_directory_is_listed_classified_and_sorted() {
        let d = tempfile::tempdir().unwrap();
        for f in [
            "vault.toml",
            "vault-key.age",
            "bee.age",
            "a-12.age",
            ".coffer-tmp-x",
            "x.txt",
        ] {
            fs::write(d.path().join(f), "").unwrap();
        }
        let list = list_vault_dir(d.path(), &v("api-keys")).unwrap();
        let kinds: Vec<(&str, &StoreFile)> = list
            .iter()
            .map(|e| (e.file_name.as_str(), &e.kind))
            .collect();
        let s = |n: &str| StoreFile::Secret(v("api-keys"), n.parse().unwrap());
        assert_eq!(
            kinds,
            [
                (".coffer-tmp-x", &StoreFile::Transient),
                ("a-12.age", &s("a-12")),
                ("bee.age", &s("bee")),
                ("vault-key.age", &StoreFile::VaultKey(v("api-keys"))),
                ("vault.toml", &StoreFile::Manifest(v("api-keys"))),
                ("x.txt", &StoreFile::Other),
            ]
        );
        assert_eq!(list[1].path, d.path().join("a-12.age"));
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
