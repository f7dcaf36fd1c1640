//! Writing plaintext out of the store: the files that `export -o` and
//! `resolve -o` produce.
//!
//! Such a file holds secrets in clear, so it is created private (mode
//! 0600) and appears atomically: readers see the old file or the whole new
//! one, never a part, and a failure leaves the old file as it was.

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
    let mut tmp = tempfile::Builder::new()
        .prefix(fsio::TMP_PREFIX)
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
}
