//! The checked settings a fetcher runs with.
//!
//! [`FetcherBuilder::build`](crate::FetcherBuilder::build) checks what the
//! builder was told (its [`Options`], by [`Settings::check`] below) and
//! writes it here, each layer's part in a struct of
//! that layer's own (the transport's, the retry policy, the cache's), so
//! that the layers below never read the builder, nor this file: they are
//! handed their part. Only the engine reads the whole.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use ureq::http::{HeaderName, HeaderValue};

use super::Options;
use crate::cache::CacheSettings;
use crate::clock::{self, Clock};
use crate::error::Error;
use crate::policy::host::{BreakerSettings, GovernorSettings, LimitSettings, RateSettings};
use crate::policy::retry::RetryPolicy;
use crate::transport::proxy::Routes;
use crate::transport::TransportSettings;

/// The most threads a fetcher may have in its pool.
const MAX_CONCURRENCY: usize = 16_384;

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
    /// The most bytes of response bodies its requests hold at once.
    pub(crate) max_body_bytes_in_flight: u64,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Settings {
    /// Checks what the builder was told (`initial_backoff_set`: whether
    /// `initial_backoff` was set by hand): the settings a fetcher runs
    /// with, or the first thing wrong with them, said so that the caller
    /// can fix it.
    pub(crate) fn check(
        options: &Options,
        initial_backoff_set: bool,
        clock: Arc<dyn Clock>,
    ) -> Result<Settings, Error> {
        let fail = |reason: String| Err(Error::config(reason));
        if options.concurrency == 0 {
            return fail("concurrency must be at least 1, got 0".into());
        }
        if options.concurrency > MAX_CONCURRENCY {
            return fail(format!(
                "concurrency must be at most {MAX_CONCURRENCY} (one thread per request in \
                 flight), got {}",
                options.concurrency
            ));
        }
        if options.timeout.is_zero() {
            return fail("timeout must be longer than zero".into());
        }
        if options.connect_timeout.is_zero() {
            return fail("connect_timeout must be longer than zero".into());
        }
        if options.total_timeout.is_some_and(|total| total.is_zero()) {
            return fail("total_timeout must be longer than zero".into());
        }
        let retry = &options.retry;
        if !(retry.multiplier >= 1.0 && retry.multiplier.is_finite()) {
            return fail(format!(
                "backoff_multiplier must be a finite number of at least 1, got {}",
                retry.multiplier
            ));
        }
        // Left at its default, the first delay follows a lower cap down.
        let initial_delay = if initial_backoff_set {
            retry.initial_delay
        } else {
            retry.initial_delay.min(retry.max_delay)
        };
        if initial_delay > retry.max_delay {
            return fail(format!(
                "initial_backoff ({:?}) is longer than max_backoff ({:?}): lower \
                 initial_backoff, or raise max_backoff",
                retry.initial_delay, retry.max_delay
            ));
        }
        if options.body_limit == 0 {
            return fail("body_limit must be at least 1 byte".into());
        }
        if options.max_body_bytes_in_flight == 0 {
            return fail(
                "max_body_bytes_in_flight must be at least 1 byte, got 0 (a budget smaller \
                 than a body lets that body be read alone)"
                    .into(),
            );
        }
        if HeaderValue::from_str(&options.user_agent).is_err() {
            return fail(format!(
                "user_agent {:?} is not a valid header value",
                options.user_agent
            ));
        }
        let mut headers = Vec::with_capacity(options.headers.len());
        for (name, value) in &options.headers {
            let Ok(header_name) = HeaderName::from_bytes(name.as_bytes()) else {
                return fail(format!("invalid header name {name:?}"));
            };
            let Ok(header_value) = HeaderValue::from_str(value) else {
                return fail(format!(
                    "the value of header {name:?} has a forbidden character"
                ));
            };
            headers.push((header_name, header_value));
        }
        let rate = match (options.rate_limit, options.rate_burst) {
            (None, None) => None,
            (None, Some(_)) => return fail("rate_burst is set without a rate_limit".into()),
            (Some(per_second), burst) => {
                let Some(per_second) = NonZeroU32::new(per_second) else {
                    return fail("rate_limit must be at least 1 request per second, got 0".into());
                };
                let Some(burst) = NonZeroU32::new(burst.unwrap_or(1)) else {
                    return fail("rate_burst must be at least 1, got 0".into());
                };
                Some(RateSettings { per_second, burst })
            }
        };
        if options.cache_max_bytes == Some(0) {
            return fail("cache_max_bytes must be at least 1 byte, got 0".into());
        }
        if options.max_per_host == Some(0) {
            return fail("max_per_host must be at least 1, got 0".into());
        }
        let cache = match (&options.cache_dir, options.ci) {
            (Some(dir), false) => Some(CacheSettings {
                dir: dir.clone(),
                always_fresh: options.cache_always_fresh,
                max_age: options.cache_max_age.map(clock::capped),
                max_bytes: options.cache_max_bytes,
                offline: options.offline,
            }),
            _ if options.offline && options.ci => {
                return fail("offline mode needs the cache, and CI mode turns it off".into());
            }
            _ if options.offline => return fail("offline mode needs a cache_dir".into()),
            _ => None,
        };
        let environment = |name: &str| std::env::var(name).ok();
        let tls = options.tls.config(environment)?;
        let proxies = Routes::new(&options.proxy, environment).map_err(Error::config)?;
        // Durations past a century mean "no limit": capped, they stay clear
        // of every overflow in time arithmetic (ours and ureq's).
        let retry = RetryPolicy {
            initial_delay: clock::capped(initial_delay),
            max_delay: clock::capped(retry.max_delay),
            max_retry_after: clock::capped(retry.max_retry_after),
            jitter: clock::capped(retry.jitter),
            ..retry.clone()
        };
        Ok(Settings {
            concurrency: options.concurrency,
            transport: TransportSettings {
                pool_per_host: options.concurrency,
                timeout: clock::capped(options.timeout),
                connect_timeout: clock::capped(options.connect_timeout),
                headers,
                sensitive_headers: options.sensitive_headers.clone(),
                user_agent: options.user_agent.clone(),
                body_limit: options.body_limit,
                max_redirects: options.max_redirects,
                tls,
                proxies,
            },
            retry,
            total_timeout: options.total_timeout.map(clock::capped),
            governor: GovernorSettings {
                limit: LimitSettings {
                    ceiling: u32::try_from(
                        options
                            .max_per_host
                            .map_or(options.concurrency, |cap| cap.min(options.concurrency)),
                    )
                    .unwrap_or(u32::MAX),
                    adaptive: options.adaptive_concurrency,
                },
                breaker: BreakerSettings {
                    threshold: options.breaker_threshold,
                    longest: clock::capped(options.breaker_open_time),
                    fail_fast: options.breaker_fail_fast,
                },
                rate,
                longest_pause: clock::capped(options.retry.max_retry_after),
            },
            cache,
            cookie_store: options.cookie_store,
            max_body_bytes_in_flight: options.max_body_bytes_in_flight,
            clock,
        })
    }
}
