//! One circuit breaker per host.
//!
//! When a host keeps failing (5xx, timeouts, network errors), hammering it
//! with the rest of a 10,000-URL batch only makes things worse and wastes the
//! retry budget. After `threshold` consecutive failures the host's breaker
//! opens: requests to it fail at once with [`ErrorKind::CircuitOpen`] and send
//! nothing. After `open_time`, one probe request is let through (half-open);
//! its success closes the breaker, its failure opens it again.
//!
//! The common case (closed breaker, successful request) takes no lock and
//! writes nothing shared: the host table is read without locking, and a
//! closed breaker is checked with one atomic load.
//!
//! [`ErrorKind::CircuitOpen`]: crate::ErrorKind::CircuitOpen

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::clock::Clock;
use crate::hosts::HostTable;

/// The state of one host's circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BreakerState {
    /// Requests flow normally.
    Closed,
    /// The host failed repeatedly: requests fail at once without being sent.
    Open,
    /// The open time has passed: the next request is sent as a probe, and
    /// its outcome closes or reopens the breaker.
    HalfOpen,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// The per-host breakers of one fetcher.
#[derive(Debug)]
pub(crate) struct Breakers {
    threshold: u32,
    open_time: Duration,
    clock: Arc<dyn Clock>,
    hosts: HostTable<Breaker>,
}

/// One host's breaker.
#[derive(Debug)]
pub(crate) struct Breaker {
    host: Box<str>,
    /// Mirrors `Inner::state` so the closed case needs no lock.
    state: AtomicU8,
    consecutive_failures: AtomicU32,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: u8,
    opened_at: Duration,
    probe_in_flight: bool,
}

/// Leave to send one request. Report how it went with [`Permit::success`]
/// or [`Permit::failure`]; dropping it unreported counts for nothing (but
/// frees the probe slot, so a half-open breaker never gets stuck).
#[must_use]
pub(crate) struct Permit<'a> {
    breakers: &'a Breakers,
    breaker: Option<Arc<Breaker>>,
    probe: bool,
}

impl Breakers {
    /// Breakers that open after `threshold` consecutive failures (0 turns
    /// them off) and stay open for `open_time`.
    pub(crate) fn new(threshold: u32, open_time: Duration, clock: Arc<dyn Clock>) -> Breakers {
        Breakers {
            threshold,
            open_time,
            clock,
            hosts: HostTable::default(),
        }
    }

    /// Asks to send a request to `host`; `None` means the breaker is open.
    pub(crate) fn admit(&self, host: &str) -> Option<Permit<'_>> {
        if self.threshold == 0 {
            return Some(self.permit(None, false));
        }
        let breaker = self.breaker(host);
        if breaker.state.load(Ordering::Acquire) == CLOSED {
            return Some(self.permit(Some(breaker), false));
        }
        let mut inner = breaker.inner.lock();
        match inner.state {
            CLOSED => {}
            OPEN if self.clock.now().saturating_sub(inner.opened_at) >= self.open_time => {
                log::warn!(
                    "circuit breaker for {:?} is half-open: sending one probe",
                    breaker.host
                );
                breaker.set_state(&mut inner, HALF_OPEN);
                inner.probe_in_flight = true;
                drop(inner);
                return Some(self.permit(Some(breaker), true));
            }
            HALF_OPEN if !inner.probe_in_flight => {
                inner.probe_in_flight = true;
                drop(inner);
                return Some(self.permit(Some(breaker), true));
            }
            _ => return None,
        }
        drop(inner);
        Some(self.permit(Some(breaker), false))
    }

    /// The state of `host`'s breaker; `Closed` for a host never seen.
    pub(crate) fn state(&self, host: &str) -> BreakerState {
        let Some(breaker) = self.hosts.get(host) else {
            return BreakerState::Closed;
        };
        let inner = breaker.inner.lock();
        match inner.state {
            OPEN if self.clock.now().saturating_sub(inner.opened_at) >= self.open_time => {
                BreakerState::HalfOpen
            }
            OPEN => BreakerState::Open,
            HALF_OPEN => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    /// Closes every breaker and forgets their failures.
    pub(crate) fn reset(&self) {
        self.hosts.for_each(|breaker| {
            let mut inner = breaker.inner.lock();
            breaker.set_state(&mut inner, CLOSED);
            inner.probe_in_flight = false;
            breaker.consecutive_failures.store(0, Ordering::Relaxed);
        });
    }

    fn permit(&self, breaker: Option<Arc<Breaker>>, probe: bool) -> Permit<'_> {
        Permit {
            breakers: self,
            breaker,
            probe,
        }
    }

    fn breaker(&self, host: &str) -> Arc<Breaker> {
        self.hosts.get_or_insert_with(host, || Breaker {
            host: host.into(),
            state: AtomicU8::new(CLOSED),
            consecutive_failures: AtomicU32::new(0),
            inner: Mutex::new(Inner {
                state: CLOSED,
                opened_at: Duration::ZERO,
                probe_in_flight: false,
            }),
        })
    }

    fn open(&self, breaker: &Breaker, inner: &mut Inner, failures: u32) {
        log::warn!(
            "circuit breaker for {:?} opened after {failures} consecutive failures; \
             requests to it fail at once for {:?}",
            breaker.host,
            self.open_time
        );
        breaker.set_state(inner, OPEN);
        inner.opened_at = self.clock.now();
        inner.probe_in_flight = false;
    }
}

impl Breaker {
    fn set_state(&self, inner: &mut Inner, state: u8) {
        inner.state = state;
        self.state.store(state, Ordering::Release);
    }
}

impl Permit<'_> {
    /// The host answered: it is healthy (even if the answer was a 404).
    pub(crate) fn success(mut self) {
        let Some(breaker) = self.breaker.take() else {
            return;
        };
        // The hot path: nothing to reset, so write nothing shared.
        if breaker.consecutive_failures.load(Ordering::Relaxed) != 0 {
            breaker.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.probe {
            let mut inner = breaker.inner.lock();
            log::warn!(
                "circuit breaker for {:?} closed: the probe succeeded",
                breaker.host
            );
            breaker.set_state(&mut inner, CLOSED);
            inner.probe_in_flight = false;
        }
    }

    /// The host failed (5xx, timeout, network error).
    pub(crate) fn failure(mut self) {
        let Some(breaker) = self.breaker.take() else {
            return;
        };
        let failures = breaker.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if self.probe {
            let mut inner = breaker.inner.lock();
            self.breakers.open(&breaker, &mut inner, failures);
        } else if failures >= self.breakers.threshold {
            let mut inner = breaker.inner.lock();
            if inner.state == CLOSED {
                self.breakers.open(&breaker, &mut inner, failures);
            }
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if let (Some(breaker), true) = (&self.breaker, self.probe) {
            let mut inner = breaker.inner.lock();
            if inner.state == HALF_OPEN {
                inner.probe_in_flight = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const HOST: &str = "cdn.example";

    fn breakers(threshold: u32) -> (Breakers, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::default());
        let breakers = Breakers::new(threshold, Duration::from_secs(60), clock.clone());
        (breakers, clock)
    }

    #[derive(Clone, Copy, Debug)]
    enum Step {
        Ok,
        Fail,
        /// Admission is refused.
        Refused,
        Wait(u64),
        Expect(BreakerState),
    }
    use Step::*;

    /// Runs a script of requests against one host's breaker.
    fn run(threshold: u32, script: &[Step]) {
        let (breakers, clock) = breakers(threshold);
        for (i, step) in script.iter().enumerate() {
            match *step {
                Ok => breakers.admit(HOST).expect("admitted").success(),
                Fail => breakers.admit(HOST).expect("admitted").failure(),
                Refused => assert!(breakers.admit(HOST).is_none(), "step {i}: admitted"),
                Wait(secs) => clock.advance(Duration::from_secs(secs)),
                Expect(state) => assert_eq!(breakers.state(HOST), state, "step {i}"),
            }
        }
    }

    #[test]
    fn transitions() {
        let cases: &[(&str, u32, &[Step])] = &[
            (
                "stays closed below the threshold",
                5,
                &[Fail, Fail, Fail, Fail, Expect(BreakerState::Closed), Ok],
            ),
            (
                "a success resets the count",
                3,
                &[Fail, Fail, Ok, Fail, Fail, Expect(BreakerState::Closed)],
            ),
            (
                "opens at the threshold",
                3,
                &[
                    Fail,
                    Fail,
                    Fail,
                    Expect(BreakerState::Open),
                    Refused,
                    Refused,
                ],
            ),
            (
                "still open just before the open time",
                1,
                &[Fail, Wait(59), Refused, Expect(BreakerState::Open)],
            ),
            (
                "half-open after the open time",
                1,
                &[Fail, Wait(60), Expect(BreakerState::HalfOpen)],
            ),
            (
                "probe success closes",
                1,
                &[Fail, Wait(60), Ok, Expect(BreakerState::Closed), Ok, Ok],
            ),
            (
                "probe failure reopens for a full open time",
                2,
                &[
                    Fail,
                    Fail,
                    Wait(61),
                    Fail,
                    Expect(BreakerState::Open),
                    Wait(59),
                    Refused,
                    Wait(1),
                    Ok,
                    Expect(BreakerState::Closed),
                ],
            ),
            (
                "disabled with threshold 0",
                0,
                &[
                    Fail,
                    Fail,
                    Fail,
                    Fail,
                    Fail,
                    Fail,
                    Expect(BreakerState::Closed),
                    Ok,
                ],
            ),
        ];
        for (name, threshold, script) in cases {
            eprintln!("case: {name}");
            run(*threshold, script);
        }
    }

    #[test]
    fn half_open_admits_one_probe_at_a_time() {
        let (breakers, clock) = breakers(1);
        breakers.admit(HOST).unwrap().failure();
        clock.advance(Duration::from_secs(60));
        let probe = breakers.admit(HOST).expect("the probe");
        assert!(
            breakers.admit(HOST).is_none(),
            "a second request while probing"
        );
        drop(probe); // abandoned: the slot frees up
        let probe = breakers.admit(HOST).expect("a new probe");
        probe.success();
        assert_eq!(breakers.state(HOST), BreakerState::Closed);
    }

    #[test]
    fn hosts_are_independent_and_reset_closes_all() {
        let (breakers, _clock) = breakers(1);
        breakers.admit("a").unwrap().failure();
        assert_eq!(breakers.state("a"), BreakerState::Open);
        assert_eq!(breakers.state("b"), BreakerState::Closed);
        assert!(breakers.admit("b").is_some());
        breakers.reset();
        assert_eq!(breakers.state("a"), BreakerState::Closed);
        assert!(breakers.admit("a").is_some());
    }
}
