//! Where a batch's workers leave their results for the caller, and how
//! often they wake it.
//!
//! Waking the caller's thread for each result costs a system call and a
//! context switch, per request: with small documents, as much as parsing
//! one. The caller of `iter` may want each result as soon as it is there,
//! so there every result wakes it. `for_each` and `collect` only need all
//! of them, soon: there a worker wakes the caller once a handful of
//! results wait, and the caller, asleep with nothing to take, looks again
//! after [`LINGER`] at most, so that a result waits no longer than that
//! for a handful to gather. A worker with nothing to take always wakes it
//! (the caller feeds it then), as does the last worker to end.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// The longest a caller that takes results in handfuls sleeps before it
/// looks for results anyway.
const LINGER: Duration = Duration::from_millis(5);

/// A batch's results on their way to the caller.
pub(super) struct Mailbox<M> {
    state: Mutex<State<M>>,
    /// The caller may have something to take.
    arrived: Condvar,
    /// A worker may have room to leave a result.
    taken: Condvar,
    capacity: usize,
    /// How many results wait before a worker wakes the caller.
    handful: usize,
}

struct State<M> {
    waiting: VecDeque<M>,
    caller_asleep: bool,
    caller_left: bool,
    /// Workers that may still leave something.
    posters: usize,
}

/// A worker's way to leave results; the last one dropped wakes the caller.
pub(super) struct Poster<M> {
    mailbox: Arc<Mailbox<M>>,
}

impl<M> Mailbox<M> {
    /// A mailbox for `posters` workers holding up to `capacity` results;
    /// with `handful` above 1, the caller is woken in handfuls.
    pub(super) fn new(capacity: usize, handful: usize, posters: usize) -> Arc<Mailbox<M>> {
        Arc::new(Mailbox {
            state: Mutex::new(State {
                waiting: VecDeque::with_capacity(capacity),
                caller_asleep: false,
                caller_left: false,
                posters,
            }),
            arrived: Condvar::new(),
            taken: Condvar::new(),
            capacity: capacity.max(1),
            handful: handful.max(1),
        })
    }

    /// One of the `posters` the mailbox was made for.
    pub(super) fn poster(self: &Arc<Self>) -> Poster<M> {
        Poster {
            mailbox: Arc::clone(self),
        }
    }

    /// Moves every result waiting into `into`, sleeping until there is
    /// one; `false` when no worker is left and nothing waits.
    pub(super) fn take_all(&self, into: &mut VecDeque<M>) -> bool {
        let mut state = self.state.lock();
        loop {
            if !state.waiting.is_empty() {
                into.append(&mut state.waiting);
                self.taken.notify_all();
                return true;
            }
            if state.posters == 0 {
                return false;
            }
            state.caller_asleep = true;
            if self.handful > 1 {
                self.arrived.wait_for(&mut state, LINGER);
            } else {
                self.arrived.wait(&mut state);
            }
            state.caller_asleep = false;
        }
    }

    /// The caller left: what waits is dropped, and workers leave nothing
    /// more.
    pub(super) fn caller_left(&self) {
        let dropped = {
            let mut state = self.state.lock();
            state.caller_left = true;
            std::mem::take(&mut state.waiting)
        };
        self.taken.notify_all();
        drop(dropped);
    }
}

impl<M> Poster<M> {
    /// Leaves `message`, waiting for room; `urgent` wakes the caller at
    /// once. `false` once the caller left.
    pub(super) fn post(&self, message: M, urgent: bool) -> bool {
        let mailbox = &*self.mailbox;
        let mut state = mailbox.state.lock();
        while state.waiting.len() >= mailbox.capacity && !state.caller_left {
            mailbox.taken.wait(&mut state);
        }
        if state.caller_left {
            return false;
        }
        state.waiting.push_back(message);
        if state.caller_asleep && (urgent || state.waiting.len() >= mailbox.handful) {
            mailbox.arrived.notify_one();
        }
        true
    }

    /// Leaves `message` if there is room, waking the caller: for a worker
    /// that has nothing to take. A full mailbox has woken it already.
    pub(super) fn try_post(&self, message: M) {
        let mailbox = &*self.mailbox;
        let mut state = mailbox.state.lock();
        if state.waiting.len() < mailbox.capacity && !state.caller_left {
            state.waiting.push_back(message);
            mailbox.arrived.notify_one();
        }
    }
}

impl<M> Drop for Poster<M> {
    fn drop(&mut self) {
        let mut state = self.mailbox.state.lock();
        state.posters = state.posters.saturating_sub(1);
        if state.posters == 0 {
            self.mailbox.arrived.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caller_gets_every_result_and_then_the_end() {
        let mailbox = Mailbox::new(4, 3, 2);
        std::thread::scope(|scope| {
            for worker in 0..2 {
                let poster = mailbox.poster();
                scope.spawn(move || {
                    for i in 0..100 {
                        assert!(poster.post(worker * 100 + i, false));
                    }
                });
            }
            let mut taken = VecDeque::new();
            let mut all = Vec::new();
            while mailbox.take_all(&mut taken) {
                all.extend(taken.drain(..));
            }
            all.sort_unstable();
            assert_eq!(all, (0..200).collect::<Vec<_>>());
        });
    }

    #[test]
    fn a_worker_leaves_nothing_once_the_caller_left() {
        let mailbox = Mailbox::new(1, 1, 1);
        let poster = mailbox.poster();
        assert!(poster.post(1, false));
        std::thread::scope(|scope| {
            // Full: it waits for room until the caller leaves.
            let blocked = scope.spawn(|| poster.post(2, false));
            std::thread::sleep(Duration::from_millis(20));
            mailbox.caller_left();
            assert!(!blocked.join().unwrap());
        });
    }
}
