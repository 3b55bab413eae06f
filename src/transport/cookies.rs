//! A fetcher's cookie jar: off unless asked for.
//!
//! Some APIs hand out a session cookie at login and want it back on every
//! later request, as a browser or a `requests.Session` would send it. With
//! [`cookie_store(true)`](crate::FetcherBuilder::cookie_store) a fetcher
//! keeps the cookies its responses set (every redirect hop's too) and sends
//! each back only where RFC 6265 says (`cookie_store` crate): to the host
//! that set it, or the domain it named, under its path, over https only if
//! `Secure` (or to a loopback host, which browsers count as secure too),
//! until it expires. Cookies are secrets: they are never written
//! to the cache (`Set-Cookie` is not stored, `Cookie` keys entries by
//! hash), never shown, and a `Cookie` header of your own does not follow a
//! redirect to another host (`redirect.rs`); the jar's cookies go where
//! they belong on every hop.
//!
//! There is no public-suffix list: a `Domain` attribute is trusted as far
//! as RFC 6265 goes, so a site could set a cookie for a whole public suffix
//! (`co.uk`). Keep one fetcher per set of sites that trust one another.

use cookie_store::CookieStore;
use parking_lot::Mutex;
use ureq::http::{header, HeaderMap, HeaderValue};
use url::Url;

/// The longest name and value of a cookie kept (RFC 6265bis §5.6).
const MAX_COOKIE: usize = 4096;

/// The longest `Cookie` line sent: the output buffer holds 16 KiB of head.
const MAX_COOKIE_LINE: usize = 8 << 10;

/// The cookies of one fetcher and its clones.
#[derive(Default)]
pub(crate) struct Jar {
    store: Mutex<CookieStore>,
}

impl Jar {
    /// Adds the jar's cookies for `url` to `headers`: after those of a
    /// `Cookie` header already there, in one header (RFC 6265 §5.4).
    pub(crate) fn add_to(&self, url: &str, headers: &mut HeaderMap) {
        let Ok(url) = Url::parse(url) else {
            return;
        };
        let store = self.store.lock();
        // Your own `Cookie` headers come first; one that is not text is
        // left alone, and the jar's go in a header of their own.
        let own: Option<Vec<&str>> = headers
            .get_all(header::COOKIE)
            .iter()
            .map(|value| value.to_str().ok())
            .collect();
        let merge = own.is_some();
        let mut line = own.map(|own| own.join("; ")).unwrap_or_default();
        let before = line.len();
        // Longer paths first (RFC 6265 §5.4); the store keeps no creation
        // time, so names order the rest, the same way every time.
        let mut cookies = store.matches(&url);
        cookies.sort_by(|a, b| {
            let path = |c: &cookie_store::Cookie<'_>| c.path.as_ref().len();
            path(b).cmp(&path(a)).then_with(|| a.name().cmp(b.name()))
        });
        for (name, value) in cookies.iter().map(|cookie| cookie.name_value()) {
            // The line stays well inside a request head (`agent.rs`): the
            // cookies that do not fit are left out, the shortest paths'.
            if line.len() + name.len() + value.len() + 3 > MAX_COOKIE_LINE {
                log::warn!(
                    "{}: cookies left out of a Cookie header past {MAX_COOKIE_LINE} bytes",
                    crate::redact::url(url.as_str())
                );
                break;
            }
            if !line.is_empty() {
                line.push_str("; ");
            }
            line.push_str(name);
            line.push('=');
            line.push_str(value);
        }
        drop(store);
        if line.len() == before {
            return;
        }
        let line = if merge {
            &line[..]
        } else {
            line[before..].trim_start_matches("; ")
        };
        if let Ok(mut value) = HeaderValue::from_str(line) {
            value.set_sensitive(true);
            if merge {
                headers.insert(header::COOKIE, value);
            } else {
                headers.append(header::COOKIE, value);
            }
        }
    }

    /// Keeps the cookies a response from `url` set.
    pub(crate) fn store(&self, url: &str, headers: &HeaderMap) {
        // Most answers set none: no URL parse for them.
        if !headers.contains_key(header::SET_COOKIE) {
            return;
        }
        let Ok(url) = Url::parse(url) else {
            return;
        };
        let cookies: Vec<cookie_store::RawCookie<'static>> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|text| cookie_store::RawCookie::parse(text.to_owned()).ok())
            // RFC 6265bis §5.6: a name and value past 4096 bytes are
            // ignored, as browsers do.
            .filter(|cookie| cookie.name().len() + cookie.value().len() <= MAX_COOKIE)
            .collect();
        if !cookies.is_empty() {
            self.store
                .lock()
                .store_response_cookies(cookies.into_iter(), &url);
        }
    }
}

/// Whether an answer fetched with the jar's cookies may be cached: not if
/// it sets cookies (a new session sharing the cache must get its own), nor
/// if a redirect's later hop sent other cookies than the first (the entry
/// is keyed by the first hop's, and would serve another session's answer).
pub(crate) fn cacheable(headers: &HeaderMap, cookies_changed: bool) -> bool {
    !cookies_changed && !headers.contains_key(header::SET_COOKIE)
}

impl std::fmt::Debug for Jar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jar").finish_non_exhaustive()
    }
}
