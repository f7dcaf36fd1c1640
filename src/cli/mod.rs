//! The command line: flags, the environment, dispatch and error reporting.
//!
//! This is the only part of coffer that reads the environment. It reads it
//! once, into [`Env`] (`env.rs`, the only file that calls `std::env`'s
//! readers), and hands the library typed requests.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use coffer::{Identities, IdentitySources, LockWait, Store};

/// `eprintln!` that never panics: stderr may be closed or its disk full,
/// and a status line is not worth a crash (or a half-written store).
macro_rules! errln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that never panics, then flushes (for prompts).
macro_rules! errp {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut e = std::io::stderr();
        let _ = write!(e, $($arg)*);
        let _ = e.flush();
    }};
}

mod common;
mod completion;
mod diff;
mod edit;
mod env;
mod error;
mod git;
pub mod harden;
mod inject;
mod keys;
mod platform;
mod recipients;
mod refs;
mod render;
mod resolve;
mod run;
mod scan;
mod secret;
#[cfg(feature = "sync")]
mod sync;
mod transfer;
mod ui;
mod vault;
mod verify;

use env::Env;
use error::{CliError, CliResult};
use ui::Ui;

/// An encrypted, local-first secret store for teams that keep their
/// secrets in git.
///
/// A store is a `vaults/` directory: one directory per vault, one
/// age-encrypted file per secret, and a plaintext manifest. The commands
/// mirror the Tailor Platform's `tailor-sdk secret` commands and work
/// offline.
#[derive(Parser, Debug)]
// `-V` is the vault everywhere (`-V/--vault-name`, as on the platform), so
// the version is `--version` alone.
#[command(
    name = "coffer",
    version,
    disable_version_flag = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug)]
struct GlobalArgs {
    /// The store directory, holding coffer.toml [default: $COFFER_STORE,
    /// else the nearest vaults/ from the current directory up]
    #[arg(long, global = true, value_name = "DIR")]
    store: Option<PathBuf>,

    /// An identity (private key) file to decrypt with; repeatable. When
    /// given, no other identity is used
    #[arg(short = 'i', long, global = true, value_name = "FILE")]
    identity: Vec<PathBuf>,

    /// Print no status messages (errors and warnings still go to stderr)
    #[arg(short, long, global = true)]
    quiet: bool,

    /// Print the version
    #[arg(long, action = clap::ArgAction::Version)]
    version: Option<bool>,

    /// Print data as one line of JSON (the commands that list or report)
    #[arg(short = 'j', long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate a new identity (private key) and print its public recipient
    Keygen(keys::KeygenArgs),
    /// Create a store (vaults/coffer.toml) with you as its first recipient
    Init(keys::InitArgs),
    /// Manage vaults
    #[command(subcommand)]
    Vault(vault::VaultCommand),
    /// Create a secret in a vault
    Create(secret::WriteArgs),
    /// Change the value of an existing secret
    Update(secret::WriteArgs),
    /// Print a secret's value
    Get(secret::GetArgs),
    /// List a vault's secrets (names and times, never values)
    List(secret::ListArgs),
    /// Delete a secret
    Delete(secret::DeleteArgs),
    /// Edit a vault (or one secret) in $VISUAL/$EDITOR and apply the changes
    ///
    /// Without -n, the vault opens as a dotenv document (what `export`
    /// writes); on save coffer shows the plan (`+` created, `~` updated,
    /// `-` deleted; never values) and applies only what changed, as one
    /// transaction. With -n, the one value opens as it is. The plaintext
    /// lives only in a private directory on a memory file system and is
    /// removed afterwards, whatever happens.
    Edit(edit::EditArgs),
    /// The platform's command tree: `coffer secret vault create --name V`,
    /// `coffer secret create -V V -n N`, `coffer secret list -V V`…
    ///
    /// The same commands as above, spelled as `tailor-sdk secret …` spells
    /// them, so that the platform's command lines work verbatim.
    Secret(platform::SecretTree),
    /// Manage who can open the vaults
    #[command(subcommand)]
    Recipients(recipients::RecipientsCommand),
    /// Re-encrypt vault keys where needed, or rotate them with --new-key
    Rekey(recipients::RekeyArgs),
    /// List the secrets due for rotation after someone was removed
    Rotation,
    /// Check the store's integrity (what CI runs on every pull request)
    Verify(verify::VerifyArgs),
    /// Push the store to the Tailor Platform's Secret Manager
    ///
    /// Computes a plan (vaults and secrets to create, update or leave; with
    /// --prune, remote ones the store lacks to delete), prints it without
    /// values, then applies it. Only changes are pushed: coffer remembers,
    /// outside the repository, a keyed digest of each value it pushed and
    /// the platform's update time. Reads TAILOR_PLATFORM_TOKEN,
    /// TAILOR_PLATFORM_WORKSPACE_ID and TAILOR_PLATFORM_URL (else
    /// PLATFORM_URL); see
    /// docs/sync.md.
    #[cfg(feature = "sync")]
    Sync(sync::SyncArgs),
    /// Show what changed between two states of the store (values masked)
    Diff(diff::DiffArgs),
    /// Set up git: decrypted diffs, secret-level merges, a pre-commit hook
    #[command(subcommand)]
    Git(git::GitCommand),
    /// Find files that contain the value of a secret
    Scan(scan::ScanArgs),
    /// Run a program with secrets in its environment
    Run(run::RunArgs),
    /// Replace {"vault", "key"} references in a JSON document with values
    Resolve(resolve::ResolveArgs),
    /// Fill a config-file template's {{ coffer://VAULT/SECRET }} references
    Inject(inject::InjectArgs),
    /// Find { vault, key } references in source files and check them
    #[command(subcommand)]
    Refs(refs::RefsCommand),
    /// Write a vault's secrets as a dotenv or JSON file
    Export(transfer::ExportArgs),
    /// Create and update secrets from a dotenv or JSON file
    Import(transfer::ImportArgs),
    /// Print shell completions
    Completions(completion::CompletionsArgs),
    /// Print a man page (roff): coffer's, or a command's (`coffer man create`)
    Man(completion::ManArgs),
}

/// Everything a command needs: the parsed global flags, the environment
/// and the output settings.
pub struct Ctx {
    pub env: Env,
    pub ui: Ui,
    /// Where data goes, and in which format.
    pub out: render::Out,
    store: Option<PathBuf>,
    identity: Vec<PathBuf>,
    pub callbacks: ui::TermCallbacks,
}

impl Ctx {
    /// The store directory the user asked for, if they did.
    pub fn requested_store(&self) -> Option<PathBuf> {
        self.store
            .clone()
            .or_else(|| self.env.coffer_store.clone())
            .map(|p| {
                if p.is_absolute() {
                    p
                } else {
                    self.env.cwd.join(p)
                }
            })
    }

    /// Opens the store: `--store`, `COFFER_STORE`, else discovery.
    pub fn store(&self) -> CliResult<Store> {
        let dir = match self.requested_store() {
            Some(d) => d,
            None => Store::discover(&self.env.cwd, &self.env.safe_directories)?,
        };
        let mut store = Store::open(&dir)?;
        let ui = self.ui;
        let mut wait = LockWait {
            on_wait: Some(Arc::new(move |path| {
                ui.status(format!(
                    "waiting for another coffer process to release {}…",
                    path.display()
                ));
            })),
            ..LockWait::default()
        };
        if let Some(t) = self.env.lock_timeout {
            wait.timeout = t;
        }
        store.set_lock_wait(wait);
        if let Some(d) = self.env.trust_dir() {
            store.set_trust_dir(d);
        }
        Ok(store)
    }

    /// Where identities are looked for.
    pub fn identity_sources(&self) -> IdentitySources {
        IdentitySources {
            flags: self
                .identity
                .iter()
                .map(|p| {
                    if p.is_absolute() {
                        p.clone()
                    } else {
                        self.env.cwd.join(p)
                    }
                })
                .collect(),
            env_key: self.env.coffer_age_key.clone(),
            env_path: self.env.coffer_identity.clone(),
            default_file: self.env.default_identity(),
            ssh_dir: self.env.home.as_ref().map(|h| h.join(".ssh")),
        }
    }

    /// Loads the user's identities, possibly none, warning about any file
    /// that was skipped (an SSH key readable by others, say).
    pub fn load_identities(&self) -> CliResult<Identities> {
        self.load_identities_noting_demo().map(|(ids, _)| ids)
    }

    /// Loads the user's identities, and says whether the published demo
    /// identity was among them and set aside (see [`Ctx::is_sample_store`]).
    pub fn load_identities_noting_demo(&self) -> CliResult<(Identities, bool)> {
        let mut ids = Identities::load(&self.identity_sources(), self.callbacks.clone())?;
        for s in ids.skipped() {
            self.ui.warn(format!("an identity file was {s}"));
        }
        let mut demo = false;
        // Opening the store to ask is needed only when the demo key is here.
        let has_demo = ids.recipients().iter().any(|r| r.is_published_demo());
        if has_demo && !self.is_sample_store() {
            for place in ids.set_aside_published_demo() {
                demo = true;
                self.ui.warn(format!(
                    "{place} holds coffer's published demo identity: it is used only for the sample store, whose values anyone can read"
                ));
            }
        }
        Ok((ids, demo))
    }

    /// Whether the store in use is a sample store: one whose only recipient
    /// is coffer's published demo key. Anywhere else, the demo identity is
    /// set aside, so that it can never open, or be made a recipient of, a
    /// real store.
    pub fn is_sample_store(&self) -> bool {
        let dir = match self.requested_store() {
            Some(d) => d,
            None => match Store::discover(&self.env.cwd, &self.env.safe_directories) {
                Ok(d) => d,
                Err(_) => return false,
            },
        };
        Store::open(&dir).is_ok_and(|s| {
            let r = s.config().recipients();
            !r.is_empty() && r.values().all(|m| m.key.is_published_demo())
        })
    }

    /// Loads the user's identities; an error if there are none at all.
    pub fn identities(&self) -> CliResult<Identities> {
        let ids = self.load_identities()?;
        if ids.is_empty() {
            return Err(coffer::Error::NoIdentity { tried: ids.tried() }.into());
        }
        Ok(ids)
    }
}

/// The commands that print data `--json` can shape: lists and reports.
fn offers_json(command: &Command) -> bool {
    match command {
        Command::List(_)
        | Command::Verify(_)
        | Command::Rotation
        | Command::Diff(_)
        | Command::Scan(_) => true,
        #[cfg(feature = "sync")]
        Command::Sync(_) => true,
        Command::Vault(c) => vault::offers_json(c),
        Command::Secret(t) => platform::offers_json(t),
        Command::Recipients(c) => recipients::offers_json(c),
        Command::Refs(_) => true,
        _ => false,
    }
}

fn run(cli: Cli, ctx: &Ctx) -> CliResult {
    match cli.command {
        Command::Keygen(a) => keys::keygen(ctx, a),
        Command::Init(a) => keys::init(ctx, a),
        Command::Vault(c) => vault::run(ctx, c),
        Command::Create(a) => secret::create(ctx, a),
        Command::Update(a) => secret::update(ctx, a),
        Command::Get(a) => secret::get(ctx, a),
        Command::List(a) => secret::list(ctx, a),
        Command::Delete(a) => secret::delete(ctx, a),
        Command::Edit(a) => edit::edit(ctx, a),
        Command::Secret(t) => platform::run(ctx, t),
        Command::Recipients(c) => recipients::run(ctx, c),
        Command::Rekey(a) => recipients::rekey(ctx, a),
        Command::Rotation => recipients::rotation(ctx),
        Command::Verify(a) => verify::verify(ctx, a),
        #[cfg(feature = "sync")]
        Command::Sync(a) => sync::sync(ctx, a),
        Command::Diff(a) => diff::diff(ctx, a),
        Command::Git(c) => git::run(ctx, c),
        Command::Scan(a) => scan::scan(ctx, a),
        Command::Run(a) => run::run(ctx, a),
        Command::Resolve(a) => resolve::resolve(ctx, a),
        Command::Inject(a) => inject::inject(ctx, a),
        Command::Refs(c) => refs::run(ctx, c),
        Command::Export(a) => transfer::export(ctx, a),
        Command::Import(a) => transfer::import(ctx, a),
        Command::Completions(a) => completion::completions(ctx, a),
        Command::Man(a) => completion::man(ctx, a),
    }
}

/// Refuses to encrypt to coffer's published demo key anywhere but in the
/// sample store: anyone can read what is encrypted to it.
pub fn refuse_published_demo(ctx: &Ctx, who: &str, key: &coffer::RecipientKey) -> CliResult {
    if key.is_published_demo() && !ctx.is_sample_store() {
        return Err(CliError::new(format!(
            "recipient {who} is coffer's published demo key: anyone can decrypt what is encrypted to it"
        ))
        .hint("the demo identity is for the sample store in coffer's repository only; use your own key (`coffer keygen`)")
        .hint(format!(
            "if {} lists it, remove that entry",
            coffer::store::layout::CONFIG_FILE
        )));
    }
    Ok(())
}

/// The subcommand words of a parsed command line (`vault delete`).
fn command_path(m: &clap::ArgMatches) -> String {
    let mut words = Vec::new();
    let mut m = m;
    while let Some((name, sub)) = m.subcommand() {
        words.push(name.to_owned());
        m = sub;
    }
    words.join(" ")
}

/// Returns the clap command, for completions and the man page.
pub fn command() -> clap::Command {
    Cli::command()
}

pub fn main() -> ExitCode {
    harden::harden();
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, command_path(&m))));
    let (cli, path) = match parsed {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors to
            // stderr with status 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    if cli.global.json && !offers_json(&cli.command) {
        errp!(
            "{}",
            CliError::new(format!("`coffer {path}` has no JSON output"))
                .hint("--json works with the commands that list or report: list, vault list, recipients list, rotation, verify, diff, scan, refs check and sync")
                .render()
        );
        return ExitCode::from(2);
    }
    let env = Env::read();
    env::restrict_path(&env);
    let ctx = Ctx {
        env,
        ui: Ui {
            quiet: cli.global.quiet,
        },
        out: render::Out::new(cli.global.json),
        store: cli.global.store.clone(),
        identity: cli.global.identity.clone(),
        callbacks: ui::TermCallbacks::default(),
    };
    match run(cli, &ctx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errp!("{}", e.render());
            ExitCode::from(e.code)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[test]
    fn clap_definition_is_consistent() {
        super::command().debug_assert();
    }

    /// Splits a documented command line into words: quotes group, `#`
    /// starts a comment, and what the shell would do with `<`, `>`, `|`,
    /// `&&` or `$(…)` ends the command.
    fn words(line: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut quote = None;
        let mut started = false;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => cur.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    started = true;
                }
                (None, '#') if !started || cur.is_empty() => break,
                (None, '<' | '>' | '|' | '&' | ';' | '$' | '(' | ')') => break,
                (None, c) if c.is_whitespace() => {
                    if started {
                        out.push(std::mem::take(&mut cur));
                        started = false;
                    }
                }
                (None, c) => {
                    cur.push(c);
                    started = true;
                }
            }
        }
        if started {
            out.push(cur);
        }
        out
    }

    /// Every `coffer …` line in a shell block of the README and the docs
    /// parses with today's flags, so that the docs cannot drift from the
    /// command line (the blocks that show output are run for real by
    /// `tests/cli/docs.rs`).
    #[test]
    fn every_command_line_in_the_docs_parses() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![root.join("README.md")];
        let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        docs.sort();
        files.extend(docs);
        let mut checked = 0;
        let mut bad = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let mut in_shell = false;
            for (i, line) in text.lines().enumerate() {
                let t = line.trim_start();
                if let Some(info) = t.strip_prefix("```") {
                    in_shell = !in_shell && matches!(info, "sh" | "bash" | "console" | "shell");
                    continue;
                }
                if !in_shell {
                    continue;
                }
                let t = t.strip_prefix("$ ").unwrap_or(t);
                // The commands of a line: `a && b`, `a; b`, `(…)`.
                for part in t.split("&&").flat_map(|p| p.split(';')) {
                    let p = part.trim().trim_start_matches('(').trim();
                    let p = p
                        .strip_prefix("cargo run -q -- ")
                        .map(|r| format!("coffer {r}"));
                    let p = p.as_deref().unwrap_or(part.trim().trim_start_matches('('));
                    if !p.starts_with("coffer ") && p != "coffer" {
                        continue;
                    }
                    // `[--flag]` is the docs' notation for an optional flag.
                    let w: Vec<String> = words(p)
                        .into_iter()
                        .filter(|x| !(x.starts_with('[') && x.ends_with(']')))
                        .collect();
                    // Placeholders stand for a value of the user's.
                    if w.iter().any(|x| x.contains('…')) {
                        continue;
                    }
                    checked += 1;
                    if let Err(e) = super::Cli::try_parse_from(&w) {
                        let first = e.to_string().lines().next().unwrap_or("").to_owned();
                        bad.push(format!(
                            "{}:{}: {p}\n    {first}",
                            file.strip_prefix(root).unwrap_or(&file).display(),
                            i + 1
                        ));
                    }
                }
            }
        }
        assert!(checked >= 40, "only {checked} command lines found");
        assert!(
            bad.is_empty(),
            "documented command lines that do not parse:\n{}",
            bad.join("\n")
        );
    }
}
