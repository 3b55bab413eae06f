//! The engine: what a fetcher and its clones share, and how requests run
//! from their first step to their results.
//!
//! A request's way, top to bottom: [`Engine::fetch`] (one request, on the
//! calling thread) or a batch's workers (`driver.rs`, many requests on the
//! fetcher's threads) take it step by step through its [`Journey`]
//! (`journey.rs`): the cache (`cached.rs`), then attempts, each let through
//! by its host's governor (`policy/host/`) and made by the transport
//! (`transport/attempt.rs`). The body then becomes a value on the same
//! thread (`parse/`). A panic anywhere on the way becomes this request's
//! [`ErrorKind::Internal`] error, and the other requests carry on.
//!
//! The words for how it went (see `docs/architecture.md`, "Words"): an
//! attempt is `Received`, waits, or `Failed` (`journey.rs`'s `Attempted`);
//! the cache says `BeforeSend` and `AfterAnswer` (`cached.rs`); a step is
//! `Done` or waits (`Step`). A request the governor will not send is
//! *denied*; one that cannot be sent at all is *rejected*.
//!
//! It may use every layer below it, never the public face.

mod cached;
pub(crate) mod driver;
pub(crate) mod journey;
pub(crate) mod parse_slots;
pub(crate) mod pools;

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::Duration;

use ureq::http::HeaderMap;

use self::journey::{Body, Journey, Step};
use self::pools::Pools;
use crate::cache::Cache;
use crate::cancel::Stop;
use crate::clock::Clock;
use crate::config::Settings;
use crate::error::{Detail, Error, ErrorKind};
use crate::origin::OriginRef;
use crate::parse::Content;
use crate::policy::host::{BreakerState, Governor, Hold, HostReport, Hosts};
use crate::request::{Method, Request};
use crate::response::{Headers, Response};
use crate::stats::{HostStats, Recorder};
use crate::transport::agent::Agents;
use crate::transport::body_budget::{BodyBudget, Reservation};
use crate::transport::cookies::Jar;

/// The longest a request set aside for its host waits before it looks
/// again, when no time is known (its host's limit is reached, or its
/// breaker's probe is out): a request to the host coming back wakes it
/// sooner when it is in the same batch.
pub(crate) const POLL: Duration = Duration::from_millis(10);

/// What the clones of a fetcher share.
pub(crate) struct Engine {
    pub(crate) settings: Settings,
    agents: Agents,
    /// The cookies, when the fetcher keeps them.
    jar: Option<Jar>,
    pub(crate) governor: Arc<Governor>,
    pub(crate) hosts: Arc<Hosts>,
    pub(crate) cache: Option<Cache>,
    pub(crate) stats: Arc<Recorder>,
    clock: Arc<dyn Clock>,
    pub(crate) pools: Pools,
    /// The room response bodies take while read and not yet taken.
    pub(crate) body_budget: Arc<BodyBudget>,
    /// The header names the builder marked sensitive, for the `Debug` of
    /// every response (shared, not copied), if it marked any.
    marked: Option<Arc<[String]>>,
}

/// How one request runs: when it must stop, and where its figures go
/// besides the fetcher's own stats.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scope<'a> {
    pub(crate) stop: Stop<'a>,
    pub(crate) batch: Option<&'a Recorder>,
    /// The caller keeps only the body: the response's headers and URL are
    /// dropped where it was read (on its worker, whose allocator they came
    /// from), not put together to be dropped on the caller's thread.
    pub(crate) body_only: bool,
    /// It runs for a thread busy with a batch of the same fetcher, whose
    /// results wait for it: its body never waits for theirs
    /// (`transport/body_budget.rs`).
    pub(crate) nested: bool,
}

impl Scope<'_> {
    /// A request on its own whose caller keeps only the body.
    pub(crate) fn body_only() -> Scope<'static> {
        Scope {
            body_only: true,
            ..Scope::default()
        }
    }
}

impl Engine {
    /// The engine for checked `settings`: its threads, its connection pool,
    /// its host table and its cache.
    pub(crate) fn new(settings: Settings) -> Result<Engine, Error> {
        let clock = Arc::clone(&settings.clock);
        let pools = Pools::new(settings.concurrency)?;
        let stats = Arc::new(Recorder::default());
        let governor = Arc::new(Governor::new(settings.governor, Arc::clone(&clock)));
        let hosts = Arc::new(Hosts::new(Arc::clone(&governor)));
        let agents = Agents::new(&settings.transport, &stats, &hosts);
        let jar = settings.cookie_store.then(Jar::default);
        let cache = match settings.cache.clone() {
            Some(cache) => Some(
                Cache::open(cache)
                    .map_err(|e| Error::config("cannot open the cache directory").with_source(e))?,
            ),
            None => None,
        };
        let body_budget = BodyBudget::new(settings.max_body_bytes_in_flight);
        let marked = Some(settings.transport.sensitive_headers.as_slice())
            .filter(|names| !names.is_empty())
            .map(Arc::from);
        Ok(Engine {
            settings,
            agents,
            jar,
            governor,
            hosts,
            cache,
            stats,
            clock,
            pools,
            body_budget,
            marked,
        })
    }

    /// Records into the fetcher's stats and the batch's, if any.
    fn record(&self, scope: &Scope<'_>, record: impl Fn(&Recorder)) {
        record(&self.stats);
        if let Some(batch) = scope.batch {
            record(batch);
        }
    }

    /// Runs `request` to its result on the calling thread, turning the body
    /// into a `T` with `finish`, and records it in the stats. Where the
    /// request must wait (its host's limit, a pause, a retry's delay), this
    /// thread waits.
    pub(crate) fn fetch<T>(
        &self,
        request: Request,
        scope: &Scope<'_>,
        finish: impl FnOnce(Content) -> Result<T, Error>,
    ) -> Result<Response<T>, Error> {
        let mut journey = Journey::new(request);
        // On a thread busy with one of this fetcher's batches (a callback,
        // a `Deserialize` impl on a worker), its results wait for this; so
        // does the body a `Deserialize` impl of a single fetch parses.
        let scope = &Scope {
            nested: scope.nested || self.is_nested_here(),
            ..*scope
        };
        loop {
            match self.step(&mut journey, scope) {
                Step::Done(result) => {
                    // Its body holds its room while it is parsed here: a
                    // request its `Deserialize` impl starts is nested.
                    let held = result.as_ref().ok().and_then(|body| body.held.as_ref());
                    let _parsed = held.and_then(Reservation::parsed_here);
                    return self.finish(&journey, result, scope, finish);
                }
                Step::Wait { until } => {
                    let wait = match until {
                        Some(until) => until.saturating_sub(self.clock.now()),
                        None => POLL,
                    };
                    // A stop ends the wait; the next step says so.
                    let stop = journey.stop(scope);
                    let _ = stop.sleep(&*self.clock, stop.clip(wait));
                }
            }
        }
    }

    /// Whether a request or batch started on the calling thread is nested
    /// (`transport/body_budget.rs`): the thread is busy with a batch of
    /// this fetcher, or parses a single fetch's body, that waits for it.
    pub(crate) fn is_nested_here(&self) -> bool {
        self.pools.is_busy_here() || self.body_budget.is_parsed_here()
    }

    /// One step of `journey`; a panic on the way is its `Internal` error.
    pub(crate) fn step(&self, journey: &mut Journey, scope: &Scope<'_>) -> Step {
        let step = catch_unwind(AssertUnwindSafe(|| journey.step(self, scope)));
        step.unwrap_or_else(|panic| {
            let error = journey
                .request
                .error(ErrorKind::Internal)
                .with_detail(Detail::Reason(panic_message(&*panic)));
            Step::Done(Err(error))
        })
    }

    /// What `journey`, done with `result`, comes to: its body made a `T` by
    /// `finish` (a panic there too is its `Internal` error), with the
    /// response's particulars, and counted.
    pub(crate) fn finish<T>(
        &self,
        journey: &Journey,
        result: Result<Body, Error>,
        scope: &Scope<'_>,
        finish: impl FnOnce(Content) -> Result<T, Error>,
    ) -> Result<Response<T>, Error> {
        let request = &journey.request;
        let elapsed = journey.elapsed();
        let result = result.and_then(|body| {
            let Body {
                bytes,
                status,
                headers,
                url,
                stored,
                cache,
                labels,
                ..
            } = body;
            // RFC 9110 §15.3.5, §15.3.6, §9.3.2: these have no content.
            let content = Content {
                bytes,
                none_by_definition: matches!(status, 204 | 205) || request.method() == Method::Head,
            };
            let finished =
                catch_unwind(AssertUnwindSafe(|| finish(content))).unwrap_or_else(|panic| {
                    Err(Error::new(ErrorKind::Internal)
                        .with_detail(Detail::Reason(panic_message(&*panic))))
                });
            let value = finished.map_err(|error| {
                error
                    .with_request(request.method_name(), request.url())
                    .with_attempts(journey.attempts)
                    .with_body_labels(labels.content_type.as_deref(), labels.undecoded.as_deref())
            })?;
            let (headers, url) = if scope.body_only {
                // Dropped here, on the worker whose allocator they came from.
                (Headers::received(HeaderMap::new(), None), String::new())
            } else {
                let headers = if let Some(policy) = stored {
                    Headers::stored(policy, headers, self.marked.clone())
                } else {
                    let marked = self.marked_for(request, &headers);
                    Headers::received(headers, marked)
                };
                (headers, url.unwrap_or_else(|| request.url().to_owned()))
            };
            let attempts = journey.attempts;
            Ok(Response::new(
                status, headers, url, attempts, elapsed, cache, value,
            ))
        });
        let failed = result.as_ref().err().map(Error::kind);
        self.record(scope, |stats| stats.finished(elapsed, failed));
        result.map_err(|error| error.with_elapsed(elapsed))
    }

    /// The header names sensitive in the response to `request`: the
    /// builder's, and those the request marked, when the response has one.
    fn marked_for(&self, request: &Request, headers: &HeaderMap) -> Option<Arc<[String]>> {
        let own: Vec<String> = headers
            .keys()
            .filter(|name| request.is_sensitive(name.as_str()))
            .map(|name| name.as_str().to_owned())
            .collect();
        if own.is_empty() {
            return self.marked.clone();
        }
        let builder = self.marked.as_deref().unwrap_or_default();
        Some(builder.iter().cloned().chain(own).collect())
    }

    /// Whether a request set aside until its host has room should step
    /// now (a hint: another request may take the room first): its host
    /// has room; or its patience with the host is over (a breaker that
    /// opens again and again would otherwise keep it waiting from probe to
    /// probe); or it waited for room and the host is now paused or its
    /// breaker open, so that it learns its patience (else it would wait for
    /// room until a probe, each a minute apart, took it).
    pub(crate) fn may_step(&self, journey: &Journey) -> bool {
        let Some(host) = journey.host() else {
            return true;
        };
        // Past its own deadline, it steps to end.
        if journey.is_past_deadline() {
            return true;
        }
        match self.governor.hold(host) {
            None => true,
            Some(Hold::Room) => false,
            Some(Hold::Pause | Hold::Breaker) => {
                !journey.is_patient() || journey.has_waited_out(self.governor.now())
            }
        }
    }

    /// Whether header `name` of `request` is a secret: by default, or marked
    /// so on the builder or the request.
    fn is_sensitive(&self, request: &Request, name: &str) -> bool {
        self.settings.transport.is_sensitive(name) || request.is_sensitive(name)
    }

    /// The state of the breaker of the host `text` names (a URL, `host` or
    /// `host:port`): the worst of the records it may mean.
    pub(crate) fn breaker_state(&self, text: &str) -> BreakerState {
        use BreakerState::{Closed, HalfOpen, Open};
        OriginRef::candidates(text)
            .iter()
            .filter_map(|origin| {
                self.hosts
                    .with_existing(origin, |host| self.governor.breaker_state(host))
            })
            .max_by_key(|state| match state {
                Open => 2,
                HalfOpen => 1,
                _ => 0,
            })
            .unwrap_or(Closed)
    }

    /// Closes every host's breaker, as if no request had failed.
    pub(crate) fn reset_breakers(&self) {
        self.hosts.for_each(Governor::reset_breaker);
    }

    /// The hosts that pushed back or are held back now, as the stats show
    /// them, by name.
    pub(crate) fn host_stats(&self) -> Vec<HostStats> {
        let mut hosts = Vec::new();
        self.hosts.for_each(|host| {
            if let Some(report) = self.governor.report(host) {
                hosts.push(host_stats(report));
            }
        });
        hosts.sort_by(|a, b| a.host.cmp(&b.host));
        hosts
    }
}

/// A host's report as the public stats show it.
fn host_stats(report: HostReport) -> HostStats {
    let HostReport {
        origin,
        limit,
        lowest,
        highest,
        breaker,
        figures,
    } = report;
    HostStats {
        host: origin,
        limit,
        lowest_limit: lowest,
        highest_limit: highest,
        throttled: figures.throttled,
        overloaded: figures.overloaded,
        pauses: figures.pauses,
        breaker_opened: figures.breaker_opened,
        retries_refused: figures.retries_refused,
        breaker,
    }
}

/// What a caught panic says, for the error message.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
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

    fn builder(clock: &Arc<ManualClock>) -> crate::FetcherBuilder {
        Fetcher::builder()
            .no_proxy()
            .jitter(Duration::ZERO)
            .clock(clock.clone())
    }

    #[test]
    fn retries_wait_the_backoff_sequence() {
        let clock = Arc::new(ManualClock::default());
        let url = server(UNAVAILABLE);
        let fetcher = builder(&clock).breaker_threshold(0).build().unwrap();
        let error = fetcher.get_bytes(url).unwrap_err();
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
        let error = builder(&clock).build().unwrap().get_bytes(url).unwrap_err();
        assert_eq!((error.status(), error.attempts()), (Some(429), 4));
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(7); 3]);
    }

    #[test]
    fn an_open_breaker_holds_requests_within_their_patience() {
        let clock = Arc::new(ManualClock::default());
        let url = server(UNAVAILABLE);
        // One retry of 1 s: a request waits at most 1 s for the breaker.
        let fetcher = builder(&clock)
            .max_retries(1)
            .breaker_threshold(2)
            .build()
            .unwrap();
        let secs = |s: &[u64]| {
            s.iter()
                .map(|&s| Duration::from_secs(s))
                .collect::<Vec<_>>()
        };
        // The breaker is the host's: its URL, or its `host:port`, finds it.
        let host = url
            .trim_start_matches("http://")
            .trim_end_matches("/doc.json");
        // A request and its retry fail: one request failed, the breaker
        // stays closed.
        let first = fetcher.get_bytes(&url).unwrap_err();
        assert_eq!((first.status(), first.attempts()), (Some(503), 2));
        assert_eq!(fetcher.breaker_state(host), BreakerState::Closed);
        // A second request fails: two in a row open it for 1 s. Its retry
        // waits that second and goes as the probe: it fails with its own
        // 503 (the breaker reopens for 2 s).
        let second = fetcher.get_bytes(&url).unwrap_err();
        assert_eq!((second.status(), second.attempts()), (Some(503), 2));
        assert_eq!(fetcher.breaker_state(host), BreakerState::Open);
        assert_eq!(fetcher.breaker_state(&url), BreakerState::Open);
        assert_eq!(clock.sleeps(), secs(&[1, 1]));
        // A new request waits for the next probe, and goes as it (fails:
        // open 2 s now), its retry waits for the next and goes as that (a
        // retry failing as the probe leaves the opening as it was): its own
        // 503, again.
        let third = fetcher.get_bytes(&url).unwrap_err();
        assert_eq!((third.status(), third.attempts()), (Some(503), 2));
        assert_eq!(clock.sleeps(), secs(&[1, 1, 1, 1, 1]));
        let stats = fetcher.stats();
        assert_eq!(stats.failures_of(ErrorKind::CircuitOpen), 0);
        assert_eq!(stats.hosts.len(), 1);
        assert_eq!(stats.hosts[0].breaker, BreakerState::Open);
        assert_eq!(stats.hosts[0].breaker_opened, 4);
        fetcher.reset_breakers();
        assert_eq!(fetcher.breaker_state(host), BreakerState::Closed);
    }

    #[test]
    fn a_host_down_denies_requests_unsent_saying_why() {
        let clock = Arc::new(ManualClock::default());
        let url = server(UNAVAILABLE);
        // The longest opening is the first: its probe failing says "down".
        let fetcher = builder(&clock)
            .max_retries(0)
            .breaker_threshold(2)
            .breaker_open_time(Duration::from_secs(1))
            .build()
            .unwrap();
        for _ in 0..3 {
            let error = fetcher.get_bytes(&url).unwrap_err();
            assert_eq!((error.status(), error.attempts()), (Some(503), 1));
        }
        assert_eq!(
            clock.sleeps(),
            [Duration::from_secs(1)],
            "the third waited for the probe"
        );
        let unsent = fetcher.get_bytes(&url).unwrap_err();
        assert_eq!(
            (unsent.kind(), unsent.attempts()),
            (ErrorKind::CircuitOpen, 0)
        );
        let message = unsent.to_string();
        assert!(
            message.contains("is open (2 failures in a row, the last: 503 Service Unavailable")
                && message.ends_with("; nothing was sent"),
            "{message}"
        );
        assert_eq!(clock.sleeps().len(), 1, "denied at once");
        assert_eq!(fetcher.stats().failures_of(ErrorKind::CircuitOpen), 1);
    }

    #[test]
    fn a_blip_costs_time_not_results() {
        let clock = Arc::new(ManualClock::default());
        // 503 to the first two requests, then 200 to every one.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/doc.json", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for (n, mut stream) in listener.incoming().flatten().enumerate() {
                let mut request = [0; 4096];
                let _ = stream.read(&mut request);
                let reply = if n < 2 {
                    UNAVAILABLE
                } else {
                    "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}"
                };
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        let fetcher = builder(&clock)
            .concurrency(1)
            .breaker_threshold(2)
            .build()
            .unwrap();
        // Two requests fail and open the breaker for 1 s; the third waits
        // for it; the first's retry goes as the probe, and succeeds.
        let results = fetcher.fetch_many_bytes([&url, &url, &url]);
        for result in &results {
            assert_eq!(result.as_deref().ok(), Some(&b"{}"[..]));
        }
        let stats = fetcher.stats();
        assert_eq!(stats.hosts.len(), 1, "{stats:?}");
        assert_eq!(stats.hosts[0].breaker_opened, 1);
        assert_eq!(stats.hosts[0].breaker, BreakerState::Closed);
        assert_eq!(stats.attempts, 5);
    }

    #[test]
    fn a_fail_fast_breaker_says_what_opened_it() {
        let clock = Arc::new(ManualClock::default());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/doc.json", listener.local_addr().unwrap());
        drop(listener); // nothing listens there now: connections are refused
        let fetcher = builder(&clock)
            .max_retries(0)
            .breaker_threshold(2)
            .breaker_fail_fast(true)
            .build()
            .unwrap();
        for _ in 0..2 {
            let error = fetcher.get_bytes(&url).unwrap_err();
            assert_eq!((error.kind(), error.attempts()), (ErrorKind::Network, 1));
        }
        let open = fetcher.get_bytes(&url).unwrap_err();
        assert_eq!((open.kind(), open.attempts()), (ErrorKind::CircuitOpen, 0));
        let message = open.to_string();
        assert!(
            message.contains("is open (2 failures in a row, the last: network error: ")
                && message.ends_with("; nothing was sent"),
            "{message}"
        );
        assert!(clock.sleeps().is_empty(), "fail-fast does not wait");
    }
}
