//! The trust record: on each machine, the current vault key last seen for
//! each vault of each store, so that a vault whose keyring does not carry
//! it (a replacement, not a rotation) is refused. Like SSH's `known_hosts`,
//! trust is given on first use and kept outside the repository.
//!
//! One file per store, in the state directory the caller passes (the CLI
//! uses `$XDG_STATE_HOME/coffer/trust`, else `~/.local/state/coffer/trust`),
//! named by the SHA-256 of the store directory's canonical path: nothing
//! inside the repository can change that name, where any field of a store
//! file could be edited to make this machine forget what it trusted.
//!
//! Because a legitimate keyring never drops a key, a record that lags
//! behind (two processes racing to advance it) is never wrong, only less
//! strict: the older key is still in every legitimate successor.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::crypto::VaultKey;
use crate::crypto::mac::hex;
use crate::error::{Error, Result};
use crate::fsio;
use crate::name::VaultName;

/// The largest trust record read (a line per vault).
const MAX_RECORD_LEN: u64 = 4 << 20;

const HEADER: &str = "# coffer trust record: the vault keys this machine has seen (see docs/format.md, section 10)\n";

/// The trust record of one store.
#[derive(Debug, Clone)]
pub struct TrustRecord {
    path: PathBuf,
    /// Vault → the current public key last seen (`age1…`).
    seen: BTreeMap<VaultName, String>,
}

/// What checking a vault against the record found.
#[derive(Debug, PartialEq, Eq)]
pub enum Trust {
    /// Never seen on this machine.
    New,
    /// The keyring holds the key last seen (it may be newer).
    Continues,
    /// The keyring lacks the key last seen: a replacement.
    Broken {
        /// The public key last seen.
        trusted: String,
    },
}

/// Returns the fingerprint coffer shows for a vault key: `SHA256:` and
/// the first 16 bytes, in hex, of the SHA-256 of its `age1…` form.
pub fn key_fingerprint(public: &str) -> String {
    let d = crate::crypto::digest(public.as_bytes());
    format!("SHA256:{}", hex(&d[..16]))
}

impl TrustRecord {
    /// Loads the record of the store at `root` from `dir` (none yet: an
    /// empty record). A record that does not parse is an error, not a
    /// reason to trust anew.
    pub fn load(dir: &Path, root: &Path) -> Result<TrustRecord> {
        let canonical = fs::canonicalize(root).map_err(|e| Error::io("resolve", root, e))?;
        let id = crate::crypto::digest(canonical.as_os_str().as_encoded_bytes());
        let path = dir.join(format!("{}.txt", hex(&id)));
        let mut seen = BTreeMap::new();
        match fsio::read_file(&path, MAX_RECORD_LEN) {
            Ok(bytes) => {
                let bad = |line: usize| Error::TrustRecord {
                    path: path.clone(),
                    line,
                };
                let text = String::from_utf8(bytes).map_err(|_| bad(1))?;
                for (i, line) in text.lines().enumerate() {
                    if line.starts_with('#') || line.is_empty() {
                        continue;
                    }
                    let (v, k) = line.split_once(' ').ok_or_else(|| bad(i + 1))?;
                    let v: VaultName = v.parse().map_err(|_| bad(i + 1))?;
                    if !crate::crypto::is_canonical_recipient(k) {
                        return Err(bad(i + 1));
                    }
                    seen.insert(v, k.to_owned());
                }
            }
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        Ok(TrustRecord { path, seen })
    }

    /// Returns the key last seen for `vault`.
    pub fn seen(&self, vault: &VaultName) -> Option<&str> {
        self.seen.get(vault).map(String::as_str)
    }

    /// Checks a vault's keyring against the record.
    pub fn check(&self, vault: &VaultName, key: &VaultKey) -> Trust {
        match self.seen.get(vault) {
            None => Trust::New,
            Some(k) if key.contains_public(k) => Trust::Continues,
            Some(k) => Trust::Broken { trusted: k.clone() },
        }
    }

    /// Records `key`'s current public key as the one seen for `vault`,
    /// writing the record if it changed (atomically, mode 0600, its
    /// directory 0700).
    pub fn record(&mut self, vault: &VaultName, key: &VaultKey) -> Result<()> {
        let public = key.public().to_string();
        if self.seen.get(vault) == Some(&public) {
            return Ok(());
        }
        self.seen.insert(vault.clone(), public);
        self.save()
    }

    fn save(&self) -> Result<()> {
        let dir = self.path.parent().expect("the record is in a directory");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("create", dir, e))?;
        let meta = fs::symlink_metadata(dir).map_err(|e| Error::io("read", dir, e))?;
        if !meta.is_dir() {
            return Err(Error::Symlink {
                path: dir.to_owned(),
            });
        }
        if meta.permissions().mode() & 0o022 != 0 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("set the mode of", dir, e))?;
        }
        let mut text = String::from(HEADER);
        for (v, k) in &self.seen {
            text.push_str(&format!("{v} {k}\n"));
        }
        let name = self
            .path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("the record's name is hex");
        fsio::write_atomic(dir, name, text.as_bytes(), 0o600)
    }
}
