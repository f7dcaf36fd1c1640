//! The plan of a sync: what to create, update, delete, keep or skip, and
//! why. Pure: [`plan`] takes the local store, the remote snapshot and the
//! state, and returns the steps.

use std::collections::BTreeSet;

use crate::error::IntegrityProblem;
use crate::name::{SecretName, VaultName, platform_name_problem};
use crate::sync::local::{LocalSecret, LocalVault};
use crate::sync::remote::{Ownership, RemoteSecret, RemoteSnapshot, RemoteVault, Scope};
use crate::sync::state::{Record, State};

/// Why a secret that exists remotely is pushed again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateReason {
    /// Its value differs from the one last pushed from here.
    ChangedLocally,
    /// Its remote `updateTime` moved: someone changed it elsewhere.
    ChangedRemotely,
    /// This machine has no record of pushing it (a fresh clone).
    NotInState,
}

impl UpdateReason {
    /// A short phrase for the plan.
    pub fn describe(self) -> &'static str {
        match self {
            UpdateReason::ChangedLocally => "changed locally",
            UpdateReason::ChangedRemotely => "changed on the platform since the last sync",
            UpdateReason::NotInState => "no record of a previous sync",
        }
    }
}

/// Why something is left alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A write-only contribution not yet accepted.
    Unverified,
    /// It failed verification.
    FailedVerification(IntegrityProblem),
    /// Another tool manages the vault (the target's words say which).
    ManagedElsewhere(String),
    /// The vault's name reserves it for another tool (the target's words
    /// say which).
    Reserved(String),
    /// The vault's labels could not be read, so nothing in it is deleted.
    OwnershipUnknown(String),
    /// The platform listed a name that breaks its own naming rule (why):
    /// such a name is never sent back in a delete.
    BadRemoteName(&'static str),
}

impl SkipReason {
    /// A short phrase for the plan.
    pub fn describe(&self) -> String {
        match self {
            SkipReason::Unverified => {
                "unverified contribution, not pushed until a recipient accepts it".into()
            }
            SkipReason::FailedVerification(p) => format!("failed verification ({p}), not pushed"),
            SkipReason::ManagedElsewhere(why) | SkipReason::Reserved(why) => {
                format!("{why}, left alone")
            }
            SkipReason::OwnershipUnknown(e) => {
                format!("its labels could not be read ({e}), so nothing in it is deleted")
            }
            SkipReason::BadRemoteName(why) => {
                format!(
                    "the platform listed this name, which breaks its naming rule ({why}); not deleted"
                )
            }
        }
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Create the vault.
    CreateVault,
    /// Delete the vault (after its secrets' deletions).
    DeleteVault,
    /// Create the secret.
    Create,
    /// Set the secret's value.
    Update(UpdateReason),
    /// Nothing: the target already has this value.
    Keep,
    /// Delete the secret (only with `--prune`).
    Delete,
    /// Nothing, on purpose.
    Skip(SkipReason),
}

impl Action {
    /// The plan's marker: `+` create, `~` update, `-` delete, `=` keep,
    /// `!` skip.
    pub fn marker(&self) -> char {
        match self {
            Action::CreateVault | Action::Create => '+',
            Action::Update(_) => '~',
            Action::DeleteVault | Action::Delete => '-',
            Action::Keep => '=',
            Action::Skip(_) => '!',
        }
    }

    /// The action's name in JSON output.
    pub fn name(&self) -> &'static str {
        match self {
            Action::CreateVault | Action::Create => "create",
            Action::Update(_) => "update",
            Action::DeleteVault | Action::Delete => "delete",
            Action::Keep => "keep",
            Action::Skip(_) => "skip",
        }
    }

    /// Returns whether the step sends a write request.
    pub fn is_write(&self) -> bool {
        !matches!(self, Action::Keep | Action::Skip(_))
    }

    /// Returns whether the step deletes something remotely.
    pub fn is_delete(&self) -> bool {
        matches!(self, Action::Delete | Action::DeleteVault)
    }
}

/// One line of a plan: a vault (`secret` is `None`) or a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The vault.
    pub vault: String,
    /// The secret, or `None` for a step on the vault itself.
    pub secret: Option<String>,
    /// What to do.
    pub action: Action,
    /// The local secret is marked as due for rotation.
    pub rotation_due: bool,
}

impl Step {
    /// Returns `vault/secret`, or `vault` for a vault step.
    pub fn path(&self) -> String {
        match &self.secret {
            Some(s) => format!("{}/{s}", self.vault),
            None => self.vault.clone(),
        }
    }
}

/// What a sync will do, in display order: per vault, its own step first
/// (create or skip), its secrets by name, and its deletion last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The steps.
    pub steps: Vec<Step>,
}

impl Plan {
    /// Returns how many steps send a write request.
    pub fn writes(&self) -> usize {
        self.steps.iter().filter(|s| s.action.is_write()).count()
    }

    /// Returns how many steps delete something.
    pub fn deletions(&self) -> usize {
        self.steps.iter().filter(|s| s.action.is_delete()).count()
    }
}

/// The action for a local secret that may be pushed, given what the
/// target lists and what the state records. `digest` is its value's keyed
/// digest, or `None` when its file is the one last pushed (the value has
/// not changed).
pub(super) fn decide(
    remote: Option<&RemoteSecret>,
    record: Option<&Record>,
    digest: Option<&[u8; 32]>,
) -> Action {
    match (remote, record) {
        (None, _) => Action::Create,
        (Some(_), None) => Action::Update(UpdateReason::NotInState),
        (Some(_), Some(rec)) if digest.is_some_and(|d| rec.digest != *d) => {
            Action::Update(UpdateReason::ChangedLocally)
        }
        // A target that lists no updateTime cannot show drift.
        (Some(r), Some(rec)) if r.update_time.is_some() && rec.update_time != r.update_time => {
            Action::Update(UpdateReason::ChangedRemotely)
        }
        (Some(_), Some(_)) => Action::Keep,
    }
}

/// Finds names in a sequence of `(name, value)` sorted by name, in one
/// forward pass: each call's name must not sort before the last call's. A
/// plan visits a vault's names in order, so each is a step along the
/// target's list and the state's, not a tree search (10,000 of them in a
/// re-sync, each comparing names all the way down).
struct Walk<'a, V: 'a, I: Iterator<Item = (&'a str, &'a V)>> {
    rest: std::iter::Peekable<I>,
}

impl<'a, V: 'a, I: Iterator<Item = (&'a str, &'a V)>> Walk<'a, V, I> {
    fn new(sorted: I) -> Self {
        Walk {
            rest: sorted.peekable(),
        }
    }

    /// Returns `name`'s value, if the sequence has it.
    fn get(&mut self, name: &str) -> Option<&'a V> {
        while self.rest.next_if(|(k, _)| *k < name).is_some() {}
        self.rest.next_if(|(k, _)| *k == name).map(|(_, v)| v)
    }
}

/// The target's secrets of a vault, sorted by name, for a [`Walk`].
fn remote_secrets(rv: Option<&RemoteVault>) -> impl Iterator<Item = (&str, &RemoteSecret)> {
    rv.into_iter()
        .flat_map(|v| v.secrets.iter())
        .map(|(n, r)| (n.as_str(), r))
}

/// Returns, per vault, the [`LocalSecret::Unchanged`] secrets that the
/// plan will push (the target lacks them or they drifted there), in order:
/// what [`crate::sync::local::read_values`] must decrypt before [`plan`].
/// None in a vault another tool manages (nothing is pushed there), and no
/// vault without one.
pub fn values_needed(
    local: &[LocalVault],
    remote: &RemoteSnapshot,
    state: &State,
) -> Vec<(VaultName, Vec<SecretName>)> {
    let mut needed = Vec::new();
    for lv in local {
        let rv = remote.vaults.get(lv.name.as_str());
        if rv.is_some_and(|v| matches!(v.ownership, Ownership::ManagedElsewhere(_))) {
            continue;
        }
        let mut remote = Walk::new(remote_secrets(rv));
        let mut records = Walk::new(state.records(lv.name.as_str()));
        let names: Vec<SecretName> = lv
            .secrets
            .iter()
            .filter(|(_, s)| matches!(s, LocalSecret::Unchanged { .. }))
            .filter(|(name, _)| {
                // Both walks are asked of each unchanged name, in order
                // (skipping the others is allowed).
                let r = remote.get(name.as_str());
                decide(r, records.get(name.as_str()), None) != Action::Keep
            })
            .map(|(name, _)| name.clone())
            .collect();
        if !names.is_empty() {
            needed.push((lv.name.clone(), names));
        }
    }
    needed
}

/// Computes the plan. Pure: the local store, the remote snapshot and the
/// state in, the steps out.
pub fn plan(local: &[LocalVault], remote: &RemoteSnapshot, state: &State, scope: Scope) -> Plan {
    let mut steps = Vec::new();
    let mut vault_names: BTreeSet<&str> = local.iter().map(|v| v.name.as_str()).collect();
    if scope.prune && scope.all_vaults {
        vault_names.extend(remote.vaults.keys().map(String::as_str));
    }
    for vname in vault_names {
        let rv = remote.vaults.get(vname);
        match local.iter().find(|v| v.name.as_str() == vname) {
            Some(lv) => plan_vault(lv, rv, state, scope, &mut steps),
            // Remote only (we are pruning every vault).
            None => plan_remote_only(
                vname,
                rv.expect("a name comes from one side or the other"),
                &mut steps,
            ),
        }
    }
    Plan { steps }
}

pub(super) fn step(vault: &str, secret: Option<&str>, action: Action, rotation_due: bool) -> Step {
    Step {
        vault: vault.to_owned(),
        secret: secret.map(str::to_owned),
        action,
        rotation_due,
    }
}

/// The steps for a vault only the target has, when pruning every vault:
/// each secret deleted, then the vault, unless a name or an owner says to
/// leave it.
pub(super) fn plan_remote_only(vname: &str, rv: &RemoteVault, steps: &mut Vec<Step>) {
    if let Some(why) = platform_name_problem(vname) {
        steps.push(step(
            vname,
            None,
            Action::Skip(SkipReason::BadRemoteName(why)),
            false,
        ));
        return;
    }
    let skip = match &rv.ownership {
        Ownership::ManagedElsewhere(why) => Some(SkipReason::ManagedElsewhere(why.clone())),
        Ownership::Unknown(e) => Some(SkipReason::OwnershipUnknown(e.clone())),
        Ownership::Reserved(why) => Some(SkipReason::Reserved(why.clone())),
        Ownership::Free => None,
    };
    if let Some(why) = skip {
        steps.push(step(vname, None, Action::Skip(why), false));
        return;
    }
    let mut kept = false;
    for name in rv.secrets.keys() {
        let action = match platform_name_problem(name) {
            Some(why) => {
                kept = true;
                Action::Skip(SkipReason::BadRemoteName(why))
            }
            None => Action::Delete,
        };
        steps.push(step(vname, Some(name), action, false));
    }
    // A secret left in it keeps the vault: deleting the vault would
    // delete that secret too.
    if !kept {
        steps.push(step(vname, None, Action::DeleteVault, false));
    }
}

/// The step of a vault of the store itself (create it, or skip it if
/// another tool owns it). Returns whether its secrets may be deleted, or
/// `None` when nothing in it is planned at all.
pub(super) fn vault_step(
    vname: &str,
    rv: Option<&RemoteVault>,
    scope: Scope,
    steps: &mut Vec<Step>,
) -> Option<bool> {
    match rv.map(|r| &r.ownership) {
        Some(Ownership::ManagedElsewhere(why)) => {
            steps.push(step(
                vname,
                None,
                Action::Skip(SkipReason::ManagedElsewhere(why.clone())),
                false,
            ));
            None
        }
        Some(Ownership::Unknown(e)) => {
            if scope.prune {
                steps.push(step(
                    vname,
                    None,
                    Action::Skip(SkipReason::OwnershipUnknown(e.clone())),
                    false,
                ));
            }
            Some(false)
        }
        // A reserved name is the store's own vault when the store has it.
        Some(Ownership::Free | Ownership::Reserved(_)) => Some(true),
        None => {
            steps.push(step(vname, None, Action::CreateVault, false));
            Some(true)
        }
    }
}

/// The steps for a vault of the store: its own ([`vault_step`]), then each
/// secret's, by name.
fn plan_vault(
    lv: &LocalVault,
    rv: Option<&RemoteVault>,
    state: &State,
    scope: Scope,
    steps: &mut Vec<Step>,
) {
    let vname = lv.name.as_str();
    let Some(may_delete) = vault_step(vname, rv, scope, steps) else {
        return;
    };
    // The local names, and the target's too when they may be deleted: both
    // sorted, so their union is one merge (the stable sort finds the two
    // runs and merges them).
    let mut names: Vec<&str> = lv.secrets.keys().map(SecretName::as_str).collect();
    if scope.prune && may_delete {
        names.extend(remote_secrets(rv).map(|(n, _)| n));
        names.sort();
        names.dedup();
    }
    let mut local = Walk::new(lv.secrets.iter().map(|(n, s)| (n.as_str(), s)));
    let mut remote = Walk::new(remote_secrets(rv));
    let mut records = Walk::new(state.records(vname));
    for name in names {
        let r = remote.get(name);
        let Some(ls) = local.get(name) else {
            let action = match platform_name_problem(name) {
                Some(why) => Action::Skip(SkipReason::BadRemoteName(why)),
                None => Action::Delete,
            };
            steps.push(step(vname, Some(name), action, false));
            continue;
        };
        let (action, rotation_due) = match ls {
            LocalSecret::Unverified => (Action::Skip(SkipReason::Unverified), false),
            LocalSecret::Failed(p) => (
                Action::Skip(SkipReason::FailedVerification(p.clone())),
                false,
            ),
            LocalSecret::Ready {
                digest,
                rotation_due,
                ..
            } => (decide(r, records.get(name), Some(digest)), *rotation_due),
            // Its file is the one whose value was last pushed: the value
            // has not changed here. (If the plan needs it, the caller
            // decrypts it first with `read_values`; else the write is
            // reported as not attempted.)
            LocalSecret::Unchanged { rotation_due, .. } => {
                (decide(r, records.get(name), None), *rotation_due)
            }
        };
        steps.push(step(vname, Some(name), action, rotation_due));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::Walk;

    proptest! {
        #![proptest_config(crate::test_seed::config())]
        /// A walk answers each of an ascending run of names as a look-up
        /// in the map would, whichever names it is asked and skips.
        #[test]
        fn a_walk_finds_what_a_look_up_finds(
            map in proptest::collection::btree_map("[a-c]{1,3}", 0u32..100, 0..20),
            asked in proptest::collection::btree_set("[a-c]{1,3}", 0..20),
        ) {
            let map: BTreeMap<String, u32> = map;
            let asked: BTreeSet<String> = asked;
            let mut walk = Walk::new(map.iter().map(|(k, v)| (k.as_str(), v)));
            for name in &asked {
                prop_assert_eq!(walk.get(name), map.get(name), "{}", name);
            }
        }
    }
}
