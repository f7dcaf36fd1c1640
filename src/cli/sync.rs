//! `coffer sync`: push the store to the Tailor Platform's Secret Manager.
//!
//! Stdout gets the plan (or, with `--json`, one JSON document at the
//! end); stderr gets warnings, the progress bar, failures and the
//! summary. Values and the token never reach either.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use coffer::sync::client::{Client, ClientConfig, Counts, Retry};
use coffer::sync::{
    self, Action, Code, DEFAULT_PLATFORM_URL, DEFAULT_WORKERS, LocalSecret, Outcome, Plan,
    PlatformUrl, RemoteError, Scope, SkipReason, State, Step, WorkspaceId,
};
use coffer::{LockWait, VaultName};
use secrecy::SecretString;
use serde::Serialize;

use super::Ctx;
use super::error::{CliError, CliResult, remote_hints};
use super::ui;

/// Above this many deletions, a prune asks first (or needs `--yes`).
const PRUNE_ASK_ABOVE: usize = 3;

/// Below this many writes, no progress bar.
const PROGRESS_FROM: usize = 20;

#[derive(Args, Debug)]
pub struct SyncArgs {
    /// Sync only this vault; repeatable [default: every vault]
    #[arg(
        short = 'V',
        long = "vault-name",
        visible_alias = "vault",
        value_name = "VAULT"
    )]
    vaults: Vec<String>,
    /// The platform workspace (a UUID) [default: $TAILOR_PLATFORM_WORKSPACE_ID]
    #[arg(short = 'w', long, value_name = "UUID")]
    workspace_id: Option<String>,
    /// Print the plan and change nothing
    #[arg(long)]
    dry_run: bool,
    /// Also delete remote secrets (and, without -V, vaults) that the store
    /// does not have. Without it nothing is ever deleted
    #[arg(long)]
    prune: bool,
    /// Prune without asking (needed when stdin is not a terminal and more
    /// than 3 things would be deleted)
    #[arg(short, long)]
    yes: bool,
    /// Print the plan and the outcome as one JSON document
    #[arg(short, long)]
    json: bool,
}

/// The environment `sync` reads, once.
struct SyncEnv {
    url: Option<String>,
    token: Option<SecretString>,
    workspace: Option<String>,
    state_dir: Option<PathBuf>,
    xdg_state_home: Option<PathBuf>,
    retry_base_ms: Option<u64>,
}

impl SyncEnv {
    fn read() -> SyncEnv {
        let var = |k: &str| std::env::var(k).ok().filter(|s| !s.trim().is_empty());
        SyncEnv {
            url: var("TAILOR_PLATFORM_URL"),
            token: var("TAILOR_PLATFORM_TOKEN").map(|t| SecretString::from(t.trim().to_owned())),
            workspace: var("TAILOR_PLATFORM_WORKSPACE_ID"),
            state_dir: var("COFFER_SYNC_STATE_DIR").map(PathBuf::from),
            xdg_state_home: var("XDG_STATE_HOME")
                .map(PathBuf::from)
                .filter(|p| p.is_absolute()),
            retry_base_ms: var("COFFER_SYNC_RETRY_BASE_MS").and_then(|s| s.parse().ok()),
        }
    }

    /// `$COFFER_SYNC_STATE_DIR`, else `$XDG_STATE_HOME/coffer/sync`, else
    /// `~/.local/state/coffer/sync`.
    fn state_dir(&self, ctx: &Ctx) -> CliResult<PathBuf> {
        if let Some(d) = &self.state_dir {
            return Ok(if d.is_absolute() {
                d.clone()
            } else {
                ctx.env.cwd.join(d)
            });
        }
        self.xdg_state_home
            .clone()
            .or_else(|| ctx.env.home.as_ref().map(|h| h.join(".local/state")))
            .map(|d| d.join("coffer/sync"))
            .ok_or_else(|| {
                CliError::new("found no directory for the sync state: HOME is not set")
                    .hint("set COFFER_SYNC_STATE_DIR (or XDG_STATE_HOME) to a directory outside the repository")
            })
    }
}

/// Turns a failed platform read into an error with hints.
fn remote_error(context: &str, e: &RemoteError) -> CliError {
    let mut err = CliError::new(format!("{context}: {e}"));
    for h in remote_hints(e.code) {
        err = err.hint(h);
    }
    err
}

pub fn sync(ctx: &Ctx, args: SyncArgs) -> CliResult {
    // Parse and validate everything before touching the store or network.
    let mut vaults: Vec<VaultName> = args
        .vaults
        .iter()
        .map(|v| v.parse())
        .collect::<Result<_, _>>()?;
    vaults.sort();
    vaults.dedup();
    let env = SyncEnv::read();
    let workspace: WorkspaceId = match args.workspace_id.as_deref().or(env.workspace.as_deref()) {
        Some(w) => w.parse()?,
        None => {
            return Err(CliError::new("no workspace given")
                .hint("pass --workspace-id UUID or set TAILOR_PLATFORM_WORKSPACE_ID"));
        }
    };
    let url: PlatformUrl = env.url.as_deref().unwrap_or(DEFAULT_PLATFORM_URL).parse()?;
    let Some(token) = env.token.clone() else {
        return Err(CliError::new("no platform token: TAILOR_PLATFORM_TOKEN is not set").hint(
            "create a token that may write (`tailor-sdk user pat create NAME --write`) and export it as TAILOR_PLATFORM_TOKEN",
        ));
    };
    let retry = Retry {
        base: env
            .retry_base_ms
            .map_or(Retry::default().base, Duration::from_millis),
        ..Retry::default()
    };
    let client = Client::new(ClientConfig {
        url: url.clone(),
        token,
        workspace: workspace.clone(),
        retry,
        timeout: Duration::from_secs(60),
    })?;

    let store = ctx.store()?;
    let names = if vaults.is_empty() {
        store.vault_names()?
    } else {
        for v in &vaults {
            store.vault(v)?;
        }
        vaults.clone()
    };
    let state_dir = env.state_dir(ctx)?;
    if let Ok(root) = store.root().canonicalize()
        && state_dir.starts_with(&root)
    {
        return Err(CliError::new(format!(
            "refusing to keep the sync state inside the store ({})",
            state_dir.display()
        ))
        .hint("point COFFER_SYNC_STATE_DIR outside the repository"));
    }

    let ids = ctx.identities()?;
    let local = sync::read_local(&store, &names, &ids, &workspace)?;
    let ui = ctx.ui;
    let wait = LockWait {
        on_wait: Some(Arc::new(move |path: &Path| {
            ui.status(format!(
                "waiting for another coffer sync to release {}…",
                path.display()
            ));
        })),
        ..LockWait::default()
    };
    let mut state = State::open(&state_dir, &url, &workspace, store.root(), &wait)?;
    if state.was_damaged() {
        ctx.ui
            .warn("the sync state file could not be read; every secret will be pushed once more");
    }

    let scope = Scope {
        prune: args.prune,
        all_vaults: vaults.is_empty(),
    };
    let snapshot = sync::fetch(&client, &local, scope, DEFAULT_WORKERS)
        .map_err(|e| remote_error("could not read the workspace", &e))?;
    let plan = sync::plan(&local, &snapshot, &state, scope);

    if !args.json {
        ctx.ui.data(render_plan(&plan).as_bytes())?;
    }
    warn_about(ctx, &plan, &local);
    let failed_verification = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Skip(SkipReason::FailedVerification(_))))
        .count();

    if args.dry_run {
        let counts = client.counts();
        if args.json {
            print_json(ctx, &workspace, &url, true, &plan, None, counts)?;
        }
        ctx.ui.status(format!(
            "Dry run: {}; nothing was changed ({}).",
            describe_writes(&plan),
            plural(counts.requests as usize, "read request", "read requests")
        ));
        return verification_result(failed_verification);
    }

    let deletions = plan.deletions();
    if deletions > PRUNE_ASK_ABOVE && !args.yes {
        confirm_prune(deletions)?;
    }

    let writes = plan.writes();
    let bar = (writes >= PROGRESS_FROM && !ctx.ui.quiet && io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(writes as u64);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}")
        {
            bar.set_style(style);
        }
        bar
    });
    let outcomes = sync::apply(
        &client,
        &local,
        &plan,
        &mut state,
        DEFAULT_WORKERS,
        &|step, _| {
            if let Some(b) = &bar {
                b.set_message(display_path(step));
                b.inc(1);
            }
        },
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let saved = state.save();
    let counts = client.counts();

    if args.json {
        print_json(ctx, &workspace, &url, false, &plan, Some(&outcomes), counts)?;
    }
    let mut failed = Vec::new();
    for (step, outcome) in plan.steps.iter().zip(&outcomes) {
        match outcome {
            Some(Outcome::Failed(e)) => failed.push((step, e.code)),
            Some(Outcome::Applied(Some(note))) => ctx.ui.status(format!(
                "note: {} {}: {note}",
                step.action.marker(),
                step.path()
            )),
            _ => {}
        }
        match outcome {
            Some(Outcome::Failed(e)) => errln!(
                "failed: {} {}: {e}",
                step.action.marker(),
                display_path(step)
            ),
            Some(Outcome::NotAttempted(why)) => errln!(
                "not attempted: {} {}: {why}",
                step.action.marker(),
                display_path(step)
            ),
            _ => {}
        }
    }
    let not_applied = outcomes
        .iter()
        .filter(|o| matches!(o, Some(Outcome::Failed(_) | Outcome::NotAttempted(_))))
        .count();
    let applied = writes - not_applied;
    ctx.ui.status(format!(
        "Synced to workspace {workspace}: {} ({}, {}).",
        describe_results(&plan, &outcomes),
        plural(counts.requests as usize, "request", "requests"),
        plural(counts.writes as usize, "write", "writes")
    ));
    if let Err(e) = saved {
        return Err(CliError::new(format!("could not save the sync state: {e}"))
            .hint("the changes were pushed; the next sync will push them once more"));
    }
    if not_applied > 0 {
        let be = |n: usize| if n == 1 { "was" } else { "were" };
        let mut err = CliError::new(format!(
            "{not_applied} of {} {} not applied ({applied} {})",
            plural(writes, "change", "changes"),
            be(not_applied),
            be(applied)
        ));
        let mut codes: Vec<Code> = failed.iter().map(|(_, c)| *c).collect();
        codes.dedup();
        for code in codes {
            for h in remote_hints(code) {
                err = err.hint(h);
            }
        }
        return Err(
            err.hint("run `coffer sync` again to finish: it pushes only what is still missing")
        );
    }
    verification_result(failed_verification)
}

fn verification_result(failed: usize) -> CliResult {
    if failed == 0 {
        return Ok(());
    }
    Err(CliError::new(format!(
        "{failed} secret{} failed verification and {} not pushed",
        if failed == 1 { "" } else { "s" },
        if failed == 1 { "was" } else { "were" }
    ))
    .hint("`coffer verify` reports every problem in the store")
    .hint("restore the files from git, or set a new value with `coffer update`"))
}

/// `vault/` for a vault step, `vault/secret` for a secret.
fn display_path(s: &Step) -> String {
    match &s.secret {
        Some(_) => s.path(),
        None => format!("{}/", s.vault),
    }
}

/// One line per step: `+ api-keys/`, `~ api-keys/stripe-key (changed
/// locally)`, `= …`, `- …`, `! … (why)`.
fn render_plan(plan: &Plan) -> String {
    let mut out = String::new();
    for s in &plan.steps {
        out.push(s.action.marker());
        out.push(' ');
        out.push_str(&display_path(s));
        match &s.action {
            Action::Update(why) => out.push_str(&format!(" ({})", why.describe())),
            Action::Skip(why) => out.push_str(&format!(" ({})", why.describe())),
            _ => {}
        }
        out.push('\n');
    }
    out
}

fn warn_about(ctx: &Ctx, plan: &Plan, local: &[sync::LocalVault]) {
    for s in &plan.steps {
        if s.rotation_due {
            ctx.ui.warn(format!(
                "{} is due for rotation: someone who could read it was removed",
                s.path()
            ));
        }
        match &s.action {
            Action::Skip(SkipReason::FailedVerification(_)) => {}
            Action::Skip(why) => ctx
                .ui
                .warn(format!("{}: {}", display_path(s), why.describe())),
            _ => {}
        }
    }
    for v in local {
        for (name, secret) in &v.secrets {
            if let LocalSecret::Failed(problem) = secret {
                ctx.ui.warn(format!(
                    "{}/{name} failed verification ({problem}); it is not pushed",
                    v.name
                ));
            }
        }
    }
}

#[derive(Default)]
struct Tally {
    vaults_created: usize,
    created: usize,
    updated: usize,
    deleted: usize,
    vaults_deleted: usize,
    unchanged: usize,
    skipped: usize,
}

fn tally<'a>(steps: impl Iterator<Item = &'a Step>) -> Tally {
    let mut t = Tally::default();
    for s in steps {
        match s.action {
            Action::CreateVault => t.vaults_created += 1,
            Action::Create => t.created += 1,
            Action::Update(_) => t.updated += 1,
            Action::Delete => t.deleted += 1,
            Action::DeleteVault => t.vaults_deleted += 1,
            Action::Keep => t.unchanged += 1,
            Action::Skip(_) => t.skipped += 1,
        }
    }
    t
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// "2 vaults and 5 secrets created, 1 updated, 3 unchanged", naming only
/// what happened; `planned` says "to create" instead.
fn describe(t: &Tally, planned: bool) -> String {
    let verb = |done: &'static str, todo: &'static str| if planned { todo } else { done };
    let mut parts = Vec::new();
    let both = |v: usize, s: usize| match (v, s) {
        (0, s) => plural(s, "secret", "secrets"),
        (v, 0) => plural(v, "vault", "vaults"),
        (v, s) => format!(
            "{} and {}",
            plural(v, "vault", "vaults"),
            plural(s, "secret", "secrets")
        ),
    };
    if t.vaults_created + t.created > 0 {
        parts.push(format!(
            "{} {}",
            both(t.vaults_created, t.created),
            verb("created", "to create")
        ));
    }
    if t.updated > 0 {
        parts.push(format!("{} {}", t.updated, verb("updated", "to update")));
    }
    if t.vaults_deleted + t.deleted > 0 {
        parts.push(format!(
            "{} {}",
            both(t.vaults_deleted, t.deleted),
            verb("deleted", "to delete")
        ));
    }
    if t.unchanged > 0 {
        parts.push(format!("{} unchanged", t.unchanged));
    }
    if t.skipped > 0 {
        parts.push(format!("{} skipped", t.skipped));
    }
    if parts.is_empty() {
        return "nothing to sync".into();
    }
    parts.join(", ")
}

fn describe_writes(plan: &Plan) -> String {
    describe(&tally(plan.steps.iter()), true)
}

fn describe_results(plan: &Plan, outcomes: &[Option<Outcome>]) -> String {
    let t = tally(
        plan.steps
            .iter()
            .zip(outcomes)
            .filter(|(s, o)| !s.action.is_write() || matches!(o, Some(Outcome::Applied(_))))
            .map(|(s, _)| s),
    );
    describe(&t, false)
}

/// Asks on the terminal before a large prune; without one, refuses.
fn confirm_prune(n: usize) -> CliResult {
    if !ui::stdin_is_terminal() {
        return Err(CliError::new(format!(
            "refusing to delete {n} things from the platform without confirmation: stdin is not a terminal"
        ))
        .hint("check the plan above, then pass --yes to prune without asking"));
    }
    let line = ui::ask(&format!(
        "Delete {n} things from the platform, as listed above? Type \"yes\" to continue: "
    ))?;
    if line.trim() != "yes" {
        return Err(CliError::new("sync cancelled: nothing was changed"));
    }
    Ok(())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonStep<'a> {
    vault: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<&'a str>,
    action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rotation_due: bool,
    result: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    platform: &'a str,
    workspace_id: &'a str,
    dry_run: bool,
    ok: bool,
    steps: Vec<JsonStep<'a>>,
    requests: u64,
    writes: u64,
}

fn print_json(
    ctx: &Ctx,
    workspace: &WorkspaceId,
    url: &PlatformUrl,
    dry_run: bool,
    plan: &Plan,
    outcomes: Option<&[Option<Outcome>]>,
    counts: Counts,
) -> CliResult {
    let mut ok = true;
    let steps = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let outcome = outcomes.and_then(|o| o[i].as_ref());
            let (result, error) = match (&s.action, outcome) {
                (Action::Skip(SkipReason::FailedVerification(_)), _) => {
                    ok = false;
                    ("skipped", None)
                }
                (Action::Skip(_), _) => ("skipped", None),
                (Action::Keep, _) => ("unchanged", None),
                (_, None) => ("planned", None),
                (_, Some(Outcome::Applied(_))) => ("applied", None),
                (_, Some(Outcome::Failed(e))) => {
                    ok = false;
                    ("failed", Some(e.to_string()))
                }
                (_, Some(Outcome::NotAttempted(why))) => {
                    ok = false;
                    ("not_attempted", Some((*why).to_owned()))
                }
            };
            let reason = match &s.action {
                Action::Update(why) => Some(why.describe().to_owned()),
                Action::Skip(why) => Some(why.describe()),
                _ => None,
            };
            JsonStep {
                vault: &s.vault,
                secret: s.secret.as_deref(),
                action: s.action.name(),
                reason,
                rotation_due: s.rotation_due,
                result,
                error,
            }
        })
        .collect();
    let report = JsonReport {
        platform: url.as_str(),
        workspace_id: workspace.as_str(),
        dry_run,
        ok,
        steps,
        requests: counts.requests,
        writes: counts.writes,
    };
    let mut s = serde_json::to_string_pretty(&report).map_err(|e| CliError::new(e.to_string()))?;
    s.push('\n');
    ctx.ui.data(s.as_bytes())
}
