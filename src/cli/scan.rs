//! `coffer scan`: files that contain the value of a secret.

use std::path::PathBuf;

use clap::Args;
use coffer::SecretValue;
use coffer::git::Git;
use coffer::runtime::scan::{Finding, MAX_FILE_LEN, MIN_LEN, Scanner, SecretRef, scan_tree};
use serde::Serialize;

use super::Ctx;
use super::common::git_program;
use super::error::{CliError, CliResult};
use super::render;

#[derive(Args, Debug)]
pub struct ScanArgs {
    /// The directory or file to scan [default: the top of the git work
    /// tree, else the current directory]
    #[arg(value_name = "PATH", conflicts_with = "staged")]
    path: Option<PathBuf>,
    /// Scan what is staged for the next commit (the pre-commit hook)
    #[arg(long)]
    staged: bool,
    /// Succeed with nothing to look for when no vault opens for you (a
    /// contributor's machine); without it, that is an error, so a hook
    /// cannot pass by searching for nothing
    #[arg(long)]
    allow_no_key: bool,
}

/// Decrypts every value the user can read, one vault key per vault. When
/// the store holds values and none of its vaults opens, there is nothing to
/// look for: an error unless `allow_no_key`.
fn values(ctx: &Ctx, allow_no_key: bool) -> CliResult<Vec<(SecretRef, SecretValue)>> {
    let store = ctx.store()?;
    let ids = ctx.load_identities()?;
    let mut out = Vec::new();
    let mut holding = Vec::new();
    for v in store.vault_names()? {
        if !store.vault(&v)?.read()?.manifest().secrets.is_empty() {
            holding.push(v);
        }
    }
    let mut opened = 0;
    for v in &holding {
        if ids.is_empty() {
            break;
        }
        let v = v.clone();
        let vault = store.vault(&v)?;
        let key = match vault.unlock(&ids) {
            Ok(k) => k,
            Err(coffer::Error::NoMatchingIdentity { .. }) => continue,
            Err(e) => {
                ctx.ui.warn(format!("vault {v} not searched for: {e}"));
                continue;
            }
        };
        opened += 1;
        let read = vault.read()?;
        for name in read.manifest().secrets.keys() {
            match read.get(&key, name) {
                Ok(value) => out.push((
                    SecretRef {
                        vault: v.clone(),
                        name: name.clone(),
                    },
                    value,
                )),
                Err(e) => ctx.ui.warn(format!("{v}/{name} not searched for: {e}")),
            }
        }
    }
    if opened == 0 && !holding.is_empty() {
        let why = if ids.is_empty() {
            "no identity was found"
        } else {
            "none of your identities opens them"
        };
        if allow_no_key {
            ctx.ui.warn(format!(
                "nothing to look for: {why}, so no vault could be opened"
            ));
        } else {
            return Err(CliError::new(format!(
                "no vault could be opened ({why}), so there are no values to look for"
            ))
            .hint("scan looks for the values you can read: run it where a recipient's identity is (`coffer recipients list` shows who)")
            .hint("if that is expected here (a contributor's machine), pass --allow-no-key"));
        }
    }
    Ok(out)
}

#[derive(Serialize)]
struct FindingJson {
    path: String,
    line: usize,
    vault: String,
    secret: String,
}

pub fn scan(ctx: &Ctx, args: ScanArgs) -> CliResult {
    let scanner = Scanner::new(values(ctx, args.allow_no_key)?)?;
    let skipped = scanner.skipped();
    if !skipped.is_empty() {
        let names: Vec<String> = skipped.iter().map(|s| s.to_string()).collect();
        ctx.ui.status(format!(
            "note: not looking for {} value{} shorter than {MIN_LEN} characters (too many false matches): {}",
            skipped.len(),
            render::s(skipped.len()),
            names.join(", ")
        ));
    }
    let findings = if args.staged {
        scan_staged(ctx, &scanner)?
    } else {
        scan_path(ctx, &scanner, args.path)?
    };
    if ctx.out.json() {
        let rows: Vec<FindingJson> = findings
            .iter()
            .map(|f| FindingJson {
                path: f.path.display().to_string(),
                line: f.line,
                vault: f.secret.vault.to_string(),
                secret: f.secret.name.to_string(),
            })
            .collect();
        ctx.out.json_doc(&rows)?;
    } else {
        let mut out = String::new();
        for f in &findings {
            out.push_str(&format!(
                "{}:{}: {}\n",
                render::esc_path(&f.path),
                f.line,
                f.secret
            ));
        }
        ctx.out.bytes(out.as_bytes())?;
    }
    if findings.is_empty() {
        ctx.ui
            .status(format!("No values found ({} searched for).", scanner.len()));
        return Ok(());
    }
    let files: std::collections::BTreeSet<&PathBuf> = findings.iter().map(|f| &f.path).collect();
    let secrets: std::collections::BTreeSet<&SecretRef> =
        findings.iter().map(|f| &f.secret).collect();
    let err = CliError::new(format!(
        "found the value of {} secret{} in {} file{}",
        secrets.len(),
        render::s(secrets.len()),
        files.len(),
        render::s(files.len()),
    ))
    .hint("take the values out of those files (read them from coffer at run time instead)");
    Err(if args.staged {
        err.hint("then `git add` the files again (as the pre-commit hook, this stopped the commit)")
    } else {
        err.hint("a value that was ever committed or shared is exposed: give it a new value with `coffer update`")
    })
}

fn scan_path(ctx: &Ctx, scanner: &Scanner, path: Option<PathBuf>) -> CliResult<Vec<Finding>> {
    let (root, shown) = match path {
        Some(p) => {
            let abs = if p.is_absolute() {
                p.clone()
            } else {
                ctx.env.cwd.join(&p)
            };
            (abs, Some(p))
        }
        None => {
            let top = git_program(ctx)
                .ok()
                .and_then(|g| Git::new(g, ctx.env.cwd.clone()).toplevel().ok());
            (top.unwrap_or_else(|| ctx.env.cwd.clone()), None)
        }
    };
    if !root.exists() {
        return Err(CliError::new(format!("{} does not exist", root.display())));
    }
    let (mut findings, unreadable) = scan_tree(&root, scanner)?;
    for p in unreadable {
        ctx.ui
            .warn(format!("could not read {}", render::esc_path(&p)));
    }
    if let Some(shown) = shown {
        for f in &mut findings {
            f.path = if f.path.as_os_str().is_empty() {
                shown.clone()
            } else {
                shown.join(&f.path)
            };
        }
    }
    Ok(findings)
}

fn scan_staged(ctx: &Ctx, scanner: &Scanner) -> CliResult<Vec<Finding>> {
    let git = Git::new(git_program(ctx)?, ctx.env.cwd.clone());
    let top = git.toplevel()?;
    let git = git.in_dir(top);
    let files: Vec<_> = git
        .staged_files()?
        .into_iter()
        .filter(|e| e.is_file())
        .collect();
    if scanner.is_empty() || files.is_empty() {
        return Ok(Vec::new());
    }
    let oids: Vec<String> = files.iter().map(|e| e.oid.clone()).collect();
    let blobs = git.read_blobs(&oids, MAX_FILE_LEN)?;
    let mut findings = Vec::new();
    for (entry, blob) in files.iter().zip(blobs) {
        let Some(bytes) = blob else {
            ctx.ui.warn(format!("{} is too large to scan", entry.path));
            continue;
        };
        for (line, secret) in scanner.find(&bytes) {
            findings.push(Finding {
                path: PathBuf::from(&entry.path),
                line,
                secret,
            });
        }
    }
    Ok(findings)
}
