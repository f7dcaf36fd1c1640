//! Durable file operations: atomic writes, multi-file transactions, locks.
//!
//! Every write goes to a temporary file in the same directory (named
//! `.coffer-tmp-*`), is flushed to disk, and is renamed over its target; the
//! directory is flushed after. A change that spans several files (a secret
//! and the manifest, or every secret of a vault during a rekey) is a
//! [`Txn`]: all new files are written and flushed first, then a journal
//! (`.coffer-journal`) naming every rename and removal is written atomically,
//! then the renames run. The journal's appearance is the commit point: a
//! crash before it leaves the old state (plus temp files that the next
//! writer deletes), a crash after it is rolled forward by [`recover`], which
//! every lock holder runs before reading.
//!
//! Locks are `flock(2)` locks on the directory itself, so they leave no
//! files behind for git to see: exclusive for writers, shared for readers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Prefix of every temporary file or directory coffer creates in the store.
pub(crate) const TMP_PREFIX: &str = ".coffer-tmp-";
/// Prefix of a vault directory being deleted.
pub(crate) const TRASH_PREFIX: &str = ".coffer-trash-";
/// The journal file of a committed, not yet applied, transaction.
pub(crate) const JOURNAL: &str = ".coffer-journal";

/// Mode of files in the store: ciphertext and manifests are public, and
/// git checks files out 0644 anyway.
pub(crate) const STORE_FILE_MODE: u32 = 0o644;

/// Called with the locked path when a lock wait becomes noticeable.
pub type WaitNotice = Arc<dyn Fn(&Path) + Send + Sync>;

/// How long to wait for a lock, and whom to tell that we are waiting.
#[derive(Clone)]
pub struct LockWait {
    /// Give up after this long.
    pub timeout: Duration,
    /// Call `on_wait` once after waiting this long.
    pub notice_after: Duration,
    /// Told the locked path when the wait starts to be noticeable.
    pub on_wait: Option<WaitNotice>,
}

impl Default for LockWait {
    fn default() -> Self {
        LockWait {
            timeout: Duration::from_secs(30),
            notice_after: Duration::from_secs(1),
            on_wait: None,
        }
    }
}

impl std::fmt::Debug for LockWait {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockWait")
            .field("timeout", &self.timeout)
            .field("notice_after", &self.notice_after)
            .finish_non_exhaustive()
    }
}

/// A held `flock` on a directory. Released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Locks `dir`, exclusively or shared, waiting as `wait` says.
pub(crate) fn lock_dir(dir: &Path, exclusive: bool, wait: &LockWait) -> Result<DirLock> {
    let file = File::open(dir).map_err(|e| Error::io("open", dir, e))?;
    let start = Instant::now();
    let mut told = false;
    loop {
        let r = if exclusive {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match r {
            Ok(()) => return Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(e)) => return Err(Error::io("lock", dir, e)),
        }
        let waited = start.elapsed();
        if waited >= wait.timeout {
            return Err(Error::LockTimeout {
                path: dir.to_owned(),
                seconds: wait.timeout.as_secs(),
            });
        }
        if !told && waited >= wait.notice_after {
            told = true;
            if let Some(f) = &wait.on_wait {
                f(dir);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Opens a file for reading without following a symlink at its last
/// component.
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Reads a whole file inside the store, refusing symlinks and files larger
/// than `max` bytes (checked before reading, so a huge file costs nothing).
pub(crate) fn read_store_file(path: &Path, max: u64) -> Result<Vec<u8>> {
    let mut f = open_nofollow(path).map_err(|e| map_open_error(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io("read", path, e))?;
    if !meta.is_file() {
        return Err(Error::io(
            "read",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
        ));
    }
    if meta.len() > max {
        return Err(Error::io(
            "read",
            path,
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("file is {} bytes, over the limit of {max}", meta.len()),
            ),
        ));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    // Read one byte past the limit to catch a file that grew meanwhile.
    (&mut f)
        .take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    if buf.len() as u64 > max {
        return Err(Error::io(
            "read",
            path,
            io::Error::new(io::ErrorKind::InvalidData, "file grew over the limit"),
        ));
    }
    Ok(buf)
}

/// Maps an error from opening a store file: ELOOP means a symlink.
pub(crate) fn map_open_error(path: &Path, e: io::Error) -> Error {
    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        Error::Symlink {
            path: path.to_owned(),
        }
    } else {
        Error::io("open", path, e)
    }
}

/// Refuses `path` if it is a symlink; returns whether it exists.
pub(crate) fn check_not_symlink(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::Symlink {
            path: path.to_owned(),
        }),
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("inspect", path, e)),
    }
}

/// Flushes a directory's entries (renames, creations, removals) to disk.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("flush", dir, e))
}

/// Creates a temp file in `dir` holding `bytes`, with `mode`, not yet
/// flushed.
fn write_temp(dir: &Path, bytes: &[u8], mode: u32) -> Result<tempfile::NamedTempFile> {
    let mut tmp = tempfile::Builder::new()
        .prefix(TMP_PREFIX)
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| Error::io("write", tmp.path(), e))?;
    Ok(tmp)
}

/// Atomically replaces `dir/name` with `bytes`: temp file, fsync, rename,
/// fsync of the directory. On error the old file is untouched and the temp
/// file is removed.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = write_temp(dir, bytes, mode)?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("flush", tmp.path(), e))?;
    let target = dir.join(name);
    tmp.persist(&target)
        .map_err(|e| Error::io("rename into place", &target, e.error))?;
    fsync_dir(dir)
}

/// Creates `path` with `bytes` and `mode`, failing if it exists; flushed
/// to disk. For files that must never be overwritten (identities).
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut f = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::WouldOverwrite {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(Error::io("create", path, e)),
    };
    let r = f.write_all(bytes).and_then(|()| f.sync_all());
    if let Err(e) = r {
        drop(f);
        let _ = fs::remove_file(path);
        return Err(Error::io("write", path, e));
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fsync_dir(parent)?;
    }
    Ok(())
}

enum Op {
    Put { temp: String, target: String },
    Remove { target: String },
}

/// A set of file replacements and removals in one directory that become
/// visible all together or not at all (see the module docs).
pub(crate) struct Txn {
    dir: PathBuf,
    ops: Vec<Op>,
    temps: Vec<tempfile::NamedTempFile>,
}

/// Above this many new files, one `syncfs` beats an fsync per file.
const SYNCFS_THRESHOLD: usize = 32;

impl Txn {
    pub(crate) fn new(dir: &Path) -> Txn {
        Txn {
            dir: dir.to_owned(),
            ops: Vec::new(),
            temps: Vec::new(),
        }
    }

    /// Stages `target` (a file name in the directory) to hold `bytes`.
    pub(crate) fn put(&mut self, target: &str, bytes: &[u8]) -> Result<()> {
        debug_assert!(valid_target(target), "{target}");
        let tmp = write_temp(&self.dir, bytes, STORE_FILE_MODE)?;
        let temp = tmp
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("tempfile names are ASCII")
            .to_owned();
        self.ops.push(Op::Put {
            temp,
            target: target.to_owned(),
        });
        self.temps.push(tmp);
        Ok(())
    }

    /// Stages the removal of `target`.
    pub(crate) fn remove(&mut self, target: &str) {
        debug_assert!(valid_target(target), "{target}");
        self.ops.push(Op::Remove {
            target: target.to_owned(),
        });
    }

    /// Returns true if nothing is staged.
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Makes every staged change durable and visible, atomically with
    /// respect to crashes (see the module docs).
    pub(crate) fn commit(mut self) -> Result<()> {
        if self.ops.is_empty() {
            return Ok(());
        }
        // 1. Every new file is on disk before the journal can name it.
        if self.temps.len() > SYNCFS_THRESHOLD {
            let d = File::open(&self.dir).map_err(|e| Error::io("open", &self.dir, e))?;
            rustix::fs::syncfs(&d).map_err(|e| Error::io("flush", &self.dir, e.into()))?;
        } else {
            for t in &self.temps {
                t.as_file()
                    .sync_all()
                    .map_err(|e| Error::io("flush", t.path(), e))?;
            }
        }
        // 2. The commit point.
        let mut journal = String::from("coffer-journal 1\n");
        for op in &self.ops {
            match op {
                Op::Put { temp, target } => {
                    journal.push_str(&format!("put {temp} {target}\n"));
                }
                Op::Remove { target } => journal.push_str(&format!("remove {target}\n")),
            }
        }
        journal.push_str("commit\n");
        write_atomic(&self.dir, JOURNAL, journal.as_bytes(), 0o600)?;
        // From here on the temp files belong to the journal.
        for t in self.temps.drain(..) {
            let _ = t.into_temp_path().keep();
        }
        // 3. Apply, then retire the journal.
        apply_journal(&self.dir, &journal)?;
        Ok(())
    }
}

/// Returns whether `name` may be the target of a journal operation: the
/// manifest, the vault key or a secret file. A journal is read from disk,
/// so this is what keeps a planted one inside its directory.
fn valid_target(name: &str) -> bool {
    name == "vault.toml"
        || name == "vault-key.age"
        || name
            .strip_suffix(".age")
            .is_some_and(|s| s.parse::<crate::name::SecretName>().is_ok())
}

fn parse_journal(text: &str) -> Option<Vec<Op>> {
    let mut lines = text.lines();
    if lines.next()? != "coffer-journal 1" {
        return None;
    }
    let mut ops = Vec::new();
    for line in lines {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts.as_slice() {
            ["put", temp, target]
                if temp.starts_with(TMP_PREFIX) && !temp.contains('/') && valid_target(target) =>
            {
                ops.push(Op::Put {
                    temp: (*temp).to_owned(),
                    target: (*target).to_owned(),
                })
            }
            ["remove", target] if valid_target(target) => ops.push(Op::Remove {
                target: (*target).to_owned(),
            }),
            ["commit"] => return Some(ops),
            _ => return None,
        }
    }
    None
}

/// Applies a committed journal: every step is idempotent, so running it
/// again after a crash half-way converges.
fn apply_journal(dir: &Path, journal: &str) -> Result<()> {
    let Some(ops) = parse_journal(journal) else {
        return Err(Error::Manifest {
            path: dir.join(JOURNAL),
            message: "the transaction journal is malformed; remove it by hand after checking `coffer verify`".into(),
        });
    };
    for op in &ops {
        match op {
            Op::Put { temp, target } => {
                let from = dir.join(temp);
                match fs::rename(&from, dir.join(target)) {
                    Ok(()) => {}
                    // Already applied by an earlier, interrupted run.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("rename into place", dir.join(target), e)),
                }
            }
            Op::Remove { target } => match fs::remove_file(dir.join(target)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", dir.join(target), e)),
            },
        }
    }
    fsync_dir(dir)?;
    let jpath = dir.join(JOURNAL);
    match fs::remove_file(&jpath) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove", jpath, e)),
    }
    fsync_dir(dir)
}

/// Returns true if `dir` holds a committed transaction not yet applied.
pub(crate) fn has_journal(dir: &Path) -> bool {
    dir.join(JOURNAL).exists()
}

/// Finishes an interrupted transaction in `dir`, if any, and removes temp
/// files left by commands that died before committing. The caller holds
/// the directory's exclusive lock.
pub(crate) fn recover(dir: &Path) -> Result<()> {
    let jpath = dir.join(JOURNAL);
    if check_not_symlink(&jpath)? {
        let text = read_store_file(&jpath, 64 << 20)?;
        let text = String::from_utf8_lossy(&text);
        apply_journal(dir, &text)?;
    }
    remove_stray_temps(dir)
}

/// Removes `.coffer-tmp-*` entries (files or directories) and
/// `.coffer-trash-*` directories in `dir`.
pub(crate) fn remove_stray_temps(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TMP_PREFIX) || name.starts_with(TRASH_PREFIX) {
            let path = entry.path();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            let r = if is_dir {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match r {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", path, e)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txn_commits_all_files() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("old-one.age"), "old").unwrap();
        let mut t = Txn::new(d.path());
        t.put("vault.toml", b"m").unwrap();
        t.put("new-one.age", b"n").unwrap();
        t.remove("old-one.age");
        t.commit().unwrap();
        assert_eq!(fs::read(d.path().join("vault.toml")).unwrap(), b"m");
        assert_eq!(fs::read(d.path().join("new-one.age")).unwrap(), b"n");
        assert!(!d.path().join("old-one.age").exists());
        let left: Vec<_> = fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(left.len(), 2, "no temp or journal left");
    }

    #[test]
    fn dropped_txn_leaves_nothing() {
        let d = tempfile::tempdir().unwrap();
        let mut t = Txn::new(d.path());
        t.put("vault.toml", b"m").unwrap();
        drop(t);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 0);
    }

    #[test]
    fn recover_rolls_a_half_applied_journal_forward() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        // The state after a crash right after the first rename.
        fs::write(p.join("a-secret.age"), "new a").unwrap();
        fs::write(p.join(".coffer-tmp-2"), "new manifest").unwrap();
        fs::write(p.join("gone-one.age"), "x").unwrap();
        fs::write(p.join(".coffer-tmp-junk"), "junk").unwrap();
        fs::write(
            p.join(JOURNAL),
            "coffer-journal 1\nput .coffer-tmp-1 a-secret.age\nremove gone-one.age\nput .coffer-tmp-2 vault.toml\ncommit\n",
        )
        .unwrap();
        recover(p).unwrap();
        assert_eq!(fs::read(p.join("a-secret.age")).unwrap(), b"new a");
        assert_eq!(fs::read(p.join("vault.toml")).unwrap(), b"new manifest");
        assert!(!p.join("gone-one.age").exists());
        assert!(!p.join(JOURNAL).exists());
        assert!(!p.join(".coffer-tmp-junk").exists());
        // Idempotent.
        recover(p).unwrap();
    }

    #[test]
    fn planted_journal_cannot_escape_the_directory() {
        for bad in [
            "coffer-journal 1\nput .coffer-tmp-1 ../x.age\ncommit\n",
            "coffer-journal 1\nremove ../../etc/passwd\ncommit\n",
            "coffer-journal 1\nput /etc/passwd vault.toml\ncommit\n",
            "coffer-journal 1\nremove vault.toml\n", // no commit line
            "something else\n",
        ] {
            assert!(parse_journal(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn locks_exclude_and_time_out() {
        let d = tempfile::tempdir().unwrap();
        let held = lock_dir(d.path(), true, &LockWait::default()).unwrap();
        let told = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let t2 = told.clone();
        let wait = LockWait {
            timeout: Duration::from_millis(150),
            notice_after: Duration::from_millis(50),
            on_wait: Some(Arc::new(move |_| {
                t2.store(true, std::sync::atomic::Ordering::SeqCst)
            })),
        };
        let err = lock_dir(d.path(), false, &wait).unwrap_err();
        assert!(matches!(err, Error::LockTimeout { .. }));
        assert!(told.load(std::sync::atomic::Ordering::SeqCst));
        drop(held);
        let _a = lock_dir(d.path(), false, &wait).unwrap();
        let _b = lock_dir(d.path(), false, &wait).unwrap();
    }

    #[test]
    fn write_new_never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("id.txt");
        write_new(&p, b"one", 0o600).unwrap();
        assert!(matches!(
            write_new(&p, b"two", 0o600),
            Err(Error::WouldOverwrite { .. })
        ));
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn store_files_refuse_symlinks_and_oversize() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("real"), "x".repeat(10)).unwrap();
        std::os::unix::fs::symlink(d.path().join("real"), d.path().join("link")).unwrap();
        assert!(matches!(
            read_store_file(&d.path().join("link"), 100),
            Err(Error::Symlink { .. })
        ));
        assert!(read_store_file(&d.path().join("real"), 9).is_err());
        assert_eq!(
            read_store_file(&d.path().join("real"), 10).unwrap().len(),
            10
        );
    }
}
