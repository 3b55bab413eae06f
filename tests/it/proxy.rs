//! Proxies: plain http as forward-proxy requests, https through CONNECT
//! tunnels, credentials sent to the proxy and to no one else, and errors
//! that name the proxy when it is the proxy that failed. The proxy is one
//! of the test's own, on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use parfetch::{ErrorKind, Value};

use crate::pki::{ok_json, Ca, TlsServer};
use crate::server::{Reply, TestServer};

/// What the proxy saw of one request.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    /// The request line, as sent: `GET http://h/x HTTP/1.1`, `CONNECT h:443 HTTP/1.1`.
    pub(crate) line: String,
    pub(crate) authorization: Option<String>,
}

/// A forward proxy on loopback: absolute-form requests (on keep-alive
/// connections) and CONNECT tunnels. With `credentials`, it wants them as
/// `Proxy-Authorization` (`Basic ...`), and answers 407 without them.
pub(crate) struct TestProxy {
    pub(crate) port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestProxy {
    pub(crate) fn start(credentials: Option<&str>) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let wanted = credentials.map(|c| format!("Basic {}", base64(c.as_bytes())));
        let shared = Arc::clone(&seen);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (seen, wanted) = (Arc::clone(&shared), wanted.clone());
                std::thread::spawn(move || serve(client, &seen, wanted.as_deref()));
            }
        });
        TestProxy { port, seen }
    }

    /// `http://[userinfo@]127.0.0.1:port`.
    pub(crate) fn url(&self, userinfo: Option<&str>) -> String {
        match userinfo {
            Some(userinfo) => format!("http://{userinfo}@127.0.0.1:{}", self.port),
            None => format!("http://127.0.0.1:{}", self.port),
        }
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A request head: its lines, without the blank one.
fn read_head(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            return Some(lines);
        }
        lines.push(line);
    }
}

fn header<'a>(head: &'a [String], name: &str) -> Option<&'a str> {
    head.iter().skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn serve(client: TcpStream, seen: &Mutex<Vec<Seen>>, wanted: Option<&str>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut client = client;
    while let Some(head) = read_head(&mut reader) {
        let line = head.first().cloned().unwrap_or_default();
        let authorization = header(&head, "proxy-authorization").map(str::to_owned);
        seen.lock().unwrap().push(Seen {
            line: line.clone(),
            authorization: authorization.clone(),
        });
        let length: usize = header(&head, "content-length").map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if wanted.is_some() && authorization.as_deref() != wanted {
            let _ = client.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\n\
                  proxy-authenticate: Basic realm=\"test\"\r\ncontent-length: 0\r\n\r\n",
            );
            continue;
        }
        let mut parts = line.split(' ');
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if method == "CONNECT" {
            let Ok(upstream) = TcpStream::connect(target) else {
                let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
                return;
            };
            let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
            // Anything the client sent after its CONNECT is in the reader.
            let buffered = reader.buffer().to_vec();
            pipe(client, upstream, &buffered);
            return;
        }
        // Absolute form: http://host:port/path.
        let Some(rest) = target.strip_prefix("http://") else {
            let _ = client.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
            return;
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let Ok(mut upstream) = TcpStream::connect(authority) else {
            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n");
            continue;
        };
        let mut forwarded = format!("{method} {path} HTTP/1.1\r\n");
        for line in head.iter().skip(1) {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if !matches!(
                name.as_str(),
                "proxy-authorization" | "proxy-connection" | "connection"
            ) {
                forwarded.push_str(line);
                forwarded.push_str("\r\n");
            }
        }
        forwarded.push_str("connection: close\r\n\r\n");
        upstream.write_all(forwarded.as_bytes()).unwrap();
        upstream.write_all(&body).unwrap();
        // The answer, as it came: a head with a content-length, then that.
        let mut answer = BufReader::new(upstream);
        let Some(response) = read_head(&mut answer) else {
            return;
        };
        let length: usize = header(&response, "content-length").map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0; length];
        if answer.read_exact(&mut body).is_err() {
            return;
        }
        let mut back = String::new();
        for line in &response {
            if !line.to_ascii_lowercase().starts_with("connection:") {
                back.push_str(line);
                back.push_str("\r\n");
            }
        }
        back.push_str("\r\n");
        if client.write_all(back.as_bytes()).is_err() || client.write_all(&body).is_err() {
            return;
        }
    }
}

/// Copies bytes both ways until either side closes.
fn pipe(client: TcpStream, upstream: TcpStream, already: &[u8]) {
    let (mut client_in, mut upstream_out) =
        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
    if upstream_out.write_all(already).is_err() {
        return;
    }
    let forward = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_in, &mut upstream_out);
        let _ = upstream_out.shutdown(Shutdown::Write);
    });
    let (mut upstream_in, mut client_out) = (upstream, client);
    let _ = std::io::copy(&mut upstream_in, &mut client_out);
    let _ = client_out.shutdown(Shutdown::Both);
    let _ = forward.join();
}

/// Base64, for the expected `Proxy-Authorization`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A port nothing listens on: connecting to it is refused.
pub(crate) fn refusing_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn plain_http_goes_through_the_proxy_in_absolute_form_with_its_credentials() {
    let target_saw_credentials = Arc::new(Mutex::new(Vec::new()));
    let target = TestServer::start({
        let saw = Arc::clone(&target_saw_credentials);
        move |request| {
            saw.lock()
                .unwrap()
                .push(request.header("proxy-authorization").map(str::to_owned));
            Reply::json(200, format!(r#"{{"path":"{}"}}"#, request.path))
        }
    });
    // A password with a reserved character, percent-encoded in the URL.
    let proxy = TestProxy::start(Some("me:p@ss"));
    let fetcher = crate::quick()
        .proxy(proxy.url(Some("me:p%40ss")))
        .concurrency(4)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..12).map(|i| target.url(&format!("/doc/{i}"))).collect();
    for (i, result) in fetcher.fetch_many::<Value>(&urls).into_iter().enumerate() {
        let value = result.unwrap();
        assert_eq!(value["path"], format!("/doc/{i}"));
    }
    let seen = proxy.seen();
    assert_eq!(seen.len(), 12, "{seen:?}");
    for (i, url) in urls.iter().enumerate() {
        let line = format!("GET {url} HTTP/1.1");
        assert!(
            seen.iter().any(|s| s.line == line),
            "request {i} not in absolute form: {seen:?}"
        );
    }
    assert!(seen
        .iter()
        .all(|s| s.authorization.as_deref() == Some("Basic bWU6cEBzcw==")));
    let target_saw = target_saw_credentials.lock().unwrap();
    assert_eq!(target_saw.len(), 12);
    assert!(target_saw.iter().all(Option::is_none), "{target_saw:?}");
}

#[test]
fn https_goes_through_a_connect_tunnel_with_tls_to_the_target() {
    let ca = Ca::new("tunnel test CA");
    let server = TlsServer::start(&ca.server(), None, ok_json(r#"{"tunnelled":true}"#));
    let proxy = TestProxy::start(Some("user:secret"));
    let fetcher = crate::quick()
        .proxy(proxy.url(Some("user:secret")))
        .trust_root_certificates(ca.pem())
        .build()
        .unwrap();
    for _ in 0..2 {
        let value: Value = fetcher.get_json(format!("{}/x", server.base)).unwrap();
        assert_eq!(value["tunnelled"], true);
    }
    let port = server.base.rsplit(':').next().unwrap();
    let seen = proxy.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    for s in &seen {
        assert_eq!(s.line, format!("CONNECT 127.0.0.1:{port} HTTP/1.1"));
        assert_eq!(s.authorization.as_deref(), Some("Basic dXNlcjpzZWNyZXQ="));
    }
    assert_eq!(server.answered(), 2);
    // One connection per request (the server closes each): counted once,
    // not once for the proxy and again for the tunnel.
    assert_eq!(fetcher.stats().connections_opened, 2);
}

#[test]
fn a_proxy_that_refuses_connections_is_named_without_its_password() {
    let port = refusing_port();
    let fetcher = crate::quick()
        .proxy(format!("http://me:SECRET@127.0.0.1:{port}"))
        .max_retries(1)
        .build()
        .unwrap();
    for url in ["http://api.example/x.json", "https://api.example/x.json"] {
        let error = fetcher.get_bytes(url).unwrap_err();
        let message = error.to_string();
        assert_eq!(error.kind(), ErrorKind::Network, "{message}");
        assert_eq!(error.attempts(), 2, "a dead proxy is retried: {message}");
        assert!(
            message.contains(&format!("at the proxy http://***@127.0.0.1:{port}"))
                && message.contains("refused the connection"),
            "{message}"
        );
        assert!(message.starts_with(&format!("GET {url}: ")), "{message}");
        let debug = format!("{error:?}");
        assert!(
            !message.contains("SECRET") && !debug.contains("SECRET"),
            "{debug}"
        );
    }
    let debug = format!("{:?}", crate::quick().proxy("http://me:SECRET@h:1"));
    assert!(!debug.contains("SECRET"), "{debug}");
}

#[test]
fn a_proxy_that_wants_credentials_says_so_and_is_not_retried() {
    let target = TestServer::start(|_| Reply::json(200, "{}"));
    let proxy = TestProxy::start(Some("me:right"));
    for userinfo in [None, Some("me:wrong")] {
        let fetcher = crate::quick().proxy(proxy.url(userinfo)).build().unwrap();
        for url in [target.url("/x"), "https://api.example/x".to_owned()] {
            let error = fetcher.get_bytes(&url).unwrap_err();
            let message = error.to_string();
            assert_eq!(
                (error.kind(), error.status(), error.attempts()),
                (ErrorKind::Status, Some(407), 1),
                "{message}"
            );
            assert!(message.contains("at the proxy http://"), "{message}");
            assert!(message.contains("credentials"), "{message}");
            assert!(!message.contains("wrong"), "{message}");
        }
    }
    assert_eq!(target.requests(), 0);
}

#[test]
fn a_tunnel_the_proxy_cannot_open_is_a_retried_bad_gateway() {
    let proxy = TestProxy::start(None);
    let fetcher = crate::quick()
        .proxy(proxy.url(None))
        .max_retries(1)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/x", refusing_port());
    let error = fetcher.get_bytes(&url).unwrap_err();
    assert_eq!(
        (error.kind(), error.status(), error.attempts()),
        (ErrorKind::Status, Some(502), 2),
        "{error}"
    );
    assert!(error.to_string().contains("refused the tunnel"), "{error}");
}

#[test]
fn no_proxy_turns_the_proxy_off() {
    let target = TestServer::start(|_| Reply::json(200, "{}"));
    let dead = format!("http://127.0.0.1:{}", refusing_port());
    let fetcher = crate::quick().proxy(dead).no_proxy().build().unwrap();
    fetcher.get_bytes(target.url("/x")).unwrap();
}

#[test]
fn bad_proxy_urls_are_refused_at_build() {
    for (proxy, want) in [
        ("socks5://127.0.0.1:1080", "SOCKS is not supported"),
        ("http://", "not a valid URL"),
        ("ftp://h:1", "is not http:// or https://"),
    ] {
        let error = crate::quick().proxy(proxy).build().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert!(error.to_string().contains(want), "{error}");
    }
}

#[test]
fn a_post_body_reaches_the_target_through_the_proxy() {
    let target = TestServer::start(|request| {
        Reply::json(
            200,
            format!(r#"{{"got":{}}}"#, String::from_utf8_lossy(&request.body)),
        )
    });
    let proxy = TestProxy::start(None);
    let fetcher = crate::quick().proxy(proxy.url(None)).build().unwrap();
    for _ in 0..3 {
        let value: Value = fetcher
            .get_json(parfetch::Request::post_json(
                target.url("/echo"),
                "GET / HTTP/1.1",
            ))
            .unwrap();
        assert_eq!(value["got"], "GET / HTTP/1.1");
    }
    let seen = proxy.seen();
    assert!(
        seen.iter().all(|s| s.line.starts_with("POST http://")),
        "{seen:?}"
    );
}

/// The environment, as the command reads it (as curl does).
#[cfg(feature = "cli")]
#[test]
fn the_environment_names_the_proxy_as_curl_reads_it() {
    use crate::cli::{assert_exit, parfetch_with_env};
    let target = TestServer::start(|_| Reply::json(200, "{}"));
    let proxy = TestProxy::start(None);
    let (via, dead) = (
        proxy.url(None),
        format!("http://127.0.0.1:{}", refusing_port()),
    );
    let url = target.url("/x");
    let through = format!("GET {url} HTTP/1.1");
    /// Flags, variables, whether the request goes through the proxy.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], bool);
    let cases: [Case<'_>; 7] = [
        (&[], &[("http_proxy", &via)], true),
        (&[], &[("ALL_PROXY", &via)], true),
        // Upper case HTTP_PROXY is what a CGI program gets from a request's
        // `Proxy:` header: never read.
        (&[], &[("HTTP_PROXY", &dead)], false),
        (
            &[],
            &[("http_proxy", &dead), ("NO_PROXY", "localhost,127.0.0.1")],
            false,
        ),
        (&["--no-proxy"], &[("http_proxy", &dead)], false),
        (&["--proxy", &via], &[("http_proxy", &dead)], true),
        // https_proxy is for https URLs only.
        (&[], &[("https_proxy", &dead)], false),
    ];
    for (flags, vars, proxied) in cases {
        let before = proxy.seen().len();
        let mut args = vec!["-q", "--retries", "0"];
        args.extend_from_slice(flags);
        args.push(&url);
        let output = parfetch_with_env(&args, vars, None);
        assert_exit(&output, 0);
        let seen = proxy.seen();
        let went_through = seen.len() > before;
        assert_eq!(went_through, proxied, "{flags:?} {vars:?}: {seen:?}");
        if proxied {
            assert_eq!(seen.last().unwrap().line, through);
        }
    }
    // A dead proxy from the environment is named.
    let output = parfetch_with_env(
        &["--retries", "0", &url],
        &[("http_proxy", &format!("http://me:SECRET@{}", &dead[7..]))],
        None,
    );
    assert_exit(&output, 2);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("at the proxy http://***@127.0.0.1:"),
        "{stdout}"
    );
    assert!(!stdout.contains("SECRET"), "{stdout}");
}
