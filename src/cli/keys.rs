//! `coffer keygen` and `coffer init`.

use std::path::PathBuf;

use clap::Args;
use coffer::{RecipientKey, RecipientName, Store, Time};

use super::Ctx;
use super::error::{CliError, CliResult};

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Where to write the identity; never overwritten
    /// [default: $XDG_CONFIG_HOME/coffer/identity.txt]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Writes a new identity (mode 0600, never overwriting) and prints its
/// public recipient on stdout.
pub fn keygen(ctx: &Ctx, args: KeygenArgs) -> CliResult {
    let path = match args.output {
        Some(p) if p.is_absolute() => p,
        Some(p) => ctx.env.cwd.join(p),
        None => ctx.env.default_identity().ok_or_else(|| {
            CliError::new(
                "cannot find your configuration directory: neither XDG_CONFIG_HOME nor HOME is set",
            )
            .hint("choose a file with -o FILE")
        })?,
    };
    let public = coffer::crypto::identity::write_new_identity(&path, &Time::now().to_string())?;
    ctx.ui.status(format!(
        "Wrote a new identity to {} (keep it private; back it up)",
        path.display()
    ));
    ctx.out.bytes(format!("{public}\n").as_bytes())
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Your name among the store's recipients [default: your login name]
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
    /// Your public recipient, when coffer cannot derive it from your
    /// identities (for example a hardware key) [default: from your identity]
    #[arg(long, value_name = "KEY")]
    recipient: Option<String>,
}

/// Creates `vaults/coffer.toml` with the user as its only recipient,
/// generating an identity first if the user has none.
pub fn init(ctx: &Ctx, args: InitArgs) -> CliResult {
    let root = ctx
        .requested_store()
        .unwrap_or_else(|| ctx.env.cwd.join(coffer::store::layout::STORE_DIR));
    let raw_name = args.name.or_else(|| ctx.env.user.clone()).ok_or_else(|| {
        CliError::new("cannot tell your login name: USER and LOGNAME are not set")
            .hint("pass your name with --name NAME")
    })?;
    let name: RecipientName = raw_name
        .parse()
        .map_err(|e: coffer::Error| CliError::from(e).hint("pass another name with --name NAME"))?;
    let existing = root.join(coffer::store::layout::CONFIG_FILE);
    if existing.exists() {
        return Err(coffer::Error::StoreExists { path: existing }.into());
    }

    let key: RecipientKey = match args.recipient {
        Some(k) => k.parse()?,
        None => {
            let (ids, demo) = ctx.load_identities_noting_demo()?;
            match ids.recipients().first() {
                Some(k) => k.clone(),
                None if demo => {
                    return Err(CliError::new(
                        "your only identity is coffer's published demo identity, which must never be a real store's recipient",
                    )
                    .hint("unset COFFER_AGE_KEY (the README's try-it line sets it only for its own commands), then run `coffer init` again: it creates an identity of your own"));
                }
                None if ids.is_empty() => {
                    let path = ctx.env.default_identity().ok_or_else(|| {
                        CliError::new("you have no identity, and no configuration directory to create one in")
                            .hint("create one with `coffer keygen -o FILE` and pass it with --identity FILE")
                    })?;
                    let public = coffer::crypto::identity::write_new_identity(
                        &path,
                        &Time::now().to_string(),
                    )?;
                    ctx.ui.status(format!(
                        "Created your identity in {} (keep it private; back it up)",
                        path.display()
                    ));
                    public.parse()?
                }
                None => {
                    return Err(CliError::new(
                        "your identities are hardware or plugin keys, whose recipient coffer cannot derive",
                    )
                    .hint("pass your recipient with --recipient KEY"));
                }
            }
        }
    };
    let store = Store::init(&root, &name, &key)?;
    ctx.ui.status(format!(
        "Created store {} with recipient {name} ({})",
        store.root().display(),
        key.fingerprint()
    ));
    ctx.ui
        .status("Next: `coffer vault create NAME`, then `coffer create -V NAME -n SECRET`.");
    Ok(())
}
