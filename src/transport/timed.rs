//! Every read and write of an attempt bounded by the attempt's time, the
//! connections counted, and a pooled one probed once per reuse.
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
//! - **One liveness probe per reuse, outside the pool's lock.** ureq
//!   probes a pooled connection (is the server's FIN or stray bytes
//!   waiting?) when it goes back to the pool, and again when it comes out,
//!   there under the pool's one lock: three system calls each time (a
//!   non-blocking read between two `ioctl`s), six per request, three of
//!   them while every other thread waits for the lock. Here a connection
//!   is probed once, as late as can be: just before the first byte of the
//!   next request is written on it (curl and urllib3 look once too, as
//!   they pick the connection). Only that look sees what the server sent
//!   while the connection sat idle: a close, or bytes nobody asked for (a
//!   second answer, a 408), which would otherwise be read as the answer to
//!   the next request. A connection found so is dropped and the request,
//!   none of it sent, goes on another (`attempt.rs`), whatever its method.
//!   After [`UNSENT_LOOKS`] such finds in a row, the request's next
//!   connection is probed as it comes out, as ureq does, which drops every
//!   closed one in the pool before a new one is made.
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
    /// Whether pooled connections this thread takes out are probed as
    /// they come out (ureq's way), not just before the first write.
    static PROBE_AS_TAKEN_OUT: Cell<bool> = const { Cell::new(false) };
}

/// How many pooled connections in a row one request may find closed (or
/// carrying bytes unasked) just before writing on them, before its next one
/// is probed as it comes out of the pool.
pub(crate) const UNSENT_LOOKS: u32 = 3;

/// While it lives, pooled connections the calling thread takes out are
/// probed as they come out if `now` (see the module docs).
pub(crate) fn probe_as_taken_out(now: bool) -> ProbeAsTakenOut {
    ProbeAsTakenOut(PROBE_AS_TAKEN_OUT.with(|cell| cell.replace(now)))
}

/// Restores the enclosing request's way of probing on drop.
pub(crate) struct ProbeAsTakenOut(bool);

impl Drop for ProbeAsTakenOut {
    fn drop(&mut self) {
        PROBE_AS_TAKEN_OUT.with(|cell| cell.set(self.0));
    }
}

/// The error of a request whose pooled connection failed its probe just
/// before the request was written: nothing of it was sent.
#[derive(Debug)]
struct Unsent;

impl std::fmt::Display for Unsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the server closed the pooled connection, or sent on it unasked, \
             before the request was written",
        )
    }
}

impl std::error::Error for Unsent {}

/// Whether `error` says a pooled connection failed its probe before
/// anything of the request was written on it: the request may go on
/// another connection, whatever its method.
pub(crate) fn is_unsent(error: &ureq::Error) -> bool {
    let ureq::Error::Io(io) = error else {
        return false;
    };
    io.get_ref()
        .is_some_and(|inner| inner.downcast_ref::<Unsent>().is_some())
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
        let on_socket = details.config.proxy().is_none();
        if on_socket {
            self.stats.connection_opened();
            OPENED_ON_THIS_THREAD.with(|opened| opened.set(opened.get() + 1));
        } else {
            TUNNELS_OPENED_ON_THIS_THREAD.with(|opened| opened.set(opened.get() + 1));
        }
        Ok(Some(Timed {
            inner: transport,
            // A tunnel's own socket is wrapped already: that one decides.
            on_socket,
            carried: false,
            probe: Probe::Passed,
        }))
    }
}

/// A transport that hands its socket a coarse timeout, and probes its
/// connection once per reuse (see the module docs).
#[derive(Debug)]
pub(crate) struct Timed<T> {
    inner: T,
    /// Whether this wrapper is the socket's, which decides when to probe
    /// (one around a tunnel asks the socket's).
    on_socket: bool,
    /// Whether the connection carried an exchange since it was last asked
    /// whether it is open: then it is going back to the pool, not out.
    carried: bool,
    /// Where it stands with the probe since it last came out of the pool.
    probe: Probe,
}

/// Where a connection stands with its probe (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    /// New, probed, or probed as it came out: reads and writes go through.
    Passed,
    /// Taken out of the pool and not probed yet: the first read or write
    /// probes first.
    Due,
    /// Failed the probe: every later read and write fails too. rustls
    /// drops the error of the socket write inside its own `write`, keeps
    /// the encrypted request and writes it at its next read or write.
    Failed,
}

impl<T: Transport> Timed<T> {
    /// Probes the connection if it was taken out of the pool unprobed; an
    /// [`Unsent`] error if it is closed or holds bytes unasked, then and
    /// at every later read and write.
    fn probe_if_unprobed(&mut self) -> Result<(), ureq::Error> {
        if self.probe == Probe::Due {
            self.probe = if self.inner.is_open() {
                Probe::Passed
            } else {
                Probe::Failed
            };
        }
        if self.probe == Probe::Failed {
            let unsent = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, Unsent);
            return Err(unsent.into());
        }
        self.carried = true;
        Ok(())
    }
}

impl<T: Transport> Transport for Timed<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.probe_if_unprobed()?;
        self.inner
            .transmit_output(amount, coarse(within_attempt(timeout)?))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.probe_if_unprobed()?;
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
        // ureq asks as the connection goes back, right after an exchange,
        // and as it comes out, after a stay in the pool without one: the
        // probe waits for the first read or write after that.
        if !self.on_socket {
            return self.inner.is_open();
        }
        if self.probe == Probe::Failed {
            return false;
        }
        if std::mem::take(&mut self.carried) {
            return true;
        }
        if PROBE_AS_TAKEN_OUT.with(Cell::get) {
            return self.inner.is_open();
        }
        self.probe = Probe::Due;
        true
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

    /// A connection that counts its probes and writes.
    #[derive(Debug)]
    struct Counted {
        buffers: LazyBuffers,
        open: bool,
        probes: u32,
        writes: u32,
    }

    impl Transport for Counted {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(&mut self, _: usize, _: NextTimeout) -> Result<(), ureq::Error> {
            self.writes += 1;
            Ok(())
        }
        fn await_input(&mut self, _: NextTimeout) -> Result<bool, ureq::Error> {
            Ok(false)
        }
        fn is_open(&mut self) -> bool {
            self.probes += 1;
            self.open
        }
        fn is_tls(&self) -> bool {
            false
        }
    }

    fn socket() -> Timed<Counted> {
        Timed {
            inner: Counted {
                buffers: LazyBuffers::new(16, 16),
                open: true,
                probes: 0,
                writes: 0,
            },
            on_socket: true,
            carried: false,
            probe: Probe::Passed,
        }
    }

    /// A request written and its answer read.
    fn exchange(conn: &mut impl Transport) -> Result<(), ureq::Error> {
        conn.transmit_output(0, NextTimeout::default())?;
        conn.await_input(NextTimeout::default())?;
        Ok(())
    }

    /// Back to the pool, then out again, as ureq asks.
    fn back_and_out(conn: &mut impl Transport) {
        assert!(conn.is_open()); // back to the pool
        assert!(conn.is_open()); // out again
    }

    #[test]
    fn a_connection_is_probed_once_per_reuse_just_before_its_first_write() {
        let mut conn = socket();
        exchange(&mut conn).unwrap();
        for reuse in 1..=3 {
            back_and_out(&mut conn);
            assert_eq!(conn.inner.probes, reuse - 1, "none in the pool's lock");
            exchange(&mut conn).unwrap();
            assert_eq!(conn.inner.probes, reuse);
        }
    }

    #[test]
    fn a_connection_failing_its_probe_carries_nothing_of_the_request() {
        let mut conn = socket();
        exchange(&mut conn).unwrap();
        back_and_out(&mut conn);
        conn.inner.open = false;
        let error = exchange(&mut conn).unwrap_err();
        assert!(is_unsent(&error), "{error}");
        // rustls drops a write's error and writes again at its next read.
        let error = conn.await_input(NextTimeout::default()).unwrap_err();
        assert!(is_unsent(&error), "{error}");
        let error = exchange(&mut conn).unwrap_err();
        assert!(is_unsent(&error), "{error}");
        assert_eq!(conn.inner.writes, 1, "only the first exchange's");
    }

    #[test]
    fn after_unsent_looks_a_connection_is_probed_as_it_comes_out() {
        let mut conn = socket();
        exchange(&mut conn).unwrap();
        let _probing = probe_as_taken_out(true);
        assert!(conn.is_open()); // back: no probe
        assert_eq!(conn.inner.probes, 0);
        assert!(conn.is_open()); // out: probed at once
        assert_eq!(conn.inner.probes, 1);
        exchange(&mut conn).unwrap();
        assert_eq!(conn.inner.probes, 1, "not twice");
    }

    #[test]
    fn a_tunnel_is_probed_once_per_reuse_by_its_socket() {
        let mut tunnel = Timed {
            inner: socket(),
            on_socket: false,
            carried: false,
            probe: Probe::Passed,
        };
        exchange(&mut tunnel).unwrap();
        for reuse in 1..=3 {
            back_and_out(&mut tunnel);
            exchange(&mut tunnel).unwrap();
            assert_eq!(tunnel.inner.inner.probes, reuse);
        }
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
