//! Each host's record, and the governor: the one place that decides how
//! many requests a host gets, and when.
//!
//! A host is an origin ([`Origin`]). Everything a fetcher knows of one
//! lives in its [`Host`] record, found in the table (`table.rs`) once per
//! attempt: its resolved addresses (kept by the transport's resolver), and
//! the rules the [`Governor`] applies before and after every attempt:
//!
//! - **A limit on requests in flight** that moves with what the host says
//!   (`limit.rs`): down on push-back (429, 503 and 504 always; timeouts and
//!   refused or reset connections during an outage), up while answers are
//!   good.
//! - **A pause** when the host asked for one: a Retry-After that meant the
//!   whole host (below).
//! - **A circuit breaker** (`breaker.rs`): a host that keeps failing gets
//!   one probe at a time while the others wait.
//! - **A rate limit** (`rate.rs`, optional).
//! - **A retry budget** (`budget.rs`): during an outage (`health.rs`: at
//!   least half of its recent answers failed), retries are a share of the
//!   host's recent requests.
//!
//! The governor never makes a thread wait: [`Governor::admit`] says "go"
//! (a [`Permit`]) or "not yet" (until when, if known), and the engine sets
//! the request aside meanwhile, so that its thread serves other hosts.
//! After the attempt, [`Permit::report`] tells the governor how the host
//! answered.
//!
//! **Which Retry-After means the host.** A 429 or 503 with Retry-After is
//! always the request's wait (it is retried no sooner). It pauses the whole
//! host only when the host refuses even one request at a time: the request
//! was the only one in flight to it. A server at its capacity refuses the requests
//! beyond it while it serves the others; pausing the host then would stop
//! those too, and the requests released together when the pause ends
//! would overflow it again (measured: a 429 with `Retry-After: 1` per
//! request beyond 16, at 64 in flight, let one round through per second).
//! Its limit falls to what it serves instead. A server that has run out of
//! quota refuses everything: its limit reaches 1 within a round trip, and
//! the next refusal pauses the host. When a pause ends, requests resume
//! at the host's limit, one at first, not all at once. A request held by a
//! pause waits within its patience (what its retries would take), then
//! goes anyway ([`Hold::Pause`]): a host out of quota costs each request
//! its own retries, not one request per pause. A Retry-After past
//! `max_retry_after` pauses nothing: its request ends at once.

mod breaker;
mod budget;
mod health;
mod limit;
mod rate;
mod table;

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use parking_lot::Mutex;
use ureq::unversioned::resolver::ResolvedSocketAddrs;

pub(crate) use self::breaker::BreakerSettings;
pub(crate) use self::breaker::BreakerState;
pub(crate) use self::limit::LimitSettings;
#[cfg(test)]
pub(crate) use self::limit::INITIAL as INITIAL_LIMIT;
pub(crate) use self::rate::RateSettings;
pub(crate) use self::table::Hosts;

use self::breaker::{Breaker, Verdict};
use self::budget::Budget;
use self::health::Health;
use self::limit::{Controller, PushBack, Sent};
use self::rate::Rate;
use crate::clock::{self, Clock};
use crate::origin::Origin;

/// The governor's rules, the same for every host of a fetcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GovernorSettings {
    pub(crate) limit: LimitSettings,
    pub(crate) breaker: BreakerSettings,
    pub(crate) rate: Option<RateSettings>,
    /// The longest pause a host may ask for (`max_retry_after`): a request
    /// is sent after that, and the host may say "later" again.
    pub(crate) longest_pause: Duration,
}

/// The governor: the rules, and the clock they read.
#[derive(Debug)]
pub(crate) struct Governor {
    settings: GovernorSettings,
    clock: Arc<dyn Clock>,
}

/// A host name's addresses, and when they were looked up: kept in its
/// record by the transport's resolver (`transport/resolver.rs`).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) at: Instant,
    pub(crate) addrs: ResolvedSocketAddrs,
}

/// One host: what a fetcher knows of it.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) origin: Origin,
    /// The host name's addresses, when it is a name (not an IP) and was
    /// looked up.
    pub(crate) resolved: ArcSwapOption<Resolved>,
    in_flight: AtomicU32,
    /// The controller's limit and epoch, readable without its lock.
    limit: AtomicU32,
    epoch: AtomicU64,
    /// Until when (the clock's nanoseconds) the host asked for a pause; 0
    /// if it never did.
    paused_until_ns: AtomicU64,
    breaker: Breaker,
    rate: Option<Rate>,
    /// What changes on answers, behind one lock taken once per attempt.
    control: Mutex<Control>,
    /// The clock's second of the last use, for the table's sweep.
    last_used_s: AtomicU32,
}

/// A host's moving parts.
#[derive(Debug)]
struct Control {
    limit: Controller,
    health: Health,
    budget: Budget,
    figures: HostFigures,
}

/// What a host did that a user may want to see: how it pushed back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HostFigures {
    /// Answers `429 Too Many Requests`.
    pub(crate) throttled: u64,
    /// Other push-backs: 503, 504, timeouts, refused or reset connections,
    /// and round trips whose latency said the host queues.
    pub(crate) overloaded: u64,
    /// Times the host was paused, for a Retry-After that meant it.
    pub(crate) pauses: u64,
    /// Times its breaker opened.
    pub(crate) breaker_opened: u64,
    /// Retries the budget refused.
    pub(crate) retries_refused: u64,
}

/// A host's state as [`stats`](crate::Fetcher::stats) shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostReport {
    pub(crate) origin: String,
    pub(crate) limit: u32,
    pub(crate) lowest: u32,
    pub(crate) highest: u32,
    pub(crate) breaker: BreakerState,
    pub(crate) figures: HostFigures,
}

/// What holds a request back from its host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hold {
    /// The host's limit or rate: a place frees up soon, waited for.
    Room,
    /// A pause the host asked for: waited out within the request's
    /// patience, after which the request goes anyway and gets its own
    /// answer (a host out of quota would otherwise let one request
    /// through per pause).
    Pause,
    /// The host's breaker: an outage of unknown length, waited out within
    /// the request's patience, after which the request ends.
    Breaker,
}

/// What the governor says to a request that would be sent now.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Send it.
    Go(Permit),
    /// Not yet: try again at the clock's `until`, or (`None`) when a
    /// request to the host comes back; `hold` says what holds it.
    Wait { until: Option<Duration>, hold: Hold },
    /// Do not send it (denied): the host is down (or its breaker fails fast). The
    /// words say what opened the breaker.
    Deny { cause: String },
}

/// Leave to send one request to a host; report how it went with
/// [`report`](Permit::report). Dropped unreported, it counts for nothing
/// (its place and, if it was the probe, the probe's are freed).
#[derive(Debug)]
#[must_use]
pub(crate) struct Permit {
    host: Arc<Host>,
    sent: Sent,
    probe: bool,
    /// The request's first attempt (it counts towards the retry budget).
    first: bool,
    reported: bool,
}

/// How a host answered an attempt, as the governor sees it (the table is
/// `error/classify.rs`'s [`HostAnswer`](crate::error::classify::HostAnswer)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// It answered (2xx, 3xx, most 4xx): its head `head` after the request
    /// was sent, when that is known.
    Answered { head: Option<Duration> },
    /// It said "too many" (429): back off, but it is well.
    Throttled { retry_after: Option<Duration> },
    /// It is overloaded: 503, 504 (`refused`: it said so), a timeout, a
    /// refused or reset connection. Back off; a failure for its breaker.
    Overloaded {
        refused: bool,
        retry_after: Option<Duration>,
    },
    /// It failed otherwise (500, 502, ...): a failure for its breaker.
    Failed,
    /// Nothing about the host (a TLS or request error, a cancelled read).
    Nothing,
}

impl Governor {
    pub(crate) fn new(settings: GovernorSettings, clock: Arc<dyn Clock>) -> Governor {
        Governor { settings, clock }
    }

    /// The clock the rules read.
    pub(crate) fn now(&self) -> Duration {
        self.clock.now()
    }

    /// A new host's record: nothing known, a full allowance.
    pub(crate) fn new_host(&self, origin: Origin) -> Host {
        let control = Control {
            limit: Controller::new(self.settings.limit),
            health: Health::default(),
            budget: Budget::default(),
            figures: HostFigures::default(),
        };
        Host {
            origin,
            resolved: ArcSwapOption::empty(),
            in_flight: AtomicU32::new(0),
            limit: AtomicU32::new(control.limit.limit()),
            epoch: AtomicU64::new(0),
            paused_until_ns: AtomicU64::new(0),
            breaker: Breaker::default(),
            rate: self
                .settings
                .rate
                .map(|rate| Rate::new(rate, Arc::clone(&self.clock))),
            control: Mutex::new(control),
            last_used_s: AtomicU32::new(0),
        }
    }

    /// How long a record must outlive its last use for nothing to be lost:
    /// a rate-limited host's allowance takes this long to fill up again.
    pub(crate) fn remembers_for(&self) -> Duration {
        self.settings
            .rate
            .map_or(Duration::ZERO, RateSettings::refill)
    }

    /// Whether a request to `host` may be sent now: its pause (unless the
    /// request is `past_pause`: its patience is over), its breaker, its
    /// limit and its rate, in that order. `first` if it is the request's
    /// first attempt.
    pub(crate) fn admit(&self, host: &Arc<Host>, first: bool, past_pause: bool) -> Admission {
        let now = self.clock.now();
        if let Some(until) = host.paused_until(now).filter(|_| !past_pause) {
            return Admission::Wait {
                until: Some(until),
                hold: Hold::Pause,
            };
        }
        let probe = match host.breaker.admit(&self.settings.breaker, now) {
            Verdict::Pass { probe } => probe,
            Verdict::Wait { until } => {
                return Admission::Wait {
                    until,
                    hold: Hold::Breaker,
                }
            }
            Verdict::Deny => {
                return Admission::Deny {
                    cause: Governor::breaker_cause(host),
                }
            }
        };
        let limit = host.limit.load(Ordering::Acquire).max(1);
        let taken = host
            .in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            });
        let Ok(before) = taken else {
            if probe {
                host.breaker.probe_abandoned();
            }
            return Admission::Wait {
                until: None,
                hold: Hold::Room,
            };
        };
        if let Some(rate) = &host.rate {
            if let Err(wait) = rate.take(now) {
                host.in_flight.fetch_sub(1, Ordering::AcqRel);
                if probe {
                    host.breaker.probe_abandoned();
                }
                return Admission::Wait {
                    until: Some(now.saturating_add(wait)),
                    hold: Hold::Room,
                };
            }
        }
        // The epoch is read without the lock: a decrease racing with this
        // send only makes its answer count as old news.
        let sent = Sent {
            epoch: host.epoch.load(Ordering::Acquire),
            in_flight: before.saturating_add(1),
        };
        host.touch(now);
        Admission::Go(Permit {
            host: Arc::clone(host),
            sent,
            probe,
            first,
            reported: false,
        })
    }

    /// What would hold a request to `host` back now, as far as a look
    /// without taking anything can tell (`None`: it would go): a pause, its
    /// breaker, or no place free under its limit.
    pub(crate) fn hold(&self, host: &Host) -> Option<Hold> {
        let now = self.clock.now();
        if host.paused_until(now).is_some() {
            return Some(Hold::Pause);
        }
        if !matches!(
            host.breaker.admit_look(&self.settings.breaker, now),
            Verdict::Pass { .. }
        ) {
            return Some(Hold::Breaker);
        }
        let full =
            host.in_flight.load(Ordering::Acquire) >= host.limit.load(Ordering::Acquire).max(1);
        full.then_some(Hold::Room)
    }

    /// Whether a request to `host` may be retried: `asked` when the server
    /// asked for the wait (Retry-After), which the budget does not count,
    /// nor a retry while the host mostly answers.
    pub(crate) fn may_retry(&self, host: &Host, asked: bool) -> bool {
        if asked {
            return true;
        }
        let mut control = host.control.lock();
        if !control.health.is_failing() {
            return true;
        }
        let allowed = control.budget.withdraw(self.clock.now());
        if !allowed {
            control.figures.retries_refused += 1;
        }
        allowed
    }

    /// What opened `host`'s breaker, in words.
    pub(crate) fn breaker_cause(host: &Host) -> String {
        host.breaker
            .cause()
            .unwrap_or_else(|| "repeated failures".to_owned())
    }

    /// The state of `host`'s breaker now.
    pub(crate) fn breaker_state(&self, host: &Host) -> BreakerState {
        host.breaker.state(self.clock.now())
    }

    /// What `host` shows in the stats, if it pushed back or is held back
    /// now; `None` for a host that has had nothing to say.
    pub(crate) fn report(&self, host: &Host) -> Option<HostReport> {
        let control = host.control.lock();
        let breaker = host.breaker.state(self.clock.now());
        let figures = control.figures;
        if figures == HostFigures::default() && breaker == BreakerState::Closed {
            return None;
        }
        let (lowest, highest) = control.limit.range();
        Some(HostReport {
            origin: host.origin.to_string(),
            limit: control.limit.limit(),
            lowest,
            highest,
            breaker,
            figures,
        })
    }

    /// Closes `host`'s breaker, as if no request had failed.
    pub(crate) fn reset_breaker(host: &Host) {
        host.breaker.reset();
    }
}

impl Host {
    /// Until when (the clock's time) the host is paused, if it is at `now`.
    pub(crate) fn paused_until(&self, now: Duration) -> Option<Duration> {
        let until = Duration::from_nanos(self.paused_until_ns.load(Ordering::Acquire));
        (until > now).then_some(until)
    }

    /// Whether nothing here needs remembering at `now` (the table's sweep):
    /// no request holds it, its breaker has settled, no pause is on.
    pub(crate) fn is_settled(&self, now: Duration) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.breaker.is_settled(now)
            && self.paused_until(now).is_none()
    }

    /// The clock's second of the last use.
    pub(crate) fn last_used(&self) -> Duration {
        Duration::from_secs(u64::from(self.last_used_s.load(Ordering::Relaxed)))
    }

    /// Notes a use at `now`, writing only when that is a later second than
    /// known, so that threads sharing a host do not bounce its cache line.
    pub(crate) fn touch(&self, now: Duration) {
        let second = u32::try_from(now.as_secs()).unwrap_or(u32::MAX);
        if self.last_used_s.load(Ordering::Relaxed) < second {
            self.last_used_s.fetch_max(second, Ordering::Relaxed);
        }
    }

    /// Pauses the host until `duration` after `now`, never shortening a
    /// pause. Whether it paused it further.
    fn pause(&self, now: Duration, duration: Duration) -> bool {
        let until = now.saturating_add(clock::capped(duration));
        let until_ns = clock::nanos(until);
        self.paused_until_ns.fetch_max(until_ns, Ordering::AcqRel) < until_ns
    }
}

impl Permit {
    /// Tells `governor` how the host answered; `describe` words a failure
    /// (for the breaker's message, if it opens).
    pub(crate) fn report(
        mut self,
        governor: &Governor,
        answer: Answer,
        describe: impl FnOnce() -> String,
    ) {
        self.reported = true;
        let host = &self.host;
        let now = governor.clock.now();
        let still_out = host
            .in_flight
            .fetch_sub(1, Ordering::AcqRel)
            .saturating_sub(1);
        let mut control = host.control.lock();
        if self.first {
            control.budget.deposit(now);
        }
        // The host's health counts requests, not attempts: the retries of
        // a broken URL say nothing new about its host.
        if self.first {
            match answer {
                Answer::Answered { .. } | Answer::Throttled { .. } => control.health.note(false),
                Answer::Overloaded { .. } | Answer::Failed => control.health.note(true),
                Answer::Nothing => {}
            }
        }
        let retry_after = match answer {
            Answer::Answered { head } => {
                host.breaker.succeeded(self.probe);
                if control.limit.answered(self.sent, head, now) {
                    control.figures.overloaded += 1;
                }
                None
            }
            Answer::Throttled { retry_after } => {
                host.breaker.succeeded(self.probe);
                control.figures.throttled += 1;
                control
                    .limit
                    .pushed_back(self.sent, PushBack::Throttled, still_out, now);
                retry_after
            }
            Answer::Overloaded {
                refused,
                retry_after,
            } => {
                // A host that says it is overloaded (503, 504) is believed; a
                // timeout or a reset only in an outage: a host that serves
                // most requests well while some URLs time out is not asked
                // for too much, and cutting its limit would only slow the
                // rest (AIMD's old trouble with losses that are not
                // congestion).
                if refused || control.health.is_failing() {
                    control.figures.overloaded += 1;
                    let how = if refused {
                        PushBack::Refused
                    } else {
                        PushBack::Lost
                    };
                    control.limit.pushed_back(self.sent, how, still_out, now);
                }
                self.failed(governor, &mut control, now, describe);
                retry_after
            }
            Answer::Failed => {
                self.failed(governor, &mut control, now, describe);
                None
            }
            Answer::Nothing => {
                if self.probe {
                    host.breaker.probe_abandoned();
                }
                None
            }
        };
        // Refused even one at a time: the Retry-After meant the host.
        // A wait past the longest ends the refused request at once; it
        // does not hold the others for minutes.
        if let Some(wait) = retry_after.filter(|wait| *wait <= governor.settings.longest_pause) {
            let alone = self.sent.in_flight <= 1;
            if alone && host.pause(now, wait) {
                control.figures.pauses += 1;
                control.limit.paused();
                log::warn!(
                    "{} asked for a pause: requests to it wait {wait:?}",
                    host.origin
                );
            }
        }
        host.limit.store(control.limit.limit(), Ordering::Release);
        host.epoch.store(control.limit.epoch(), Ordering::Release);
    }

    /// A failure for the breaker (a request's first attempt, or the probe:
    /// a retry of a URL that failed already says nothing new); if it opens
    /// the breaker, the limit starts again from one.
    fn failed(
        &self,
        governor: &Governor,
        control: &mut Control,
        now: Duration,
        describe: impl FnOnce() -> String,
    ) {
        if !(self.first || self.probe) {
            return;
        }
        let settings = &governor.settings.breaker;
        let failing = control.health.is_failing();
        if let breaker::Failed::Opened = self
            .host
            .breaker
            .failed(settings, self.probe, self.first, failing, now, describe)
        {
            control.figures.breaker_opened += 1;
            control.limit.restart();
            log::warn!(
                "circuit breaker for {} opened: {}",
                self.host.origin,
                self.host.breaker.cause().unwrap_or_default()
            );
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if !self.reported {
            self.host.in_flight.fetch_sub(1, Ordering::AcqRel);
            if self.probe {
                self.host.breaker.probe_abandoned();
            }
        }
    }
}
