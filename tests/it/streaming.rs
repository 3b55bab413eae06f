//! Batches: completion order, bounded look-ahead, progress, callbacks on
//! the calling thread, deadline, cancellation, per-host rate and
//! concurrency limits, the 429 host gate.

use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use parfetch::{CancelToken, ErrorKind, Progress, Request};

use crate::server::{Reply, TestServer};
use crate::support::{scripted, wait_until, within};

fn index_of(path: &str) -> usize {
    path.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Serves `{"index": i}` at `/i`, the lower indexes more slowly.
fn slow_first_server(count: usize) -> TestServer {
    TestServer::start(move |request| {
        let index = index_of(&request.path);
        let delay = Duration::from_millis(10 * (count - index.min(count)) as u64);
        Reply::Delay(
            delay,
            Box::new(Reply::json(200, format!(r#"{{"index":{index}}}"#))),
        )
    })
}

#[test]
fn for_each_hands_over_in_completion_order_and_collect_in_input_order() {
    let server = slow_first_server(8);
    let fetcher = crate::quick().concurrency(8).build().unwrap();
    let urls: Vec<String> = (0..8).map(|i| server.url(&format!("/{i}"))).collect();

    let mut order = Vec::new();
    let stats = fetcher
        .batch(&urls)
        .for_each::<parfetch::Value>(|index, result| {
            assert_eq!(result.unwrap()["index"], index as u64);
            order.push(index);
        });
    assert_eq!(order.len(), 8);
    assert_ne!(
        order,
        (0..8).collect::<Vec<_>>(),
        "the slowest (index 0) came first"
    );
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..8).collect::<Vec<_>>(), "each index once");
    assert_eq!((stats.stats.requests, stats.stats.successes), (8, 8));

    let (collected, _) = fetcher.batch(&urls).collect::<parfetch::Value>();
    for (i, result) in collected.into_iter().enumerate() {
        assert_eq!(result.unwrap()["index"], i as u64);
    }
}

#[test]
fn a_lazy_batch_of_200_000_is_pulled_only_as_workers_free_up() {
    const COUNT: usize = 200_000;
    const CONCURRENCY: usize = 16;
    let server = TestServer::start(|_| Reply::json(200, "{}"));
    let fetcher = crate::quick().concurrency(CONCURRENCY).build().unwrap();
    let produced = AtomicUsize::new(0);
    let base = server.url("/");
    let requests = (0..COUNT).map(|i| {
        produced.fetch_add(1, Ordering::SeqCst);
        format!("{base}{i}")
    });
    let mut seen = vec![false; COUNT];
    let mut delivered = 0;
    let mut most_ahead = 0;
    let stats = fetcher.batch(requests).for_each_bytes(|index, result| {
        assert!(result.is_ok(), "{result:?}");
        assert!(!seen[index], "index {index} twice");
        seen[index] = true;
        delivered += 1;
        // Requests produced but not yet delivered: in flight or waiting in
        // the channel, never a growing backlog.
        most_ahead = most_ahead.max(produced.load(Ordering::SeqCst) - delivered);
    });
    assert_eq!(delivered, COUNT);
    assert!(seen.iter().all(|&s| s));
    assert_eq!(server.requests(), COUNT);
    assert!(
        most_ahead <= 2 * CONCURRENCY + 1,
        "{most_ahead} requests ahead of the consumer"
    );
    assert_eq!(stats.stats.requests, COUNT as u64);
    assert!(
        server.connections() <= CONCURRENCY + 2,
        "{}",
        server.connections()
    );
}

#[test]
fn progress_adds_up_to_the_batch() {
    let server = TestServer::start(|request| {
        if index_of(&request.path).is_multiple_of(5) {
            Reply::status(404)
        } else {
            Reply::Delay(
                Duration::from_millis(2),
                Box::new(Reply::json(200, "[1,2,3]")),
            )
        }
    });
    let fetcher = crate::quick().concurrency(4).build().unwrap();
    let urls: Vec<String> = (0..200).map(|i| server.url(&format!("/{i}"))).collect();
    let mut reports: Vec<Progress> = Vec::new();
    let (results, _) = fetcher
        .batch(&urls)
        .on_progress(|progress| reports.push(*progress))
        .collect::<Vec<u32>>();
    assert_eq!(results.len(), 200);
    let last = reports.last().expect("a final report");
    assert_eq!(
        (last.requests, last.total, last.successes, last.failures),
        (200, Some(200), 160, 40)
    );
    assert_eq!(last.bytes_received, 160 * 7);
    assert!(reports.windows(2).all(|w| w[0].requests <= w[1].requests));
    // A lazy iterator does not know its length: the caller tells it.
    let lazy = || urls.iter().filter(|url| !url.ends_with("/x"));
    let mut totals = Vec::new();
    fetcher
        .batch(lazy())
        .on_progress(|progress| totals.push(progress.total))
        .for_each_bytes(|_, _| {});
    assert!(
        !totals.is_empty() && totals.iter().all(Option::is_none),
        "{totals:?}"
    );
    let mut totals = Vec::new();
    fetcher
        .batch(lazy())
        .total(200)
        .on_progress(|progress| totals.push(progress.total))
        .for_each_bytes(|_, _| {});
    assert!(
        !totals.is_empty() && totals.iter().all(|t| *t == Some(200)),
        "{totals:?}"
    );
    // What `total` says, even when wrong (as documented), to the end; the
    // exact length of an iterator that knows it, over what `total` said
    // (from review 4 (issue 15)).
    let lazy = urls.iter().take(3).filter(|_| true);
    let mut last = None;
    fetcher
        .batch(lazy)
        .total(10)
        .on_progress(|p| last = Some(*p))
        .for_each_bytes(|_, _| {});
    let last = last.expect("a final report");
    assert_eq!((last.requests, last.total), (3, Some(10)));
    let mut last = None;
    fetcher
        .batch(&urls[..3])
        .total(10)
        .on_progress(|p| last = Some(*p))
        .for_each_bytes(|_, _| {});
    let last = last.expect("a final report");
    assert_eq!((last.requests, last.total), (3, Some(3)));
}

#[test]
fn a_panicking_callback_loses_no_results() {
    // 50 requests of 20 ms or more, four at a time: the batch lasts more
    // than 250 ms, so progress is reported more than once (every 100 ms,
    // and at the end).
    let server = TestServer::start(|_| {
        Reply::Delay(Duration::from_millis(20), Box::new(Reply::json(200, "{}")))
    });
    let fetcher = crate::quick().concurrency(4).build().unwrap();
    let urls: Vec<String> = (0..50).map(|i| server.url(&format!("/{i}"))).collect();
    let mut reports = 0;
    fetcher
        .batch(&urls)
        .on_progress(|_| reports += 1)
        .for_each_bytes(|_, _| {});
    assert!(reports >= 2, "{reports} progress reports");

    // A progress callback that panics is dropped, never called again; the
    // batch carries on.
    let mut calls = 0;
    let (results, _) = fetcher
        .batch(&urls)
        .on_progress(|_| {
            calls += 1;
            panic!("progress bug");
        })
        .collect::<parfetch::Value>();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 50);
    assert_eq!(calls, 1, "the panicking progress callback was called again");

    // A result callback that panics still gets every other result, and the
    // panic comes back once the batch is over.
    let mut delivered = 0;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        fetcher.batch(&urls).for_each_bytes(|index, _| {
            delivered += 1;
            assert!(index != 7, "result callback bug");
        })
    }));
    assert!(outcome.is_err(), "the panic was resumed");
    assert_eq!(delivered, 50);
}

/// Callbacks run on the calling thread (they need not be `Send`): the
/// result callback, the progress callback and the batch's own iterator,
/// while the requests run on the fetcher's workers.
#[test]
fn callbacks_run_on_the_calling_thread() {
    let server = TestServer::start(|_| {
        Reply::Delay(Duration::from_millis(20), Box::new(Reply::json(200, "{}")))
    });
    let fetcher = crate::quick().concurrency(4).build().unwrap();
    let urls: Vec<String> = (0..30).map(|i| server.url(&format!("/{i}"))).collect();
    let caller = std::thread::current().id();
    // Not Send: these callbacks could not run on another thread.
    let threads = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let seen = |callback: &'static str| {
        let threads = std::rc::Rc::clone(&threads);
        move || {
            threads
                .borrow_mut()
                .push((callback, std::thread::current().id()));
        }
    };
    let (on_result, on_progress) = (seen("for_each"), seen("on_progress"));
    fetcher
        .batch(&urls)
        .on_progress(|_| on_progress())
        .for_each_bytes(|_, result| {
            assert!(result.is_ok(), "{result:?}");
            on_result();
        });
    // The batch's iterator, not `Send`, stays on the calling thread too.
    let on_pull = seen("iterator");
    let requests = urls.iter().inspect(|_| on_pull());
    fetcher
        .batch(requests)
        .for_each::<parfetch::Value>(|_, result| assert!(result.is_ok(), "{result:?}"));
    let threads = threads.borrow();
    let count = |name: &str| threads.iter().filter(|(n, _)| *n == name).count();
    assert_eq!((count("for_each"), count("iterator")), (30, 30));
    assert!(count("on_progress") >= 1);
    let elsewhere: Vec<_> = threads.iter().filter(|(_, id)| *id != caller).collect();
    assert!(
        elsewhere.is_empty(),
        "called on other threads: {elsewhere:?}"
    );
}

#[test]
fn a_deadline_ends_a_batch_against_a_server_that_never_answers() {
    let server = TestServer::start(|_| Reply::Stall(Duration::from_secs(20)));
    let fetcher = crate::quick()
        .concurrency(4)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let urls: Vec<String> = (0..20).map(|i| server.url(&format!("/{i}"))).collect();
    let started = Instant::now();
    let (results, _) = fetcher
        .batch(&urls)
        .deadline(Duration::from_millis(300))
        .collect::<parfetch::Value>();
    // The stall is 20 s and the timeout 30 s: only the deadline ends this.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(results.len(), 20);
    for result in &results {
        let error = result.as_ref().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::DeadlineExceeded, "{error:?}");
        assert!(error.url().is_some());
    }
}

#[test]
fn cancel_ends_a_batch_and_marks_every_unfinished_request() {
    let server = Arc::new(TestServer::start(|_| Reply::Stall(Duration::from_secs(20))));
    let fetcher = crate::quick()
        .concurrency(4)
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let urls: Vec<String> = (0..40).map(|i| server.url(&format!("/{i}"))).collect();
    let token = CancelToken::new();
    // Cancelled once the first round is in flight (all four workers'
    // requests arrived), not at a guessed time.
    let canceller = {
        let (token, server) = (token.clone(), Arc::clone(&server));
        std::thread::spawn(move || {
            wait_until(Duration::from_secs(30), "four requests in flight", || {
                server.requests() >= 4
            });
            token.cancel();
        })
    };
    let started = Instant::now();
    let (results, _) = fetcher
        .batch(&urls)
        .cancel_token(token)
        .collect::<parfetch::Value>();
    canceller.join().unwrap();
    // In-flight attempts end within their 1 s timeout; no retry starts.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(results.len(), 40);
    for result in &results {
        assert_eq!(result.as_ref().unwrap_err().kind(), ErrorKind::Cancelled);
    }
    // Only the first round of requests ever reached the server.
    assert!(server.requests() <= 4, "{}", server.requests());
}

#[test]
fn a_cancel_cuts_a_retry_delay_short() {
    let server = Arc::new(TestServer::start(|_| Reply::status(503)));
    let fetcher = crate::quick()
        .initial_backoff(Duration::from_secs(30))
        .max_backoff(Duration::from_secs(30))
        .build()
        .unwrap();
    let token = CancelToken::new();
    // Cancelled once the first attempt has reached the server, and a
    // second after (its empty 503 is read in microseconds): inside the
    // 30 s delay, however slow the machine was to send it.
    let canceller = {
        let (token, server) = (token.clone(), Arc::clone(&server));
        std::thread::spawn(move || {
            wait_until(Duration::from_secs(30), "the first attempt", || {
                server.requests() >= 1
            });
            std::thread::sleep(Duration::from_secs(1));
            token.cancel();
        })
    };
    let started = Instant::now();
    let (results, _) = fetcher
        .batch([server.url("/")])
        .cancel_token(token)
        .collect::<parfetch::Value>();
    canceller.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let error = results[0].as_ref().unwrap_err();
    assert_eq!((error.kind(), error.attempts()), (ErrorKind::Cancelled, 1));
    let cause = std::error::Error::source(error).expect("the 503 as the cause");
    assert!(cause.to_string().contains("503"), "{cause}");
}

/// Arrival times of the requests a server saw, for the limit tests.
fn recording_server(
    reply: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> (TestServer, Arc<Mutex<Vec<Instant>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let server = TestServer::start({
        let arrivals = Arc::clone(&arrivals);
        move |_| {
            let mut arrivals = arrivals.lock().unwrap();
            arrivals.push(Instant::now());
            reply(arrivals.len())
        }
    });
    (server, arrivals)
}

#[test]
fn the_rate_limit_is_what_the_server_sees() {
    let (server, arrivals) = recording_server(|_| Reply::json(200, "{}"));
    let fetcher = crate::quick()
        .concurrency(8)
        .rate_limit(20)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..41).map(|i| server.url(&format!("/{i}"))).collect();
    let stats = fetcher
        .batch(&urls)
        .for_each_bytes(|_, result| assert!(result.is_ok()));
    let arrivals = arrivals.lock().unwrap();
    let span = *arrivals.last().unwrap() - arrivals[0];
    let rate = 40.0 / span.as_secs_f64();
    // Never faster than the limit (+10%); a busy machine may make it slower.
    assert!(rate <= 22.0, "{rate:.1} requests/s against a limit of 20");
    assert!(rate >= 10.0, "{rate:.1} requests/s");
    assert!(stats.stats.gate_waits > 0);
}

#[test]
fn the_per_host_cap_bounds_requests_in_flight() {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start({
        let (in_flight, most) = (Arc::clone(&in_flight), Arc::clone(&most));
        move |_| {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(20));
            in_flight.fetch_sub(1, Ordering::SeqCst);
            Reply::json(200, "{}")
        }
    });
    let fetcher = crate::quick()
        .concurrency(8)
        .max_per_host(2)
        .build()
        .unwrap();
    let urls: Vec<String> = (0..24).map(|i| server.url(&format!("/{i}"))).collect();
    let (results, _) = fetcher.batch(&urls).collect::<parfetch::Value>();
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(most.load(Ordering::SeqCst), 2);
}

#[test]
fn a_429_with_retry_after_pauses_its_host_and_not_the_others() {
    // The request sent alone, `/first`, is the one refused (whichever
    // arrives first: on a loaded machine another may overtake it, and a
    // refusal of a request sent among others pauses nothing).
    let limited_arrivals = Arc::new(Mutex::new(Vec::new()));
    let refused = std::sync::atomic::AtomicBool::new(false);
    let limited = TestServer::start({
        let arrivals = Arc::clone(&limited_arrivals);
        move |request| {
            arrivals.lock().unwrap().push(Instant::now());
            if request.path == "/first" && !refused.swap(true, Ordering::SeqCst) {
                Reply::status(429).with_header("retry-after", "1")
            } else {
                Reply::json(200, "{}")
            }
        }
    });
    let (other, other_arrivals) = recording_server(|_| {
        Reply::Delay(Duration::from_millis(20), Box::new(Reply::json(200, "{}")))
    });
    let fetcher = crate::quick()
        .concurrency(4)
        .max_backoff(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut requests = vec![Request::get(limited.url("/first"))];
    // Enough for the other host to be busy past the pause (200 × 20 ms
    // over 4 threads: a second at least).
    for i in 0..200_usize {
        requests.push(Request::get(other.url(&format!("/{i}"))));
        if i.is_multiple_of(20) {
            requests.push(Request::get(limited.url(&format!("/{i}"))));
        }
    }
    let stats = fetcher
        .batch(requests)
        .for_each_bytes(|_, result| assert!(result.is_ok(), "{result:?}"));

    // Requests already sent when the 429 came back arrive just after it
    // (within 400 ms, however loaded the machine); after that, nothing
    // until the pause is over.
    let limited_arrivals = limited_arrivals.lock().unwrap();
    let paused_at = limited_arrivals[0];
    let window_start = paused_at + Duration::from_millis(400);
    let window_end = paused_at + Duration::from_millis(900);
    let in_window = |t: &&Instant| **t > window_start && **t < window_end;
    let during_pause = limited_arrivals.iter().filter(in_window).count();
    assert_eq!(during_pause, 0, "requests reached the paused host");
    assert!(
        limited_arrivals.iter().any(|&t| t >= window_end),
        "the paused host was served afterwards"
    );
    let served_meanwhile = other_arrivals
        .lock()
        .unwrap()
        .iter()
        .filter(in_window)
        .count();
    assert!(
        served_meanwhile >= 5,
        "the other host was served {served_meanwhile} times during the pause"
    );
    assert!(stats.stats.gate_waits >= 1);
    assert!(fetcher.stats().gate_wait_time >= Duration::from_millis(500));
}

#[test]
fn results_carry_the_status_attempts_and_time() {
    let seen = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start({
        let seen = Arc::clone(&seen);
        move |request| match request.path.as_str() {
            "/flaky" if seen.fetch_add(1, Ordering::SeqCst) == 0 => Reply::status(500),
            "/missing" => Reply::status(404),
            _ => Reply::json(201, "[1]"),
        }
    });
    let fetcher = crate::quick().concurrency(2).build().unwrap();
    let urls = [
        server.url("/flaky"),
        server.url("/missing"),
        server.url("/ok"),
    ];
    let mut results: Vec<_> = fetcher.batch(&urls).iter::<Vec<u32>>().collect();
    results.sort_by_key(|(index, _)| *index);
    let particulars: Vec<_> = results
        .iter()
        .map(|(_, result)| match result {
            Ok(response) => (
                response.url().to_owned(),
                true,
                Some(response.status()),
                response.attempts(),
                response.elapsed(),
            ),
            Err(error) => (
                error.url().unwrap_or_default().to_owned(),
                false,
                error.status(),
                error.attempts(),
                error.elapsed(),
            ),
        })
        .collect();
    let without_time: Vec<_> = particulars
        .iter()
        .map(|(url, ok, status, attempts, _)| (url.clone(), *ok, *status, *attempts))
        .collect();
    assert_eq!(
        without_time,
        [
            (urls[0].clone(), true, Some(201), 2),
            (urls[1].clone(), false, Some(404), 1),
            (urls[2].clone(), true, Some(201), 1),
        ]
    );
    assert!(particulars
        .iter()
        .all(|(.., elapsed)| *elapsed > Duration::ZERO));
}

// From review 1 (issue 12).
/// Failed before the fix: a cancel does not stop a body read that is blocked in the socket:
/// `Batch::cancel_token` says "waits and body reads stop", the README "after
/// ... a cancel ... waits end at once"; `CancellableReader`
/// (src/exchange.rs) checks the token only between reads, so a stalled body
/// holds the request (and the CLI's Ctrl-C) for the whole attempt timeout.
/// Here: timeout 20 s, cancel at 0.3 s, the batch ends only after ~20 s.
/// Fix: while a batch has a cancel token, let `Timed::await_input`
/// (src/agent.rs) wait in short slices (say 100 ms) and check the token (a
/// thread-local set by the attempt) between them, or shut the socket down
/// on cancel.
#[test]
fn cancel_during_a_stalled_body_ends_soon() {
    let (stalled, stalls) = std::sync::mpsc::channel();
    let stalled = Mutex::new(stalled);
    let base = scripted(move |stream, _| {
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n[1,");
        let _ = stalled.lock().unwrap().send(());
        std::thread::sleep(Duration::from_secs(60));
    });
    let fetcher = crate::quick()
        .timeout(Duration::from_secs(20))
        .max_retries(0)
        .build()
        .unwrap();
    let token = CancelToken::new();
    // Cancelled once the server has sent the start and stalls: the read
    // that waits for the rest is blocked in the socket.
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            stalls
                .recv_timeout(Duration::from_secs(30))
                .expect("the server never answered");
            token.cancel();
            Instant::now()
        })
    };
    let outcome = within(Duration::from_secs(40), move || {
        let mut kinds = Vec::new();
        fetcher
            .batch([base + "/"])
            .cancel_token(token)
            .for_each_bytes(|_, result| kinds.push(result.map(|_| ()).map_err(|e| e.kind())));
        kinds
    });
    let cancelled_at = canceller.join().unwrap();
    let kinds = outcome.expect("the cancelled batch never ended");
    let elapsed = cancelled_at.elapsed();
    assert_eq!(kinds, [Err(ErrorKind::Cancelled)]);
    assert!(
        elapsed < Duration::from_secs(10),
        "ended {elapsed:?} after the cancel (timeout 20 s)"
    );
}

/// A document that counts how many of its kind are alive.
struct Counted;

static COUNTED_ALIVE: AtomicUsize = AtomicUsize::new(0);

impl<'de> serde::Deserialize<'de> for Counted {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        COUNTED_ALIVE.fetch_add(1, Ordering::SeqCst);
        Ok(Counted)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        COUNTED_ALIVE.fetch_sub(1, Ordering::SeqCst);
    }
}

#[test]
fn large_documents_parsed_and_not_yet_taken_are_no_more_than_the_cores() {
    // 2 MiB documents, 16 in flight, a caller slower than the workers: each
    // worker would parse its document and wait with it for the caller.
    let document = format!(r#"{{"pad":"{}"}}"#, "x".repeat(2 << 20));
    let server = TestServer::start(move |_| Reply::json(200, document.clone()));
    let fetcher = crate::quick().concurrency(16).build().unwrap();
    let urls: Vec<String> = (0..32).map(|i| server.url(&format!("/{i}"))).collect();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);

    let mut most_alive = 0;
    let mut ok = 0;
    for (_, result) in fetcher.batch(&urls).iter::<Counted>() {
        // The one just taken, and those parsed for the caller meanwhile.
        most_alive = most_alive.max(COUNTED_ALIVE.load(Ordering::SeqCst));
        ok += usize::from(result.is_ok());
        drop(result);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ok, 32);
    assert!(
        most_alive <= cores + 1,
        "{most_alive} large documents alive at once with {cores} cores"
    );
}

/// A server that counts the requests it has seen, each answered after
/// `delay(path)`.
fn counting_server(delay: fn(&str) -> Duration) -> (TestServer, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&seen);
    let server = TestServer::start(move |request| {
        counted.fetch_add(1, Ordering::SeqCst);
        Reply::Delay(delay(&request.path), Box::new(Reply::json(200, "{}")))
    });
    (server, seen)
}

/// Waits (as an iterator fed by a pipe may) until `seen` reaches `count`,
/// 5 s at most; `false` if it gave up.
fn wait_until_seen(seen: &AtomicUsize, count: usize) -> bool {
    let started = Instant::now();
    while seen.load(Ordering::SeqCst) < count {
        if started.elapsed() > Duration::from_secs(5) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

#[test]
fn a_request_goes_as_soon_as_the_batch_s_iterator_yields_it() {
    // From the adversarial review of the one-lock driver (issue 22): the
    // first requests waited until a whole handful was pulled.
    let (server, seen) = counting_server(|_| Duration::ZERO);
    let fetcher = crate::quick().concurrency(4).build().unwrap();
    // Its first URL, then the others once the server has seen it.
    let urls = (0..3).map(|i| {
        if i > 0 {
            wait_until_seen(&seen, 1);
        }
        server.url(&format!("/{i}"))
    });
    let started = Instant::now();
    let (results, _) = fetcher.batch(urls).collect::<parfetch::Value>();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the first request waited for the iterator's next: {:?}",
        started.elapsed()
    );
}

#[test]
fn a_request_goes_to_an_idle_worker_while_another_is_busy() {
    // From the adversarial review of the batch mailbox and parse slots (issue 23).
    // The first request keeps its worker busy.
    let (server, seen) =
        counting_server(|path| Duration::from_millis(if path == "/0" { 2000 } else { 0 }));
    let fetcher = crate::quick().concurrency(4).build().unwrap();
    // Each URL once the server has seen the one before: three workers
    // are idle when the second comes, asleep since before the first.
    let mut gave_up = 0;
    let urls = (0..3).map(|i| {
        if i == 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        gave_up += usize::from(!wait_until_seen(&seen, i));
        server.url(&format!("/{i}"))
    });
    let (results, _) = fetcher.batch(urls).collect::<parfetch::Value>();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert_eq!(gave_up, 0, "a request waited for the iterator's next one");
}

#[test]
fn a_request_pulled_while_the_workers_are_busy_goes_once_one_is_free() {
    // From the adversarial review of the batch mailbox and parse slots (issue 23).
    let (server, seen) = counting_server(|_| Duration::from_millis(300));
    let fetcher = crate::quick().concurrency(2).build().unwrap();
    // Three URLs at once, the third while both workers are busy; the
    // fourth only once the server has seen the third (as an iterator fed
    // by the batch's own results would).
    let mut gave_up = 0;
    let urls = (0..4).map(|i| {
        if i == 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        if i == 3 {
            gave_up += usize::from(!wait_until_seen(&seen, 3));
        }
        server.url(&format!("/{i}"))
    });
    let (results, _) = fetcher.batch(urls).collect::<parfetch::Value>();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
    assert_eq!(gave_up, 0, "a request waited for the iterator's next one");
}

/// A document whose `Deserialize` takes 2 s (as one that starts a nested
/// batch may).
struct Slow;

impl<'de> serde::Deserialize<'de> for Slow {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer)?;
        std::thread::sleep(Duration::from_secs(2));
        Ok(Slow)
    }
}

#[test]
fn the_batch_deadline_bounds_large_documents_waiting_to_be_parsed() {
    // From the adversarial review of the batch mailbox and parse slots (issue 23).
    let document = format!(r#"{{"pad":"{}"}}"#, "x".repeat(3 << 19));
    let server = TestServer::start(move |_| Reply::json(200, document.clone()));
    // Eight rounds of parse slots: 16 s one round after the other.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let fetcher = crate::quick().concurrency(8 * cores).build().unwrap();
    let urls: Vec<String> = (0..8 * cores)
        .map(|i| server.url(&format!("/{i}")))
        .collect();
    let started = Instant::now();
    let (results, _) = fetcher
        .batch(&urls)
        .deadline(Duration::from_millis(500))
        .collect::<Slow>();
    let elapsed = started.elapsed();
    let late = results
        .iter()
        .filter(|r| {
            r.as_ref()
                .is_err_and(|e| e.kind() == ErrorKind::DeadlineExceeded)
        })
        .count();
    assert_eq!(results.len(), urls.len());
    assert!(late > 0, "no request ended with the deadline");
    // The first round ends 2 s in; the rest end at the deadline.
    assert!(
        elapsed < Duration::from_secs(10),
        "the batch ended {elapsed:?} in, with a deadline of 500 ms"
    );
}

#[test]
fn a_request_s_own_deadline_bounds_its_wait_to_be_parsed() {
    // From issue 23 (the budget of body bytes in flight): a wait for a
    // parse slot heeded the batch's deadline, not the request's own.
    let document = format!(r#"{{"pad":"{}"}}"#, "x".repeat(3 << 19));
    let server = TestServer::start(move |_| Reply::json(200, document.clone()));
    // Eight rounds of parse slots: 16 s one round after the other.
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let fetcher = crate::quick()
        .concurrency(8 * cores)
        .total_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let urls: Vec<String> = (0..8 * cores)
        .map(|i| server.url(&format!("/{i}")))
        .collect();
    let started = Instant::now();
    let (results, _) = fetcher.batch(&urls).collect::<Slow>();
    let elapsed = started.elapsed();
    let late: Vec<&parfetch::Error> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| e.kind() == ErrorKind::DeadlineExceeded)
        .collect();
    assert_eq!(results.len(), urls.len());
    let first = late.first().expect("no request ended with its deadline");
    assert!(
        first
            .to_string()
            .contains("the request's deadline (500ms) passed"),
        "{first}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "the batch ended {elapsed:?} in, with requests of 500 ms"
    );
}
