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
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.as_deref().ok(), Some(&b"{}"[..]), "request {i}");
    }
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
    let refused = refused.load(Ordering::SeqCst);
    assert!(refused <= 40, "{refused} refusals");
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
    // The batch came after it at the limit the refusal left: one at a time
    // (the host refused a request sent alone), so within the first
    // answer's 100 ms, one request, not twenty.
    let batch_start = arrivals[2];
    let first_round = arrivals[2..]
        .iter()
        .filter(|t| **t < batch_start + Duration::from_millis(50))
        .count();
    assert_eq!(first_round, 1, "requests resumed all at once");
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
