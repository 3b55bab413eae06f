//! The ureq agent: one keep-alive connection pool shared by every thread.
//!
//! Three things here are deliberate, each measured (see the README):
//!
//! - **Pool size.** ureq keeps 3 idle connections per host by default; a
//!   32-thread batch against one CDN would then open a new connection for
//!   most requests. The idle pool holds `concurrency` connections per host,
//!   and twice that (at least 20) in total, so a batch alternating between
//!   two hosts does not thrash.
//! - **Buffer sizes.** ureq's 128 KiB input and output buffers cost 256 KiB
//!   per connection: 64 MiB at concurrency 256 for buffers alone. The input
//!   buffer must hold a whole response head, so it is 32 KiB (and the head
//!   limit a little less, 28 KiB); the output buffer holds the request head
//!   and is written through for larger bodies, so 16 KiB leaves room for
//!   long cookies and tokens. Bodies are read in 32 KiB chunks either way,
//!   which costs nothing measurable next to the parse.
//! - **Name resolution.** ureq resolves the host on every request, pooled
//!   connection or not, and with any timeout set it does so on a new thread
//!   (so that the lookup can be abandoned). That one thread spawn per
//!   request is what makes ureq with a timeout run at a fraction of its
//!   speed. Our resolver skips the lookup for IP literals and keeps a name's
//!   addresses in its host's record (`host.rs`) for [`RESOLVE_TTL`]; only a
//!   miss pays for a lookup. (For a name, this is the attempt's second
//!   look at the host table, a read without a lock.)
//!
//! - **Timeouts.** One attempt, redirects and body included, has one
//!   budget: ureq's global timeout, which it checks before every read and
//!   write, during DNS, connect and the TLS handshake. ureq hands each read
//!   the time left, and its socket sets a new `SO_RCVTIMEO` whenever that
//!   value changes: a syscall per read, which cost a third of the
//!   throughput on 256 KB bodies. So the time left is rounded up to a
//!   coarse grid (at most an eighth more than the budget's rest) before it
//!   reaches the socket: the value then changes a handful of times in an
//!   attempt, and the attempt still ends within 1.125 times its timeout
//!   whatever the server sends, a byte at a time included.
//!
//! - **Cancellation.** A batch's cancel must not wait for a server that
//!   stalls: while an attempt of a cancellable batch reads, the wait is cut
//!   into slices of 100 ms, with a look at the token between them (whose
//!   constant value costs no extra syscall).
//!
//! Connections are counted by the same connector that wraps sockets for the
//! timeouts: ureq calls it only when a new transport was made, never for a
//! pooled one. A thread-local copy of the count tells the attempt loop
//! whether its attempt ran on a pooled connection.

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, NextTimeout, RustlsConnector,
    TcpConnector, Transport,
};
use ureq::Agent;

use crate::cancel::{self, Cancelled};
use crate::config::Settings;
use crate::host::{HostKey, Hosts};
use crate::stats::Recorder;

/// How long a resolved host name is reused before it is looked up again.
pub(crate) const RESOLVE_TTL: Duration = Duration::from_secs(30);

/// The input buffer size.
pub(crate) const INPUT_BUFFER: usize = 32 << 10;
/// The largest response head accepted. It must stay below the input
/// buffer: a head that fills the whole buffer is reported by ureq as a
/// dropped connection (and retried), not as a head too large.
pub(crate) const MAX_RESPONSE_HEAD: usize = INPUT_BUFFER - (4 << 10);
/// The output buffer size: the largest request head.
pub(crate) const OUTPUT_BUFFER: usize = 16 << 10;

thread_local! {
    /// Connections this thread has opened, across all fetchers.
    static OPENED_ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
}

/// The number of connections the calling thread has opened so far. An
/// attempt that leaves it unchanged ran on a pooled connection.
pub(crate) fn opened_on_this_thread() -> u64 {
    OPENED_ON_THIS_THREAD.with(Cell::get)
}

/// Builds the fetcher's agent, counting connections into `stats`.
pub(crate) fn build(settings: &Settings, stats: Arc<Recorder>, hosts: Arc<Hosts>) -> Agent {
    let config = Config::builder()
        // Status codes are ours to classify: a 503's Retry-After must reach
        // the retry loop, and a 404 is a result, not a transport failure.
        .http_status_as_error(false)
        // Redirects are ours to follow (`redirect.rs`): which headers may
        // go to another host, and https never down to http.
        .max_redirects(0)
        .max_idle_connections(settings.concurrency.saturating_mul(2).max(20))
        .max_idle_connections_per_host(settings.concurrency.max(3))
        .input_buffer_size(INPUT_BUFFER)
        .output_buffer_size(OUTPUT_BUFFER)
        .max_response_header_size(MAX_RESPONSE_HEAD)
        .user_agent(&settings.user_agent)
        .accept("application/json")
        .tls_config(settings.tls.clone())
        .timeout_global(Some(settings.timeout))
        .timeout_connect(Some(settings.connect_timeout))
        .build();
    // ureq's default chain, with our connector between the socket and TLS,
    // so that the handshake's reads pass through it too.
    let connector = ConnectProxyConnector::default()
        .chain(TcpConnector::default())
        .chain(TimedConnector { stats })
        .chain(RustlsConnector::default());
    let resolver = CachingResolver {
        hosts,
        lookup: DefaultResolver::default(),
    };
    Agent::with_parts(config, connector, resolver)
}

/// Wraps each new socket in a [`Timed`] transport, and counts it.
#[derive(Debug)]
struct TimedConnector {
    stats: Arc<Recorder>,
}

impl<In: Transport> Connector<In> for TimedConnector {
    type Out = Timed<In>;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Timed<In>>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        self.stats.connection_opened();
        OPENED_ON_THIS_THREAD.with(|opened| opened.set(opened.get() + 1));
        Ok(Some(Timed(transport)))
    }
}

/// A transport that hands its socket a coarse timeout (see the module
/// docs): the time left, rounded up to at most an eighth more.
#[derive(Debug)]
struct Timed<T>(T);

impl<T: Transport> Transport for Timed<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.0.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.0.transmit_output(amount, coarse(timeout))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        if cancel::watched().is_none() {
            return self.0.await_input(coarse(timeout));
        }
        // A cancellable attempt: wait in slices, and look at the token
        // between them, so that a cancel never waits for a stalled server.
        let started = Instant::now();
        loop {
            if cancel::watched() == Some(true) {
                return Err(std::io::Error::other(Cancelled).into());
            }
            let left = match timeout.after {
                UreqDuration::Exact(after) => after.saturating_sub(started.elapsed()),
                UreqDuration::NotHappening => Duration::MAX,
            };
            let slice = left.min(cancel::WATCH_SLICE);
            let sliced = NextTimeout {
                after: UreqDuration::Exact(slice),
                ..timeout
            };
            match self.0.await_input(coarse(sliced)) {
                Err(ureq::Error::Timeout(_)) if slice < left => {}
                other => return other,
            }
        }
    }

    fn is_open(&mut self) -> bool {
        self.0.is_open()
    }

    fn is_tls(&self) -> bool {
        self.0.is_tls()
    }
}

/// `timeout` with its time left rounded up onto a grid whose step is at
/// most an eighth of it, so that consecutive reads mostly see one value.
fn coarse(mut timeout: NextTimeout) -> NextTimeout {
    if let UreqDuration::Exact(left) = timeout.after {
        timeout.after = UreqDuration::Exact(round_up(left));
    }
    timeout
}

fn round_up(left: Duration) -> Duration {
    let nanos = u64::try_from(left.as_nanos()).unwrap_or(u64::MAX);
    let step = (nanos / 16)
        .max(1)
        .checked_next_power_of_two()
        .unwrap_or(1 << 63);
    Duration::from_nanos(nanos.div_ceil(step).saturating_mul(step))
}

/// Resolves IP literals without a lookup, and keeps names' addresses in
/// their hosts' records for a while.
#[derive(Debug)]
struct CachingResolver {
    hosts: Arc<Hosts>,
    lookup: DefaultResolver,
}

/// A host name's addresses, and when they were looked up.
#[derive(Debug)]
pub(crate) struct Resolved {
    at: Instant,
    addrs: ResolvedSocketAddrs,
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
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let Some(key) = HostKey::of_uri(uri) else {
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
        let addrs = self.lookup.resolve(uri, config, timeout)?;
        let resolved = Arc::new(Resolved {
            at: Instant::now(),
            addrs: addrs.clone(),
        });
        self.hosts
            .with(&key, |record| record.resolved.store(Some(resolved)));
        Ok(addrs)
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
        let hosts = Hosts::new(
            crate::clock::SystemClock::shared(),
            Duration::from_secs(60),
            Duration::ZERO,
            crate::limit::Gate::default,
        );
        let resolver = CachingResolver {
            hosts: Arc::new(hosts),
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

    #[test]
    fn timeouts_are_rounded_up_by_at_most_an_eighth() {
        for millis in [1, 7, 999, 1000, 1001, 29_999, 30_000, 86_400_000] {
            let left = Duration::from_millis(millis);
            let rounded = round_up(left);
            assert!(rounded >= left, "{left:?} -> {rounded:?}");
            assert!(rounded <= left + left / 8, "{left:?} -> {rounded:?}");
        }
        assert_eq!(round_up(Duration::ZERO), Duration::ZERO);
        // Reads a few milliseconds apart see the same value.
        let first = round_up(Duration::from_millis(29_990));
        assert_eq!(round_up(Duration::from_millis(29_950)), first);
        // Nothing overflows, however long.
        let _ = round_up(Duration::MAX);
    }
}
