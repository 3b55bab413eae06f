//! Which requests go through a proxy, and which proxy.
//!
//! As curl reads the environment, lower case first: `http_proxy` for http
//! URLs (lower case only: a CGI program gets a request's `Proxy:` header as
//! `HTTP_PROXY`), `https_proxy` (or `HTTPS_PROXY`) for https URLs,
//! `all_proxy` (or `ALL_PROXY`) for either when its own is not set, and
//! `no_proxy` (or `NO_PROXY`) for the hosts that go direct: a
//! comma-separated list of names (which also cover their subdomains; a
//! leading dot or `*.` is allowed, a trailing dot ignored), IP addresses and
//! ranges (`10.0.0.0/8`), or `*` alone for all. A variable set to nothing is
//! unset. A proxy without a port is on curl's default port: 1080, or 443
//! for an `https://` proxy. [`FetcherBuilder::proxy`](crate::FetcherBuilder::proxy)
//! sets one proxy for both schemes (`NO_PROXY` still applies; an empty URL
//! turns proxies off, as `curl -x ""` does), and
//! [`no_proxy`](crate::FetcherBuilder::no_proxy) turns proxies off.
//!
//! How a request goes through (`agent.rs`): an https one through a CONNECT
//! tunnel, TLS end to end; a plain http one as a forward-proxy request
//! (`GET http://host/path`, over TLS to an `https://` proxy), which every
//! proxy takes, where many refuse a CONNECT to port 80. The proxy's
//! credentials (`http://user:pw@proxy:3128`) go in `Proxy-Authorization`,
//! and are shown as `***` anywhere else.

use std::fmt;
use std::net::IpAddr;

use crate::origin::OriginRef;

/// Where the proxies come from: a builder setting.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) enum ProxySetting {
    /// The environment, as curl reads it. The default.
    #[default]
    FromEnv,
    /// This proxy for every request (bar `NO_PROXY`'s hosts).
    Url(String),
    /// No proxy at all.
    Off,
}

/// One proxy: its URL as given, checked.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Proxy {
    /// `http://[user:pw@]host:port`.
    pub(crate) url: String,
}

/// The proxies of a fetcher, by scheme, and the hosts that bypass them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Routes {
    pub(crate) http: Option<Proxy>,
    pub(crate) https: Option<Proxy>,
    no_proxy: Vec<String>,
}

impl Proxy {
    /// A proxy from a URL: `http://` (or `https://`, for a proxy reached over
    /// TLS), or a bare `host:port` (taken as http); without a port, curl's
    /// defaults: 1080 for http, 443 for https. SOCKS is not supported.
    pub(crate) fn parse(text: &str) -> Result<Proxy, String> {
        let text = text.trim();
        let url = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let shown = redacted(&url);
        let (scheme, rest) = url.split_once("://").unwrap_or_default();
        let https = scheme.eq_ignore_ascii_case("https");
        if !(https || scheme.eq_ignore_ascii_case("http")) {
            return Err(format!(
                "the proxy {shown:?} is not http:// or https:// (SOCKS is not supported)"
            ));
        }
        // A proxy URL is an authority and nothing more (a trailing `/` is
        // allowed): a `/`, `?` or `#` in a password must be percent-encoded,
        // or the password would be read as a host and a path.
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        let host_port = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        if authority.contains(['/', '?', '#', '\\']) {
            return Err(format!(
                "the proxy {shown:?} has a path: a '/', '?' or '#' in its user name or \
                 password must be percent-encoded (%2F, %3F, %23)"
            ));
        }
        let has_port = host_port
            .rsplit_once(':')
            .is_some_and(|(host, _)| !host.ends_with(']') || host.starts_with('['))
            && !host_port.ends_with(']');
        let default_port = if https { 443 } else { 1080 };
        let url = if has_port {
            format!("{scheme}://{authority}")
        } else {
            format!("{scheme}://{authority}:{default_port}")
        };
        if crate::origin::OriginRef::of_url(&url).is_none() || ureq::Proxy::new(&url).is_err() {
            return Err(format!("the proxy {shown:?} is not a valid URL"));
        }
        Ok(Proxy { url })
    }

    /// Whether the proxy itself is reached over TLS.
    pub(crate) fn is_https(&self) -> bool {
        self.url
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    }
}

/// A proxy URL with its user info hidden: everything between `://` and the
/// last `@` (a proxy URL has no path, so an unencoded `/` in a password
/// is still user info here).
fn redacted(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let rest = match rest.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => rest.to_owned(),
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{rest}"),
        None => rest,
    }
}

impl fmt::Debug for ProxySetting {
    // A proxy URL may hold credentials: shown redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::FromEnv => f.write_str("FromEnv"),
            ProxySetting::Url(url) => write!(f, "Url({:?})", redacted(url)),
            ProxySetting::Off => f.write_str("Off"),
        }
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redacted(&self.url))
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({self})")
    }
}

impl Routes {
    /// The routes `setting` gives, reading variables with `var`.
    pub(crate) fn new(
        setting: &ProxySetting,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Routes, String> {
        // Lower case first, as curl reads them; empty is unset.
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| var(name).filter(|value| !value.trim().is_empty()))
        };
        let no_proxy = first(&["no_proxy", "NO_PROXY"]).unwrap_or_default();
        // `*` alone: every host goes direct, and no proxy is even read.
        if no_proxy.trim() == "*" {
            return Ok(Routes::default());
        }
        let no_proxy = no_proxy
            .split(',')
            .map(|entry| entry.trim().to_ascii_lowercase())
            .filter(|entry| !entry.is_empty())
            .collect();
        let (http, https) = match setting {
            ProxySetting::Off => (None, None),
            // `--proxy ""` turns proxies off, as `curl -x ""` does.
            ProxySetting::Url(url) if url.trim().is_empty() => (None, None),
            ProxySetting::Url(url) => {
                let proxy = Proxy::parse(url)?;
                (Some(proxy.clone()), Some(proxy))
            }
            ProxySetting::FromEnv => {
                let all = first(&["all_proxy", "ALL_PROXY"]);
                let parse = |value: Option<String>, name: &str| {
                    value
                        .map(|url| Proxy::parse(&url).map_err(|e| format!("{name}: {e}")))
                        .transpose()
                };
                (
                    parse(first(&["http_proxy"]).or_else(|| all.clone()), "http_proxy")?,
                    parse(
                        first(&["https_proxy", "HTTPS_PROXY"]).or(all),
                        "https_proxy",
                    )?,
                )
            }
        };
        Ok(Routes {
            http,
            https,
            no_proxy,
        })
    }

    /// The proxy a request to `host` goes through, if any.
    pub(crate) fn for_host(&self, host: &OriginRef<'_>) -> Option<&Proxy> {
        let proxy = if host.is_https() {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }?;
        (!self.bypasses(host.name())).then_some(proxy)
    }

    /// Whether `NO_PROXY` sends requests to `name` direct, as curl reads
    /// it: an IP address is matched by the entries that are IP addresses
    /// (equal) or ranges (`10.0.0.0/8`, `::1/128`); a name by the entries
    /// that are names, itself or a parent domain (`example.com`,
    /// `.example.com` or `*.example.com` cover `api.example.com`), a
    /// trailing dot ignored on either side.
    fn bypasses(&self, name: &str) -> bool {
        let name = name.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = name.parse::<IpAddr>() {
            return self.no_proxy.iter().any(|entry| in_range(ip, entry));
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        self.no_proxy.iter().any(|entry| {
            let entry = entry.trim_start_matches("*.").trim_start_matches('.');
            let entry = entry.strip_suffix('.').unwrap_or(entry);
            if entry.is_empty() || entry.parse::<IpAddr>().is_ok() {
                return false;
            }
            let covered = name.len() > entry.len()
                && name.as_bytes().get(name.len() - entry.len() - 1) == Some(&b'.')
                && name
                    .get(name.len() - entry.len()..)
                    .is_some_and(|tail| tail.eq_ignore_ascii_case(entry));
            name.eq_ignore_ascii_case(entry) || covered
        })
    }
}

/// Whether `ip` is the address `entry` names, or in the range it names
/// (`addr/bits`).
fn in_range(ip: IpAddr, entry: &str) -> bool {
    let entry = entry.trim_start_matches('[');
    let (address, bits) = match entry.split_once('/') {
        Some((address, bits)) => (address, bits.parse::<u32>().ok()),
        None => (entry, None),
    };
    let Ok(network) = address.trim_end_matches(']').parse::<IpAddr>() else {
        return false;
    };
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// How a proxy failed a request: in words, and with the status it
/// answered, if it did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) status: Option<u16>,
    pub(crate) problem: String,
}

/// How far a proxied hop got when it failed.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Reached {
    /// It was to go through a CONNECT tunnel (not a forward request).
    pub(crate) tunnel: bool,
    /// A new connection to the proxy was opened.
    pub(crate) proxy: bool,
    /// The tunnel was open: what failed after is the target's.
    pub(crate) through: bool,
}

/// Whether `error`, on a request sent through a proxy that got as far as
/// `reached`, is the proxy's failure: the connection to it (which is the
/// only one a proxied request makes), its name, or its answer to a
/// CONNECT (a refusal, or none in time). Other errors (a TLS failure, a
/// timeout once through) may be the target's, and are left as they are.
pub(crate) fn failure(error: &ureq::Error, reached: Reached) -> Option<Failure> {
    use std::io::ErrorKind as Io;
    let problem = |problem: &str| {
        Some(Failure {
            status: None,
            problem: problem.to_owned(),
        })
    };
    if reached.through {
        return None;
    }
    match error {
        ureq::Error::ConnectProxyFailed(reason) => Some(tunnel_refused(reason)),
        ureq::Error::HostNotFound => problem("its name does not resolve"),
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) if !reached.proxy => {
            problem("it did not accept the connection in time")
        }
        ureq::Error::Timeout(_) if reached.tunnel && reached.proxy => {
            problem("it did not answer the CONNECT in time")
        }
        ureq::Error::Io(io) => match io.kind() {
            Io::ConnectionRefused => problem("it refused the connection"),
            Io::HostUnreachable | Io::NetworkUnreachable | Io::AddrNotAvailable => {
                problem("it cannot be reached")
            }
            _ => None,
        },
        _ => None,
    }
}

/// The failure of a CONNECT that did not open a tunnel. ureq says why in
/// text: `proxy server responded 407/407 Proxy Authentication Required`,
/// or that the proxy did not answer.
fn tunnel_refused(reason: &str) -> Failure {
    let status = reason
        .strip_prefix("proxy server responded ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .filter(|code| (100..=599).contains(code));
    Failure {
        status,
        problem: match status {
            Some(407) => "it refused the tunnel: it wants credentials, \
                          given as http://user:password@host:port"
                .to_owned(),
            Some(_) => "it refused the tunnel".to_owned(),
            None => format!("it opened no tunnel: {reason}"),
        },
    }
}

/// The failure of a forward-proxy request the proxy answered with 407.
pub(crate) fn wants_credentials() -> Failure {
    Failure {
        status: Some(407),
        problem: "it wants credentials, given as http://user:password@host:port".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origin::OriginRef;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn route(routes: &Routes, url: &str) -> Option<String> {
        routes
            .for_host(&OriginRef::of_url(url).unwrap())
            .map(|p| p.url.clone())
    }

    #[test]
    fn the_environment_as_curl_reads_it() {
        let routes = Routes::new(
            &ProxySetting::FromEnv,
            vars(&[
                ("http_proxy", "http://plain:3128"),
                ("HTTPS_PROXY", "secure:8443"),
                ("HTTP_PROXY", "http://ignored:1"),
                ("NO_PROXY", "internal.example, .corp, *.lan,10.0.0.1,[::1]"),
            ]),
        )
        .unwrap();
        assert_eq!(
            route(&routes, "http://a.example/"),
            Some("http://plain:3128".into())
        );
        assert_eq!(
            route(&routes, "https://a.example/"),
            Some("http://secure:8443".into())
        );
        for direct in [
            "http://internal.example/x",
            "http://api.internal.example/x",
            "https://x.corp/",
            "http://corp/",
            "http://printer.lan/",
            "http://10.0.0.1:8080/",
            "http://[::1]:9/",
        ] {
            assert_eq!(route(&routes, direct), None, "{direct}");
        }
        assert!(route(&routes, "http://notinternal.example/").is_some());
        // ALL_PROXY fills the gaps; `*` sends everything direct.
        let all = Routes::new(
            &ProxySetting::FromEnv,
            vars(&[("ALL_PROXY", "http://all:1")]),
        )
        .unwrap();
        assert_eq!(route(&all, "https://h/"), Some("http://all:1".into()));
        let none = Routes::new(
            &ProxySetting::FromEnv,
            vars(&[("ALL_PROXY", "http://all:1"), ("no_proxy", "*")]),
        )
        .unwrap();
        assert_eq!(route(&none, "https://h/"), None);
        // Lower case wins; ranges, exact addresses and trailing dots.
        let routes = Routes::new(
            &ProxySetting::FromEnv,
            vars(&[
                ("https_proxy", "http://lower:1"),
                ("HTTPS_PROXY", "http://upper:1"),
                (
                    "no_proxy",
                    "127.0.0.0/8, ::1/128, localhost., 0.0.1, 192.168.1.7",
                ),
                ("NO_PROXY", "ignored.example"),
            ]),
        )
        .unwrap();
        assert_eq!(route(&routes, "https://h/"), Some("http://lower:1".into()));
        for direct in [
            "https://127.3.2.1/",
            "https://[::1]/",
            "https://localhost/",
            "https://localhost./",
            "https://192.168.1.7/",
        ] {
            assert_eq!(route(&routes, direct), None, "{direct}");
        }
        for proxied in [
            "https://128.0.0.1/",
            "https://[::2]/",
            "https://ignored.example/",
            // An address is not a name: `0.0.1` is no suffix of it.
            "https://10.0.0.1/",
            "https://192.168.1.70/",
        ] {
            assert!(route(&routes, proxied).is_some(), "{proxied}");
        }
        // A default port, and an empty --proxy turns proxies off.
        let bare = Routes::new(&ProxySetting::Url("proxy.corp".into()), vars(&[])).unwrap();
        assert_eq!(
            route(&bare, "http://h/"),
            Some("http://proxy.corp:1080".into())
        );
        let tls = Routes::new(&ProxySetting::Url("https://p/".into()), vars(&[])).unwrap();
        assert_eq!(route(&tls, "http://h/"), Some("https://p:443".into()));
        let empty = Routes::new(&ProxySetting::Url(String::new()), vars(&[])).unwrap();
        assert_eq!((empty.http, empty.https), (None, None));
        // `*` alone reads no proxy at all, not even an unsupported one.
        let socks = vars(&[("ALL_PROXY", "socks5://h:1080"), ("NO_PROXY", "*")]);
        assert!(Routes::new(&ProxySetting::FromEnv, socks).is_ok());
        // Off is off, whatever the environment says.
        let off = Routes::new(&ProxySetting::Off, vars(&[("ALL_PROXY", "http://all:1")])).unwrap();
        assert_eq!((off.http, off.https), (None, None));
    }

    #[test]
    fn bad_proxies_are_refused_without_showing_secrets() {
        for bad in ["socks5://me:SECRET@h:1080", "http://me:SECRET@", "ftp://h"] {
            let error = Proxy::parse(bad).unwrap_err();
            assert!(!error.contains("SECRET"), "{error}");
        }
        let proxy = Proxy::parse("http://me:SECRET@proxy:3128").unwrap();
        assert_eq!(proxy.to_string(), "http://***@proxy:3128");
        // An unencoded `/`, `?` or `#` in a password: refused, still hidden.
        for bad in [
            "http://me:pa/SECRET@h:3128",
            "http://me:1234/SECRET@h",
            "me:a#SECRET@h:1",
        ] {
            let error = Proxy::parse(bad).unwrap_err();
            assert!(!error.contains("SECRET"), "{error}");
            assert!(error.contains("percent-encoded"), "{error}");
        }
        let at_in_password = Proxy::parse("http://me:p@SECRET@h:3128").unwrap();
        assert_eq!(at_in_password.to_string(), "http://***@h:3128");
        assert!(!format!("{proxy:?}").contains("SECRET"));
    }

    #[test]
    fn the_proxy_is_blamed_only_for_its_own_failures() {
        let refused = failure(
            &ureq::Error::ConnectProxyFailed(
                "proxy server responded 407/407 Proxy Authentication Required".into(),
            ),
            Reached::default(),
        )
        .unwrap();
        assert_eq!(refused.status, Some(407));
        assert!(refused.problem.contains("credentials"), "{refused:?}");
        let bad_gateway = failure(
            &ureq::Error::ConnectProxyFailed("proxy server responded 502/502 Bad Gateway".into()),
            Reached::default(),
        )
        .unwrap();
        assert_eq!(bad_gateway.status, Some(502));
        let silent = failure(
            &ureq::Error::ConnectProxyFailed("proxy server did not respond".into()),
            Reached::default(),
        )
        .unwrap();
        assert_eq!(silent.status, None);
        assert!(silent.problem.contains("did not respond"));
        let io = |kind| ureq::Error::Io(std::io::Error::from(kind));
        let nowhere = Reached::default();
        assert!(failure(&io(std::io::ErrorKind::ConnectionRefused), nowhere).is_some());
        assert!(failure(&io(std::io::ErrorKind::ConnectionReset), nowhere).is_none());
        let global = ureq::Error::Timeout(ureq::Timeout::Global);
        assert!(failure(&global, nowhere).is_none());
        assert!(failure(&ureq::Error::Timeout(ureq::Timeout::Connect), nowhere).is_some());
        // Waiting for the CONNECT answer: the proxy's; through: the target's.
        let waiting = Reached {
            tunnel: true,
            proxy: true,
            through: false,
        };
        assert!(failure(&global, waiting).is_some());
        let through = Reached {
            through: true,
            ..waiting
        };
        assert!(failure(&ureq::Error::Timeout(ureq::Timeout::Connect), through).is_none());
    }
}
