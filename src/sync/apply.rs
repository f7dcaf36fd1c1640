//! Applying a plan: its writes a few at a time, each success recorded in
//! the state at once, so that an interrupted run is finished by the next.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::secret::SecretValue;
use crate::sync::local::{LocalSecret, LocalVault};
use crate::sync::plan::{Action, Plan, Step};
use crate::sync::remote::{ErrorKind, Remote, RemoteError, parallel};
use crate::sync::state::{Record, State};

/// What happened to one step of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done. The note says anything surprising ("it already existed").
    Applied(Option<&'static str>),
    /// The target refused it, or never answered.
    Failed(RemoteError),
    /// Not tried, because a step it depends on failed.
    NotAttempted(&'static str),
}

/// Runs the plan's writes: vaults created first, then secrets created and
/// updated, then secrets deleted, then vaults deleted; each phase up to
/// `workers` requests at a time. Every success is recorded in `state` at
/// once (the caller saves it, also after a failure). `on_done` is called
/// after each write step, from worker threads.
///
/// Returns one outcome per step (`None` for steps that send nothing).
pub fn apply(
    remote: &dyn Remote,
    local: &[LocalVault],
    plan: &Plan,
    state: &mut State,
    workers: usize,
    on_done: &(dyn Fn(&Step, &Outcome) + Sync),
) -> Vec<Option<Outcome>> {
    let state = Mutex::new(state);
    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; plan.steps.len()]);
    let value_of = |s: &Step| -> Option<(&SecretValue, Record)> {
        let lv = local.iter().find(|v| v.name.as_str() == s.vault)?;
        let name = s.secret.as_deref()?;
        match lv.secrets.get(name)? {
            LocalSecret::Ready {
                value,
                digest,
                file_digest,
                ..
            } => Some((
                value,
                Record::new(*digest, None).with_file_digest(*file_digest),
            )),
            _ => None,
        }
    };
    // The vaults in which a step of `action` failed or was not attempted,
    // by an earlier phase: found once per phase, not once per step (a
    // scan of every step for each of 10,000 writes was quadratic).
    let failed_vaults = |action: &Action| -> BTreeSet<&str> {
        let outs = outcomes.lock().expect("not poisoned");
        plan.steps
            .iter()
            .zip(outs.iter())
            .filter(|(s, o)| {
                s.action == *action
                    && matches!(o, Some(Outcome::Failed(_) | Outcome::NotAttempted(_)))
            })
            .map(|(s, _)| s.vault.as_str())
            .collect()
    };
    let phases: [&dyn Fn(&Action) -> bool; 4] = [
        &|a| *a == Action::CreateVault,
        &|a| matches!(a, Action::Create | Action::Update(_)),
        &|a| *a == Action::Delete,
        &|a| *a == Action::DeleteVault,
    ];
    // A token that is refused once will be refused every time, and a
    // target that asked for a longer wait than a run makes will refuse
    // the next requests too: stop there rather than send every other
    // request to be refused.
    let refused = AtomicBool::new(false);
    let throttled = AtomicBool::new(false);
    let mut written_without_time: BTreeSet<String> = BTreeSet::new();
    for in_phase in phases {
        let idx: Vec<usize> = (0..plan.steps.len())
            .filter(|&i| in_phase(&plan.steps[i].action))
            .collect();
        // Each phase waits for the one before: a vault not created has no
        // secret written, one not emptied is not deleted.
        let not_created = failed_vaults(&Action::CreateVault);
        let not_emptied = failed_vaults(&Action::Delete);
        let results = parallel(&idx, workers, |&i| {
            let s = &plan.steps[i];
            let blocked = match s.action {
                Action::Create | Action::Update(_) => not_created
                    .contains(s.vault.as_str())
                    .then_some("its vault could not be created"),
                Action::DeleteVault => not_emptied
                    .contains(s.vault.as_str())
                    .then_some("some of its secrets could not be deleted"),
                _ => None,
            };
            let blocked = blocked
                .or_else(|| {
                    refused
                        .load(Ordering::Relaxed)
                        .then_some("an earlier request was refused for lack of authorisation")
                })
                .or_else(|| {
                    throttled
                        .load(Ordering::Relaxed)
                        .then_some("the platform asked for a longer wait than a run makes")
                });
            let (outcome, time) = match blocked {
                Some(why) => (Outcome::NotAttempted(why), None),
                None => run_step(remote, s, value_of(s).map(|(v, _)| v)),
            };
            if let Outcome::Failed(e) = &outcome
                && matches!(
                    e.kind,
                    ErrorKind::Unauthenticated | ErrorKind::PermissionDenied
                )
            {
                refused.store(true, Ordering::Relaxed);
            }
            if let Outcome::Failed(e) = &outcome
                && e.retry_after.is_some()
            {
                throttled.store(true, Ordering::Relaxed);
            }
            if let Outcome::Applied(_) = outcome {
                let mut st = state.lock().expect("not poisoned");
                match (&s.action, &s.secret) {
                    (Action::Create | Action::Update(_), Some(name)) => {
                        let mut record = value_of(s).expect("writes have values").1;
                        record.update_time = time.clone();
                        st.set(&s.vault, name, record);
                    }
                    (Action::Delete, Some(name)) => st.remove(&s.vault, name),
                    (Action::DeleteVault, None) => st.remove_vault(&s.vault),
                    _ => {}
                }
            }
            on_done(s, &outcome);
            let applied_without_time = time.is_none()
                && matches!(s.action, Action::Create | Action::Update(_))
                && matches!(outcome, Outcome::Applied(_));
            outcomes.lock().expect("not poisoned")[i] = Some(outcome);
            applied_without_time
        });
        for (&i, no_time) in idx.iter().zip(results) {
            if no_time {
                written_without_time.insert(plan.steps[i].vault.clone());
            }
        }
    }
    // A value kept but read from a file other than the one recorded (the
    // file was rewritten with the same value, or the record predates
    // file digests): record this file, so that the next sync need not
    // decrypt it.
    let state = state.into_inner().expect("not poisoned");
    for s in plan.steps.iter().filter(|s| s.action == Action::Keep) {
        if let (Some(name), Some((_, record))) = (&s.secret, value_of(s))
            && let Some(file_digest) = record.file_digest
        {
            state.set_file_digest(&s.vault, name, file_digest);
        }
    }
    // A target that does not return `updateTime` from writes: read it
    // back, so that the next sync sees nothing to do.
    for vault in written_without_time {
        if let Ok(list) = remote.list_secrets(&vault) {
            for r in list {
                state.set_update_time(&vault, &r.name, r.update_time);
            }
        }
    }
    outcomes.into_inner().expect("not poisoned")
}

/// Sends one step's request(s). Returns the outcome and, for a secret
/// write, the new `updateTime` if the target said.
fn run_step(
    remote: &dyn Remote,
    s: &Step,
    value: Option<&SecretValue>,
) -> (Outcome, Option<String>) {
    let name = s.secret.as_deref().unwrap_or_default();
    let ok = |note| (Outcome::Applied(note), None);
    match &s.action {
        Action::CreateVault => match remote.create_vault(&s.vault) {
            Ok(()) => ok(None),
            // Made by someone else, or by our own earlier attempt whose
            // response was lost: either way it is there now.
            Err(e) if e.kind == ErrorKind::AlreadyExists => ok(Some("it already existed")),
            Err(e) => (Outcome::Failed(e), None),
        },
        Action::Create | Action::Update(_) => {
            let Some(value) = value else {
                return (
                    Outcome::NotAttempted("its local value is not available"),
                    None,
                );
            };
            let first = if s.action == Action::Create {
                remote.create_secret(&s.vault, name, value)
            } else {
                remote.update_secret(&s.vault, name, value)
            };
            match first {
                Ok(t) => (Outcome::Applied(None), t),
                // It exists now (another writer, or our own create whose
                // response was lost): its value may differ, so set it.
                Err(e) if e.kind == ErrorKind::AlreadyExists => {
                    match remote.update_secret(&s.vault, name, value) {
                        Ok(t) => (Outcome::Applied(Some("it already existed; updated")), t),
                        Err(e) => (Outcome::Failed(e), None),
                    }
                }
                // Deleted remotely since we listed it: create it again.
                Err(e) if e.kind == ErrorKind::NotFound && s.action != Action::Create => {
                    match remote.create_secret(&s.vault, name, value) {
                        Ok(t) => (Outcome::Applied(Some("it had been deleted; created")), t),
                        Err(e) => (Outcome::Failed(e), None),
                    }
                }
                Err(e) => (Outcome::Failed(e), None),
            }
        }
        Action::Delete => match remote.delete_secret(&s.vault, name) {
            Ok(()) => ok(None),
            Err(e) if e.kind == ErrorKind::NotFound => ok(Some("it was already gone")),
            Err(e) => (Outcome::Failed(e), None),
        },
        Action::DeleteVault => match remote.delete_vault(&s.vault) {
            Ok(()) => ok(None),
            Err(e) if e.kind == ErrorKind::NotFound => ok(Some("it was already gone")),
            Err(e) => (Outcome::Failed(e), None),
        },
        Action::Keep | Action::Skip(_) => (Outcome::Applied(None), None),
    }
}
