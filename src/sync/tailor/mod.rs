//! The Tailor Platform as a sync target: everything coffer knows about
//! the platform and nothing the engine needs to.
//!
//! - [`WorkspaceId`], [`PlatformUrl`] and [`DEFAULT_PLATFORM_URL`]: where
//!   a sync goes, validated;
//! - [`code`]: the Connect error codes, their HTTP mapping and the
//!   target-neutral kind each one is to the engine;
//! - the labels the platform SDK puts on the vaults it owns
//!   ([`SDK_MANAGED_LABEL`], [`IDP_VAULT_PREFIX`]) and what they mean;
//! - [`target_id`]: how the sync state's opaque target id is derived;
//! - [`scrub`]: what a platform message may show (nothing coffer holds);
//! - `client` (feature `sync`): the Connect/JSON client, built from typed
//!   [`client::Settings`] by [`client::Client::new`].
//!
//! The engine (`sync::{local, remote, plan, apply, state}`) never imports
//! this module; this module implements the engine's `Remote`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use crate::sync::remote::{ErrorKind, RemoteError};

#[cfg(feature = "sync")]
pub mod client;
pub mod code;
#[cfg(feature = "sync")]
mod resolve;
pub mod scrub;

pub use code::Code;

/// The label the platform SDK's `defineSecretManager()` puts on the vaults
/// it manages; releasing a vault (`secret create`/`update` on a managed
/// vault) removes it, with `sdk-version`.
pub const SDK_MANAGED_LABEL: &str = "sdk-name";

/// The label naming the SDK application that deployed a vault. The SDK's
/// deploy reads it first: a vault carrying it is the application's, even
/// after a release removed `sdk-name`, and `tailor-sdk apply` deletes the
/// secrets its config does not list there.
pub const SDK_APP_LABEL: &str = "sdk-app-id";

/// The prefix of the vaults the platform SDK creates for IdP client
/// secrets: never pruned unless the store has a vault of that name.
pub const IDP_VAULT_PREFIX: &str = "idp-";

/// Returns why a vault with these labels belongs to the platform SDK, or
/// `None` if coffer may write to it. Read as the SDK's deploy reads them:
/// a non-empty `sdk-app-id` first (a released vault still carries it), then
/// a non-empty `sdk-name`; an empty label is no label. The labels' values
/// come from the platform and are never repeated in the reason.
pub fn managed_by(labels: &BTreeMap<String, String>) -> Option<String> {
    let set = |k: &str| labels.get(k).is_some_and(|v| !v.is_empty());
    if set(SDK_APP_LABEL) {
        return Some(format!(
            "deployed by a platform SDK application (label {SDK_APP_LABEL}), whose deploy deletes what it does not list"
        ));
    }
    set(SDK_MANAGED_LABEL)
        .then(|| format!("managed by the SDK's defineSecretManager() (label {SDK_MANAGED_LABEL})"))
}

/// Returns who owns a vault, from the answer to reading its labels
/// (`GetMetadata`): the SDK, by its label; nobody, when the vault has no
/// metadata or the platform (or a stand-in) lacks the metadata methods;
/// otherwise the error, which means the owner is not known now (the
/// engine then deletes nothing in the vault, or stops if the token was
/// refused).
pub fn owner_from_labels(
    labels: Result<BTreeMap<String, String>, RemoteError>,
) -> Result<Option<String>, RemoteError> {
    match labels {
        Ok(labels) => Ok(managed_by(&labels)),
        Err(e) if means_unlabelled(e.kind) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Returns whether a failure to read a vault's labels means it has none:
/// no metadata, or a platform without the metadata methods. Such an
/// answer is never reported, so its message is dropped unread.
pub fn means_unlabelled(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::NotFound | ErrorKind::Unsupported | ErrorKind::InvalidRequest
    )
}

/// Returns why a remote vault that the store lacks is left alone by its
/// name (an IdP vault of the platform SDK), or `None`.
pub fn reserved(vault: &str) -> Option<String> {
    vault
        .starts_with(IDP_VAULT_PREFIX)
        .then(|| "created by the platform SDK for an IdP client".to_owned())
}

/// Returns the sync state's opaque id of a workspace on a platform:
/// `URL#WORKSPACE` (a validated URL holds no `#`, so the two parts cannot
/// run into each other).
pub fn target_id(url: &PlatformUrl, workspace: &WorkspaceId) -> String {
    format!("{url}#{workspace}")
}

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
    type Err = SettingsError;

    fn from_str(s: &str) -> Result<Self, SettingsError> {
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
            Err(SettingsError::InvalidWorkspaceId { len: s.len() })
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
    type Err = SettingsError;

    fn from_str(s: &str) -> Result<Self, SettingsError> {
        let bad = |reason: &'static str| SettingsError::InvalidUrl {
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

/// Why the settings of a Tailor target are not acceptable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
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
}

#[cfg(test)]
mod tests;
