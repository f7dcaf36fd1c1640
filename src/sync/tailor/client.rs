//! The Tailor Platform client: the Connect protocol with JSON, one unary
//! `POST {base}/tailor.v1.OperatorService/<Method>` per call, over
//! HTTP/1.1 (rustls for https).
//!
//! Requests that get no answer, or `unavailable` or `resource_exhausted`,
//! are sent again after an exponential backoff with jitter, up to
//! [`Retry::attempts`] times; a `Retry-After` the platform sends is
//! honoured (up to [`Retry::max_wait`]). Every page of a list is followed
//! to the end.
//!
//! Nothing the client returns or keeps holds a value or the token: error
//! messages from the platform or the network stack are scrubbed of both
//! before they leave this module, and a response that is not the expected
//! JSON is reported by position, never by content. The HTTP stack honours
//! the usual proxy variables (`HTTPS_PROXY`, `NO_PROXY`), like curl.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ureq::unversioned::resolver::{DefaultResolver, Resolver};
use ureq::unversioned::transport::DefaultConnector;
use zeroize::Zeroizing;

use crate::secret::SecretValue;
use crate::sync::remote::{DEFAULT_WORKERS, Remote, RemoteError, RemoteSecret, normalize_time};
use crate::sync::tailor::code::Code;
use crate::sync::tailor::resolve::CachingResolver;
use crate::sync::tailor::scrub::Scrubber;
use crate::sync::tailor::{
    PlatformUrl, SettingsError, WorkspaceId, means_unlabelled, owner_from_labels, target_id,
};

/// The service every method belongs to.
const SERVICE: &str = "tailor.v1.OperatorService";

/// The page size asked for (the SDK's own); the platform may return less,
/// and the client follows `nextPageToken` whatever it returns.
const PAGE_SIZE: u32 = 1000;

/// The most pages one list may span before the client gives up (a
/// platform that keeps returning tokens would otherwise loop forever).
const MAX_PAGES: usize = 100_000;

/// The largest response body read.
const MAX_RESPONSE: u64 = 32 << 20;

/// How failed requests are sent again.
#[derive(Clone, Copy, Debug)]
pub struct Retry {
    /// How many times a request is sent at most (1 = never retried).
    pub attempts: u32,
    /// The delay before the first retry; it doubles each time.
    pub base: Duration,
    /// The longest delay between two attempts of coffer's own choosing.
    pub max_delay: Duration,
    /// The longest time one request may wait in all between its attempts,
    /// counting the waits `Retry-After` headers ask for. A request that
    /// would have to wait longer is not sent again in this run: waiting
    /// minutes on one request helps no one, and the error says how long
    /// the platform asked for.
    pub max_wait: Duration,
}

impl Default for Retry {
    fn default() -> Retry {
        Retry {
            attempts: 6,
            base: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_wait: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// Returns the delay before attempt `n + 1` (n ≥ 1): `base · 2^(n-1)`,
    /// capped, then scaled by a random factor in [0.5, 1] so that
    /// concurrent clients do not retry in step.
    pub fn delay(&self, n: u32) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << (n.saturating_sub(1)).min(20))
            .min(self.max_delay);
        let jitter = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
            % 1000;
        exp.mul_f64(0.5 + jitter as f64 / 2000.0)
    }

    /// Returns how long to wait before attempt `n + 1` of a request that
    /// has waited `waited` so far, after a failure whose response asked for
    /// `retry_after`; `None` if it should not be sent again. The wait is
    /// the backoff, or the platform's if that is longer (a server that says
    /// when it will be ready knows better than a guess), as long as the
    /// total stays within [`Retry::max_wait`].
    pub fn wait(
        &self,
        n: u32,
        retry_after: Option<Duration>,
        waited: Duration,
    ) -> Option<Duration> {
        if n >= self.attempts {
            return None;
        }
        let wait = retry_after.map_or(self.delay(n), |d| d.max(self.delay(n)));
        (waited.saturating_add(wait) <= self.max_wait).then_some(wait)
    }
}

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): a number of seconds, or
/// an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, or either obsolete form
/// a recipient must still accept), read against `now`. A date in the past
/// means no wait; anything else is ignored, and the backoff alone applies.
pub(crate) fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // A huge number is a long wait, not an error.
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()
        .or_else(|| {
            // RFC 850 and asctime, both in UTC (RFC 9110 §5.6.7).
            ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
                .iter()
                .find_map(|format| {
                    let local = jiff::fmt::strtime::parse(format, value)
                        .ok()?
                        .to_datetime()
                        .ok()?;
                    jiff::tz::Offset::UTC.to_timestamp(local).ok()
                })
        })?;
    let secs = at.as_second().saturating_sub(now.as_second());
    Some(Duration::from_secs(secs.max(0) as u64))
}

/// Everything a Tailor target needs, typed; the CLI fills it from flags
/// and the environment, [`Client::new`] validates it.
pub struct Settings {
    /// The platform's base URL.
    pub url: PlatformUrl,
    /// The bearer token.
    pub token: SecretString,
    /// The workspace.
    pub workspace: WorkspaceId,
    /// How many requests a sync runs at once (at least 1).
    pub workers: usize,
    /// Retries.
    pub retry: Retry,
    /// The longest one request may take.
    pub timeout: Duration,
}

impl Settings {
    /// Returns the settings of `workspace` on `url` with `token`, and the
    /// defaults for the rest: [`DEFAULT_WORKERS`], [`Retry::default`] and
    /// 60 seconds a request.
    pub fn new(url: PlatformUrl, workspace: WorkspaceId, token: SecretString) -> Settings {
        Settings {
            url,
            token,
            workspace,
            workers: DEFAULT_WORKERS,
            retry: Retry::default(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// How many requests a client sent (every attempt counts), and how many
/// writes the platform accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// All requests.
    pub requests: u64,
    /// Writes (create, update, delete) the platform answered with success.
    /// A refused or failed write is not a write: a summary built on this
    /// number matches what happened.
    pub writes: u64,
}

/// The method that reads a vault's labels.
const GET_METADATA: &str = "GetMetadata";

/// A client of one workspace.
pub struct Client {
    agent: ureq::Agent,
    url: PlatformUrl,
    authorization: SecretString,
    workspace: WorkspaceId,
    workers: usize,
    retry: Retry,
    requests: AtomicU64,
    writes: AtomicU64,
    /// The token and every value of the run, kept out of messages.
    scrubber: std::sync::RwLock<Scrubber>,
    /// How to read the values the run did not decrypt, run before the
    /// first message is scrubbed (see [`Client::hold_values_on_demand`]).
    on_demand: std::sync::Mutex<Option<ValueLoader>>,
    /// The loader failed: every message is withheld whole.
    withhold_all: std::sync::atomic::AtomicBool,
}

/// Reads every value a run did not decrypt; `None` when it cannot.
pub type ValueLoader = Box<dyn FnOnce() -> Option<Vec<SecretValue>> + Send>;

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("workspace", &self.workspace)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListRequest<'a> {
    workspace_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secretmanager_vault_name: Option<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    page_token: &'a str,
    page_size: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VaultRequest<'a> {
    workspace_id: &'a str,
    secretmanager_vault_name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretRequest<'a> {
    workspace_id: &'a str,
    secretmanager_vault_name: &'a str,
    secretmanager_secret_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    secretmanager_secret_value: Option<&'a str>,
}

#[derive(Serialize)]
struct MetadataRequest<'a> {
    trn: &'a str,
}

impl Client {
    /// Returns the target `config` describes. Checks the token can be
    /// sent; sends nothing.
    pub fn new(config: Settings) -> Result<Client, SettingsError> {
        Client::with_resolver(config, DefaultResolver::default())
    }

    /// [`Client::new`], with `resolver` to look the platform's host up
    /// (once a run: see [`CachingResolver`]).
    fn with_resolver(config: Settings, resolver: impl Resolver) -> Result<Client, SettingsError> {
        let t = config.token.expose_secret();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(SettingsError::InvalidToken);
        }
        let mut scrubber = Scrubber::default();
        scrubber.hold(t);
        let agent_config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The token must never follow a redirect to another host.
            .max_redirects(0)
            .https_only(config.url.as_str().starts_with("https://"))
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_global(Some(config.timeout))
            .user_agent(concat!("coffer/", env!("CARGO_PKG_VERSION")))
            .build();
        let resolver = CachingResolver::new(resolver);
        let connector = resolver.forgetting(DefaultConnector::default());
        let agent = ureq::Agent::with_parts(agent_config, connector, resolver);
        Ok(Client {
            agent,
            authorization: SecretString::from(format!("Bearer {t}")),
            url: config.url,
            workspace: config.workspace,
            workers: config.workers.max(1),
            retry: config.retry,
            requests: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            scrubber: std::sync::RwLock::new(scrubber),
            on_demand: std::sync::Mutex::new(None),
            withhold_all: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Returns the platform's base URL.
    pub fn url(&self) -> &PlatformUrl {
        &self.url
    }

    /// Returns the workspace.
    pub fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    /// Returns how many requests a sync runs at once.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Returns how many requests were sent so far.
    pub fn counts(&self) -> Counts {
        Counts {
            requests: self.requests.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
        }
    }

    /// Calls `method` with `body`, retrying transient failures. `value`
    /// is the secret value inside the body, if any, so that it can be
    /// scrubbed from error messages.
    fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        body: &impl Serialize,
        write: bool,
        value: Option<&SecretValue>,
    ) -> Result<T, RemoteError> {
        let bytes = Zeroizing::new(serde_json::to_vec(body).expect("requests serialise"));
        let mut attempt = 0;
        let mut waited = Duration::ZERO;
        loop {
            attempt += 1;
            self.requests.fetch_add(1, Ordering::Relaxed);
            match self.send_once(method, &bytes, value) {
                Ok(v) => {
                    if write {
                        self.writes.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(v);
                }
                Err(mut e) => {
                    if e.kind.is_transient() {
                        match self.retry.wait(attempt, e.retry_after, waited) {
                            Some(wait) => {
                                std::thread::sleep(wait);
                                waited += wait;
                                continue;
                            }
                            // Out of attempts: the platform's wait, if it
                            // asked for one, is not why retrying stopped.
                            None if attempt >= self.retry.attempts => e.retry_after = None,
                            None => {}
                        }
                    } else {
                        e.retry_after = None;
                    }
                    e.attempts = attempt;
                    return Err(e);
                }
            }
        }
    }

    fn send_once<T: DeserializeOwned>(
        &self,
        method: &'static str,
        body: &[u8],
        value: Option<&SecretValue>,
    ) -> Result<T, RemoteError> {
        let url = format!("{}/{SERVICE}/{method}", self.url);
        let err = |code: Code, message: String| {
            let e = code.error(method, String::new());
            // A labels read answered "none" is never reported: dropping
            // its message spares scrubbing it, which may read the values a
            // re-sync did not decrypt (every vault without labels answers
            // so on every sync).
            if method == GET_METADATA && means_unlabelled(e.kind) {
                return e;
            }
            RemoteError {
                message: self.scrub(message, value),
                ..e
            }
        };
        let sent = self
            .agent
            .post(&url)
            .header("Authorization", self.authorization.expose_secret())
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .header("Connect-Protocol-Version", "1")
            .send(body);
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => return Err(err(transport_code(&e), e.to_string())),
        };
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
        let err = |code: Code, message: String| RemoteError {
            retry_after,
            ..err(code, message)
        };
        let bytes = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(|e| err(transport_code(&e), e.to_string()))?;
        if status == 200 {
            // An empty message may come as no body at all.
            let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
                b"{}"
            } else {
                &bytes
            };
            return serde_json::from_slice(bytes).map_err(|e| {
                err(
                    Code::Internal,
                    format!(
                        "the response is not the expected JSON (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                )
            });
        }
        // A Connect error: {"code": "...", "message": "..."}; a proxy or an
        // unknown route may answer something else, mapped by status.
        let parsed: Option<Value> = serde_json::from_slice(&bytes).ok();
        let code = parsed
            .as_ref()
            .and_then(|v| v.get("code")?.as_str())
            .and_then(Code::from_name)
            .unwrap_or_else(|| Code::from_http_status(status));
        let message = parsed
            .as_ref()
            .and_then(|v| v.get("message")?.as_str())
            .map(str::to_owned)
            .unwrap_or_else(|| format!("HTTP status {status}"));
        Err(err(code, message))
    }

    /// Has every later message scrubbed of these values as well: the run
    /// gives the client every value it holds, so that a platform echoing
    /// another secret's value (or one it kept from an earlier sync) shows
    /// nothing.
    pub fn hold_values<'a>(&self, values: impl IntoIterator<Item = &'a SecretValue>) {
        let mut s = self.scrubber.write().unwrap_or_else(|e| e.into_inner());
        for v in values {
            s.hold(v.expose_secret());
        }
    }

    /// Has every later message scrubbed of the values `load` reads too,
    /// read only when the first message arrives: a run that skipped
    /// decrypting values it knows unchanged still keeps them out of what
    /// the platform says, and pays for reading them only then. If `load`
    /// fails, every message is withheld whole.
    pub fn hold_values_on_demand(&self, load: ValueLoader) {
        *self.on_demand.lock().unwrap_or_else(|e| e.into_inner()) = Some(load);
    }

    /// Removes the token, this request's value and every value the run
    /// holds from a message, in any of their forms (see [`Scrubber`]), and
    /// anything a terminal would interpret; keeps it short.
    fn scrub(&self, message: String, value: Option<&SecretValue>) -> String {
        if let Some(v) = value {
            self.hold_values([v]);
        }
        {
            // Held while loading: a message scrubbed meanwhile on another
            // thread waits for the values.
            let mut pending = self.on_demand.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(load) = pending.take() {
                match load() {
                    Some(values) => self.hold_values(&values),
                    None => self.withhold_all.store(true, Ordering::SeqCst),
                }
            }
        }
        if self.withhold_all.load(Ordering::SeqCst) {
            return crate::sync::tailor::scrub::WITHHELD.to_owned();
        }
        let s = self.scrubber.read().unwrap_or_else(|e| e.into_inner());
        s.scrub(&message)
    }

    /// Lists every item across all pages.
    fn list_all<P: Page>(
        &self,
        method: &'static str,
        vault: Option<&str>,
    ) -> Result<Vec<P::Item>, RemoteError> {
        let mut out = Vec::new();
        let mut token = String::new();
        for _ in 0..MAX_PAGES {
            let req = ListRequest {
                workspace_id: self.workspace.as_str(),
                secretmanager_vault_name: vault,
                page_token: &token,
                page_size: PAGE_SIZE,
            };
            let page: P = self.call(method, &req, false, None)?;
            let (items, next) = page.split();
            out.extend(items);
            if next.is_empty() {
                return Ok(out);
            }
            if next == token {
                return Err(
                    Code::Internal.error(method, "the platform returned the same page token twice")
                );
            }
            token = next;
        }
        Err(Code::Internal.error(
            method,
            format!("the list did not end after {MAX_PAGES} pages"),
        ))
    }

    fn secret_request<'a>(
        &'a self,
        vault: &'a str,
        name: &'a str,
        value: Option<&'a SecretValue>,
    ) -> SecretRequest<'a> {
        SecretRequest {
            workspace_id: self.workspace.as_str(),
            secretmanager_vault_name: vault,
            secretmanager_secret_name: name,
            secretmanager_secret_value: value.map(SecretValue::expose_secret),
        }
    }

    fn vault_request<'a>(&'a self, vault: &'a str) -> VaultRequest<'a> {
        VaultRequest {
            workspace_id: self.workspace.as_str(),
            secretmanager_vault_name: vault,
        }
    }

    fn write_secret(
        &self,
        method: &'static str,
        vault: &str,
        name: &str,
        value: &SecretValue,
    ) -> Result<Option<String>, RemoteError> {
        let req = self.secret_request(vault, name, Some(value));
        let resp: Value = self.call(method, &req, true, Some(value))?;
        Ok(resp
            .get("secret")
            .and_then(|s| s.get("updateTime"))
            .and_then(Value::as_str)
            .map(normalize_time))
    }
}

impl Client {
    /// Returns a vault's labels (`GetMetadata`).
    fn vault_labels(&self, vault: &str) -> Result<BTreeMap<String, String>, RemoteError> {
        let trn = format!("trn:v1:workspace:{}:vault:{vault}", self.workspace);
        let resp: Value = self.call(GET_METADATA, &MetadataRequest { trn: &trn }, false, None)?;
        let labels = resp
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(labels)
    }
}

/// One page of a list, as the platform sends it: read straight into
/// these types, not through a generic JSON tree (at 10,000 secrets that
/// tree cost more than the requests). A field the client does not use is
/// skipped; one of the wrong type makes the response "not the expected
/// JSON".
trait Page: DeserializeOwned {
    type Item;
    /// The page's items and its `nextPageToken` (empty on the last page).
    fn split(self) -> (Vec<Self::Item>, String);
}

/// A list item the client needs only the name of.
#[derive(Deserialize)]
struct Named {
    name: String,
}

/// A secret as a list gives it (never with its value).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListedSecret {
    name: String,
    #[serde(default)]
    update_time: Option<String>,
}

// protojson leaves out an empty list and an empty token; `null` is read
// as absent.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VaultPage {
    #[serde(default)]
    vaults: Option<Vec<Named>>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretPage {
    #[serde(default)]
    secrets: Option<Vec<ListedSecret>>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl Page for VaultPage {
    type Item = Named;
    fn split(self) -> (Vec<Named>, String) {
        (
            self.vaults.unwrap_or_default(),
            self.next_page_token.unwrap_or_default(),
        )
    }
}

impl Page for SecretPage {
    type Item = ListedSecret;
    fn split(self) -> (Vec<ListedSecret>, String) {
        (
            self.secrets.unwrap_or_default(),
            self.next_page_token.unwrap_or_default(),
        )
    }
}

/// Maps a failure of the HTTP stack: anything that may pass (no
/// connection, a reset, a timeout, a garbled response) is `Transport`,
/// retried; the rest (TLS, a bad URL) is not.
fn transport_code(e: &ureq::Error) -> Code {
    use ureq::Error as E;
    match e {
        E::Io(_)
        | E::Timeout(_)
        | E::HostNotFound
        | E::ConnectionFailed
        | E::Protocol(_)
        | E::BodyStalled => Code::Transport,
        _ => Code::Unknown,
    }
}

impl Remote for Client {
    fn list_vaults(&self) -> Result<Vec<String>, RemoteError> {
        let method = "ListSecretManagerVaults";
        let items = self.list_all::<VaultPage>(method, None)?;
        Ok(items.into_iter().map(|v| v.name).collect())
    }

    fn target_id(&self) -> String {
        target_id(&self.url, &self.workspace)
    }

    fn managed_by(&self, vault: &str) -> Result<Option<String>, RemoteError> {
        owner_from_labels(self.vault_labels(vault))
    }

    fn reserved(&self, vault: &str) -> Option<String> {
        super::reserved(vault)
    }

    fn list_secrets(&self, vault: &str) -> Result<Vec<RemoteSecret>, RemoteError> {
        let method = "ListSecretManagerSecrets";
        let items = self.list_all::<SecretPage>(method, Some(vault))?;
        Ok(items
            .into_iter()
            .map(|s| RemoteSecret {
                name: s.name,
                update_time: s.update_time.as_deref().map(normalize_time),
            })
            .collect())
    }

    fn create_vault(&self, vault: &str) -> Result<(), RemoteError> {
        let req = self.vault_request(vault);
        self.call::<IgnoredAny>("CreateSecretManagerVault", &req, true, None)
            .map(drop)
    }

    fn delete_vault(&self, vault: &str) -> Result<(), RemoteError> {
        let req = self.vault_request(vault);
        self.call::<IgnoredAny>("DeleteSecretManagerVault", &req, true, None)
            .map(drop)
    }

    fn create_secret(
        &self,
        vault: &str,
        name: &str,
        value: &SecretValue,
    ) -> Result<Option<String>, RemoteError> {
        self.write_secret("CreateSecretManagerSecret", vault, name, value)
    }

    fn update_secret(
        &self,
        vault: &str,
        name: &str,
        value: &SecretValue,
    ) -> Result<Option<String>, RemoteError> {
        self.write_secret("UpdateSecretManagerSecret", vault, name, value)
    }

    fn delete_secret(&self, vault: &str, name: &str) -> Result<(), RemoteError> {
        let req = self.secret_request(vault, name, None);
        self.call::<IgnoredAny>("DeleteSecretManagerSecret", &req, true, None)
            .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let r = Retry {
            attempts: 5,
            base: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            max_wait: Duration::from_secs(60),
        };
        for _ in 0..20 {
            let d1 = r.delay(1);
            assert!(d1 >= Duration::from_millis(50) && d1 <= Duration::from_millis(100));
            let d2 = r.delay(2);
            assert!(d2 >= Duration::from_millis(100) && d2 <= Duration::from_millis(200));
            let d9 = r.delay(9);
            assert!(d9 <= Duration::from_millis(350));
        }
    }

    #[test]
    fn a_retry_after_longer_than_the_backoff_is_honoured_and_one_too_long_stops_retrying() {
        let r = Retry {
            attempts: 3,
            base: Duration::from_millis(100),
            max_delay: Duration::from_secs(8),
            max_wait: Duration::from_secs(60),
        };
        let zero = Duration::ZERO;
        let secs = Duration::from_secs;
        assert_eq!(r.wait(1, Some(secs(5)), zero), Some(secs(5)));
        // A Retry-After shorter than the backoff does not shorten it.
        assert!(r.wait(1, Some(zero), zero).unwrap() >= Duration::from_millis(50));
        assert_eq!(r.wait(1, Some(secs(61)), zero), None);
        // The waits of one request add up to at most `max_wait`.
        assert_eq!(r.wait(2, Some(secs(30)), secs(30)), Some(secs(30)));
        assert_eq!(r.wait(2, Some(secs(31)), secs(30)), None);
        assert_eq!(r.wait(3, Some(secs(1)), zero), None);
        assert_eq!(r.wait(3, None, zero), None);
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now: jiff::Timestamp = "2026-11-29T12:00:00Z".parse().unwrap();
        let p = |v| parse_retry_after(v, now);
        assert_eq!(p("7"), Some(Duration::from_secs(7)));
        assert_eq!(p(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            p("Sun, 29 Nov 2026 12:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(p("Sun, 29 Nov 2026 11:00:00 GMT"), Some(Duration::ZERO));
        assert_eq!(
            p("Sunday, 29-Nov-26 12:00:30 GMT"),
            Some(Duration::from_secs(30))
        );
        assert_eq!(p("Sun Nov 29 12:00:30 2026"), Some(Duration::from_secs(30)));
        assert_eq!(
            p("Tue Dec  1 12:00:00 2026"),
            Some(Duration::from_secs(172_800))
        );
        assert_eq!(
            p("99999999999999999999999"),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 32 Nov 2026 12:00:30 GMT",
            "Sunday, 29-Nov-26 12:00:30 PST",
            "Sun Nov 29 25:00:30 2026",
        ] {
            assert_eq!(p(bad), None, "{bad}");
        }
    }

    /// A client of the platform at `url` whose token is a sentinel, one
    /// worker, the default retries.
    fn sentinel_client(url: &str, timeout_secs: u64) -> Client {
        Client::new(sentinel_settings(url, timeout_secs)).unwrap()
    }

    /// The settings of [`sentinel_client`].
    fn sentinel_settings(url: &str, timeout_secs: u64) -> Settings {
        Settings {
            url: url.parse().unwrap(),
            token: SecretString::from("tpp_sentinel_token".to_owned()),
            workspace: "123e4567-e89b-12d3-a456-426614174000".parse().unwrap(),
            workers: 1,
            retry: Retry::default(),
            timeout: Duration::from_secs(timeout_secs),
        }
    }

    #[test]
    fn scrubbing_removes_the_token_and_the_value() {
        let c = sentinel_client("http://127.0.0.1:1", 1);
        let v = SecretValue::from_string("hunter2-value".into()).unwrap();
        let m = c.scrub(
            "bad token tpp_sentinel_token for value hunter2-value\n\x1b[31m".into(),
            Some(&v),
        );
        assert!(!m.contains("tpp_sentinel") && !m.contains("hunter2"), "{m}");
        assert!(!m.contains('\x1b') && !m.contains('\n'));
        let short = SecretValue::from_string("ab".into()).unwrap();
        let m = c.scrub("value ab is bad".into(), Some(&short));
        assert!(!m.contains("ab is"), "{m}");
    }

    #[test]
    fn a_value_the_run_did_not_decrypt_is_read_on_the_first_message_and_scrubbed() {
        let client = || sentinel_client("http://127.0.0.1:1", 1);
        let c = client();
        let calls = std::sync::Arc::new(AtomicU64::new(0));
        let counted = std::sync::Arc::clone(&calls);
        c.hold_values_on_demand(Box::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Some(vec![
                SecretValue::from_string("unchanged-value".into()).unwrap(),
            ])
        }));
        assert_eq!(calls.load(Ordering::SeqCst), 0, "read only when needed");
        let m = c.scrub("it echoed unchanged-value here".into(), None);
        assert!(!m.contains("unchanged-value"), "{m}");
        let m = c.scrub("and unchanged-value again".into(), None);
        assert!(!m.contains("unchanged-value"), "{m}");
        assert_eq!(calls.load(Ordering::SeqCst), 1, "read once");
        // Values that cannot be read: nothing the platform says is shown.
        let c = client();
        c.hold_values_on_demand(Box::new(|| None));
        assert_eq!(
            c.scrub("a harmless message".into(), None),
            crate::sync::tailor::scrub::WITHHELD
        );
    }

    /// A vault without labels answers `not_found` on every sync: its
    /// message is never shown, so it must not make the client read the
    /// values a re-sync skipped. Any other failure's message is scrubbed
    /// of them.
    #[test]
    fn a_labels_read_answered_none_reads_no_skipped_value_and_another_failure_does() {
        use crate::sync::remote::Remote as _;
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            for (status, code) in [("404 Not Found", "not_found"), ("500 Internal", "internal")] {
                let (mut conn, _) = listener.accept().unwrap();
                read_request(&mut conn);
                let body = format!(r#"{{"code":"{code}","message":"it said skipped-value"}}"#);
                write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        let c = sentinel_client(&format!("http://127.0.0.1:{port}"), 5);
        let calls = std::sync::Arc::new(AtomicU64::new(0));
        let counted = std::sync::Arc::clone(&calls);
        c.hold_values_on_demand(Box::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Some(vec![
                SecretValue::from_string("skipped-value".into()).unwrap(),
            ])
        }));
        assert_eq!(c.managed_by("app"), Ok(None));
        assert_eq!(calls.load(Ordering::SeqCst), 0, "no value read");
        let e = c.managed_by("app").unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "values read to scrub");
        assert!(!e.message.contains("skipped-value"), "{e}");
        server.join().unwrap();
    }

    /// Reads one HTTP request whole: the headers, then the body its
    /// Content-Length announces.
    fn read_request(conn: &mut std::net::TcpStream) {
        use std::io::Read as _;
        let mut req = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = conn.read(&mut buf).unwrap();
            req.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&req).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if req.len() >= end + 4 + len {
                    return;
                }
            }
        }
    }

    /// Answers each of `bodies` to one request, with 200, on a loopback
    /// port; returns its URL.
    fn answer_with(bodies: Vec<&'static str>) -> (String, std::thread::JoinHandle<()>) {
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let server = std::thread::spawn(move || {
            for body in bodies {
                let (mut conn, _) = listener.accept().unwrap();
                read_request(&mut conn);
                write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        (url, server)
    }

    /// List pages are read into types: one with a field of the wrong type,
    /// a missing name or a field given twice is "not the expected JSON",
    /// said by position only (serde's own message would quote what the
    /// platform sent), and a page token that is not a string is not
    /// taken for the last page. `null` is an absent field.
    #[test]
    fn a_malformed_list_page_is_an_error_by_position_that_quotes_nothing_of_it() {
        use crate::sync::remote::Remote as _;
        let (url, server) = answer_with(vec![
            r#"{"vaults":"SENTINEL-value-as-a-list"}"#,
            r#"{"vaults":[{"name":"a"}],"nextPageToken":{"t":"SENTINEL-token"}}"#,
            r#"{"vaults":[{"name":"a"}],"vaults":[{"name":"SENTINEL-twice"}]}"#,
            r#"{"secrets":[{"updateTime":"SENTINEL-without-a-name"}]}"#,
            r#"{"secrets":[{"name":"a","updateTime":["SENTINEL-time"]}]}"#,
            r#"{"vaults":null,"nextPageToken":null}"#,
        ]);
        let c = sentinel_client(&url, 5);
        let malformed = |e: RemoteError| {
            assert_eq!(e.kind, crate::sync::remote::ErrorKind::Other, "{e}");
            assert!(
                e.message
                    .starts_with("the response is not the expected JSON (line 1, column "),
                "{e}"
            );
            assert!(!e.to_string().contains("SENTINEL"), "{e}");
        };
        malformed(c.list_vaults().unwrap_err());
        malformed(c.list_vaults().unwrap_err());
        malformed(c.list_vaults().unwrap_err());
        malformed(c.list_secrets("app").unwrap_err());
        malformed(c.list_secrets("app").unwrap_err());
        assert_eq!(c.list_vaults(), Ok(vec![]));
        server.join().unwrap();
    }

    /// ureq looks the host up before every request, on a thread of its
    /// own; the client asks its resolver once a run.
    #[test]
    fn a_run_of_requests_looks_the_platform_up_once() {
        use crate::sync::remote::Remote as _;
        use crate::sync::tailor::resolve::testing::Counting;
        let (url, server) = answer_with(vec![r#"{"vaults":[]}"#; 3]);
        let port = url.rsplit(':').next().unwrap();
        let resolver = Counting::default();
        let settings = sentinel_settings(&format!("http://localhost:{port}"), 5);
        let c = Client::with_resolver(settings, resolver.clone()).unwrap();
        for _ in 0..3 {
            assert_eq!(c.list_vaults(), Ok(vec![]));
        }
        server.join().unwrap();
        assert_eq!(resolver.lookups(), 1);
    }

    /// ureq looked the host up again for every request, so a retry after
    /// a first answer that could not be reached (a stale record, or a
    /// hostile DNS server's) got a fresh one; the cached answer must not
    /// take that away for the rest of the run.
    #[test]
    fn a_first_answer_that_cannot_be_reached_is_looked_up_again_by_the_retry() {
        use crate::sync::remote::Remote as _;
        use crate::sync::tailor::resolve::testing::Sequence;
        let (url, server) = answer_with(vec![r#"{"vaults":[]}"#; 2]);
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        // A port nothing listens on: connecting to it is refused.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let live = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let resolver = Sequence::new(vec![dead, live]);
        let settings = Settings {
            retry: Retry {
                attempts: 2,
                base: Duration::from_millis(1),
                ..Retry::default()
            },
            ..sentinel_settings(&format!("http://localhost:{port}"), 5)
        };
        let c = Client::with_resolver(settings, resolver.clone()).unwrap();
        assert_eq!(c.list_vaults(), Ok(vec![]));
        assert_eq!(resolver.counted.lookups(), 2);
        // The answer that worked is kept.
        assert_eq!(c.list_vaults(), Ok(vec![]));
        assert_eq!(resolver.counted.lookups(), 2);
        server.join().unwrap();
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_refused_without_echoing_it() {
        let r = Client::new(Settings {
            url: "http://127.0.0.1:1".parse().unwrap(),
            token: SecretString::from("bad token\n".to_owned()),
            workspace: "123e4567-e89b-12d3-a456-426614174000".parse().unwrap(),
            workers: 1,
            retry: Retry::default(),
            timeout: Duration::from_secs(1),
        });
        let e = r.unwrap_err().to_string();
        assert!(!e.contains("bad token"), "{e}");
    }
}
