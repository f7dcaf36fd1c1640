//! Name resolution for the client: once per run, not once per request.
//!
//! ureq looks the host up before every request, even one that goes out on a
//! connection it already holds open, and with a timeout set (the client
//! always sets one) it does so on a thread of its own each time. A first
//! sync of 10,000 secrets sends 10,000 requests: that was 10,000 threads
//! and 10,000 lookups, each a DNS query where the system keeps no cache.
//! The client talks to one host for one run, so [`CachingResolver`] looks
//! it up once, the first time a request needs it, and keeps what it found
//! until the run ends (as ureq's maintainers suggest for those who want a
//! cache: their resolver is pluggable so that a caller can add one).

use std::fmt::Debug;
use std::sync::Mutex;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// A [`Resolver`] that asks `inner` once per host and port and answers
/// every later request for them from what it said. A failed lookup is not
/// kept: the next request (a retry) looks again.
#[derive(Debug)]
pub(crate) struct CachingResolver<R> {
    inner: R,
    /// The last lookup that succeeded: the scheme and authority asked for,
    /// and the addresses found. The lock is held during a lookup, so
    /// requests that start together wait for one lookup, not one each.
    last: Mutex<Option<(String, ResolvedSocketAddrs)>>,
}

impl<R> CachingResolver<R> {
    pub(crate) fn new(inner: R) -> Self {
        CachingResolver {
            inner,
            last: Mutex::new(None),
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
        // The scheme counts: it gives the port when the URL names none.
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map_or("", |a| a.as_str())
        );
        // A poisoned lock only means another request panicked mid-lookup;
        // what it holds is still a complete answer or none.
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((k, addrs)) = &*last
            && *k == key
        {
            return Ok(addrs.clone());
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        *last = Some((key, addrs.clone()));
        Ok(addrs)
    }
}

/// A stand-in resolver for tests.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
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
}
