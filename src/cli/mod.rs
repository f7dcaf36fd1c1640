//! The command line: flags, the environment, dispatch and error reporting.
//!
//! This is the only part of coffer that reads the environment. It reads it
//! once, into [`Env`], and hands the library typed requests.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use coffer::{Identities, IdentitySources, LockWait, Store};
use secrecy::SecretString;

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

mod completion;
mod diff;
mod edit;
mod error;
mod git;
pub mod harden;
mod inject;
mod keys;
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
#[command(name = "coffer", version, max_term_width = 100)]
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
    /// TAILOR_PLATFORM_WORKSPACE_ID and TAILOR_PLATFORM_URL; see
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
    /// Print the man page (roff)
    Man,
}

/// The environment, read once at start-up.
#[derive(Default)]
pub struct Env {
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
    pub xdg_config_home: Option<PathBuf>,
    pub coffer_store: Option<PathBuf>,
    pub coffer_age_key: Option<SecretString>,
    pub coffer_identity: Option<PathBuf>,
    pub user: Option<String>,
    /// `PATH`, to find `git` (absolute entries only).
    pub path: Option<OsString>,
    /// `COFFER_SHOW_VALUES`: decrypted values in `git diff`.
    pub show_values: bool,
    /// `COFFER_LOCK_TIMEOUT`, in seconds: how long to wait for another
    /// coffer process before giving up (default 30).
    pub lock_timeout: Option<std::time::Duration>,
    // `coffer edit` (src/cli/edit.rs): the editor, as git picks it
    // (`VISUAL`, else `EDITOR`, else `vi`), and where its plaintext file
    // may live (`XDG_RUNTIME_DIR`, a per-user memory file system).
    pub visual: Option<OsString>,
    pub editor: Option<OsString>,
    pub xdg_runtime_dir: Option<PathBuf>,
}

fn non_empty(v: Option<OsString>) -> Option<OsString> {
    v.filter(|s| !s.is_empty())
}

impl Env {
    fn read() -> Env {
        let var = |k: &str| non_empty(std::env::var_os(k));
        Env {
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
            home: var("HOME").map(PathBuf::from),
            xdg_config_home: var("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute()),
            coffer_store: var("COFFER_STORE").map(PathBuf::from),
            coffer_age_key: std::env::var("COFFER_AGE_KEY")
                .ok()
                .filter(|s| !s.trim().is_empty())
                .map(SecretString::from),
            coffer_identity: var("COFFER_IDENTITY").map(PathBuf::from),
            lock_timeout: std::env::var("COFFER_LOCK_TIMEOUT")
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(std::time::Duration::from_secs_f64),
            user: std::env::var("USER")
                .ok()
                .or_else(|| std::env::var("LOGNAME").ok())
                .filter(|s| !s.is_empty()),
            path: var("PATH"),
            visual: var("VISUAL"),
            editor: var("EDITOR"),
            xdg_runtime_dir: var("XDG_RUNTIME_DIR").map(PathBuf::from),
            show_values: var("COFFER_SHOW_VALUES")
                .is_some_and(|v| matches!(v.to_str(), Some("1" | "true" | "yes"))),
        }
    }

    /// `$XDG_CONFIG_HOME/coffer`, else `~/.config/coffer`.
    pub fn config_dir(&self) -> Option<PathBuf> {
        self.xdg_config_home
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".config")))
            .map(|d| d.join("coffer"))
    }

    /// The default identity file.
    pub fn default_identity(&self) -> Option<PathBuf> {
        self.config_dir().map(|d| d.join("identity.txt"))
    }
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
            None => Store::discover(&self.env.cwd)?,
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
        let ids = Identities::load(&self.identity_sources(), self.callbacks.clone())?;
        for s in ids.skipped() {
            self.ui.warn(format!("an identity file was {s}"));
        }
        Ok(ids)
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
        Command::Man => completion::man(ctx),
    }
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
    let ctx = Ctx {
        env: Env::read(),
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
    #[test]
    fn clap_definition_is_consistent() {
        super::command().debug_assert();
    }
}
