//! What a fetcher knows of each host, in one record per host.
//!
//! A host is an origin: scheme, lower-cased name and effective port
//! ([`Origin`]; `http://Cdn.Example/x` and `http://cdn.example:80/y` are one
//! host, `https://cdn.example/` another). Every per-host rule keys on it: the
//! circuit breaker (`breaker.rs`), the Retry-After gate, the rate limit and
//! the cap on requests in flight (`limit.rs`), and the resolved addresses
//! (`agent.rs`) all live in the host's [`Host`] record, found with one lookup
//! per attempt.
//!
//! A crawl touches tens of thousands of hosts, once each, so the table must
//! neither copy itself per new host nor grow without end:
//!
//! - **The table** is `papaya`'s concurrent map: a lookup takes no lock and
//!   writes nothing shared (no reference count: the record is borrowed for
//!   the attempt, under an epoch guard), and an insert costs the same with
//!   100,000 hosts as with 10. (Measured against `scc` and a copy-on-write
//!   map: see the README.)
//! - **Eviction.** A record unused for [`IDLE`] is removed by the next
//!   sweep, which runs when a new host is added, at most every [`SWEEP`].
//!   An attempt counts as a use until the latest it can end (its timeout:
//!   a 30 s attempt on a stalling host must find its record to count its
//!   failure), and a record whose breaker is open, or whose host asked
//!   for a pause, is kept until that ends. So the table holds about the hosts used in the
//!   last `IDLE + SWEEP` (20 s), plus the paused and broken ones; a record
//!   is about 170 bytes.
//! - **The hot path writes nothing shared**: the last-use time is written
//!   at most once a second per host.

use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use ureq::unversioned::resolver::ResolvedSocketAddrs;

use crate::clock::Clock;
use crate::origin::{Origin, OriginRef};
use crate::policy::breaker::BreakerCell;
use crate::policy::limit::Gate;

/// How long a host's record outlives its last use. Short, because a crawl
/// uses most hosts once: at 1,500 new hosts a second, a minute would keep
/// 90,000 records (14 MB) that nothing will read again. Nothing is lost by
/// it: a record with failures to count, an open breaker or a pause is kept
/// (see `Host::is_idle`), and with a rate limit, a record lives at least as
/// long as its allowance takes to fill up again.
pub(crate) const IDLE: Duration = Duration::from_secs(15);

/// The least time between two sweeps of the table.
pub(crate) const SWEEP: Duration = Duration::from_secs(5);

/// One host's state: everything a per-host rule needs.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) key: Origin,
    pub(crate) breaker: BreakerCell,
    pub(crate) gate: Gate,
    /// The host name's addresses, when it is a name (not an IP) and was
    /// looked up.
    pub(crate) resolved: ArcSwapOption<Resolved>,
    /// Until when the record is in use, in whole seconds of the clock: its
    /// last use, or the end of the longest attempt under way.
    in_use_until_s: AtomicU32,
}

/// A host name's addresses, and when they were looked up: kept in its
/// record by the transport's resolver (`transport/agent.rs`).
#[derive(Debug)]
pub(crate) struct Resolved {
    pub(crate) at: Instant,
    pub(crate) addrs: ResolvedSocketAddrs,
}

/// Every host a fetcher knows of.
pub(crate) struct Hosts {
    map: papaya::HashMap<Origin, Host>,
    clock: Arc<dyn Clock>,
    /// How long breakers stay open: an open one is kept that long.
    breakers_open_for: Duration,
    /// How long a record outlives its last use: [`IDLE`], or longer.
    idle_for: Duration,
    /// Makes a new host's gate (its rate limiter, if there is a rate).
    new_gate: Box<dyn Fn() -> Gate + Send + Sync>,
    /// The clock's seconds at the last sweep.
    last_sweep_s: AtomicU64,
}

impl Host {
    /// Whether the record can go: unused for `IDLE` (no attempt under
    /// way), its breaker not open and its host not paused (as of `now`, the
    /// clock's time).
    fn is_idle(&self, now: Duration, idle_for: Duration, breakers_open_for: Duration) -> bool {
        let in_use_until =
            Duration::from_secs(u64::from(self.in_use_until_s.load(Ordering::Relaxed)));
        now.saturating_sub(in_use_until) >= idle_for
            && self.breaker.is_settled(now, breakers_open_for)
            && self.gate.is_idle(now)
    }
}

impl Hosts {
    /// An empty table; `new_gate` makes each new host's gate.
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        breakers_open_for: Duration,
        idle_for: Duration,
        new_gate: impl Fn() -> Gate + Send + Sync + 'static,
    ) -> Hosts {
        Hosts {
            map: papaya::HashMap::new(),
            clock,
            breakers_open_for,
            idle_for: idle_for.max(IDLE),
            new_gate: Box::new(new_gate),
            last_sweep_s: AtomicU64::new(0),
        }
    }

    /// Runs `f` on `key`'s record, made if the host is new. The record is
    /// borrowed, not counted: `f` is where it may be used.
    pub(crate) fn with<R>(&self, key: &OriginRef<'_>, f: impl FnOnce(&Host) -> R) -> R {
        self.with_for(key, Duration::ZERO, f)
    }

    /// [`with`](Hosts::with), for `f` that may take up to `busy_for` (an
    /// attempt): the record is kept at least that long, so that what the
    /// attempt ends with (a failure for the breaker) reaches a record still
    /// in the table.
    pub(crate) fn with_for<R>(
        &self,
        key: &OriginRef<'_>,
        busy_for: Duration,
        f: impl FnOnce(&Host) -> R,
    ) -> R {
        let guard = self.map.guard();
        let now = self.clock.now();
        let host = if let Some(host) = self.map.get(key, &guard) {
            host
        } else {
            self.sweep(now);
            let new = Host {
                key: key.to_origin(),
                breaker: BreakerCell::default(),
                gate: (self.new_gate)(),
                resolved: ArcSwapOption::empty(),
                in_use_until_s: AtomicU32::new(0),
            };
            self.map.get_or_insert(key.to_origin(), new, &guard)
        };
        host.touch(now.saturating_add(busy_for));
        f(host)
    }

    /// Runs `f` on `key`'s record if there is one.
    pub(crate) fn with_existing<R>(
        &self,
        key: &OriginRef<'_>,
        f: impl FnOnce(&Host) -> R,
    ) -> Option<R> {
        let guard = self.map.guard();
        self.map.get(key, &guard).map(f)
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
            |_, host| !host.is_idle(now, self.idle_for, self.breakers_open_for),
            &guard,
        );
    }
}

impl Host {
    /// Notes a use lasting `until`, writing only when that is a later
    /// second than known, so that threads sharing a host do not bounce its
    /// cache line (and never moving it back).
    fn touch(&self, until: Duration) {
        let until_s = u32::try_from(until.as_secs()).unwrap_or(u32::MAX);
        if self.in_use_until_s.load(Ordering::Relaxed) < until_s {
            self.in_use_until_s.fetch_max(until_s, Ordering::Relaxed);
        }
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
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn idle_records_are_swept_and_busy_ones_kept() {
        let clock = Arc::new(ManualClock::default());
        let hosts = Hosts::new(clock.clone(), Duration::from_secs(60), IDLE, Gate::default);
        for i in 0..100 {
            let url = format!("http://h{i}/");
            hosts.with(&OriginRef::of_url(&url).unwrap(), |_| ());
        }
        let paused = OriginRef::of_url("http://h7/").unwrap();
        hosts.with(&paused, |host| {
            host.gate.close(clock.now(), Duration::from_secs(600));
        });
        assert_eq!(hosts.len(), 100);
        // Used just now: a new host's sweep keeps them all.
        clock.advance(SWEEP);
        hosts.with(&OriginRef::of_url("http://new/").unwrap(), |_| ());
        assert_eq!(hosts.len(), 101);
        // Idle long enough: all go but the paused one and the newest.
        clock.advance(IDLE);
        let kept = OriginRef::of_url("http://new/").unwrap();
        hosts.with(&kept, |_| ());
        hosts.with(&OriginRef::of_url("http://newer/").unwrap(), |_| ());
        assert_eq!(hosts.len(), 3);
        assert!(hosts.with_existing(&paused, |_| ()).is_some());
        // Its pause over, the paused one goes at the next sweep.
        clock.advance(Duration::from_secs(600));
        hosts.with(&OriginRef::of_url("http://newest/").unwrap(), |_| ());
        assert!(hosts.with_existing(&paused, |_| ()).is_none());
    }
}
