//! The circuit breaker's full cycle, with real time (its states waited
//! for, never slept for), and what counts against it. (Its exact
//! transitions: the unit tests in src/policy/host/breaker.rs and
//! src/engine/mod.rs, on a manual clock.)

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parfetch::{BreakerState, ErrorKind};

use crate::server::{Reply, TestServer};
use crate::support::wait_until;

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
    // Open for 2 s: the checks made while it is open take milliseconds,
    // so a loaded machine has more than 100 times the time they need;
    // the half-open state is waited for, not slept for.
    let fetcher = crate::quick()
        .max_retries(0)
        .breaker_threshold(5)
        .breaker_open_time(Duration::from_secs(2))
        .breaker_fail_fast(true)
        .build()
        .unwrap();
    let url = server.url("/x");
    let host = server.host();
    let half_open = || {
        wait_until(Duration::from_secs(30), "the breaker to half-open", || {
            fetcher.breaker_state(&host) == BreakerState::HalfOpen
        });
    };

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
    half_open();
    assert_eq!(
        fetcher.get_bytes(&url).unwrap_err().kind(),
        ErrorKind::Status
    );
    assert_eq!(server.requests(), 6);
    assert_eq!(fetcher.breaker_state(&host), BreakerState::Open);

    // The host recovers: the next probe closes the breaker.
    healthy.store(true, Ordering::SeqCst);
    half_open();
    fetcher.get_bytes(&url).unwrap();
    assert_eq!(fetcher.breaker_state(&host), BreakerState::Closed);
    fetcher.get_bytes(&url).unwrap();
    assert_eq!(server.requests(), 8);
}

/// By default, an open breaker holds a request for the probe instead of
/// failing it: a host that comes back within the request's patience (3 s
/// here: its retries are quick) costs it time, not its result.
#[test]
fn an_open_breaker_holds_requests_for_the_probe() {
    let healthy = Arc::new(AtomicBool::new(false));
    let server = TestServer::start({
        let healthy = Arc::clone(&healthy);
        move |_| {
            if healthy.load(Ordering::SeqCst) {
                Reply::json(200, "{}")
            } else {
                Reply::status(503)
            }
        }
    });
    let fetcher = crate::quick().max_retries(0).build().unwrap();
    let (url, host) = (server.url("/x"), server.host());
    for _ in 0..5 {
        let error = fetcher.get_bytes(&url).unwrap_err();
        assert_eq!((error.status(), error.attempts()), (Some(503), 1));
    }
    assert_eq!(fetcher.breaker_state(&host), BreakerState::Open);
    // The host is back; the breaker does not know yet. The request waits
    // for the open second to pass, goes as the probe, and succeeds.
    healthy.store(true, Ordering::SeqCst);
    assert_eq!(fetcher.get_bytes(&url).unwrap(), b"{}");
    assert_eq!(fetcher.breaker_state(&host), BreakerState::Closed);
    assert_eq!(server.requests(), 6);
    assert_eq!(fetcher.stats().failures_of(ErrorKind::CircuitOpen), 0);
}

/// A pooled connection the server closed while idle is resent at once on a
/// new one; that is no breaker failure (README, Errors). Against a
/// threshold of 2, a request whose pooled connection went stale and whose
/// resend got a 500 counts one failure, not two.
#[test]
fn a_stale_pooled_connection_is_not_a_breaker_failure() {
    // Every reuse of a connection finds it closed; a new one answers.
    let server = TestServer::start(|request| {
        if request.index_on_connection > 0 {
            Reply::ResetNow
        } else if request.path == "/fail" {
            Reply::status(500)
        } else {
            Reply::json(200, "{}")
        }
    });
    let fetcher = crate::quick()
        .max_retries(0)
        .breaker_threshold(2)
        .build()
        .unwrap();
    let host = server.host();
    fetcher.get_bytes(server.url("/ok")).unwrap();
    for (n, state) in [(1, BreakerState::Closed), (2, BreakerState::Open)] {
        let error = fetcher.get_bytes(server.url("/fail")).unwrap_err();
        assert_eq!(
            (error.status(), error.attempts()),
            (Some(500), 1),
            "failure {n}: {error}"
        );
        assert_eq!(fetcher.stats().stale_connections, n, "failure {n}");
        assert_eq!(fetcher.breaker_state(&host), state, "after failure {n}");
    }
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

/// A request set aside while a dead host's probe is out still ends when
/// its patience (what its retries would take, at least 3 s) is over: the
/// breaker opening again after each probe (1, 2, 4 ... 60 s) does not
/// keep it waiting from opening to opening.
// From the fault matrix (issue 22): 20 requests to a dead port ended one
// per opening, ten minutes for the last.
#[test]
fn requests_held_from_probe_to_probe_end_within_their_patience() {
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let fetcher = crate::quick().concurrency(4).build().unwrap();
    let urls: Vec<String> = (0..24).map(|i| format!("{dead}/{i}")).collect();
    let started = std::time::Instant::now();
    let results = fetcher.fetch_many_bytes(&urls);
    let elapsed = started.elapsed();
    for result in &results {
        let kind = result.as_ref().map_err(parfetch::Error::kind).err();
        assert!(
            matches!(kind, Some(ErrorKind::Network | ErrorKind::CircuitOpen)),
            "{result:?}"
        );
    }
    assert!(fetcher.stats().hosts[0].breaker_opened >= 1);
    // Patience is 3 s here; openings alone would take 1 + 2 + 4 + ... s
    // for each request released by a probe: minutes.
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}
