//! `coffer refs check`: find `{ vault, key }` references in a source tree
//! and check that each names a secret that exists.
//!
//! Existence comes from the manifests alone, so no key is needed: CI can
//! run it on every pull request.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use coffer::Store;
use coffer::runtime::json::Position;
use coffer::runtime::refs::{self, SourceKind};
use coffer::runtime::scan::{Hidden, Walked, walk_files};

use serde::Serialize;

use super::Ctx;
use super::common::{Names, Status, describe};
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
    let (report, files) = collect(ctx, &store, &paths)?;
    print_report(ctx, &report)?;
    verdict(ctx, &report, files)
}

/// Finds the references in the files under `paths` and checks each
/// against the manifests. Returns them, and how many files were read.
fn collect(ctx: &Ctx, store: &Store, paths: &[PathBuf]) -> CliResult<(JsonReport, usize)> {
    let mut names = Names::new(store);
    let mut report = JsonReport {
        references: Vec::new(),
        unchecked: Vec::new(),
        dangling: 0,
    };
    let mut files = 0usize;
    for walked in walk_files(paths, Hidden::Skip) {
        let (path, depth, len) = match walked {
            Walked::File { path, depth, len } => (path, depth, len),
            Walked::Error { message, .. } => {
                ctx.ui.warn(format!("skipped: {message}"));
                continue;
            }
        };
        // Files named on the command line are read whatever they are called.
        let kind = match SourceKind::for_path(&path) {
            Some(k) => k,
            None if depth == 0 => SourceKind::Script,
            None => continue,
        };
        let Some(bytes) = read_source(ctx, &path, len) else {
            continue;
        };
        files += 1;
        let found = refs::scan(kind, &bytes);
        let file = display(&path);
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
    Ok((report, files))
}

/// Reads a source file, or warns and skips it (too large, unreadable).
fn read_source(ctx: &Ctx, path: &Path, len: Option<u64>) -> Option<Vec<u8>> {
    if len.is_some_and(|l| l > MAX_FILE_LEN) {
        ctx.ui.warn(format!(
            "skipped {}: it is larger than {} MiB",
            display(path),
            MAX_FILE_LEN >> 20
        ));
        return None;
    }
    match std::fs::read(path) {
        Ok(b) => Some(b),
        Err(e) => {
            ctx.ui.warn(format!("skipped {}: {e}", display(path)));
            None
        }
    }
}

/// Prints every reference (stdout) and every place that cannot be
/// checked (stderr), or the whole report as JSON.
fn print_report(ctx: &Ctx, report: &JsonReport) -> CliResult {
    if ctx.out.json() {
        ctx.out.json_doc(report)?;
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
    Ok(())
}

/// Fails if any reference dangles; else says how many were found.
fn verdict(ctx: &Ctx, report: &JsonReport, files: usize) -> CliResult {
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
