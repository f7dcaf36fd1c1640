//! `coffer diff`: what changed between two states of the store, values
//! masked unless asked for.

use clap::Args;
use coffer::VaultName;
use coffer::git::diff::{self, SecretChange, Snapshot, StoreDiff, VaultChange};
use serde::Serialize;

use super::Ctx;
use super::common::repo_for;
use super::error::{CliError, CliResult};
use super::render;

#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The old state: a commit, branch or tag [default: HEAD]
    #[arg(value_name = "REV")]
    rev: Option<String>,
    /// The new state: a commit [default: the working tree]
    #[arg(value_name = "REV2")]
    rev2: Option<String>,
    /// Only this vault
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vault: Option<String>,
    /// Show the values that changed, as a line diff (they are masked
    /// otherwise: a change shows as changed, with lengths)
    #[arg(long)]
    show_values: bool,
    /// Exit with status 1 if there are differences, like `git diff`
    #[arg(long)]
    exit_code: bool,
}

pub fn diff(ctx: &Ctx, args: DiffArgs) -> CliResult {
    let only: Option<VaultName> = args.vault.as_deref().map(str::parse).transpose()?;
    let store = ctx.store()?;
    if let Some(v) = &only {
        // Fine if it exists only in history; otherwise a typo is likely.
        let _ = store.vault(v);
    }
    let repo = repo_for(ctx, &store)?;
    let old_rev = args.rev.as_deref().unwrap_or("HEAD");
    let old_commit = repo.git.resolve_commit(old_rev)?;
    let old = Snapshot::from_git(&repo.git, &old_commit, &repo.prefix, only.as_ref(), old_rev)?;
    let new = match &args.rev2 {
        Some(r) => {
            let c = repo.git.resolve_commit(r)?;
            Snapshot::from_git(&repo.git, &c, &repo.prefix, only.as_ref(), r)?
        }
        None => Snapshot::from_store(&store, only.as_ref())?,
    };
    if let Some(v) = &only
        && !old.vaults.contains_key(v)
        && !new.vaults.contains_key(v)
    {
        return Err(coffer::Error::VaultNotFound {
            name: v.to_string(),
        }
        .into());
    }
    let ids = ctx.load_identities()?;
    let ids = (!ids.is_empty()).then_some(&ids);
    let d = diff::diff(&old, &new, ids, args.show_values)?;

    for v in &d.vaults {
        let keyed = match v.change {
            VaultChange::Added => v.keyed.1,
            VaultChange::Removed => v.keyed.0,
            VaultChange::Modified => v.keyed.0 && v.keyed.1,
        };
        if !keyed && v.change != VaultChange::Removed {
            ctx.ui.warn(format!(
                "no identity of yours opens vault {} in both states: its values were not compared",
                v.name
            ));
        }
    }
    if ctx.out.json() {
        print_json(ctx, &d, args.show_values)?;
    } else if d.is_empty() {
        let to = if args.rev2.is_none() {
            "the working tree"
        } else {
            &d.to
        };
        ctx.ui
            .status(format!("No differences between {} and {to}.", d.from));
    } else {
        print_human(ctx, &d, args.show_values)?;
    }
    if args.exit_code && !d.is_empty() {
        return Err(CliError::silent(1));
    }
    Ok(())
}

fn bytes(n: Option<usize>) -> String {
    match n {
        Some(n) => render::count(n, "byte", "bytes"),
        None => "? bytes".into(),
    }
}

fn print_human(ctx: &Ctx, d: &StoreDiff, show_values: bool) -> CliResult {
    let mut out = zeroize::Zeroizing::new(String::new());
    out.push_str(&format!("--- {}\n+++ {}\n", d.from, d.to));
    for v in &d.vaults {
        let name = &v.name;
        match v.change {
            VaultChange::Added => out.push_str(&format!("{name}: vault added\n")),
            VaultChange::Removed => out.push_str(&format!("{name}: vault removed\n")),
            VaultChange::Modified => {}
        }
        if v.key_replaced {
            out.push_str(&format!(
                "{name}: vault key replaced (the new keyring does not show the old key)\n"
            ));
        }
        if let Some(epoch) = v.key_epoch {
            out.push_str(&format!(
                "{name}: new vault key, epoch {epoch} (the keyring keeps the old ones)\n"
            ));
        }
        if v.change == VaultChange::Modified {
            for r in &v.recipients {
                out.push_str(&format!("{name}: recipient {r}\n"));
            }
        }
        for p in &v.problems {
            out.push_str(&format!("{name}: problem: {p}\n"));
        }
        for s in &v.secrets {
            let what = match s.change {
                SecretChange::Added => format!("added ({})", bytes(s.new_len)),
                SecretChange::Removed => format!("removed ({})", bytes(s.old_len)),
                SecretChange::Changed if s.compared => {
                    format!("changed ({} -> {})", bytes(s.old_len), bytes(s.new_len))
                }
                SecretChange::Changed => format!(
                    "file changed ({} -> {}; no key to compare the values)",
                    bytes(s.old_len),
                    bytes(s.new_len)
                ),
                SecretChange::Reencrypted => "re-encrypted, value unchanged".into(),
                SecretChange::Metadata => "manifest entry changed, value unchanged".into(),
                SecretChange::Unverified => "not compared".into(),
            };
            out.push_str(&format!("{name}/{}: {what}", s.name));
            for n in &s.notes {
                out.push_str(&format!("; {n}"));
            }
            if let Some(p) = &s.problem {
                out.push_str(&format!(": {p}"));
            }
            out.push('\n');
            if show_values && (s.old_value.is_some() || s.new_value.is_some()) {
                for line in diff::value_diff(s.old_value.as_ref(), s.new_value.as_ref()).lines() {
                    out.push_str("    ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    ctx.out.bytes(out.as_bytes())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DiffJson<'a> {
    from: &'a str,
    to: &'a str,
    vaults: Vec<VaultJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VaultJson<'a> {
    name: &'a str,
    change: &'static str,
    key_replaced: bool,
    keyed: [bool; 2],
    recipients: Vec<RecipientJson>,
    problems: &'a [String],
    secrets: Vec<SecretJson<'a>>,
}

#[derive(Serialize)]
struct RecipientJson {
    name: String,
    change: &'static str,
    fingerprint: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretJson<'a> {
    name: &'a str,
    change: &'static str,
    compared: bool,
    old_length: Option<usize>,
    new_length: Option<usize>,
    notes: &'a [String],
    problem: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    old_value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    new_value: Option<&'a str>,
}

fn print_json(ctx: &Ctx, d: &StoreDiff, show_values: bool) -> CliResult {
    use coffer::error::ChangeKind;
    let out = DiffJson {
        from: &d.from,
        to: &d.to,
        vaults: d
            .vaults
            .iter()
            .map(|v| VaultJson {
                name: v.name.as_str(),
                change: match v.change {
                    VaultChange::Added => "added",
                    VaultChange::Removed => "removed",
                    VaultChange::Modified => "modified",
                },
                key_replaced: v.key_replaced,
                keyed: [v.keyed.0, v.keyed.1],
                recipients: v
                    .recipients
                    .iter()
                    .map(|r| RecipientJson {
                        name: r.name.clone(),
                        change: match r.kind {
                            ChangeKind::Added => "added",
                            ChangeKind::KeyChanged => "key-changed",
                            ChangeKind::Removed => "removed",
                        },
                        fingerprint: r.fingerprint.clone(),
                    })
                    .collect(),
                problems: &v.problems,
                secrets: v
                    .secrets
                    .iter()
                    .map(|s| SecretJson {
                        name: s.name.as_str(),
                        change: s.change.as_str(),
                        compared: s.compared,
                        old_length: s.old_len,
                        new_length: s.new_len,
                        notes: &s.notes,
                        problem: s.problem.as_deref(),
                        old_value: s
                            .old_value
                            .as_ref()
                            .filter(|_| show_values)
                            .map(|v| v.expose_secret()),
                        new_value: s
                            .new_value
                            .as_ref()
                            .filter(|_| show_values)
                            .map(|v| v.expose_secret()),
                    })
                    .collect(),
            })
            .collect(),
    };
    ctx.out.json_doc(&out)
}
