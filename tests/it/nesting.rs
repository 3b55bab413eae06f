//! Batches nest: a callback, a `Deserialize` impl on a worker, a second
//! fetcher or a rayon `par_iter` may start another batch or `fetch_many`;
//! it finishes (never a deadlock or a stack overflow) and loses no result,
//! down to the nesting limit, where it is refused at once.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use parfetch::{ErrorKind, Fetcher, Value};

use crate::server::{Reply, TestServer};
use crate::support::within;

/// What the nested `Deserialize` impls below call: one fetcher and one URL
/// per test (set once, read by the impls).
static CROSS_A: OnceLock<(Fetcher, String)> = OnceLock::new();

/// Deserializing one calls `fetch_many` on fetcher A, on whatever thread
/// the parse runs: a worker of fetcher B here.
#[derive(Debug)]
struct CallsA;

impl<'de> serde::Deserialize<'de> for CallsA {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<CallsA, D::Error> {
        let _ = serde::de::IgnoredAny::deserialize(deserializer)?;
        let (fetcher, url) = CROSS_A.get().expect("set by the test");
        let inner = fetcher.fetch_many::<Value>([url.as_str()]);
        assert!(inner.iter().all(Result::is_ok), "{inner:?}");
        Ok(CallsA)
    }
}

// From review 1 (issue 12).
/// Failed before the fix (hung): nesting through two
/// fetchers deadlocks. A `for_each` callback of fetcher A's batch calls
/// `B.fetch_many::<CallsA>`, whose `Deserialize` (on B's worker) calls
/// `A.fetch_many`. B's worker is marked busy for B only, so A's inner
/// batch goes to A's level-0 pool, whose threads are all blocked sending
/// results to the outer batch's reader, which is waiting in the callback.
/// src/pools.rs `for_this_thread`: the level comes from the calling
/// thread's own BUSY list; a worker does not inherit the levels of the
/// thread whose batch it serves. Fix: have each batch task (and each
/// `fetch_many` task) push the caller's BUSY entries on the worker while it
/// runs (or key levels by a per-call chain), so that A's inner batch sees
/// (A, 0) and goes to level 1.
#[test]
fn nesting_through_two_fetchers_finishes() {
    let server = TestServer::start(|_| Reply::json(200, "1"));
    let a = crate::quick().concurrency(1).build().unwrap();
    let b = crate::quick().concurrency(1).build().unwrap();
    let _ = CROSS_A.set((a.clone(), server.url("/inner-a")));
    let urls: Vec<String> = (0..6).map(|i| server.url(&format!("/outer/{i}"))).collect();
    let b_url = server.url("/via-b");
    let outcome = within(Duration::from_secs(60), move || {
        let mut done = 0;
        a.batch(urls).for_each::<Value>(|_, result| {
            assert!(result.is_ok());
            let inner = b.fetch_many::<CallsA>([b_url.as_str()]);
            assert!(inner.iter().all(Result::is_ok), "{inner:?}");
            done += 1;
        });
        done
    });
    assert_eq!(outcome, Some(6), "nested batches across two fetchers hung");
}

static WORKER_NEST: OnceLock<(Fetcher, String)> = OnceLock::new();

/// Deserializing one runs a whole `fetch_many` on the same fetcher, from
/// the worker thread doing the parse.
#[derive(Debug)]
struct NestsOnWorker;

impl<'de> serde::Deserialize<'de> for NestsOnWorker {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<NestsOnWorker, D::Error> {
        let _ = serde::de::IgnoredAny::deserialize(deserializer)?;
        let (fetcher, url) = WORKER_NEST.get().expect("set by the test");
        let inner = fetcher.fetch_many::<Value>([url.as_str(), url.as_str()]);
        assert!(inner.iter().all(Result::is_ok), "{inner:?}");
        Ok(NestsOnWorker)
    }
}

// From review 1 (issue 12).
/// Held: a `Deserialize` impl on a worker starts a batch on the same
/// fetcher, for every one of 200 documents (rayon's work stealing while the
/// worker waits must not pile requests on its stack or hang).
#[test]
fn a_deserialize_impl_on_a_worker_may_start_a_batch() {
    let server = TestServer::start(|_| Reply::json(200, "1"));
    let fetcher = crate::quick().concurrency(2).build().unwrap();
    let _ = WORKER_NEST.set((fetcher.clone(), server.url("/inner")));
    let urls: Vec<String> = (0..200).map(|i| server.url(&format!("/o/{i}"))).collect();
    let outcome = within(Duration::from_secs(120), move || {
        let many = fetcher.fetch_many::<NestsOnWorker>(&urls);
        let (batch, _) = fetcher.batch(&urls).collect::<NestsOnWorker>();
        (
            many.iter().filter(|r| r.is_ok()).count(),
            batch.iter().filter(|r| r.is_ok()).count(),
        )
    });
    assert_eq!(outcome, Some((200, 200)));
}

// From review 1 (issue 12).
/// Failed before the fix: `fetcher.batch(chunk)` from a rayon `par_iter` on the global
/// pool (the caller never nests) has about a third of its requests refused
/// with "batches nested more than 8 deep". `Batch::run` marks the calling
/// thread busy at its level for the whole `in_place_scope`
/// (src/batch.rs, `let _busy = pool.enter()`); when the scope ends, rayon
/// makes the waiting thread (a global-pool worker) run other queued chunks,
/// whose batches then count as nested one level deeper, and so on up to the
/// limit. Fix: mark the thread busy only while it runs the caller's
/// callbacks (around `each(..)` and the progress callback), and do not let
/// a foreign rayon worker wait inside `in_place_scope` (see the next test).
#[test]
fn batches_from_a_rayon_par_iter_finish() {
    par_iter_over(|fetcher, chunk| fetcher.batch(chunk).collect::<Value>().0);
}

// From review 1 (issue 12).
/// Failed before the fix (the process aborted: stack overflow): `fetcher.fetch_many(chunk)`
/// from a rayon `par_iter` on the global pool. `run_batch` calls
/// `pool.install` (src/fetcher.rs); from a worker of another pool, rayon
/// waits for the job by running other queued jobs of that pool on the same
/// stack, each of them another chunk calling `fetch_many` and waiting the
/// same way: the recursion overflows the worker's stack and the whole
/// program aborts, every result lost. Fix: when the caller is a worker of
/// a foreign rayon pool (`rayon::current_thread_index().is_some()` and not
/// one of ours), hand the batch to our pool with `spawn` and block on a
/// std channel (no work stealing), or run the waiting part on a plain
/// thread. Runs in a child process, so that the abort fails this test only.
#[test]
fn fetch_many_from_a_rayon_par_iter_finishes() {
    if std::env::var_os("PARFETCH_ADVERSARIAL_PAR_ITER_CHILD").is_some() {
        par_iter_over(|fetcher, chunk| fetcher.fetch_many::<Value>(chunk));
        println!("CHILD FINISHED");
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "nesting::fetch_many_from_a_rayon_par_iter_finishes",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PARFETCH_ADVERSARIAL_PAR_ITER_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("CHILD FINISHED"),
        "the child died ({:?}): {}",
        output.status,
        stderr
            .lines()
            .filter(|l| !l.trim_start().starts_with(char::is_numeric)
                && !l.trim_start().starts_with("at "))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn par_iter_over(
    run: impl Fn(&Fetcher, &[String]) -> Vec<Result<Value, parfetch::Error>> + Send + Sync + 'static,
) {
    use rayon::prelude::*;
    let server = TestServer::start(|_| Reply::json(200, "1"));
    let fetcher = crate::quick().concurrency(2).build().unwrap();
    let urls: Vec<String> = (0..1200).map(|i| server.url(&format!("/{i}"))).collect();
    let outcome = within(Duration::from_secs(240), move || {
        urls.par_chunks(2)
            .flat_map_iter(|chunk| run(&fetcher, chunk))
            .filter_map(|r| r.err().map(|e| e.to_string()))
            .collect::<Vec<String>>()
    });
    let errors = outcome.expect("par_iter over batches hung");
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );
}

// From review 1 (issue 12).
/// Held: two threads nest batches on one fetcher (and its clone) at once.
#[test]
fn two_threads_nesting_at_once_finish() {
    let server = Arc::new(TestServer::start(|_| Reply::json(200, "1")));
    let fetcher = crate::quick().concurrency(2).build().unwrap();
    let outcome = within(Duration::from_secs(120), move || {
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let fetcher = fetcher.clone();
                let server = Arc::clone(&server);
                std::thread::spawn(move || {
                    let urls: Vec<String> =
                        (0..20).map(|i| server.url(&format!("/{t}/{i}"))).collect();
                    let mut ok = 0;
                    let clone = fetcher.clone();
                    fetcher.batch(&urls).for_each::<Value>(|i, _| {
                        let (inner, _) = clone.batch(&urls[..3]).collect::<Value>();
                        ok += inner.iter().filter(|r| r.is_ok()).count();
                        if i % 5 == 0 {
                            ok += clone.fetch_many::<Value>(&urls[..2]).len();
                        }
                    });
                    ok
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(outcome, Some(vec![68, 68]));
}

/// Nests `depth` batches from `for_each` callbacks; returns the kinds of
/// the innermost errors, if any.
fn nest(fetcher: &Fetcher, url: &str, depth: usize, errors: &mut Vec<ErrorKind>) {
    fetcher
        .batch([url])
        .for_each::<Value>(|_, result| match result {
            Err(error) => errors.push(error.kind()),
            Ok(_) if depth > 1 => nest(fetcher, url, depth - 1, errors),
            Ok(_) => {}
        });
}

// From review 1 (issue 12).
/// Held: nesting 8 deep works; the 9th level is refused at once with
/// `InvalidRequest`, never a hang.
#[test]
fn nesting_nine_deep_is_refused_not_hung() {
    let server = TestServer::start(|_| Reply::json(200, "1"));
    let fetcher = crate::quick().concurrency(1).build().unwrap();
    let url = server.url("/deep");
    let outcome = within(Duration::from_secs(60), move || {
        let mut eight = Vec::new();
        nest(&fetcher, &url, 8, &mut eight);
        let mut nine = Vec::new();
        nest(&fetcher, &url, 9, &mut nine);
        let refused_many = {
            // fetch_many at the 9th level too.
            let mut kinds = Vec::new();
            let f = fetcher.clone();
            let u = url.clone();
            fn deeper(f: &Fetcher, u: &str, depth: usize, kinds: &mut Vec<ErrorKind>) {
                if depth == 0 {
                    kinds.extend(
                        f.fetch_many::<Value>([u])
                            .into_iter()
                            .filter_map(|r| r.err().map(|e| e.kind())),
                    );
                    return;
                }
                f.batch([u])
                    .for_each::<Value>(|_, _| deeper(f, u, depth - 1, kinds));
            }
            deeper(&f, &u, 8, &mut kinds);
            kinds
        };
        (eight, nine, refused_many)
    });
    let (eight, nine, many) = outcome.expect("nesting hung");
    assert!(eight.is_empty(), "{eight:?}");
    assert_eq!(nine, vec![ErrorKind::InvalidRequest]);
    assert_eq!(many, vec![ErrorKind::InvalidRequest]);
}

// From review 1 (issue 12).
/// Failed before the fix (minor): in a batch refused for nesting too deep, a panicking
/// result callback loses the remaining results: the refusal branch of
/// `Batch::run` (src/batch.rs, `Err(reason) => { for (index, item) in
/// requests.enumerate() { ... each(index, ...) } }`) calls `each` without
/// the `catch_unwind` the normal path has, against the documented "If it
/// panics, the remaining results are still delivered, and the first panic
/// is resumed once the batch has ended". Fix: wrap that `each` the same way.
#[test]
fn a_refused_batch_still_delivers_every_result_after_a_callback_panic() {
    let server = TestServer::start(|_| Reply::json(200, "1"));
    let fetcher = crate::quick().concurrency(1).build().unwrap();
    let url = server.url("/deep");
    let outcome = within(Duration::from_secs(60), move || {
        fn deeper(f: &Fetcher, u: &str, depth: usize, seen: &mut usize) {
            if depth == 0 {
                let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    f.batch([u, u, u]).for_each::<Value>(|_, result| {
                        assert_eq!(result.unwrap_err().kind(), ErrorKind::InvalidRequest);
                        *seen += 1;
                        assert!(*seen != 1, "the caller's callback panics once");
                    });
                }));
                assert!(caught.is_err(), "the panic was resumed");
                return;
            }
            f.batch([u])
                .for_each::<Value>(|_, _| deeper(f, u, depth - 1, seen));
        }
        let mut seen = 0;
        deeper(&fetcher, &url, 8, &mut seen);
        seen
    });
    assert_eq!(outcome, Some(3), "results lost after the callback's panic");
}

// From the hardening (issue 12).
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
                    .0
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

// From the hardening (issue 12).
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

/// Two threads sharing one fetcher (it is `Clone + Send + Sync`) each run
/// a batch: the second finishes while the first's consumer is slow. A
/// batch's workers hold their pool's threads until their batch ends, and
/// the level was chosen per thread only, so the second batch queued behind
/// them on level 0: a 1-URL `fetch_many` waited as long as the other
/// thread held its iterator (over 10 s here).
// From the adversarial review of issue 26.
#[test]
fn a_batch_on_another_thread_is_not_held_up_by_a_slow_consumer() {
    let server = TestServer::start(|_| Reply::json(200, "{}"));
    let fetcher = crate::quick().concurrency(2).build().unwrap();
    let urls: Vec<String> = (0..50).map(|i| server.url(&format!("/a{i}"))).collect();
    let (held, is_held) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let slow = {
        let fetcher = fetcher.clone();
        std::thread::spawn(move || {
            let mut responses = fetcher.batch(urls).iter_bytes();
            let first = responses.next().map(|(_, result)| result.is_ok());
            held.send(()).unwrap();
            // The consumer is busy elsewhere (a slow database, say).
            let _ = released.recv_timeout(Duration::from_secs(60));
            (
                first,
                responses.filter(|(_, result)| result.is_ok()).count(),
            )
        })
    };
    is_held.recv().unwrap();
    let url = server.url("/b");
    let other = within(Duration::from_secs(10), move || {
        fetcher.fetch_many_bytes([url.as_str()]).remove(0).is_ok()
    });
    release.send(()).unwrap();
    assert_eq!(slow.join().unwrap(), (Some(true), 49));
    assert_eq!(other, Some(true), "the other thread's batch waited 10 s");
}
