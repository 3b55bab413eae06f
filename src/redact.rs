//! What is a secret, and how it is hidden.
//!
//! Credentials reach a fetcher in two places: in headers (`Authorization`,
//! an API key) and in a URL's user info (`https://TOKEN@host/`, where many
//! APIs put a token). Neither may show in a message, a log line, a `Debug`
//! output or a cache file, and a sensitive header never follows a redirect
//! to another host. This module is the one place that says which headers
//! are secrets and how a URL is shown; `error.rs`, `request.rs`, the cache
//! and the redirect rules all ask it.

use std::borrow::Cow;

/// Header names that are secrets whatever their value: matched exactly,
/// ignoring case.
const SENSITIVE_NAMES: [&str; 2] = ["cookie", "set-cookie"];

/// Header names that contain one of these (ignoring case) are secrets too:
/// `authorization`, `proxy-authorization`, `x-auth-token`, `x-api-key`,
/// `x-amz-security-token`, `x-session-id`, `x-client-secret`...
const SENSITIVE_PARTS: [&str; 9] = [
    "auth",
    "token",
    "secret",
    "passw",
    "api-key",
    "apikey",
    "api_key",
    "session",
    "credential",
];

/// How a secret is shown.
pub(crate) const HIDDEN: &str = "***";

/// Whether a header named `name` holds a secret by default (see the crate
/// docs for the list), before any name a caller marked sensitive.
pub(crate) fn is_sensitive_by_default(name: &str) -> bool {
    SENSITIVE_NAMES
        .iter()
        .any(|sensitive| sensitive.eq_ignore_ascii_case(name))
        || SENSITIVE_PARTS
            .iter()
            .any(|part| contains_ignoring_case(name, part))
}

/// Whether `name` is sensitive by default or listed in `marked`.
pub(crate) fn is_sensitive(name: &str, marked: &[String]) -> bool {
    is_sensitive_by_default(name) || marked.iter().any(|m| m.eq_ignore_ascii_case(name))
}

fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The header value to show: [`HIDDEN`] for a secret.
pub(crate) fn header_value<'a>(name: &str, value: &'a str, marked: &[String]) -> &'a str {
    if is_sensitive(name, marked) {
        HIDDEN
    } else {
        value
    }
}

/// The URL to show in messages, logs and `Debug`: its user info, name and
/// password alike, becomes `***` (`https://***@host/x`).
pub(crate) fn url(url: &str) -> Cow<'_, str> {
    match user_info_span(url) {
        Some((start, end)) => format!("{}{HIDDEN}{}", &url[..start], &url[end..]).into(),
        None => url.into(),
    }
}

/// The URL with its user info removed (`https://host/x`): what the cache
/// writes to disk.
pub(crate) fn without_user_info(url: &str) -> Cow<'_, str> {
    match user_info_span(url) {
        // The '@' after the user info goes too.
        Some((start, end)) => format!("{}{}", &url[..start], &url[end + 1..]).into(),
        None => url.into(),
    }
}

/// The byte range of the user info in `url`, if it has any: what comes
/// before the last `@` of its authority. The authority starts after
/// `scheme://`, or, for http and https, after `scheme:` and any slashes or
/// backslashes (`http:me@h`, `http:\\me@h`: URL parsers read user info
/// there too); without a scheme, at the start. It ends at the first `/`,
/// `\`, `?` or `#`.
fn user_info_span(url: &str) -> Option<(usize, usize)> {
    let start = authority_start(url);
    let rest = url.get(start..)?;
    let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
    let at = rest.get(..end)?.rfind('@')?;
    Some((start, start + at))
}

/// Where the authority of `url` starts (see [`user_info_span`]).
fn authority_start(url: &str) -> usize {
    let Some(colon) = url.find(':') else {
        return 0;
    };
    let scheme = &url[..colon];
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !is_scheme {
        return 0;
    }
    let after = &url[colon + 1..];
    let slashes = after.len() - after.trim_start_matches(['/', '\\']).len();
    let special = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    if special || after.starts_with("//") {
        colon + 1 + slashes
    } else {
        // `user:pw@host`: no scheme after all, the user info starts it.
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_hide_all_user_info() {
        let cases = [
            ("https://cdn.example/x", "https://cdn.example/x"),
            (
                "https://me:secret@cdn.example/x",
                "https://***@cdn.example/x",
            ),
            ("https://TOKEN@cdn.example/", "https://***@cdn.example/"),
            (
                "https://a@b@cdn.example:8443",
                "https://***@cdn.example:8443",
            ),
            ("http://h/path@odd", "http://h/path@odd"),
            ("http://h?q=@x", "http://h?q=@x"),
            ("not a url", "not a url"),
            ("://@", "://@"),
            ("http:me:pw@h/x", "http:***@h/x"),
            ("http:/me@h/x", "http:/***@h/x"),
            ("HTTP:\\\\me@h\\x", "HTTP:\\\\***@h\\x"),
            ("https:///me@h", "https:///***@h"),
            ("me:pw@h/x", "***@h/x"),
            ("ftp://me:pw@h/x", "ftp://***@h/x"),
            ("mailto:me@h", "***@h"),
            ("http://h/a@b?c@d", "http://h/a@b?c@d"),
        ];
        for (given, shown) in cases {
            assert_eq!(url(given), shown, "{given}");
        }
        assert_eq!(
            without_user_info("https://me:pw@cdn.example/x"),
            "https://cdn.example/x"
        );
        assert_eq!(without_user_info("http://h/a@b"), "http://h/a@b");
    }

    #[test]
    fn sensitive_names() {
        for name in [
            "Authorization",
            "proxy-authorization",
            "Cookie",
            "set-cookie",
            "X-API-Key",
            "api_key",
            "x-auth-token",
            "X-Amz-Security-Token",
            "x-client-secret",
            "x-session-id",
            "x-password",
        ] {
            assert!(is_sensitive_by_default(name), "{name}");
        }
        for name in [
            "accept",
            "x-trace",
            "content-type",
            "x-request-id",
            "user-agent",
        ] {
            assert!(!is_sensitive_by_default(name), "{name}");
        }
        let marked = vec!["X-Partner".to_owned()];
        assert!(is_sensitive("x-partner", &marked));
        assert_eq!(header_value("x-partner", "p1", &marked), HIDDEN);
        assert_eq!(header_value("x-trace", "t1", &marked), "t1");
    }
}
