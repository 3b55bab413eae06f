//! Batches of any size: streamed, observable, and stoppable.
//!
//! [`Fetcher::fetch_many`] collects its requests and keeps every result
//! until the end: fine for a thousand documents, not for a million. A
//! [`Batch`] pulls requests from its iterator only as results are taken,
//! and hands each result over as soon as it is ready, so memory stays
//! bounded by the concurrency however long the batch is: the requests can
//! come from a file read line by line.
//!
//! How it runs (`responses.rs`): the iterator [`Batch::iter`] returns is the
//! one driver; [`for_each`](Batch::for_each) and [`collect`](Batch::collect)
//! are loops over it. The fetcher's `concurrency` worker threads each take
//! the next request (under a short lock), run it, and leave the result in
//! a mailbox that holds at most `concurrency + 1` (`mailbox.rs`). The
//! calling thread takes from that mailbox, and tops up the requests the
//! workers take from as it does, so the batch's iterator and your
//! callbacks never leave it: they need not be `Send`, they never slow a
//! worker down (beyond the mailbox filling up), and a panic in one of them
//! is caught without losing other results.
//!
//! A callback may start another batch (or `fetch_many`) on the same
//! fetcher: it runs on a pool one nesting level deeper (`pools.rs`), so the
//! outer batch's busy workers never hold it up.
//!
//! A request that must wait (its host's limit is reached, its host asked
//! for a pause or is down for a moment, its retry's delay has not passed)
//! is set aside while its worker takes another (`engine/driver.rs`), and
//! goes first when its wait is over: a host that pushes back slows down its
//! own requests, never the others'.

mod mailbox;
mod responses;

pub use self::responses::Responses;

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cancel::CancelToken;
use crate::error::Error;
use crate::fetcher::Fetcher;
use crate::parse::{bytes, parse_body};
use crate::request::Request;
use crate::response::Response;
use crate::stats::{Recorder, Stats};

/// How often the progress callback is called at most (plus once at the end).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// A batch of requests, configured, then run with [`iter`](Batch::iter)
/// (responses in completion order, memory bounded by the concurrency),
/// [`for_each`](Batch::for_each) (the same, bodies only, to a callback) or
/// [`collect`](Batch::collect) (bodies in input order, and the batch's
/// figures).
///
/// Made by [`Fetcher::batch`].
///
/// ```no_run
/// use std::io::BufRead;
/// use std::time::Duration;
///
/// let fetcher = parfetch::Fetcher::builder().concurrency(64).build()?;
/// let urls = std::io::BufReader::new(std::fs::File::open("urls.txt").unwrap())
///     .lines()
///     .map_while(Result::ok);
/// let stats = fetcher
///     .batch(urls)
///     .deadline(Duration::from_secs(600))
///     .on_progress(|p| eprintln!("{}/{:?} done, {} failed", p.requests, p.total, p.failures))
///     .for_each::<parfetch::Value>(|index, result| match result {
///         Ok(doc) => println!("{index}: {doc}"),
///         Err(error) => eprintln!("{index}: {error}"),
///     });
/// eprintln!("{:.0} documents/s", stats.requests_per_second());
/// # Ok::<(), parfetch::Error>(())
/// ```
#[must_use = "a batch does nothing until it is run with iter, for_each or collect"]
pub struct Batch<'f, I> {
    fetcher: &'f Fetcher,
    requests: I,
    deadline: Option<Duration>,
    cancel: Option<CancelToken>,
    progress: Option<ProgressFn<'f>>,
    total: Option<u64>,
}

/// The user's progress callback.
type ProgressFn<'f> = Box<dyn FnMut(&Progress) + 'f>;

/// How far a batch has come. Passed to [`Batch::on_progress`].
///
/// Its counters have the names, and the meaning, of the same counters in
/// [`Stats`]. Serialised (serde), `elapsed` is in seconds, a float.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Progress {
    /// Requests finished, successfully or not (as [`Stats::requests`]).
    pub requests: u64,
    /// Requests in the batch: the iterator's exact length, or what
    /// [`Batch::total`] said; `None` when neither is known.
    pub total: Option<u64>,
    /// Requests finished successfully.
    pub successes: u64,
    /// Requests finished with an error.
    pub failures: u64,
    /// Retries so far.
    pub retries: u64,
    /// Response body bytes received so far (after decompression).
    pub bytes_received: u64,
    /// Time since the batch started.
    #[serde(serialize_with = "crate::stats::seconds")]
    pub elapsed: Duration,
}

/// A finished batch's own figures (the fetcher's [`Stats`] are lifetime
/// totals across batches). Serialised (serde), `elapsed` is in seconds, a
/// float.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BatchStats {
    /// The batch's counters: requests, retries, bytes, gate waits, latency...
    pub stats: Stats,
    /// From the start of the batch to its last result.
    #[serde(serialize_with = "crate::stats::seconds")]
    pub elapsed: Duration,
}

impl BatchStats {
    /// Finished requests per second of the batch.
    pub fn requests_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let requests = self.stats.requests as f64;
        if seconds > 0.0 {
            requests / seconds
        } else {
            0.0
        }
    }
}

impl Fetcher {
    /// A batch of `requests`, to configure and then run with
    /// [`Batch::iter`], [`Batch::for_each`] or [`Batch::collect`].
    ///
    /// The iterator is consumed lazily, on the calling thread, as results
    /// are taken: at most about twice the concurrency ahead of them (plus
    /// the requests set aside, waiting for their host or their retry).
    pub fn batch<I>(&self, requests: I) -> Batch<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::Item: Into<Request>,
    {
        Batch {
            fetcher: self,
            requests: requests.into_iter(),
            deadline: None,
            cancel: None,
            progress: None,
            total: None,
        }
    }
}

impl<'f, I> Batch<'f, I>
where
    I: Iterator,
    I::Item: Into<Request>,
{
    /// Ends the batch this long after it starts: no attempt starts after
    /// it, each attempt's timeout is clipped to the time left, retry delays
    /// and gate waits that would pass it end at once, and every unfinished
    /// request ends with [`ErrorKind::DeadlineExceeded`](crate::ErrorKind::DeadlineExceeded).
    pub fn deadline(mut self, after: Duration) -> Self {
        self.deadline = Some(after);
        self
    }

    /// Lets `token` cancel the batch: no attempt starts after
    /// [`CancelToken::cancel`], waits and body reads stop, and every
    /// unfinished request ends with [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled).
    /// An attempt already waiting for a response head finishes first (within
    /// its timeout).
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Calls `progress` as results come in: at most every 100 ms, and once
    /// more at the end with the final figures. It runs on the calling
    /// thread; if it panics, it is not called again and the batch goes on.
    ///
    /// [`Progress::total`] is the number of requests when the iterator
    /// tells it exactly (a `Vec`, a range, a `map` of either); a lazy one
    /// (lines read from a file, a `filter`) does not know it, so tell the
    /// batch with [`total`](Self::total) if you do.
    pub fn on_progress(mut self, progress: impl FnMut(&Progress) + 'f) -> Self {
        self.progress = Some(Box::new(progress));
        self
    }

    /// How many requests the iterator will yield, for
    /// [`Progress::total`] when the iterator cannot tell (say, the URL
    /// lines of a file you counted first). An iterator that knows its exact
    /// length is believed over this.
    pub fn total(mut self, requests: u64) -> Self {
        self.total = Some(requests);
        self
    }

    /// Starts the batch and returns its responses, each with its index
    /// (its position in the input), in the order they finish: a plain
    /// iterator, for a `for` loop.
    ///
    /// Memory stays bounded by the concurrency, however many requests the
    /// batch has: a slow loop slows the batch down rather than let results
    /// pile up (and with bodies large enough to fill the fetcher's
    /// `max_body_bytes_in_flight`, requests wait for room within their
    /// timeout, and may time out: take results sooner, or raise it).
    /// Dropping the iterator stops the batch: requests not yet
    /// started are never sent, and those in flight are cancelled. Once it
    /// is exhausted, [`Responses::stats`] gives the batch's figures.
    ///
    /// The loop may start other batches on the same fetcher: they run on
    /// threads of their own (nesting up to 8 deep), so requests in flight
    /// may then exceed the concurrency.
    ///
    /// ```
    /// # use std::io::{Read, Write};
    /// # let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// # let addr = listener.local_addr().unwrap();
    /// # std::thread::spawn(move || {
    /// #     for mut stream in listener.incoming().flatten() {
    /// #         std::thread::spawn(move || {
    /// #             let mut request = [0u8; 2048];
    /// #             while let Ok(n @ 1..) = stream.read(&mut request) {
    /// #                 let path = String::from_utf8_lossy(&request[..n]);
    /// #                 let page = path.split(['/', ' ']).nth(2).unwrap_or("0");
    /// #                 let body = format!(r#"{{"page":{page}}}"#);
    /// #                 let head = format!("HTTP/1.1 200 OK\r\nx-ratelimit-remaining: 99\r\ncontent-length: {}\r\n\r\n", body.len());
    /// #                 if stream.write_all((head + &body).as_bytes()).is_err() { break }
    /// #             }
    /// #         });
    /// #     }
    /// # });
    /// let fetcher = parfetch::Fetcher::builder().concurrency(4).no_proxy().build()?;
    /// let urls = (1..=10).map(|page| format!("http://{addr}/{page}"));
    ///
    /// let mut responses = fetcher.batch(urls).iter::<parfetch::Value>();
    /// for (index, result) in &mut responses {
    ///     let response = result?;
    ///     assert_eq!(response.status(), 200);
    ///     assert_eq!(response.header("X-RateLimit-Remaining"), Some("99"));
    ///     assert_eq!(response.body()["page"], index as u64 + 1);
    /// }
    /// assert_eq!(responses.stats().stats.successes, 10);
    /// # Ok::<(), parfetch::Error>(())
    /// ```
    pub fn iter<T>(self) -> Responses<'f, I, T>
    where
        T: DeserializeOwned + Send + 'static,
    {
        Responses::start(self, parse_body::<T>, true, false)
    }

    /// Like [`iter`](Batch::iter), with the raw bodies.
    pub fn iter_bytes(self) -> Responses<'f, I, Vec<u8>> {
        Responses::start(self, bytes, false, false)
    }

    /// Runs the batch and calls `each` with every request's index (its
    /// position in the input) and result, in the order they finish; returns
    /// the batch's figures. (For the status, headers and the rest, loop
    /// over [`iter`](Batch::iter).)
    ///
    /// Memory stays bounded by the concurrency, however many requests the
    /// iterator yields. `each` runs on the calling thread. If it panics,
    /// the remaining results are still delivered, and the first panic is
    /// resumed once the batch has ended. It may start other batches on the
    /// same fetcher: they run on threads of their own (nesting up to 8
    /// deep), so requests in flight may then exceed the concurrency.
    pub fn for_each<T>(self, mut each: impl FnMut(usize, Result<T, Error>)) -> BatchStats
    where
        T: DeserializeOwned + Send + 'static,
    {
        Responses::start(self, parse_body::<T>, true, true)
            .drive(|index, result| each(index, result.map(Response::into_body)))
    }

    /// Like [`for_each`](Batch::for_each), with the raw bodies.
    pub fn for_each_bytes(self, mut each: impl FnMut(usize, Result<Vec<u8>, Error>)) -> BatchStats {
        Responses::start(self, bytes, false, true)
            .drive(|index, result| each(index, result.map(Response::into_body)))
    }

    /// Runs the batch and returns one result per request, in input order
    /// (like [`Fetcher::fetch_many`], with this batch's deadline,
    /// cancellation and progress), and the batch's figures.
    ///
    /// ```no_run
    /// let fetcher = parfetch::Fetcher::builder().build()?;
    /// let urls = ["https://cdn.example/a.json", "https://cdn.example/b.json"];
    /// let (docs, stats) = fetcher.batch(urls).collect::<parfetch::Value>();
    /// println!("{} documents, {} retries", docs.len(), stats.stats.retries);
    /// # Ok::<(), parfetch::Error>(())
    /// ```
    pub fn collect<T>(self) -> (Vec<Result<T, Error>>, BatchStats)
    where
        T: DeserializeOwned + Send + 'static,
    {
        collect_in_order(Responses::start(self, parse_body::<T>, true, true))
    }

    /// Like [`collect`](Batch::collect), with the raw bodies.
    pub fn collect_bytes(self) -> (Vec<Result<Vec<u8>, Error>>, BatchStats) {
        collect_in_order(Responses::start(self, bytes, false, true))
    }
}

/// Every body of `responses`, in input order, and the batch's figures.
fn collect_in_order<I, T>(responses: Responses<'_, I, T>) -> (Vec<Result<T, Error>>, BatchStats)
where
    I: Iterator,
    I::Item: Into<Request>,
    T: Send + 'static,
{
    let mut results: Vec<Option<Result<T, Error>>> = Vec::new();
    let stats = responses.drive(|index, result| {
        if index >= results.len() {
            results.resize_with(index + 1, || None);
        }
        results[index] = Some(result.map(Response::into_body));
    });
    // Every index below the count got exactly one result.
    (results.into_iter().flatten().collect(), stats)
}

/// Resumes the first of the panics, if any.
fn resume(panic: Option<Box<dyn Any + Send>>) {
    if let Some(panic) = panic {
        std::panic::resume_unwind(panic);
    }
}

/// Calls `callback` with `result`; keeps the first panic.
fn deliver<R>(
    callback: &mut impl FnMut(usize, R),
    index: usize,
    result: R,
    first_panic: &mut Option<Box<dyn Any + Send>>,
) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| callback(index, result))) {
        first_panic.get_or_insert(panic);
    }
}

/// Calls the progress callback, dropping it for good if it panics.
fn report_progress(
    progress: &mut Option<ProgressFn<'_>>,
    recorder: &Recorder,
    total: Option<u64>,
    started: Instant,
) {
    let Some(callback) = progress else {
        return;
    };
    let stats = recorder.snapshot();
    let figures = Progress {
        requests: stats.requests,
        total,
        successes: stats.successes,
        failures: stats.failures,
        retries: stats.retries,
        bytes_received: stats.bytes_received,
        elapsed: started.elapsed(),
    };
    if catch_unwind(AssertUnwindSafe(|| callback(&figures))).is_err() {
        log::warn!("the batch's progress callback panicked; it will not be called again");
        *progress = None;
    }
}
