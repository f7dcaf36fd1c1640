//! `coffer refs check`: find `{ vault, key }` references in a source tree
//! and check that each names a secret that exists.
//!
//! Existence comes from the manifests alone, so no key is needed: CI can
//! run it on every pull request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use coffer::runtime::json::Position;
use coffer::runtime::refs::{self, SourceKind};
use coffer::{SecretName, Store, VaultName};
use serde::Serialize;

use super::Ctx;
use super::error::{CliError, CliResult};
use super::render;

/// Files larger than this are skipped (with a warning): generated bundles,
/// not configuration.
const MAX_FILE_LEN: u64 = 16 << 20;

#[derive(Subcommand, Debug)]
pub enum RefsCommand {
    /// Check that every reference in the tree names a secret that exists
    ///
    /// Walks PATHs (default: the current directory) as ripgrep does,
    /// skipping hidden files and what .gitignore ignores, and reads
    /// JavaScript, TypeScript, JSON and YAML files. Files named on the
    /// command line are read whatever their extension.
    Check(CheckArgs),
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Files or directories to search [default: .]
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, cmd: RefsCommand) -> CliResult {
    match cmd {
        RefsCommand::Check(a) => check(ctx, a),
    }
}

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

#[derive(Serialize)]
struct JsonRef {
    file: String,
    line: usize,
    column: usize,
    vault: String,
    key: String,
    status: Status,
}

#[derive(Serialize)]
struct JsonPlace {
    file: String,
    line: usize,
    column: usize,
}

#[derive(Serialize)]
struct JsonReport {
    references: Vec<JsonRef>,
    unchecked: Vec<JsonPlace>,
    dangling: usize,
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

/// A path as the user would write it: without a leading `./`.
fn display(path: &Path) -> String {
    let p = path.strip_prefix(".").unwrap_or(path);
    p.display().to_string()
}

fn check(ctx: &Ctx, args: CheckArgs) -> CliResult {
    let store = ctx.store()?;
    let paths = if args.paths.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.paths
    };
    for p in &paths {
        if std::fs::symlink_metadata(p).is_err() {
            return Err(CliError::new(format!("{} does not exist", p.display())));
        }
    }
    let mut walk = ignore::WalkBuilder::new(&paths[0]);
    for p in &paths[1..] {
        walk.add(p);
    }
    // .gitignore applies even outside a git checkout (a CI tarball).
    walk.require_git(false).sort_by_file_name(|a, b| a.cmp(b));

    let mut names = Names::new(&store);
    let mut report = JsonReport {
        references: Vec::new(),
        unchecked: Vec::new(),
        dangling: 0,
    };
    let mut files = 0usize;
    for entry in walk.build() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                ctx.ui.warn(format!("skipped: {e}"));
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path();
        // Files named on the command line are read whatever they are called.
        let kind = match SourceKind::for_path(path) {
            Some(k) => k,
            None if entry.depth() == 0 => SourceKind::Script,
            None => continue,
        };
        let too_big = entry.metadata().is_ok_and(|m| m.len() > MAX_FILE_LEN);
        if too_big {
            ctx.ui.warn(format!(
                "skipped {}: it is larger than {} MiB",
                display(path),
                MAX_FILE_LEN >> 20
            ));
            continue;
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                ctx.ui
                    .warn(format!("skipped {}: {e}", render::esc(&display(path))));
                continue;
            }
        };
        files += 1;
        let found = refs::scan(kind, &bytes);
        let file = display(path);
        for r in found.references {
            let status = names.status(&r.vault, &r.key)?;
            if status != Status::Ok {
                report.dangling += 1;
            }
            report.references.push(JsonRef {
                file: file.clone(),
                line: r.at.line,
                column: r.at.column,
                vault: r.vault,
                key: r.key,
                status,
            });
        }
        for Position { line, column } in found.dynamic {
            report.unchecked.push(JsonPlace {
                file: file.clone(),
                line,
                column,
            });
        }
    }

    if ctx.out.json() {
        ctx.out.json_doc(&report)?;
    } else {
        let mut out = String::new();
        for r in &report.references {
            // File names and what a file says are not validated: escaped.
            out.push_str(&format!(
                "{}:{}:{}: {}/{}\n",
                render::esc(&r.file),
                r.line,
                r.column,
                render::esc(&r.vault),
                render::esc(&r.key)
            ));
        }
        ctx.out.bytes(out.as_bytes())?;
        for u in &report.unchecked {
            ctx.ui.status(format!(
                "note: {}:{}:{}: a reference built from variables cannot be checked",
                render::esc(&u.file),
                u.line,
                u.column
            ));
        }
    }

    let total = report.references.len();
    if report.dangling > 0 {
        let mut msg = format!(
            "{} of {total} reference{} {} not name a secret in the store:",
            report.dangling,
            render::s(total),
            render::pick(report.dangling, "does", "do")
        );
        for r in report.references.iter().filter(|r| r.status != Status::Ok) {
            msg.push_str(&format!(
                "\n  {}:{}:{}: {}",
                render::esc(&r.file),
                r.line,
                r.column,
                render::esc(&describe(r.status, &r.vault, &r.key))
            ));
        }
        return Err(CliError::new(msg).hint(
            "create the missing secrets (`coffer create -V VAULT -n NAME`), or fix the references",
        ));
    }
    let searched = format!("{} searched", render::count(files, "file", "files"));
    ctx.ui.status(match total {
        0 => format!("No references found ({searched})."),
        1 => format!("1 reference ({searched}); it names a secret in the store."),
        n => format!("{n} references ({searched}); all name secrets in the store."),
    });
    Ok(())
}
