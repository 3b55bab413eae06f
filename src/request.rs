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

/// A request to fetch: a method, a URL, and what is particular to it
/// (headers, query parameters, a body, its own timeout and deadline).
///
/// Anything that fetches takes `impl Into<Request>`, so a `&str` or `String`
/// URL works where a `Request` does (as a `GET`):
///
/// ```
/// use std::time::Duration;
/// use parfetch::{Method, Request};
///
/// let plain: Request = "https://cdn.example/laps/VER.json".into();
/// let tuned = Request::get("https://cdn.example/laps/HAM.json")
///     .header("x-api-key", "k")
///     .timeout(Duration::from_secs(5));
/// assert_eq!(tuned.url(), "https://cdn.example/laps/HAM.json");
///
/// let update = Request::new(Method::Put, "https://api.example/laps/7")
///     .json(&serde_json::json!({"seconds": 91.5}));
/// assert_eq!(update.method(), Method::Put);
/// ```
#[derive(Clone)]
pub struct Request {
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    /// Header names this request marked as secrets.
    sensitive: Vec<String>,
    timeout: Option<Duration>,
    /// The most all its attempts and waits may take, from its first step.
    deadline: Option<Duration>,
    body: Body,
    idempotent: Option<bool>,
    cache: CacheMode,
}

/// An HTTP method: what a [`Request`] asks the server to do.
///
/// parfetch has its own small enum rather than `http::Method`: the methods
/// it lists are those whose rules it knows (which are retried, RFC 9110
/// §9.2.2; which the cache may answer or must invalidate, RFC 9111 §4.4),
/// its names are `&'static str` in every error, and the public API does not
/// change with the `http` crate's major versions. New methods may be added
/// in minor releases, so a `match` needs a `_` arm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Method {
    /// `GET`: fetch a document. Safe and idempotent: retried, cached.
    #[default]
    Get,
    /// `HEAD`: a `GET` without the body. Safe and idempotent: retried; an
    /// empty body, parsed as JSON `null`.
    Head,
    /// `POST`: not idempotent, so retried only when marked
    /// [`idempotent`](Request::idempotent).
    Post,
    /// `PUT`: replace a resource. Idempotent: retried.
    Put,
    /// `PATCH`: change part of a resource. Not idempotent, so retried only
    /// when marked [`idempotent`](Request::idempotent).
    Patch,
    /// `DELETE`: remove a resource. Idempotent: retried.
    Delete,
    /// `OPTIONS`: what the server allows. Safe and idempotent: retried.
    Options,
}

impl Method {
    /// The method's name as sent: `"GET"`, `"POST"`...
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
        }
    }

    /// Whether the method is safe (RFC 9110 §9.2.1: `GET`, `HEAD`,
    /// `OPTIONS`): it asks for nothing to change, so a success of it
    /// leaves the cache as it is.
    pub fn is_safe(self) -> bool {
        matches!(self, Method::Get | Method::Head | Method::Options)
    }

    fn to_http(self) -> http::Method {
        match self {
            Method::Get => http::Method::GET,
            Method::Head => http::Method::HEAD,
            Method::Post => http::Method::POST,
            Method::Put => http::Method::PUT,
            Method::Patch => http::Method::PATCH,
            Method::Delete => http::Method::DELETE,
            Method::Options => http::Method::OPTIONS,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone)]
enum Body {
    Empty,
    /// The bytes to send, and the Content-Type they go with (unless the
    /// request sets its own).
    Bytes {
        bytes: Vec<u8>,
        content_type: Option<String>,
    },
    /// The value given to `json` could not be serialised.
    Invalid(String),
}

/// The Content-Type of a [`Request::json`] body.
const JSON: &str = "application/json";
/// The Content-Type of a [`Request::form`] body.
const FORM: &str = "application/x-www-form-urlencoded";

impl Request {
    /// A request with `method` for `url`, without a body.
    ///
    /// Building a request never fails: a bad URL fails the request when it
    /// is fetched, as an [`ErrorKind::InvalidRequest`] error, unsent.
    ///
    /// ```
    /// use parfetch::{Method, Request};
    ///
    /// let request = Request::new(Method::Delete, "https://api.example/items/7");
    /// assert_eq!(request.method(), Method::Delete);
    /// assert_eq!(request.url(), "https://api.example/items/7");
    /// ```
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            sensitive: Vec::new(),
            timeout: None,
            deadline: None,
            body: Body::Empty,
            idempotent: None,
            cache: CacheMode::ReadWrite,
        }
    }

    /// A `GET` request for `url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new(Method::Get, url)
    }

    /// A `HEAD` request for `url`: the status and headers of a `GET`, no
    /// body (parsed as JSON, it is `null`).
    pub fn head(url: impl Into<String>) -> Request {
        Request::new(Method::Head, url)
    }

    /// A `POST` request for `url`; give it a body with [`json`](Request::json),
    /// [`form`](Request::form) or [`body`](Request::body). Not retried unless
    /// marked [`idempotent`](Request::idempotent).
    pub fn post(url: impl Into<String>) -> Request {
        Request::new(Method::Post, url)
    }

    /// A `PUT` request for `url`; give it a body with [`json`](Request::json),
    /// [`form`](Request::form) or [`body`](Request::body). Retried, as PUT is
    /// idempotent.
    pub fn put(url: impl Into<String>) -> Request {
        Request::new(Method::Put, url)
    }

    /// A `PATCH` request for `url`; give it a body with
    /// [`json`](Request::json), [`form`](Request::form) or
    /// [`body`](Request::body). Not retried unless marked
    /// [`idempotent`](Request::idempotent).
    pub fn patch(url: impl Into<String>) -> Request {
        Request::new(Method::Patch, url)
    }

    /// A `DELETE` request for `url`. Retried, as DELETE is idempotent.
    pub fn delete(url: impl Into<String>) -> Request {
        Request::new(Method::Delete, url)
    }

    /// A `POST` request for `url` with `body` serialised as JSON:
    /// `Request::post(url).json(body)`.
    ///
    /// POST is not idempotent, so it is not retried unless you say it is
    /// safe with [`idempotent(true)`](Request::idempotent). If `body` cannot
    /// be serialised, fetching the request fails with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest).
    pub fn post_json<B: Serialize + ?Sized>(url: impl Into<String>, body: &B) -> Request {
        Request::post(url).json(body)
    }

    /// Sends `body` serialised as JSON, with `Content-Type:
    /// application/json` (unless the request sets its own Content-Type
    /// header: yours wins, for `application/merge-patch+json` and the
    /// like). Replaces any body set before.
    ///
    /// If `body` cannot be serialised (a map with keys that are not
    /// strings, a `Serialize` impl that fails), fetching the request fails
    /// with [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest),
    /// unsent.
    #[must_use]
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Request {
        self.body = match serde_json::to_vec(body) {
            Ok(json) => Body::Bytes {
                bytes: json,
                content_type: Some(JSON.to_owned()),
            },
            Err(error) => Body::Invalid(format!("body cannot be serialised as JSON: {error}")),
        };
        self
    }

    /// Sends `pairs` as a form, `application/x-www-form-urlencoded` (as an
    /// HTML form posts it: spaces as `+`, everything else but letters,
    /// digits and `*-._` percent-encoded), in the order given. Unless the
    /// request sets its own Content-Type header, it goes with that type.
    /// Replaces any body set before.
    ///
    /// ```
    /// let login = parfetch::Request::post("https://api.example/login")
    ///     .form(&[("user", "ada"), ("password", "p&ss word")]);
    /// # let _ = login;
    /// ```
    #[must_use]
    pub fn form<I, K, V>(mut self, pairs: I) -> Request
    where
        I: IntoIterator,
        I::Item: std::borrow::Borrow<(K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let form = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.body = Body::Bytes {
            bytes: form.into_bytes(),
            content_type: Some(FORM.to_owned()),
        };
        self
    }

    /// Sends `bytes` as they are, with `content_type` as the Content-Type
    /// (unless the request sets its own header: yours wins). Replaces any
    /// body set before.
    ///
    /// ```
    /// let upload = parfetch::Request::put("https://api.example/files/a.csv")
    ///     .body("a,b\n1,2\n", "text/csv");
    /// # let _ = upload;
    /// ```
    #[must_use]
    pub fn body(mut self, bytes: impl Into<Vec<u8>>, content_type: impl Into<String>) -> Request {
        self.body = Body::Bytes {
            bytes: bytes.into(),
            content_type: Some(content_type.into()),
        };
        self
    }

    /// Adds the query parameter `name=value` to the URL, both escaped as
    /// an HTML form does (`application/x-www-form-urlencoded`: a space is
    /// `+`, `&`, `=`, `#` and the rest percent-encoded), after any query
    /// the URL has. A fragment (`#...`) stays at the end, and is never
    /// sent. Call it again for more; a name given twice is sent twice.
    ///
    /// ```
    /// let request = parfetch::Request::get("https://api.example/search?page=2#top")
    ///     .query("q", "laps & times")
    ///     .query("driver", "Pérez");
    /// assert_eq!(
    ///     request.url(),
    ///     "https://api.example/search?page=2&q=laps+%26+times&driver=P%C3%A9rez#top"
    /// );
    /// ```
    #[must_use]
    pub fn query(mut self, name: impl AsRef<str>, value: impl AsRef<str>) -> Request {
        let pair = url::form_urlencoded::Serializer::new(String::new())
            .append_pair(name.as_ref(), value.as_ref())
            .finish();
        let (before, fragment) = match self.url.find('#') {
            Some(at) => self.url.split_at(at),
            None => (self.url.as_str(), ""),
        };
        let joint = match before.find('?') {
            None => "?",
            Some(_) if before.ends_with(['?', '&']) => "",
            Some(_) => "&",
        };
        self.url = format!("{before}{joint}{pair}{fragment}");
        self
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
    /// [`FetcherBuilder::sensitive_header_name`](crate::FetcherBuilder::sensitive_header_name),
    /// which marks a name for every request, and
    /// [`FetcherBuilder::sensitive_header`](crate::FetcherBuilder::sensitive_header),
    /// which sends a secret header with every request).
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

    /// Bounds the whole request: all its attempts, the backoff and
    /// Retry-After waits between them, and its waits for its host (a
    /// pause, an open breaker's probe), from when it starts (a request
    /// still queued in a batch has not). Each attempt's timeout is cut to
    /// what is left. When it runs out, the request ends with
    /// [`ErrorKind::DeadlineExceeded`](crate::ErrorKind::DeadlineExceeded),
    /// with its last failure, if it had one, as the cause. In a batch with
    /// a deadline of its own, the earlier of the two counts.
    ///
    /// Instead of the fetcher's
    /// [`total_timeout`](crate::FetcherBuilder::total_timeout). A zero
    /// deadline fails the request with
    /// [`ErrorKind::InvalidRequest`](crate::ErrorKind::InvalidRequest),
    /// unsent; one past a century is taken as a century.
    #[must_use]
    pub fn deadline(mut self, deadline: Duration) -> Request {
        self.deadline = Some(deadline);
        self
    }

    /// Declares whether the request may be sent more than once, and so be
    /// retried. By default, as RFC 9110 §9.2.2 says: `GET`, `HEAD`,
    /// `OPTIONS`, `PUT` and `DELETE` are idempotent; `POST` and `PATCH` are
    /// not (a second one may do it twice), unless marked here (an API that
    /// takes an idempotency key, say). `idempotent(false)` keeps any
    /// request from being retried.
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

    /// The deadline set on this request with
    /// [`deadline`](Request::deadline), if any.
    pub fn deadline_override(&self) -> Option<Duration> {
        self.deadline
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// Whether it was marked [`idempotent`](Request::idempotent) or not;
    /// `None` when its method decides.
    pub(crate) fn idempotent_mark(&self) -> Option<bool> {
        self.idempotent
    }

    pub(crate) fn method_name(&self) -> &'static str {
        self.method.as_str()
    }

    /// Whether this request marked header `name` sensitive.
    pub(crate) fn is_sensitive(&self, name: &str) -> bool {
        self.sensitive.iter().any(|s| s.eq_ignore_ascii_case(name))
    }

    /// An error about this request, with its method and URL.
    pub(crate) fn error(&self, kind: ErrorKind) -> Error {
        Error::new(kind).with_request(self.method_name(), &self.url)
    }

    /// This request's error when it is rejected before anything is sent
    /// (it cannot be run at all), for `reason`.
    pub(crate) fn rejected(&self, reason: &str) -> Error {
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
            .method(self.method.to_http())
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
        // The body's type goes under the request's own header, over the
        // fetcher's.
        let body: &[u8] = match &self.body {
            Body::Empty => &[],
            Body::Bytes {
                bytes,
                content_type,
            } => {
                if let Some(content_type) = content_type {
                    if !headers.contains_key(http::header::CONTENT_TYPE) {
                        let value = HeaderValue::from_str(content_type).map_err(|_| {
                            invalid(format!(
                                "the body's content type {content_type:?} has a forbidden \
                                 character"
                            ))
                        })?;
                        headers.insert(http::header::CONTENT_TYPE, value);
                    }
                }
                bytes
            }
            Body::Invalid(reason) => return Err(invalid(reason.clone())),
        };
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

/// A copy of the request: a list of requests can be fetched by reference
/// (`fetcher.fetch_many(&requests)`) and kept.
impl From<&Request> for Request {
    fn from(request: &Request) -> Request {
        request.clone()
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
        if let Some(deadline) = self.deadline {
            debug.field("deadline", &deadline);
        }
        if let Body::Bytes { bytes, .. } = &self.body {
            debug.field("body_bytes", &bytes.len());
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
    fn methods_bodies_and_their_types() {
        let post = Request::post_json("http://h/", &serde_json::json!({"a": 1}));
        let http = post.to_http(&[]).unwrap();
        assert_eq!(http.method(), http::Method::POST);
        assert_eq!(*http.body(), br#"{"a":1}"#);
        assert_eq!(http.headers()["content-type"], "application/json");
        let cases = [
            (Request::get("http://h/"), http::Method::GET),
            (Request::head("http://h/"), http::Method::HEAD),
            (Request::put("http://h/"), http::Method::PUT),
            (Request::patch("http://h/"), http::Method::PATCH),
            (Request::delete("http://h/"), http::Method::DELETE),
            (
                Request::new(Method::Options, "http://h/"),
                http::Method::OPTIONS,
            ),
        ];
        for (request, want) in cases {
            assert_eq!(request.to_http(&[]).unwrap().method(), want);
            assert_eq!(request.method_name(), want.as_str());
        }
        let form = Request::post("http://h/").form(&[("a b", "x&y=z"), ("é", "~")]);
        let http = form.to_http(&[]).unwrap();
        assert_eq!(*http.body(), b"a+b=x%26y%3Dz&%C3%A9=%7E");
        assert_eq!(
            http.headers()["content-type"],
            "application/x-www-form-urlencoded"
        );
        // The request's own Content-Type wins over the body's, which wins
        // over the fetcher's.
        let defaults = [(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("text/plain"),
        )];
        let own = Request::patch("http://h/")
            .header("Content-Type", "application/merge-patch+json")
            .json(&serde_json::json!({"a": null}));
        let http = own.to_http(&defaults).unwrap();
        let types: Vec<_> = http.headers().get_all("content-type").iter().collect();
        assert_eq!(types, ["application/merge-patch+json"]);
        let raw = Request::put("http://h/").body(vec![0, 1, 2], "application/octet-stream");
        let http = raw.to_http(&defaults).unwrap();
        assert_eq!(http.headers()["content-type"], "application/octet-stream");
        assert_eq!(*http.body(), [0, 1, 2]);
        let bad = Request::put("http://h/").body("x", "text/plain\r\nx-injected: 1");
        let error = bad.to_http(&[]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidRequest);
        assert!(
            error.to_string().contains("the body's content type"),
            "{error}"
        );
    }

    #[test]
    fn query_parameters_are_escaped_and_appended() {
        let cases = [
            ("http://h/p", "http://h/p?q=a+b%26c"),
            ("http://h/p?", "http://h/p?q=a+b%26c"),
            ("http://h/p?x=1", "http://h/p?x=1&q=a+b%26c"),
            ("http://h/p?x=1&", "http://h/p?x=1&q=a+b%26c"),
            ("http://h/p#f?g", "http://h/p?q=a+b%26c#f?g"),
            ("http://h/p?x=1#f", "http://h/p?x=1&q=a+b%26c#f"),
        ];
        for (url, want) in cases {
            let request = Request::get(url).query("q", "a b&c");
            assert_eq!(request.url(), want, "{url}");
            // The fragment is not sent.
            let http = request.to_http(&[]).unwrap();
            assert!(!http.uri().to_string().contains('#'), "{}", http.uri());
        }
        let twice = Request::get("http://h/").query("k", "1").query("k", "=#?/");
        assert_eq!(twice.url(), "http://h/?k=1&k=%3D%23%3F%2F");
    }

    #[test]
    fn conversions() {
        let url = url::Url::parse("http://h/a?b=1").unwrap();
        let owned = String::from("http://h/s");
        let request = Request::put("http://h/r").deadline(Duration::from_secs(1));
        let converted: [Request; 6] = [
            "http://h/s".into(),
            (&"http://h/s").into(),
            (&owned).into(),
            url.clone().into(),
            (&url).into(),
            (&request).into(),
        ];
        let urls: Vec<&str> = converted.iter().map(Request::url).collect();
        assert_eq!(
            urls,
            [
                "http://h/s",
                "http://h/s",
                "http://h/s",
                "http://h/a?b=1",
                "http://h/a?b=1",
                "http://h/r"
            ]
        );
        assert_eq!(converted[5].method(), Method::Put);
        assert_eq!(
            converted[5].deadline_override(),
            Some(Duration::from_secs(1))
        );
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
