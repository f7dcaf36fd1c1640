//! The library's error type.
//!
//! Every variant names the thing that went wrong (a path, a vault, a secret,
//! a line number) and never its content: no value, identity or token can
//! reach an error message. What the user should do next is the CLI's
//! business (it adds `hint:` lines); these messages only say what happened.

use std::io;
use std::path::PathBuf;

/// What a name names; used in error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    /// A vault name.
    Vault,
    /// A secret name.
    Secret,
    /// A recipient name in `coffer.toml`.
    Recipient,
}

impl std::fmt::Display for NameKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            NameKind::Vault => "vault",
            NameKind::Secret => "secret",
            NameKind::Recipient => "recipient",
        })
    }
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueProblem {
    /// The value is empty.
    Empty,
    /// The value is longer than the limit.
    TooLarge {
        /// Its length in bytes.
        len: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The value is not valid UTF-8.
    NotUtf8 {
        /// The byte offset of the first invalid byte.
        offset: usize,
    },
}

impl std::fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueProblem::Empty => f.write_str("the value is empty"),
            ValueProblem::TooLarge { len, max } => write!(
                f,
                "the value is {len} bytes, over the limit of {max} bytes ({} KiB)",
                max / 1024
            ),
            ValueProblem::NotUtf8 { offset } => write!(
                f,
                "the value is not valid UTF-8 (first bad byte at offset {offset})"
            ),
        }
    }
}

/// What is wrong with a stored secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IntegrityProblem {
    /// The manifest lists it but its file is missing.
    MissingFile,
    /// Its file's SHA-256 differs from the manifest's digest: the file was
    /// replaced, rolled back or damaged.
    DigestMismatch,
    /// Its manifest entry's MAC does not verify: the entry was written by
    /// someone without the vault key, or damaged.
    BadMac,
    /// The entry has no MAC: a write-only contribution not yet accepted.
    Unverified,
    /// The file is not an ASCII-armored age file with exactly one stanza.
    Malformed(String),
}

impl std::fmt::Display for IntegrityProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntegrityProblem::MissingFile => f.write_str("its file is missing"),
            IntegrityProblem::DigestMismatch => f.write_str(
                "its file does not match the manifest's digest (replaced, rolled back or damaged)",
            ),
            IntegrityProblem::BadMac => f.write_str(
                "its manifest entry does not verify (written without the vault key, or damaged)",
            ),
            IntegrityProblem::Unverified => {
                f.write_str("it is an unverified contribution, not yet accepted by a recipient")
            }
            IntegrityProblem::Malformed(why) => write!(f, "its file is malformed: {why}"),
        }
    }
}

/// How a recipient differs between two lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeKind {
    /// A new recipient.
    Added,
    /// The same name with another key.
    KeyChanged,
    /// A recipient taken away.
    Removed,
}

/// One recipient change awaiting approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientChange {
    /// The recipient's name.
    pub name: String,
    /// What changed.
    pub kind: ChangeKind,
    /// The fingerprint of the key concerned (the new key for additions and
    /// key changes, the old one for removals).
    pub fingerprint: String,
}

impl std::fmt::Display for RecipientChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (sign, what) = match self.kind {
            ChangeKind::Added => ('+', "added"),
            ChangeKind::KeyChanged => ('~', "key changed"),
            ChangeKind::Removed => ('-', "removed"),
        };
        write!(f, "{sign} {} ({what}, {})", self.name, self.fingerprint)
    }
}

/// One place where coffer looked for an identity, and what it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// The place: `--identity FILE`, `COFFER_AGE_KEY`, a path…
    pub place: String,
    /// What happened there: `not set`, `not found`, `no match`…
    pub outcome: String,
}

/// The library's error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O operation on a path failed.
    #[error("could not {op} {}: {source}", path.display())]
    Io {
        /// What coffer was doing: `read`, `write`, `rename`…
        op: &'static str,
        /// The path it was working on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// No store was found.
    #[error("no coffer store found in {} or any parent directory", start.display())]
    StoreNotFound {
        /// Where the search started.
        start: PathBuf,
    },

    /// A store found by walking up from the current directory belongs to
    /// another user.
    #[error("{} is owned by another user (uid {owner}): coffer does not use a store it finds in another user's directory", path.display())]
    UnsafeStore {
        /// The file or directory owned by someone else.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The store directory.
        store: PathBuf,
    },

    /// The directory given as the store holds no `coffer.toml`.
    #[error("{} is not a coffer store (it has no coffer.toml)", path.display())]
    NotAStore {
        /// The directory.
        path: PathBuf,
    },

    /// `init` found an existing store.
    #[error("a coffer store already exists at {}", path.display())]
    StoreExists {
        /// The existing `coffer.toml`.
        path: PathBuf,
    },

    /// A name does not follow the rules.
    #[error("invalid {kind} name {name:?}: {reason}")]
    InvalidName {
        /// Vault, secret or recipient.
        kind: NameKind,
        /// The name as given.
        name: String,
        /// Why it is invalid.
        reason: &'static str,
    },

    /// A recipient key does not parse.
    #[error("invalid recipient: {reason}")]
    InvalidRecipient {
        /// Why.
        reason: String,
    },

    /// A recipient name is used twice or not at all.
    #[error("no recipient named {name:?} in coffer.toml")]
    UnknownRecipient {
        /// The name.
        name: String,
    },

    /// The vault does not exist.
    #[error("vault {name:?} not found")]
    VaultNotFound {
        /// The vault.
        name: String,
    },

    /// The vault already exists.
    #[error("vault {name:?} already exists")]
    VaultExists {
        /// The vault.
        name: String,
    },

    /// A vault still holds secrets.
    #[error("vault {name:?} still holds {count} secret{}", if *count == 1 { "" } else { "s" })]
    VaultNotEmpty {
        /// The vault.
        name: String,
        /// How many secrets it holds.
        count: usize,
    },

    /// The secret does not exist.
    #[error("secret {name:?} not found in vault {vault:?}")]
    SecretNotFound {
        /// The vault.
        vault: String,
        /// The secret.
        name: String,
    },

    /// The secret already exists.
    #[error("secret {name:?} already exists in vault {vault:?}")]
    SecretExists {
        /// The vault.
        vault: String,
        /// The secret.
        name: String,
    },

    /// A value was refused.
    #[error("{0}")]
    Value(ValueProblem),

    /// `coffer.toml` does not parse or holds something invalid.
    #[error("{}: {message}", path.display())]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong (may include a line and column, never a value).
        message: String,
    },

    /// A store file holds git's conflict markers: a merge ran without
    /// coffer's merge driver.
    #[error("{} holds git conflict markers: it was merged without coffer's merge driver", path.display())]
    ConflictMarkers {
        /// The file.
        path: PathBuf,
    },

    /// A manifest does not parse or holds something invalid.
    #[error("{}: {message}", path.display())]
    Manifest {
        /// The manifest.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A file coffer reads or writes (in the store, or its own state) is a
    /// symbolic link.
    #[error("{} is a symbolic link; coffer does not follow links to its own files", path.display())]
    Symlink {
        /// The link.
        path: PathBuf,
    },

    /// Running `git` failed.
    #[error("{command} failed: {message}")]
    Git {
        /// The git command (its first words).
        command: String,
        /// What git said (its first line of stderr).
        message: String,
    },

    /// The directory is not inside a git work tree.
    #[error("{} is not inside a git work tree", path.display())]
    NotARepository {
        /// The directory.
        path: PathBuf,
    },

    /// A revision does not name a commit.
    #[error("unknown revision {rev:?}: no such commit")]
    UnknownRevision {
        /// The revision as given.
        rev: String,
    },

    /// A stored secret failed its integrity checks.
    #[error("secret {name:?} in vault {vault:?} failed verification: {problem}")]
    Integrity {
        /// The vault.
        vault: String,
        /// The secret.
        name: String,
        /// What failed.
        problem: IntegrityProblem,
    },

    /// The decrypted vault key does not match the manifest's public key.
    #[error("the key in {vault}/vault-key.age does not match the public key in its manifest")]
    VaultKeyMismatch {
        /// The vault.
        vault: String,
    },

    /// The vault's recipients differ from what a key holder approved:
    /// `coffer.toml` or the manifest was edited without the vault key.
    #[error("vault {vault:?} has recipient changes that no one holding its key has approved{}: {}",
        if *manifest_edited { " (its vault.toml was edited without the key)" } else { "" },
        changes.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "))]
    UnapprovedRecipients {
        /// The vault.
        vault: String,
        /// True if the manifest's own recipient list fails its MAC.
        manifest_edited: bool,
        /// The changes.
        changes: Vec<RecipientChange>,
    },

    /// A change would leave a vault that nobody can open.
    #[error("vault {vault:?} would have no recipients left")]
    NoRecipientsLeft {
        /// The vault.
        vault: String,
    },

    /// This machine's trust record for a store does not parse.
    #[error("the trust record {} does not parse (line {line})", path.display())]
    TrustRecord {
        /// The file.
        path: PathBuf,
        /// The first bad line, from 1.
        line: usize,
    },

    /// A contribution is not bound to the name it is listed under.
    #[error("contribution {name:?} of vault {vault:?} is not bound to that name{}", match claims { Some(c) => format!(": its plaintext says it is {c}"), None => ": it was written by format-1 coffer, or it is a sealed value whose MAC was removed".to_owned() })]
    ContributionUnbound {
        /// The vault.
        vault: String,
        /// The secret.
        name: String,
        /// What it claims to be, if bound elsewhere.
        claims: Option<String>,
    },

    /// A format-1 vault is written to by someone without its key: only a
    /// key holder can upgrade it, and coffer never writes format 1.
    #[error(
        "vault {vault:?} is in format 1, which coffer no longer writes, and upgrading it needs its key"
    )]
    FormatUpgradeNeeded {
        /// The vault.
        vault: String,
    },

    /// A vault's keyring does not hold the vault key this machine last saw
    /// for it: the vault was replaced, not rotated.
    #[error(
        "vault {vault:?} was replaced: its keyring does not hold the vault key this machine last saw (was {trusted}, now {found})"
    )]
    VaultKeyReplaced {
        /// The vault.
        vault: String,
        /// The public key last seen.
        trusted: String,
        /// The current public key of the keyring found.
        found: String,
    },

    /// Re-encrypting needs every secret to verify first.
    #[error("cannot re-encrypt vault {vault:?}: {count} secret{} failed verification ({names})", if *count == 1 { "" } else { "s" })]
    RekeyBlocked {
        /// The vault.
        vault: String,
        /// How many secrets failed.
        count: usize,
        /// Their names, comma-separated.
        names: String,
    },

    /// `vault-key.age` could not be decrypted with any identity.
    #[error("no identity can open vault {vault:?}")]
    NoMatchingIdentity {
        /// The vault.
        vault: String,
        /// Every place that was tried.
        tried: Vec<Tried>,
    },

    /// No identity was found anywhere.
    #[error("no identity found")]
    NoIdentity {
        /// Every place that was tried.
        tried: Vec<Tried>,
    },

    /// An identity file cannot be used.
    #[error("identity {place}: {message}")]
    Identity {
        /// Where it came from (a path or `COFFER_AGE_KEY`).
        place: String,
        /// What is wrong (a line number at most, never the content).
        message: String,
    },

    /// An identity file is readable by other users.
    #[error("identity file {} is accessible by other users (mode {mode:04o})", path.display())]
    IdentityPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },

    /// A file exists where coffer must not overwrite.
    #[error("{} already exists; coffer never overwrites an identity", path.display())]
    WouldOverwrite {
        /// The file.
        path: PathBuf,
    },

    /// age failed to decrypt a file.
    #[error("could not decrypt {}: {message}", path.display())]
    Decrypt {
        /// The file.
        path: PathBuf,
        /// age's message.
        message: String,
    },

    /// age failed to encrypt.
    #[error("could not encrypt: {message}")]
    Encrypt {
        /// age's message.
        message: String,
    },

    /// A change failed after its commit point: it is recorded, and the
    /// next coffer command finishes it.
    #[error("{source}; the change was committed, and the next coffer command finishes it")]
    Committed {
        /// What failed while applying it.
        source: Box<Error>,
    },

    /// Another coffer process held the lock for too long.
    #[error("timed out after {seconds}s waiting for another coffer process to release {}", path.display())]
    LockTimeout {
        /// The locked directory.
        path: PathBuf,
        /// How long coffer waited.
        seconds: u64,
    },

    /// The vault changed under a command (another process rekeyed it).
    #[error("vault {vault:?} was changed by another process while this command ran")]
    Concurrent {
        /// The vault.
        vault: String,
    },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Returns the message of a TOML error, with its line, but without the
/// source excerpt the crate adds (which could quote a value).
pub(crate) fn toml_message(e: &dyn std::fmt::Display) -> String {
    let full = e.to_string();
    let mut lines = full.lines();
    let first = lines.next().unwrap_or("invalid TOML").trim().to_owned();
    // toml's messages look like "TOML parse error at line 3, column 7" followed
    // by an excerpt of the offending line and a final explanation; keep the
    // location and the explanation only.
    let last = full
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('|') && !l.contains('^'))
        .unwrap_or("")
        .trim()
        .to_owned();
    if last.is_empty() || last == first {
        first
    } else {
        format!("{first}: {last}")
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
