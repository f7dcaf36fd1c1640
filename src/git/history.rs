//! Finding a vault key that opens an old version of a secret: the store's
//! current vault keys first, then every vault key the repository's history
//! holds (an old version may be encrypted to a key replaced since).
//!
//! This is what `git diff`'s textconv driver uses when the user has opted
//! in to seeing values. Nothing here fails hard: a key that does not open,
//! a vault that does not read, a git that does not run are all just "not
//! this one", so `git diff` keeps working.

use std::path::Path;

use crate::crypto::identity::Identities;
use crate::git::diff::open_vault_key;
use crate::git::repo::Git;
use crate::name::SecretName;
use crate::secret::SecretValue;
use crate::store::layout::{MAX_VAULT_KEY_FILE_LEN, VAULT_KEY_FILE, vault_keys_glob};
use crate::store::root::Store;

/// Decrypts `ciphertext` (a secret's file) with the first vault key that
/// opens it: the store's vaults' current keys (vaults that hold a secret
/// named `hint` first, as that is usually the one), then the vault keys in
/// the repository's history. `repo` is asked for the repository (git at
/// the top of the work tree, and the store's directory relative to it)
/// only if no current key opens it. `None` if no key the identities open
/// decrypts it.
pub fn decrypt_with_any_key(
    store: &Store,
    ids: &Identities,
    ciphertext: &[u8],
    hint: Option<&SecretName>,
    repo: impl FnOnce() -> Option<(Git, String)>,
) -> Option<SecretValue> {
    if ids.is_empty() {
        return None;
    }
    if let Some(value) = decrypt_with_current_keys(store, ids, ciphertext, hint) {
        return Some(value);
    }
    let (git, prefix) = repo()?;
    decrypt_with_past_keys(&git, &prefix, ids, ciphertext)
}

/// Tries the current key of every vault of the store.
fn decrypt_with_current_keys(
    store: &Store,
    ids: &Identities,
    ciphertext: &[u8],
    hint: Option<&SecretName>,
) -> Option<SecretValue> {
    let mut vaults = store.vault_names().ok()?;
    if let Some(h) = hint {
        vaults.sort_by_key(|v| {
            let holds = store
                .vault(v)
                .and_then(|vault| vault.read().map(|r| r.manifest().secrets.contains_key(h)))
                .unwrap_or(false);
            !holds
        });
    }
    vaults.into_iter().find_map(|v| {
        let key = store.vault(&v).ok()?.unlock(ids).ok()?;
        key.decrypt_value_any(ciphertext).ok()
    })
}

/// Tries every vault key any commit of the repository holds for the store
/// at `prefix`.
fn decrypt_with_past_keys(
    git: &Git,
    prefix: &str,
    ids: &Identities,
    ciphertext: &[u8],
) -> Option<SecretValue> {
    let oids = git.blob_history(&vault_keys_glob(prefix)).ok()?;
    let blobs = git.read_blobs(&oids, MAX_VAULT_KEY_FILE_LEN).ok()?;
    let path = Path::new(VAULT_KEY_FILE);
    blobs.into_iter().flatten().find_map(|blob| {
        let key = open_vault_key(&blob, path, ids).ok()??;
        key.decrypt_value_any(ciphertext).ok()
    })
}
