//! How many bytes of response bodies a fetcher holds at once: read, or
//! being read, and not yet handed to the caller.
//!
//! Without a bound, memory grows with the concurrency times the body: 256
//! requests in flight of 20 MB documents hold 5 GB of bodies alone, and
//! a caller slower than the network keeps them all. So every body takes
//! room in its fetcher's budget
//! ([`max_body_bytes_in_flight`](crate::FetcherBuilder::max_body_bytes_in_flight))
//! before it is read, and the room travels with the result until the
//! caller takes it (`engine/driver.rs`, `batch/responses.rs`); a request
//! that fails, or whose body is dropped, gives it back at once (by `Drop`:
//! a panic on the way gives it back too). One budget per fetcher, shared
//! by its clones and by every batch and single fetch on it.
//!
//! The rule, chosen so that no wait can be for ever:
//!
//! - A body whose length is known (`Content-Length`) takes that much room
//!   before its first byte is read. One whose length is not (chunked,
//!   close-delimited) takes 64 KiB first, then grows ahead of what it has
//!   read, doubling up to 1 MiB at a time; decoding a compressed body grows
//!   it the same way, and once whole it holds exactly what it holds in
//!   memory. (Bodies served from the cache, and the first 64 KiB of an
//!   error response kept for its message, take no room.)
//! - A body that holds no room yet takes it when it fits, or when nothing
//!   else holds any: a body larger than the whole budget is still fetched,
//!   alone (`body_limit` is the bound on one body). Otherwise it waits, in
//!   turn: while one waits, later ones queue behind it, so a large body is
//!   not starved by a stream of small ones.
//! - A body already growing (it holds room) grows when it fits. When it
//!   does not, and no body that is whole holds room (so no caller could
//!   give any back: every byte held is a body being read, and they would
//!   wait on one another), one body at a time may overdraw: it grows past
//!   the budget until it is whole. Otherwise it waits for a caller to take
//!   a result. So the bytes held stay within the larger of the budget and
//!   one body, plus one body.
//! - A request started on a thread busy with a batch of the same fetcher
//!   (a callback of `iter`, `for_each`, a `Deserialize` impl run by a
//!   worker), or by the `Deserialize` impl parsing a single fetch's body
//!   (which holds its room meanwhile), is *nested*: its batch's results
//!   (or that body) wait for that thread, which waits for it, so it never
//!   waits for them. It takes room as a growing
//!   body does: when it fits, or by the one overdraft, else it waits only
//!   for the body that overdraws to be whole. So a nested batch may hold
//!   more than the budget: the results it has not handed over, as without
//!   one (its concurrency bounds them).
//!
//! A wait is part of its attempt: it ends when the attempt's time runs out
//! (a `Timeout`, retried like one, which says nothing of the host) or its
//! batch's deadline passes or the batch is cancelled (`DeadlineExceeded`,
//! `Cancelled`). A caller that stops taking a batch's results (an `iter`
//! left unread while another thread fetches) makes other requests of the
//! fetcher wait, within those bounds.
//!
//! The default is a fixed 1 GiB, not a share of the machine's memory: what
//! `/proc/meminfo` says is the host's, not a container's limit, and a
//! default that differs from machine to machine makes a run hard to
//! repeat. 1 GiB keeps 256 × 20 MB documents within a quarter of a 4 GB
//! machine; a smaller machine, or a process doing more besides, sets less.
//!
//! A small body costs one compare-and-swap to take its room and one
//! subtraction to give it back (and a reference count): no lock, no clock
//! read, no allocation. The lock is taken only when the budget is full.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::cancel::Stop;
use crate::error::ErrorKind;

/// The default budget: 1 GiB (the module's doc says why).
pub(crate) const DEFAULT: u64 = 1 << 30;

/// The first room a body of unknown length takes, before its first read.
const FIRST_STEP: u64 = 64 << 10;

/// The most a body of unknown length grows by at once.
const STEP: u64 = 1 << 20;

/// How often a wait looks at its stop: a cancel does not wake it.
const LOOK_AGAIN: Duration = Duration::from_millis(10);

thread_local! {
    /// The budgets (by address) in which a body parsed on this thread
    /// holds room: a single fetch's, while its `Deserialize` impl runs.
    static PARSED_HERE: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// A fetcher's budget of body bytes in flight.
pub(crate) struct BodyBudget {
    limit: u64,
    /// Bytes held now, by every reservation.
    used: AtomicU64,
    /// Of those, bytes held by bodies that are whole (waiting for their
    /// caller to take them).
    whole: AtomicU64,
    /// Reservations waiting: while one does, a new one does not go first,
    /// and a release wakes them.
    waiting: AtomicUsize,
    queue: Mutex<Queue>,
    freed: Condvar,
}

/// Who waits for room, and who overdraws.
struct Queue {
    /// The turns of bodies waiting for their first room, in order.
    turns: VecDeque<u64>,
    next_turn: u64,
    /// Whether a body overdraws now (at most one does).
    overdrawn: bool,
}

/// Room taken in a budget: given back when dropped.
pub(crate) struct Reservation {
    budget: Arc<BodyBudget>,
    bytes: u64,
    /// Its request is nested (the module's doc): it never queues for room.
    nested: bool,
    /// It overdraws: the one body allowed past the budget.
    overdraws: bool,
    /// Its body is whole: its bytes count in `whole`.
    whole: bool,
}

/// Marks the calling thread as parsing a body that holds room in a
/// budget, until dropped (`Reservation::parsed_here`).
pub(crate) struct ParsedHere(usize);

/// The read of a body stopped while it waited for room; the kind of error
/// its request ends with if the stop is its own (else, a timeout).
#[derive(Debug)]
pub(crate) struct NoRoom(pub(crate) ErrorKind);

impl std::fmt::Display for NoRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped while waiting for room among the bodies in flight")
    }
}

impl std::error::Error for NoRoom {}

impl BodyBudget {
    /// A budget of `limit` bytes (at least 1).
    pub(crate) fn new(limit: u64) -> Arc<BodyBudget> {
        Arc::new(BodyBudget {
            limit: limit.max(1),
            used: AtomicU64::new(0),
            whole: AtomicU64::new(0),
            waiting: AtomicUsize::new(0),
            queue: Mutex::new(Queue {
                turns: VecDeque::new(),
                next_turn: 0,
                overdrawn: false,
            }),
            freed: Condvar::new(),
        })
    }

    /// The budget, in bytes.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// No room yet, for a body of a `nested` request: it grows with
    /// [`Reservation::grow_to`].
    pub(crate) fn none(self: &Arc<Self>, nested: bool) -> Reservation {
        Reservation {
            budget: Arc::clone(self),
            bytes: 0,
            nested,
            overdraws: false,
            whole: false,
        }
    }

    /// Whether a body holding room in this budget is parsed on the calling
    /// thread: a request started here (by its `Deserialize` impl) is
    /// nested, as that body waits for it.
    pub(crate) fn is_parsed_here(&self) -> bool {
        let key = std::ptr::from_ref(self) as usize;
        PARSED_HERE.with_borrow(|parsed| parsed.contains(&key))
    }

    /// Bytes held now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(SeqCst)
    }

    /// Takes `more` bytes if they fit (or, `alone`, if nothing is held).
    fn try_take(&self, more: u64, alone: bool) -> bool {
        let mut used = self.used.load(SeqCst);
        loop {
            let fits = used
                .checked_add(more)
                .is_some_and(|after| after <= self.limit || (alone && used == 0));
            if !fits {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, used + more, SeqCst, SeqCst)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Room came back, from the body that overdrew if `overdrew`: the
    /// turn to overdraw is free again, and those waiting are woken.
    fn room_given_back(&self, overdrew: bool) {
        if overdrew {
            self.queue.lock().overdrawn = false;
            self.freed.notify_all();
        } else {
            self.wake();
        }
    }

    /// Wakes those waiting for room, if any.
    fn wake(&self) {
        if self.waiting.load(SeqCst) > 0 {
            // Under the lock: a waiter between its look and its sleep
            // holds it, so the wake-up cannot fall between them.
            let _queue = self.queue.lock();
            self.freed.notify_all();
        }
    }
}

impl Reservation {
    /// The bytes it holds.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Marks the calling thread as parsing its body until dropped, if it
    /// holds room (`BodyBudget::is_parsed_here`).
    pub(crate) fn parsed_here(&self) -> Option<ParsedHere> {
        if self.bytes == 0 {
            return None;
        }
        let key = Arc::as_ptr(&self.budget) as usize;
        PARSED_HERE.with_borrow_mut(|parsed| parsed.push(key));
        Some(ParsedHere(key))
    }

    /// Holds at least `total` bytes, waiting for room as the module's doc
    /// says; the kind of error to end with if `stop` comes first.
    pub(crate) fn grow_to(&mut self, total: u64, stop: &Stop<'_>) -> Result<(), ErrorKind> {
        let Some(more) = total.checked_sub(self.bytes).filter(|&more| more > 0) else {
            return Ok(());
        };
        let budget = &*self.budget;
        let first = self.bytes == 0 && !self.nested;
        // The fast way: it fits, and no one waits before it.
        let in_turn = !first || budget.waiting.load(SeqCst) == 0;
        if !self.overdraws && in_turn && budget.try_take(more, first) {
            self.bytes += more;
            return Ok(());
        }
        self.wait_for(more, first, stop)
    }

    /// The slow way of [`grow_to`](Self::grow_to): under the lock, until
    /// `more` bytes are taken or `stop` comes.
    fn wait_for(&mut self, more: u64, first: bool, stop: &Stop<'_>) -> Result<(), ErrorKind> {
        let budget = Arc::clone(&self.budget);
        let mut queue = budget.queue.lock();
        let turn = first.then(|| {
            let turn = queue.next_turn;
            queue.next_turn = queue.next_turn.wrapping_add(1);
            queue.turns.push_back(turn);
            turn
        });
        budget.waiting.fetch_add(1, SeqCst);
        let taken = loop {
            let my_turn = turn.is_none_or(|turn| queue.turns.front() == Some(&turn));
            if my_turn && !self.overdraws && budget.try_take(more, first) {
                break Ok(());
            }
            // A body being read, or a nested request's, may overdraw: alone,
            // and (unless nested) only while no whole body holds room.
            let may_overdraw = !first
                && (self.overdraws
                    || (!queue.overdrawn && (self.nested || budget.whole.load(SeqCst) == 0)));
            // Past the budget, never past what the count holds: room a
            // lying Content-Length took must not wrap it round to little.
            if may_overdraw
                && budget
                    .used
                    .fetch_update(SeqCst, SeqCst, |used| used.checked_add(more))
                    .is_ok()
            {
                queue.overdrawn = true;
                self.overdraws = true;
                break Ok(());
            }
            if let Err(kind) = stop.check() {
                break Err(kind);
            }
            budget.freed.wait_for(&mut queue, stop.clip(LOOK_AGAIN));
        };
        if let Some(turn) = turn {
            queue.turns.retain(|queued| *queued != turn);
        }
        budget.waiting.fetch_sub(1, SeqCst);
        if turn.is_some() {
            // Out of the line: the next in turn may go now.
            budget.freed.notify_all();
        }
        drop(queue);
        if taken.is_ok() {
            self.bytes += more;
        }
        taken
    }

    /// Its body is read at `total` bytes: it holds exactly that, counted
    /// as whole, and lets another body overdraw.
    pub(crate) fn settle(&mut self, total: u64) {
        let budget = &*self.budget;
        // The bytes are in memory already: counted, not waited for.
        recount(&budget.used, self.bytes, total);
        recount(
            &budget.whole,
            if self.whole { self.bytes } else { 0 },
            total,
        );
        self.bytes = total;
        self.whole = true;
        budget.room_given_back(std::mem::take(&mut self.overdraws));
    }
}

/// `counter`, counting `to` bytes where it counted `from`.
fn recount(counter: &AtomicU64, from: u64, to: u64) {
    if to > from {
        counter.fetch_add(to - from, SeqCst);
    } else if to < from {
        counter.fetch_sub(from - to, SeqCst);
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let budget = &*self.budget;
        if self.bytes == 0 && !self.overdraws {
            return;
        }
        budget.used.fetch_sub(self.bytes, SeqCst);
        if self.whole {
            budget.whole.fetch_sub(self.bytes, SeqCst);
        }
        budget.room_given_back(self.overdraws);
    }
}

impl Drop for ParsedHere {
    fn drop(&mut self) {
        PARSED_HERE.with_borrow_mut(|parsed| {
            if let Some(at) = parsed.iter().rposition(|key| *key == self.0) {
                parsed.swap_remove(at);
            }
        });
    }
}

impl std::fmt::Debug for Reservation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reservation")
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

/// Reads from `inner`, growing `held` ahead of what it reads: a body of
/// unknown length, or what a compressed body decodes to. Past `known`
/// bytes (a length known, and held already), it reads without growing: a
/// read then only finds the end.
pub(crate) struct Metered<'a, 's, R> {
    inner: R,
    held: &'a mut Reservation,
    /// What `held` held for other bytes before this reader's first.
    base: u64,
    read: u64,
    known: Option<u64>,
    stop: &'a Stop<'s>,
}

impl<'a, 's, R: Read> Metered<'a, 's, R> {
    /// A reader of `inner` whose bytes `held` holds on top of `base`.
    pub(crate) fn new(
        inner: R,
        held: &'a mut Reservation,
        base: u64,
        known: Option<u64>,
        stop: &'a Stop<'s>,
    ) -> Self {
        Metered {
            inner,
            held,
            base,
            read: 0,
            known,
            stop,
        }
    }
}

impl<R: Read> Read for Metered<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let so_far = self.base.saturating_add(self.read);
        let mut ahead = self.held.bytes().saturating_sub(so_far);
        let whole = self.known.is_some_and(|known| self.read >= known);
        if ahead == 0 && !whole {
            // Doubling from 64 KiB: a small body holds little.
            let step = self.read.clamp(FIRST_STEP, STEP);
            self.held
                .grow_to(so_far.saturating_add(step), self.stop)
                .map_err(|kind| io::Error::other(NoRoom(kind)))?;
            ahead = self.held.bytes().saturating_sub(so_far);
        }
        let most = if whole {
            buf.len()
        } else {
            usize::try_from(ahead).unwrap_or(usize::MAX).min(buf.len())
        };
        let n = self.inner.read(&mut buf[..most])?;
        self.read = self.read.saturating_add(n as u64);
        Ok(n)
    }
}

/// Room for what a body decodes to, in the reservation of the body it
/// decodes (which holds that body too, while it decodes).
pub(crate) struct Room<'a, 's> {
    held: &'a mut Reservation,
    stop: &'a Stop<'s>,
}

impl<'a, 's> Room<'a, 's> {
    /// Room in `held`, waiting for it until `stop`.
    pub(crate) fn new(held: &'a mut Reservation, stop: &'a Stop<'s>) -> Self {
        Room { held, stop }
    }

    /// A reader of `inner` (a decoder) whose bytes go on top of `base`
    /// bytes held already (the input and what was decoded before).
    pub(crate) fn reader<R: Read>(&mut self, inner: R, base: u64) -> Metered<'_, 's, R> {
        Metered::new(inner, self.held, base, None, self.stop)
    }

    /// The bytes held now.
    pub(crate) fn held(&self) -> u64 {
        self.held.bytes()
    }
}

/// The kind of stop a read error is, if a wait for room ended it.
pub(crate) fn no_room(error: &io::Error) -> Option<ErrorKind> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<NoRoom>())
        .map(|NoRoom(kind)| *kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn never() -> Stop<'static> {
        Stop::default()
    }

    fn at_once() -> Stop<'static> {
        Stop {
            deadline: Some(Instant::now()),
            cancel: None,
        }
    }

    #[test]
    fn room_is_taken_while_it_fits_and_given_back_on_drop() {
        let budget = BodyBudget::new(100);
        let mut a = budget.none(false);
        a.grow_to(60, &never()).unwrap();
        let mut b = budget.none(false);
        assert_eq!(b.grow_to(50, &at_once()), Err(ErrorKind::DeadlineExceeded));
        assert_eq!(budget.used(), 60, "a wait that ended took nothing");
        b.grow_to(40, &never()).unwrap();
        assert_eq!(budget.used(), 100);
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_body_larger_than_the_budget_goes_alone() {
        let budget = BodyBudget::new(10);
        let mut big = budget.none(false);
        big.grow_to(1_000, &never()).unwrap();
        let mut small = budget.none(false);
        assert!(small.grow_to(1, &at_once()).is_err());
        drop(big);
        small.grow_to(1, &never()).unwrap();
    }

    #[test]
    fn one_growing_body_overdraws_while_no_whole_body_holds_room() {
        let budget = BodyBudget::new(10);
        let (mut a, mut b) = (budget.none(false), budget.none(false));
        a.grow_to(5, &never()).unwrap();
        b.grow_to(5, &never()).unwrap();
        // Both are being read and the budget is full: one may go past it.
        a.grow_to(20, &never()).unwrap();
        assert!(b.grow_to(6, &at_once()).is_err(), "one at a time");
        a.settle(20);
        // A whole body holds room now: its caller will give it back.
        assert!(b.grow_to(6, &at_once()).is_err());
        drop(a);
        b.grow_to(6, &never()).unwrap();
        assert_eq!(budget.used(), 6);
    }

    #[test]
    fn a_nested_request_does_not_wait_for_whole_bodies() {
        let budget = BodyBudget::new(10);
        let mut held = budget.none(false);
        held.grow_to(10, &never()).unwrap();
        held.settle(10);
        let mut nested = budget.none(true);
        nested.grow_to(5, &at_once()).unwrap();
        drop((held, nested));
        assert_eq!(budget.used(), 0);
    }

    // From review of the body budget (issue 23).
    #[test]
    fn an_overdraft_never_wraps_the_count_round() {
        let budget = BodyBudget::new(10);
        // A Content-Length near u64::MAX (a body limit of u64::MAX), alone.
        let mut lying = budget.none(false);
        lying.grow_to(u64::MAX - 5, &never()).unwrap();
        // A nested request may overdraw, but not past what the count holds.
        let mut nested = budget.none(true);
        assert_eq!(
            nested.grow_to(10, &at_once()),
            Err(ErrorKind::DeadlineExceeded)
        );
        assert_eq!(budget.used(), u64::MAX - 5);
        let mut other = budget.none(false);
        let waited = other.grow_to(5, &at_once());
        assert_eq!(waited, Err(ErrorKind::DeadlineExceeded), "the budget holds");
        drop(lying);
        nested.grow_to(10, &never()).unwrap();
        assert_eq!(budget.used(), 10);
    }

    #[test]
    fn a_waiting_body_goes_before_later_ones() {
        let budget = BodyBudget::new(10);
        let mut first = budget.none(false);
        first.grow_to(8, &never()).unwrap();
        std::thread::scope(|scope| {
            let large = scope.spawn(|| {
                let mut large = budget.none(false);
                large.grow_to(9, &never()).map(|()| large)
            });
            while budget.waiting.load(SeqCst) == 0 {
                std::thread::yield_now();
            }
            // Two bytes fit, but the large body waits before them.
            let mut later = budget.none(false);
            assert!(later.grow_to(2, &at_once()).is_err());
            drop(first);
            let large = large.join().unwrap().unwrap();
            assert_eq!(large.bytes(), 9);
        });
    }

    #[test]
    fn a_metered_read_holds_what_it_read_and_a_step_more() {
        let budget = BodyBudget::new(1 << 30);
        let mut held = budget.none(false);
        let body = vec![7u8; 3 << 20];
        let mut read = Vec::new();
        Metered::new(&body[..], &mut held, 0, None, &never())
            .read_to_end(&mut read)
            .unwrap();
        assert_eq!(read, body);
        assert!(held.bytes() >= body.len() as u64);
        assert!(held.bytes() <= body.len() as u64 + STEP);
        held.settle(body.len() as u64);
        assert_eq!(budget.used(), body.len() as u64);
    }

    #[test]
    fn a_metered_read_stopped_says_why() {
        let budget = BodyBudget::new(10);
        let mut other = budget.none(false);
        other.grow_to(10, &never()).unwrap();
        let mut held = budget.none(false);
        let error = Metered::new(&b"{}"[..], &mut held, 0, None, &at_once())
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(no_room(&error), Some(ErrorKind::DeadlineExceeded));
    }
}
