//! What a request came to when it succeeded: the body, and what the
//! server said with it (status, headers, final URL), how it was got
//! (attempts, time) and whether the cache answered.
//!
//! The headers are the map ureq read the response head into, moved here
//! whole: no header is copied or re-allocated on the way. A response the
//! cache served keeps the stored headers in the cache's own form, and
//! reads them into a map only when asked (a hit must cost far less than a
//! request: `cache/entry.rs`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ureq::http::{HeaderMap, HeaderName, HeaderValue};

use crate::redact;

/// A successful response: its body `T` (a parsed document, or the raw
/// bytes), with the status, the headers, the final URL after redirects,
/// the attempts made, the time taken, and whether the cache answered.
///
/// Returned by [`Fetcher::send`](crate::Fetcher::send) and handed over by
/// [`Batch::iter`](crate::Batch::iter). A request that fails is an
/// [`Error`](crate::Error) instead, which carries its own status and
/// attempts.
///
/// Its `Debug` hides the values of sensitive headers (see
/// [`FetcherBuilder::sensitive_header`](crate::FetcherBuilder::sensitive_header)).
pub struct Response<T> {
    status: u16,
    headers: Headers,
    url: String,
    attempts: u32,
    elapsed: Duration,
    cache: CacheStatus,
    body: T,
}

/// Whether a response came from the network or from the cache
/// ([`FetcherBuilder::cache_dir`](crate::FetcherBuilder::cache_dir)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CacheStatus {
    /// The server sent it (the cache, if any, had nothing usable, or was
    /// not asked).
    Network,
    /// The cache served it without sending anything: it was fresh.
    Fresh,
    /// The cache served it after the server confirmed it (`304 Not
    /// Modified` to a conditional request).
    Revalidated,
    /// The cache served it stale, without sending anything: offline, where
    /// a stale answer beats none.
    Stale,
}

/// The headers of a [`Response`]: names compared without case, every
/// value of a repeated header kept, in the order received: `get("link")`
/// finds `Link`, and `get_all("link")` gives each of its lines.
/// [`Fetcher::send`](crate::Fetcher::send) shows them in use.
pub struct Headers {
    /// The response's own headers; for a response the cache served after a
    /// 304, the 304's, which replace the stored ones of the same name.
    received: HeaderMap,
    /// The stored response's headers, when the cache served it: parsed on
    /// first use.
    stored: Option<Box<Stored>>,
    /// Header names marked sensitive beyond the default ones, if any
    /// (none, the common case, costs no shared count).
    marked: Option<Arc<[String]>>,
}

/// A cache entry's headers, as the cache keeps them.
struct Stored {
    /// The entry's policy (JSON): its `res` map holds the headers.
    policy: Vec<u8>,
    merged: OnceLock<HeaderMap>,
}

impl<T> Response<T> {
    /// The HTTP status: 200, 203, ... (a stored response keeps its own).
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The response headers. For a response the cache served, the stored
    /// ones (without the sensitive ones, which the cache never keeps),
    /// updated by the 304 that confirmed it, if one did.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The value of header `name` (any case), if present: the first one
    /// if it repeats. Short for `headers().get(name)`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The URL the body came from: the request's, or where its redirects
    /// led. Exactly as sent: user info in it is kept (see
    /// [`Request::redacted_url`](crate::Request::redacted_url) to show one).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Attempts made: 1 plus the retries; 0 when the cache answered
    /// without sending anything.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// From the request's first step (its cache lookup) to its result,
    /// retry delays and waits for its host included.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// Whether the cache answered, and how.
    pub fn cache_status(&self) -> CacheStatus {
        self.cache
    }

    /// The body.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// The body, mutably.
    pub fn body_mut(&mut self) -> &mut T {
        &mut self.body
    }

    /// The body, the rest dropped.
    pub fn into_body(self) -> T {
        self.body
    }

    /// The same response with its body turned into another by `f`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Response<U> {
        Response {
            status: self.status,
            headers: self.headers,
            url: self.url,
            attempts: self.attempts,
            elapsed: self.elapsed,
            cache: self.cache,
            body: f(self.body),
        }
    }

    /// Puts a response together (the engine's).
    pub(crate) fn new(
        status: u16,
        headers: Headers,
        url: String,
        attempts: u32,
        elapsed: Duration,
        cache: CacheStatus,
        body: T,
    ) -> Response<T> {
        Response {
            status,
            headers,
            url,
            attempts,
            elapsed,
            cache,
            body,
        }
    }
}

impl<T: fmt::Debug> fmt::Debug for Response<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("url", &redact::url(&self.url))
            .field("headers", &self.headers)
            .field("attempts", &self.attempts)
            .field("elapsed", &self.elapsed)
            .field("cache", &self.cache)
            .field("body", &self.body)
            .finish()
    }
}

impl Headers {
    /// The headers of a response from the network, as ureq read them.
    pub(crate) fn received(received: HeaderMap, marked: Option<Arc<[String]>>) -> Headers {
        Headers {
            received,
            stored: None,
            marked,
        }
    }

    /// The headers of a response the cache served: those of its entry
    /// (`policy`, the cache's JSON), replaced by those of the 304 that
    /// confirmed it, if any (RFC 9111 §4.3.4).
    pub(crate) fn stored(
        policy: Vec<u8>,
        update: HeaderMap,
        marked: Option<Arc<[String]>>,
    ) -> Headers {
        Headers {
            received: update,
            stored: Some(Box::new(Stored {
                policy,
                merged: OnceLock::new(),
            })),
            marked,
        }
    }

    /// The value of header `name` (any case), if present and text: the
    /// first one if it repeats.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.map().get(name).and_then(|value| value.to_str().ok())
    }

    /// Every value of header `name` (any case) that is text, in the order
    /// received: a `Link` or `Set-Cookie` may come on several lines.
    pub fn get_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + 'a {
        self.map()
            .get_all(name)
            .into_iter()
            .filter_map(|value| value.to_str().ok())
    }

    /// Whether header `name` (any case) is present.
    pub fn contains(&self, name: &str) -> bool {
        self.map().contains_key(name)
    }

    /// Every header, as (lower-case name, value) pairs; a repeated header
    /// once per value. Values that are not text are left out (see
    /// [`as_http`](Headers::as_http) for the raw bytes).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.map()
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
    }

    /// How many header values there are (a repeated header counts once
    /// per value).
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.map().is_empty()
    }

    /// The headers as the `http` crate's map (which ureq uses), values as
    /// bytes.
    pub fn as_http(&self) -> &HeaderMap {
        self.map()
    }

    fn map(&self) -> &HeaderMap {
        match &self.stored {
            None => &self.received,
            Some(stored) => stored
                .merged
                .get_or_init(|| merged(&stored.policy, &self.received)),
        }
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in self.map() {
            let name = name.as_str();
            let marked = self.marked.as_deref().unwrap_or_default();
            let value = if redact::is_sensitive(name, marked) {
                redact::HIDDEN
            } else {
                value.to_str().unwrap_or("<not text>")
            };
            map.entry(&name, &value);
        }
        map.finish()
    }
}

/// A stored header value, or several (the cache's JSON).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMore {
    One(String),
    More(Vec<String>),
}

/// The part of a cache entry's policy that holds the response headers.
#[derive(serde::Deserialize)]
struct StoredPolicy {
    res: BTreeMap<String, OneOrMore>,
}

/// The headers of the entry whose policy is `policy`, each replaced by
/// those of the same name in `update`. A policy that does not read (it
/// was checked when the entry was) gives only `update`.
fn merged(policy: &[u8], update: &HeaderMap) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(stored) = serde_json::from_slice::<StoredPolicy>(policy) {
        for (name, values) in stored.res {
            let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
                continue;
            };
            if update.contains_key(&name) {
                continue;
            }
            let values = match values {
                OneOrMore::One(value) => vec![value],
                OneOrMore::More(values) => values,
            };
            for value in values {
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.append(name.clone(), value);
                }
            }
        }
    }
    for (name, value) in update {
        headers.append(name.clone(), value.clone());
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        headers
    }

    #[test]
    fn stored_headers_are_updated_by_the_304() {
        let policy = br#"{"req":{},"res":{"etag":"\"v1\"","link":["<a>","<b>"],"x-old":"1"}}"#;
        let headers = Headers::stored(
            policy.to_vec(),
            map(&[("ETag", "\"v1\""), ("x-old", "2")]),
            None,
        );
        assert_eq!(headers.get("etag"), Some("\"v1\""));
        assert_eq!(headers.get_all("etag").count(), 1);
        assert_eq!(headers.get_all("Link").collect::<Vec<_>>(), ["<a>", "<b>"]);
        assert_eq!(headers.get("X-Old"), Some("2"));
        // A policy that does not read leaves the 304's.
        let broken = Headers::stored(b"{".to_vec(), map(&[("a", "1")]), None);
        assert_eq!(broken.iter().collect::<Vec<_>>(), [("a", "1")]);
    }

    #[test]
    fn debug_hides_sensitive_values() {
        let headers = Headers::received(
            map(&[("set-cookie", "s=1"), ("x-partner", "p"), ("x-trace", "t")]),
            Some(Arc::from(["X-Partner".to_owned()])),
        );
        assert_eq!(
            format!("{headers:?}"),
            r#"{"set-cookie": "***", "x-partner": "***", "x-trace": "t"}"#
        );
    }
}
