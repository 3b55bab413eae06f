//! The `PARFETCH_*` environment variables, and the duration syntax they
//! share with the command line.
//!
//! A script's settings often come from its environment (a CI job, a
//! container). [`apply`] reads the variables that are set over a builder;
//! one that does not parse is kept as an error for `build()` to report,
//! naming the variable, rather than being ignored.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::FetcherBuilder;

/// Applies the `PARFETCH_*` variables `var` finds over `builder` (the table
/// is in [`FetcherBuilder::from_env`]).
pub(crate) fn apply(
    mut builder: FetcherBuilder,
    var: impl Fn(&str) -> Option<String>,
) -> FetcherBuilder {
    fn parsed<T>(
        name: &str,
        value: &str,
        parse: impl Fn(&str) -> Option<T>,
        error: &mut Option<String>,
    ) -> Option<T> {
        let result = parse(value.trim());
        if result.is_none() && error.is_none() {
            *error = Some(format!("{name}={value:?} is not a valid value"));
        }
        result
    }
    let mut error = builder.env_error.take();
    if let Some(v) = var("PARFETCH_CONCURRENCY") {
        if let Some(n) = parsed("PARFETCH_CONCURRENCY", &v, |s| s.parse().ok(), &mut error) {
            builder.concurrency = n;
        }
    }
    if let Some(v) = var("PARFETCH_TIMEOUT") {
        if let Some(d) = parsed("PARFETCH_TIMEOUT", &v, parse_duration, &mut error) {
            builder.timeout = d;
        }
    }
    if let Some(v) = var("PARFETCH_CONNECT_TIMEOUT") {
        if let Some(d) = parsed("PARFETCH_CONNECT_TIMEOUT", &v, parse_duration, &mut error) {
            builder.connect_timeout = d;
        }
    }
    if let Some(v) = var("PARFETCH_RETRIES") {
        if let Some(n) = parsed("PARFETCH_RETRIES", &v, |s| s.parse().ok(), &mut error) {
            builder.retry.max_retries = n;
        }
    }
    if let Some(v) = var("PARFETCH_USER_AGENT") {
        builder.user_agent = v;
    }
    if let Some(v) = var("PARFETCH_CACHE_DIR").filter(|v| !v.is_empty()) {
        builder.cache_dir = Some(PathBuf::from(v));
    }
    if let Some(v) = var("PARFETCH_OFFLINE") {
        if let Some(on) = parsed("PARFETCH_OFFLINE", &v, flag, &mut error) {
            builder.offline = on;
        }
    }
    if let Some(v) = var("PARFETCH_CI") {
        if let Some(on) = parsed("PARFETCH_CI", &v, flag, &mut error) {
            builder.ci = on;
        }
    }
    builder.env_error = error;
    builder
}

/// Parses a switch: `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`.
fn flag(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" | "" => Some(false),
        _ => None,
    }
}

/// Parses a duration as `PARFETCH_TIMEOUT` and the `parfetch` command take
/// it: a number of seconds (`30`, `2.5`), or a number with a unit: `ms`,
/// `s`, `m` or `h` (`500ms`, `1.5s`, `2m`, `1h`). Spaces around the parts
/// are allowed; a negative, infinite or unknown value is `None`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(parfetch::parse_duration("500ms"), Some(Duration::from_millis(500)));
/// assert_eq!(parfetch::parse_duration("1.5"), Some(Duration::from_millis(1500)));
/// assert_eq!(parfetch::parse_duration("2 m"), Some(Duration::from_secs(120)));
/// assert_eq!(parfetch::parse_duration("soon"), None);
/// ```
pub fn parse_duration(text: &str) -> Option<Duration> {
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
    use crate::ErrorKind;

    #[test]
    fn env_vars_apply_and_bad_ones_are_named() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let builder = apply(
            FetcherBuilder::default(),
            vars(&[
                ("PARFETCH_CONCURRENCY", "7"),
                ("PARFETCH_TIMEOUT", "500ms"),
                ("PARFETCH_CONNECT_TIMEOUT", "2.5"),
                ("PARFETCH_RETRIES", "1"),
                ("PARFETCH_USER_AGENT", "me/1"),
                ("PARFETCH_CACHE_DIR", "/var/cache/pf"),
                ("PARFETCH_OFFLINE", "yes"),
                ("PARFETCH_CI", "0"),
            ]),
        );
        assert_eq!(builder.concurrency, 7);
        assert_eq!(builder.timeout, Duration::from_millis(500));
        assert_eq!(builder.connect_timeout, Duration::from_millis(2500));
        assert_eq!(builder.retry.max_retries, 1);
        assert_eq!(builder.user_agent, "me/1");
        assert_eq!(
            builder.cache_dir.as_deref(),
            Some(std::path::Path::new("/var/cache/pf"))
        );
        assert!(builder.offline && !builder.ci);

        let builder = apply(
            FetcherBuilder::default(),
            vars(&[("PARFETCH_CONCURRENCY", "lots")]),
        );
        let error = builder.build().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        let message = error.to_string();
        assert_eq!(
            message,
            "invalid fetcher setting: PARFETCH_CONCURRENCY=\"lots\" is not a valid value"
        );
    }

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
