//! What a host is (scheme, name, port), and what the fetcher keeps per host.

use std::time::{Duration, Instant};

use parfetch::{BreakerState, ErrorKind};

use crate::server::{Reply, TestServer};

#[test]
fn a_breaker_is_found_by_url_or_by_host() {
    let server = TestServer::start(|_| Reply::status(503));
    let fetcher = crate::quick()
        .max_retries(0)
        .breaker_threshold(1)
        .build()
        .unwrap();
    let error = fetcher.get_bytes(server.url("/a")).unwrap_err();
    assert_eq!(error.status(), Some(503));
    let port = server.addr().port();
    for open in [
        server.url("/a"),
        server.url("/elsewhere?q=1"),
        format!("http://127.0.0.1:{port}"),
        format!("127.0.0.1:{port}"),
        format!("HTTP://127.0.0.1:{port}/"),
    ] {
        assert_eq!(fetcher.breaker_state(&open), BreakerState::Open, "{open}");
    }
    for closed in [
        format!("https://127.0.0.1:{port}/a"),
        format!("http://127.0.0.1:{}/a", port.wrapping_add(1)),
        format!("http://localhost:{port}/a"),
        "127.0.0.1".to_owned(),
        "not a host:x".to_owned(),
    ] {
        assert_eq!(
            fetcher.breaker_state(&closed),
            BreakerState::Closed,
            "{closed}"
        );
    }
    // The same host however the URL spells it: the breaker is shared.
    let error = fetcher
        .get_bytes(format!("http://127.0.0.1:{port}/other"))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::CircuitOpen);
    fetcher.reset_breakers();
    assert_eq!(
        fetcher.breaker_state(&server.url("/")),
        BreakerState::Closed
    );
}

#[test]
fn idle_connections_stay_bounded_across_hosts() {
    // 40 hosts (one per port), concurrency 4: at most max(2 x 4, 20) = 20
    // connections are kept idle in all, whatever the number of hosts.
    let servers: Vec<TestServer> = (0..40)
        .map(|_| TestServer::start(|_| Reply::json(200, "{}")))
        .collect();
    let fetcher = crate::quick().concurrency(4).build().unwrap();
    let urls: Vec<String> = servers
        .iter()
        .flat_map(|server| (0..3).map(|i| server.url(&format!("/{i}"))))
        .collect();
    let results = fetcher.fetch_many_bytes(&urls);
    assert!(results.iter().all(Result::is_ok));
    assert!(fetcher.stats().connections_opened >= 40);
    let live = || -> usize { servers.iter().map(TestServer::live_connections).sum() };
    let started = Instant::now();
    while live() > 20 && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(live() <= 20, "{} connections still open", live());
}

// From review 1 (issue 12).
/// Failed before the fix: a host is its origin (scheme, lower-cased name,
/// effective port; src/host.rs) for every per-host rule, the breaker
/// included. The breaker, the Retry-After gate, the rate limit and
/// `max_per_host` are keyed by `Request::host()`, the authority as written
/// (src/request.rs `host`): `LOCALHOST:P` escapes the open breaker of
/// `localhost:P` (and `http://h/` and `https://h/` share one). Key them by
/// the normalised origin.
#[test]
fn the_breaker_is_keyed_by_origin_not_spelling() {
    let server = TestServer::start(|_| Reply::status(500));
    let fetcher = crate::quick()
        .max_retries(0)
        .breaker_threshold(1)
        .breaker_open_time(Duration::from_secs(3600))
        .build()
        .unwrap();
    let lower = server.url("/x").replace("127.0.0.1", "localhost");
    let upper = lower.replace("localhost", "LOCALHOST");
    assert_eq!(
        fetcher.get_bytes(lower.as_str()).unwrap_err().kind(),
        ErrorKind::Status
    );
    assert_eq!(
        fetcher.get_bytes(lower.as_str()).unwrap_err().kind(),
        ErrorKind::CircuitOpen
    );
    let sent_before = server.requests();
    let error = fetcher.get_bytes(upper.as_str()).unwrap_err();
    assert_eq!(
        (error.kind(), server.requests()),
        (ErrorKind::CircuitOpen, sent_before),
        "the open breaker was bypassed by spelling the host in upper case"
    );
}

// From review 1 (issue 12).
/// Held: two ports of one name resolve to their own ports, and the name's
/// cache does not mix them up.
#[test]
fn the_resolver_keeps_ports_apart() {
    let one = TestServer::start(|_| Reply::json(200, "1"));
    let two = TestServer::start(|_| Reply::json(200, "2"));
    let fetcher = crate::quick().build().unwrap();
    for _ in 0..3 {
        for (server, want) in [(&one, 1u64), (&two, 2)] {
            let url = server.url("/n").replace("127.0.0.1", "localhost");
            assert_eq!(fetcher.get_json::<u64>(url.as_str()).unwrap(), want);
        }
    }
}
