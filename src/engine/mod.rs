//! The engine: what a fetcher and its clones share, and how it runs one
//! request from its first attempt to its result.
//!
//! A request goes, top to bottom: [`Engine::fetch`] (a panic anywhere below
//! becomes this request's [`ErrorKind::Internal`] error, and the other
//! requests carry on), the cache (`cache/`: only GET is served from it),
//! then the attempt loop: the host's record (`host.rs`, one lookup), its
//! breaker (`breaker.rs`) and gates (`limit.rs`), one attempt
//! (`attempt.rs`), and on failure the retry rules (`retry.rs`).

pub(crate) mod pools;

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ureq::http::{HeaderMap, HeaderName, HeaderValue};

use crate::cache::{self, Cache, Entry, Lookup};
use crate::cancel::Stop;
use crate::clock::{self, Clock};
use crate::config::Settings;
use crate::engine::pools::Pools;
use crate::error::{classify, Detail, Error, ErrorKind};
use crate::origin::OriginRef;
use crate::policy::breaker::{self, Breakers};
use crate::policy::host::{Host, Hosts};
use crate::policy::limit::Limits;
use crate::policy::retry::{self, Decision, FailedAttempt};
use crate::request::{CacheMode, Request};
use crate::stats::Recorder;
use crate::transport::agent::Agents;
use crate::transport::attempt::{self, Attempt, BodyLabels, CacheNeeds, Received};
use crate::transport::cookies::Jar;

/// What the clones of a fetcher share.
pub(crate) struct Engine {
    pub(crate) settings: Settings,
    agents: Agents,
    /// The cookies, when the fetcher keeps them.
    jar: Option<Jar>,
    pub(crate) hosts: Arc<Hosts>,
    pub(crate) breakers: Breakers,
    pub(crate) limits: Arc<Limits>,
    pub(crate) cache: Option<Cache>,
    pub(crate) stats: Arc<Recorder>,
    clock: Arc<dyn Clock>,
    pub(crate) pools: Pools,
}

/// What one request came to, with its particulars.
pub(crate) struct Finished<T> {
    pub(crate) result: Result<T, Error>,
    /// The status of the last response, if any.
    pub(crate) status: Option<u16>,
    pub(crate) attempts: u32,
    /// From the first attempt to the result.
    pub(crate) elapsed: Duration,
}

/// A request that failed, and the response it failed with, when the cache
/// asked for it (a 404 is stored too).
struct Failed {
    error: Error,
    response: Option<Box<Answer>>,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Failed {
        Failed {
            error,
            response: None,
        }
    }
}

/// A body to hand over, with the status and the attempts it took.
struct Answer {
    body: Vec<u8>,
    status: u16,
    attempts: u32,
    /// The response headers, when the cache needs them.
    headers: Option<ureq::http::HeaderMap>,
    /// What the response said its body is (none from the cache).
    labels: BodyLabels,
}

/// How one request runs: when it must stop, and where its figures go
/// besides the fetcher's own stats.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scope<'a> {
    pub(crate) stop: Stop<'a>,
    pub(crate) batch: Option<&'a Recorder>,
}

impl Engine {
    /// The engine for checked `settings`: its threads, its connection pool,
    /// its host table and its cache.
    pub(crate) fn new(settings: Settings) -> Result<Engine, Error> {
        let clock = Arc::clone(&settings.clock);
        let pools = Pools::new(settings.concurrency)?;
        let stats = Arc::new(Recorder::default());
        let limits = Arc::new(Limits::new(
            settings.rate,
            settings.max_per_host,
            settings.retry.jitter,
            Arc::clone(&clock),
        ));
        // A rate-limited host's record outlives the time its allowance
        // takes to fill up (`host.rs`).
        let refill = limits.refill();
        let hosts = Arc::new(Hosts::new(
            Arc::clone(&clock),
            settings.breaker_open_time,
            refill,
            {
                let limits = Arc::clone(&limits);
                move || limits.new_gate()
            },
        ));
        let agents = Agents::new(&settings.transport, &stats, &hosts);
        let jar = settings.cookie_store.then(Jar::default);
        let breakers = Breakers::new(
            settings.breaker_threshold,
            settings.breaker_open_time,
            Arc::clone(&clock),
        );
        let cache = match settings.cache.clone() {
            Some(cache) => Some(
                Cache::open(cache)
                    .map_err(|e| Error::config("cannot open the cache directory").with_source(e))?,
            ),
            None => None,
        };
        Ok(Engine {
            settings,
            agents,
            jar,
            hosts,
            breakers,
            limits,
            cache,
            stats,
            clock,
            pools,
        })
    }

    /// Records into the fetcher's stats and the batch's, if any.
    fn record(&self, scope: &Scope<'_>, record: impl Fn(&Recorder)) {
        record(&self.stats);
        if let Some(batch) = scope.batch {
            record(batch);
        }
    }

    /// Runs `request` to its result, turning the body into a `T` with
    /// `finish`, and records it in the stats. Never panics: a panic on the
    /// way is this request's [`ErrorKind::Internal`] error.
    pub(crate) fn fetch<T>(
        &self,
        request: &Request,
        scope: &Scope<'_>,
        finish: impl FnOnce(Vec<u8>) -> Result<T, Error>,
    ) -> Finished<T> {
        let started = Instant::now();
        let run = AssertUnwindSafe(|| self.fetch_and_finish(request, scope, finish));
        let (result, status, attempts) = catch_unwind(run).unwrap_or_else(|panic| {
            let error = request
                .error(ErrorKind::Internal)
                .with_detail(Detail::Reason(panic_message(&*panic)));
            (Err(error), None, 0)
        });
        let elapsed = started.elapsed();
        let failed = result.as_ref().err().map(Error::kind);
        self.record(scope, |stats| stats.finished(elapsed, failed));
        Finished {
            result,
            status,
            attempts,
            elapsed,
        }
    }

    fn fetch_and_finish<T>(
        &self,
        request: &Request,
        scope: &Scope<'_>,
        finish: impl FnOnce(Vec<u8>) -> Result<T, Error>,
    ) -> (Result<T, Error>, Option<u16>, u32) {
        match self.fetch_through_cache(request, scope) {
            Ok(answer) => {
                let labels = answer.labels;
                let result = finish(answer.body).map_err(|error| {
                    error
                        .with_request(request.method_name(), request.url())
                        .with_attempts(answer.attempts)
                        .with_body_labels(
                            labels.content_type.as_deref(),
                            labels.undecoded.as_deref(),
                        )
                });
                (result, Some(answer.status), answer.attempts)
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
    fn fetch_through_cache(&self, request: &Request, scope: &Scope<'_>) -> Result<Answer, Error> {
        let mode = request.cache();
        let Some(cache) = self
            .cache
            .as_ref()
            .filter(|cache| mode != CacheMode::Off || cache.offline())
        else {
            return self
                .fetch_body(request, scope, CacheNeeds::default())
                .map_err(|failed| failed.error);
        };
        let offline = cache.offline();
        if !request.is_get() {
            if offline {
                return Err(request
                    .error(ErrorKind::Offline)
                    .with_detail(Detail::Reason(
                        "only GET and HEAD are answered from the cache".to_owned(),
                    )));
            }
            let answer = self
                .fetch_body(request, scope, CacheNeeds::default())
                .map_err(|failed| failed.error)?;
            cache.invalidate(request.url());
            return Ok(answer);
        }
        let mut http = request.to_http(&self.settings.transport.headers)?;
        // The jar's cookies key the entry as your own would (hashed): one
        // session's answers are not served to another.
        if let Some(jar) = &self.jar {
            jar.add_to(request.url(), http.headers_mut());
        }
        let is_sensitive = |name: &str| self.is_sensitive(request, name);
        let Some(key) = cache.key(request.url(), &http, is_sensitive) else {
            return self
                .fetch_body(request, scope, CacheNeeds::default())
                .map_err(|failed| failed.error);
        };
        let lookup = if mode.reads() {
            cache.lookup(&key, &http, SystemTime::now())
        } else {
            Lookup::Miss
        };
        if matches!(lookup, Lookup::Miss) && mode.reads() {
            self.record(scope, Recorder::cache_miss);
        }
        // A stored answer, with the status it had: a 203 stays a 203, a
        // 404 stays the request's NotFound error.
        let served = |entry: Entry, revalidated: bool, attempts: u32| {
            self.record(scope, |stats| {
                stats.cache_served(entry.body.len(), revalidated);
            });
            let status = entry.meta.status;
            if classify::classify_status(status).is_some() {
                return Err(
                    attempt::status_error(request, status, &entry.body).with_attempts(attempts)
                );
            }
            // The labels the fetch had, so that a hit's words are the same.
            let labels = BodyLabels {
                content_type: entry.meta.content_type.map(Box::from),
                undecoded: entry.meta.undone.map(Box::from),
            };
            Ok(Answer {
                body: entry.body,
                status,
                attempts,
                headers: None,
                labels,
            })
        };
        let entry = match lookup {
            Lookup::Fresh(entry) => return served(entry, false, 0),
            // Offline, a stale answer beats none, unless the server said
            // it must not be served stale (RFC 9111 §4.2.4).
            Lookup::Stale(entry, _) if offline && !entry.meta.must_revalidate => {
                return served(entry, false, 0)
            }
            Lookup::Stale(..) if offline => {
                return Err(request
                    .error(ErrorKind::Offline)
                    .with_detail(Detail::Reason(
                        "the cached answer is stale, and the server said it must not be \
                         served stale (must-revalidate)"
                            .to_owned(),
                    )))
            }
            Lookup::Miss if offline => return Err(request.error(ErrorKind::Offline)),
            Lookup::Miss => None,
            Lookup::Stale(entry, conditional) => Some((entry, conditional)),
        };
        let (entry, conditional) = match entry {
            Some((entry, conditional)) => (Some(entry), conditional),
            None => (None, Vec::new()),
        };
        // Storing or refreshing an entry needs the headers, and so does
        // judging a 304 (whose version is it?), read-only or not.
        let keep_headers = mode.writes();
        let fetch = |conditional: &[(HeaderName, HeaderValue)]| {
            let needs = CacheNeeds {
                conditional,
                keep_headers: keep_headers || !conditional.is_empty(),
            };
            self.fetch_body(request, scope, needs)
                .map_err(|Failed { error, response }| {
                    // A 404 (and any status the rules let a cache keep) is
                    // stored, to answer for the URL next time, offline too.
                    let stored = response.filter(|_| keep_headers);
                    if let Some((response, headers)) =
                        stored.and_then(|r| r.headers.clone().map(|h| (r, h)))
                    {
                        cache.store(
                            &key,
                            &http,
                            response.status,
                            &headers,
                            &response.body,
                            response.labels.undecoded.as_deref(),
                            &is_sensitive,
                        );
                    }
                    error
                })
        };
        let mut answer = fetch(&conditional)?;
        // No headers when the answer may not be cached (`attempt.rs`).
        let mut headers = answer.headers.take();
        if let Some(entry) = entry.filter(|_| answer.status == 304) {
            let no_headers = HeaderMap::new();
            let said = headers.as_ref().unwrap_or(&no_headers);
            if cache::rules::confirms(&entry, said) {
                if let Some(headers) = headers.as_ref().filter(|_| keep_headers) {
                    cache.refresh(&key, &http, &entry, headers, &is_sensitive);
                }
                return served(entry, true, answer.attempts);
            }
            // A 304 about another version: ask again, for the whole of it.
            let attempts = answer.attempts;
            answer = fetch(&[])?;
            answer.attempts = answer.attempts.saturating_add(attempts);
            headers = answer.headers.take();
        }
        if let Some(headers) = headers.as_ref().filter(|_| keep_headers) {
            cache.store(
                &key,
                &http,
                answer.status,
                headers,
                &answer.body,
                answer.labels.undecoded.as_deref(),
                &is_sensitive,
            );
        }
        Ok(answer)
    }

    /// The attempt loop: the body, its status and the attempts it took.
    fn fetch_body(
        &self,
        request: &Request,
        scope: &Scope<'_>,
        needs: CacheNeeds<'_>,
    ) -> Result<Answer, Failed> {
        let settings = &self.settings;
        if request.timeout_override().is_some_and(|t| t.is_zero()) {
            return Err(request
                .refused("its timeout is zero: no attempt could finish")
                .into());
        }
        // `to_http` has accepted the URL by the time a key is needed; one
        // it refuses has no host to key on.
        let http = attempt::http_request(request, &settings.transport, needs)?;
        let Some(key) = OriginRef::of_url(request.url()) else {
            return Err(request.refused("the URL has no http(s) host").into());
        };
        let mut http = Some(http);
        let mut attempts = 0;
        let mut delays = None;
        let mut last_error = None;
        let stopped = |kind: ErrorKind, attempts: u32, last: Option<Error>| {
            let error = request.error(kind).with_attempts(attempts);
            match last {
                Some(last) => error.with_source(last.into_cause()),
                None => error,
            }
        };
        loop {
            if let Err(kind) = scope.stop.check() {
                return Err(stopped(kind, attempts, last_error).into());
            }
            let http = match http.take() {
                Some(http) => http,
                None => attempt::http_request(request, &settings.transport, needs)?,
            };
            // The attempt may not outlast the batch's deadline.
            let timeout = request
                .timeout_override()
                .map_or(settings.transport.timeout, clock::capped);
            let clipped = scope.stop.clip(timeout);
            if clipped.is_zero() {
                return Err(stopped(ErrorKind::DeadlineExceeded, attempts, last_error).into());
            }
            // An attempt ends within 1.125 times its timeout (`agent.rs`).
            let busy_for = clipped.saturating_add(clipped / 8);
            let step = self.hosts.with_for(&key, busy_for, |host| {
                let at = At {
                    host,
                    timeout: clipped,
                    attempts_before: attempts,
                };
                self.attempt_at(request, &at, http, scope, needs)
            });
            let (error, response) = match step {
                Step::Done(answer) => return Ok(answer),
                Step::Refused(error) => return Err(error.into()),
                Step::Stopped(kind) => return Err(stopped(kind, attempts, last_error).into()),
                Step::Failed(Failed { error, response }) => {
                    attempts = error.attempts();
                    (error, response)
                }
            };
            // A failure the batch's stop brought about (a clipped timeout, a
            // cancelled read) ends as the stop, with the failure as cause.
            if error.is_retryable() {
                if let Err(kind) = scope.stop.check() {
                    return Err(stopped(kind, attempts, Some(error)).into());
                }
            }
            let delays = delays.get_or_insert_with(|| settings.retry.delays());
            let failed = FailedAttempt {
                kind: error.kind(),
                status: error.status(),
                attempts,
                idempotent: request.is_idempotent(),
                retry_after: error.retry_after(),
            };
            match settings.retry.decide(&failed, delays, fastrand::f64()) {
                Decision::GiveUp => return Err(Failed { error, response }),
                Decision::RetryAfter(delay) => {
                    log::warn!("{error}; retrying in {delay:?}");
                    if let Err(kind) = scope.stop.sleep(&*self.clock, delay) {
                        return Err(stopped(kind, attempts, Some(error)).into());
                    }
                    last_error = Some(error);
                }
            }
        }
    }

    /// One attempt at a host: its breaker, its gates, the exchange, and
    /// what the outcome tells about the host.
    fn attempt_at(
        &self,
        request: &Request,
        at: &At<'_>,
        http: ureq::http::Request<&[u8]>,
        scope: &Scope<'_>,
        needs: CacheNeeds<'_>,
    ) -> Step {
        let (settings, host, timeout) = (&self.settings, at.host, at.timeout);
        let Some(permit) = self.breakers.admit(&host.breaker, &host.key) else {
            return Step::Refused(
                request
                    .error(ErrorKind::CircuitOpen)
                    .with_attempts(at.attempts_before)
                    .with_detail(Detail::Host(host.key.to_string())),
            );
        };
        let passed = match self.limits.pass(&host.gate, &scope.stop) {
            Ok(passed) => passed,
            Err(kind) => return Step::Stopped(kind),
        };
        if let Some(waited) = passed.waited {
            self.record(scope, |stats| stats.gate_wait(waited));
        }
        // The agent's own timeout is the fetcher's: only another one needs
        // the request to carry it.
        let own_timeout = (timeout != settings.transport.timeout).then_some(timeout);
        let attempts = at.attempts_before + 1;
        self.record(scope, |stats| stats.attempt(attempts > 1));
        let started = Instant::now();
        let on_stale = || self.record(scope, Recorder::stale_connection);
        let exchange = Attempt {
            agents: &self.agents,
            settings: &settings.transport,
            jar: self.jar.as_ref(),
            cancel: scope.stop.cancel,
            on_stale: &on_stale,
        };
        let result = exchange.run(request, http, own_timeout, timeout, needs);
        drop(passed.slot);
        let failure = match result {
            Ok(Received {
                status,
                body,
                headers,
                labels,
            }) => {
                permit.success();
                self.record(scope, |stats| stats.bytes(body.len()));
                log::debug!(
                    "{} {}: attempt {attempts} got {} bytes in {:?}",
                    request.method_name(),
                    request.redacted_url(),
                    body.len(),
                    started.elapsed()
                );
                return Step::Done(Answer {
                    body,
                    status,
                    attempts,
                    headers,
                    labels,
                });
            }
            Err(failure) => failure,
        };
        let response = failure.response().map(|(status, start, headers)| {
            Box::new(Answer {
                body: start.to_vec(),
                status,
                attempts,
                headers: Some(headers.clone()),
                labels: BodyLabels::default(),
            })
        });
        let error = failure.into_error(request, attempts, timeout, &settings.transport);
        if breaker::counts_against_host(error.kind(), error.status()) {
            permit.failure();
        } else {
            permit.success();
        }
        if let Some(pause) = retry::host_pause(error.status(), error.retry_after(), &settings.retry)
        {
            self.limits.close_gate(&host.gate, &host.key, pause);
        }
        log::debug!(
            "{} {}: attempt {attempts} failed in {:?}: {error}",
            request.method_name(),
            request.redacted_url(),
            started.elapsed()
        );
        Step::Failed(Failed { error, response })
    }

    /// Whether header `name` of `request` is a secret: by default, or marked
    /// so on the builder or the request.
    fn is_sensitive(&self, request: &Request, name: &str) -> bool {
        self.settings.transport.is_sensitive(name) || request.is_sensitive(name)
    }

    /// The state of the breaker of the host `text` names (a URL, `host` or
    /// `host:port`): the worst of the records it may mean.
    pub(crate) fn breaker_state(&self, text: &str) -> crate::BreakerState {
        use crate::BreakerState::{Closed, HalfOpen, Open};
        OriginRef::candidates(text)
            .iter()
            .filter_map(|key| {
                self.hosts
                    .with_existing(key, |host| self.breakers.state(&host.breaker))
            })
            .max_by_key(|state| match state {
                Open => 2,
                HalfOpen => 1,
                _ => 0,
            })
            .unwrap_or(Closed)
    }

    /// How long the host of `request` is paused, if it is.
    pub(crate) fn pause_remaining(&self, request: &Request) -> Option<Duration> {
        let key = OriginRef::of_url(request.url())?;
        self.hosts
            .with_existing(&key, |host| self.limits.gate_remaining(&host.gate))
            .flatten()
    }
}

/// Where and how an attempt runs.
struct At<'h> {
    host: &'h Host,
    timeout: Duration,
    /// Attempts made before this one.
    attempts_before: u32,
}

/// What one attempt at a host came to, for the loop.
enum Step {
    /// The answer: the request is done.
    Done(Answer),
    /// The host's breaker is open: the request ends, unsent.
    Refused(Error),
    /// The batch's deadline or cancel ended the wait at a gate.
    Stopped(ErrorKind),
    /// The attempt failed: the retry rules decide.
    Failed(Failed),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::{BreakerState, Fetcher};
    use std::io::{Read, Write};
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
        // The breaker is the host's: its URL, or its `host:port`, finds it.
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches("/doc.json");
        for _ in 0..2 {
            assert_eq!(
                fetcher.get_bytes(&url).unwrap_err().kind(),
                ErrorKind::Status
            );
        }
        assert_eq!(fetcher.breaker_state(host), BreakerState::Open);
        assert_eq!(fetcher.breaker_state(&url), BreakerState::Open);
        let open = fetcher.get_bytes(&url).unwrap_err();
        assert_eq!((open.kind(), open.attempts()), (ErrorKind::CircuitOpen, 0));
        clock.advance(Duration::from_secs(60));
        assert_eq!(fetcher.breaker_state(host), BreakerState::HalfOpen);
        // The probe is sent, fails, and the breaker opens again.
        assert_eq!(
            fetcher.get_bytes(&url).unwrap_err().kind(),
            ErrorKind::Status
        );
        assert_eq!(fetcher.breaker_state(host), BreakerState::Open);
        fetcher.reset_breakers();
        assert_eq!(fetcher.breaker_state(host), BreakerState::Closed);
        assert_eq!(fetcher.stats().failures_of(ErrorKind::CircuitOpen), 1);
    }
}
