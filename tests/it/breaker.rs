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

/// A server that answers `status` until `healthy` is set, then `200 {}`.
fn failing_until_healthy(status: u16) -> (TestServer, Arc<AtomicBool>) {
    let healthy = Arc::new(AtomicBool::new(false));
    let server = TestServer::start({
        let healthy = Arc::clone(&healthy);
        move |_| {
            if healthy.load(Ordering::SeqCst) {
                Reply::json(200, "{}")
            } else {
                Reply::status(status)
            }
        }
    });
    (server, healthy)
}

#[test]
fn breaker_opens_fails_fast_probes_and_closes() {
    let (server, healthy) = failing_until_healthy(500);
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
    let (server, healthy) = failing_until_healthy(503);
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

// The tests below come from an adversarial review of the governor (issue 22).

/// A probe that hangs until its timeout (10 s) does not keep the requests
/// held for the breaker past their patience (3 s with the quick backoff):
/// they end at it, each with its own cause.
#[test]
fn requests_held_behind_a_hanging_probe_end_at_their_patience() {
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let server = TestServer::start({
        let seen = Arc::clone(&seen);
        move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) < 8 {
                Reply::status(500)
            } else {
                Reply::Stall(Duration::from_secs(60))
            }
        }
    });
    // At most 2 in flight to the host, of 8 threads: requests that hang
    // hold their threads (each request in flight has one), and the held
    // ones need a free thread to end. (With 4 threads and 4 hanging
    // requests, sent before the breaker opened on a loaded machine,
    // nothing ended before the first timeout.)
    let fetcher = crate::quick()
        .concurrency(8)
        .max_per_host(2)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let urls: Vec<String> = (0..40).map(|i| server.url(&format!("/{i}"))).collect();
    let started = std::time::Instant::now();
    let mut ends: Vec<(Duration, ErrorKind)> = Vec::new();
    fetcher
        .batch(urls.iter().map(|u| parfetch::Request::get(u.as_str())))
        .for_each_bytes(|_, result| {
            let kind = result.err().map_or(ErrorKind::Status, |e| e.kind());
            ends.push((started.elapsed(), kind));
        });
    assert_eq!(ends.len(), 40);
    // Most end long before the probe's 20 s timeout: patience is about
    // 3 s after the breaker opens, which is about 1 s in.
    let early = ends
        .iter()
        .filter(|(at, _)| *at < Duration::from_secs(10))
        .count();
    assert!(early >= 30, "{early} of 40 ended within 10 s: {ends:?}");
}

/// Odd open times (0, 1 ns, the maximum) with a host that 503s for 0.3 s:
/// no panic, every request ends within a bound, and after the blip a
/// request succeeds again (the breaker does not take the host as down for
/// good).
#[test]
fn odd_breaker_open_times_end_every_request() {
    for open_time in [Duration::ZERO, Duration::from_nanos(1), Duration::MAX] {
        let started = std::time::Instant::now();
        let server = TestServer::start(move |_| {
            if started.elapsed() < Duration::from_millis(300) {
                Reply::status(503)
            } else {
                Reply::json(200, "{}")
            }
        });
        let fetcher = crate::quick()
            .concurrency(4)
            .breaker_open_time(open_time)
            .build()
            .unwrap();
        let urls: Vec<String> = (0..100).map(|i| server.url(&format!("/{i}"))).collect();
        let results = fetcher.fetch_many_bytes(&urls);
        assert_eq!(results.len(), 100);
        let ok = results.iter().filter(|r| r.is_ok()).count();
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(20),
            "{open_time:?}: {elapsed:?}"
        );
        // After the blip, a new request gets through.
        std::thread::sleep(Duration::from_millis(400));
        let later = fetcher.get_bytes(server.url("/later"));
        assert!(
            later.is_ok(),
            "{open_time:?}: {later:?} ({ok} of 100 ok in the batch)"
        );
    }
}

/// `reset_breakers` while a probe is out: the probe failing afterwards
/// neither opens the breaker again nor takes the host as down. When the
/// host fails again and its breaker opens, a request waits for the probe,
/// as after any first opening, and succeeds once the host is back.
// From the adversarial review of issue 22 (second round).
#[test]
fn a_probe_failing_after_a_reset_does_not_take_the_host_as_down() {
    let healthy = Arc::new(AtomicBool::new(false));
    let hanging = Arc::new(AtomicBool::new(false));
    let released = Arc::new(AtomicBool::new(false));
    let server = TestServer::start({
        let (healthy, hanging, released) = (
            Arc::clone(&healthy),
            Arc::clone(&hanging),
            Arc::clone(&released),
        );
        move |request| {
            if request.path == "/hang" {
                hanging.store(true, Ordering::SeqCst);
                while !released.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                return Reply::status(503);
            }
            if healthy.load(Ordering::SeqCst) {
                Reply::json(200, "{}")
            } else {
                Reply::status(503)
            }
        }
    });
    // The longest opening is the first (1 s): a probe failing at it would
    // take the host as down.
    let fetcher = crate::quick()
        .max_retries(0)
        .breaker_open_time(Duration::from_secs(1))
        .build()
        .unwrap();
    let (url, host) = (server.url("/x"), server.host());
    let fail_until_open = || {
        for _ in 0..10 {
            let error = fetcher.get_bytes(&url).unwrap_err();
            assert_eq!((error.status(), error.attempts()), (Some(503), 1));
            if fetcher.breaker_state(&host) == BreakerState::Open {
                return;
            }
        }
        panic!("the breaker did not open after 10 failures");
    };
    fail_until_open();
    wait_until(Duration::from_secs(30), "the breaker to half-open", || {
        fetcher.breaker_state(&host) == BreakerState::HalfOpen
    });
    // The probe goes, and hangs; meanwhile the breakers are reset.
    let probe = std::thread::spawn({
        let fetcher = fetcher.clone();
        let url = server.url("/hang");
        move || fetcher.get_bytes(url).map_err(|e| e.status())
    });
    wait_until(Duration::from_secs(30), "the probe to arrive", || {
        hanging.load(Ordering::SeqCst)
    });
    fetcher.reset_breakers();
    assert_eq!(fetcher.breaker_state(&host), BreakerState::Closed);
    released.store(true, Ordering::SeqCst);
    assert_eq!(probe.join().unwrap(), Err(Some(503)));
    assert_eq!(fetcher.breaker_state(&host), BreakerState::Closed);
    // The host fails again, then comes back: the request after the
    // opening waits for the probe (1 s) and is served.
    fail_until_open();
    healthy.store(true, Ordering::SeqCst);
    let after = fetcher
        .get_bytes(&url)
        .map_err(|e| (e.kind(), e.attempts()));
    assert_eq!(after.as_deref().ok(), Some(&b"{}"[..]), "{after:?}");
    assert_eq!(fetcher.stats().hosts[0].breaker_opened, 2);
}
