//! The on-disk response cache: HTTP caching rules, files that are never
//! half-written, and entries that are checked on every read.
//!
//! Users re-run the same scripts over the same documents; the second run
//! should cost almost nothing, and work with no network at all. The rules
//! of what may be served without asking the server, and how to ask it
//! cheaply (If-None-Match, If-Modified-Since), are RFC 9111's, as a private
//! cache, from the `http-cache-semantics` crate. Two switches bend them for
//! data sets whose servers send no cache headers: every entry fresh, or a
//! fixed max-age from when it was stored.
//!
//! One file per entry, named by a hash of method and URL as the caller wrote
//! it (no URL can name a path), in a subdirectory by its first byte. A file
//! is written to a temporary file and renamed into place, so readers and
//! other processes see the old entry or the new one, never a mix. It holds a
//! magic number, the lengths, a checksum of the rest, a small binary record
//! of what most lookups need (freshness, validators), the policy (JSON) and
//! the body;
//! a file that fails any check is a miss, and is removed. (The checksum is a
//! CRC-32: it guards against torn writes and flipped bits, not against
//! someone who can write the directory; the file name is a BLAKE3 hash, so
//! that no two URLs share a file.) The directory is
//! 0700 and the files 0600: cached responses may hold private data.

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_cache_semantics::{AfterResponse, BeforeRequest, CacheOptions, CachePolicy};
use ureq::http::{self, HeaderMap, HeaderName, HeaderValue};

const MAGIC: &[u8; 4] = b"PFC4";
/// Magic, meta length (u32), policy length (u32), body length (u64),
/// CRC-32 of the rest (u32).
const PREAMBLE: usize = 4 + 4 + 4 + 8 + 4;

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

/// A stored response.
pub(crate) struct Entry {
    meta: Meta,
    /// The policy's JSON, parsed only when a decision needs it.
    policy: Vec<u8>,
    pub(crate) body: Vec<u8>,
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

/// What most lookups need, kept apart from the policy: parsing a whole
/// policy (two header maps) costs more than reading the file. Stored in a
/// fixed binary layout ([`Meta::encode`]): a hit must cost far less than a
/// request, and parsing this record as JSON took a quarter of it.
struct Meta {
    url: String,
    stored_at_ms: u64,
    /// Until when the rules let the entry be served without asking.
    fresh_until_ms: u64,
    /// How long it was fresh for when stored: 0 for `no-cache` responses.
    lifetime_ms: u64,
    /// The response varies by request headers: only the policy can tell.
    vary: bool,
    /// The validators to revalidate with.
    etag: Option<String>,
    last_modified: Option<String>,
}

impl Meta {
    /// The bits of the record's flags byte.
    const VARY: u8 = 1;
    const HAS_ETAG: u8 = 2;
    const HAS_LAST_MODIFIED: u8 = 4;

    fn new(url: &str, policy: &CachePolicy, headers: &HeaderMap, now: SystemTime) -> Meta {
        let lifetime = policy.time_to_live(now);
        let text = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Meta {
            url: url.to_owned(),
            stored_at_ms: millis(now),
            fresh_until_ms: millis(now + lifetime),
            lifetime_ms: u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX),
            vary: headers.contains_key(http::header::VARY),
            etag: text(http::header::ETAG),
            last_modified: text(http::header::LAST_MODIFIED),
        }
    }

    /// Three u64 times, a flags byte (vary, has etag, has last-modified),
    /// then the URL and each validator present, as a u32 length and UTF-8.
    fn encode(&self, out: &mut Vec<u8>) -> io::Result<()> {
        for time in [self.stored_at_ms, self.fresh_until_ms, self.lifetime_ms] {
            out.extend_from_slice(&time.to_le_bytes());
        }
        let flag = |set: bool, bit: u8| if set { bit } else { 0 };
        out.push(
            flag(self.vary, Meta::VARY)
                | flag(self.etag.is_some(), Meta::HAS_ETAG)
                | flag(self.last_modified.is_some(), Meta::HAS_LAST_MODIFIED),
        );
        let texts = [
            Some(&self.url),
            self.etag.as_ref(),
            self.last_modified.as_ref(),
        ];
        for text in texts.into_iter().flatten() {
            let len = u32::try_from(text.len()).map_err(io::Error::other)?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        Ok(())
    }

    /// The record `bytes` holds, exactly.
    fn decode(bytes: &[u8]) -> Option<Meta> {
        let mut reader = Reader(bytes);
        let stored_at_ms = reader.u64()?;
        let fresh_until_ms = reader.u64()?;
        let lifetime_ms = reader.u64()?;
        let flags = reader.take(1)?[0];
        let url = reader.text()?;
        let mut optional_text = |bit: u8| match flags & bit {
            0 => Some(None),
            _ => reader.text().map(Some),
        };
        let etag = optional_text(Meta::HAS_ETAG)?;
        let last_modified = optional_text(Meta::HAS_LAST_MODIFIED)?;
        let known = Meta::VARY | Meta::HAS_ETAG | Meta::HAS_LAST_MODIFIED;
        (flags & !known == 0 && reader.0.is_empty()).then_some(Meta {
            url,
            stored_at_ms,
            fresh_until_ms,
            lifetime_ms,
            vary: flags & Meta::VARY != 0,
            etag,
            last_modified,
        })
    }
}

/// Reads a [`Meta`] record front to back; `None` past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn text(&mut self) -> Option<String> {
        let len = u32::from_le_bytes(self.take(4)?.try_into().ok()?);
        let bytes = self.take(usize::try_from(len).ok()?)?;
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl Entry {
    fn policy(&self) -> Option<CachePolicy> {
        serde_json::from_slice(&self.policy).ok()
    }
}

impl Cache {
    /// Opens (creating it if needed, 0700) the cache directory.
    pub(crate) fn open(settings: CacheSettings) -> io::Result<Cache> {
        create_private_dir(&settings.dir)?;
        Ok(Cache { settings })
    }

    pub(crate) fn offline(&self) -> bool {
        self.settings.offline
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.settings.dir
    }

    /// What the cache holds for `request`, as of `now`. `url` is the URL
    /// as the caller wrote it: the key.
    pub(crate) fn lookup(
        &self,
        request: &http::Request<&[u8]>,
        url: &str,
        now: SystemTime,
    ) -> Lookup {
        let Some(entry) = self.load(request.method().as_str(), url) else {
            return Lookup::Miss;
        };
        if self.settings.always_fresh {
            return Lookup::Fresh(entry);
        }
        let now_ms = millis(now);
        if let Some(max_age) = self.settings.max_age {
            let age = now_ms.saturating_sub(entry.meta.stored_at_ms);
            return if u128::from(age) <= max_age.as_millis() {
                Lookup::Fresh(entry)
            } else {
                Lookup::Stale(entry, Vec::new())
            };
        }
        // The common case needs no policy: a fresh entry, a plain request.
        let plain = !entry.meta.vary
            && !request.headers().contains_key(http::header::CACHE_CONTROL)
            && !request.headers().contains_key(http::header::PRAGMA);
        if plain && now_ms < entry.meta.fresh_until_ms {
            return Lookup::Fresh(entry);
        }
        if plain {
            let conditional = [
                (http::header::IF_NONE_MATCH, &entry.meta.etag),
                (http::header::IF_MODIFIED_SINCE, &entry.meta.last_modified),
            ]
            .into_iter()
            .filter_map(|(name, value)| {
                Some((name, HeaderValue::from_str(value.as_deref()?).ok()?))
            })
            .collect();
            return Lookup::Stale(entry, conditional);
        }
        let Some(policy) = entry.policy() else {
            return Lookup::Miss;
        };
        match policy.before_request(request, now) {
            BeforeRequest::Fresh(_) => Lookup::Fresh(entry),
            // Stored for another variant (Vary): as good as nothing.
            BeforeRequest::Stale { matches: false, .. } => Lookup::Miss,
            BeforeRequest::Stale { request: parts, .. } => {
                let conditional = ["if-none-match", "if-modified-since"]
                    .into_iter()
                    .filter_map(|name| {
                        let value = parts.headers.get(name)?;
                        Some((HeaderName::from_static(name), value.clone()))
                    })
                    .collect();
                Lookup::Stale(entry, conditional)
            }
        }
    }

    /// Stores a response if the rules allow it (or the always-fresh and
    /// max-age switches make the rules moot). Failures are logged, never
    /// fatal: the cache is an optimisation.
    pub(crate) fn store(
        &self,
        request: &http::Request<&[u8]>,
        url: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) {
        let response = response(status, headers);
        let now = SystemTime::now();
        let policy = CachePolicy::new_options(request, &response, now, private());
        let no_store = response_says_no_store(headers);
        let overridden = self.settings.always_fresh || self.settings.max_age.is_some();
        if no_store || !(policy.is_storable() || overridden) {
            return;
        }
        let meta = Meta::new(url, &policy, headers, now);
        self.write(request, &meta, &policy, body);
    }

    /// The server confirmed the entry (304): keep its body, refresh its
    /// headers and policy. An entry the refresh leaves stale at once (as
    /// with `no-cache`) is not rewritten: it would be revalidated next time
    /// either way, and rewriting it would cost more than the exchange.
    pub(crate) fn refresh(
        &self,
        request: &http::Request<&[u8]>,
        url: &str,
        entry: &Entry,
        status: u16,
        headers: &HeaderMap,
    ) {
        let says_more = [http::header::CACHE_CONTROL, http::header::EXPIRES]
            .iter()
            .any(|name| headers.contains_key(name));
        if entry.meta.lifetime_ms == 0 && !says_more {
            return; // stale it was, stale it stays: nothing to rewrite
        }
        let Some(policy) = entry.policy() else {
            return;
        };
        let response = response(status, headers);
        let now = SystemTime::now();
        let policy = match policy.after_response(request, &response, now) {
            AfterResponse::NotModified(policy, _) | AfterResponse::Modified(policy, _) => policy,
        };
        if policy.time_to_live(now).is_zero() {
            return;
        }
        let meta = Meta {
            vary: entry.meta.vary,
            etag: entry.meta.etag.clone(),
            last_modified: entry.meta.last_modified.clone(),
            ..Meta::new(url, &policy, headers, now)
        };
        self.write(request, &meta, &policy, &entry.body);
    }

    fn write(
        &self,
        request: &http::Request<&[u8]>,
        meta: &Meta,
        policy: &CachePolicy,
        body: &[u8],
    ) {
        let path = self.path(request.method().as_str(), &meta.url);
        if let Err(error) = write_entry(&path, meta, policy, body) {
            log::warn!("cannot store a cache entry in {}: {error}", path.display());
        }
    }

    fn load(&self, method: &str, url: &str) -> Option<Entry> {
        let path = self.path(method, url);
        let bytes = match read_entry(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return None,
            Err(error) => {
                log::warn!("cannot read cache entry {}: {error}", path.display());
                return None;
            }
        };
        match decode(bytes) {
            Some(entry) if entry.meta.url == url => Some(entry),
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

    fn path(&self, method: &str, url: &str) -> PathBuf {
        let mut hasher = blake3::Hasher::new();
        hasher.update(method.as_bytes());
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
        for_each_entry(&self.settings.dir, |path| {
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
        for_each_entry(&self.settings.dir, |_| {
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
        for_each_entry(&self.settings.dir, |path| fs::remove_file(path))
    }

    /// Removes the entry of a `GET` of `url` (written as it was fetched);
    /// `Ok(false)` if there was none.
    ///
    /// # Errors
    ///
    /// The entry exists but cannot be removed.
    pub fn remove(&self, url: &str) -> io::Result<bool> {
        match fs::remove_file(self.path("GET", url)) {
            Ok(()) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error),
        }
    }
}

/// A response head, as the caching rules take it.
fn response(status: u16, headers: &HeaderMap) -> http::Response<()> {
    let mut response = http::Response::new(());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
    *response.headers_mut() = headers.clone();
    response
}

/// A private (single-user) cache: `private` responses may be stored.
fn private() -> CacheOptions {
    CacheOptions {
        shared: false,
        ..CacheOptions::default()
    }
}

/// `no-store` is never stored, whatever the switches say.
fn response_says_no_store(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|directive| directive.trim().eq_ignore_ascii_case("no-store"))
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn encode(meta: &Meta, policy: &CachePolicy, body: &[u8]) -> io::Result<Vec<u8>> {
    let mut record = Vec::with_capacity(64 + meta.url.len());
    meta.encode(&mut record)?;
    let meta = record;
    let policy = serde_json::to_vec(policy).map_err(io::Error::other)?;
    let meta_len = u32::try_from(meta.len()).map_err(io::Error::other)?;
    let policy_len = u32::try_from(policy.len()).map_err(io::Error::other)?;
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&meta);
    hasher.update(&policy);
    hasher.update(body);
    let mut bytes = Vec::with_capacity(PREAMBLE + meta.len() + policy.len() + body.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&meta_len.to_le_bytes());
    bytes.extend_from_slice(&policy_len.to_le_bytes());
    bytes.extend_from_slice(&(body.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&hasher.finalize().to_le_bytes());
    bytes.extend_from_slice(&meta);
    bytes.extend_from_slice(&policy);
    bytes.extend_from_slice(body);
    Ok(bytes)
}

/// The entry in `bytes`, if every check passes. The body keeps the read
/// buffer (moved down, not copied to a new one).
fn decode(mut bytes: Vec<u8>) -> Option<Entry> {
    let preamble = Preamble::parse(&bytes)?;
    let rest = &bytes[PREAMBLE..];
    if preamble.total()? != bytes.len() || crc32fast::hash(rest) != preamble.checksum {
        return None;
    }
    let (meta_len, policy_len) = (preamble.meta, preamble.policy);
    let meta = Meta::decode(&rest[..meta_len])?;
    let policy = rest[meta_len..meta_len + policy_len].to_vec();
    bytes.drain(..PREAMBLE + meta_len + policy_len);
    Some(Entry {
        meta,
        policy,
        body: bytes,
    })
}

/// Reads an entry file whole, in as few system calls as it takes: on a
/// hit they are most of the cost. Most entries fit in one read into a
/// buffer the thread keeps (a fresh buffer would have to be zeroed first);
/// a larger or incomplete one is read on to end of file.
fn read_entry(path: &Path) -> io::Result<Vec<u8>> {
    const FIRST_READ: usize = 16 << 10;
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; FIRST_READ]);
    }
    let mut file = File::open(path)?;
    let mut bytes = BUFFER.with_borrow_mut(|buffer| loop {
        match file.read(buffer) {
            Ok(read) => return Ok(buffer[..read].to_vec()),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    })?;
    let total = Preamble::parse(&bytes).and_then(|preamble| preamble.total());
    if total.is_none_or(|total| bytes.len() < total) {
        file.read_to_end(&mut bytes)?;
    }
    Ok(bytes)
}

/// The head of an entry file: the lengths of its parts and their checksum.
struct Preamble {
    meta: usize,
    policy: usize,
    body: usize,
    checksum: u32,
}

impl Preamble {
    /// The preamble at the start of `bytes`, if it is one of ours.
    fn parse(bytes: &[u8]) -> Option<Preamble> {
        let field = |at: usize, len: usize| bytes.get(at..at + len);
        let length = |at: usize, len: usize| -> Option<usize> {
            let mut le = [0; 8];
            le[..len].copy_from_slice(field(at, len)?);
            usize::try_from(u64::from_le_bytes(le)).ok()
        };
        if field(0, 4)? != MAGIC {
            return None;
        }
        Some(Preamble {
            meta: length(4, 4)?,
            policy: length(8, 4)?,
            body: length(12, 8)?,
            checksum: u32::from_le_bytes(field(20, 4)?.try_into().ok()?),
        })
    }

    /// The length of the whole entry, preamble included.
    fn total(&self) -> Option<usize> {
        PREAMBLE
            .checked_add(self.meta)?
            .checked_add(self.policy)?
            .checked_add(self.body)
    }
}

/// Writes `path` atomically: a 0600 temporary file beside it, renamed.
fn write_entry(path: &Path, meta: &Meta, policy: &CachePolicy, body: &[u8]) -> io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("entry has no directory"))?;
    create_private_dir(dir)?;
    let temporary = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = private_file(&temporary)?;
        file.write_all(&encode(meta, policy, body)?)?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn private_file(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Calls `f` on every entry file (not temporary files) under `dir`.
fn for_each_entry(dir: &Path, mut f: impl FnMut(&Path) -> io::Result<()>) -> io::Result<()> {
    for shard in fs::read_dir(dir)? {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for file in fs::read_dir(shard.path())? {
            let file = file?;
            let is_temporary = file.file_name().to_string_lossy().starts_with('.');
            if file.file_type()?.is_file() && !is_temporary {
                f(&file.path())?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> CachePolicy {
        let request = http::Request::get("http://h/x").body(()).unwrap();
        let response = http::Response::builder()
            .header("cache-control", "max-age=60")
            .body(())
            .unwrap();
        CachePolicy::new(&request, &response)
    }

    fn meta() -> Meta {
        Meta {
            url: "http://h/x".into(),
            stored_at_ms: 1,
            fresh_until_ms: 2,
            lifetime_ms: 1,
            vary: false,
            etag: Some("\"v1\"".into()),
            last_modified: None,
        }
    }

    #[test]
    fn entries_round_trip_and_every_damage_is_caught() {
        let bytes = encode(&meta(), &policy(), b"{\"a\":1}").unwrap();
        let entry = decode(bytes.clone()).unwrap();
        assert_eq!(entry.meta.url, "http://h/x");
        assert_eq!(entry.meta.etag.as_deref(), Some("\"v1\""));
        assert_eq!(entry.body, b"{\"a\":1}");
        assert!(entry.policy().is_some());
        let every_field = Meta {
            vary: true,
            last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
            ..meta()
        };
        let bytes_with_all = encode(&every_field, &policy(), b"").unwrap();
        let meta_back = decode(bytes_with_all).unwrap().meta;
        assert!(meta_back.vary);
        assert_eq!(meta_back.etag, every_field.etag);
        assert_eq!(meta_back.last_modified, every_field.last_modified);
        for cut in [0, 10, PREAMBLE, bytes.len() - 1] {
            assert!(
                decode(bytes[..cut].to_vec()).is_none(),
                "truncated at {cut}"
            );
        }
        for flip in [0, 5, 20, PREAMBLE + 3, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[flip] ^= 0x20;
            assert!(decode(damaged).is_none(), "flipped byte {flip}");
        }
        let mut longer = bytes.clone();
        longer.push(b' ');
        assert!(decode(longer).is_none());
    }

    #[test]
    fn entries_larger_than_the_first_read_are_read_whole() {
        let dir = std::env::temp_dir().join(format!("parfetch-cache-read-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("ab").join("cdef");
        let body: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        write_entry(&path, &meta(), &policy(), &body).unwrap();
        let entry = decode(read_entry(&path).unwrap()).unwrap();
        assert_eq!(entry.body, body);
        // Cut short, or followed by more than the preamble declares: damaged.
        let whole = fs::read(&path).unwrap();
        for damaged in [&whole[..whole.len() - 1], &[&whole[..], b"x"].concat()] {
            fs::write(&path, damaged).unwrap();
            assert!(decode(read_entry(&path).unwrap()).is_none());
        }
        let small = encode(&meta(), &policy(), b"[]").unwrap();
        fs::write(&path, [&small[..], b"x"].concat()).unwrap();
        assert!(decode(read_entry(&path).unwrap()).is_none());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn files_and_directories_are_private() {
        let dir = std::env::temp_dir().join(format!("parfetch-cache-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("ab").join("cdef");
        write_entry(&path, &meta(), &policy(), b"[]").unwrap();
        assert!(decode(fs::read(&path).unwrap()).is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join("ab")), 0o700);
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
