//! `coffer create|update|get|list|delete`: one vault's secrets.

use std::io::Read;
use std::path::PathBuf;

use clap::Args;
use coffer::secret::{MAX_VALUE_LEN, strip_one_newline};
use coffer::{Change, SecretName, SecretValue, Time, VaultName};
use zeroize::Zeroizing;

use super::Ctx;
use super::error::{CliError, CliResult};
use super::render::TimesRow;
use super::ui;

/// Which secret: `-V/--vault-name` and `-n/--name`, as on the platform.
#[derive(Args, Debug)]
pub struct SecretRef {
    /// The vault
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vault: String,
    /// The secret's name
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    name: String,
}

impl SecretRef {
    fn parse(&self) -> CliResult<(VaultName, SecretName)> {
        Ok((self.vault.parse()?, self.name.parse()?))
    }
}

#[derive(Args, Debug)]
pub struct WriteArgs {
    #[command(flatten)]
    secret: SecretRef,
    /// Read the value from FILE, exactly as it is ('-' for stdin). Without
    /// any value flag, coffer reads piped stdin (minus one trailing
    /// newline), or asks on the terminal without echo
    #[arg(long, value_name = "FILE", conflicts_with = "value")]
    value_file: Option<PathBuf>,
    /// The value on the command line. Insecure: it is visible to other
    /// users in the process list and kept in shell history; prefer
    /// --value-file, stdin or the prompt
    #[arg(short = 'v', long, value_name = "VALUE")]
    value: Option<String>,
    /// Write it without being able to open the vault: it is encrypted to the
    /// vault's public key and stays unverified (unreadable, unsynced) until
    /// a recipient accepts it with `coffer verify --accept`
    #[arg(long)]
    contribute: bool,
}

/// Opens the vault key for a write, with a hint about contributions when
/// the user is not a recipient.
fn unlock_for_write(ctx: &Ctx, vault: &coffer::Vault<'_>) -> CliResult<coffer::crypto::VaultKey> {
    let ids = ctx.identities().map_err(|e| {
        e.hint("not a recipient? `--contribute` writes it as an unverified contribution")
    })?;
    vault.unlock(&ids).map_err(|e| {
        let not_member = matches!(e, coffer::Error::NoMatchingIdentity { .. });
        let e = CliError::from(e);
        if not_member {
            e.hint("not a recipient? `--contribute` writes it as an unverified contribution")
        } else {
            e
        }
    })
}

fn contributed(ctx: &Ctx, vault: &VaultName, name: &SecretName, verb: &str) {
    ctx.ui.status(format!(
        "Secret: {name} {verb} in vault: {vault} as an unverified contribution"
    ));
    ctx.ui.status(format!(
        "It cannot be read or synced until a recipient runs `coffer verify --accept --vault {vault}`."
    ));
}

/// Reads at most `MAX_VALUE_LEN + 2` bytes: enough to strip a newline and
/// still see that a value is too long, without reading an endless stream.
/// A longer input is refused here, with its real size when it is known (a
/// file's), rather than the size of what was read.
fn read_limited(r: impl Read, what: &str, size: Option<u64>) -> CliResult<Zeroizing<Vec<u8>>> {
    let cap = MAX_VALUE_LEN as u64 + 2;
    let mut buf = Zeroizing::new(Vec::new());
    r.take(cap)
        .read_to_end(&mut buf)
        .map_err(|e| CliError::new(format!("could not read the value from {what}: {e}")))?;
    if buf.len() as u64 == cap {
        let max = MAX_VALUE_LEN;
        let size = size.map(|n| format!(" {n} bytes,")).unwrap_or_default();
        return Err(CliError::new(format!(
            "the value in {what} is{size} over the limit of {max} bytes ({} KiB)",
            max / 1024
        ))
        .hint("store large data elsewhere, or split it across several secrets"));
    }
    Ok(buf)
}

fn read_value(
    ctx: &Ctx,
    args: &WriteArgs,
    vault: &VaultName,
    name: &SecretName,
) -> CliResult<SecretValue> {
    if let Some(v) = &args.value {
        ctx.ui.warn(
            "--value puts the secret on the command line, where other users can see it; prefer --value-file, stdin or the prompt",
        );
        return Ok(SecretValue::from_string(v.clone())?);
    }
    let bytes = match &args.value_file {
        Some(p) if p.as_os_str() == "-" => {
            let mut b = read_limited(std::io::stdin().lock(), "stdin", None)?;
            strip_one_newline(&mut b);
            b
        }
        Some(p) => {
            let f = std::fs::File::open(p)
                .map_err(|e| CliError::new(format!("could not read {}: {e}", p.display())))?;
            let size = f.metadata().ok().map(|m| m.len());
            read_limited(f, &p.display().to_string(), size)?
        }
        None if ui::stdin_is_terminal() => {
            let line = ui::prompt_value(&format!("Value for {vault}/{name}: "))?;
            Zeroizing::new(line.as_bytes().to_vec())
        }
        None => {
            let mut b = read_limited(std::io::stdin().lock(), "stdin", None)?;
            strip_one_newline(&mut b);
            b
        }
    };
    Ok(SecretValue::from_bytes(bytes.to_vec())?)
}

pub fn create(ctx: &Ctx, args: WriteArgs) -> CliResult {
    let (vault_name, name) = args.secret.parse()?;
    let store = ctx.store()?;
    let vault = store.vault(&vault_name)?;
    let value = read_value(ctx, &args, &vault_name, &name)?;
    if args.contribute {
        let mut w = vault.write()?;
        if w.manifest().secrets.contains_key(&name) {
            return Err(coffer::Error::SecretExists {
                vault: vault_name.to_string(),
                name: name.to_string(),
            }
            .into());
        }
        w.contribute(&name, &value, Time::now())?;
        w.commit()?;
        contributed(ctx, &vault_name, &name, "created");
        return Ok(());
    }
    let key = unlock_for_write(ctx, &vault)?;
    let mut w = vault.write()?;
    w.create(&key, &name, &value, Time::now())?;
    w.commit()?;
    ctx.ui
        .status(format!("Secret: {name} created in vault: {vault_name}"));
    Ok(())
}

pub fn update(ctx: &Ctx, args: WriteArgs) -> CliResult {
    let (vault_name, name) = args.secret.parse()?;
    let store = ctx.store()?;
    let vault = store.vault(&vault_name)?;
    // Fail before asking for a value if the secret does not exist.
    if !vault.contains(&name)? {
        return Err(coffer::Error::SecretNotFound {
            vault: vault_name.to_string(),
            name: name.to_string(),
        }
        .into());
    }
    let value = read_value(ctx, &args, &vault_name, &name)?;
    if args.contribute {
        let mut w = vault.write()?;
        if !w.manifest().secrets.contains_key(&name) {
            return Err(coffer::Error::SecretNotFound {
                vault: vault_name.to_string(),
                name: name.to_string(),
            }
            .into());
        }
        w.contribute(&name, &value, Time::now())?;
        w.commit()?;
        contributed(ctx, &vault_name, &name, "updated");
        return Ok(());
    }
    let key = unlock_for_write(ctx, &vault)?;
    let mut w = vault.write()?;
    let change = w.update(&key, &name, &value, Time::now())?;
    let still_due = w
        .manifest()
        .secrets
        .get(&name)
        .is_some_and(|e| e.rotation.is_some());
    w.commit()?;
    match change {
        Change::Changed => ctx
            .ui
            .status(format!("Secret: {name} updated in vault: {vault_name}")),
        Change::Unchanged => ctx.ui.status(format!(
            "Secret: {name} unchanged in vault: {vault_name} (same value; nothing written)"
        )),
    }
    if still_due {
        ctx.ui.warn(format!(
            "{name} is still due for rotation: a removed recipient may know this value; set a new one"
        ));
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    secret: SecretRef,
}

pub fn get(ctx: &Ctx, args: GetArgs) -> CliResult {
    let (vault_name, name) = args.secret.parse()?;
    let store = ctx.store()?;
    let vault = store.vault(&vault_name)?;
    if !vault.contains(&name)? {
        return Err(coffer::Error::SecretNotFound {
            vault: vault_name.to_string(),
            name: name.to_string(),
        }
        .into());
    }
    // Unlocked outside the store's lock: a hardware key may wait for a touch.
    let ids = ctx.identities()?;
    let key = vault.unlock(&ids)?;
    let value = vault.get(&key, &name)?;
    let mut out = Zeroizing::new(value.expose_secret().as_bytes().to_vec());
    if ui::stdout_is_terminal() {
        out.push(b'\n');
    }
    ctx.out.bytes(&out)
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// The vault
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vault: String,
}

pub fn list(ctx: &Ctx, args: ListArgs) -> CliResult {
    let vault_name: VaultName = args.vault.parse()?;
    let store = ctx.store()?;
    let vault = store.vault(&vault_name)?;
    let read = vault.read()?;
    let secrets = &read.manifest().secrets;
    if ctx.out.json() {
        let rows: Vec<TimesRow> = secrets
            .iter()
            .map(|(n, e)| TimesRow {
                name: n.to_string(),
                created_at: e.created.to_string(),
                updated_at: e.updated.to_string(),
            })
            .collect();
        return ctx.out.json_doc(&rows);
    }
    if secrets.is_empty() {
        ctx.ui.status(format!(
            "Vault {vault_name} holds no secrets: add one with `coffer create -V {vault_name} -n NAME`."
        ));
        return Ok(());
    }
    let now = Time::now();
    let rows: Vec<Vec<String>> = secrets
        .iter()
        .map(|(n, e)| {
            let mut note = String::new();
            if e.mac.is_none() {
                note.push_str("unverified contribution");
            }
            if let Some(r) = &e.rotation {
                let who: Vec<&str> = r.removed.iter().map(|n| n.as_str()).collect();
                if !note.is_empty() {
                    note.push_str("; ");
                }
                note.push_str(&format!("rotation due ({} removed)", who.join(", ")));
            }
            vec![n.to_string(), e.created.ago(now), e.updated.ago(now), note]
        })
        .collect();
    ctx.out.table(&["NAME", "CREATED", "UPDATED", ""], &rows)
}

#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    secret: SecretRef,
    /// Delete without asking (needed when stdin is not a terminal)
    #[arg(short, long)]
    yes: bool,
}

pub fn delete(ctx: &Ctx, args: DeleteArgs) -> CliResult {
    let (vault_name, name) = args.secret.parse()?;
    let store = ctx.store()?;
    let vault = store.vault(&vault_name)?;
    if !vault.contains(&name)? {
        return Err(coffer::Error::SecretNotFound {
            vault: vault_name.to_string(),
            name: name.to_string(),
        }
        .into());
    }
    if !args.yes {
        ui::confirm_by_typing("secret", name.as_str())?;
    }
    let mut w = vault.write()?;
    w.delete(&name)?;
    w.commit()?;
    ctx.ui
        .status(format!("Secret: {name} deleted from vault: {vault_name}"));
    Ok(())
}
