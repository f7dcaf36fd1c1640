//! `coffer git setup` and the drivers git runs: `coffer git textconv` (for
//! `git diff`, `git log -p`, `git show`) and `coffer git merge-driver`.
//!
//! See `docs/git.md` for what each piece does and why.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use coffer::crypto::plaintext_len;
use coffer::git::diff::open_vault_key;
use coffer::git::merge::{self, ManifestConflict, MergeNote, SecretFiles, Side, VaultKeyMerge};
use coffer::git::{Git, history, worktree};
use coffer::store::layout::{self, FileKind};
use coffer::store::manifest::Manifest;
use coffer::{SecretName, Store, VaultName};

use super::Ctx;
use super::common::{Repo, git_program, repo_for};
use super::error::{CliError, CliResult};
use super::render;

#[derive(Subcommand, Debug)]
pub enum GitCommand {
    /// Configure this repository: .gitattributes for the store, and the
    /// diff and merge drivers in .git/config (idempotent)
    Setup(SetupArgs),
    /// Print a store file as `git diff` should show it (a textconv driver)
    #[command(hide = true)]
    Textconv(TextconvArgs),
    /// Merge three versions of a store file (git's merge driver)
    #[command(hide = true)]
    MergeDriver(MergeDriverArgs),
}

#[derive(Args, Debug)]
pub struct SetupArgs {
    /// Change nothing: list what is missing, and fail if anything is
    #[arg(long)]
    check: bool,
    /// Also install a pre-commit hook that refuses commits containing a
    /// secret's value (`coffer scan --staged`)
    #[arg(long)]
    pre_commit: bool,
}

#[derive(Args, Debug)]
pub struct TextconvArgs {
    /// The file to print (git passes a temporary copy for old versions)
    path: PathBuf,
}

#[derive(Args, Debug)]
pub struct MergeDriverArgs {
    /// The common ancestor's version (%O)
    base: PathBuf,
    /// Our version, replaced by the result (%A)
    ours: PathBuf,
    /// Their version (%B)
    theirs: PathBuf,
    /// The file's path in the repository (%P)
    path: String,
}

pub fn run(ctx: &Ctx, c: GitCommand) -> CliResult {
    match c {
        GitCommand::Setup(a) => setup(ctx, a),
        GitCommand::Textconv(a) => textconv(ctx, a),
        GitCommand::MergeDriver(a) => merge_driver(ctx, a),
    }
}

// ---------------------------------------------------------------- setup

/// What `.gitattributes` in the store directory must say: encrypted files
/// (secrets and vault keys) get the diff and merge drivers, manifests and
/// the team's recipients the merge driver. The patterns come from the
/// store's layout.
fn attribute_lines() -> [String; 3] {
    [
        format!(
            "{} diff=coffer merge=coffer -text",
            layout::encrypted_files_pattern()
        ),
        format!("{} merge=coffer -text", layout::MANIFEST_FILE),
        format!("{} merge=coffer", layout::CONFIG_FILE),
    ]
}
const ATTRIBUTES_FILE: &str = layout::GITATTRIBUTES_FILE;
const ATTRIBUTES_HEADER: &str =
    "# coffer: decrypted diffs and merges by secret (see `coffer git setup`, docs/git.md)";
const HOOK_MARKER: &str = "# coffer pre-commit hook";
/// The largest `.gitattributes` or hook setup reads.
const MAX_SETUP_FILE_LEN: u64 = 1 << 20;

/// Returns how git should run this coffer: its absolute path, quoted for
/// the shell git uses. Never a bare `coffer`: IDEs and desktop git clients
/// run git without the shell's `PATH` (no `~/.cargo/bin`), and a driver git
/// cannot find fails every diff and merge with "coffer: not found".
fn coffer_command() -> String {
    match std::env::current_exe().and_then(fs::canonicalize) {
        Ok(p) => shell_quote(&p.to_string_lossy()),
        Err(_) => "coffer".into(),
    }
}

/// Whether the program a recorded driver command starts can be run from
/// anywhere: an absolute path to an executable file.
fn runs_without_path(command: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let program = match command.strip_prefix('\'') {
        Some(rest) => rest.split('\'').next().unwrap_or("").to_owned(),
        None => command.split(' ').next().unwrap_or("").to_owned(),
    };
    let path = Path::new(&program);
    path.is_absolute()
        && fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// `--store DIR` for the commands git runs from the top of the work tree,
/// unless the store is where discovery finds it anyway.
fn store_flag(repo: &Repo) -> String {
    if repo.prefix == layout::STORE_DIR {
        String::new()
    } else if repo.prefix.is_empty() {
        " --store .".into()
    } else {
        format!(" --store {}", shell_quote(&repo.prefix))
    }
}

/// One thing setup checks: what it is, and whether it was already right.
struct Item {
    what: String,
    ok: bool,
}

/// What setup found and did, and what every step needs to know.
struct Setup {
    /// Only check: change nothing.
    check: bool,
    /// The store directory relative to the top of the work tree, with a
    /// trailing `/` (empty for the top).
    rel_store: String,
    /// How git runs coffer.
    coffer: String,
    /// ` --store DIR`, for the commands git runs from the top of the work
    /// tree, if discovery would not find the store.
    flag: String,
    items: Vec<Item>,
    changed: Vec<String>,
}

impl Setup {
    fn item(&mut self, what: String, ok: bool) {
        self.items.push(Item { what, ok });
    }
}

fn setup(ctx: &Ctx, args: SetupArgs) -> CliResult {
    let store = ctx.store()?;
    let repo = repo_for(ctx, &store)?;
    let mut s = Setup {
        check: args.check,
        rel_store: if repo.prefix.is_empty() {
            String::new()
        } else {
            format!("{}/", repo.prefix)
        },
        coffer: coffer_command(),
        flag: store_flag(&repo),
        items: Vec::new(),
        changed: Vec::new(),
    };
    setup_attributes(&store, &mut s)?;
    setup_drivers(&repo, &mut s)?;
    if args.pre_commit {
        setup_hook(&repo, &mut s)?;
    }
    if args.check {
        report_check(ctx, &s.items, args.pre_commit)
    } else {
        report_changes(ctx, &s);
        Ok(())
    }
}

/// `.gitattributes` in the store directory: committed, so every clone
/// routes store files to the drivers (once the clone has run setup).
/// Missing lines are appended; the rest of the file is kept.
fn setup_attributes(store: &Store, s: &mut Setup) -> CliResult {
    let path = store.root().join(ATTRIBUTES_FILE);
    let existing = read_setup_file(&path)?;
    let have: Vec<&str> = existing
        .as_deref()
        .map(|t| t.lines().map(str::trim).collect())
        .unwrap_or_default();
    let wanted = attribute_lines();
    let missing: Vec<&str> = wanted
        .iter()
        .map(String::as_str)
        .filter(|l| !have.contains(l))
        .collect();
    for l in &wanted {
        let ok = !missing.contains(&l.as_str());
        s.item(format!("{}{ATTRIBUTES_FILE}: {l}", s.rel_store), ok);
    }
    if s.check || missing.is_empty() {
        return Ok(());
    }
    let mut text = existing.unwrap_or_default();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.contains(ATTRIBUTES_HEADER) {
        text.push_str(ATTRIBUTES_HEADER);
        text.push('\n');
    }
    for l in &missing {
        text.push_str(l);
        text.push('\n');
    }
    write_setup_file(&path, &text, 0o644)?;
    s.changed.push(format!("{}{ATTRIBUTES_FILE}", s.rel_store));
    Ok(())
}

/// The drivers, in this clone's `.git/config` (config is never
/// committed), set with `git config` itself.
fn setup_drivers(repo: &Repo, s: &mut Setup) -> CliResult {
    let (coffer, flag) = (&s.coffer, &s.flag);
    let wanted = [
        (
            "diff.coffer.textconv",
            format!("{coffer}{flag} git textconv"),
        ),
        (
            "merge.coffer.name",
            "coffer: merge vaults secret by secret".to_owned(),
        ),
        (
            "merge.coffer.driver",
            format!("{coffer} git merge-driver %O %A %B %P"),
        ),
    ];
    let mut changed = false;
    for (key, value) in &wanted {
        let current = repo.git.config_get_local(key)?;
        let ok = current.as_deref() == Some(value.as_str());
        s.item(format!("git config {key} {value:?}"), ok);
        // A driver recorded by another coffer, or as a bare `coffer`, may
        // not run where git runs without the shell's PATH: say so.
        if let Some(c) = &current
            && !ok
            && (key.ends_with(".driver") || key.ends_with(".textconv"))
            && !runs_without_path(c)
        {
            s.item(
                format!(
                    "{key} is {c:?}, a program git may not find from an IDE or a desktop client"
                ),
                false,
            );
        }
        if !ok && !s.check {
            repo.git.config_set_local(key, value)?;
            changed = true;
        }
    }
    // A textconv cache would store decrypted values in git notes.
    let cached = repo.git.config_get_bool("diff.coffer.cachetextconv")? == Some(true);
    s.item(
        "git config diff.coffer.cachetextconv false (a cache would keep values in git notes)"
            .into(),
        !cached,
    );
    if cached && !s.check {
        repo.git
            .config_set_local("diff.coffer.cachetextconv", "false")?;
        changed = true;
    }
    if changed {
        s.changed
            .push(".git/config (diff and merge drivers)".into());
    }
    Ok(())
}

/// The pre-commit hook that runs `coffer scan --staged`. A hook that is
/// not coffer's is never replaced.
fn setup_hook(repo: &Repo, s: &mut Setup) -> CliResult {
    let hook = repo.git.git_path("hooks/pre-commit")?;
    let script = format!(
        "#!/bin/sh\n{HOOK_MARKER}: refuses commits that contain a secret's value.\n# Installed by `coffer git setup --pre-commit`; see docs/git.md.\nexec {}{} scan --staged\n",
        s.coffer, s.flag
    );
    let current = read_setup_file(&hook)?;
    let ok = current.as_deref() == Some(script.as_str());
    s.item(format!("pre-commit hook {}", hook.display()), ok);
    if ok || s.check {
        return Ok(());
    }
    if let Some(c) = &current
        && !c.contains(HOOK_MARKER)
    {
        return Err(CliError::new(format!(
            "{} already exists and is not coffer's",
            hook.display()
        ))
        .hint(format!(
            "add this line to it instead: {}{} scan --staged",
            s.coffer, s.flag
        )));
    }
    write_setup_file(&hook, &script, 0o755)?;
    s.changed
        .push(format!("pre-commit hook ({})", hook.display()));
    Ok(())
}

/// `--check`: lists every item, and fails if any is missing.
fn report_check(ctx: &Ctx, items: &[Item], pre_commit: bool) -> CliResult {
    let mut out = String::new();
    for i in items {
        out.push_str(if i.ok { "ok       " } else { "missing  " });
        out.push_str(&i.what);
        out.push('\n');
    }
    ctx.out.bytes(out.as_bytes())?;
    let missing = items.iter().filter(|i| !i.ok).count();
    if missing == 0 {
        return Ok(());
    }
    Err(CliError::new(format!(
        "git is not fully set up for coffer: {missing} missing"
    ))
    .hint(if pre_commit {
        "run `coffer git setup --pre-commit`"
    } else {
        "run `coffer git setup`"
    }))
}

/// Says what setup changed, and that `.gitattributes` wants committing.
fn report_changes(ctx: &Ctx, s: &Setup) {
    if s.changed.is_empty() {
        ctx.ui
            .status("git is already set up for coffer; nothing changed.");
        return;
    }
    for c in &s.changed {
        ctx.ui.status(format!("Updated {c}"));
    }
    if s.changed.iter().any(|c| c.contains(ATTRIBUTES_FILE)) {
        ctx.ui.status(format!(
            "Commit {}{ATTRIBUTES_FILE} so that every clone uses the drivers (each clone runs `coffer git setup` once).",
            s.rel_store
        ));
    }
}

/// Reads a file setup may rewrite: `None` if missing; a symbolic link is
/// refused, as for writing.
fn read_setup_file(path: &Path) -> CliResult<Option<String>> {
    match worktree::read_file(path, MAX_SETUP_FILE_LEN) {
        Ok(bytes) => Ok(bytes.map(|b| String::from_utf8_lossy(&b).into_owned())),
        Err(e) => Err(setup_file_error(e)),
    }
}

/// Writes a file of the repository atomically, never through a link.
fn write_setup_file(path: &Path, text: &str, mode: u32) -> CliResult {
    worktree::write_file_atomic(path, text.as_bytes(), mode).map_err(setup_file_error)
}

fn setup_file_error(e: coffer::Error) -> CliError {
    match e {
        coffer::Error::Symlink { path } => CliError::new(format!(
            "{} is a symbolic link; coffer git setup does not write through links",
            path.display()
        ))
        .hint(
            "check where it points; replace it with a regular file or directory (or remove it), then run `coffer git setup` again",
        ),
        e => e.into(),
    }
}

// ---------------------------------------------------------------- textconv

/// The largest file textconv reads.
const MAX_TEXTCONV_LEN: u64 = 64 << 20;

fn read_limited(path: &Path, max: u64) -> CliResult<Vec<u8>> {
    let f = fs::File::open(path)
        .map_err(|e| CliError::new(format!("could not read {}: {e}", path.display())))?;
    let mut buf = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| CliError::new(format!("could not read {}: {e}", path.display())))?;
    if buf.len() as u64 > max {
        return Err(CliError::new(format!(
            "{} is larger than {max} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

fn textconv(ctx: &Ctx, args: TextconvArgs) -> CliResult {
    let bytes = read_limited(&args.path, MAX_TEXTCONV_LEN)?;
    if !bytes.starts_with(coffer::crypto::ARMOR_BEGIN.as_bytes()) {
        // vault.toml and anything else: as it is.
        return ctx.out.bytes(&bytes);
    }
    let kind = layout::kind_of_git_copy(&args.path);
    if kind == FileKind::VaultKey {
        let line = match coffer::crypto::count_stanzas(&bytes) {
            Ok(c) => format!(
                "<coffer vault key, encrypted to {} recipient{}>\n",
                c.real,
                render::s(c.real)
            ),
            Err(_) => "<coffer: not a well-formed age file>\n".into(),
        };
        return ctx.out.bytes(line.as_bytes());
    }
    let Some(len) = plaintext_len(&bytes) else {
        return ctx.out.bytes(b"<coffer: not a well-formed age file>\n");
    };
    let masked = |why: &str| format!("<coffer secret, {len} bytes{why}>\n");
    if !show_values(ctx) {
        return ctx.out.bytes(masked(", value hidden").as_bytes());
    }
    // Opted in: decrypt with the first vault key of this store that opens
    // it. Nothing here may fail hard: git diff must keep working.
    let hint = match kind {
        FileKind::Secret(name) => Some(name),
        _ => None,
    };
    match decrypt_any(ctx, &bytes, hint.as_ref()) {
        Some(value) => {
            let mut out = zeroize::Zeroizing::new(value.expose_secret().as_bytes().to_vec());
            if !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            ctx.out.bytes(&out)
        }
        None => ctx
            .out
            .bytes(masked("; no vault key you hold opens it").as_bytes()),
    }
}

fn show_values(ctx: &Ctx) -> bool {
    if ctx.env.show_values {
        return true;
    }
    let Ok(program) = git_program(ctx) else {
        return false;
    };
    Git::new(program, ctx.env.cwd.clone())
        .config_get_bool("coffer.showValues")
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// Decrypts an old or current version of a secret with any vault key the
/// user's identities open, the repository's history included.
fn decrypt_any(ctx: &Ctx, bytes: &[u8], hint: Option<&SecretName>) -> Option<coffer::SecretValue> {
    let store = ctx.store().ok()?;
    let ids = ctx.load_identities().ok()?;
    history::decrypt_with_any_key(&store, &ids, bytes, hint, || {
        let repo = repo_for(ctx, &store).ok()?;
        Some((repo.git, repo.prefix))
    })
}

// ---------------------------------------------------------------- merge

fn read_side(path: &Path, max: u64) -> CliResult<Vec<u8>> {
    read_limited(path, max)
}

fn write_result(path: &Path, bytes: &[u8]) -> CliResult {
    fs::write(path, bytes)
        .map_err(|e| CliError::new(format!("could not write {}: {e}", path.display())))
}

/// The vault a store file belongs to, from its path in the repository
/// (`vaults/<vault>/<file>`), and the vault's directory in the work tree.
fn vault_of(repo_path: &str) -> CliResult<(VaultName, PathBuf)> {
    let p = Path::new(repo_path);
    let dir = p.parent().unwrap_or(Path::new(""));
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| CliError::new(format!("{repo_path} is not inside a vault")))?;
    Ok((name.parse()?, dir.to_owned()))
}

/// Opens a vault's key from the work tree (which holds our side while git
/// merges); `None` if no identity opens it.
fn open_key_in(ctx: &Ctx, vault_dir: &Path) -> CliResult<Option<coffer::crypto::VaultKey>> {
    let path = vault_dir.join(layout::VAULT_KEY_FILE);
    let Ok(bytes) = read_limited(&path, layout::MAX_VAULT_KEY_FILE_LEN) else {
        return Ok(None);
    };
    let ids = ctx.load_identities()?;
    Ok(open_vault_key(&bytes, &path, &ids)?)
}

fn conflict(path: &str, what: impl std::fmt::Display) -> CliError {
    CliError::new(format!("coffer: merge conflict in {path}: {what}"))
}

fn merge_driver(ctx: &Ctx, a: MergeDriverArgs) -> CliResult {
    let file = Path::new(&a.path)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let base = read_side(&a.base, MAX_TEXTCONV_LEN)?;
    let base = (!base.is_empty()).then_some(base);
    let ours = read_side(&a.ours, MAX_TEXTCONV_LEN)?;
    let theirs = read_side(&a.theirs, MAX_TEXTCONV_LEN)?;
    match layout::kind_of_file_name(file) {
        FileKind::Manifest => merge_manifest(ctx, &a, base, &ours, &theirs),
        FileKind::VaultKey => merge_vault_key(ctx, &a, &ours, &theirs),
        FileKind::Config => merge_config(&a, base, &ours, &theirs),
        FileKind::Secret(name) => merge_secret(ctx, &a, &name, &ours, &theirs),
        FileKind::Other => Err(
            conflict(&a.path, "coffer has no merge for this file; kept ours")
                .hint("merge it by hand, then `git add` it"),
        ),
    }
}

fn merge_manifest(
    ctx: &Ctx,
    a: &MergeDriverArgs,
    base: Option<Vec<u8>>,
    ours: &[u8],
    theirs: &[u8],
) -> CliResult {
    let (vault, dir) = vault_of(&a.path)?;
    let path = Path::new(&a.path);
    let parse = |b: &[u8], side: &str| {
        Manifest::parse(b, path).map_err(|e| {
            conflict(&a.path, format!("{side} version does not parse ({e}); kept ours"))
                .hint(format!("{} is written by coffer; restore one side with `git checkout --ours` or `--theirs`", layout::MANIFEST_FILE))
        })
    };
    let base = base
        .map(|b| parse(&b, "the common ancestor's"))
        .transpose()?;
    let ours_m = parse(ours, "our")?;
    let theirs_m = parse(theirs, "their")?;
    let key = if merge::needs_key(base.as_ref(), &ours_m, &theirs_m) {
        open_key_in(ctx, &dir)?.filter(|k| k.public().to_string() == ours_m.public_key)
    } else {
        None
    };
    let m = merge::merge_manifests(&vault, base.as_ref(), &ours_m, &theirs_m, key.as_ref());
    for n in &m.notes {
        match n {
            MergeNote::BothChanged(_) => {} // the .age driver speaks for it
            MergeNote::DeletedAndChanged { secret, deleted_by } => ctx.ui.warn(format!(
                "{vault}/{secret} was deleted on {deleted_by} and changed on the other; kept the changed one (delete it with `coffer delete -V {vault} -n {secret} --yes`, or keep it with `git add {}`)",
                dir.join(layout::secret_file_name(secret)).display()
            )),
        }
    }
    if m.conflicts.is_empty() {
        return write_result(&a.ours, &m.manifest.to_bytes());
    }
    let first = &m.conflicts[0];
    let mut err = conflict(&a.path, format!("vault {vault}: {first}; kept ours"));
    let dir_s = dir.display();
    err = match first {
        ManifestConflict::KeyReplaced { side, stale, .. } => {
            let rev = match side {
                Side::Ours => "HEAD",
                Side::Theirs => "MERGE_HEAD",
            };
            let names: Vec<&str> = stale.iter().map(|n| n.as_str()).collect();
            err.hint(format!(
                "keep the side that replaced the key: `git restore --source={rev} --staged --worktree -- {dir_s}` ({rev} is {side} in a merge)"
            ))
            .hint(if names.is_empty() {
                "then redo the other side's recipient changes with `coffer recipients add`".to_owned()
            } else {
                format!(
                    "then store {} again with new values (`coffer create`/`coffer update -V {vault}`): they were written under the old key, which removed recipients may hold",
                    names.join(", ")
                )
            })
        }
        ManifestConflict::BothReplacedKey => err
            .hint(format!("keep one side's vault (`git restore --source=HEAD --staged --worktree -- {dir_s}`), then redo the other side's recipient changes and values with coffer")),
        ManifestConflict::DifferentVaults => err.hint(format!(
            "keep one side (`git checkout --ours -- {dir_s}` or `--theirs`) and recreate the other's secrets in it"
        )),
        ManifestConflict::RecipientClash { .. } => err.hint(format!(
            "decide which key is right, then `coffer recipients add NAME KEY` on top of ours and `git add {dir_s}`"
        )),
        ManifestConflict::RecipientsNeedKey => err
            .hint("someone who can open the vault must run the merge (or pass their key with COFFER_AGE_KEY)"),
        ManifestConflict::FormatUpgrade { .. } => err.hint(format!(
            "someone who can open vault {vault} runs `coffer rekey --upgrade --vault {vault}` on the older branch first (or runs this merge)"
        )),
        ManifestConflict::RecipientsUnverified { .. } => err.hint(format!(
            "review the recipients (`git log -p -- {}`); approve them with `coffer recipients approve --vault {vault}` on that branch first",
            path.display()
        )),
    };
    Err(err)
}

fn merge_secret(
    ctx: &Ctx,
    a: &MergeDriverArgs,
    name: &SecretName,
    ours: &[u8],
    theirs: &[u8],
) -> CliResult {
    let (vault, dir) = vault_of(&a.path)?;
    let resolve = format!(
        "set the value you want with `coffer update -V {vault} -n {name}` (see both: `coffer diff HEAD MERGE_HEAD -V {vault} --show-values`), then `git add {}`",
        dir.display()
    );
    let Some(key) = open_key_in(ctx, &dir)? else {
        return Err(conflict(
            &a.path,
            format!("both sides changed {vault}/{name}, and comparing the values needs a key that opens vault {vault}; kept ours"),
        )
        .hint(resolve));
    };
    match merge::compare_secret_files(&key, ours, theirs) {
        SecretFiles::Same => {
            ctx.ui.status(format!(
                "coffer: {vault}/{name} was changed to the same value on both sides; kept ours"
            ));
            Ok(())
        }
        SecretFiles::Different => Err(conflict(
            &a.path,
            format!("secret {name} of vault {vault} was changed to different values on both sides; kept ours"),
        )
        .hint(resolve)),
        SecretFiles::Unreadable(side) => Err(conflict(
            &a.path,
            format!("the version of {vault}/{name} on {side} does not open with the vault's current key (one side replaced the key?); kept ours"),
        )
        .hint(format!("see the message for {}", layout::MANIFEST_FILE))
        .hint(resolve)),
    }
}

fn merge_vault_key(ctx: &Ctx, a: &MergeDriverArgs, ours: &[u8], theirs: &[u8]) -> CliResult {
    let (vault, _) = vault_of(&a.path)?;
    let ids = ctx.load_identities()?;
    match merge::merge_vault_keys(ours, theirs, &ids, ctx.callbacks.clone())? {
        VaultKeyMerge::Merged(bytes) => write_result(&a.ours, &bytes),
        VaultKeyMerge::CannotOpen(side) => Err(conflict(
            &a.path,
            format!("both sides changed who can open vault {vault}, and the version on {side} does not open with your identities; kept ours"),
        )
        .hint("someone who can open the vault must run the merge (or pass their key with COFFER_AGE_KEY)")),
        VaultKeyMerge::KeyReplaced => Err(conflict(
            &a.path,
            format!("the two sides hold different keys for vault {vault}; kept ours"),
        )
        .hint(format!("see the message for {}", layout::MANIFEST_FILE))),
        VaultKeyMerge::RecipientClash(names) => {
            let who: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
            Err(conflict(
                &a.path,
                format!("both sides gave {} a different key in vault {vault}; kept ours", who.join(", ")),
            )
            .hint("decide which key is right, then `coffer recipients add NAME KEY`"))
        }
    }
}

fn merge_config(
    a: &MergeDriverArgs,
    base: Option<Vec<u8>>,
    ours: &[u8],
    theirs: &[u8],
) -> CliResult {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let base = base.map(|b| text(&b));
    let result = merge::merge_configs(
        base.as_deref(),
        &text(ours),
        &text(theirs),
        Path::new(&a.path),
    );
    match result {
        Ok((merged, clashes)) if clashes.is_empty() => write_result(&a.ours, merged.as_bytes()),
        Ok((_, clashes)) => {
            let who: Vec<&str> = clashes.iter().map(|n| n.as_str()).collect();
            Err(conflict(
                &a.path,
                format!(
                    "both sides changed recipient {} differently; kept ours",
                    who.join(", ")
                ),
            )
            .hint(format!("edit {} by hand, then `git add` it", a.path)))
        }
        Err(e) => Err(conflict(&a.path, format!("{e}; kept ours"))
            .hint(format!("merge {} by hand, then `git add` it", a.path))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_for_git_are_quoted() {
        assert_eq!(shell_quote("/usr/bin/coffer"), "/usr/bin/coffer");
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
