//! The `PARFETCH_*` environment variables, and the duration syntax they
//! share with the command line.
//!
//! A script's settings often come from its environment (a CI job, a
//! container). [`read`] reads the variables that are set into
//! [`Overrides`], which the builder applies
//! ([`FetcherBuilder::from_env`](crate::FetcherBuilder::from_env)); one
//! that does not parse is an error for `build()` to report, naming the
//! variable, rather than being ignored.

use std::path::PathBuf;
use std::time::Duration;

/// The settings the `PARFETCH_*` variables give, each `None` when its
/// variable is not set.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Overrides {
    pub(crate) concurrency: Option<usize>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) retries: Option<u32>,
    pub(crate) user_agent: Option<String>,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) offline: Option<bool>,
    pub(crate) ci: Option<bool>,
}

/// Reads the `PARFETCH_*` variables `var` finds (the table is in
/// [`FetcherBuilder::from_env`](crate::FetcherBuilder::from_env)), or says
/// which one does not parse.
pub(crate) fn read(var: impl Fn(&str) -> Option<String>) -> Result<Overrides, String> {
    fn parsed<T>(
        var: &impl Fn(&str) -> Option<String>,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Option<T>, String> {
        match var(name) {
            None => Ok(None),
            Some(value) => match parse(value.trim()) {
                Some(parsed) => Ok(Some(parsed)),
                None => Err(format!("{name}={value:?} is not a valid value")),
            },
        }
    }
    Ok(Overrides {
        concurrency: parsed(&var, "PARFETCH_CONCURRENCY", |s| s.parse().ok())?,
        timeout: parsed(&var, "PARFETCH_TIMEOUT", parse_duration)?,
        connect_timeout: parsed(&var, "PARFETCH_CONNECT_TIMEOUT", parse_duration)?,
        retries: parsed(&var, "PARFETCH_RETRIES", |s| s.parse().ok())?,
        user_agent: var("PARFETCH_USER_AGENT"),
        cache_dir: var("PARFETCH_CACHE_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        offline: parsed(&var, "PARFETCH_OFFLINE", flag)?,
        ci: parsed(&var, "PARFETCH_CI", flag)?,
    })
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

    #[test]
    fn variables_are_read_and_bad_ones_named() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let read_all = read(vars(&[
            ("PARFETCH_CONCURRENCY", "7"),
            ("PARFETCH_TIMEOUT", "500ms"),
            ("PARFETCH_CONNECT_TIMEOUT", "2.5"),
            ("PARFETCH_RETRIES", "1"),
            ("PARFETCH_USER_AGENT", "me/1"),
            ("PARFETCH_CACHE_DIR", "/var/cache/pf"),
            ("PARFETCH_OFFLINE", "yes"),
            ("PARFETCH_CI", "0"),
        ]));
        assert_eq!(
            read_all,
            Ok(Overrides {
                concurrency: Some(7),
                timeout: Some(Duration::from_millis(500)),
                connect_timeout: Some(Duration::from_millis(2500)),
                retries: Some(1),
                user_agent: Some("me/1".to_owned()),
                cache_dir: Some(PathBuf::from("/var/cache/pf")),
                offline: Some(true),
                ci: Some(false),
            })
        );
        assert_eq!(read(vars(&[])), Ok(Overrides::default()));
        assert_eq!(
            read(vars(&[("PARFETCH_CONCURRENCY", "lots")])),
            Err("PARFETCH_CONCURRENCY=\"lots\" is not a valid value".to_owned())
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
