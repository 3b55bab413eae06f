//! Name resolution without a lookup per request.
//!
//! ureq resolves the host on every request, pooled connection or not, and
//! with any timeout set it does so on a new thread (so that the lookup can
//! be abandoned). That one thread spawn per request is what makes ureq with
//! a timeout run at a fraction of its speed. Our resolver skips the lookup
//! for IP literals and keeps a name's addresses in its host's record
//! (`policy/host.rs`) for [`RESOLVE_TTL`]; only a miss pays for a lookup.
//! (For a name, this is the attempt's second look at the host table, a
//! read without a lock.)

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use crate::origin::OriginRef;
use crate::policy::host::{Hosts, Resolved};

/// How long a resolved host name is reused before it is looked up again.
pub(crate) const RESOLVE_TTL: Duration = Duration::from_secs(30);

/// Resolves IP literals without a lookup, and keeps names' addresses in
/// their hosts' records for a while.
#[derive(Debug)]
pub(crate) struct CachingResolver {
    pub(crate) hosts: Arc<Hosts>,
    pub(crate) lookup: DefaultResolver,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(host) = uri.host() else {
            return self.lookup.resolve(uri, config, timeout);
        };
        let port = effective_port(uri);
        if let Some(addrs) = ip_literal(self, host, port) {
            return Ok(addrs);
        }
        let Some(key) = OriginRef::of_uri(uri) else {
            return self.lookup.resolve(uri, config, timeout);
        };
        let cached = self.hosts.with_existing(&key, |record| {
            let resolved = record.resolved.load();
            resolved
                .as_ref()
                .filter(|resolved| resolved.at.elapsed() < RESOLVE_TTL)
                .map(|resolved| resolved.addrs.clone())
        });
        if let Some(addrs) = cached.flatten() {
            return Ok(addrs);
        }
        let addrs = self
            .lookup
            .resolve(uri, config, timeout)
            .map_err(not_found)?;
        let resolved = Arc::new(Resolved {
            at: Instant::now(),
            addrs: addrs.clone(),
        });
        self.hosts.get(&key).resolved.store(Some(resolved));
        Ok(addrs)
    }
}

/// Resolves every host to the forward proxy's addresses: the proxy
/// resolves the target (behind a company's proxy, often the only one that
/// can). The proxy's name is looked up once per [`RESOLVE_TTL`].
#[derive(Debug)]
pub(crate) struct ProxyResolver {
    pub(crate) proxy: Uri,
    pub(crate) lookup: DefaultResolver,
    pub(crate) resolved: parking_lot::Mutex<Option<(Instant, ResolvedSocketAddrs)>>,
}

/// `host` (bracketed or not) at `port`, when it is an IP address: nothing
/// to look up.
fn ip_literal(resolver: &impl Resolver, host: &str, port: u16) -> Option<ResolvedSocketAddrs> {
    let ip = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()?;
    let mut addrs = resolver.empty();
    addrs.push(SocketAddr::new(ip, port));
    Some(addrs)
}

impl Resolver for ProxyResolver {
    fn resolve(
        &self,
        _uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let port = effective_port(&self.proxy);
        if let Some(addrs) = ip_literal(self, self.proxy.host().unwrap_or_default(), port) {
            return Ok(addrs);
        }
        if let Some((at, addrs)) = self.resolved.lock().as_ref() {
            if at.elapsed() < RESOLVE_TTL {
                return Ok(addrs.clone());
            }
        }
        let addrs = self
            .lookup
            .resolve(&self.proxy, config, timeout)
            .map_err(not_found)?;
        *self.resolved.lock() = Some((Instant::now(), addrs.clone()));
        Ok(addrs)
    }
}

/// A failed lookup as what it is: a name that does not resolve (ureq gives
/// the resolver's I/O error, and `HostNotFound` only for an empty answer).
fn not_found(error: ureq::Error) -> ureq::Error {
    match error {
        ureq::Error::Io(_) => ureq::Error::HostNotFound,
        other => other,
    }
}

/// The port a URI connects to: its own, or its scheme's default.
fn effective_port(uri: &Uri) -> u16 {
    uri.port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ports of the addresses the resolver answers for `url`.
    fn resolve(resolver: &CachingResolver, url: &str) -> Vec<u16> {
        let uri: Uri = url.parse().unwrap();
        resolver
            .resolve(&uri, &Config::default(), NextTimeout::default())
            .unwrap()
            .iter()
            .map(SocketAddr::port)
            .collect()
    }

    #[test]
    fn names_are_cached_per_effective_port() {
        let resolver = CachingResolver {
            hosts: Arc::new(Hosts::for_tests()),
            lookup: DefaultResolver::default(),
        };
        // Port 80 first: the https request must not reuse it.
        for (url, port) in [
            ("http://localhost/a", 80),
            ("https://localhost/b", 443),
            ("http://localhost/c", 80),
            ("http://localhost:8080/d", 8080),
            ("https://localhost:80/e", 80),
            ("http://[::1]/f", 80),
            ("https://127.0.0.1/g", 443),
        ] {
            let ports = resolve(&resolver, url);
            assert!(!ports.is_empty(), "{url}");
            assert!(ports.iter().all(|p| *p == port), "{url}: {ports:?}");
        }
    }
}
