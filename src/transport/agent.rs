//! The ureq agents: one keep-alive connection pool per way out, shared by
//! every thread.
//!
//! Two things here are deliberate, each measured (see docs/performance.md):
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
//!
//! Each agent's chain: the proxy's CONNECT (`forward.rs` for plain http
//! through a forward proxy), the socket, the timed transport (`timed.rs`),
//! TLS; the resolver is `resolver.rs`.

use std::sync::Arc;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    ConnectProxyConnector, Connector, RustlsConnector, TcpConnector,
};
use ureq::Agent;

use crate::origin::OriginRef;
use crate::policy::host::Hosts;
use crate::stats::Recorder;
use crate::transport::forward::{AbsoluteFormConnector, ProxyTlsConnector};
use crate::transport::proxy::{Proxy, Routes};
use crate::transport::resolver::{CachingResolver, ProxyResolver};
use crate::transport::timed::TimedConnector;
use crate::transport::TransportSettings;

/// The input buffer size.
pub(crate) const INPUT_BUFFER: usize = 32 << 10;
/// The largest response head accepted. It must stay below the input
/// buffer: a head that fills the whole buffer is reported by ureq as a
/// dropped connection (and retried), not as a head too large.
pub(crate) const MAX_RESPONSE_HEAD: usize = INPUT_BUFFER - (4 << 10);
/// The output buffer size: the largest request head.
pub(crate) const OUTPUT_BUFFER: usize = 16 << 10;

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
