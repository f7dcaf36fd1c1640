//! The store: a directory (normally `vaults/` in a repository) holding
//! `coffer.toml` and one directory per vault.
//!
//! One lock guards the whole store: a `flock` on the store directory,
//! exclusive for any write, shared for reads. Every writer first finishes
//! an interrupted transaction, if any (see [`crate::fsutil`]). A [`Batch`]
//! groups changes to several vaults and `coffer.toml` into one
//! transaction, so that removing a recipient from every vault is all or
//! nothing.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{CONFIG_FILE, Config};
use crate::crypto::{self, VaultKey};
use crate::error::{Error, Result};
use crate::fsutil::{self, LockWait, Recovered, Txn};
use crate::identity::Identities;
use crate::manifest::Manifest;
use crate::name::{RecipientName, VaultName};
use crate::recipient::RecipientKey;
use crate::time::Time;
use crate::vault::{MANIFEST_FILE, VAULT_KEY_FILE, Vault, VaultWrite};

/// The usual name of the store directory inside a repository.
pub const STORE_DIR: &str = "vaults";

/// What `.gitignore` inside the store says: coffer's temporary files never
/// belong in a commit.
const GITIGNORE: &str = "# coffer's temporary files: see docs/format.md\n.coffer-*\n";

/// An open store.
#[derive(Debug)]
pub struct Store {
    root: PathBuf,
    config: Config,
    lock_wait: LockWait,
    /// What opening the store had to finish (an interrupted change).
    recovered_on_open: Recovered,
}

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
    /// Finds the store for `start`: the nearest `vaults/coffer.toml`
    /// walking up from it. Returns the store directory.
    pub fn discover(start: &Path) -> Result<PathBuf> {
        for dir in start.ancestors() {
            let candidate = dir.join(STORE_DIR);
            if candidate.join(CONFIG_FILE).is_file() {
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
        fsutil::check_not_symlink(&root.join(CONFIG_FILE))?;
        let mut recovered = Recovered::default();
        if fsutil::has_journal(&root) {
            // An interrupted change may include coffer.toml: finish it
            // before reading the configuration everything else relies on.
            let _lock = fsutil::lock_dir(&root, true, &LockWait::default())?;
            recovered = fsutil::recover(&root, &[])?;
        }
        let config = Config::load(&root.join(CONFIG_FILE))?;
        Ok(Store {
            root,
            config,
            lock_wait: LockWait::default(),
            recovered_on_open: recovered,
        })
    }

    /// Creates a new store in `root` (created if missing) whose only
    /// recipient is `name`/`key`, with a `.gitignore` for coffer's
    /// temporary files.
    pub fn init(root: &Path, name: &RecipientName, key: &RecipientKey) -> Result<Store> {
        let config_path = root.join(CONFIG_FILE);
        if fsutil::check_not_symlink(&config_path)? {
            return Err(Error::StoreExists { path: config_path });
        }
        fs::create_dir_all(root).map_err(|e| Error::io("create", root, e))?;
        if !root.join(".gitignore").exists() {
            fsutil::write_atomic(
                root,
                ".gitignore",
                GITIGNORE.as_bytes(),
                fsutil::STORE_FILE_MODE,
            )?;
        }
        // Written last and without overwriting: its appearance makes the store.
        fsutil::write_new(
            &config_path,
            Config::initial_text(name, key).as_bytes(),
            fsutil::STORE_FILE_MODE,
        )?;
        Store::open(root)
    }

    /// Takes the store's shared lock, finishing an interrupted
    /// transaction first if there is one.
    pub(crate) fn lock_read(&self) -> Result<StoreLock> {
        let lock = fsutil::lock_dir(&self.root, false, &self.lock_wait)?;
        if !fsutil::has_journal(&self.root) {
            return Ok(StoreLock {
                _lock: lock,
                recovered: Recovered::default(),
            });
        }
        // A writer died after committing: finish its work first.
        drop(lock);
        drop(self.lock_write(&[])?);
        Ok(StoreLock {
            _lock: fsutil::lock_dir(&self.root, false, &self.lock_wait)?,
            recovered: Recovered::default(),
        })
    }

    /// Takes the store's exclusive lock, finishes an interrupted
    /// transaction, and removes leftover temp files in the store root and
    /// in `dirs`.
    pub(crate) fn lock_write(&self, dirs: &[&Path]) -> Result<StoreLock> {
        let lock = fsutil::lock_dir(&self.root, true, &self.lock_wait)?;
        let recovered = fsutil::recover(&self.root, dirs)?;
        Ok(StoreLock {
            _lock: lock,
            recovered,
        })
    }

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

    /// Returns true if a committed change is waiting to be finished (a
    /// command was interrupted after its commit point); the next command
    /// that reads or writes the store finishes it.
    pub fn has_interrupted_change(&self) -> bool {
        fsutil::has_journal(&self.root)
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

    /// Opens a vault by name.
    pub fn vault(&self, name: &VaultName) -> Result<Vault<'_>> {
        let dir = self.root.join(name.as_str());
        if !fsutil::check_not_symlink(&dir)? || !dir.join(MANIFEST_FILE).exists() {
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
    pub fn new_vault_recipients(
        &self,
        name: &VaultName,
        identities: &Identities,
    ) -> Result<(
        BTreeMap<RecipientName, RecipientKey>,
        Vec<crate::error::RecipientChange>,
    )> {
        if fsutil::check_not_symlink(&self.root.join(name.as_str()))? {
            return Err(Error::VaultExists {
                name: name.to_string(),
            });
        }
        let recipients = self.config.desired_for(name);
        if recipients.is_empty() {
            return Err(Error::NoRecipientsLeft {
                vault: name.to_string(),
            });
        }
        let mut lists = Vec::new();
        for v in self.vault_names()? {
            let vault = self.vault(&v)?;
            let Ok(key) = vault.unlock(identities) else {
                continue;
            };
            let read = vault.read()?;
            if read.recipients_verify(&key) {
                lists.push(read.manifest().recipients.clone());
            }
        }
        let own = identities.recipients();
        let unvouched: BTreeMap<RecipientName, RecipientKey> = recipients
            .iter()
            .filter(|(n, k)| {
                !own.contains(k)
                    && (lists.is_empty() || !lists.iter().all(|l| l.get(*n) == Some(*k)))
            })
            .map(|(n, k)| (n.clone(), k.clone()))
            .collect();
        Ok((recipients, crate::team::diff(&BTreeMap::new(), &unvouched)))
    }

    /// Creates a vault: a new vault key, encrypted to `recipients` (from
    /// [`Store::new_vault_recipients`], after the user confirmed any that
    /// nobody vouched for), and an empty manifest. The vault appears
    /// atomically.
    pub fn create_vault<C: age::Callbacks>(
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
        if fsutil::check_not_symlink(&dir)? {
            return Err(Error::VaultExists {
                name: name.to_string(),
            });
        }
        let key = VaultKey::generate();
        let keys: Vec<&RecipientKey> = recipients.values().collect();
        let key_file = crypto::encrypt_to_keys(
            &keys,
            key.to_identity_file(&recipients).as_bytes(),
            callbacks,
        )?;
        let mut manifest = Manifest::new(now, key.public().to_string(), recipients);
        manifest.seal_recipients(name, &key);

        let tmp = tempfile::Builder::new()
            .prefix(fsutil::TMP_PREFIX)
            .tempdir_in(&self.root)
            .map_err(|e| Error::io("create a temporary directory in", &self.root, e))?;
        for (file, bytes) in [
            (VAULT_KEY_FILE, key_file),
            (MANIFEST_FILE, manifest.to_bytes()),
        ] {
            fsutil::write_atomic(tmp.path(), file, &bytes, fsutil::STORE_FILE_MODE)?;
        }
        set_dir_mode(tmp.path())?;
        let tmp = tmp.keep();
        if let Err(e) = fs::rename(&tmp, &dir) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(Error::io("create", &dir, e));
        }
        fsutil::fsync_dir(&self.root)
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
            .join(format!("{}{}", fsutil::TRASH_PREFIX, name.as_str()));
        fs::rename(vault.dir(), &trash).map_err(|e| Error::io("remove", vault.dir(), e))?;
        fsutil::fsync_dir(&self.root)?;
        let r = match fs::remove_dir_all(&trash) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("remove", &trash, e)),
        };
        drop(write);
        r
    }
}

/// A held store lock.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _lock: fsutil::DirLock,
    pub(crate) recovered: Recovered,
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

/// Vault directories are world-readable, like the rest of a checkout.
fn set_dir_mode(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| Error::io("set permissions on", dir, e))
}
