//! The progress line on standard error: a bar with a percentage and an ETA
//! when the number of URLs is known (a file, counted first), a spinner with
//! the count, the rate and the time so far when it is not (standard input,
//! a pipe). Rates are whole numbers; nothing is drawn unless standard error
//! is a terminal.

use std::io::{self, IsTerminal};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use parfetch::Progress;

/// The progress line, if one is drawn.
pub(crate) struct Line {
    bar: Option<ProgressBar>,
}

/// Whether a line is drawn: not `quiet`, and standard error is a terminal.
pub(crate) fn shown(quiet: bool) -> bool {
    !quiet && io::stderr().is_terminal()
}

impl Line {
    /// A line for `total` URLs (when known), if [`shown`]; coloured unless
    /// `color` is false. Log lines go above it.
    pub(crate) fn new(total: Option<u64>, quiet: bool, color: bool) -> Line {
        if !shown(quiet) {
            return Line { bar: None };
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        bar.set_style(style(total.is_some(), color));
        crate::logger::above(&bar);
        Line { bar: Some(bar) }
    }

    /// Shows `progress`.
    pub(crate) fn update(&self, progress: &Progress) {
        if let Some(bar) = &self.bar {
            bar.set_position(progress.requests);
            bar.set_message(if progress.failures == 0 {
                String::new()
            } else {
                format!(" · {} failed", progress.failures)
            });
        }
    }

    /// Takes the line off the screen, for the summary.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `[=====>    ]  42% 1260/3000 · 812/s · ETA 2s · 3 failed`, or with no
/// known end `⠋ 1260 done · 812/s · 1s · 3 failed`.
fn style(known_end: bool, color: bool) -> ProgressStyle {
    let template = match (known_end, color) {
        (true, true) => "{bar:30.cyan/blue} {percent:>3}% {pos}/{len} · {rate} · ETA {eta}{msg}",
        (true, false) => "{bar:30} {percent:>3}% {pos}/{len} · {rate} · ETA {eta}{msg}",
        (false, _) => "{spinner} {pos} done · {rate} · {elapsed}{msg}",
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, out: &mut dyn std::fmt::Write| {
                let _ = write!(out, "{:.0}/s", state.per_sec());
            },
        )
        .progress_chars("=> ")
}

/// Whether colour may be used on standard error: a terminal, and no
/// `NO_COLOR` (https://no-color.org: set and not empty).
pub(crate) fn color_allowed() -> bool {
    io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}
