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
//!   speed. Our resolver skips the lookup for IP literals and caches names
//!   for [`RESOLVE_TTL`]; only a cache miss pays for a lookup.
//!
//! Connections are counted with a connector appended to ureq's default
//! chain: it is called only when a new transport was made, never for a
//! pooled one. A thread-local copy of the count tells the attempt loop
//! whether its attempt ran on a pooled connection.

use std::cell::Cell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport,
};
use ureq::Agent;

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

/// The settings the agent is built from.
pub(crate) struct AgentSettings<'a> {
    pub(crate) concurrency: usize,
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) user_agent: &'a str,
    pub(crate) max_redirects: u32,
    pub(crate) tls: ureq::tls::TlsConfig,
}

/// Builds the fetcher's agent, counting connections into `stats`.
pub(crate) fn build(settings: &AgentSettings<'_>, stats: Arc<Recorder>) -> Agent {
    let config = Config::builder()
        // Status codes are ours to classify: a 503's Retry-After must reach
        // the retry loop, and a 404 is a result, not a transport failure.
        .http_status_as_error(false)
        .max_idle_connections((settings.concurrency * 2).max(20))
        .max_idle_connections_per_host(settings.concurrency.max(3))
        .input_buffer_size(INPUT_BUFFER)
        .output_buffer_size(OUTPUT_BUFFER)
        .max_response_header_size(MAX_RESPONSE_HEAD)
        .user_agent(settings.user_agent)
        .accept("application/json")
        .max_redirects(settings.max_redirects)
        .tls_config(settings.tls.clone())
        // Fixed per-read and per-write limits, not a per-call budget: ureq
        // sets a socket timeout only when its value changes, and a budget
        // changes on every read (one extra syscall per read, measured at a
        // third of the throughput on 256 KB bodies). The whole-attempt
        // limit is checked between reads in `exchange.rs`.
        .timeout_per_read(Some(settings.timeout))
        .timeout_per_write(Some(settings.timeout))
        .timeout_connect(Some(settings.connect_timeout.min(settings.timeout)))
        .build();
    let connector = DefaultConnector::default().chain(CountingConnector { stats });
    Agent::with_parts(config, connector, CachingResolver::default())
}

/// Passes transports through, counting the new ones.
#[derive(Debug)]
struct CountingConnector {
    stats: Arc<Recorder>,
}

impl<In: Transport> Connector<In> for CountingConnector {
    type Out = In;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<In>, ureq::Error> {
        if chained.is_some() {
            self.stats.connection_opened();
            OPENED_ON_THIS_THREAD.with(|opened| opened.set(opened.get() + 1));
        }
        Ok(chained)
    }
}

/// Resolves IP literals without a lookup, and caches names for a while.
#[derive(Debug, Default)]
struct CachingResolver {
    /// Keyed by `host:port`; read without locking, replaced on a miss.
    cache: ArcSwap<HashMap<Box<str>, (Instant, ResolvedSocketAddrs)>>,
    lookup: DefaultResolver,
}

impl Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let (Some(host), Some(authority)) = (uri.host(), uri.authority()) else {
            return self.lookup.resolve(uri, config, timeout);
        };
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = literal.parse::<IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let key = authority.as_str();
        if let Some((at, addrs)) = self.cache.load().get(key) {
            if at.elapsed() < RESOLVE_TTL {
                return Ok(addrs.clone());
            }
        }
        let addrs = self.lookup.resolve(uri, config, timeout)?;
        self.cache.rcu(|cache| {
            let mut cache = HashMap::clone(cache);
            cache.retain(|_, (at, _)| at.elapsed() < RESOLVE_TTL);
            cache.insert(key.into(), (Instant::now(), addrs.clone()));
            cache
        });
        Ok(addrs)
    }
}
