//! Pushing a store to the Tailor Platform's Secret Manager.
//!
//! The platform's API never returns a value, so a sync cannot compare
//! values with what is there. It compares with what *it* pushed last time
//! instead: the [`State`] keeps, per secret, a keyed digest of the value
//! last pushed and the remote `updateTime` seen afterwards. A secret is
//! pushed when it is missing remotely, when its value changed locally,
//! when its remote `updateTime` moved (someone changed it elsewhere), or
//! when there is no record of it (a fresh CI clone pushes everything once).
//!
//! A sync is three steps, each testable on its own:
//! 1. [`read_local`] decrypts and verifies every secret in scope;
//! 2. [`fetch`] reads the remote side through a [`Remote`] and [`plan`]
//!    computes the [`Plan`] (pure: no I/O);
//! 3. [`apply`] runs the plan's writes a few at a time and records each
//!    success in the state, so an interrupted run is finished by the next.
//!
//! Nothing here prints, prompts or reads the environment, and no value
//! ever reaches an error, a step or a note: a plan holds names only.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::crypto::identity::Identities;
use crate::error::{Error, IntegrityProblem, Result};
use crate::name::{SecretName, VaultName};
use crate::secret::SecretValue;
use crate::store::root::Store;

#[cfg(feature = "sync")]
pub mod client;
pub mod state;

pub use state::{Record, State};

/// How many requests run at once, by default: enough to hide latency,
/// few enough to stay clear of rate limits.
pub const DEFAULT_WORKERS: usize = 4;

/// The label the platform SDK's `defineSecretManager()` puts on the vaults
/// it owns.
pub const SDK_MANAGED_LABEL: &str = "sdk-name";

/// The prefix of the vaults the platform SDK creates for IdP client
/// secrets: never pruned unless the store has a vault of that name.
pub const IDP_VAULT_PREFIX: &str = "idp-";

/// A platform workspace id: a UUID (`8-4-4-4-12` hex digits), kept as
/// given.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WorkspaceId(String);

impl WorkspaceId {
    /// Returns the id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for WorkspaceId {
    type Err = SyncError;

    fn from_str(s: &str) -> Result<Self, SyncError> {
        let b = s.as_bytes();
        let ok = b.len() == 36
            && b.iter().enumerate().all(|(i, &c)| match i {
                8 | 13 | 18 | 23 => c == b'-',
                _ => c.is_ascii_hexdigit(),
            });
        if ok {
            Ok(WorkspaceId(s.to_owned()))
        } else {
            // Not echoed: a token pasted in the wrong place must not be
            // printed.
            Err(SyncError::InvalidWorkspaceId { len: s.len() })
        }
    }
}

impl fmt::Display for WorkspaceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Returns a URL fit for an error message: credentials (`user:pass@`), the
/// query and the fragment replaced by `…`, and at most 200 characters.
fn redact_url(s: &str) -> String {
    let (scheme, rest) = s.split_once("://").unwrap_or(("", s));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => authority.to_owned(),
    };
    let path = match tail.find(['?', '#']) {
        Some(i) => format!("{}…", &tail[..i]),
        None => tail.to_owned(),
    };
    let out = if scheme.is_empty() && !s.contains("://") {
        format!("{host}{path}")
    } else {
        format!("{scheme}://{host}{path}")
    };
    out.chars().take(200).collect()
}

/// The platform's base URL: `https://…`, or `http://…` for a loopback
/// host only (a local stand-in), with no trailing slash, query or
/// credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformUrl(String);

/// The platform's production API.
pub const DEFAULT_PLATFORM_URL: &str = "https://api.tailor.tech";

impl PlatformUrl {
    /// Returns the base URL, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PlatformUrl {
    type Err = SyncError;

    fn from_str(s: &str) -> Result<Self, SyncError> {
        let bad = |reason: &'static str| SyncError::InvalidUrl {
            url: redact_url(s),
            reason,
        };
        let trimmed = s.trim_end_matches('/');
        let (scheme, rest) = trimmed
            .split_once("://")
            .ok_or_else(|| bad("it must start with https://"))?;
        let authority = rest.split('/').next().unwrap_or_default();
        if rest.contains(['?', '#']) || authority.contains('@') {
            return Err(bad("it must not hold a query, a fragment or credentials"));
        }
        if !rest.is_ascii() || rest.contains(|c: char| c.is_ascii_whitespace()) {
            return Err(bad("it holds a space or a character that is not ASCII"));
        }
        let host = if let Some(v6) = authority.strip_prefix('[') {
            v6.split(']').next().unwrap_or_default()
        } else {
            authority.split(':').next().unwrap_or_default()
        };
        if host.is_empty() {
            return Err(bad("it has no host"));
        }
        match scheme.to_ascii_lowercase().as_str() {
            "https" => {}
            "http" if is_loopback(host) => {}
            "http" => {
                return Err(bad(
                    "plain http is accepted for a loopback host only (127.0.0.1, ::1, localhost)",
                ));
            }
            _ => return Err(bad("it must start with https://")),
        }
        Ok(PlatformUrl(trimmed.to_owned()))
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl fmt::Display for PlatformUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Connect error code, plus `Transport` for a request that got no
/// answer at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Code {
    Canceled,
    Unknown,
    InvalidArgument,
    DeadlineExceeded,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    ResourceExhausted,
    FailedPrecondition,
    Aborted,
    OutOfRange,
    Unimplemented,
    Internal,
    Unavailable,
    DataLoss,
    Unauthenticated,
    /// No response: connection refused or reset, timeout, bad HTTP.
    Transport,
}

impl Code {
    /// Parses a Connect code name (`not_found`…).
    pub fn from_name(s: &str) -> Option<Code> {
        Some(match s {
            "canceled" => Code::Canceled,
            "unknown" => Code::Unknown,
            "invalid_argument" => Code::InvalidArgument,
            "deadline_exceeded" => Code::DeadlineExceeded,
            "not_found" => Code::NotFound,
            "already_exists" => Code::AlreadyExists,
            "permission_denied" => Code::PermissionDenied,
            "resource_exhausted" => Code::ResourceExhausted,
            "failed_precondition" => Code::FailedPrecondition,
            "aborted" => Code::Aborted,
            "out_of_range" => Code::OutOfRange,
            "unimplemented" => Code::Unimplemented,
            "internal" => Code::Internal,
            "unavailable" => Code::Unavailable,
            "data_loss" => Code::DataLoss,
            "unauthenticated" => Code::Unauthenticated,
            _ => return None,
        })
    }

    /// Returns the code for an HTTP status without a Connect error body
    /// (the Connect protocol's own table).
    pub fn from_http_status(status: u16) -> Code {
        match status {
            400 => Code::Internal,
            401 => Code::Unauthenticated,
            403 => Code::PermissionDenied,
            404 => Code::Unimplemented,
            429 | 502..=504 => Code::Unavailable,
            _ => Code::Unknown,
        }
    }

    /// Returns the Connect name of the code (`transport` for no answer).
    pub fn name(self) -> &'static str {
        match self {
            Code::Canceled => "canceled",
            Code::Unknown => "unknown",
            Code::InvalidArgument => "invalid_argument",
            Code::DeadlineExceeded => "deadline_exceeded",
            Code::NotFound => "not_found",
            Code::AlreadyExists => "already_exists",
            Code::PermissionDenied => "permission_denied",
            Code::ResourceExhausted => "resource_exhausted",
            Code::FailedPrecondition => "failed_precondition",
            Code::Aborted => "aborted",
            Code::OutOfRange => "out_of_range",
            Code::Unimplemented => "unimplemented",
            Code::Internal => "internal",
            Code::Unavailable => "unavailable",
            Code::DataLoss => "data_loss",
            Code::Unauthenticated => "unauthenticated",
            Code::Transport => "transport",
        }
    }

    /// Returns whether a request that failed with this code is worth
    /// sending again.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Code::Unavailable | Code::ResourceExhausted | Code::Transport
        )
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Code::Unauthenticated => "the platform did not accept the token (unauthenticated)",
            Code::PermissionDenied => "the token is not allowed to do this (permission_denied)",
            Code::NotFound => "not found (not_found)",
            Code::AlreadyExists => "already exists (already_exists)",
            Code::InvalidArgument => "the platform refused the request (invalid_argument)",
            Code::Unavailable => "the platform is unavailable (unavailable)",
            Code::ResourceExhausted => "too many requests (resource_exhausted)",
            Code::Transport => "no response from the platform",
            other => other.name(),
        })
    }
}

/// A request to the platform that failed. Its message comes from the
/// platform or the network stack, with any value or token that was sent
/// removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteError {
    /// The API method, e.g. `CreateSecretManagerSecret`.
    pub method: &'static str,
    /// What went wrong.
    pub code: Code,
    /// The platform's message (may be empty).
    pub message: String,
    /// How many times the request was sent.
    pub attempts: u32,
    /// The wait the platform asked for (its `Retry-After` header) when
    /// that is why the request was not sent again: it was longer than the
    /// client would wait.
    pub retry_after: Option<std::time::Duration>,
}

impl RemoteError {
    /// Returns an error for `method` with `code`.
    pub fn new(method: &'static str, code: Code, message: impl Into<String>) -> RemoteError {
        RemoteError {
            method,
            code,
            message: message.into(),
            attempts: 1,
            retry_after: None,
        }
    }
}

impl fmt::Display for RemoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.method, self.code)?;
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

/// Why a sync could not start or could not read the platform.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The workspace id is not a UUID.
    #[error("invalid workspace id ({len} characters): it must be a UUID")]
    InvalidWorkspaceId {
        /// The length of what was given (not the text: it could be a
        /// token pasted in the wrong place).
        len: usize,
    },

    /// The platform URL is not acceptable.
    #[error("invalid platform URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why.
        reason: &'static str,
    },

    /// The token cannot be sent in an HTTP header.
    #[error("the platform token holds characters that cannot be sent in an HTTP header")]
    InvalidToken,

    /// Reading the platform's vaults or secrets failed.
    #[error("{0}")]
    Remote(RemoteError),
}

/// The platform's API as a sync needs it. Methods take names as strings
/// because remote names need not be local ones.
pub trait Remote: Sync {
    /// Returns the names of every vault in the workspace.
    fn list_vaults(&self) -> Result<Vec<String>, RemoteError>;
    /// Returns the labels of a vault (`GetMetadata`).
    fn vault_labels(&self, vault: &str) -> Result<BTreeMap<String, String>, RemoteError>;
    /// Returns every secret of a vault with its `updateTime`.
    fn list_secrets(&self, vault: &str) -> Result<Vec<RemoteSecret>, RemoteError>;
    /// Creates a vault.
    fn create_vault(&self, vault: &str) -> Result<(), RemoteError>;
    /// Deletes a vault.
    fn delete_vault(&self, vault: &str) -> Result<(), RemoteError>;
    /// Creates a secret; returns its new `updateTime` if the platform said.
    fn create_secret(
        &self,
        vault: &str,
        name: &str,
        value: &SecretValue,
    ) -> Result<Option<String>, RemoteError>;
    /// Sets a secret's value; returns its new `updateTime` if the platform
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

/// A secret as the platform lists it (it never returns values).
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

/// One secret of the store, read and verified.
pub enum LocalSecret {
    /// It verifies; ready to push.
    Ready {
        /// The value.
        value: SecretValue,
        /// Its keyed digest (see [`crate::crypto::VaultKey::value_digest`]).
        digest: [u8; 32],
        /// Someone who could read it was removed: it should be rotated.
        rotation_due: bool,
    },
    /// A write-only contribution nobody has accepted yet: never pushed.
    Unverified,
    /// It failed verification: never pushed.
    Failed(IntegrityProblem),
}

impl fmt::Debug for LocalSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalSecret::Ready { rotation_due, .. } => f
                .debug_struct("Ready")
                .field("rotation_due", rotation_due)
                .finish_non_exhaustive(),
            LocalSecret::Unverified => f.write_str("Unverified"),
            LocalSecret::Failed(p) => f.debug_tuple("Failed").field(p).finish(),
        }
    }
}

/// One vault of the store, read and verified.
#[derive(Debug)]
pub struct LocalVault {
    /// Its name.
    pub name: VaultName,
    /// Its secrets.
    pub secrets: BTreeMap<SecretName, LocalSecret>,
}

/// Returns the domain of a secret's keyed digest in the state.
fn digest_domain(workspace: &WorkspaceId, vault: &VaultName, name: &SecretName) -> String {
    format!("{workspace}/{vault}/{name}")
}

/// Opens, verifies and decrypts every secret of `vaults`. A secret that
/// fails verification is kept as [`LocalSecret::Failed`] (reported, never
/// pushed); a vault that cannot be opened is an error.
pub fn read_local(
    store: &Store,
    vaults: &[VaultName],
    identities: &Identities,
    workspace: &WorkspaceId,
) -> Result<Vec<LocalVault>> {
    let mut out = Vec::with_capacity(vaults.len());
    for name in vaults {
        let vault = store.vault(name)?;
        let key = vault.unlock(identities)?;
        let read = vault.read()?;
        let mut secrets = BTreeMap::new();
        for (secret, entry) in &read.manifest().secrets {
            let local = match read.get(&key, secret) {
                Ok(value) => LocalSecret::Ready {
                    digest: key.value_digest(&digest_domain(workspace, name, secret), &value),
                    value,
                    rotation_due: entry.rotation.is_some(),
                },
                Err(Error::Integrity {
                    problem: IntegrityProblem::Unverified,
                    ..
                }) => LocalSecret::Unverified,
                Err(Error::Integrity { problem, .. }) => LocalSecret::Failed(problem),
                Err(e) => return Err(e),
            };
            secrets.insert(secret.clone(), local);
        }
        out.push(LocalVault {
            name: name.clone(),
            secrets,
        });
    }
    Ok(out)
}

/// Whether a remote vault belongs to someone else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// No `sdk-name` label: coffer may write to it.
    Free,
    /// Labelled by the SDK's `defineSecretManager()`: coffer leaves it.
    ManagedBySdk,
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

/// What the platform holds, as far as a sync needs to know.
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

/// Reads what the platform holds for a sync of `local`: the vault list,
/// then, for each vault in scope, its labels and its secrets.
pub fn fetch(
    remote: &dyn Remote,
    local: &[LocalVault],
    scope: Scope,
    workers: usize,
) -> Result<RemoteSnapshot, RemoteError> {
    let remote_names: BTreeSet<String> = match remote.list_vaults() {
        Ok(names) => names.into_iter().collect(),
        // What the platform SDK's deploy takes to mean "no vaults yet".
        Err(e) if e.code == Code::NotFound => BTreeSet::new(),
        Err(e) => return Err(e),
    };
    let local_names: BTreeSet<&str> = local.iter().map(|v| v.name.as_str()).collect();
    let relevant: Vec<&String> = remote_names
        .iter()
        .filter(|n| local_names.contains(n.as_str()) || (scope.prune && scope.all_vaults))
        .collect();
    let fetched = parallel(&relevant, workers, |name| -> Result<_, RemoteError> {
        let ownership = match remote.vault_labels(name) {
            Ok(labels) if labels.contains_key(SDK_MANAGED_LABEL) => Ownership::ManagedBySdk,
            Ok(_) => Ownership::Free,
            Err(e) if matches!(e.code, Code::Unauthenticated | Code::Transport) => return Err(e),
            // The labels exist but could not be read now.
            Err(e)
                if matches!(
                    e.code,
                    Code::PermissionDenied
                        | Code::Unavailable
                        | Code::ResourceExhausted
                        | Code::DeadlineExceeded
                ) =>
            {
                Ownership::Unknown(e.to_string())
            }
            // No metadata for the vault, or a platform or stand-in without
            // the metadata methods: nobody labelled it.
            Err(e)
                if matches!(
                    e.code,
                    Code::NotFound | Code::Unimplemented | Code::InvalidArgument
                ) =>
            {
                Ownership::Free
            }
            // Anything else (an internal error, say): the labels may exist,
            // so nothing in this vault is deleted.
            Err(e) => Ownership::Unknown(e.to_string()),
        };
        let secrets = if ownership == Ownership::ManagedBySdk {
            BTreeMap::new()
        } else {
            match remote.list_secrets(name) {
                Ok(list) => list.into_iter().map(|s| (s.name.clone(), s)).collect(),
                // Deleted since the vault list: treat as absent below.
                Err(e) if e.code == Code::NotFound => return Ok(None),
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
    /// The vault is managed by the SDK's `defineSecretManager()`.
    ManagedBySdk,
    /// The vault's name marks it as created by the platform SDK for an IdP.
    IdpVault,
    /// The vault's labels could not be read, so nothing in it is deleted.
    OwnershipUnknown(String),
}

impl SkipReason {
    /// A short phrase for the plan.
    pub fn describe(&self) -> String {
        match self {
            SkipReason::Unverified => {
                "unverified contribution, not pushed until a recipient accepts it".into()
            }
            SkipReason::FailedVerification(p) => format!("failed verification ({p}), not pushed"),
            SkipReason::ManagedBySdk => format!(
                "managed by the SDK's defineSecretManager() (label {SDK_MANAGED_LABEL}), left alone"
            ),
            SkipReason::IdpVault => {
                "created by the platform SDK for an IdP client, left alone".into()
            }
            SkipReason::OwnershipUnknown(e) => {
                format!("its labels could not be read ({e}), so nothing in it is deleted")
            }
        }
    }
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `CreateSecretManagerVault`.
    CreateVault,
    /// `DeleteSecretManagerVault` (after its secrets' deletions).
    DeleteVault,
    /// `CreateSecretManagerSecret`.
    Create,
    /// `UpdateSecretManagerSecret`.
    Update(UpdateReason),
    /// Nothing: the platform already has this value.
    Keep,
    /// `DeleteSecretManagerSecret` (only with `--prune`).
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

/// Computes the plan. Pure: the local store, the remote snapshot and the
/// state in, the steps out.
pub fn plan(local: &[LocalVault], remote: &RemoteSnapshot, state: &State, scope: Scope) -> Plan {
    let mut steps = Vec::new();
    let step = |vault: &str, secret: Option<&str>, action: Action, rotation_due: bool| Step {
        vault: vault.to_owned(),
        secret: secret.map(str::to_owned),
        action,
        rotation_due,
    };
    let mut vault_names: BTreeSet<&str> = local.iter().map(|v| v.name.as_str()).collect();
    if scope.prune && scope.all_vaults {
        vault_names.extend(remote.vaults.keys().map(String::as_str));
    }
    for vname in vault_names {
        let lv = local.iter().find(|v| v.name.as_str() == vname);
        let rv = remote.vaults.get(vname);
        let Some(lv) = lv else {
            // Remote only (we are pruning every vault).
            let rv = rv.expect("a name comes from one side or the other");
            let skip = match &rv.ownership {
                Ownership::ManagedBySdk => Some(SkipReason::ManagedBySdk),
                Ownership::Unknown(e) => Some(SkipReason::OwnershipUnknown(e.clone())),
                Ownership::Free if vname.starts_with(IDP_VAULT_PREFIX) => {
                    Some(SkipReason::IdpVault)
                }
                Ownership::Free => None,
            };
            if let Some(why) = skip {
                steps.push(step(vname, None, Action::Skip(why), false));
                continue;
            }
            for name in rv.secrets.keys() {
                steps.push(step(vname, Some(name), Action::Delete, false));
            }
            steps.push(step(vname, None, Action::DeleteVault, false));
            continue;
        };
        let may_delete = match rv.map(|r| &r.ownership) {
            Some(Ownership::ManagedBySdk) => {
                steps.push(step(
                    vname,
                    None,
                    Action::Skip(SkipReason::ManagedBySdk),
                    false,
                ));
                continue;
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
                false
            }
            Some(Ownership::Free) => true,
            None => {
                steps.push(step(vname, None, Action::CreateVault, false));
                true
            }
        };
        let empty = BTreeMap::new();
        let remote_secrets = rv.map_or(&empty, |r| &r.secrets);
        let mut names: BTreeSet<&str> = lv.secrets.keys().map(SecretName::as_str).collect();
        if scope.prune && may_delete {
            names.extend(remote_secrets.keys().map(String::as_str));
        }
        for name in names {
            let local_secret = lv.secrets.iter().find(|(n, _)| n.as_str() == name);
            let Some((_, ls)) = local_secret else {
                steps.push(step(vname, Some(name), Action::Delete, false));
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
                } => {
                    let action = match (remote_secrets.get(name), state.get(vname, name)) {
                        (None, _) => Action::Create,
                        (Some(_), None) => Action::Update(UpdateReason::NotInState),
                        (Some(_), Some(rec)) if rec.digest != *digest => {
                            Action::Update(UpdateReason::ChangedLocally)
                        }
                        // A platform that lists no updateTime cannot show drift.
                        (Some(r), Some(rec))
                            if r.update_time.is_some() && rec.update_time != r.update_time =>
                        {
                            Action::Update(UpdateReason::ChangedRemotely)
                        }
                        (Some(_), Some(_)) => Action::Keep,
                    };
                    (action, *rotation_due)
                }
            };
            steps.push(step(vname, Some(name), action, rotation_due));
        }
    }
    Plan { steps }
}

/// What happened to one step of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done. The note says anything surprising ("it already existed").
    Applied(Option<&'static str>),
    /// The platform refused it, or never answered.
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
    let value_of = |s: &Step| -> Option<(&SecretValue, [u8; 32])> {
        let lv = local.iter().find(|v| v.name.as_str() == s.vault)?;
        let name = s.secret.as_deref()?;
        match lv.secrets.iter().find(|(n, _)| n.as_str() == name)?.1 {
            LocalSecret::Ready { value, digest, .. } => Some((value, *digest)),
            _ => None,
        }
    };
    let failed_vault = |vault: &str, action: &Action, outs: &[Option<Outcome>]| {
        plan.steps.iter().zip(outs).any(|(s, o)| {
            s.vault == vault
                && s.action == *action
                && matches!(o, Some(Outcome::Failed(_) | Outcome::NotAttempted(_)))
        })
    };
    let phases: [&dyn Fn(&Action) -> bool; 4] = [
        &|a| *a == Action::CreateVault,
        &|a| matches!(a, Action::Create | Action::Update(_)),
        &|a| *a == Action::Delete,
        &|a| *a == Action::DeleteVault,
    ];
    // A token that is refused once will be refused every time, and a
    // platform that asked for a longer wait than a run makes will refuse
    // the next requests too: stop there rather than send every other
    // request to be refused.
    let refused = std::sync::atomic::AtomicBool::new(false);
    let throttled = std::sync::atomic::AtomicBool::new(false);
    let mut written_without_time: BTreeSet<String> = BTreeSet::new();
    for in_phase in phases {
        let idx: Vec<usize> = (0..plan.steps.len())
            .filter(|&i| in_phase(&plan.steps[i].action))
            .collect();
        let results = parallel(&idx, workers, |&i| {
            let s = &plan.steps[i];
            let blocked = {
                let outs = outcomes.lock().expect("not poisoned");
                match s.action {
                    Action::Create | Action::Update(_) => {
                        failed_vault(&s.vault, &Action::CreateVault, &outs)
                            .then_some("its vault could not be created")
                    }
                    Action::DeleteVault => failed_vault(&s.vault, &Action::Delete, &outs)
                        .then_some("some of its secrets could not be deleted"),
                    _ => None,
                }
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
                && matches!(e.code, Code::Unauthenticated | Code::PermissionDenied)
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
                        let digest = value_of(s).expect("writes have values").1;
                        st.set(&s.vault, name, Record::new(digest, time.clone()));
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
    // A platform that does not return `updateTime` from writes: read it
    // back, so that the next sync sees nothing to do.
    let state = state.into_inner().expect("not poisoned");
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
/// write, the new `updateTime` if the platform said.
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
            Err(e) if e.code == Code::AlreadyExists => ok(Some("it already existed")),
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
                Err(e) if e.code == Code::AlreadyExists => {
                    match remote.update_secret(&s.vault, name, value) {
                        Ok(t) => (Outcome::Applied(Some("it already existed; updated")), t),
                        Err(e) => (Outcome::Failed(e), None),
                    }
                }
                // Deleted remotely since we listed it: create it again.
                Err(e) if e.code == Code::NotFound && s.action != Action::Create => {
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
            Err(e) if e.code == Code::NotFound => ok(Some("it was already gone")),
            Err(e) => (Outcome::Failed(e), None),
        },
        Action::DeleteVault => match remote.delete_vault(&s.vault) {
            Ok(()) => ok(None),
            Err(e) if e.code == Code::NotFound => ok(Some("it was already gone")),
            Err(e) => (Outcome::Failed(e), None),
        },
        Action::Keep | Action::Skip(_) => (Outcome::Applied(None), None),
    }
}

#[cfg(test)]
mod tests;
