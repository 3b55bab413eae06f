//! The library's log (the `log` crate) on standard error: `-v` shows its
//! warnings as the run goes (retries, circuit breakers, pauses a server
//! asked for, cache trouble), `-vv` its debug lines too (each failed
//! attempt, connections). Without `-v`, only the warnings of the setup are
//! shown (an unreadable `SSL_CERT_FILE`, a certificate store with bad
//! entries, certificate checks turned off), even with `-q`: they say the
//! run is not what was asked for. A retry is not news in a list of a
//! million URLs; the summary counts them.
//!
//! Trace is never enabled: at that level ureq writes the bytes on the wire
//! (credentials included) and full paths and queries. At the levels used
//! here the library keeps secrets out (user info is `***`, sensitive
//! headers are not shown; `tests/it/cli_flags.rs` holds it to that).
//!
//! A few lines of our own rather than `env_logger`: no dependency, and the
//! lines go above the progress bar instead of through it.

use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

use indicatif::ProgressBar;
use log::{Level, LevelFilter, Log, Metadata, Record};

/// The logger: the most detailed level shown now, and the bar to print
/// above.
struct Logger {
    /// A `LevelFilter` as a number (`Off` = 0 ... `Trace` = 5).
    level: AtomicU8,
    bar: OnceLock<ProgressBar>,
}

static LOGGER: Logger = Logger {
    level: AtomicU8::new(0),
    bar: OnceLock::new(),
};

/// The level during the run for `verbose` (`-v` count).
fn run_level(verbose: u8) -> LevelFilter {
    match verbose {
        0 => LevelFilter::Off,
        1 => LevelFilter::Info,
        _ => LevelFilter::Debug,
    }
}

/// Installs the logger for the setup: warnings, or more with `-vv`.
pub(crate) fn init(verbose: u8) {
    let level = run_level(verbose).max(LevelFilter::Warn);
    LOGGER.level.store(level as u8, Ordering::Relaxed);
    // Only fails if a logger is installed already: then that one speaks.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

/// The setup is over: from now on, what `-v` asks for.
pub(crate) fn start_run(verbose: u8) {
    LOGGER
        .level
        .store(run_level(verbose) as u8, Ordering::Relaxed);
}

/// Prints log lines above `bar` from now on.
pub(crate) fn above(bar: &ProgressBar) {
    let _ = LOGGER.bar.set(bar.clone());
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        (metadata.level() as u8) <= self.level.load(Ordering::Relaxed)
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(record.level(), record.target(), &record.args().to_string());
        let print = || {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        };
        match self.bar.get() {
            Some(bar) if !bar.is_finished() => bar.suspend(print),
            _ => print(),
        }
    }

    fn flush(&self) {}
}

/// `parfetch: warning: circuit breaker for http://h opened ...`; lines of
/// other crates (ureq, rustls) name them: `parfetch: debug: [ureq::pool] ...`.
fn format_line(level: Level, target: &str, message: &str) -> String {
    let level = match level {
        Level::Error => "error",
        Level::Warn => "warning",
        Level::Info => "info",
        Level::Debug => "debug",
        Level::Trace => "trace",
    };
    let crate_name = target.split("::").next().unwrap_or(target);
    if crate_name == "parfetch" {
        format!("parfetch: {level}: {message}")
    } else {
        format!("parfetch: {level}: [{target}] {message}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_their_level_and_foreign_targets() {
        assert_eq!(
            format_line(Level::Warn, "parfetch::engine", "retrying in 1s"),
            "parfetch: warning: retrying in 1s"
        );
        assert_eq!(
            format_line(Level::Debug, "ureq::pool", "Use pooled"),
            "parfetch: debug: [ureq::pool] Use pooled"
        );
    }

    #[test]
    fn levels_by_verbosity() {
        assert_eq!(run_level(0), LevelFilter::Off);
        assert_eq!(run_level(1), LevelFilter::Info);
        assert_eq!(run_level(2), LevelFilter::Debug);
        assert_eq!(run_level(9), LevelFilter::Debug, "never trace");
    }
}
