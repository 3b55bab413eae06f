//! Settings and header values at their extremes (`Duration::MAX`,
//! `u64::MAX`, dates in year 9999): taken in stride, never a panic, an
//! overflow or a hang.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parfetch::{CancelToken, ErrorKind, Fetcher, Request, Value};

use crate::server::{Reply, TestServer};
use crate::support::{wait_until, within};

fn temp_dir(name: &str) -> PathBuf {
    crate::scratch_dir(&format!("extremes-{name}"))
}

// From review 1 (issue 12).
/// Held: extreme settings all at once build and work, a FOREVER-long retry
/// delay is cut by the deadline and by a cancel, and a 1 ns per-request
/// timeout times out.
#[test]
fn extreme_settings_build_and_work() {
    let fails = Arc::new(TestServer::start(|_| Reply::status(500)));
    let works = TestServer::start(|_| Reply::json(200, "[1]"));
    let fetcher = Fetcher::builder()
        .no_proxy()
        .timeout(Duration::MAX)
        .connect_timeout(Duration::MAX)
        .initial_backoff(Duration::MAX)
        .max_backoff(Duration::MAX)
        .backoff_multiplier(f64::MAX)
        .jitter(Duration::MAX)
        .max_retries(u32::MAX)
        .breaker_threshold(u32::MAX)
        .breaker_open_time(Duration::MAX)
        .max_redirects(u32::MAX)
        .body_limit(u64::MAX)
        .rate_limit(u32::MAX)
        .rate_burst(u32::MAX)
        .max_per_host(usize::MAX)
        .build()
        .expect("every setting at its extreme is a setting");
    let outcome = within(Duration::from_secs(60), move || {
        let body = fetcher
            .get_bytes(works.url("/a"))
            .map_err(|e| e.to_string());
        let mut kinds = Vec::new();
        fetcher
            .batch([fails.url("/b")])
            .deadline(Duration::from_secs(2))
            .for_each_bytes(|_, r| kinds.push(r.unwrap_err().kind()));
        let token = CancelToken::new();
        let cancel = token.clone();
        // Cancelled once /c was sent: the delay after it is forever.
        let sent = Arc::clone(&fails);
        std::thread::spawn(move || {
            wait_until(Duration::from_secs(30), "the request to /c", || {
                sent.requests() >= 2
            });
            cancel.cancel();
        });
        fetcher
            .batch([fails.url("/c")])
            .cancel_token(token)
            .for_each_bytes(|_, r| kinds.push(r.unwrap_err().kind()));
        let tiny = crate::quick()
            .max_retries(0)
            .build()
            .unwrap()
            .get_bytes(Request::get(works.url("/d")).timeout(Duration::from_nanos(1)))
            .map(|_| ())
            .map_err(|e| (e.kind(), e.attempts()));
        (body, kinds, tiny)
    });
    let (body, kinds, tiny) = outcome.expect("an extreme setting hung");
    assert_eq!(body.as_deref(), Ok(&b"[1]"[..]));
    assert_eq!(kinds, [ErrorKind::DeadlineExceeded, ErrorKind::Cancelled]);
    assert_eq!(tiny, Err((ErrorKind::Timeout, 1)));
}

// From the hardening (issue 12).
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

// From the hardening (issue 12).
#[test]
fn durations_up_to_the_maximum_work() {
    let server = TestServer::start(|_| Reply::json(200, "[1]"));
    let dir = temp_dir("max-durations");
    let fetcher = Fetcher::builder()
        .no_proxy()
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
    assert_eq!(one.map_err(|e| e.to_string()), Ok(Value::from(vec![1])));
    let mut results = Vec::new();
    fetcher
        .batch([server.url("/b"), server.url("/c")])
        .deadline(Duration::MAX)
        .for_each::<Value>(|_, result| results.push(result.map_err(|e| e.to_string())));
    assert_eq!(
        results,
        [Ok(Value::from(vec![1])), Ok(Value::from(vec![1]))]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
