//! `coffer resolve`: a JSON document with its `{ vault, key }` references
//! replaced by the secrets' values.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;

use clap::Args;
use coffer::runtime::json;
use coffer::{SecretName, VaultName};

use super::Ctx;
use super::common::{Names, Status, decrypt, describe, read_input, write_output};
use super::error::{CliError, CliResult};

#[derive(Args, Debug)]
pub struct ResolveArgs {
    /// The JSON document to read ('-' or nothing for stdin)
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Write to OUT (atomically, mode 0600) instead of stdout
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
}

pub fn resolve(ctx: &Ctx, args: ResolveArgs) -> CliResult {
    let (input, source) = read_input(args.file.as_deref())?;
    let found = json::find_references(&input).map_err(|e| {
        CliError::new(format!("{source} is not valid JSON: {e}"))
            .hint("resolve reads JSON documents (YAML is not supported; see docs/runtime.md)")
    })?;
    for at in &found.lookalikes {
        ctx.ui.warn(format!(
            "{source}:{at}: an object with \"vault\" and \"key\" and other members, or values that are not strings, is not a reference; left as it is"
        ));
    }
    let store = ctx.store()?;

    // Every reference must name a secret that exists: check them all
    // against the manifests before asking for any key.
    let mut names = Names::new(&store);
    let mut resolved: Vec<(Range<usize>, VaultName, SecretName)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for r in &found.references {
        match names.status(&r.vault, &r.key)? {
            Status::Ok => resolved.push((r.span.clone(), r.vault.parse()?, r.key.parse()?)),
            s => problems.push(format!(
                "{source}:{}: {}",
                r.at,
                describe(s, &r.vault, &r.key)
            )),
        }
    }
    if !problems.is_empty() {
        let err = super::common::unresolved(&source, &problems);
        return Err(err
            .hint("`coffer vault list` and `coffer list -V VAULT` show what exists; `coffer refs check` finds references before deploy"));
    }
    if found.references.is_empty() {
        ctx.ui.status(format!(
            "{source} holds no references; it is written unchanged."
        ));
    }

    // Each vault's key is opened once; only the secrets used are decrypted.
    let mut wanted: BTreeMap<&VaultName, Vec<&SecretName>> = BTreeMap::new();
    for (_, vault, name) in &resolved {
        wanted.entry(vault).or_default().push(name);
    }
    let values = decrypt(ctx, &store, &wanted)?;
    let spans: Vec<(Range<usize>, &str)> = resolved
        .iter()
        .filter_map(|(span, vault, name)| {
            // decrypt returns every secret it was given, or fails.
            let value = values.get(&(vault.clone(), name.clone()))?;
            Some((span.clone(), value.expose_secret()))
        })
        .collect();
    let out = json::replace_spans(&input, spans.iter().cloned());
    write_output(ctx, args.output.as_deref(), &out)
}
