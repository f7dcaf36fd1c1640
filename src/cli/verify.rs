//! `coffer verify`: the check CI runs on every pull request.

use clap::Args;
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
        accept(ctx, &store, &only, &ids, args.yes)?;
    }
    let report = coffer::store::verify::verify(&store, &only, (!ids.is_empty()).then_some(&ids))?;
    if ctx.out.json() {
        print_json(ctx, &report)?;
    } else {
        print_human(ctx, &report)?;
    }
    if report.ok() {
        Ok(())
    } else {
        // The report is the message; keep the error line short.
        Err(CliError::new("verification failed: see the problems above"))
    }
}

fn accept(
    ctx: &Ctx,
    store: &coffer::Store,
    only: &[VaultName],
    ids: &Identities,
    yes: bool,
) -> CliResult {
    let vaults = if only.is_empty() {
        store.vault_names()?
    } else {
        only.to_vec()
    };
    for v in &vaults {
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
            continue;
        }
        let key = match vault.unlock(ids) {
            Ok(k) => k,
            Err(coffer::Error::NoMatchingIdentity { .. }) => {
                ctx.ui.warn(format!(
                    "vault {v} has contributions, but you cannot open it to accept them"
                ));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        errln!("Vault {v}: unverified contributions (written by someone without the vault key):");
        {
            let read = vault.read()?;
            for n in &names {
                let due = read
                    .manifest()
                    .secrets
                    .get(n)
                    .is_some_and(|e| e.rotation.is_some());
                if due {
                    errln!("  {n} (due for rotation: make sure this is a new value)");
                } else {
                    errln!("  {n}");
                }
            }
        }
        if !yes {
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
        let accepted = w.accept(&key, &names)?;
        w.commit()?;
        ctx.ui.status(format!(
            "Vault {v}: accepted {} contribution{}",
            accepted.len(),
            render::s(accepted.len())
        ));
    }
    Ok(())
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
