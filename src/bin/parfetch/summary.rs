//! The closing summary: two lines on standard error for people, and the
//! same figures as JSON (`--summary-json FILE`) for scripts.
//!
//! The JSON file is what tells an orchestrator that a part is finished: it
//! is removed when a run starts and written when it ends (to a temporary
//! file, then renamed, after the output is on disk), so it is there, whole,
//! exactly when the last run over the part has ended; `complete` says
//! whether every URL of the part has its line.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use parfetch::{BatchStats, BreakerState, HostStats, Latency, Stats};
use serde::Serialize;

use crate::scheduler::Attempt;
use crate::shard::By;

/// Results counted by outcome, as their lines are written.
#[derive(Default)]
pub(crate) struct Summary {
    ok: u64,
    failed: BTreeMap<String, u64>,
    /// URLs the run stopped before finishing, left without a line for
    /// `--resume`.
    pub(crate) unfinished: u64,
}

/// What the run was over: its part of the list and the scheduler's
/// attempt, and what `--resume` found done.
#[derive(Default)]
pub(crate) struct Part {
    pub(crate) shard: Option<ShardFigures>,
    pub(crate) attempt: Option<Attempt>,
    pub(crate) skipped: u64,
    pub(crate) skipped_failed: u64,
    /// The file `--resume` read, to name in the summary line.
    pub(crate) resumed: Option<PathBuf>,
}

/// `--shard`, as the summary says it.
#[derive(Clone, Serialize)]
pub(crate) struct ShardFigures {
    pub(crate) index: usize,
    pub(crate) count: usize,
    pub(crate) by: By,
    /// The variable the index came from (`--shard auto`), or `null`.
    pub(crate) from: Option<&'static str>,
}

/// The summary's figures, as `--summary-json` writes them. The counters
/// are named as the library's [`Stats`] and [`BatchStats`] name them
/// (`requests`, `successes`, `failures`, `bytes_received`...), and those
/// that are the library's are its own values, serialised as it serialises
/// them (durations in seconds, a float).
#[derive(Serialize)]
pub(crate) struct Figures {
    /// Whether every URL of the part now has its line in the output: the
    /// run was not interrupted and left none for `--resume`.
    complete: bool,
    /// The part of the list (`--shard`), or `null` for the whole list.
    shard: Option<ShardFigures>,
    /// The scheduler's attempt number (`{"variable", "value"}` as it gives
    /// it), or `null`.
    attempt: Option<Attempt>,
    /// URLs this run fetched (a line each), and how their lines ended: as
    /// the lines say, so a `NameCollision` (`--out-dir`) is a failure.
    requests: u64,
    successes: u64,
    failures: u64,
    /// Failures by kind (`ErrorKind` names, and `NameCollision`).
    failures_by_kind: BTreeMap<String, u64>,
    /// URLs already in the output (`--resume`), and how many of them had
    /// failed.
    skipped: u64,
    skipped_failed: u64,
    /// URLs left without a line, for `--resume` to fetch.
    unfinished: u64,
    /// The batch's [`BatchStats::elapsed`], in seconds.
    elapsed: f64,
    /// [`BatchStats::requests_per_second`].
    requests_per_second: f64,
    /// The batch's [`Stats::retries`] and [`Stats::bytes_received`].
    retries: u64,
    bytes_received: u64,
    /// The fetcher's [`Stats::connections_opened`] and
    /// [`Stats::reuse_ratio`] (0 to 1).
    connections_opened: u64,
    reuse_ratio: f64,
    /// The batch's [`Stats::latency`], in seconds.
    latency: Latency,
    /// The fetcher's [`Stats::hosts`]: those that pushed back (429, 503,
    /// timeouts...) or whose breaker opened, with their limit and what
    /// they did.
    hosts: Vec<HostStats>,
    interrupted: bool,
    #[serde(skip)]
    resumed: Option<PathBuf>,
}

impl Summary {
    /// Counts a written line: a success, or a failure of kind `failure`.
    pub(crate) fn add(&mut self, failure: Option<String>) {
        match failure {
            None => self.ok += 1,
            Some(kind) => *self.failed.entry(kind).or_default() += 1,
        }
    }

    pub(crate) fn failed(&self) -> u64 {
        self.failed.values().sum()
    }

    /// The figures of the run: this batch's, the connections of the
    /// fetcher that ran it, and the part it was over.
    pub(crate) fn figures(
        &self,
        batch: &BatchStats,
        fetcher: &Stats,
        part: Part,
        interrupted: bool,
    ) -> Figures {
        Figures {
            complete: !interrupted && self.unfinished == 0,
            shard: part.shard,
            attempt: part.attempt,
            requests: self.ok + self.failed(),
            successes: self.ok,
            failures: self.failed(),
            failures_by_kind: self.failed.clone(),
            skipped: part.skipped,
            skipped_failed: part.skipped_failed,
            unfinished: self.unfinished,
            elapsed: batch.elapsed.as_secs_f64(),
            requests_per_second: batch.requests_per_second(),
            retries: batch.stats.retries,
            bytes_received: batch.stats.bytes_received,
            connections_opened: fetcher.connections_opened,
            reuse_ratio: fetcher.reuse_ratio(),
            latency: batch.stats.latency,
            hosts: fetcher.hosts.clone(),
            interrupted,
            resumed: part.resumed,
        }
    }
}

impl Figures {
    /// Whether any URL of the part failed, in this run or (`--resume`) before.
    pub(crate) fn any_failed(&self) -> bool {
        self.failures + self.skipped_failed > 0
    }

    /// Writes the figures to `path` as JSON, to the `target` [`prepare`]
    /// made: atomically (a temporary file, flushed to disk, renamed), or
    /// straight to a device or a pipe.
    pub(crate) fn write(&self, path: &Path, target: Target) -> io::Result<()> {
        let (mut file, rename) = match target {
            Target::Temporary(file) => (file, true),
            Target::Direct(file) => (file, false),
        };
        serde_json::to_writer_pretty(&mut file, self)?;
        file.write_all(b"\n")?;
        if !rename {
            return file.flush();
        }
        file.sync_all()?;
        fs::rename(temporary_path(path), path)?;
        crate::resume::sync_dir(path);
        Ok(())
    }

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
            self.requests,
            self.elapsed,
            self.requests_per_second,
            paint("32", format!("{} ok", self.successes)),
            if self.failures == 0 {
                "0 failed".to_owned()
            } else {
                paint("31", format!("{} failed", self.failures))
            },
        );
        if !self.failures_by_kind.is_empty() {
            let kinds: Vec<String> = self
                .failures_by_kind
                .iter()
                .map(|(kind, n)| format!("{kind} {n}"))
                .collect();
            let _ = write!(text, " ({})", kinds.join(", "));
        }
        if self.interrupted {
            text.push_str(", interrupted");
        }
        if let Some(file) = self.resumed.as_ref().filter(|_| self.skipped > 0) {
            let _ = write!(
                text,
                " · {} skipped, already in {}",
                self.skipped,
                file.display()
            );
            if self.skipped_failed > 0 {
                let _ = write!(text, " ({} of them failed)", self.skipped_failed);
            }
        }
        if self.unfinished > 0 {
            let _ = write!(text, " · {} left for --resume", self.unfinished);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let _ = write!(
            text,
            "\n  latency p50 {:.1} ms · p95 {:.1} ms · max {:.1} ms · retries {} · connections {} \
             ({:.1}% reuse)",
            ms(self.latency.p50),
            ms(self.latency.p95),
            ms(self.latency.max),
            self.retries,
            self.connections_opened,
            self.reuse_ratio * 100.0,
        );
        // The hosts that pushed back: `api.example:443: limit 16 (37 × 429)`.
        for host in &self.hosts {
            let mut did = Vec::new();
            for (n, what) in [
                (host.throttled, "429"),
                (host.overloaded, "overloaded"),
                (host.pauses, "paused"),
                (host.breaker_opened, "breaker opened"),
                (host.retries_refused, "retries refused"),
            ] {
                if n > 0 {
                    did.push(format!("{n} × {what}"));
                }
            }
            let _ = write!(
                text,
                "\n  {}: limit {} (lowest {}; {})",
                host.host
                    .trim_start_matches("http://")
                    .trim_start_matches("https://"),
                host.limit,
                host.lowest_limit,
                did.join(", ")
            );
            if host.breaker != BreakerState::Closed {
                let _ = write!(text, ", breaker {:?}", host.breaker);
            }
        }
        text
    }
}

/// Where the figures go.
pub(crate) enum Target {
    /// A temporary file beside the summary's, renamed at the end.
    Temporary(File),
    /// The path itself: not a regular file (`/dev/stdout`, a pipe), so
    /// neither removed nor replaced.
    Direct(File),
}

/// Readies `--summary-json FILE` for a run: removes the file of an
/// earlier run (this part is being run again: it is not finished until
/// this run is), and makes the temporary file the figures will go to, so
/// that a bad path is found before the run.
pub(crate) fn prepare(path: &Path) -> io::Result<Target> {
    match fs::metadata(path) {
        Ok(found) if !found.is_file() && !found.is_dir() => {
            return fs::OpenOptions::new()
                .write(true)
                .open(path)
                .map(Target::Direct);
        }
        Ok(_) => fs::remove_file(path)?,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    File::create(temporary_path(path)).map(Target::Temporary)
}

/// Where the figures are written before they take their name: beside
/// it, so that the rename stays on one file system.
fn temporary_path(path: &Path) -> PathBuf {
    crate::resume::sibling(path, ".parfetch-tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Figures {
        let mut summary = Summary::default();
        for _ in 0..2990 {
            summary.add(None);
        }
        for kind in ["NotFound"; 7].into_iter().chain(["Timeout"; 3]) {
            summary.add(Some(kind.to_owned()));
        }
        let mut batch = BatchStats::default();
        batch.elapsed = Duration::from_millis(2310);
        batch.stats.requests = 3000;
        batch.stats.retries = 3;
        batch.stats.bytes_received = 1234;
        let latency = &mut batch.stats.latency;
        latency.p50 = Duration::from_micros(21_600);
        latency.p95 = Duration::from_micros(22_400);
        latency.p99 = Duration::from_micros(23_100);
        latency.max = Duration::from_micros(23_800);
        let mut fetcher = Stats::default();
        fetcher.attempts = 2909;
        fetcher.connections_opened = 32;
        summary.figures(&batch, &fetcher, Part::default(), false)
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
        // The library's words for its counters, and its units (seconds).
        let json = serde_json::to_value(figures()).unwrap();
        assert_eq!(
            (&json["requests"], &json["successes"], &json["failures"]),
            (&3000.into(), &2990.into(), &10.into())
        );
        assert_eq!(json["failures_by_kind"]["NotFound"], 7);
        assert_eq!(
            (
                &json["retries"],
                &json["bytes_received"],
                &json["connections_opened"]
            ),
            (&3.into(), &1234.into(), &32.into())
        );
        assert_eq!(
            (json["elapsed"].as_f64(), json["latency"]["p50"].as_f64()),
            (Some(2.31), Some(0.0216))
        );
    }

    #[test]
    fn a_resumed_part_says_what_it_skipped_and_which_part_it_is() {
        let mut summary = Summary::default();
        summary.add(None);
        summary.unfinished = 2;
        let part = Part {
            shard: Some(ShardFigures {
                index: 1,
                count: 4,
                by: By::Host,
                from: Some("JOB_COMPLETION_INDEX"),
            }),
            attempt: Some(Attempt {
                variable: "AWS_BATCH_JOB_ATTEMPT",
                value: 2,
            }),
            skipped: 700,
            skipped_failed: 3,
            resumed: Some(PathBuf::from("part-1.jsonl")),
        };
        let figures = summary.figures(&BatchStats::default(), &Stats::default(), part, false);
        let text = figures.render(false);
        assert!(
            text.contains(
                " · 700 skipped, already in part-1.jsonl (3 of them failed) · 2 left for --resume"
            ),
            "{text}"
        );
        assert!(figures.any_failed());
        let json = serde_json::to_value(&figures).unwrap();
        assert_eq!(json["complete"], false);
        assert_eq!(
            json["shard"],
            serde_json::json!({"index": 1, "count": 4, "by": "host", "from": "JOB_COMPLETION_INDEX"})
        );
        assert_eq!(
            json["attempt"],
            serde_json::json!({"variable": "AWS_BATCH_JOB_ATTEMPT", "value": 2})
        );
        assert_eq!(
            (&json["skipped"], &json["unfinished"]),
            (&700.into(), &2.into())
        );
        assert!(json.get("resumed").is_none());
    }
}
