//! One circuit breaker per host: when a host keeps failing, send it one
//! probe at a time instead of the rest of the batch.
//!
//! After `threshold` requests in a row failed (5xx, timeouts, network
//! errors; never a 4xx, nor a 429: a host that says "later" is well; a
//! request counts by its first attempt, its retries say nothing new), when
//! at least half of the host's recent requests failed too (`health.rs`),
//! the breaker opens. Consecutive failures alone are a poor sign under concurrency: a
//! host one request in four fails for (a few broken URLs) shows five in a
//! row now and then while it serves the rest well. While it is open, requests to the host **wait** for it to close,
//! within their own time (a batch's deadline, a request's); they do not
//! fail unsent, because a short outage (a deploy, a cold cache) must cost
//! time, not results: measured before, a third of a second of 503s at the
//! start of a batch cost 99% of it. After the open time one request goes
//! as the probe (half-open); its success closes the breaker, its failure
//! opens it again for twice as long.
//!
//! The open time starts at [`SHORTEST`] and doubles while probes fail, up
//! to the longest (`breaker_open_time`, 60 s by default): about two minutes
//! of patience in all (1 + 2 + 4 + ... + 60 s). When a probe fails at the
//! longest open time, the host is taken as down: the requests waiting for
//! it end (with their own last failure, or `CircuitOpen` if they never
//! sent), and new ones fail at once, until a probe succeeds again. With
//! `breaker_fail_fast(true)` requests never wait: an open breaker fails
//! them at once, as Hystrix does.
//!
//! Each breaker is a few atomics in its host's record. The common case
//! (closed, a success) takes no lock and writes nothing shared: a closed
//! breaker is one atomic load, and a success writes only when there were
//! failures to forget. Rarer changes are compare-and-swaps, so two threads
//! never both open a breaker or both send the probe. The words of what
//! opened it are kept for the messages of the requests it holds back.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

pub(crate) use crate::stats::BreakerState;

/// The first open time: a blip is over by then, more often than not.
pub(crate) const SHORTEST: Duration = Duration::from_secs(1);

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;
/// Set with `HALF_OPEN` while the probe is out.
const PROBING: u8 = 4;

/// The breakers' rules, the same for every host of a fetcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BreakerSettings {
    /// Consecutive failures that open a breaker; 0 turns breakers off.
    pub(crate) threshold: u32,
    /// The longest open time.
    pub(crate) longest: Duration,
    /// Fail requests at once while open, instead of waiting.
    pub(crate) fail_fast: bool,
}

/// What the breaker says to a request that would be sent now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Send it; as the probe if `probe`.
    Pass { probe: bool },
    /// Wait: until the clock's `until`, or (`None`) until the probe out now
    /// comes back.
    Wait { until: Option<Duration> },
    /// Do not send it (denied): the breaker fails fast, or the host is
    /// down.
    Deny,
}

/// What a failure did to the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Failed {
    /// Nothing changed state.
    Counted,
    /// It opened the breaker (from closed, or a failed probe).
    Opened,
}

/// One host's breaker, kept in its record.
#[derive(Debug, Default)]
pub(crate) struct Breaker {
    state: AtomicU8,
    consecutive_failures: AtomicU32,
    /// When it last opened, in the clock's nanoseconds.
    opened_at_ns: AtomicU64,
    /// How long it stays open this time, in nanoseconds (0: [`SHORTEST`]).
    open_for_ns: AtomicU64,
    /// A probe failed at the longest open time: the host is down.
    down: AtomicBool,
    /// What opened it, in words: "5 failures in a row, the last: ...".
    cause: Mutex<Option<Box<str>>>,
}

impl Breaker {
    /// Whether a request may be sent at `now` (the clock's time).
    pub(crate) fn admit(&self, settings: &BreakerSettings, now: Duration) -> Verdict {
        if settings.threshold == 0 {
            return Verdict::Pass { probe: false };
        }
        let deny = settings.fail_fast || self.down.load(Ordering::Acquire);
        loop {
            let state = self.state.load(Ordering::Acquire);
            let next = match state {
                CLOSED => return Verdict::Pass { probe: false },
                OPEN => {
                    let until = self.reopens_at();
                    if now < until {
                        return if deny {
                            Verdict::Deny
                        } else {
                            Verdict::Wait { until: Some(until) }
                        };
                    }
                    HALF_OPEN | PROBING
                }
                HALF_OPEN => HALF_OPEN | PROBING,
                _ if deny => return Verdict::Deny,
                _ => return Verdict::Wait { until: None },
            };
            if self
                .state
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return Verdict::Pass { probe: true };
            }
        }
    }

    /// What [`admit`](Breaker::admit) would say at `now`, without taking the
    /// probe's place.
    pub(crate) fn admit_look(&self, settings: &BreakerSettings, now: Duration) -> Verdict {
        if settings.threshold == 0 {
            return Verdict::Pass { probe: false };
        }
        match self.state.load(Ordering::Acquire) {
            CLOSED => Verdict::Pass { probe: false },
            OPEN if now < self.reopens_at() => Verdict::Wait {
                until: Some(self.reopens_at()),
            },
            OPEN | HALF_OPEN => Verdict::Pass { probe: true },
            _ => Verdict::Wait { until: None },
        }
    }

    /// The host answered (even a 404: it is well). Whether that closed the
    /// breaker (a probe's success).
    pub(crate) fn succeeded(&self, probe: bool) -> bool {
        // The hot path: nothing to reset, so write nothing shared.
        if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if !probe {
            return false;
        }
        self.down.store(false, Ordering::Release);
        self.open_for_ns.store(0, Ordering::Relaxed);
        self.state.store(CLOSED, Ordering::Release);
        true
    }

    /// The host failed (5xx, timeout, network error) at `now`, for a
    /// request's first attempt if `fresh` (else a retry of a URL that failed
    /// before); `failing` when at least half of its recent requests failed;
    /// `describe` says how, in words, if this opens the breaker.
    pub(crate) fn failed(
        &self,
        settings: &BreakerSettings,
        probe: bool,
        fresh: bool,
        failing: bool,
        now: Duration,
        describe: impl FnOnce() -> String,
    ) -> Failed {
        if settings.threshold == 0 {
            return Failed::Counted;
        }
        let failures = self
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if probe {
            // Open again. A probe that was a retry of a URL that failed
            // already says little of the host: as long again. A fresh one's
            // failure: twice as long, and at the longest open time, the host
            // is down.
            let was = self.open_for(settings);
            let open_for = if fresh {
                was.saturating_mul(2).min(settings.longest)
            } else {
                was
            };
            // A breaker reset while the probe was out stays closed: the
            // probe's failure neither opens it nor takes the host as down.
            if !self.open(HALF_OPEN | PROBING, now, open_for) {
                return Failed::Counted;
            }
            if fresh && was >= settings.longest {
                self.down.store(true, Ordering::Release);
            }
            return Failed::Opened;
        }
        if failures < settings.threshold || !failing || self.state.load(Ordering::Acquire) != CLOSED
        {
            return Failed::Counted;
        }
        *self.cause.lock() = Some(
            format!("{failures} failures in a row, the last: {}", describe()).into_boxed_str(),
        );
        if self.open(CLOSED, now, SHORTEST.min(settings.longest)) {
            Failed::Opened
        } else {
            Failed::Counted
        }
    }

    /// The probe was not sent after all, or came back with nothing to say
    /// about the host: the next request may probe instead.
    pub(crate) fn probe_abandoned(&self) {
        let _ = self.state.compare_exchange(
            HALF_OPEN | PROBING,
            HALF_OPEN,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
    }

    /// The state at `now`.
    pub(crate) fn state(&self, now: Duration) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN if now < self.reopens_at() => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// What opened the breaker, in words, if it is not closed.
    pub(crate) fn cause(&self) -> Option<String> {
        if self.state.load(Ordering::Acquire) == CLOSED {
            return None;
        }
        self.cause.lock().as_deref().map(str::to_owned)
    }

    /// Closes the breaker and forgets its failures.
    pub(crate) fn reset(&self) {
        self.state.store(CLOSED, Ordering::Release);
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.open_for_ns.store(0, Ordering::Relaxed);
        self.down.store(false, Ordering::Release);
    }

    /// Whether nothing here needs remembering at `now`: closed without
    /// failures, or open long enough to be probed again by a new record.
    pub(crate) fn is_settled(&self, now: Duration) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => self.consecutive_failures.load(Ordering::Relaxed) == 0,
            OPEN => now >= self.reopens_at() && !self.down.load(Ordering::Acquire),
            _ => false,
        }
    }

    /// This opening's length.
    fn open_for(&self, settings: &BreakerSettings) -> Duration {
        match self.open_for_ns.load(Ordering::Relaxed) {
            0 => SHORTEST.min(settings.longest),
            ns => Duration::from_nanos(ns),
        }
    }

    /// When an open breaker lets a probe through (the clock's time).
    fn reopens_at(&self) -> Duration {
        let opened_at = Duration::from_nanos(self.opened_at_ns.load(Ordering::Acquire));
        let open_for = match self.open_for_ns.load(Ordering::Relaxed) {
            0 => SHORTEST,
            ns => Duration::from_nanos(ns),
        };
        opened_at.saturating_add(open_for)
    }

    /// Opens the breaker for `open_for` if it is still `from`. The times are
    /// written first, so that no thread sees it open with old ones (and
    /// probes at once).
    fn open(&self, from: u8, now: Duration, open_for: Duration) -> bool {
        if self.state.load(Ordering::Acquire) != from {
            return false; // opened already, or reset meanwhile
        }
        let nanos = crate::clock::nanos;
        self.opened_at_ns.store(nanos(now), Ordering::Release);
        self.open_for_ns
            .store(nanos(open_for).max(1), Ordering::Relaxed);
        self.state
            .compare_exchange(from, OPEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAITING: BreakerSettings = BreakerSettings {
        threshold: 3,
        longest: Duration::from_secs(60),
        fail_fast: false,
    };

    #[derive(Clone, Copy, Debug)]
    enum Step {
        /// A request is sent and succeeds.
        Ok,
        /// A request is sent and fails.
        Fail,
        /// The breaker says this to the next request (nothing is sent).
        Says(Verdict),
        /// The clock moves on.
        After(u64),
        Is(BreakerState),
    }
    use Step::*;

    /// Runs a script of requests against one breaker; the clock starts at
    /// 1000 s.
    fn run(settings: BreakerSettings, script: &[Step]) -> Breaker {
        let breaker = Breaker::default();
        let mut now = Duration::from_secs(1000);
        for (i, step) in script.iter().enumerate() {
            match *step {
                Ok | Fail => {
                    let Verdict::Pass { probe } = breaker.admit(&settings, now) else {
                        panic!(
                            "step {i}: not admitted: {:?}",
                            breaker.admit(&settings, now)
                        );
                    };
                    if matches!(step, Ok) {
                        breaker.succeeded(probe);
                    } else {
                        let describe = || "503 Service Unavailable".into();
                        breaker.failed(&settings, probe, true, true, now, describe);
                    }
                }
                Says(verdict) => assert_eq!(breaker.admit(&settings, now), verdict, "step {i}"),
                After(secs) => now += Duration::from_secs(secs),
                Is(state) => assert_eq!(breaker.state(now), state, "step {i}"),
            }
        }
        breaker
    }

    fn wait_until(secs: u64) -> Step {
        Says(Verdict::Wait {
            until: Some(Duration::from_secs(secs)),
        })
    }

    #[test]
    fn transitions() {
        let fast = BreakerSettings {
            fail_fast: true,
            ..WAITING
        };
        let off = BreakerSettings {
            threshold: 0,
            ..WAITING
        };
        let cases: &[(&str, BreakerSettings, &[Step])] = &[
            (
                "stays closed below the threshold",
                WAITING,
                &[Fail, Fail, Is(BreakerState::Closed), Ok, Fail, Fail, Ok],
            ),
            (
                "opens at the threshold, and requests wait out the first second",
                WAITING,
                &[Fail, Fail, Fail, Is(BreakerState::Open), wait_until(1001)],
            ),
            (
                "fail-fast denies instead",
                fast,
                &[Fail, Fail, Fail, Says(Verdict::Deny)],
            ),
            (
                "one probe after the open time, the others wait for it",
                WAITING,
                &[
                    Fail,
                    Fail,
                    Fail,
                    After(1),
                    Is(BreakerState::HalfOpen),
                    Says(Verdict::Pass { probe: true }),
                    Says(Verdict::Wait { until: None }),
                ],
            ),
            (
                "a probe's success closes",
                WAITING,
                &[Fail, Fail, Fail, After(1), Ok, Is(BreakerState::Closed), Ok],
            ),
            (
                "failed probes double the open time",
                WAITING,
                &[
                    Fail,
                    Fail,
                    Fail,
                    After(1),
                    Fail,
                    wait_until(1003),
                    After(2),
                    Fail,
                    wait_until(1007),
                    After(4),
                    Ok,
                    Is(BreakerState::Closed),
                ],
            ),
            (
                "a success after a close starts from one second again",
                WAITING,
                &[
                    Fail,
                    Fail,
                    Fail,
                    After(1),
                    Fail,
                    After(2),
                    Ok,
                    Fail,
                    Fail,
                    Fail,
                    wait_until(1004),
                ],
            ),
            (
                "off with threshold 0",
                off,
                &[Fail, Fail, Fail, Fail, Is(BreakerState::Closed), Ok],
            ),
        ];
        for (name, settings, script) in cases {
            eprintln!("case: {name}");
            run(*settings, script);
        }
    }

    #[test]
    fn a_retry_that_fails_as_the_probe_does_not_lengthen_the_opening() {
        let breaker = run(WAITING, &[Fail, Fail, Fail, After(1)]);
        let now = Duration::from_secs(1001);
        assert_eq!(breaker.admit(&WAITING, now), Verdict::Pass { probe: true });
        let retry = breaker.failed(&WAITING, true, false, true, now, String::new);
        assert_eq!(retry, Failed::Opened);
        assert_eq!(
            breaker.admit(&WAITING, now),
            Verdict::Wait {
                until: Some(Duration::from_secs(1002))
            },
            "open 1 s again, not 2"
        );
    }

    #[test]
    fn a_probe_failing_at_the_longest_open_time_takes_the_host_as_down() {
        let settings = BreakerSettings {
            threshold: 1,
            longest: Duration::from_secs(4),
            fail_fast: false,
        };
        // Open 1 s, then 2, 4, 4: the probe that fails at 4 s says "down".
        let breaker = run(
            settings,
            &[
                Fail,
                After(1),
                Fail,
                After(2),
                Fail,
                After(4),
                Fail,
                Says(Verdict::Deny),
                After(4),
                Ok,
                Is(BreakerState::Closed),
                Fail,
                wait_until(1012),
            ],
        );
        assert_eq!(breaker.state(Duration::from_secs(1011)), BreakerState::Open);
    }

    #[test]
    fn a_host_that_mostly_answers_is_not_broken() {
        let breaker = Breaker::default();
        let now = Duration::ZERO;
        for _ in 0..10 {
            let opened = breaker.failed(&WAITING, false, true, false, now, String::new);
            assert_eq!(opened, Failed::Counted);
        }
        assert_eq!(breaker.state(now), BreakerState::Closed);
        // Once its recent answers are mostly failures, it opens.
        let opened = breaker.failed(&WAITING, false, true, true, now, String::new);
        assert_eq!(opened, Failed::Opened);
    }

    #[test]
    fn the_cause_names_the_failures() {
        let breaker = run(WAITING, &[Fail, Fail, Fail]);
        assert_eq!(
            breaker.cause().as_deref(),
            Some("3 failures in a row, the last: 503 Service Unavailable")
        );
        breaker.reset();
        assert_eq!(breaker.cause(), None);
        assert_eq!(breaker.state(Duration::ZERO), BreakerState::Closed);
    }

    #[test]
    fn an_abandoned_probe_frees_the_slot() {
        let breaker = run(WAITING, &[Fail, Fail, Fail, After(1)]);
        let now = Duration::from_secs(1001);
        assert_eq!(breaker.admit(&WAITING, now), Verdict::Pass { probe: true });
        breaker.probe_abandoned();
        assert_eq!(breaker.admit(&WAITING, now), Verdict::Pass { probe: true });
    }

    #[test]
    fn settled_breakers_can_be_forgotten() {
        let breaker = Breaker::default();
        let now = Duration::from_secs(5);
        assert!(breaker.is_settled(now));
        breaker.failed(&WAITING, false, true, true, now, String::new);
        assert!(!breaker.is_settled(now), "a failure to remember");
        breaker.failed(&WAITING, false, true, true, now, String::new);
        breaker.failed(&WAITING, false, true, true, now, String::new);
        assert!(!breaker.is_settled(now), "open");
        assert!(breaker.is_settled(now + SHORTEST), "open long enough");
    }
}
