//! Plan and apply against an in-memory remote.

use std::collections::BTreeMap;
use std::sync::Mutex;

use std::collections::BTreeSet;

use super::*;
use crate::crypto::VaultKey;
use crate::crypto::identity::Identities;
use crate::error::IntegrityProblem;
use crate::name::{SecretName, VaultName};
use crate::secret::SecretValue;

/// Secret name → (value, update time).
type Secrets = BTreeMap<String, (String, u64)>;

/// A local vault for [`local`]: its name and its secrets' values (`None`
/// for an unverified contribution).
type Spec<'a> = (&'a str, &'a [(&'a str, Option<&'a str>)]);

/// An in-memory platform: vault → secret → (value, update time).
#[derive(Default)]
struct Fake {
    vaults: Mutex<BTreeMap<String, Secrets>>,
    /// Vaults another tool manages.
    managed: BTreeSet<String>,
    /// When set, asking who manages any vault fails this way.
    owner_error: Option<ErrorKind>,
    clock: Mutex<u64>,
    writes: Mutex<Vec<String>>,
    /// Methods that fail (once each) with `unavailable`, keyed by
    /// `method vault[/secret]`.
    fail: Mutex<BTreeSet<String>>,
    /// Secrets (`vault/secret`) someone else deletes between our list and
    /// our write to them.
    vanish: Mutex<BTreeSet<String>>,
}

impl Fake {
    fn tick(&self) -> u64 {
        let mut c = self.clock.lock().unwrap();
        *c += 1;
        *c
    }
    fn write(&self, what: String) -> Result<(), RemoteError> {
        if self.fail.lock().unwrap().remove(&what) {
            return Err(RemoteError::new(
                "Fake",
                ErrorKind::Unavailable,
                "unavailable",
                "",
            ));
        }
        self.writes.lock().unwrap().push(what);
        Ok(())
    }
    fn value(&self, v: &str, s: &str) -> Option<String> {
        Some(self.vaults.lock().unwrap().get(v)?.get(s)?.0.clone())
    }
    fn set_remotely(&self, v: &str, s: &str, value: &str) {
        let t = self.tick();
        self.vaults
            .lock()
            .unwrap()
            .entry(v.into())
            .or_default()
            .insert(s.into(), (value.into(), t));
    }
    /// Deletes `vault/name` now if someone else was to delete it before
    /// our write.
    fn vanish_if_due(&self, vault: &str, name: &str) {
        let due = self
            .vanish
            .lock()
            .unwrap()
            .remove(&format!("{vault}/{name}"));
        if due && let Some(v) = self.vaults.lock().unwrap().get_mut(vault) {
            v.remove(name);
        }
    }
    fn take_writes(&self) -> Vec<String> {
        std::mem::take(&mut self.writes.lock().unwrap())
    }
}

fn nf() -> RemoteError {
    RemoteError::new("Fake", ErrorKind::NotFound, "not found", "")
}

impl Remote for Fake {
    fn list_vaults(&self) -> Result<Vec<String>, RemoteError> {
        Ok(self.vaults.lock().unwrap().keys().cloned().collect())
    }
    fn target_id(&self) -> String {
        TARGET.into()
    }
    fn managed_by(&self, vault: &str) -> Result<Option<String>, RemoteError> {
        if let Some(kind) = self.owner_error {
            return Err(RemoteError::new("Fake", kind, "failed", ""));
        }
        Ok(self
            .managed
            .contains(vault)
            .then(|| "managed by another tool".to_owned()))
    }
    fn reserved(&self, vault: &str) -> Option<String> {
        vault
            .starts_with("reserved-")
            .then(|| "reserved for another tool".to_owned())
    }
    fn list_secrets(&self, vault: &str) -> Result<Vec<RemoteSecret>, RemoteError> {
        let vaults = self.vaults.lock().unwrap();
        let v = vaults.get(vault).ok_or_else(nf)?;
        Ok(v.iter()
            .map(|(n, (_, t))| RemoteSecret {
                name: n.clone(),
                update_time: Some(t.to_string()),
            })
            .collect())
    }
    fn create_vault(&self, vault: &str) -> Result<(), RemoteError> {
        self.write(format!("CreateVault {vault}"))?;
        let mut vaults = self.vaults.lock().unwrap();
        if vaults.contains_key(vault) {
            return Err(RemoteError::new(
                "Fake",
                ErrorKind::AlreadyExists,
                "already exists",
                "",
            ));
        }
        vaults.insert(vault.into(), BTreeMap::new());
        Ok(())
    }
    fn delete_vault(&self, vault: &str) -> Result<(), RemoteError> {
        self.write(format!("DeleteVault {vault}"))?;
        self.vaults.lock().unwrap().remove(vault).ok_or_else(nf)?;
        Ok(())
    }
    fn create_secret(
        &self,
        vault: &str,
        name: &str,
        value: &SecretValue,
    ) -> Result<Option<String>, RemoteError> {
        self.write(format!("Create {vault}/{name}"))?;
        let t = self.tick();
        let mut vaults = self.vaults.lock().unwrap();
        let v = vaults.get_mut(vault).ok_or_else(nf)?;
        if v.contains_key(name) {
            return Err(RemoteError::new(
                "Fake",
                ErrorKind::AlreadyExists,
                "already exists",
                "",
            ));
        }
        v.insert(name.into(), (value.expose_secret().into(), t));
        Ok(Some(t.to_string()))
    }
    fn update_secret(
        &self,
        vault: &str,
        name: &str,
        value: &SecretValue,
    ) -> Result<Option<String>, RemoteError> {
        self.vanish_if_due(vault, name);
        self.write(format!("Update {vault}/{name}"))?;
        let t = self.tick();
        let mut vaults = self.vaults.lock().unwrap();
        let s = vaults
            .get_mut(vault)
            .and_then(|v| v.get_mut(name))
            .ok_or_else(nf)?;
        *s = (value.expose_secret().into(), t);
        Ok(Some(t.to_string()))
    }
    fn delete_secret(&self, vault: &str, name: &str) -> Result<(), RemoteError> {
        self.vanish_if_due(vault, name);
        self.write(format!("Delete {vault}/{name}"))?;
        let mut vaults = self.vaults.lock().unwrap();
        vaults
            .get_mut(vault)
            .and_then(|v| v.remove(name))
            .ok_or_else(nf)?;
        Ok(())
    }
}

const TARGET: &str = "fake-target";

/// A local store, read as [`read_local`] would.
fn local(key: &VaultKey, spec: &[Spec]) -> Vec<LocalVault> {
    spec.iter()
        .map(|(v, secrets)| {
            let vault: VaultName = v.parse().unwrap();
            let secrets = secrets
                .iter()
                .map(|(n, value)| {
                    let name: SecretName = n.parse().unwrap();
                    let ls = match value {
                        Some(x) => {
                            let value = SecretValue::from_string((*x).into()).unwrap();
                            let domain = local::digest_domain(TARGET, &vault, &name);
                            LocalSecret::Ready {
                                digest: key.value_digest(&domain, &value),
                                file_digest: key
                                    .file_digest(&domain, &crate::crypto::digest(x.as_bytes())),
                                value,
                                rotation_due: false,
                            }
                        }
                        None => LocalSecret::Unverified,
                    };
                    (name, ls)
                })
                .collect();
            LocalVault {
                name: vault,
                secrets,
                decrypted: 0,
            }
        })
        .collect()
}

const ALL: Scope = Scope {
    prune: false,
    all_vaults: true,
};
const PRUNE: Scope = Scope {
    prune: true,
    all_vaults: true,
};

/// Fetches, plans and applies; returns the plan and the outcomes.
fn sync(
    remote: &Fake,
    local: &[LocalVault],
    state: &mut State,
    scope: Scope,
) -> (Plan, Vec<Option<Outcome>>) {
    let snap = fetch(remote, &vault_names(local), scope, 3).unwrap();
    let p = plan(local, &snap, state, scope);
    let out = apply(remote, local, &p, state, 3, &|_, _| {});
    (p, out)
}

/// Each step's outcome, by the step's path (`vault` or `vault/secret`).
fn by_path(p: &Plan, out: Vec<Option<Outcome>>) -> BTreeMap<String, Outcome> {
    p.steps
        .iter()
        .zip(out)
        .map(|(s, o)| (s.path(), o.expect("every step has an outcome")))
        .collect()
}

/// The names of the vaults read.
fn vault_names(local: &[LocalVault]) -> Vec<VaultName> {
    local.iter().map(|v| v.name.clone()).collect()
}

fn lines(p: &Plan) -> Vec<String> {
    p.steps
        .iter()
        .map(|s| format!("{} {}", s.action.marker(), s.path()))
        .collect()
}

#[test]
fn a_first_sync_creates_everything_and_a_second_sends_nothing() {
    let key = VaultKey::generate();
    let l = local(
        &key,
        &[
            (
                "api-keys",
                &[("stripe", Some("s1")), ("sendgrid", Some("s2"))],
            ),
            ("database", &[("password", Some("p1"))]),
        ],
    );
    let remote = Fake::default();
    let mut state = State::in_memory();
    let (p, out) = sync(&remote, &l, &mut state, ALL);
    assert_eq!(
        lines(&p),
        [
            "+ api-keys",
            "+ api-keys/sendgrid",
            "+ api-keys/stripe",
            "+ database",
            "+ database/password"
        ]
    );
    assert!(
        out.iter()
            .all(|o| matches!(o, Some(Outcome::Applied(None))))
    );
    assert_eq!(remote.value("api-keys", "stripe").as_deref(), Some("s1"));
    assert_eq!(state.len(), 3);
    remote.take_writes();

    let (p, _) = sync(&remote, &l, &mut state, ALL);
    assert_eq!(p.writes(), 0, "{:?}", lines(&p));
    assert!(remote.take_writes().is_empty());
}

#[test]
fn changes_are_pushed_for_the_right_reason() {
    let key = VaultKey::generate();
    let remote = Fake::default();
    let mut state = State::in_memory();
    let before = local(&key, &[("app", &[("aaa", Some("1")), ("bbb", Some("2"))])]);
    sync(&remote, &before, &mut state, ALL);
    remote.take_writes();

    // a changed here; b changed on the platform by someone else.
    let after = local(&key, &[("app", &[("aaa", Some("1b")), ("bbb", Some("2"))])]);
    remote.set_remotely("app", "bbb", "2-elsewhere");
    let snap = fetch(&remote, &vault_names(&after), ALL, 2).unwrap();
    let p = plan(&after, &snap, &state, ALL);
    assert_eq!(
        p.steps.iter().map(|s| s.action.clone()).collect::<Vec<_>>(),
        [
            Action::Update(UpdateReason::ChangedLocally),
            Action::Update(UpdateReason::ChangedRemotely)
        ]
    );
    apply(&remote, &after, &p, &mut state, 2, &|_, _| {});
    assert_eq!(remote.value("app", "bbb").as_deref(), Some("2"));

    // A fresh clone (no state) pushes each secret once.
    let mut fresh = State::in_memory();
    let (p, _) = sync(&remote, &after, &mut fresh, ALL);
    assert!(
        p.steps
            .iter()
            .all(|s| s.action == Action::Update(UpdateReason::NotInState))
    );
    let (p, _) = sync(&remote, &after, &mut fresh, ALL);
    assert_eq!(p.writes(), 0);
}

#[test]
fn nothing_is_deleted_without_prune() {
    let key = VaultKey::generate();
    let remote = Fake::default();
    remote.set_remotely("app", "gone", "x");
    remote.set_remotely("old-vault", "xyz", "y");
    let l = local(&key, &[("app", &[("kept", Some("1"))])]);
    let mut state = State::in_memory();
    let (p, _) = sync(&remote, &l, &mut state, ALL);
    assert_eq!(lines(&p), ["+ app/kept"]);
    assert!(remote.value("app", "gone").is_some());
    assert!(remote.value("old-vault", "xyz").is_some());
}

#[test]
fn prune_deletes_what_the_store_lacks_secrets_before_their_vault() {
    let key = VaultKey::generate();
    let remote = Fake::default();
    remote.set_remotely("app", "gone", "x");
    remote.set_remotely("old-vault", "xyz", "y");
    let l = local(&key, &[("app", &[("kept", Some("1"))])]);
    let mut state = State::in_memory();

    // With -V, only the named vault's secrets are pruned.
    let one = Scope {
        prune: true,
        all_vaults: false,
    };
    let snap = fetch(&remote, &vault_names(&l), one, 2).unwrap();
    assert_eq!(
        lines(&plan(&l, &snap, &state, one)),
        ["- app/gone", "+ app/kept"]
    );

    let (p, out) = sync(&remote, &l, &mut state, PRUNE);
    assert_eq!(
        lines(&p),
        ["- app/gone", "+ app/kept", "- old-vault/xyz", "- old-vault"]
    );
    assert!(out.iter().all(|o| matches!(o, Some(Outcome::Applied(_)))));
    let writes = remote.take_writes();
    let pos = |w: &str| writes.iter().position(|x| x == w).unwrap();
    assert!(pos("Delete old-vault/xyz") < pos("DeleteVault old-vault"));
    assert_eq!(remote.list_vaults().unwrap(), ["app"]);
    assert!(remote.value("app", "gone").is_none());
}

/// The plan walks the store's names and the target's side by side: a
/// name only the target has, between two the store has, is deleted in its
/// place, and one both have is matched with its own record, not a
/// neighbour's.
#[test]
fn prune_interleaves_the_targets_names_with_the_stores_in_name_order() {
    let key = VaultKey::generate();
    let remote = Fake::default();
    for name in ["bbb", "ccc", "ddd", "fff"] {
        remote.set_remotely("app", name, "remote");
    }
    let spec: &[Spec] = &[(
        "app",
        &[("aaa", Some("1")), ("ccc", Some("3")), ("eee", Some("5"))],
    )];
    let l = local(&key, spec);
    let mut state = State::in_memory();
    let (p, _) = sync(&remote, &l, &mut state, PRUNE);
    assert_eq!(
        lines(&p),
        [
            "+ app/aaa",
            "- app/bbb",
            "~ app/ccc",
            "- app/ddd",
            "+ app/eee",
            "- app/fff"
        ]
    );
    // Recorded, each under its own name: nothing left to do.
    let (p, _) = sync(&remote, &l, &mut state, PRUNE);
    assert_eq!(
        actions(&p),
        [
            ("app/aaa".to_owned(), Action::Keep),
            ("app/ccc".to_owned(), Action::Keep),
            ("app/eee".to_owned(), Action::Keep),
        ]
    );
    // Only c changes locally: only c is pushed, for that reason.
    let spec: &[Spec] = &[(
        "app",
        &[("aaa", Some("1")), ("ccc", Some("33")), ("eee", Some("5"))],
    )];
    let (p, _) = sync(&remote, &local(&key, spec), &mut state, PRUNE);
    assert_eq!(
        actions(&p)
            .into_iter()
            .filter(|(_, a)| *a != Action::Keep)
            .collect::<Vec<_>>(),
        [(
            "app/ccc".to_owned(),
            Action::Update(UpdateReason::ChangedLocally)
        )]
    );
}

#[test]
fn managed_reserved_and_unverified_things_are_left_alone() {
    let key = VaultKey::generate();
    let mut remote = Fake::default();
    remote.set_remotely("managed", "xyz", "sdk-value");
    remote.set_remotely("reserved-ns-client", "client-secret-ns-client", "x");
    remote.set_remotely("app", "pending", "older");
    remote.managed.insert("managed".into());
    let l = local(
        &key,
        &[
            ("app", &[("pending", None), ("fine", Some("1"))]),
            ("managed", &[("xyz", Some("mine"))]),
        ],
    );
    let mut state = State::in_memory();
    let (p, _) = sync(&remote, &l, &mut state, PRUNE);
    assert_eq!(
        lines(&p),
        [
            "+ app/fine",
            "! app/pending",
            "! managed",
            "! reserved-ns-client"
        ]
    );
    assert_eq!(remote.value("app", "pending").as_deref(), Some("older"));
    assert_eq!(remote.value("managed", "xyz").as_deref(), Some("sdk-value"));
    assert!(
        remote
            .value("reserved-ns-client", "client-secret-ns-client")
            .is_some()
    );
}

#[test]
fn a_failed_run_reports_what_was_not_applied_and_the_next_finishes() {
    let key = VaultKey::generate();
    let remote = Fake::default();
    remote
        .fail
        .lock()
        .unwrap()
        .extend(["CreateVault dbs".to_owned(), "Create app/bbb".to_owned()]);
    let l = local(
        &key,
        &[
            ("app", &[("aaa", Some("1")), ("bbb", Some("2"))]),
            ("dbs", &[("ccc", Some("3"))]),
        ],
    );
    let mut state = State::in_memory();
    let (p, out) = sync(&remote, &l, &mut state, ALL);
    let by_path = by_path(&p, out);
    assert!(matches!(by_path["app/aaa"], Outcome::Applied(None)));
    assert!(matches!(by_path["app/bbb"], Outcome::Failed(_)));
    assert!(matches!(by_path["dbs"], Outcome::Failed(_)));
    assert!(matches!(by_path["dbs/ccc"], Outcome::NotAttempted(_)));
    assert_eq!(state.len(), 1);

    let (p, out) = sync(&remote, &l, &mut state, ALL);
    assert_eq!(lines(&p), ["= app/aaa", "+ app/bbb", "+ dbs", "+ dbs/ccc"]);
    assert!(
        out.iter()
            .flatten()
            .all(|o| matches!(o, Outcome::Applied(_)))
    );
    assert_eq!(state.len(), 3);
}

/// Pruning: a vault whose secrets could not all be deleted is not
/// deleted (that would delete the secret left), and it blocks only itself.
#[test]
fn a_vault_whose_secret_could_not_be_deleted_is_left_and_blocks_no_other() {
    let key = VaultKey::generate();
    let remote = Fake::default();
    for (v, n) in [("old", "xxx"), ("old", "yyy"), ("gone", "zzz")] {
        remote.set_remotely(v, n, "v");
    }
    remote
        .fail
        .lock()
        .unwrap()
        .insert("Delete old/xxx".to_owned());
    let l = local(&key, &[("app", &[("aaa", Some("1"))])]);
    let mut state = State::in_memory();
    let (p, out) = sync(&remote, &l, &mut state, PRUNE);
    let by_path = by_path(&p, out);
    assert!(matches!(by_path["old/xxx"], Outcome::Failed(_)));
    assert!(matches!(by_path["old/yyy"], Outcome::Applied(_)));
    assert!(
        matches!(
            by_path["old"],
            Outcome::NotAttempted("some of its secrets could not be deleted")
        ),
        "{:?}",
        by_path["old"]
    );
    assert!(matches!(by_path["gone"], Outcome::Applied(_)));
    assert_eq!(remote.value("old", "xxx").as_deref(), Some("v"));
    assert!(!remote.vaults.lock().unwrap().contains_key("gone"));
}

#[test]
fn a_secret_created_meanwhile_is_updated_to_the_local_value() {
    let key = VaultKey::generate();
    let remote = Fake::default();
    remote.set_remotely("app", "other", "x");
    let l = local(&key, &[("app", &[("aaa", Some("mine"))])]);
    let mut state = State::in_memory();
    let snap = fetch(&remote, &vault_names(&l), ALL, 1).unwrap();
    let p = plan(&l, &snap, &state, ALL);
    // Someone creates it between the list and the create.
    remote.set_remotely("app", "aaa", "theirs");
    let out = apply(&remote, &l, &p, &mut state, 1, &|_, _| {});
    assert_eq!(
        out[0],
        Some(Outcome::Applied(Some("it already existed; updated")))
    );
    assert_eq!(remote.value("app", "aaa").as_deref(), Some("mine"));
    let (p, _) = sync(&remote, &l, &mut state, ALL);
    assert_eq!(p.writes(), 0);
}

#[test]
fn times_compare_by_instant() {
    assert_eq!(
        normalize_time("2024-01-02T03:04:05.000Z"),
        normalize_time("2024-01-02T03:04:05Z")
    );
    assert_eq!(normalize_time("100.5"), "100.5");
}

#[test]
fn debug_output_of_local_secrets_holds_no_value() {
    let key = VaultKey::generate();
    let l = local(&key, &[("app", &[("aaa", Some("sentinel-value"))])]);
    assert!(!format!("{l:?}").contains("sentinel"));
}

#[test]
fn prune_deletes_nothing_in_a_vault_whose_labels_cannot_be_read() {
    let key = VaultKey::generate();
    // `None`: the owner is known (nobody), so pruning goes ahead.
    for (kind, deletes) in [
        (Some(ErrorKind::Other), false),
        (Some(ErrorKind::PermissionDenied), false),
        (Some(ErrorKind::Throttled), false),
        (None, true),
    ] {
        let mut remote = Fake::default();
        remote.set_remotely("sdk-owned", "idp-client-secret", "x");
        remote.owner_error = kind;
        let l = local(&key, &[("app", &[("fine", Some("1"))])]);
        let mut state = State::in_memory();
        let (p, _) = sync(&remote, &l, &mut state, PRUNE);
        let deleted = lines(&p).iter().any(|l| l.starts_with("- "));
        assert_eq!(deleted, deletes, "{kind:?}: {:?}", lines(&p));
        assert_eq!(
            remote.value("sdk-owned", "idp-client-secret").is_none(),
            deletes,
            "{kind:?}"
        );
    }
}

/// A platform that lists names breaking its own rule (a newline, an escape
/// sequence, `..`) never gets a delete for them, and a vault left holding
/// one is not deleted either.
#[test]
fn prune_never_deletes_a_remote_name_that_breaks_the_platforms_rule() {
    let key = VaultKey::generate();
    let remote = Fake::default();
    remote.set_remotely("app", "ok\n- app/kept", "x");
    remote.set_remotely("app", "gone", "x");
    remote.set_remotely("old-vault", "\u{1b}[2Jx", "y");
    remote.set_remotely("old-vault", "fine", "y");
    remote.set_remotely("../etc", "passwd", "y");
    let l = local(&key, &[("app", &[("kept", Some("1"))])]);
    let mut state = State::in_memory();
    let (p, out) = sync(&remote, &l, &mut state, PRUNE);
    let skipped: Vec<String> = p
        .steps
        .iter()
        .filter(|s| matches!(s.action, Action::Skip(SkipReason::BadRemoteName(_))))
        .map(Step::path)
        .collect();
    assert_eq!(
        skipped,
        ["../etc", "app/ok\n- app/kept", "old-vault/\u{1b}[2Jx"]
    );
    assert!(out.iter().all(|o| !matches!(o, Some(Outcome::Failed(_)))));
    let writes = remote.take_writes();
    assert!(writes.contains(&"Delete app/gone".to_owned()), "{writes:?}");
    assert!(
        writes.contains(&"Delete old-vault/fine".to_owned()),
        "{writes:?}"
    );
    assert!(
        writes
            .iter()
            .all(|w| !w.contains('\n') && !w.contains('\u{1b}') && !w.contains("..")),
        "{writes:?}"
    );
    assert!(
        !writes.iter().any(|w| w.starts_with("DeleteVault")),
        "{writes:?}"
    );
}

/// A secret deleted on the platform between the list and the write: an
/// update creates it again (with a note), a delete counts as done (with a
/// note); neither is a failure, and the state records the update.
#[test]
fn not_found_on_update_recreates_and_on_delete_is_already_done() {
    let key = VaultKey::generate();
    let remote = Fake::default();
    let l = local(&key, &[("app", &[("changed", Some("1"))])]);
    let mut state = State::in_memory();
    sync(&remote, &l, &mut state, ALL);
    remote.take_writes();
    remote.set_remotely("app", "stale", "x");
    let l = local(&key, &[("app", &[("changed", Some("2"))])]);
    remote
        .vanish
        .lock()
        .unwrap()
        .extend(["app/changed".to_owned(), "app/stale".to_owned()]);
    let (p, out) = sync(&remote, &l, &mut state, PRUNE);
    assert_eq!(lines(&p), ["~ app/changed", "- app/stale"]);
    assert_eq!(
        out,
        [
            Some(Outcome::Applied(Some("it had been deleted; created"))),
            Some(Outcome::Applied(Some("it was already gone"))),
        ]
    );
    assert_eq!(remote.value("app", "changed").as_deref(), Some("2"));
    assert!(remote.value("app", "stale").is_none());
    // Recorded: the next run sends nothing.
    let (p, _) = sync(&remote, &l, &mut state, PRUNE);
    assert_eq!(lines(&p), ["= app/changed"]);
}

/// A real store for the tests of reading it: one vault, `app`, with
/// `values`, and the identity that opens it.
fn real_store(values: &[(&str, &str)]) -> (tempfile::TempDir, crate::store::Store, Identities) {
    let (d, store, ids) = crate::store::testing::store_with_vault("app");
    set_values(&store, &ids, values);
    (d, store, ids)
}

/// Creates or updates secrets of the vault `app`.
fn set_values(store: &crate::store::Store, ids: &Identities, values: &[(&str, &str)]) {
    let vault = store.vault(&"app".parse().unwrap()).unwrap();
    let key = vault.unlock(ids).unwrap();
    let mut w = vault.write().unwrap();
    for (n, v) in values {
        let name: SecretName = n.parse().unwrap();
        let value = SecretValue::from_string((*v).into()).unwrap();
        if w.manifest().secrets.contains_key(&name) {
            w.update(&key, &name, &value, crate::time::Time::now())
                .unwrap();
        } else {
            w.create(&key, &name, &value, crate::time::Time::now())
                .unwrap();
        }
    }
    w.commit().unwrap();
}

/// One sync as the CLI runs it; returns the plan and how many secret
/// files were decrypted.
fn sync_store(
    store: &crate::store::Store,
    ids: &Identities,
    remote: &Fake,
    state: &mut State,
) -> (Plan, usize) {
    let vaults = vec!["app".parse().unwrap()];
    let mut l = read_local(store, &vaults, ids, TARGET, state).unwrap();
    let snapshot = fetch(remote, &vault_names(&l), ALL, 2).unwrap();
    let needed = values_needed(&l, &snapshot, state);
    read_values(store, &mut l, ids, TARGET, &needed).unwrap();
    let p = plan(&l, &snapshot, state, ALL);
    let outcomes = apply(remote, &l, &p, state, 2, &|_, _| {});
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, None | Some(Outcome::Applied(_)))),
        "{outcomes:?}"
    );
    (p, l.iter().map(|v| v.decrypted).sum())
}

fn actions(p: &Plan) -> Vec<(String, Action)> {
    p.steps
        .iter()
        .filter(|s| s.secret.is_some())
        .map(|s| (s.path(), s.action.clone()))
        .collect()
}

#[test]
fn a_re_sync_with_nothing_changed_decrypts_nothing_and_a_changed_value_is_still_pushed() {
    let (_d, store, ids) = real_store(&[("aaa", "one"), ("bbb", "two"), ("ccc", "three")]);
    let remote = Fake::default();
    let mut state = State::in_memory();
    let (_, decrypted) = sync_store(&store, &ids, &remote, &mut state);
    assert_eq!(decrypted, 3);
    assert_eq!(remote.value("app", "bbb").as_deref(), Some("two"));
    remote.take_writes();

    let (p, decrypted) = sync_store(&store, &ids, &remote, &mut state);
    assert_eq!(decrypted, 0, "nothing changed: nothing to decrypt");
    assert!(actions(&p).iter().all(|(_, a)| *a == Action::Keep), "{p:?}");
    assert!(remote.take_writes().is_empty());

    set_values(&store, &ids, &[("bbb", "two, changed")]);
    let (p, decrypted) = sync_store(&store, &ids, &remote, &mut state);
    assert_eq!(decrypted, 1, "only the changed file");
    assert_eq!(
        actions(&p),
        vec![
            ("app/aaa".into(), Action::Keep),
            (
                "app/bbb".into(),
                Action::Update(UpdateReason::ChangedLocally)
            ),
            ("app/ccc".into(), Action::Keep),
        ]
    );
    assert_eq!(remote.value("app", "bbb").as_deref(), Some("two, changed"));
    assert_eq!(sync_store(&store, &ids, &remote, &mut state).1, 0);
}

#[test]
fn drift_on_the_platform_is_still_detected_without_decrypting_the_rest() {
    let (_d, store, ids) = real_store(&[("aaa", "one"), ("bbb", "two")]);
    let remote = Fake::default();
    let mut state = State::in_memory();
    sync_store(&store, &ids, &remote, &mut state);
    remote.set_remotely("app", "aaa", "changed elsewhere");
    let (p, decrypted) = sync_store(&store, &ids, &remote, &mut state);
    assert_eq!(decrypted, 1, "only the drifted secret");
    assert_eq!(
        actions(&p),
        vec![
            (
                "app/aaa".into(),
                Action::Update(UpdateReason::ChangedRemotely)
            ),
            ("app/bbb".into(), Action::Keep),
        ]
    );
    assert_eq!(remote.value("app", "aaa").as_deref(), Some("one"));
    // Deleted on the platform: created again, from the decrypted value.
    remote
        .vaults
        .lock()
        .unwrap()
        .get_mut("app")
        .unwrap()
        .remove("bbb");
    let (p, decrypted) = sync_store(&store, &ids, &remote, &mut state);
    assert_eq!(decrypted, 1);
    assert!(actions(&p).contains(&("app/bbb".into(), Action::Create)));
    assert_eq!(remote.value("app", "bbb").as_deref(), Some("two"));
}

#[test]
fn an_unchanged_secret_whose_file_was_tampered_with_fails_verification_without_decrypting() {
    let (_d, store, ids) = real_store(&[("aaa", "one"), ("bbb", "two")]);
    let remote = Fake::default();
    let mut state = State::in_memory();
    sync_store(&store, &ids, &remote, &mut state);
    // Another secret's file, valid on its own, in place of aaa's.
    let dir = store
        .vault(&"app".parse().unwrap())
        .unwrap()
        .dir()
        .to_owned();
    std::fs::copy(dir.join("bbb.age"), dir.join("aaa.age")).unwrap();
    let vaults = vec!["app".parse().unwrap()];
    let l = read_local(&store, &vaults, &ids, TARGET, &state).unwrap();
    assert_eq!(l[0].decrypted, 0);
    let aaa = &l[0].secrets[&"aaa".parse::<SecretName>().unwrap()];
    assert!(
        matches!(aaa, LocalSecret::Failed(IntegrityProblem::DigestMismatch)),
        "{aaa:?}"
    );
}

#[test]
fn a_record_without_a_file_digest_decrypts_once_then_records_it() {
    let (_d, store, ids) = real_store(&[("aaa", "one")]);
    let remote = Fake::default();
    let mut state = State::in_memory();
    sync_store(&store, &ids, &remote, &mut state);
    // As a version-2 state file is read: the same record, no file digest.
    let old = state.get("app", "aaa").unwrap().clone();
    state.set("app", "aaa", Record::new(old.digest, old.update_time));
    let (p, decrypted) = sync_store(&store, &ids, &remote, &mut state);
    assert_eq!(
        (decrypted, actions(&p)),
        (1, vec![("app/aaa".into(), Action::Keep)])
    );
    assert_eq!(
        state.get("app", "aaa").unwrap().file_digest,
        old.file_digest
    );
    assert_eq!(sync_store(&store, &ids, &remote, &mut state).1, 0);
}

/// A store of `aaa` and `bbb`, synced, then `bbb` changed; and the
/// store's read for the next sync, which decrypted `bbb` only.
fn synced_then_bbb_changed() -> (
    tempfile::TempDir,
    crate::store::Store,
    Identities,
    Vec<LocalVault>,
) {
    let (d, store, ids) = real_store(&[("aaa", "first-value"), ("bbb", "second-value")]);
    let remote = Fake::default();
    let mut state = State::in_memory();
    sync_store(&store, &ids, &remote, &mut state);
    set_values(&store, &ids, &[("bbb", "second-value, new")]);
    let vaults = vec!["app".parse().unwrap()];
    let l = read_local(&store, &vaults, &ids, TARGET, &state).unwrap();
    (d, store, ids, l)
}

#[test]
fn unread_values_reads_exactly_the_secrets_not_decrypted() {
    let (_d, store, ids, l) = synced_then_bbb_changed();
    let store = std::sync::Arc::new(store);
    let load = unread_values(store, &l, &ids)
        .unwrap()
        .expect("aaa was not decrypted");
    let values: Vec<String> = load()
        .unwrap()
        .iter()
        .map(|v| v.expose_secret().to_owned())
        .collect();
    assert_eq!(values, vec!["first-value".to_owned()]);
}

/// `read_values` decrypts only what the run holds without having
/// decrypted it: asked for a secret already decrypted, one not in the
/// store's read, or a vault not in it, it leaves the read as it was.
#[test]
fn read_values_reads_only_unchanged_secrets_whatever_it_is_asked() {
    let (_d, store, ids, mut l) = synced_then_bbb_changed();
    assert_eq!(l[0].decrypted, 1, "bbb changed");
    let name = |n: &str| -> SecretName { n.parse().unwrap() };
    let needed = vec![
        ("app".parse().unwrap(), vec![name("bbb"), name("zzz")]),
        ("other".parse().unwrap(), vec![name("aaa")]),
    ];
    read_values(&store, &mut l, &ids, TARGET, &needed).unwrap();
    assert_eq!(l[0].decrypted, 1, "nothing more decrypted");
    assert!(matches!(
        l[0].secrets[&name("aaa")],
        LocalSecret::Unchanged { .. }
    ));
    assert!(!l[0].secrets.contains_key(&name("zzz")));
    // Asked for aaa, it decrypts aaa.
    let needed = vec![("app".parse().unwrap(), vec![name("aaa")])];
    read_values(&store, &mut l, &ids, TARGET, &needed).unwrap();
    assert_eq!(l[0].decrypted, 2);
    assert!(matches!(
        l[0].secrets[&name("aaa")],
        LocalSecret::Ready { .. }
    ));
}

/// The plan as a look-up per name (what it was before it walked the
/// names alongside the target's list and the state's records): the
/// reference the walking [`plan`] and [`values_needed`] must match step for
/// step. Only the traversal is its own; deciding each action, each
/// vault's own step and the vaults only the target has are the plan's.
mod reference {
    use std::collections::BTreeSet;

    use super::*;
    use crate::name::platform_name_problem;
    use crate::sync::plan::{decide, plan_remote_only, step, vault_step};

    /// The unchanged secrets whose value the plan needs, as `read_values`
    /// chose them when it asked a predicate of each.
    pub fn values_needed(
        local: &[LocalVault],
        remote: &RemoteSnapshot,
        state: &State,
    ) -> Vec<(VaultName, Vec<SecretName>)> {
        let needs = |vault: &str, name: &str| {
            let rv = remote.vaults.get(vault);
            if rv.is_some_and(|v| matches!(v.ownership, Ownership::ManagedElsewhere(_))) {
                return false;
            }
            let r = rv.and_then(|v| v.secrets.get(name));
            decide(r, state.get(vault, name), None) != Action::Keep
        };
        local
            .iter()
            .map(|lv| {
                let names: Vec<SecretName> = lv
                    .secrets
                    .iter()
                    .filter(|(n, s)| {
                        matches!(s, LocalSecret::Unchanged { .. })
                            && needs(lv.name.as_str(), n.as_str())
                    })
                    .map(|(n, _)| n.clone())
                    .collect();
                (lv.name.clone(), names)
            })
            .filter(|(_, names)| !names.is_empty())
            .collect()
    }

    pub fn plan(
        local: &[LocalVault],
        remote: &RemoteSnapshot,
        state: &State,
        scope: Scope,
    ) -> Plan {
        let mut steps = Vec::new();
        let mut vaults: BTreeSet<&str> = local.iter().map(|v| v.name.as_str()).collect();
        if scope.prune && scope.all_vaults {
            vaults.extend(remote.vaults.keys().map(String::as_str));
        }
        for vname in vaults {
            let rv = remote.vaults.get(vname);
            match local.iter().find(|v| v.name.as_str() == vname) {
                Some(lv) => plan_vault(lv, rv, state, scope, &mut steps),
                None => plan_remote_only(vname, rv.unwrap(), &mut steps),
            }
        }
        Plan { steps }
    }

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
        let empty = BTreeMap::new();
        let remote_secrets = rv.map_or(&empty, |r| &r.secrets);
        let mut names: BTreeSet<&str> = lv.secrets.keys().map(SecretName::as_str).collect();
        if scope.prune && may_delete {
            names.extend(remote_secrets.keys().map(String::as_str));
        }
        for name in names {
            let Some(ls) = lv.secrets.get(name) else {
                let action = match platform_name_problem(name) {
                    Some(why) => Action::Skip(SkipReason::BadRemoteName(why)),
                    None => Action::Delete,
                };
                steps.push(step(vname, Some(name), action, false));
                continue;
            };
            let r = remote_secrets.get(name);
            let record = state.get(vname, name);
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
                } => (decide(r, record, Some(digest)), *rotation_due),
                LocalSecret::Unchanged { rotation_due, .. } => {
                    (decide(r, record, None), *rotation_due)
                }
            };
            steps.push(step(vname, Some(name), action, rotation_due));
        }
    }
}

mod walking_plan {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// A local secret, as a value proptest can hold: its kind (0 ready, 1
    /// unchanged, 2 unverified, 3 failed), which of two digests it has,
    /// and whether it is due for rotation.
    type LocalSpec = (u8, bool, bool);

    /// A remote vault: its ownership (0 to 2 free, 3 managed elsewhere, 4
    /// reserved, 5 unknown) and its secrets' update times.
    type RemoteSpec = (u8, BTreeMap<String, Option<u8>>);

    /// Names the store may hold: few, so that the target and the state
    /// name them too.
    fn local_name() -> impl Strategy<Value = String> {
        "[ab][ab-]{1,2}[ab]"
    }

    /// Names the platform may list: the store's, and any string at all in
    /// a small alphabet that sorts around them (empty, `-`, uppercase,
    /// `_`, a space, non-ASCII, too short).
    fn remote_name() -> impl Strategy<Value = String> {
        prop_oneof![local_name(), "[abAB_é -]{0,4}"]
    }

    fn vault_name() -> impl Strategy<Value = String> {
        "[ab]{3}"
    }

    fn remote_vault_name() -> impl Strategy<Value = String> {
        prop_oneof![3 => vault_name(), 1 => "[abA_]{0,3}"]
    }

    fn build_local(spec: &BTreeMap<String, BTreeMap<String, LocalSpec>>) -> Vec<LocalVault> {
        spec.iter()
            .map(|(v, secrets)| LocalVault {
                name: v.parse().unwrap(),
                secrets: secrets
                    .iter()
                    .map(|(n, &(kind, d, rotation_due))| {
                        let digest = [u8::from(d); 32];
                        let ls = match kind {
                            0 => LocalSecret::Ready {
                                value: SecretValue::from_string("v".into()).unwrap(),
                                digest,
                                file_digest: digest,
                                rotation_due,
                            },
                            1 => LocalSecret::Unchanged {
                                file_digest: digest,
                                rotation_due,
                            },
                            2 => LocalSecret::Unverified,
                            _ => LocalSecret::Failed(IntegrityProblem::BadMac),
                        };
                        (n.parse::<SecretName>().unwrap(), ls)
                    })
                    .collect(),
                decrypted: 0,
            })
            .collect()
    }

    fn time(t: u8) -> String {
        format!("2026-01-0{t}T00:00:00Z")
    }

    fn build_remote(spec: &BTreeMap<String, RemoteSpec>) -> RemoteSnapshot {
        let vaults = spec
            .iter()
            .map(|(v, (owner, secrets))| {
                let ownership = match owner {
                    0..=2 => Ownership::Free,
                    3 => Ownership::ManagedElsewhere("managed".into()),
                    4 => Ownership::Reserved("reserved".into()),
                    _ => Ownership::Unknown("unreadable".into()),
                };
                let secrets = secrets
                    .iter()
                    .map(|(n, t)| {
                        let r = RemoteSecret {
                            name: n.clone(),
                            update_time: t.map(time),
                        };
                        (n.clone(), r)
                    })
                    .collect();
                (v.clone(), RemoteVault { ownership, secrets })
            })
            .collect();
        RemoteSnapshot { vaults }
    }

    fn build_state(spec: &BTreeMap<String, BTreeMap<String, (bool, Option<u8>)>>) -> State {
        let mut state = State::in_memory();
        for (v, records) in spec {
            for (n, &(d, t)) in records {
                state.set(v, n, state::Record::new([u8::from(d); 32], t.map(time)));
            }
        }
        state
    }

    proptest! {
        #![proptest_config(crate::test_seed::config())]
        /// Whatever the store, the target (names that break the platform's
        /// rule sorting anywhere among the store's, vaults owned by others,
        /// reserved, unreadable or only the target's) and the state hold,
        /// the walking plan is the look-up plan, step for step, and it
        /// decrypts the same values.
        #[test]
        fn the_walking_plan_is_the_look_up_plan_step_for_step(
            local in proptest::collection::btree_map(
                vault_name(),
                proptest::collection::btree_map(
                    local_name(),
                    (0u8..4, any::<bool>(), any::<bool>()),
                    0..8,
                ),
                0..4,
            ),
            remote in proptest::collection::btree_map(
                remote_vault_name(),
                (
                    0u8..6,
                    proptest::collection::btree_map(
                        remote_name(),
                        proptest::option::of(1u8..3),
                        0..8,
                    ),
                ),
                0..5,
            ),
            records in proptest::collection::btree_map(
                remote_vault_name(),
                proptest::collection::btree_map(
                    remote_name(),
                    (any::<bool>(), proptest::option::of(1u8..3)),
                    0..8,
                ),
                0..4,
            ),
            prune in any::<bool>(),
            all_vaults in any::<bool>(),
        ) {
            let local = build_local(&local);
            let remote = build_remote(&remote);
            let state = build_state(&records);
            let scope = Scope { prune, all_vaults };
            prop_assert_eq!(
                values_needed(&local, &remote, &state),
                reference::values_needed(&local, &remote, &state)
            );
            prop_assert_eq!(
                plan(&local, &remote, &state, scope),
                reference::plan(&local, &remote, &state, scope)
            );
        }
    }
}
