//! The closing summary: two lines on standard error for people, and the
//! same figures as JSON (`--summary-json FILE`) for scripts.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use parfetch::{BatchStats, ErrorKind, Stats};
use serde::Serialize;

/// Results counted by outcome.
#[derive(Default)]
pub(crate) struct Summary {
    ok: u64,
    failed: BTreeMap<String, u64>,
}

/// The summary's figures, as `--summary-json` writes them.
#[derive(Serialize)]
pub(crate) struct Figures {
    urls: u64,
    ok: u64,
    failed: u64,
    /// Failures by kind (`ErrorKind` names).
    failures: BTreeMap<String, u64>,
    seconds: f64,
    per_second: f64,
    retries: u64,
    bytes: u64,
    connections_opened: u64,
    /// The share of attempts on a pooled connection, 0 to 1.
    connection_reuse: f64,
    latency_ms: LatencyMs,
    interrupted: bool,
}

#[derive(Serialize)]
struct LatencyMs {
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

impl Summary {
    pub(crate) fn add(&mut self, failure: Option<ErrorKind>) {
        match failure {
            None => self.ok += 1,
            Some(kind) => *self.failed.entry(format!("{kind:?}")).or_default() += 1,
        }
    }

    pub(crate) fn failed(&self) -> u64 {
        self.failed.values().sum()
    }

    /// The figures of the run: this batch's, and the connections of the
    /// fetcher that ran it.
    pub(crate) fn figures(
        &self,
        batch: &BatchStats,
        fetcher: &Stats,
        interrupted: bool,
    ) -> Figures {
        let ms = |d: Duration| (d.as_secs_f64() * 1e4).round() / 10.0;
        let latency = &batch.stats.latency;
        Figures {
            urls: self.ok + self.failed(),
            ok: self.ok,
            failed: self.failed(),
            failures: self.failed.clone(),
            seconds: (batch.elapsed.as_secs_f64() * 1e3).round() / 1e3,
            per_second: batch.requests_per_second().round(),
            retries: batch.stats.retries,
            bytes: batch.stats.bytes_received,
            connections_opened: fetcher.connections_opened,
            connection_reuse: (fetcher.reuse_ratio() * 1e3).round() / 1e3,
            latency_ms: LatencyMs {
                p50: ms(latency.p50),
                p95: ms(latency.p95),
                p99: ms(latency.p99),
                max: ms(latency.max),
            },
            interrupted,
        }
    }
}

impl Figures {
    /// E.g.
    /// `parfetch: 3000 URLs in 2.31 s (1299/s): 2990 ok, 10 failed (NotFound 7, Timeout 3)`
    /// `  latency p50 21.6 ms · p95 22.4 ms · max 23.8 ms · retries 3 · connections 32 (98.9% reuse)`
    /// with the counts in colour when `color`.
    pub(crate) fn render(&self, color: bool) -> String {
        let paint = |code: &str, text: String| {
            if color {
                format!("\x1b[{code}m{text}\x1b[0m")
            } else {
                text
            }
        };
        let mut text = format!(
            "parfetch: {} URLs in {:.2} s ({:.0}/s): {}, {}",
            self.urls,
            self.seconds,
            self.per_second,
            paint("32", format!("{} ok", self.ok)),
            if self.failed == 0 {
                "0 failed".to_owned()
            } else {
                paint("31", format!("{} failed", self.failed))
            },
        );
        if !self.failures.is_empty() {
            let kinds: Vec<String> = self
                .failures
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            let _ = write!(text, " ({})", kinds.join(", "));
        }
        if self.interrupted {
            text.push_str(", interrupted");
        }
        let _ = write!(
            text,
            "\n  latency p50 {:.1} ms · p95 {:.1} ms · max {:.1} ms · retries {} · connections {} \
             ({:.1}% reuse)",
            self.latency_ms.p50,
            self.latency_ms.p95,
            self.latency_ms.max,
            self.retries,
            self.connections_opened,
            self.connection_reuse * 100.0,
        );
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Figures {
        let mut summary = Summary::default();
        for _ in 0..2990 {
            summary.add(None);
        }
        for kind in [ErrorKind::NotFound; 7]
            .into_iter()
            .chain([ErrorKind::Timeout; 3])
        {
            summary.add(Some(kind));
        }
        Figures {
            latency_ms: LatencyMs {
                p50: 21.6,
                p95: 22.4,
                p99: 23.1,
                max: 23.8,
            },
            seconds: 2.31,
            per_second: 1299.0,
            retries: 3,
            connections_opened: 32,
            connection_reuse: 0.989,
            ..summary.figures(&BatchStats::default(), &Stats::default(), false)
        }
    }

    #[test]
    fn the_summary_reads_well() {
        let text = figures().render(false);
        assert_eq!(
            text,
            "parfetch: 3000 URLs in 2.31 s (1299/s): 2990 ok, 10 failed (NotFound 7, Timeout 3)\n  \
             latency p50 21.6 ms · p95 22.4 ms · max 23.8 ms · retries 3 · connections 32 \
             (98.9% reuse)"
        );
        assert!(!text.contains('\x1b'));
        assert!(figures().render(true).contains("\x1b[31m10 failed\x1b[0m"));
        let json = serde_json::to_value(figures()).unwrap();
        assert_eq!(json["failures"]["NotFound"], 7);
        assert_eq!(json["latency_ms"]["p50"], 21.6);
    }
}
