//! A rate limit per host (optional): at most `n` requests per second, with
//! a burst.
//!
//! `governor`'s GCRA limiter, run on the fetcher's own clock (so that the
//! rules are tested without sleeping, and without governor's `std`
//! feature, which brought a futures stack of a dozen crates for a clock).
//! A request that must wait is told for how long, and waits as any other
//! request held back by its host: set aside, its thread free for others.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::clock::Clock;

/// A rate: requests per second, and how many may go at once after a quiet
/// spell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RateSettings {
    pub(crate) per_second: NonZeroU32,
    pub(crate) burst: NonZeroU32,
}

impl RateSettings {
    fn quota(self) -> Quota {
        Quota::per_second(self.per_second).allow_burst(self.burst)
    }

    /// How long a drained allowance takes to fill up again.
    pub(crate) fn refill(self) -> Duration {
        self.quota().burst_size_replenished_in()
    }
}

/// The fetcher's clock as governor reads it: its time since it started.
#[derive(Clone, Debug)]
struct Time(Arc<dyn Clock>);

impl GovernorClock for Time {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.0.now()
    }
}

/// One host's allowance.
#[derive(Debug)]
pub(crate) struct Rate {
    limiter: RateLimiter<NotKeyed, InMemoryState, Time, NoOpMiddleware<Duration>>,
}

impl Rate {
    /// A full allowance for `settings`, on `clock`.
    pub(crate) fn new(settings: RateSettings, clock: Arc<dyn Clock>) -> Rate {
        Rate {
            limiter: RateLimiter::direct_with_clock(settings.quota(), Time(clock)),
        }
    }

    /// Takes one request's place in the allowance, or says how long until
    /// one is free (`now` is the clock's time).
    pub(crate) fn take(&self, now: Duration) -> Result<(), Duration> {
        self.limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn a_burst_then_evenly_spaced() {
        let clock = Arc::new(ManualClock::default());
        let settings = RateSettings {
            per_second: NonZeroU32::new(10).unwrap(),
            burst: NonZeroU32::new(2).unwrap(),
        };
        let rate = Rate::new(settings, clock.clone());
        assert_eq!(rate.take(clock.now()), Ok(()));
        assert_eq!(rate.take(clock.now()), Ok(()));
        assert_eq!(rate.take(clock.now()), Err(Duration::from_millis(100)));
        clock.advance(Duration::from_millis(60));
        assert_eq!(rate.take(clock.now()), Err(Duration::from_millis(40)));
        clock.advance(Duration::from_millis(40));
        assert_eq!(rate.take(clock.now()), Ok(()));
        assert_eq!(rate.take(clock.now()), Err(Duration::from_millis(100)));
        assert_eq!(settings.refill(), Duration::from_millis(200));
    }
}
