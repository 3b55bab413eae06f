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
//! `Deserialize` impl has its own, so nesting never waits on itself.
//! Small documents take no slot: parsing one is shorter than waiting.

use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

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
    /// `None` for a small one.
    pub(crate) fn take(self: &Arc<Self>, len: usize) -> Option<ParseSlot> {
        if len < LARGE {
            return None;
        }
        let mut free = self.free.lock();
        while *free == 0 {
            self.freed.wait(&mut free);
        }
        *free -= 1;
        Some(ParseSlot {
            slots: Arc::clone(self),
        })
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
        let _held = slots.take(LARGE);
        assert!(slots.take(LARGE - 1).is_none());
    }

    #[test]
    fn no_more_large_parses_at_once_than_slots() {
        let slots = ParseSlots::new(2);
        let (now, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..20 {
                        let _slot = slots.take(LARGE);
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
}
