//! The on-disk response cache: HTTP caching rules (`rules.rs`), and entry
//! files that are never half-written and are checked on every read
//! (`entry.rs`).
//!
//! Users re-run the same scripts over the same documents; the second run
//! should cost almost nothing, and work with no network at all. Two
//! switches bend the rules for data sets whose servers send no cache
//! headers: every entry fresh, or a fixed max-age from when it was stored.
//!
//! Only GET responses are stored, and served (to a GET, or to a HEAD as its
//! head). A HEAD revalidates a stale stored GET as the GET would, and its
//! 200 freshens the GET it describes (RFC 9111 §4.3.5,
//! `engine/cached.rs`). An unsafe request (POST, PUT, PATCH, DELETE) goes to the network,
//! and once it succeeds, the stored GETs of its URL, and of the
//! `Location` and `Content-Location` its answer names on the same origin,
//! are removed (RFC 9111 §4.4): a request that changed a resource must not
//! leave its old version to be served.
//!
//! One file per entry, named by a BLAKE3 hash of method and URL, the URL
//! normalised ([`normalised_url`]; no URL can name a path, no two URLs share a file, and
//! the credentials a URL may carry select the entry without being written
//! in it), in a subdirectory by its first byte. The cache is an
//! optimisation: a failure to read or write it, or a panic in its rules, is
//! logged and taken as a miss, never as the request's failure.

pub(crate) mod entry;
pub(crate) mod rules;

use std::fs;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use http_cache_semantics::CachePolicy;
use ureq::http::{self, HeaderMap, HeaderName, HeaderValue};

pub(crate) use self::entry::Entry;
use self::entry::Meta;
use crate::origin::OriginRef;
use crate::redact;

/// The settings of a fetcher's cache.
#[derive(Clone, Debug)]
pub(crate) struct CacheSettings {
    pub(crate) dir: PathBuf,
    pub(crate) always_fresh: bool,
    pub(crate) max_age: Option<Duration>,
    pub(crate) offline: bool,
    /// The most bytes the entries may take on disk.
    pub(crate) max_bytes: Option<u64>,
}

/// How much of the size limit a process writes before it measures the
/// directory again: a twentieth.
const MEASURE_EVERY: u64 = 20;

/// A fetcher's on-disk cache: see [`Fetcher::cache`](crate::Fetcher::cache).
#[derive(Clone)]
pub struct Cache {
    settings: CacheSettings,
    /// This cache's own key for hashing what must not be readable: the
    /// credentials that select an entry, the request headers a response
    /// varies on. Made at random when the directory is first used, kept in
    /// it (0600).
    secret: [u8; 32],
    /// What the entries take, for the size limit (shared by clones).
    usage: Arc<Usage>,
}

/// The bytes the entries take, as this process knows it: measured when the
/// cache opens, grown by each write, measured again (other processes'
/// writes show up then) when it passes the limit or when this process has
/// written [`MEASURE_EVERY`] of the limit since it last measured.
#[derive(Default)]
struct Usage {
    bytes: AtomicU64,
    /// Bytes written by this process since the directory was last measured.
    unmeasured: AtomicU64,
    /// Held by the one thread evicting at a time.
    evicting: Mutex<()>,
}

/// Where a GET's entries live, and what each must say it is.
pub(crate) struct EntryKey {
    /// The URL, normalised ([`normalised_url`]): scheme and host
    /// lower-cased, no default port, no dot segments, no user info, no
    /// fragment.
    url: String,
    /// The entry for this request's credentials, in the URL's directory
    /// (one entry per set of credentials).
    file: PathBuf,
}

/// What the cache says about a request.
pub(crate) enum Lookup {
    /// Serve this body; ask no one.
    Fresh(Entry),
    /// Ask the server, with these headers, whether the entry still holds.
    Stale(Entry, Vec<(HeaderName, HeaderValue)>),
    /// Nothing usable is stored.
    Miss,
}

impl Cache {
    /// Opens (creating it if needed, 0700) the cache directory.
    pub(crate) fn open(settings: CacheSettings) -> io::Result<Cache> {
        entry::create_private_dir(&settings.dir)?;
        let secret = entry::secret(&settings.dir)?;
        let cache = Cache {
            settings,
            secret,
            usage: Arc::default(),
        };
        if cache.settings.max_bytes.is_some() {
            cache
                .usage
                .bytes
                .store(cache.size_on_disk()?, Ordering::Relaxed);
            cache.enforce_limit();
        }
        Ok(cache)
    }

    pub(crate) fn offline(&self) -> bool {
        self.settings.offline
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }

    /// Where the GET `request` of `url` (as the caller wrote it) is kept:
    /// by its normalised URL, and by the credentials it carries (the
    /// headers `is_sensitive` names, user info included), so that one
    /// credential's answer is never served to another. `None` for a URL
    /// without a host.
    pub(crate) fn key(
        &self,
        url: &str,
        request: &http::Request<()>,
        is_sensitive: impl Fn(&str) -> bool,
    ) -> Option<EntryKey> {
        let url = normalised_url(url)?;
        let mut credentials: Vec<(&str, &[u8])> = request
            .headers()
            .iter()
            .filter(|(name, _)| is_sensitive(name.as_str()))
            .map(|(name, value)| (name.as_str(), value.as_bytes()))
            .collect();
        credentials.sort_unstable();
        let mut variant = blake3::Hasher::new_keyed(&self.secret);
        for (name, value) in credentials {
            for part in [name.as_bytes(), b"\0", value, b"\0"] {
                variant.update(part);
            }
        }
        let file = self.url_dir(&url).join(&variant.finalize().to_hex()[..32]);
        Some(EntryKey { url, file })
    }

    /// The directory of a normalised URL's entries.
    fn url_dir(&self, url: &str) -> PathBuf {
        let hex = blake3::keyed_hash(&self.secret, url.as_bytes()).to_hex();
        let mut dir = PathBuf::with_capacity(self.settings.dir.as_os_str().len() + 72);
        dir.push(&self.settings.dir);
        dir.push(&hex[..2]);
        dir.push(&hex[2..32]);
        dir
    }

    /// What the cache holds for the GET `request`, as of `now`.
    pub(crate) fn lookup(
        &self,
        key: &EntryKey,
        request: &http::Request<()>,
        now: SystemTime,
    ) -> Lookup {
        let Some(entry) = key.load(self.settings.max_bytes.is_some()) else {
            return Lookup::Miss;
        };
        guarded("look up", Lookup::Miss, || {
            rules::lookup(entry, request, &self.settings, &self.secret, now)
        })
    }

    /// Stores a response to the GET `request` if the rules allow it,
    /// without the response headers `is_sensitive` names. Failures are
    /// logged, never fatal.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn store(
        &self,
        key: &EntryKey,
        request: &http::Request<()>,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
        undone: Option<&str>,
        is_sensitive: &dyn Fn(&str) -> bool,
    ) {
        let now = SystemTime::now();
        let stored = guarded("store", None, || {
            let response = rules::Response {
                status,
                headers,
                is_sensitive,
                undone,
            };
            rules::to_store(
                request,
                &key.url,
                &response,
                &self.settings,
                &self.secret,
                now,
            )
        });
        if let Some((meta, policy)) = stored {
            self.written(key.write(&meta, &policy, body));
        }
    }

    /// The server confirmed the entry (304): keep its body, refresh its
    /// headers and policy, when that changes anything.
    pub(crate) fn refresh(
        &self,
        key: &EntryKey,
        request: &http::Request<()>,
        entry: &Entry,
        headers: &HeaderMap,
        is_sensitive: &dyn Fn(&str) -> bool,
    ) {
        let now = SystemTime::now();
        let refreshed = guarded("refresh", None, || {
            // The body is the entry's: its codings are the entry's too.
            let response = rules::Response {
                status: 304,
                headers,
                is_sensitive,
                undone: None,
            };
            rules::refreshed(request, &key.url, entry, &response, &self.secret, now)
        });
        if let Some((meta, policy)) = refreshed {
            self.written(key.write(&meta, &policy, &entry.body));
        }
    }

    /// Counts `bytes` just written, and evicts if the cache is now over its
    /// size limit.
    fn written(&self, bytes: u64) {
        if self.settings.max_bytes.is_some() {
            self.usage.bytes.fetch_add(bytes, Ordering::Relaxed);
            self.usage.unmeasured.fetch_add(bytes, Ordering::Relaxed);
            self.enforce_limit();
        }
    }

    /// Past the size limit, removes the least recently used entries (by
    /// modification time, which a hit renews) until the cache is at 90% of
    /// it. One thread of a process does it at a time. Processes sharing the
    /// directory see each other's writes when they measure it, which each
    /// does once it has written a twentieth of the limit: the directory
    /// passes the limit by at most a twentieth of it per process writing,
    /// and only until the next measurement. A reader that opened an entry
    /// before it was removed reads it whole.
    fn enforce_limit(&self) {
        let Some(max) = self.settings.max_bytes else {
            return;
        };
        let over = self.usage.bytes.load(Ordering::Relaxed) > max;
        let unmeasured = self.usage.unmeasured.load(Ordering::Relaxed) > max / MEASURE_EVERY;
        if !(over || unmeasured) {
            return;
        }
        let Some(_evicting) = self.usage.evicting.try_lock() else {
            return;
        };
        self.usage.unmeasured.store(0, Ordering::Relaxed);
        let mut entries = Vec::new();
        let listed = entry::for_each_entry(&self.settings.dir, |path| {
            let metadata = fs::metadata(path)?;
            let used = metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            entries.push((used, metadata.len(), path.to_path_buf()));
            Ok(())
        });
        if let Err(error) = listed {
            log::warn!("cannot size the cache in {}: {error}", self.dir().display());
            return;
        }
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        if total <= max {
            self.usage.bytes.store(total, Ordering::Relaxed);
            return;
        }
        let target = max / 10 * 9;
        entries.sort_unstable_by_key(|(used, _, _)| *used);
        for (_, len, path) in entries {
            if total <= target {
                break;
            }
            match entry::remove_entry(&path) {
                Ok(()) => total = total.saturating_sub(len),
                Err(error) => log::warn!("cannot evict {}: {error}", path.display()),
            }
        }
        self.usage.bytes.store(total, Ordering::Relaxed);
    }

    /// An unsafe request (POST, PUT, PATCH, DELETE) on `url` succeeded,
    /// answered with `headers` (if kept): the stored GETs of `url`, and of
    /// the `Location` and `Content-Location` the answer names on the same
    /// origin (never another's: RFC 9111 §4.4), whatever their credentials,
    /// no longer say what the server holds.
    pub(crate) fn invalidate(&self, url: &str, headers: Option<&HeaderMap>) {
        let mut urls = vec![url.to_owned()];
        if let (Some(headers), Ok(base)) = (headers, url::Url::parse(url)) {
            let origin = OriginRef::of_url(url);
            for name in [http::header::LOCATION, http::header::CONTENT_LOCATION] {
                let named = headers
                    .get(&name)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| base.join(value.trim()).ok());
                if let Some(named) = named {
                    if origin.is_some() && OriginRef::of_url(named.as_str()) == origin {
                        urls.push(named.into());
                    }
                }
            }
        }
        for url in urls {
            if let Err(error) = self.remove(&url) {
                log::warn!(
                    "cannot remove the cache entries of {}: {error}",
                    redact::url(&url)
                );
            }
        }
    }

    /// Bytes the entries take on disk.
    ///
    /// # Errors
    ///
    /// The directory cannot be read.
    pub fn size_on_disk(&self) -> io::Result<u64> {
        let mut total = 0;
        entry::for_each_entry(&self.settings.dir, |path| {
            total += fs::metadata(path)?.len();
            Ok(())
        })?;
        Ok(total)
    }

    /// How many entries are stored.
    ///
    /// # Errors
    ///
    /// The directory cannot be read.
    pub fn entries(&self) -> io::Result<u64> {
        let mut count = 0;
        entry::for_each_entry(&self.settings.dir, |_| {
            count += 1;
            Ok(())
        })?;
        Ok(count)
    }

    /// Removes every entry, and the directories that held them.
    ///
    /// # Errors
    ///
    /// An entry cannot be removed.
    pub fn clear(&self) -> io::Result<()> {
        entry::for_each_entry(&self.settings.dir, |path| fs::remove_file(path))?;
        entry::remove_empty_dirs(&self.settings.dir)
    }

    /// Removes the entries of `GET`s of `url` (whatever credentials they
    /// were fetched with, and whatever way of writing the URL: scheme and
    /// host in any case, the default port or none, dot segments, are all
    /// one URL); `Ok(false)` if there were none.
    ///
    /// # Errors
    ///
    /// An entry exists but cannot be removed.
    pub fn remove(&self, url: &str) -> io::Result<bool> {
        let Some(url) = normalised_url(url) else {
            return Ok(false);
        };
        match fs::remove_dir_all(self.url_dir(&url)) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }
}

impl EntryKey {
    /// Writes the entry; the bytes written (0 if it could not be).
    fn write(&self, meta: &Meta, policy: &CachePolicy, body: &[u8]) -> u64 {
        entry::write_entry(&self.file, meta, policy, body).unwrap_or_else(|error| {
            log::warn!(
                "cannot store a cache entry in {}: {error}",
                self.file.display()
            );
            0
        })
    }

    /// Reads the entry; with `touch`, marks it used now (`read_entry`).
    fn load(&self, touch: bool) -> Option<Entry> {
        let path = &self.file;
        let bytes = match entry::read_entry(path, touch) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
            Err(error) => {
                log::warn!("cannot read cache entry {}: {error}", path.display());
                return None;
            }
        };
        match entry::decode(bytes) {
            Some(entry) if entry.meta.url == self.url => Some(entry),
            _ => {
                // Torn, truncated, corrupt: a miss, and out of the way.
                log::warn!(
                    "cache entry {} is damaged; it will be fetched again",
                    path.display()
                );
                let _ = fs::remove_file(path);
                None
            }
        }
    }
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// `url` as the cache keys it, normalised as RFC 9110 §4.2.3 allows for an
/// http(s) URL, by the `url` crate: scheme and host lower-cased, no default
/// port, no dot segments, an empty path as `/`; and without user info (it
/// travels as credentials) or fragment. The GET that stores an entry, the
/// unsafe request that invalidates it, and the `Location` its answer names
/// all meet here (RFC 9111 §4.4): `HTTP://Host:80/./x` and `http://host/x`
/// are one entry. `None` for a URL without an http(s) host, or one that
/// does not parse.
fn normalised_url(url: &str) -> Option<String> {
    // The host as every per-host rule reads it must be there too.
    OriginRef::of_url(url)?;
    let mut url = url::Url::parse(url).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    // Neither can fail on an http(s) URL with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_fragment(None);
    Some(url.into())
}

/// Runs one cache rule, taking a panic in it (in `http-cache-semantics`,
/// say) as `fallback`: the request goes on as if the cache had nothing.
fn guarded<T>(what: &str, fallback: T, rule: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(rule)).unwrap_or_else(|_| {
        log::warn!("the cache's rules panicked while trying to {what}; going on without the cache");
        fallback
    })
}

#[cfg(test)]
mod tests {
    use super::normalised_url;

    #[test]
    fn urls_are_keyed_normalised() {
        let cases = [
            ("http://h/x", Some("http://h/x")),
            ("HTTP://Host:80/x", Some("http://host/x")),
            (
                "https://h:443/a/./b/../x?q=1#frag",
                Some("https://h/a/x?q=1"),
            ),
            ("http://user:pw@h:8080", Some("http://h:8080/")),
            ("http://h/%7Ex", Some("http://h/%7Ex")),
            ("ftp://h/x", None),
            ("http:///x", None),
            ("not a url", None),
        ];
        for (url, want) in cases {
            assert_eq!(normalised_url(url).as_deref(), want, "{url}");
        }
    }
}
