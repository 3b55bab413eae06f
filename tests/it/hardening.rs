//! Hostile servers and odd callers: no panic, no hang, no lost result and
//! no secret on disk, whatever they do.
//!
//! Time bounds here are generous on purpose (a loaded 2-core runner must pass
//! them every time): each only tells "bounded" from "unbounded".

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parfetch::{ErrorKind, Fetcher, Request, Value};

use crate::server::{Reply, TestServer};
use crate::support::{
    all_bytes, assert_bounded, assert_user_info_never_shown, contains, one_second, trickling,
    within,
};

fn temp_dir(name: &str) -> PathBuf {
    crate::scratch_dir(&format!("hardening-{name}"))
}

#[test]
fn hostile_cache_headers_never_panic_and_lose_nothing() {
    let heads: &[(&str, &str)] = &[
        ("cache-control", "max-age=9999999999999999999"),
        (
            "cache-control",
            "max-age=18446744073709551615, stale-while-revalidate=99999999999999999999",
        ),
        ("age", "18446744073709551615"),
        ("age", "99999999999999999999999999"),
        ("expires", "Fri, 31 Dec 9999 23:59:59 GMT"),
        ("date", "Mon, 01 Jan 0001 00:00:00 GMT"),
        ("last-modified", "Thu, 01 Jan 1970 00:00:00 GMT"),
        ("retry-after", "18446744073709551615"),
    ];
    let server = TestServer::start(move |request| {
        let index: usize = request.path.trim_start_matches('/').parse().unwrap_or(0);
        let (name, value) = heads[index % heads.len()];
        Reply::json(200, r#"{"ok":true}"#)
            .with_header(name, value)
            .with_header("date", "Sun, 29 Nov 2026 08:00:00 GMT")
    });
    let dir = temp_dir("overflow");
    let fetcher = crate::quick().cache_dir(&dir).build().unwrap();
    let urls: Vec<String> = (0..heads.len() * 2)
        .map(|i| server.url(&i.to_string()))
        .collect();
    for round in 0..2 {
        let results = fetcher.fetch_many::<Value>(&urls);
        assert_eq!(results.len(), urls.len());
        for (url, result) in urls.iter().zip(&results) {
            assert!(result.is_ok(), "round {round}, {url}: {result:?}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn durations_up_to_the_maximum_work() {
    let server = TestServer::start(|_| Reply::json(200, "[1]"));
    let dir = temp_dir("max-durations");
    let fetcher = Fetcher::builder()
        .timeout(Duration::MAX)
        .connect_timeout(Duration::MAX)
        .max_backoff(Duration::MAX)
        .jitter(Duration::MAX)
        .breaker_open_time(Duration::MAX)
        .cache_dir(&dir)
        .cache_max_age(Duration::MAX)
        .build()
        .unwrap();
    let one = fetcher.get_json::<Value>(Request::get(server.url("/a")).timeout(Duration::MAX));
    assert!(one.is_ok(), "{one:?}");
    let mut results = Vec::new();
    fetcher
        .batch([server.url("/b"), server.url("/c")])
        .deadline(Duration::MAX)
        .for_each::<Value>(|_, result| results.push(result));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_zero_request_timeout_is_refused_unsent() {
    let server = TestServer::start(|_| Reply::json(200, "{}"));
    let fetcher = crate::quick().build().unwrap();
    let error = fetcher
        .get_bytes(Request::get(server.url("/")).timeout(Duration::ZERO))
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.attempts()),
        (ErrorKind::InvalidRequest, 0)
    );
    assert!(error.to_string().contains("timeout is zero"), "{error}");
    assert_eq!(server.requests(), 0);
}

#[test]
fn a_response_head_sent_byte_by_byte_ends_with_the_timeout() {
    let base = trickling(b"HTTP/1.1 200 OK\r\n", b"x-slow: 1\r\n");
    let error = assert_bounded(one_second(), Request::get(base + "/"));
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:?}");
}

#[test]
fn an_error_body_that_trickles_ends_with_the_timeout() {
    let base = trickling(
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 100000\r\n\r\n",
        b"busy ",
    );
    let error = assert_bounded(one_second(), Request::get(base + "/"));
    assert!(
        matches!(error.kind(), ErrorKind::Timeout | ErrorKind::Status),
        "{error:?}"
    );
}

#[test]
fn a_redirect_chain_shares_one_attempt_timeout() {
    // Each hop answers within the timeout; the chain as a whole does not.
    let server = TestServer::start(|request| {
        let hop: usize = request
            .path
            .trim_start_matches("/hop/")
            .parse()
            .unwrap_or(0);
        let reply = if hop >= 10 {
            Reply::json(200, "{}")
        } else {
            Reply::status(302).with_header("location", format!("/hop/{}", hop + 1))
        };
        Reply::Delay(Duration::from_millis(700), Box::new(reply))
    });
    let fetcher = crate::quick()
        .timeout(Duration::from_secs(1))
        .max_retries(0)
        .build()
        .unwrap();
    let started = Instant::now();
    let error = fetcher.get_bytes(server.url("/hop/0")).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_post_is_never_answered_from_the_cache() {
    let posts = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start({
        let posts = Arc::clone(&posts);
        move |request| {
            if request.method == "POST" {
                posts.fetch_add(1, Ordering::SeqCst);
            }
            Reply::json(200, request.body.clone()).with_header("cache-control", "max-age=3600")
        }
    });
    let dir = temp_dir("post");
    let fetcher = crate::quick()
        .cache_dir(&dir)
        .cache_always_fresh(true)
        .build()
        .unwrap();
    let url = server.url("/orders");
    for n in 1..=2 {
        let sent = serde_json::json!({ "order": n });
        let echoed: serde_json::Value = fetcher.get_json(Request::post_json(&url, &sent)).unwrap();
        assert_eq!(echoed, sent, "POST {n} got another POST's answer");
    }
    assert_eq!(
        posts.load(Ordering::SeqCst),
        2,
        "every POST reached the server"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_post_invalidates_the_cached_get() {
    let version = Arc::new(AtomicUsize::new(1));
    let server = TestServer::start({
        let version = Arc::clone(&version);
        move |request| {
            if request.method == "POST" {
                version.fetch_add(1, Ordering::SeqCst);
                return Reply::json(200, "{}");
            }
            let body = format!(r#"{{"version":{}}}"#, version.load(Ordering::SeqCst));
            Reply::json(200, body).with_header("cache-control", "max-age=3600")
        }
    });
    let dir = temp_dir("invalidate");
    let fetcher = crate::quick().cache_dir(&dir).build().unwrap();
    let url = server.url("/item");
    let get = |fetcher: &Fetcher| {
        fetcher.get_json::<serde_json::Value>(url.as_str()).unwrap()["version"].clone()
    };
    assert_eq!(get(&fetcher), 1);
    assert_eq!(get(&fetcher), 1, "the fresh entry answers");
    fetcher
        .get_bytes(Request::post_json(&url, &serde_json::json!({"v": 2})))
        .unwrap();
    assert_eq!(
        get(&fetcher),
        2,
        "the POST made the stored GET stale (RFC 9111 §4.4)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn credentials_are_never_written_to_the_cache() {
    let server = TestServer::start(|_| {
        Reply::json(200, r#"{"private":1}"#)
            .with_header("cache-control", "max-age=3600")
            .with_header("vary", "accept")
    });
    let dir = temp_dir("secrets");
    let fetcher = crate::quick()
        .cache_dir(&dir)
        .header("x-api-key", "KEY-IN-BUILDER")
        .build()
        .unwrap();
    let url = server
        .url("/me")
        .replace("http://", "http://USERTOKEN:PASSWORD@");
    let request = Request::get(&url)
        .header("authorization", "Bearer BEARER-TOKEN")
        .header("x-auth-token", "AUTH-TOKEN")
        .header("cookie", "session=COOKIE-VALUE");
    fetcher.get_bytes(request.clone()).unwrap();
    assert_eq!(fetcher.get_bytes(request).unwrap(), br#"{"private":1}"#);
    assert_eq!(
        fetcher.stats().cache_hits,
        1,
        "the entry was stored and served"
    );
    let stored = all_bytes(&dir);
    for secret in [
        "KEY-IN-BUILDER",
        "USERTOKEN",
        "PASSWORD",
        "BEARER-TOKEN",
        "AUTH-TOKEN",
        "COOKIE-VALUE",
    ] {
        assert!(
            !contains(&stored, secret),
            "{secret} was written to the cache"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn user_info_never_shows_in_messages_or_debug() {
    assert_user_info_never_shown(&[
        "http://USERTOKEN@127.0.0.1:9/x",
        "http://USERTOKEN:PASSWORD@127.0.0.1:9/x",
    ]);
}

#[test]
fn a_batch_inside_a_batch_finishes() {
    let server = TestServer::start(|request| Reply::json(200, format!("{:?}", request.path)));
    let fetcher = crate::quick().concurrency(4).build().unwrap();
    let urls: Vec<String> = (0..40)
        .map(|i| server.url(&format!("/outer/{i}")))
        .collect();
    let outcome = within(Duration::from_secs(60), move || {
        let inner_ok = Arc::new(Mutex::new(0usize));
        let mut outer = 0;
        fetcher.batch(urls).for_each::<Value>(|i, result| {
            assert!(result.is_ok(), "{result:?}");
            outer += 1;
            let inner: Vec<String> = (0..8)
                .map(|j| server.url(&format!("/inner/{i}/{j}")))
                .collect();
            let ok = if i % 2 == 0 {
                fetcher
                    .fetch_many::<Value>(&inner)
                    .iter()
                    .filter(|r| r.is_ok())
                    .count()
            } else {
                fetcher
                    .batch(inner)
                    .collect::<Value>()
                    .iter()
                    .filter(|r| r.is_ok())
                    .count()
            };
            *inner_ok.lock().unwrap() += ok;
        });
        let inner_ok = *inner_ok.lock().unwrap();
        (outer, inner_ok)
    });
    assert_eq!(
        outcome,
        Some((40, 320)),
        "the nested batches hung or lost results"
    );
}

/// A document type whose `Deserialize` panics on one value: a stand-in
/// for any panic on a request's way.
#[derive(Debug)]
struct Touchy(u64);

impl<'de> serde::Deserialize<'de> for Touchy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Touchy, D::Error> {
        let n = u64::deserialize(deserializer)?;
        assert!(n != 13, "unlucky number");
        Ok(Touchy(n))
    }
}

#[test]
fn a_panic_on_one_request_is_that_requests_error() {
    let server = TestServer::start(|request| {
        Reply::json(200, request.path.trim_start_matches('/').to_owned())
    });
    let fetcher = crate::quick().concurrency(4).build().unwrap();
    let urls: Vec<String> = (0..20).map(|i| server.url(&i.to_string())).collect();
    let check = |index: usize, result: &Result<Touchy, parfetch::Error>| match result {
        Ok(Touchy(n)) => assert_eq!((*n, index), (index as u64, index)),
        Err(error) => {
            assert_eq!(
                (index, error.kind()),
                (13, ErrorKind::Internal),
                "{error:?}"
            );
            assert!(error.to_string().contains("unlucky number"), "{error}");
            assert_eq!(error.url(), Some(urls[13].as_str()));
        }
    };
    let results = fetcher.fetch_many::<Touchy>(&urls);
    assert_eq!(results.len(), 20);
    for (index, result) in results.iter().enumerate() {
        check(index, result);
    }
    let mut seen = 0;
    let stats = fetcher.batch(&urls).for_each::<Touchy>(|index, result| {
        check(index, &result);
        seen += 1;
    });
    assert_eq!(
        (seen, stats.stats.failures_of(ErrorKind::Internal)),
        (20, 1)
    );
    let alone = fetcher.get_json::<Touchy>(urls[13].as_str()).unwrap_err();
    assert_eq!(alone.kind(), ErrorKind::Internal);
    assert!(!alone.is_retryable());
}

#[test]
fn sensitive_headers_stay_with_their_origin_on_a_redirect() {
    type Seen = Arc<Mutex<Vec<Vec<(String, String)>>>>;
    let seen: Seen = Arc::default();
    let landing = TestServer::start({
        let seen = Arc::clone(&seen);
        move |request| {
            seen.lock().unwrap().push(request.headers.clone());
            Reply::json(200, "{}")
        }
    });
    // Another host: "localhost" rather than "127.0.0.1".
    let elsewhere = landing.url("/landing").replace("127.0.0.1", "localhost");
    let start = TestServer::start(move |request| match request.path.as_str() {
        "/same" => Reply::status(307).with_header("location", "/here"),
        "/here" => Reply::status(302).with_header("location", elsewhere.clone()),
        _ => Reply::json(200, "{}"),
    });
    let fetcher = crate::quick()
        .header("x-api-key", "KEY")
        .sensitive_header("X-Partner")
        .build()
        .unwrap();
    fetcher
        .get_bytes(
            Request::get(start.url("/same"))
                .header("authorization", "Bearer TOKEN")
                .header("proxy-authorization", "Basic PROXY")
                .header("cookie", "session=COOKIE")
                .header("x-partner", "PARTNER")
                .sensitive_header("x-signed", "SIGNED")
                .header("x-trace", "t1"),
        )
        .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "the chain reached the other host once");
    let names: Vec<&str> = seen[0].iter().map(|(name, _)| name.as_str()).collect();
    for secret in [
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "x-partner",
        "x-signed",
    ] {
        assert!(
            !names.contains(&secret),
            "{secret} went to another host: {names:?}"
        );
    }
    assert!(names.contains(&"x-trace"), "{names:?}");
}

#[test]
fn sensitive_headers_never_show() {
    let request = Request::get("http://h/")
        .sensitive_header("x-signed", "SIGNED")
        .header("x-api-key", "KEY")
        .header("x-trace", "t1");
    let shown = format!("{request:?}");
    assert!(
        !shown.contains("SIGNED") && !shown.contains("KEY"),
        "{shown}"
    );
    assert!(shown.contains("t1"), "{shown}");
    let builder = Fetcher::builder()
        .sensitive_header("x-partner")
        .header("x-partner", "PARTNER");
    let shown = format!("{builder:?}");
    assert!(!shown.contains("PARTNER"), "{shown}");
}

#[test]
fn a_batch_started_from_a_progress_callback_finishes() {
    let server = TestServer::start(|_| Reply::json(200, "1"));
    let fetcher = crate::quick().concurrency(2).build().unwrap();
    let urls: Vec<String> = (0..30).map(|i| server.url(&i.to_string())).collect();
    let outcome = within(Duration::from_secs(60), move || {
        let mut inner = 0;
        let mut outer = 0;
        fetcher
            .batch(&urls)
            .on_progress(|_| {
                inner += fetcher
                    .fetch_many::<Value>(&urls[..3])
                    .iter()
                    .filter(|r| r.is_ok())
                    .count();
            })
            .for_each::<Value>(|_, result| outer += usize::from(result.is_ok()));
        (outer, inner > 0 && inner % 3 == 0)
    });
    assert_eq!(outcome, Some((30, true)));
}
