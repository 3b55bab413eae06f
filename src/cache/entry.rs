//! The on-disk entry: one file per stored response, never half-written,
//! checked on every read.
//!
//! A file holds a magic number, the lengths of its parts, a CRC-32 of the
//! rest, a small binary record of what most lookups need ([`Meta`]:
//! freshness, validators), the caching policy (JSON) and the body. It is
//! written to a temporary file and renamed into place, so that readers and
//! other processes see the old entry or the new one, never a mix; a file
//! that fails any check is a miss. (The CRC guards against torn writes and
//! flipped bits, not against someone who can write the directory.) The
//! directory is 0700 and the files 0600: cached responses may hold private
//! data.

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use http_cache_semantics::CachePolicy;

const MAGIC: &[u8; 4] = b"PFC6";
/// Magic, meta length (u32), policy length (u32), body length (u64),
/// CRC-32 of the rest (u32).
const PREAMBLE: usize = 4 + 4 + 4 + 8 + 4;

/// A stored response.
pub(crate) struct Entry {
    pub(crate) meta: Meta,
    /// The policy's JSON, parsed only when a decision needs it (or the
    /// caller asks for the stored headers: `response.rs`).
    pub(crate) policy: Vec<u8>,
    pub(crate) body: Vec<u8>,
}

/// What most lookups need, kept apart from the policy: parsing a whole
/// policy (two header maps) costs more than reading the file. Stored in a
/// fixed binary layout ([`Meta::encode`]): a hit must cost far less than a
/// request, and parsing this record as JSON took a quarter of it.
pub(crate) struct Meta {
    /// The URL, normalised (`mod.rs`): the key, checked on read.
    pub(crate) url: String,
    /// The response's status, served as stored (a 203 is not a 200).
    pub(crate) status: u16,
    pub(crate) stored_at_ms: u64,
    /// Until when the rules let the entry be served without asking.
    pub(crate) fresh_until_ms: u64,
    /// How long it was fresh for when stored: 0 for `no-cache` responses.
    pub(crate) lifetime_ms: u64,
    /// The response varies by request headers: only the policy can tell.
    pub(crate) vary: bool,
    /// Once stale, it must not be served without the server's word, not
    /// even offline (`must-revalidate`, `no-cache`: RFC 9111 §4.2.4).
    pub(crate) must_revalidate: bool,
    /// The validators to revalidate with.
    pub(crate) etag: Option<String>,
    pub(crate) last_modified: Option<String>,
    /// What the response said its body is, for the words of a parse
    /// failure on a hit (as on the fetch): its Content-Type, and the
    /// content codings parfetch left undone.
    pub(crate) content_type: Option<String>,
    pub(crate) undone: Option<String>,
}

impl Meta {
    /// The bits of the record's flags byte.
    const VARY: u8 = 1;
    const HAS_ETAG: u8 = 2;
    const HAS_LAST_MODIFIED: u8 = 4;
    const MUST_REVALIDATE: u8 = 8;
    const HAS_CONTENT_TYPE: u8 = 16;
    const HAS_UNDONE: u8 = 32;

    /// Three u64 times, the u16 status, a flags byte (vary, has etag, has
    /// last-modified, must revalidate), then the URL and each validator present, as a u32 length and UTF-8.
    fn encode(&self, out: &mut Vec<u8>) -> io::Result<()> {
        for time in [self.stored_at_ms, self.fresh_until_ms, self.lifetime_ms] {
            out.extend_from_slice(&time.to_le_bytes());
        }
        out.extend_from_slice(&self.status.to_le_bytes());
        let flag = |set: bool, bit: u8| if set { bit } else { 0 };
        out.push(
            flag(self.vary, Meta::VARY)
                | flag(self.etag.is_some(), Meta::HAS_ETAG)
                | flag(self.last_modified.is_some(), Meta::HAS_LAST_MODIFIED)
                | flag(self.must_revalidate, Meta::MUST_REVALIDATE)
                | flag(self.content_type.is_some(), Meta::HAS_CONTENT_TYPE)
                | flag(self.undone.is_some(), Meta::HAS_UNDONE),
        );
        let texts = [
            Some(&self.url),
            self.etag.as_ref(),
            self.last_modified.as_ref(),
            self.content_type.as_ref(),
            self.undone.as_ref(),
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
        let status = u16::from_le_bytes(reader.take(2)?.try_into().ok()?);
        let flags = *reader.take(1)?.first()?;
        let url = reader.text()?;
        let mut optional_text = |bit: u8| match flags & bit {
            0 => Some(None),
            _ => reader.text().map(Some),
        };
        let etag = optional_text(Meta::HAS_ETAG)?;
        let last_modified = optional_text(Meta::HAS_LAST_MODIFIED)?;
        let content_type = optional_text(Meta::HAS_CONTENT_TYPE)?;
        let undone = optional_text(Meta::HAS_UNDONE)?;
        let known = Meta::VARY
            | Meta::HAS_ETAG
            | Meta::HAS_LAST_MODIFIED
            | Meta::MUST_REVALIDATE
            | Meta::HAS_CONTENT_TYPE
            | Meta::HAS_UNDONE;
        (flags & !known == 0 && reader.0.is_empty()).then_some(Meta {
            url,
            status,
            stored_at_ms,
            fresh_until_ms,
            lifetime_ms,
            vary: flags & Meta::VARY != 0,
            must_revalidate: flags & Meta::MUST_REVALIDATE != 0,
            etag,
            last_modified,
            content_type,
            undone,
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
    pub(crate) fn policy(&self) -> Option<CachePolicy> {
        serde_json::from_slice(&self.policy).ok()
    }
}

/// `time` in milliseconds since the Unix epoch (0 before it).
pub(crate) fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(crate) fn encode(meta: &Meta, policy: &CachePolicy, body: &[u8]) -> io::Result<Vec<u8>> {
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
pub(crate) fn decode(mut bytes: Vec<u8>) -> Option<Entry> {
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
///
/// With `touch`, the file's modification time becomes now: what the cache
/// size limit evicts by (least recently used first).
pub(crate) fn read_entry(path: &Path, touch: bool) -> io::Result<Vec<u8>> {
    const FIRST_READ: usize = 16 << 10;
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = RefCell::new(vec![0; FIRST_READ]);
    }
    let mut file = File::open(path)?;
    if touch {
        // Best effort: an entry that cannot be touched is evicted sooner.
        let _ = file.set_modified(SystemTime::now());
    }
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
/// Returns the bytes written.
pub(crate) fn write_entry(
    path: &Path,
    meta: &Meta,
    policy: &CachePolicy,
    body: &[u8],
) -> io::Result<u64> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("entry has no directory"))?;
    let bytes = encode(meta, policy, body)?;
    // An eviction or a clear may remove the directory between its making
    // and the rename (it removes the directories it empties): then again.
    let mut tries = 3;
    loop {
        tries -= 1;
        create_private_dir(dir)?;
        let temporary = dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let result = private_file(&temporary)
            .and_then(|mut file| file.write_all(&bytes))
            .and_then(|()| fs::rename(&temporary, path));
        match result {
            Ok(()) => return Ok(bytes.len() as u64),
            Err(error) => {
                let _ = fs::remove_file(&temporary);
                if error.kind() != io::ErrorKind::NotFound || tries == 0 {
                    return Err(error);
                }
            }
        }
    }
}

pub(crate) fn create_private_dir(dir: &Path) -> io::Result<()> {
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

/// Calls `f` on every entry file (not temporary files) under `dir`: in
/// `dir/<shard>/<url>/`. A directory another process removes meanwhile is
/// as good as empty.
pub(crate) fn for_each_entry(
    dir: &Path,
    mut f: impl FnMut(&Path) -> io::Result<()>,
) -> io::Result<()> {
    for shard in subdirectories(dir)? {
        for url in subdirectories(&shard)? {
            for file in listing(&url)? {
                let is_temporary = file.file_name().to_string_lossy().starts_with('.');
                let is_file = match file.file_type() {
                    Ok(kind) => kind.is_file(),
                    Err(error) if error.kind() == io::ErrorKind::NotFound => false,
                    Err(error) => return Err(error),
                };
                if is_file && !is_temporary {
                    // Gone meanwhile (another process evicted it): skipped.
                    match f(&file.path()) {
                        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                        other => other?,
                    }
                }
            }
        }
    }
    Ok(())
}

/// Removes the URL and shard directories under `dir` that are empty (or
/// hold only a crashed writer's temporary files).
pub(crate) fn remove_empty_dirs(dir: &Path) -> io::Result<()> {
    for shard in subdirectories(dir)? {
        for url in subdirectories(&shard)? {
            for file in listing(&url)? {
                if file.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = fs::remove_file(file.path());
                }
            }
            // Not empty: a writer got there first; it stays.
            let _ = fs::remove_dir(&url);
        }
        let _ = fs::remove_dir(&shard);
    }
    Ok(())
}

/// Removes the entry file at `path`, then its URL and shard directories if
/// that left them empty. Already gone is as good as removed.
pub(crate) fn remove_entry(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    // Not empty (another entry, or a writer's file): it stays.
    for dir in path.ancestors().skip(1).take(2) {
        if fs::remove_dir(dir).is_err() {
            break;
        }
    }
    Ok(())
}

fn subdirectories(dir: &Path) -> io::Result<Vec<std::path::PathBuf>> {
    let mut found = Vec::new();
    for entry in listing(dir)? {
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => found.push(entry.path()),
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(found)
}

/// The entries of `dir`; none if another process removed it meanwhile
/// (a clear, an eviction, an invalidation).
fn listing(dir: &Path) -> io::Result<Vec<fs::DirEntry>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut found = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => found.push(entry),
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(found)
}

/// The cache's secret key, in `dir/key`: read, or made at random (0600)
/// by the first process to use the directory.
pub(crate) fn secret(dir: &Path) -> io::Result<[u8; 32]> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let path = dir.join("key");
    let read = |path: &Path| -> io::Result<[u8; 32]> {
        let bytes = fs::read(path)?;
        bytes
            .try_into()
            .map_err(|_| io::Error::other(format!("{} is not a cache key", path.display())))
    };
    match read(&path) {
        Ok(key) => return Ok(key),
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        Err(_) => {}
    }
    let mut key = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| io::Error::other("the system's random source failed"))?;
    // Written aside and linked into place: two processes starting at once
    // agree on whichever key landed first.
    let temporary = dir.join(format!(
        ".key-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    private_file(&temporary)?.write_all(&key)?;
    let placed = match fs::hard_link(&temporary, &path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        // A file system without hard links: the last writer wins, and the
        // other process's entries are misses.
        Err(_) => fs::rename(&temporary, &path),
    };
    let _ = fs::remove_file(&temporary);
    placed?;
    read(&path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::http;

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
            status: 203,
            stored_at_ms: 1,
            fresh_until_ms: 2,
            lifetime_ms: 1,
            vary: false,
            must_revalidate: false,
            etag: Some("\"v1\"".into()),
            last_modified: None,
            content_type: None,
            undone: None,
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
            must_revalidate: true,
            content_type: Some("text/html".into()),
            undone: Some("zstd".into()),
            last_modified: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
            ..meta()
        };
        let bytes_with_all = encode(&every_field, &policy(), b"").unwrap();
        let meta_back = decode(bytes_with_all).unwrap().meta;
        assert!(meta_back.vary && meta_back.must_revalidate);
        assert_eq!(meta_back.content_type.as_deref(), Some("text/html"));
        assert_eq!(meta_back.undone.as_deref(), Some("zstd"));
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
        let entry = decode(read_entry(&path, false).unwrap()).unwrap();
        assert_eq!(entry.body, body);
        // Cut short, or followed by more than the preamble declares: damaged.
        let whole = fs::read(&path).unwrap();
        for damaged in [&whole[..whole.len() - 1], &[&whole[..], b"x"].concat()] {
            fs::write(&path, damaged).unwrap();
            assert!(decode(read_entry(&path, false).unwrap()).is_none());
        }
        let small = encode(&meta(), &policy(), b"[]").unwrap();
        fs::write(&path, [&small[..], b"x"].concat()).unwrap();
        assert!(decode(read_entry(&path, false).unwrap()).is_none());
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
