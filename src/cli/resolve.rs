//! `coffer resolve`: a JSON document with its `{ vault, key }` references
//! replaced by the secrets' values.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use coffer::{SecretName, SecretValue, VaultName, json};

use super::Ctx;
use super::error::{CliError, CliResult};
use super::transfer::{read_input, write_output};

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
    let mut wanted: BTreeMap<VaultName, Vec<SecretName>> = BTreeMap::new();
    let mut problems: Vec<String> = Vec::new();
    let mut manifests: BTreeMap<VaultName, Option<Vec<SecretName>>> = BTreeMap::new();
    for r in &found.references {
        let at = format!("{source}:{}", r.at);
        let vault_name = match r.vault.parse::<VaultName>() {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{at}: {e}"));
                continue;
            }
        };
        let name = match r.key.parse::<SecretName>() {
            Ok(n) => n,
            Err(e) => {
                problems.push(format!("{at}: {e}"));
                continue;
            }
        };
        let names = match manifests.get(&vault_name) {
            Some(n) => n,
            None => {
                let names = match store.vault(&vault_name) {
                    Ok(v) => Some(v.read()?.manifest().secrets.keys().cloned().collect()),
                    Err(coffer::Error::VaultNotFound { .. }) => None,
                    Err(e) => return Err(e.into()),
                };
                manifests.entry(vault_name.clone()).or_insert(names)
            }
        };
        match names {
            None => problems.push(format!("{at}: vault {:?} not found", vault_name.as_str())),
            Some(names) if !names.contains(&name) => problems.push(format!(
                "{at}: secret {:?} not found in vault {:?}",
                name.as_str(),
                vault_name.as_str()
            )),
            Some(_) => wanted.entry(vault_name).or_default().push(name),
        }
    }
    if !problems.is_empty() {
        let err = if let [one] = problems.as_slice() {
            CliError::new(one.clone())
        } else {
            let mut msg = format!("{} references in {source} do not resolve:", problems.len());
            for p in &problems {
                msg.push_str("\n  ");
                msg.push_str(p);
            }
            CliError::new(msg)
        };
        return Err(err
            .hint("`coffer vault list` and `coffer list -V VAULT` show what exists; `coffer refs check` finds references before deploy"));
    }
    if found.references.is_empty() {
        ctx.ui.status(format!(
            "{source} holds no references; it is written unchanged."
        ));
    }

    // Each vault's key is opened once; only the secrets used are decrypted.
    let mut values: BTreeMap<(VaultName, SecretName), SecretValue> = BTreeMap::new();
    if !wanted.is_empty() {
        let ids = ctx.identities()?;
        for (vault_name, names) in &wanted {
            let vault = store.vault(vault_name)?;
            let key = vault.unlock(&ids)?;
            for (name, value) in vault.read()?.get_many(&key, names)? {
                values.insert((vault_name.clone(), name), value?);
            }
        }
    }
    let mut spans = Vec::with_capacity(found.references.len());
    for r in &found.references {
        // Every reference was checked above, so each has a value.
        if let (Ok(v), Ok(k)) = (r.vault.parse(), r.key.parse())
            && let Some(value) = values.get(&(v, k))
        {
            spans.push((r.span.clone(), value.expose_secret()));
        }
    }
    let out = json::replace_spans(&input, spans.iter().map(|(s, v)| (s.clone(), *v)));
    write_output(ctx, args.output.as_deref(), &out)
}
