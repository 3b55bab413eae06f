//! One circuit breaker per host, and what counts against it.
//!
//! When a host keeps failing (5xx, timeouts, network errors), hammering it
//! with the rest of a 10,000-URL batch only makes things worse and wastes the
//! retry budget. After `threshold` consecutive failures the host's breaker
//! opens: requests to it fail at once with [`ErrorKind::CircuitOpen`] and send
//! nothing. After `open_time`, one probe request is let through (half-open);
//! its success closes the breaker, its failure opens it again.
//!
//! Each host's breaker is a few atomics in its record (`host.rs`). The
//! common case (closed breaker, successful request) takes no lock and writes
//! nothing shared: a closed breaker is one atomic load, and a success writes
//! only when there were failures to forget. Rarer changes are
//! compare-and-swaps, so two threads never both open a breaker or both
//! send the probe.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::ErrorKind;
use crate::origin::Origin;

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
/// Set with `HALF_OPEN` while the probe is out.
const PROBING: u8 = 4;

/// Whether a failure of this kind (and status) counts against the host's
/// breaker: signs that the host itself is unwell (5xx, timeouts, network
/// errors), never a client error like 404, nor anything about the request
/// or the body.
pub(crate) fn counts_against_host(kind: ErrorKind, status: Option<u16>) -> bool {
    match kind {
        ErrorKind::Network | ErrorKind::Timeout => true,
        ErrorKind::Status => matches!(status, Some(500..=599)),
        _ => false,
    }
}

/// The breakers' rules: when one opens, and for how long.
#[derive(Debug)]
pub(crate) struct Breakers {
    threshold: u32,
    open_time: Duration,
    clock: Arc<dyn Clock>,
}

/// One host's breaker, kept in its record.
#[derive(Debug, Default)]
pub(crate) struct BreakerCell {
    state: AtomicU8,
    consecutive_failures: AtomicU32,
    /// When it last opened, in the clock's nanoseconds.
    opened_at_ns: AtomicU64,
}

/// Leave to send one request. Report how it went with [`Permit::success`]
/// or [`Permit::failure`]; dropping it unreported counts for nothing (but
/// frees the probe slot, so a half-open breaker never gets stuck).
#[must_use]
pub(crate) struct Permit<'a> {
    breakers: &'a Breakers,
    /// `None` when the breakers are off.
    cell: Option<(&'a BreakerCell, &'a Origin)>,
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
        }
    }

    /// Asks to send a request to the host of `cell`; `None` means its
    /// breaker is open.
    pub(crate) fn admit<'a>(
        &'a self,
        cell: &'a BreakerCell,
        host: &'a Origin,
    ) -> Option<Permit<'a>> {
        if self.threshold == 0 {
            return Some(self.permit(None, false));
        }
        loop {
            let state = cell.state.load(Ordering::Acquire);
            let next = match state {
                CLOSED => return Some(self.permit(Some((cell, host)), false)),
                OPEN if self.open_long_enough(cell) => HALF_OPEN | PROBING,
                HALF_OPEN => HALF_OPEN | PROBING,
                _ => return None,
            };
            if cell
                .state
                .compare_exchange(state, next, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                log::warn!("circuit breaker for {host} is half-open: sending one probe");
                return Some(self.permit(Some((cell, host)), true));
            }
        }
    }

    /// The state of the breaker in `cell`.
    pub(crate) fn state(&self, cell: &BreakerCell) -> BreakerState {
        match cell.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            OPEN if !self.open_long_enough(cell) => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// Closes the breaker in `cell` and forgets its failures.
    pub(crate) fn reset(cell: &BreakerCell) {
        cell.state.store(CLOSED, Ordering::Release);
        cell.consecutive_failures.store(0, Ordering::Relaxed);
    }

    fn open_long_enough(&self, cell: &BreakerCell) -> bool {
        let opened_at = Duration::from_nanos(cell.opened_at_ns.load(Ordering::Acquire));
        self.clock.now().saturating_sub(opened_at) >= self.open_time
    }

    fn permit<'a>(
        &'a self,
        cell: Option<(&'a BreakerCell, &'a Origin)>,
        probe: bool,
    ) -> Permit<'a> {
        Permit {
            breakers: self,
            cell,
            probe,
        }
    }

    /// Opens the breaker if it is still `from`. The time is written first,
    /// so that no thread sees it open with an old time (and probes at once).
    fn open(&self, cell: &BreakerCell, host: &Origin, failures: u32, from: u8) {
        if cell.state.load(Ordering::Acquire) != from {
            return; // opened already, or reset meanwhile
        }
        let now_ns = u64::try_from(self.clock.now().as_nanos()).unwrap_or(u64::MAX);
        cell.opened_at_ns.store(now_ns, Ordering::Release);
        if cell
            .state
            .compare_exchange(from, OPEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            log::warn!(
                "circuit breaker for {host} opened after {failures} consecutive failures; \
                 requests to it fail at once for {:?}",
                self.open_time
            );
        }
    }
}

impl BreakerCell {
    /// Whether nothing here needs remembering as of `now`: closed without
    /// failures, or open long enough to be probed again (a new record
    /// would let the next request through all the same).
    pub(crate) fn is_settled(&self, now: Duration, open_time: Duration) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => self.consecutive_failures.load(Ordering::Relaxed) == 0,
            OPEN => {
                let opened_at = Duration::from_nanos(self.opened_at_ns.load(Ordering::Acquire));
                now.saturating_sub(opened_at) >= open_time
            }
            _ => false,
        }
    }
}

impl Permit<'_> {
    /// The host answered: it is healthy (even if the answer was a 404).
    pub(crate) fn success(mut self) {
        let Some((cell, host)) = self.cell.take() else {
            return;
        };
        // The hot path: nothing to reset, so write nothing shared.
        if cell.consecutive_failures.load(Ordering::Relaxed) != 0 {
            cell.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if self.probe {
            cell.state.store(CLOSED, Ordering::Release);
            log::warn!("circuit breaker for {host} closed: the probe succeeded");
        }
    }

    /// The host failed (5xx, timeout, network error).
    pub(crate) fn failure(mut self) {
        let Some((cell, host)) = self.cell.take() else {
            return;
        };
        let failures = cell
            .consecutive_failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        if self.probe {
            self.breakers
                .open(cell, host, failures, HALF_OPEN | PROBING);
        } else if failures >= self.breakers.threshold {
            self.breakers.open(cell, host, failures, CLOSED);
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // An unreported probe frees its slot for the next request.
        if let (Some((cell, _)), true) = (self.cell, self.probe) {
            let _ = cell.state.compare_exchange(
                HALF_OPEN | PROBING,
                HALF_OPEN,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::origin::OriginRef;

    fn host() -> Origin {
        OriginRef::of_url("https://cdn.example/")
            .unwrap()
            .to_origin()
    }

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
        let (cell, host) = (BreakerCell::default(), host());
        for (i, step) in script.iter().enumerate() {
            match *step {
                Ok => breakers.admit(&cell, &host).expect("admitted").success(),
                Fail => breakers.admit(&cell, &host).expect("admitted").failure(),
                Refused => assert!(breakers.admit(&cell, &host).is_none(), "step {i}: admitted"),
                Wait(secs) => clock.advance(Duration::from_secs(secs)),
                Expect(state) => assert_eq!(breakers.state(&cell), state, "step {i}"),
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
        let (cell, host) = (BreakerCell::default(), host());
        breakers.admit(&cell, &host).unwrap().failure();
        clock.advance(Duration::from_secs(60));
        let probe = breakers.admit(&cell, &host).expect("the probe");
        assert!(
            breakers.admit(&cell, &host).is_none(),
            "a second request while probing"
        );
        drop(probe); // abandoned: the slot frees up
        let probe = breakers.admit(&cell, &host).expect("a new probe");
        probe.success();
        assert_eq!(breakers.state(&cell), BreakerState::Closed);
    }

    #[test]
    fn settled_breakers_can_be_forgotten() {
        let (breakers, clock) = breakers(2);
        let (cell, host) = (BreakerCell::default(), host());
        let open_time = Duration::from_secs(60);
        assert!(cell.is_settled(clock.now(), open_time));
        breakers.admit(&cell, &host).unwrap().failure();
        assert!(
            !cell.is_settled(clock.now(), open_time),
            "a failure to remember"
        );
        breakers.admit(&cell, &host).unwrap().failure();
        assert!(!cell.is_settled(clock.now(), open_time), "open");
        clock.advance(open_time);
        assert!(cell.is_settled(clock.now(), open_time), "open long enough");
        Breakers::reset(&cell);
        assert_eq!(breakers.state(&cell), BreakerState::Closed);
    }

    #[test]
    fn what_counts_against_a_host() {
        let cases = [
            (ErrorKind::Status, Some(500), true),
            (ErrorKind::Status, Some(503), true),
            (ErrorKind::Status, Some(429), false),
            (ErrorKind::Status, Some(408), false),
            (ErrorKind::Status, Some(400), false),
            (ErrorKind::NotFound, Some(404), false),
            (ErrorKind::Network, None, true),
            (ErrorKind::Timeout, None, true),
            (ErrorKind::Tls, None, false),
            (ErrorKind::InvalidJson, None, false),
            (ErrorKind::BodyTooLarge, None, false),
            (ErrorKind::Redirect, None, false),
            (ErrorKind::Internal, None, false),
        ];
        for (kind, status, counts) in cases {
            assert_eq!(
                counts_against_host(kind, status),
                counts,
                "{kind:?} {status:?}"
            );
        }
    }
}
