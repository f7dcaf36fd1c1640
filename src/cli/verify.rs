//! `coffer verify`: the check CI runs on every pull request.

use clap::Args;
use coffer::store::layout::{MANIFEST_FILE, VAULT_KEY_FILE};
use coffer::store::verify::{Finding, Report};
use coffer::{Identities, SecretName, VaultName};
use serde::Serialize;

use super::Ctx;
use super::error::{CliError, CliResult};
use super::render;
use super::ui;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// Only these vaults (repeatable)
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vaults: Vec<String>,
    /// First accept unverified contributions in the vaults you can open,
    /// after showing their names
    #[arg(long)]
    accept: bool,
    /// With --accept: accept without asking (needed when stdin is not a terminal)
    #[arg(short, long, requires = "accept")]
    yes: bool,
    /// With --accept: show each contribution's value on the terminal before
    /// asking (refused when stderr is not a terminal)
    #[arg(long, requires = "accept")]
    show_values: bool,
    /// With --accept: also accept contributions not bound to their name
    /// (written by format-1 coffer); check their values first
    #[arg(long, requires = "accept")]
    allow_unbound: bool,
    /// Also check, through git, that every vault's keyring at HEAD holds its
    /// current vault key at REV (say, the pull request's target branch),
    /// and list the vaults new since REV
    #[arg(long, value_name = "REV")]
    base: Option<String>,
}

#[derive(Serialize)]
struct FindingJson<'a> {
    secret: Option<&'a str>,
    kind: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct VaultJson<'a> {
    name: &'a str,
    keyed: bool,
    secrets: usize,
    ok: bool,
    problems: Vec<FindingJson<'a>>,
    warnings: Vec<FindingJson<'a>>,
}

#[derive(Serialize)]
struct ReportJson<'a> {
    ok: bool,
    problems: Vec<FindingJson<'a>>,
    warnings: Vec<FindingJson<'a>>,
    vaults: Vec<VaultJson<'a>>,
}

fn fj(f: &Finding) -> FindingJson<'_> {
    FindingJson {
        secret: f.secret.as_deref(),
        kind: f.kind,
        message: &f.message,
    }
}

pub fn verify(ctx: &Ctx, args: VerifyArgs) -> CliResult {
    let store = ctx.store()?;
    let only = args
        .vaults
        .iter()
        .map(|v| v.parse::<VaultName>().map_err(CliError::from))
        .collect::<CliResult<Vec<_>>>()?;
    for v in &only {
        store.vault(v)?;
    }
    let ids = ctx.load_identities()?;
    if args.accept {
        accept(ctx, &store, &only, &ids, &args)?;
    }
    let continuity_ok = match &args.base {
        Some(rev) => check_base(ctx, &store, rev, &ids)?,
        None => true,
    };
    let report = coffer::store::verify::verify(&store, &only, (!ids.is_empty()).then_some(&ids))?;
    if ctx.out.json() {
        print_json(ctx, &report)?;
    } else {
        print_human(ctx, &report)?;
    }
    if !continuity_ok {
        return Err(CliError::new(format!(
            "the store at HEAD breaks continuity with {}: see above",
            args.base.as_deref().unwrap_or_default()
        ))
        .hint(format!("a vault replaced, or a rotation mark dropped, by someone without the vault key must not be merged; restore those vaults' {VAULT_KEY_FILE} and {MANIFEST_FILE} from the base")));
    }
    if report.ok() {
        Ok(())
    } else {
        // The report is the message; keep the error line short.
        Err(CliError::new("verification failed: see the problems above"))
    }
}

/// The manifest entries of `vault` as committed at HEAD, or why there are
/// none to compare with.
fn committed_entries(
    ctx: &Ctx,
    store: &coffer::Store,
    vault: &VaultName,
) -> Result<std::collections::BTreeMap<SecretName, coffer::store::Entry>, String> {
    let repo = super::common::repo_for(ctx, store).map_err(|_| "no git repository".to_owned())?;
    let head = repo
        .git
        .resolve_commit("HEAD")
        .map_err(|_| "no commit yet".to_owned())?;
    let snap =
        coffer::git::diff::Snapshot::from_git(&repo.git, &head, &repo.prefix, Some(vault), "HEAD")
            .map_err(|e| e.to_string())?;
    let Some(files) = snap.vaults.get(vault) else {
        return Ok(Default::default());
    };
    let m = coffer::store::Manifest::parse(&files.manifest, std::path::Path::new(MANIFEST_FILE))
        .map_err(|e| format!("HEAD's manifest does not parse: {e}"))?;
    Ok(m.secrets)
}

/// `verify --accept`: for each vault (those in `only`, or all) with
/// contributions, reviews them and accepts them on the user's word.
fn accept(
    ctx: &Ctx,
    store: &coffer::Store,
    only: &[VaultName],
    ids: &Identities,
    args: &VerifyArgs,
) -> CliResult {
    if args.show_values && !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return Err(CliError::new(
            "--show-values shows values on a terminal only, and stderr is not one",
        )
        .hint("run it in a terminal, or check the values with `coffer diff --show-values`"));
    }
    let vaults = if only.is_empty() {
        store.vault_names()?
    } else {
        only.to_vec()
    };
    for v in &vaults {
        accept_vault(ctx, store, v, ids, args)?;
    }
    Ok(())
}

/// Accepts the contributions of one vault: lists them (skipping the vault
/// if there are none or it cannot be opened), asks unless `--yes`, then
/// accepts exactly the ones shown.
fn accept_vault(
    ctx: &Ctx,
    store: &coffer::Store,
    v: &VaultName,
    ids: &Identities,
    args: &VerifyArgs,
) -> CliResult {
    let vault = store.vault(v)?;
    let names: Vec<SecretName> = {
        let read = vault.read()?;
        read.manifest()
            .secrets
            .iter()
            .filter(|(_, e)| e.mac.is_none())
            .map(|(n, _)| n.clone())
            .collect()
    };
    if names.is_empty() {
        return Ok(());
    }
    let key = match vault.unlock(ids) {
        Ok(k) => k,
        Err(coffer::Error::NoMatchingIdentity { .. }) => {
            ctx.ui.warn(format!(
                "vault {v} has contributions, but you cannot open it to accept them"
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    errln!("Vault {v}: unverified contributions (written by someone without the vault key):");
    let committed = committed_entries(ctx, store, v);
    if let Err(why) = &committed {
        errln!("  (not compared with the committed state: {why})");
    }
    let restore = review_contributions(&vault, &key, &names, &committed, args.show_values)?;
    if !args.yes {
        ui::confirm_yes_no(
            &format!("Accept them as values of vault {v}?"),
            "accept contributions",
        )?;
    }
    let mut w = vault.write()?;
    // Accept exactly what was shown: if the contributions changed while
    // the user was looking, accept nothing.
    if w.contributions() != names {
        return Err(CliError::new(format!(
            "the contributions to vault {v} changed while you were reviewing them; nothing was accepted"
        ))
        .hint("run the command again to see the current ones"));
    }
    let accepted = w.accept(&key, &names, &restore, args.allow_unbound)?;
    w.commit()?;
    ctx.ui.status(format!(
        "Vault {v}: accepted {} contribution{}",
        accepted.len(),
        render::s(accepted.len())
    ));
    Ok(())
}

/// Shows each contribution in `names` on stderr with what is worth knowing
/// about it (binding, what it replaces at HEAD, rotation), and its value
/// with `show_values`. Returns the rotation marks committed at HEAD that a
/// contribution drops or changes, which accepting keeps.
fn review_contributions(
    vault: &coffer::Vault<'_>,
    key: &coffer::crypto::VaultKey,
    names: &[SecretName],
    committed: &Result<std::collections::BTreeMap<SecretName, coffer::store::Entry>, String>,
    show_values: bool,
) -> CliResult<std::collections::BTreeMap<SecretName, coffer::store::RotationDue>> {
    use coffer::store::team::Binding;
    let mut restore = std::collections::BTreeMap::new();
    let w = vault.write()?;
    for n in names {
        let entry = &w.manifest().secrets[n];
        let mut notes = Vec::new();
        let c = w.review(key, n)?;
        match &c.binding {
            Binding::Bound => {}
            Binding::Unbound => notes.push(
                "NOT BOUND to this name (format-1 contribution, or a sealed value whose MAC was removed)"
                    .to_owned(),
            ),
            Binding::Elsewhere { claims } => {
                notes.push(format!("NOT BOUND: its plaintext says it is {claims}"))
            }
        }
        if let Ok(head) = committed
            && let Some(h) = head.get(n)
        {
            if h.mac.is_some() {
                notes.push("replaces the sealed value committed at HEAD".to_owned());
            }
            if let Some(r) = &h.rotation
                && entry.rotation.as_ref() != Some(r)
            {
                notes.push(format!(
                    "drops or changes the rotation mark committed at HEAD (since {}); it is kept",
                    r.since
                ));
                restore.insert(n.clone(), r.clone());
            }
        }
        if entry.rotation.is_some() {
            notes.push("due for rotation: make sure this is a new value".to_owned());
        }
        if notes.is_empty() {
            errln!("  {n}");
        } else {
            errln!("  {n} ({})", notes.join("; "));
        }
        if show_values {
            errln!("    value: {}", c.value.expose_secret());
        }
    }
    Ok(restore)
}

fn print_json(ctx: &Ctx, r: &Report) -> CliResult {
    let out = ReportJson {
        ok: r.ok(),
        problems: r.problems.iter().map(fj).collect(),
        warnings: r.warnings.iter().map(fj).collect(),
        vaults: r
            .vaults
            .iter()
            .map(|v| VaultJson {
                name: &v.name,
                keyed: v.keyed,
                secrets: v.secrets,
                ok: v.problems.is_empty(),
                problems: v.problems.iter().map(fj).collect(),
                warnings: v.warnings.iter().map(fj).collect(),
            })
            .collect(),
    };
    ctx.out.json_doc(&out)
}

/// One finding on its line. Messages name files found on disk, which
/// nobody validated: escaped, a newline in one cannot forge an `ok` line.
fn line(f: &Finding, what: &str) -> String {
    let message = render::esc(&f.message);
    match &f.secret {
        Some(s) => format!("  {what}{}: {message}\n", render::esc(s)),
        None => format!("  {what}{message}\n"),
    }
}

fn print_human(ctx: &Ctx, r: &Report) -> CliResult {
    let mut out = String::new();
    if !r.problems.is_empty() || !r.warnings.is_empty() {
        out.push_str("store:\n");
        for p in &r.problems {
            out.push_str(&line(p, ""));
        }
        for w in &r.warnings {
            out.push_str(&line(w, "warning: "));
        }
    }
    let mut secrets = 0;
    let mut problems = r.problems.len();
    for v in &r.vaults {
        secrets += v.secrets;
        problems += v.problems.len();
        let how = if v.keyed {
            "with its key"
        } else {
            "structure only"
        };
        if v.problems.is_empty() {
            out.push_str(&format!(
                "{}: ok ({} secret{}, {how})\n",
                v.name,
                v.secrets,
                render::s(v.secrets)
            ));
        } else {
            out.push_str(&format!(
                "{}: {} problem{} ({how})\n",
                v.name,
                v.problems.len(),
                render::s(v.problems.len())
            ));
        }
        for p in &v.problems {
            out.push_str(&line(p, ""));
        }
        for w in &v.warnings {
            out.push_str(&line(w, "warning: "));
        }
    }
    out.push_str(&format!(
        "{} vault{}, {secrets} secret{}: {}\n",
        r.vaults.len(),
        render::s(r.vaults.len()),
        render::s(secrets),
        if problems == 0 {
            "ok".to_owned()
        } else {
            render::count(problems, "problem", "problems")
        }
    ));
    ctx.out.bytes(out.as_bytes())
}

/// `verify --base REV`: checks, through git, that each vault's keyring at
/// HEAD carries its current key at `rev`, and lists the vaults new since.
/// Prints one line per vault to stderr; returns whether all is well.
fn check_base(ctx: &Ctx, store: &coffer::Store, rev: &str, ids: &Identities) -> CliResult<bool> {
    use coffer::git::continuity::{Continuity, check};
    use coffer::git::diff::Snapshot;
    let repo = super::common::repo_for(ctx, store)?;
    let base_commit = repo.git.resolve_commit(rev)?;
    let head_commit = repo.git.resolve_commit("HEAD")?;
    let base = Snapshot::keys_from_git(&repo.git, &base_commit, &repo.prefix, rev)?;
    let head = Snapshot::keys_from_git(&repo.git, &head_commit, &repo.prefix, "HEAD")?;
    let mut ok = true;
    for (v, c) in check(&base, &head, ids) {
        ok &= !c.fails();
        match c {
            Continuity::Unchanged => {}
            Continuity::Continues { epoch } => ctx.ui.status(format!(
                "{v}: keyring at HEAD (epoch {epoch}) carries the vault key at {rev}"
            )),
            Continuity::Broken { base, head } => errln!(
                "{v}: REPLACED: the keyring at HEAD ({head}) does not hold the vault key at {rev} ({base})"
            ),
            Continuity::Unchecked { reason } => {
                errln!("{v}: changed since {rev}, and its continuity cannot be checked: {reason}")
            }
            Continuity::New { key, recipients } => {
                errln!("{v}: new since {rev}: vault key {key}, recipients:");
                for (n, f) in recipients {
                    errln!("  {n} {f}");
                }
            }
            Continuity::Removed => errln!("{v}: removed since {rev}"),
            Continuity::MarksDropped { names } => {
                let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
                errln!(
                    "{v}: rotation marks at {rev} dropped without the vault key: {}",
                    names.join(", ")
                )
            }
        }
    }
    Ok(ok)
}
