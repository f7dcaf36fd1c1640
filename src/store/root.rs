//! The store: a directory (normally `vaults/` in a repository) holding
//! `coffer.toml` and one directory per vault.
//!
//! One lock guards the whole store: a `flock` on the store directory,
//! exclusive for any write, shared for reads. Every writer first finishes
//! an interrupted transaction, if any (see [`crate::store::txn`]). A [`Batch`]
//! groups changes to several vaults and `coffer.toml` into one
//! transaction, so that removing a recipient from every vault is all or
//! nothing.

use std::fs;
use std::path::{Path, PathBuf};

use crate::crypto::recipient::RecipientKey;
use crate::error::{Error, Result};
use crate::fsio;
use crate::name::{RecipientName, VaultName};
use crate::store::config::Config;
use crate::store::layout::{self, CONFIG_FILE, GITIGNORE, MANIFEST_FILE, STORE_DIR};
use crate::store::txn::{self, LockWait, Recovered};

/// An open store.
#[derive(Debug)]
pub struct Store {
    pub(crate) root: PathBuf,
    config: Config,
    lock_wait: LockWait,
    /// What opening the store had to finish (an interrupted change).
    recovered_on_open: Recovered,
    /// Where this machine's trust records live, if the caller gave one
    /// (see [`crate::store::trust`]); `None` checks no continuity.
    trust_dir: Option<PathBuf>,
}

impl Store {
    /// Finds the store for `start`: the nearest `vaults/coffer.toml`
    /// walking up from it. Returns the store directory.
    ///
    /// A store found this way must belong to the user: its directory, the
    /// directory holding it and its `coffer.toml` must be owned by the
    /// current user or by root. Otherwise another local user could plant a
    /// `vaults/` above someone's working directory (a shared `/tmp`, a
    /// world-writable parent) and have `run` start programs with their
    /// values, or `create` write secrets into their store: the class of
    /// git's CVE-2022-24765. `trusted` lists store directories (or their
    /// parents) the user has accepted anyway; `*` accepts any.
    pub fn discover(start: &Path, trusted: &[PathBuf]) -> Result<PathBuf> {
        for dir in start.ancestors() {
            let candidate = dir.join(STORE_DIR);
            if candidate.join(CONFIG_FILE).is_file() {
                check_owner(&candidate, trusted)?;
                return Ok(candidate);
            }
        }
        Err(Error::StoreNotFound {
            start: start.to_owned(),
        })
    }

    /// Opens the store in `dir`: the directory holding `coffer.toml`, or a
    /// directory whose `vaults/` holds it.
    pub fn open(dir: &Path) -> Result<Store> {
        let root = if dir.join(CONFIG_FILE).is_file() {
            dir.to_owned()
        } else if dir.join(STORE_DIR).join(CONFIG_FILE).is_file() {
            dir.join(STORE_DIR)
        } else {
            return Err(Error::NotAStore {
                path: dir.to_owned(),
            });
        };
        fsio::check_not_symlink(&root.join(CONFIG_FILE))?;
        let mut recovered = Recovered::default();
        if txn::has_journal(&root) {
            // An interrupted change may include coffer.toml: finish it
            // before reading the configuration everything else relies on.
            let _lock = txn::lock_dir(&root, true, &LockWait::default())?;
            recovered = txn::recover(&root, &[])?;
        }
        let config = Config::load(&root.join(CONFIG_FILE))?;
        Ok(Store {
            root,
            config,
            lock_wait: LockWait::default(),
            recovered_on_open: recovered,
            trust_dir: None,
        })
    }

    /// Creates a new store in `root` (created if missing) whose only
    /// recipient is `name`/`key`, with a `.gitignore` for coffer's
    /// temporary files.
    pub fn init(root: &Path, name: &RecipientName, key: &RecipientKey) -> Result<Store> {
        let config_path = root.join(CONFIG_FILE);
        // A committed link in place of the store would aim every write
        // elsewhere (`vaults -> ~/.ssh`).
        fsio::check_not_symlink(root)?;
        if fsio::check_not_symlink(&config_path)? {
            return Err(Error::StoreExists { path: config_path });
        }
        fs::create_dir_all(root).map_err(|e| Error::io("create", root, e))?;
        if !root.join(".gitignore").exists() {
            fsio::write_atomic(
                root,
                ".gitignore",
                GITIGNORE.as_bytes(),
                layout::STORE_FILE_MODE,
            )?;
        }
        // Written last and without overwriting: its appearance makes the store.
        fsio::write_new(
            &config_path,
            Config::initial_text(name, key).as_bytes(),
            layout::STORE_FILE_MODE,
        )?;
        Store::open(root)
    }

    /// Takes the store's shared lock, finishing an interrupted
    /// transaction first if there is one.
    pub(crate) fn lock_read(&self) -> Result<StoreLock> {
        let lock = txn::lock_dir(&self.root, false, &self.lock_wait)?;
        if !txn::has_journal(&self.root) {
            return Ok(StoreLock {
                _lock: lock,
                recovered: Recovered::default(),
            });
        }
        // A writer died after committing: finish its work first.
        drop(lock);
        drop(self.lock_write(&[])?);
        Ok(StoreLock {
            _lock: txn::lock_dir(&self.root, false, &self.lock_wait)?,
            recovered: Recovered::default(),
        })
    }

    /// Takes the store's exclusive lock, finishes an interrupted
    /// transaction, and removes leftover temp files in the store root and
    /// in `dirs`.
    pub(crate) fn lock_write(&self, dirs: &[&Path]) -> Result<StoreLock> {
        let lock = txn::lock_dir(&self.root, true, &self.lock_wait)?;
        let recovered = txn::recover(&self.root, dirs)?;
        Ok(StoreLock {
            _lock: lock,
            recovered,
        })
    }

    /// Returns true if a committed change is waiting to be finished (a
    /// command was interrupted after its commit point); the next command
    /// that reads or writes the store finishes it.
    pub fn has_interrupted_change(&self) -> bool {
        txn::has_journal(&self.root)
    }

    /// Finishes any interrupted change and removes every leftover temp
    /// file in the store, reporting what it found, including what opening
    /// the store already finished (for `verify`).
    pub fn recover(&self) -> Result<Recovered> {
        let names = self.vault_names()?;
        let dirs: Vec<PathBuf> = names.iter().map(|n| self.root.join(n.as_str())).collect();
        let refs: Vec<&Path> = dirs.iter().map(|d| d.as_path()).collect();
        let now = self.lock_write(&refs)?.recovered;
        Ok(Recovered {
            journal: now.journal || self.recovered_on_open.journal,
            temps: now.temps + self.recovered_on_open.temps,
        })
    }

    /// Sets how long lock waits last and whom they notify.
    pub fn set_lock_wait(&mut self, wait: LockWait) {
        self.lock_wait = wait;
    }

    /// Sets the directory of this machine's trust records: from then on,
    /// every vault key opened is checked for continuity with the one last
    /// seen, and recorded (see [`crate::store::trust`]).
    pub fn set_trust_dir(&mut self, dir: PathBuf) {
        self.trust_dir = Some(dir);
    }

    /// Loads this store's trust record, if a trust directory was set.
    pub fn trust_record(&self) -> Result<Option<crate::store::trust::TrustRecord>> {
        self.trust_dir
            .as_ref()
            .map(|d| crate::store::trust::TrustRecord::load(d, &self.root))
            .transpose()
    }

    /// Returns the store directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Returns the store configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Returns the names of the vaults, sorted. Entries that are not
    /// vaults (hidden files, invalid names, links, directories without a
    /// manifest) are skipped; `verify` reports them.
    pub fn vault_names(&self) -> Result<Vec<VaultName>> {
        let mut names = Vec::new();
        let entries = fs::read_dir(&self.root).map_err(|e| Error::io("list", &self.root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &self.root, e))?;
            let Ok(ft) = entry.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let Some(name) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<VaultName>().ok())
            else {
                continue;
            };
            if entry.path().join(MANIFEST_FILE).is_file() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }
}

/// A held store lock.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _lock: txn::DirLock,
    pub(crate) recovered: Recovered,
}

/// Refuses a discovered store that another user owns (see
/// [`Store::discover`]).
fn check_owner(store: &Path, trusted: &[PathBuf]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    let canonical = fs::canonicalize(store).unwrap_or_else(|_| store.to_owned());
    let parent = canonical.parent().map(Path::to_owned);
    let is_trusted = trusted.iter().any(|t| {
        t.as_os_str() == "*"
            || fs::canonicalize(t).is_ok_and(|t| t == canonical || Some(&t) == parent.as_ref())
    });
    if is_trusted {
        return Ok(());
    }
    let mut paths = vec![canonical.clone(), canonical.join(CONFIG_FILE)];
    paths.extend(parent);
    for path in paths {
        let meta = fs::symlink_metadata(&path).map_err(|e| Error::io("inspect", &path, e))?;
        let owner = meta.uid();
        if owner != me && owner != 0 {
            return Err(Error::UnsafeStore {
                path,
                owner,
                store: canonical,
            });
        }
    }
    Ok(())
}
