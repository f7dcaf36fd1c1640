//! The store's transactions and its lock.
//!
//! Single files are written atomically by [`crate::fsio`]. A change that spans several files (a secret
//! and the manifest; every secret of a vault during a rekey; several vaults
//! and `coffer.toml` when a recipient is removed) is a [`Txn`]: all new
//! files are written and flushed first, then a journal at the store root
//! (`.coffer-journal`) naming every rename and removal is written
//! atomically, then the renames run. The journal's appearance is the commit
//! point: a crash before it leaves the old state (plus temp files that the
//! next writer deletes), a crash after it is rolled forward by [`recover`],
//! which every lock holder runs before reading.
//!
//! The lock is one `flock(2)` on the store directory itself, so it leaves no
//! file behind for git to see: exclusive for writers, shared for readers.

use std::fs::{self, File};
use std::io;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::fsio::{TMP_PREFIX, check_not_symlink, fsync_dir, write_atomic, write_temp};
use crate::store::layout::{JOURNAL, STORE_FILE_MODE, TRASH_PREFIX, is_journal_target};

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

/// What [`Txn::put_each`] did.
pub(crate) enum Staged<T> {
    /// Every file was staged; the caller's values, in target order.
    All(Vec<T>),
    /// Nothing was staged: the bytes of these targets could not be made,
    /// for these reasons (sorted by target).
    Failed(Vec<(usize, Error)>),
}

enum Op {
    Put { temp: String, target: String },
    Remove { target: String },
}

/// A set of file replacements and removals anywhere in the store that
/// become visible all together or not at all (see the module docs). Paths
/// are relative to the store root: `coffer.toml`, `<vault>/vault.toml`,
/// `<vault>/vault-key.age`, `<vault>/<secret>.age`. Each new file is first
/// written next to its target, so that the final rename stays on one file
/// system.
pub(crate) struct Txn {
    root: PathBuf,
    ops: Vec<Op>,
    temps: Vec<tempfile::NamedTempFile>,
}

impl std::fmt::Debug for Txn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Txn({} steps)", self.ops.len())
    }
}

/// Above this many new files, one `syncfs` beats an fsync per file.
const SYNCFS_THRESHOLD: usize = 32;

impl Txn {
    pub(crate) fn new(root: &Path) -> Txn {
        Txn {
            root: root.to_owned(),
            ops: Vec::new(),
            temps: Vec::new(),
        }
    }

    /// Stages `target` (relative to the store root) to hold `bytes`.
    pub(crate) fn put(&mut self, target: &str, bytes: &[u8]) -> Result<()> {
        debug_assert!(is_journal_target(target), "{target}");
        let (dir, _) = split_rel(target);
        let tmp = write_temp(&self.root.join(dir), bytes, STORE_FILE_MODE)?;
        self.stage(target, tmp);
        Ok(())
    }

    /// Records a written temp file as the step that puts it at `target`.
    fn stage(&mut self, target: &str, tmp: tempfile::NamedTempFile) {
        let (dir, _) = split_rel(target);
        let name = tmp
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .expect("tempfile names are ASCII")
            .to_owned();
        let temp = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        self.ops.push(Op::Put {
            temp,
            target: target.to_owned(),
        });
        self.temps.push(tmp);
    }

    /// Stages one file per target, as [`Txn::put`] does one by one, with
    /// the bytes of target `i` (and a value of the caller's) made by
    /// `make(i)` in parallel on rayon's threads while this thread creates
    /// the files as they come. Creating files in one directory is
    /// serialised by the kernel (a second creator only spins on the
    /// directory's lock), so one creator, overlapped with the work that
    /// makes the bytes, is the fastest way to stage a rotation.
    ///
    /// If `make` fails for any target, nothing is staged and the index and
    /// error of every such target are returned, sorted by index. The steps
    /// keep the order of `targets`.
    pub(crate) fn put_each<T: Send>(
        &mut self,
        targets: &[String],
        make: impl Fn(usize) -> Result<(Vec<u8>, T)> + Sync,
    ) -> Result<Staged<T>> {
        use rayon::prelude::*;
        let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Result<(Vec<u8>, T)>)>(64);
        let mut made: Vec<Option<(tempfile::NamedTempFile, T)>> =
            targets.iter().map(|_| None).collect();
        let mut failed = Vec::new();
        let mut write_error = None;
        std::thread::scope(|s| {
            let make = &make;
            s.spawn(move || {
                (0..targets.len())
                    .into_par_iter()
                    .for_each_with(tx, |tx, i| {
                        // The receiver outlives every sender.
                        let _ = tx.send((i, make(i)));
                    });
            });
            for (i, result) in rx {
                match result {
                    // Once anything failed, the rest is only drained.
                    Ok((bytes, extra)) if failed.is_empty() && write_error.is_none() => {
                        let target = &targets[i];
                        debug_assert!(is_journal_target(target), "{target}");
                        let dir = self.root.join(split_rel(target).0);
                        match write_temp(&dir, &bytes, STORE_FILE_MODE) {
                            Ok(tmp) => made[i] = Some((tmp, extra)),
                            Err(e) => write_error = Some(e),
                        }
                    }
                    Ok(_) => {}
                    Err(e) => failed.push((i, e)),
                }
            }
        });
        // On any failure the temp files made so far are removed on drop.
        if let Some(e) = write_error {
            return Err(e);
        }
        if !failed.is_empty() {
            failed.sort_unstable_by_key(|&(i, _)| i);
            return Ok(Staged::Failed(failed));
        }
        let mut extras = Vec::with_capacity(targets.len());
        for (target, slot) in targets.iter().zip(made) {
            let (tmp, extra) = slot.expect("every target was made");
            self.stage(target, tmp);
            extras.push(extra);
        }
        Ok(Staged::All(extras))
    }

    /// Stages the removal of `target` (relative to the store root).
    pub(crate) fn remove(&mut self, target: &str) {
        debug_assert!(is_journal_target(target), "{target}");
        self.ops.push(Op::Remove {
            target: target.to_owned(),
        });
    }

    /// Takes over another transaction's staged steps, after this one's.
    pub(crate) fn absorb(&mut self, other: Txn) {
        debug_assert_eq!(self.root, other.root);
        self.ops.extend(other.ops);
        self.temps.extend(other.temps);
    }

    /// Returns true if nothing is staged.
    pub(crate) fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Makes every staged change durable and visible, atomically with
    /// respect to crashes (see the module docs). The caller holds the
    /// store's exclusive lock.
    pub(crate) fn commit(mut self) -> Result<()> {
        if self.ops.is_empty() {
            return Ok(());
        }
        // 1. Every new file, and its directory entry, is on disk before the
        // journal can name it: recovery takes a missing temp file for a
        // step already done.
        if self.temps.len() > SYNCFS_THRESHOLD {
            let d = File::open(&self.root).map_err(|e| Error::io("open", &self.root, e))?;
            rustix::fs::syncfs(&d).map_err(|e| Error::io("flush", &self.root, e.into()))?;
        } else {
            let mut dirs = std::collections::BTreeSet::new();
            for t in &self.temps {
                t.as_file()
                    .sync_all()
                    .map_err(|e| Error::io("flush", t.path(), e))?;
                if let Some(d) = t.path().parent() {
                    dirs.insert(d.to_owned());
                }
            }
            for d in dirs {
                fsync_dir(&d)?;
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
        write_atomic(&self.root, JOURNAL, journal.as_bytes(), 0o600)?;
        // From here on the temp files belong to the journal.
        for t in self.temps.drain(..) {
            let _ = t.into_temp_path().keep();
        }
        // 3. Apply, then retire the journal. A failure from here on leaves a
        // committed change that the next command finishes: say so.
        apply_journal(&self.root, &journal).map_err(|e| Error::Committed {
            source: Box::new(e),
        })
    }
}

/// Splits a store-relative path into its directory ("" or a vault) and
/// file name.
fn split_rel(rel: &str) -> (&str, &str) {
    rel.rsplit_once('/').unwrap_or(("", rel))
}

/// Returns whether `temp` is a temporary file next to `target`.
fn valid_temp(temp: &str, target: &str) -> bool {
    // Compare the directories as `Option`s: `split_rel` maps both
    // "x" and "/x" to the top level, and "/x" must not pass for a
    // temporary file next to `coffer.toml`.
    let tname = split_rel(temp).1;
    temp.rsplit_once('/').map(|(d, _)| d) == target.rsplit_once('/').map(|(d, _)| d)
        && tname.starts_with(TMP_PREFIX)
        && tname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
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
            ["put", temp, target] if is_journal_target(target) && valid_temp(temp, target) => ops
                .push(Op::Put {
                    temp: (*temp).to_owned(),
                    target: (*target).to_owned(),
                }),
            ["remove", target] if is_journal_target(target) => ops.push(Op::Remove {
                target: (*target).to_owned(),
            }),
            ["commit"] => return Some(ops),
            _ => return None,
        }
    }
    None
}

/// Returns each step of a journal as (temporary file, target), if it
/// parses (for fuzzing).
pub(crate) fn journal_steps(text: &str) -> Vec<(Option<String>, String)> {
    parse_journal(text)
        .unwrap_or_default()
        .into_iter()
        .map(|op| match op {
            Op::Put { temp, target } => (Some(temp), target),
            Op::Remove { target } => (None, target),
        })
        .collect()
}

/// Applies a committed journal: every step is idempotent, so running it
/// again after a crash half-way converges.
fn apply_journal(root: &Path, journal: &str) -> Result<()> {
    let Some(ops) = parse_journal(journal) else {
        return Err(Error::Manifest {
            path: root.join(JOURNAL),
            message: "the transaction journal is malformed; move it aside and run `coffer verify`"
                .into(),
        });
    };
    // Every directory a step touches must be the store root or a real
    // vault directory: a planted journal next to a planted link must not
    // reach outside the store. Each directory once: a rotation names the
    // same vault in every step.
    let touched: std::collections::BTreeSet<&str> = ops
        .iter()
        .map(|op| {
            let (Op::Put { target, .. } | Op::Remove { target }) = op;
            split_rel(target).0
        })
        .collect();
    for dir in touched {
        if !dir.is_empty() {
            let path = root.join(dir);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.is_symlink() => return Err(Error::Symlink { path }),
                Ok(_) => {
                    return Err(Error::Manifest {
                        path: root.join(JOURNAL),
                        message: format!(
                            "the transaction journal names files in {}, which is not a directory; move the journal aside and run `coffer verify`",
                            path.display()
                        ),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("inspect", path, e)),
            }
        }
    }
    let mut dirs = std::collections::BTreeSet::new();
    for op in &ops {
        match op {
            Op::Put { temp, target } => {
                let to = root.join(target);
                match fs::rename(root.join(temp), &to) {
                    Ok(()) => {}
                    // Already applied by an earlier, interrupted run.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("rename into place", to, e)),
                }
                dirs.insert(split_rel(target).0.to_owned());
            }
            Op::Remove { target } => {
                let path = root.join(target);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove", path, e)),
                }
                dirs.insert(split_rel(target).0.to_owned());
            }
        }
    }
    for d in &dirs {
        fsync_dir(&root.join(d))?;
    }
    let jpath = root.join(JOURNAL);
    match fs::remove_file(&jpath) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove", jpath, e)),
    }
    fsync_dir(root)
}

/// Returns true if the store at `root` holds a committed transaction not
/// yet applied.
pub(crate) fn has_journal(root: &Path) -> bool {
    root.join(JOURNAL).exists()
}

/// What [`recover`] found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// A committed transaction was finished.
    pub journal: bool,
    /// How many leftover temporary files were removed.
    pub temps: usize,
}

/// Finishes an interrupted transaction in the store at `root`, if any, and
/// removes temp files left by commands that died before committing, in
/// `root` and in each of `dirs`. The caller holds the store's exclusive
/// lock.
pub(crate) fn recover(root: &Path, dirs: &[&Path]) -> Result<Recovered> {
    let jpath = root.join(JOURNAL);
    let applied = if check_not_symlink(&jpath)? {
        let text = crate::fsio::read_file(&jpath, 64 << 20)?;
        apply_journal(root, &String::from_utf8_lossy(&text))?;
        true
    } else {
        false
    };
    let mut temps = remove_stray_temps(root)?;
    for d in dirs {
        temps += remove_stray_temps(d)?;
    }
    Ok(Recovered {
        journal: applied,
        temps,
    })
}

/// Removes `.coffer-tmp-*` entries (files or directories) and
/// `.coffer-trash-*` directories in `dir`; returns how many.
pub(crate) fn remove_stray_temps(dir: &Path) -> Result<usize> {
    let mut removed = 0;
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
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", path, e)),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("api-keys")).unwrap();
        d
    }

    #[test]
    fn txn_commits_all_files() {
        let d = store();
        let v = d.path().join("api-keys");
        fs::write(v.join("old-one.age"), "old").unwrap();
        let mut t = Txn::new(d.path());
        t.put("api-keys/vault.toml", b"m").unwrap();
        t.put("api-keys/new-one.age", b"n").unwrap();
        t.put("coffer.toml", b"c").unwrap();
        t.remove("api-keys/old-one.age");
        t.commit().unwrap();
        assert_eq!(fs::read(v.join("vault.toml")).unwrap(), b"m");
        assert_eq!(fs::read(v.join("new-one.age")).unwrap(), b"n");
        assert_eq!(fs::read(d.path().join("coffer.toml")).unwrap(), b"c");
        assert!(!v.join("old-one.age").exists());
        assert_eq!(fs::read_dir(&v).unwrap().count(), 2, "no temp left");
        assert_eq!(
            fs::read_dir(d.path()).unwrap().count(),
            2,
            "no journal left"
        );
    }

    #[test]
    fn put_each_stages_every_file_in_order_or_none() {
        let d = store();
        let v = d.path().join("api-keys");
        let targets: Vec<String> = (0..100).map(|i| format!("api-keys/s-{i:03}.age")).collect();
        // Some bytes cannot be made: nothing is staged, every failure named.
        let mut t = Txn::new(d.path());
        let staged = t
            .put_each(&targets, |i| {
                if i % 30 == 7 {
                    Err(Error::NoRecipientsLeft { vault: "x".into() })
                } else {
                    Ok((vec![b'x'; i], i))
                }
            })
            .unwrap();
        let Staged::Failed(failed) = staged else {
            panic!("some bytes could not be made")
        };
        let failed: Vec<usize> = failed.iter().map(|&(i, _)| i).collect();
        assert_eq!(failed, [7, 37, 67, 97]);
        assert!(t.is_empty());
        assert_eq!(fs::read_dir(&v).unwrap().count(), 0, "no temp left");
        // All made: staged in target order, with the caller's values.
        let staged = t
            .put_each(&targets, |i| Ok((vec![b'x'; i], i * 2)))
            .unwrap();
        let Staged::All(extras) = staged else {
            panic!("every file was made");
        };
        assert_eq!(extras, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        t.commit().unwrap();
        for i in 0..100 {
            assert_eq!(fs::read(v.join(format!("s-{i:03}.age"))).unwrap().len(), i);
        }
        assert_eq!(fs::read_dir(&v).unwrap().count(), 100, "no temp left");
    }

    #[test]
    fn dropped_txn_leaves_nothing() {
        let d = store();
        let mut t = Txn::new(d.path());
        t.put("api-keys/vault.toml", b"m").unwrap();
        drop(t);
        assert_eq!(fs::read_dir(d.path().join("api-keys")).unwrap().count(), 0);
    }

    #[test]
    fn recover_rolls_a_half_applied_journal_forward() {
        let d = store();
        let p = d.path();
        let v = p.join("api-keys");
        // The state after a crash right after the first rename.
        fs::write(v.join("a-secret.age"), "new a").unwrap();
        fs::write(v.join(".coffer-tmp-2"), "new manifest").unwrap();
        fs::write(v.join("gone-one.age"), "x").unwrap();
        fs::write(v.join(".coffer-tmp-junk"), "junk").unwrap();
        fs::write(p.join(".coffer-tmp-c"), "new config").unwrap();
        fs::write(
            p.join(JOURNAL),
            "coffer-journal 1\nput api-keys/.coffer-tmp-1 api-keys/a-secret.age\nremove api-keys/gone-one.age\nput api-keys/.coffer-tmp-2 api-keys/vault.toml\nput .coffer-tmp-c coffer.toml\ncommit\n",
        )
        .unwrap();
        assert_eq!(
            recover(p, &[&v]).unwrap(),
            Recovered {
                journal: true,
                temps: 1
            }
        );
        assert_eq!(fs::read(v.join("a-secret.age")).unwrap(), b"new a");
        assert_eq!(fs::read(v.join("vault.toml")).unwrap(), b"new manifest");
        assert_eq!(fs::read(p.join("coffer.toml")).unwrap(), b"new config");
        assert!(!v.join("gone-one.age").exists());
        assert!(!p.join(JOURNAL).exists());
        assert!(!v.join(".coffer-tmp-junk").exists());
        // Idempotent.
        assert_eq!(recover(p, &[&v]).unwrap(), Recovered::default());
    }

    #[test]
    fn planted_journal_cannot_follow_a_planted_link() {
        let d = store();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("my-secret.age"), "keep me").unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("pwned")).unwrap();
        fs::write(
            d.path().join(JOURNAL),
            "coffer-journal 1\nremove pwned/my-secret.age\ncommit\n",
        )
        .unwrap();
        assert!(matches!(recover(d.path(), &[]), Err(Error::Symlink { .. })));
        assert_eq!(
            fs::read(outside.path().join("my-secret.age")).unwrap(),
            b"keep me"
        );
    }

    #[test]
    fn planted_journal_naming_a_file_as_a_vault_is_refused_as_malformed() {
        let d = store();
        fs::write(d.path().join("not-a-vault"), "x").unwrap();
        fs::write(
            d.path().join(JOURNAL),
            "coffer-journal 1\nremove not-a-vault/my-secret.age\ncommit\n",
        )
        .unwrap();
        let err = recover(d.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("which is not a directory"), "{err}");
        assert_eq!(fs::read(d.path().join("not-a-vault")).unwrap(), b"x");
    }

    #[test]
    fn planted_journal_cannot_escape_the_store() {
        for bad in [
            "coffer-journal 1\nput api-keys/.coffer-tmp-1 ../x.age\ncommit\n",
            "coffer-journal 1\nput api-keys/.coffer-tmp-1 api-keys/../../x.age\ncommit\n",
            "coffer-journal 1\nremove ../../etc/passwd\ncommit\n",
            "coffer-journal 1\nput /etc/passwd api-keys/vault.toml\ncommit\n",
            "coffer-journal 1\nput /.coffer-tmp-1 coffer.toml\ncommit\n",
            "coffer-journal 1\nput other-vault/.coffer-tmp-1 api-keys/vault.toml\ncommit\n",
            "coffer-journal 1\nput api-keys/notatemp api-keys/vault.toml\ncommit\n",
            "coffer-journal 1\nremove api-keys/README.md\ncommit\n",
            "coffer-journal 1\nremove api-keys/vault.toml\n", // no commit line
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
}
