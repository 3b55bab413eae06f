//! Stopping a batch early: a cancel token, and a batch's deadline.
//!
//! A stop never interrupts an exchange already under way from the outside
//! (a blocking read cannot be), so instead it is checked wherever a request
//! would wait or start something new: before each attempt, during retry
//! delays and gate waits (which it cuts short), and between body reads.
//! Each attempt's timeout is also clipped to the time left before the
//! deadline, so that nothing runs past it. A read waiting on the socket is
//! the one wait that no check reaches from outside: while an attempt of a
//! cancellable batch runs, its token is "watched" on its thread, and the
//! socket layer (`agent.rs`) waits in short slices, looking at it between
//! them.

use std::cell::RefCell;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::clock::{self, Clock};
use crate::error::ErrorKind;

/// Cancels the batches it is given to: no new attempt starts, waits are cut
/// short, and every unfinished request ends with
/// [`ErrorKind::Cancelled`](crate::ErrorKind::Cancelled).
///
/// Clones share one flag: keep a clone, pass another to
/// [`Batch::cancel_token`](crate::Batch::cancel_token), and call
/// [`cancel`](CancelToken::cancel) from any thread (a Ctrl-C handler, a
/// watchdog).
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
    /// Tokens cancelled with this one (`child`).
    children: Mutex<Vec<Weak<Inner>>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Cancels every batch holding a clone of this token. Idempotent.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::Release);
        {
            let _guard = self.inner.lock.lock();
            self.inner.wake.notify_all();
        }
        let children = std::mem::take(&mut *self.inner.children.lock());
        for child in children.iter().filter_map(Weak::upgrade) {
            CancelToken { inner: child }.cancel();
        }
    }

    /// A token cancelled with this one, or alone (a batch's own, which
    /// dropping its iterator cancels without cancelling the caller's).
    pub(crate) fn child(&self) -> CancelToken {
        let child = CancelToken::new();
        let mut children = self.inner.children.lock();
        // Checked under the lock `cancel` takes after setting the flag:
        // either it sees the child, or the child sees the flag.
        if self.is_cancelled() {
            child.cancel();
        } else {
            children.retain(|weak| weak.strong_count() > 0);
            children.push(Arc::downgrade(&child.inner));
        }
        drop(children);
        child
    }

    /// Whether [`cancel`](CancelToken::cancel) has been called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Waits up to `duration`; returns early, `true`, if cancelled.
    fn wait(&self, duration: Duration) -> bool {
        let until = clock::after(Instant::now(), duration);
        let mut guard = self.inner.lock.lock();
        while !self.is_cancelled() {
            match until {
                Some(until) => {
                    if self.inner.wake.wait_until(&mut guard, until).timed_out() {
                        break;
                    }
                }
                None => self.inner.wake.wait(&mut guard),
            }
        }
        self.is_cancelled()
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// How long a read of a cancellable attempt waits before it looks at the
/// token again: the most a cancel waits for a stalled server.
pub(crate) const WATCH_SLICE: Duration = Duration::from_millis(100);

thread_local! {
    /// The token of the attempt running on this thread, if it has one.
    static WATCHED: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

/// Keeps a token watched on this thread until dropped.
pub(crate) struct Watching {
    previous: Option<CancelToken>,
}

impl CancelToken {
    /// Watches this token on the calling thread until the guard drops.
    pub(crate) fn watch(&self) -> Watching {
        let previous = WATCHED.with_borrow_mut(|watched| watched.replace(self.clone()));
        Watching { previous }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let previous = self.previous.take();
        WATCHED.with_borrow_mut(|watched| *watched = previous);
    }
}

/// Whether a token is watched on this thread, and if so, whether it is
/// cancelled.
pub(crate) fn watched() -> Option<bool> {
    WATCHED.with_borrow(|watched| watched.as_ref().map(CancelToken::is_cancelled))
}

/// The cause of a read stopped by a cancelled batch.
#[derive(Debug, thiserror::Error)]
#[error("the batch was cancelled while the response was read")]
pub(crate) struct Cancelled;

/// When a request must give up: a batch's deadline and cancel token.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Stop<'a> {
    pub(crate) deadline: Option<Instant>,
    pub(crate) cancel: Option<&'a CancelToken>,
}

impl Stop<'_> {
    /// The kind of error to end with, if the request must stop now.
    pub(crate) fn check(&self) -> Result<(), ErrorKind> {
        if self.cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(ErrorKind::Cancelled);
        }
        match self.deadline {
            Some(deadline) if Instant::now() >= deadline => Err(ErrorKind::DeadlineExceeded),
            _ => Ok(()),
        }
    }

    /// `timeout`, or less if the deadline comes first.
    pub(crate) fn clip(&self, timeout: Duration) -> Duration {
        match self.deadline {
            Some(deadline) => timeout.min(deadline.saturating_duration_since(Instant::now())),
            None => timeout,
        }
    }

    /// Whether a wait of `duration` from now would pass the deadline.
    pub(crate) fn passes_deadline(&self, duration: Duration) -> bool {
        self.deadline.is_some_and(|deadline| {
            clock::after(Instant::now(), duration).is_none_or(|end| end > deadline)
        })
    }

    /// Waits `duration`, unless the request must stop first (then it says
    /// why, as soon as it is known: a wait past the deadline fails at once).
    pub(crate) fn sleep(&self, clock: &dyn Clock, duration: Duration) -> Result<(), ErrorKind> {
        self.check()?;
        if self.passes_deadline(duration) {
            return Err(ErrorKind::DeadlineExceeded);
        }
        match self.cancel {
            Some(cancel) if cancel.wait(duration) => Err(ErrorKind::Cancelled),
            Some(_) => Ok(()),
            None => {
                clock.sleep(duration);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn cancel_wakes_a_waiting_thread() {
        let token = CancelToken::new();
        let waiter = {
            let token = token.clone();
            std::thread::spawn(move || {
                let stop = Stop {
                    deadline: None,
                    cancel: Some(&token),
                };
                stop.sleep(&ManualClock::default(), Duration::from_secs(60))
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        token.cancel();
        assert_eq!(waiter.join().unwrap(), Err(ErrorKind::Cancelled));
        assert!(token.is_cancelled());
    }

    #[test]
    fn a_child_is_cancelled_with_its_parent_and_alone() {
        let parent = CancelToken::new();
        let child = parent.child();
        child.cancel();
        assert!(!parent.is_cancelled(), "a child's cancel stays its own");
        let other = parent.child();
        parent.cancel();
        assert!(other.is_cancelled());
        assert!(parent.child().is_cancelled(), "born of a cancelled token");
    }

    #[test]
    fn a_wait_past_the_deadline_fails_at_once() {
        let clock = ManualClock::default();
        let stop = Stop {
            deadline: crate::clock::after(Instant::now(), Duration::from_secs(1)),
            cancel: None,
        };
        assert_eq!(
            stop.sleep(&clock, Duration::from_secs(5)),
            Err(ErrorKind::DeadlineExceeded)
        );
        assert!(clock.sleeps().is_empty(), "it did not sleep first");
        assert_eq!(stop.sleep(&clock, Duration::from_millis(10)), Ok(()));
        assert!(stop.clip(Duration::from_secs(30)) <= Duration::from_secs(1));
        let past = Stop {
            deadline: Some(Instant::now()),
            cancel: None,
        };
        assert_eq!(past.check(), Err(ErrorKind::DeadlineExceeded));
    }
}
