//! Many requests on a fetcher's threads: the queue a batch's workers take
//! their next step from.
//!
//! Each worker takes, in this order: a request set aside until a time that
//! has come (a retry's delay, its host's pause); a request set aside for its
//! host whose host has room again; a new request from the batch's
//! iterator. It runs one step of it ([`Journey::step`]), and hands the
//! result over, or sets the request aside again if it must wait. So a
//! request that waits holds no thread: the threads serve other hosts, and
//! the requests set aside go first when their wait is over. At most
//! [`MAX_SET_ASIDE`] requests are set aside; past that, workers wait for
//! them rather than take new ones, so memory stays bounded by the
//! concurrency and that number, however long the batch.
//!
//! A worker with nothing to take sleeps until the soonest time a request
//! set aside may go, or until a request of the batch comes back (which
//! may have made room at its host), and at most [`POLL`] (a request to the
//! host from elsewhere may have made room too).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::journey::{Journey, Step};
use super::{Engine, Outcome, Scope, POLL};
use crate::clock::Clock;
use crate::error::Error;
use crate::parse::Content;
use crate::request::Request;

/// How many requests are set aside, at most, while workers go on with new
/// ones; past that, workers wait for them. A request set aside is about
/// 330 bytes and its URL and headers: a few megabytes at most, for a
/// batch of any length; and room for thousands of requests to wait out one
/// host's long Retry-After while the other hosts' requests go on.
pub(crate) const MAX_SET_ASIDE: usize = 16_384;

/// Where a batch's workers take their next request.
pub(crate) struct Queue<I> {
    state: Mutex<State<I>>,
    wake: Condvar,
    clock: Arc<dyn Clock>,
}

struct State<I> {
    /// The batch's requests, numbered; `None` once the iterator is done.
    requests: Option<std::iter::Enumerate<I>>,
    /// Requests set aside until a time (the clock's), soonest first.
    timed: BinaryHeap<Reverse<Timed>>,
    /// Requests set aside until their host has room, oldest first.
    held: VecDeque<(usize, Journey)>,
    /// Requests a worker is stepping now.
    running: usize,
    /// Workers asleep, waiting for something to take.
    sleeping: usize,
    /// Orders requests set aside for the same time by when they were.
    seq: u64,
}

/// A request set aside until `until`.
struct Timed {
    until: Duration,
    seq: u64,
    index: usize,
    journey: Journey,
}

impl PartialEq for Timed {
    fn eq(&self, other: &Timed) -> bool {
        (self.until, self.seq) == (other.until, other.seq)
    }
}

impl Eq for Timed {}

impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Timed) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timed {
    fn cmp(&self, other: &Timed) -> std::cmp::Ordering {
        (self.until, self.seq).cmp(&(other.until, other.seq))
    }
}

impl<I> Queue<I>
where
    I: Iterator,
    I::Item: Into<Request>,
{
    /// A queue of `requests`, timed by `clock`.
    pub(crate) fn new(requests: I, clock: Arc<dyn Clock>) -> Queue<I> {
        Queue {
            state: Mutex::new(State {
                requests: Some(requests.enumerate()),
                timed: BinaryHeap::new(),
                held: VecDeque::new(),
                running: 0,
                sleeping: 0,
                seq: 0,
            }),
            wake: Condvar::new(),
            clock,
        }
    }

    /// What one worker does: steps requests until the batch is done,
    /// handing each result to `send` (which says whether to go on).
    pub(crate) fn work<T>(
        &self,
        engine: &Engine,
        scope: &Scope<'_>,
        finish: fn(Content) -> Result<T, Error>,
        send: impl Fn(usize, Request, Outcome<T>) -> bool,
    ) {
        while let Some((index, mut journey)) = self.next(engine, scope) {
            let step = engine.step(&mut journey, scope);
            let go_on = match step {
                Step::Done(result) => {
                    let outcome = engine.finish(&journey, result, scope, finish);
                    self.stepped(None);
                    send(index, journey.request, outcome)
                }
                Step::Wait { until } => {
                    self.stepped(Some((index, journey, until)));
                    true
                }
            };
            if !go_on {
                break;
            }
        }
    }

    /// The next request to step, or `None` when the batch is done.
    fn next(&self, engine: &Engine, scope: &Scope<'_>) -> Option<(usize, Journey)> {
        let mut state = self.state.lock();
        loop {
            let now = self.clock.now();
            // Stopped: the requests set aside end now, each with its error.
            let stopped = scope.stop.check().is_err();
            if let Some(Reverse(top)) = state.timed.peek() {
                if top.until <= now || stopped {
                    let Some(Reverse(timed)) = state.timed.pop() else {
                        continue;
                    };
                    state.running += 1;
                    return Some((timed.index, timed.journey));
                }
            }
            let ready = state
                .held
                .iter()
                .position(|(_, journey)| stopped || engine.may_step(journey));
            if let Some((index, journey)) = ready.and_then(|at| state.held.remove(at)) {
                state.running += 1;
                return Some((index, journey));
            }
            if state.timed.len() + state.held.len() < MAX_SET_ASIDE {
                let next = state.requests.as_mut().and_then(Iterator::next);
                if let Some((index, item)) = next {
                    state.running += 1;
                    return Some((index, Journey::new(item.into())));
                }
                state.requests = None;
            }
            let idle = state.requests.is_none() && state.timed.is_empty() && state.held.is_empty();
            if idle && state.running == 0 {
                // Done: wake the others to see it too.
                self.wake.notify_all();
                return None;
            }
            let soonest = state.timed.peek().map(|Reverse(top)| top.until);
            let wait = soonest.map_or(POLL, |until| until.saturating_sub(now).min(POLL));
            let wait = scope.stop.clip(wait);
            state.sleeping += 1;
            if self.clock.moves_by_itself() {
                self.wake.wait_for(&mut state, wait);
            } else {
                // A test's clock moves when slept on; let it.
                self.clock.sleep(wait.max(Duration::from_millis(1)));
            }
            state.sleeping -= 1;
        }
    }

    /// A step is over: the request is done (`None`), or set aside.
    fn stepped(&self, set_aside: Option<(usize, Journey, Option<Duration>)>) {
        let mut state = self.state.lock();
        state.running -= 1;
        match set_aside {
            Some((index, journey, Some(until))) => {
                let seq = state.seq;
                state.seq += 1;
                state.timed.push(Reverse(Timed {
                    until,
                    seq,
                    index,
                    journey,
                }));
            }
            Some((index, journey, None)) => state.held.push_back((index, journey)),
            None => {}
        }
        // A request came back, or was set aside: its host may have room,
        // the batch may be done, a sooner time may be known.
        if state.sleeping > 0 {
            self.wake.notify_one();
        }
        let done = state.requests.is_none()
            && state.timed.is_empty()
            && state.held.is_empty()
            && state.running == 0;
        if done {
            self.wake.notify_all();
        }
    }
}
