//! Time as a seam.
//!
//! The retry loop sleeps and the circuit breaker reads the time; both go
//! through [`Clock`] so unit tests can check exact delay sequences and breaker
//! transitions without sleeping for real.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest duration parfetch works with: a century. A setting or a
/// server's value beyond it means "no limit in practice", and capping it
/// keeps every `Instant`, `SystemTime` and `Duration` sum far from overflow.
pub(crate) const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `duration`, at most [`FOREVER`].
pub(crate) fn capped(duration: Duration) -> Duration {
    duration.min(FOREVER)
}

/// `duration` after `start`, or `None` if that is past what `Instant` can
/// hold (as good as never).
pub(crate) fn after(start: Instant, duration: Duration) -> Option<Instant> {
    start.checked_add(duration)
}

/// `duration` in nanoseconds, as an atomic holds it: saturating (past
/// 584 years, which no value reaches once [`capped`]).
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A source of monotonic time and a way to wait.
pub(crate) trait Clock: Send + Sync + fmt::Debug {
    /// Time elapsed since some fixed point (the clock's creation).
    fn now(&self) -> Duration;
    /// Blocks the calling thread for `duration`.
    fn sleep(&self, duration: Duration);
    /// Whether time passes while a thread waits on something else (a
    /// condition variable); a test's manual clock moves only when slept on.
    fn moves_by_itself(&self) -> bool {
        true
    }
}

/// The real clock: `Instant` and `thread::sleep`.
#[derive(Debug)]
pub(crate) struct SystemClock {
    start: Instant,
}

impl SystemClock {
    pub(crate) fn shared() -> Arc<dyn Clock> {
        Arc::new(SystemClock {
            start: Instant::now(),
        })
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

#[cfg(test)]
pub(crate) use manual::ManualClock;

#[cfg(test)]
mod manual {
    use super::{Clock, Duration};
    use parking_lot::Mutex;

    /// A clock that moves only when told to, or when something sleeps on it;
    /// it records every sleep so tests can check delay sequences.
    #[derive(Debug, Default)]
    pub(crate) struct ManualClock {
        state: Mutex<(Duration, Vec<Duration>)>,
    }

    impl ManualClock {
        pub(crate) fn advance(&self, by: Duration) {
            self.state.lock().0 += by;
        }

        pub(crate) fn sleeps(&self) -> Vec<Duration> {
            self.state.lock().1.clone()
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Duration {
            self.state.lock().0
        }

        fn sleep(&self, duration: Duration) {
            let mut state = self.state.lock();
            state.0 += duration;
            state.1.push(duration);
        }

        fn moves_by_itself(&self) -> bool {
            false
        }
    }
}
