//! The cookie jar: off by default; on, it sends each cookie back only where
//! RFC 6265 scopes it, within the size limits browsers keep (4096 bytes a
//! cookie, 8 KiB a line), and never writes one to the cache.

use std::sync::{Arc, Mutex};

use parfetch::prelude::ValueAsScalar as _;
use parfetch::Value;

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

// From review 3 (issue 16).
/// Found (now fixed): README "never writes one to the cache (entries are keyed by the
/// cookies' hash, so one session's answers are not served to another)".
/// The key hashes only the cookies of the *first* hop. `/me` redirects to
/// `/api/me`, where the session cookie (`Path=/api`) is sent: session A's
/// answer is stored under `/me` with no cookie in its key, and session B
/// (another fetcher, another jar, same cache directory) is served A's
/// private answer from the cache without a request.
///
/// Was at fault: `src/engine.rs:230-236` (the key is computed from the jar's
/// cookies for `request.url()` only) and the final hop's answer stored
/// under it (`engine.rs:325-333`, `cache.store(&key, ...)`), while
/// `src/attempt.rs:148-150` adds the jar's cookies per hop. Fix: have the
/// attempt report whether any later hop carried credentials (jar cookies
/// or sensitive headers) that the first did not, and then neither store
/// the answer under the first hop's key (or store the redirect itself,
/// as an HTTP cache would, rather than where it led).
#[test]
fn a_cookie_sent_on_a_later_hop_does_not_leak_its_answer_to_another_session() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/login-a" => Reply::json(200, "{}").with_header("set-cookie", "sid=A; Path=/api"),
        "/login-b" => Reply::json(200, "{}").with_header("set-cookie", "sid=B; Path=/api"),
        "/me" => Reply::status(302).with_header("location", "/api/me"),
        "/api/me" => {
            let user = request.header("cookie").unwrap_or("nobody").to_owned();
            Reply::json(200, format!(r#"{{"user":"{user}"}}"#))
                .with_header("cache-control", "private, max-age=3600")
        }
        _ => Reply::status(404),
    });
    let dir = crate::scratch_dir("cookies-redirect-cache");
    let session = || {
        crate::quick()
            .cookie_store(true)
            .cache_dir(&dir)
            .build()
            .unwrap()
    };
    let (a, b) = (session(), session());
    a.get_bytes(server.url("/login-a")).unwrap();
    let mine: Value = a.get_json(server.url("/me")).unwrap();
    assert_eq!(mine["user"], "sid=A");
    b.get_bytes(server.url("/login-b")).unwrap();
    let theirs: Value = b.get_json(server.url("/me")).unwrap();
    assert_eq!(
        theirs["user"], "sid=B",
        "session B was served session A's answer"
    );
}

// From review 3 (issue 16).
/// Held: a cookie set on an error response (a 503 before a retry) is kept
/// and sent on the retry; with many requests in flight at once the jar
/// stays consistent; cookies of one fetcher never reach another's.
#[test]
fn cookies_on_errors_and_under_concurrency() {
    let counter = Arc::new(Mutex::new(0u32));
    let hits = Arc::clone(&counter);
    let server = TestServer::start(move |request| {
        let cookie = request.header("cookie").map(str::to_owned);
        match request.path.as_str() {
            "/flaky" => {
                let mut n = hits.lock().unwrap();
                *n += 1;
                if *n == 1 {
                    Reply::status(503).with_header("set-cookie", "retry=1")
                } else {
                    Reply::json(
                        200,
                        format!(r#"{{"cookie":{:?}}}"#, cookie.unwrap_or_default()),
                    )
                }
            }
            path => Reply::json(
                200,
                format!(r#"{{"cookie":{:?}}}"#, cookie.unwrap_or_default()),
            )
            .with_header("set-cookie", format!("p{}=1; Path=/", path.len() % 7)),
        }
    });
    let fetcher = crate::quick()
        .cookie_store(true)
        .max_retries(1)
        .build()
        .unwrap();
    let value: Value = fetcher.get_json(server.url("/flaky")).unwrap();
    assert_eq!(value["cookie"], "retry=1");
    let urls: Vec<String> = (0..64)
        .map(|i| server.url(&format!("/c/{}", "x".repeat(i))))
        .collect();
    for result in fetcher.fetch_many::<Value>(&urls) {
        let value = result.unwrap();
        assert!(value["cookie"].as_str().unwrap().contains("retry=1"));
    }
    let other = crate::quick().cookie_store(true).build().unwrap();
    let value: Value = other.get_json(server.url("/c/other")).unwrap();
    assert_eq!(value["cookie"], "");
}

// From review 3 (issue 16).
/// Found (now fixed): README "Cookies [...] `cookie_store(true)` keeps what servers
/// set, as a browser or a `requests.Session` does". One `Set-Cookie` of
/// 20 KB (a hostile or buggy host; with `Domain=` a sibling host too)
/// bricks every later request to that host for the fetcher's life: the
/// jar's `Cookie` line no longer fits ureq's 16 KiB output buffer, and
/// each request fails as "network error after 4 attempts" (ureq
/// `Protocol(OutputOverflow)`, taken as a retryable network failure),
/// with no hint of the cookie. A browser ignores such a cookie (RFC
/// 6265bis §5.6: name + value over 4096 octets, "ignore the cookie
/// entirely"; attribute values over 1024 octets ignored).
///
/// Was at fault: `src/cookies.rs:84-99` (`Jar::store` keeps any cookie
/// `cookie_store` parses, whatever its size) and `cookies.rs:52-60`
/// (`add_to` builds one line of any length); `src/retry.rs:175` classifies
/// `Protocol(OutputOverflow)` as `Network`. Fix: drop cookies whose name +
/// value exceed 4096 bytes in `store` (6265bis), cap the jar's line (leave
/// out the cookies past a budget, e.g. 8 KiB, with a warning), and classify
/// `OutputOverflow` as `InvalidRequest` (not retried).
///
/// README: "a cookie whose name and value pass 4096 bytes is ignored":
/// one of exactly 4096 is kept, one of 4097 is not, nor one of 20 KB, and
/// the host goes on working.
#[test]
fn a_cookie_past_4096_bytes_is_ignored() {
    let server = TestServer::start(|r| match r.path.as_str() {
        // Name and value: 4 + 4092 = 4096 bytes, and 4 + 4093 = 4097.
        "/set" => Reply::json(200, "{}")
            .with_header("set-cookie", format!("fits={}; Path=/", "f".repeat(4092)))
            .with_header("set-cookie", format!("over={}; Path=/", "o".repeat(4093))),
        "/set-big" => Reply::json(200, "{}")
            .with_header("set-cookie", format!("big={}; Path=/", "x".repeat(20_000))),
        _ => Reply::json(
            200,
            format!(r#"{{"cookie":{:?}}}"#, r.header("cookie").unwrap_or("")),
        ),
    });
    let fetcher = crate::quick().cookie_store(true).build().unwrap();
    fetcher.get_bytes(server.url("/set-big")).unwrap();
    let after = fetcher
        .get_json::<Value>(server.url("/after"))
        .map_err(|e| e.to_string());
    // Ignored, as a browser ignores it: the host works, no cookie sent.
    assert_eq!(after.map(|v| v["cookie"].clone()), Ok(Value::from("")));
    fetcher.get_bytes(server.url("/set")).unwrap();
    let after: Value = fetcher.get_json(server.url("/after")).unwrap();
    assert_eq!(
        after["cookie"],
        format!("fits={}", "f".repeat(4092)),
        "the 4096-byte cookie alone"
    );
}

/// README: "a `Cookie` line stops at 8 KiB": two cookies whose line makes
/// exactly 8,192 bytes both go; two whose line would make 8,194 do not:
/// the first (by path, then name) goes alone.
#[test]
fn a_cookie_line_stops_at_8_kib() {
    let server = TestServer::start(|r| {
        if let Some(len) = r.path.strip_prefix("/set/") {
            let value = "v".repeat(len.parse().unwrap());
            return Reply::json(200, "{}")
                .with_header("set-cookie", format!("a={value}; Path=/"))
                .with_header("set-cookie", format!("b={value}; Path=/"));
        }
        Reply::json(
            200,
            format!(r#"{{"cookie":{:?}}}"#, r.header("cookie").unwrap_or("")),
        )
    });
    // "a=" + 4093 bytes, "; ", "b=" + 4093 bytes: 8,192.
    for (len, want) in [
        (4093, format!("a={0}; b={0}", "v".repeat(4093))),
        (4094, format!("a={}", "v".repeat(4094))),
    ] {
        let fetcher = crate::quick().cookie_store(true).build().unwrap();
        fetcher
            .get_bytes(server.url(&format!("/set/{len}")))
            .unwrap();
        let sent: Value = fetcher.get_json(server.url("/echo")).unwrap();
        let sent = sent["cookie"].as_str().unwrap_or_default().to_owned();
        assert!(
            sent == want,
            "values of {len} bytes: a Cookie line of {} bytes, {} wanted",
            sent.len(),
            want.len()
        );
    }
}

// From review 3 (issue 16).
/// Found (now fixed): README "`cookie_store(true)` keeps what servers set [...] never
/// writes one to the cache (entries are keyed by the cookies' hash, so one
/// session's answers are not served to another)". A cacheable response
/// that sets a session cookie (`GET /session`, `max-age=3600`) is stored
/// without its `Set-Cookie` under the cookie-less key every new session
/// starts with. The next session (another fetcher, same cache directory)
/// is served the first session's `/session` answer from the cache — its
/// body included — and never gets a cookie of its own: its later requests
/// go out without one.
///
/// Was at fault: `src/engine.rs:325-333` and `298` (`cache.store` of any storable answer,
/// `Set-Cookie` stripped by `src/cache/rules.rs` but the answer kept),
/// with the lookup at `engine.rs:241-242`. Fix: do not store (nor serve
/// from an entry) a response that carries `Set-Cookie` when the fetcher
/// keeps a jar (squid and Varnish do not cache such responses by default;
/// RFC 9111 §3 lets a cache decline), or at least never for a jar's
/// fetcher.
#[test]
fn a_cached_set_cookie_answer_is_not_replayed_to_a_new_session() {
    let logins = Arc::new(Mutex::new(0u32));
    let counted = Arc::clone(&logins);
    let server = TestServer::start(move |r| match r.path.as_str() {
        "/session" => {
            let mut n = counted.lock().unwrap();
            *n += 1;
            Reply::json(200, format!(r#"{{"session":{n}}}"#))
                .with_header("set-cookie", format!("sid={n}; Path=/"))
                .with_header("cache-control", "max-age=3600")
        }
        _ => Reply::json(
            200,
            format!(r#"{{"cookie":{:?}}}"#, r.header("cookie").unwrap_or("")),
        ),
    });
    let dir = crate::scratch_dir("cookies-set-cookie-cache");
    let session = || {
        crate::quick()
            .cookie_store(true)
            .cache_dir(&dir)
            .build()
            .unwrap()
    };
    let (a, b) = (session(), session());
    let first: Value = a.get_json(server.url("/session")).unwrap();
    assert_eq!(first["session"], 1);
    let seen: Value = a.get_json(server.url("/data").as_str()).unwrap();
    assert_eq!(seen["cookie"], "sid=1");
    let second: Value = b.get_json(server.url("/session")).unwrap();
    let seen: Value = b
        .get_json(parfetch::Request::get(server.url("/data")).no_cache())
        .unwrap();
    assert_eq!(
        (second["session"].clone(), seen["cookie"].clone()),
        (Value::from(2), Value::from("sid=2")),
        "the second session got the first one's /session answer from the cache"
    );
}
