//! `coffer run`: a program with secrets in its environment.
//!
//! coffer decrypts what the program needs, builds its environment, and
//! then *becomes* the program (`execve`): there is no parent process left
//! to forward signals or relay an exit status, so both are exactly the
//! program's own, and its stdin, stdout and stderr are coffer's.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

use clap::Args;
use coffer::runtime::envname;
use coffer::{SecretName, SecretValue, VaultName};

use super::Ctx;
use super::common::decrypt_with;
use super::error::{CliError, CliResult};

/// Variables coffer reads its own key from; the program never sees them.
const KEY_VARIABLES: [&str; 2] = ["COFFER_AGE_KEY", "COFFER_IDENTITY"];

#[derive(Args, Debug)]
#[command(
    override_usage = "coffer run [-V VAULT]... [--prefix P] [--only NAME]... [--override] [--allow-var VAR]... -- COMMAND [ARGS]..."
)]
pub struct RunArgs {
    /// A vault whose secrets the program gets; repeatable [default: every
    /// vault in the store]
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vaults: Vec<String>,
    /// Put P before every variable name (e.g. APP_ gives APP_STRIPE_SECRET_KEY)
    #[arg(long, value_name = "P")]
    prefix: Option<String>,
    /// Pass only this secret; repeatable. Other secrets are not decrypted
    #[arg(long, value_name = "NAME")]
    only: Vec<String>,
    /// Replace variables that are already set (by default the program
    /// keeps them, and coffer says so)
    #[arg(long = "override")]
    replace: bool,
    /// Let a secret set this variable although it changes how programs
    /// load or start (LD_PRELOAD, BASH_ENV, NODE_OPTIONS, PATH…); repeatable
    #[arg(long = "allow-var", value_name = "VAR")]
    allow_var: Vec<String>,
    /// The program to run and its arguments (after `--`)
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    command: Vec<OsString>,
}

/// One secret on its way into the environment.
struct Planned {
    vault: VaultName,
    name: SecretName,
    var: String,
}

/// `coffer run`: validates the request, plans which secret sets which
/// variable, builds the program's environment, and execs the program.
pub fn run(ctx: &Ctx, args: RunArgs) -> CliResult {
    let prefix = args.prefix.as_deref().unwrap_or_default();
    if !envname::is_valid_prefix(prefix) {
        return Err(CliError::new(format!(
            "--prefix {prefix:?} cannot start an environment variable name"
        ))
        .hint("a prefix is letters, digits and '_', not starting with a digit (e.g. APP_)"));
    }
    let only: Vec<SecretName> = args
        .only
        .iter()
        .map(|n| n.parse())
        .collect::<Result<_, _>>()?;
    let store = ctx.store()?;
    let vault_names = select_vaults(&store, &args.vaults)?;
    let vaults = vault_names
        .iter()
        .map(|v| store.vault(v))
        .collect::<Result<Vec<_>, _>>()?;
    let reads = vaults
        .iter()
        .map(|v| v.read())
        .collect::<Result<Vec<_>, _>>()?;
    let mut plan = plan_vars(&reads, &only, prefix)?;
    check_collisions(&plan)?;
    check_hazards(&plan, &args.allow_var)?;
    let env = inherited_env(ctx, &mut plan, args.replace);
    // The store's lock is let go before the program starts: it may run
    // for days, and writers would wait for it.
    let values: Vec<SecretValue> = if plan.is_empty() {
        drop(reads);
        Vec::new()
    } else {
        let ids = ctx.identities()?;
        if ids.may_ask() {
            // A hardware key may wait for a touch, a passphrase for the
            // user: the keys are opened outside the store's lock, so that
            // nobody waits on us meanwhile, and the manifests read again.
            drop(reads);
            let mut values = decrypt_with(&ids, &store, &wanted(&plan))?;
            plan.iter()
                .map(|p| {
                    values
                        .remove(&(p.vault.clone(), p.name.clone()))
                        .expect("every planned secret is decrypted, or the decryption fails")
                })
                .collect()
        } else {
            // Keys that never wait are opened under the lock already
            // held, and each manifest is read once, for the plan and the
            // values alike (at 10,000 secrets, a second read was ~5 ms).
            let values = decrypt_read(&ids, &reads, &plan)?;
            drop(reads);
            values
        }
    };
    let (program, rest) = args.command.split_first().expect("clap requires a command");
    let mut cmd = Command::new(program);
    cmd.args(rest).env_clear().envs(&env);
    add_secrets(&plan, values, &mut cmd)?;
    super::harden::restore_for_exec();
    // Only returns on failure: on success this process is the program.
    let e = cmd.exec();
    drop(env);
    Err(exec_error(program, &e))
}

/// The vaults named with `-V` (parsed, without repeats, in order), or every
/// vault of the store; a store without vaults is an error.
fn select_vaults(store: &coffer::Store, requested: &[String]) -> CliResult<Vec<VaultName>> {
    let mut vault_names: Vec<VaultName> = Vec::new();
    for v in requested {
        let v: VaultName = v.parse()?;
        if !vault_names.contains(&v) {
            vault_names.push(v);
        }
    }
    if vault_names.is_empty() {
        vault_names = store.vault_names()?;
        if vault_names.is_empty() {
            return Err(
                CliError::new("the store holds no vaults, so there is nothing to pass")
                    .hint("create one with `coffer vault create NAME`"),
            );
        }
    }
    Ok(vault_names)
}

/// What goes where, from the manifests alone (no key needed yet): every
/// secret of `vault_names` (or those in `only`) with its variable name. A
/// name in `only` that no vault holds is an error.
fn plan_vars(
    reads: &[coffer::store::VaultRead<'_>],
    only: &[SecretName],
    prefix: &str,
) -> CliResult<Vec<Planned>> {
    let mut plan: Vec<Planned> = Vec::new();
    let mut wanted = only.to_vec();
    for read in reads {
        let vault_name = read.vault().name();
        for name in read.manifest().secrets.keys() {
            if !only.is_empty() && !only.contains(name) {
                continue;
            }
            wanted.retain(|n| n != name);
            plan.push(Planned {
                vault: vault_name.clone(),
                name: name.clone(),
                var: envname::var_name(prefix, name),
            });
        }
    }
    if let Some(missing) = wanted.first() {
        let vault_names: Vec<VaultName> = reads.iter().map(|r| r.vault().name().clone()).collect();
        return Err(match vault_names.as_slice() {
            [one] => coffer::Error::SecretNotFound {
                vault: one.to_string(),
                name: missing.to_string(),
            }
            .into(),
            many => CliError::new(format!(
                "secret {:?} (--only) is in none of the vaults {}",
                missing.as_str(),
                join(many)
            ))
            .hint("`coffer list -V VAULT` shows a vault's secrets"),
        });
    }
    Ok(plan)
}

/// The program's environment before secrets: ours, minus coffer's key.
/// Drops from `plan` each variable already set, saying so, unless
/// `replace`.
fn inherited_env(
    ctx: &Ctx,
    plan: &mut Vec<Planned>,
    replace: bool,
) -> BTreeMap<OsString, OsString> {
    let env: BTreeMap<OsString, OsString> = ctx
        .env
        .vars
        .iter()
        .filter(|(k, _)| !KEY_VARIABLES.iter().any(|v| k == OsStr::new(v)))
        .cloned()
        .collect();
    plan.retain(|p| {
        let set = env.contains_key(OsStr::new(&p.var));
        if set && !replace {
            ctx.ui.status(format!(
                "note: {} is already set; keeping it (--override replaces it)",
                p.var
            ));
        }
        replace || !set
    });
    env
}

/// The planned secrets, by vault.
fn wanted(plan: &[Planned]) -> BTreeMap<&VaultName, Vec<&SecretName>> {
    let mut wanted: BTreeMap<&VaultName, Vec<&SecretName>> = BTreeMap::new();
    for p in plan {
        wanted.entry(&p.vault).or_default().push(&p.name);
    }
    wanted
}

/// Decrypts the planned secrets from the manifests `reads` holds, under
/// their lock, each vault's secrets on every core; returns their values in
/// the plan's order (a plan lists each vault's secrets in name order, as
/// [`coffer::store::VaultRead::get_many`] returns them).
fn decrypt_read(
    ids: &coffer::Identities,
    reads: &[coffer::store::VaultRead<'_>],
    plan: &[Planned],
) -> CliResult<Vec<SecretValue>> {
    let mut values = Vec::with_capacity(plan.len());
    for read in reads {
        let vault_name = read.vault().name();
        let names: Vec<&SecretName> = plan
            .iter()
            .filter(|p| &p.vault == vault_name)
            .map(|p| &p.name)
            .collect();
        if names.is_empty() {
            continue;
        }
        let key = read.vault().unlock(ids)?;
        let got = read.get_many(&key, names.iter().copied())?;
        assert_eq!(got.len(), names.len(), "one value per planned secret");
        for ((name, value), planned) in got.into_iter().zip(names) {
            // A value set in another secret's variable would be a leak.
            assert_eq!(&name, planned, "values come in the plan's order");
            values.push(value?);
        }
    }
    Ok(values)
}

/// Sets the decrypted secrets in the program's environment, `values` in
/// the plan's order (straight into `cmd`: at 10,000 secrets every copy of
/// the environment costs milliseconds); a value with a NUL byte (which no
/// variable can hold) is an error.
fn add_secrets(plan: &[Planned], values: Vec<SecretValue>, cmd: &mut Command) -> CliResult {
    assert_eq!(plan.len(), values.len(), "one value per planned secret");
    for (p, value) in plan.iter().zip(&values) {
        if value.expose_secret().contains('\0') {
            return Err(CliError::new(format!(
                "secret {:?} in vault {:?} contains a NUL byte, which an environment variable cannot hold",
                p.name.as_str(),
                p.vault.as_str()
            ))
            .hint("leave it out with --only, or store it base64-encoded"));
        }
        cmd.env(&p.var, value.expose_secret());
    }
    // Wiped now; the copies in `cmd` vanish with this process image.
    drop(values);
    Ok(())
}

/// Two secrets that would set the same variable is an error naming both.
fn check_collisions(plan: &[Planned]) -> CliResult {
    let mut seen: std::collections::HashMap<&str, &Planned> =
        std::collections::HashMap::with_capacity(plan.len());
    for p in plan {
        if let Some(first) = seen.insert(&p.var, p) {
            return Err(CliError::new(format!(
                "secrets {}/{} and {}/{} would both set {}",
                first.vault, first.name, p.vault, p.name, p.var
            ))
            .hint("pick the vaults with -V, or the secrets with --only"));
        }
    }
    Ok(())
}

/// A secret that would set a variable which changes how programs load or
/// start is refused unless that variable is allowed by name: anyone who can
/// write the repository can name a secret `ld-preload` (see
/// `docs/security.md`). Checked from the manifests, before any decryption.
fn check_hazards(plan: &[Planned], allowed: &[String]) -> CliResult {
    for p in plan {
        let Some(hazard) = envname::hazard(&p.var) else {
            continue;
        };
        if allowed.contains(&p.var) {
            continue;
        }
        return Err(CliError::new(format!(
            "secret {}/{} would set {}, which coffer refuses: {}",
            p.vault,
            p.name,
            p.var,
            hazard.what()
        ))
        .hint(format!(
            "if the store is yours and this is intended, pass --allow-var {}; otherwise check who added the secret (`git log -- vaults/{}`)",
            p.var, p.vault
        )));
    }
    Ok(())
}

/// Reports a program that could not be started with the shell's codes:
/// 127 when it was not found, 126 when it could not be run.
fn exec_error(program: &OsStr, e: &io::Error) -> CliError {
    let name = program.to_string_lossy();
    let mut err = if e.kind() == io::ErrorKind::NotFound {
        CliError::new(format!("could not run {name:?}: command not found"))
            .hint("check the name, or give the program's full path")
    } else {
        CliError::new(format!("could not run {name:?}: {e}"))
    };
    err.code = if e.kind() == io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    err
}

fn join(names: &[VaultName]) -> String {
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
