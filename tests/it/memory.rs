//! What bounds a fetcher's memory: its budget of body bytes in flight
//! (`max_body_bytes_in_flight`), read or being read and not yet taken by
//! the caller. (How many large documents are parsed at once is in
//! streaming.rs.)

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parfetch::{CancelToken, ErrorKind, Fetcher, Request, Value};

use crate::quick;
use crate::support::{scripted, wait_until};

const MIB: usize = 1 << 20;

/// The longest any event here is waited for.
const PATIENCE: Duration = Duration::from_secs(30);

/// A server of JSON bodies of one size, with their `Content-Length` or
/// (`known` false) ended by the close. Every connection closes after its
/// response, so that no request reuses a socket whose buffers a former
/// one grew: a body nobody reads cannot then be written whole.
struct Bodies {
    base: String,
    /// Requests seen.
    asked: Arc<AtomicUsize>,
    /// Bodies written whole.
    written: Arc<AtomicUsize>,
}

impl Bodies {
    fn start(size: usize, known: bool) -> Bodies {
        // A JSON string: a document that parses.
        let mut body = vec![b'x'; size];
        body[0] = b'"';
        body[size - 1] = b'"';
        let body = Arc::new(body);
        let asked = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicUsize::new(0));
        let base = {
            let (asked, written) = (Arc::clone(&asked), Arc::clone(&written));
            scripted(move |stream, _head| {
                asked.fetch_add(1, Ordering::SeqCst);
                let length = if known {
                    format!("content-length: {size}\r\n")
                } else {
                    String::new()
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{length}\
                     connection: close\r\n\r\n"
                );
                let sent = stream
                    .write_all(head.as_bytes())
                    .and_then(|()| stream.write_all(&body))
                    .and_then(|()| stream.flush());
                if sent.is_ok() {
                    written.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        Bodies {
            base,
            asked,
            written,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn asked(&self) -> usize {
        self.asked.load(Ordering::SeqCst)
    }

    fn written(&self) -> usize {
        self.written.load(Ordering::SeqCst)
    }
}

/// A fetcher whose bodies in flight may take `budget` bytes, each attempt
/// 5 s, no retry: a wait for room that never ends fails the test quickly.
fn budgeted(budget: usize) -> Fetcher {
    quick()
        .timeout(Duration::from_secs(5))
        .max_retries(0)
        .max_body_bytes_in_flight(budget as u64)
        .build()
        .unwrap()
}

#[test]
fn a_response_without_content_takes_no_room() {
    let server = Bodies::start(2 * MIB, true);
    let fetcher = budgeted(2 * MIB);
    // A result read and not taken fills the budget.
    let mut results = fetcher.batch([server.url("/held")]).iter_bytes();
    wait_until(PATIENCE, "the body written", || server.written() == 1);
    // A HEAD's answer has no content, whatever its Content-Length says: it
    // does not wait for room it would not use. (From another thread: one
    // busy with the batch never waits for its results.)
    let head = {
        let (fetcher, url) = (fetcher.clone(), server.url("/head"));
        std::thread::spawn(move || fetcher.send_bytes(Request::head(url)))
    };
    let head = head.join().unwrap().unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.body().is_empty());
    let (_, taken) = results.next().expect("the held result");
    assert_eq!(taken.unwrap().body().len(), 2 * MIB);
}

/// Two bodies of `size` fill the budget and wait, read, for a caller who
/// does not take them; a third request, from another thread, gets its
/// response head but its body stays unread until one is taken.
fn a_third_body_waits_for_a_result_to_be_taken(size: usize, known: bool, budget: usize) {
    let server = Bodies::start(size, known);
    let fetcher = quick()
        .timeout(Duration::from_secs(60))
        .max_body_bytes_in_flight(budget as u64)
        .build()
        .unwrap();
    let mut results = fetcher
        .batch([server.url("/1"), server.url("/2")])
        .iter_bytes();
    wait_until(PATIENCE, "both bodies written", || server.written() == 2);
    // And read whole: while one is still being read (its last bytes in the
    // sockets' buffers), the third may rightly overdraw the budget.
    wait_until(PATIENCE, "both bodies read", || {
        fetcher.stats().bytes_received >= 2 * size as u64
    });
    let third = {
        let (fetcher, url) = (fetcher.clone(), server.url("/3"));
        std::thread::spawn(move || fetcher.get_bytes(url))
    };
    wait_until(PATIENCE, "the third request", || server.asked() == 3);
    // Not a bound on time: without a budget the body is read in
    // milliseconds; with it, never, until a result is taken.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        server.written(),
        2,
        "the third body was read while two results held the budget"
    );
    assert!(!third.is_finished());
    let (_, first) = results.next().expect("a first result");
    assert_eq!(first.unwrap().body().len(), size);
    let third = third.join().unwrap();
    assert_eq!(third.unwrap().len(), size);
    assert_eq!(server.written(), 3);
    let (_, second) = results.next().expect("a second result");
    assert_eq!(second.unwrap().body().len(), size);
    assert!(results.next().is_none());
}

#[test]
fn a_body_past_the_budget_is_not_read_until_a_result_is_taken() {
    a_third_body_waits_for_a_result_to_be_taken(16 * MIB, true, 32 * MIB);
}

#[test]
fn bodies_of_unknown_length_take_room_as_they_grow() {
    // Room for both and a little: the third takes that little and waits.
    a_third_body_waits_for_a_result_to_be_taken(32 * MIB, false, 68 * MIB);
}

#[test]
fn a_body_larger_than_the_whole_budget_is_still_fetched() {
    let fetcher = quick()
        .max_body_bytes_in_flight(MIB as u64)
        .build()
        .unwrap();
    for known in [true, false] {
        let server = Bodies::start(4 * MIB, known);
        let body = fetcher.get_bytes(server.url("/big")).unwrap();
        assert_eq!(body.len(), 4 * MIB, "known length: {known}");
    }
}

/// A batch of two bodies that each fill the budget of a fetcher with
/// `timeout`, the second made to wait (its caller does not take the first)
/// until `stop` ends it; `stop` runs once both were asked for. The results:
/// the one read, and the one stopped.
fn a_wait_for_room_stopped(
    timeout: Duration,
    batch: impl FnOnce(&Fetcher, [String; 2]) -> parfetch::Batch<'_, std::array::IntoIter<String, 2>>,
    stop: impl FnOnce(),
) -> (Vec<u8>, parfetch::Error) {
    let server = Bodies::start(2 * MIB, true);
    let fetcher = quick()
        .timeout(timeout)
        .max_retries(0)
        .max_body_bytes_in_flight(2 * MIB as u64)
        .build()
        .unwrap();
    let urls = [server.url("/1"), server.url("/2")];
    let mut results = batch(&fetcher, urls).iter_bytes();
    wait_until(PATIENCE, "both requests asked", || server.asked() == 2);
    stop();
    let (mut read, mut stopped) = (None, None);
    for (_, result) in &mut results {
        match result {
            Ok(response) => read = Some(response.into_body()),
            Err(error) => stopped = Some(error),
        }
    }
    (
        read.expect("the first body was read"),
        stopped.expect("the second request was stopped"),
    )
}

#[test]
fn a_wait_for_room_ends_at_the_batch_deadline() {
    let started = Instant::now();
    let deadline = Duration::from_secs(1);
    let (read, stopped) = a_wait_for_room_stopped(
        Duration::from_secs(60),
        |fetcher, urls| fetcher.batch(urls).deadline(deadline),
        // Its results are taken well past the deadline: the wait ended by
        // then, not because the first result was taken.
        || std::thread::sleep((deadline * 4).saturating_sub(started.elapsed())),
    );
    assert_eq!(read.len(), 2 * MIB);
    assert_eq!(stopped.kind(), ErrorKind::DeadlineExceeded, "{stopped}");
    let url = stopped.url().expect("the error names its URL").to_owned();
    assert!(stopped.to_string().contains(&url), "{stopped}");
    // Its cause says what it waited for, and what to do.
    assert!(
        stopped
            .to_string()
            .contains("raise max_body_bytes_in_flight"),
        "{stopped}"
    );
}

#[test]
fn a_wait_for_room_past_the_attempt_timeout_is_a_timeout_that_says_why() {
    let started = Instant::now();
    let timeout = Duration::from_secs(1);
    let (read, stopped) = a_wait_for_room_stopped(
        timeout,
        |fetcher, urls| fetcher.batch(urls),
        || std::thread::sleep((timeout * 4).saturating_sub(started.elapsed())),
    );
    assert_eq!(read.len(), 2 * MIB);
    assert_eq!(stopped.kind(), ErrorKind::Timeout, "{stopped}");
    let url = stopped.url().expect("the error names its URL").to_owned();
    let message = stopped.to_string();
    assert!(message.contains(&url), "{message}");
    assert!(
        message.contains("timed out waiting for room among the response bodies in flight")
            && message.contains("raise max_body_bytes_in_flight"),
        "{message}"
    );
}

#[test]
fn a_wait_for_room_ends_when_the_batch_is_cancelled() {
    let token = CancelToken::new();
    let (read, stopped) = a_wait_for_room_stopped(
        Duration::from_secs(60),
        |fetcher, urls| fetcher.batch(urls).cancel_token(token.clone()),
        || {
            // Time for the second head to come; cancelled earlier, it ends
            // as cancelled all the same.
            std::thread::sleep(Duration::from_millis(300));
            token.cancel();
        },
    );
    assert_eq!(read.len(), 2 * MIB);
    assert_eq!(stopped.kind(), ErrorKind::Cancelled, "{stopped}");
    let url = stopped.url().expect("the error names its URL").to_owned();
    assert!(stopped.to_string().contains(&url), "{stopped}");
}

/// Deserializing one panics.
#[derive(Debug)]
struct Panics;

impl<'de> serde::Deserialize<'de> for Panics {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Panics, D::Error> {
        panic!("a Deserialize impl that panics");
    }
}

#[test]
fn room_comes_back_after_errors_panics_and_results_dropped() {
    let docs = Bodies::start(2 * MIB, true);
    let doc = docs.url("/doc");
    let bad = scripted(|stream, _| {
        let body = vec![b'['; 2 * MIB];
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len());
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
    });
    let cut = scripted(|stream, _| {
        let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 2 * MIB);
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&vec![b' '; MIB]);
    });
    // Each body fills the budget: a byte not given back would make the
    // last requests wait out their timeout, and fail.
    let fetcher = budgeted(2 * MIB);
    for result in fetcher.fetch_many::<Panics>([&doc, &doc]) {
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Internal);
    }
    let panicked = fetcher.get_json::<Panics>(&doc).unwrap_err();
    assert_eq!(panicked.kind(), ErrorKind::Internal);
    let invalid = fetcher.get_json::<Value>(format!("{bad}/bad")).unwrap_err();
    assert_eq!(invalid.kind(), ErrorKind::InvalidJson);
    let truncated = fetcher.get_bytes(format!("{cut}/cut")).unwrap_err();
    assert_eq!(truncated.kind(), ErrorKind::Network);
    // A batch dropped with a result read and not taken.
    let written = docs.written();
    let results = fetcher.batch([&doc]).iter_bytes();
    wait_until(PATIENCE, "the body written", || docs.written() > written);
    drop(results);
    let again = fetcher.fetch_many_bytes([&doc, &doc]);
    for result in again {
        assert_eq!(result.unwrap().len(), 2 * MIB);
    }
}

#[test]
fn a_request_from_a_callback_does_not_wait_for_its_batchs_results() {
    let small = Bodies::start(2 * MIB, true);
    let large = Bodies::start(4 * MIB, true);
    let fetcher = budgeted(4 * MIB);
    let mut nested = Vec::new();
    fetcher
        .batch([small.url("/1"), small.url("/2")])
        .for_each_bytes(|_, result| {
            assert_eq!(result.unwrap().len(), 2 * MIB);
            if nested.is_empty() {
                // The other result is read and waits for this callback: it
                // holds room the nested request cannot have.
                wait_until(PATIENCE, "both bodies written", || small.written() == 2);
                std::thread::sleep(Duration::from_millis(300));
                nested.push(fetcher.get_bytes(large.url("/nested")));
            }
        });
    let [nested] = <[_; 1]>::try_from(nested).unwrap();
    assert_eq!(nested.unwrap().len(), 4 * MIB);
}

thread_local! {
    /// What [`FetchesInside`] fetches, on the thread that parses it: a
    /// fetcher and a URL.
    static INSIDE: std::cell::RefCell<Option<(Fetcher, String)>> =
        const { std::cell::RefCell::new(None) };
}

/// Deserializing one fetches the URL in [`INSIDE`] on the same fetcher,
/// and keeps what came.
#[derive(Debug)]
struct FetchesInside(Result<Vec<u8>, parfetch::Error>);

impl<'de> serde::Deserialize<'de> for FetchesInside {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let _ = serde::de::IgnoredAny::deserialize(deserializer)?;
        let (fetcher, url) = INSIDE.with_borrow(Clone::clone).expect("set by the test");
        Ok(FetchesInside(fetcher.get_bytes(url)))
    }
}

// From review of the body budget (issue 23).
#[test]
fn a_request_from_the_deserialize_of_a_single_fetch_does_not_wait_for_its_body() {
    let outer = Bodies::start(3 * MIB, true);
    let inner = Bodies::start(2 * MIB, true);
    let fetcher = budgeted(4 * MIB);
    INSIDE.set(Some((fetcher.clone(), inner.url("/inner"))));
    // The outer body holds its room while it is parsed, and its parse
    // waits for the inner request: the inner body must not wait for it.
    let parsed = fetcher
        .get_json::<FetchesInside>(outer.url("/outer"))
        .unwrap();
    assert_eq!(parsed.0.unwrap().len(), 2 * MIB);
}
