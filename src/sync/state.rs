//! The sync state: for each secret, what this machine last pushed.
//!
//! One JSON file per (target, store), in a directory the caller chooses
//! (the target is an opaque id its [`crate::sync::remote::Remote`]
//! supplies (the CLI uses `$XDG_STATE_HOME/coffer/sync/`, never the
//! repository). Each record holds a keyed digest of the value last pushed
//! ([`crate::crypto::VaultKey::value_digest`]: useless without the vault
//! key), the remote `updateTime` seen after the push and, since version 3,
//! a keyed digest of the secret's file that held that value
//! ([`crate::crypto::VaultKey::file_digest`]), which lets a re-sync skip
//! decrypting a file that has not changed. The file is
//! replaced atomically, and a lock file next to it keeps two syncs of the
//! same target from interleaving. A missing or damaged file only means
//! that every secret is pushed once more.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::crypto::mac::{hex, unhex32};
use crate::error::{Error, Result};
use crate::fsio;
use crate::store::txn;
use crate::store::txn::{DirLock, LockWait};

/// The state format this version writes. Version 1 named the platform
/// and workspace; version 2 holds the target's opaque id (a version-1 file
/// is simply not found: every secret is pushed once more); version 3 adds
/// each record's file digest. A version-2 file is still read, its records
/// without file digests (each secret is decrypted once more, not pushed);
/// the version bump keeps an older coffer from reading a file whose
/// records it would rewrite without understanding.
const STATE_VERSION: u32 = 3;

/// The oldest state format still read.
const OLDEST_READ: u32 = 2;

/// The largest state file read (a record is about 200 bytes: this is
/// hundreds of thousands of secrets).
const MAX_STATE_LEN: u64 = 64 << 20;

/// What was last pushed for one secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// The keyed digest of the value.
    pub digest: [u8; 32],
    /// The remote `updateTime` after the push, if known.
    pub update_time: Option<String>,
    /// The keyed digest of the secret's file holding that value
    /// ([`crate::crypto::VaultKey::file_digest`]), if known.
    pub file_digest: Option<[u8; 32]>,
}

impl Record {
    /// Returns a record.
    pub fn new(digest: [u8; 32], update_time: Option<String>) -> Record {
        Record {
            digest,
            update_time,
            file_digest: None,
        }
    }

    /// Returns the record with the keyed digest of the file that held the
    /// value.
    pub fn with_file_digest(mut self, file_digest: [u8; 32]) -> Record {
        self.file_digest = Some(file_digest);
        self
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRecord<'a> {
    #[serde(borrow)]
    digest: Cow<'a, str>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    update_time: Option<Cow<'a, str>>,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    file_digest: Option<Cow<'a, str>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
/// The file's layout. Its strings borrow from the file's bytes where they
/// can (and from the records when writing): at 10,000 secrets, a copy of
/// every string was megabytes.
struct RawState<'a> {
    version: u32,
    #[serde(borrow)]
    target: Cow<'a, str>,
    #[serde(borrow)]
    store: Cow<'a, str>,
    #[serde(borrow, default)]
    vaults: BTreeMap<Cow<'a, str>, BTreeMap<Cow<'a, str>, RawRecord<'a>>>,
}

/// The records of a state, by vault and secret name.
type Records = BTreeMap<String, BTreeMap<String, Record>>;

/// A target's state whose lock is held, not read yet ([`State::lock`]).
#[derive(Debug)]
pub struct LockedState {
    dir: PathBuf,
    name: String,
    lock: DirLock,
    ident: (String, String),
}

impl LockedState {
    /// Reads the state, keeping its lock. A file that cannot be parsed is
    /// set aside ([`State::was_damaged`]); one that cannot be read is an
    /// error.
    pub fn read(self) -> Result<State> {
        let path = self.dir.join(&self.name);
        let (records, damaged, changed) = match fsio::read_file(&path, MAX_STATE_LEN) {
            Ok(bytes) => match parse(&bytes, &self.ident) {
                Some((r, version)) => (r, false, version != STATE_VERSION),
                None => (BTreeMap::new(), true, true),
            },
            Err(Error::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                (BTreeMap::new(), false, true)
            }
            Err(e) => return Err(e),
        };
        Ok(State {
            file: Some((self.dir, self.name)),
            _lock: Some(self.lock),
            ident: self.ident,
            records,
            damaged,
            changed,
        })
    }
}

/// The state of one sync target, locked while it is open.
#[derive(Debug)]
pub struct State {
    file: Option<(PathBuf, String)>,
    _lock: Option<DirLock>,
    ident: (String, String),
    records: Records,
    damaged: bool,
    /// Whether the records differ from the file's (or the file is missing,
    /// damaged or of an older version): a sync that changed nothing does
    /// not rewrite it.
    changed: bool,
}

impl State {
    /// Returns an empty state that is never saved (for a plan without a
    /// state directory, and for tests).
    pub fn in_memory() -> State {
        State {
            file: None,
            _lock: None,
            ident: Default::default(),
            records: BTreeMap::new(),
            damaged: false,
            changed: false,
        }
    }

    /// Opens (creating `dir`, mode 0700, if needed) and locks the state
    /// of syncing the store at `store_root` to the target `target_id`
    /// ([`crate::sync::remote::Remote::target_id`]), then reads it.
    pub fn open(dir: &Path, target_id: &str, store_root: &Path, wait: &LockWait) -> Result<State> {
        State::lock(dir, target_id, store_root, wait)?.read()
    }

    /// Takes the lock of the state [`State::open`] opens, without reading
    /// it yet: what the lock guards (the target, as the last sync left it)
    /// may be read meanwhile.
    pub fn lock(
        dir: &Path,
        target_id: &str,
        store_root: &Path,
        wait: &LockWait,
    ) -> Result<LockedState> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("create", dir, e))?;
        let store = fs::canonicalize(store_root).unwrap_or_else(|_| store_root.to_owned());
        let store = store.to_string_lossy().into_owned();
        let ident = (target_id.to_owned(), store);
        let stem = file_stem(&ident);
        let lock_path = dir.join(format!("{stem}.lock"));
        // Never through a link: a link planted in the directory would
        // otherwise make coffer create or lock a file elsewhere.
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&lock_path)
            .map_err(|e| fsio::map_open_error(&lock_path, e))?;
        let lock = txn::lock_dir(&lock_path, true, wait)?;
        Ok(LockedState {
            dir: dir.to_owned(),
            name: format!("{stem}.json"),
            lock,
            ident,
        })
    }

    /// Returns the state file's path (`None` for an in-memory state).
    pub fn path(&self) -> Option<PathBuf> {
        self.file.as_ref().map(|(d, n)| d.join(n))
    }

    /// Returns whether the file existed but could not be read (it was
    /// set aside: every secret is pushed once more).
    pub fn was_damaged(&self) -> bool {
        self.damaged
    }

    /// Returns how many secrets have a record.
    pub fn len(&self) -> usize {
        self.records.values().map(BTreeMap::len).sum()
    }

    /// Returns whether no secret has a record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Returns the record of a secret.
    pub fn get(&self, vault: &str, name: &str) -> Option<&Record> {
        self.records.get(vault)?.get(name)
    }

    /// Returns the records of a vault's secrets, sorted by name.
    pub fn records(&self, vault: &str) -> impl Iterator<Item = (&str, &Record)> {
        self.records
            .get(vault)
            .into_iter()
            .flatten()
            .map(|(name, r)| (name.as_str(), r))
    }

    /// Records a push.
    pub fn set(&mut self, vault: &str, name: &str, record: Record) {
        if self.get(vault, name) == Some(&record) {
            return;
        }
        self.changed = true;
        self.records
            .entry(vault.to_owned())
            .or_default()
            .insert(name.to_owned(), record);
    }

    /// Fills in the remote `updateTime` of a record that has none.
    pub fn set_update_time(&mut self, vault: &str, name: &str, time: Option<String>) {
        if let Some(r) = self.records.get_mut(vault).and_then(|v| v.get_mut(name))
            && r.update_time.is_none()
            && time.is_some()
        {
            r.update_time = time;
            self.changed = true;
        }
    }

    /// Records which file holds the value a record describes (a file
    /// rewritten with the same value: re-encrypted, say).
    pub fn set_file_digest(&mut self, vault: &str, name: &str, file_digest: [u8; 32]) {
        if let Some(r) = self.records.get_mut(vault).and_then(|v| v.get_mut(name))
            && r.file_digest != Some(file_digest)
        {
            r.file_digest = Some(file_digest);
            self.changed = true;
        }
    }

    /// Forgets a secret (deleted remotely).
    pub fn remove(&mut self, vault: &str, name: &str) {
        if let Some(v) = self.records.get_mut(vault) {
            self.changed |= v.remove(name).is_some();
            if v.is_empty() {
                self.records.remove(vault);
            }
        }
    }

    /// Forgets a vault (deleted remotely).
    pub fn remove_vault(&mut self, vault: &str) {
        self.changed |= self.records.remove(vault).is_some();
    }

    /// Writes the state atomically (mode 0600), if it changed since it was
    /// read (at 10,000 secrets the file is megabytes: a re-sync that
    /// changed nothing neither builds nor writes it). An in-memory state is
    /// not written.
    pub fn save(&self) -> Result<()> {
        let Some((dir, name)) = &self.file else {
            return Ok(());
        };
        if !self.changed {
            return Ok(());
        }
        let raw = RawState {
            version: STATE_VERSION,
            target: Cow::Borrowed(&self.ident.0),
            store: Cow::Borrowed(&self.ident.1),
            vaults: self
                .records
                .iter()
                .map(|(v, secrets)| {
                    let secrets = secrets
                        .iter()
                        .map(|(n, r)| {
                            let raw = RawRecord {
                                digest: Cow::Owned(hex(&r.digest)),
                                update_time: r.update_time.as_deref().map(Cow::Borrowed),
                                file_digest: r.file_digest.as_ref().map(|d| Cow::Owned(hex(d))),
                            };
                            (Cow::Borrowed(n.as_str()), raw)
                        })
                        .collect();
                    (Cow::Borrowed(v.as_str()), secrets)
                })
                .collect(),
        };
        let mut bytes = serde_json::to_vec_pretty(&raw).expect("the state serialises");
        bytes.push(b'\n');
        fsio::write_atomic(dir, name, &bytes, 0o600)
    }
}

/// The file name of a target's state: a digest of its identity, so that
/// paths and URLs never need escaping.
fn file_stem(ident: &(String, String)) -> String {
    let mut h = Sha256::new();
    for field in [&ident.0, &ident.1] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    hex(&h.finalize()[..16])
}

/// Parses a state file: its records, and its version.
fn parse(bytes: &[u8], ident: &(String, String)) -> Option<(Records, u32)> {
    let raw: RawState = serde_json::from_slice(bytes).ok()?;
    if !(OLDEST_READ..=STATE_VERSION).contains(&raw.version)
        || (&*raw.target, &*raw.store) != (ident.0.as_str(), ident.1.as_str())
    {
        return None;
    }
    let mut out = BTreeMap::new();
    for (vault, secrets) in raw.vaults {
        let mut v = BTreeMap::new();
        for (name, r) in secrets {
            let mut record = Record::new(unhex32(&r.digest)?, r.update_time.map(Cow::into_owned));
            // A version-2 record never holds one; ignore it if it does.
            if raw.version >= 3
                && let Some(f) = &r.file_digest
            {
                record = record.with_file_digest(unhex32(f)?);
            }
            v.insert(name.into_owned(), record);
        }
        out.insert(vault.into_owned(), v);
    }
    Some((out, raw.version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const TARGET: &str = "http://127.0.0.1:9#123e4567-e89b-12d3-a456-426614174000";

    #[test]
    fn a_sync_that_changes_nothing_does_not_rewrite_the_state() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let wait = LockWait::default();
        let record = Record::new([1; 32], Some("t1".into())).with_file_digest([9; 32]);
        let inode = |s: &State| fs::metadata(s.path().unwrap()).unwrap().ino();
        let first = {
            let mut s = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
            s.set("v", "a", record.clone());
            s.save().unwrap();
            inode(&s)
        };
        {
            // The same record pushed again, the same update time and file.
            let mut s = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
            s.set("v", "a", record.clone());
            s.set_update_time("v", "a", Some("t2".into()));
            s.set_file_digest("v", "a", [9; 32]);
            s.remove("v", "not-there");
            s.remove_vault("not-there");
            s.save().unwrap();
            assert_eq!(inode(&s), first, "rewritten without a change");
        }
        {
            let mut s = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
            s.set_file_digest("v", "a", [8; 32]);
            s.save().unwrap();
            assert_ne!(inode(&s), first, "a change was not written");
        }
        let s = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
        assert_eq!(s.get("v", "a").unwrap().file_digest, Some([8; 32]));
    }

    #[test]
    fn records_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let wait = LockWait::default();
        {
            let mut s = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
            assert!(s.is_empty() && !s.was_damaged());
            s.set(
                "v1",
                "a",
                Record::new([1; 32], Some("t1".into())).with_file_digest([9; 32]),
            );
            s.set("v1", "b", Record::new([2; 32], None));
            s.set_update_time("v1", "b", Some("t2".into()));
            s.set("v2", "c", Record::new([3; 32], None));
            s.remove_vault("v2");
            s.save().unwrap();
        }
        let s = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.get("v1", "b").unwrap().update_time.as_deref(), Some("t2"));
        assert_eq!(s.get("v1", "a").unwrap().digest, [1; 32]);
        assert_eq!(s.get("v1", "a").unwrap().file_digest, Some([9; 32]));
        assert_eq!(s.get("v1", "b").unwrap().file_digest, None);
        let path = s.path().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn each_target_has_its_own_file_and_a_damaged_one_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let other = "http://127.0.0.1:9#00000000-0000-0000-0000-000000000001";
        let wait = LockWait::default();
        let a = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
        let b = State::open(dir.path(), other, dir.path(), &wait).unwrap();
        assert_ne!(a.path(), b.path());
        let path = a.path().unwrap();
        drop((a, b));
        fs::write(&path, b"{not json").unwrap();
        let s = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
        assert!(s.was_damaged() && s.is_empty());
    }

    #[test]
    fn a_file_naming_another_target_or_a_format_before_2_is_not_read_and_2_still_is() {
        let dir = tempfile::tempdir().unwrap();
        let wait = LockWait::default();
        let s = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
        let path = s.path().unwrap();
        drop(s);
        let store = fs::canonicalize(dir.path()).unwrap();
        let store = store.to_string_lossy();
        let digest = hex(&[1; 32]);
        for text in [
            format!(
                r#"{{"version":1,"target":"{TARGET}","store":"{store}","vaults":{{"v":{{"a":{{"digest":"{digest}"}}}}}}}}"#
            ),
            format!(
                r#"{{"version":2,"target":"other","store":"{store}","vaults":{{"v":{{"a":{{"digest":"{digest}"}}}}}}}}"#
            ),
        ] {
            fs::write(&path, &text).unwrap();
            let s = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
            assert!(s.was_damaged() && s.is_empty(), "{text}");
        }
        let good = format!(
            r#"{{"version":2,"target":"{TARGET}","store":"{store}","vaults":{{"v":{{"a":{{"digest":"{digest}"}}}}}}}}"#
        );
        fs::write(&path, good).unwrap();
        let s = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
        assert_eq!(s.get("v", "a").unwrap().digest, [1; 32]);
        drop(s);
        // Version 2 knew no file digest: one found there is not trusted.
        // Version 3 reads it.
        let file = hex(&[2; 32]);
        for (version, expected) in [(2, None), (3, Some([2; 32]))] {
            let text = format!(
                r#"{{"version":{version},"target":"{TARGET}","store":"{store}","vaults":{{"v":{{"a":{{"digest":"{digest}","fileDigest":"{file}"}}}}}}}}"#
            );
            fs::write(&path, text).unwrap();
            let s = State::open(dir.path(), TARGET, dir.path(), &wait).unwrap();
            assert!(!s.was_damaged());
            assert_eq!(s.get("v", "a").unwrap().file_digest, expected, "v{version}");
        }
    }

    #[test]
    fn a_second_sync_of_the_same_target_waits_for_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let _held = State::open(dir.path(), TARGET, dir.path(), &LockWait::default()).unwrap();
        let short = LockWait {
            timeout: Duration::from_millis(100),
            ..LockWait::default()
        };
        assert!(matches!(
            State::open(dir.path(), TARGET, dir.path(), &short),
            Err(Error::LockTimeout { .. })
        ));
    }
}
