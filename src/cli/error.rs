//! The CLI's error: a message, `hint:` lines, and an exit code.
//!
//! Library errors say what happened; this is where coffer adds what to do
//! next (rage's error + recommendation). Nothing here ever formats a value,
//! an identity or a token.

use std::fmt::Write as _;

use coffer::error::{IntegrityProblem, ValueProblem};
use coffer::name::NameKind;
use coffer::store::layout::{CONFIG_FILE, MANIFEST_FILE, STORE_DIR, VAULT_KEY_FILE};

/// An error on its way to the user.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub hints: Vec<String>,
    pub code: u8,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            hints: Vec::new(),
            code: 1,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> CliError {
        self.hints.push(hint.into());
        self
    }

    /// An exit status with nothing to say (`diff --exit-code`): the output
    /// already told the story.
    pub fn silent(code: u8) -> CliError {
        CliError {
            message: String::new(),
            hints: Vec::new(),
            code,
        }
    }

    /// Renders the error for stderr: `error: …` then `hint: …` lines.
    pub fn render(&self) -> String {
        if self.message.is_empty() && self.hints.is_empty() {
            return String::new();
        }
        let mut s = format!("error: {}\n", self.message);
        for h in &self.hints {
            let _ = writeln!(s, "hint: {h}");
        }
        s
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

fn tried_hint(tried: &[coffer::error::Tried]) -> String {
    let mut s = String::from("looked in:");
    for t in tried {
        let _ = write!(s, "\n  {} ({})", t.place, t.outcome);
    }
    s
}

impl From<coffer::Error> for CliError {
    fn from(e: coffer::Error) -> CliError {
        use coffer::Error as E;
        let err = CliError::new(e.to_string());
        match &e {
            E::UnsafeStore { store, .. } => err
                .hint(format!("check who owns {} and what it holds before you trust it", store.display()))
                .hint(format!("to use it anyway, pass --store {} or add it to COFFER_SAFE_DIRECTORIES", store.display())),
            E::StoreNotFound { .. } | E::NotAStore { .. } => err
                .hint("create a store here with `coffer init`, or point to one with --store DIR or COFFER_STORE"),
            E::InvalidName { kind: NameKind::Vault | NameKind::Secret, .. } => err.hint(
                "names are 3 to 63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit (the platform's rule)",
            ),
            E::InvalidName { kind: NameKind::Recipient, .. } => err
                .hint("recipient names are up to 64 letters, digits, '.', '_' and '-', starting with a letter or digit"),
            E::VaultNotFound { .. } => err
                .hint("`coffer vault list` shows the vaults; `coffer vault create NAME` makes one"),
            E::VaultNotEmpty { name, .. } => err.hint(format!(
                "delete its secrets first; `coffer list -V {name}` shows them"
            )),
            E::SecretNotFound { vault, .. } => err.hint(format!(
                "`coffer list -V {vault}` shows the vault's secrets; `coffer create` adds one"
            )),
            E::SecretExists { .. } => err.hint("use `coffer update` to change its value"),
            E::Value(ValueProblem::TooLarge { .. }) => {
                err.hint("store large data elsewhere, or split it across several secrets")
            }
            E::Value(ValueProblem::NotUtf8 { .. }) => {
                err.hint("coffer stores text, like the platform: encode binary data with base64 first")
            }
            E::Integrity { problem: IntegrityProblem::Unverified, .. } => err.hint(
                "a recipient of the vault can accept it with `coffer verify --accept` after checking it",
            ),
            E::Integrity { .. } => err
                .hint("`coffer verify` reports every problem in the store")
                .hint("restore the files from git (`git checkout -- vaults/`), or set a new value with `coffer update`"),
            E::NoMatchingIdentity { tried, .. } => err
                .hint(tried_hint(tried))
                .hint("pass your key with --identity FILE or COFFER_AGE_KEY, or ask someone who can open the vault to add your recipient"),
            E::NoIdentity { tried } => {
                let err = err.hint(tried_hint(tried));
                // A default file skipped as unsafe is there: keygen would
                // refuse to overwrite it, so say how to make it safe.
                if tried.iter().any(|t| t.outcome.contains("accessible by other users")) {
                    err.hint("make the identity file private (the chmod above), or pass one with --identity FILE or COFFER_AGE_KEY")
                } else {
                    err.hint("create an identity with `coffer keygen`, or pass one with --identity FILE or COFFER_AGE_KEY")
                }
            }
            E::IdentityPermissions { path, .. } => {
                err.hint(format!("make it private: chmod 600 {}", path.display()))
            }
            E::WouldOverwrite { .. } => err.hint("choose another path with -o FILE"),
            E::UnapprovedRecipients { vault, manifest_edited: true, .. } => err
                .hint(format!("review the edit (`git log -p {STORE_DIR}/{vault}/{MANIFEST_FILE}`); undo it, or have someone who can open the vault run `coffer recipients approve --vault {vault}`")),
            E::UnapprovedRecipients { vault, .. } => err
                .hint(format!("review {CONFIG_FILE} (`coffer recipients list --vault {vault}`); undo the edit, or have someone who can open the vault run `coffer recipients approve --vault {vault}`")),
            E::NoRecipientsLeft { .. } => err.hint("add another recipient first: a vault nobody can open is lost"),
            E::RekeyBlocked { .. } => err
                .hint("`coffer verify` shows what is wrong; restore those files from git or set new values with `coffer update` first"),
            E::ContributionUnbound { claims: Some(_), .. } => err.hint("a contribution moved to another name is refused; delete it (`coffer delete`) or ask its author to contribute again"),
            E::ContributionUnbound { claims: None, .. } => err.hint("if you know it was contributed with format-1 coffer, check its value (`coffer verify --accept --show-values` on a terminal) and accept it with `--allow-unbound`; otherwise restore the entry from git"),
            E::TrustRecord { .. } => err.hint("coffer writes this file itself; if it was damaged, move it aside: every vault is then trusted anew on first use (check them with `coffer verify --base REV`)"),
            E::FormatUpgradeNeeded { .. } => err
                .hint("someone who can open the vault runs `coffer rekey --upgrade` (or any write) first; see docs/format.md"),
            E::VaultKeyReplaced { vault, .. } => err.hint(format!(
                "someone without the vault key may have replaced it: compare with git history (`coffer verify --base REV`); if the change was reviewed and is legitimate, accept it with `coffer vault trust {vault}`"
            )),
            E::UnknownRecipient { .. } => err.hint("`coffer recipients list` shows the recipients"),
            E::VaultKeyMismatch { .. } => err
                .hint(format!("{VAULT_KEY_FILE} or {MANIFEST_FILE} was replaced or damaged; restore both from git")),
            E::NotARepository { .. } => err.hint("run it inside a git repository (`git init` makes one)"),
            E::UnknownRevision { .. } => err.hint("`git log --oneline` shows the commits; a new repository needs a first commit"),
            E::Concurrent { .. } => err.hint("run the command again"),
            E::Committed { .. } => err.hint("`coffer verify` finishes the change and checks the store"),
            E::LockTimeout { .. } => err.hint("another coffer command is still running on this vault; retry when it is done"),
            E::Symlink { .. } => err.hint("replace the link with the file or directory itself"),
            E::Manifest { .. } => err
                .hint(format!("{MANIFEST_FILE} is written by coffer; restore it from git, and see docs/format.md")),
            E::ConflictMarkers { path } => err
                .hint("run `coffer git setup` (once per clone) so that git merges store files with coffer's driver")
                .hint(format!(
                    "then merge this file again: `git checkout -m -- {}` (docs/git.md, \"Merges\")",
                    path.display()
                )),
            E::Config { .. } => err.hint("fix the file by hand; docs/format.md describes it"),
            _ => err,
        }
    }
}

#[cfg(feature = "sync")]
impl From<coffer::sync::tailor::SettingsError> for CliError {
    fn from(e: coffer::sync::tailor::SettingsError) -> CliError {
        sync_hints(CliError::new(e.to_string()), &e)
    }
}

#[cfg(feature = "sync")]
fn sync_hints(err: CliError, e: &coffer::sync::tailor::SettingsError) -> CliError {
    use coffer::sync::tailor::SettingsError as S;
    match e {
        S::InvalidWorkspaceId { .. } => err.hint(
            "a workspace id looks like 123e4567-e89b-12d3-a456-426614174000 (`tailor-sdk workspace list` shows yours)",
        ),
        S::InvalidUrl { .. } => err.hint(
            "set TAILOR_PLATFORM_URL to https://api.tailor.tech (the default), or http://127.0.0.1:PORT for a local stand-in",
        ),
        S::InvalidToken => err.hint("copy the token into TAILOR_PLATFORM_TOKEN again, without spaces or line breaks"),
        _ => err,
    }
}

#[cfg(feature = "sync")]
/// What to do about a platform error of this kind.
pub fn remote_hints(kind: coffer::sync::ErrorKind) -> Vec<&'static str> {
    use coffer::sync::ErrorKind as C;
    match kind {
        C::Unauthenticated => vec![
            "TAILOR_PLATFORM_TOKEN was refused: it may have expired, or belong to another platform (TAILOR_PLATFORM_URL)",
        ],
        C::PermissionDenied => vec![
            "personal access tokens are read-only unless created with --write: `tailor-sdk user pat create NAME --write`",
            "the token must also have access to the workspace",
        ],
        C::NotFound => {
            vec!["check the workspace id (--workspace-id or TAILOR_PLATFORM_WORKSPACE_ID)"]
        }
        C::InvalidRequest => vec![
            "check the workspace id; names follow the platform's rule already, so this may be a platform limit",
        ],
        C::Throttled => vec![
            "the platform is limiting requests: wait a while before running `coffer sync` again",
        ],
        C::Unavailable | C::NoResponse | C::TimedOut => {
            vec!["check the network and TAILOR_PLATFORM_URL"]
        }
        _ => vec![],
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::new(e.to_string())
    }
}
