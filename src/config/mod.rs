//! The fetcher's settings and their builder.
//!
//! Every setting is listed once, with its default, in `options.rs` (the
//! builder's [`Options`]), and its default is stated in the doc of its
//! setter. Setters never fail; [`FetcherBuilder::build`] checks the whole
//! configuration at once ([`Settings::check`], in `settings.rs`) and says
//! what is wrong with it.

pub(crate) mod duration;
pub(crate) mod env;
pub(crate) mod options;
pub(crate) mod settings;

pub(crate) use self::options::Options;
pub(crate) use self::settings::Settings;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{Clock, SystemClock};
use crate::error::Error;
use crate::redact;
use crate::transport::proxy::ProxySetting;

/// Builds a [`Fetcher`](crate::Fetcher): `Fetcher::builder()`, then setters, then
/// [`build`](FetcherBuilder::build).
///
/// ```
/// use std::time::Duration;
///
/// let fetcher = parfetch::Fetcher::builder()
///     .concurrency(32)
///     .timeout(Duration::from_secs(10))
///     .max_retries(2)
///     .header("x-api-key", "secret")
///     .build()?;
/// # Ok::<(), parfetch::Error>(())
/// ```
#[derive(Clone)]
pub struct FetcherBuilder {
    /// What the setters said: every setting, with its default, is in
    /// `options.rs`.
    pub(crate) options: Options,
    /// Whether `initial_backoff` was set: if not, it follows a lower
    /// `max_backoff` down.
    pub(crate) initial_backoff_set: bool,
    /// The first bad `PARFETCH_*` variable, reported by `build`.
    pub(crate) env_error: Option<String>,
    /// The clock the fetcher reads (a manual one in tests).
    pub(crate) clock: Arc<dyn Clock>,
}

impl Default for FetcherBuilder {
    fn default() -> FetcherBuilder {
        FetcherBuilder {
            options: Options::default(),
            initial_backoff_set: false,
            env_error: None,
            clock: SystemClock::shared(),
        }
    }
}

impl FetcherBuilder {
    /// The most requests in flight at once in a batch: the size of the
    /// fetcher's own thread pool. Must be at least 1 and at most 16,384.
    ///
    /// Each host gets at most this many, and fewer when it pushes back: its
    /// own limit drops on 429, 503, timeouts and refused connections, and
    /// climbs back gradually while its answers are good (see
    /// [`adaptive_concurrency`](Self::adaptive_concurrency) for a limit that
    /// also watches latency), so a number set too high costs little.
    ///
    /// Batches run at the same time from several threads of one fetcher
    /// (or nested in one another) each get threads of their own, up to 8
    /// at once, so that one never waits for another to end; each host's
    /// limit stays shared between them.
    ///
    /// Defaults to 20.
    #[must_use]
    pub fn concurrency(mut self, threads: usize) -> Self {
        self.options.concurrency = threads;
        self
    }

    /// Starts each host at a few requests in flight (32) and lets its limit
    /// find what the host takes, up to the [`concurrency`](Self::concurrency),
    /// which is then a ceiling: growing while answers are good (doubling
    /// each round trip at first, then one more per round trip), falling
    /// on push-back and when a round trip's latency climbs past 1.25 times
    /// the host's unloaded time. For a server whose capacity you do not know; give a generous
    /// `concurrency` (say 256) as the ceiling. Each host's limit is in
    /// [`Stats::hosts`](crate::Stats::hosts) once it has pushed back.
    ///
    /// Defaults to false: each host starts at the concurrency, and only its
    /// explicit push-back (429, 503, timeouts, refused connections) brings
    /// its limit down.
    #[must_use]
    pub fn adaptive_concurrency(mut self, adaptive: bool) -> Self {
        self.options.adaptive_concurrency = adaptive;
        self
    }

    /// The time one attempt may take, all of it: resolving the name,
    /// connecting, the TLS handshake, sending, the response head (even sent
    /// a byte at a time), the body, and every redirect hop. A request with
    /// retries may take longer in all.
    ///
    /// Every read and write is bounded by what is left, rounded up by at
    /// most an eighth (so that the socket's timeout is not reset on every
    /// read): an attempt ends within 1.125 times its timeout, whatever the
    /// server does. A timeout past a century is taken as a century.
    ///
    /// Defaults to 30 seconds.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.options.timeout = timeout;
        self
    }

    /// The time to set up a new connection (TCP and TLS), within the
    /// attempt's timeout.
    ///
    /// Defaults to 10 seconds.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// The most one request may take in all, from when it starts (a request
    /// still queued in a batch has not): every attempt, the backoff and
    /// Retry-After waits between them, and its waits for its host (a pause,
    /// an open breaker's probe). Each attempt's
    /// [`timeout`](Self::timeout) is cut to what is left; a wait that would
    /// pass it ends the request at once. A request that runs out ends with
    /// [`ErrorKind::DeadlineExceeded`](crate::ErrorKind::DeadlineExceeded),
    /// whose message names this deadline and whose `source()` is its last
    /// failure, if it had one. For single calls, `fetch_many` and batches
    /// alike; in a batch with a [`deadline`](crate::Batch::deadline) of its
    /// own, the earlier of the two counts. A request's own
    /// [`Request::deadline`](crate::Request::deadline) replaces it. Must be
    /// longer than zero; one past a century is taken as a century.
    ///
    /// Defaults to none: a request may take its attempts' timeouts, plus
    /// its backoff and Retry-After waits (at most 4 × 30 s + 7 s with the
    /// other defaults, plus any Retry-After up to 5 minutes each).
    #[must_use]
    pub fn total_timeout(mut self, total: Duration) -> Self {
        self.options.total_timeout = Some(total);
        self
    }

    /// Retries after a failed first attempt, for failures worth retrying
    /// (see the crate docs): at most `retries + 1` attempts.
    ///
    /// Defaults to 3.
    #[must_use]
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.options.retry.max_retries = retries;
        self
    }

    /// The delay before the first retry; each later one is
    /// [`backoff_multiplier`](Self::backoff_multiplier) times longer, up to
    /// [`max_backoff`](Self::max_backoff). Set, it must not be longer than
    /// `max_backoff`: [`build`](Self::build) refuses that.
    ///
    /// Defaults to 1 second, or to `max_backoff` when that is set lower.
    #[must_use]
    pub fn initial_backoff(mut self, delay: Duration) -> Self {
        self.options.retry.initial_delay = delay;
        self.initial_backoff_set = true;
        self
    }

    /// The growth factor of the retry delay. Must be at least 1.
    ///
    /// Defaults to 2.
    #[must_use]
    pub fn backoff_multiplier(mut self, multiplier: f64) -> Self {
        self.options.retry.multiplier = multiplier;
        self
    }

    /// The longest backoff delay before a retry. Set below the default
    /// [`initial_backoff`](Self::initial_backoff) (1 s), it lowers that
    /// too: `max_backoff(500ms)` alone retries after 500 ms each time. An
    /// `initial_backoff` you set yourself must not be longer:
    /// [`build`](Self::build) refuses that. A server's own Retry-After is
    /// capped by [`max_retry_after`](Self::max_retry_after) instead.
    ///
    /// Defaults to 60 seconds.
    #[must_use]
    pub fn max_backoff(mut self, delay: Duration) -> Self {
        self.options.retry.max_delay = delay;
        self
    }

    /// The longest Retry-After honoured (on a 429 or a 503): the request
    /// waits what the server asked, never less, then a little more at
    /// random. A server that asks for longer gets the request back at once,
    /// as its error, with the wait it asked for in
    /// [`Error::retry_after`](crate::Error::retry_after), to schedule
    /// again: retrying sooner than asked would be wasted. A batch's
    /// deadline cuts any wait short.
    ///
    /// Defaults to 5 minutes.
    #[must_use]
    pub fn max_retry_after(mut self, wait: Duration) -> Self {
        self.options.retry.max_retry_after = wait;
        self
    }

    /// Up to this much random time is added to each backoff delay, so that
    /// threads that failed together do not retry together; requests waiting
    /// at a paused host's gate wake up to this much (at most a tenth of
    /// their wait) apart, too.
    ///
    /// Defaults to 1 second.
    #[must_use]
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.options.retry.jitter = jitter;
        self
    }

    /// A header sent with every request (a request's own header of the same
    /// name wins). Checked by [`build`](Self::build).
    ///
    /// Defaults to none besides `accept: application/json`, `user-agent` and
    /// `accept-encoding` (gzip, deflate, br, zstd: the codings parfetch
    /// decodes).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a header whose value is a secret, sent with every request: as
    /// [`header`](Self::header) does, and its name is treated as
    /// [`sensitive_header_name`](Self::sensitive_header_name) says. The
    /// same as [`Request::sensitive_header`](crate::Request::sensitive_header)
    /// for one request.
    ///
    /// ```
    /// let builder = parfetch::Fetcher::builder().sensitive_header("x-partner", "s3cr3t");
    /// assert!(format!("{builder:?}").contains(r#"("x-partner", "***")"#));
    /// let fetcher = builder.build()?;
    /// # Ok::<(), parfetch::Error>(())
    /// ```
    #[must_use]
    pub fn sensitive_header(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let name = name.into();
        self.sensitive_header_name(name.clone()).header(name, value)
    }

    /// Treats every header named `name` (ignoring case) as a secret, in
    /// every request, whoever sets it (a default header, a request's own):
    /// its value is never shown (messages, logs, `Debug`), never written to
    /// the cache, and not sent on to another host when a redirect leads
    /// there. Sends nothing by itself. Can be called for several names.
    ///
    /// Defaults to `cookie`, `set-cookie`, and every header whose name
    /// contains `auth`, `token`, `secret`, `passw`, `api-key`, `apikey`,
    /// `api_key`, `session` or `credential` (ignoring case): so
    /// `authorization`, `proxy-authorization`, `x-api-key`, `x-auth-token`
    /// and `x-amz-security-token` are secrets without being named here.
    #[must_use]
    pub fn sensitive_header_name(mut self, name: impl Into<String>) -> Self {
        self.options.sensitive_headers.push(name.into());
        self
    }

    /// The `user-agent` header.
    ///
    /// Defaults to `parfetch/` and the crate version.
    #[must_use]
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.options.user_agent = user_agent.into();
        self
    }

    /// The largest body accepted, in bytes, after decompression. A larger
    /// body fails with [`ErrorKind::BodyTooLarge`](crate::ErrorKind::BodyTooLarge).
    ///
    /// Defaults to 64 MiB.
    #[must_use]
    pub fn body_limit(mut self, bytes: u64) -> Self {
        self.options.body_limit = bytes;
        self
    }

    /// The most bytes of response bodies the fetcher's requests hold at
    /// once: read, or being read, and not yet handed to the caller. One
    /// budget for the fetcher (its clones, and every batch and single fetch
    /// on it), so that memory does not grow with the concurrency times the
    /// body: 256 requests of 20 MB documents would hold 5 GB.
    ///
    /// A body whose `Content-Length` is known takes that much before it is
    /// read; one of unknown length takes room as it grows (64 KiB first,
    /// then up to 1 MiB at a time), and a compressed body takes room for
    /// what it decodes to as well. The room is given back when the caller
    /// takes the result (from [`Batch::iter`](crate::Batch::iter), a
    /// callback, or a single fetch's return), or at once when the request
    /// fails. A body larger than the whole budget is still read, alone
    /// ([`body_limit`](Self::body_limit) bounds one body); one body at a
    /// time may go past the budget while every byte held belongs to bodies
    /// still being read, so that they never wait on one another; a request
    /// started from a callback of a batch of this fetcher never waits for
    /// that batch's results, nor one started by the `Deserialize` impl of a
    /// single fetch for the body it parses. Bodies served from the cache
    /// take no room.
    ///
    /// When it bites, requests wait after their response head, before
    /// their body is read, within their attempt's
    /// [`timeout`](Self::timeout): an attempt whose time runs out waiting
    /// ends as a `Timeout` that names this setting (and is retried; it
    /// does not count against the host), and a batch's deadline or cancel
    /// ends the wait too. If that happens, take results sooner (a batch's
    /// results not yet taken hold their room), lower the concurrency, or
    /// raise the budget. Must be at least 1 byte; `u64::MAX` is no bound.
    ///
    /// Defaults to 1 GiB.
    #[must_use]
    pub fn max_body_bytes_in_flight(mut self, bytes: u64) -> Self {
        self.options.max_body_bytes_in_flight = bytes;
        self
    }

    /// Consecutive failures (5xx, timeouts, network errors; never 4xx, nor
    /// 429) after which a host's circuit breaker opens: its requests then
    /// wait while one probe at a time finds out whether the host is back.
    /// 0 turns the breakers off.
    ///
    /// Defaults to 5.
    #[must_use]
    pub fn breaker_threshold(mut self, failures: u32) -> Self {
        self.options.breaker_threshold = failures;
        self
    }

    /// The longest a breaker stays open before it lets a probe through.
    /// The first opening lasts 1 s, and each failed probe doubles it up to
    /// this; a probe that fails at this length takes the host as down: the
    /// requests waiting for it end (with their own last failure, or
    /// `CircuitOpen` if they never sent), and new ones fail at once until a
    /// probe succeeds.
    ///
    /// Defaults to 60 seconds (so about two minutes of patience in all).
    #[must_use]
    pub fn breaker_open_time(mut self, open_time: Duration) -> Self {
        self.options.breaker_open_time = open_time;
        self
    }

    /// Fails requests at once while their host's breaker is open, with
    /// [`ErrorKind::CircuitOpen`](crate::ErrorKind::CircuitOpen), instead of
    /// letting them wait for the probe: for callers who would rather have
    /// the error now than the result later.
    ///
    /// Defaults to false: requests wait for the probe, within what their
    /// retries would take (at least 3 s) and their batch's deadline.
    #[must_use]
    pub fn breaker_fail_fast(mut self, fail_fast: bool) -> Self {
        self.options.breaker_fail_fast = fail_fast;
        self
    }

    /// Redirects followed per attempt; more fail with
    /// [`ErrorKind::Redirect`](crate::ErrorKind::Redirect). 0 returns
    /// redirects as [`ErrorKind::Status`](crate::ErrorKind::Status) errors.
    ///
    /// Defaults to 10.
    #[must_use]
    pub fn max_redirects(mut self, redirects: u32) -> Self {
        self.options.max_redirects = redirects;
        self
    }

    /// At most this many requests per second to any one host (each host
    /// has its own allowance). Must be at least 1.
    ///
    /// Defaults to no limit.
    #[must_use]
    pub fn rate_limit(mut self, requests_per_second: u32) -> Self {
        self.options.rate_limit = Some(requests_per_second);
        self
    }

    /// How many requests a host's [`rate_limit`](Self::rate_limit) lets
    /// through at once after a quiet spell. Must be at least 1.
    ///
    /// Defaults to 1 (requests evenly spaced).
    #[must_use]
    pub fn rate_burst(mut self, requests: u32) -> Self {
        self.options.rate_burst = Some(requests);
        self
    }

    /// At most this many requests in flight to any one host, whatever the
    /// [`concurrency`](Self::concurrency): each host's limit never goes
    /// above it. Must be at least 1.
    ///
    /// Defaults to no cap (the concurrency is the ceiling).
    #[must_use]
    pub fn max_per_host(mut self, requests: usize) -> Self {
        self.options.max_per_host = Some(requests);
        self
    }

    /// Caches responses in `dir` (created 0700 if needed), following HTTP
    /// caching rules as a private cache: fresh entries are served without a
    /// request, stale ones are revalidated (If-None-Match,
    /// If-Modified-Since), `no-store` is never stored.
    ///
    /// Defaults to no cache.
    #[must_use]
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.options.cache_dir = Some(dir.into());
        self
    }

    /// Treats every stored entry as fresh, whatever its headers say: for
    /// data sets whose servers send no cache headers and never change a
    /// published file.
    ///
    /// Defaults to false.
    #[must_use]
    pub fn cache_always_fresh(mut self, always: bool) -> Self {
        self.options.cache_always_fresh = always;
        self
    }

    /// Treats a stored entry as fresh for `max_age` after it was stored,
    /// whatever its headers say; older entries are revalidated.
    ///
    /// Defaults to the response's own headers.
    #[must_use]
    pub fn cache_max_age(mut self, max_age: Duration) -> Self {
        self.options.cache_max_age = Some(max_age);
        self
    }

    /// Keeps the cache's entries under `bytes` on disk: a write that passes
    /// it removes the least recently used entries (a hit counts as a use)
    /// until they take 90% of it. Processes sharing the directory measure
    /// it after each writes a twentieth of the limit, so they pass it by at
    /// most that much each, until the next measurement. Must be at least 1.
    ///
    /// Defaults to no limit.
    #[must_use]
    pub fn cache_max_bytes(mut self, bytes: u64) -> Self {
        self.options.cache_max_bytes = Some(bytes);
        self
    }

    /// Serves from the cache only (stale entries included, bar those the
    /// server marked `must-revalidate` or `no-cache`) and never touches
    /// the network; a request the cache cannot answer fails with
    /// [`ErrorKind::Offline`](crate::ErrorKind::Offline). Needs a
    /// [`cache_dir`](Self::cache_dir).
    ///
    /// Defaults to false.
    #[must_use]
    pub fn offline(mut self, offline: bool) -> Self {
        self.options.offline = offline;
        self
    }

    /// CI mode: the cache is off, whatever else says, so that a test run
    /// always sees the servers as they are.
    ///
    /// Defaults to false (or `PARFETCH_CI=1` with [`from_env`](Self::from_env)).
    #[must_use]
    pub fn ci(mut self, ci: bool) -> Self {
        self.options.ci = ci;
        self
    }

    /// Sends requests through the proxy at `url` (`http://host:port`, with
    /// `user:password@` if it asks for them; `https://` for a proxy reached
    /// over TLS), for http and https alike, instead of the proxies the
    /// environment names. `NO_PROXY` still sends its hosts direct. https
    /// requests go through a CONNECT tunnel (TLS from end to end), plain
    /// http ones as forward-proxy requests. The credentials are shown as
    /// `***` in every message and `Debug`. Checked by [`build`](Self::build);
    /// SOCKS proxies are not supported.
    ///
    /// Defaults to the environment, as curl reads it: `http_proxy` (lower
    /// case only) for http URLs, `HTTPS_PROXY` or `https_proxy` for https,
    /// `ALL_PROXY` for either when its own is not set, and `NO_PROXY` (a
    /// comma-separated list of host names, which cover their subdomains,
    /// IP addresses, or `*`) for the hosts that go direct.
    #[must_use]
    pub fn proxy(mut self, url: impl Into<String>) -> Self {
        self.options.proxy = ProxySetting::Url(url.into());
        self
    }

    /// Sends every request direct, whatever the environment's proxy
    /// variables say (undoes [`proxy`](Self::proxy) too).
    #[must_use]
    pub fn no_proxy(mut self) -> Self {
        self.options.proxy = ProxySetting::Off;
        self
    }

    /// Also trusts the certificate authorities of the machine's own store
    /// (`/etc/ssl/certs` and the like on Linux, the keychain on macOS, the
    /// certificate store on Windows): where a company installs its CA.
    /// Read once, when the fetcher is built; certificates in the store that
    /// do not parse are skipped with a warning.
    ///
    /// Defaults to false: Mozilla's roots (built in, the same on every
    /// machine), plus the certificates in `SSL_CERT_FILE` or `SSL_CERT_DIR`
    /// whenever either is set, as OpenSSL, Python and Go read them.
    #[must_use]
    pub fn system_roots(mut self, system_roots: bool) -> Self {
        self.options.tls.system_roots = system_roots;
        self
    }

    /// Also trusts the certificates in `pem` (one or more PEM `CERTIFICATE`
    /// blocks) as certificate authorities: a company's CA, or a test
    /// server's own certificate. They add to the roots in use, so public
    /// hosts are still reached; call it again to add more. Checked by
    /// [`build`](Self::build).
    ///
    /// Defaults to none: Mozilla's roots (and see
    /// [`system_roots`](Self::system_roots)).
    #[must_use]
    pub fn trust_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.options.tls.extra_roots.push(pem.into());
        self
    }

    /// Shows the certificate in `pem` to servers that ask for one (mutual
    /// TLS): the PEM holds the certificate chain (`CERTIFICATE` blocks,
    /// the client's first) and its private key (a `PRIVATE KEY`,
    /// `RSA PRIVATE KEY` or `EC PRIVATE KEY` block). Checked by
    /// [`build`](Self::build): a key that does not match the certificate
    /// is refused there.
    ///
    /// Defaults to none.
    #[must_use]
    pub fn client_certificate(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.options.tls.client_certificate = Some(pem.into());
        self
    }

    /// **Turns off TLS certificate verification**: any server can then
    /// pretend to be any host, and read or change what is fetched. Only for
    /// throwaway tests against a server you run; prefer
    /// [`trust_root_certificates`](Self::trust_root_certificates). A warning
    /// is logged when a fetcher is built with it.
    ///
    /// Defaults to false (certificates are verified).
    #[must_use]
    pub fn danger_accept_invalid_certificates(mut self, accept: bool) -> Self {
        self.options.tls.accept_invalid_certificates = accept;
        self
    }

    /// Keeps the cookies responses set, and sends them back where they
    /// belong, as a browser or a `requests.Session` would: for an API that
    /// hands out a session cookie at login. Scoped as RFC 6265 says (the
    /// host that set a cookie, or the domain it names; its path; https only
    /// if `Secure`; until it expires), shared by the fetcher's clones,
    /// never sent to another host, never written to the cache. There is no
    /// public-suffix list: keep one fetcher per set of sites that trust
    /// one another.
    ///
    /// Defaults to false: no cookie is kept, and only the `Cookie` headers
    /// you set are sent.
    #[must_use]
    pub fn cookie_store(mut self, enabled: bool) -> Self {
        self.options.cookie_store = enabled;
        self
    }

    /// Applies the `PARFETCH_*` environment variables that are set, over the
    /// settings so far:
    ///
    /// | variable | setting | example |
    /// |---|---|---|
    /// | `PARFETCH_CONCURRENCY` | [`concurrency`](Self::concurrency) | `32` |
    /// | `PARFETCH_TIMEOUT` | [`timeout`](Self::timeout) | `30`, `2.5s`, `500ms` |
    /// | `PARFETCH_CONNECT_TIMEOUT` | [`connect_timeout`](Self::connect_timeout) | `5` |
    /// | `PARFETCH_RETRIES` | [`max_retries`](Self::max_retries) | `3` |
    /// | `PARFETCH_USER_AGENT` | [`user_agent`](Self::user_agent) | `my-script/1.0` |
    /// | `PARFETCH_CACHE_DIR` | [`cache_dir`](Self::cache_dir) | `~/.cache/parfetch` |
    /// | `PARFETCH_OFFLINE` | [`offline`](Self::offline) | `1` or `true` |
    /// | `PARFETCH_CI` | [`ci`](Self::ci) | `1` or `true` |
    ///
    /// A value that does not parse makes [`build`](Self::build) fail,
    /// naming the variable.
    #[must_use]
    pub fn from_env(self) -> Self {
        self.with_env(|name| std::env::var(name).ok())
    }

    /// Applies the variables `var` finds (see [`from_env`](Self::from_env)).
    fn with_env(mut self, var: impl Fn(&str) -> Option<String>) -> Self {
        let overrides = match env::read(var) {
            Ok(overrides) => overrides,
            Err(error) => {
                self.env_error.get_or_insert(error);
                return self;
            }
        };
        let env::Overrides {
            concurrency,
            timeout,
            connect_timeout,
            retries,
            user_agent,
            cache_dir,
            offline,
            ci,
        } = overrides;
        self.options.concurrency = concurrency.unwrap_or(self.options.concurrency);
        self.options.timeout = timeout.unwrap_or(self.options.timeout);
        self.options.connect_timeout = connect_timeout.unwrap_or(self.options.connect_timeout);
        self.options.retry.max_retries = retries.unwrap_or(self.options.retry.max_retries);
        self.options.user_agent = user_agent.unwrap_or(self.options.user_agent);
        self.options.cache_dir = cache_dir.or(self.options.cache_dir);
        self.options.offline = offline.unwrap_or(self.options.offline);
        self.options.ci = ci.unwrap_or(self.options.ci);
        self
    }

    /// The settings, checked: what [`build`](Self::build) runs a fetcher
    /// with, or why it cannot.
    pub(crate) fn check(&self) -> Result<Settings, Error> {
        if let Some(env_error) = &self.env_error {
            return Err(Error::config(env_error.clone()));
        }
        Settings::check(
            &self.options,
            self.initial_backoff_set,
            Arc::clone(&self.clock),
        )
    }

    #[cfg(test)]
    pub(crate) fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }
}

impl fmt::Debug for FetcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.options.clone();
        for (name, value) in &mut shown.headers {
            if redact::is_sensitive(name, &self.options.sensitive_headers) {
                redact::HIDDEN.clone_into(value);
            }
        }
        let mut out = f.debug_struct("FetcherBuilder");
        shown.debug_fields(&mut out);
        out.finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn rejected(builder: FetcherBuilder) -> String {
        let error = builder
            .build()
            .expect_err("an impossible setting was accepted");
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        error.to_string()
    }

    #[test]
    fn impossible_settings_are_rejected_with_a_reason() {
        let b = FetcherBuilder::default;
        let cases = [
            (b().concurrency(0), "concurrency must be at least 1, got 0"),
            (
                b().concurrency(usize::MAX),
                "concurrency must be at most 16384",
            ),
            (
                b().timeout(Duration::ZERO),
                "timeout must be longer than zero",
            ),
            (
                b().connect_timeout(Duration::ZERO),
                "connect_timeout must be longer",
            ),
            (
                b().total_timeout(Duration::ZERO),
                "total_timeout must be longer than zero",
            ),
            (
                b().backoff_multiplier(0.5),
                "backoff_multiplier must be a finite number of at least 1, got 0.5",
            ),
            (b().backoff_multiplier(f64::NAN), "got NaN"),
            (
                b().initial_backoff(Duration::from_secs(90)),
                "initial_backoff (90s) is longer than max_backoff (60s): lower initial_backoff, \
                 or raise max_backoff",
            ),
            (
                b().initial_backoff(Duration::from_secs(2))
                    .max_backoff(Duration::from_secs(1)),
                "initial_backoff (2s) is longer than max_backoff (1s)",
            ),
            (b().body_limit(0), "body_limit must be at least 1 byte"),
            (
                b().max_body_bytes_in_flight(0),
                "max_body_bytes_in_flight must be at least 1 byte, got 0",
            ),
            (
                b().header("bad name", "x"),
                "invalid header name \"bad name\"",
            ),
            (
                b().header("x-key", "a\nb"),
                "the value of header \"x-key\" has a forbidden character",
            ),
            (b().user_agent("a\r\nb"), "user_agent"),
            (
                b().rate_limit(0),
                "rate_limit must be at least 1 request per second, got 0",
            ),
            (
                b().rate_limit(5).rate_burst(0),
                "rate_burst must be at least 1, got 0",
            ),
            (b().rate_burst(3), "rate_burst is set without a rate_limit"),
            (
                b().max_per_host(0),
                "max_per_host must be at least 1, got 0",
            ),
            (
                b().with_env(|name| (name == "PARFETCH_CONCURRENCY").then(|| "lots".into())),
                "PARFETCH_CONCURRENCY=\"lots\" is not a valid value",
            ),
        ];
        for (builder, want) in cases {
            let message = rejected(builder);
            assert!(message.contains(want), "{message:?} lacks {want:?}");
        }
    }

    /// `max_backoff` below the default first delay lowers it, whichever
    /// setter comes first; one set by hand is kept.
    // From issue 26: `max_backoff(500ms)` alone made `build()` fail.
    #[test]
    fn a_low_max_backoff_lowers_the_default_initial_backoff() {
        let first = |builder: FetcherBuilder| builder.check().unwrap().retry.initial_delay;
        let half = Duration::from_millis(500);
        let b = FetcherBuilder::default;
        assert_eq!(first(b().max_backoff(half)), half);
        assert_eq!(
            first(b().max_backoff(Duration::from_secs(90))),
            Duration::from_secs(1)
        );
        let set = Duration::from_millis(100);
        assert_eq!(first(b().max_backoff(half).initial_backoff(set)), set);
        assert_eq!(first(b().initial_backoff(set).max_backoff(half)), set);
    }

    #[test]
    fn variables_apply_over_the_settings_so_far() {
        let builder = FetcherBuilder::default()
            .concurrency(3)
            .max_retries(9)
            .with_env(|name| match name {
                "PARFETCH_TIMEOUT" => Some("500ms".into()),
                "PARFETCH_RETRIES" => Some("1".into()),
                "PARFETCH_OFFLINE" => Some("true".into()),
                _ => None,
            });
        assert_eq!(
            builder.options.concurrency, 3,
            "a variable not set changes nothing"
        );
        assert_eq!(builder.options.timeout, Duration::from_millis(500));
        assert_eq!(builder.options.retry.max_retries, 1);
        assert!(builder.options.offline);
    }

    /// The crate docs' table of defaults says what `FetcherBuilder::default()`
    /// holds: each row is written from the default value, so a default
    /// changed without its row fails here.
    #[test]
    fn the_defaults_table_is_the_default_builder() {
        let docs = include_str!("../lib.rs");
        let table: Vec<&str> = docs
            .split("# Defaults")
            .nth(1)
            .expect("the crate docs have a Defaults section")
            .lines()
            .filter(|line| line.starts_with("//! |"))
            .collect();
        let row = |setting: &str| {
            table
                .iter()
                .find(|line| line.contains(setting))
                .copied()
                .unwrap_or_else(|| panic!("no row for {setting} in {table:#?}"))
        };
        let secs = |d: Duration| d.as_secs();
        let b = FetcherBuilder::default();
        let expected = [
            (
                "`concurrency`",
                format!(
                    "{} threads, so {} requests",
                    b.options.concurrency, b.options.concurrency
                ),
            ),
            (
                "`concurrency`",
                format!("starts hosts at {}", crate::policy::host::INITIAL_LIMIT),
            ),
            (
                "`timeout`",
                format!("{} s per attempt", secs(b.options.timeout)),
            ),
            (
                "`total_timeout`",
                match b.options.total_timeout {
                    None => "| none:".to_owned(),
                    Some(total) => format!("| {} s", secs(total)),
                },
            ),
            (
                "`timeout`",
                format!(
                    "(FetcherBuilder::connect_timeout) {} s",
                    secs(b.options.connect_timeout)
                ),
            ),
            (
                "`max_retries`",
                format!(
                    "{}, so at most {} attempts",
                    b.options.retry.max_retries,
                    b.options.retry.max_retries + 1
                ),
            ),
            (
                "| backoff",
                format!(
                    "×{} from {} s, plus up to {} s of jitter, capped at {} s",
                    b.options.retry.multiplier,
                    secs(b.options.retry.initial_delay),
                    secs(b.options.retry.jitter),
                    secs(b.options.retry.max_delay)
                ),
            ),
            (
                "| Retry-After",
                format!("({} min)", secs(b.options.retry.max_retry_after) / 60),
            ),
            (
                "`breaker_threshold`",
                format!("after {} consecutive failures", b.options.breaker_threshold),
            ),
            (
                "`breaker_threshold`",
                format!(
                    "(FetcherBuilder::breaker_open_time) ({} s)",
                    secs(b.options.breaker_open_time)
                ),
            ),
            (
                "`body_limit`",
                format!("{} MiB", b.options.body_limit >> 20),
            ),
            (
                "`max_body_bytes_in_flight`",
                format!("{} GiB", b.options.max_body_bytes_in_flight >> 30),
            ),
        ];
        for (setting, words) in expected {
            assert!(
                row(setting).contains(&words),
                "the {setting} row lacks {words:?}: {}",
                row(setting)
            );
        }
        assert!(!b.options.adaptive_concurrency && !b.options.breaker_fail_fast);
    }

    /// `Debug` shows every option, in the list's order, and hides the
    /// builder's own bookkeeping.
    #[test]
    fn debug_shows_the_options_in_order() {
        let debug = format!("{:?}", FetcherBuilder::default().header("x-trace", "t1"));
        assert!(
            debug.starts_with(
                "FetcherBuilder { concurrency: 20, timeout: 30s, connect_timeout: 10s, \
                 total_timeout: None, retry: RetryPolicy { max_retries: 3, "
            ),
            "{debug}"
        );
        assert!(
            debug.contains(
                "headers: [(\"x-trace\", \"t1\")], sensitive_headers: [], user_agent: \"parfetch/"
            ),
            "{debug}"
        );
        assert!(
            debug.ends_with("proxy: FromEnv, cookie_store: false, .. }"),
            "{debug}"
        );
        assert!(
            !debug.contains("clock") && !debug.contains("env_error"),
            "{debug}"
        );
    }

    #[test]
    fn debug_hides_header_secrets() {
        let builder = FetcherBuilder::default().header("Authorization", "Bearer t0k3n");
        let debug = format!("{builder:?}");
        assert!(!debug.contains("t0k3n"), "{debug}");
        assert!(debug.contains("(\"Authorization\", \"***\")"), "{debug}");
    }
}
