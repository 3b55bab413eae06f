//! The circuit breaker's full cycle, with real (short) time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parfetch::{BreakerState, ErrorKind};

use crate::server::{Reply, TestServer};

#[test]
fn breaker_opens_fails_fast_probes_and_closes() {
    let healthy = Arc::new(AtomicBool::new(false));
    let server = TestServer::start({
        let healthy = Arc::clone(&healthy);
        move |_| {
            if healthy.load(Ordering::SeqCst) {
                Reply::json(200, "{}")
            } else {
                Reply::status(500)
            }
        }
    });
    let fetcher = crate::quick()
        .max_retries(0)
        .breaker_threshold(5)
        .breaker_open_time(Duration::from_millis(300))
        .build()
        .unwrap();
    let url = server.url("/x");
    let host = server.host();

    for _ in 0..5 {
        assert_eq!(
            fetcher.get_bytes(&url).unwrap_err().kind(),
            ErrorKind::Status
        );
    }
    assert_eq!(fetcher.breaker_state(&host), BreakerState::Open);
    assert_eq!(server.requests(), 5);

    // Open: fails at once, sends nothing.
    let error = fetcher.get_bytes(&url).unwrap_err();
    assert_eq!(
        (error.kind(), error.attempts()),
        (ErrorKind::CircuitOpen, 0)
    );
    assert!(error.to_string().contains("circuit breaker"), "{error}");
    assert_eq!(server.requests(), 5);

    // After the open time, one probe goes through; it fails: open again.
    std::thread::sleep(Duration::from_millis(350));
    assert_eq!(fetcher.breaker_state(&host), BreakerState::HalfOpen);
    assert_eq!(
        fetcher.get_bytes(&url).unwrap_err().kind(),
        ErrorKind::Status
    );
    assert_eq!(server.requests(), 6);
    assert_eq!(fetcher.breaker_state(&host), BreakerState::Open);

    // The host recovers: the next probe closes the breaker.
    healthy.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(350));
    fetcher.get_bytes(&url).unwrap();
    assert_eq!(fetcher.breaker_state(&host), BreakerState::Closed);
    fetcher.get_bytes(&url).unwrap();
    assert_eq!(server.requests(), 8);
}

#[test]
fn client_errors_never_trip_the_breaker() {
    let server = TestServer::start(|_| Reply::status(404));
    let fetcher = crate::quick().breaker_threshold(2).build().unwrap();
    for _ in 0..10 {
        assert_eq!(
            fetcher.get_bytes(server.url("/")).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }
    assert_eq!(fetcher.breaker_state(&server.host()), BreakerState::Closed);
}

#[test]
fn an_open_breaker_spares_other_hosts_and_reset_closes_it() {
    let bad = TestServer::start(|_| Reply::status(503));
    let good = TestServer::start(|_| Reply::json(200, "{}"));
    let fetcher = crate::quick()
        .max_retries(0)
        .breaker_threshold(1)
        .build()
        .unwrap();
    let _ = fetcher.get_bytes(bad.url("/"));
    assert_eq!(fetcher.breaker_state(&bad.host()), BreakerState::Open);
    fetcher.get_bytes(good.url("/")).unwrap();
    fetcher.reset_breakers();
    assert_eq!(fetcher.breaker_state(&bad.host()), BreakerState::Closed);
    assert_eq!(
        fetcher.get_bytes(bad.url("/")).unwrap_err().kind(),
        ErrorKind::Status
    );
}
