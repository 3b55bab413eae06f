//! What a fetcher knows of each host, in one record per host.
//!
//! A host is an origin: scheme, lower-cased name and effective port
//! ([`HostKey`]; `http://Cdn.Example/x` and `http://cdn.example:80/y` are one
//! host, `https://cdn.example/` another). Every per-host rule keys on it: the
//! circuit breaker (`breaker.rs`), the Retry-After gate, the rate limit and
//! the cap on requests in flight (`limit.rs`), and the resolved addresses
//! (`agent.rs`) all live in the host's [`Host`] record, found with one lookup
//! per attempt.
//!
//! A crawl touches tens of thousands of hosts, once each, so the table must
//! neither copy itself per new host nor grow without end:
//!
//! - **The table** is `papaya`'s concurrent map: a lookup takes no lock and
//!   writes nothing shared (no reference count: the record is borrowed for
//!   the attempt, under an epoch guard), and an insert costs the same with
//!   100,000 hosts as with 10. (Measured against `scc` and a copy-on-write
//!   map: see the README.)
//! - **Eviction.** A record unused for [`IDLE`] is removed by the next
//!   sweep, which runs when a new host is added, at most every [`SWEEP`].
//!   An attempt counts as a use until the latest it can end (its timeout:
//!   a 30 s attempt on a stalling host must find its record to count its
//!   failure), and a record whose breaker is open, or whose host asked
//!   for a pause, is kept until that ends. So the table holds about the hosts used in the
//!   last `IDLE + SWEEP` (20 s), plus the paused and broken ones; a record
//!   is about 170 bytes.
//! - **The hot path writes nothing shared**: the last-use time is written
//!   at most once a second per host.

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use papaya::Equivalent;
use ureq::http::Uri;

use crate::clock::Clock;
use crate::policy::breaker::BreakerCell;
use crate::policy::limit::Gate;

/// How long a host's record outlives its last use. Short, because a crawl
/// uses most hosts once: at 1,500 new hosts a second, a minute would keep
/// 90,000 records (14 MB) that nothing will read again. Nothing is lost by
/// it: a record with failures to count, an open breaker or a pause is kept
/// (see `Host::is_idle`), and with a rate limit, a record lives at least as
/// long as its allowance takes to fill up again.
pub(crate) const IDLE: Duration = Duration::from_secs(15);

/// The least time between two sweeps of the table.
pub(crate) const SWEEP: Duration = Duration::from_secs(5);

/// A host: scheme, lower-cased name, effective port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostKey {
    https: bool,
    port: u16,
    name: Box<str>,
}

/// A [`HostKey`] read from a URL, borrowing its name where it can.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostKeyRef<'a> {
    https: bool,
    port: u16,
    name: Cow<'a, str>,
}

/// One host's state: everything a per-host rule needs.
#[derive(Debug)]
pub(crate) struct Host {
    pub(crate) key: HostKey,
    pub(crate) breaker: BreakerCell,
    pub(crate) gate: Gate,
    /// The host name's addresses, when it is a name (not an IP) and was
    /// looked up.
    pub(crate) resolved: ArcSwapOption<crate::transport::agent::Resolved>,
    /// Until when the record is in use, in whole seconds of the clock: its
    /// last use, or the end of the longest attempt under way.
    in_use_until_s: AtomicU32,
}

/// Every host a fetcher knows of.
pub(crate) struct Hosts {
    map: papaya::HashMap<HostKey, Host>,
    clock: Arc<dyn Clock>,
    /// How long breakers stay open: an open one is kept that long.
    breakers_open_for: Duration,
    /// How long a record outlives its last use: [`IDLE`], or longer.
    idle_for: Duration,
    /// Makes a new host's gate (its rate limiter, if there is a rate).
    new_gate: Box<dyn Fn() -> Gate + Send + Sync>,
    /// The clock's seconds at the last sweep.
    last_sweep_s: AtomicU64,
}

impl HostKey {
    /// The key of a URL's host, or `None` if the URL has no http(s) scheme
    /// and host. Once per attempt: a plain scan of the bytes, no searcher.
    pub(crate) fn of_url(url: &str) -> Option<HostKeyRef<'_>> {
        let bytes = url.as_bytes();
        let colon = bytes.iter().position(|&b| b == b':')?;
        let https = match &bytes[..colon] {
            scheme if scheme.eq_ignore_ascii_case(b"https") => true,
            scheme if scheme.eq_ignore_ascii_case(b"http") => false,
            _ => return None,
        };
        let rest = url.get(colon + 1..)?.strip_prefix("//")?;
        let end = rest
            .bytes()
            .position(|b| matches!(b, b'/' | b'?' | b'#'))
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        let host_port = match authority.bytes().rposition(|b| b == b'@') {
            Some(at) => &authority[at + 1..],
            None => authority,
        };
        let (name, port) = split_port(host_port)?;
        HostKeyRef::new(https, name, port)
    }

    /// The key of a URI's host (as ureq hands it to the resolver); `None`
    /// without an http(s) scheme and host, or with a port that is not a
    /// number.
    pub(crate) fn of_uri(uri: &Uri) -> Option<HostKeyRef<'_>> {
        let https = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            _ => return None,
        };
        let port = match uri.port() {
            Some(port) => Some(port.as_str().parse().ok()?),
            None => None,
        };
        HostKeyRef::new(https, uri.host()?, port)
    }

    /// The keys `text` may mean when a caller names a host: a URL means
    /// its host; `name` or `name:port` means that name over http and over
    /// https (each on its default port unless one is given).
    pub(crate) fn candidates(text: &str) -> Vec<HostKeyRef<'_>> {
        if text.contains("://") {
            return HostKey::of_url(text).into_iter().collect();
        }
        let Some((name, port)) = split_port(text.trim_end_matches('/')) else {
            return Vec::new();
        };
        [false, true]
            .into_iter()
            .filter_map(|https| HostKeyRef::new(https, name, port))
            .collect()
    }
}

/// `name` and `port` of `host[:port]` (`[v6]:port` too); `None` for a port
/// that is not a number.
fn split_port(host_port: &str) -> Option<(&str, Option<u16>)> {
    let bytes = host_port.as_bytes();
    let name_end = if bytes.first() == Some(&b'[') {
        bytes.iter().position(|&b| b == b']')? + 1
    } else {
        bytes
            .iter()
            .rposition(|&b| b == b':')
            .unwrap_or(bytes.len())
    };
    let name = &host_port[..name_end];
    match &host_port[name_end..] {
        "" | ":" => Some((name, None)),
        port => Some((name, Some(port.strip_prefix(':')?.parse().ok()?))),
    }
}

impl<'a> HostKeyRef<'a> {
    fn new(https: bool, name: &'a str, port: Option<u16>) -> Option<HostKeyRef<'a>> {
        if name.is_empty() {
            return None;
        }
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        let port = port.unwrap_or(if https { 443 } else { 80 });
        Some(HostKeyRef { https, port, name })
    }

    /// Whether the scheme is https.
    pub(crate) fn is_https(&self) -> bool {
        self.https
    }

    /// The host's name, lower-cased (`[...]` around an IPv6 address).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `scheme://name`, with `:port` when it is not the scheme's default.
    pub(crate) fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let default = if self.https { 443 } else { 80 };
        if self.port == default {
            format!("{scheme}://{}", self.name)
        } else {
            format!("{scheme}://{}:{}", self.name, self.port)
        }
    }

    pub(crate) fn to_owned_key(&self) -> HostKey {
        HostKey {
            https: self.https,
            port: self.port,
            name: self.name.as_ref().into(),
        }
    }
}

// A key and its borrowed form hash alike (papaya looks up by either).
impl Hash for HostKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.https, self.port, &*self.name).hash(state);
    }
}

impl Hash for HostKeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.https, self.port, &*self.name).hash(state);
    }
}

impl Equivalent<HostKey> for HostKeyRef<'_> {
    fn equivalent(&self, key: &HostKey) -> bool {
        self.https == key.https && self.port == key.port && *self.name == *key.name
    }
}

impl fmt::Display for HostKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.name, self.port)
    }
}

impl fmt::Display for HostKeyRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_owned_key().fmt(f)
    }
}

impl Host {
    /// Whether the record can go: unused for `IDLE` (no attempt under
    /// way), its breaker not open and its host not paused (as of `now`, the
    /// clock's time).
    fn is_idle(&self, now: Duration, idle_for: Duration, breakers_open_for: Duration) -> bool {
        let in_use_until =
            Duration::from_secs(u64::from(self.in_use_until_s.load(Ordering::Relaxed)));
        now.saturating_sub(in_use_until) >= idle_for
            && self.breaker.is_settled(now, breakers_open_for)
            && self.gate.is_idle(now)
    }
}

impl Hosts {
    /// An empty table; `new_gate` makes each new host's gate.
    pub(crate) fn new(
        clock: Arc<dyn Clock>,
        breakers_open_for: Duration,
        idle_for: Duration,
        new_gate: impl Fn() -> Gate + Send + Sync + 'static,
    ) -> Hosts {
        Hosts {
            map: papaya::HashMap::new(),
            clock,
            breakers_open_for,
            idle_for: idle_for.max(IDLE),
            new_gate: Box::new(new_gate),
            last_sweep_s: AtomicU64::new(0),
        }
    }

    /// Runs `f` on `key`'s record, made if the host is new. The record is
    /// borrowed, not counted: `f` is where it may be used.
    pub(crate) fn with<R>(&self, key: &HostKeyRef<'_>, f: impl FnOnce(&Host) -> R) -> R {
        self.with_for(key, Duration::ZERO, f)
    }

    /// [`with`](Hosts::with), for `f` that may take up to `busy_for` (an
    /// attempt): the record is kept at least that long, so that what the
    /// attempt ends with (a failure for the breaker) reaches a record still
    /// in the table.
    pub(crate) fn with_for<R>(
        &self,
        key: &HostKeyRef<'_>,
        busy_for: Duration,
        f: impl FnOnce(&Host) -> R,
    ) -> R {
        let guard = self.map.guard();
        let now = self.clock.now();
        let host = if let Some(host) = self.map.get(key, &guard) {
            host
        } else {
            self.sweep(now);
            let new = Host {
                key: key.to_owned_key(),
                breaker: BreakerCell::default(),
                gate: (self.new_gate)(),
                resolved: ArcSwapOption::empty(),
                in_use_until_s: AtomicU32::new(0),
            };
            self.map.get_or_insert(key.to_owned_key(), new, &guard)
        };
        host.touch(now.saturating_add(busy_for));
        f(host)
    }

    /// Runs `f` on `key`'s record if there is one.
    pub(crate) fn with_existing<R>(
        &self,
        key: &HostKeyRef<'_>,
        f: impl FnOnce(&Host) -> R,
    ) -> Option<R> {
        let guard = self.map.guard();
        self.map.get(key, &guard).map(f)
    }

    /// Calls `f` on every record.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Host)) {
        let guard = self.map.guard();
        for host in self.map.values(&guard) {
            f(host);
        }
    }

    /// How many hosts the table holds.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Removes idle records, if the last sweep was at least [`SWEEP`] ago.
    fn sweep(&self, now: Duration) {
        let now_s = now.as_secs();
        let last = self.last_sweep_s.load(Ordering::Relaxed);
        if now_s.saturating_sub(last) < SWEEP.as_secs() {
            return;
        }
        // One thread sweeps; the others go on.
        if self
            .last_sweep_s
            .compare_exchange(last, now_s, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let guard = self.map.guard();
        self.map.retain(
            |_, host| !host.is_idle(now, self.idle_for, self.breakers_open_for),
            &guard,
        );
    }
}

impl Host {
    /// Notes a use lasting `until`, writing only when that is a later
    /// second than known, so that threads sharing a host do not bounce its
    /// cache line (and never moving it back).
    fn touch(&self, until: Duration) {
        let until_s = u32::try_from(until.as_secs()).unwrap_or(u32::MAX);
        if self.in_use_until_s.load(Ordering::Relaxed) < until_s {
            self.in_use_until_s.fetch_max(until_s, Ordering::Relaxed);
        }
    }
}

impl fmt::Debug for Hosts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hosts")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn key(url: &str) -> HostKey {
        HostKey::of_url(url).unwrap().to_owned_key()
    }

    #[test]
    fn keys_are_origins() {
        let same = [
            "http://cdn.example/a",
            "HTTP://Cdn.Example:80/b?c",
            "http://user:pw@cdn.example/",
            "http://cdn.example:/x",
            "http://cdn.example#frag",
        ];
        for url in same {
            assert_eq!(key(url), key(same[0]), "{url}");
        }
        let different = [
            "https://cdn.example/a",
            "http://cdn.example:8080/a",
            "http://cdn.example.org/a",
            "http://[::1]/a",
            "http://[::1]:8080/a",
        ];
        for url in different {
            assert_ne!(key(url), key(same[0]), "{url}");
        }
        assert_eq!(key("https://h/").to_string(), "https://h:443");
        assert_eq!(key("http://[::1]:99/").to_string(), "http://[::1]:99");
        for bad in [
            "ftp://h/",
            "h/x",
            "http:///x",
            "http://h:99999/",
            "http://h:x/",
        ] {
            assert!(HostKey::of_url(bad).is_none(), "{bad}");
        }
        let uri: Uri = "https://CDN.example:8443/x".parse().unwrap();
        assert_eq!(
            HostKey::of_uri(&uri).unwrap().to_owned_key(),
            key("https://cdn.example:8443/")
        );
    }

    #[test]
    fn callers_name_hosts_loosely() {
        let shown = |text: &str| -> Vec<String> {
            HostKey::candidates(text)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            shown("cdn.example"),
            ["http://cdn.example:80", "https://cdn.example:443"]
        );
        assert_eq!(
            shown("Cdn.Example:8080"),
            ["http://cdn.example:8080", "https://cdn.example:8080"]
        );
        assert_eq!(
            shown("https://cdn.example/x.json"),
            ["https://cdn.example:443"]
        );
        assert_eq!(shown("[::1]:9"), ["http://[::1]:9", "https://[::1]:9"]);
        assert!(shown("h:port").is_empty());
    }

    #[test]
    fn idle_records_are_swept_and_busy_ones_kept() {
        let clock = Arc::new(ManualClock::default());
        let hosts = Hosts::new(clock.clone(), Duration::from_secs(60), IDLE, Gate::default);
        for i in 0..100 {
            let url = format!("http://h{i}/");
            hosts.with(&HostKey::of_url(&url).unwrap(), |_| ());
        }
        let paused = HostKey::of_url("http://h7/").unwrap();
        hosts.with(&paused, |host| {
            host.gate.close(clock.now(), Duration::from_secs(600));
        });
        assert_eq!(hosts.len(), 100);
        // Used just now: a new host's sweep keeps them all.
        clock.advance(SWEEP);
        hosts.with(&HostKey::of_url("http://new/").unwrap(), |_| ());
        assert_eq!(hosts.len(), 101);
        // Idle long enough: all go but the paused one and the newest.
        clock.advance(IDLE);
        let kept = HostKey::of_url("http://new/").unwrap();
        hosts.with(&kept, |_| ());
        hosts.with(&HostKey::of_url("http://newer/").unwrap(), |_| ());
        assert_eq!(hosts.len(), 3);
        assert!(hosts.with_existing(&paused, |_| ()).is_some());
        // Its pause over, the paused one goes at the next sweep.
        clock.advance(Duration::from_secs(600));
        hosts.with(&HostKey::of_url("http://newest/").unwrap(), |_| ());
        assert!(hosts.with_existing(&paused, |_| ()).is_none());
    }
}
