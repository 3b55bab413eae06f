//! Retries as the server sees them: counts, Retry-After, idempotency.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use parfetch::{ErrorKind, Request, Value};

use crate::server::{Reply, TestServer};

#[test]
fn a_storm_of_server_errors_recovers_within_the_budget() {
    let seen = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start({
        let seen = Arc::clone(&seen);
        move |_| match seen.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::status(500),
            1 => Reply::status(502),
            2 => Reply::status(503),
            _ => Reply::json(200, r#"{"ok":1}"#),
        }
    });
    let fetcher = crate::quick().build().unwrap();
    let value: Value = fetcher.get_json(server.url("/")).unwrap();
    assert_eq!(value["ok"], 1);
    assert_eq!(server.requests(), 4);
    let stats = fetcher.stats();
    assert_eq!((stats.attempts, stats.retries, stats.successes), (4, 3, 1));
}

#[test]
fn max_retries_bounds_the_attempts() {
    let server = TestServer::start(|_| Reply::status(500));
    for retries in [0, 1, 5] {
        let before = server.requests();
        let fetcher = crate::quick()
            .max_retries(retries)
            .breaker_threshold(0)
            .build()
            .unwrap();
        let error = fetcher.get_bytes(server.url("/")).unwrap_err();
        assert_eq!(error.attempts(), retries + 1);
        assert_eq!(server.requests() - before, retries as usize + 1);
    }
}

/// A server that answers `first` once, then 200, recording when each
/// request arrived.
fn once_then_ok(first: Reply) -> (TestServer, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let first = Mutex::new(Some(first));
    let server = TestServer::start({
        let arrivals = Arc::clone(&arrivals);
        move |_| {
            arrivals.lock().unwrap().push(Instant::now());
            first
                .lock()
                .unwrap()
                .take()
                .unwrap_or_else(|| Reply::json(200, "{}"))
        }
    });
    (server, arrivals)
}

fn gap(arrivals: &Mutex<Vec<Instant>>) -> Duration {
    let arrivals = arrivals.lock().unwrap();
    assert_eq!(arrivals.len(), 2);
    arrivals[1] - arrivals[0]
}

/// Backoff is 1 ms here, so a long gap can only come from Retry-After.
/// Only lower bounds are asserted: a busy machine makes gaps longer, never
/// shorter.
#[test]
fn retry_after_seconds_is_honoured() {
    let fetcher = crate::quick()
        .max_backoff(Duration::from_secs(5))
        .build()
        .unwrap();
    let (server, arrivals) = once_then_ok(Reply::status(429).with_header("retry-after", "1"));
    fetcher.get_bytes(server.url("/")).unwrap();
    assert!(
        gap(&arrivals) >= Duration::from_millis(990),
        "{:?}",
        gap(&arrivals)
    );
}

#[test]
fn retry_after_http_date_is_honoured() {
    let fetcher = crate::quick()
        .max_backoff(Duration::from_secs(5))
        .build()
        .unwrap();
    // The date is made as the 503 is sent, not before the server starts:
    // HTTP dates have whole seconds, so 2 s from then is more than 1 s
    // after the first request arrived, however slow the machine.
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let server = TestServer::start({
        let arrivals = Arc::clone(&arrivals);
        move |_| {
            let mut arrivals = arrivals.lock().unwrap();
            arrivals.push(Instant::now());
            if arrivals.len() > 1 {
                return Reply::json(200, "{}");
            }
            let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
            Reply::status(503).with_header("retry-after", date)
        }
    });
    fetcher.get_bytes(server.url("/")).unwrap();
    assert!(
        gap(&arrivals) >= Duration::from_millis(990),
        "{:?}",
        gap(&arrivals)
    );
}

/// A server asking for more than max_retry_after is not retried early
/// (that would be wasted, and rude): the request ends at once, retries left
/// or not, and the error says how long it asked for, however it said so
/// (seconds, `u64::MAX` seconds, an HTTP date in year 9999: no panic).
/// The rows of review 1 (issue 12) are in the same table.
#[test]
fn retry_after_past_max_retry_after_ends_the_request_at_once() {
    const FAR: &str = "Fri, 31 Dec 9999 23:59:59 GMT";
    let far = httpdate::parse_http_date(FAR).unwrap();
    let fetcher = crate::quick()
        .max_retries(5)
        .max_retry_after(Duration::from_secs(2))
        .build()
        .unwrap();
    for (status, value) in [
        (429, "120"),
        (503, "3600"),
        (503, "18446744073709551615"),
        (503, FAR),
    ] {
        let (server, arrivals) =
            once_then_ok(Reply::status(status).with_header("retry-after", value));
        let until_far = |now: SystemTime| far.duration_since(now).unwrap();
        let (before, started) = (SystemTime::now(), Instant::now());
        let error = fetcher.get_bytes(server.url("/")).unwrap_err();
        let (elapsed, after) = (started.elapsed(), SystemTime::now());
        assert_eq!(
            (error.status(), error.attempts()),
            (Some(status), 1),
            "{value}"
        );
        let asked = error.retry_after().expect("the wait the server asked for");
        match value.parse::<u64>() {
            Ok(seconds) => assert_eq!(asked, Duration::from_secs(seconds), "{value}"),
            // From the date, as it stood while the request was out.
            Err(_) => assert!(
                until_far(after) <= asked && asked <= until_far(before),
                "{value}: {asked:?}"
            ),
        }
        assert_eq!(arrivals.lock().unwrap().len(), 1, "{value}");
        assert!(elapsed < Duration::from_secs(2), "{value}: {elapsed:?}");
    }
}

#[test]
fn garbage_retry_after_falls_back_to_backoff() {
    let fetcher = crate::quick().build().unwrap();
    let (server, _) = once_then_ok(Reply::status(429).with_header("retry-after", "soon-ish"));
    fetcher.get_bytes(server.url("/")).unwrap();
    assert_eq!(server.requests(), 2);
}

#[test]
fn post_is_retried_only_when_marked_idempotent() {
    let server = TestServer::start(|_| Reply::status(503));
    let fetcher = crate::quick().build().unwrap();
    let body = serde_json::json!({"n": 1});
    let error = fetcher
        .get_bytes(Request::post_json(server.url("/"), &body))
        .unwrap_err();
    assert_eq!((error.kind(), error.attempts()), (ErrorKind::Status, 1));
    let error = fetcher
        .get_bytes(Request::post_json(server.url("/"), &body).idempotent(true))
        .unwrap_err();
    assert_eq!(error.attempts(), 4);
    assert_eq!(server.requests(), 5);
}
