//! `coffer export` and `coffer import`: a vault to and from a dotenv or
//! JSON file.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use coffer::runtime::{dotenv, envname, json, output};
use coffer::{Change, SecretName, SecretValue, Time, VaultName};
use zeroize::Zeroizing;

use super::Ctx;
use super::error::{CliError, CliResult};
use super::render;

/// The largest input `import` and `resolve` read.
const MAX_INPUT_LEN: u64 = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// NAME=value lines (dotenv); STRIPE_SECRET_KEY stands for stripe-secret-key
    Env,
    /// One object: {"stripe-secret-key": "value", …}
    Json,
}

impl Format {
    /// The format asked for, else `.json` files are JSON and the rest env.
    fn pick(flag: Option<Format>, path: Option<&Path>) -> Format {
        flag.unwrap_or_else(|| match path.and_then(|p| p.extension()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Env,
        })
    }
}

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

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// The vault
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vault: String,
    /// The file format [default: json for a .json OUT, else env]
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Write to OUT (atomically, mode 0600) instead of stdout
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
}

pub fn export(ctx: &Ctx, args: ExportArgs) -> CliResult {
    let vault_name: VaultName = args.vault.parse()?;
    let format = Format::pick(args.format, args.output.as_deref());
    let store = ctx.store()?;
    let vault = store.vault(&vault_name)?;
    let ids = ctx.identities()?;
    let key = vault.unlock(&ids)?;
    let mut values: Vec<(SecretName, SecretValue)> = Vec::new();
    for (name, value) in vault.read()?.get_all(&key)? {
        values.push((name, value?));
    }
    let text = match format {
        Format::Env => {
            let vars: Vec<String> = values
                .iter()
                .map(|(n, _)| envname::var_name("", n))
                .collect();
            dotenv::write(
                vars.iter()
                    .map(String::as_str)
                    .zip(values.iter().map(|(_, v)| v.expose_secret())),
            )
        }
        Format::Json => {
            json::write_flat_object(values.iter().map(|(n, v)| (n.as_str(), v.expose_secret())))
        }
    };
    write_output(ctx, args.output.as_deref(), text.as_bytes())?;
    let n = values.len();
    let plural = render::s(n);
    match &args.output {
        Some(p) => ctx.ui.status(format!(
            "Exported {n} secret{plural} from vault {vault_name} to {}",
            p.display()
        )),
        None => ctx.ui.status(format!(
            "Exported {n} secret{plural} from vault {vault_name}."
        )),
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The vault
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vault: String,
    /// The file to read ('-' for stdin)
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The file format [default: json for a .json FILE, else env]
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Show what would change, and change nothing
    #[arg(long)]
    dry_run: bool,
}

/// One secret read from the file.
struct Incoming {
    name: SecretName,
    value: SecretValue,
}

/// Reads and checks every entry, reporting every problem at once (by line
/// and name, never by value).
fn read_entries(bytes: &[u8], source: &str, format: Format) -> CliResult<Vec<Incoming>> {
    // (name as written, line, value)
    let raw: Vec<(String, usize, Zeroizing<String>)> = match format {
        Format::Env => dotenv::parse(bytes)
            .map_err(|e| CliError::new(format!("{source} is not a valid env file: {e}")).hint(
                "docs/runtime.md describes the format: NAME=value, quotes, # comments, export prefixes",
            ))?
            .into_iter()
            .map(|a| (a.name, a.line, a.value))
            .collect(),
        Format::Json => json::parse_flat_object(bytes)
            .map_err(|e| {
                CliError::new(format!("{source} is not a valid JSON import: {e}"))
                    .hint("it must be one object of names and string values: {\"stripe-secret-key\": \"…\"}")
            })?
            .into_iter()
            .map(|m| (m.name, m.at.line, m.value))
            .collect(),
    };
    let mut problems: Vec<String> = Vec::new();
    let mut out: Vec<(Incoming, String, usize)> = Vec::new();
    // Where each name first appeared in `out`: a lookup per line keeps the
    // import linear (a scan of `out` per line made 300,000 lines take
    // minutes).
    let mut first_of: std::collections::HashMap<SecretName, usize> =
        std::collections::HashMap::new();
    for (written, line, mut value) in raw {
        let name = match format {
            // Secret names as they are, or variable-style names.
            Format::Json => written
                .parse::<SecretName>()
                .or_else(|_| envname::secret_name(&written).map_err(|e| e.to_string())),
            Format::Env => envname::secret_name(&written).map_err(|e| e.to_string()),
        };
        let name = match name {
            Ok(n) => n,
            Err(why) => {
                problems.push(format!("line {line}: {written}: {why}"));
                continue;
            }
        };
        if let Some((_, first, first_line)) = first_of.get(&name).map(|&i| &out[i]) {
            problems.push(format!(
                "line {line}: {written} and {first} (line {first_line}) both name secret {name}"
            ));
            continue;
        }
        let value = match SecretValue::from_string(std::mem::take(&mut *value)) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("line {line}: {written}: {e}"));
                continue;
            }
        };
        first_of.insert(name.clone(), out.len());
        out.push((Incoming { name, value }, written, line));
    }
    if !problems.is_empty() {
        let n = problems.len();
        let mut msg = format!(
            "{n} entr{} in {source} cannot be imported:",
            render::pick(n, "y", "ies")
        );
        for p in &problems {
            msg.push_str("\n  ");
            msg.push_str(p);
        }
        return Err(CliError::new(msg)
            .hint("variables map to secret names as STRIPE_SECRET_KEY -> stripe-secret-key (3 to 63 characters)")
            .hint("fix or remove those entries; nothing was imported"));
    }
    let mut incoming: Vec<Incoming> = out.into_iter().map(|(i, _, _)| i).collect();
    incoming.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(incoming)
}

pub fn import(ctx: &Ctx, args: ImportArgs) -> CliResult {
    let vault_name: VaultName = args.vault.parse()?;
    let format = Format::pick(args.format, Some(&args.file));
    let store = ctx.store()?;
    let vault = store.vault(&vault_name)?;
    let (bytes, source) = read_input(Some(&args.file))?;
    let incoming = read_entries(&bytes, &source, format)?;
    drop(bytes);
    if incoming.is_empty() {
        ctx.ui
            .status(format!("{source} holds no entries: nothing to import."));
        return Ok(());
    }
    let ids = ctx.identities()?;
    let key = vault.unlock(&ids)?;
    // (name, '+' created, '~' updated, '=' unchanged)
    let mut outcome: Vec<(&SecretName, char)> = Vec::new();
    if args.dry_run {
        let read = vault.read()?;
        let existing: Vec<&SecretName> = incoming
            .iter()
            .map(|i| &i.name)
            .filter(|n| read.manifest().secrets.contains_key(*n))
            .collect();
        let stored: std::collections::HashMap<_, _> =
            read.get_many(&key, existing)?.into_iter().collect();
        for i in &incoming {
            let mark = match stored.get(&i.name).map(|v| (&i.name, v)) {
                None => '+',
                // A stored value that does not verify would be replaced.
                Some((_, Ok(old))) if old.ct_eq(&i.value) => '=',
                Some(_) => '~',
            };
            outcome.push((&i.name, mark));
        }
    } else {
        let mut w = vault.write()?;
        let now = Time::now();
        for i in &incoming {
            let mark = if w.manifest().secrets.contains_key(&i.name) {
                match w.update(&key, &i.name, &i.value, now)? {
                    Change::Changed => '~',
                    Change::Unchanged => '=',
                }
            } else {
                w.create(&key, &i.name, &i.value, now)?;
                '+'
            };
            outcome.push((&i.name, mark));
        }
        w.commit()?;
    }
    let count = |c: char| outcome.iter().filter(|(_, m)| *m == c).count();
    for (name, mark) in &outcome {
        ctx.ui.status(format!("{mark} {name}"));
    }
    let (created, updated, unchanged) = (count('+'), count('~'), count('='));
    if args.dry_run {
        ctx.ui.status(format!(
            "Dry run for vault {vault_name}: {created} to create, {updated} to update, {unchanged} unchanged; nothing was written."
        ));
    } else {
        ctx.ui.status(format!(
            "Imported into vault {vault_name}: {created} created, {updated} updated, {unchanged} unchanged."
        ));
    }
    Ok(())
}
