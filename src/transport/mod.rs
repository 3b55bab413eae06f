//! The transport: one HTTP exchange, from the request head to the whole
//! decoded body.
//!
//! Everything that touches the network lives here: the ureq agents and
//! their connection pools (`agent.rs`), the connector that bounds every
//! read and write by the attempt's time (`timed.rs`), name resolution
//! (`resolver.rs`), proxies (`proxy.rs`, `forward.rs`), TLS (`tls.rs`),
//! cookies (`cookies.rs`), content encodings (`encoding.rs`), redirects
//! (`redirect.rs`), the room bodies take in their fetcher's budget of bytes
//! in flight (`body_budget.rs`), and one attempt that ties them together
//! (`attempt.rs`).
//!
//! One exchange ends as `Result<Received, AttemptError>` (`attempt.rs`);
//! a redirect it will not follow is `NotFollowed` (`redirect.rs`). The
//! host *refuses* (a connection, a 503) or *throttles* (a 429): words kept
//! for the host's own no (see `docs/architecture.md`, "Words").
//!
//! It may use the leaves (`origin`, `error`, `request`, `redact`, `clock`,
//! `cancel`, `stats`) and the per-host record of `policy/` (where resolved
//! addresses are kept); never `engine/`, `parse/`, or the public face.

use std::time::Duration;

use ureq::http::{HeaderName, HeaderValue};

use crate::redact;

pub(crate) mod agent;
pub(crate) mod attempt;
pub(crate) mod body_budget;
pub(crate) mod cookies;
pub(crate) mod encoding;
pub(crate) mod forward;
pub(crate) mod proxy;
pub(crate) mod redirect;
pub(crate) mod resolver;
pub(crate) mod timed;
pub(crate) mod tls;

/// What the transport reads of a fetcher's settings (checked by the
/// builder, `config/`): the transport never sees the rest.
pub(crate) struct TransportSettings {
    /// Idle connections kept per host: the fetcher's concurrency, so that
    /// a batch finds one for each of its threads.
    pub(crate) pool_per_host: usize,
    /// One attempt's whole time, redirects and body included.
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// Headers sent with every request (a request's own win).
    pub(crate) headers: Vec<(HeaderName, HeaderValue)>,
    /// Header names the caller marked sensitive, beyond the default ones.
    pub(crate) sensitive_headers: Vec<String>,
    pub(crate) user_agent: String,
    /// The largest body accepted, after decompression.
    pub(crate) body_limit: u64,
    pub(crate) max_redirects: u32,
    pub(crate) tls: ureq::tls::TlsConfig,
    /// Which requests go through which proxy.
    pub(crate) proxies: proxy::Routes,
}

impl TransportSettings {
    /// Whether header `name` is a secret: by default, or marked so by
    /// [`FetcherBuilder::sensitive_header_name`](crate::FetcherBuilder::sensitive_header_name).
    pub(crate) fn is_sensitive(&self, name: &str) -> bool {
        redact::is_sensitive(name, &self.sensitive_headers)
    }
}
