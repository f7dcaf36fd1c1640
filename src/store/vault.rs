//! One vault: a directory holding `vault.toml`, `vault-key.age` and one
//! `<name>.age` per secret.
//!
//! Reading happens under a shared lock ([`Vault::read`]), writing under an
//! exclusive one ([`Vault::write`]); both finish an interrupted transaction
//! first (see [`crate::fsutil`]), so nobody ever sees a half-written state.
//! Opening the vault key ([`Vault::unlock`]) happens outside any lock, since
//! a hardware key may wait for a touch; the guards then check that the key
//! still matches the manifest they hold.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::crypto::identity::Identities;
use crate::crypto::{self, DecryptFailure, VaultKey};
use crate::error::{Error, IntegrityProblem, Result};
use crate::fsio;
use crate::name::{SecretName, VaultName};
use crate::secret::SecretValue;
use crate::store::layout::MAX_MANIFEST_LEN;
use crate::store::layout::{
    self, MANIFEST_FILE, MAX_SECRET_FILE_LEN, MAX_VAULT_KEY_FILE_LEN, VAULT_KEY_FILE,
};
use crate::store::manifest::{Entry, Manifest};
use crate::store::root::{Store, StoreLock};
use crate::store::txn;
use crate::store::txn::Txn;
use crate::time::Time;

/// How much of the manifest is read for its vault-wide fields alone: they
/// fit unless a vault has hundreds of recipients.
const HEADER_READ: usize = 64 << 10;

/// A vault in a store, not yet locked or read.
#[derive(Debug)]
pub struct Vault<'s> {
    store: &'s Store,
    name: VaultName,
    dir: PathBuf,
}

/// The outcome of a write that may change nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Files were (or will be, on commit) rewritten.
    Changed,
    /// The value was the same: nothing to write.
    Unchanged,
}

impl<'s> Vault<'s> {
    pub(crate) fn new(store: &'s Store, name: VaultName, dir: PathBuf) -> Vault<'s> {
        Vault { store, name, dir }
    }

    /// Returns the vault's name.
    pub fn name(&self) -> &VaultName {
        &self.name
    }

    /// Returns the vault's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Returns the store the vault belongs to.
    pub fn store(&self) -> &Store {
        self.store
    }

    fn not_found(&self) -> Error {
        Error::VaultNotFound {
            name: self.name.to_string(),
        }
    }

    /// Reads the manifest's bytes, and returns them with its path.
    fn manifest_bytes(&self) -> Result<(Vec<u8>, PathBuf)> {
        // The vault may have been deleted, or replaced by a link, while we
        // waited for the lock.
        if !fsio::check_not_symlink(&self.dir)? {
            return Err(self.not_found());
        }
        let path = self.dir.join(MANIFEST_FILE);
        match fsio::read_file(&path, MAX_MANIFEST_LEN) {
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Err(self.not_found())
            }
            r => Ok((r?, path)),
        }
    }

    /// Opens the manifest for reading in pieces (not following a link),
    /// and returns it with its path.
    fn open_manifest(&self) -> Result<(fs::File, PathBuf)> {
        // As in `manifest_bytes`: the vault may have gone while we waited.
        if !fsio::check_not_symlink(&self.dir)? {
            return Err(self.not_found());
        }
        let path = self.dir.join(MANIFEST_FILE);
        match fsio::open_nofollow(&path) {
            Ok(f) => Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(self.not_found()),
            Err(e) => Err(fsio::map_open_error(&path, e)),
        }
    }

    /// Reads the manifest's vault-wide fields (recipients, public key,
    /// epoch), without its secrets, and without the store's lock: cheap at
    /// any size, for showing what a change will do before asking for it.
    pub fn header(&self) -> Result<Manifest> {
        self.load_header()
    }

    /// Reads the manifest's vault-wide fields, without its secrets: in
    /// coffer's own layout, from the first bytes of the file only.
    fn load_header(&self) -> Result<Manifest> {
        let (f, path) = self.open_manifest()?;
        let mut prefix = Vec::with_capacity(HEADER_READ);
        f.take(HEADER_READ as u64)
            .read_to_end(&mut prefix)
            .map_err(|e| Error::io("read", &path, e))?;
        if prefix.len() == HEADER_READ
            && let Some(m) = Manifest::parse_header_prefix(&prefix)
        {
            return Ok(m);
        }
        let (bytes, path) = self.manifest_bytes()?;
        Manifest::parse_header(&bytes, &path)
    }

    fn load_manifest(&self) -> Result<(Manifest, Vec<u8>)> {
        let (bytes, path) = self.manifest_bytes()?;
        let m = Manifest::parse(&bytes, &path)?;
        Ok((m, bytes))
    }

    /// Reads the manifest's vault-wide fields and the entry of `name` (the
    /// result lists no other secret). In coffer's own layout the file is
    /// read piece by piece through a small buffer, looking for the entry's
    /// table line, and no other entry is parsed: a large vault costs one
    /// pass over the file. Otherwise, or if the entry is not there, the
    /// whole manifest is parsed ([`Manifest::parse_one`]).
    fn load_one(&self, name: &SecretName) -> Result<Manifest> {
        if let Some(m) = self.find_entry(name)? {
            return Ok(m);
        }
        let (bytes, path) = self.manifest_bytes()?;
        Manifest::parse_one(&bytes, &path, name)
    }

    /// The fast path of [`Vault::load_one`]; `None` to take the slow one.
    fn find_entry(&self, name: &SecretName) -> Result<Option<Manifest>> {
        use std::os::unix::fs::FileExt;
        const CHUNK: usize = 64 << 10;
        // The most an entry's lines take (a long list of removed names).
        const ENTRY_READ: usize = 16 << 10;
        let (mut f, path) = self.open_manifest()?;
        let read_err = |e| Error::io("read", &path, e);
        let meta = f.metadata().map_err(read_err)?;
        if !meta.is_file() || meta.len() > MAX_MANIFEST_LEN {
            return Ok(None);
        }
        let needle = Manifest::table_line(name);
        let finder = memchr::memmem::Finder::new(&needle);
        // Windows of the file, each overlapping the last by one byte less
        // than the needle, so that no occurrence is missed or seen twice.
        let keep = needle.len() - 1;
        let mut buf = vec![0u8; CHUNK];
        let (mut filled, mut offset) = (0, 0u64);
        let mut prefix = None;
        let mut hits = Vec::new();
        loop {
            let mut eof = false;
            while filled < buf.len() {
                match f.read(&mut buf[filled..]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(read_err(e)),
                }
            }
            let window = &buf[..filled];
            if prefix.is_none() {
                prefix = Some(window.to_vec());
            }
            hits.extend(finder.find_iter(window).map(|at| offset + at as u64));
            if eof || hits.len() > 1 {
                break;
            }
            let cut = filled - keep;
            buf.copy_within(cut..filled, 0);
            offset += cut as u64;
            filled = keep;
        }
        let ([at], Some(prefix)) = (hits.as_slice(), prefix) else {
            return Ok(None);
        };
        let mut after = vec![0u8; ENTRY_READ];
        let start = at + needle.len() as u64;
        let mut got = 0;
        while got < after.len() {
            match f.read_at(&mut after[got..], start + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(read_err(e)),
            }
        }
        let complete = got < after.len();
        after.truncate(got);
        Ok(Manifest::parse_one_from_parts(
            &prefix, &after, complete, name,
        ))
    }

    /// Takes the store's shared lock and returns whether the manifest
    /// lists `name`, reading only that entry where it can (see
    /// [`Vault::load_one`]).
    pub fn contains(&self, name: &SecretName) -> Result<bool> {
        let _lock = self.store.lock_read()?;
        Ok(self.load_one(name)?.secrets.contains_key(name))
    }

    /// Takes the store's shared lock and reads one secret, checked exactly
    /// as [`VaultRead::get`] checks it, reading only its own entry of the
    /// manifest where it can: as fast in a large vault as in a small one.
    pub fn get(&self, key: &VaultKey, name: &SecretName) -> Result<SecretValue> {
        let _lock = self.store.lock_read()?;
        let manifest = self.load_one(name)?;
        self.check_key(&manifest, key)?;
        self.get_in(&self.files()?, &manifest, key, name)
    }

    /// Takes the store's shared lock and reads the manifest.
    pub fn read(&self) -> Result<VaultRead<'_>> {
        let lock = self.store.lock_read()?;
        let (manifest, _) = self.load_manifest()?;
        Ok(VaultRead {
            vault: self,
            _lock: lock,
            manifest,
            files: self.files()?,
        })
    }

    /// Takes the store's exclusive lock (finishing any interrupted
    /// transaction) and reads the manifest, for changes committed with
    /// [`VaultWrite::commit`].
    ///
    /// Temp files a killed command left in the vault directory are not
    /// swept here: they are harmless (nothing reads them, git ignores
    /// them), and listing a directory of 10,000 secrets on every write
    /// costs more than they do. `verify` and `rekey` sweep them.
    pub fn write(&self) -> Result<VaultWrite<'_>> {
        let lock = self.store.lock_write(&[])?;
        self.write_with(Some(lock))
    }

    pub(crate) fn write_with(&self, lock: Option<StoreLock>) -> Result<VaultWrite<'_>> {
        let (manifest, bytes) = self.load_manifest()?;
        Ok(VaultWrite {
            vault: self,
            _lock: lock,
            manifest,
            original: bytes,
            txn: Txn::new(self.store.root()),
        })
    }

    /// Opens the vault key with the user's identities. Runs without a lock
    /// (a hardware key may wait for the user); checks that the key matches
    /// the manifest's public key, retrying once under a shared lock if a
    /// concurrent rekey made them disagree.
    ///
    /// With a trust directory set on the store, the keyring must also hold
    /// the key this machine last saw for the vault (else
    /// [`Error::VaultKeyReplaced`]); the key is then recorded as seen.
    pub fn unlock(&self, identities: &Identities) -> Result<VaultKey> {
        let key = self.unlock_untrusted(identities)?;
        self.check_trust(&key)?;
        Ok(key)
    }

    /// Opens the vault key as [`Vault::unlock`] does, without the
    /// continuity check: for `coffer vault trust`, which shows the change
    /// and asks before recording it.
    pub fn unlock_untrusted(&self, identities: &Identities) -> Result<VaultKey> {
        match self.unlock_once(identities) {
            Err(Error::VaultKeyMismatch { .. }) => {
                let _lock = self.read()?;
                self.unlock_once(identities)
            }
            r => r,
        }
    }

    /// Checks the key against this machine's trust record and records it
    /// (no-op without a trust directory).
    pub fn check_trust(&self, key: &VaultKey) -> Result<()> {
        use crate::store::trust::{Trust, key_fingerprint};
        let Some(mut record) = self.store.trust_record()? else {
            return Ok(());
        };
        if let Trust::Broken { trusted } = record.check(&self.name, key) {
            return Err(Error::VaultKeyReplaced {
                vault: self.name.to_string(),
                trusted: key_fingerprint(&trusted),
                found: key_fingerprint(&key.public().to_string()),
            });
        }
        // Advancing the record is best effort: a read-only home (a
        // container running `coffer run`) must not stop a read. A record
        // left behind is never wrong, only less strict (keyrings keep
        // their old keys); the check above already passed.
        let _ = record.record(&self.name, key);
        Ok(())
    }

    /// Records `key` as the one seen for this vault on this machine, after
    /// the user reviewed the change (`coffer vault trust`).
    pub fn trust(&self, key: &VaultKey) -> Result<()> {
        if let Some(mut record) = self.store.trust_record()? {
            record.record(&self.name, key)?;
        }
        Ok(())
    }

    fn unlock_once(&self, identities: &Identities) -> Result<VaultKey> {
        let path = self.dir.join(VAULT_KEY_FILE);
        let ct = fsio::read_file(&path, MAX_VAULT_KEY_FILE_LEN)?;
        let key = match crypto::decrypt_vault_key(&ct, &path, identities.iter()) {
            Ok(k) => k,
            Err(DecryptFailure::NoMatch) => {
                return Err(Error::NoMatchingIdentity {
                    vault: self.name.to_string(),
                    tried: identities.tried(),
                });
            }
            Err(DecryptFailure::Other(e)) => return Err(e),
        };
        let manifest = self.load_header()?;
        if !key.is_current(&manifest.public_key, manifest.epoch) {
            return Err(Error::VaultKeyMismatch {
                vault: self.name.to_string(),
            });
        }
        Ok(key)
    }

    /// Opens the vault's directory to read its secret files by name.
    pub(crate) fn files(&self) -> Result<fsio::Dir> {
        fsio::Dir::open(&self.dir)
    }

    /// Reads, verifies and decrypts one secret against `manifest`.
    pub(crate) fn get_in(
        &self,
        files: &fsio::Dir,
        manifest: &Manifest,
        key: &VaultKey,
        name: &SecretName,
    ) -> Result<SecretValue> {
        let entry = self.verified_entry(manifest, key, name)?;
        self.decrypt_file(files, name, entry, key)
    }

    /// Checks one secret against `manifest` as [`Vault::get_in`] does (the
    /// entry's MAC, the file's digest), without decrypting it; returns the
    /// file's SHA-256.
    pub(crate) fn check_in(
        &self,
        files: &fsio::Dir,
        manifest: &Manifest,
        key: &VaultKey,
        name: &SecretName,
    ) -> Result<[u8; 32]> {
        let entry = self.verified_entry(manifest, key, name)?;
        self.read_checked(files, name, entry)?;
        Ok(entry.digest)
    }

    /// Returns a secret's manifest entry once its MAC verifies.
    fn verified_entry<'m>(
        &self,
        manifest: &'m Manifest,
        key: &VaultKey,
        name: &SecretName,
    ) -> Result<&'m Entry> {
        let entry = manifest
            .secrets
            .get(name)
            .ok_or_else(|| Error::SecretNotFound {
                vault: self.name.to_string(),
                name: name.to_string(),
            })?;
        let problem = if entry.mac.is_none() {
            IntegrityProblem::Unverified
        } else if !manifest.entry_verifies(&self.name, name, entry, key) {
            IntegrityProblem::BadMac
        } else {
            return Ok(entry);
        };
        Err(Error::Integrity {
            vault: self.name.to_string(),
            name: name.to_string(),
            problem,
        })
    }

    /// Reads a secret's file and checks it against its entry's digest
    /// (errors as [`Vault::decrypt_file`] says).
    fn read_checked(&self, files: &fsio::Dir, name: &SecretName, entry: &Entry) -> Result<Vec<u8>> {
        let integrity = |problem| Error::Integrity {
            vault: self.name.to_string(),
            name: name.to_string(),
            problem,
        };
        let ct = match files.read_file(&layout::secret_file_name(name), MAX_SECRET_FILE_LEN) {
            Ok(ct) => ct,
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                return Err(integrity(IntegrityProblem::MissingFile));
            }
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::InvalidData => {
                return Err(integrity(IntegrityProblem::Malformed(source.to_string())));
            }
            Err(e) => return Err(e),
        };
        if crypto::digest(&ct) != entry.digest {
            return Err(integrity(IntegrityProblem::DigestMismatch));
        }
        Ok(ct)
    }

    /// Reads a secret's file, checks it against its entry's digest and
    /// decrypts it; the entry's MAC is the caller's business. A missing
    /// file, or one over the size limit, is an integrity problem of that
    /// secret; any other failure (permissions, a link, I/O) is returned as
    /// it is.
    pub(crate) fn decrypt_file(
        &self,
        files: &fsio::Dir,
        name: &SecretName,
        entry: &Entry,
        key: &VaultKey,
    ) -> Result<SecretValue> {
        let ct = self.read_checked(files, name, entry)?;
        key.decrypt_value_at(entry.epoch, &ct)
            .map_err(|problem| Error::Integrity {
                vault: self.name.to_string(),
                name: name.to_string(),
                problem,
            })
    }

    fn check_key(&self, manifest: &Manifest, key: &VaultKey) -> Result<()> {
        if !key.is_current(&manifest.public_key, manifest.epoch) {
            return Err(Error::Concurrent {
                vault: self.name.to_string(),
            });
        }
        Ok(())
    }
}

/// A vault under the store's shared lock.
#[derive(Debug)]
pub struct VaultRead<'v> {
    vault: &'v Vault<'v>,
    _lock: StoreLock,
    manifest: Manifest,
    /// The vault's directory, opened once for every file this read opens.
    files: fsio::Dir,
}

impl<'v> VaultRead<'v> {
    /// Returns the vault.
    pub fn vault(&self) -> &'v Vault<'v> {
        self.vault
    }

    /// Returns the manifest as read under the lock.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Reads one secret, after checking its manifest entry's MAC and its
    /// file's digest. A secret that fails either check is an error naming
    /// it, and its value is not returned.
    pub fn get(&self, key: &VaultKey, name: &SecretName) -> Result<SecretValue> {
        self.vault.check_key(&self.manifest, key)?;
        self.vault.get_in(&self.files, &self.manifest, key, name)
    }

    /// Checks one secret exactly as [`VaultRead::get`] does (the entry's
    /// MAC, the file's digest) without decrypting it, and returns the
    /// file's SHA-256: for a caller that knows what these very bytes hold.
    pub fn check(&self, key: &VaultKey, name: &SecretName) -> Result<[u8; 32]> {
        self.vault.check_key(&self.manifest, key)?;
        self.vault.check_in(&self.files, &self.manifest, key, name)
    }

    /// Returns whether the manifest's recipients carry a valid MAC.
    pub fn recipients_verify(&self, key: &VaultKey) -> bool {
        self.manifest.recipients_verify(&self.vault.name, key)
    }

    /// Reads several secrets, decrypting them in parallel across cores
    /// with the one vault key. Each is checked exactly as
    /// [`VaultRead::get`] checks one (MAC, digest, a single stanza), and
    /// fails or succeeds on its own: returns one result per distinct name,
    /// in name order. A name the manifest does not list is a
    /// [`Error::SecretNotFound`] result.
    pub fn get_many<'n>(
        &self,
        key: &VaultKey,
        names: impl IntoIterator<Item = &'n SecretName>,
    ) -> Result<Vec<(SecretName, Result<SecretValue>)>> {
        use rayon::prelude::*;
        self.vault.check_key(&self.manifest, key)?;
        let mut names: Vec<&SecretName> = names.into_iter().collect();
        // Usually given in order already (a manifest's own): sorted and
        // deduplicated only when not.
        if !names.is_sorted_by(|a, b| a < b) {
            names.sort_unstable();
            names.dedup();
        }
        Ok(names
            .into_par_iter()
            .map(|name| {
                let value = self.vault.get_in(&self.files, &self.manifest, key, name);
                (name.clone(), value)
            })
            .collect())
    }

    /// Reads every secret in the vault (see [`VaultRead::get_many`]).
    pub fn get_all(&self, key: &VaultKey) -> Result<Vec<(SecretName, Result<SecretValue>)>> {
        self.get_many(key, self.manifest.secrets.keys())
    }
}

/// A vault under the store's exclusive lock, with changes staged until
/// [`VaultWrite::commit`] (or [`crate::store::batch::Batch::stage`]). Dropping it
/// without committing changes nothing.
#[derive(Debug)]
pub struct VaultWrite<'v> {
    pub(crate) vault: &'v Vault<'v>,
    /// `None` when a batch holds the lock.
    _lock: Option<StoreLock>,
    pub(crate) manifest: Manifest,
    original: Vec<u8>,
    txn: Txn,
}

impl VaultWrite<'_> {
    /// Returns the manifest, including staged changes.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Reads one secret (see [`VaultRead::get`]).
    pub fn get(&self, key: &VaultKey, name: &SecretName) -> Result<SecretValue> {
        self.vault.check_key(&self.manifest, key)?;
        self.vault
            .get_in(&self.vault.files()?, &self.manifest, key, name)
    }

    /// Checks the key against the manifest and the recipients: no command
    /// encrypts to a vault whose recipients changed without approval. A
    /// format-1 vault is upgraded first (in memory, committed with the
    /// change).
    fn check_for_encrypt(&mut self, key: &VaultKey) -> Result<()> {
        self.vault.check_key(&self.manifest, key)?;
        self.check_recipients(key)?;
        self.upgrade(key)
    }

    /// Upgrades a format-1 manifest to format 2 with the vault key (see
    /// [`Manifest::upgrade`]); staged until commit, like any change. Every
    /// command that writes with the key calls it, so coffer never writes
    /// format 1; `vault-key.age` need not change (a format-1 key file is a
    /// keyring of one key).
    pub fn upgrade(&mut self, key: &VaultKey) -> Result<()> {
        self.vault.check_key(&self.manifest, key)?;
        self.manifest.upgrade(&self.vault.name, key)
    }

    fn put_secret(
        &mut self,
        key: &VaultKey,
        name: &SecretName,
        value: &SecretValue,
        created: Time,
        now: Time,
    ) -> Result<()> {
        let ct = key.encrypt_value(value)?;
        let mut entry = Entry {
            epoch: key.epoch(),
            created,
            updated: now,
            digest: crypto::digest(&ct),
            mac: None,
            rotation: None,
        };
        Manifest::seal_entry(&self.vault.name, name, &mut entry, key);
        self.put(&layout::secret_file_name(name), &ct)?;
        self.manifest.secrets.insert(name.clone(), entry);
        Ok(())
    }

    /// Stages a new secret. Fails if it exists.
    pub fn create(
        &mut self,
        key: &VaultKey,
        name: &SecretName,
        value: &SecretValue,
        now: Time,
    ) -> Result<()> {
        self.check_for_encrypt(key)?;
        if self.manifest.secrets.contains_key(name) {
            return Err(Error::SecretExists {
                vault: self.vault.name.to_string(),
                name: name.to_string(),
            });
        }
        self.put_secret(key, name, value, now, now)
    }

    /// Stages a new value for an existing secret. If the stored value
    /// decrypts to the same text, nothing is staged ([`Change::Unchanged`]),
    /// so git sees no change. A new value clears a rotation mark.
    pub fn update(
        &mut self,
        key: &VaultKey,
        name: &SecretName,
        value: &SecretValue,
        now: Time,
    ) -> Result<Change> {
        self.check_for_encrypt(key)?;
        let Some(entry) = self.manifest.secrets.get(name) else {
            return Err(Error::SecretNotFound {
                vault: self.vault.name.to_string(),
                name: name.to_string(),
            });
        };
        let created = entry.created;
        // A stored value that does not verify is simply replaced, but a
        // link is refused: nothing in the store may be one.
        match self
            .vault
            .files()
            .and_then(|files| self.vault.get_in(&files, &self.manifest, key, name))
        {
            Ok(old) if old.ct_eq(value) => return Ok(Change::Unchanged),
            Err(e @ Error::Symlink { .. }) => return Err(e),
            _ => {}
        }
        self.put_secret(key, name, value, created, now)?;
        Ok(Change::Changed)
    }

    /// Stages the removal of a secret. Needs no key.
    pub fn delete(&mut self, name: &SecretName) -> Result<()> {
        if self.manifest.secrets.remove(name).is_none() {
            return Err(Error::SecretNotFound {
                vault: self.vault.name.to_string(),
                name: name.to_string(),
            });
        }
        self.remove(&layout::secret_file_name(name));
        Ok(())
    }

    /// Counts the secrets in the manifest plus any `.age` file that no
    /// entry lists (an interrupted or hand-made addition).
    pub fn secret_count_on_disk(&self) -> Result<usize> {
        let mut count = self.manifest.secrets.len();
        let dir = &self.vault.dir;
        for entry in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
            let entry = entry.map_err(|e| Error::io("list", dir, e))?;
            let name = entry.file_name();
            let Some(stem) = name
                .to_str()
                .and_then(|n| n.strip_suffix(layout::SECRET_EXT))
            else {
                continue;
            };
            if let Ok(n) = stem.parse::<SecretName>()
                && !self.manifest.secrets.contains_key(&n)
            {
                count += 1;
            }
        }
        Ok(count)
    }

    /// Stages `bytes` as the vault's file `name`.
    pub(crate) fn put(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.txn.put(&format!("{}/{name}", self.vault.name), bytes)
    }

    /// Stages one of the vault's files per name, with the bytes made in
    /// parallel by `make(manifest, i)`: see [`txn::Txn::put_each`].
    pub(crate) fn put_each<T: Send>(
        &mut self,
        names: &[String],
        make: impl Fn(&Manifest, usize) -> Result<(Vec<u8>, T)> + Sync,
    ) -> Result<txn::Staged<T>> {
        let vault = self.vault.name.as_str();
        let targets: Vec<String> = names.iter().map(|n| format!("{vault}/{n}")).collect();
        let manifest = &self.manifest;
        self.txn.put_each(&targets, |i| make(manifest, i))
    }

    /// Stages the removal of the vault's file `name`.
    fn remove(&mut self, name: &str) {
        self.txn.remove(&format!("{}/{name}", self.vault.name));
    }

    /// Stages the manifest if it changed (a manifest that serialises to
    /// the same bytes is not rewritten) and takes the staged changes out.
    fn take_txn(&mut self) -> Result<Txn> {
        let bytes = self.manifest.to_bytes();
        if bytes != self.original {
            if self.manifest.is_v1() {
                return Err(Error::FormatUpgradeNeeded {
                    vault: self.vault.name.to_string(),
                });
            }
            self.put(MANIFEST_FILE, &bytes)?;
            self.original = bytes;
        }
        Ok(std::mem::replace(
            &mut self.txn,
            Txn::new(self.vault.store.root()),
        ))
    }

    /// Returns the staged changes, for a batch that holds the lock.
    pub(crate) fn into_txn(mut self) -> Result<Txn> {
        self.take_txn()
    }

    /// Writes every staged change atomically and durably. Returns whether
    /// anything was written.
    pub fn commit(mut self) -> Result<Change> {
        assert!(
            self._lock.is_some(),
            "a VaultWrite opened with write_in is committed by its Batch"
        );
        let txn = self.take_txn()?;
        if txn.is_empty() {
            return Ok(Change::Unchanged);
        }
        // `self`, and with it the store lock, lives until the commit is done.
        txn.commit()?;
        drop(self);
        Ok(Change::Changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::RecipientName;
    use crate::store::manifest::RotationDue;

    /// A manifest of ~400 KiB, read through a 64 KiB window: every entry is
    /// found, wherever the window boundaries fall, and equals the full
    /// parse's.
    #[test]
    fn one_entry_is_found_across_read_windows() {
        let (_d, store, _) = crate::store::testing::store_with_vault("big-vault");
        let who: RecipientName = "alice".parse().unwrap();
        let vname: VaultName = "big-vault".parse().unwrap();
        let vault = store.vault(&vname).unwrap();
        let mut m = vault.read().unwrap().manifest().clone();
        let t = Time::now();
        for i in 0..1500usize {
            let name: SecretName = format!("s{i}-{}z", "x".repeat(i % 53)).parse().unwrap();
            let rotation = (i % 7 == 0).then(|| RotationDue {
                since: t,
                removed: vec![who.clone()],
            });
            let e = Entry {
                epoch: 1,
                created: t,
                updated: t,
                digest: [i as u8; 32],
                mac: (i % 5 != 0).then_some([7; 32]),
                rotation,
            };
            m.secrets.insert(name, e);
        }
        let bytes = m.to_bytes();
        assert!(bytes.len() > 6 * (64 << 10));
        fs::write(vault.dir().join(MANIFEST_FILE), &bytes).unwrap();
        for (name, e) in &m.secrets {
            let one = vault.find_entry(name).unwrap().expect("found directly");
            assert_eq!(one.secrets.len(), 1);
            assert_eq!(one.secrets.get(name), Some(e));
            assert_eq!(one.public_key, m.public_key);
            assert!(vault.contains(name).unwrap());
        }
        let missing: SecretName = "not-there".parse().unwrap();
        assert!(vault.find_entry(&missing).unwrap().is_none());
        assert!(!vault.contains(&missing).unwrap());
    }
}
