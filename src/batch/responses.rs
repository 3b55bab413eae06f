//! The one batch driver: an iterator over a batch's responses, in the
//! order they finish.
//!
//! Starting it spawns the batch's workers on the fetcher's pool of the
//! calling thread's nesting level (`engine/pools.rs`); they own what they
//! share with the caller (an `Arc`), so nothing they hold borrows from the
//! caller's stack, and the iterator can be dropped at any time. Each call
//! to `next` first tops up the requests the workers take from
//! (`engine/driver.rs`), pulled from the batch's iterator on this thread,
//! then waits for a result. The requests handed over but not yet delivered
//! are at most [`AHEAD`] times the concurrency, beyond those set aside
//! (waiting for their host or their retry's delay): so the look-ahead, and
//! the memory, stay bounded by the concurrency, and a slow consumer slows
//! the batch down.
//!
//! A worker that runs out of requests while the caller waits asks for more
//! through the mailbox ([`Message::Wake`], `mailbox.rs`), so requests set
//! aside (which bring no result) never starve the workers of new ones.
//! While the caller pulls, each request goes to the workers as soon as the
//! batch's iterator yields it, before the next is pulled: an iterator that
//! blocks (URLs read from a pipe) holds back only what it has not yielded.
//! (That takes the queue's lock once per request: measured, no cost.)
//!
//! Dropping the iterator before the end closes the queue (what was handed
//! over but not started is never sent, what the batch's iterator still
//! holds is never pulled) and cancels the batch's own token, a child of
//! the caller's if any (`cancel.rs`): requests in flight end at their next
//! read (within 100 ms), and their results go nowhere. The drop does not
//! wait for them: the workers end on their own, on the pool's threads.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::mailbox::{Mailbox, Poster};
use super::{deliver, report_progress, resume, Batch, BatchStats, ProgressFn, PROGRESS_INTERVAL};
use crate::cancel::{CancelToken, Stop};
use crate::clock;
use crate::engine::driver::{Held, Queue};
use crate::engine::parse_slots::ParseSlots;
use crate::engine::pools::{Busy, Inherited};
use crate::engine::{Engine, Scope};
use crate::error::{Error, ErrorKind};
use crate::fetcher::Fetcher;
use crate::parse::Content;
use crate::request::Request;
use crate::response::Response;
use crate::stats::Recorder;

/// How many times the concurrency the requests handed over and not yet
/// delivered may be (beyond those set aside): enough that every worker
/// finds its next request waiting while the caller takes a result.
const AHEAD: usize = 2;

/// The responses of a [`Batch`], with their indexes (positions in the
/// input), in the order they finish. Made by [`Batch::iter`] and
/// [`Batch::iter_bytes`].
///
/// Dropping it stops the batch: requests not yet started are never sent,
/// those in flight are cancelled. Once it is exhausted,
/// [`stats`](Responses::stats) gives the batch's figures (loop over
/// `&mut responses` to keep it).
#[must_use = "a batch's iterator does nothing unless iterated"]
pub struct Responses<'f, I, T> {
    fetcher: &'f Fetcher,
    /// The batch's requests; `None` once they are all handed over.
    requests: Option<I>,
    run: Run<T>,
    /// The batch's own figures, also the workers'.
    recorder: Arc<Recorder>,
    progress: Option<ProgressFn<'f>>,
    total: Option<u64>,
    started: Instant,
    last_progress: Instant,
    /// The requests pulled so far: the next one's index.
    pulled: usize,
    delivered: usize,
    concurrency: usize,
    /// The last feed left workers asleep with nothing to take: they do
    /// not say so again (`Queue::feed`), so the next request goes at once.
    idle: bool,
    /// Results taken from the workers, not yet handed over.
    inbox: VecDeque<Message<T>>,
    /// A panic of the batch's iterator or of a worker, resumed after the
    /// last result.
    panic: Option<Box<dyn Any + Send>>,
    /// From the start to the last result, once it came.
    ended: Option<Duration>,
}

/// Where a batch stands.
enum Run<T> {
    /// Its workers run.
    Running {
        shared: Arc<Shared>,
        results: Arc<Mailbox<Message<T>>>,
        /// Marks the calling thread busy with the batch's level while the
        /// iterator lives: a batch it starts meanwhile goes one deeper.
        _busy: Busy,
    },
    /// No worker can run (nested too deep, threads that cannot start):
    /// every request is rejected, unsent, saying why.
    Rejected(String),
    /// Every result was delivered.
    Done,
}

/// What the workers share with the caller.
struct Shared {
    engine: Arc<Engine>,
    queue: Queue,
    recorder: Arc<Recorder>,
    /// The batch's own token: a child of the caller's, if any.
    cancel: CancelToken,
    deadline: Option<Instant>,
    /// What the caller was busy with, for the workers (`pools.rs`).
    inherited: Inherited,
    /// The caller keeps only the bodies (`engine::Scope`).
    body_only: bool,
    /// For a batch that parses its bodies: how many large ones at once.
    parse_slots: Option<Arc<ParseSlots>>,
    /// The batch was started on a thread busy with another batch of the
    /// same fetcher, which waits for it (`transport/body_budget.rs`).
    nested: bool,
}

/// What a worker sends the caller.
enum Message<T> {
    /// A request's result, and what it holds until the caller takes it
    /// (its parse slot, its body's room in the fetcher's budget).
    Done(usize, Result<Response<T>, Error>, Held),
    /// The worker has nothing to take: the caller may have more.
    Wake,
    /// The worker panicked outside a request's way (a bug).
    Panicked(Box<dyn Any + Send>),
}

impl<'f, I, T> Responses<'f, I, T>
where
    I: Iterator,
    I::Item: Into<Request>,
    T: Send + 'static,
{
    /// Starts `batch`, whose bodies `finish` makes `T`s (parsing them if
    /// `parses`); `body_only`: the caller keeps only the bodies.
    pub(super) fn start(
        batch: Batch<'f, I>,
        finish: fn(Content) -> Result<T, Error>,
        parses: bool,
        body_only: bool,
    ) -> Self {
        let Batch {
            fetcher,
            requests,
            deadline,
            cancel,
            progress,
            total,
        } = batch;
        let started = Instant::now();
        let total = match requests.size_hint() {
            (low, Some(high)) if low == high => Some(low as u64),
            _ => total,
        };
        let engine = fetcher.engine_arc();
        let concurrency = engine.settings.concurrency;
        let recorder = Arc::new(Recorder::default());
        let mut workers = None;
        let nested = engine.is_nested_here();
        let run = match engine.pools.for_this_thread() {
            Err(reason) => Run::Rejected(reason),
            Ok(pool) => {
                let busy = pool.enter();
                let shared = Arc::new(Shared {
                    engine: Arc::clone(engine),
                    queue: Queue::new(Arc::clone(&engine.settings.clock)),
                    recorder: Arc::clone(&recorder),
                    cancel: cancel
                        .as_ref()
                        .map_or_else(CancelToken::new, CancelToken::child),
                    // A deadline past what an Instant holds is no deadline.
                    deadline: deadline.and_then(|after| clock::after(started, after)),
                    inherited: Inherited::here(),
                    body_only,
                    parse_slots: parses.then(ParseSlots::for_this_machine),
                    nested,
                });
                // One slot more than the workers: a wake-up always fits. A
                // caller that keeps only bodies (`for_each`, `collect`) is
                // woken in handfuls (`mailbox.rs`).
                let handful = if body_only { concurrency / 4 } else { 1 };
                let results = Mailbox::new(concurrency + 1, handful, concurrency);
                workers = Some((pool, Arc::clone(&shared), Arc::clone(&results)));
                Run::Running {
                    shared,
                    results,
                    _busy: busy,
                }
            }
        };
        let mut responses = Responses {
            fetcher,
            requests: Some(requests),
            run,
            recorder,
            progress,
            total,
            started,
            last_progress: started,
            pulled: 0,
            delivered: 0,
            concurrency,
            idle: false,
            inbox: VecDeque::new(),
            panic: None,
            ended: None,
        };
        // The workers start before the first requests are pulled: an
        // iterator that yields slowly (URLs read from a pipe) hands each
        // request over as it comes while the workers have nothing to take.
        if let Some((pool, shared, results)) = workers {
            for _ in 0..concurrency {
                let (shared, poster) = (Arc::clone(&shared), results.poster());
                pool.threads.spawn(move || work(&shared, finish, &poster));
            }
        }
        responses.feed();
        responses
    }

    /// The batch's figures: so far, or final once the iterator is
    /// exhausted (with the hosts that pushed back, and the time to the last
    /// result).
    pub fn stats(&self) -> BatchStats {
        let mut stats = self.recorder.snapshot();
        if self.ended.is_some() {
            stats.hosts = self.fetcher.engine().host_stats();
        }
        BatchStats {
            stats,
            elapsed: self.ended.unwrap_or_else(|| self.started.elapsed()),
        }
    }

    /// The next result, if any; a panic of the batch's iterator or of a
    /// worker is kept for the end.
    fn next_result(&mut self) -> Option<(usize, Result<Response<T>, Error>)> {
        loop {
            match &self.run {
                Run::Done => return None,
                Run::Rejected(reason) => {
                    let reason = reason.clone();
                    return self.reject_next(&reason);
                }
                Run::Running { .. } => self.feed(),
            }
            let Some(message) = self.inbox.pop_front() else {
                if let Run::Running { results, .. } = &self.run {
                    if !results.take_all(&mut self.inbox) {
                        // Every worker is done.
                        self.end();
                    }
                }
                continue;
            };
            match message {
                Message::Done(index, result, held) => {
                    // Taken: its parse slot and its room go back now.
                    drop(held);
                    self.delivered += 1;
                    if self.last_progress.elapsed() >= PROGRESS_INTERVAL {
                        self.last_progress = Instant::now();
                        report_progress(
                            &mut self.progress,
                            &self.recorder,
                            self.total,
                            self.started,
                        );
                    }
                    return Some((index, result));
                }
                Message::Wake => {}
                Message::Panicked(panic) => {
                    self.panic.get_or_insert(panic);
                }
            }
        }
    }

    /// Hands the workers what they may take now.
    fn feed(&mut self) {
        let (Some(requests), Run::Running { shared, .. }) = (&mut self.requests, &self.run) else {
            return;
        };
        let most = AHEAD * self.concurrency;
        let under_way = self.pulled - self.delivered;
        let room = match most.checked_sub(under_way) {
            Some(room) if room > 0 => room,
            // Requests set aside wait for their host or their retry: more
            // may go on meanwhile, up to the driver's own bound.
            _ => (most + shared.queue.set_aside()).saturating_sub(under_way),
        };
        // Pulled in handfuls, not one request per result taken: the room
        // is worth looking for once a handful fits. A worker with nothing
        // to take is fed at once.
        if room < (self.concurrency / 2).max(1) && !self.idle && !shared.queue.is_hungry() {
            return;
        }
        let mut finished = false;
        for _ in 0..room {
            match catch_unwind(AssertUnwindSafe(|| requests.next().map(Into::into))) {
                Ok(Some(request)) => {
                    // Handed over before the next is pulled: the next may
                    // be slow to come, and a worker may free up meanwhile.
                    self.idle = shared.queue.feed(self.pulled, request);
                    self.pulled += 1;
                }
                Ok(None) => {
                    finished = true;
                    break;
                }
                Err(panic) => {
                    // The requests pulled before it still run.
                    self.panic.get_or_insert(panic);
                    finished = true;
                    break;
                }
            }
        }
        if finished {
            shared.queue.close();
            self.requests = None;
        }
    }

    /// The next request's result when no worker can run: rejected.
    fn reject_next(&mut self, reason: &str) -> Option<(usize, Result<Response<T>, Error>)> {
        let next = self.requests.as_mut().and_then(|requests| {
            catch_unwind(AssertUnwindSafe(|| requests.next().map(Into::into)))
                .map_err(|panic| self.panic.get_or_insert(panic))
                .ok()
                .flatten()
        });
        let Some(request): Option<Request> = next else {
            self.end();
            return None;
        };
        let index = self.pulled;
        self.pulled += 1;
        self.delivered += 1;
        let engine = self.fetcher.engine();
        for stats in [&*engine.stats, &*self.recorder] {
            stats.finished(Duration::ZERO, Some(ErrorKind::InvalidRequest));
        }
        Some((index, Err(request.rejected(reason))))
    }

    /// The batch is over: the last progress report.
    fn end(&mut self) {
        self.run = Run::Done;
        self.requests = None;
        self.ended = Some(self.started.elapsed());
        report_progress(&mut self.progress, &self.recorder, self.total, self.started);
    }

    /// Hands every result to `each`, on this thread; returns the batch's
    /// figures. A panic of `each` loses no other result: the first is
    /// resumed at the end (before one of the batch's iterator).
    pub(super) fn drive(
        mut self,
        mut each: impl FnMut(usize, Result<Response<T>, Error>),
    ) -> BatchStats {
        let mut first_panic = None;
        while let Some((index, result)) = self.next_result() {
            deliver(&mut each, index, result, &mut first_panic);
        }
        resume(first_panic.or_else(|| self.panic.take()));
        self.stats()
    }
}

impl<I, T> Iterator for Responses<'_, I, T>
where
    I: Iterator,
    I::Item: Into<Request>,
    T: Send + 'static,
{
    type Item = (usize, Result<Response<T>, Error>);

    /// The next response to finish, with its index. A panic of the
    /// batch's iterator comes after the results of the requests it yielded.
    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_result();
        if next.is_none() {
            resume(self.panic.take());
        }
        next
    }
}

impl<I, T> Drop for Responses<'_, I, T> {
    fn drop(&mut self) {
        if let Run::Running {
            shared, results, ..
        } = &self.run
        {
            shared.queue.abandon();
            shared.cancel.cancel();
            results.caller_left();
        }
    }
}

impl<I, T> std::fmt::Debug for Responses<'_, I, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responses")
            .field("pulled", &self.pulled)
            .field("delivered", &self.delivered)
            .field("exhausted", &self.ended.is_some())
            .finish_non_exhaustive()
    }
}

/// What one worker does: steps the batch's requests until it is done (or
/// its caller left), sending each result.
fn work<T: Send + 'static>(
    shared: &Shared,
    finish: fn(Content) -> Result<T, Error>,
    poster: &Poster<Message<T>>,
) {
    let _busy = shared.inherited.enter();
    let scope = Scope {
        stop: Stop {
            deadline: shared.deadline,
            cancel: Some(&shared.cancel),
        },
        batch: Some(&shared.recorder),
        body_only: shared.body_only,
        nested: shared.nested,
    };
    let worked = catch_unwind(AssertUnwindSafe(|| {
        shared.queue.work(
            &shared.engine,
            &scope,
            finish,
            shared.parse_slots.as_ref(),
            |index, result, held| poster.post(Message::Done(index, result, held), false),
            || poster.try_post(Message::Wake),
        );
    }));
    if let Err(panic) = worked {
        shared.queue.break_down();
        poster.post(Message::Panicked(panic), true);
    }
}
