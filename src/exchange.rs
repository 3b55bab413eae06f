//! One request, from the first attempt to its result.
//!
//! The loop: ask the host's breaker, send one attempt (following its
//! redirects, `redirect.rs`), read the body within the limit, and on failure
//! ask the retry rules (`retry.rs`) whether and when to try again. A pooled
//! connection that the server closed while it sat idle is not a failure of
//! the host: such an attempt is resent at once, on another connection,
//! without counting as an attempt.
//!
//! Whatever happens on the way, one request ends in one result: a panic
//! anywhere below [`Shared::fetch`] (ours, a dependency's, a `Deserialize`
//! impl's) is caught there and becomes this request's
//! [`ErrorKind::Internal`] error, and the other requests carry on.

use std::any::Any;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant, SystemTime};

use ureq::http::{self, HeaderMap, HeaderName, HeaderValue};

use crate::agent;
use crate::cache::{CacheMode, Entry, Lookup};
use crate::cancel::{CancelToken, Stop};
use crate::clock;
use crate::error::{Detail, Error, ErrorKind};
use crate::fetcher::Shared;
use crate::redirect::{self, Refused};
use crate::request::Request;
use crate::retry::{self, Decision};
use crate::stats::Recorder;

/// How many times one request may be resent because its pooled connection
/// turned out stale. ureq already drops connections it sees closed; this
/// covers the race where the server closes one just as it is reused.
const STALE_RESENDS: u32 = 3;

/// How much of an error response's body is read for the error message;
/// reading a small body whole keeps the connection reusable.
const ERROR_BODY_READ: u64 = 64 << 10;
const ERROR_EXCERPT_CHARS: usize = 200;

/// How much of a redirect's body is read (and dropped) so that its
/// connection can be reused; a longer one closes the connection instead.
const REDIRECT_BODY_READ: u64 = 64 << 10;

/// Bodies at most this large (by Content-Length) get their buffer allocated
/// up front; larger ones grow as they arrive, so that a lying header cannot
/// make us allocate memory the body never fills.
const PREALLOCATE_LIMIT: u64 = 1 << 20;

/// What one request came to, with its particulars.
pub(crate) struct Outcome<T> {
    pub(crate) result: Result<T, Error>,
    /// The status of the last response, if any.
    pub(crate) status: Option<u16>,
    pub(crate) attempts: u32,
    /// From the first attempt to the result.
    pub(crate) elapsed: Duration,
}

/// A successful exchange's body and particulars.
struct Fetched {
    body: Vec<u8>,
    status: u16,
    attempts: u32,
    /// The response headers, when the cache needs them.
    headers: Option<HeaderMap>,
}

/// What an attempt sends beyond the request, and keeps beyond the body.
#[derive(Clone, Copy, Default)]
struct Extras<'a> {
    /// Revalidation headers (If-None-Match...): a 304 is then a success.
    conditional: &'a [(HeaderName, HeaderValue)],
    keep_headers: bool,
}

/// Why one attempt failed.
enum Failure {
    /// No response, or no whole one: connect, TLS, timeout, reset, limit.
    Transport {
        error: ureq::Error,
        /// Whether the response head had arrived.
        answered: bool,
    },
    /// The server answered with a status that is not a success.
    Status {
        status: u16,
        retry_after: Option<Duration>,
        excerpt: String,
    },
    /// A redirect that must not, or cannot, be followed.
    Redirect(Refused),
}

/// How one request runs: when it must stop, and where its figures go
/// besides the fetcher's own stats.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ctx<'a> {
    pub(crate) stop: Stop<'a>,
    pub(crate) batch: Option<&'a Recorder>,
}

impl Shared {
    /// Records into the fetcher's stats and the batch's, if any.
    fn record(&self, ctx: &Ctx<'_>, record: impl Fn(&Recorder)) {
        record(&self.stats);
        if let Some(batch) = ctx.batch {
            record(batch);
        }
    }

    /// Runs `request` to its result, turning the body into a `T` with
    /// `finish`, and records it in the stats. Never panics: a panic on the
    /// way is this request's [`ErrorKind::Internal`] error.
    pub(crate) fn fetch<T>(
        &self,
        request: &Request,
        ctx: &Ctx<'_>,
        finish: impl FnOnce(Vec<u8>) -> Result<T, Error>,
    ) -> Outcome<T> {
        let started = Instant::now();
        let run = AssertUnwindSafe(|| self.fetch_and_finish(request, ctx, finish));
        let (result, status, attempts) = catch_unwind(run).unwrap_or_else(|panic| {
            let error = request
                .error(ErrorKind::Internal)
                .with_detail(Detail::Reason(panic_message(&*panic)));
            (Err(error), None, 0)
        });
        let elapsed = started.elapsed();
        let failed = result.as_ref().err().map(Error::kind);
        self.record(ctx, |stats| stats.finished(elapsed, failed));
        Outcome {
            result,
            status,
            attempts,
            elapsed,
        }
    }

    fn fetch_and_finish<T>(
        &self,
        request: &Request,
        ctx: &Ctx<'_>,
        finish: impl FnOnce(Vec<u8>) -> Result<T, Error>,
    ) -> (Result<T, Error>, Option<u16>, u32) {
        match self.fetch_through_cache(request, ctx) {
            Ok(fetched) => {
                let result = finish(fetched.body).map_err(|error| {
                    error
                        .with_request(request.method_name(), request.url())
                        .with_attempts(fetched.attempts)
                });
                (result, Some(fetched.status), fetched.attempts)
            }
            Err(error) => {
                let (status, attempts) = (error.status(), error.attempts());
                (Err(error), status, attempts)
            }
        }
    }

    /// Serves `request` from the cache where the rules allow, revalidates
    /// stale entries, and stores what is fetched. Only GET is ever served
    /// from the cache; another method goes to the network and, once it has
    /// succeeded, makes the URL's stored GET stale (RFC 9111 §4.4).
    fn fetch_through_cache(&self, request: &Request, ctx: &Ctx<'_>) -> Result<Fetched, Error> {
        let mode = request.cache();
        let Some(cache) = self
            .cache
            .as_ref()
            .filter(|cache| mode != CacheMode::Off || cache.offline())
        else {
            return self.fetch_body(request, ctx, Extras::default());
        };
        let offline = cache.offline();
        if !request.is_get() {
            if offline {
                return Err(request.error(ErrorKind::Offline));
            }
            let fetched = self.fetch_body(request, ctx, Extras::default())?;
            cache.invalidate(request.url());
            return Ok(fetched);
        }
        let http = request.to_http(&self.settings.headers)?;
        let lookup = if mode.reads() {
            cache.lookup(&http, request.url(), SystemTime::now())
        } else {
            Lookup::Miss
        };
        if matches!(lookup, Lookup::Miss) && mode.reads() {
            self.record(ctx, Recorder::cache_miss);
        }
        let served = |entry: Entry, revalidated: bool, attempts: u32| {
            self.record(ctx, |stats| {
                stats.cache_served(entry.body.len(), revalidated);
            });
            Fetched {
                body: entry.body,
                status: 200,
                attempts,
                headers: None,
            }
        };
        let entry = match lookup {
            Lookup::Fresh(entry) => return Ok(served(entry, false, 0)),
            // Offline, a stale answer beats none.
            Lookup::Stale(entry, _) if offline => return Ok(served(entry, false, 0)),
            Lookup::Miss if offline => return Err(request.error(ErrorKind::Offline)),
            Lookup::Miss => None,
            Lookup::Stale(entry, conditional) => Some((entry, conditional)),
        };
        let conditional = entry.as_ref().map_or(&[][..], |(_, headers)| headers);
        let extras = Extras {
            conditional,
            // Only storing or refreshing an entry needs the headers.
            keep_headers: mode.writes(),
        };
        let mut fetched = self.fetch_body(request, ctx, extras)?;
        let headers = fetched.headers.take().unwrap_or_default();
        match entry {
            Some((entry, _)) if fetched.status == 304 => {
                if mode.writes() {
                    cache.refresh(&http, request.url(), &entry, fetched.status, &headers);
                }
                Ok(served(entry, true, fetched.attempts))
            }
            _ => {
                if mode.writes() {
                    cache.store(
                        &http,
                        request.url(),
                        fetched.status,
                        &headers,
                        &fetched.body,
                    );
                }
                Ok(fetched)
            }
        }
    }

    /// The attempt loop: the body, its status and the attempts it took.
    fn fetch_body(
        &self,
        request: &Request,
        ctx: &Ctx<'_>,
        extras: Extras<'_>,
    ) -> Result<Fetched, Error> {
        let settings = &self.settings;
        if request.timeout_override().is_some_and(|t| t.is_zero()) {
            return Err(request.refused("its timeout is zero: no attempt could finish"));
        }
        let host = request.host();
        let mut attempts = 0;
        let mut stale_resends = 0;
        let mut delays = None;
        let mut last_error = None;
        let stopped = |kind: ErrorKind, attempts: u32, last: Option<Error>| {
            let error = request.error(kind).with_attempts(attempts);
            match last {
                Some(last) => error.with_source(last),
                None => error,
            }
        };
        loop {
            if let Err(kind) = ctx.stop.check() {
                return Err(stopped(kind, attempts, last_error));
            }
            let http = self.http_request(request, extras)?;
            let Some(permit) = self.breakers.admit(host) else {
                return Err(request
                    .error(ErrorKind::CircuitOpen)
                    .with_attempts(attempts)
                    .with_detail(Detail::Host(host.to_owned())));
            };
            let passed = match self.limits.pass(host, &ctx.stop) {
                Ok(passed) => passed,
                Err(kind) => return Err(stopped(kind, attempts, last_error)),
            };
            if let Some(waited) = passed.waited {
                self.record(ctx, |stats| stats.gate_wait(waited));
            }
            // The attempt may not outlast the batch's deadline.
            let timeout = request
                .timeout_override()
                .map_or(settings.timeout, clock::capped);
            let clipped = ctx.stop.clip(timeout);
            if clipped.is_zero() {
                return Err(stopped(ErrorKind::DeadlineExceeded, attempts, last_error));
            }
            // The agent's own timeout is the fetcher's: only another one
            // needs the request to carry it.
            let own_timeout = (clipped != settings.timeout).then_some(clipped);
            attempts += 1;
            self.record(ctx, |stats| stats.attempt(attempts > 1));
            let opened_before = agent::opened_on_this_thread();
            let attempt_started = Instant::now();
            let result = self.attempt(request, http, own_timeout, clipped, ctx, extras);
            drop(passed.slot);
            let failure = match result {
                Ok((status, body, headers)) => {
                    permit.success();
                    self.record(ctx, |stats| stats.bytes(body.len()));
                    log::debug!(
                        "{} {}: attempt {attempts} got {} bytes in {:?}",
                        request.method_name(),
                        request.redacted_url(),
                        body.len(),
                        attempt_started.elapsed()
                    );
                    return Ok(Fetched {
                        body,
                        status,
                        attempts,
                        headers,
                    });
                }
                Err(failure) => failure,
            };
            let stale = match &failure {
                Failure::Transport { error, answered } => {
                    !answered
                        && retry::is_closed_before_response(error)
                        && agent::opened_on_this_thread() == opened_before
                }
                Failure::Status { .. } | Failure::Redirect(_) => false,
            };
            if stale && request.is_idempotent() && stale_resends < STALE_RESENDS {
                // The permit is dropped unreported: the host did nothing wrong.
                drop(permit);
                stale_resends += 1;
                attempts -= 1;
                self.record(ctx, Recorder::stale_connection);
                log::debug!(
                    "{} {}: pooled connection was closed by the server; resending",
                    request.method_name(),
                    request.redacted_url()
                );
                continue;
            }
            let error = self.failure_to_error(request, failure, attempts, clipped);
            if retry::counts_against_host(error.kind(), error.status()) {
                permit.failure();
            } else {
                permit.success();
            }
            if let Some(pause) =
                retry::host_pause(error.status(), error.retry_after(), &settings.retry)
            {
                self.limits.close_gate(host, pause);
            }
            log::debug!(
                "{} {}: attempt {attempts} failed in {:?}: {error}",
                request.method_name(),
                request.redacted_url(),
                attempt_started.elapsed()
            );
            // A failure the batch's stop brought about (a clipped timeout, a
            // cancelled read) ends as the stop, with the failure as cause.
            if error.is_retryable() {
                if let Err(kind) = ctx.stop.check() {
                    return Err(stopped(kind, attempts, Some(error)));
                }
            }
            let delays = delays.get_or_insert_with(|| settings.retry.delays());
            let failed = retry::Failed {
                kind: error.kind(),
                status: error.status(),
                attempts,
                idempotent: request.is_idempotent(),
                retry_after: error.retry_after(),
            };
            match settings.retry.decide(&failed, delays, fastrand::f64()) {
                Decision::GiveUp => return Err(error),
                Decision::RetryAfter(delay) => {
                    log::warn!("{error}; retrying in {delay:?}");
                    if let Err(kind) = ctx.stop.sleep(&*self.clock, delay) {
                        return Err(stopped(kind, attempts, Some(error)));
                    }
                    last_error = Some(error);
                }
            }
        }
    }

    /// The request as ureq takes it: the fetcher's headers under the
    /// request's own, and revalidation headers if any.
    fn http_request<'r>(
        &self,
        request: &'r Request,
        extras: Extras<'_>,
    ) -> Result<http::Request<&'r [u8]>, Error> {
        let mut http = request.to_http(&self.settings.headers)?;
        for (name, value) in extras.conditional {
            http.headers_mut().insert(name.clone(), value.clone());
        }
        Ok(http)
    }

    /// Sends one attempt, follows its redirects and reads the whole body,
    /// all within `timeout`. `own_timeout` is set when that timeout is not
    /// the agent's (the request's own, or clipped by a deadline).
    fn attempt<'r>(
        &self,
        request: &'r Request,
        mut http: http::Request<&'r [u8]>,
        own_timeout: Option<Duration>,
        timeout: Duration,
        ctx: &Ctx<'_>,
        extras: Extras<'_>,
    ) -> Result<(u16, Vec<u8>, Option<HeaderMap>), Failure> {
        let started = Instant::now();
        let mut url = std::borrow::Cow::Borrowed(request.url());
        // What the hops so far allow: a GET once one made it so, secrets
        // only while every hop kept to their origin.
        let mut made_get = false;
        let mut secrets_kept = true;
        let mut visited = Vec::new();
        let mut response = loop {
            // Each hop gets what is left of the attempt's time.
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(timed_out());
            }
            let send = if visited.is_empty() && own_timeout.is_none() {
                http
            } else {
                self.with_timeout(http, left)
            };
            let mut response = self.agent.run(send).map_err(|error| Failure::Transport {
                error,
                answered: false,
            })?;
            let status = response.status().as_u16();
            if self.settings.max_redirects == 0 || !redirect::is_redirect(status) {
                break response;
            }
            let location = response.headers().get(http::header::LOCATION);
            let method = if made_get {
                "GET"
            } else {
                request.method_name()
            };
            let hop =
                match redirect::next_hop(&url, method, status, location.map(HeaderValue::as_bytes))
                {
                    Ok(Some(hop)) => hop,
                    Ok(None) => break response,
                    Err(refused) => return Err(Failure::Redirect(refused)),
                };
            if visited.len() >= self.settings.max_redirects as usize {
                let looped = visited.contains(&hop.url);
                return Err(Failure::Redirect(Refused::TooMany {
                    max: self.settings.max_redirects,
                    looped,
                }));
            }
            // Read the little body there is, so the connection can be reused.
            let _ = response
                .body_mut()
                .as_reader()
                .take(REDIRECT_BODY_READ)
                .read_to_end(&mut Vec::new());
            made_get |= hop.becomes_get;
            secrets_kept &= hop.keeps_secrets;
            let bad_location = || Failure::Redirect(Refused::BadLocation(hop.url.clone()));
            http = self
                .http_request(request, extras)
                .map_err(|_| bad_location())?;
            redirect::apply(&hop.url, made_get, secrets_kept, &mut http, |name| {
                self.settings.is_sensitive(name) || request.is_sensitive(name)
            })
            .ok_or_else(bad_location)?;
            visited.push(hop.url.clone());
            url = hop.url.into();
        };
        let status = response.status().as_u16();
        let headers = extras.keep_headers.then(|| response.headers().clone());
        if status == 304 && !extras.conditional.is_empty() {
            return Ok((status, Vec::new(), headers));
        }
        if retry::classify_status(status).is_some() {
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| retry::parse_retry_after(value, SystemTime::now()));
            let mut start = Vec::new();
            // A body we cannot read (or not in time) is no reason to lose
            // the status.
            let _ = response
                .body_mut()
                .as_reader()
                .take(ERROR_BODY_READ)
                .read_to_end(&mut start);
            return Err(Failure::Status {
                status,
                retry_after,
                excerpt: excerpt(&start),
            });
        }
        let limit = self.settings.body_limit;
        let mut body = Vec::new();
        if let Some(length) = response.body().content_length() {
            body.reserve_exact(
                usize::try_from(length.min(limit).min(PREALLOCATE_LIMIT)).unwrap_or(0),
            );
        }
        // ureq's own limit counts the bytes on the wire; a gzip bomb is small
        // there. The limit that matters is on what it inflates to.
        let reader = response.body_mut().with_config().limit(u64::MAX).reader();
        CancellableReader {
            reader,
            cancel: ctx.stop.cancel,
        }
        .take(limit.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|io| Failure::Transport {
            error: ureq::Error::from(io),
            answered: true,
        })?;
        if body.len() as u64 > limit {
            return Err(Failure::Transport {
                error: ureq::Error::BodyExceedsLimit(limit),
                answered: true,
            });
        }
        Ok((status, body, headers))
    }

    /// `http`, to be sent with `timeout` as its whole budget instead of the
    /// agent's.
    fn with_timeout<'b>(
        &self,
        http: http::Request<&'b [u8]>,
        timeout: Duration,
    ) -> http::Request<&'b [u8]> {
        self.agent
            .configure_request(http)
            .timeout_global(Some(timeout))
            .build()
    }

    /// The error a failed attempt amounts to.
    fn failure_to_error(
        &self,
        request: &Request,
        failure: Failure,
        attempts: u32,
        timeout: Duration,
    ) -> Error {
        match failure {
            Failure::Transport { error, .. } => {
                let kind = retry::classify_transport(&error);
                let detail = match kind {
                    ErrorKind::Timeout => Detail::Timeout(timeout),
                    ErrorKind::BodyTooLarge => Detail::Limit(self.settings.body_limit),
                    _ => Detail::None,
                };
                request
                    .error(kind)
                    .with_attempts(attempts)
                    .with_detail(detail)
                    .with_source(error)
            }
            Failure::Status {
                status,
                retry_after,
                excerpt,
            } => {
                let kind = retry::classify_status(status).unwrap_or(ErrorKind::Status);
                let error = request
                    .error(kind)
                    .with_attempts(attempts)
                    .with_status(status)
                    .with_retry_after(retry_after);
                if excerpt.is_empty() {
                    error
                } else {
                    error.with_detail(Detail::BodyExcerpt(excerpt))
                }
            }
            Failure::Redirect(refused) => request
                .error(ErrorKind::Redirect)
                .with_attempts(attempts)
                .with_detail(Detail::Reason(refused.to_string())),
        }
    }
}

/// What a caught panic says, for the error message.
fn panic_message(panic: &(dyn Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    format!("panicked: {text}")
}

/// Stops a body read once its batch is cancelled. (The attempt's timeout is
/// ureq's to enforce, read by read.)
struct CancellableReader<'a, R> {
    reader: R,
    cancel: Option<&'a CancelToken>,
}

impl<R: Read> Read for CancellableReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(std::io::Error::other(Cancelled));
        }
        self.reader.read(buf)
    }
}

/// The cause of a body read stopped by a cancelled batch.
#[derive(Debug, thiserror::Error)]
#[error("the batch was cancelled while the body was read")]
struct Cancelled;

/// The failure of an attempt whose time ran out between two hops.
fn timed_out() -> Failure {
    Failure::Transport {
        error: ureq::Error::Timeout(ureq::Timeout::Global),
        answered: false,
    }
}

/// The start of an error body as one line of text, for a message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= ERROR_EXCERPT_CHARS {
        return line;
    }
    let mut short: String = line.chars().take(ERROR_EXCERPT_CHARS).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::{BreakerState, Fetcher};
    use std::io::Write;
    use std::net::TcpListener;
    use std::sync::Arc;

    /// A server that answers every request with `response`, one per
    /// connection, until the test ends.
    fn server(response: &'static str) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut request = [0; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        format!("http://{addr}/doc.json")
    }

    const UNAVAILABLE: &str =
        "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 4\r\n\r\nbusy";

    fn fetcher(clock: &Arc<ManualClock>) -> Fetcher {
        Fetcher::builder()
            .jitter(Duration::ZERO)
            .breaker_threshold(0)
            .clock(clock.clone())
            .build()
            .unwrap()
    }

    #[test]
    fn retries_wait_the_backoff_sequence() {
        let clock = Arc::new(ManualClock::default());
        let url = server(UNAVAILABLE);
        let error = fetcher(&clock).get_bytes(url).unwrap_err();
        assert_eq!(error.status(), Some(503));
        assert_eq!(error.attempts(), 4);
        assert_eq!(error.body_excerpt(), Some("busy"));
        let secs = |s: &[u64]| {
            s.iter()
                .map(|&s| Duration::from_secs(s))
                .collect::<Vec<_>>()
        };
        assert_eq!(clock.sleeps(), secs(&[1, 2, 4]));
    }

    #[test]
    fn retry_after_replaces_the_backoff_delay() {
        let clock = Arc::new(ManualClock::default());
        let url = server(
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
        );
        let error = fetcher(&clock).get_bytes(url).unwrap_err();
        assert_eq!((error.status(), error.attempts()), (Some(429), 4));
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(7); 3]);
    }

    #[test]
    fn breaker_cycle_through_the_fetcher() {
        let clock = Arc::new(ManualClock::default());
        let url = server(UNAVAILABLE);
        let fetcher = Fetcher::builder()
            .max_retries(0)
            .breaker_threshold(2)
            .breaker_open_time(Duration::from_secs(60))
            .clock(clock.clone())
            .build()
            .unwrap();
        let host = Request::get(url.as_str()).host().to_owned();
        for _ in 0..2 {
            assert_eq!(
                fetcher.get_bytes(&url).unwrap_err().kind(),
                ErrorKind::Status
            );
        }
        assert_eq!(fetcher.breaker_state(&host), BreakerState::Open);
        let open = fetcher.get_bytes(&url).unwrap_err();
        assert_eq!((open.kind(), open.attempts()), (ErrorKind::CircuitOpen, 0));
        clock.advance(Duration::from_secs(60));
        assert_eq!(fetcher.breaker_state(&host), BreakerState::HalfOpen);
        // The probe is sent, fails, and the breaker opens again.
        assert_eq!(
            fetcher.get_bytes(&url).unwrap_err().kind(),
            ErrorKind::Status
        );
        assert_eq!(fetcher.breaker_state(&host), BreakerState::Open);
        fetcher.reset_breakers();
        assert_eq!(fetcher.breaker_state(&host), BreakerState::Closed);
        assert_eq!(fetcher.stats().failures_of(ErrorKind::CircuitOpen), 1);
    }

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b""), "");
        assert_eq!(
            excerpt(b"  {\"error\":\n  \"rate limited\"}\n"),
            "{\"error\": \"rate limited\"}"
        );
        let long = excerpt("x".repeat(500).as_bytes());
        assert_eq!(long.chars().count(), ERROR_EXCERPT_CHARS + 1);
        assert!(long.ends_with('…'));
        assert_eq!(excerpt(&[0xff, b'o', b'k']), "\u{fffd}ok");
    }
}
