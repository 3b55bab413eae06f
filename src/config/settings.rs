//! The checked settings a fetcher runs with.
//!
//! [`FetcherBuilder::build`](crate::FetcherBuilder::build) checks what the
//! builder was told and writes it here, each layer's part in a struct of
//! that layer's own (the transport's, the retry policy, the cache's), so
//! that the layers below never read the builder, nor this file: they are
//! handed their part. Only the engine reads the whole.

use std::sync::Arc;
use std::time::Duration;

use crate::cache::CacheSettings;
use crate::clock::Clock;
use crate::policy::host::GovernorSettings;
use crate::policy::retry::RetryPolicy;
use crate::transport::TransportSettings;

/// Everything the builder said, checked and capped, so that nothing reads
/// the builder after `build()`.
pub(crate) struct Settings {
    /// Threads in the pool: requests in flight at once.
    pub(crate) concurrency: usize,
    pub(crate) transport: TransportSettings,
    pub(crate) retry: RetryPolicy,
    /// The most a request may take in all, unless it sets its own
    /// deadline: `None` for no bound.
    pub(crate) total_timeout: Option<Duration>,
    /// How many requests each host gets, and when.
    pub(crate) governor: GovernorSettings,
    pub(crate) cache: Option<CacheSettings>,
    /// Whether the fetcher keeps a cookie jar.
    pub(crate) cookie_store: bool,
    pub(crate) clock: Arc<dyn Clock>,
}
