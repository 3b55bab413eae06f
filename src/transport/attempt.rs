//! One attempt: send the request, follow its redirects, read the body, all
//! within the attempt's timeout.
//!
//! The engine (`engine.rs`) decides whether an attempt may start and what
//! to do after it; this is the exchange itself. A pooled connection that
//! the server closed while it sat idle is not a failure of the host: a hop
//! sent on one is resent at once, on another connection, within the same
//! attempt. Its timeout is ureq's
//! global one (what each read may wait is in `agent.rs`); a redirect hop
//! gets what is left of it (`redirect.rs` says where a hop goes and with
//! which headers). A body is read whole within the size limit, counted
//! after decompression, and an error response's start is kept for the
//! message.

use std::borrow::Cow;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ureq::http::{self, HeaderMap, HeaderName, HeaderValue};

use crate::cancel::{CancelToken, Cancelled, Stop};
use crate::clock;
use crate::error::{self, classify, Detail, Error, ErrorKind};
use crate::policy::retry;
use crate::request::{Method, Request};
use crate::transport::agent::Agents;
use crate::transport::body_budget::{self, BodyBudget, Metered, Reservation, Room};
use crate::transport::cookies::{self, Jar};
use crate::transport::encoding;
use crate::transport::proxy;
use crate::transport::redirect::{self, NotFollowed};
use crate::transport::timed;
use crate::transport::tls;
use crate::transport::TransportSettings;

/// How many times one attempt (its redirect hops together) may be resent
/// because its pooled connection turned out stale. ureq already drops connections it sees closed; this
/// covers the race where the server closes one just as it is reused.
const STALE_RESENDS: u32 = 3;

/// How much of an error response's body is read for the error message;
/// reading a small body whole keeps the connection reusable.
const ERROR_BODY_READ: u64 = 64 << 10;
const ERROR_EXCERPT_CHARS: usize = 200;

/// How much of a redirect's body is read (and dropped) so that its
/// connection can be reused; a longer one closes the connection instead.
const REDIRECT_BODY_READ: u64 = 64 << 10;

/// Bodies at most this large (by Content-Length) get their buffer allocated
/// up front; larger ones grow as they arrive, so that a lying header cannot
/// make us allocate memory the body never fills.
const PREALLOCATE_LIMIT: u64 = 1 << 20;

/// What the cache needs from an attempt: revalidation headers to send (a
/// 304 is then a success), and the response headers back, to store.
#[derive(Clone, Copy, Default)]
pub(crate) struct CacheNeeds<'a> {
    pub(crate) conditional: &'a [(HeaderName, HeaderValue)],
    pub(crate) keep_headers: bool,
}

/// What a successful attempt received.
pub(crate) struct Received {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    /// The body's room in the fetcher's budget (`body_budget.rs`): given
    /// back when dropped.
    pub(crate) held: Reservation,
    /// The response headers, all of them, as ureq read them (moved, never
    /// copied).
    pub(crate) headers: HeaderMap,
    /// Whether the cache may keep them: it asked for them, and the answer
    /// may be cached (`cookies.rs`).
    pub(crate) cacheable: bool,
    /// Where the redirects led, if there were any.
    pub(crate) url: Option<String>,
    /// What the body is, for a message if it does not parse.
    pub(crate) labels: BodyLabels,
    /// From the start of the attempt to the response head: the host's
    /// answer time, for its governor (`policy/host/limit.rs`).
    pub(crate) head: Duration,
}

/// What a response said its body is: for the words of a parse failure.
#[derive(Debug, Default)]
pub(crate) struct BodyLabels {
    /// The Content-Type, when it does not say JSON.
    pub(crate) content_type: Option<Box<str>>,
    /// A Content-Encoding left undecoded (`encoding.rs`).
    pub(crate) undecoded: Option<Box<str>>,
}

/// Why one attempt failed.
pub(crate) enum AttemptError {
    /// No response, or no whole one: connect, TLS, timeout, reset, limit.
    Transport(ureq::Error),
    /// The body's read failed after a whole head came: `true` in
    /// [`AttemptError::after_head`], for the host's governor (a body cut
    /// short is a failure, not a sign of overload).
    BodyRead(ureq::Error),
    /// The server answered with a status that is not a success.
    Status {
        status: u16,
        retry_after: Option<Duration>,
        /// The start of the body (the whole of a small one).
        start: Vec<u8>,
        /// The response headers, when the cache needs them (a 404 may be
        /// stored too).
        headers: Option<Box<HeaderMap>>,
    },
    /// A redirect that must not, or cannot, be followed.
    Redirect(NotFollowed),
    /// The body came whole but its compressed data is damaged: the body's
    /// fault, not the network's (not retried).
    Undecodable {
        coding: String,
        cause: std::io::Error,
    },
    /// The proxy failed (`proxy.rs` says when it is the proxy's failure).
    Proxy {
        proxy: String,
        failure: proxy::Failure,
        cause: Option<ureq::Error>,
    },
    /// The attempt's time ran out while its body waited for room in the
    /// fetcher's budget (`body_budget.rs`), of `budget` bytes: the
    /// fetcher's doing, not the host's.
    NoRoom { budget: u64 },
}

/// The parts of a fetcher an attempt uses.
pub(crate) struct Attempt<'a> {
    pub(crate) agents: &'a Agents,
    pub(crate) settings: &'a TransportSettings,
    /// The fetcher's cookies, if it keeps them.
    pub(crate) jar: Option<&'a Jar>,
    pub(crate) cancel: Option<&'a CancelToken>,
    /// Told of each hop resent because its pooled connection was stale.
    pub(crate) on_stale: &'a dyn Fn(),
    /// The fetcher's budget of body bytes in flight.
    pub(crate) budget: &'a Arc<BodyBudget>,
    /// The request is nested in a batch of the same fetcher
    /// (`body_budget.rs`).
    pub(crate) nested: bool,
}

/// The request as ureq takes it: the fetcher's headers under the request's
/// own, and revalidation headers if any.
pub(crate) fn http_request<'r>(
    request: &'r Request,
    settings: &TransportSettings,
    needs: CacheNeeds<'_>,
) -> Result<http::Request<&'r [u8]>, Error> {
    let mut http = request.to_http(&settings.headers)?;
    for (name, value) in needs.conditional {
        http.headers_mut().insert(name.clone(), value.clone());
    }
    Ok(http)
}

impl Attempt<'_> {
    /// Sends `http` (built from `request`), follows its redirects and reads
    /// the whole body, all within `timeout`. `own_timeout` is set when that
    /// timeout is not the agent's (the request's own, or clipped by a
    /// deadline).
    pub(crate) fn run<'r>(
        &self,
        request: &'r Request,
        mut http: http::Request<&'r [u8]>,
        own_timeout: Option<Duration>,
        timeout: Duration,
        needs: CacheNeeds<'_>,
    ) -> Result<Received, AttemptError> {
        let settings = self.settings;
        // A cancel reaches reads blocked on the socket (`cancel.rs`).
        let _watching = self.cancel.map(CancelToken::watch);
        let started = Instant::now();
        // No wait on the way may outlast the attempt (`agent.rs`).
        let _ends = timed::attempt_ends_at(clock::after(started, timeout));
        // The cookies the first hop sent: a later hop that sends others
        // makes the answer one the cache must not file under the first's.
        let mut first_cookies = None;
        let mut cookies_changed = false;
        let mut url = Cow::Borrowed(request.url());
        // What the hops so far allow: a GET once one made it so, secrets
        // only while every hop kept to their origin.
        let mut made_get = false;
        let mut secrets_kept = true;
        let mut visited = Vec::new();
        let mut stale_resends = 0;
        let mut unsent_looks = 0;
        let mut response = loop {
            // Each hop gets what is left of the attempt's time.
            let left = timeout.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(timed_out());
            }
            // Each hop goes its own way (a proxy, or none), with the
            // cookies the jar has for it.
            let route = self.agents.route(&url);
            if let Some(jar) = self.jar {
                jar.add_to(&url, http.headers_mut());
                let sent = http.headers().get(http::header::COOKIE).cloned();
                match &first_cookies {
                    None => first_cookies = Some(sent),
                    Some(first) => cookies_changed |= *first != sent,
                }
            }
            let send = if visited.is_empty() && own_timeout.is_none() {
                http
            } else {
                route
                    .agent
                    .configure_request(http)
                    .timeout_global(Some(left))
                    .build()
            };
            let opened_before = timed::opened_on_this_thread();
            let tunnels_before = timed::tunnels_opened_on_this_thread();
            let resendable =
                (made_get || retry::may_resend(request)) && stale_resends < STALE_RESENDS;
            let probing = timed::probe_as_taken_out(unsent_looks >= timed::UNSENT_LOOKS);
            let answer = route.agent.run(send);
            drop(probing);
            let mut response = match answer {
                Ok(response) => response,
                Err(error) => {
                    let opened = timed::opened_on_this_thread() != opened_before;
                    let stale = classify::is_closed_before_response(&error) && !opened;
                    // Nothing of it went out: it goes on another
                    // connection, whatever its method (`timed.rs`).
                    let unsent = timed::is_unsent(&error);
                    if !(unsent || stale && resendable) {
                        let reached = proxy::Reached {
                            tunnel: !route.forward,
                            proxy: opened,
                            through: timed::tunnels_opened_on_this_thread() != tunnels_before,
                        };
                        return Err(match (route.proxy, proxy::failure(&error, reached)) {
                            (Some(via), Some(failure)) => AttemptError::Proxy {
                                proxy: via.to_string(),
                                failure,
                                // ureq's words for a refused CONNECT are
                                // in the failure's already.
                                cause: (!matches!(error, ureq::Error::ConnectProxyFailed(_)))
                                    .then_some(error),
                            },
                            _ => AttemptError::Transport(error),
                        });
                    }
                    if unsent {
                        unsent_looks += 1;
                    } else {
                        stale_resends += 1;
                    }
                    (self.on_stale)();
                    log::debug!(
                        "{} {}: {}; resending on another connection",
                        request.method_name(),
                        request.redacted_url(),
                        if unsent {
                            "pooled connection closed, or holding bytes unasked, before the request was written"
                        } else {
                            "pooled connection was closed by the server"
                        }
                    );
                    http = self.hop(request, needs, &url, made_get, secrets_kept)?;
                    continue;
                }
            };
            if let Some(jar) = self.jar {
                jar.store(&url, response.headers());
            }
            let status = response.status().as_u16();
            // A forward proxy answers for itself with 407 (through a tunnel,
            // the CONNECT gets it, and ureq says so).
            if let (407, Some(via)) = (status, route.proxy.filter(|_| route.forward)) {
                return Err(AttemptError::Proxy {
                    proxy: via.to_string(),
                    failure: proxy::wants_credentials(),
                    cause: None,
                });
            }
            if settings.max_redirects == 0 || !redirect::is_redirect(status) {
                break response;
            }
            let location = response.headers().get(http::header::LOCATION);
            let method = if made_get {
                "GET"
            } else {
                request.method_name()
            };
            let location = location.map(HeaderValue::as_bytes);
            let hop = match redirect::next_hop(&url, method, status, location) {
                Ok(Some(hop)) => hop,
                Ok(None) => break response,
                Err(not_followed) => return Err(AttemptError::Redirect(not_followed)),
            };
            if visited.len() >= settings.max_redirects as usize {
                let looped = visited.contains(&hop.url);
                return Err(AttemptError::Redirect(NotFollowed::TooMany {
                    max: settings.max_redirects,
                    looped,
                }));
            }
            // Read the little body there is, so the connection can be reused.
            let _ = response
                .body_mut()
                .as_reader()
                .take(REDIRECT_BODY_READ)
                .read_to_end(&mut Vec::new());
            made_get |= hop.becomes_get;
            secrets_kept &= hop.keeps_secrets;
            http = self.hop(request, needs, &hop.url, made_get, secrets_kept)?;
            visited.push(hop.url.clone());
            url = hop.url.into();
        };
        let head = started.elapsed();
        let status = response.status().as_u16();
        // No headers, nothing stored: an answer another session's cookies
        // made is not the cache's to keep.
        let cacheable = self
            .jar
            .is_none_or(|_| cookies::cacheable(response.headers(), cookies_changed));
        let cacheable = needs.keep_headers && cacheable;
        // Where the redirects led: the request's own URL is borrowed.
        let url = match url {
            Cow::Owned(url) => Some(url),
            Cow::Borrowed(_) => None,
        };
        if status == 304 && !needs.conditional.is_empty() {
            return Ok(Received {
                status,
                body: Vec::new(),
                held: self.budget.none(self.nested),
                headers: std::mem::take(response.headers_mut()),
                cacheable,
                url,
                labels: BodyLabels::default(),
                head,
            });
        }
        if classify::classify_status(status).is_some() {
            let retry_after = response
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| retry::parse_retry_after(value, SystemTime::now()));
            let mut start = Vec::new();
            // A body we cannot read (or not in time) is no reason to lose
            // the status.
            let _ = response
                .body_mut()
                .as_reader()
                .take(ERROR_BODY_READ)
                .read_to_end(&mut start);
            let start = encoding::decode_start(content_codings(&response), start);
            return Err(AttemptError::Status {
                status,
                retry_after,
                start,
                headers: cacheable.then(|| Box::new(response.headers().clone())),
            });
        }
        let limit = settings.body_limit;
        // Room for the body before its first byte is read: as much as its
        // length says, or as it grows (`body_budget.rs`). The wait is part
        // of the attempt's time.
        // RFC 9110 §6.4.1: these have no content, whatever their headers
        // say; ureq reads none, and no room is taken for it.
        let no_content = request.method() == Method::Head || matches!(status, 204 | 304);
        let known = if no_content {
            Some(0)
        } else {
            response.body().content_length()
        };
        // A length over the limit is refused before a byte is read, as
        // curl's --max-filesize does: reading would end so, later, holding
        // room meanwhile.
        if known.is_some_and(|length| length > limit) {
            return Err(too_large(limit));
        }
        let stop = Stop {
            deadline: clock::after(started, timeout),
            cancel: self.cancel,
        };
        let mut reserved = self.budget.none(self.nested);
        let mut body = Vec::new();
        if let Some(length) = known {
            reserved
                .grow_to(length, &stop)
                .map_err(|kind| self.no_room(kind))?;
            // And memory for the parser's padding after it: simd-json reads
            // a body in place, without a copy, when that much follows it.
            body.reserve_exact(
                usize::try_from(length.min(limit).min(PREALLOCATE_LIMIT))
                    .unwrap_or(0)
                    .saturating_add(simd_json::INPUT_PADDING),
            );
        }
        // ureq's own limit would end the read with an error of its own; the
        // limit is ours, counted again on what the body decodes to.
        let reader = response.body_mut().with_config().limit(u64::MAX).reader();
        let reader = CancellableReader {
            reader,
            cancel: self.cancel,
        };
        let read = Metered::new(reader, &mut reserved, 0, known, &stop)
            .take(limit.saturating_add(1))
            .read_to_end(&mut body);
        if let Err(io) = read {
            return Err(match body_budget::no_room(&io) {
                Some(kind) => self.no_room(kind),
                None => AttemptError::BodyRead(ureq::Error::from(io)),
            });
        }
        if body.len() as u64 > limit {
            return Err(too_large(limit));
        }
        let mut room = Room::new(&mut reserved, &stop);
        let (body, undecoded) =
            match encoding::decode(content_codings(&response), body, limit, &mut room) {
                Ok(decoded) => decoded,
                Err(encoding::DecodeError::NoRoom(kind)) => return Err(self.no_room(kind)),
                Err(encoding::DecodeError::TooLarge(limit)) => return Err(too_large(limit)),
                Err(encoding::DecodeError::Damaged(coding, cause)) => {
                    return Err(AttemptError::Undecodable { coding, cause });
                }
            };
        // Whole: it holds what it holds in memory, until its caller takes it.
        reserved.settle(body.len() as u64);
        let labels = BodyLabels {
            content_type: response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                // Only a type that is not JSON is worth a message (and an
                // allocation on every response).
                .filter(|content_type| !error::says_json(content_type))
                .map(Box::from),
            undecoded: undecoded.map(Box::from),
        };
        Ok(Received {
            status,
            body,
            held: reserved,
            headers: std::mem::take(response.headers_mut()),
            cacheable,
            url,
            labels,
            head,
        })
    }
}

/// The failure of a body over `limit` bytes, as sent or decoded.
fn too_large(limit: u64) -> AttemptError {
    AttemptError::Transport(ureq::Error::BodyExceedsLimit(limit))
}

impl Attempt<'_> {
    /// The failure of a wait for room that stopped with `kind`: a cancel
    /// is a read the cancel stopped; the attempt's time running out (its
    /// timeout, or a deadline it was cut to) is [`AttemptError::NoRoom`].
    fn no_room(&self, kind: ErrorKind) -> AttemptError {
        if kind == ErrorKind::Cancelled {
            let cancelled = std::io::Error::other(Cancelled);
            return AttemptError::BodyRead(ureq::Error::from(cancelled));
        }
        AttemptError::NoRoom {
            budget: self.budget.limit(),
        }
    }

    /// The request to send to `url`, the request's own URL or a redirect's:
    /// a GET if a hop `made_get`, its secrets only if `secrets_kept`.
    fn hop<'r>(
        &self,
        request: &'r Request,
        needs: CacheNeeds<'_>,
        url: &str,
        made_get: bool,
        secrets_kept: bool,
    ) -> Result<http::Request<&'r [u8]>, AttemptError> {
        let bad_location = || AttemptError::Redirect(NotFollowed::BadLocation(url.to_owned()));
        let mut http = http_request(request, self.settings, needs).map_err(|_| bad_location())?;
        if url != request.url() {
            redirect::apply(url, made_get, secrets_kept, &mut http, |name| {
                self.settings.is_sensitive(name) || request.is_sensitive(name)
            })
            .ok_or_else(bad_location)?;
        }
        Ok(http)
    }
}

impl AttemptError {
    /// Whether the attempt failed after a whole response head came (its
    /// body was cut short or stalled).
    pub(crate) fn after_head(&self) -> bool {
        matches!(self, AttemptError::BodyRead(_))
    }

    /// Whether the failure was the fetcher's own doing: it says nothing
    /// of the host.
    pub(crate) fn is_own(&self) -> bool {
        matches!(self, AttemptError::NoRoom { .. })
    }

    /// The response a failed attempt got, for the cache: its status, body
    /// start and headers (when the cache asked for them).
    pub(crate) fn response(&self) -> Option<(u16, &[u8], &HeaderMap)> {
        match self {
            AttemptError::Status {
                status,
                start,
                headers: Some(headers),
                ..
            } => Some((*status, start, headers)),
            _ => None,
        }
    }

    /// The error this failed attempt of `request` amounts to, after
    /// `attempts` attempts of `timeout` each, with `settings`.
    pub(crate) fn into_error(
        self,
        request: &Request,
        attempts: u32,
        timeout: Duration,
        settings: &TransportSettings,
    ) -> Error {
        match self {
            AttemptError::Transport(error) | AttemptError::BodyRead(error) => {
                let kind = classify::classify_transport(&error);
                let detail = match (kind, &error) {
                    // Which limit ran out: the connect timeout's is ureq's.
                    (ErrorKind::Timeout, ureq::Error::Timeout(ureq::Timeout::Connect)) => {
                        Detail::ConnectTimeout(settings.connect_timeout)
                    }
                    (ErrorKind::Timeout, _) => Detail::Timeout(timeout),
                    // A head too large is no body over the body's limit.
                    (ErrorKind::BodyTooLarge, _) if classify::is_head_too_large(&error) => {
                        Detail::Reason(
                            "the response head (its status line and headers) is larger than \
                             parfetch reads"
                                .to_owned(),
                        )
                    }
                    (ErrorKind::BodyTooLarge, _) => Detail::Limit(settings.body_limit),
                    (ErrorKind::Tls, _) => tls::explain(&error)
                        .map_or(Detail::None, |words| Detail::Reason(words.to_owned())),
                    _ => Detail::None,
                };
                let error_of_kind = request
                    .error(kind)
                    .with_attempts(attempts)
                    .with_detail(detail);
                // ureq's own timeout error ("timeout: global"), and the
                // body limit's (ours, in ureq's words), say no more than
                // the message does.
                if let ureq::Error::Timeout(_) | ureq::Error::BodyExceedsLimit(_) = error {
                    error_of_kind
                } else {
                    error_of_kind.with_source(error)
                }
            }
            AttemptError::Status {
                status,
                retry_after,
                start,
                ..
            } => status_error(request, status, &start)
                .with_attempts(attempts)
                .with_retry_after(retry_after),
            AttemptError::Redirect(not_followed) => request
                .error(ErrorKind::Redirect)
                .with_attempts(attempts)
                .with_detail(Detail::Reason(not_followed.to_string())),
            AttemptError::Undecodable { coding, cause } => Error::invalid_json(
                format!("the body is sent {coding}-encoded but does not decode: {cause}"),
                None,
                None,
            )
            .with_request(request.method_name(), request.url())
            .with_attempts(attempts),
            AttemptError::NoRoom { budget } => request
                .error(ErrorKind::Timeout)
                .with_attempts(attempts)
                .with_detail(Detail::Reason(format!(
                    "waiting for room among the response bodies in flight \
                     (max_body_bytes_in_flight is {budget} bytes, held by bodies read and not \
                     yet taken): take results sooner, or raise max_body_bytes_in_flight"
                ))),
            AttemptError::Proxy {
                proxy,
                failure,
                cause,
            } => {
                // A status is the proxy's, never the document's: no
                // NotFound for a 404 from a proxy.
                let kind = match (failure.status, &cause) {
                    (Some(_), _) => ErrorKind::Status,
                    (None, Some(cause)) => classify::classify_transport(cause),
                    (None, None) => ErrorKind::Network,
                };
                let mut error =
                    request
                        .error(kind)
                        .with_attempts(attempts)
                        .with_detail(Detail::Proxy {
                            proxy,
                            problem: failure.problem,
                        });
                if let Some(status) = failure.status {
                    error = error.with_status(status);
                }
                match cause {
                    Some(cause) => error.with_source(cause),
                    None => error,
                }
            }
        }
    }
}

/// The `Content-Encoding` lines of `response`, all of them.
fn content_codings<B>(response: &http::Response<B>) -> impl Iterator<Item = &str> {
    response
        .headers()
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
}

/// Stops a body read once its batch is cancelled. (The attempt's timeout is
/// ureq's to enforce, read by read.)
struct CancellableReader<'a, R> {
    reader: R,
    cancel: Option<&'a CancelToken>,
}

impl<R: Read> Read for CancellableReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(std::io::Error::other(Cancelled));
        }
        self.reader.read(buf)
    }
}

/// The failure of an attempt whose time ran out between two hops.
fn timed_out() -> AttemptError {
    AttemptError::Transport(ureq::Error::Timeout(ureq::Timeout::Global))
}

/// The error of a response with `status` (not a success) and a body that
/// starts with `start`: `NotFound` or `Status`, with an excerpt.
pub(crate) fn status_error(request: &Request, status: u16, start: &[u8]) -> Error {
    let kind = classify::classify_status(status).unwrap_or(ErrorKind::Status);
    let error = request.error(kind).with_status(status);
    let excerpt = excerpt(start);
    if excerpt.is_empty() {
        error
    } else {
        error.with_detail(Detail::BodyExcerpt(excerpt))
    }
}

/// The start of an error body as one line of text, for a message.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match error::clip(&line, ERROR_EXCERPT_CHARS) {
        (short, true) => format!("{short}…"),
        (_, false) => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_short_line() {
        assert_eq!(excerpt(b""), "");
        assert_eq!(
            excerpt(b"  {\"error\":\n  \"rate limited\"}\n"),
            "{\"error\": \"rate limited\"}"
        );
        let long = excerpt("x".repeat(500).as_bytes());
        assert_eq!(long.chars().count(), ERROR_EXCERPT_CHARS + 1);
        assert!(long.ends_with('…'));
        assert_eq!(excerpt(&[0xff, b'o', b'k']), "\u{fffd}ok");
    }
}
