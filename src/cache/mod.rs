//! The on-disk response cache: HTTP caching rules (`rules.rs`), and entry
//! files that are never half-written and are checked on every read
//! (`entry.rs`).
//!
//! Users re-run the same scripts over the same documents; the second run
//! should cost almost nothing, and work with no network at all. Two
//! switches bend the rules for data sets whose servers send no cache
//! headers: every entry fresh, or a fixed max-age from when it was stored.
//!
//! Only GET responses are stored and served. Any other request goes to the
//! network, and once it succeeds, the URL's stored GET is removed (RFC 9111
//! §4.4): a POST that changed a resource must not leave its old version to
//! be served.
//!
//! One file per entry, named by a BLAKE3 hash of method and URL as the
//! caller wrote it (no URL can name a path, no two URLs share a file, and
//! the credentials a URL may carry select the entry without being written
//! in it), in a subdirectory by its first byte. The cache is an
//! optimisation: a failure to read or write it, or a panic in its rules, is
//! logged and taken as a miss, never as the request's failure.

pub(crate) mod entry;
pub(crate) mod rules;

use std::fs;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use http_cache_semantics::CachePolicy;
use ureq::http::{self, HeaderMap, HeaderName, HeaderValue};

pub(crate) use self::entry::Entry;
use self::entry::Meta;
use crate::redact;

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

/// The settings of a fetcher's cache.
#[derive(Clone, Debug)]
pub(crate) struct CacheSettings {
    pub(crate) dir: PathBuf,
    pub(crate) always_fresh: bool,
    pub(crate) max_age: Option<Duration>,
    pub(crate) offline: bool,
}

/// A fetcher's on-disk cache: see [`Fetcher::cache`](crate::Fetcher::cache).
#[derive(Clone, Debug)]
pub struct Cache {
    settings: CacheSettings,
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
        Ok(Cache { settings })
    }

    pub(crate) fn offline(&self) -> bool {
        self.settings.offline
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }

    /// What the cache holds for the GET `request`, as of `now`. `url` is
    /// the URL as the caller wrote it: the key.
    pub(crate) fn lookup(
        &self,
        request: &http::Request<&[u8]>,
        url: &str,
        now: SystemTime,
    ) -> Lookup {
        let Some(entry) = self.load(url) else {
            return Lookup::Miss;
        };
        guarded("look up", Lookup::Miss, || {
            rules::lookup(entry, request, &self.settings, now)
        })
    }

    /// Stores a response to the GET `request` if the rules allow it.
    /// Failures are logged, never fatal.
    pub(crate) fn store(
        &self,
        request: &http::Request<&[u8]>,
        url: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) {
        let now = SystemTime::now();
        let stored = guarded("store", None, || {
            rules::to_store(request, url, status, headers, &self.settings, now)
        });
        if let Some((meta, policy)) = stored {
            self.write(url, &meta, &policy, body);
        }
    }

    /// The server confirmed the entry (304): keep its body, refresh its
    /// headers and policy, when that changes anything.
    pub(crate) fn refresh(
        &self,
        request: &http::Request<&[u8]>,
        url: &str,
        entry: &Entry,
        status: u16,
        headers: &HeaderMap,
    ) {
        let now = SystemTime::now();
        let refreshed = guarded("refresh", None, || {
            rules::refreshed(request, url, entry, status, headers, now)
        });
        if let Some((meta, policy)) = refreshed {
            self.write(url, &meta, &policy, &entry.body);
        }
    }

    /// A request with another method than GET succeeded on `url`: its
    /// stored GET, if any, no longer says what the server holds.
    pub(crate) fn invalidate(&self, url: &str) {
        if let Err(error) = self.remove(url) {
            log::warn!(
                "cannot remove the cache entry of {}: {error}",
                redact::url(url)
            );
        }
    }

    fn write(&self, url: &str, meta: &Meta, policy: &CachePolicy, body: &[u8]) {
        let path = self.path(url);
        if let Err(error) = entry::write_entry(&path, meta, policy, body) {
            log::warn!("cannot store a cache entry in {}: {error}", path.display());
        }
    }

    fn load(&self, url: &str) -> Option<Entry> {
        let path = self.path(url);
        let bytes = match entry::read_entry(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
            Err(error) => {
                log::warn!("cannot read cache entry {}: {error}", path.display());
                return None;
            }
        };
        match entry::decode(bytes) {
            Some(entry) if entry.meta.url == redact::without_user_info(url) => Some(entry),
            _ => {
                // Torn, truncated, corrupt: a miss, and out of the way.
                log::warn!(
                    "cache entry {} is damaged; it will be fetched again",
                    path.display()
                );
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// The file of the GET of `url`.
    fn path(&self, url: &str) -> PathBuf {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"GET");
        hasher.update(b" ");
        hasher.update(url.as_bytes());
        let hex = hasher.finalize().to_hex();
        let mut path = PathBuf::with_capacity(self.settings.dir.as_os_str().len() + 72);
        path.push(&self.settings.dir);
        path.push(&hex[..2]);
        path.push(&hex[2..]);
        path
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

    /// Removes every entry.
    ///
    /// # Errors
    ///
    /// An entry cannot be removed.
    pub fn clear(&self) -> io::Result<()> {
        entry::for_each_entry(&self.settings.dir, |path| fs::remove_file(path))
    }

    /// Removes the entry of a `GET` of `url` (written as it was fetched);
    /// `Ok(false)` if there was none.
    ///
    /// # Errors
    ///
    /// The entry exists but cannot be removed.
    pub fn remove(&self, url: &str) -> io::Result<bool> {
        match fs::remove_file(self.path(url)) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// Runs one cache rule, taking a panic in it (in `http-cache-semantics`,
/// say) as `fallback`: the request goes on as if the cache had nothing.
fn guarded<T>(what: &str, fallback: T, rule: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(rule)).unwrap_or_else(|_| {
        log::warn!("the cache's rules panicked while trying to {what}; going on without the cache");
        fallback
    })
}
