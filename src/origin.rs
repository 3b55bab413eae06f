//! A host, as every per-host rule keys it: its origin.
//!
//! An origin is a scheme, a lower-cased name and an effective port
//! (`http://Cdn.Example/x` and `http://cdn.example:80/y` are one origin,
//! `https://cdn.example/` another). The host table (`policy/host.rs`), the
//! proxies' choice (`transport/proxy.rs`), the resolver's cache and the
//! response cache all key on it, so that "a host" means the same thing
//! everywhere (RFC 6454).

use std::borrow::Cow;
use std::fmt;
use std::hash::{Hash, Hasher};

use papaya::Equivalent;
use ureq::http::Uri;

/// A host: scheme, lower-cased name, effective port. The key of its record
/// in the host table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Origin {
    https: bool,
    port: u16,
    name: Box<str>,
}

/// An [`Origin`] read from a URL, borrowing its name where it can: what a
/// lookup needs, without an allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OriginRef<'a> {
    https: bool,
    port: u16,
    name: Cow<'a, str>,
}

impl<'a> OriginRef<'a> {
    /// The origin of a URL, or `None` if the URL has no http(s) scheme
    /// and host. Once per attempt: a plain scan of the bytes, no searcher.
    pub(crate) fn of_url(url: &'a str) -> Option<OriginRef<'a>> {
        OriginRef::split_url(url).map(|(origin, _)| origin)
    }

    /// The origin of a URL and what follows its authority (the path, query
    /// and fragment, from the first `/`, `?` or `#`): the one reader of a
    /// URL's parts by hand, for [`of_url`](Self::of_url) and the cache's key.
    pub(crate) fn split_url(url: &'a str) -> Option<(OriginRef<'a>, &'a str)> {
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
        Some((OriginRef::new(https, name, port)?, &rest[end..]))
    }

    /// The origin of a URI (as ureq hands it to the resolver); `None`
    /// without an http(s) scheme and host, or with a port that is not a
    /// number.
    pub(crate) fn of_uri(uri: &'a Uri) -> Option<OriginRef<'a>> {
        let https = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => true,
            Some(s) if s.eq_ignore_ascii_case("http") => false,
            _ => return None,
        };
        let port = match uri.port() {
            Some(port) => Some(port.as_str().parse().ok()?),
            None => None,
        };
        OriginRef::new(https, uri.host()?, port)
    }

    /// The origins `text` may mean when a caller names a host: a URL means
    /// its host; `name` or `name:port` means that name over http and over
    /// https (each on its default port unless one is given).
    pub(crate) fn candidates(text: &'a str) -> Vec<OriginRef<'a>> {
        if text.contains("://") {
            return OriginRef::of_url(text).into_iter().collect();
        }
        let Some((name, port)) = split_port(text.trim_end_matches('/')) else {
            return Vec::new();
        };
        [false, true]
            .into_iter()
            .filter_map(|https| OriginRef::new(https, name, port))
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

impl<'a> OriginRef<'a> {
    fn new(https: bool, name: &'a str, port: Option<u16>) -> Option<OriginRef<'a>> {
        if name.is_empty() {
            return None;
        }
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(name.to_ascii_lowercase())
        } else {
            Cow::Borrowed(name)
        };
        let port = port.unwrap_or(if https { 443 } else { 80 });
        Some(OriginRef { https, port, name })
    }

    /// Whether the scheme is https.
    pub(crate) fn is_https(&self) -> bool {
        self.https
    }

    /// The host's name, lower-cased (`[...]` around an IPv6 address).
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn to_origin(&self) -> Origin {
        Origin {
            https: self.https,
            port: self.port,
            name: self.name.as_ref().into(),
        }
    }
}

// A key and its borrowed form hash alike (papaya looks up by either).
impl Hash for Origin {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.https, self.port, &*self.name).hash(state);
    }
}

impl Hash for OriginRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.https, self.port, &*self.name).hash(state);
    }
}

impl Equivalent<Origin> for OriginRef<'_> {
    fn equivalent(&self, key: &Origin) -> bool {
        self.https == key.https && self.port == key.port && *self.name == *key.name
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}:{}", self.name, self.port)
    }
}

impl fmt::Display for OriginRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_origin().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(url: &str) -> Origin {
        OriginRef::of_url(url).unwrap().to_origin()
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
            assert!(OriginRef::of_url(bad).is_none(), "{bad}");
        }
        let uri: Uri = "https://CDN.example:8443/x".parse().unwrap();
        assert_eq!(
            OriginRef::of_uri(&uri).unwrap().to_origin(),
            key("https://cdn.example:8443/")
        );
    }

    #[test]
    fn callers_name_hosts_loosely() {
        let shown = |text: &str| -> Vec<String> {
            OriginRef::candidates(text)
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
}
