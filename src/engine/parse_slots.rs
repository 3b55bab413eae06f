//! How many large documents a batch parses, and holds parsed for its
//! caller, at once: no more than the machine has cores.
//!
//! A parsed document takes several times its body's size (a generic
//! `Value` of an 8 MB document, about ten times), and parsing is work for
//! a core, not for the network. With 64 requests in flight and every
//! worker parsing its 8 MB document at once, a batch held 5.9 GB where the
//! bodies alone were 430 MB. So a worker whose body is [`LARGE`] or more
//! takes a slot before it parses, and the slot travels with the result
//! until the caller takes it: the large documents parsed and not yet
//! handed over stay as many as the cores, whatever the concurrency and
//! however slow the caller. The other workers wait with their bodies,
//! which the concurrency already bounds.
//!
//! Slots are per batch: a batch started from a callback or a
//! `Deserialize` impl has its own, so nesting never waits on itself. A
//! worker waiting for one gives up when its batch's deadline or its
//! request's own passes, or the batch is cancelled: a slow `Deserialize`
//! holding the slots must not keep a request past its deadline.
//! Small documents take no slot: parsing one is shorter than waiting.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use super::POLL;
use crate::cancel::Stop;
use crate::error::ErrorKind;

/// Bodies of this many bytes or more take a slot before they are parsed.
pub(crate) const LARGE: usize = 1 << 20;

/// A batch's parse slots.
pub(crate) struct ParseSlots {
    free: Mutex<usize>,
    freed: Condvar,
}

/// A slot taken: given back when dropped.
pub(crate) struct ParseSlot {
    slots: Arc<ParseSlots>,
}

impl ParseSlots {
    /// As many slots as the machine has cores (at least one).
    pub(crate) fn for_this_machine() -> Arc<ParseSlots> {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        ParseSlots::new(cores)
    }

    /// `count` slots (at least one).
    pub(crate) fn new(count: usize) -> Arc<ParseSlots> {
        Arc::new(ParseSlots {
            free: Mutex::new(count.max(1)),
            freed: Condvar::new(),
        })
    }

    /// A slot for a body of `len` bytes, waiting for one if it is large;
    /// `None` for a small one; the kind of error to end with if `stop`
    /// comes first.
    pub(crate) fn take(
        self: &Arc<Self>,
        len: usize,
        stop: &Stop<'_>,
    ) -> Result<Option<ParseSlot>, ErrorKind> {
        if len < LARGE {
            return Ok(None);
        }
        let mut free = self.free.lock();
        while *free == 0 {
            stop.check()?;
            // A cancel does not wake this wait: it looks again within POLL.
            self.freed.wait_for(&mut free, stop.clip(POLL));
        }
        *free -= 1;
        Ok(Some(ParseSlot {
            slots: Arc::clone(self),
        }))
    }
}

impl Drop for ParseSlot {
    fn drop(&mut self) {
        *self.slots.free.lock() += 1;
        self.slots.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn small_bodies_take_no_slot() {
        let slots = ParseSlots::new(1);
        let _held = slots.take(LARGE, &Stop::default());
        assert!(matches!(slots.take(LARGE - 1, &Stop::default()), Ok(None)));
    }

    #[test]
    fn no_more_large_parses_at_once_than_slots() {
        let slots = ParseSlots::new(2);
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let _slot = slots.take(LARGE, &Stop::default());
                        let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(at_once, Ordering::SeqCst);
                        std::thread::yield_now();
                        now.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!((1..=2).contains(&most.load(Ordering::SeqCst)));
    }

    #[test]
    fn a_worker_waiting_for_a_slot_stops_at_the_deadline() {
        let slots = ParseSlots::new(1);
        let _held = slots.take(LARGE, &Stop::default());
        let stop = Stop {
            deadline: Some(std::time::Instant::now()),
            cancel: None,
        };
        assert!(matches!(
            slots.take(LARGE, &stop),
            Err(ErrorKind::DeadlineExceeded)
        ));
    }
}
