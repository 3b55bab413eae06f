//! The one error type of the crate.
//!
//! Every failure a caller can see is an [`Error`]. Callers branch on
//! [`Error::kind`] or [`Error::is_retryable`], never on the message: the
//! message is for people and may change. The error is one pointer wide (the
//! details live in a `Box`), so `Result<T, Error>` stays small in a batch of
//! a million results.

pub(crate) mod classify;

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

/// The kind of an [`Error`]: what went wrong, in terms a caller can act on.
///
/// New kinds may be added in minor releases, so a `match` needs a `_` arm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The server answered 404 Not Found or 410 Gone. Never retried.
    NotFound,
    /// The server answered another non-2xx status (after any retries).
    /// 5xx, 408 and 429 are retried; other 4xx are not.
    Status,
    /// DNS, connect, reset, or a truncated body. Retried.
    Network,
    /// A certificate or TLS handshake failure. Not retried.
    Tls,
    /// An attempt ran past its timeout. Retried.
    Timeout,
    /// The body is not JSON, or not JSON of the requested type. Not retried.
    InvalidJson,
    /// The body is larger than the configured limit, counted after
    /// decompression (or the response head is larger than 28 KiB, or has
    /// more than 127 header lines). Not retried.
    BodyTooLarge,
    /// The host's circuit breaker is open: no request was sent.
    CircuitOpen,
    /// The request itself is malformed (bad URL, bad header). Nothing was sent.
    InvalidRequest,
    /// A redirect could not be followed: a loop, too many hops, or one that
    /// is not allowed (from https down to plain http). Not retried.
    Redirect,
    /// Offline mode, and nothing usable in the cache. Nothing was sent.
    Offline,
    /// A deadline passed before the request finished: its own
    /// ([`Request::deadline`](crate::Request::deadline) or
    /// [`total_timeout`](crate::FetcherBuilder::total_timeout)) or its
    /// batch's ([`Batch::deadline`](crate::Batch::deadline)); the message
    /// says which, and `source()` holds its last failure, if it had one.
    DeadlineExceeded,
    /// The batch was cancelled before the request finished.
    Cancelled,
    /// The fetcher's settings are impossible (returned by
    /// [`FetcherBuilder::build`](crate::FetcherBuilder::build)).
    InvalidConfig,
    /// A panic on this request's way (in parfetch, a dependency, or your
    /// `Deserialize` impl) was caught and ended this request alone; the
    /// message says where. A bug: please report it. Not retried.
    Internal,
}

/// The kind's name, as the variant is spelled (`NotFound`, `Timeout`): the
/// same word the command's JSON lines and summary use, stable across
/// versions.
impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl ErrorKind {
    /// Every kind, in declaration order (used to index per-kind counters).
    pub(crate) const ALL: [ErrorKind; 15] = [
        ErrorKind::NotFound,
        ErrorKind::Status,
        ErrorKind::Network,
        ErrorKind::Tls,
        ErrorKind::Timeout,
        ErrorKind::InvalidJson,
        ErrorKind::BodyTooLarge,
        ErrorKind::CircuitOpen,
        ErrorKind::InvalidRequest,
        ErrorKind::Redirect,
        ErrorKind::Offline,
        ErrorKind::DeadlineExceeded,
        ErrorKind::Cancelled,
        ErrorKind::InvalidConfig,
        ErrorKind::Internal,
    ];

    /// This kind's position in [`ErrorKind::ALL`].
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// An error from building a fetcher or fetching a URL.
///
/// It carries the URL ([`url`](Error::url)), the attempts made
/// ([`attempts`](Error::attempts)), the HTTP status where there was one
/// ([`status`](Error::status)), and the underlying cause in
/// [`source`](StdError::source).
///
/// Its `Display` is the whole story on one line: the request, what went
/// wrong, and then its causes, each after `": "`, so that
/// `eprintln!("{error}")` is enough: `GET http://127.0.0.1:1/x: network
/// error after 4 attempts: io: Connection refused (os error 111)`. Secrets
/// are hidden in it as everywhere. `source()` holds the same causes as
/// values, for code that inspects them; a reporter that prints the
/// `source()` chain after the message (anyhow's `{:#}`) prints them twice.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    method: &'static str,
    url: Option<String>,
    status: Option<u16>,
    attempts: u32,
    /// From the request's first step to this error.
    elapsed: Duration,
    /// How long the server asked us to wait (Retry-After), if it did.
    retry_after: Option<Duration>,
    /// This error is the cause of another about the same request, which
    /// names the request already: its message does not again.
    is_cause: bool,
    detail: Detail,
    source: Option<Box<dyn StdError + Send + Sync>>,
}

/// Why a body is not the JSON asked for (`json_error.rs` words it).
#[derive(Debug, Default)]
pub(crate) struct JsonDetail {
    /// Where in the document, for a typed target: `laps[3].time`.
    pub(crate) path: Option<String>,
    pub(crate) offset: Option<usize>,
    /// What was expected and what came instead, in words.
    pub(crate) problem: String,
    /// The response's Content-Type, when it does not say JSON.
    pub(crate) content_type: Option<String>,
    /// A Content-Encoding parfetch does not decode, if the body had one.
    pub(crate) content_encoding: Option<String>,
}

/// What the message says beyond the kind: the facts of this layer.
#[derive(Debug, Default)]
pub(crate) enum Detail {
    #[default]
    None,
    /// A short, already sanitised excerpt of an error response's body.
    BodyExcerpt(String),
    /// The attempt timeout that ran out.
    Timeout(Duration),
    /// The connect timeout that ran out (connection, proxy and TLS set-up).
    ConnectTimeout(Duration),
    /// The body limit in bytes.
    Limit(u64),
    /// What was wrong with the JSON, and where.
    Json(Box<JsonDetail>),
    /// The host whose breaker is open, and what opened it.
    Breaker { host: String, cause: String },
    /// Free text for invalid requests and settings (never a header value).
    Reason(String),
    /// The proxy failed: which (credentials hidden), and how.
    Proxy { proxy: String, problem: String },
    /// The request's own deadline ran out (not its batch's): how long it was.
    Deadline(Duration),
}

impl Error {
    pub(crate) fn new(kind: ErrorKind) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                method: "GET",
                url: None,
                status: None,
                attempts: 0,
                elapsed: Duration::ZERO,
                retry_after: None,
                is_cause: false,
                detail: Detail::None,
                source: None,
            }),
        }
    }

    /// An [`ErrorKind::InvalidJson`] error: what is wrong (`problem`, in
    /// words), and where, when that is known.
    pub(crate) fn invalid_json(
        problem: String,
        path: Option<String>,
        offset: Option<usize>,
    ) -> Error {
        Error::new(ErrorKind::InvalidJson).with_detail(Detail::Json(Box::new(JsonDetail {
            path,
            offset,
            problem,
            content_type: None,
            content_encoding: None,
        })))
    }

    pub(crate) fn config(reason: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidConfig).with_detail(Detail::Reason(reason.into()))
    }

    pub(crate) fn with_request(mut self, method: &'static str, url: &str) -> Error {
        self.inner.method = method;
        self.inner.url = Some(url.to_owned());
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Error {
        self.inner.status = Some(status);
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Error {
        self.inner.attempts = attempts;
        self
    }

    pub(crate) fn with_elapsed(mut self, elapsed: Duration) -> Error {
        self.inner.elapsed = elapsed;
        self
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Option<Duration>) -> Error {
        self.inner.retry_after = retry_after;
        self
    }

    pub(crate) fn with_detail(mut self, detail: Detail) -> Error {
        self.inner.detail = detail;
        self
    }

    /// For an `InvalidJson` error, what the response said it held: its
    /// Content-Type (kept only when it does not say JSON: then it explains
    /// the failure), and a Content-Encoding parfetch does not decode.
    pub(crate) fn with_body_labels(
        mut self,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> Error {
        if let Detail::Json(json) = &mut self.inner.detail {
            json.content_type = content_type.filter(|t| !says_json(t)).map(str::to_owned);
            json.content_encoding = content_encoding.map(str::to_owned);
        }
        self
    }

    /// This error, as the cause of another about the same request: its
    /// message leaves the request out (the outer one names it).
    pub(crate) fn into_cause(mut self) -> Error {
        self.inner.is_cause = true;
        self
    }

    pub(crate) fn with_source(
        mut self,
        source: impl Into<Box<dyn StdError + Send + Sync>>,
    ) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    /// This error in a few words, without the request, and its causes:
    /// "503 Service Unavailable", "network error: connection refused".
    pub(crate) fn summary(&self) -> String {
        struct AsCause<'e>(&'e Error);
        impl fmt::Display for AsCause<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write_message(f, false)?;
                self.0.write_causes(f)
            }
        }
        AsCause(self).to_string()
    }

    /// What went wrong. Branch on this, not on the message.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The URL of the request, exactly as given: user info in it
    /// (`https://TOKEN@host/`) is kept here, for your code, and hidden only
    /// in messages and `Debug`. Do not log it as it is. `None` for
    /// configuration errors.
    pub fn url(&self) -> Option<&str> {
        self.inner.url.as_deref()
    }

    /// The HTTP status of the last response, where there was one.
    pub fn status(&self) -> Option<u16> {
        self.inner.status
    }

    /// How many attempts were made: 0 when nothing was sent (an open
    /// breaker, an invalid request), else 1 plus the retries.
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    /// From the request's first step to this error, retry delays and
    /// waits for its host included (as [`Response::elapsed`](crate::Response::elapsed)
    /// for a success). Zero for an error about no request (a setting).
    pub fn elapsed(&self) -> Duration {
        self.inner.elapsed
    }

    /// The start of the error response's body, for [`ErrorKind::Status`]
    /// and [`ErrorKind::NotFound`] errors (servers often say there why they
    /// refused). At most 200 characters.
    pub fn body_excerpt(&self) -> Option<&str> {
        match &self.inner.detail {
            Detail::BodyExcerpt(text) => Some(text),
            _ => None,
        }
    }

    /// How long the server asked to be left alone (its `Retry-After` on a
    /// 429 or 503, in seconds or as a date), as it said it, even past
    /// [`max_retry_after`](crate::FetcherBuilder::max_retry_after). A
    /// request whose server asks for a longer wait than `max_retry_after`
    /// is not retried: it ends at once with this error, so that you can
    /// schedule it again.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    /// For [`ErrorKind::InvalidJson`]: the path in the document where the
    /// value did not fit the requested type, such as `laps[3].time`.
    pub fn json_path(&self) -> Option<&str> {
        match &self.inner.detail {
            Detail::Json(json) => json.path.as_deref(),
            _ => None,
        }
    }

    /// For [`ErrorKind::InvalidJson`]: the byte offset in the body where
    /// parsing failed, when the parser knows it.
    pub fn json_offset(&self) -> Option<usize> {
        match &self.inner.detail {
            Detail::Json(json) => json.offset,
            _ => None,
        }
    }

    /// Whether this failure is of a kind the retry rules retry (see the
    /// crate docs): `Network`, `Timeout`, and `Status` for a 408, a 429 or
    /// a 5xx other than 501. It judges the failure, not what became of the
    /// request: `true` also when the failure was not retried, because the
    /// request may not be resent (a POST or PATCH not marked
    /// [`idempotent`](crate::Request::idempotent): its 5xx is `true` after
    /// one attempt), because the server asked for a wait past
    /// [`max_retry_after`](crate::FetcherBuilder::max_retry_after), because
    /// the host's retry budget was spent, or because `max_retries` were
    /// used up. [`attempts`](Error::attempts) says how many were made.
    ///
    /// `false` for `CircuitOpen` and `Offline` (nothing was sent), and for
    /// `DeadlineExceeded` and `Cancelled`, which end a request when its
    /// deadline passes or its batch is cancelled, before its first attempt,
    /// between attempts or cutting one short (nothing more may be sent):
    /// the request may well succeed later, but not by a retry now. When such a
    /// request had attempts, `source()` is its last failure, a parfetch
    /// [`Error`] whose own `is_retryable` judges that failure. `false` too
    /// for what the same request would get again: other 4xx, `NotFound`,
    /// 501, `Tls`, `InvalidJson`, `BodyTooLarge`, `Redirect`,
    /// `InvalidRequest`, `InvalidConfig`, `Internal`.
    pub fn is_retryable(&self) -> bool {
        classify::is_retryable(self.inner.kind, self.inner.status)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_message(f, !self.inner.is_cause)?;
        self.write_causes(f)
    }
}

impl Error {
    /// The `source()` chain, each cause after `": "`. A cause that is a
    /// parfetch error writes only its own message here: its causes follow
    /// in the chain (its `Display` would write them a second time).
    fn write_causes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut source = self.source();
        while let Some(cause) = source {
            f.write_str(": ")?;
            match cause.downcast_ref::<Error>() {
                Some(ours) => ours.write_message(f, !ours.inner.is_cause)?,
                None => write!(f, "{cause}")?,
            }
            source = cause.source();
        }
        Ok(())
    }

    /// The message: the request (if `with_request`), what went wrong, and
    /// the particulars of this layer.
    fn write_message(&self, f: &mut fmt::Formatter<'_>, with_request: bool) -> fmt::Result {
        let inner = &self.inner;
        if let Some(url) = inner.url.as_ref().filter(|_| with_request) {
            write!(f, "{} {}: ", inner.method, crate::redact::url(url))?;
        }
        match (&inner.kind, &inner.detail) {
            (ErrorKind::NotFound | ErrorKind::Status, _) => match inner.status {
                Some(code) => write!(f, "{code} {}", reason_phrase(code))?,
                None => f.write_str("unexpected status")?,
            },
            (ErrorKind::Network, _) => f.write_str("network error")?,
            (ErrorKind::Tls, Detail::Reason(reason)) => write!(f, "TLS failure: {reason}")?,
            (ErrorKind::Tls, _) => f.write_str("TLS failure")?,
            (ErrorKind::Timeout, Detail::Timeout(limit)) => {
                write!(f, "timed out ({limit:?} per attempt)")?;
            }
            (ErrorKind::Timeout, Detail::ConnectTimeout(limit)) => {
                write!(f, "timed out connecting ({limit:?} connect timeout)")?;
            }
            (ErrorKind::Timeout, Detail::Reason(reason)) => write!(f, "timed out {reason}")?,
            (ErrorKind::Timeout, _) => f.write_str("timed out")?,
            (ErrorKind::InvalidJson, Detail::Json(json)) => {
                write!(f, "invalid JSON: {}", json.problem)?;
                if let Some(path) = json.path.as_deref().filter(|p| !p.is_empty() && *p != ".") {
                    write!(f, " at {path:?}")?;
                }
                if let Some(offset) = json.offset {
                    write!(f, " at byte {offset}")?;
                }
                if let Some(encoding) = &json.content_encoding {
                    write!(
                        f,
                        " (the body is {encoding}-encoded, which parfetch does not decode)"
                    )?;
                } else if let Some(content_type) = &json.content_type {
                    write!(f, " (content type {content_type})")?;
                }
            }
            (ErrorKind::InvalidJson, _) => f.write_str("invalid JSON")?,
            (ErrorKind::BodyTooLarge, Detail::Limit(limit)) => {
                write!(
                    f,
                    "body is larger than the limit of {limit} bytes (raise body_limit to accept it)"
                )?;
            }
            (ErrorKind::BodyTooLarge, Detail::Reason(reason)) => f.write_str(reason)?,
            (ErrorKind::BodyTooLarge, _) => f.write_str("body is larger than the limit")?,
            (ErrorKind::CircuitOpen, Detail::Breaker { host, cause }) => write!(
                f,
                "circuit breaker for {host} is open ({cause}); nothing was sent"
            )?,
            (ErrorKind::CircuitOpen, _) => {
                f.write_str("circuit breaker is open; no request sent")?;
            }
            (ErrorKind::InvalidRequest, Detail::Reason(reason)) => {
                write!(f, "invalid request: {reason}")?;
            }
            (ErrorKind::InvalidRequest, _) => f.write_str("invalid request")?,
            (ErrorKind::Redirect, _) => f.write_str("redirect not followed")?,
            (ErrorKind::Offline, Detail::Reason(reason)) => write!(f, "offline, and {reason}")?,
            (ErrorKind::Offline, _) => {
                f.write_str("offline, and the cache has no entry for it")?;
            }
            (ErrorKind::DeadlineExceeded, Detail::Deadline(length)) => {
                write!(
                    f,
                    "the request's deadline ({length:?}) passed before it finished"
                )?;
            }
            (ErrorKind::DeadlineExceeded, _) => {
                f.write_str("the batch deadline passed before the request finished")?;
            }
            (ErrorKind::Cancelled, _) => {
                f.write_str("the batch was cancelled before the request finished")?;
            }
            (ErrorKind::InvalidConfig, Detail::Reason(reason)) => {
                write!(f, "invalid fetcher setting: {reason}")?;
            }
            (ErrorKind::InvalidConfig, _) => f.write_str("invalid fetcher setting")?,
            (ErrorKind::Internal, Detail::Reason(reason)) => write!(
                f,
                "internal error, caught (a bug: please report it): {reason}"
            )?,
            (ErrorKind::Internal, _) => {
                f.write_str("internal error, caught (a bug: please report it)")?;
            }
        }
        if let Detail::Proxy { proxy, problem } = &inner.detail {
            write!(f, " at the proxy {proxy} ({problem})")?;
        }
        if inner.attempts > 1 {
            write!(f, " after {} attempts", inner.attempts)?;
        }
        if let Detail::BodyExcerpt(excerpt) = &inner.detail {
            write!(f, " (body: {excerpt:?})")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        let mut debug = f.debug_struct("Error");
        debug.field("kind", &inner.kind);
        if let Some(url) = &inner.url {
            debug.field("method", &inner.method);
            debug.field("url", &crate::redact::url(url));
        }
        if let Some(status) = inner.status {
            debug.field("status", &status);
        }
        debug.field("attempts", &inner.attempts);
        if let Some(retry_after) = inner.retry_after {
            debug.field("retry_after", &retry_after);
        }
        if !matches!(inner.detail, Detail::None) {
            debug.field("detail", &inner.detail);
        }
        if let Some(source) = &inner.source {
            debug.field("source", source);
        }
        debug.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|source| source as &(dyn StdError + 'static))
    }
}

/// Whether a Content-Type says one JSON document: `application/json`,
/// `text/json` or a `+json` type (not NDJSON, `application/x-ndjson`).
pub(crate) fn says_json(content_type: &str) -> bool {
    let mime = content_type.split(';').next().unwrap_or_default().trim();
    mime.eq_ignore_ascii_case("application/json")
        || mime.eq_ignore_ascii_case("text/json")
        || mime.to_ascii_lowercase().ends_with("+json")
}

/// The standard reason phrase of a status code, for messages.
fn reason_phrase(code: u16) -> &'static str {
    ureq::http::StatusCode::from_u16(code)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("(non-standard status)")
}

/// The first `max` characters of `text`, and whether more follow: the one
/// rule for cutting a body short in a message. The transport's excerpt of
/// an error body (one line, for [`Error::body_excerpt`]) and the parser's
/// of where a body went wrong (quoted and escaped) differ in what they show,
/// not in where they cut.
pub(crate) fn clip(text: &str, max: usize) -> (&str, bool) {
    match text.char_indices().nth(max) {
        Some((at, _)) => (&text[..at], true),
        None => (text, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_is_one_pointer_wide() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }

    /// The kinds named in the first column of the error table that starts
    /// at `header` in `text` (each line's prefix `prefix` taken off).
    fn table_kinds(text: &str, header: &str, prefix: &str) -> Vec<String> {
        let table = text
            .split(header)
            .nth(1)
            .unwrap_or_else(|| panic!("no table under {header:?}"));
        table
            .lines()
            .skip(1)
            .map(|line| line.strip_prefix(prefix).unwrap_or(line))
            .take_while(|line| line.starts_with('|'))
            .filter(|line| !line.starts_with("|---"))
            .flat_map(|line| {
                let first = line.split('|').nth(1).unwrap_or_default();
                first
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The error tables of the crate docs and of docs/errors.md list every
    /// kind once, and nothing else: a kind added without its rows fails
    /// here (and one left out of `ALL` fails to compile below).
    #[test]
    fn the_error_tables_list_every_kind() {
        // No `_` arm: a new kind must be placed here, and so in `ALL`.
        fn in_all(kind: ErrorKind) -> bool {
            match kind {
                ErrorKind::NotFound
                | ErrorKind::Status
                | ErrorKind::Network
                | ErrorKind::Tls
                | ErrorKind::Timeout
                | ErrorKind::InvalidJson
                | ErrorKind::BodyTooLarge
                | ErrorKind::CircuitOpen
                | ErrorKind::InvalidRequest
                | ErrorKind::Redirect
                | ErrorKind::Offline
                | ErrorKind::DeadlineExceeded
                | ErrorKind::Cancelled
                | ErrorKind::InvalidConfig
                | ErrorKind::Internal => ErrorKind::ALL.contains(&kind),
            }
        }
        assert!(ErrorKind::ALL.iter().all(|kind| in_all(*kind)));
        let mut kinds: Vec<String> = ErrorKind::ALL.iter().map(ToString::to_string).collect();
        kinds.sort();
        let tables = [
            (
                "src/lib.rs",
                table_kinds(
                    include_str!("../lib.rs"),
                    "//! | [`ErrorKind`] | when | retried |",
                    "//! ",
                ),
            ),
            (
                "docs/errors.md",
                table_kinds(
                    include_str!("../../docs/errors.md"),
                    "| `ErrorKind` | when | retried |",
                    "",
                ),
            ),
        ];
        for (file, mut listed) in tables {
            listed.sort();
            assert_eq!(listed, kinds, "the error table of {file}");
        }
    }

    #[test]
    fn kind_index_matches_all() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }

    #[test]
    fn display_pins_messages() {
        let cases = [
            (
                Error::new(ErrorKind::Status)
                    .with_request("GET", "https://host/x.json")
                    .with_status(503)
                    .with_attempts(4),
                "GET https://host/x.json: 503 Service Unavailable after 4 attempts",
            ),
            (
                Error::new(ErrorKind::NotFound)
                    .with_request("GET", "https://user:secret@host/x.json")
                    .with_status(404)
                    .with_attempts(1),
                "GET https://***@host/x.json: 404 Not Found",
            ),
            (
                Error::new(ErrorKind::InvalidJson)
                    .with_request("GET", "http://h/a")
                    .with_attempts(1)
                    .with_detail(Detail::Json(Box::new(JsonDetail {
                        path: Some("laps[3].time".into()),
                        problem: "invalid type: string \"slow\", expected f64".into(),
                        ..JsonDetail::default()
                    }))),
                "GET http://h/a: invalid JSON: invalid type: string \"slow\", expected f64 \
                 at \"laps[3].time\"",
            ),
            (
                Error::new(ErrorKind::Status)
                    .with_request("POST", "http://h/a")
                    .with_status(400)
                    .with_attempts(1)
                    .with_detail(Detail::BodyExcerpt("bad \"id\"".into())),
                "POST http://h/a: 400 Bad Request (body: \"bad \\\"id\\\"\")",
            ),
            (
                Error::config("concurrency must be at least 1, got 0"),
                "invalid fetcher setting: concurrency must be at least 1, got 0",
            ),
        ];
        for (error, want) in cases {
            assert_eq!(error.to_string(), want);
        }
    }

    #[test]
    fn a_cause_does_not_name_the_request_again() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let cause = Error::new(ErrorKind::Network)
            .with_request("GET", "http://h/x")
            .with_attempts(1)
            .with_source(refused);
        let error = Error::new(ErrorKind::DeadlineExceeded)
            .with_request("GET", "http://h/x")
            .with_attempts(1)
            .with_source(cause.into_cause());
        // The causes follow, each once: the inner error's own cause is
        // written by the chain, not also by the inner error.
        assert_eq!(
            error.to_string(),
            "GET http://h/x: the batch deadline passed before the request finished: \
             network error: refused"
        );
        assert_eq!(
            error.summary(),
            "the batch deadline passed before the request finished: network error: refused"
        );
    }

    #[test]
    fn debug_redacts_credentials() {
        let error = Error::new(ErrorKind::Network)
            .with_request("GET", "https://me:hunter2@host/")
            .with_attempts(2);
        let debug = format!("{error:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(
            debug,
            "Error { kind: Network, method: \"GET\", url: \"https://***@host/\", attempts: 2 }"
        );
    }
}
