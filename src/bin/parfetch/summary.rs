//! The closing summary on standard error.

use std::collections::BTreeMap;
use std::fmt::Write;

use parfetch::{BatchStats, ErrorKind, Stats};

/// Results counted by outcome.
#[derive(Default)]
pub(crate) struct Summary {
    ok: u64,
    failed: BTreeMap<String, u64>,
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

    /// E.g. `1000 URLs in 2.31 s (433/s): 990 ok, 10 failed (NotFound 7, Timeout 3)`
    /// and a second line of retries, connections and latency.
    pub(crate) fn render(&self, batch: &BatchStats, fetcher: &Stats) -> String {
        let mut text = format!(
            "parfetch: {} URLs in {:.2} s ({:.0}/s): {} ok, {} failed",
            self.ok + self.failed(),
            batch.elapsed.as_secs_f64(),
            batch.requests_per_second(),
            self.ok,
            self.failed()
        );
        if !self.failed.is_empty() {
            let kinds: Vec<String> = self
                .failed
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            let _ = write!(text, " ({})", kinds.join(", "));
        }
        let _ = write!(
            text,
            "\n  retries {}, connections opened {} (reuse {:.1}%), latency p50 {:.1} ms, p95 {:.1} ms",
            batch.stats.retries,
            fetcher.connections_opened,
            fetcher.reuse_ratio() * 100.0,
            batch.stats.latency.p50.as_secs_f64() * 1000.0,
            batch.stats.latency.p95.as_secs_f64() * 1000.0
        );
        text
    }
}
