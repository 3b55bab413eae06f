//! The caching rules: what may be stored, how long it stays fresh, and how
//! a stale entry is revalidated.
//!
//! The rules are RFC 9111's for a private cache, applied by the
//! `http-cache-semantics` crate. It is handed only what it can take safely,
//! and only what may be written to disk:
//!
//! - **Numbers a server sends are bounded.** A delta-seconds value
//!   (`max-age`, `Age`...) past 2^31 is taken as 2^31, as RFC 9111 §1.2.2
//!   says; an `Age` that is not a number is ignored. Left as they came, such
//!   values overflow time arithmetic.
//! - **No secret is kept.** The stored request holds only the headers the
//!   response's `Vary` names, and those as hashes (enough to tell whether a
//!   later request matches, not what was sent); its URL has no user info.
//!   The stored response holds no `Set-Cookie` and no other header whose
//!   name says it is a secret (`redact.rs`).
//! - **Nothing panics**, whatever the headers, and a stored policy judges
//!   as it did before it was stored: header values that are not text,
//!   which its JSON form cannot hold, are dropped first (found by fuzzing:
//!   dropping an unreadable first `Last-Modified` on the way to disk made
//!   a stale response fresh for years).
//!
//! The two switches of [`CacheSettings`] (every entry fresh, or a fixed
//! max-age) replace the freshness rules of successful responses, never the
//! others: `no-store` is never stored, a response that varies is served
//! only to the requests it was for, and a stored 404 lives by its own
//! headers.
//!
//! What RFC 9111 asks and where it is done: directive names without case
//! (§5.2) and delta-seconds bounded (§1.2.2) in [`directives`]; an invalid
//! `Age` ignored (§5.1) and an invalid `Expires` in the past (§5.3), the
//! three HTTP-date forms (RFC 9110 §5.6.7), in [`stored_response`]; any
//! status with explicit freshness and the heuristically cacheable ones
//! stored (§3, §4.2.2), and served with the status they had; a 304's fields
//! replacing the stored ones, validators included (§4.3.4), in
//! [`refreshed`]; a HEAD's 200 freshening the stored GET it describes
//! (§4.3.5) in [`head_describes`], then [`refreshed`] as for a 304;
//! `must-understand` (§5.2.2.3) in [`directives`]. Not done:
//! `stale-while-revalidate` (§5.2.2.8 of RFC 5861): it needs a request
//! sent after the answer, which a synchronous fetch has no thread for; a
//! stale entry is revalidated before it is served.

use std::time::SystemTime;

use http_cache_semantics::{AfterResponse, BeforeRequest, CacheOptions, CachePolicy};
use ureq::http::{self, header, HeaderMap, HeaderName, HeaderValue};

use super::entry::{millis, Entry, Meta};
use super::{CacheSettings, Lookup};
use crate::redact;

/// The largest delta-seconds value a cache must represent (RFC 9111 §1.2.2).
const MAX_DELTA_SECONDS: u64 = 1 << 31;

/// A response head as the server sent it, and which of its headers are
/// secrets (the default ones, and those the caller marked).
pub(crate) struct Response<'a> {
    pub(crate) status: u16,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) is_sensitive: &'a dyn Fn(&str) -> bool,
    /// The content codings the body still has (those parfetch does not
    /// decode), as the transport said: the stored body is as received.
    pub(crate) undone: Option<&'a str>,
}

/// What the cache says about `request`, given its stored `entry`, as of `now`.
pub(crate) fn lookup(
    entry: Entry,
    request: &http::Request<()>,
    settings: &CacheSettings,
    secret: &[u8; 32],
    now: SystemTime,
) -> Lookup {
    // A response that varies is served only to the requests it was for,
    // whatever the switches say about freshness.
    let policy = if entry.meta.vary {
        let Some(policy) = entry.policy() else {
            return Lookup::Miss;
        };
        let asked = stored_request(request, |_| true, secret);
        if let BeforeRequest::Stale { matches: false, .. } = policy.before_request(&asked, now) {
            return Lookup::Miss;
        }
        Some((policy, asked))
    } else {
        None
    };
    // The switches bend freshness for successes only: a stored 404 may
    // become a document, and lives by its own headers.
    let success = (200..300).contains(&entry.meta.status);
    if settings.always_fresh && success {
        return Lookup::Fresh(entry);
    }
    let now_ms = millis(now);
    if let Some(max_age) = settings.max_age.filter(|_| success) {
        let age = now_ms.saturating_sub(entry.meta.stored_at_ms);
        return if u128::from(age) <= max_age.as_millis() {
            Lookup::Fresh(entry)
        } else {
            Lookup::Stale(entry, Vec::new())
        };
    }
    // The common case needs no policy: a fresh entry, a plain request.
    let plain = !entry.meta.vary
        && !request.headers().contains_key(header::CACHE_CONTROL)
        && !request.headers().contains_key(header::PRAGMA);
    if plain && now_ms < entry.meta.fresh_until_ms {
        return Lookup::Fresh(entry);
    }
    if plain {
        let conditional = [
            (header::IF_NONE_MATCH, &entry.meta.etag),
            (header::IF_MODIFIED_SINCE, &entry.meta.last_modified),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, HeaderValue::from_str(value.as_deref()?).ok()?)))
        .collect();
        return Lookup::Stale(entry, conditional);
    }
    let (policy, asked) = match policy {
        Some(both) => both,
        None => match entry.policy() {
            Some(policy) => (policy, stored_request(request, |_| true, secret)),
            None => return Lookup::Miss,
        },
    };
    match policy.before_request(&asked, now) {
        BeforeRequest::Fresh(_) => Lookup::Fresh(entry),
        // Stored for another variant (Vary): as good as nothing.
        BeforeRequest::Stale { matches: false, .. } => Lookup::Miss,
        BeforeRequest::Stale { request: parts, .. } => {
            let conditional = [header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE]
                .into_iter()
                .filter_map(|name| {
                    let value = parts.headers.get(&name)?.clone();
                    Some((name, value))
                })
                .collect();
            Lookup::Stale(entry, conditional)
        }
    }
}

/// The record and policy to store for a response to `request` (`url` as
/// the caller wrote it), or `None` if the rules (and switches) say it must
/// not be stored.
pub(crate) fn to_store(
    request: &http::Request<()>,
    url: &str,
    response: &Response<'_>,
    settings: &CacheSettings,
    secret: &[u8; 32],
    now: SystemTime,
) -> Option<(Meta, CachePolicy)> {
    // A 5xx says nothing lasting about the document; a 206 is a part of it
    // (this cache does not put ranges together, §3.3).
    if response.status >= 500 || response.status == 206 {
        return None;
    }
    let undone = response.undone;
    let response = stored_response(response, now);
    if says_no_store(response.headers()) {
        return None;
    }
    let vary = vary_names(response.headers());
    let request = stored_request(
        request,
        |name| vary.iter().any(|v| v == name.as_str()),
        secret,
    );
    let policy = CachePolicy::new_options(&request, &response, now, private());
    let success = response.status().is_success();
    let overridden = success && (settings.always_fresh || settings.max_age.is_some());
    if !(policy.is_storable() || overridden) {
        return None;
    }
    let meta = meta(
        url,
        response.status().as_u16(),
        &policy,
        response.headers(),
        undone,
        now,
    );
    Some((meta, policy))
}

/// Whether a 304 with `headers` is about `entry` (RFC 9111 §4.3.4): its
/// ETag, if it has one, is the entry's (compared weakly), else its
/// Last-Modified, if it has one. A 304 that names no validator answers the conditional request made from the entry.
/// One that names another version must not update it: the document is
/// then fetched again, whole.
pub(crate) fn confirms(entry: &Entry, headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let stored_etag = entry.meta.etag.as_deref().map(str::trim);
    match (text(header::ETAG), text(header::LAST_MODIFIED)) {
        // Compared weakly, as If-None-Match is (RFC 9110 §13.1.2, §8.8.3.2):
        // nginx with `gzip on` sends a weak ETag on the gzipped 200 and the
        // strong one on its 304; a strong comparison would refetch every
        // URL after each revalidation.
        (Some(new), _) => stored_etag.is_some_and(|old| {
            let opaque = |tag: &str| tag.strip_prefix("W/").unwrap_or(tag).to_owned();
            opaque(old) == opaque(new)
        }),
        (None, Some(new)) => entry
            .meta
            .last_modified
            .as_deref()
            .is_none_or(|old| old.trim() == new),
        (None, None) => true,
    }
}

/// Whether a 200 to a HEAD, with `headers`, describes `entry`, the stored
/// GET it was sent for, so that its fields may freshen it (RFC 9111
/// §4.3.5): of ETag, Last-Modified and Content-Length it names at least
/// one, and each it names is the stored response's (an ETag compared
/// weakly, as in [`confirms`]; Content-Length as the GET's answer said it,
/// the stored body being decoded). One that names none tells nothing, and
/// freshens nothing: the entry stays as it was, stale.
pub(crate) fn head_describes(entry: &Entry, headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let (etag, modified, length) = (
        text(header::ETAG),
        text(header::LAST_MODIFIED),
        text(header::CONTENT_LENGTH),
    );
    if etag.is_none() && modified.is_none() && length.is_none() {
        return false;
    }
    let opaque = |tag: &str| tag.strip_prefix("W/").unwrap_or(tag).to_owned();
    let same = |new: Option<&str>, old: Option<String>, key: fn(&str) -> String| {
        new.is_none_or(|new| old.is_some_and(|old| key(old.trim()) == key(new)))
    };
    same(etag, entry.meta.etag.clone(), opaque)
        && same(modified, entry.meta.last_modified.clone(), str::to_owned)
        && same(
            length,
            stored_header(entry, "content-length"),
            str::to_owned,
        )
}

/// The first value of the response header `name` (lower-case) that the
/// entry's policy keeps.
fn stored_header(entry: &Entry, name: &str) -> Option<String> {
    let policy: serde_json::Value = serde_json::from_slice(&entry.policy).ok()?;
    match &policy["res"][name] {
        serde_json::Value::String(value) => Some(value.clone()),
        serde_json::Value::Array(values) => values.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

/// The record and policy after the server confirmed `entry` (304, and
/// [`confirms`] it): the 304's fields replace the stored ones (RFC 9111
/// §4.3.4). `None` when rewriting it would gain nothing: an entry the
/// refresh leaves stale at once (as with `no-cache`), with its validators
/// unchanged, is revalidated next time either way.
pub(crate) fn refreshed(
    request: &http::Request<()>,
    url: &str,
    entry: &Entry,
    response: &Response<'_>,
    secret: &[u8; 32],
    now: SystemTime,
) -> Option<(Meta, CachePolicy)> {
    let text = |name| response.headers.get(name).and_then(|v| v.to_str().ok());
    let response_undone = response.undone;
    let new_validators = [
        (text(header::ETAG), entry.meta.etag.as_deref()),
        (
            text(header::LAST_MODIFIED),
            entry.meta.last_modified.as_deref(),
        ),
    ]
    .into_iter()
    .any(|(new, old)| new.is_some() && new != old);
    let says_more = [header::CACHE_CONTROL, header::EXPIRES]
        .iter()
        .any(|name| response.headers.contains_key(name));
    if entry.meta.lifetime_ms == 0 && !says_more && !new_validators {
        return None; // stale it was, stale it stays: nothing to rewrite
    }
    let policy = entry.policy()?;
    let mut response = stored_response(response, now);
    // A 304 that names no validator is about the entry it was asked from;
    // given the entry's, the policy takes it as the update it is.
    for (name, stored) in [
        (header::ETAG, &entry.meta.etag),
        (header::LAST_MODIFIED, &entry.meta.last_modified),
    ] {
        let value = stored
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok());
        if let (false, Some(value)) = (response.headers().contains_key(&name), value) {
            response.headers_mut().insert(name, value);
        }
    }
    // A 304 names what the response varies on, as the 200 did (RFC 9110
    // §15.4.5): the new policy keeps those request headers, hashed.
    let vary = vary_names(response.headers());
    let request = stored_request(
        request,
        |name| vary.iter().any(|v| v == name.as_str()),
        secret,
    );
    let policy = match policy.after_response(&request, &response, now) {
        AfterResponse::NotModified(policy, _) => policy,
        // Another version: nothing of it may update this entry.
        AfterResponse::Modified(..) => return None,
    };
    if policy.time_to_live(now).is_zero() && !new_validators {
        return None;
    }
    let fresh = meta(
        url,
        entry.meta.status,
        &policy,
        response.headers(),
        response_undone,
        now,
    );
    let meta = Meta {
        vary: entry.meta.vary || fresh.vary,
        etag: fresh.etag.or_else(|| entry.meta.etag.clone()),
        last_modified: fresh
            .last_modified
            .or_else(|| entry.meta.last_modified.clone()),
        content_type: fresh
            .content_type
            .or_else(|| entry.meta.content_type.clone()),
        undone: fresh.undone.or_else(|| entry.meta.undone.clone()),
        // A field the 304 does not carry is kept (RFC 9111 §4.3.4).
        must_revalidate: if response.headers().contains_key(header::CACHE_CONTROL) {
            fresh.must_revalidate
        } else {
            entry.meta.must_revalidate
        },
        ..fresh
    };
    Some((meta, policy))
}

/// The record of what most lookups need.
fn meta(
    url: &str,
    status: u16,
    policy: &CachePolicy,
    headers: &HeaderMap,
    undone: Option<&str>,
    now: SystemTime,
) -> Meta {
    let lifetime_ms = u64::try_from(policy.time_to_live(now).as_millis()).unwrap_or(u64::MAX);
    let text = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let stored_at_ms = millis(now);
    Meta {
        url: url.to_owned(),
        status,
        stored_at_ms,
        fresh_until_ms: stored_at_ms.saturating_add(lifetime_ms),
        lifetime_ms,
        vary: headers.contains_key(header::VARY),
        must_revalidate: list(headers, &header::CACHE_CONTROL)
            .any(|directive| matches!(directive, "must-revalidate" | "no-cache")),
        etag: text(header::ETAG),
        last_modified: text(header::LAST_MODIFIED),
        content_type: text(header::CONTENT_TYPE),
        undone: undone.map(str::to_owned),
    }
}

/// The request as the policy keeps it: no user info in its URL, and of its
/// headers only cache directives and those `keep` names, the latter hashed
/// with the cache's `secret`.
fn stored_request(
    request: &http::Request<()>,
    keep: impl Fn(&HeaderName) -> bool,
    secret: &[u8; 32],
) -> http::Request<()> {
    let mut stored = http::Request::new(());
    *stored.method_mut() = request.method().clone();
    *stored.uri_mut() = uri_without_user_info(request.uri());
    let headers = stored.headers_mut();
    for (name, value) in request.headers() {
        if name == header::PRAGMA {
            headers.append(name.clone(), lower_cased(value));
        } else if name != header::CACHE_CONTROL && keep(name) {
            headers.append(name.clone(), hashed(value, secret));
        }
    }
    if let Some(cache_control) = directives(request.headers(), None) {
        headers.insert(header::CACHE_CONTROL, cache_control);
    }
    stored
}

/// A header value as the cache keeps it: a keyed hash, equal for equal
/// values, that no one without the cache's key can test guesses against.
fn hashed(value: &HeaderValue, secret: &[u8; 32]) -> HeaderValue {
    let hex = blake3::keyed_hash(secret, value.as_bytes()).to_hex();
    HeaderValue::from_str(&hex[..32]).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

fn uri_without_user_info(uri: &http::Uri) -> http::Uri {
    let has_user_info = uri.authority().is_some_and(|a| a.as_str().contains('@'));
    if !has_user_info {
        return uri.clone();
    }
    redact::without_user_info(&uri.to_string())
        .parse()
        .unwrap_or_default()
}

/// The response head as the policy keeps it, received at `now`: without
/// secrets, its numbers bounded, its directives and dates as RFC 9111
/// reads them, and its `Age` counting from its `Date` (§4.2.3).
fn stored_response(response: &Response<'_>, now: SystemTime) -> http::Response<()> {
    let mut stored_response = http::Response::new(());
    *stored_response.status_mut() = http::StatusCode::from_u16(response.status).unwrap_or_default();
    let stored = stored_response.headers_mut();
    let several_expires = response.headers.get_all(header::EXPIRES).iter().count() > 1;
    for (name, value) in response.headers {
        // A value that is not text (obs-text bytes) cannot be stored as the
        // policy is (JSON): dropped here, so that the policy judges the
        // same headers before storing as after reading back.
        if (response.is_sensitive)(name.as_str()) || value.to_str().is_err() {
            continue;
        }
        let value = match name {
            // §5.1: of a list (on one line or several) the first member
            // counts; an Age that is not a delta-seconds is ignored.
            n if n == header::AGE => {
                let first = value.as_bytes().split(|&b| b == b',').next();
                match first.and_then(delta_seconds) {
                    Some(seconds) if !stored.contains_key(header::AGE) => {
                        HeaderValue::from(seconds)
                    }
                    _ => continue,
                }
            }
            // All Cache-Control fields are read together, below.
            n if n == header::CACHE_CONTROL => continue,
            n if n == header::PRAGMA => lower_cased(value),
            // §5.3: an invalid Expires (or more than one) is in the past.
            n if n == header::EXPIRES => match http_date(value).filter(|_| !several_expires) {
                Some(date) => date,
                None => HeaderValue::from_static("0"),
            },
            // An invalid Date or Last-Modified is as good as none.
            n if n == header::DATE || n == header::LAST_MODIFIED => match http_date(value) {
                Some(date) => date,
                None => continue,
            },
            _ => value.clone(),
        };
        stored.append(name.clone(), value);
    }
    let directives = directives(response.headers, Some(response.status));
    if let Some(cache_control) = directives {
        stored.insert(header::CACHE_CONTROL, cache_control);
    }
    // §4.2.3: the age is at least how long ago the server dated the
    // response (the policy counts only `Age` and time since receipt).
    let dated = stored
        .get(header::DATE)
        .and_then(|date| httpdate::parse_http_date(date.to_str().ok()?).ok());
    let apparent_age = dated
        .and_then(|date| now.duration_since(date).ok())
        .map_or(0, |age| age.as_secs().min(MAX_DELTA_SECONDS));
    let age = stored
        .get(header::AGE)
        .and_then(|age| age.to_str().ok()?.parse::<u64>().ok())
        .unwrap_or(0);
    if apparent_age > age {
        stored.insert(header::AGE, HeaderValue::from(apparent_age));
    }
    stored_response
}

/// The statuses whose caching rules this cache implements: those cacheable
/// by default (RFC 9110 §15.1) and the redirects. `must-understand` lets
/// only these be stored.
pub(crate) const UNDERSTOOD_STATUSES: [u16; 15] = [
    200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 451, 501,
];

/// The Cache-Control fields of `headers` as one, as RFC 9111 §5.2 reads
/// them: directive names without case, every numeric argument at most
/// 2^31 (§1.2.2); for a response (`status`), `must-understand` (§5.2.2.3)
/// lifts `no-store` for an understood status and stands for it otherwise.
/// `None` without any.
fn directives(headers: &HeaderMap, status: Option<u16>) -> Option<HeaderValue> {
    let mut directives: Vec<String> = list(headers, &header::CACHE_CONTROL)
        .filter_map(|directive| {
            let (name, argument) = match directive.split_once('=') {
                Some((name, argument)) => (name.trim(), Some(argument.trim())),
                None => (directive.trim(), None),
            };
            // A malformed directive is none we know; dropping it also keeps
            // a stray quote from hiding the directives after it once the
            // lines are joined.
            if !is_token(name) {
                return None;
            }
            let name = name.to_ascii_lowercase();
            let malformed = argument.is_some_and(|a| !is_token(a) && !is_quoted(a));
            Some(match argument {
                None => name,
                // The policy splits on every comma: a quoted list must not
                // reach it, nor a malformed argument. `no-cache` and
                // `private` then apply to the whole response (stricter
                // than to the fields listed); another directive with such
                // an argument is none we know.
                Some(argument) if malformed || argument.contains(',') => match name.as_str() {
                    "no-cache" | "private" => name,
                    _ => return None,
                },
                Some(argument) => {
                    let bare = argument.trim_matches('"');
                    match delta_seconds(bare.as_bytes()) {
                        Some(seconds) => format!("{name}={seconds}"),
                        None => format!("{name}={argument}"),
                    }
                }
            })
        })
        .collect();
    // A `no-store` anywhere, even inside a quoted string, is taken: a
    // cache that stores less is never wrong, and no quoting can hide it.
    let anywhere = headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|member| member.trim().eq_ignore_ascii_case("no-store"));
    if anywhere && !directives.iter().any(|d| d == "no-store") {
        directives.push("no-store".to_owned());
    }
    if directives.is_empty() {
        return None;
    }
    if let Some(status) = status {
        if directives.iter().any(|d| d == "must-understand") {
            if UNDERSTOOD_STATUSES.contains(&status) {
                directives.retain(|d| d != "no-store");
            } else if !directives.iter().any(|d| d == "no-store") {
                directives.push("no-store".to_owned());
            }
        }
    }
    HeaderValue::from_str(&directives.join(", ")).ok()
}

/// An HTTP-date in any of its three forms (RFC 9110 §5.6.7: IMF-fixdate,
/// RFC 850, asctime), rewritten as an IMF-fixdate; `None` if it is none.
fn http_date(value: &HeaderValue) -> Option<HeaderValue> {
    let date = httpdate::parse_http_date(value.to_str().ok()?).ok()?;
    HeaderValue::from_str(&httpdate::fmt_http_date(date)).ok()
}

fn lower_cased(value: &HeaderValue) -> HeaderValue {
    value
        .to_str()
        .ok()
        .and_then(|text| HeaderValue::from_str(&text.to_ascii_lowercase()).ok())
        .unwrap_or_else(|| value.clone())
}

/// A delta-seconds value (RFC 9111 §1.2.2): digits only, at most 2^31.
fn delta_seconds(text: &[u8]) -> Option<u64> {
    let text = text.trim_ascii();
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    // Past the largest u64 it is past 2^31 too.
    let seconds = std::str::from_utf8(text).ok()?.parse().unwrap_or(u64::MAX);
    Some(seconds.min(MAX_DELTA_SECONDS))
}

/// The request header names a response's `Vary` lists, lower-cased.
fn vary_names(headers: &HeaderMap) -> Vec<String> {
    list(headers, &header::VARY)
        .map(str::to_ascii_lowercase)
        .filter(|name| !name.is_empty())
        .collect()
}

/// The members of the comma-separated list fields `name` of `headers`
/// (RFC 9110 §5.6.1), trimmed: a comma inside a quoted string (with its
/// backslash escapes) does not separate.
fn list<'h>(headers: &'h HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(split_list)
}

/// A quote that is never closed is malformed: from the member where it
/// opens, the line is split at every comma, so that a stray quote hides no
/// directive (say `no-store`).
fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let mut members = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, byte) in value.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                members.push(&value[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if quoted {
        // The members before the one whose quote never closes are whole.
        members.extend(value[start..].split(','));
    } else {
        members.push(&value[start..]);
    }
    members.into_iter().map(str::trim)
}

/// A token (RFC 9110 §5.6.2).
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A whole quoted-string (RFC 9110 §5.6.4): one pair of quotes around
/// text whose own quotes are escaped.
fn is_quoted(text: &str) -> bool {
    let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) else {
        return false;
    };
    let mut escaped = false;
    for byte in inner.bytes() {
        if !escaped && byte == b'"' {
            return false;
        }
        escaped = !escaped && byte == b'\\';
    }
    // A backslash left over escaped the closing quote.
    !escaped
}

/// A private (single-user) cache: `private` responses may be stored.
fn private() -> CacheOptions {
    CacheOptions {
        shared: false,
        ..CacheOptions::default()
    }
}

/// `no-store` is never stored, whatever the switches say (`headers` as
/// [`stored_response`] left them: `must-understand` applied).
fn says_no_store(headers: &HeaderMap) -> bool {
    list(headers, &header::CACHE_CONTROL)
        .any(|directive| directive.eq_ignore_ascii_case("no-store"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn head(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    const SECRET: [u8; 32] = [7; 32];

    fn by_default(name: &str) -> bool {
        redact::is_sensitive_by_default(name)
    }

    fn response(status: u16, headers: &HeaderMap) -> Response<'_> {
        Response {
            status,
            headers,
            is_sensitive: &by_default,
            undone: None,
        }
    }

    fn settings() -> CacheSettings {
        CacheSettings {
            dir: std::path::PathBuf::new(),
            always_fresh: false,
            max_age: None,
            offline: false,
            max_bytes: None,
        }
    }

    #[test]
    fn delta_seconds_are_bounded_and_checked() {
        let cases: [(&[u8], Option<u64>); 8] = [
            (b"60", Some(60)),
            (b" 60 ", Some(60)),
            (b"2147483648", Some(1 << 31)),
            (b"9999999999999999999999999", Some(1 << 31)),
            (b"-1", None),
            (b"1.5", None),
            (b"60abc", None),
            (b"", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                delta_seconds(text),
                want,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
        let pairs = [
            (
                "cache-control",
                "Public, MAX-AGE=99999999999999999999, s-maxage=\"5\"",
            ),
            ("cache-control", "No-Cache, private=\"x-a, x-b\""),
            (
                "cache-control",
                "ext=\"a, max-age=3600\", x=\"q\\\", max-age=1\"",
            ),
        ];
        // A quoted list never reaches the policy, which would split it: a
        // qualified `private` applies to all, an unknown directive goes.
        assert_eq!(
            directives(&head(&pairs), Some(200)).unwrap(),
            "public, max-age=2147483648, s-maxage=5, no-cache, private"
        );
    }

    #[test]
    fn lists_split_outside_quoted_strings_only() {
        let members: Vec<&str> = split_list(r#" a, b="x, y" ,c="\", d", ,e"#).collect();
        assert_eq!(members, ["a", r#"b="x, y""#, r#"c="\", d""#, "", "e"]);
        assert_eq!(split_list("").collect::<Vec<_>>(), [""]);
        // An unclosed quote hides nothing: from where it opens, the line
        // splits at every comma; the members before it stay whole.
        assert_eq!(
            split_list(r#"p="x, y", a="b, no-store"#).collect::<Vec<_>>(),
            [r#"p="x, y""#, r#"a="b"#, "no-store"]
        );
    }

    /// Found by the `response_head` fuzz target: a directive with a stray
    /// quote on one line hid a `no-store` on the next once the lines were
    /// joined, and the response was stored.
    #[test]
    fn a_stray_quote_hides_no_directive() {
        let request = http::Request::get("http://h/x").body(()).unwrap();
        for pairs in [
            &[
                ("cache-control", "max-age=60, ext=6\"\"\"x"),
                ("cache-control", "no-store"),
            ][..],
            &[("cache-control", "max-age=60, a=\"b, no-store")],
            &[("cache-control", "max-age=60, x\"y, no-store")],
            &[("cache-control", "max-age=60, private=\"a, no-store, b\"")],
        ] {
            let headers = head(pairs);
            for settings in [
                settings(),
                CacheSettings {
                    always_fresh: true,
                    ..settings()
                },
            ] {
                let stored = to_store(
                    &request,
                    "http://h/x",
                    &response(200, &headers),
                    &settings,
                    &SECRET,
                    SystemTime::now(),
                );
                assert!(stored.is_none(), "{pairs:?} was stored");
            }
        }
        assert!(is_quoted(r#""a\"b""#) && is_quoted(r#""""#));
        assert!(!is_quoted(r#""a"b""#) && !is_quoted("\"") && !is_quoted(r#""a\""#));
    }

    #[test]
    fn huge_lifetimes_do_not_overflow() {
        let request = http::Request::get("http://h/x").body(()).unwrap();
        let now = SystemTime::now();
        for pairs in [
            &[("cache-control", "max-age=18446744073709551615")][..],
            &[
                ("age", "18446744073709551615"),
                ("cache-control", "max-age=60"),
            ],
            &[("expires", "Fri, 31 Dec 9999 23:59:59 GMT")],
        ] {
            let headers = head(pairs);
            let stored = to_store(
                &request,
                "http://h/x",
                &response(200, &headers),
                &settings(),
                &SECRET,
                now,
            );
            let (meta, _) = stored.expect("storable");
            assert!(meta.fresh_until_ms >= meta.stored_at_ms, "{pairs:?}");
        }
    }

    #[test]
    fn stored_requests_keep_no_secret() {
        let request = http::Request::get("http://user:pw@h/x")
            .header("authorization", "Bearer SECRET")
            .header("accept", "application/json")
            .header("x-api-key", "KEY")
            .header("cache-control", "max-age=5")
            .body(())
            .unwrap();
        let vary = |name: &HeaderName| name == "accept" || name == "authorization";
        let stored = stored_request(&request, vary, &SECRET);
        assert_eq!(stored.uri(), "http://h/x");
        let names: Vec<&str> = stored.headers().keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["authorization", "accept", "cache-control"]);
        let text = format!("{:?}", stored.headers());
        assert!(!text.contains("SECRET") && !text.contains("KEY"), "{text}");
        assert_eq!(stored.headers()["cache-control"], "max-age=5");
        let headers = head(&[
            ("set-cookie", "s=1"),
            ("x-auth-token", "T"),
            ("x-partner", "P"),
            ("etag", "\"e\""),
        ]);
        let marked = |name: &str| by_default(name) || name == "x-partner";
        let kept = stored_response(
            &Response {
                status: 200,
                headers: &headers,
                is_sensitive: &marked,
                undone: None,
            },
            SystemTime::now(),
        );
        let names: Vec<&str> = kept.headers().keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["etag"]);
    }

    #[test]
    fn vary_matches_by_hash() {
        let request = |accept: &str| {
            http::Request::get("http://h/x")
                .header("accept", accept)
                .body(())
                .unwrap()
        };
        let now = SystemTime::now();
        let headers = head(&[("cache-control", "max-age=600"), ("vary", "Accept")]);
        let (meta, policy) = to_store(
            &request("a/json"),
            "http://h/x",
            &response(200, &headers),
            &settings(),
            &SECRET,
            now,
        )
        .unwrap();
        let bytes = super::super::entry::encode(&meta, &policy, b"[]").unwrap();
        let entry = || super::super::entry::decode(bytes.clone()).unwrap();
        let later = now
            .checked_add(Duration::from_secs(1))
            .expect("a second from now");
        assert!(matches!(
            lookup(entry(), &request("a/json"), &settings(), &SECRET, later),
            Lookup::Fresh(_)
        ));
        assert!(matches!(
            lookup(entry(), &request("text/csv"), &settings(), &SECRET, later),
            Lookup::Miss
        ));
        // The switches bend freshness, never the variant.
        for switched in [
            CacheSettings {
                always_fresh: true,
                ..settings()
            },
            CacheSettings {
                max_age: Some(Duration::from_secs(3600)),
                ..settings()
            },
        ] {
            assert!(matches!(
                lookup(entry(), &request("text/csv"), &switched, &SECRET, later),
                Lookup::Miss
            ));
            assert!(matches!(
                lookup(entry(), &request("a/json"), &switched, &SECRET, later),
                Lookup::Fresh(_)
            ));
        }
    }
}
