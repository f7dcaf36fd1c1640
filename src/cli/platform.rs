//! The platform's command tree, verbatim: `coffer secret vault create
//! --name V`, `coffer secret create --vault-name V --name N --value X`,
//! `coffer secret list -V V`… so that a `tailor-sdk secret …` line works
//! with `coffer` in place of `tailor-sdk`. Each command is the same one as
//! at the top level (same flags, output, JSON and exit codes); as on the
//! platform, `secret` and `secret vault` alone list the vaults.

use clap::{Args, Subcommand};

use super::error::CliResult;
use super::{Ctx, secret, vault};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SecretTree {
    #[command(subcommand)]
    command: Option<SecretCommand>,
}

#[derive(Subcommand, Debug)]
enum SecretCommand {
    /// Manage vaults (alone: list them)
    Vault(VaultTree),
    /// Create a secret in a vault
    Create(secret::WriteArgs),
    /// Change the value of an existing secret
    Update(secret::WriteArgs),
    /// Print a secret's value (coffer's own; the platform never shows values)
    Get(secret::GetArgs),
    /// List a vault's secrets (names and times, never values)
    List(secret::ListArgs),
    /// Delete a secret
    Delete(secret::DeleteArgs),
}

#[derive(Args, Debug)]
pub struct VaultTree {
    #[command(subcommand)]
    command: Option<vault::VaultCommand>,
}

pub fn run(ctx: &Ctx, tree: SecretTree) -> CliResult {
    match tree.command {
        None => vault::run(ctx, vault::VaultCommand::List),
        Some(SecretCommand::Vault(v)) => {
            vault::run(ctx, v.command.unwrap_or(vault::VaultCommand::List))
        }
        Some(SecretCommand::Create(a)) => secret::create(ctx, a),
        Some(SecretCommand::Update(a)) => secret::update(ctx, a),
        Some(SecretCommand::Get(a)) => secret::get(ctx, a),
        Some(SecretCommand::List(a)) => secret::list(ctx, a),
        Some(SecretCommand::Delete(a)) => secret::delete(ctx, a),
    }
}

/// Whether the command the tree names has a JSON form.
pub fn offers_json(tree: &SecretTree) -> bool {
    match &tree.command {
        None | Some(SecretCommand::List(_)) => true,
        Some(SecretCommand::Vault(v)) => v.command.as_ref().is_none_or(vault::offers_json),
        _ => false,
    }
}
