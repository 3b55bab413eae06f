//! A journey's dealings with the cache: before the first attempt, what it
//! holds (served at once, or revalidated); after the answer, what to keep.
//!
//! Only GET is ever stored. A HEAD is answered from a fresh stored GET
//! (RFC 9111 §4: its status and no body). One whose stored GET is stale is
//! sent conditionally, as the GET's revalidation would be: a 304 about the
//! stored version refreshes the GET and answers the HEAD from it, and a
//! 200 that describes the stored version (its validators, its length)
//! freshens the GET with its fields (§4.3.5). A HEAD's answer is never
//! stored, and one with nothing stored is sent as it is. An unsafe method (POST, PUT, PATCH, DELETE) goes to the network
//! and, once it has succeeded, removes the stored GETs of its URL and of the
//! `Location` and `Content-Location` its answer names on the same origin
//! (RFC 9111 §4.4): what it changed must not be served in its old version.
//! OPTIONS goes to the network and leaves the cache alone. A stale entry
//! is revalidated (If-None-Match, If-Modified-Since): a 304 about it
//! refreshes it and serves it; a 304 about another version (RFC 9111
//! §4.3.4) asks again for the whole.

use std::time::SystemTime;

use ureq::http::{self, HeaderMap, HeaderName, HeaderValue};

use super::journey::Body;
use super::{Engine, Scope};
use crate::cache::{self, Entry, EntryKey, Lookup};
use crate::error::{Detail, Error, ErrorKind};
use crate::request::{CacheMode, Method, Request};
use crate::response::CacheStatus;
use crate::stats::Recorder;
use crate::transport::attempt::{self, BodyLabels, CacheNeeds};

/// What the cache asked of a journey's attempts.
#[derive(Debug)]
pub(crate) enum CachePlan {
    /// Nothing: no cache, or not for this request.
    Nothing,
    /// A successful answer removes the stored GETs of the URL, and of the
    /// places its answer names.
    Invalidate,
    /// Keep the answer (and revalidate `stale`, if there is one).
    Keep(Box<Keeping>),
}

/// A GET the cache has a say in.
pub(crate) struct Keeping {
    key: EntryKey,
    /// The request as the cache files it (with the cookies it had then).
    head: http::Request<()>,
    /// The stored answer being revalidated.
    stale: Option<Entry>,
    conditional: Vec<(HeaderName, HeaderValue)>,
    /// Whether the answer is stored (the request's cache mode writes).
    writes: bool,
    /// A HEAD: it only revalidates or freshens `stale`, and is answered
    /// without a body.
    head_only: bool,
}

impl std::fmt::Debug for Keeping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keeping")
            .field("revalidating", &self.stale.is_some())
            .field("writes", &self.writes)
            .finish_non_exhaustive()
    }
}

/// What the cache says before anything is sent.
// Made and matched once per request: a box would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(crate) enum BeforeSend {
    /// Served from the cache, or ended before sending (offline, a bad
    /// request: rejected).
    Done(Result<Body, Error>),
    /// To the network, with this plan.
    Send(CachePlan),
}

/// What the cache says of the answer an attempt received.
// Made and matched once per request: a box would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub(crate) enum AfterAnswer {
    Done(Result<Body, Error>),
    /// The answer was a 304 about another version: ask again.
    Again,
}

impl CachePlan {
    /// What the cache says of `request` before anything is sent.
    pub(crate) fn begin(engine: &Engine, request: &Request, scope: &Scope<'_>) -> BeforeSend {
        let mode = request.cache();
        let Some(cache) = engine
            .cache
            .as_ref()
            .filter(|cache| mode != CacheMode::Off || cache.offline())
        else {
            return BeforeSend::Send(CachePlan::Nothing);
        };
        let offline = cache.offline();
        let method = request.method();
        if !matches!(method, Method::Get | Method::Head) {
            if offline {
                let error = request
                    .error(ErrorKind::Offline)
                    .with_detail(Detail::Reason(
                        "only GET and HEAD are answered from the cache".to_owned(),
                    ));
                return BeforeSend::Done(Err(error));
            }
            if method.is_safe() {
                return BeforeSend::Send(CachePlan::Nothing);
            }
            return BeforeSend::Send(CachePlan::Invalidate);
        }
        let head_only = method == Method::Head;
        let mut head = match request.to_http(&engine.settings.transport.headers) {
            Ok(http) => http.map(|_| ()),
            Err(error) => return BeforeSend::Done(Err(error)),
        };
        // A HEAD looks for the GET it is the head of.
        *head.method_mut() = http::Method::GET;
        // The jar's cookies key the entry as your own would (hashed): one
        // session's answers are not served to another.
        if let Some(jar) = &engine.jar {
            jar.add_to(request.url(), head.headers_mut());
        }
        let is_sensitive = |name: &str| engine.is_sensitive(request, name);
        let Some(key) = cache.key(request.url(), &head, is_sensitive) else {
            return BeforeSend::Send(CachePlan::Nothing);
        };
        let lookup = if mode.reads() {
            cache.lookup(&key, &head, SystemTime::now())
        } else {
            Lookup::Miss
        };
        if matches!(lookup, Lookup::Miss) && mode.reads() {
            engine.record(scope, Recorder::cache_miss);
        }
        let serve = |mut entry: Entry, how: CacheStatus| {
            if head_only {
                entry.body = Vec::new();
            }
            BeforeSend::Done(served(engine, request, scope, entry, how, None, 0))
        };
        let (stale, conditional) = match lookup {
            Lookup::Fresh(entry) => return serve(entry, CacheStatus::Fresh),
            // Offline, a stale answer beats none, unless the server said
            // it must not be served stale (RFC 9111 §4.2.4).
            Lookup::Stale(entry, _) if offline && !entry.meta.must_revalidate => {
                return serve(entry, CacheStatus::Stale);
            }
            Lookup::Stale(..) if offline => {
                let error = request
                    .error(ErrorKind::Offline)
                    .with_detail(Detail::Reason(
                        "the cached answer is stale, and the server said it must not be \
                         served stale (must-revalidate)"
                            .to_owned(),
                    ));
                return BeforeSend::Done(Err(error));
            }
            Lookup::Miss if offline => {
                return BeforeSend::Done(Err(request.error(ErrorKind::Offline)))
            }
            // A HEAD's answer is not stored: with nothing stored, the
            // cache has nothing to do with it.
            Lookup::Miss if head_only => return BeforeSend::Send(CachePlan::Nothing),
            Lookup::Miss => (None, Vec::new()),
            Lookup::Stale(entry, conditional) => (Some(entry), conditional),
        };
        BeforeSend::Send(CachePlan::Keep(Box::new(Keeping {
            key,
            head,
            stale,
            conditional,
            writes: mode.writes(),
            head_only,
        })))
    }

    /// What an attempt must send, and bring back, for the cache.
    pub(crate) fn needs(&self) -> CacheNeeds<'_> {
        match self {
            CachePlan::Keep(keeping) => CacheNeeds {
                conditional: &keeping.conditional,
                // Storing or refreshing an entry needs the headers, and so
                // does judging a 304 (whose version is it?).
                keep_headers: keeping.writes || !keeping.conditional.is_empty(),
            },
            // The answer's Location and Content-Location are invalidated too.
            CachePlan::Invalidate => CacheNeeds {
                conditional: &[],
                keep_headers: true,
            },
            CachePlan::Nothing => CacheNeeds::default(),
        }
    }

    /// What becomes of `answer`, the request's after `attempts` attempts.
    pub(crate) fn finish(
        &mut self,
        engine: &Engine,
        request: &Request,
        mut answer: Body,
        attempts: u32,
        scope: &Scope<'_>,
    ) -> AfterAnswer {
        let keeping = match self {
            CachePlan::Nothing => return AfterAnswer::Done(Ok(answer)),
            CachePlan::Invalidate => {
                if let Some(cache) = &engine.cache {
                    cache.invalidate(request.url(), Some(&answer.headers));
                }
                return AfterAnswer::Done(Ok(answer));
            }
            CachePlan::Keep(keeping) => keeping,
        };
        let Some(cache) = &engine.cache else {
            return AfterAnswer::Done(Ok(answer));
        };
        let is_sensitive = |name: &str| engine.is_sensitive(request, name);
        // No headers when the answer may not be cached (`transport/cookies.rs`).
        let headers = answer.cacheable.then_some(&answer.headers);
        // A 304 is about the stored entry; another answer may freshen it.
        let (confirming, stale) = match keeping.stale.take() {
            stale if answer.status == 304 => (stale, None),
            stale => (None, stale),
        };
        if let Some(mut entry) = confirming {
            let no_headers = HeaderMap::new();
            let said = headers.unwrap_or(&no_headers);
            if cache::rules::confirms(&entry, said) {
                if let Some(headers) = headers.filter(|_| keeping.writes) {
                    cache.refresh(&keeping.key, &keeping.head, &entry, headers, &is_sensitive);
                }
                if keeping.head_only {
                    entry.body = Vec::new();
                }
                // The 304's fields update the stored ones the caller sees.
                let update = Some(std::mem::take(&mut answer.headers));
                let how = CacheStatus::Revalidated;
                let served = served(engine, request, scope, entry, how, update, attempts);
                return AfterAnswer::Done(served);
            }
            keeping.conditional.clear();
            return AfterAnswer::Again;
        }
        if keeping.head_only {
            // RFC 9111 §4.3.5: a 200 to a HEAD freshens the stored GET it
            // describes (status, validators, length), as a 304 would.
            let describing = headers.filter(|_| keeping.writes && answer.status == 200);
            if let (Some(entry), Some(headers)) = (stale, describing) {
                if cache::rules::head_describes(&entry, headers) {
                    cache.refresh(&keeping.key, &keeping.head, &entry, headers, &is_sensitive);
                }
            }
            return AfterAnswer::Done(Ok(answer));
        }
        if let Some(headers) = headers.filter(|_| keeping.writes) {
            cache.store(
                &keeping.key,
                &keeping.head,
                answer.status,
                headers,
                &answer.bytes,
                answer.labels.undecoded.as_deref(),
                &is_sensitive,
            );
        }
        AfterAnswer::Done(Ok(answer))
    }

    /// Keeps the response a request failed with, where the rules let a
    /// cache keep it (a 404, to answer for the URL next time, offline too).
    pub(crate) fn store_failure(&self, engine: &Engine, request: &Request, response: &Body) {
        let (CachePlan::Keep(keeping), Some(cache)) = (self, &engine.cache) else {
            return;
        };
        // A HEAD's answer has no body: it is never the GET's.
        if !keeping.writes || !response.cacheable || keeping.head_only {
            return;
        }
        let headers = &response.headers;
        let is_sensitive = |name: &str| engine.is_sensitive(request, name);
        cache.store(
            &keeping.key,
            &keeping.head,
            response.status,
            headers,
            &response.bytes,
            response.labels.undecoded.as_deref(),
            &is_sensitive,
        );
    }
}

/// A stored answer, served `how`, with the status it had: a 203 stays a
/// 203, a 404 stays the request's `NotFound` error. `update`: the headers
/// of the 304 that confirmed it, if one did.
fn served(
    engine: &Engine,
    request: &Request,
    scope: &Scope<'_>,
    entry: Entry,
    how: CacheStatus,
    update: Option<HeaderMap>,
    attempts: u32,
) -> Result<Body, Error> {
    let revalidated = how == CacheStatus::Revalidated;
    engine.record(scope, |stats| {
        stats.cache_served(entry.body.len(), revalidated);
    });
    let status = entry.meta.status;
    if crate::error::classify::classify_status(status).is_some() {
        return Err(attempt::status_error(request, status, &entry.body).with_attempts(attempts));
    }
    // The labels the fetch had, so that a hit's words are the same.
    let labels = BodyLabels {
        content_type: entry.meta.content_type.map(Box::from),
        undecoded: entry.meta.undone.map(Box::from),
    };
    Ok(Body {
        bytes: entry.body,
        status,
        headers: update.unwrap_or_default(),
        cacheable: false,
        url: None,
        stored: Some(entry.policy),
        cache: how,
        labels,
        held: None,
    })
}
