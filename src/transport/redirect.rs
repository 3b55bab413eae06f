//! Which redirects are followed, where to, and with what.
//!
//! parfetch follows redirects itself rather than letting ureq do it, for
//! three rules ureq cannot be told:
//!
//! - **No way down.** An https request never follows a redirect to plain
//!   http: what was asked for over TLS must not come back over the open
//!   network.
//! - **Secrets stay with their origin.** Sensitive headers (`redact.rs`:
//!   `Authorization`, `Cookie`, API keys, and any header marked sensitive)
//!   go only to the origin they were meant for. A redirect to another
//!   scheme, host or port drops them, as curl and urllib3 do; the one
//!   exception is the upgrade of the same host from http on port 80 to
//!   https on port 443, as the `requests` library allows.
//! - **One budget.** Every hop runs within what is left of the attempt's
//!   timeout (`attempt.rs`), so a chain of slow redirects cannot outlast it.
//!
//! The method follows RFC 9110 §15.4 as browsers and curl apply it: 301 and
//! 302 turn a POST into a GET, 303 turns anything but HEAD into a GET (the
//! body is dropped), 307 and 308 keep the method and the body. A 3xx without
//! a `Location` is not a redirect but a final answer.

use std::fmt;

use ureq::http;
use url::Url;

use crate::redact;

/// The next hop of a redirect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Hop {
    /// The absolute URL to request next.
    pub(crate) url: String,
    /// The method becomes GET, without a body.
    pub(crate) becomes_get: bool,
    /// Sensitive headers may go along: same origin, or http upgraded to https.
    pub(crate) keeps_secrets: bool,
}

/// Why a redirect is not followed (the attempt then ends with
/// [`ErrorKind::Redirect`](crate::ErrorKind::Redirect)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum NotFollowed {
    /// The `Location` does not make a URL.
    BadLocation(String),
    /// The target is not http or https.
    Scheme(String),
    /// From https down to plain http.
    Downgrade(String),
    /// More hops than allowed.
    TooMany { max: u32, looped: bool },
}

impl fmt::Display for NotFollowed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotFollowed::BadLocation(location) => {
                write!(f, "the Location {location:?} is not a valid URL")
            }
            NotFollowed::Scheme(url) => write!(f, "a redirect to {url:?}, which is not http(s)"),
            NotFollowed::Downgrade(url) => write!(
                f,
                "a redirect from https down to plain http ({url:?}) is never followed"
            ),
            NotFollowed::TooMany { max, looped: true } => {
                write!(f, "more than {max} redirects: they go round in a loop")
            }
            NotFollowed::TooMany { max, .. } => write!(f, "more than {max} redirects"),
        }
    }
}

/// Whether a response with `status` is a redirect parfetch follows (given a
/// `Location`).
pub(crate) fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Where a `status` response with `location` sends a request for `from`
/// (an absolute URL) made with `method`. `Ok(None)`: not a redirect to
/// follow; the response is the answer.
pub(crate) fn next_hop(
    from: &str,
    method: &str,
    status: u16,
    location: Option<&[u8]>,
) -> Result<Option<Hop>, NotFollowed> {
    let Some(location) = location.filter(|_| is_redirect(status)) else {
        return Ok(None);
    };
    // A Location that is not ASCII is percent-encoded by the URL parser, as
    // browsers do; one that is not even UTF-8 is read as well as it can be.
    let location = String::from_utf8_lossy(location);
    let shown = || redact::url(location.trim()).into_owned();
    let base = Url::parse(from).map_err(|_| NotFollowed::BadLocation(shown()))?;
    let target = base
        .join(location.trim())
        .map_err(|_| NotFollowed::BadLocation(shown()))?;
    match (base.scheme(), target.scheme()) {
        (_, "http" | "https") if target.host_str().is_some_and(|h| !h.is_empty()) => {}
        _ => {
            return Err(NotFollowed::Scheme(
                redact::url(target.as_str()).into_owned(),
            ))
        }
    }
    // The URL parser and the HTTP one do not agree on every host: what
    // ureq could not send is no place to go.
    if target.as_str().parse::<http::Uri>().is_err() {
        return Err(NotFollowed::BadLocation(shown()));
    }
    if base.scheme() == "https" && target.scheme() == "http" {
        return Err(NotFollowed::Downgrade(
            redact::url(target.as_str()).into_owned(),
        ));
    }
    let becomes_get = match status {
        303 => method != "HEAD",
        301 | 302 => method == "POST",
        _ => false,
    };
    Ok(Some(Hop {
        keeps_secrets: keeps_secrets(&base, &target),
        url: target.into(),
        becomes_get,
    }))
}

/// Turns `request` (as first built) into the request for the hop to `url`:
/// a GET without a body if `get`, without its sensitive headers unless
/// `keep_secrets`. `None` if `url` is not one http takes.
pub(crate) fn apply(
    url: &str,
    get: bool,
    keep_secrets: bool,
    request: &mut http::Request<&[u8]>,
    is_sensitive: impl Fn(&str) -> bool,
) -> Option<()> {
    *request.uri_mut() = url.parse().ok()?;
    if get {
        *request.method_mut() = http::Method::GET;
        *request.body_mut() = &[];
        request.headers_mut().remove(http::header::CONTENT_TYPE);
    }
    if !keep_secrets {
        let headers = request.headers_mut();
        let secrets: Vec<http::HeaderName> = headers
            .keys()
            .filter(|name| is_sensitive(name.as_str()))
            .cloned()
            .collect();
        for name in secrets {
            headers.remove(name);
        }
    }
    Some(())
}

/// Whether sensitive headers may follow a redirect from `from` to `to`.
fn keeps_secrets(from: &Url, to: &Url) -> bool {
    let same_host = from.host_str() == to.host_str();
    let same_origin = same_host
        && from.scheme() == to.scheme()
        && from.port_or_known_default() == to.port_or_known_default();
    let upgrade = same_host
        && from.scheme() == "http"
        && to.scheme() == "https"
        && from.port_or_known_default() == Some(80)
        && to.port_or_known_default() == Some(443);
    same_origin || upgrade
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(
        from: &str,
        method: &str,
        status: u16,
        location: &str,
    ) -> Result<Option<Hop>, NotFollowed> {
        next_hop(from, method, status, Some(location.as_bytes()))
    }

    #[test]
    fn locations_resolve_against_the_current_url() {
        let cases = [
            ("http://h/a/b", "c", "http://h/a/c"),
            ("http://h/a/b", "/c?x=1", "http://h/c?x=1"),
            ("http://h/a/b", "../c", "http://h/c"),
            ("http://h/a/b", "//other/c", "http://other/c"),
            ("http://h:8080/a", "/b", "http://h:8080/b"),
            ("http://h/a", "https://H2.example/b", "https://h2.example/b"),
            ("http://h/a", " /padded ", "http://h/padded"),
            ("http://h/a", "/caf\u{e9}", "http://h/caf%C3%A9"),
        ];
        for (from, location, to) in cases {
            let hop = hop(from, "GET", 302, location).unwrap().unwrap();
            assert_eq!(hop.url, to, "{from} + {location}");
        }
    }

    #[test]
    fn methods_per_status() {
        let cases = [
            (301, "POST", true),
            (302, "POST", true),
            (303, "POST", true),
            (303, "GET", true),
            (303, "HEAD", false),
            (307, "POST", false),
            (308, "POST", false),
            (302, "GET", false),
        ];
        for (status, method, becomes_get) in cases {
            let hop = hop("http://h/a", method, status, "/b").unwrap().unwrap();
            assert_eq!(hop.becomes_get, becomes_get, "{status} {method}");
        }
    }

    #[test]
    fn not_redirects() {
        for status in [200, 300, 304, 305, 404, 500] {
            assert_eq!(hop("http://h/a", "GET", status, "/b"), Ok(None), "{status}");
        }
        assert_eq!(next_hop("http://h/a", "GET", 302, None), Ok(None));
    }

    #[test]
    fn secrets_stay_with_their_origin() {
        let cases = [
            ("http://h/a", "/b", true),
            ("http://h/a", "http://h:80/b", true),
            ("http://h/a", "https://h/b", true),
            ("http://h:8080/a", "https://h/b", false),
            ("http://h/a", "http://h:8080/b", false),
            ("http://h/a", "http://other/b", false),
            ("https://h/a", "https://h:8443/b", false),
            ("https://h/a", "https://sub.h/b", false),
            ("http://127.0.0.1:9/a", "http://localhost:9/b", false),
        ];
        for (from, location, keeps) in cases {
            let hop = hop(from, "GET", 307, location).unwrap().unwrap();
            assert_eq!(hop.keeps_secrets, keeps, "{from} -> {location}");
        }
    }

    #[test]
    fn redirects_not_followed() {
        assert!(matches!(
            hop("https://h/a", "GET", 302, "http://h/b"),
            Err(NotFollowed::Downgrade(_))
        ));
        assert!(matches!(
            hop("http://h/a", "GET", 302, "ftp://h/b"),
            Err(NotFollowed::Scheme(_))
        ));
        assert!(matches!(
            hop("http://h/a", "GET", 302, "http://[::1/b"),
            Err(NotFollowed::BadLocation(_))
        ));
        // Credentials in a target not followed are not shown.
        let not_followed = hop("https://h/a", "GET", 302, "http://me:pw@h/b").unwrap_err();
        assert!(!not_followed.to_string().contains("pw"), "{not_followed}");
        // A host the URL parser takes but HTTP does not (found by fuzzing).
        assert!(matches!(
            hop("http://h/a", "GET", 302, "//other`host.example/x"),
            Err(NotFollowed::BadLocation(_))
        ));
        let bytes = next_hop("http://h/a", "GET", 302, Some(b"/\xff\xfe")).unwrap();
        assert!(bytes.is_some_and(|hop| hop.url.starts_with("http://h/")));
    }

    #[test]
    fn applying_a_hop() {
        let body = br#"{"a":1}"#;
        let build = || {
            http::Request::post("http://h/a")
                .header("content-type", "application/json")
                .header("authorization", "Bearer x")
                .header("x-partner", "p")
                .header("x-trace", "t")
                .body(&body[..])
                .unwrap()
        };
        let sensitive = |name: &str| name == "authorization" || name == "x-partner";
        let mut kept = build();
        apply("http://h/b", false, true, &mut kept, sensitive).unwrap();
        assert_eq!(kept.uri(), "http://h/b");
        assert_eq!(
            (kept.method(), *kept.body()),
            (&http::Method::POST, &body[..])
        );
        assert_eq!(kept.headers().len(), 4);
        let mut moved = build();
        apply("http://other/b", true, false, &mut moved, sensitive).unwrap();
        assert_eq!(
            (moved.method(), *moved.body()),
            (&http::Method::GET, &b""[..])
        );
        let names: Vec<&str> = moved
            .headers()
            .keys()
            .map(http::HeaderName::as_str)
            .collect();
        assert_eq!(names, ["x-trace"]);
    }
}
