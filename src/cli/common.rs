//! Pieces several commands share, so that no command file imports
//! another: finding git and the store's repository, reading a command's
//! input and writing its output, checking references against the
//! manifests, and decrypting the secrets a command uses.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use coffer::git::{Git, find_program};
use coffer::runtime::output;
use coffer::{Identities, SecretName, SecretValue, Store, VaultName};
use serde::Serialize;
use zeroize::Zeroizing;

use super::Ctx;
use super::error::{CliError, CliResult};

// ---------------------------------------------------------------- git

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

// ---------------------------------------------------------------- input and output

/// The largest input `import` and `resolve` read.
pub const MAX_INPUT_LEN: u64 = 64 << 20;

/// Reads a whole input: a file, or stdin for `-` or none. Returns its
/// bytes and how to name it in messages.
pub fn read_input(path: Option<&Path>) -> CliResult<(Zeroizing<Vec<u8>>, String)> {
    let mut buf = Zeroizing::new(Vec::new());
    let file = path.filter(|p| p.as_os_str() != "-");
    let name = file.map_or_else(|| "stdin".to_owned(), |p| p.display().to_string());
    let failed = |e: std::io::Error| CliError::new(format!("could not read {name}: {e}"));
    let limit = MAX_INPUT_LEN + 1;
    match file {
        None => std::io::stdin().lock().take(limit).read_to_end(&mut buf),
        Some(p) => {
            let f = std::fs::File::open(p).map_err(&failed)?;
            // Sized up front where possible: growth leaves unwiped copies.
            let len = f.metadata().map_or(0, |m| m.len()).min(limit);
            buf.reserve_exact(len as usize + 1);
            f.take(limit).read_to_end(&mut buf)
        }
    }
    .map_err(&failed)?;
    if buf.len() as u64 > MAX_INPUT_LEN {
        return Err(CliError::new(format!(
            "{name} is larger than {} MiB",
            MAX_INPUT_LEN >> 20
        )));
    }
    Ok((buf, name))
}

/// Writes data holding secrets to `out` (atomically, mode 0600), or to
/// stdout.
pub fn write_output(ctx: &Ctx, out: Option<&Path>, bytes: &[u8]) -> CliResult {
    match out {
        Some(p) => Ok(output::write_private(p, bytes)?),
        None => ctx.out.bytes(bytes),
    }
}

// ---------------------------------------------------------------- references

/// Whether a reference names something that exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Ok,
    InvalidVaultName,
    InvalidSecretName,
    MissingVault,
    MissingSecret,
}

/// The store's vaults and their secret names, read from the manifests
/// (no key needed) once per vault, to tell whether references resolve.
pub struct Names<'s> {
    store: &'s Store,
    vaults: BTreeMap<VaultName, Option<Vec<SecretName>>>,
}

impl<'s> Names<'s> {
    pub fn new(store: &'s Store) -> Names<'s> {
        Names {
            store,
            vaults: BTreeMap::new(),
        }
    }

    /// Returns whether `vault` and `key` name a secret in the store.
    pub fn status(&mut self, vault: &str, key: &str) -> CliResult<Status> {
        let Ok(vault) = vault.parse::<VaultName>() else {
            return Ok(Status::InvalidVaultName);
        };
        if !self.vaults.contains_key(&vault) {
            let names = match self.store.vault(&vault) {
                Ok(v) => Some(v.read()?.manifest().secrets.keys().cloned().collect()),
                Err(coffer::Error::VaultNotFound { .. }) => None,
                Err(e) => return Err(e.into()),
            };
            self.vaults.insert(vault.clone(), names);
        }
        let Some(names) = self.vaults.get(&vault).and_then(Option::as_ref) else {
            return Ok(Status::MissingVault);
        };
        Ok(match key.parse::<SecretName>() {
            Err(_) => Status::InvalidSecretName,
            Ok(k) if names.contains(&k) => Status::Ok,
            Ok(_) => Status::MissingSecret,
        })
    }
}

/// The error for references in `source` that do not resolve: the one
/// problem as it is, or all of them listed under a count.
pub fn unresolved(source: &str, problems: &[String]) -> CliError {
    if let [one] = problems {
        return CliError::new(one.clone());
    }
    let mut msg = format!("{} references in {source} do not resolve:", problems.len());
    for p in problems {
        msg.push_str("\n  ");
        msg.push_str(p);
    }
    CliError::new(msg)
}

/// Says what is wrong with a reference, naming it (never a value).
pub fn describe(status: Status, vault: &str, key: &str) -> String {
    let invalid = |e: coffer::Error| e.to_string();
    match status {
        Status::Ok => String::new(),
        Status::InvalidVaultName => vault
            .parse::<VaultName>()
            .err()
            .map(invalid)
            .unwrap_or_default(),
        Status::InvalidSecretName => key
            .parse::<SecretName>()
            .err()
            .map(invalid)
            .unwrap_or_default(),
        Status::MissingVault => format!("vault {vault:?} not found"),
        Status::MissingSecret => format!("secret {key:?} not found in vault {vault:?}"),
    }
}

// ---------------------------------------------------------------- values

/// Decrypts secrets of several vaults: each vault's key is opened once and
/// its secrets are decrypted in parallel. The first secret that fails is
/// the error.
pub fn decrypt(
    ctx: &Ctx,
    store: &Store,
    wanted: &BTreeMap<&VaultName, Vec<&SecretName>>,
) -> CliResult<BTreeMap<(VaultName, SecretName), SecretValue>> {
    if wanted.is_empty() {
        return Ok(BTreeMap::new());
    }
    decrypt_with(&ctx.identities()?, store, wanted)
}

/// [`decrypt`] with identities already loaded.
pub fn decrypt_with(
    ids: &Identities,
    store: &Store,
    wanted: &BTreeMap<&VaultName, Vec<&SecretName>>,
) -> CliResult<BTreeMap<(VaultName, SecretName), SecretValue>> {
    let mut values = BTreeMap::new();
    for (&vault_name, names) in wanted {
        let vault = store.vault(vault_name)?;
        // Unlocked outside the store's lock: a hardware key may wait for a touch.
        let key = vault.unlock(ids)?;
        for (name, value) in vault.read()?.get_many(&key, names.iter().copied())? {
            values.insert((vault_name.clone(), name), value?);
        }
    }
    Ok(values)
}
