//! `coffer inject`: a config-file template with its
//! `{{ coffer://VAULT/SECRET }}` references replaced by the secrets'
//! values (see `coffer::runtime::template`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use coffer::runtime::template;
use coffer::{SecretName, VaultName};

use super::Ctx;
use super::common::{Names, Status, decrypt, describe, read_input, write_output};
use super::error::{CliError, CliResult};

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  coffer inject config.yml.tpl -o config.yml
  coffer inject --check config.yml.tpl        # in CI: no key needed
  echo 'db: {{ coffer://api-keys/db-url | yaml }}' | coffer inject

A reference is {{ coffer://VAULT/SECRET }} (spaces optional), or op inject's
{{ op://VAULT/SECRET }}. Filters make a value safe in the file's syntax:
| json, | yaml, | shell, | base64 (chain them left to right). Every other
byte of the template is copied as it is. See docs/inject.md.")]
pub struct InjectArgs {
    /// The template to read ('-' or nothing for stdin). (`-i` is coffer's
    /// global identity flag, so `op inject -i FILE` becomes `coffer
    /// inject FILE` or `--in-file FILE`.)
    #[arg(value_name = "TEMPLATE")]
    file: Option<PathBuf>,
    /// The template to read, as op inject spells it
    #[arg(long, value_name = "TEMPLATE", conflicts_with = "file")]
    in_file: Option<PathBuf>,
    /// Write to OUT (atomically, mode 0600, never through a link) instead
    /// of stdout
    #[arg(short, long, visible_alias = "out-file", value_name = "OUT")]
    output: Option<PathBuf>,
    /// Only check that every reference names a secret that exists (no key
    /// needed, nothing written)
    #[arg(long, conflicts_with = "output")]
    check: bool,
}

pub fn inject(ctx: &Ctx, args: InjectArgs) -> CliResult {
    let file = args.file.or(args.in_file);
    let (input, source) = read_input(file.as_deref())?;
    let refs = template::parse(&input).map_err(|errors| {
        let n = errors.len();
        let err = if n == 1 {
            CliError::new(format!("{source}:{}", errors[0]))
        } else {
            let mut msg = format!("{n} references in {source} are not well formed:");
            for e in &errors {
                msg.push_str(&format!("\n  {source}:{e}"));
            }
            CliError::new(msg)
        };
        err.hint("a reference is {{ coffer://VAULT/SECRET }} with optional filters: | json, | yaml, | shell, | base64")
    })?;
    let store = ctx.store()?;

    // Every reference must name a secret that exists: all are checked
    // against the manifests before any key is asked for.
    let mut names = Names::new(&store);
    let mut problems: Vec<String> = Vec::new();
    for r in &refs {
        match names.status(r.vault.as_str(), r.name.as_str())? {
            Status::Ok => {}
            s => problems.push(format!(
                "{source}:{}: {}",
                r.at,
                describe(s, r.vault.as_str(), r.name.as_str())
            )),
        }
    }
    if !problems.is_empty() {
        let err = super::common::unresolved(&source, &problems);
        return Err(err.hint(
            "`coffer vault list` and `coffer list -V VAULT` show what exists; nothing was written",
        ));
    }
    if args.check {
        let n = refs.len();
        ctx.ui.status(format!(
            "{source}: {} {} a secret that exists.",
            super::render::count(n, "reference", "references"),
            super::render::pick(n, "names", "name")
        ));
        return Ok(());
    }
    if refs.is_empty() {
        ctx.ui.status(format!(
            "{source} holds no references; it is written unchanged."
        ));
    }

    // Each vault's key is opened once; only the secrets used are decrypted.
    let mut wanted: BTreeMap<&VaultName, Vec<&SecretName>> = BTreeMap::new();
    for r in &refs {
        let names = wanted.entry(&r.vault).or_default();
        if !names.contains(&&r.name) {
            names.push(&r.name);
        }
    }
    let values = decrypt(ctx, &store, &wanted)?;
    let out = template::render(&input, &refs, |r| {
        // decrypt returns every secret it was given, or fails.
        values
            .get(&(r.vault.clone(), r.name.clone()))
            .map_or("", |v| v.expose_secret())
    });
    write_output(ctx, args.output.as_deref(), &out)?;
    if let Some(p) = &args.output {
        ctx.ui.status(format!(
            "Wrote {} with {} filled in.",
            p.display(),
            super::render::count(refs.len(), "reference", "references")
        ));
    }
    Ok(())
}
