//! Which requests go through a proxy, and which proxy.
//!
//! As curl does: `http_proxy` for http URLs (lower case only: a CGI program
//! gets a request's `Proxy:` header as `HTTP_PROXY`), `HTTPS_PROXY` (or
//! `https_proxy`) for https URLs, `ALL_PROXY` (or `all_proxy`) for either
//! when its own is not set, and `NO_PROXY` (or `no_proxy`) for the hosts
//! that go direct: a comma-separated list of names (which also cover their
//! subdomains; a leading dot or `*.` is allowed), IP addresses, or `*` for
//! all. [`FetcherBuilder::proxy`](crate::FetcherBuilder::proxy) sets one
//! proxy for both schemes (`NO_PROXY` still applies), and
//! [`no_proxy`](crate::FetcherBuilder::no_proxy) turns proxies off.
//!
//! How a request goes through (`agent.rs`): an https one through a CONNECT
//! tunnel, TLS end to end; a plain http one as a forward-proxy request
//! (`GET http://host/path`), which every proxy takes, where many refuse a
//! CONNECT to port 80. The proxy's credentials (`http://user:pw@proxy:3128`)
//! go in `Proxy-Authorization`, and are shown as `***` anywhere else.

use std::fmt;

use crate::host::HostKeyRef;
use crate::redact;

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
    /// TLS), or a bare `host:port` (taken as http). SOCKS is not supported.
    pub(crate) fn parse(text: &str) -> Result<Proxy, String> {
        let text = text.trim();
        let url = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let shown = redact::url(&url).into_owned();
        let scheme = url.split_once("://").map_or("", |(scheme, _)| scheme);
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return Err(format!(
                "the proxy {shown:?} is not http:// or https:// (SOCKS is not supported)"
            ));
        }
        if crate::host::HostKey::of_url(&url).is_none() || ureq::Proxy::new(&url).is_err() {
            return Err(format!("the proxy {shown:?} is not a valid URL"));
        }
        Ok(Proxy { url })
    }
}

impl Proxy {
    /// Whether the proxy itself is reached over TLS.
    pub(crate) fn is_https(&self) -> bool {
        self.url
            .get(..8)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    }
}

impl fmt::Debug for ProxySetting {
    // A proxy URL may hold credentials: shown redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxySetting::FromEnv => f.write_str("FromEnv"),
            ProxySetting::Url(url) => write!(f, "Url({:?})", redact::url(url)),
            ProxySetting::Off => f.write_str("Off"),
        }
    }
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact::url(&self.url))
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
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| var(name).filter(|value| !value.trim().is_empty()))
        };
        let no_proxy = first(&["NO_PROXY", "no_proxy"])
            .map(|list| {
                list.split(',')
                    .map(|entry| entry.trim().to_ascii_lowercase())
                    .filter(|entry| !entry.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let (http, https) = match setting {
            ProxySetting::Off => (None, None),
            ProxySetting::Url(url) => {
                let proxy = Proxy::parse(url)?;
                (Some(proxy.clone()), Some(proxy))
            }
            ProxySetting::FromEnv => {
                let all = first(&["ALL_PROXY", "all_proxy"]);
                let parse = |value: Option<String>, name: &str| {
                    value
                        .map(|url| Proxy::parse(&url).map_err(|e| format!("{name}: {e}")))
                        .transpose()
                };
                (
                    parse(first(&["http_proxy"]).or_else(|| all.clone()), "http_proxy")?,
                    parse(
                        first(&["HTTPS_PROXY", "https_proxy"]).or(all),
                        "HTTPS_PROXY",
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
    pub(crate) fn for_host(&self, host: &HostKeyRef<'_>) -> Option<&Proxy> {
        let proxy = if host.is_https() {
            self.https.as_ref()
        } else {
            self.http.as_ref()
        }?;
        (!self.bypasses(host.name())).then_some(proxy)
    }

    /// Whether `NO_PROXY` sends requests to `name` direct: `*`, the name
    /// itself, or a parent domain of it (`example.com`, `.example.com` or
    /// `*.example.com` cover `api.example.com`).
    fn bypasses(&self, name: &str) -> bool {
        let name = name.trim_start_matches('[').trim_end_matches(']');
        self.no_proxy.iter().any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry
                .trim_start_matches("*.")
                .trim_start_matches('.')
                .trim_start_matches('[')
                .trim_end_matches(']');
            if entry.is_empty() {
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

/// How a proxy failed a request: in words, and with the status it
/// answered, if it did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Failure {
    pub(crate) status: Option<u16>,
    pub(crate) problem: String,
}

/// Whether `error`, on a request sent through a proxy, is the proxy's
/// failure: the connection to it (which is the only one a proxied request
/// makes), or its refusal of a tunnel. Other errors (a TLS failure, a
/// timeout once connected) may be the target's, and are left as they are.
pub(crate) fn failure(error: &ureq::Error) -> Option<Failure> {
    use std::io::ErrorKind as Io;
    let problem = |problem: &str| {
        Some(Failure {
            status: None,
            problem: problem.to_owned(),
        })
    };
    match error {
        ureq::Error::ConnectProxyFailed(reason) => Some(tunnel_refused(reason)),
        ureq::Error::HostNotFound => problem("its name does not resolve"),
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
            problem("it did not accept the connection in time")
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
    use crate::host::HostKey;

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
            .for_host(&HostKey::of_url(url).unwrap())
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
        assert!(!format!("{proxy:?}").contains("SECRET"));
    }

    #[test]
    fn the_proxy_is_blamed_only_for_its_own_failures() {
        let refused = failure(&ureq::Error::ConnectProxyFailed(
            "proxy server responded 407/407 Proxy Authentication Required".into(),
        ))
        .unwrap();
        assert_eq!(refused.status, Some(407));
        assert!(refused.problem.contains("credentials"), "{refused:?}");
        let bad_gateway = failure(&ureq::Error::ConnectProxyFailed(
            "proxy server responded 502/502 Bad Gateway".into(),
        ))
        .unwrap();
        assert_eq!(bad_gateway.status, Some(502));
        let silent = failure(&ureq::Error::ConnectProxyFailed(
            "proxy server did not respond".into(),
        ))
        .unwrap();
        assert_eq!(silent.status, None);
        assert!(silent.problem.contains("did not respond"));
        let io = |kind| ureq::Error::Io(std::io::Error::from(kind));
        assert!(failure(&io(std::io::ErrorKind::ConnectionRefused)).is_some());
        assert!(failure(&io(std::io::ErrorKind::ConnectionReset)).is_none());
        assert!(failure(&ureq::Error::Timeout(ureq::Timeout::Global)).is_none());
        assert!(failure(&ureq::Error::Timeout(ureq::Timeout::Connect)).is_some());
    }
}
