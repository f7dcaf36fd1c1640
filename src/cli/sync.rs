//! `coffer sync`: push the store to the Tailor Platform's Secret Manager.
//!
//! Stdout gets the plan (or, with `--json`, one JSON document at the
//! end); stderr gets warnings, the progress bar, failures and the
//! summary. Values and the token never reach either.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use clap::Args;
use coffer::sync::tailor::client::{Client, Counts, Settings, ValueLoader};
use coffer::sync::tailor::{DEFAULT_PLATFORM_URL, PlatformUrl, WorkspaceId};
use coffer::sync::{
    self, Action, ErrorKind, LocalSecret, LocalVault, LockedState, Outcome, Plan, Remote as _,
    RemoteError, Scope, SkipReason, State, Step,
};
use coffer::{Identities, LockWait, SecretValue, Store, VaultName};
use serde::Serialize;

use super::Ctx;
use super::error::{CliError, CliResult, remote_hints};
use super::{render, ui};

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

/// What one `coffer sync` was asked to do, parsed and validated from the
/// flags and [`super::env::SyncEnv`] before the store or the network is
/// touched.
struct Request {
    /// `-V`, sorted, without repeats (empty: every vault).
    vaults: Vec<VaultName>,
    /// The target.
    settings: Settings,
    dry_run: bool,
    prune: bool,
    yes: bool,
    json: bool,
}

impl Request {
    fn new(ctx: &Ctx, args: SyncArgs) -> CliResult<Request> {
        let env = &ctx.env.sync;
        let mut vaults: Vec<VaultName> = args
            .vaults
            .iter()
            .map(|v| v.parse())
            .collect::<Result<_, _>>()?;
        vaults.sort();
        vaults.dedup();
        let workspace: WorkspaceId = match args.workspace_id.as_deref().or(env.workspace.as_deref())
        {
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
        let mut settings = Settings::new(url, workspace, token);
        if let Some(ms) = env.retry_base_ms {
            settings.retry.base = Duration::from_millis(ms);
        }
        Ok(Request {
            vaults,
            settings,
            dry_run: args.dry_run,
            prune: args.prune,
            yes: args.yes,
            json: args.json,
        })
    }

    fn scope(&self) -> Scope {
        Scope {
            prune: self.prune,
            all_vaults: self.vaults.is_empty(),
        }
    }
}

/// `$COFFER_SYNC_STATE_DIR`, else `$XDG_STATE_HOME/coffer/sync`, else
/// `~/.local/state/coffer/sync`.
fn state_dir(ctx: &Ctx) -> CliResult<PathBuf> {
    let env = &ctx.env.sync;
    if let Some(d) = &env.state_dir {
        return Ok(if d.is_absolute() {
            d.clone()
        } else {
            ctx.env.cwd.join(d)
        });
    }
    env.xdg_state_home
        .clone()
        .or_else(|| ctx.env.home.as_ref().map(|h| h.join(".local/state")))
        .map(|d| d.join("coffer/sync"))
        .ok_or_else(|| {
            CliError::new("found no directory for the sync state: HOME is not set")
                .hint("set COFFER_SYNC_STATE_DIR (or XDG_STATE_HOME) to a directory outside the repository")
        })
}

/// Turns a failed platform read into an error with hints.
fn remote_error(context: &str, e: &RemoteError) -> CliError {
    let mut err = CliError::new(format!("{context}: {e}"));
    for h in remote_hints(e.kind) {
        err = err.hint(h);
    }
    err
}

pub fn sync(ctx: &Ctx, args: SyncArgs) -> CliResult {
    // Parse and validate everything before touching the store or network.
    let req = Request::new(ctx, args)?;
    let scope = req.scope();
    let target = Arc::new(Client::new(req.settings)?);

    let store = Arc::new(ctx.store()?);
    let names = vault_names(&store, &req.vaults)?;
    let state_dir = state_dir(ctx)?;
    refuse_state_in_store(&store, &state_dir)?;
    let ids = ctx.identities()?;
    // The state's lock is taken before the platform is read: a sync that
    // waits for another of the same target must see the platform as that
    // one left it, or what it pushed looks changed on the platform. The
    // state itself is read while the platform is.
    let locked = lock_state(ctx, &state_dir, &target, &store)?;
    // The platform is read while the store is: its listing needs only the
    // vaults' names. A message it sends meanwhile is scrubbed of every
    // value the run holds, so scrubbing one waits for the store's read
    // (and withholds the message if the read fails).
    let (values, held) = std::sync::mpsc::sync_channel::<ValueLoader>(1);
    target.hold_values_on_demand(Box::new(move || held.recv().ok()?()));
    let fetching = {
        let (target, names) = (Arc::clone(&target), names.clone());
        std::thread::spawn(move || sync::fetch(&*target, &names, scope, target.workers()))
    };
    // A read that fails ends the run at once: the listing, which may be
    // waiting on a slow platform, ends with the process.
    let (mut state, mut local) = read_store(ctx, &store, &names, &ids, locked, &target, values)?;
    let target_id = target.target_id();
    let snapshot = fetching
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        .map_err(|e| remote_error("could not read the workspace", &e))?;
    // Decrypt what the plan will push after all: drifted on the platform,
    // or missing there. (Their values are covered by the on-demand read
    // above, and each value sent is held by the request that sends it.)
    let needed = sync::values_needed(&local, &snapshot, &state);
    sync::read_values(&store, &mut local, &ids, &target_id, &needed)?;
    let plan = sync::plan(&local, &snapshot, &state, scope);

    if !req.json {
        ctx.out.bytes(render_plan(&plan).as_bytes())?;
    }
    warn_about(ctx, &plan, &local);
    let failed_verification = plan
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Skip(SkipReason::FailedVerification(_))))
        .count();

    if req.dry_run {
        let counts = target.counts();
        if req.json {
            print_json(ctx, &target, true, &plan, None, counts)?;
        }
        ctx.ui.status(dry_run_summary(&plan, counts));
        return verification_result(failed_verification);
    }

    let deletions = plan.deletions();
    if deletions > PRUNE_ASK_ABOVE && !req.yes {
        confirm_prune(deletions)?;
    }

    let outcomes = apply_with_progress(ctx, &target, &local, &plan, &mut state);
    let saved = state.save();
    let counts = target.counts();
    if req.json {
        print_json(ctx, &target, false, &plan, Some(&outcomes), counts)?;
    }
    report_steps(ctx, &plan, &outcomes);
    ctx.ui
        .status(sync_summary(target.workspace(), &plan, &outcomes, counts));
    if let Err(e) = saved {
        return Err(CliError::new(format!("could not save the sync state: {e}"))
            .hint("the changes were pushed; the next sync will push them once more"));
    }
    not_applied_result(&plan, &outcomes)?;
    verification_result(failed_verification)
}

/// Reads the sync state (warning when the file could not be parsed) and
/// the store: secrets whose file is the one the state records as last
/// pushed are verified, not decrypted; the rest are decrypted. Then sends
/// `values` what reads every value the run holds, for the client's
/// scrubber (dropped unsent if the read fails).
fn read_store(
    ctx: &Ctx,
    store: &Arc<Store>,
    names: &[VaultName],
    ids: &Identities,
    locked: LockedState,
    target: &Client,
    values: SyncSender<ValueLoader>,
) -> CliResult<(State, Vec<LocalVault>)> {
    let state = locked.read()?;
    if state.was_damaged() {
        ctx.ui
            .warn("the sync state file could not be read; every secret will be pushed once more");
    }
    let local = sync::read_local(store, names, ids, &target.target_id(), &state)?;
    let ready: Vec<SecretValue> = local
        .iter()
        .flat_map(|v| v.secrets.values())
        .filter_map(|s| match s {
            LocalSecret::Ready { value, .. } => Some(value.clone()),
            _ => None,
        })
        .collect();
    // Those it did not decrypt are read only if a message comes.
    let unread = sync::unread_values(Arc::clone(store), &local, ids)?;
    // Fails only if the client dropped the loader: nothing will ask.
    let _ = values.send(Box::new(move || {
        let mut held = ready;
        if let Some(load) = unread {
            held.extend(load()?);
        }
        Some(held)
    }));
    Ok((state, local))
}

/// The vaults to sync: those asked for (each must exist), else all.
fn vault_names(store: &Store, asked: &[VaultName]) -> CliResult<Vec<VaultName>> {
    if asked.is_empty() {
        return Ok(store.vault_names()?);
    }
    for v in asked {
        store.vault(v)?;
    }
    Ok(asked.to_vec())
}

/// The state belongs to the machine: never inside the store. Both paths
/// are resolved first (links followed, `.` and `..` taken out), so neither
/// `vaults/../vaults/x` nor a link into the store gets past the check.
fn refuse_state_in_store(store: &Store, state_dir: &Path) -> CliResult {
    if let Ok(root) = store.root().canonicalize()
        && resolve(state_dir).starts_with(&root)
    {
        return Err(CliError::new(format!(
            "refusing to keep the sync state inside the store ({})",
            render::esc_path(state_dir)
        ))
        .hint("point COFFER_SYNC_STATE_DIR outside the repository"));
    }
    Ok(())
}

/// Returns an absolute path as the file system would resolve it: the part
/// that exists canonicalised (its links followed), the rest applied to it
/// one component at a time (`..` goes up, `.` stays). The directory may
/// not exist yet: the state creates it.
fn resolve(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut existing = path.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    let mut base = loop {
        if let Ok(c) = existing.canonicalize() {
            break c;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = parent.to_path_buf();
            }
            // `..` or `.` at the end, or the root: go up lexically.
            _ => match existing.parent() {
                Some(parent) => {
                    let last = existing.components().next_back();
                    if let Some(c) = last {
                        rest.push(c.as_os_str().to_owned());
                    }
                    existing = parent.to_path_buf();
                }
                None => break existing,
            },
        }
    };
    for name in rest.iter().rev() {
        match Path::new(name).components().next() {
            Some(Component::ParentDir) => {
                base.pop();
            }
            Some(Component::CurDir) | None => {}
            Some(_) => base.push(name),
        }
    }
    base
}

/// Locks the target's state, saying so while it waits for another sync.
fn lock_state(ctx: &Ctx, dir: &Path, target: &Client, store: &Store) -> CliResult<LockedState> {
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
    Ok(State::lock(dir, &target.target_id(), store.root(), &wait)?)
}

/// Applies the plan, with a progress bar on a terminal for long runs.
fn apply_with_progress(
    ctx: &Ctx,
    target: &Client,
    local: &[LocalVault],
    plan: &Plan,
    state: &mut State,
) -> Vec<Option<Outcome>> {
    let bar = progress_bar(ctx, plan.writes());
    let outcomes = sync::apply(target, local, plan, state, target.workers(), &|step, _| {
        if let Some(b) = &bar {
            b.set_message(display_path(step));
            b.inc(1);
        }
    });
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    outcomes
}

/// A progress bar for `writes` writes, if there are enough of them and
/// stderr is a terminal that is not quieted.
fn progress_bar(ctx: &Ctx, writes: usize) -> Option<indicatif::ProgressBar> {
    if writes < PROGRESS_FROM || ctx.ui.quiet || !io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(writes as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {wide_msg}") {
        bar.set_style(style);
    }
    Some(bar)
}

/// Prints each step's note (`note: …`) and each step that failed or was
/// not attempted, on stderr.
fn report_steps(ctx: &Ctx, plan: &Plan, outcomes: &[Option<Outcome>]) {
    for (step, outcome) in plan.steps.iter().zip(outcomes) {
        match outcome {
            Some(Outcome::Applied(Some(note))) => ctx.ui.status(format!(
                "note: {} {}: {}",
                step.action.marker(),
                display_path(step),
                render::esc(note)
            )),
            Some(Outcome::Failed(e)) => errln!(
                "failed: {} {}: {}",
                step.action.marker(),
                display_path(step),
                render::esc(&e.to_string())
            ),
            Some(Outcome::NotAttempted(why)) => errln!(
                "not attempted: {} {}: {why}",
                step.action.marker(),
                display_path(step)
            ),
            _ => {}
        }
    }
}

/// `Dry run: 2 secrets to create; nothing was changed (3 read requests).`
fn dry_run_summary(plan: &Plan, counts: Counts) -> String {
    format!(
        "Dry run: {}; nothing was changed ({}).",
        describe_writes(plan),
        render::count(counts.requests as usize, "read request", "read requests")
    )
}

/// `Synced to workspace …: 2 secrets created (5 requests, 2 writes).`;
/// when some changes were not applied, `Not fully synced …` and how many,
/// or `Nothing was changed in workspace …` when none was. Only what the
/// platform accepted counts as done (a refused write is not a write).
fn sync_summary(
    workspace: &WorkspaceId,
    plan: &Plan,
    outcomes: &[Option<Outcome>],
    counts: Counts,
) -> String {
    let numbers = format!(
        "({}, {})",
        render::count(counts.requests as usize, "request", "requests"),
        render::count(counts.writes as usize, "write", "writes")
    );
    let not_applied = outcomes
        .iter()
        .filter(|o| matches!(o, Some(Outcome::Failed(_) | Outcome::NotAttempted(_))))
        .count();
    let applied = outcomes
        .iter()
        .filter(|o| matches!(o, Some(Outcome::Applied(_))))
        .count();
    if not_applied == 0 {
        return format!(
            "Synced to workspace {workspace}: {} {numbers}.",
            describe_results(plan, outcomes)
        );
    }
    let missing = format!(
        "{} not applied",
        render::count(not_applied, "change", "changes")
    );
    if applied == 0 {
        return format!("Nothing was changed in workspace {workspace}: {missing} {numbers}.");
    }
    format!(
        "Not fully synced to workspace {workspace}: {}; {missing} {numbers}.",
        describe_results(plan, outcomes)
    )
}

/// Fails, with what to do, if any write was not applied.
fn not_applied_result(plan: &Plan, outcomes: &[Option<Outcome>]) -> CliResult {
    let not_applied = outcomes
        .iter()
        .filter(|o| matches!(o, Some(Outcome::Failed(_) | Outcome::NotAttempted(_))))
        .count();
    if not_applied == 0 {
        return Ok(());
    }
    let writes = plan.writes();
    let applied = writes - not_applied;
    let be = |n: usize| render::pick(n, "was", "were");
    let mut err = CliError::new(format!(
        "{not_applied} of {} {} not applied ({applied} {})",
        render::count(writes, "change", "changes"),
        be(not_applied),
        be(applied)
    ));
    let failed: Vec<ErrorKind> = outcomes
        .iter()
        .filter_map(|o| match o {
            Some(Outcome::Failed(e)) => Some(e.kind),
            _ => None,
        })
        .collect();
    for h in failure_hints(&failed) {
        err = err.hint(h);
    }
    Err(err.hint("run `coffer sync` again to finish: it pushes only what is still missing"))
}

/// The hints for a run whose writes failed in these ways, each once: the
/// kinds are sorted before their repeats are dropped, and two kinds with
/// the same advice give it once.
fn failure_hints(failed: &[ErrorKind]) -> Vec<&'static str> {
    let mut kinds = failed.to_vec();
    kinds.sort();
    kinds.dedup();
    let mut hints: Vec<&'static str> = Vec::new();
    for h in kinds.into_iter().flat_map(remote_hints) {
        if !hints.contains(&h) {
            hints.push(h);
        }
    }
    hints
}

fn verification_result(failed: usize) -> CliResult {
    if failed == 0 {
        return Ok(());
    }
    Err(CliError::new(format!(
        "{failed} secret{} failed verification and {} not pushed",
        render::s(failed),
        render::pick(failed, "was", "were")
    ))
    .hint("`coffer verify` reports every problem in the store")
    .hint("restore the files from git, or set a new value with `coffer update`"))
}

/// `vault/` for a vault step, `vault/secret` for a secret, escaped: a
/// remote name comes from the platform and may hold anything.
fn display_path(s: &Step) -> String {
    let path = match &s.secret {
        Some(_) => s.path(),
        None => format!("{}/", s.vault),
    };
    render::esc(&path).into_owned()
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
            Action::Skip(why) => out.push_str(&format!(" ({})", render::esc(&why.describe()))),
            _ => {}
        }
        out.push('\n');
    }
    out
}

fn warn_about(ctx: &Ctx, plan: &Plan, local: &[LocalVault]) {
    for s in &plan.steps {
        if s.rotation_due {
            ctx.ui.warn(format!(
                "{} is due for rotation: someone who could read it was removed",
                render::esc(&s.path())
            ));
        }
        match &s.action {
            Action::Skip(SkipReason::FailedVerification(_)) => {}
            Action::Skip(why) => ctx.ui.warn(format!(
                "{}: {}",
                display_path(s),
                render::esc(&why.describe())
            )),
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

/// "2 vaults and 5 secrets created, 1 updated, 3 unchanged", naming only
/// what happened; `planned` says "to create" instead.
fn describe(t: &Tally, planned: bool) -> String {
    let verb = |done: &'static str, todo: &'static str| if planned { todo } else { done };
    let mut parts = Vec::new();
    let both = |v: usize, s: usize| match (v, s) {
        (0, s) => render::count(s, "secret", "secrets"),
        (v, 0) => render::count(v, "vault", "vaults"),
        (v, s) => format!(
            "{} and {}",
            render::count(v, "vault", "vaults"),
            render::count(s, "secret", "secrets")
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
    target: &Client,
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
        platform: target.url().as_str(),
        workspace_id: target.workspace().as_str(),
        dry_run,
        ok,
        steps,
        requests: counts.requests,
        writes: counts.writes,
    };
    ctx.out.json_doc(&report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_dot_dot_in_the_part_that_does_not_exist_yet() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("vaults")).unwrap();
        assert_eq!(
            resolve(&root.join("nope/../vaults/./x/y")),
            root.join("vaults/x/y")
        );
        assert_eq!(
            resolve(&root.join("vaults/../vaults/x")),
            root.join("vaults/x")
        );
        assert_eq!(resolve(&root.join("a/b/../../vaults")), root.join("vaults"));
        std::os::unix::fs::symlink(root.join("vaults"), root.join("link")).unwrap();
        assert_eq!(resolve(&root.join("link/state")), root.join("vaults/state"));
    }

    #[test]
    fn hints_for_failed_writes_are_not_repeated() {
        // Failures come in plan order, so one kind can follow another and
        // come back: each hint must still be given once.
        let hints = failure_hints(&[
            ErrorKind::Unavailable,
            ErrorKind::PermissionDenied,
            ErrorKind::Unavailable,
            ErrorKind::NoResponse,
            ErrorKind::PermissionDenied,
        ]);
        let mut unique = hints.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(hints.len(), unique.len(), "{hints:?}");
        assert_eq!(hints.len(), 3, "{hints:?}");
    }
}
