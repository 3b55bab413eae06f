//! Servers that push back: a host's limit, its pauses and its retry budget,
//! with every protection at its defaults unless a test isolates one (and
//! says so). Real time: bounds are on counts, never on durations. (The
//! exact rules, on a manual clock: src/policy/host/ and the unit tests of
//! src/engine/mod.rs.)

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use parfetch::{ErrorKind, Request};

use crate::server::{Reply, TestServer};

/// A server that serves `capacity` requests at once (`work` each) and
/// answers the others `429` with `Retry-After: 1`; it counts those.
fn at_capacity(capacity: u64, work: Duration) -> (TestServer, Arc<AtomicU64>) {
    let active = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let server = TestServer::start({
        let refused = Arc::clone(&refused);
        move |_| {
            if active.fetch_add(1, Ordering::SeqCst) >= capacity {
                active.fetch_sub(1, Ordering::SeqCst);
                refused.fetch_add(1, Ordering::SeqCst);
                return Reply::status(429).with_header("retry-after", "1");
            }
            std::thread::sleep(work);
            active.fetch_sub(1, Ordering::SeqCst);
            Reply::json(200, "{}")
        }
    });
    (server, refused)
}

/// Each of `results` is the servers' `{}`: nothing lost, none refused.
fn assert_every_result_is_the_document(results: &[Result<Vec<u8>, parfetch::Error>]) {
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.as_deref().ok(), Some(&b"{}"[..]), "request {i}");
    }
}

/// A server that answers its first request `429` with `Retry-After:
/// retry_after`, and every other `200 {}`.
fn refusing_the_first(retry_after: &str) -> TestServer {
    let seen = AtomicU64::new(0);
    let retry_after = retry_after.to_owned();
    TestServer::start(move |_| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(429).with_header("retry-after", retry_after.clone())
        } else {
            Reply::json(200, "{}")
        }
    })
}

/// A concurrency four times what the host takes costs one wave of
/// refusals, not one per request (before the governor, each 429 paused
/// the host and released everyone at once into the next wave), and loses
/// nothing.
#[test]
fn a_host_at_capacity_gets_its_capacity_and_loses_nothing() {
    let (server, refused) = at_capacity(4, Duration::from_millis(20));
    let fetcher = crate::quick()
        .concurrency(16)
        .max_retries(10)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..200).map(|i| server.url(&format!("/{i}"))).collect();
    let results = fetcher.fetch_many_bytes(&urls);
    assert_every_result_is_the_document(&results);
    let refused = refused.load(Ordering::SeqCst);
    // The first round: 16 sent, 4 served, 12 refused; then the limit is 4.
    assert!((1..=24).contains(&refused), "{refused} refusals");
    let stats = fetcher.stats();
    let host = &stats.hosts[0];
    assert_eq!(host.throttled, refused);
    assert_eq!(host.highest_limit, 16);
    assert!(host.limit <= 4, "{host:?}");
}

/// `adaptive_concurrency` starts low and finds what the host takes, up to
/// the concurrency: against a host of capacity 4, it ends at about 4, with
/// few refusals, and loses nothing.
#[test]
fn an_adaptive_limit_finds_the_capacity() {
    let (server, refused) = at_capacity(4, Duration::from_millis(10));
    let fetcher = crate::quick()
        .concurrency(64)
        .adaptive_concurrency(true)
        .max_retries(10)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..300).map(|i| server.url(&format!("/{i}"))).collect();
    let results = fetcher.fetch_many_bytes(&urls);
    assert!(results
        .iter()
        .all(|r| r.as_deref().ok() == Some(&b"{}"[..])));
    let stats = fetcher.stats();
    let host = &stats.hosts[0];
    assert!(host.limit <= 4 && host.limit >= 1, "{host:?}");
    assert_eq!(host.highest_limit, 32, "it started at 32, not 64: {host:?}");
    // The first wave refuses 28; a probe of the level now and then adds
    // one each; a loaded machine's late answers a few more (51 seen, with
    // a load of 6 on 2 cores). Without the controller it is hundreds.
    let refused = refused.load(Ordering::SeqCst);
    assert!(refused <= 80, "{refused} refusals");
}

/// A host that refuses a request sent alone asked for the whole host to
/// wait: nothing reaches it until the pause is over, and then the requests
/// set aside resume one at a time, climbing, not all at once.
#[test]
fn after_a_pause_requests_resume_at_the_hosts_limit() {
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let server = TestServer::start({
        let arrivals = Arc::clone(&arrivals);
        move |_| {
            let n = {
                let mut arrivals = arrivals.lock().unwrap();
                arrivals.push(Instant::now());
                arrivals.len()
            };
            if n == 1 {
                Reply::status(429).with_header("retry-after", "1")
            } else {
                Reply::Delay(Duration::from_millis(100), Box::new(Reply::json(200, "{}")))
            }
        }
    });
    let fetcher = crate::quick().concurrency(16).build().unwrap();
    // The first request alone, and refused: the host is paused for 1 s.
    fetcher.get_bytes(server.url("/first")).unwrap();
    let paused_at = arrivals.lock().unwrap()[0];
    assert_eq!(
        arrivals.lock().unwrap().len(),
        2,
        "the first, and its retry"
    );
    let urls: Vec<String> = (0..20).map(|i| server.url(&format!("/{i}"))).collect();
    let results = fetcher.fetch_many_bytes(&urls);
    assert!(results.iter().all(Result::is_ok));
    let arrivals = arrivals.lock().unwrap();
    // The retry waited out the whole pause.
    assert!(arrivals[1] >= paused_at + Duration::from_secs(1));
    // The batch came after it at the limit the pause left: one at a time,
    // and one more for the retry's good answer (slow start), so within the
    // first answer's 100 ms two requests, not twenty.
    let batch_start = arrivals[2];
    let first_round = arrivals[2..]
        .iter()
        .filter(|t| **t < batch_start + Duration::from_millis(50))
        .count();
    assert_eq!(first_round, 2, "requests resumed all at once");
}

/// During an outage, retries are a share of the host's recent requests
/// (20%, and 10 per second): a dead host is not sent four times its load.
/// Its breaker is off here, to see the budget alone (with it, the breaker
/// holds the requests and the budget hardly comes into play).
#[test]
fn retries_during_an_outage_stay_within_the_budget() {
    let server = TestServer::start(|_| Reply::status(503));
    let fetcher = crate::quick()
        .concurrency(8)
        .breaker_threshold(0)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..300).map(|i| server.url(&format!("/{i}"))).collect();
    let results = fetcher.fetch_many_bytes(&urls);
    for result in &results {
        let error = result.as_ref().unwrap_err();
        assert_eq!(
            (error.kind(), error.status()),
            (ErrorKind::Status, Some(503))
        );
        assert!((1..=4).contains(&error.attempts()), "{error:?}");
    }
    // 300 first attempts; retries at most 100 (the floor over 10 s) and a
    // fifth of 300. Without the budget: 900 more.
    let sent = server.requests();
    assert!(sent <= 300 + 100 + 60, "{sent} requests for 300 URLs");
    let stats = fetcher.stats();
    assert!(stats.hosts[0].retries_refused > 0, "{stats:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever a host answers (refusals with waits of up to 5 s, 503s,
    /// successes), no request of a batch waits past the batch's deadline:
    /// each ends, by then, with its result or `DeadlineExceeded`.
    #[test]
    fn no_request_waits_past_its_deadline(
        script in prop::collection::vec(0..4u8, 1..30),
        concurrency in 1..8usize,
    ) {
        let script = Arc::new(script);
        let server = TestServer::start({
            let script = Arc::clone(&script);
            let seen = Arc::new(AtomicU64::new(0));
            move |_| {
                let n = usize::try_from(seen.fetch_add(1, Ordering::SeqCst)).unwrap_or(0);
                match script[n % script.len()] {
                    0 => Reply::status(429).with_header("retry-after", "5"),
                    1 => Reply::status(503).with_header("retry-after", "1"),
                    2 => Reply::status(503),
                    _ => Reply::json(200, "{}"),
                }
            }
        });
        let fetcher = crate::quick()
            .concurrency(concurrency)
            .initial_backoff(Duration::from_millis(300))
            .max_backoff(Duration::from_secs(3))
            .build()
            .unwrap();
        let deadline = Duration::from_millis(400);
        let urls: Vec<Request> = (0..10).map(|i| Request::get(server.url(&format!("/{i}")))).collect();
        let started = Instant::now();
        let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
        fetcher.batch(urls).deadline(deadline).for_each_bytes(|_, result| {
            let kind = result.err().map_or("ok".to_owned(), |e| format!("{:?}", e.kind()));
            *kinds.entry(kind).or_default() += 1;
        });
        let elapsed = started.elapsed();
        prop_assert_eq!(kinds.values().sum::<usize>(), 10);
        // 4x the deadline: every wait the batch would start past it ends at
        // once, and a wait is cut at the deadline.
        prop_assert!(elapsed < deadline * 4, "{:?} {:?}", elapsed, kinds);
    }
}

// The tests below come from an adversarial review of the governor (issue 22).

/// A server that serves everything (`work` each) once `healthy`, and until
/// then answers `429` with `Retry-After: 1`; it notes when each request it
/// served arrived.
struct Switchable {
    server: TestServer,
    healthy: Arc<std::sync::atomic::AtomicBool>,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

fn switchable(work: Duration) -> Switchable {
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let server = TestServer::start({
        let healthy = Arc::clone(&healthy);
        let arrivals = Arc::clone(&arrivals);
        move |_| {
            if !healthy.load(Ordering::SeqCst) {
                return Reply::status(429).with_header("retry-after", "1");
            }
            arrivals.lock().unwrap().push(Instant::now());
            std::thread::sleep(work);
            Reply::json(200, "{}")
        }
    });
    Switchable {
        server,
        healthy,
        arrivals,
    }
}

/// A host that refuses everything for 2 s (quota exhausted), then serves
/// again, gets its full speed back soon after: nothing is lost, and the
/// limit does not stay at 1 for the 10 s a refused level is held.
#[test]
fn a_host_that_refused_everything_for_a_while_gets_its_speed_back() {
    let s = switchable(Duration::from_millis(20));
    let fetcher = crate::quick()
        .concurrency(16)
        .max_retries(20)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..800).map(|i| s.server.url(&format!("/{i}"))).collect();
    let healthy = Arc::clone(&s.healthy);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(2));
        healthy.store(true, Ordering::SeqCst);
    });
    let results = fetcher.fetch_many_bytes(&urls);
    assert_every_result_is_the_document(&results);
    let arrivals = s.arrivals.lock().unwrap();
    let first = arrivals[0];
    // At 16 in flight, 20 ms each, 3 s holds 2,400; at 1 in flight, 150.
    let soon = arrivals
        .iter()
        .filter(|t| **t < first + Duration::from_secs(3))
        .count();
    assert!(
        soon >= 300,
        "{soon} of 800 served in the 3 s after recovery"
    );
}

/// A server whose capacity falls from 16 to 4 for a second and comes back
/// to 16 is used at 16 again soon after (not after the 10 s hold).
#[test]
fn a_capacity_that_comes_back_is_used_again() {
    let capacity = Arc::new(AtomicU64::new(16));
    let active = Arc::new(AtomicU64::new(0));
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let server = TestServer::start({
        let capacity = Arc::clone(&capacity);
        let arrivals = Arc::clone(&arrivals);
        move |_| {
            if active.fetch_add(1, Ordering::SeqCst) >= capacity.load(Ordering::SeqCst) {
                active.fetch_sub(1, Ordering::SeqCst);
                return Reply::status(429).with_header("retry-after", "1");
            }
            arrivals.lock().unwrap().push(Instant::now());
            std::thread::sleep(Duration::from_millis(20));
            active.fetch_sub(1, Ordering::SeqCst);
            Reply::json(200, "{}")
        }
    });
    let fetcher = crate::quick()
        .concurrency(16)
        .max_retries(20)
        .build()
        .unwrap();
    let back = Arc::new(Mutex::new(None::<Instant>));
    {
        let capacity = Arc::clone(&capacity);
        let back = Arc::clone(&back);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            capacity.store(4, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(1));
            capacity.store(16, Ordering::SeqCst);
            *back.lock().unwrap() = Some(Instant::now());
        });
    }
    let urls: Vec<String> = (0..2000).map(|i| server.url(&format!("/{i}"))).collect();
    let results = fetcher.fetch_many_bytes(&urls);
    assert_every_result_is_the_document(&results);
    let back = back
        .lock()
        .unwrap()
        .expect("the capacity came back during the batch");
    let arrivals = arrivals.lock().unwrap();
    // From 1 s after the capacity is back, 3 s: 2,400 at 16, 450 at 3.
    let window = arrivals
        .iter()
        .filter(|t| **t >= back + Duration::from_secs(1) && **t < back + Duration::from_secs(4))
        .count();
    let left = arrivals
        .iter()
        .filter(|t| **t >= back + Duration::from_secs(1))
        .count();
    assert!(
        window >= left.min(1200),
        "{window} served in 3 s at capacity 16 ({left} left)"
    );
}

/// Retry-After values a server may send that are not a plain wait: each
/// is a wait of at most a second (0, a date in the past, or ignored and
/// replaced by the backoff), the request is retried and succeeds.
#[test]
fn odd_retry_after_values_are_retried_soon() {
    for value in [
        "0",
        "-1",
        "1.5",
        "",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "99999999999999999999999",
    ] {
        let server = refusing_the_first(value);
        let fetcher = crate::quick().build().unwrap();
        let started = Instant::now();
        let result = fetcher.get_bytes(server.url("/x"));
        assert_eq!(result.as_deref().ok(), Some(&b"{}"[..]), "{value:?}");
        assert_eq!(server.requests(), 2, "{value:?}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{value:?}: {:?}",
            started.elapsed()
        );
    }
}

/// A Retry-After past max_retry_after ends the request at once (its
/// `retry_after()` says how long); the next request to the host is not
/// made to wait out max_retry_after (5 minutes) unseen, it ends at once
/// too, or is sent.
#[test]
fn a_retry_after_past_the_longest_does_not_stall_the_next_request() {
    let server = refusing_the_first("3600");
    let fetcher = Arc::new(crate::quick().build().unwrap());
    let error = fetcher.get_bytes(server.url("/first")).unwrap_err();
    assert_eq!(
        (error.kind(), error.status(), error.attempts()),
        (ErrorKind::Status, Some(429), 1)
    );
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3600)));
    let url = server.url("/second");
    let second = crate::support::within(Duration::from_secs(10), {
        let fetcher = Arc::clone(&fetcher);
        move || {
            fetcher
                .get_bytes(url)
                .map_err(|e| (e.kind(), e.retry_after()))
        }
    });
    assert!(second.is_some(), "the next request waited past 10 s");
}

/// One request at a time to the host, and the only one refused: it waits
/// its Retry-After, and the rest go on after it; nothing lost.
#[test]
fn one_at_a_time_a_refusal_costs_its_wait_only() {
    let server = refusing_the_first("1");
    let fetcher = crate::quick()
        .concurrency(1)
        .max_per_host(1)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..20).map(|i| server.url(&format!("/{i}"))).collect();
    let started = Instant::now();
    let results = fetcher.fetch_many_bytes(&urls);
    assert_every_result_is_the_document(&results);
    assert_eq!(server.requests(), 21);
    // One pause of 1 s; not one per request.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Cancelling a batch whose requests are set aside for a host's long pause
/// ends them at once, `Cancelled`, not after the pause.
#[test]
fn cancelling_ends_requests_set_aside_for_a_pause() {
    let server = TestServer::start(|_| Reply::status(429).with_header("retry-after", "60"));
    let fetcher = crate::quick().concurrency(4).build().unwrap();
    // A request sent alone and refused: the host is paused for 60 s (the
    // request itself ends at the deadline of its batch of one).
    let mut first = 0;
    fetcher
        .batch(vec![Request::get(server.url("/alone"))])
        .deadline(Duration::from_millis(300))
        .for_each_bytes(|_, _| first += 1);
    assert_eq!((first, server.requests()), (1, 1));
    let token = parfetch::CancelToken::new();
    let urls: Vec<Request> = (0..20)
        .map(|i| Request::get(server.url(&format!("/{i}"))))
        .collect();
    {
        let token = token.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            token.cancel();
        });
    }
    let started = Instant::now();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    fetcher
        .batch(urls)
        .cancel_token(token)
        .for_each_bytes(|_, result| {
            let kind = result
                .err()
                .map_or("ok".to_owned(), |e| format!("{:?}", e.kind()));
            *kinds.entry(kind).or_default() += 1;
        });
    let elapsed = started.elapsed();
    assert_eq!(kinds.values().sum::<usize>(), 20, "{kinds:?}");
    assert!(
        kinds.get("Cancelled").copied().unwrap_or(0) >= 1,
        "{kinds:?}"
    );
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?} {kinds:?}");
}

/// Many hosts, one of them hanging (each request to it stalls until the
/// timeout): the healthy hosts' requests are not kept waiting behind it.
/// Its requests end each with its own cause (a timeout, or the breaker's).
#[test]
fn a_hanging_host_does_not_hold_up_the_others() {
    let healthy: Vec<TestServer> = (0..4)
        .map(|_| {
            TestServer::start(|_| {
                Reply::Delay(Duration::from_millis(20), Box::new(Reply::json(200, "{}")))
            })
        })
        .collect();
    let down = TestServer::start(|_| Reply::Stall(Duration::from_secs(60)));
    let fetcher = crate::quick()
        .concurrency(8)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let mut urls = Vec::new();
    for i in 0..100 {
        urls.push(down.url(&format!("/{i}")));
        for server in &healthy {
            urls.push(server.url(&format!("/{i}")));
        }
    }
    let done_healthy: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let started = Instant::now();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    fetcher
        .batch(urls.iter().map(|u| Request::get(u.as_str())))
        .for_each_bytes(|i, result| {
            if i % 5 == 0 {
                let kind = result
                    .err()
                    .map_or("ok".to_owned(), |e| format!("{:?}", e.kind()));
                *kinds.entry(kind).or_default() += 1;
            } else {
                assert_eq!(result.as_deref().ok(), Some(&b"{}"[..]), "request {i}");
                done_healthy.lock().unwrap().push(Instant::now());
            }
        });
    let done = done_healthy.lock().unwrap();
    assert_eq!(done.len(), 400);
    let last = done.iter().max().unwrap().duration_since(started);
    // 400 × 20 ms over 8 threads is 1 s, and the first wave of timeouts 1 s
    // more; 100 requests to the hanging host one after another on the
    // threads would be 12 s.
    assert!(
        last < Duration::from_secs(8),
        "healthy hosts done after {last:?}"
    );
    assert_eq!(kinds.values().sum::<usize>(), 100, "{kinds:?}");
    assert_eq!(kinds.get("ok"), None, "{kinds:?}");
}

/// A 503 storm with no retries: every request ends with its 503 (or, if
/// the breaker held it unsent, `CircuitOpen`), soon; none hangs.
// With both cores busy (.ci/run), 128 requests set aside for room when the
// breaker opened at its longest waited from probe to probe, a minute
// apart: they now learn their patience when the breaker holds them.
#[test]
fn a_503_storm_without_retries_ends_every_request() {
    let server = TestServer::start(|_| Reply::status(503).with_header("retry-after", "1"));
    let fetcher = crate::quick()
        .concurrency(8)
        .max_retries(0)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..300).map(|i| server.url(&format!("/{i}"))).collect();
    let started = Instant::now();
    let results = fetcher.fetch_many_bytes(&urls);
    let elapsed = started.elapsed();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for result in &results {
        let error = result.as_ref().unwrap_err();
        *kinds
            .entry(format!("{:?} {:?}", error.kind(), error.status()))
            .or_default() += 1;
        assert!(error.attempts() <= 1, "{error:?}");
    }
    let allowed = ["Status Some(503)", "CircuitOpen None"];
    assert!(
        kinds.keys().all(|k| allowed.contains(&k.as_str())),
        "{kinds:?}"
    );
    assert!(kinds.contains_key("Status Some(503)"), "{kinds:?}");
    // Held requests wait at most 3 s (their least patience) per opening.
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?} {kinds:?}");
}

/// A host that serves slowly (200 ms) but refuses fast: an adaptive limit
/// does not read the fast refusals as an unloaded time and the slow
/// answers as a queue; against a capacity of 8 it stays near 8, not 1.
#[test]
fn slow_answers_and_fast_refusals_keep_an_adaptive_limit_near_the_capacity() {
    let active = Arc::new(AtomicU64::new(0));
    let server = TestServer::start(move |_| {
        if active.fetch_add(1, Ordering::SeqCst) >= 8 {
            active.fetch_sub(1, Ordering::SeqCst);
            return Reply::status(429);
        }
        std::thread::sleep(Duration::from_millis(200));
        active.fetch_sub(1, Ordering::SeqCst);
        Reply::json(200, "{}")
    });
    let fetcher = crate::quick()
        .concurrency(32)
        .adaptive_concurrency(true)
        .max_retries(30)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..200).map(|i| server.url(&format!("/{i}"))).collect();
    let results = fetcher.fetch_many_bytes(&urls);
    assert_every_result_is_the_document(&results);
    let stats = fetcher.stats();
    let host = &stats.hosts[0];
    assert!(host.limit >= 2, "{host:?}");
}

/// A host that asks every request to come back in 10 s, with many requests
/// in the batch, does not stop the batch's other host: its requests wait
/// set aside while the other host's go on at full speed.
#[test]
fn many_requests_waiting_for_one_host_do_not_stop_the_others() {
    let refusing = TestServer::start(|_| Reply::status(429).with_header("retry-after", "10"));
    let healthy = TestServer::start(|_| Reply::json(200, "{}"));
    let fetcher = crate::quick()
        .concurrency(8)
        .max_retries(1)
        .build()
        .unwrap();
    let mut urls = Vec::new();
    for i in 0..1500 {
        urls.push(refusing.url(&format!("/{i}")));
        urls.push(healthy.url(&format!("/{i}")));
    }
    let started = Instant::now();
    let healthy_done: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let mut refused = 0;
    fetcher
        .batch(urls.iter().map(|u| Request::get(u.as_str())))
        .deadline(Duration::from_secs(25))
        .for_each_bytes(|i, result| {
            if i % 2 == 0 {
                let error = result.unwrap_err();
                assert!(
                    error.status() == Some(429) || error.kind() == ErrorKind::DeadlineExceeded,
                    "{error:?}"
                );
                refused += 1;
            } else {
                assert_eq!(result.as_deref().ok(), Some(&b"{}"[..]), "request {i}");
                healthy_done.lock().unwrap().push(started.elapsed());
            }
        });
    assert_eq!(refused, 1500);
    let done = healthy_done.lock().unwrap();
    assert_eq!(done.len(), 1500);
    let last = done.iter().max().copied().unwrap();
    // 1,500 loopback requests over 8 threads take well under a second.
    assert!(
        last < Duration::from_secs(5),
        "the healthy host's last after {last:?}"
    );
}

/// A host that refuses every request with `Retry-After: 1` (out of quota):
/// each request ends within about what its retries allow (2 attempts, a
/// second apart, and the 3 s a held request waits at least), not after
/// the host has been probed once a second for each request before it.
#[test]
fn a_host_out_of_quota_ends_its_requests_within_their_retries() {
    let server = TestServer::start(|_| Reply::status(429).with_header("retry-after", "1"));
    let fetcher = crate::quick()
        .concurrency(4)
        .max_retries(1)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..60).map(|i| server.url(&format!("/{i}"))).collect();
    let started = Instant::now();
    let outcome = crate::support::within(Duration::from_secs(120), move || {
        let results = fetcher.fetch_many_bytes(&urls);
        results
            .iter()
            .map(|r| r.as_ref().err().map(|e| (e.kind(), e.status())))
            .collect::<Vec<_>>()
    })
    .expect("the batch ended within 120 s");
    let elapsed = started.elapsed();
    assert_eq!(outcome.len(), 60);
    for (i, outcome) in outcome.iter().enumerate() {
        assert!(
            matches!(
                outcome,
                Some((ErrorKind::Status, Some(429)) | (ErrorKind::CircuitOpen, _))
            ),
            "request {i}: {outcome:?}"
        );
    }
    // 2 attempts 1 s apart, and 3 s of patience: 15 s is 3x that.
    assert!(
        elapsed < Duration::from_secs(15),
        "{elapsed:?} for 60 requests"
    );
}

/// A request held by its host's pause goes at the end of its patience (3 s
/// here) and gets its own answer, also when the pause (60 s) lasts past
/// the batch's deadline (20 s): the deadline ends only a wait that would
/// pass it, and this one ends at the patience.
// From the adversarial review of issue 22 (second round).
#[test]
fn a_pause_past_the_deadline_lets_requests_go_at_their_patience() {
    let server = refusing_the_first("60");
    let fetcher = crate::quick()
        .concurrency(4)
        .max_retries(0)
        .build()
        .unwrap();
    // Sent alone and refused: the host is paused for 60 s.
    let first = fetcher.get_bytes(server.url("/alone")).unwrap_err();
    assert_eq!((first.status(), first.attempts()), (Some(429), 1));
    let urls: Vec<Request> = (0..4)
        .map(|i| Request::get(server.url(&format!("/{i}"))))
        .collect();
    let started = Instant::now();
    let mut results = Vec::new();
    fetcher
        .batch(urls)
        .deadline(Duration::from_secs(20))
        .for_each_bytes(|i, result| {
            results.push((i, result.map_err(|e| (e.kind(), e.attempts()))));
        });
    let elapsed = started.elapsed();
    assert_eq!(results.len(), 4);
    for (i, result) in &results {
        assert_eq!(
            result.as_deref().ok(),
            Some(&b"{}"[..]),
            "request {i}: {result:?}"
        );
    }
    assert_eq!(server.requests(), 5);
    // Each waited its patience (3 s), then went: 15 s is 5x that.
    assert!(elapsed < Duration::from_secs(15), "{elapsed:?}");
}
