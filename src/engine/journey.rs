//! One request's way from its first step to its result, in steps that can
//! be set aside.
//!
//! A request goes, top to bottom: the cache (`cached.rs`: served from it,
//! or told what to send and what to keep), then attempts. Before each
//! attempt its host's governor (`policy/host/`) says "go" or "not yet";
//! the exchange itself is the transport's (`transport/attempt.rs`); after
//! it the governor hears how the host answered, and on a failure the retry
//! rules (`policy/retry.rs`) and the host's retry budget say whether to go
//! again, and when.
//!
//! A request never waits on its thread here. Where it must wait (its
//! host's limit, a pause, an open breaker, a retry's delay), [`Journey::step`]
//! returns [`Step::Wait`] with the time it may go on, and whoever runs it
//! (a batch's worker, `driver.rs`, or the calling thread of a single fetch)
//! sets it aside and does something else meanwhile: a hundred requests
//! waiting out a `Retry-After` hold no thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cached::{AfterAnswer, BeforeSend, CachePlan};
use super::{Engine, Scope};
use crate::cancel::Stop;
use crate::error::classify::{self, HostAnswer};
use crate::error::{Detail, Error, ErrorKind};
use crate::origin::OriginRef;
use crate::policy::host::{Admission, Answer, Hold, Host};
use crate::policy::retry::{self, Decision, Delays, FailedAttempt};
use crate::request::Request;
use crate::response::CacheStatus;
use crate::stats::Recorder;
use crate::transport::attempt::{Attempt, BodyLabels, Received};
use crate::transport::body_budget::Reservation;

/// A body to hand over, with its particulars.
#[derive(Debug)]
pub(crate) struct Body {
    pub(crate) bytes: Vec<u8>,
    pub(crate) status: u16,
    /// The response headers; from the cache, those of the 304 that
    /// confirmed the entry, if one did.
    pub(crate) headers: ureq::http::HeaderMap,
    /// Whether the cache may keep `headers` (it asked for them, and the
    /// answer may be cached).
    pub(crate) cacheable: bool,
    /// Where the redirects led, if anywhere.
    pub(crate) url: Option<String>,
    /// The stored entry's policy, which holds its headers, when the cache
    /// served the body.
    pub(crate) stored: Option<Vec<u8>>,
    pub(crate) cache: CacheStatus,
    /// What the response said its body is (none from the cache).
    pub(crate) labels: BodyLabels,
    /// Its room in the fetcher's budget of body bytes in flight, when it
    /// came from the network: it travels with the result until the caller
    /// takes it (`driver.rs`).
    pub(crate) held: Option<Reservation>,
}

/// What one step of a journey came to.
// Made and matched once per step: a box would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub(crate) enum Step {
    /// The request is done: its body, or why not.
    Done(Result<Body, Error>),
    /// Not yet: step again at the clock's `until`, or (`None`) when a
    /// request to its host comes back.
    Wait { until: Option<Duration> },
}

/// One request on its way.
#[derive(Debug)]
pub(crate) struct Journey {
    pub(crate) request: Request,
    /// When its first step ran (for its latency).
    pub(crate) started: Option<Instant>,
    /// What the cache asked for, once the cache has been asked.
    plan: Option<CachePlan>,
    pub(crate) attempts: u32,
    delays: Option<Delays>,
    /// The last attempt's failure, while a retry waits.
    last_error: Option<Error>,
    /// When (the clock's time) it may try again.
    not_before: Duration,
    /// Since when it has waited for its host, for the stats.
    held_since: Option<Instant>,
    /// Until when (the clock's time) it waits for its host's breaker to
    /// close: what its remaining retries would have taken.
    patience: Option<Duration>,
    host: Option<Arc<Host>>,
    /// Its own deadline (the request's, or the fetcher's `total_timeout`):
    /// how long, and until when, from its first step.
    deadline: Option<(Duration, Instant)>,
}

/// What one attempt came to, as the journey sees it: the transport's
/// [`Received`] made a [`Body`], a wait for its host, or the request's end.
enum Attempted {
    Received(Body),
    Wait {
        until: Option<Duration>,
    },
    /// The request ends with this error; with the response it failed
    /// with, for the cache (a 404 is stored too).
    Failed(Error, Option<Body>),
}

impl Journey {
    /// Whether it waits for its host (a pause, its breaker) and its patience
    /// is over.
    pub(crate) fn has_waited_out(&self, now: Duration) -> bool {
        self.patience.is_some_and(|patience| now >= patience)
    }

    /// Whether it waits for its host within a patience already set.
    pub(crate) fn is_patient(&self) -> bool {
        self.patience.is_some()
    }

    pub(crate) fn new(request: Request) -> Journey {
        Journey {
            request,
            started: None,
            plan: None,
            attempts: 0,
            delays: None,
            last_error: None,
            not_before: Duration::ZERO,
            held_since: None,
            patience: None,
            host: None,
            deadline: None,
        }
    }

    /// When it must give up: its batch's stop, with the earlier of the
    /// batch's deadline and its own.
    pub(crate) fn stop<'a>(&self, scope: &Scope<'a>) -> Stop<'a> {
        let own = self.deadline.map(|(_, at)| at);
        Stop {
            deadline: match (scope.stop.deadline, own) {
                (Some(batch), Some(own)) => Some(batch.min(own)),
                (batch, own) => batch.or(own),
            },
            cancel: scope.stop.cancel,
        }
    }

    /// Whether its own deadline has passed.
    pub(crate) fn is_past_deadline(&self) -> bool {
        self.deadline.is_some_and(|(_, at)| Instant::now() >= at)
    }

    /// The host it goes to, once it has asked for it.
    pub(crate) fn host(&self) -> Option<&Arc<Host>> {
        self.host.as_ref()
    }

    /// How long since its first step.
    pub(crate) fn elapsed(&self) -> Duration {
        self.started
            .map_or(Duration::ZERO, |started| started.elapsed())
    }

    /// Takes the request as far as it can go now.
    pub(crate) fn step(&mut self, engine: &Engine, scope: &Scope<'_>) -> Step {
        if self.started.is_none() {
            let started = Instant::now();
            self.started = Some(started);
            if self
                .request
                .deadline_override()
                .is_some_and(|d| d.is_zero())
            {
                let error = self
                    .request
                    .rejected("its deadline is zero: no attempt could finish");
                return Step::Done(Err(error));
            }
            let deadline = self
                .request
                .deadline_override()
                .map(crate::clock::capped)
                .or(engine.settings.total_timeout);
            // A deadline past what an Instant holds is no deadline.
            self.deadline =
                deadline.and_then(|length| Some((length, crate::clock::after(started, length)?)));
        }
        if self.plan.is_none() {
            match CachePlan::begin(engine, &self.request, scope) {
                BeforeSend::Done(result) => return Step::Done(result),
                BeforeSend::Send(plan) => self.plan = Some(plan),
            }
        }
        loop {
            let answer = match self.attempt(engine, scope) {
                Attempted::Received(answer) => answer,
                Attempted::Wait { until } => return Step::Wait { until },
                Attempted::Failed(error, response) => {
                    if let (Some(plan), Some(response)) = (&self.plan, &response) {
                        plan.store_failure(engine, &self.request, response);
                    }
                    return Step::Done(Err(error));
                }
            };
            let Some(plan) = self.plan.as_mut() else {
                return Step::Done(Ok(answer));
            };
            match plan.finish(engine, &self.request, answer, self.attempts, scope) {
                AfterAnswer::Done(result) => return Step::Done(result),
                // A 304 about another version: ask again for the whole.
                AfterAnswer::Again => {}
            }
        }
    }

    /// One attempt, if its host lets it go now.
    fn attempt(&mut self, engine: &Engine, scope: &Scope<'_>) -> Attempted {
        let stop = self.stop(scope);
        let batch = scope.stop.deadline;
        let request = &self.request;
        if let Err(kind) = stop.check() {
            return Attempted::Failed(self.stopped(kind, None, batch), None);
        }
        let governor = &engine.governor;
        let now = governor.now();
        if self.not_before > now {
            return Attempted::Wait {
                until: Some(self.not_before),
            };
        }
        if request.timeout_override().is_some_and(|t| t.is_zero()) {
            let error = request.rejected("its timeout is zero: no attempt could finish");
            return Attempted::Failed(error, None);
        }
        // The request as sent: a request it cannot be made into ends here,
        // saying why, before its host is looked for.
        let settings = &engine.settings;
        let needs = self.plan.as_ref().map(CachePlan::needs).unwrap_or_default();
        let http =
            match crate::transport::attempt::http_request(request, &settings.transport, needs) {
                Ok(http) => http,
                Err(error) => return Attempted::Failed(error, None),
            };
        let host = if let Some(host) = &self.host {
            Arc::clone(host)
        } else {
            let Some(origin) = OriginRef::of_url(request.url()) else {
                let error = request.rejected("the URL has no http(s) host");
                return Attempted::Failed(error, None);
            };
            let host = engine.hosts.get(&origin);
            self.host = Some(Arc::clone(&host));
            host
        };
        let past_pause = self.has_waited_out(now);
        let permit = match governor.admit(&host, self.attempts == 0, past_pause) {
            Admission::Go(permit) => permit,
            Admission::Wait { until, hold } => {
                // A wait that would pass the deadline ends the request now.
                let passes_deadline = |until: Option<Duration>| {
                    until.is_some_and(|until| stop.passes_deadline(until.saturating_sub(now)))
                };
                if hold == Hold::Room {
                    if passes_deadline(until) {
                        let error = self.stopped(ErrorKind::DeadlineExceeded, None, batch);
                        return Attempted::Failed(error, None);
                    }
                    self.held_since.get_or_insert_with(Instant::now);
                    return Attempted::Wait { until };
                }
                // A pause or an outage is waited out within what the
                // request's retries would have taken: past it, a pause is
                // gone through (the next step), an outage ends the request.
                let settings = &engine.settings.retry;
                let patience = *self
                    .patience
                    .get_or_insert_with(|| now.saturating_add(settings.patience(self.attempts)));
                // A pause's wait ends at the patience, when the request
                // goes: a longer pause does not make it pass the deadline.
                let goes_at = match hold {
                    Hold::Pause => until.map(|until| until.min(patience)),
                    _ => until,
                };
                if passes_deadline(goes_at) {
                    let error = self.stopped(ErrorKind::DeadlineExceeded, None, batch);
                    return Attempted::Failed(error, None);
                }
                self.held_since.get_or_insert_with(Instant::now);
                if now >= patience && hold == Hold::Breaker {
                    let cause = crate::policy::host::Governor::breaker_cause(&host);
                    return Attempted::Failed(self.held_back(&host, cause), None);
                }
                // Until the open time is over (or the patience), or, while
                // the probe is out, until a request to the host comes back.
                return Attempted::Wait {
                    until: until.map(|until| until.min(patience)),
                };
            }
            Admission::Deny { cause } => {
                return Attempted::Failed(self.held_back(&host, cause), None);
            }
        };
        self.patience = None;
        if let Some(since) = self.held_since.take() {
            engine.record(scope, |stats| stats.gate_wait(since.elapsed()));
        }
        // The attempt may not outlast its deadline, nor its batch's.
        let timeout = request
            .timeout_override()
            .map_or(settings.transport.timeout, crate::clock::capped);
        let clipped = stop.clip(timeout);
        if clipped.is_zero() {
            let error = self.stopped(ErrorKind::DeadlineExceeded, None, batch);
            return Attempted::Failed(error, None);
        }
        // The agent's own timeout is the fetcher's: only another one needs
        // the request to carry it.
        let own_timeout = (clipped != settings.transport.timeout).then_some(clipped);
        self.attempts = self.attempts.saturating_add(1);
        let attempts = self.attempts;
        engine.record(scope, |stats| stats.attempt(attempts > 1));
        let on_stale = || engine.record(scope, Recorder::stale_connection);
        let exchange = Attempt {
            agents: &engine.agents,
            settings: &settings.transport,
            jar: engine.jar.as_ref(),
            cancel: stop.cancel,
            on_stale: &on_stale,
            budget: &engine.body_budget,
            nested: scope.nested,
        };
        let started = Instant::now();
        let failure = match exchange.run(request, http, own_timeout, clipped, needs) {
            Ok(Received {
                status,
                body,
                held,
                headers,
                cacheable,
                url,
                labels,
                head,
            }) => {
                permit.report(governor, Answer::Answered { head: Some(head) }, String::new);
                engine.record(scope, |stats| stats.bytes(body.len()));
                log::debug!(
                    "{} {}: attempt {attempts} got {} bytes in {:?}",
                    request.method_name(),
                    request.redacted_url(),
                    body.len(),
                    started.elapsed()
                );
                self.last_error = None;
                return Attempted::Received(Body {
                    bytes: body,
                    status,
                    headers,
                    cacheable,
                    url,
                    stored: None,
                    cache: CacheStatus::Network,
                    labels,
                    held: Some(held),
                });
            }
            Err(failure) => failure,
        };
        let after_head = failure.after_head();
        let own = failure.is_own();
        let response = failure.response().map(|(status, start, headers)| Body {
            bytes: start.to_vec(),
            status,
            headers: headers.clone(),
            cacheable: true,
            url: None,
            stored: None,
            cache: CacheStatus::Network,
            labels: BodyLabels::default(),
            held: None,
        });
        let error = failure.into_error(request, attempts, clipped, &settings.transport);
        log::debug!(
            "{} {}: attempt {attempts} failed in {:?}: {error}",
            request.method_name(),
            request.redacted_url(),
            started.elapsed()
        );
        // A failure a stop brought about (a timeout clipped to a deadline,
        // a cancelled read) says nothing of the host, and ends the request
        // as the stop, with the failure as its cause.
        let stopped = error.is_retryable() && stop.check().is_err();
        let (kind, status) = (error.kind(), error.status());
        let asked = retry::asked_to_wait(status, error.retry_after());
        let answer = match classify::host_answer(kind, status) {
            // A wait for room in the fetcher's own budget says nothing
            // of the host either.
            _ if stopped || own => Answer::Nothing,
            // A body cut short after a whole head: the host answered, and
            // failed; not a sign it is overloaded (a stalled body is).
            HostAnswer::Overloaded if after_head && kind == ErrorKind::Network => Answer::Failed,
            HostAnswer::Answered => Answer::Answered { head: None },
            HostAnswer::Throttled => Answer::Throttled { retry_after: asked },
            HostAnswer::Overloaded => Answer::Overloaded {
                refused: status.is_some(),
                retry_after: asked,
            },
            HostAnswer::Failed => Answer::Failed,
            HostAnswer::Nothing => Answer::Nothing,
        };
        permit.report(governor, answer, || error.summary());
        if stopped {
            if let Err(kind) = stop.check() {
                return Attempted::Failed(self.stopped(kind, Some(error), batch), None);
            }
        }
        let failed = FailedAttempt {
            kind,
            status,
            attempts,
            idempotent: retry::may_resend(request),
            retry_after: error.retry_after(),
        };
        let delays = self.delays.get_or_insert_with(|| settings.retry.delays());
        let (after, asked) = match settings.retry.decide(&failed, delays, fastrand::f64()) {
            Decision::GiveUp => return Attempted::Failed(error, response),
            Decision::Retry { after, asked } => (after, asked),
        };
        if !governor.may_retry(&host, asked) {
            log::debug!(
                "{} {}: {} 's retry budget is spent; not retried",
                request.method_name(),
                request.redacted_url(),
                host.origin
            );
            return Attempted::Failed(error, response);
        }
        if stop.passes_deadline(after) {
            let error = self.stopped(ErrorKind::DeadlineExceeded, Some(error), batch);
            return Attempted::Failed(error, None);
        }
        log::warn!("{error}; retrying in {after:?}");
        self.not_before = governor.now().saturating_add(after);
        self.last_error = Some(error);
        Attempted::Wait {
            until: Some(self.not_before),
        }
    }

    /// The error of a request its host's breaker holds back for good: the
    /// last of its own failures, if it has any (they brought this about);
    /// if it never sent, `CircuitOpen`, with what opened the breaker.
    fn held_back(&mut self, host: &Host, cause: String) -> Error {
        match self.last_error.take() {
            Some(last) => last,
            None => self
                .request
                .error(ErrorKind::CircuitOpen)
                .with_detail(Detail::Breaker {
                    host: host.origin.to_string(),
                    cause,
                }),
        }
    }

    /// The error of a request whose body was read, stopped (`kind`) by a
    /// deadline (its own or its batch's) or its batch's cancel while it
    /// waited to be parsed.
    pub(crate) fn stopped_waiting(&mut self, kind: ErrorKind, scope: &Scope<'_>) -> Error {
        self.stopped(kind, None, scope.stop.deadline)
    }

    /// The error of a request stopped by a deadline (its own, or its
    /// batch's at `batch`: the earlier, and it says which) or by its
    /// batch's cancel, with the failure that was last, if any, as its cause.
    fn stopped(
        &mut self,
        kind: ErrorKind,
        failure: Option<Error>,
        batch: Option<Instant>,
    ) -> Error {
        let mut error = self.request.error(kind).with_attempts(self.attempts);
        if let Some((length, own)) = self.deadline {
            if kind == ErrorKind::DeadlineExceeded && batch.is_none_or(|batch| own <= batch) {
                error = error.with_detail(Detail::Deadline(length));
            }
        }
        match failure.or_else(|| self.last_error.take()) {
            Some(last) => error.with_source(last.into_cause()),
            None => error,
        }
    }
}
