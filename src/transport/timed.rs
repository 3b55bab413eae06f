//! Every read and write of an attempt bounded by the attempt's time, and
//! the connections counted.
//!
//! - **Timeouts.** One attempt, redirects and body included, has one
//!   budget: ureq's global timeout, which it checks before every read and
//!   write, during DNS, connect and the TLS handshake. ureq hands each read
//!   the time left, and its socket sets a new `SO_RCVTIMEO` whenever that
//!   value changes: a syscall per read, which cost a third of the
//!   throughput on 256 KB bodies. So the time left is rounded up to a
//!   coarse grid (at most an eighth more than the budget's rest) before it
//!   reaches the socket: the value then changes a handful of times in an
//!   attempt, and the attempt still ends within 1.125 times its timeout
//!   whatever the server sends, a byte at a time included.
//! - **Cancellation.** A batch's cancel must not wait for a server that
//!   stalls: while an attempt of a cancellable batch reads, the wait is cut
//!   into slices of 100 ms, with a look at the token between them (whose
//!   constant value costs no extra syscall).
//!
//! - **One liveness probe per reuse.** ureq probes a pooled connection
//!   (is the server's FIN or stray bytes waiting?) when it goes back to the
//!   pool, and again when it comes out, there under the pool's one lock:
//!   three system calls each time (a non-blocking read between two
//!   `ioctl`s), six per request, the second three while every other thread
//!   waits for the lock. Like curl and urllib3, which look once, a
//!   connection here is probed once: when it goes back. Taken out again
//!   within [`PROBE_TRUSTED_FOR`], by a request that may be resent if the
//!   connection turns out closed after all (the attempt loop resends those
//!   at once, `attempt.rs`), it is not probed again. A request that may not
//!   be resent (a POST), or a connection idle for longer, is probed when
//!   it comes out, as before.
//!
//! Connections are counted by the same connector that wraps sockets for the
//! timeouts: ureq calls it only when a new transport was made, never for a
//! pooled one. A thread-local copy of the count tells the attempt loop
//! whether its attempt ran on a pooled connection.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ureq::unversioned::transport::time::Duration as UreqDuration;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

use crate::cancel::{self, Cancelled};
use crate::stats::Recorder;

thread_local! {
    /// Connections this thread has opened, across all fetchers.
    static OPENED_ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
    /// CONNECT tunnels this thread has opened through a proxy.
    static TUNNELS_OPENED_ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
    /// When the attempt running on this thread must end, if one is.
    static ATTEMPT_ENDS: Cell<Option<Instant>> = const { Cell::new(None) };
    /// Whether the request this thread is sending may be resent on a new
    /// connection if its pooled one turns out closed.
    static RESENDABLE: Cell<bool> = const { Cell::new(false) };
}

/// How long a connection's probe, made as it went back to the pool, stands
/// for a request that may be resent: well under any server's idle timeout
/// (nginx 75 s, Apache and Node 5 s), and long enough to cover the gap
/// between two requests of a busy worker.
pub(crate) const PROBE_TRUSTED_FOR: Duration = Duration::from_millis(100);

/// While it lives, a pooled connection the calling thread takes out is
/// trusted on its last probe (see the module docs) if `resendable`: the
/// request going out may be resent should the connection be closed.
pub(crate) fn sending(resendable: bool) -> Sending {
    Sending(RESENDABLE.with(|cell| cell.replace(resendable)))
}

/// Restores the enclosing request's mark on drop.
pub(crate) struct Sending(bool);

impl Drop for Sending {
    fn drop(&mut self) {
        RESENDABLE.with(|cell| cell.set(self.0));
    }
}

/// The number of CONNECT tunnels the calling thread has opened so far: an
/// attempt that opened one got past the proxy.
pub(crate) fn tunnels_opened_on_this_thread() -> u64 {
    TUNNELS_OPENED_ON_THIS_THREAD.with(Cell::get)
}

/// While it lives, no read or write of the calling thread waits past
/// `ends`: the whole attempt's bound, whatever wait ureq hands a transport
/// (it hands the reads of a CONNECT answer the same wait, again and
/// again, so a proxy trickling its answer would never time out).
pub(crate) fn attempt_ends_at(ends: Option<Instant>) -> AttemptEnds {
    AttemptEnds(ATTEMPT_ENDS.with(|cell| cell.replace(ends)))
}

/// Restores the end of the enclosing attempt (a nested batch's) on drop.
pub(crate) struct AttemptEnds(Option<Instant>);

impl Drop for AttemptEnds {
    fn drop(&mut self) {
        ATTEMPT_ENDS.with(|cell| cell.set(self.0));
    }
}

/// `timeout`, cut to what is left of the calling thread's attempt; a
/// timeout error if nothing is.
fn within_attempt(timeout: NextTimeout) -> Result<NextTimeout, ureq::Error> {
    let Some(ends) = ATTEMPT_ENDS.with(Cell::get) else {
        return Ok(timeout);
    };
    let left = ends.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ureq::Error::Timeout(ureq::Timeout::Global));
    }
    Ok(match timeout.after {
        UreqDuration::Exact(after) if after <= left => timeout,
        _ => NextTimeout {
            after: UreqDuration::Exact(left),
            ..timeout
        },
    })
}

/// The number of connections the calling thread has opened so far. An
/// attempt that leaves it unchanged ran on a pooled connection.
pub(crate) fn opened_on_this_thread() -> u64 {
    OPENED_ON_THIS_THREAD.with(Cell::get)
}

/// Wraps each new socket in a [`Timed`] transport, and counts it.
#[derive(Debug)]
pub(crate) struct TimedConnector {
    pub(crate) stats: Arc<Recorder>,
}

impl<In: Transport> Connector<In> for TimedConnector {
    type Out = Timed<In>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Timed<In>>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        // Through a CONNECT tunnel, the chain runs twice: once for the
        // socket to the proxy (counted then), once for the tunnel in it,
        // open by then.
        if details.config.proxy().is_none() {
            self.stats.connection_opened();
            OPENED_ON_THIS_THREAD.with(|opened| opened.set(opened.get() + 1));
        } else {
            TUNNELS_OPENED_ON_THIS_THREAD.with(|opened| opened.set(opened.get() + 1));
        }
        Ok(Some(Timed {
            inner: transport,
            probed: None,
        }))
    }
}

/// A transport that hands its socket a coarse timeout, and probes its
/// connection once per reuse (see the module docs).
#[derive(Debug)]
pub(crate) struct Timed<T> {
    inner: T,
    /// When the connection last passed a probe, if no request has taken
    /// it out since.
    probed: Option<Instant>,
}

impl<T: Transport> Transport for Timed<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.inner
            .transmit_output(amount, coarse(within_attempt(timeout)?))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        let timeout = within_attempt(timeout)?;
        if cancel::watched().is_none() {
            return self.inner.await_input(coarse(timeout));
        }
        // A cancellable attempt: wait in slices, and look at the token
        // between them, so that a cancel never waits for a stalled server.
        let started = Instant::now();
        loop {
            if cancel::watched() == Some(true) {
                return Err(std::io::Error::other(Cancelled).into());
            }
            let left = match timeout.after {
                UreqDuration::Exact(after) => after.saturating_sub(started.elapsed()),
                UreqDuration::NotHappening => Duration::MAX,
            };
            let slice = left.min(cancel::WATCH_SLICE);
            let sliced = NextTimeout {
                after: UreqDuration::Exact(slice),
                ..timeout
            };
            match self.inner.await_input(coarse(sliced)) {
                Err(ureq::Error::Timeout(_)) if slice < left => {}
                other => return other,
            }
        }
    }

    fn is_open(&mut self) -> bool {
        // ureq asks as the connection goes back (nothing recorded: probe)
        // and as it comes out (the probe then stands, if recent and the
        // request may be resent).
        if let Some(probed) = self.probed.take() {
            if RESENDABLE.with(Cell::get) && probed.elapsed() < PROBE_TRUSTED_FOR {
                return true;
            }
        }
        let open = self.inner.is_open();
        if open {
            self.probed = Some(Instant::now());
        }
        open
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// `timeout` with its time left rounded up onto a grid whose step is at
/// most an eighth of it, so that consecutive reads mostly see one value.
fn coarse(mut timeout: NextTimeout) -> NextTimeout {
    if let UreqDuration::Exact(left) = timeout.after {
        timeout.after = UreqDuration::Exact(round_up(left));
    }
    timeout
}

fn round_up(left: Duration) -> Duration {
    let nanos = crate::clock::nanos(left);
    let step = (nanos / 16)
        .max(1)
        .checked_next_power_of_two()
        .unwrap_or(1 << 63);
    Duration::from_nanos(nanos.div_ceil(step).saturating_mul(step))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::unversioned::transport::LazyBuffers;

    /// A connection that counts its probes.
    #[derive(Debug)]
    struct Counted {
        buffers: LazyBuffers,
        probes: u32,
    }

    impl Transport for Counted {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), ureq::Error> {
            Ok(())
        }
        fn await_input(&mut self, _: NextTimeout) -> Result<bool, ureq::Error> {
            Ok(false)
        }
        fn is_open(&mut self) -> bool {
            self.probes += 1;
            true
        }
        fn is_tls(&self) -> bool {
            false
        }
    }

    fn connection() -> Timed<Counted> {
        Timed {
            inner: Counted {
                buffers: LazyBuffers::new(16, 16),
                probes: 0,
            },
            probed: None,
        }
    }

    #[test]
    fn a_connection_is_probed_once_per_reuse_by_a_request_that_may_be_resent() {
        let mut conn = connection();
        let _sending = sending(true);
        for reuse in 1..=3 {
            assert!(conn.is_open()); // back to the pool
            assert!(conn.is_open()); // out again, at once
            assert_eq!(conn.inner.probes, reuse);
        }
    }

    #[test]
    fn a_request_that_may_not_be_resent_has_its_connection_probed_as_it_comes_out() {
        let mut conn = connection();
        let _sending = sending(false);
        assert!(conn.is_open());
        assert!(conn.is_open());
        assert_eq!(conn.inner.probes, 2);
    }

    #[test]
    fn a_connection_idle_for_long_is_probed_as_it_comes_out() {
        let mut conn = connection();
        let _sending = sending(true);
        assert!(conn.is_open());
        conn.probed = conn.probed.and_then(|at| at.checked_sub(PROBE_TRUSTED_FOR));
        assert!(conn.is_open());
        assert_eq!(conn.inner.probes, 2);
    }

    #[test]
    fn timeouts_are_rounded_up_by_at_most_an_eighth() {
        for millis in [1, 7, 999, 1000, 1001, 29_999, 30_000, 86_400_000] {
            let left = Duration::from_millis(millis);
            let rounded = round_up(left);
            assert!(rounded >= left, "{left:?} -> {rounded:?}");
            assert!(rounded <= left + left / 8, "{left:?} -> {rounded:?}");
        }
        assert_eq!(round_up(Duration::ZERO), Duration::ZERO);
        // Reads a few milliseconds apart see the same value.
        let first = round_up(Duration::from_millis(29_990));
        assert_eq!(round_up(Duration::from_millis(29_950)), first);
        // Nothing overflows, however long.
        let _ = round_up(Duration::MAX);
    }
}
