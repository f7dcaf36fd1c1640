//! Name resolution for the client: once per run, not once per request.
//!
//! ureq looks the host up before every request, even one that goes out on a
//! connection it already holds open, and with a timeout set (the client
//! always sets one) it does so on a thread of its own each time. A first
//! sync of 10,000 secrets sends 10,000 requests: that was 10,000 threads
//! and 10,000 lookups, each a DNS query where the system keeps no cache.
//! The client talks to one host for one run, so [`CachingResolver`] looks
//! it up once, the first time a request needs it, and keeps what it found
//! (as ureq's maintainers suggest for those who want a cache: their
//! resolver is pluggable so that a caller can add one). What it keeps is
//! dropped when connecting to it fails ([`ForgetOnFailure`]): the retry
//! then looks again, as it did when every request looked the host up, so a
//! stale or bad first answer costs one failed attempt, not the run.

use std::fmt::{self, Debug};
use std::sync::{Arc, Mutex, MutexGuard};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{ConnectionDetails, Connector, NextTimeout};

/// The last lookup that succeeded: the `host:port` asked for (never the
/// URL's user or password: a proxy's URL may hold them) and the addresses
/// found.
#[derive(Default)]
struct Kept(Mutex<Option<(String, ResolvedSocketAddrs)>>);

// Opaque: ureq's agent prints its resolver and connector in its own
// Debug, and what a run resolved is nobody's business there.
impl Debug for Kept {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Kept(..)")
    }
}

impl Kept {
    fn lock(&self) -> MutexGuard<'_, Option<(String, ResolvedSocketAddrs)>> {
        // A poisoned lock only means another request panicked while it
        // held it; what it holds is still a complete answer or none.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A [`Resolver`] that asks `inner` once per host and port and answers
/// every later request for them from what it said. A failed lookup is not
/// kept: the next request (a retry) looks again. Neither is an answer the
/// client could not connect to (see [`CachingResolver::forgetting`]).
#[derive(Debug)]
pub(crate) struct CachingResolver<R> {
    inner: R,
    kept: Arc<Kept>,
}

impl<R> CachingResolver<R> {
    pub(crate) fn new(inner: R) -> Self {
        CachingResolver {
            inner,
            kept: Arc::default(),
        }
    }

    /// Wraps the agent's `connector` so that a connection that cannot be
    /// made to the addresses this resolver kept drops them.
    pub(crate) fn forgetting<C>(&self, connector: C) -> ForgetOnFailure<C> {
        ForgetOnFailure {
            inner: connector,
            kept: Arc::clone(&self.kept),
        }
    }
}

impl<R: Resolver> Resolver for CachingResolver<R> {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        // What ureq's own resolver looks up: the host and the port, the
        // scheme's when the URL names none. A URL it would refuse is
        // passed on for it to refuse.
        let key = match (uri.scheme(), uri.authority()) {
            (Some(scheme), Some(authority)) => DefaultResolver::host_and_port(scheme, authority),
            _ => None,
        };
        let Some(key) = key else {
            return self.inner.resolve(uri, config, timeout);
        };
        if let Some((k, addrs)) = &*self.kept.lock()
            && *k == key
        {
            return Ok(addrs.clone());
        }
        // The lock is not held while `inner` looks: a slow lookup must not
        // keep another request waiting past its own timeout (each gets
        // ureq's, and `inner` keeps to it). Requests that miss together
        // each look; the run's first request is sent alone, so in a sync
        // that is one lookup.
        let addrs = self.inner.resolve(uri, config, timeout)?;
        *self.kept.lock() = Some((key, addrs.clone()));
        Ok(addrs)
    }
}

/// A [`Connector`] that, when `inner` cannot connect to the addresses a
/// [`CachingResolver`] kept, makes it forget them. Without this, a first
/// answer that is stale, or wrong on purpose, would be every retry's for
/// the rest of the run; ureq looked again on every request.
#[derive(Debug)]
pub(crate) struct ForgetOnFailure<C> {
    inner: C,
    kept: Arc<Kept>,
}

impl<C: Connector> Connector for ForgetOnFailure<C> {
    type Out = C::Out;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let connected = self.inner.connect(details, chained);
        if connected.is_err() {
            let mut kept = self.kept.lock();
            // Only the answer this attempt used: another request may have
            // looked again meanwhile, and a failure reaching a proxy with
            // the target unresolved says nothing of the target's address.
            if kept.as_ref().is_some_and(|(_, a)| *a == details.addrs) {
                *kept = None;
            }
        }
        connected
    }
}

/// A stand-in resolver for tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Answers every lookup with one loopback address at the URL's port,
    /// and counts the lookups; fails for the host `down.invalid`.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Counting(pub(crate) Arc<AtomicUsize>);

    impl Counting {
        pub(crate) fn lookups(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl Resolver for Counting {
        fn resolve(
            &self,
            uri: &Uri,
            _config: &Config,
            _timeout: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.0.fetch_add(1, Ordering::SeqCst);
            if uri.host() == Some("down.invalid") {
                return Err(ureq::Error::HostNotFound);
            }
            let mut addrs = self.empty();
            let port = uri.port_u16().unwrap_or(443);
            addrs.push(SocketAddr::from(([127, 0, 0, 1], port)));
            Ok(addrs)
        }
    }

    /// Answers each lookup with the next of its addresses (the last one
    /// again once they run out), and counts the lookups.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct Sequence {
        answers: Arc<Mutex<Vec<SocketAddr>>>,
        pub(crate) counted: Counting,
    }

    impl Sequence {
        pub(crate) fn new(answers: Vec<SocketAddr>) -> Self {
            assert!(!answers.is_empty());
            Sequence {
                answers: Arc::new(Mutex::new(answers)),
                counted: Counting::default(),
            }
        }
    }

    impl Resolver for Sequence {
        fn resolve(
            &self,
            _uri: &Uri,
            _config: &Config,
            _timeout: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            self.counted.0.fetch_add(1, Ordering::SeqCst);
            let mut answers = self.answers.lock().unwrap();
            let next = if answers.len() > 1 {
                answers.remove(0)
            } else {
                answers[0]
            };
            let mut addrs = self.empty();
            addrs.push(next);
            Ok(addrs)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use ureq::unversioned::transport::time::Duration as UreqDuration;

    use super::testing::Counting;
    use super::*;

    fn timeout() -> NextTimeout {
        NextTimeout {
            after: UreqDuration::from(Duration::from_secs(10)),
            reason: ureq::Timeout::Resolve,
            per_read: None,
            per_write: None,
        }
    }

    fn lookups(r: &CachingResolver<Counting>) -> usize {
        r.inner.lookups()
    }

    #[test]
    fn a_run_of_requests_to_one_host_looks_it_up_once() {
        let r = CachingResolver::new(Counting::default());
        let config = Config::default();
        let uri: Uri = "https://api.example.test/tailor.v1.OperatorService/ListSecrets"
            .parse()
            .unwrap();
        for _ in 0..100 {
            let addrs = r.resolve(&uri, &config, timeout()).unwrap();
            assert_eq!(&addrs[..], &[SocketAddr::from(([127, 0, 0, 1], 443))]);
        }
        // Another path on the same host is the same host.
        let other: Uri = "https://api.example.test/other".parse().unwrap();
        r.resolve(&other, &config, timeout()).unwrap();
        assert_eq!(lookups(&r), 1);
    }

    #[test]
    fn another_host_or_port_is_looked_up_afresh() {
        let r = CachingResolver::new(Counting::default());
        let config = Config::default();
        let a: Uri = "https://a.example.test/".parse().unwrap();
        let a_8443: Uri = "https://a.example.test:8443/".parse().unwrap();
        let b: Uri = "https://b.example.test/".parse().unwrap();
        r.resolve(&a, &config, timeout()).unwrap();
        let addrs = r.resolve(&a_8443, &config, timeout()).unwrap();
        assert_eq!(addrs[0].port(), 8443);
        r.resolve(&b, &config, timeout()).unwrap();
        assert_eq!(lookups(&r), 3);
    }

    #[test]
    fn a_failed_lookup_is_tried_again_by_the_next_request() {
        let r = CachingResolver::new(Counting::default());
        let config = Config::default();
        let down: Uri = "https://down.invalid/".parse().unwrap();
        for _ in 0..3 {
            assert!(matches!(
                r.resolve(&down, &config, timeout()),
                Err(ureq::Error::HostNotFound)
            ));
        }
        assert_eq!(lookups(&r), 3);
    }

    #[test]
    fn the_default_port_and_the_same_port_named_are_one_lookup() {
        let r = CachingResolver::new(Counting::default());
        let config = Config::default();
        for uri in ["https://a.example.test/", "https://a.example.test:443/x"] {
            let addrs = r
                .resolve(&uri.parse().unwrap(), &config, timeout())
                .unwrap();
            assert_eq!(addrs[0].port(), 443);
        }
        assert_eq!(lookups(&r), 1);
        // http's default port is another port: looked up afresh.
        r.resolve(
            &"http://a.example.test/".parse().unwrap(),
            &config,
            timeout(),
        )
        .unwrap();
        assert_eq!(lookups(&r), 2);
    }

    /// What the client may be given to resolve besides the platform: a
    /// proxy's URL, which may hold its user and password.
    #[test]
    fn the_resolvers_debug_shows_no_proxy_password_it_was_asked_about() {
        let r = CachingResolver::new(Counting::default());
        let proxy: Uri = "http://user:SENTINEL-proxy-password@proxy.example.test:3128"
            .parse()
            .unwrap();
        r.resolve(&proxy, &Config::default(), timeout()).unwrap();
        let shown = format!("{r:?} {r:#?}");
        assert!(!shown.contains("SENTINEL"), "{shown}");
        assert!(shown.contains("CachingResolver"), "{shown}");
        // The user and password are not part of what is looked up.
        let bare: Uri = "http://proxy.example.test:3128".parse().unwrap();
        r.resolve(&bare, &Config::default(), timeout()).unwrap();
        assert_eq!(lookups(&r), 1);
    }

    /// The cache in front of ureq's own resolver answers what that
    /// resolver answers, for every form of host the platform's URL may
    /// take (names, IPv4 and bracketed IPv6 literals, with and without a
    /// port), whichever was asked before.
    #[test]
    fn literals_and_localhost_resolve_as_ureqs_own_resolver_does() {
        let cached = CachingResolver::new(DefaultResolver::default());
        let plain = DefaultResolver::default();
        let config = Config::default();
        let uris = [
            "http://[::1]:8080/a",
            "https://[::1]/a",
            "http://127.0.0.1:9/a",
            "https://127.0.0.1/a",
            "http://localhost:9/a",
            "https://localhost/a",
        ];
        for _ in 0..2 {
            for uri in uris {
                let uri: Uri = uri.parse().unwrap();
                let want = plain.resolve(&uri, &config, timeout()).unwrap();
                for _ in 0..2 {
                    let got = cached.resolve(&uri, &config, timeout()).unwrap();
                    assert_eq!(&got[..], &want[..], "{uri}");
                }
            }
        }
    }

    /// Stands for a DNS server that does not answer: every lookup takes
    /// all the time it is given, as ureq's own resolver does.
    #[derive(Debug)]
    struct Hangs;

    impl Resolver for Hangs {
        fn resolve(
            &self,
            _uri: &Uri,
            _config: &Config,
            timeout: NextTimeout,
        ) -> Result<ResolvedSocketAddrs, ureq::Error> {
            std::thread::sleep(*timeout.after);
            Err(ureq::Error::Timeout(timeout.reason))
        }
    }

    /// Each request's lookup has its own timeout; one request's hanging
    /// lookup must not make the others wait for it first, or the last of
    /// n workers would give up only after n timeouts.
    #[test]
    fn requests_that_look_up_together_each_give_up_within_their_own_timeout() {
        let r = Arc::new(CachingResolver::new(Hangs));
        let after = Duration::from_millis(300);
        // Six at once: if they waited for each other, the last would give
        // up after six timeouts; the bound leaves room for a busy machine.
        let workers: Vec<_> = (0..6)
            .map(|_| {
                let r = Arc::clone(&r);
                std::thread::spawn(move || {
                    let uri: Uri = "https://api.example.test/".parse().unwrap();
                    let t = NextTimeout {
                        after: UreqDuration::from(after),
                        reason: ureq::Timeout::Resolve,
                        per_read: None,
                        per_write: None,
                    };
                    let start = std::time::Instant::now();
                    let e = r.resolve(&uri, &Config::default(), t).unwrap_err();
                    (start.elapsed(), e)
                })
            })
            .collect();
        for w in workers {
            let (took, e) = w.join().unwrap();
            assert!(matches!(e, ureq::Error::Timeout(ureq::Timeout::Resolve)));
            assert!(took < after * 3, "a lookup gave up after {took:?}");
        }
    }

    /// Reads one request's head (the requests here have no body).
    fn read_head(conn: &mut std::net::TcpStream) -> String {
        use std::io::Read as _;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(conn.read(&mut byte).unwrap(), 1, "the request ended early");
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }

    /// Through an HTTP proxy (`HTTPS_PROXY`), the proxy is looked up, once
    /// a run like the platform, and the platform's name is sent to the
    /// proxy, never looked up here: that the target is `down.invalid`,
    /// which the stand-in cannot resolve, shows it.
    #[test]
    fn through_a_proxy_the_proxy_is_looked_up_once_and_the_platform_never() {
        use std::io::Write as _;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = std::thread::spawn(move || {
            let mut asked = Vec::new();
            for _ in 0..3 {
                let (mut conn, _) = listener.accept().unwrap();
                let connect = read_head(&mut conn);
                asked.push(connect.lines().next().unwrap().to_owned());
                conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .unwrap();
                read_head(&mut conn);
                conn.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                )
                .unwrap();
            }
            asked
        });
        let resolver = CachingResolver::new(Counting::default());
        let counted = resolver.inner.clone();
        let config = ureq::Agent::config_builder()
            .proxy(Some(
                ureq::Proxy::new(&format!("http://proxy.example.test:{port}")).unwrap(),
            ))
            .timeout_global(Some(Duration::from_secs(10)))
            .build();
        let connector =
            resolver.forgetting(ureq::unversioned::transport::DefaultConnector::default());
        let agent = ureq::Agent::with_parts(config, connector, resolver);
        for _ in 0..3 {
            let mut resp = agent.get("http://down.invalid:1/x").call().unwrap();
            assert_eq!(resp.body_mut().read_to_string().unwrap(), "ok");
        }
        let asked = proxy.join().unwrap();
        assert_eq!(asked, ["CONNECT down.invalid:1 HTTP/1.1"; 3]);
        assert_eq!(counted.lookups(), 1);
    }
}
