//! Which URLs of the list are this process's: `--shard K/N` (or `auto`,
//! from the scheduler) and `--shard-by line|url|host`.
//!
//! - `line`: the URL lines `K`, `K + N`, `K + 2N`... (0-based, blank lines
//!   and comments not counted). Even parts, but inserting a line moves
//!   every later URL to another shard.
//! - `url`: the URL's hash modulo N, so a URL stays in its shard however
//!   the list is reordered or grows.
//! - `host`: the hash of the URL's origin modulo N, so every URL of a host
//!   is fetched by one process, and `--rate` and `--max-per-host` hold
//!   for the host across the whole fleet rather than per machine.
//!
//! The hash is part of the interface (machines running different versions
//! must agree on it): the first 8 bytes of the BLAKE3 hash of the text,
//! read as a little-endian u64. For `url` the text is the URL as listed
//! (spaces around it trimmed); for `host` it is the origin,
//! `scheme://host:port`, with the scheme and host lower-cased and the port
//! always written (443 for https, 80 for http), as the library keys a host
//! (DESIGN.md, invariant 7). A URL whose origin cannot be read is hashed
//! whole, as with `url` (it fails on its own when fetched).

use clap::ValueEnum;

/// How URLs are dealt out to shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum By {
    /// By position: line K, K + N, K + 2N...
    #[default]
    Line,
    /// By a hash of the URL: stable when the list is reordered
    Url,
    /// By a hash of the URL's host: each host in one shard
    Host,
}

/// `--shard`'s value: a fixed part, or the scheduler's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Spec {
    /// `K/N`.
    Fixed { index: usize, count: usize },
    /// `auto`: see `scheduler.rs`.
    Auto,
}

/// Parses `--shard`: `K/N` with 0 <= K < N, or `auto`.
pub(crate) fn spec(text: &str) -> Result<Spec, String> {
    if text.trim().eq_ignore_ascii_case("auto") {
        return Ok(Spec::Auto);
    }
    let (k, n) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is neither K/N (such as 0/4) nor auto"))?;
    match (k.trim().parse::<usize>(), n.trim().parse::<usize>()) {
        (Ok(index), Ok(count)) if count > 0 && index < count => Ok(Spec::Fixed { index, count }),
        _ => Err(format!(
            "{text:?}: K and N must be whole numbers with 0 <= K < N (shards are numbered from 0)"
        )),
    }
}

/// One part of the list: shard `index` of `count`, dealt out `by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) count: usize,
    pub(crate) by: By,
}

impl Shard {
    /// The whole list.
    pub(crate) const ALL: Shard = Shard {
        index: 0,
        count: 1,
        by: By::Line,
    };

    /// Whether the URL `url`, the `line`th URL of the list (from 0), is in
    /// this shard.
    pub(crate) fn keeps(&self, line: usize, url: &str) -> bool {
        if self.count == 1 {
            return true;
        }
        let count = self.count as u64;
        let place = match self.by {
            By::Line => line as u64 % count,
            By::Url => hash(url) % count,
            By::Host => origin(url).map_or_else(|| hash(url), |origin| hash(&origin)) % count,
        };
        place == self.index as u64
    }
}

/// The documented hash: BLAKE3's first 8 bytes, little-endian.
pub(crate) fn hash(text: &str) -> u64 {
    let digest = blake3::hash(text.as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// `scheme://host:port` of an http(s) URL: lower-cased, the port always
/// written. `None` when the URL has no such origin.
pub(crate) fn origin(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let scheme = parsed.scheme();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = parsed.host_str()?;
    let port = parsed.port_or_known_default()?;
    Some(format!("{scheme}://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(spec("0/4"), Ok(Spec::Fixed { index: 0, count: 4 }));
        assert_eq!(spec(" 3 / 4 "), Ok(Spec::Fixed { index: 3, count: 4 }));
        assert_eq!(spec("auto"), Ok(Spec::Auto));
        assert_eq!(spec("AUTO"), Ok(Spec::Auto));
        for bad in ["4/4", "1/0", "x", "-1/4", "1/4/5"] {
            assert!(spec(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_hash_is_pinned() {
        // BLAKE3("") begins af1349b9f5f9a1a6: these bytes, little-endian.
        assert_eq!(hash(""), 0xa6a1_f9f5_b949_13af);
        assert_eq!(
            hash("https://cdn.example/a.json"),
            hash("https://cdn.example/a.json")
        );
        assert_ne!(
            hash("https://cdn.example/a.json"),
            hash("https://cdn.example/b.json")
        );
    }

    #[test]
    fn one_origin_however_it_is_spelled() {
        let same = [
            "https://API.Example/x",
            "https://api.example:443/y?z",
            "HTTPS://user:pw@api.example/",
        ];
        for url in same {
            assert_eq!(
                origin(url).as_deref(),
                Some("https://api.example:443"),
                "{url}"
            );
        }
        assert_eq!(
            origin("http://api.example/").as_deref(),
            Some("http://api.example:80")
        );
        assert_eq!(
            origin("http://[::1]:8080/").as_deref(),
            Some("http://[::1]:8080")
        );
        assert_eq!(origin("not a url"), None);
        assert_eq!(origin("ftp://h/x"), None);
        for count in 2..9 {
            let shard_of = |url: &str| {
                (0..count)
                    .find(|&index| {
                        Shard {
                            index,
                            count,
                            by: By::Host,
                        }
                        .keeps(0, url)
                    })
                    .unwrap()
            };
            let first = shard_of(same[0]);
            assert!(same.iter().all(|url| shard_of(url) == first), "{count}");
        }
    }

    #[test]
    fn every_url_is_in_exactly_one_shard() {
        let urls: Vec<String> = (0..200)
            .map(|i| format!("https://h{}.example/doc/{i}", i % 7))
            .chain(["nonsense".to_owned(), String::new()])
            .collect();
        for by in [By::Line, By::Url, By::Host] {
            for count in [1, 2, 3, 8] {
                let mut sizes = vec![0; count];
                for (line, url) in urls.iter().enumerate() {
                    let owners: Vec<usize> = (0..count)
                        .filter(|&index| Shard { index, count, by }.keeps(line, url))
                        .collect();
                    assert_eq!(owners.len(), 1, "{by:?} {count} {url}");
                    sizes[owners[0]] += 1;
                }
                if count > 1 && by != By::Host {
                    // Dealt out, not all in one shard.
                    assert!(sizes.iter().all(|&n| n > 0), "{by:?} {count}: {sizes:?}");
                }
            }
        }
    }
}
