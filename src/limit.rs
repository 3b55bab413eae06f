//! Per-host gates a request passes before each attempt.
//!
//! - **The Retry-After gate.** When a host answers 429 or 503 with
//!   Retry-After, it has said when it wants to hear from us again: until
//!   then every request to it waits, instead of each of 32 threads finding
//!   out for itself with a request of its own. Other hosts carry on.
//!   Always on.
//! - **A rate limit** (optional): at most `n` requests per second per host,
//!   with a burst, using `governor`'s GCRA limiter; a thread that must wait
//!   sleeps for exactly the time governor names.
//! - **A concurrency cap** (optional): at most `n` requests in flight per
//!   host, for batches that mix a fragile host with robust ones.
//!
//! Every wait can be cut short by the batch's deadline or cancel token,
//! and is counted in the stats.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::{Condvar, Mutex};

use crate::cancel::Stop;
use crate::clock::Clock;
use crate::error::ErrorKind;
use crate::hosts::HostTable;

/// How often a thread waiting for a concurrency slot checks its stop.
const SLOT_POLL: Duration = Duration::from_millis(50);

/// The per-host gates of one fetcher.
#[derive(Debug)]
pub(crate) struct Limits {
    rate: Option<Quota>,
    /// The most a wait at the gate is lengthened by, at random (never more
    /// than a tenth of the wait).
    jitter: Duration,
    per_host: Option<usize>,
    clock: Arc<dyn Clock>,
    hosts: HostTable<HostLimits>,
}

#[derive(Debug)]
struct HostLimits {
    /// Until when (the clock's time, in ns) the host asked us to wait; 0 if
    /// it never did.
    gate_until_ns: AtomicU64,
    rate: Option<DefaultDirectRateLimiter>,
    in_flight: Mutex<usize>,
    slot_freed: Condvar,
}

/// A request's place in its host's concurrency cap, freed on drop.
pub(crate) struct Slot {
    host: Option<Arc<HostLimits>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(host) = &self.host {
            *host.in_flight.lock() -= 1;
            host.slot_freed.notify_one();
        }
    }
}

/// What passing the gates cost.
#[derive(Debug)]
pub(crate) struct Passed {
    pub(crate) slot: Slot,
    /// Time spent waiting, if any.
    pub(crate) waited: Option<Duration>,
}

impl Limits {
    /// Gates with an optional rate (`per_second`, `burst`) and an optional
    /// cap on requests in flight, both per host.
    pub(crate) fn new(
        rate: Option<(NonZeroU32, NonZeroU32)>,
        per_host: Option<usize>,
        jitter: Duration,
        clock: Arc<dyn Clock>,
    ) -> Limits {
        Limits {
            rate: rate.map(|(per_second, burst)| Quota::per_second(per_second).allow_burst(burst)),
            jitter,
            per_host,
            clock,
            hosts: HostTable::default(),
        }
    }

    fn host(&self, host: &str) -> Arc<HostLimits> {
        self.hosts.get_or_insert_with(host, || HostLimits {
            gate_until_ns: AtomicU64::new(0),
            rate: self.rate.map(RateLimiter::direct),
            in_flight: Mutex::new(0),
            slot_freed: Condvar::new(),
        })
    }

    /// Closes `host`'s gate for `duration` from now (never shortening it).
    pub(crate) fn close_gate(&self, host: &str, duration: Duration) {
        let until = self.clock.now().saturating_add(duration);
        let until_ns = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        let previous = self
            .host(host)
            .gate_until_ns
            .fetch_max(until_ns, Ordering::AcqRel);
        if previous < until_ns {
            log::warn!("{host:?} asked for a pause: requests to it wait {duration:?}");
        }
    }

    /// How long `host`'s Retry-After gate stays closed, if it is.
    pub(crate) fn gate_remaining(&self, host: &str) -> Option<Duration> {
        let until_ns = self.hosts.get(host)?.gate_until_ns.load(Ordering::Acquire);
        let now_ns = u64::try_from(self.clock.now().as_nanos()).unwrap_or(u64::MAX);
        (until_ns > now_ns).then(|| Duration::from_nanos(until_ns - now_ns))
    }

    /// Waits until a request may be sent to `host`: its gate is open, its
    /// rate allows it, and it has a free slot.
    pub(crate) fn pass(&self, host: &str, stop: &Stop<'_>) -> Result<Passed, ErrorKind> {
        let limits = self.host(host);
        let started = Instant::now();
        let mut waited = false;
        // The gate may be closed again while we wait, by another thread's
        // 429; hence a loop.
        loop {
            let until_ns = limits.gate_until_ns.load(Ordering::Acquire);
            let now = self.clock.now();
            let now_ns = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
            if until_ns <= now_ns {
                break;
            }
            waited = true;
            // Everyone parked at the gate would wake at the same instant
            // and hit the host at once: a little jitter spreads them out.
            let wait = Duration::from_nanos(until_ns - now_ns);
            let spread = self.jitter.min(wait / 10);
            stop.sleep(&*self.clock, wait + spread.mul_f64(fastrand::f64()))?;
        }
        if let Some(rate) = &limits.rate {
            while let Err(not_until) = rate.check() {
                waited = true;
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                stop.sleep(&*self.clock, wait)?;
            }
        }
        let slot = match self.per_host {
            Some(max) => {
                let mut in_flight = limits.in_flight.lock();
                while *in_flight >= max {
                    waited = true;
                    stop.check()?;
                    limits.slot_freed.wait_for(&mut in_flight, SLOT_POLL);
                }
                *in_flight += 1;
                Slot {
                    host: Some(Arc::clone(&limits)),
                }
            }
            None => Slot { host: None },
        };
        Ok(Passed {
            slot,
            waited: waited.then(|| started.elapsed()),
        })
    }
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, SystemClock};

    #[test]
    fn a_closed_gate_holds_its_host_only() {
        let clock = Arc::new(ManualClock::default());
        let limits = Limits::new(None, None, Duration::ZERO, clock.clone());
        limits.close_gate("slow", Duration::from_secs(2));
        limits.close_gate("slow", Duration::from_secs(1)); // never shortens
        assert_eq!(limits.gate_remaining("slow"), Some(Duration::from_secs(2)));
        assert_eq!(limits.gate_remaining("other"), None);
        let passed = limits.pass("other", &Stop::default()).unwrap();
        assert!(passed.waited.is_none());
        let passed = limits.pass("slow", &Stop::default()).unwrap();
        assert!(passed.waited.is_some());
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(2)]);
        // Open again.
        assert!(limits
            .pass("slow", &Stop::default())
            .unwrap()
            .waited
            .is_none());
    }

    #[test]
    fn a_gate_past_the_deadline_ends_the_request_at_once() {
        let limits = Limits::new(None, None, Duration::ZERO, Arc::new(ManualClock::default()));
        limits.close_gate("h", Duration::from_secs(60));
        let stop = Stop {
            deadline: Some(Instant::now() + Duration::from_secs(1)),
            cancel: None,
        };
        assert_eq!(
            limits.pass("h", &stop).unwrap_err(),
            ErrorKind::DeadlineExceeded
        );
    }

    #[test]
    fn the_rate_allows_a_burst_then_spaces_requests() {
        let ten = NonZeroU32::new(10).unwrap();
        let two = NonZeroU32::new(2).unwrap();
        let limits = Limits::new(
            Some((ten, two)),
            None,
            Duration::ZERO,
            SystemClock::shared(),
        );
        let started = Instant::now();
        let waits: Vec<bool> = (0..4)
            .map(|_| limits.pass("h", &Stop::default()).unwrap().waited.is_some())
            .collect();
        assert_eq!(waits, [false, false, true, true]);
        // Two waits of ~100 ms each at 10 per second; a lower bound only.
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[test]
    fn the_concurrency_cap_holds_requests_until_a_slot_frees() {
        let limits = Arc::new(Limits::new(
            None,
            Some(1),
            Duration::ZERO,
            SystemClock::shared(),
        ));
        let first = limits.pass("h", &Stop::default()).unwrap();
        let waiter = {
            let limits = Arc::clone(&limits);
            std::thread::spawn(move || limits.pass("h", &Stop::default()).unwrap().waited)
        };
        std::thread::sleep(Duration::from_millis(30));
        assert!(
            !waiter.is_finished(),
            "the second request got a slot while the first held it"
        );
        drop(first.slot);
        assert!(waiter.join().unwrap().is_some());
    }
}
