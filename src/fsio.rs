//! Durable, link-refusing file operations, with no knowledge of what the
//! files are: every write goes to a temporary file in the same directory
//! (named `.coffer-tmp-*`, so `.gitignore` rules and `scan` cover it), is
//! flushed to disk, and is renamed over its target, which replaces a
//! symbolic link there instead of following it; the directory is flushed
//! after. Reads refuse a link at the last component and a file over a
//! size limit.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Prefix of every temporary file or directory coffer creates.
pub const TMP_PREFIX: &str = ".coffer-tmp-";

/// Opens a file for reading without following a symlink at its last
/// component. Non-blocking, so that a FIFO planted where a file should be
/// is refused as not a regular file instead of hanging the open; regular
/// files ignore the flag.
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
}

/// A directory opened once to read many of its files by name: each open
/// then walks one path component, not the whole path (a whole-vault read
/// opens thousands). Reads refuse what [`read_file`] refuses, with the
/// same errors.
#[derive(Debug)]
pub(crate) struct Dir {
    fd: std::os::fd::OwnedFd,
    path: std::path::PathBuf,
}

impl Dir {
    /// Opens the directory at `path`, refusing a link there: the store
    /// refuses a vault directory that is one, and one put in its place
    /// after that check must not aim every read at another directory.
    /// Where the system allows it (`O_PATH`), it needs only the
    /// permission to search the directory, as reading its files by path
    /// does, not to list it.
    pub(crate) fn open(path: &Path) -> Result<Dir> {
        use rustix::fs::{Mode, OFlags};
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let access = OFlags::PATH;
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        let access = OFlags::RDONLY;
        let fd = rustix::fs::open(
            path,
            access | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            // Linux says ENOTDIR for a link opened so, macOS ELOOP.
            if e == rustix::io::Errno::NOTDIR
                && let Err(link) = check_not_symlink(path)
            {
                return link;
            }
            map_open_error(path, e.into())
        })?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    /// Reads the whole file `name` in this directory, as [`read_file`]
    /// does: no link at `name`, nothing but a regular file, at most `max`
    /// bytes. One `read` for a file that does not change meanwhile: a read
    /// of a regular file that returns less than asked has reached its end.
    pub(crate) fn read_file(&self, name: &str, max: u64) -> Result<Vec<u8>> {
        use rustix::fs::{FileType, Mode, OFlags};
        let path = || self.path.join(name);
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| map_open_error(&path(), e.into()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| Error::io("read", path(), e.into()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(not_regular(&path()));
        }
        let len = st.st_size as u64;
        if len > max {
            return Err(over_limit(&path(), len, max));
        }
        let mut f = File::from(fd);
        let mut buf = vec![0u8; len as usize + 1];
        let mut filled = 0;
        loop {
            let n = match f.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read", path(), e)),
            };
            filled += n;
            if n == 0 || filled < buf.len() {
                break;
            }
            // It grew since fstat: read on, one byte past the limit at most.
            if filled as u64 > max {
                return Err(grew_over_limit(&path()));
            }
            let more = (buf.len() * 2).min(max as usize + 1);
            buf.resize(more, 0);
        }
        buf.truncate(filled);
        Ok(buf)
    }
}

fn not_regular(path: &Path) -> Error {
    Error::io(
        "read",
        path,
        io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
    )
}

fn over_limit(path: &Path, len: u64, max: u64) -> Error {
    Error::io(
        "read",
        path,
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("file is {len} bytes, over the limit of {max}"),
        ),
    )
}

fn grew_over_limit(path: &Path) -> Error {
    Error::io(
        "read",
        path,
        io::Error::new(io::ErrorKind::InvalidData, "file grew over the limit"),
    )
}

/// Reads a whole file, refusing symlinks and files larger
/// than `max` bytes (checked before reading, so a huge file costs nothing).
pub(crate) fn read_file(path: &Path, max: u64) -> Result<Vec<u8>> {
    let mut f = open_nofollow(path).map_err(|e| map_open_error(path, e))?;
    let meta = f.metadata().map_err(|e| Error::io("read", path, e))?;
    if !meta.is_file() {
        return Err(not_regular(path));
    }
    if meta.len() > max {
        return Err(over_limit(path, meta.len(), max));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    // Read one byte past the limit to catch a file that grew meanwhile.
    (&mut f)
        .take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path, e))?;
    if buf.len() as u64 > max {
        return Err(grew_over_limit(path));
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
pub(crate) fn write_temp(dir: &Path, bytes: &[u8], mode: u32) -> Result<tempfile::NamedTempFile> {
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
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
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
///
/// Atomic: the bytes go to a temp file (mode `mode`, in the same
/// directory), which is flushed and then given its name without replacing
/// anything (`renameat2(RENAME_NOREPLACE)`, or `link` where that is not
/// supported). A kill leaves either no file or the whole file, never half
/// an identity; and a link at `path`, even a dangling one, is never
/// followed: it counts as an existing file.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    if check_not_symlink(path).is_err() || path.exists() {
        return Err(Error::WouldOverwrite {
            path: path.to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = write_temp(dir, bytes, mode)?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("write", tmp.path(), e))?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {}
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::WouldOverwrite {
                path: path.to_owned(),
            });
        }
        Err(e) => return Err(Error::io("create", path, e.error)),
    }
    fsync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// Reading files by path needs only the permission to search their
    /// directory; reading them through a `Dir` must not need more.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_vault_directory_that_may_be_searched_but_not_listed_is_still_read() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o711)).unwrap();
        let vault = d.path().join("vault");
        fs::create_dir(&vault).unwrap();
        fs::write(vault.join("s.age"), "secret file").unwrap();
        fs::set_permissions(vault.join("s.age"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&vault, fs::Permissions::from_mode(0o311)).unwrap();
        let read = std::thread::spawn(move || {
            // Root may list anything: this thread alone becomes nobody.
            if rustix::process::geteuid().is_root() {
                let nobody = rustix::process::Uid::from_raw(65534);
                let nogroup = rustix::process::Gid::from_raw(65534);
                rustix::thread::set_thread_res_gid(nogroup, nogroup, nogroup).unwrap();
                rustix::thread::set_thread_res_uid(nobody, nobody, nobody).unwrap();
            }
            // The permission applies: the directory cannot be listed.
            assert!(fs::read_dir(&vault).is_err(), "the directory was listed");
            Dir::open(&vault)
                .and_then(|dir| dir.read_file("s.age", 100))
                .map_err(|e| e.to_string())
        })
        .join()
        .unwrap();
        assert_eq!(read.unwrap(), b"secret file");
    }

    #[test]
    fn store_files_refuse_symlinks_and_oversize() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("real"), "x".repeat(10)).unwrap();
        std::os::unix::fs::symlink(d.path().join("real"), d.path().join("link")).unwrap();
        assert!(matches!(
            read_file(&d.path().join("link"), 100),
            Err(Error::Symlink { .. })
        ));
        assert!(read_file(&d.path().join("real"), 9).is_err());
        assert_eq!(read_file(&d.path().join("real"), 10).unwrap().len(), 10);
    }

    #[test]
    fn a_vault_directory_replaced_by_a_link_is_not_opened_to_read_its_files() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("s.age"), "planted").unwrap();
        std::os::unix::fs::symlink(&outside, d.path().join("vault")).unwrap();
        assert!(matches!(
            Dir::open(&d.path().join("vault")),
            Err(Error::Symlink { .. })
        ));
        // Its own files are read as read_file reads them.
        let dir = Dir::open(&outside).unwrap();
        assert_eq!(dir.read_file("s.age", 100).unwrap(), b"planted");
        std::os::unix::fs::symlink(outside.join("s.age"), outside.join("l.age")).unwrap();
        assert!(matches!(
            dir.read_file("l.age", 100),
            Err(Error::Symlink { .. })
        ));
        assert!(dir.read_file("s.age", 6).is_err());
        let fifo = outside.join("f.age");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(dir.read_file("f.age", 100).is_err());
        fs::create_dir(outside.join("d.age")).unwrap();
        assert!(dir.read_file("d.age", 100).is_err());
    }
}
