//! The retry budget of a host: during an outage, retries are at most a
//! share of the host's recent requests.
//!
//! Each request may be retried a few times (`max_retries`), so a host that
//! fails everything would receive four times its load just when it can
//! least take it. A budget caps what retries add, across the host's
//! requests, as Finagle's `RetryBudget`, gRPC's retry throttling and
//! tower's `TpsBudget` do: over the last [`WINDOW`], retries may be at
//! most [`SHARE`] of the first attempts, plus a floor of [`FLOOR`] per
//! second so that a quiet host can still retry a few. A request that may
//! not retry ends with its own last failure.
//!
//! A wait the server asked for (Retry-After on a 429 or 503) is not drawn
//! from the budget: the server has said when to come back, and the wait
//! is its own throttle.

use std::time::Duration;

/// How long a request counts towards the budget.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// The share of first attempts that may be retried: 20%, as Finagle and
/// tower default to.
pub(crate) const SHARE: f64 = 0.2;

/// Retries allowed per second whatever the traffic (Finagle's and tower's
/// default).
pub(crate) const FLOOR: u32 = 10;

/// Per-second slots of the window.
const SLOTS: usize = 10;

/// One host's first attempts and retries, per second of the window.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// (first attempts, retries) per second, by second modulo the slots.
    slots: [(u32, u32); SLOTS],
    /// The second (of the clock) the newest slot is for.
    newest_s: u64,
}

impl Budget {
    /// A first attempt was sent at `now` (the clock's time).
    pub(crate) fn deposit(&mut self, now: Duration) {
        let slot = self.slot(now);
        slot.0 = slot.0.saturating_add(1);
    }

    /// Takes a retry out of the budget, if there is room for one at `now`.
    pub(crate) fn withdraw(&mut self, now: Duration) -> bool {
        self.slot(now);
        let (firsts, retries) = self
            .slots
            .iter()
            .fold((0u64, 0u64), |(f, r), &(first, retry)| {
                (f + u64::from(first), r + u64::from(retry))
            });
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let allowed = f64::from(FLOOR) * WINDOW.as_secs_f64() + SHARE * firsts as f64;
        #[allow(clippy::cast_precision_loss)]
        if (retries + 1) as f64 > allowed {
            return false;
        }
        let slot = self.slot(now);
        slot.1 = slot.1.saturating_add(1);
        true
    }

    /// The slot of `now`, the slots of seconds past the window emptied.
    fn slot(&mut self, now: Duration) -> &mut (u32, u32) {
        let second = now.as_secs();
        if second > self.newest_s {
            let passed = second - self.newest_s;
            let clear = usize::try_from(passed).unwrap_or(SLOTS).min(SLOTS);
            for step in 1..=clear {
                let index = (self.newest_s + step as u64) % SLOTS as u64;
                self.slots[usize::try_from(index).unwrap_or(0)] = (0, 0);
            }
            self.newest_s = second;
        }
        // A time before the newest slot (another thread's clock reading,
        // a moment older) counts in the newest.
        let index = self.newest_s % SLOTS as u64;
        &mut self.slots[usize::try_from(index).unwrap_or(0)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn a_quiet_host_gets_the_floor() {
        let mut budget = Budget::default();
        let allowed = (0..200).filter(|_| budget.withdraw(secs(100))).count();
        assert_eq!(allowed, 100, "10 per second over 10 s");
    }

    #[test]
    fn a_busy_host_adds_a_fifth_of_its_requests() {
        let mut budget = Budget::default();
        for _ in 0..1000 {
            budget.deposit(secs(100));
        }
        let allowed = (0..1000).filter(|_| budget.withdraw(secs(100))).count();
        assert_eq!(allowed, 300, "the floor's 100 and a fifth of 1000");
    }

    #[test]
    fn requests_older_than_the_window_no_longer_count() {
        let mut budget = Budget::default();
        for _ in 0..1000 {
            budget.deposit(secs(100));
        }
        assert_eq!(
            (0..1000).filter(|_| budget.withdraw(secs(100))).count(),
            300
        );
        assert!(!budget.withdraw(secs(109)), "still within the window");
        assert_eq!(
            (0..1000).filter(|_| budget.withdraw(secs(110))).count(),
            100,
            "a new window: the floor again"
        );
        // Far later, everything has gone.
        assert_eq!(
            (0..1000).filter(|_| budget.withdraw(secs(100_000))).count(),
            100
        );
    }
}
