//! Batches of any size: streamed, observable, and stoppable.
//!
//! [`Fetcher::fetch_many`] collects its requests and keeps every result
//! until the end: fine for a thousand documents, not for a million. A
//! [`Batch`] pulls requests from its iterator only as worker threads free
//! up, and hands each result over as soon as it is ready, so memory stays
//! bounded by the concurrency however long the batch is: the requests can
//! come from a file read line by line.
//!
//! How it runs: the fetcher's `concurrency` worker threads each take the
//! next request (under a short lock), run it, and send the result down a
//! channel that holds at most `concurrency` results. The
//! calling thread reads that channel and calls your callbacks, so they need
//! not be `Send`, they never slow a worker down (beyond the channel filling
//! up), and a panic in one of them is caught without losing other results.
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

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cancel::{CancelToken, Stop};
use crate::clock;
use crate::engine::driver::Queue;
use crate::engine::pools::Inherited;
use crate::engine::Scope;
use crate::error::{Error, ErrorKind};
use crate::fetcher::Fetcher;
use crate::parse::{bytes, parse_body, Content};
use crate::request::Request;
use crate::stats::{Recorder, Stats};

/// How often the progress callback is called at most (plus once at the end).
const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// A batch of requests, configured, then run with [`for_each`](Batch::for_each)
/// (results in completion order, memory bounded by the concurrency) or
/// [`collect`](Batch::collect) (results in input order).
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
#[must_use = "a batch does nothing until it is run with for_each or collect"]
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

/// What became of one request of a batch, with its particulars. Passed to
/// [`Batch::for_each_report`].
#[derive(Debug)]
#[non_exhaustive]
pub struct Report<T> {
    /// The request, as it was given.
    pub request: Request,
    /// Its result.
    pub result: Result<T, Error>,
    /// The HTTP status of the last response, if there was one.
    pub status: Option<u16>,
    /// Attempts made: 0 if nothing was sent.
    pub attempts: u32,
    /// From the first attempt to the result.
    pub elapsed: Duration,
}

impl<T> Report<T> {
    /// The report of a request that was never sent.
    fn unsent(request: Request, result: Result<T, Error>) -> Report<T> {
        Report {
            request,
            result,
            status: None,
            attempts: 0,
            elapsed: Duration::ZERO,
        }
    }
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
    /// [`Batch::for_each`] or [`Batch::collect`].
    ///
    /// The iterator is consumed lazily, one request per free worker, from
    /// the fetcher's worker threads (hence `Send`).
    pub fn batch<I>(&self, requests: I) -> Batch<'_, I::IntoIter>
    where
        I: IntoIterator,
        I::IntoIter: Send,
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
    I: Iterator + Send,
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

    /// Runs the batch and calls `each` with every request's index (its
    /// position in the input) and result, in the order they finish.
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
        self.run(parse_body::<T>, |index, report| each(index, report.result))
    }

    /// Like [`for_each`](Batch::for_each), with the raw bodies.
    pub fn for_each_bytes(self, mut each: impl FnMut(usize, Result<Vec<u8>, Error>)) -> BatchStats {
        self.run(bytes, |index, report| each(index, report.result))
    }

    /// Like [`for_each`](Batch::for_each), with each request's
    /// [`Report`]: the request itself, its status, attempts and time.
    pub fn for_each_report<T>(self, each: impl FnMut(usize, Report<T>)) -> BatchStats
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.run(parse_body::<T>, each)
    }

    /// Like [`for_each_report`](Batch::for_each_report), with the raw bodies.
    pub fn for_each_report_bytes(self, each: impl FnMut(usize, Report<Vec<u8>>)) -> BatchStats {
        self.run(bytes, each)
    }

    /// Runs the batch and returns one result per request, in input order
    /// (like [`Fetcher::fetch_many`], with this batch's deadline,
    /// cancellation and progress).
    pub fn collect<T>(self) -> Vec<Result<T, Error>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        self.collect_with(parse_body::<T>)
    }

    /// Like [`collect`](Batch::collect), with the raw bodies.
    pub(crate) fn collect_bytes(self) -> Vec<Result<Vec<u8>, Error>> {
        self.collect_with(bytes)
    }

    fn collect_with<T: Send>(
        self,
        finish: fn(Content) -> Result<T, Error>,
    ) -> Vec<Result<T, Error>> {
        let mut results: Vec<Option<Result<T, Error>>> = Vec::new();
        self.run(finish, |index, report| {
            if index >= results.len() {
                results.resize_with(index + 1, || None);
            }
            results[index] = Some(report.result);
        });
        // Every index below the count got exactly one result.
        results.into_iter().flatten().collect()
    }

    fn run<T: Send>(
        self,
        finish: fn(Content) -> Result<T, Error>,
        mut each: impl FnMut(usize, Report<T>),
    ) -> BatchStats {
        let Batch {
            fetcher,
            requests,
            deadline,
            cancel,
            mut progress,
            total,
        } = self;
        let started = Instant::now();
        let total = match requests.size_hint() {
            (low, Some(high)) if low == high => Some(low as u64),
            _ => total,
        };
        let recorder = Recorder::default();
        let how = Scope {
            stop: Stop {
                // A deadline past what an Instant holds is no deadline.
                deadline: deadline.and_then(|after| clock::after(started, after)),
                cancel: cancel.as_ref(),
            },
            batch: Some(&recorder),
        };
        let engine = fetcher.engine();
        let workers = engine.settings.concurrency;
        let mut first_panic: Option<Box<dyn Any + Send>> = None;
        let mut deliver = |index: usize, report: Report<T>| {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| each(index, report))) {
                first_panic.get_or_insert(panic);
            }
        };
        let pool = match engine.pools.for_this_thread() {
            Ok(pool) => pool,
            Err(reason) => {
                // Nothing can run: every request says why, in order.
                for (index, item) in requests.enumerate() {
                    let request: Request = item.into();
                    let result = Err(request.refused(&reason));
                    for stats in [&*engine.stats, &recorder] {
                        stats.finished(Duration::ZERO, Some(ErrorKind::InvalidRequest));
                    }
                    deliver(index, Report::unsent(request, result));
                }
                report_progress(&mut progress, &recorder, total, started);
                if let Some(panic) = first_panic {
                    std::panic::resume_unwind(panic);
                }
                return BatchStats {
                    stats: recorder.snapshot(),
                    elapsed: started.elapsed(),
                };
            }
        };
        // While the caller reads this batch's results, a batch it starts
        // from a callback runs one level deeper, and so does one started by
        // a worker's task (`pools.rs`).
        let busy = pool.enter();
        let inherited = Inherited::here();
        let queue = Queue::new(requests, Arc::clone(&engine.settings.clock));
        let (sender, results) = mpsc::sync_channel::<(usize, Report<T>)>(workers);
        let mut last_progress = started;
        let (queue, how, inherited) = (&queue, &how, &inherited);
        // The workers run on the pool, started and waited for by a plain
        // thread: the calling thread only reads results and runs callbacks,
        // and never waits inside rayon (`engine/pools.rs`).
        let workers_panic = std::thread::scope(|threads| {
            let runner = threads.spawn(move || {
                pool.threads.in_place_scope(|scope| {
                    for _ in 0..workers {
                        let sender = sender.clone();
                        scope.spawn(move |_| {
                            let _busy = inherited.enter();
                            queue.work(engine, how, finish, |index, request, outcome| {
                                let report = Report {
                                    request,
                                    result: outcome.result,
                                    status: outcome.status,
                                    attempts: outcome.attempts,
                                    elapsed: outcome.elapsed,
                                };
                                sender.send((index, report)).is_ok()
                            });
                        });
                    }
                    drop(sender);
                });
            });
            for (index, report) in results {
                deliver(index, report);
                if last_progress.elapsed() >= PROGRESS_INTERVAL {
                    last_progress = Instant::now();
                    report_progress(&mut progress, &recorder, total, started);
                }
            }
            runner.join().err()
        });
        drop(busy);
        // A panic of the workers' (the caller's iterator, say) comes after
        // the results they delivered.
        if let Some(panic) = workers_panic {
            first_panic.get_or_insert(panic);
        }
        report_progress(&mut progress, &recorder, total, started);
        if let Some(panic) = first_panic {
            std::panic::resume_unwind(panic);
        }
        let mut stats = recorder.snapshot();
        stats.hosts = engine.host_stats();
        BatchStats {
            stats,
            elapsed: started.elapsed(),
        }
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
