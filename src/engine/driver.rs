//! Many requests on a fetcher's threads: the queue a batch's workers take
//! their next step from.
//!
//! The caller's thread hands requests over ([`Queue::feed`]): it pulls them
//! from the batch's iterator as results are taken, so the iterator never
//! leaves the caller's thread (it need not be `Send`, nor live past the
//! batch), and the requests under way stay bounded however long the
//! batch (`batch.rs` says how many).
//!
//! Each worker takes, in this order: a request set aside until a time that
//! has come (a retry's delay, its host's pause); a request set aside for its
//! host whose host has room again; a request the caller handed over. It
//! runs one step of it ([`Journey::step`]), and hands the result over, or
//! sets the request aside again if it must wait. So a request that waits
//! holds no thread: the threads serve other hosts, and the requests set
//! aside go first when their wait is over. At most [`MAX_SET_ASIDE`]
//! requests are set aside; past that, workers wait for them rather than
//! take new ones.
//!
//! A worker with nothing to take sleeps until the soonest time a request
//! set aside may go, or until a request of the batch comes back (which
//! may have made room at its host), and at most [`POLL`] (a request to the
//! host from elsewhere may have made room too). With nothing set aside
//! either, it asks the caller for more (once, until the caller feeds) and
//! sleeps until requests come.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::journey::{Journey, Step};
use super::parse_slots::{ParseSlot, ParseSlots};
use super::{Engine, Scope, POLL};
use crate::clock::Clock;
use crate::error::Error;
use crate::parse::Content;
use crate::request::Request;
use crate::response::Response;
use crate::transport::body_budget::Reservation;

/// How many requests are set aside, at most, while workers go on with new
/// ones; past that, workers wait for them. A request set aside is about
/// 330 bytes and its URL and headers: a few megabytes at most, for a
/// batch of any length; and room for thousands of requests to wait out one
/// host's long Retry-After while the other hosts' requests go on.
pub(crate) const MAX_SET_ASIDE: usize = 16_384;

/// The longest a worker with nothing to do and nothing set aside sleeps
/// before it looks again: a feed, a close, a request set aside or the
/// batch's last request coming back wakes it before (this only guards
/// against a wake-up missed).
const IDLE: Duration = Duration::from_secs(1);

/// Where a batch's workers take their next request.
pub(crate) struct Queue {
    state: Mutex<State>,
    wake: Condvar,
    clock: Arc<dyn Clock>,
    /// A worker asked the caller for more, and the caller has not fed
    /// since (written under the lock, read without it by the caller).
    hungry: AtomicBool,
}

struct State {
    /// Requests the caller handed over, numbered, not yet started.
    pending: VecDeque<(usize, Request)>,
    /// The caller hands over no more: its iterator is done, or it left.
    closed: bool,
    /// A worker panicked outside a request's way (a bug): every worker
    /// stops, so that the batch ends rather than waits for it.
    broken: bool,
    /// Requests set aside until a time (the clock's), soonest first.
    timed: BinaryHeap<Reverse<Timed>>,
    /// Requests set aside until their host has room, oldest first.
    held: VecDeque<(usize, Journey)>,
    /// Requests a worker is stepping now.
    running: usize,
    /// Workers asleep, waiting for something to take.
    sleeping: usize,
    /// Sleepers woken for requests handed over, not yet up: the caller
    /// wakes one at a time, and each worker that takes a request wakes
    /// the next while more wait (one wake-up per request, the caller's
    /// thread paying for one per burst).
    waking: usize,
    /// Orders requests set aside for the same time by when they were.
    seq: u64,
}

/// How a worker's last [`Step`](super::journey::Step) went, told under
/// the queue's lock.
enum LastStep {
    /// The worker has not stepped yet.
    First,
    /// The request is done: its result is sent.
    Done,
    /// The request waits: until a time, or (`None`) until its host has room.
    SetAside(usize, Box<Journey>, Option<Duration>),
}

/// What a result holds until its caller takes it: the parse slot its body
/// took (`parse_slots.rs`), and its body's room in the fetcher's budget
/// (`transport/body_budget.rs`). Dropped, it gives both back.
pub(crate) struct Held {
    _slot: Option<ParseSlot>,
    _room: Option<Reservation>,
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

impl Queue {
    /// An empty queue, timed by `clock`.
    pub(crate) fn new(clock: Arc<dyn Clock>) -> Queue {
        Queue {
            state: Mutex::new(State {
                pending: VecDeque::new(),
                closed: false,
                broken: false,
                timed: BinaryHeap::new(),
                held: VecDeque::new(),
                running: 0,
                sleeping: 0,
                waking: 0,
                seq: 0,
            }),
            wake: Condvar::new(),
            clock,
            // The workers start with nothing to take.
            hungry: AtomicBool::new(true),
        }
    }

    /// The caller hands request number `index` over;
    /// `true` if workers still sleep with nothing to take (more requests
    /// may go to them at once).
    pub(crate) fn feed(&self, index: usize, request: Request) -> bool {
        let mut state = self.state.lock();
        state.pending.push_back((index, request));
        self.hungry.store(false, Ordering::Release);
        // One sleeper, if none is on its way: it wakes the next.
        if state.sleeping > 0 && state.waking == 0 {
            state.waking += 1;
            self.wake.notify_one();
        }
        // Those asleep before the first feed found the queue hungry
        // already and will not say so again: the caller must know.
        state.sleeping > state.pending.len()
    }

    /// The caller hands over no more.
    pub(crate) fn close(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        self.wake.notify_all();
    }

    /// The caller left: what it handed over and no worker started is
    /// never sent.
    pub(crate) fn abandon(&self) {
        let mut state = self.state.lock();
        state.closed = true;
        state.pending.clear();
        self.wake.notify_all();
    }

    /// Stops every worker: one panicked outside a request's way.
    pub(crate) fn break_down(&self) {
        let mut state = self.state.lock();
        state.broken = true;
        state.closed = true;
        self.wake.notify_all();
    }

    /// Whether a worker found nothing to take and the caller has not fed
    /// since.
    pub(crate) fn is_hungry(&self) -> bool {
        self.hungry.load(Ordering::Acquire)
    }

    /// How many requests are set aside now.
    pub(crate) fn set_aside(&self) -> usize {
        let state = self.state.lock();
        state.timed.len() + state.held.len()
    }

    /// What one worker does: steps requests until the batch is done,
    /// handing each result to `send` (which says whether to go on) with
    /// what it holds until its caller takes it ([`Held`]), and
    /// calling `hungry` when it has nothing to take and the caller may
    /// have more.
    pub(crate) fn work<T>(
        &self,
        engine: &Engine,
        scope: &Scope<'_>,
        finish: fn(Content) -> Result<T, Error>,
        parse_slots: Option<&Arc<ParseSlots>>,
        send: impl Fn(usize, Result<Response<T>, Error>, Held) -> bool,
        hungry: impl Fn(),
    ) {
        // The step just over, told to `next` under the lock it takes
        // anyway: one lock per step, not two.
        let mut last = LastStep::First;
        while let Some((index, mut journey)) = self.next(engine, scope, &hungry, last) {
            last = match engine.step(&mut journey, scope) {
                Step::Done(mut result) => {
                    let room = result.as_mut().ok().and_then(|body| body.held.take());
                    let len = result.as_ref().map_or(0, |body| body.bytes.len());
                    // Its own deadline counts too, not only the batch's.
                    let stop = journey.stop(scope);
                    let taken = parse_slots.map_or(Ok(None), |slots| slots.take(len, &stop));
                    let (result, slot) = match taken {
                        Ok(slot) => (result, slot),
                        // A deadline or the batch's cancel came first.
                        Err(kind) => (Err(journey.stopped_waiting(kind, scope)), None),
                    };
                    let result = engine.finish(&journey, result, scope, finish);
                    drop(journey);
                    // A failed request's body is gone: so is its room.
                    let held = Held {
                        _room: room.filter(|_| result.is_ok()),
                        _slot: slot,
                    };
                    if !send(index, result, held) {
                        self.stepped(LastStep::Done);
                        break;
                    }
                    LastStep::Done
                }
                Step::Wait { until } => LastStep::SetAside(index, Box::new(journey), until),
            };
        }
    }

    /// The next request to step, or `None` when the batch is done.
    fn next(
        &self,
        engine: &Engine,
        scope: &Scope<'_>,
        hungry: &impl Fn(),
        last: LastStep,
    ) -> Option<(usize, Journey)> {
        let mut state = self.state.lock();
        self.put_back(&mut state, last);
        loop {
            if state.broken {
                return None;
            }
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
                if let Some((index, request)) = state.pending.pop_front() {
                    state.running += 1;
                    if !state.pending.is_empty() && state.sleeping > state.waking {
                        state.waking += 1;
                        self.wake.notify_one();
                    }
                    return Some((index, Journey::new(request)));
                }
                if !state.closed && !self.hungry.swap(true, Ordering::AcqRel) {
                    hungry();
                }
            }
            let nothing_set_aside = state.timed.is_empty() && state.held.is_empty();
            if state.closed && state.pending.is_empty() && nothing_set_aside && state.running == 0 {
                // Done: wake the others to see it too.
                self.wake.notify_all();
                return None;
            }
            if nothing_set_aside {
                // Waiting for requests, not for a time: a feed, a close, a
                // request set aside or the batch's end wakes it.
                state.sleeping += 1;
                self.wake.wait_for(&mut state, IDLE);
                state.sleeping -= 1;
                state.waking = state.waking.saturating_sub(1);
                continue;
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
            state.waking = state.waking.saturating_sub(1);
        }
    }

    /// A step is over, and its worker stops.
    fn stepped(&self, last: LastStep) {
        let mut state = self.state.lock();
        self.put_back(&mut state, last);
    }

    /// Counts the step `last` over, and sets its request aside if it must
    /// wait.
    fn put_back(&self, state: &mut State, last: LastStep) {
        match last {
            LastStep::First => return,
            LastStep::Done => {}
            LastStep::SetAside(index, journey, Some(until)) => {
                let seq = state.seq;
                state.seq += 1;
                state.timed.push(Reverse(Timed {
                    until,
                    seq,
                    index,
                    journey: *journey,
                }));
            }
            LastStep::SetAside(index, journey, None) => state.held.push_back((index, *journey)),
        }
        state.running -= 1;
        // A request came back, or was set aside: the host of one set aside
        // may have room, a sooner time may be known. (Workers asleep with
        // nothing set aside wait for a feed: waking them is wasted.)
        let waits_on_hosts = !state.held.is_empty() || !state.timed.is_empty();
        if state.sleeping > 0 && waits_on_hosts {
            self.wake.notify_one();
        }
        let done = state.closed
            && state.pending.is_empty()
            && state.timed.is_empty()
            && state.held.is_empty()
            && state.running == 0;
        if done {
            self.wake.notify_all();
        }
    }
}
