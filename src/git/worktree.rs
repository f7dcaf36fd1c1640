//! Writing coffer's own files into a git repository (`.gitattributes` in
//! the work tree, hooks in `.git`): atomically, and never through a
//! symbolic link.
//!
//! A repository is someone else's input: a committed `.gitattributes` may
//! be a link to `~/.bashrc`, and `.git/hooks` or a hook may be a link
//! elsewhere. Writing through such a link would let a clone choose what
//! coffer overwrites, so a link where coffer writes is refused and left as
//! it is.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, Result};
use crate::fsio;

/// Replaces `path` with `bytes` and `mode` (exactly, whatever the umask):
/// a temporary file in the same directory, flushed, renamed over `path`,
/// and the directory flushed. The directory is created if missing.
///
/// Refuses, with [`Error::Symlink`] naming the link and nothing changed,
/// a symbolic link at `path` or at its directory. On any error `path` is
/// as it was.
pub fn write_file_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        Error::io(
            "write",
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
        )
    })?;
    if !fsio::check_not_symlink(dir)? {
        fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    fsio::check_not_symlink(path)?;
    let tmp = fsio::write_temp(dir, bytes, mode)?;
    let file = tmp.as_file();
    file.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", tmp.path(), e))?;
    let target = dir.join(name);
    tmp.persist(&target)
        .map_err(|e| Error::io("rename into place", &target, e.error))?;
    fsio::fsync_dir(dir)
}

/// Reads `path`, `None` if it does not exist. Refuses, like
/// [`write_file_atomic`], a symbolic link at `path` or at its directory,
/// and a file over `max` bytes.
pub fn read_file(path: &Path, max: u64) -> Result<Option<Vec<u8>>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fsio::check_not_symlink(dir)?;
    }
    if !fsio::check_not_symlink(path)? {
        return Ok(None);
    }
    fsio::read_file(path, max).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn writes_atomically_with_the_exact_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("hooks/pre-commit");
        write_file_atomic(&p, b"#!/bin/sh\n", 0o755).unwrap();
        write_file_atomic(&p, b"#!/bin/sh\nexit 0\n", 0o755).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"#!/bin/sh\nexit 0\n");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o755
        );
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(d.path().join("hooks")).unwrap().count(), 1);
    }

    #[test]
    fn a_link_at_the_target_or_its_directory_is_refused_and_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, "mine\n").unwrap();
        let link = d.path().join(".gitattributes");
        symlink(&victim, &link).unwrap();
        let err = write_file_atomic(&link, b"x\n", 0o644).unwrap_err();
        assert!(
            matches!(&err, Error::Symlink { path } if *path == link),
            "{err:?}"
        );
        assert_eq!(fs::read_link(&link).unwrap(), victim);
        assert_eq!(fs::read(&victim).unwrap(), b"mine\n");
        assert!(matches!(read_file(&link, 100), Err(Error::Symlink { .. })));

        let elsewhere = d.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        let hooks = d.path().join("hooks");
        symlink(&elsewhere, &hooks).unwrap();
        let err = write_file_atomic(&hooks.join("pre-commit"), b"x\n", 0o755).unwrap_err();
        assert!(
            matches!(&err, Error::Symlink { path } if *path == hooks),
            "{err:?}"
        );
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        assert!(matches!(
            read_file(&hooks.join("pre-commit"), 100),
            Err(Error::Symlink { .. })
        ));
        assert_eq!(read_file(&d.path().join("missing"), 100).unwrap(), None);
    }
}
