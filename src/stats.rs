//! What a fetcher has done: counters and a latency histogram.
//!
//! Worker threads record into plain atomics (no lock), and a
//! [`Stats`] snapshot is put together only when someone asks. Latency goes into
//! a fixed log-linear histogram (16 buckets per power of two, so percentiles
//! are within about 6%), which costs one atomic add per request and no
//! allocation, however long the fetcher lives.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::error::ErrorKind;

/// A snapshot of a fetcher's counters since it was built.
///
/// Returned by [`Fetcher::stats`](crate::Fetcher::stats); clones of a fetcher
/// share one set of counters.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Stats {
    /// Requests finished (one per result handed back).
    pub requests: u64,
    /// HTTP exchanges started, retries included.
    pub attempts: u64,
    /// Attempts that were retries of a failed attempt.
    pub retries: u64,
    /// Requests that ended in success.
    pub successes: u64,
    /// Requests that ended in an error.
    pub failures: u64,
    /// Response body bytes received (after decompression).
    pub bytes_received: u64,
    /// New connections opened (TCP connects), as opposed to reused ones.
    pub connections_opened: u64,
    /// Requests resent at once because their pooled connection turned out to
    /// have been closed by the server while idle (not counted as retries).
    pub stale_connections: u64,
    /// Requests served from the cache without asking the server.
    pub cache_hits: u64,
    /// Requests the cache had nothing usable for.
    pub cache_misses: u64,
    /// Stale cache entries the server confirmed (304 Not Modified).
    pub revalidations: u64,
    /// Body bytes served from the cache (hits and revalidations).
    pub cache_bytes: u64,
    /// Times a request waited at a host's gate: its Retry-After pause, its
    /// rate limit or its concurrency cap.
    pub gate_waits: u64,
    /// Time requests spent waiting at gates, summed over requests.
    pub gate_wait_time: Duration,
    /// Latency of finished requests, from the first attempt to the result.
    pub latency: Latency,
    failures_by_kind: [u64; ErrorKind::ALL.len()],
}

/// Request latency percentiles (zero when no request has finished).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Latency {
    /// The median.
    pub p50: Duration,
    /// The 95th percentile.
    pub p95: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// The slowest request.
    pub max: Duration,
}

impl Stats {
    /// How many requests ended with an error of `kind`.
    pub fn failures_of(&self, kind: ErrorKind) -> u64 {
        self.failures_by_kind[kind.index()]
    }

    /// The share of attempts that reused a pooled connection:
    /// `1 - connections_opened / attempts`, or 0 before any attempt.
    pub fn reuse_ratio(&self) -> f64 {
        if self.attempts == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let ratio = 1.0 - self.connections_opened as f64 / self.attempts as f64;
        ratio.max(0.0)
    }
}

/// Sub-buckets per power of two.
const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
/// Enough buckets for latencies up to 2^44 µs (about 200 days).
const BUCKETS: usize = SUB + (44 - SUB_BITS as usize) * SUB;

/// The live counters, shared by all clones of a fetcher.
#[derive(Debug)]
pub(crate) struct Recorder {
    requests: AtomicU64,
    attempts: AtomicU64,
    retries: AtomicU64,
    successes: AtomicU64,
    bytes_received: AtomicU64,
    connections_opened: AtomicU64,
    stale_connections: AtomicU64,
    gate_waits: AtomicU64,
    gate_wait_us: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    revalidations: AtomicU64,
    cache_bytes: AtomicU64,
    failures_by_kind: [AtomicU64; ErrorKind::ALL.len()],
    latency_us: Box<[AtomicU64; BUCKETS]>,
}

impl Default for Recorder {
    fn default() -> Recorder {
        Recorder {
            requests: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            successes: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            connections_opened: AtomicU64::new(0),
            stale_connections: AtomicU64::new(0),
            gate_waits: AtomicU64::new(0),
            gate_wait_us: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            revalidations: AtomicU64::new(0),
            cache_bytes: AtomicU64::new(0),
            failures_by_kind: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_us: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl Recorder {
    pub(crate) fn attempt(&self, retry: bool) {
        add(&self.attempts, 1);
        if retry {
            add(&self.retries, 1);
        }
    }

    pub(crate) fn stale_connection(&self) {
        add(&self.stale_connections, 1);
    }

    pub(crate) fn connection_opened(&self) {
        add(&self.connections_opened, 1);
    }

    pub(crate) fn gate_wait(&self, waited: Duration) {
        add(&self.gate_waits, 1);
        add(
            &self.gate_wait_us,
            u64::try_from(waited.as_micros()).unwrap_or(u64::MAX),
        );
    }

    /// A body of `n` bytes served from the cache; `revalidated` if the
    /// server had to confirm it first.
    pub(crate) fn cache_served(&self, n: usize, revalidated: bool) {
        add(
            if revalidated {
                &self.revalidations
            } else {
                &self.cache_hits
            },
            1,
        );
        add(&self.cache_bytes, n as u64);
    }

    pub(crate) fn cache_miss(&self) {
        add(&self.cache_misses, 1);
    }

    pub(crate) fn bytes(&self, n: usize) {
        add(&self.bytes_received, n as u64);
    }

    /// A request finished after `elapsed`, with an error of `failed` or not.
    pub(crate) fn finished(&self, elapsed: Duration, failed: Option<ErrorKind>) {
        add(&self.requests, 1);
        match failed {
            None => add(&self.successes, 1),
            Some(kind) => add(&self.failures_by_kind[kind.index()], 1),
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        add(&self.latency_us[bucket_of(micros)], 1);
    }

    pub(crate) fn snapshot(&self) -> Stats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let failures_by_kind = std::array::from_fn(|i| load(&self.failures_by_kind[i]));
        let histogram: Vec<u64> = self.latency_us.iter().map(load).collect();
        Stats {
            requests: load(&self.requests),
            attempts: load(&self.attempts),
            retries: load(&self.retries),
            successes: load(&self.successes),
            failures: failures_by_kind.iter().sum(),
            bytes_received: load(&self.bytes_received),
            connections_opened: load(&self.connections_opened),
            stale_connections: load(&self.stale_connections),
            gate_waits: load(&self.gate_waits),
            gate_wait_time: Duration::from_micros(load(&self.gate_wait_us)),
            cache_hits: load(&self.cache_hits),
            cache_misses: load(&self.cache_misses),
            revalidations: load(&self.revalidations),
            cache_bytes: load(&self.cache_bytes),
            latency: Latency {
                p50: percentile(&histogram, 0.50),
                p95: percentile(&histogram, 0.95),
                p99: percentile(&histogram, 0.99),
                max: percentile(&histogram, 1.0),
            },
            failures_by_kind,
        }
    }
}

/// The histogram bucket of a latency in microseconds.
fn bucket_of(micros: u64) -> usize {
    if micros < SUB as u64 {
        return usize::try_from(micros).unwrap_or(0);
    }
    let exponent = micros.ilog2(); // at least SUB_BITS
    let shift = exponent - SUB_BITS;
    let sub = usize::try_from((micros >> shift) & (SUB as u64 - 1)).unwrap_or(0);
    (SUB + shift as usize * SUB + sub).min(BUCKETS - 1)
}

/// The largest latency (µs) that falls in `bucket`.
fn bucket_upper(bucket: usize) -> u64 {
    if bucket < SUB {
        return bucket as u64;
    }
    let shift = u32::try_from((bucket - SUB) / SUB).unwrap_or(u32::MAX);
    let sub = ((bucket - SUB) % SUB) as u64;
    ((SUB as u64 + sub + 1) << shift) - 1
}

fn percentile(histogram: &[u64], quantile: f64) -> Duration {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )] // a rank between 1 and total
    let rank = ((quantile * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (bucket, count) in histogram.iter().enumerate() {
        seen += count;
        if seen >= rank {
            return Duration::from_micros(bucket_upper(bucket));
        }
    }
    Duration::ZERO
}

#[cfg(test)]
#[allow(clippy::cast_precision_loss)] // small numbers
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_within_six_percent() {
        for micros in [
            0, 1, 15, 16, 17, 31, 32, 100, 1_000, 20_000, 1_234_567, 60_000_000,
        ] {
            let bucket = bucket_of(micros);
            let upper = bucket_upper(bucket);
            assert!(upper >= micros, "{micros} -> {upper}");
            assert!(
                upper as f64 <= micros as f64 * 1.0625 + 1.0,
                "{micros} -> {upper}"
            );
            if bucket > 0 {
                assert!(bucket_upper(bucket - 1) < micros, "{micros}");
            }
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles() {
        let recorder = Recorder::default();
        for ms in 1..=100 {
            recorder.finished(Duration::from_millis(ms), None);
        }
        recorder.finished(Duration::from_secs(5), Some(ErrorKind::Timeout));
        let stats = recorder.snapshot();
        let near = |got: Duration, want_ms: u64| {
            let want = Duration::from_millis(want_ms);
            assert!(
                got >= want && got <= want.mul_f64(1.07),
                "{got:?} vs {want:?}"
            );
        };
        near(stats.latency.p50, 51);
        near(stats.latency.p95, 96);
        near(stats.latency.p99, 100);
        near(stats.latency.max, 5000);
        assert_eq!(
            (stats.requests, stats.successes, stats.failures),
            (101, 100, 1)
        );
        assert_eq!(stats.failures_of(ErrorKind::Timeout), 1);
        assert_eq!(stats.failures_of(ErrorKind::Network), 0);
    }

    #[test]
    fn reuse_ratio() {
        let recorder = Recorder::default();
        assert!(recorder.snapshot().reuse_ratio().abs() < f64::EPSILON);
        for _ in 0..100 {
            recorder.attempt(false);
        }
        for _ in 0..4 {
            recorder.connection_opened();
        }
        assert!((recorder.snapshot().reuse_ratio() - 0.96).abs() < 1e-9);
    }
}
