//! The remote side of a sync, as the engine sees any target: the
//! [`Remote`] trait a target implements, its errors expressed in
//! target-neutral [`ErrorKind`]s, and [`fetch`], which reads what the
//! target holds into a [`RemoteSnapshot`].
//!
//! Nothing here knows a particular target: what a vault's labels mean,
//! which names are reserved and how a protocol's error codes map to kinds
//! is the target's business (see `sync::tailor`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::name::VaultName;
use crate::secret::SecretValue;

/// How many requests run at once, by default: enough to hide latency,
/// few enough to stay clear of rate limits.
pub const DEFAULT_WORKERS: usize = 4;

/// What kind of failure a request met, whatever the target's protocol
/// calls it. The engine decides on kinds only (retry, skip, stop); the
/// CLI picks its hints by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The credentials were refused.
    Unauthenticated,
    /// The credentials may not do this.
    PermissionDenied,
    /// The thing does not exist.
    NotFound,
    /// The thing exists already.
    AlreadyExists,
    /// The target refused the request as malformed or out of its limits.
    InvalidRequest,
    /// The target does not offer this operation.
    Unsupported,
    /// The target is limiting requests.
    Throttled,
    /// The target is unavailable for now.
    Unavailable,
    /// The target did not finish in time.
    TimedOut,
    /// No answer at all: connection refused or reset, timeout, bad HTTP.
    NoResponse,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Returns whether a request that failed this way is worth sending
    /// again.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Throttled | ErrorKind::NoResponse
        )
    }
}

/// A request to the target that failed. Its message comes from the
/// target or the network stack, with any value or token that was sent
/// removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteError {
    /// The operation, in the target's words (e.g. `CreateSecretManagerSecret`).
    pub method: &'static str,
    /// What kind of failure it was.
    pub kind: ErrorKind,
    /// The target's own description of the failure (its error code, in
    /// words).
    pub status: &'static str,
    /// The target's message (may be empty).
    pub message: String,
    /// How many times the request was sent.
    pub attempts: u32,
    /// The wait the target asked for (a `Retry-After` header, say) when
    /// that is why the request was not sent again: it was longer than the
    /// client would wait.
    pub retry_after: Option<std::time::Duration>,
}

impl RemoteError {
    /// Returns an error for `method` of `kind`, described as `status`.
    pub fn new(
        method: &'static str,
        kind: ErrorKind,
        status: &'static str,
        message: impl Into<String>,
    ) -> RemoteError {
        RemoteError {
            method,
            kind,
            status,
            message: message.into(),
            attempts: 1,
            retry_after: None,
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.method, self.status)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        if let Some(d) = self.retry_after {
            write!(f, " (it asked to retry after {} s)", d.as_secs())?;
        }
        Ok(())
    }
}

impl std::error::Error for RemoteError {}

/// A sync target's API as a sync needs it. Methods take names as strings
/// because remote names need not be local ones.
pub trait Remote: Sync {
    /// Returns an opaque id of the target, stable across runs and
    /// distinct for every target: it keys the sync state and separates
    /// the value digests of one target from another's.
    fn target_id(&self) -> String;
    /// Returns the names of every vault.
    fn list_vaults(&self) -> Result<Vec<String>, RemoteError>;
    /// Returns why a vault belongs to another tool (`Some("managed by
    /// …")`), or `None` if coffer may write to it. An error means the
    /// answer is not known now.
    fn managed_by(&self, vault: &str) -> Result<Option<String>, RemoteError>;
    /// Returns why a vault the store lacks must be left alone by its name
    /// alone (`None` if it may be pruned).
    fn reserved(&self, vault: &str) -> Option<String>;
    /// Returns every secret of a vault with its `updateTime`.
    fn list_secrets(&self, vault: &str) -> Result<Vec<RemoteSecret>, RemoteError>;
    /// Creates a vault.
    fn create_vault(&self, vault: &str) -> Result<(), RemoteError>;
    /// Deletes a vault.
    fn delete_vault(&self, vault: &str) -> Result<(), RemoteError>;
    /// Creates a secret; returns its new `updateTime` if the target said.
    fn create_secret(
        &self,
        vault: &str,
        name: &str,
        value: &SecretValue,
    ) -> Result<Option<String>, RemoteError>;
    /// Sets a secret's value; returns its new `updateTime` if the target
    /// said.
    fn update_secret(
        &self,
        vault: &str,
        name: &str,
        value: &SecretValue,
    ) -> Result<Option<String>, RemoteError>;
    /// Deletes a secret.
    fn delete_secret(&self, vault: &str, name: &str) -> Result<(), RemoteError>;
}

/// A secret as the target lists it (it never returns values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteSecret {
    /// Its name.
    pub name: String,
    /// Its `updateTime`, normalised by [`normalize_time`].
    pub update_time: Option<String>,
}

/// Normalises an RFC 3339 time so that two spellings of one instant
/// compare equal; anything that does not parse is kept as it is (an
/// opaque string).
pub fn normalize_time(s: &str) -> String {
    match s.parse::<jiff::Timestamp>() {
        Ok(t) => t.to_string(),
        Err(_) => s.to_owned(),
    }
}

/// Whether a remote vault belongs to someone else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// coffer may write to it.
    Free,
    /// Another tool manages it (the target says why): coffer leaves it.
    ManagedElsewhere(String),
    /// Its name reserves it for another tool (the target says why): coffer
    /// writes to it only if the store has a vault of that name, and never
    /// prunes it.
    Reserved(String),
    /// Its labels could not be read (the message says why): coffer writes
    /// to it but deletes nothing in it.
    Unknown(String),
}

/// A remote vault as [`fetch`] saw it.
#[derive(Clone, Debug)]
pub struct RemoteVault {
    /// Whether coffer may change it.
    pub ownership: Ownership,
    /// Its secrets by name (empty for a vault managed by the SDK, which
    /// is not listed).
    pub secrets: BTreeMap<String, RemoteSecret>,
}

/// What the target holds, as far as a sync needs to know.
#[derive(Clone, Debug, Default)]
pub struct RemoteSnapshot {
    /// The vaults by name.
    pub vaults: BTreeMap<String, RemoteVault>,
}

/// Which remote things a sync looks at and may delete.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope {
    /// Delete remote secrets (and, with `all_vaults`, vaults) that the
    /// store does not have.
    pub prune: bool,
    /// The sync covers the whole store (no `-V`): remote vaults that the
    /// store lacks are pruned too.
    pub all_vaults: bool,
}

/// Runs `f` over `items` on up to `workers` threads; results are in the
/// order of `items`.
pub fn parallel<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().expect("no worker panics holding it")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no worker panics holding it")
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}

/// Reads what the target holds for a sync of the store's vaults `local`:
/// the vault list, then, for each vault in scope, its owner and its
/// secrets. It needs nothing of the store but these names, so it may run
/// while the store is read.
pub fn fetch(
    remote: &dyn Remote,
    local: &[VaultName],
    scope: Scope,
    workers: usize,
) -> Result<RemoteSnapshot, RemoteError> {
    let remote_names: BTreeSet<String> = match remote.list_vaults() {
        Ok(names) => names.into_iter().collect(),
        // "No vaults yet", as some targets say it.
        Err(e) if e.kind == ErrorKind::NotFound => BTreeSet::new(),
        Err(e) => return Err(e),
    };
    let local_names: BTreeSet<&str> = local.iter().map(VaultName::as_str).collect();
    let relevant: Vec<&String> = remote_names
        .iter()
        .filter(|n| local_names.contains(n.as_str()) || (scope.prune && scope.all_vaults))
        .collect();
    let fetched = parallel(&relevant, workers, |name| -> Result<_, RemoteError> {
        // A name that breaks the platform's rule is never sent back, not
        // even to read it: the plan leaves it alone.
        if crate::name::platform_name_problem(name).is_some() {
            return Ok(Some(RemoteVault {
                ownership: Ownership::Free,
                secrets: BTreeMap::new(),
            }));
        }
        let ownership = match remote.managed_by(name) {
            Ok(Some(why)) => Ownership::ManagedElsewhere(why),
            Ok(None) => match remote.reserved(name) {
                Some(why) => Ownership::Reserved(why),
                None => Ownership::Free,
            },
            Err(e) if matches!(e.kind, ErrorKind::Unauthenticated | ErrorKind::NoResponse) => {
                return Err(e);
            }
            // The owner may be recorded but could not be read now: nothing
            // in this vault is deleted.
            Err(e) => Ownership::Unknown(e.to_string()),
        };
        let secrets = if matches!(ownership, Ownership::ManagedElsewhere(_)) {
            BTreeMap::new()
        } else {
            match remote.list_secrets(name) {
                Ok(list) => list.into_iter().map(|s| (s.name.clone(), s)).collect(),
                // Deleted since the vault list: treat as absent below.
                Err(e) if e.kind == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            }
        };
        Ok(Some(RemoteVault { ownership, secrets }))
    });
    let mut snapshot = RemoteSnapshot::default();
    for (name, r) in relevant.into_iter().zip(fetched) {
        if let Some(v) = r? {
            snapshot.vaults.insert(name.clone(), v);
        }
    }
    Ok(snapshot)
}
