//! What a success says besides its body (`Fetcher::send`, `Response`):
//! status, headers (repeated ones too), the final URL, attempts, whether
//! the cache answered, and a `Debug` that keeps secrets.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parfetch::prelude::*;
use parfetch::{CacheStatus, Value};

use crate::server::{Reply, TestServer};

#[test]
fn a_success_has_its_status_and_every_header_line() {
    let server = TestServer::start(|_| {
        Reply::json(203, r#"{"items":[1]}"#)
            .with_header("Link", "</items?page=2>; rel=\"next\"")
            .with_header("link", "</items?page=9>; rel=\"last\"")
            .with_header("X-RateLimit-Remaining", "41")
    });
    let fetcher = crate::quick().build().unwrap();
    let response = fetcher.send::<Value>(server.url("/items")).unwrap();
    assert_eq!(response.status(), 203);
    assert_eq!(response.header("x-ratelimit-remaining"), Some("41"));
    assert_eq!(response.headers().get("X-RATELIMIT-REMAINING"), Some("41"));
    assert_eq!(
        response.headers().get_all("LINK").collect::<Vec<_>>(),
        [
            "</items?page=2>; rel=\"next\"",
            "</items?page=9>; rel=\"last\""
        ]
    );
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(!response.headers().contains("x-absent"));
    assert_eq!(response.url(), server.url("/items"));
    assert_eq!(response.attempts(), 1);
    assert_eq!(response.cache_status(), CacheStatus::Network);
    assert_eq!(response.body()["items"][0], 1);
    // The raw form carries the same.
    let raw = fetcher.send_bytes(server.url("/items")).unwrap();
    assert_eq!(raw.headers().get_all("link").count(), 2);
    assert_eq!(raw.into_body(), br#"{"items":[1]}"#);
}

#[test]
fn the_url_is_where_the_redirects_led() {
    let server = TestServer::start(|request| match request.path.as_str() {
        "/old" => Reply::status(301).with_header("location", "/moved"),
        "/moved" => Reply::status(302).with_header("location", "/new?v=2"),
        _ => Reply::json(200, "{}"),
    });
    let fetcher = crate::quick().build().unwrap();
    let response = fetcher.send::<Value>(server.url("/old")).unwrap();
    assert_eq!(response.url(), server.url("/new?v=2"));
    assert_eq!(response.status(), 200);
}

#[test]
fn attempts_count_the_retries() {
    let arrivals = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start({
        let arrivals = Arc::clone(&arrivals);
        move |_| match arrivals.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Reply::status(503),
            _ => Reply::json(200, "[1]"),
        }
    });
    let fetcher = crate::quick().build().unwrap();
    let response = fetcher.send::<Vec<u32>>(server.url("/flaky")).unwrap();
    assert_eq!(response.attempts(), 3);
    assert_eq!(response.status(), 200);
    assert_eq!(arrivals.load(Ordering::SeqCst), 3);
}

#[test]
fn the_cache_says_fresh_or_revalidated_and_keeps_the_headers() {
    let dir = crate::scratch_dir("responses-cache");
    let revalidations = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start({
        let revalidations = Arc::clone(&revalidations);
        move |request| {
            let conditional = request.header("if-none-match") == Some("\"v1\"");
            let reply = if conditional {
                revalidations.fetch_add(1, Ordering::SeqCst);
                Reply::status(304).with_header("x-checked", "yes")
            } else {
                Reply::json(200, format!(r#"{{"path":{:?}}}"#, request.path))
                    .with_header("link", "</p/2>; rel=\"next\"")
                    .with_header("link", "</p/9>; rel=\"last\"")
            };
            let max_age = if request.path == "/fresh" { 3600 } else { 0 };
            reply
                .with_header("cache-control", format!("max-age={max_age}"))
                .with_header("etag", "\"v1\"")
        }
    });
    let fetcher = crate::quick().cache_dir(&dir).build().unwrap();

    let first = fetcher.send::<Value>(server.url("/fresh")).unwrap();
    assert_eq!(first.cache_status(), CacheStatus::Network);
    let hit = fetcher.send::<Value>(server.url("/fresh")).unwrap();
    assert_eq!(hit.cache_status(), CacheStatus::Fresh);
    assert_eq!(hit.attempts(), 0, "nothing was sent");
    assert_eq!(
        (hit.status(), hit.body()["path"].as_str()),
        (200, Some("/fresh"))
    );
    assert_eq!(hit.headers().get_all("link").count(), 2, "{hit:?}");
    assert_eq!(hit.header("etag"), Some("\"v1\""));

    fetcher.send::<Value>(server.url("/stale")).unwrap();
    let confirmed = fetcher.send::<Value>(server.url("/stale")).unwrap();
    assert_eq!(confirmed.cache_status(), CacheStatus::Revalidated);
    assert_eq!(revalidations.load(Ordering::SeqCst), 1);
    assert_eq!(confirmed.attempts(), 1);
    assert_eq!(confirmed.status(), 200, "the stored status, not the 304");
    assert_eq!(confirmed.body()["path"], "/stale");
    // The stored headers, updated by the 304's.
    assert_eq!(confirmed.header("x-checked"), Some("yes"));
    assert_eq!(confirmed.headers().get_all("link").count(), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn debug_hides_sensitive_headers() {
    let server = TestServer::start(|_| {
        Reply::json(200, "{}")
            .with_header("set-cookie", "session=s3cr3t-cookie")
            .with_header("x-auth-token", "t0ken-value")
            .with_header("x-partner-id", "partner-value")
            .with_header("x-trace", "trace-1")
    });
    let fetcher = crate::quick()
        .sensitive_header_name("X-Partner-Id")
        .build()
        .unwrap();
    let response = fetcher
        .send::<Value>(
            server
                .url("/x")
                .replace("http://", "http://user:pw-secret@"),
        )
        .unwrap();
    let shown = format!("{response:?}");
    for secret in ["s3cr3t-cookie", "t0ken-value", "partner-value", "pw-secret"] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }
    assert!(shown.contains(r#""x-trace": "trace-1""#), "{shown}");
    assert!(shown.contains(r#""set-cookie": "***""#), "{shown}");
    // The values are there for the caller's code.
    assert_eq!(response.header("x-partner-id"), Some("partner-value"));
}
