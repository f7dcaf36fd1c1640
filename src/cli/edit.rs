//! `coffer edit`: a vault (or one value) in the user's editor.
//!
//! The plaintext is written only into a private directory (mode 0700,
//! file 0600) on a memory file system — `$XDG_RUNTIME_DIR`, else
//! `/dev/shm` — named `coffer-edit-<pid>-<random>`, and removed whatever
//! happens: on success, on any error, and when the user presses Ctrl-C in
//! the editor (coffer ignores SIGINT while the editor runs, as git and
//! `system(3)` do, so the editor gets it and coffer lives to clean up).
//! If coffer itself is killed, the next `edit` removes the directory, once
//! the process that made it is gone. When only a disk-backed directory is
//! available, coffer says so and asks first (`--yes` accepts).
//!
//! The store is not locked while the editor is open (that may take
//! minutes); instead the manifest read before is compared with the one
//! under the write lock, and if anything changed meanwhile coffer stops
//! and lists it rather than overwrite someone else's change.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};

use clap::Args;
use coffer::runtime::edit::{self, Op};
use coffer::secret::strip_one_newline;
use coffer::store::Manifest;
use coffer::{SecretName, SecretValue, Time, VaultName};
use zeroize::Zeroizing;

use super::Ctx;
use super::error::{CliError, CliResult};
use super::{render, ui};

/// The largest file read back from the editor.
const MAX_EDITED_LEN: u64 = 64 << 20;

/// The prefix of the private directories, followed by `<pid>-`.
const DIR_PREFIX: &str = "coffer-edit-";

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  coffer edit -V api-keys                      # the whole vault, as NAME=value lines
  coffer edit -V api-keys -n stripe-secret-key # one value, as it is
  EDITOR=\"code --wait\" coffer edit -V api-keys

The editor is $VISUAL, else $EDITOR, else vi, run by /bin/sh as git runs it
(so it may carry arguments). Saving an unchanged file, or an editor exiting
non-zero, changes nothing. A file that does not parse opens again with the
problem at the top. See docs/edit.md.")]
pub struct EditArgs {
    /// The vault
    #[arg(short = 'V', long = "vault-name", value_name = "VAULT")]
    vault: String,
    /// Edit only this secret's value (created if it does not exist)
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    name: Option<String>,
    /// Apply deletions without asking, and accept a disk-backed temporary
    /// directory when no memory file system is available
    #[arg(short, long)]
    yes: bool,
    /// Without being able to open the vault: what you type is written as
    /// unverified contributions (existing values are not shown, and
    /// nothing is deleted)
    #[arg(long)]
    contribute: bool,
}

/// The private directory holding the plaintext; removed on drop.
struct Workspace {
    dir: tempfile::TempDir,
}

/// Whether `path` is on a file system that lives in memory only.
fn is_memory_fs(path: &Path) -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        const RAMFS_MAGIC: i64 = 0x8584_58f6;
        match rustix::fs::statfs(path) {
            #[allow(clippy::unnecessary_cast)]
            Ok(s) => matches!(s.f_type as i64, TMPFS_MAGIC | RAMFS_MAGIC),
            Err(_) => false,
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        let _ = path;
        false
    }
}

/// Removes private directories that killed `edit` runs left in `base`:
/// ours (same owner), named `coffer-edit-<pid>-…`, whose process is gone.
fn sweep_leftovers(ctx: &Ctx, base: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    let uid = rustix::process::getuid().as_raw();
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest
            .split('-')
            .next()
            .and_then(|p| p.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        let Ok(meta) = fs::symlink_metadata(e.path()) else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        // ESRCH: no such process. Anything else (alive, or another user's
        // process with a recycled pid) leaves it alone.
        if rustix::process::test_kill_process(pid) != Err(rustix::io::Errno::SRCH) {
            continue;
        }
        if fs::remove_dir_all(e.path()).is_ok() {
            ctx.ui.status(format!(
                "Removed {}, left by an edit that was killed.",
                e.path().display()
            ));
        }
    }
}

impl Workspace {
    /// Picks the directory (asking when it is disk-backed), sweeps
    /// leftovers, and makes the private directory.
    fn create(ctx: &Ctx, yes: bool) -> CliResult<Workspace> {
        // $XDG_RUNTIME_DIR (per user, tmpfs, gone at logout), else
        // /dev/shm (tmpfs), else /tmp, which is then checked like any other.
        let runtime = ctx.env.xdg_runtime_dir.clone().filter(|d| d.is_absolute());
        if let Some(d) = runtime.as_ref().filter(|d| !d.is_dir()) {
            ctx.ui.warn(format!(
                "XDG_RUNTIME_DIR ({}) is not a directory; not using it",
                d.display()
            ));
        }
        let base = runtime
            .filter(|d| d.is_dir())
            .or_else(|| Some(PathBuf::from("/dev/shm")).filter(|d| d.is_dir()))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        // Another user who owns the directory could swap ours for their
        // own between our write and our read back: only a directory of
        // ours, or a sticky one of root's (/dev/shm, /tmp), will do.
        let meta = fs::metadata(&base)
            .map_err(|e| CliError::new(format!("could not use {}: {e}", base.display())))?;
        let uid = rustix::process::getuid().as_raw();
        let sticky_root = meta.uid() == 0 && meta.mode() & 0o1000 != 0;
        if meta.uid() != uid && !sticky_root {
            return Err(CliError::new(format!(
                "refusing to put plaintext in {}: it belongs to another user",
                base.display()
            ))
            .hint("set XDG_RUNTIME_DIR to a directory of your own on tmpfs"));
        }
        if !is_memory_fs(&base) {
            ctx.ui.warn(format!(
                "{} is not on a memory file system: the plaintext would be written to disk, where it may be recoverable after it is removed",
                base.display()
            ));
            if !yes {
                ui::confirm_yes_no(
                    "Edit with the plaintext on disk?",
                    "put plaintext on a disk-backed file system",
                )
                .map_err(|e| {
                    e.hint("set XDG_RUNTIME_DIR to a directory on tmpfs, or pass --yes to accept the disk")
                })?;
            }
        }
        sweep_leftovers(ctx, &base);
        let dir = tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .tempdir_in(&base)
            .map_err(|e| {
                CliError::new(format!(
                    "could not create a private directory in {}: {e}",
                    base.display()
                ))
            })?;
        Ok(Workspace { dir })
    }

    /// Creates the file `name` (mode 0600) holding `bytes`.
    fn write_new(&self, name: &str, bytes: &[u8]) -> CliResult<PathBuf> {
        let path = self.dir.path().join(name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| CliError::new(format!("could not write {}: {e}", path.display())))?;
        f.write_all(bytes)
            .map_err(|e| CliError::new(format!("could not write {}: {e}", path.display())))?;
        Ok(path)
    }
}

/// Replaces the file's content (the editor may have replaced the file).
fn rewrite(path: &Path, bytes: &[u8]) -> CliResult {
    let _ = fs::remove_file(path);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| CliError::new(format!("could not write {}: {e}", path.display())))?;
    f.write_all(bytes)
        .map_err(|e| CliError::new(format!("could not write {}: {e}", path.display())))
}

fn read_back(path: &Path) -> CliResult<Zeroizing<Vec<u8>>> {
    // A link (the editor's, or anyone's) is not followed.
    if fs::symlink_metadata(path).is_ok_and(|m| !m.is_file()) {
        return Err(CliError::new(
            "the edited file was replaced by something that is not a regular file; nothing changed",
        ));
    }
    use std::io::Read;
    // Not the path: it is a random name of no use to the user.
    let failed = |e: std::io::Error| {
        CliError::new(format!("could not read the edited file back: {e}"))
            .hint("the editor must save the file where it is; nothing changed")
    };
    let f = fs::File::open(path).map_err(failed)?;
    let mut buf = Zeroizing::new(Vec::new());
    let len = f.metadata().map_or(0, |m| m.len()).min(MAX_EDITED_LEN + 1);
    buf.reserve_exact(len as usize + 1);
    f.take(MAX_EDITED_LEN + 1)
        .read_to_end(&mut buf)
        .map_err(failed)?;
    if buf.len() as u64 > MAX_EDITED_LEN {
        return Err(CliError::new(format!(
            "the edited file is larger than {} MiB; nothing changed",
            MAX_EDITED_LEN >> 20
        )));
    }
    Ok(buf)
}

/// Restores SIGINT and SIGQUIT when dropped.
struct IgnoreInterrupts {
    int: libc::sighandler_t,
    quit: libc::sighandler_t,
}

impl IgnoreInterrupts {
    fn new() -> IgnoreInterrupts {
        // SAFETY: signal(2) with SIG_IGN installs no handler code; the
        // previous dispositions are restored on drop.
        unsafe {
            IgnoreInterrupts {
                int: libc::signal(libc::SIGINT, libc::SIG_IGN),
                quit: libc::signal(libc::SIGQUIT, libc::SIG_IGN),
            }
        }
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        // SAFETY: puts back the dispositions signal(2) returned.
        unsafe {
            libc::signal(libc::SIGINT, self.int);
            libc::signal(libc::SIGQUIT, self.quit);
        }
    }
}

/// Runs the editor on `file` and waits for it.
fn run_editor(ctx: &Ctx, file: &Path) -> CliResult {
    let editor = ctx
        .env
        .visual
        .clone()
        .or_else(|| ctx.env.editor.clone())
        .unwrap_or_else(|| "vi".into());
    let editor = editor.to_string_lossy().into_owned();
    // As git runs it: the shell splits an editor with arguments
    // (`code --wait`); the file is a separate argument, never spliced in.
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg(&editor)
        .arg(file);
    // SAFETY: the closure only calls signal(2), which is async-signal-safe,
    // between fork and exec: the editor gets the default dispositions back.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGQUIT, libc::SIG_DFL);
            Ok(())
        });
    }
    let status = {
        let _ignore = IgnoreInterrupts::new();
        cmd.status()
            .map_err(|e| CliError::new(format!("could not start the editor {editor:?}: {e}")))?
    };
    if status.success() {
        return Ok(());
    }
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) if s == libc::SIGINT => "was interrupted".to_owned(),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "failed".to_owned(),
    };
    Err(
        CliError::new(format!("the editor ({editor}) {how}; nothing changed"))
            .hint("set VISUAL or EDITOR to the editor to use (`code --wait` for one that returns at once)"),
    )
}

/// Lists what changed in the vault between two manifests.
fn store_changes(before: &Manifest, now: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    for (name, e) in &now.secrets {
        match before.secrets.get(name) {
            None => out.push(format!("+ {name}")),
            Some(b) if b != e => out.push(format!("~ {name}")),
            _ => {}
        }
    }
    for name in before.secrets.keys() {
        if !now.secrets.contains_key(name) {
            out.push(format!("- {name}"));
        }
    }
    if out.is_empty() {
        out.push("the vault's recipients or key".to_owned());
    }
    out.sort_by(|a, b| a.get(2..).cmp(&b.get(2..)));
    out
}

fn unlock(ctx: &Ctx, vault: &coffer::Vault<'_>) -> CliResult<coffer::crypto::VaultKey> {
    let hint = "not a recipient? `--contribute` writes what you type as unverified contributions";
    let ids = ctx.identities().map_err(|e| e.hint(hint))?;
    vault.unlock(&ids).map_err(|e| {
        let not_member = matches!(e, coffer::Error::NoMatchingIdentity { .. });
        let e = CliError::from(e);
        if not_member { e.hint(hint) } else { e }
    })
}

/// `coffer edit`: reads what the editor starts from, runs the editor in a
/// private workspace (wiped before anything else happens), then applies
/// the changes.
pub fn edit(ctx: &Ctx, args: EditArgs) -> CliResult {
    let vault_name: VaultName = args.vault.parse()?;
    let one: Option<SecretName> = args.name.as_deref().map(str::parse).transpose()?;
    let store = ctx.store()?;
    let vault = store.vault(&vault_name)?;
    let key = if args.contribute {
        None
    } else {
        Some(unlock(ctx, &vault)?)
    };
    let (before, current) = starting_point(&vault, key.as_ref(), one.as_ref())?;

    let ws = Workspace::create(ctx, args.yes)?;
    let changes = match &one {
        Some(name) => edit_one(ctx, &ws, &vault_name, name, current.get(name))?,
        None => edit_all(ctx, &ws, &vault_name, &before, &current, key.is_some())?,
    };
    // The plaintext goes before anything else happens.
    drop(ws);
    drop(current);
    let Some(changes) = changes else {
        return Ok(());
    };
    apply(ctx, &vault, &before, &changes, key.as_ref(), args.yes)
}

/// What the editor starts from: the manifest, and with `key` the values
/// (of `one`, or of every secret).
fn starting_point(
    vault: &coffer::Vault<'_>,
    key: Option<&coffer::crypto::VaultKey>,
    one: Option<&SecretName>,
) -> CliResult<(Manifest, BTreeMap<SecretName, SecretValue>)> {
    let read = vault.read()?;
    let manifest = read.manifest().clone();
    let mut values = BTreeMap::new();
    if let Some(key) = key {
        let wanted: Vec<&SecretName> = match one {
            Some(n) => manifest.secrets.keys().filter(|k| *k == n).collect(),
            None => manifest.secrets.keys().collect(),
        };
        for (name, value) in read.get_many(key, wanted)? {
            values.insert(name, value?);
        }
    }
    Ok((manifest, values))
}

/// Applies the edit's changes under the write lock: refuses if the vault
/// changed since `before`, shows the plan, asks before deleting (unless
/// `yes`), writes (contributions without `key`) and commits.
fn apply(
    ctx: &Ctx,
    vault: &coffer::Vault<'_>,
    before: &Manifest,
    changes: &[edit::Change],
    key: Option<&coffer::crypto::VaultKey>,
    yes: bool,
) -> CliResult {
    let vault_name = vault.name();
    let mut w = vault.write()?;
    if *w.manifest() != *before {
        let mut msg = format!(
            "vault {vault_name} changed while the editor was open; your edit was not applied:"
        );
        for c in store_changes(before, w.manifest()) {
            msg.push_str("\n  ");
            msg.push_str(&c);
        }
        return Err(CliError::new(msg)
            .hint("nothing was written; run `coffer edit` again to edit the current values"));
    }
    show_plan(ctx, w.manifest(), changes, key.is_some());
    let deletions = changes.iter().filter(|c| c.op == Op::Delete).count();
    if deletions > 0 && !yes {
        // The write lock is held while asking: nobody changes the vault
        // between the plan shown and the plan applied.
        ui::confirm_yes_no(
            &format!(
                "Delete {} from vault {vault_name}?",
                render::count(deletions, "secret", "secrets")
            ),
            &format!("delete {}", render::count(deletions, "secret", "secrets")),
        )?;
    }
    let (created, updated) = write_changes(&mut w, changes, key)?;
    w.commit()?;
    ctx.ui.status(format!(
        "Vault {vault_name}: {created} created, {updated} updated, {deletions} deleted."
    ));
    if key.is_none() {
        ctx.ui.status(format!(
            "They cannot be read or synced until a recipient runs `coffer verify --accept --vault {vault_name}`."
        ));
    }
    Ok(())
}

/// Writes each change (a contribution without `key`); returns how many
/// secrets were created and updated.
fn write_changes(
    w: &mut coffer::store::VaultWrite<'_>,
    changes: &[edit::Change],
    key: Option<&coffer::crypto::VaultKey>,
) -> CliResult<(usize, usize)> {
    let now = Time::now();
    let (mut created, mut updated) = (0, 0);
    for c in changes {
        match (&c.op, &c.value, key) {
            (Op::Delete, _, _) => w.delete(&c.name)?,
            (_, Some(v), None) => {
                w.contribute(&c.name, v, now)?;
                if c.op == Op::Create {
                    created += 1;
                } else {
                    updated += 1;
                }
            }
            (Op::Create, Some(v), Some(k)) => {
                w.create(k, &c.name, v, now)?;
                created += 1;
            }
            (Op::Update, Some(v), Some(k)) => {
                w.update(k, &c.name, v, now)?;
                updated += 1;
            }
            (_, None, _) => {}
        }
    }
    Ok((created, updated))
}

/// Shows each change on stderr with its mark, and what it does beyond the
/// obvious (clears a rotation mark, is an unverified contribution).
/// `manifest` is the vault's current one; `keyed` says whether the changes
/// are written with the vault key.
fn show_plan(ctx: &Ctx, manifest: &Manifest, changes: &[edit::Change], keyed: bool) {
    for c in changes {
        let due = manifest
            .secrets
            .get(&c.name)
            .is_some_and(|e| e.rotation.is_some());
        let mark = match (c.op, keyed, manifest.secrets.contains_key(&c.name)) {
            // A contribution to an existing secret is an update.
            (Op::Create, false, true) => '~',
            (op, _, _) => op.mark(),
        };
        let note = if due && c.op == Op::Update && keyed {
            " (clears its rotation mark)"
        } else if !keyed {
            " (unverified contribution)"
        } else {
            ""
        };
        ctx.ui.status(format!("{mark} {}{note}", c.name));
    }
}

/// The whole vault as a dotenv document. Returns the changes, or `None`
/// when there are none (the user was told).
fn edit_all(
    ctx: &Ctx,
    ws: &Workspace,
    vault_name: &VaultName,
    manifest: &Manifest,
    current: &BTreeMap<SecretName, SecretValue>,
    can_read: bool,
) -> CliResult<Option<Vec<edit::Change>>> {
    let mut header = vec![
        format!(
            "coffer edit: vault {vault_name}. One NAME=value per line, as `coffer export` writes"
        ),
        "them (STRIPE_SECRET_KEY is the secret stripe-secret-key); quote values with".to_owned(),
        "spaces, # or line breaks. Delete a line to delete the secret. Lines starting".to_owned(),
        "with # are ignored. Save and quit to apply; quit without saving to cancel.".to_owned(),
    ];
    if !can_read {
        header.push(
            "Contributing: existing values are not shown and nothing is deleted; the lines"
                .to_owned(),
        );
        header.push("you add become unverified contributions. Existing secrets:".to_owned());
        let names: Vec<&str> = manifest.secrets.keys().map(|n| n.as_str()).collect();
        for chunk in names.chunks(6) {
            header.push(format!("  {}", chunk.join(" ")));
        }
    }
    let doc = edit::document(&header, current);
    let path = ws.write_new(&format!("{vault_name}.env"), doc.as_bytes())?;
    let mut shown: Zeroizing<Vec<u8>> = Zeroizing::new(doc.as_bytes().to_vec());
    loop {
        run_editor(ctx, &path)?;
        let saved = read_back(&path)?;
        if *saved == *shown {
            ctx.ui.status("The file was not changed: nothing to do.");
            return Ok(None);
        }
        // Never a lossy conversion: a replaced byte would change a value.
        let Ok(text) = std::str::from_utf8(&saved) else {
            return Err(
                CliError::new("the edited file is not valid UTF-8; nothing changed")
                    .hint("secret values are UTF-8 text; check the editor's file encoding"),
            );
        };
        let body = edit::strip_errors(text);
        if body.trim().is_empty() && !current.is_empty() {
            ctx.ui
                .status("The file was emptied: cancelled, nothing changed.");
            return Ok(None);
        }
        match edit::plan(current, body.as_bytes(), can_read) {
            Ok(changes) if changes.is_empty() => {
                ctx.ui.status("No value changed: nothing to do.");
                return Ok(None);
            }
            Ok(changes) => return Ok(Some(changes)),
            Err(errors) => {
                let n = errors.len();
                ctx.ui.warn(format!(
                    "the file has {}; opening it again",
                    render::count(n, "problem", "problems")
                ));
                let again = edit::with_errors(body, &errors);
                rewrite(&path, again.as_bytes())?;
                shown = Zeroizing::new(again.as_bytes().to_vec());
            }
        }
    }
}

/// One value, raw (the file is the value plus one newline, which is taken
/// off again). Returns the change, or `None`.
fn edit_one(
    ctx: &Ctx,
    ws: &Workspace,
    vault_name: &VaultName,
    name: &SecretName,
    current: Option<&SecretValue>,
) -> CliResult<Option<Vec<edit::Change>>> {
    let mut initial = Zeroizing::new(Vec::new());
    if let Some(v) = current {
        initial.extend_from_slice(v.expose_secret().as_bytes());
        initial.push(b'\n');
    }
    let path = ws.write_new(name.as_str(), &initial)?;
    run_editor(ctx, &path)?;
    let mut saved = read_back(&path)?;
    if *saved == *initial {
        ctx.ui.status("The file was not changed: nothing to do.");
        return Ok(None);
    }
    strip_one_newline(&mut saved);
    if saved.is_empty() {
        ctx.ui.status(format!(
            "The file is empty: nothing changed (`coffer delete -V {vault_name} -n {name}` deletes a secret)."
        ));
        return Ok(None);
    }
    let value = SecretValue::from_bytes(saved.to_vec())?;
    let op = match current {
        Some(old) if old.ct_eq(&value) => {
            ctx.ui.status("The value was not changed: nothing to do.");
            return Ok(None);
        }
        Some(_) => Op::Update,
        None => Op::Create,
    };
    Ok(Some(vec![edit::Change {
        name: name.clone(),
        op,
        value: Some(value),
    }]))
}
