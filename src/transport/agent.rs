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
use crate::origin::OriginRef;
use crate::policy::host::{Hosts, Resolved};
use crate::stats::Recorder;
use crate::transport::proxy::{Proxy, Routes};
use crate::transport::TransportSettings;

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
    /// CONNECT tunnels this thread has opened through a proxy.
    static TUNNELS_OPENED_ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
    /// When the attempt running on this thread must end, if one is.
    static ATTEMPT_ENDS: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// The number of CONNECT tunnels the calling thread has opened so far: an
/// attempt that opened one got past the proxy.
pub(crate) fn tunnels_opened_on_this_thread() -> u64 {
    TUNNELS_OPENED_ON_THIS_THREAD.with(Cell::get)
}

/// While it lives, no read or write of the calling thread waits past
/// `ends`: the whole attempt's bound, whatever wait ureq hands a transport
/// (it hands the reads of a CONNECT answer the same wait, again and
/// again, so a proxy trickling its answer would never time out).
pub(crate) fn attempt_ends_at(ends: Option<Instant>) -> AttemptEnds {
    AttemptEnds(ATTEMPT_ENDS.with(|cell| cell.replace(ends)))
}

/// Restores the end of the enclosing attempt (a nested batch's) on drop.
pub(crate) struct AttemptEnds(Option<Instant>);

impl Drop for AttemptEnds {
    fn drop(&mut self) {
        ATTEMPT_ENDS.with(|cell| cell.set(self.0));
    }
}

/// `timeout`, cut to what is left of the calling thread's attempt; a
/// timeout error if nothing is.
fn within_attempt(timeout: NextTimeout) -> Result<NextTimeout, ureq::Error> {
    let Some(ends) = ATTEMPT_ENDS.with(Cell::get) else {
        return Ok(timeout);
    };
    let left = ends.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ureq::Error::Timeout(ureq::Timeout::Global));
    }
    Ok(match timeout.after {
        UreqDuration::Exact(after) if after <= left => timeout,
        _ => NextTimeout {
            after: UreqDuration::Exact(left),
            ..timeout
        },
    })
}

/// The number of connections the calling thread has opened so far. An
/// attempt that leaves it unchanged ran on a pooled connection.
pub(crate) fn opened_on_this_thread() -> u64 {
    OPENED_ON_THIS_THREAD.with(Cell::get)
}

/// The agents of a fetcher: one per way out (`proxy.rs` says which a
/// request takes). They share nothing but the settings: each keeps its own
/// pool, as each reaches a different place.
pub(crate) struct Agents {
    direct: Agent,
    /// https (or any request, through an https proxy) through a CONNECT
    /// tunnel, TLS from end to end: one agent per proxy (at most two).
    tunnels: Vec<(Agent, Proxy)>,
    /// Plain http through a forward proxy: `GET http://host/path`.
    forward: Option<(Agent, Proxy)>,
    routes: Routes,
}

/// How one request goes out.
pub(crate) struct Route<'a> {
    pub(crate) agent: &'a Agent,
    /// The proxy it goes through, if any.
    pub(crate) proxy: Option<&'a Proxy>,
    /// Through the proxy as a forward-proxy request (the proxy answers
    /// it), not through a tunnel.
    pub(crate) forward: bool,
}

impl Agents {
    /// The agents for `settings`, counting connections into `stats`.
    pub(crate) fn new(
        settings: &TransportSettings,
        stats: &Arc<Recorder>,
        hosts: &Arc<Hosts>,
    ) -> Agents {
        let resolver = || CachingResolver {
            hosts: Arc::clone(hosts),
            lookup: DefaultResolver::default(),
        };
        // ureq's default chain, with our connector between the socket and
        // TLS, so that the handshake's reads pass through it too.
        let chain = || {
            ConnectProxyConnector::default()
                .chain(TcpConnector::default())
                .chain(TimedConnector {
                    stats: Arc::clone(stats),
                })
                .chain(RustlsConnector::default())
        };
        let direct = Agent::with_parts(config(settings, None), chain(), resolver());
        let routes = settings.proxies.clone();
        let tunnel = |proxy: &Proxy| {
            let ureq_proxy = ureq::Proxy::new(&proxy.url).ok();
            let agent = Agent::with_parts(config(settings, ureq_proxy), chain(), resolver());
            (agent, proxy.clone())
        };
        let mut tunnels = Vec::new();
        let mut forward = None;
        // Plain http through a proxy goes as a forward-proxy request (over
        // TLS to an https proxy); https through a tunnel.
        if let Some(proxy) = &routes.http {
            let proxy_uri: Uri = proxy.url.parse().unwrap_or_default();
            let timed = TcpConnector::default().chain(TimedConnector {
                stats: Arc::clone(stats),
            });
            let resolver = ProxyResolver {
                proxy: proxy_uri.clone(),
                lookup: DefaultResolver::default(),
                resolved: parking_lot::Mutex::new(None),
            };
            let form = AbsoluteFormConnector::new(proxy);
            let agent = if proxy.is_https() {
                let connector = timed
                    .chain(ProxyTlsConnector {
                        proxy: proxy_uri,
                        tls: RustlsConnector::default(),
                    })
                    .chain(form);
                Agent::with_parts(config(settings, None), connector, resolver)
            } else {
                Agent::with_parts(config(settings, None), timed.chain(form), resolver)
            };
            forward = Some((agent, proxy.clone()));
        }
        if let Some(proxy) = &routes.https {
            if !tunnels.iter().any(|(_, known)| known == proxy) {
                tunnels.push(tunnel(proxy));
            }
        }
        Agents {
            direct,
            tunnels,
            forward,
            routes,
        }
    }

    /// How a request to `url` goes out.
    pub(crate) fn route(&self, url: &str) -> Route<'_> {
        // Without proxies (the common case) the URL need not be read.
        if self.forward.is_none() && self.tunnels.is_empty() {
            return self.direct();
        }
        let Some(key) = OriginRef::of_url(url) else {
            return self.direct();
        };
        let Some(proxy) = self.routes.for_host(&key) else {
            return self.direct();
        };
        if let Some((agent, proxy)) = self
            .forward
            .as_ref()
            .filter(|(_, forward)| !key.is_https() && forward == proxy)
        {
            return Route {
                agent,
                proxy: Some(proxy),
                forward: true,
            };
        }
        match self.tunnels.iter().find(|(_, tunnel)| tunnel == proxy) {
            Some((agent, proxy)) => Route {
                agent,
                proxy: Some(proxy),
                forward: false,
            },
            None => self.direct(),
        }
    }

    fn direct(&self) -> Route<'_> {
        Route {
            agent: &self.direct,
            proxy: None,
            forward: false,
        }
    }
}

/// The configuration of every agent: `proxy` for a tunnel's.
fn config(settings: &TransportSettings, proxy: Option<ureq::Proxy>) -> Config {
    Config::builder()
        // Status codes are ours to classify: a 503's Retry-After must reach
        // the retry loop, and a 404 is a result, not a transport failure.
        .http_status_as_error(false)
        // Redirects are ours to follow (`redirect.rs`): which headers may
        // go to another host, and https never down to http.
        .max_redirects(0)
        .max_idle_connections(settings.pool_per_host.saturating_mul(2).max(20))
        .max_idle_connections_per_host(settings.pool_per_host.max(3))
        .input_buffer_size(INPUT_BUFFER)
        .output_buffer_size(OUTPUT_BUFFER)
        .max_response_header_size(MAX_RESPONSE_HEAD)
        .user_agent(&settings.user_agent)
        .accept("application/json")
        // Asked for, and undone, by `encoding.rs`.
        .accept_encoding(crate::transport::encoding::ACCEPTED)
        .tls_config(settings.tls.clone())
        .timeout_global(Some(settings.timeout))
        .timeout_connect(Some(settings.connect_timeout))
        // Proxies are ours to choose (`proxy.rs`); ureq would read the
        // environment its own way.
        .proxy(proxy)
        .build()
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
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Timed<In>>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        // Through a CONNECT tunnel, the chain runs twice: once for the
        // socket to the proxy (counted then), once for the tunnel in it,
        // open by then.
        if details.config.proxy().is_none() {
            self.stats.connection_opened();
            OPENED_ON_THIS_THREAD.with(|opened| opened.set(opened.get() + 1));
        } else {
            TUNNELS_OPENED_ON_THIS_THREAD.with(|opened| opened.set(opened.get() + 1));
        }
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
        self.0
            .transmit_output(amount, coarse(within_attempt(timeout)?))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = within_attempt(timeout)?;
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
        self.hosts
            .with(&key, |record| record.resolved.store(Some(resolved)));
        Ok(addrs)
    }
}

/// Sends plain http requests to a forward proxy in absolute form: the
/// request line names the whole URL (`GET http://host/path HTTP/1.1`), and
/// the proxy's credentials ride along in `Proxy-Authorization`. ureq writes
/// origin-form only, so the transport rewrites the request line as it
/// goes out: the first write on a connection, and the first after each
/// response, starts with a request head (ureq sends no `Expect:
/// 100-continue`, so a body never follows a read).
#[derive(Debug)]
struct AbsoluteFormConnector {
    /// `Proxy-Authorization: Basic ...\r\n`, if the proxy has credentials.
    authorization: Vec<u8>,
}

impl AbsoluteFormConnector {
    fn new(proxy: &Proxy) -> AbsoluteFormConnector {
        let authorization = ureq::Proxy::new(&proxy.url)
            .ok()
            .filter(|p| p.username().is_some() || p.password().is_some())
            .map(|p| {
                use base64::Engine as _;
                let credentials = format!(
                    "{}:{}",
                    p.username().unwrap_or_default(),
                    p.password().unwrap_or_default()
                );
                let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
                format!("Proxy-Authorization: Basic {encoded}\r\n").into_bytes()
            })
            .unwrap_or_default();
        AbsoluteFormConnector { authorization }
    }
}

impl<In: Transport> Connector<In> for AbsoluteFormConnector {
    type Out = AbsoluteForm<In>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<AbsoluteForm<In>>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        let origin = match (details.uri.scheme_str(), details.uri.authority()) {
            (Some(scheme), Some(authority)) => format!("{scheme}://{authority}"),
            _ => return Err(ureq::Error::BadUri(String::from("no authority"))),
        };
        Ok(Some(AbsoluteForm {
            inner: transport,
            origin: origin.into_bytes(),
            authorization: self.authorization.clone(),
            at_head: true,
        }))
    }
}

/// See [`AbsoluteFormConnector`].
#[derive(Debug)]
struct AbsoluteForm<T> {
    inner: T,
    origin: Vec<u8>,
    authorization: Vec<u8>,
    /// The next write starts a request head.
    at_head: bool,
}

impl<T: Transport> Transport for AbsoluteForm<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let head = std::mem::take(&mut self.at_head)
            .then(|| {
                let written = self.inner.buffers().output().get(..amount)?;
                absolute_form(written, &self.origin, &self.authorization)
            })
            .flatten();
        let Some(head) = head else {
            return self.inner.transmit_output(amount, timeout);
        };
        // Longer now, it may not fit the buffer: sent in as many writes as
        // it takes.
        for chunk in head.chunks(self.inner.buffers().output().len().max(1)) {
            let output = self.inner.buffers().output();
            output[..chunk.len()].copy_from_slice(chunk);
            self.inner.transmit_output(chunk.len(), timeout)?;
        }
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.at_head = true;
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }
}

/// The request head `written` (what ureq wrote: the head, and maybe the
/// start of a body) in absolute form, with `origin` before its path and
/// `authorization` after its first line; `None` (left as it is) if it does
/// not start with an origin-form request line.
fn absolute_form(written: &[u8], origin: &[u8], authorization: &[u8]) -> Option<Vec<u8>> {
    let space = written.iter().position(|&b| b == b' ')?;
    let is_method = space > 0 && written[..space].iter().all(u8::is_ascii_uppercase);
    if !is_method || written.get(space + 1) != Some(&b'/') {
        return None;
    }
    let line_end = written.windows(2).position(|w| w == b"\r\n")? + 2;
    if !written[..line_end - 2].ends_with(b" HTTP/1.1") {
        return None;
    }
    let mut head = Vec::with_capacity(written.len() + origin.len() + authorization.len());
    head.extend_from_slice(&written[..=space]);
    head.extend_from_slice(origin);
    head.extend_from_slice(&written[space + 1..line_end]);
    head.extend_from_slice(authorization);
    head.extend_from_slice(&written[line_end..]);
    Some(head)
}

/// TLS to an https proxy, whatever the scheme of the request: ureq's own
/// TLS connector, told that it connects to the proxy.
#[derive(Debug)]
struct ProxyTlsConnector {
    proxy: Uri,
    tls: RustlsConnector,
}

impl<In: Transport> Connector<In> for ProxyTlsConnector {
    type Out = <RustlsConnector as Connector<In>>::Out;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let to_proxy = ConnectionDetails {
            uri: &self.proxy,
            addrs: details.addrs.clone(),
            config: details.config,
            request_level: details.request_level,
            resolver: details.resolver,
            now: details.now,
            timeout: details.timeout,
            current_time: Arc::clone(&details.current_time),
            run_connector: Arc::clone(&details.run_connector),
            register_shutdown: Arc::clone(&details.register_shutdown),
        };
        self.tls.connect(&to_proxy, chained)
    }
}

/// Resolves every host to the forward proxy's addresses: the proxy
/// resolves the target (behind a company's proxy, often the only one that
/// can). The proxy's name is looked up once per [`RESOLVE_TTL`].
#[derive(Debug)]
struct ProxyResolver {
    proxy: Uri,
    lookup: DefaultResolver,
    resolved: parking_lot::Mutex<Option<(Instant, ResolvedSocketAddrs)>>,
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
        let hosts = Hosts::new(
            crate::clock::SystemClock::shared(),
            Duration::from_secs(60),
            Duration::ZERO,
            crate::policy::limit::Gate::default,
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
