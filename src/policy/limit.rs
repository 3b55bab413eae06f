//! Per-host gates a request passes before each attempt.
//!
//! Each host's gate is a few fields of its record (`host.rs`); the rules
//! that open and close them, and the waits, are here.
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
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use parking_lot::{Condvar, Mutex};

use crate::cancel::Stop;
use crate::clock::Clock;
use crate::error::ErrorKind;
use crate::origin::Origin;

/// How often a thread waiting for a concurrency slot checks its stop.
const SLOT_POLL: Duration = Duration::from_millis(50);

/// The per-host gates' rules, for one fetcher.
#[derive(Debug)]
pub(crate) struct Limits {
    rate: Option<Quota>,
    /// The most a wait at the gate is lengthened by, at random (never more
    /// than a tenth of the wait).
    jitter: Duration,
    per_host: Option<u32>,
    clock: Arc<dyn Clock>,
    /// Threads waiting for a slot, and where they wait: shared by all
    /// hosts, as waits are rare and a per-host condvar would cost memory
    /// in every record.
    waiting: AtomicUsize,
    slots: Mutex<()>,
    slot_freed: Condvar,
}

/// One host's gate, kept in its record.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    /// Until when (the clock's time, in ns) the host asked us to wait; 0 if
    /// it never did.
    until_ns: AtomicU64,
    /// The host's allowance, when there is a rate limit.
    rate: Option<Box<DefaultDirectRateLimiter>>,
    /// Requests in flight, when there is a per-host cap.
    in_flight: AtomicU32,
}

/// A request's place in its host's concurrency cap, freed on drop.
pub(crate) struct Slot<'a> {
    held: Option<(&'a Gate, &'a Limits)>,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Some((gate, limits)) = self.held {
            gate.in_flight.fetch_sub(1, Ordering::AcqRel);
            if limits.waiting.load(Ordering::Acquire) > 0 {
                let _guard = limits.slots.lock();
                limits.slot_freed.notify_all();
            }
        }
    }
}

/// What passing the gates cost.
pub(crate) struct Passed<'a> {
    pub(crate) slot: Slot<'a>,
    /// Time spent waiting, if any.
    pub(crate) waited: Option<Duration>,
}

impl Gate {
    /// Closes the gate until `duration` after `now` (the clock's time),
    /// never shortening it. Whether it closed it further.
    pub(crate) fn close(&self, now: Duration, duration: Duration) -> bool {
        let until = now.saturating_add(duration);
        let until_ns = u64::try_from(until.as_nanos()).unwrap_or(u64::MAX);
        self.until_ns.fetch_max(until_ns, Ordering::AcqRel) < until_ns
    }

    /// How long the gate stays closed after `now`, if it is.
    fn remaining(&self, now: Duration) -> Option<Duration> {
        let until_ns = self.until_ns.load(Ordering::Acquire);
        let now_ns = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        (until_ns > now_ns).then(|| Duration::from_nanos(until_ns - now_ns))
    }

    /// Whether the gate holds nothing worth keeping as of `now`: open, and
    /// no request in flight.
    pub(crate) fn is_idle(&self, now: Duration) -> bool {
        self.remaining(now).is_none() && self.in_flight.load(Ordering::Acquire) == 0
    }
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
            per_host: per_host.map(|cap| u32::try_from(cap).unwrap_or(u32::MAX)),
            clock,
            waiting: AtomicUsize::new(0),
            slots: Mutex::new(()),
            slot_freed: Condvar::new(),
        }
    }

    /// How long a drained allowance takes to fill up again (zero without
    /// a rate limit).
    pub(crate) fn refill(&self) -> Duration {
        self.rate
            .map_or(Duration::ZERO, |quota| quota.burst_size_replenished_in())
    }

    /// A new host's gate: open, with a full allowance.
    pub(crate) fn new_gate(&self) -> Gate {
        Gate {
            rate: self.rate.map(|quota| Box::new(RateLimiter::direct(quota))),
            ..Gate::default()
        }
    }

    /// Closes `host`'s gate for `duration` from now (never shortening it).
    pub(crate) fn close_gate(&self, gate: &Gate, host: &Origin, duration: Duration) {
        if gate.close(self.clock.now(), duration) {
            log::warn!("{host} asked for a pause: requests to it wait {duration:?}");
        }
    }

    /// How long a gate stays closed, if it is.
    pub(crate) fn gate_remaining(&self, gate: &Gate) -> Option<Duration> {
        gate.remaining(self.clock.now())
    }

    /// Waits until a request may be sent through `gate`: it is open, its
    /// rate allows it, and it has a free slot.
    pub(crate) fn pass<'a>(
        &'a self,
        gate: &'a Gate,
        stop: &Stop<'_>,
    ) -> Result<Passed<'a>, ErrorKind> {
        let started = Instant::now();
        let mut waited = false;
        // The gate may be closed again while we wait, by another thread's
        // 429; hence a loop.
        while let Some(wait) = gate.remaining(self.clock.now()) {
            waited = true;
            // Everyone parked at the gate would wake at the same instant
            // and hit the host at once: a little jitter spreads them out.
            let spread = self.jitter.min(wait / 10);
            stop.sleep(&*self.clock, wait + spread.mul_f64(fastrand::f64()))?;
        }
        if let Some(rate) = &gate.rate {
            while let Err(not_until) = rate.check() {
                waited = true;
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                stop.sleep(&*self.clock, wait)?;
            }
        }
        let slot = match self.per_host {
            Some(max) => {
                if !Limits::take_slot(gate, max) {
                    waited = true;
                    self.wait_for_slot(gate, max, stop)?;
                }
                Slot {
                    held: Some((gate, self)),
                }
            }
            None => Slot { held: None },
        };
        Ok(Passed {
            slot,
            waited: waited.then(|| started.elapsed()),
        })
    }

    /// Takes a slot if fewer than `max` are taken.
    fn take_slot(gate: &Gate, max: u32) -> bool {
        gate.in_flight
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    fn wait_for_slot(&self, gate: &Gate, max: u32, stop: &Stop<'_>) -> Result<(), ErrorKind> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let result = loop {
            if let Err(kind) = stop.check() {
                break Err(kind);
            }
            let mut guard = self.slots.lock();
            if Limits::take_slot(gate, max) {
                break Ok(());
            }
            self.slot_freed.wait_for(&mut guard, SLOT_POLL);
        };
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        result
    }
}

impl std::fmt::Debug for Slot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, SystemClock};
    use crate::origin::OriginRef;

    fn host() -> Origin {
        OriginRef::of_url("http://h/").unwrap().to_origin()
    }

    #[test]
    fn a_closed_gate_holds_its_host_only() {
        let clock = Arc::new(ManualClock::default());
        let limits = Limits::new(None, None, Duration::ZERO, clock.clone());
        let (slow, other) = (limits.new_gate(), limits.new_gate());
        limits.close_gate(&slow, &host(), Duration::from_secs(2));
        limits.close_gate(&slow, &host(), Duration::from_secs(1)); // never shortens
        assert_eq!(limits.gate_remaining(&slow), Some(Duration::from_secs(2)));
        assert_eq!(limits.gate_remaining(&other), None);
        let passed = limits.pass(&other, &Stop::default()).unwrap();
        assert!(passed.waited.is_none());
        let passed = limits.pass(&slow, &Stop::default()).unwrap();
        assert!(passed.waited.is_some());
        assert_eq!(clock.sleeps(), vec![Duration::from_secs(2)]);
        // Open again.
        assert!(limits
            .pass(&slow, &Stop::default())
            .unwrap()
            .waited
            .is_none());
    }

    #[test]
    fn waits_at_a_gate_are_spread_by_the_jitter() {
        let clock = Arc::new(ManualClock::default());
        let limits = Limits::new(None, None, Duration::from_secs(1), clock.clone());
        let gate = limits.new_gate();
        limits.close_gate(&gate, &host(), Duration::from_secs(5));
        limits.pass(&gate, &Stop::default()).unwrap();
        let slept = clock.sleeps()[0];
        // Up to a tenth of the wait (0.5 s) more, never less.
        assert!(slept >= Duration::from_secs(5), "{slept:?}");
        assert!(slept <= Duration::from_millis(5500), "{slept:?}");
    }

    #[test]
    fn a_gate_past_the_deadline_ends_the_request_at_once() {
        let limits = Limits::new(None, None, Duration::ZERO, Arc::new(ManualClock::default()));
        let gate = limits.new_gate();
        limits.close_gate(&gate, &host(), Duration::from_secs(60));
        let stop = Stop {
            deadline: crate::clock::after(Instant::now(), Duration::from_secs(1)),
            cancel: None,
        };
        assert_eq!(
            limits.pass(&gate, &stop).err(),
            Some(ErrorKind::DeadlineExceeded)
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
        let gate = limits.new_gate();
        let started = Instant::now();
        let waits: Vec<bool> = (0..4)
            .map(|_| {
                limits
                    .pass(&gate, &Stop::default())
                    .unwrap()
                    .waited
                    .is_some()
            })
            .collect();
        assert_eq!(waits, [false, false, true, true]);
        // Two waits of ~100 ms each at 10 per second; a lower bound only.
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[test]
    fn the_concurrency_cap_holds_requests_until_a_slot_frees() {
        let limits = Limits::new(None, Some(1), Duration::ZERO, SystemClock::shared());
        let gate = limits.new_gate();
        std::thread::scope(|scope| {
            let first = limits.pass(&gate, &Stop::default()).unwrap();
            let waiter = scope.spawn(|| limits.pass(&gate, &Stop::default()).unwrap().waited);
            std::thread::sleep(Duration::from_millis(30));
            assert!(
                !waiter.is_finished(),
                "the second request got a slot while the first held it"
            );
            drop(first.slot);
            assert!(waiter.join().unwrap().is_some());
        });
        assert!(gate.is_idle(Duration::ZERO), "every slot was given back");
    }
}
