//! `coffer git setup` and the drivers git runs: `coffer git textconv` (for
//! `git diff`, `git log -p`, `git show`) and `coffer git merge-driver`.
//!
//! See `docs/git.md` for what each piece does and why.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use coffer::git::diff::{open_vault_key, plaintext_len};
use coffer::git::merge::{self, ManifestConflict, MergeNote, SecretFiles, Side, VaultKeyMerge};
use coffer::git::{Git, find_program};
use coffer::store::manifest::Manifest;
use coffer::{SecretName, Store, VaultName};

use super::Ctx;
use super::error::{CliError, CliResult};

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

/// Finds `git` on `PATH`, never in the current directory.
pub fn git_program(ctx: &Ctx) -> CliResult<PathBuf> {
    find_program(ctx.env.path.as_deref(), "git").ok_or_else(|| {
        CliError::new("git was not found on PATH")
            .hint("install git; coffer only runs a git found in an absolute PATH directory")
    })
}

/// The repository holding the store: git working at its top, and the
/// store's directory relative to the top (`vaults`).
pub struct Repo {
    pub git: Git,
    pub prefix: String,
}

pub fn repo_for(ctx: &Ctx, store: &Store) -> CliResult<Repo> {
    let program = git_program(ctx)?;
    let top = Git::new(program.clone(), store.root().to_owned()).toplevel()?;
    let root = fs::canonicalize(store.root())
        .map_err(|e| CliError::new(format!("could not resolve {}: {e}", store.root().display())))?;
    let top_real = fs::canonicalize(&top).unwrap_or_else(|_| top.clone());
    let rel = root.strip_prefix(&top_real).map_err(|_| {
        CliError::new(format!(
            "the store {} is not inside the git work tree {}",
            store.root().display(),
            top.display()
        ))
    })?;
    let prefix = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/");
    Ok(Repo {
        git: Git::new(program, top_real),
        prefix,
    })
}

// ---------------------------------------------------------------- setup

/// What `.gitattributes` in the store directory must say.
const ATTRIBUTES: [&str; 3] = [
    "*.age diff=coffer merge=coffer -text",
    "vault.toml merge=coffer -text",
    "coffer.toml merge=coffer",
];
const ATTRIBUTES_HEADER: &str =
    "# coffer: decrypted diffs and merges by secret (see `coffer git setup`, docs/git.md)";
const HOOK_MARKER: &str = "# coffer pre-commit hook";

/// Returns how git should run this coffer: `coffer` if that is what PATH
/// finds, else its absolute path, quoted for the shell git uses.
fn coffer_command(ctx: &Ctx) -> String {
    let me = std::env::current_exe().ok();
    let on_path = find_program(ctx.env.path.as_deref(), "coffer");
    let same = match (&me, &on_path) {
        (Some(a), Some(b)) => fs::canonicalize(a).ok() == fs::canonicalize(b).ok(),
        _ => false,
    };
    match me {
        Some(p) if !same => shell_quote(&p.to_string_lossy()),
        _ => "coffer".into(),
    }
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
    if repo.prefix == coffer::store::layout::STORE_DIR {
        String::new()
    } else if repo.prefix.is_empty() {
        " --store .".into()
    } else {
        format!(" --store {}", shell_quote(&repo.prefix))
    }
}

struct Item {
    what: String,
    ok: bool,
}

fn setup(ctx: &Ctx, args: SetupArgs) -> CliResult {
    let store = ctx.store()?;
    let repo = repo_for(ctx, &store)?;
    let coffer = coffer_command(ctx);
    let rel_store = if repo.prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", repo.prefix)
    };
    let mut items = Vec::new();
    let mut changed = Vec::new();

    // .gitattributes in the store directory: committed, so every clone
    // routes store files to the drivers (once the clone has run setup).
    let attr_path = store.root().join(".gitattributes");
    let existing = match fs::read_to_string(&attr_path) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(CliError::new(format!(
                "could not read {}: {e}",
                attr_path.display()
            )));
        }
    };
    let have: Vec<&str> = existing
        .as_deref()
        .map(|s| s.lines().map(str::trim).collect())
        .unwrap_or_default();
    let missing: Vec<&str> = ATTRIBUTES
        .iter()
        .copied()
        .filter(|l| !have.contains(l))
        .collect();
    for l in ATTRIBUTES {
        items.push(Item {
            what: format!("{rel_store}.gitattributes: {l}"),
            ok: !missing.contains(&l),
        });
    }
    if !args.check && !missing.is_empty() {
        let mut text = existing.clone().unwrap_or_default();
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
        fs::write(&attr_path, text)
            .map_err(|e| CliError::new(format!("could not write {}: {e}", attr_path.display())))?;
        changed.push(format!("{rel_store}.gitattributes"));
    }

    // The drivers, in this clone's .git/config (config is never committed).
    let flag = store_flag(&repo);
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
    let mut config_changed = false;
    for (key, value) in &wanted {
        let current = repo.git.config_get_local(key)?;
        let ok = current.as_deref() == Some(value.as_str());
        items.push(Item {
            what: format!("git config {key} {value:?}"),
            ok,
        });
        if !ok && !args.check {
            repo.git.config_set_local(key, value)?;
            config_changed = true;
        }
    }
    // A textconv cache would store decrypted values in git notes.
    let cached = repo.git.config_get_bool("diff.coffer.cachetextconv")? == Some(true);
    items.push(Item {
        what: "git config diff.coffer.cachetextconv false (a cache would keep values in git notes)"
            .into(),
        ok: !cached,
    });
    if cached && !args.check {
        repo.git
            .config_set_local("diff.coffer.cachetextconv", "false")?;
        config_changed = true;
    }
    if config_changed {
        changed.push(".git/config (diff and merge drivers)".into());
    }

    if args.pre_commit {
        let hook = repo.git.git_path("hooks/pre-commit")?;
        let script = format!(
            "#!/bin/sh\n{HOOK_MARKER}: refuses commits that contain a secret's value.\n# Installed by `coffer git setup --pre-commit`; see docs/git.md.\nexec {coffer}{flag} scan --staged\n"
        );
        let current = fs::read_to_string(&hook).ok();
        let ok = current.as_deref() == Some(script.as_str());
        items.push(Item {
            what: format!("pre-commit hook {}", hook.display()),
            ok,
        });
        if !ok && !args.check {
            if let Some(c) = &current
                && !c.contains(HOOK_MARKER)
            {
                return Err(CliError::new(format!(
                    "{} already exists and is not coffer's",
                    hook.display()
                ))
                .hint(format!(
                    "add this line to it instead: {coffer}{flag} scan --staged"
                )));
            }
            if let Some(dir) = hook.parent() {
                fs::create_dir_all(dir).map_err(|e| {
                    CliError::new(format!("could not create {}: {e}", dir.display()))
                })?;
            }
            write_executable(&hook, &script)?;
            changed.push(format!("pre-commit hook ({})", hook.display()));
        }
    }

    if args.check {
        let missing: Vec<&Item> = items.iter().filter(|i| !i.ok).collect();
        let mut out = String::new();
        for i in &items {
            out.push_str(if i.ok { "ok       " } else { "missing  " });
            out.push_str(&i.what);
            out.push('\n');
        }
        ctx.ui.data(out.as_bytes())?;
        if missing.is_empty() {
            return Ok(());
        }
        return Err(CliError::new(format!(
            "git is not fully set up for coffer: {} missing",
            missing.len()
        ))
        .hint(if args.pre_commit {
            "run `coffer git setup --pre-commit`"
        } else {
            "run `coffer git setup`"
        }));
    }
    if changed.is_empty() {
        ctx.ui
            .status("git is already set up for coffer; nothing changed.");
    } else {
        for c in &changed {
            ctx.ui.status(format!("Updated {c}"));
        }
        if changed.iter().any(|c| c.contains(".gitattributes")) {
            ctx.ui.status(format!(
                "Commit {rel_store}.gitattributes so that every clone uses the drivers (each clone runs `coffer git setup` once)."
            ));
        }
    }
    Ok(())
}

fn write_executable(path: &Path, text: &str) -> CliResult {
    use std::os::unix::fs::PermissionsExt;
    fs::write(path, text)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(0o755)))
        .map_err(|e| CliError::new(format!("could not write {}: {e}", path.display())))
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

/// Returns the secret name a textconv path suggests. git names the
/// temporary copy of an old version `XXXXXX_<basename>`; secret names
/// cannot contain `_`, so whatever precedes the last `_` is git's.
fn hinted_secret(path: &Path) -> Option<SecretName> {
    let base = path.file_name()?.to_str()?;
    let base = base.rsplit('_').next()?;
    base.strip_suffix(".age")?.parse().ok()
}

fn is_vault_key_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == "vault-key.age" || n.ends_with("_vault-key.age"))
}

fn textconv(ctx: &Ctx, args: TextconvArgs) -> CliResult {
    let bytes = read_limited(&args.path, MAX_TEXTCONV_LEN)?;
    if !bytes.starts_with(coffer::crypto::ARMOR_BEGIN.as_bytes()) {
        // vault.toml and anything else: as it is.
        return ctx.ui.data(&bytes);
    }
    if is_vault_key_file(&args.path) {
        let line = match coffer::crypto::count_stanzas(&bytes) {
            Ok(c) => format!(
                "<coffer vault key, encrypted to {} recipient{}>\n",
                c.real,
                if c.real == 1 { "" } else { "s" }
            ),
            Err(_) => "<coffer: not a well-formed age file>\n".into(),
        };
        return ctx.ui.data(line.as_bytes());
    }
    let Some(len) = plaintext_len(&bytes) else {
        return ctx.ui.data(b"<coffer: not a well-formed age file>\n");
    };
    let masked = |why: &str| format!("<coffer secret, {len} bytes{why}>\n");
    if !show_values(ctx) {
        return ctx.ui.data(masked(", value hidden").as_bytes());
    }
    // Opted in: decrypt with the first vault key of this store that opens
    // it. Nothing here may fail hard: git diff must keep working.
    match decrypt_any(ctx, &bytes, hinted_secret(&args.path).as_ref()) {
        Some(value) => {
            let mut out = zeroize::Zeroizing::new(value.expose_secret().as_bytes().to_vec());
            if !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            ctx.ui.data(&out)
        }
        None => ctx
            .ui
            .data(masked("; no vault key you hold opens it").as_bytes()),
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

fn decrypt_any(ctx: &Ctx, bytes: &[u8], hint: Option<&SecretName>) -> Option<coffer::SecretValue> {
    let store = ctx.store().ok()?;
    let ids = ctx.load_identities().ok()?;
    if ids.is_empty() {
        return None;
    }
    let mut vaults = store.vault_names().ok()?;
    // Vaults that hold a secret of this name first: usually the one.
    if let Some(h) = hint {
        vaults.sort_by_key(|v| {
            let holds = store
                .vault(v)
                .and_then(|vault| vault.read().map(|r| r.manifest().secrets.contains_key(h)))
                .unwrap_or(false);
            !holds
        });
    }
    for v in vaults {
        let Ok(vault) = store.vault(&v) else { continue };
        let Ok(key) = vault.unlock(&ids) else {
            continue;
        };
        if let Ok(value) = key.decrypt_value_any(bytes) {
            return Some(value);
        }
    }
    // An old version may be encrypted to a vault key replaced since: try
    // the vault keys the repository's history holds.
    let repo = repo_for(ctx, &store).ok()?;
    let spec = if repo.prefix.is_empty() {
        format!("*/{}", coffer::store::layout::VAULT_KEY_FILE)
    } else {
        format!(
            "{}/*/{}",
            repo.prefix,
            coffer::store::layout::VAULT_KEY_FILE
        )
    };
    let oids = repo.git.blob_history(&spec).ok()?;
    let blobs = repo
        .git
        .read_blobs(&oids, coffer::store::layout::MAX_VAULT_KEY_FILE_LEN)
        .ok()?;
    let path = Path::new(coffer::store::layout::VAULT_KEY_FILE);
    for blob in blobs.into_iter().flatten() {
        if let Ok(Some(key)) = open_vault_key(&blob, path, &ids)
            && let Ok(value) = key.decrypt_value_any(bytes)
        {
            return Some(value);
        }
    }
    None
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
    let path = vault_dir.join(coffer::store::layout::VAULT_KEY_FILE);
    let Ok(bytes) = read_limited(&path, coffer::store::layout::MAX_VAULT_KEY_FILE_LEN) else {
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
        .unwrap_or("")
        .to_owned();
    let base = read_side(&a.base, MAX_TEXTCONV_LEN)?;
    let base = (!base.is_empty()).then_some(base);
    let ours = read_side(&a.ours, MAX_TEXTCONV_LEN)?;
    let theirs = read_side(&a.theirs, MAX_TEXTCONV_LEN)?;
    match file.as_str() {
        coffer::store::layout::MANIFEST_FILE => merge_manifest(ctx, &a, base, &ours, &theirs),
        coffer::store::layout::VAULT_KEY_FILE => merge_vault_key(ctx, &a, &ours, &theirs),
        coffer::store::layout::CONFIG_FILE => merge_config(&a, base, &ours, &theirs),
        f if f.ends_with(".age") => merge_secret(ctx, &a, &file, &ours, &theirs),
        _ => Err(
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
                .hint("vault.toml is written by coffer; restore one side with `git checkout --ours` or `--theirs`")
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
                dir.join(format!("{secret}.age")).display()
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
    file: &str,
    ours: &[u8],
    theirs: &[u8],
) -> CliResult {
    let (vault, dir) = vault_of(&a.path)?;
    let name = file.trim_end_matches(".age");
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
        .hint("see the message for vault.toml")
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
        .hint("see the message for vault.toml")),
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
    fn the_secret_name_survives_gits_temporary_file_names() {
        let n = |p: &str| hinted_secret(Path::new(p)).map(|s| s.to_string());
        assert_eq!(
            n("/tmp/Ab3xYz_stripe-key.age").as_deref(),
            Some("stripe-key")
        );
        assert_eq!(
            n("vaults/api-keys/stripe-key.age").as_deref(),
            Some("stripe-key")
        );
        assert_eq!(n("/tmp/Ab3xYz_vault.toml"), None);
        assert!(is_vault_key_file(Path::new("/tmp/Q1w2e3_vault-key.age")));
        assert!(!is_vault_key_file(Path::new("/tmp/Q1w2e3_stripe-key.age")));
    }

    #[test]
    fn commands_for_git_are_quoted() {
        assert_eq!(shell_quote("/usr/bin/coffer"), "/usr/bin/coffer");
        assert_eq!(shell_quote("/a b/it's"), "'/a b/it'\\''s'");
    }
}
