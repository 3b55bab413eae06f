//! The duration syntax of the `PARFETCH_*` variables and of the command's
//! flags: one parser for both, not part of the library's API.
//!
//! The library reads it here (`env.rs`); the `parfetch` command compiles
//! this same file into itself (`#[path]` in `src/bin/parfetch/main.rs`), so
//! the file imports nothing but `std`.

use std::time::Duration;

/// Parses a duration as `PARFETCH_TIMEOUT` and the `parfetch` command take
/// it: a number of seconds (`30`, `2.5`), or a number with a unit: `ms`,
/// `s`, `m` or `h` (`500ms`, `1.5s`, `2m`, `1h`). Spaces around the parts
/// are allowed; a negative, infinite or unknown value is `None`.
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let number: f64 = number.trim().parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(seconds).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let cases = [
            ("30", Some(30_000)),
            ("2.5", Some(2_500)),
            ("500ms", Some(500)),
            ("30s", Some(30_000)),
            ("2m", Some(120_000)),
            ("-1", None),
            ("fast", None),
            ("10h", Some(36_000_000)),
            ("1d", None),
            ("inf", None),
            ("NaN", None),
            ("", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_duration(text),
                want.map(Duration::from_millis),
                "{text:?}"
            );
        }
    }
}
