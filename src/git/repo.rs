//! Running `git`: reading old states of the store, the staged files, and
//! the repository's configuration.
//!
//! coffer never runs a `git` it happens to find in the current directory:
//! the caller resolves the program to an absolute path (the CLI searches
//! `PATH`, skipping relative entries) and hands it to [`Git::new`]. Every
//! call runs in an explicit directory with arguments coffer builds from
//! validated names and revisions the user gave; no value ever appears on a
//! command line, and values are only ever read from git, never written to
//! it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// A `git` program and the directory it runs in.
#[derive(Clone, Debug)]
pub struct Git {
    program: PathBuf,
    dir: PathBuf,
}

/// One blob of a tree, as `git ls-tree -r` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeEntry {
    /// The file mode, as git writes it (`100644`, `120000`…).
    pub mode: String,
    /// The object id.
    pub oid: String,
    /// The path from the top of the repository, with `/` separators.
    pub path: String,
}

impl TreeEntry {
    /// Returns true for a regular file (not a link or a submodule).
    pub fn is_file(&self) -> bool {
        self.mode == "100644" || self.mode == "100755"
    }
}

/// Finds `program` in a `PATH`-style list of directories, skipping empty
/// and relative entries (which would resolve against the current
/// directory, where a repository could plant its own `git`).
pub fn find_program(path_var: Option<&OsStr>, program: &str) -> Option<PathBuf> {
    let path_var = path_var?;
    std::env::split_paths(path_var)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

impl Git {
    /// Returns a runner for `program` (an absolute path) working in `dir`.
    pub fn new(program: PathBuf, dir: PathBuf) -> Git {
        Git { program, dir }
    }

    /// Returns the same program working in another directory.
    pub fn in_dir(&self, dir: PathBuf) -> Git {
        Git {
            program: self.program.clone(),
            dir,
        }
    }

    fn command<S: AsRef<OsStr>>(&self, args: &[S]) -> Command {
        let mut c = Command::new(&self.program);
        c.args(args)
            .current_dir(&self.dir)
            .env("GIT_TERMINAL_PROMPT", "0")
            .stdin(Stdio::null());
        c
    }

    fn failed<S: AsRef<OsStr>>(args: &[S], message: String) -> Error {
        let what = args
            .iter()
            .take(2)
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        Error::Git {
            command: format!("git {what}"),
            message,
        }
    }

    /// Runs git; returns its stdout and whether it exited 0. Stderr's first
    /// line becomes the error's message when git cannot be run at all.
    fn output<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<(bool, Vec<u8>, String)> {
        let out = self.command(args).output().map_err(|e| {
            Self::failed(
                args,
                format!("could not run {}: {e}", self.program.display()),
            )
        })?;
        let stderr = String::from_utf8_lossy(&out.stderr)
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned();
        Ok((out.status.success(), out.stdout, stderr))
    }

    /// Runs git and returns its stdout; an error if it fails.
    fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Vec<u8>> {
        let (ok, stdout, stderr) = self.output(args)?;
        if !ok {
            return Err(Self::failed(args, stderr));
        }
        Ok(stdout)
    }

    /// Returns the top directory of the work tree `dir` is in.
    pub fn toplevel(&self) -> Result<PathBuf> {
        let (ok, out, _) = self.output(&["rev-parse", "--show-toplevel"])?;
        if !ok {
            return Err(Error::NotARepository {
                path: self.dir.clone(),
            });
        }
        let s = String::from_utf8_lossy(&out)
            .trim_end_matches('\n')
            .to_owned();
        if s.is_empty() {
            // A bare repository, or inside .git.
            return Err(Error::NotARepository {
                path: self.dir.clone(),
            });
        }
        Ok(PathBuf::from(s))
    }

    /// Resolves a revision to a commit id; an error naming it if there is
    /// no such commit.
    pub fn resolve_commit(&self, rev: &str) -> Result<String> {
        if rev.is_empty() || rev.starts_with('-') {
            return Err(Error::UnknownRevision { rev: rev.into() });
        }
        let spec = format!("{rev}^{{commit}}");
        let (ok, out, _) = self.output(&["rev-parse", "--verify", "--quiet", &spec])?;
        if !ok {
            return Err(Error::UnknownRevision { rev: rev.into() });
        }
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Lists every blob under `prefix` (a directory relative to the top,
    /// `/`-separated; empty for the whole tree) in `commit`.
    pub fn ls_tree(&self, commit: &str, prefix: &str) -> Result<Vec<TreeEntry>> {
        let mut args = vec!["ls-tree", "-r", "-z", "--full-tree", commit];
        let spec;
        if !prefix.is_empty() {
            spec = format!("{}/", prefix.trim_end_matches('/'));
            args.push("--");
            args.push(&spec);
        }
        let out = self.run(&args)?;
        let mut entries = Vec::new();
        for rec in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let rec = String::from_utf8_lossy(rec);
            let Some((meta, path)) = rec.split_once('\t') else {
                continue;
            };
            let mut parts = meta.split(' ');
            let (Some(mode), Some(kind), Some(oid)) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if kind != "blob" {
                continue;
            }
            entries.push(TreeEntry {
                mode: mode.to_owned(),
                oid: oid.to_owned(),
                path: path.to_owned(),
            });
        }
        Ok(entries)
    }

    /// Reads blobs by object id, in order, with one `git cat-file --batch`.
    /// A blob larger than `max` bytes is returned as `None` (unread).
    pub fn read_blobs(&self, oids: &[String], max: u64) -> Result<Vec<Option<Vec<u8>>>> {
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        let args = ["cat-file", "--batch"];
        let mut child = self
            .command(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| Self::failed(&args, format!("could not run git: {e}")))?;
        let mut stdin = child.stdin.take().expect("piped");
        let input: Vec<u8> = oids
            .iter()
            .flat_map(|o| format!("{o}\n").into_bytes())
            .collect();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let mut reader = BufReader::new(child.stdout.take().expect("piped"));
        let mut out = Vec::with_capacity(oids.len());
        let broken = || Self::failed(&args, "unexpected output".into());
        for _ in oids {
            let mut header = String::new();
            reader
                .read_line(&mut header)
                .map_err(|e| Self::failed(&args, e.to_string()))?;
            let mut parts = header.split_whitespace();
            let (_, kind, size) = (parts.next(), parts.next(), parts.next());
            let Some(size) = size.and_then(|s| s.parse::<u64>().ok()) else {
                // "<oid> missing": not something a tree we listed can hold.
                return Err(broken());
            };
            if kind != Some("blob") {
                return Err(broken());
            }
            let blob = if size <= max {
                let mut buf = Vec::with_capacity(size as usize);
                (&mut reader)
                    .take(size)
                    .read_to_end(&mut buf)
                    .map_err(|e| Self::failed(&args, e.to_string()))?;
                if buf.len() as u64 != size {
                    return Err(broken());
                }
                Some(buf)
            } else {
                // Too large: skip it without holding it in memory.
                let skipped = std::io::copy(&mut (&mut reader).take(size), &mut std::io::sink())
                    .map_err(|e| Self::failed(&args, e.to_string()))?;
                if skipped != size {
                    return Err(broken());
                }
                None
            };
            let mut nl = [0u8; 1];
            reader
                .read_exact(&mut nl)
                .map_err(|e| Self::failed(&args, e.to_string()))?;
            out.push(blob);
        }
        let _ = writer.join();
        let _ = child.wait();
        Ok(out)
    }

    /// Lists the files added, copied, modified or renamed in the index
    /// (what `git commit` would record), with their staged blob ids.
    pub fn staged_files(&self) -> Result<Vec<TreeEntry>> {
        let names = self.run(&[
            "diff",
            "--cached",
            "--name-only",
            "-z",
            "--no-renames",
            "--diff-filter=ACMR",
        ])?;
        let wanted: std::collections::BTreeSet<&[u8]> =
            names.split(|&b| b == 0).filter(|n| !n.is_empty()).collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let index = self.run(&["ls-files", "--stage", "-z", "--full-name"])?;
        let mut out = Vec::new();
        for rec in index.split(|&b| b == 0).filter(|r| !r.is_empty()) {
            let Some(tab) = rec.iter().position(|&b| b == b'\t') else {
                continue;
            };
            let (meta, path) = (&rec[..tab], &rec[tab + 1..]);
            if !wanted.contains(path) {
                continue;
            }
            let meta = String::from_utf8_lossy(meta);
            let mut parts = meta.split(' ');
            let (Some(mode), Some(oid), Some("0")) = (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            out.push(TreeEntry {
                mode: mode.to_owned(),
                oid: oid.to_owned(),
                path: String::from_utf8_lossy(path).into_owned(),
            });
        }
        Ok(out)
    }

    /// Returns every blob id that files matching `pathspec` have had in
    /// the history of any ref, newest first, each once.
    pub fn blob_history(&self, pathspec: &str) -> Result<Vec<String>> {
        let out = self.run(&[
            "log",
            "--all",
            "--format=",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "--",
            pathspec,
        ])?;
        let mut seen = std::collections::BTreeSet::new();
        let mut oids = Vec::new();
        for line in String::from_utf8_lossy(&out).lines() {
            let Some(rest) = line.strip_prefix(':') else {
                continue;
            };
            for oid in rest.split_whitespace().skip(2).take(2) {
                if oid.bytes().all(|b| b == b'0') || !seen.insert(oid.to_owned()) {
                    continue;
                }
                oids.push(oid.to_owned());
            }
        }
        Ok(oids)
    }

    /// Returns a boolean configuration value as git reads booleans.
    pub fn config_get_bool(&self, key: &str) -> Result<Option<bool>> {
        let (ok, out, stderr) = self.output(&["config", "--type=bool", "--get", key])?;
        if ok {
            return Ok(Some(String::from_utf8_lossy(&out).trim() == "true"));
        }
        if stderr.is_empty() {
            return Ok(None);
        }
        Err(Self::failed(&["config", key], stderr))
    }

    /// Returns a value of the repository's own configuration
    /// (`.git/config`), or `None`.
    pub fn config_get_local(&self, key: &str) -> Result<Option<String>> {
        let (ok, out, stderr) = self.output(&["config", "--local", "--get", key])?;
        if ok {
            return Ok(Some(
                String::from_utf8_lossy(&out)
                    .trim_end_matches('\n')
                    .to_owned(),
            ));
        }
        if stderr.is_empty() {
            return Ok(None);
        }
        Err(Self::failed(&["config", key], stderr))
    }

    /// Sets a value in the repository's own configuration.
    pub fn config_set_local(&self, key: &str, value: &str) -> Result<()> {
        self.run(&["config", "--local", key, value]).map(|_| ())
    }

    /// Returns the path of a file inside the git directory (`hooks/…`),
    /// as `git rev-parse --git-path` resolves it (worktrees, `core.hooksPath`).
    pub fn git_path(&self, name: &str) -> Result<PathBuf> {
        let out = self.run(&["rev-parse", "--git-path", name])?;
        let p = PathBuf::from(String::from_utf8_lossy(&out).trim_end_matches('\n'));
        Ok(if p.is_absolute() { p } else { self.dir.join(p) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_path_entries_are_never_searched() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let fake = bin.join("git");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Relative entries ("", ".", "bin") are skipped even if they hold a git.
        let rel = std::ffi::OsString::from(":.:bin");
        assert_eq!(find_program(Some(&rel), "git"), None);
        let abs = std::env::join_paths([&bin]).unwrap();
        assert_eq!(find_program(Some(&abs), "git"), Some(fake));
        assert_eq!(find_program(None, "git"), None);
    }
}
