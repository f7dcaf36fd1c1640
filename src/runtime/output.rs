//! Writing plaintext out of the store: the files that `export -o` and
//! `resolve -o` produce.
//!
//! Such a file holds secrets in clear, so it is created private (mode
//! 0600) and appears atomically: readers see the old file or the whole new
//! one, never a part, and a failure leaves the old file as it was.
//!
//! On Linux the plaintext is written to an unnamed file (`O_TMPFILE`) and
//! given its name only once it is whole and flushed (`linkat`): a command
//! killed while writing leaves nothing behind under any name. Replacing an
//! existing file needs one intermediate name for the instant between the
//! link and the rename; it is `.coffer-tmp-out-<pid>-…`, which `scan`
//! reads, and which the next write into that directory removes once its
//! process is gone. Elsewhere, or on a file system without `O_TMPFILE`, the
//! file is written under that intermediate name and renamed.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsio;

/// Mode of files holding plaintext secrets.
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Replaces `path` with `bytes`, atomically and durably, with mode 0600.
///
/// A symbolic link at `path` is refused rather than followed (and the final
/// rename would replace a link, not write through it, should one appear
/// meanwhile).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let refuse = |why: &str| Error::io("write", path, io::Error::other(why.to_owned()));
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(refuse(
                "it is a symbolic link, and coffer does not write secrets through links",
            ));
        }
        Ok(m) if m.is_dir() => return Err(refuse("it is a directory")),
        _ => {}
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| refuse("it names no file"))?;
    remove_leftovers(dir);
    if let Some(done) = unnamed::write(dir, name, bytes) {
        return done
            .map_err(|e| Error::io("write", path, e))
            .and_then(|()| fsio::fsync_dir(dir));
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(&leftover_prefix())
        .permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))
        .tempfile_in(dir)
        .map_err(|e| Error::io("create a temporary file in", dir, e))?;
    // The umask may have narrowed the mode, never widened it; set it anyway
    // so the result does not depend on it.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(PRIVATE_FILE_MODE))
        .map_err(|e| Error::io("set permissions on", tmp.path(), e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io("write", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("rename into place", path, e.error))?;
    fsio::fsync_dir(dir)
}

/// The prefix of this process's intermediate names.
fn leftover_prefix() -> String {
    format!("{}out-{}-", fsio::TMP_PREFIX, std::process::id())
}

/// Removes the intermediate files of coffer processes that are gone (killed
/// between naming a file and renaming it). Best effort: a file that cannot
/// be removed is left for `scan` to find.
fn remove_leftovers(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{}out-", fsio::TMP_PREFIX);
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let alive = rustix::process::Pid::from_raw(pid).is_some_and(|p| {
            rustix::process::test_kill_process(p).is_ok() || pid == std::process::id() as i32
        });
        if !alive && e.file_type().is_ok_and(|t| t.is_file()) {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// Writing through an unnamed file (Linux's `O_TMPFILE`).
mod unnamed {
    use std::ffi::OsStr;
    use std::io::{self, Write};
    use std::os::fd::AsFd;
    use std::path::Path;

    use rustix::fs::{AtFlags, CWD, Mode, OFlags};

    use super::{PRIVATE_FILE_MODE, leftover_prefix};

    /// Writes `bytes` to an unnamed file in `dir` and links it as `name`.
    /// `None` if unnamed files cannot be made here (another system, a file
    /// system without them), so that the caller writes the usual way.
    pub(super) fn write(dir: &Path, name: &OsStr, bytes: &[u8]) -> Option<io::Result<()>> {
        let dirfd =
            rustix::fs::open(dir, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).ok()?;
        let fd = match rustix::fs::openat(
            &dirfd,
            ".",
            OFlags::TMPFILE | OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::from_raw_mode(PRIVATE_FILE_MODE),
        ) {
            Ok(fd) => fd,
            Err(_) => return None,
        };
        Some(finish(&dirfd, fd, name, bytes))
    }

    fn finish(
        dirfd: &impl AsFd,
        fd: std::os::fd::OwnedFd,
        name: &OsStr,
        bytes: &[u8],
    ) -> io::Result<()> {
        let mut file = std::fs::File::from(fd);
        rustix::fs::fchmod(&file, Mode::from_raw_mode(PRIVATE_FILE_MODE))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        let proc_path = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&file));
        let link = |to: &OsStr| {
            rustix::fs::linkat(CWD, proc_path.as_str(), dirfd, to, AtFlags::SYMLINK_FOLLOW)
        };
        // Nothing there yet: the file appears whole, under its own name.
        match link(name) {
            Ok(()) => return Ok(()),
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        // Replacing a file: link under an intermediate name, then rename
        // over the target (which replaces a link there, never follows it).
        let temp = format!("{}{:016x}", leftover_prefix(), rand_suffix());
        link(OsStr::new(&temp))?;
        rustix::fs::renameat(dirfd, temp.as_str(), dirfd, name).inspect_err(|_| {
            let _ = rustix::fs::unlinkat(dirfd, temp.as_str(), AtFlags::empty());
        })?;
        Ok(())
    }

    fn rand_suffix() -> u64 {
        let mut b = [0u8; 8];
        let _ = rustix::rand::getrandom(&mut b, rustix::rand::GetRandomFlags::empty());
        u64::from_ne_bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_private_files_and_replaces_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.env");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn refuses_links_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, "keep").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = write_private(&link, b"secret").unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(fs::read(&target).unwrap(), b"keep");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(write_private(dir.path(), b"x").is_err());
    }

    #[test]
    fn new_files_appear_whole_under_their_name_and_leftovers_of_dead_processes_go() {
        let dir = tempfile::tempdir().unwrap();
        // A leftover of a process that is gone (pid 0x7fff_fff0 is never
        // alive), and one of this process, which stays.
        let dead = dir
            .path()
            .join(".coffer-tmp-out-2147483632-0000000000000000");
        let ours = dir.path().join(format!("{}x", leftover_prefix()));
        fs::write(&dead, "old plaintext").unwrap();
        fs::write(&ours, "in use").unwrap();
        let path = dir.path().join("new.env");
        write_private(&path, b"A=1\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"A=1\n");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!dead.exists(), "a dead process's leftover is removed");
        assert!(ours.exists(), "a live process's file is left alone");
        // Replacing it leaves no intermediate file.
        fs::remove_file(&ours).unwrap();
        write_private(&path, b"A=2\n").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"A=2\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
