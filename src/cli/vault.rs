//! `coffer vault create|list|delete`.

use clap::{Args, Subcommand};
use coffer::{Time, VaultName};

use super::Ctx;
use super::error::{CliError, CliResult};
use super::render::TimesRow;
use super::ui;

#[derive(Subcommand, Debug)]
pub enum VaultCommand {
    /// Create a vault, encrypted to every recipient in coffer.toml
    Create(CreateArgs),
    /// List the vaults
    List,
    /// Delete an empty vault
    Delete(DeleteArgs),
    /// Accept a vault's current key on this machine after reviewing a
    /// change coffer refused as a replacement (see docs/teams.md)
    Trust(TrustArgs),
}

#[derive(Args, Debug)]
pub struct TrustArgs {
    #[command(flatten)]
    name: NameArgs,
    /// Trust without asking (needed when stdin is not a terminal)
    #[arg(short, long)]
    yes: bool,
}

/// A vault name, given as an argument or with `--name` (both forms of the
/// platform's CLI are accepted).
#[derive(Args, Debug)]
pub struct NameArgs {
    /// The vault's name
    #[arg(
        value_name = "NAME",
        required_unless_present = "name_flag",
        conflicts_with = "name_flag"
    )]
    name: Option<String>,
    /// The vault's name (same as the argument)
    #[arg(long = "name", id = "name_flag", value_name = "NAME")]
    name_flag: Option<String>,
}

impl NameArgs {
    fn vault_name(&self) -> CliResult<VaultName> {
        let raw = self
            .name
            .as_deref()
            .or(self.name_flag.as_deref())
            .expect("clap requires one of them");
        Ok(raw.parse()?)
    }
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    name: NameArgs,
    /// Create it without asking, even for recipients that no vault you can
    /// open vouches for (needed when stdin is not a terminal)
    #[arg(short, long)]
    yes: bool,
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    name: NameArgs,
    /// Delete without asking (needed when stdin is not a terminal)
    #[arg(short, long)]
    yes: bool,
}

pub fn run(ctx: &Ctx, cmd: VaultCommand) -> CliResult {
    match cmd {
        VaultCommand::Create(a) => create(ctx, a),
        VaultCommand::List => list(ctx),
        VaultCommand::Delete(a) => delete(ctx, a),
        VaultCommand::Trust(a) => trust(ctx, a),
    }
}

fn trust(ctx: &Ctx, args: TrustArgs) -> CliResult {
    use coffer::store::trust::{Trust, key_fingerprint};
    let name = args.name.vault_name()?;
    let store = ctx.store()?;
    let vault = store.vault(&name)?;
    let ids = ctx.identities()?;
    let key = vault.unlock_untrusted(&ids)?;
    let Some(record) = store.trust_record()? else {
        return Err(CliError::new("no state directory to keep trust records in")
            .hint("set HOME or XDG_STATE_HOME"));
    };
    let current = key.public().to_string();
    match record.check(&name, &key) {
        Trust::Continues if record.seen(&name) == Some(current.as_str()) => {
            ctx.ui.status(format!(
                "Vault {name}: already trusted (epoch {}, {})",
                key.epoch(),
                key_fingerprint(&current)
            ));
            return Ok(());
        }
        Trust::Continues | Trust::New => {}
        Trust::Broken { trusted } => {
            errln!("Vault {name}: its keyring does not hold the vault key this machine last saw.");
            errln!("  last seen:  {}", key_fingerprint(&trusted));
            errln!(
                "  now:        {} (epoch {}, keyring of {} keys)",
                key_fingerprint(&current),
                key.epoch(),
                key.epoch()
            );
            errln!(
                "Someone who did not hold the vault key may have replaced the vault: values written to it could be readable by them. Accept it only if the change was reviewed (who made it, and why the old key is gone)."
            );
            if !args.yes {
                ui::confirm_yes_no(
                    &format!("Trust the new key of vault {name}?"),
                    "trust the new vault key",
                )?;
            }
        }
    }
    vault.trust(&key)?;
    ctx.ui.status(format!(
        "Vault {name}: trusted on this machine (epoch {}, {})",
        key.epoch(),
        key_fingerprint(&current)
    ));
    Ok(())
}

fn create(ctx: &Ctx, args: CreateArgs) -> CliResult {
    let name = args.name.vault_name()?;
    let store = ctx.store()?;
    let ids = ctx.load_identities()?;
    let (recipients, unvouched, problems) = store.new_vault_recipients_checked(&name, &ids)?;
    for (who, key) in &recipients {
        super::refuse_published_demo(ctx, who.as_str(), key)?;
    }
    for p in &problems {
        ctx.ui.warn(format!("{p}: it vouches for nobody"));
    }
    // A vault that should have vouched and could not is a reason to stop
    // and ask, even when every recipient is one of the user's own keys.
    if unvouched.is_empty() && !problems.is_empty() && !args.yes {
        ui::confirm_yes_no(&format!("Create vault {name} anyway?"), "create the vault")?;
    }
    if !unvouched.is_empty() {
        errln!(
            "Vault {name} would be encrypted to recipients that no vault you can open vouches for:"
        );
        for c in &unvouched {
            let kind = recipients
                .get(c.name.as_str())
                .map(|k| k.kind())
                .unwrap_or_default();
            errln!("  {} {} [{kind}]", c.name, c.fingerprint);
        }
        errln!(
            "{} is not authenticated: check these fingerprints with their owners.",
            coffer::store::layout::CONFIG_FILE
        );
        if !args.yes {
            ui::confirm_yes_no(
                &format!("Create vault {name} for them?"),
                "create the vault",
            )?;
        }
    }
    store.create_vault(&name, &recipients, Time::now(), ctx.callbacks.clone())?;
    ctx.ui.status(format!("Vault: {name} created"));
    Ok(())
}

fn list(ctx: &Ctx) -> CliResult {
    let store = ctx.store()?;
    let vaults = store.vault_summaries()?;
    if ctx.out.json() {
        let rows: Vec<TimesRow> = vaults
            .iter()
            .map(|v| TimesRow {
                name: v.name.to_string(),
                created_at: v.created.to_string(),
                updated_at: v.updated.to_string(),
            })
            .collect();
        return ctx.out.json_doc(&rows);
    }
    if vaults.is_empty() {
        ctx.ui
            .status("No vaults yet: create one with `coffer vault create NAME`.");
        return Ok(());
    }
    let now = Time::now();
    let rows: Vec<Vec<String>> = vaults
        .iter()
        .map(|v| {
            vec![
                v.name.to_string(),
                v.secrets.to_string(),
                v.created.ago(now),
                v.updated.ago(now),
            ]
        })
        .collect();
    ctx.out
        .table(&["NAME", "SECRETS", "CREATED", "UPDATED"], &rows)
}

fn delete(ctx: &Ctx, args: DeleteArgs) -> CliResult {
    let name = args.name.vault_name()?;
    let store = ctx.store()?;
    // Check first, so the user is not asked to confirm the impossible.
    let count = {
        let vault = store.vault(&name)?;
        let read = vault.read()?;
        read.manifest().secrets.len()
    };
    if count > 0 {
        return Err(coffer::Error::VaultNotEmpty {
            name: name.to_string(),
            count,
        }
        .into());
    }
    if !args.yes {
        ui::confirm_by_typing("vault", name.as_str())?;
    }
    store.delete_vault(&name)?;
    ctx.ui.status(format!("Vault: {name} deleted"));
    Ok(())
}

/// Whether a vault subcommand has a JSON form (`vault list`).
pub fn offers_json(c: &VaultCommand) -> bool {
    matches!(c, VaultCommand::List)
}
