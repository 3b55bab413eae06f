//! The cookie jar: off by default; on, it sends each cookie back only where
//! RFC 6265 scopes it, and never writes one to the cache.

use std::sync::{Arc, Mutex};

use crate::server::{Reply, TestServer};

/// Each request's path and `Cookie` header.
type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// A server that sets cookies on `/login` (and on `/hop`, a redirect to
/// `/api/after`), and records the `Cookie` header of every request.
fn session_server() -> (TestServer, Seen) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&seen);
    let server = TestServer::start(move |request| {
        recorded.lock().unwrap().push((
            request.path.clone(),
            request.header("cookie").map(str::to_owned),
        ));
        match request.path.as_str() {
            "/login" => Reply::json(200, "{}")
                .with_header("set-cookie", "session=S3CR3T; Path=/api; HttpOnly")
                .with_header("set-cookie", "theme=dark")
                .with_header("set-cookie", "tls_only=1; Secure")
                .with_header("set-cookie", "elsewhere=1; Domain=example.com")
                .with_header("cache-control", "max-age=3600"),
            "/logout" => {
                Reply::json(200, "{}").with_header("set-cookie", "session=; Path=/api; Max-Age=0")
            }
            "/hop" => Reply::status(302)
                .with_header("set-cookie", "hop=1; Path=/api")
                .with_header("location", "/api/after"),
            _ => Reply::json(200, "{}").with_header("cache-control", "max-age=3600"),
        }
    });
    (server, seen)
}

fn cookie_on(seen: &Mutex<Vec<(String, Option<String>)>>, path: &str) -> Option<String> {
    seen.lock()
        .unwrap()
        .iter()
        .rev()
        .find(|(p, _)| p == path)
        .and_then(|(_, cookie)| cookie.clone())
}

#[test]
fn cookies_are_off_by_default() {
    let (server, seen) = session_server();
    let fetcher = crate::quick().build().unwrap();
    fetcher.get_bytes(server.url("/login")).unwrap();
    fetcher.get_bytes(server.url("/api/data")).unwrap();
    assert_eq!(cookie_on(&seen, "/api/data"), None);
}

#[test]
fn cookies_go_back_only_where_they_belong() {
    let (server, seen) = session_server();
    let fetcher = crate::quick().cookie_store(true).build().unwrap();
    fetcher.get_bytes(server.url("/login")).unwrap();
    fetcher.get_bytes(server.url("/api/data")).unwrap();
    // The path scopes `session` (longer paths first); a Domain that is not
    // the host's is refused. (`Secure` lets `tls_only` go to loopback over
    // plain http, as browsers do.)
    assert_eq!(
        cookie_on(&seen, "/api/data").as_deref(),
        Some("session=S3CR3T; theme=dark; tls_only=1")
    );
    fetcher.get_bytes(server.url("/other")).unwrap();
    assert_eq!(
        cookie_on(&seen, "/other").as_deref(),
        Some("theme=dark; tls_only=1")
    );
    // Another host name for the same server is another host.
    let other_host = server.url("/api/data2").replace("127.0.0.1", "localhost");
    fetcher.get_bytes(&other_host).unwrap();
    assert_eq!(cookie_on(&seen, "/api/data2"), None);
    // A clone shares the jar; your own Cookie header comes first.
    let clone = fetcher.clone();
    clone
        .get_bytes(parfetch::Request::get(server.url("/api/mine")).header("cookie", "own=1"))
        .unwrap();
    assert_eq!(
        cookie_on(&seen, "/api/mine").as_deref(),
        Some("own=1; session=S3CR3T; theme=dark; tls_only=1")
    );
    // Expired by the server: gone.
    fetcher.get_bytes(server.url("/logout")).unwrap();
    fetcher.get_bytes(server.url("/api/later")).unwrap();
    assert_eq!(
        cookie_on(&seen, "/api/later").as_deref(),
        Some("theme=dark; tls_only=1")
    );
}

#[test]
fn a_cookie_set_on_a_redirect_reaches_the_next_hop() {
    let (server, seen) = session_server();
    let fetcher = crate::quick().cookie_store(true).build().unwrap();
    fetcher.get_bytes(server.url("/hop")).unwrap();
    assert_eq!(cookie_on(&seen, "/api/after").as_deref(), Some("hop=1"));
}

#[test]
fn cookies_are_never_written_to_the_cache() {
    let (server, seen) = session_server();
    let dir = crate::scratch_dir("cookies-cache");
    let fetcher = crate::quick()
        .cookie_store(true)
        .cache_dir(&dir)
        .build()
        .unwrap();
    fetcher.get_bytes(server.url("/login")).unwrap();
    fetcher.get_bytes(server.url("/api/data")).unwrap();
    let requests = seen.lock().unwrap().len();
    // Fresh for an hour: the second fetch is the cache's.
    fetcher.get_bytes(server.url("/api/data")).unwrap();
    assert_eq!(
        seen.lock().unwrap().len(),
        requests,
        "served from the cache"
    );
    let mut stored = Vec::new();
    let mut dirs = vec![dir.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.file_type().unwrap().is_dir() {
                dirs.push(entry.path());
            } else {
                stored.extend(std::fs::read(entry.path()).unwrap());
            }
        }
    }
    assert!(!stored.is_empty());
    let text = String::from_utf8_lossy(&stored);
    for secret in ["S3CR3T", "theme=dark", "set-cookie"] {
        assert!(!text.contains(secret), "{secret} is in the cache");
    }
    // Another session (a fetcher with a jar of its own that has no
    // cookie) is not served the first session's entry.
    let stranger = crate::quick()
        .cookie_store(true)
        .cache_dir(&dir)
        .build()
        .unwrap();
    stranger.get_bytes(server.url("/api/data")).unwrap();
    assert_eq!(seen.lock().unwrap().len(), requests + 1);
}
