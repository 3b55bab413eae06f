//! One request: a URL, a method, and what is particular to it.
//!
//! A [`Request`] is a plain value: building one never fails. Whatever is
//! wrong with it (a malformed URL, a header value with a line break) is
//! reported when it is fetched, as an [`ErrorKind::InvalidRequest`] error that
//! names the URL, before anything is sent. That keeps batches simple: one bad
//! line in a file of URLs is one failed result, not a failed batch.
//!
//! [`ErrorKind::InvalidRequest`]: crate::ErrorKind::InvalidRequest

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use serde::Serialize;
use ureq::http::{self, HeaderName, HeaderValue};

use crate::error::{Detail, Error, ErrorKind};
use crate::origin::OriginRef;
use crate::redact;

/// A request to fetch: `GET url` unless made with [`Request::post_json`].
///
/// Anything that fetches takes `impl Into<Request>`, so a `&str` or `String`
/// URL works where a `Request` does:
///
/// ```
/// use std::time::Duration;
/// use parfetch::Request;
///
/// let plain: Request = "https://cdn.example/laps/VER.json".into();
/// let tuned = Request::get("https://cdn.example/laps/HAM.json")
///     .header("x-api-key", "k")
///     .timeout(Duration::from_secs(5));
/// assert_eq!(tuned.url(), "https://cdn.example/laps/HAM.json");
/// ```
#[derive(Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    /// Header names this request marked as secrets.
    sensitive: Vec<String>,
    timeout: Option<Duration>,
    body: Body,
    idempotent: Option<bool>,
    cache: CacheMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    Get,
    Post,
}

#[derive(Clone)]
enum Body {
    Empty,
    Json(Vec<u8>),
    /// The value given to `post_json` could not be serialised.
    Invalid(String),
}

impl Request {
    /// A `GET` request for `url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request {
            method: Method::Get,
            url: url.into(),
            headers: Vec::new(),
            sensitive: Vec::new(),
            timeout: None,
            body: Body::Empty,
            idempotent: None,
            cache: CacheMode::ReadWrite,
        }
    }

    /// A `POST` request for `url` with `body` serialised as JSON (and
    /// `content-type: application/json`).
    ///
    /// POST is not idempotent, so it is not retried unless you say it is
    /// safe with [`idempotent(true)`](Request::idempotent). If `body` cannot
    /// be serialised, fetching the request fails with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest).
    pub fn post_json<B: Serialize + ?Sized>(url: impl Into<String>, body: &B) -> Request {
        let body = match serde_json::to_vec(body) {
            Ok(json) => Body::Json(json),
            Err(error) => Body::Invalid(format!("body cannot be serialised as JSON: {error}")),
        };
        Request {
            method: Method::Post,
            body,
            ..Request::get(url)
        }
        .header("content-type", "application/json")
    }

    /// Adds a header, replacing any default header of the same name.
    ///
    /// The name and value are checked when the request is fetched; a value
    /// with a line break, for one, fails with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Request {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds a header whose value is a secret: like [`header`](Request::header),
    /// and the value is then never shown (messages, logs, `Debug`), never
    /// written to the cache, and not sent on to another host when a
    /// redirect leads there.
    ///
    /// Headers whose names say they hold a secret are treated so already
    /// (`authorization`, `cookie`, `x-api-key`...; see
    /// [`FetcherBuilder::sensitive_header`](crate::FetcherBuilder::sensitive_header)).
    #[must_use]
    pub fn sensitive_header(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Request {
        let name = name.into();
        self.sensitive.push(name.clone());
        self.header(name, value)
    }

    /// Sets this request's per-attempt timeout, instead of the fetcher's
    /// (see [`FetcherBuilder::timeout`](crate::FetcherBuilder::timeout) for
    /// what it bounds). A zero timeout fails the request with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest),
    /// unsent; one past a century is taken as a century.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// Declares whether the request may be sent more than once. `GET` is
    /// idempotent and `POST` is not, unless set here; only idempotent
    /// requests are retried.
    #[must_use]
    pub fn idempotent(mut self, idempotent: bool) -> Request {
        self.idempotent = Some(idempotent);
        self
    }

    /// How this request uses the fetcher's cache, if it has one.
    #[must_use]
    pub fn cache_mode(mut self, mode: CacheMode) -> Request {
        self.cache = mode;
        self
    }

    /// Neither reads nor writes the cache: `cache_mode(CacheMode::Off)`.
    #[must_use]
    pub fn no_cache(self) -> Request {
        self.cache_mode(CacheMode::Off)
    }

    pub(crate) fn cache(&self) -> CacheMode {
        self.cache
    }

    /// The URL, as given (user info included: see
    /// [`redacted_url`](Request::redacted_url) for one to show).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL as parfetch shows it in messages, logs and `Debug`: user
    /// info, which is where `https://TOKEN@host/` puts a secret, becomes
    /// `***`.
    ///
    /// ```
    /// let request = parfetch::Request::get("https://me:pw@cdn.example/x.json");
    /// assert_eq!(request.redacted_url(), "https://***@cdn.example/x.json");
    /// ```
    pub fn redacted_url(&self) -> std::borrow::Cow<'_, str> {
        redact::url(&self.url)
    }

    /// The per-attempt timeout set on this request, if any.
    pub fn timeout_override(&self) -> Option<Duration> {
        self.timeout
    }

    pub(crate) fn method_name(&self) -> &'static str {
        match self.method {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }

    pub(crate) fn is_get(&self) -> bool {
        self.method == Method::Get
    }

    /// Whether this request marked header `name` sensitive.
    pub(crate) fn is_sensitive(&self, name: &str) -> bool {
        self.sensitive.iter().any(|s| s.eq_ignore_ascii_case(name))
    }

    pub(crate) fn is_idempotent(&self) -> bool {
        self.idempotent.unwrap_or(self.method == Method::Get)
    }

    /// An error about this request, with its method and URL.
    pub(crate) fn error(&self, kind: ErrorKind) -> Error {
        Error::new(kind).with_request(self.method_name(), &self.url)
    }

    /// This request's error when it cannot be run at all, for `reason`.
    pub(crate) fn refused(&self, reason: &str) -> Error {
        self.error(ErrorKind::InvalidRequest)
            .with_detail(Detail::Reason(reason.to_owned()))
    }

    /// The request as ureq takes it, with `defaults` added where the request
    /// does not set the same header itself.
    pub(crate) fn to_http(
        &self,
        defaults: &[(HeaderName, HeaderValue)],
    ) -> Result<http::Request<&[u8]>, Error> {
        let invalid = |reason: String| {
            self.error(ErrorKind::InvalidRequest)
                .with_detail(Detail::Reason(reason))
        };
        if !self.url.contains("://") {
            return Err(invalid(
                "the URL must start with http:// or https://".into(),
            ));
        }
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|e| invalid(format!("the URL is not valid: {e}")))?;
        // User info is sent as Basic credentials, never in the URI that ureq
        // logs (`redact.rs`).
        let (uri, basic) =
            split_user_info(uri).map_err(|e| invalid(format!("the URL is not valid: {e}")))?;
        match uri.scheme_str() {
            Some("http" | "https") if uri.host().is_some_and(|h| !h.is_empty()) => {}
            Some("http" | "https") => return Err(invalid("the URL has no host".into())),
            Some(other) => return Err(invalid(format!("unsupported URL scheme {other:?}"))),
            None => return Err(invalid("the URL has no scheme".into())),
        }
        // Every per-host rule keys on the host (`host.rs`): a URL without a
        // key (a port that is not a number, say) cannot be sent.
        if OriginRef::of_url(&self.url).is_none() {
            return Err(invalid("the URL's host or port is not valid".into()));
        }
        let mut builder = http::Request::builder()
            .method(match self.method {
                Method::Get => http::Method::GET,
                Method::Post => http::Method::POST,
            })
            .uri(uri);
        let mut headers = http::HeaderMap::with_capacity(self.headers.len() + defaults.len());
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(format!("invalid header name {name:?}")))?;
            // The value is never quoted back: it may be a secret.
            let value = HeaderValue::from_str(value).map_err(|_| {
                invalid(format!(
                    "the value of header {:?} has a forbidden character",
                    name.as_str()
                ))
            })?;
            headers.append(name, value);
        }
        for (name, value) in defaults {
            if !headers.contains_key(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        if let Some(basic) = basic {
            if !headers.contains_key(http::header::AUTHORIZATION) {
                headers.insert(http::header::AUTHORIZATION, basic);
            }
        }
        if let Some(map) = builder.headers_mut() {
            *map = headers;
        }
        let body: &[u8] = match &self.body {
            Body::Empty => &[],
            Body::Json(json) => json,
            Body::Invalid(reason) => return Err(invalid(reason.clone())),
        };
        builder
            .body(body)
            .map_err(|e| invalid(format!("cannot build the request: {e}")))
    }
}

/// `uri` without its user info, and the user info as a Basic
/// `Authorization` value (RFC 7617: the user name ends at the first `:`;
/// both parts percent-decoded, as curl does), marked sensitive.
fn split_user_info(uri: http::Uri) -> Result<(http::Uri, Option<HeaderValue>), http::Error> {
    let Some((user_info, host)) = uri
        .authority()
        .and_then(|authority| authority.as_str().rsplit_once('@'))
    else {
        return Ok((uri, None));
    };
    let (user, password) = user_info.split_once(':').unwrap_or((user_info, ""));
    let mut credentials: Vec<u8> = percent_decode_str(user).collect();
    credentials.push(b':');
    credentials.extend(percent_decode_str(password));
    let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
    let mut basic = HeaderValue::from_str(&format!("Basic {encoded}"))?;
    basic.set_sensitive(true);
    let authority: http::uri::Authority = host.parse()?;
    let mut parts = uri.into_parts();
    parts.authority = Some(authority);
    Ok((http::Uri::from_parts(parts)?, Some(basic)))
}

impl From<&str> for Request {
    fn from(url: &str) -> Request {
        Request::get(url)
    }
}

impl From<String> for Request {
    fn from(url: String) -> Request {
        Request::get(url)
    }
}

impl From<&String> for Request {
    fn from(url: &String) -> Request {
        Request::get(url.as_str())
    }
}

impl From<&&str> for Request {
    fn from(url: &&str) -> Request {
        Request::get(*url)
    }
}

impl From<url::Url> for Request {
    fn from(url: url::Url) -> Request {
        Request::get(String::from(url))
    }
}

impl From<&url::Url> for Request {
    fn from(url: &url::Url) -> Request {
        Request::get(url.as_str())
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str(),
                    redact::header_value(name, value, &self.sensitive),
                )
            })
            .collect();
        let mut debug = f.debug_struct("Request");
        debug
            .field("method", &self.method_name())
            .field("url", &self.redacted_url())
            .field("headers", &headers);
        if let Some(timeout) = self.timeout {
            debug.field("timeout", &timeout);
        }
        if let Body::Json(json) = &self.body {
            debug.field("body_bytes", &json.len());
        }
        if let Some(idempotent) = self.idempotent {
            debug.field("idempotent", &idempotent);
        }
        debug.finish_non_exhaustive()
    }
}

/// How a request uses the cache. Set with
/// [`Request::cache_mode`](crate::Request::cache_mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheMode {
    /// Serve from the cache when the rules allow, store what is fetched.
    #[default]
    ReadWrite,
    /// Serve from the cache, but do not store.
    ReadOnly,
    /// Always fetch, and store the result.
    WriteOnly,
    /// Neither read nor write.
    Off,
}

impl CacheMode {
    pub(crate) fn reads(self) -> bool {
        matches!(self, CacheMode::ReadWrite | CacheMode::ReadOnly)
    }

    pub(crate) fn writes(self) -> bool {
        matches!(self, CacheMode::ReadWrite | CacheMode::WriteOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_requests_name_the_problem() {
        let cases = [
            (
                Request::get("cdn.example/x"),
                "must start with http:// or https://",
            ),
            (
                Request::get("ftp://cdn.example/x"),
                "unsupported URL scheme \"ftp\"",
            ),
            (Request::get("http:// bad url"), "the URL is not valid"),
            (
                Request::get("http://h/").header("bad name", "v"),
                "invalid header name \"bad name\"",
            ),
            (
                Request::get("http://h/").header("x-token", "a\r\nInjected: 1"),
                "the value of header \"x-token\" has a forbidden character",
            ),
        ];
        for (request, want) in cases {
            let error = request.to_http(&[]).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidRequest);
            assert!(error.to_string().contains(want), "{error} lacks {want}");
            assert!(!error.to_string().contains("Injected"), "{error}");
        }
    }

    #[test]
    fn request_headers_override_defaults() {
        let defaults = [
            (
                HeaderName::from_static("accept"),
                HeaderValue::from_static("application/json"),
            ),
            (
                HeaderName::from_static("x-team"),
                HeaderValue::from_static("blue"),
            ),
        ];
        let request = Request::get("http://h/").header("Accept", "text/plain");
        let http = request.to_http(&defaults).unwrap();
        let accept: Vec<_> = http.headers().get_all("accept").iter().collect();
        assert_eq!(accept, ["text/plain"]);
        assert_eq!(http.headers()["x-team"], "blue");
    }

    #[test]
    fn user_info_becomes_basic_credentials() {
        let cases = [
            (
                "http://martin:secret@h/x",
                Some("Basic bWFydGluOnNlY3JldA=="),
            ),
            ("http://martin@h/x", Some("Basic bWFydGluOg==")),
            ("http://:secret@h/x", Some("Basic OnNlY3JldA==")),
            // The password may hold ':' and percent-escapes; the user not.
            ("http://m%40x:a:b%2Fc@h/x", Some("Basic bUB4OmE6Yi9j")),
            ("http://h/x@y", None),
        ];
        for (url, want) in cases {
            let request = Request::get(url);
            let http = request.to_http(&[]).unwrap();
            assert!(
                !http.uri().to_string().contains('@') || url.contains("x@y"),
                "{url}"
            );
            let got = http.headers().get("authorization");
            assert_eq!(got.map(|v| v.to_str().unwrap()), want, "{url}");
            assert!(got.is_none_or(HeaderValue::is_sensitive));
        }
        // An explicit Authorization wins.
        let request = Request::get("http://me:pw@h/").header("authorization", "Bearer t");
        let http = request.to_http(&[]).unwrap();
        assert_eq!(http.headers()["authorization"], "Bearer t");
    }

    #[test]
    fn post_json_and_idempotency() {
        let post = Request::post_json("http://h/", &serde_json::json!({"a": 1}));
        assert!(!post.is_idempotent());
        assert!(post.clone().idempotent(true).is_idempotent());
        assert!(Request::get("http://h/").is_idempotent());
        let http = post.to_http(&[]).unwrap();
        assert_eq!(http.method(), http::Method::POST);
        assert_eq!(*http.body(), br#"{"a":1}"#);
        assert_eq!(http.headers()["content-type"], "application/json");
    }

    #[test]
    fn debug_hides_secrets() {
        let request = Request::get("https://u:pw@h/")
            .header("Authorization", "Bearer xyz")
            .header("cookie", "s=1")
            .header("x-trace", "t1");
        let debug = format!("{request:?}");
        assert_eq!(
            debug,
            "Request { method: \"GET\", url: \"https://***@h/\", headers: \
             [(\"Authorization\", \"***\"), (\"cookie\", \"***\"), (\"x-trace\", \"t1\")], .. }"
        );
    }
}
