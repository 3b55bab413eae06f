//! Every host a fetcher knows of: one record per origin, found without a
//! lock, forgotten when idle.
//!
//! A crawl touches tens of thousands of hosts, once each, so the table must
//! neither copy itself per new host nor grow without end:
//!
//! - **The table** is `papaya`'s concurrent map: a lookup takes no lock, and
//!   an insert costs the same with 100,000 hosts as with 10. (Measured
//!   against `scc` and a copy-on-write map: see docs/performance.md.) A
//!   request holds its host's record (an `Arc`) for the attempt, so that
//!   what the attempt ends with reaches the record the attempt started
//!   with, even if the table let it go meanwhile.
//! - **Eviction.** A record unused for [`IDLE`] is removed by the next
//!   sweep, which runs when a new host is added, at most every [`SWEEP`].
//!   A record with a request in flight, an open breaker or a pause is kept
//!   (`Host::is_settled`), and with a rate limit, a record lives at least
//!   as long as its allowance takes to fill up again. So the table holds
//!   about the hosts used in the last `IDLE + SWEEP` (20 s), plus the
//!   paused and broken ones.
//! - **The hot path writes little that is shared**: the record's reference
//!   count and its requests in flight, and the last-use time at most once a
//!   second per host.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Governor, Host};
use crate::origin::{Origin, OriginRef};

/// How long a host's record outlives its last use. Short, because a crawl
/// uses most hosts once: at 1,500 new hosts a second, a minute would keep
/// 90,000 records that nothing will read again. Nothing is lost by it: a
/// record with something to remember is kept (see `Host::is_settled`).
pub(crate) const IDLE: Duration = Duration::from_secs(15);

/// The least time between two sweeps of the table.
pub(crate) const SWEEP: Duration = Duration::from_secs(5);

/// Every host a fetcher knows of.
pub(crate) struct Hosts {
    map: papaya::HashMap<Origin, Arc<Host>>,
    governor: Arc<Governor>,
    /// How long a record outlives its last use: [`IDLE`], or longer.
    idle_for: Duration,
    /// The clock's seconds at the last sweep.
    last_sweep_s: AtomicU64,
}

impl Hosts {
    /// An empty table, whose records `governor` makes and judges.
    pub(crate) fn new(governor: Arc<Governor>) -> Hosts {
        let idle_for = governor.remembers_for().max(IDLE);
        Hosts {
            map: papaya::HashMap::new(),
            governor,
            idle_for,
            last_sweep_s: AtomicU64::new(0),
        }
    }

    /// A table for a unit test: a fetcher's default rules, the real clock.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Hosts {
        use super::{BreakerSettings, GovernorSettings, LimitSettings};
        let settings = GovernorSettings {
            limit: LimitSettings {
                ceiling: 20,
                adaptive: false,
            },
            breaker: BreakerSettings {
                threshold: 5,
                longest: Duration::from_secs(60),
                fail_fast: false,
            },
            rate: None,
            longest_pause: Duration::from_secs(300),
        };
        let clock = crate::clock::SystemClock::shared();
        Hosts::new(Arc::new(Governor::new(settings, clock)))
    }

    /// The record of `origin`, made if the host is new; a use of it.
    pub(crate) fn get(&self, origin: &OriginRef<'_>) -> Arc<Host> {
        let guard = self.map.guard();
        let now = self.governor.now();
        if let Some(host) = self.map.get(origin, &guard) {
            host.touch(now);
            return Arc::clone(host);
        }
        self.sweep(now);
        let new = Arc::new(self.governor.new_host(origin.to_origin()));
        new.touch(now);
        Arc::clone(self.map.get_or_insert(origin.to_origin(), new, &guard))
    }

    /// Runs `f` on `origin`'s record if there is one.
    pub(crate) fn with_existing<R>(
        &self,
        origin: &OriginRef<'_>,
        f: impl FnOnce(&Host) -> R,
    ) -> Option<R> {
        let guard = self.map.guard();
        self.map.get(origin, &guard).map(|host| f(host))
    }

    /// Calls `f` on every record.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Host)) {
        let guard = self.map.guard();
        for host in self.map.values(&guard) {
            f(host);
        }
    }

    /// How many hosts the table holds.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Removes idle records, if the last sweep was at least [`SWEEP`] ago.
    fn sweep(&self, now: Duration) {
        let now_s = now.as_secs();
        let last = self.last_sweep_s.load(Ordering::Relaxed);
        if now_s.saturating_sub(last) < SWEEP.as_secs() {
            return;
        }
        // One thread sweeps; the others go on.
        if self
            .last_sweep_s
            .compare_exchange(last, now_s, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let guard = self.map.guard();
        self.map.retain(
            |_, host| {
                let idle = now.saturating_sub(host.last_used()) >= self.idle_for;
                !(idle && host.is_settled(now) && Arc::strong_count(host) == 1)
            },
            &guard,
        );
    }
}

impl fmt::Debug for Hosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hosts")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Admission, Answer, BreakerSettings, GovernorSettings, LimitSettings};
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn governor(clock: &Arc<ManualClock>) -> Arc<Governor> {
        let settings = GovernorSettings {
            limit: LimitSettings {
                ceiling: 4,
                adaptive: false,
            },
            breaker: BreakerSettings {
                threshold: 1,
                longest: Duration::from_secs(60),
                fail_fast: false,
            },
            rate: None,
            longest_pause: Duration::from_secs(600),
        };
        Arc::new(Governor::new(settings, clock.clone()))
    }

    fn origin(url: &str) -> OriginRef<'_> {
        OriginRef::of_url(url).unwrap()
    }

    #[test]
    fn idle_records_are_swept_and_busy_ones_kept() {
        let clock = Arc::new(ManualClock::default());
        let governor = governor(&clock);
        let hosts = Hosts::new(Arc::clone(&governor));
        for i in 0..100 {
            let url = format!("http://h{i}/");
            hosts.get(&origin(&url));
        }
        // h7 refuses one request at a time, asking for 600 s: paused.
        let paused = hosts.get(&origin("http://h7/"));
        let Admission::Go(permit) = governor.admit(&paused, true, false) else {
            panic!("not admitted");
        };
        let asked = Some(Duration::from_secs(600));
        permit.report(
            &governor,
            Answer::Throttled { retry_after: asked },
            String::new,
        );
        assert!(paused.paused_until(clock.now()).is_some());
        drop(paused);
        // h8 has a request in flight, held by its permit.
        let busy = hosts.get(&origin("http://h8/"));
        let Admission::Go(in_flight) = governor.admit(&busy, true, false) else {
            panic!("not admitted");
        };
        drop(busy);
        assert_eq!(hosts.len(), 100);
        // Used just now: a new host's sweep keeps them all.
        clock.advance(SWEEP);
        hosts.get(&origin("http://new/"));
        assert_eq!(hosts.len(), 101);
        // Idle long enough: all go but the paused, the busy and the newest.
        clock.advance(IDLE);
        hosts.get(&origin("http://new/"));
        hosts.get(&origin("http://newer/"));
        assert_eq!(hosts.len(), 4);
        assert!(hosts.with_existing(&origin("http://h7/"), |_| ()).is_some());
        assert!(hosts.with_existing(&origin("http://h8/"), |_| ()).is_some());
        // The pause over and the request done, they go at the next sweep.
        drop(in_flight);
        clock.advance(Duration::from_secs(600));
        hosts.get(&origin("http://newest/"));
        assert!(hosts.with_existing(&origin("http://h7/"), |_| ()).is_none());
        assert!(hosts.with_existing(&origin("http://h8/"), |_| ()).is_none());
    }
}
