//! The `PARFETCH_*` environment variables.
//!
//! A script's settings often come from its environment (a CI job, a
//! container). [`read`] reads the variables that are set into
//! [`Overrides`], which the builder applies
//! ([`FetcherBuilder::from_env`](crate::FetcherBuilder::from_env)); one
//! that does not parse is an error for `build()` to report, naming the
//! variable, rather than being ignored.

use std::path::PathBuf;
use std::time::Duration;

use super::duration::parse_duration;

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
}
