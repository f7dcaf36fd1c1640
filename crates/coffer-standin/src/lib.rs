//! A local stand-in of the Tailor Platform's Secret Manager API, for the
//! tests, the benchmark and for trying `coffer sync` (run it with
//! `cargo run --example standin`).
//!
//! It speaks the Connect protocol with JSON over HTTP/1.1 on loopback:
//! `POST /tailor.v1.OperatorService/<Method>` with the platform's method
//! and field names (lowerCamelCase or proto names), bearer-token auth, a
//! read-only token that gets `permission_denied` on writes, the platform's
//! validation (`workspaceId` a UUID, names `^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`,
//! unknown fields refused), pagination with a small page size so that
//! clients must follow `nextPageToken`, and Connect errors
//! `{"code","message"}` with their HTTP statuses. Values are stored but no
//! method returns them; tests read them with [`StandIn::value`].
//!
//! Faults can be injected: `unavailable` (503) or `resource_exhausted`
//! (429, with or without a `Retry-After` header) for the next N calls, a
//! dropped connection, commit-then-fail (the write is applied, then 503
//! is returned), and a hostile platform whose error messages repeat a
//! value (JSON-escaped, Go-quoted, cut short, or another secret's).
//!
//! It is independent of coffer's own code on purpose: it shares no types
//! with the client it tests.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// How the stand-in behaves.
#[derive(Clone, Debug)]
pub struct Config {
    /// The token that may do everything.
    pub token: String,
    /// A token that may read but gets `permission_denied` on writes.
    pub read_only_token: Option<String>,
    /// The most items one list page holds (small, so clients must page).
    pub page_size: usize,
    /// Deleting a vault that holds secrets deletes them too; otherwise it
    /// fails with `failed_precondition`.
    pub cascade_vault_delete: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            token: "standin-token".into(),
            read_only_token: Some("standin-read-only-token".into()),
            page_size: 3,
            cascade_vault_delete: false,
        }
    }
}

/// A fault injected into the next calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// 503 `unavailable`, nothing done.
    Unavailable,
    /// 429 `resource_exhausted`, nothing done.
    ResourceExhausted,
    /// 429 `resource_exhausted` with `Retry-After: <seconds>`, nothing
    /// done.
    RetryAfter(u64),
    /// The connection is closed without a response, nothing done.
    Drop,
    /// A hostile platform: `invalid_argument`, nothing done, with a
    /// message that repeats a value in the form given.
    Echo(Echo),
}

/// How a hostile stand-in repeats a value in an error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// The request's value, JSON-escaped, inside the request as JSON.
    Json,
    /// The request's value as Go's `%q` prints it.
    GoQuoted,
    /// The first 12 characters of the request's value, then `…`.
    Truncated,
    /// The value of another secret (by name) the stand-in holds, sent
    /// earlier.
    Other,
}

/// One request the stand-in received.
#[derive(Clone, Debug)]
pub struct Call {
    /// The method (the last path segment).
    pub method: String,
    /// The HTTP status returned (0 for a dropped connection).
    pub status: u16,
    /// The request's field names, as sent.
    pub fields: Vec<String>,
    /// The request's headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// When the stand-in received it.
    pub at: Instant,
    /// The request's body, for a read (a write's may hold a value, and is
    /// not kept): what [`StandIn::replay`] sends again.
    pub body: Option<Vec<u8>>,
}

impl Call {
    /// Returns whether the method changes something.
    pub fn is_write(&self) -> bool {
        is_write(&self.method)
    }
}

fn is_write(method: &str) -> bool {
    ["Create", "Update", "Delete", "Set"]
        .iter()
        .any(|p| method.starts_with(p))
}

struct Secret {
    value: String,
    create: String,
    update: String,
    seq: u64,
}

struct Vault {
    create: String,
    update: String,
    seq: u64,
    secrets: BTreeMap<String, Secret>,
}

#[derive(Default)]
struct World {
    /// workspace → vault → …
    workspaces: BTreeMap<String, BTreeMap<String, Vault>>,
    /// trn → labels
    labels: BTreeMap<String, BTreeMap<String, String>>,
    last_ns: i128,
    seq: u64,
    faults: VecDeque<Fault>,
    /// Faults for the next write calls only.
    write_faults: VecDeque<Fault>,
    commit_then_fail: usize,
    /// Vaults whose writes always fail with `unavailable`.
    broken: std::collections::BTreeSet<String>,
    calls: Vec<Call>,
}

impl World {
    /// Returns a new timestamp, strictly later than the last one.
    fn now(&mut self) -> String {
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        self.last_ns = ns.max(self.last_ns + 1000);
        jiff::Timestamp::from_nanosecond(self.last_ns)
            .expect("a time in range")
            .to_string()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// A running stand-in. Stops when dropped.
pub struct StandIn {
    addr: SocketAddr,
    world: Arc<Mutex<World>>,
    stop: Arc<AtomicBool>,
}

/// A Connect error.
struct Failure {
    code: &'static str,
    message: String,
}

fn fail(code: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

fn http_status(code: &str) -> u16 {
    match code {
        "invalid_argument" | "failed_precondition" | "out_of_range" => 400,
        "unauthenticated" => 401,
        "permission_denied" => 403,
        "not_found" | "unimplemented" => 404,
        "already_exists" | "aborted" => 409,
        "resource_exhausted" => 429,
        "unavailable" => 503,
        "deadline_exceeded" => 504,
        _ => 500,
    }
}

impl StandIn {
    /// Starts a stand-in on 127.0.0.1, on a free port.
    pub fn start(config: Config) -> StandIn {
        StandIn::start_on(config, 0)
    }

    /// Starts a stand-in on 127.0.0.1:`port` (0 for a free one).
    pub fn start_on(config: Config, port: u16) -> StandIn {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let world = Arc::new(Mutex::new(World::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let config = Arc::new(config);
        {
            let (world, stop) = (world.clone(), stop.clone());
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (world, config) = (world.clone(), config.clone());
                    thread::spawn(move || serve(conn, &world, &config));
                }
            });
        }
        StandIn { addr, world, stop }
    }

    /// Returns the base URL, for `TAILOR_PLATFORM_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Returns a stored value (the test-only channel: no API method
    /// returns values).
    pub fn value(&self, ws: &str, vault: &str, secret: &str) -> Option<String> {
        let w = self.world.lock().unwrap();
        Some(
            w.workspaces
                .get(ws)?
                .get(vault)?
                .secrets
                .get(secret)?
                .value
                .clone(),
        )
    }

    /// Returns the `updateTime` of a secret.
    pub fn update_time(&self, ws: &str, vault: &str, secret: &str) -> Option<String> {
        let w = self.world.lock().unwrap();
        Some(
            w.workspaces
                .get(ws)?
                .get(vault)?
                .secrets
                .get(secret)?
                .update
                .clone(),
        )
    }

    /// Sets a value as someone else would (creating the vault and secret
    /// if needed), moving its `updateTime`.
    pub fn set_value(&self, ws: &str, vault: &str, secret: &str, value: &str) {
        let mut w = self.world.lock().unwrap();
        let now = w.now();
        let seq = w.next_seq();
        let vaults = w.workspaces.entry(ws.into()).or_default();
        let v = vaults.entry(vault.into()).or_insert_with(|| Vault {
            create: now.clone(),
            update: now.clone(),
            seq,
            secrets: BTreeMap::new(),
        });
        let s = v.secrets.entry(secret.into()).or_insert_with(|| Secret {
            value: String::new(),
            create: now.clone(),
            update: now.clone(),
            seq,
        });
        s.value = value.into();
        s.update = now;
    }

    /// Sets the labels of a vault (as `SetMetadata` would).
    pub fn set_labels(&self, ws: &str, vault: &str, labels: &[(&str, &str)]) {
        let mut w = self.world.lock().unwrap();
        w.labels.insert(
            format!("trn:v1:workspace:{ws}:vault:{vault}"),
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }

    /// Returns the names of a workspace's vaults.
    pub fn vaults(&self, ws: &str) -> Vec<String> {
        let w = self.world.lock().unwrap();
        w.workspaces
            .get(ws)
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Returns the names of a vault's secrets.
    pub fn secrets(&self, ws: &str, vault: &str) -> Vec<String> {
        let w = self.world.lock().unwrap();
        w.workspaces
            .get(ws)
            .and_then(|v| v.get(vault))
            .map(|v| v.secrets.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Injects `fault` into the next `n` calls.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut w = self.world.lock().unwrap();
        w.faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Makes the next `n` write calls fail with `fault`.
    pub fn fail_next_writes(&self, n: usize, fault: Fault) {
        let mut w = self.world.lock().unwrap();
        w.write_faults.extend(std::iter::repeat_n(fault, n));
    }

    /// Makes the next `n` write calls apply their change and then answer
    /// 503, as if the response were lost.
    pub fn commit_then_fail_next_writes(&self, n: usize) {
        self.world.lock().unwrap().commit_then_fail += n;
    }

    /// Makes every write naming `vault` fail with `unavailable` until
    /// [`StandIn::repair`].
    pub fn break_vault(&self, vault: &str) {
        self.world.lock().unwrap().broken.insert(vault.into());
    }

    /// Undoes [`StandIn::break_vault`].
    pub fn repair(&self) {
        self.world.lock().unwrap().broken.clear();
    }

    /// Returns every call received so far.
    pub fn calls(&self) -> Vec<Call> {
        self.world.lock().unwrap().calls.clone()
    }

    /// Sends the reads among `calls` again, one after the other over one
    /// keep-alive connection, each response read whole and not parsed:
    /// what the most basic client of these requests waits for. Returns
    /// how long that took (the replayed calls are recorded too).
    pub fn replay(&self, calls: &[Call]) -> std::time::Duration {
        let conn = TcpStream::connect(self.addr).expect("connect to the stand-in");
        conn.set_nodelay(true).expect("TCP_NODELAY");
        let mut out = conn.try_clone().expect("clone the connection");
        let mut reader = BufReader::new(conn);
        let start = Instant::now();
        for call in calls {
            let Some(body) = &call.body else { continue };
            let auth = call.headers.get("authorization").map_or("", String::as_str);
            let mut request = format!(
                "POST /tailor.v1.OperatorService/{} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nAuthorization: {auth}\r\nContent-Length: {}\r\n\r\n",
                call.method,
                self.addr,
                body.len()
            )
            .into_bytes();
            request.extend_from_slice(body);
            out.write_all(&request).expect("send a replayed request");
            let mut len = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("read a response head");
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    len = value.trim().parse().expect("a content length");
                }
            }
            let mut response = vec![0; len];
            reader
                .read_exact(&mut response)
                .expect("read a response body");
        }
        start.elapsed()
    }

    /// Forgets the calls received so far.
    pub fn clear_calls(&self) {
        self.world.lock().unwrap().calls.clear();
    }

    /// Returns the methods of the write calls received so far.
    pub fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(Call::is_write)
            .map(|c| c.method)
            .collect()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// One parsed HTTP/1.1 request.
struct Request {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = headers.get("content-length") {
        let n: usize = len.parse().ok()?;
        if n > 8 << 20 {
            return None;
        }
        body.resize(n, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

fn serve(conn: TcpStream, world: &Mutex<World>, config: &Config) {
    let _ = conn.set_nodelay(true);
    let Ok(write_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    let mut out = write_half;
    while let Some(req) = read_request(&mut reader) {
        let close = req
            .headers
            .get("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let Some((status, body, retry_after)) = handle(&req, world, config) else {
            // An injected dropped connection.
            return;
        };
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            405 => "Method Not Allowed",
            409 => "Conflict",
            415 => "Unsupported Media Type",
            429 => "Too Many Requests",
            503 => "Service Unavailable",
            _ => "Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}{}\r\n",
            body.len(),
            retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n")),
            if close { "Connection: close\r\n" } else { "" }
        );
        // One write: a head and a body sent apart meet Nagle's algorithm
        // and delayed ACKs, and every response waits 40 ms.
        let mut response = head.into_bytes();
        response.extend_from_slice(&body);
        if out.write_all(&response).is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

fn error_body(f: &Failure) -> (u16, Vec<u8>) {
    (
        http_status(f.code),
        serde_json::to_vec(&json!({"code": f.code, "message": f.message})).unwrap(),
    )
}

/// An HTTP status, a body and a `Retry-After` in seconds.
type Response = (u16, Vec<u8>, Option<u64>);

/// Handles one request; `None` drops the connection.
fn handle(req: &Request, world: &Mutex<World>, config: &Config) -> Option<Response> {
    if req.path == "/_standin/stats" {
        let w = world.lock().unwrap();
        let writes = w.calls.iter().filter(|c| c.is_write()).count();
        let body = json!({"requests": w.calls.len(), "writes": writes});
        return Some((200, serde_json::to_vec(&body).unwrap(), None));
    }
    let method = req
        .path
        .strip_prefix("/tailor.v1.OperatorService/")
        .unwrap_or("")
        .to_owned();
    let parsed: Result<Map<String, Value>, Failure> = if req.method != "POST" {
        Err(fail("unimplemented", "only POST is supported"))
    } else if req
        .headers
        .get("content-type")
        .is_none_or(|c| c.split(';').next().unwrap_or("").trim() != "application/json")
    {
        Err(fail(
            "internal",
            "unsupported content type: send application/json",
        ))
    } else {
        match serde_json::from_slice::<Value>(&req.body) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(fail("invalid_argument", "the body is not a JSON object")),
        }
    };
    let fields = parsed
        .as_ref()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut w = world.lock().unwrap();
    let fault = match w.faults.pop_front() {
        None if is_write(&method) => w.write_faults.pop_front(),
        f => f,
    };
    let mut call = Call {
        method: method.clone(),
        status: 0,
        fields,
        headers: req.headers.clone(),
        at: Instant::now(),
        body: (!is_write(&method)).then(|| req.body.clone()),
    };
    let result = match fault {
        Some(Fault::Drop) => {
            w.calls.push(call);
            return None;
        }
        Some(Fault::Unavailable) => Err(fail("unavailable", "injected: service unavailable")),
        Some(Fault::ResourceExhausted | Fault::RetryAfter(_)) => {
            Err(fail("resource_exhausted", "injected: rate limited"))
        }
        Some(Fault::Echo(how)) => Err(fail("invalid_argument", echo(how, &parsed, &w))),
        None => parsed.and_then(|body| {
            authorize(req, &method, config)?;
            let vault = body.get("secretmanagerVaultName").and_then(Value::as_str);
            if is_write(&method) && vault.is_some_and(|v| w.broken.contains(v)) {
                return Err(fail("unavailable", "injected: this vault is unavailable"));
            }
            let r = dispatch(&method, &body, &mut w, config)?;
            if is_write(&method) && w.commit_then_fail > 0 {
                w.commit_then_fail -= 1;
                return Err(fail("unavailable", "injected: committed, then failed"));
            }
            Ok(r)
        }),
    };
    let (status, body) = match result {
        Ok(v) => (200, serde_json::to_vec(&v).unwrap()),
        Err(f) => error_body(&f),
    };
    call.status = status;
    w.calls.push(call);
    let retry_after = match fault {
        Some(Fault::RetryAfter(s)) => Some(s),
        _ => None,
    };
    Some((status, body, retry_after))
}

/// The message of a hostile platform that repeats a value.
fn echo(how: Echo, parsed: &Result<Map<String, Value>, Failure>, w: &World) -> String {
    let field = |f: &str| {
        parsed
            .as_ref()
            .ok()
            .and_then(|b| b.get(f))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let value = field("secretmanagerSecretValue");
    let name = field("secretmanagerSecretName");
    match how {
        Echo::Json => format!(
            "invalid request {}",
            json!({"secretmanagerSecretValue": value})
        ),
        Echo::GoQuoted => format!("value {value:?} is not allowed"),
        Echo::Truncated => format!(
            "value {}… is not allowed",
            value.chars().take(12).collect::<String>()
        ),
        Echo::Other => {
            let other = w
                .workspaces
                .values()
                .flat_map(|vaults| vaults.values())
                .flat_map(|v| v.secrets.iter())
                .find(|(n, _)| n.as_str() != name)
                .map_or("", |(_, s)| s.value.as_str());
            format!("value conflicts with {other}")
        }
    }
}

fn authorize(req: &Request, method: &str, config: &Config) -> Result<(), Failure> {
    let token = req
        .headers
        .get("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if token == config.token {
        return Ok(());
    }
    if config.read_only_token.as_deref() == Some(token) && !token.is_empty() {
        if is_write(method) {
            return Err(fail(
                "permission_denied",
                "this token is read-only: it may not change resources",
            ));
        }
        return Ok(());
    }
    Err(fail("unauthenticated", "invalid or missing token"))
}

/// The request fields of each method, by lowerCamelCase name.
fn allowed_fields(method: &str) -> Option<&'static [&'static str]> {
    Some(match method {
        "ListSecretManagerVaults" => &["workspaceId", "pageToken", "pageSize", "pageDirection"],
        "GetSecretManagerVault" | "CreateSecretManagerVault" | "DeleteSecretManagerVault" => {
            &["workspaceId", "secretmanagerVaultName"]
        }
        "ListSecretManagerSecrets" => &[
            "workspaceId",
            "secretmanagerVaultName",
            "pageToken",
            "pageSize",
            "pageDirection",
        ],
        "GetSecretManagerSecret" | "DeleteSecretManagerSecret" => &[
            "workspaceId",
            "secretmanagerVaultName",
            "secretmanagerSecretName",
        ],
        "CreateSecretManagerSecret" | "UpdateSecretManagerSecret" => &[
            "workspaceId",
            "secretmanagerVaultName",
            "secretmanagerSecretName",
            "secretmanagerSecretValue",
        ],
        "GetMetadata" => &["trn"],
        "SetMetadata" => &["trn", "labels"],
        _ => return None,
    })
}

/// `workspace_id` → `workspaceId`.
fn camel(name: &str) -> String {
    let mut out = String::new();
    let mut up = false;
    for c in name.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The request with field names normalised, checked against the method.
struct Fields(Map<String, Value>);

impl Fields {
    fn parse(method: &str, body: &Map<String, Value>) -> Result<Fields, Failure> {
        let allowed = allowed_fields(method)
            .ok_or_else(|| fail("unimplemented", format!("unknown method {method:?}")))?;
        let mut out = Map::new();
        for (k, v) in body {
            let name = camel(k);
            if !allowed.contains(&name.as_str()) {
                return Err(fail("invalid_argument", format!("unknown field {k:?}")));
            }
            out.insert(name, v.clone());
        }
        Ok(Fields(out))
    }

    fn str(&self, name: &str) -> Result<String, Failure> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(fail("invalid_argument", format!("{name} must be a string"))),
        }
    }

    fn workspace(&self) -> Result<String, Failure> {
        let ws = self.str("workspaceId")?;
        let b = ws.as_bytes();
        let ok = b.len() == 36
            && b.iter().enumerate().all(|(i, &c)| match i {
                8 | 13 | 18 | 23 => c == b'-',
                _ => c.is_ascii_hexdigit(),
            });
        if !ok {
            return Err(fail(
                "invalid_argument",
                "validation error: workspace_id: value must be a valid UUID",
            ));
        }
        Ok(ws)
    }

    fn name(&self, field: &str) -> Result<String, Failure> {
        let n = self.str(field)?;
        let b = n.as_bytes();
        let ok = (3..=63).contains(&b.len())
            && b.iter()
                .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
            && b[0] != b'-'
            && b[b.len() - 1] != b'-';
        if !ok {
            return Err(fail(
                "invalid_argument",
                format!(
                    "validation error: {field}: value does not match regex pattern `^[a-z0-9][a-z0-9-]{{1,61}}[a-z0-9]$`"
                ),
            ));
        }
        Ok(n)
    }

    fn page(&self, config: &Config) -> Result<(usize, usize, bool), Failure> {
        let token = self.str("pageToken")?;
        let offset = if token.is_empty() {
            0
        } else {
            token
                .strip_prefix("pg")
                .and_then(|t| usize::from_str_radix(t, 16).ok())
                .map(|n| n ^ 0x5eed)
                .ok_or_else(|| fail("invalid_argument", "invalid page token"))?
        };
        let size = match self.0.get("pageSize") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n.as_u64().unwrap_or(0) as usize,
            Some(Value::String(s)) => s.parse().unwrap_or(0),
            Some(_) => return Err(fail("invalid_argument", "pageSize must be a number")),
        };
        let size = if size == 0 {
            config.page_size
        } else {
            size.min(config.page_size)
        };
        let desc = matches!(
            self.0.get("pageDirection"),
            Some(Value::String(s)) if s == "PAGE_DIRECTION_DESC"
        ) || matches!(self.0.get("pageDirection"), Some(Value::Number(n)) if n.as_u64() == Some(2));
        Ok((offset, size, desc))
    }
}

fn resource(name: &str, create: &str, update: &str) -> Value {
    json!({"name": name, "createTime": create, "updateTime": update})
}

/// One page of `items` (already in creation order), each turned into its
/// resource by `resource`: only the page's own are, so that listing a large
/// vault page by page costs the stand-in what it costs a real server with
/// an index, not the whole vault per page.
fn page<T: Copy>(
    mut items: Vec<T>,
    (offset, size, desc): (usize, usize, bool),
    field: &str,
    resource: impl Fn(T) -> Value,
) -> Value {
    if desc {
        items.reverse();
    }
    let total = items.len();
    let end = (offset + size).min(total);
    let slice: Vec<Value> = items
        .get(offset.min(total)..end)
        .unwrap_or_default()
        .iter()
        .map(|&i| resource(i))
        .collect();
    let mut out = Map::new();
    if !slice.is_empty() {
        out.insert(field.into(), Value::Array(slice));
    }
    if end < total {
        out.insert(
            "nextPageToken".into(),
            json!(format!("pg{:x}", end ^ 0x5eed)),
        );
    }
    // protojson: int64 is a string, and zero values are omitted.
    if total > 0 {
        out.insert("totalCount".into(), json!(total.to_string()));
    }
    Value::Object(out)
}

fn dispatch(
    method: &str,
    body: &Map<String, Value>,
    w: &mut World,
    config: &Config,
) -> Result<Value, Failure> {
    let f = Fields::parse(method, body)?;
    if method == "GetMetadata" || method == "SetMetadata" {
        let trn = f.str("trn")?;
        if !trn.starts_with("trn:v1:workspace:") {
            return Err(fail("invalid_argument", "invalid trn"));
        }
        if method == "SetMetadata" {
            let labels: BTreeMap<String, String> = match f.0.get("labels") {
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                    .collect(),
                _ => BTreeMap::new(),
            };
            w.labels.insert(trn.clone(), labels);
        }
        let labels = w
            .labels
            .get(&trn)
            .ok_or_else(|| fail("not_found", "no metadata for this resource"))?;
        return Ok(json!({"metadata": {"labels": labels}}));
    }
    let ws = f.workspace()?;
    let now = w.now();
    let seq = w.next_seq();
    let vaults = w.workspaces.entry(ws).or_default();
    if method == "ListSecretManagerVaults" {
        let mut list: Vec<_> = vaults.iter().collect();
        list.sort_by_key(|(_, v)| v.seq);
        return Ok(page(list, f.page(config)?, "vaults", |(n, v)| {
            resource(n, &v.create, &v.update)
        }));
    }
    let vname = f.name("secretmanagerVaultName")?;
    let vault_missing = || fail("not_found", format!("vault {vname:?} not found"));
    match method {
        "CreateSecretManagerVault" => {
            if vaults.contains_key(&vname) {
                return Err(fail(
                    "already_exists",
                    format!("vault {vname:?} already exists"),
                ));
            }
            vaults.insert(
                vname.clone(),
                Vault {
                    create: now.clone(),
                    update: now.clone(),
                    seq,
                    secrets: BTreeMap::new(),
                },
            );
            Ok(json!({"vault": resource(&vname, &now, &now)}))
        }
        "GetSecretManagerVault" => {
            let v = vaults.get(&vname).ok_or_else(vault_missing)?;
            Ok(json!({"vault": resource(&vname, &v.create, &v.update)}))
        }
        "DeleteSecretManagerVault" => {
            let v = vaults.get(&vname).ok_or_else(vault_missing)?;
            if !v.secrets.is_empty() && !config.cascade_vault_delete {
                return Err(fail(
                    "failed_precondition",
                    format!("vault {vname:?} is not empty"),
                ));
            }
            vaults.remove(&vname);
            Ok(json!({}))
        }
        "ListSecretManagerSecrets" => {
            let v = vaults.get(&vname).ok_or_else(vault_missing)?;
            let mut list: Vec<_> = v.secrets.iter().collect();
            list.sort_by_key(|(_, s)| s.seq);
            Ok(page(list, f.page(config)?, "secrets", |(n, s)| {
                resource(n, &s.create, &s.update)
            }))
        }
        _ => {
            let sname = f.name("secretmanagerSecretName")?;
            let v = vaults.get_mut(&vname).ok_or_else(vault_missing)?;
            let secret_missing = || {
                fail(
                    "not_found",
                    format!("secret {sname:?} not found in vault {vname:?}"),
                )
            };
            match method {
                "CreateSecretManagerSecret" => {
                    if v.secrets.contains_key(&sname) {
                        return Err(fail(
                            "already_exists",
                            format!("secret {sname:?} already exists"),
                        ));
                    }
                    let value = f.str("secretmanagerSecretValue")?;
                    v.secrets.insert(
                        sname.clone(),
                        Secret {
                            value,
                            create: now.clone(),
                            update: now.clone(),
                            seq,
                        },
                    );
                    v.update = now.clone();
                    Ok(json!({"secret": resource(&sname, &now, &now)}))
                }
                "UpdateSecretManagerSecret" => {
                    let value = f.str("secretmanagerSecretValue")?;
                    let s = v.secrets.get_mut(&sname).ok_or_else(secret_missing)?;
                    s.value = value;
                    s.update = now.clone();
                    let create = s.create.clone();
                    v.update = now.clone();
                    Ok(json!({"secret": resource(&sname, &create, &now)}))
                }
                "GetSecretManagerSecret" => {
                    let s = v.secrets.get(&sname).ok_or_else(secret_missing)?;
                    Ok(json!({"secret": resource(&sname, &s.create, &s.update)}))
                }
                "DeleteSecretManagerSecret" => {
                    v.secrets.remove(&sname).ok_or_else(secret_missing)?;
                    Ok(json!({}))
                }
                _ => Err(fail("unimplemented", format!("unknown method {method:?}"))),
            }
        }
    }
}
