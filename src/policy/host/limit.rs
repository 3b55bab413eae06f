//! How many requests a host gets at once: a limit that moves with what the
//! host says.
//!
//! A server that is asked for more than it can take answers `429`, `503`,
//! times out, refuses connections, or queues the work so that its answers
//! come later and later. A client that keeps its concurrency then makes it
//! worse: measured before this module existed, a fixed 64 in flight
//! against an API that serves 16 made the run 28 times slower than 16.
//! So each host's limit is moved by a controller, the way TCP moves its
//! congestion window (and Netflix's concurrency-limits and Vector's
//! adaptive request concurrency move theirs):
//!
//! - **Additive increase.** While answers are good and the limit is in use,
//!   it grows by one per round trip (`1/limit` per answer). Below the
//!   *threshold* it grows by one per answer instead, doubling each round
//!   trip (TCP's slow start): a host with room is found fast, and after a
//!   fall the limit climbs back quickly to half of where it was.
//! - **Multiplicative decrease** by [`BACKOFF`] (0.9, as Netflix's AIMD
//!   and Vector use: gentle, so the limit hovers near what the host takes
//!   rather than halving below it), at most once per round trip: an
//!   answer to a request sent before the last decrease is old news.
//! - **What is still out.** A refusal (429, 503) of a request sent before
//!   the last decrease, in the wave that caused it, brings the limit down to
//!   the requests still in flight: when 48 of 64 requests come back `429`
//!   at once, the 16 still out are what the host is taking, and the limit
//!   is 16 after the last of the 48, not 0.9 × 64. This is what makes a
//!   limit set four times too high cost one round trip, not a dozen. (A
//!   timeout or a reset says nothing of how many the host takes: those
//!   decrease by the factor only, once per round trip.)
//! - **Latency.** A server that queues instead of refusing answers later as
//!   more is asked of it. Each round trip's mean time to the response head
//!   is compared with the host's unloaded time (the least seen over the
//!   last 10 to 20 s, so that a host that becomes slower for good is
//!   learned anew); well above it, the limit decreases as for a push-back
//!   (Vegas and Gradient2 do this; Vector's ARC too). "Well above" is 1.5
//!   times and 2 ms more (a loopback server's time is a fraction of a
//!   millisecond, and noise of that size is not a queue). This is adaptive
//!   concurrency's alone: with a fixed concurrency the user chose the
//!   number, and a busy client's own scheduling (measured: spikes of 20 ms
//!   and more on a loaded 2-core machine, 16 threads on loopback) must not
//!   read as a server queueing.
//!
//! With a fixed concurrency the limit starts at the ceiling and only an
//! explicit push-back moves it; with adaptive concurrency it starts at
//! [`INITIAL`] and slow-starts up. Either way it stays within 1 and the
//! ceiling.

use std::time::Duration;

/// Where an adaptive limit starts: TCP's initial window is 10 segments;
/// 8 requests find a host's room in a few round trips.
pub(crate) const INITIAL: u32 = 8;

/// The factor of a decrease.
pub(crate) const BACKOFF: f64 = 0.9;

/// How long a least latency counts before it is forgotten (it lives one to
/// two periods).
const BASELINE_PERIOD: Duration = Duration::from_secs(10);

/// The fewest answers a latency window averages.
const MIN_WINDOW: u32 = 4;

/// What the controller is told once, for a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LimitSettings {
    /// The most requests in flight: the threads, or `max_per_host`.
    pub(crate) ceiling: u32,
    /// Start low and find the limit (true), or start at the ceiling.
    pub(crate) adaptive: bool,
}

/// What a request was sent under: for the answer's judgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sent {
    /// The number of decreases before it was sent.
    pub(crate) epoch: u64,
    /// Requests in flight to the host when it was sent, itself included.
    pub(crate) in_flight: u32,
}

/// One host's limit and what moves it.
#[derive(Debug)]
pub(crate) struct Controller {
    limit: f64,
    ceiling: f64,
    threshold: f64,
    epoch: u64,
    adaptive: bool,
    baseline: Baseline,
    window: Window,
    lowest: u32,
    highest: u32,
}

/// The least time to a response head, over the current and the last
/// period.
#[derive(Debug, Default)]
struct Baseline {
    current: Option<Duration>,
    previous: Option<Duration>,
    period_started: Duration,
}

/// The answers of the current round trip.
#[derive(Debug, Default)]
struct Window {
    /// How many answers it averages: the limit when it started.
    length: u32,
    answers: u32,
    total: Duration,
    /// The epoch it started in: a window that spans a decrease is not
    /// judged (the decrease has acted already).
    epoch: u64,
}

impl Controller {
    pub(crate) fn new(settings: LimitSettings) -> Controller {
        let ceiling = f64::from(settings.ceiling.max(1));
        let limit = if settings.adaptive {
            f64::from(INITIAL).min(ceiling)
        } else {
            ceiling
        };
        Controller {
            limit,
            ceiling,
            threshold: ceiling,
            epoch: 0,
            adaptive: settings.adaptive,
            baseline: Baseline::default(),
            window: Window::default(),
            lowest: whole(limit),
            highest: whole(limit),
        }
    }

    /// Requests the host may have in flight now.
    pub(crate) fn limit(&self) -> u32 {
        whole(self.limit)
    }

    /// Decreases so far.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The lowest and highest limits so far.
    pub(crate) fn range(&self) -> (u32, u32) {
        (self.lowest, self.highest)
    }

    /// What a request sent now, with `in_flight` requests out (itself
    /// included), is sent under.
    #[cfg(test)]
    pub(crate) fn sent(&self, in_flight: u32) -> Sent {
        Sent {
            epoch: self.epoch,
            in_flight,
        }
    }

    /// A good answer to a request `sent` so, whose head came `head` after it
    /// was sent (when that is known: not for an error answer), at `now` (the
    /// clock's time).
    pub(crate) fn answered(&mut self, sent: Sent, head: Option<Duration>, now: Duration) {
        if let Some(head) = head {
            if self.latency_says_queueing(head, now) {
                self.decrease();
                return;
            }
        }
        // A limit not in use says nothing about the host: do not grow it.
        if f64::from(sent.in_flight) * 2.0 < self.limit {
            return;
        }
        self.limit += if self.limit < self.threshold {
            1.0
        } else {
            1.0 / self.limit
        };
        self.settle();
    }

    /// Notes a round trip's `head` time at `now`; whether it ends a window
    /// whose mean says the host queues.
    fn latency_says_queueing(&mut self, head: Duration, now: Duration) -> bool {
        self.baseline.note(head, now);
        if self.window.epoch != self.epoch || self.window.length == 0 {
            self.window = self.new_window();
        }
        self.window.answers = self.window.answers.saturating_add(1);
        self.window.total = self.window.total.saturating_add(head);
        if self.window.answers >= self.window.length {
            let mean = self.window.total / self.window.answers;
            self.window = self.new_window();
            return self.is_queueing(mean);
        }
        false
    }

    /// The host pushed back on a request `sent` so: `refused` it outright
    /// (429, 503), or timed out, reset or refused the connection;
    /// `in_flight` requests are still out.
    pub(crate) fn pushed_back(&mut self, sent: Sent, refused: bool, in_flight: u32) {
        if sent.epoch == self.epoch {
            self.decrease();
        } else if refused {
            // Refused in the same wave as a refusal that has decreased the
            // limit already: the requests still out are what the host takes.
            self.limit = self.limit.min(f64::from(in_flight.max(1)));
            self.settle();
        }
    }

    /// The host is down (its breaker opened): one request at a time when it
    /// is back, climbing fast to half of where it was.
    pub(crate) fn restart(&mut self) {
        self.threshold = (self.limit / 2.0).max(1.0);
        self.limit = 1.0;
        self.epoch += 1;
        self.settle();
    }

    /// A window starting now: one round trip's answers at today's limit.
    fn new_window(&self) -> Window {
        Window {
            length: self.limit().max(MIN_WINDOW),
            answers: 0,
            total: Duration::ZERO,
            epoch: self.epoch,
        }
    }

    fn decrease(&mut self) {
        self.limit *= BACKOFF;
        self.threshold = self.limit.max(1.0);
        self.epoch += 1;
        self.settle();
    }

    /// Whether a round trip's mean time to the head says the host queues.
    fn is_queueing(&self, mean: Duration) -> bool {
        let Some(baseline) = self.baseline.least().filter(|_| self.adaptive) else {
            return false;
        };
        mean > baseline.saturating_add(baseline / 2)
            && mean.saturating_sub(baseline) > Duration::from_millis(2)
    }

    /// Keeps the limit within [1, ceiling], and notes its range.
    fn settle(&mut self) {
        self.limit = self.limit.clamp(1.0, self.ceiling);
        if !self.limit.is_finite() {
            self.limit = 1.0;
        }
        let limit = self.limit();
        self.lowest = self.lowest.min(limit);
        self.highest = self.highest.max(limit);
    }
}

impl Baseline {
    fn note(&mut self, head: Duration, now: Duration) {
        if now.saturating_sub(self.period_started) >= BASELINE_PERIOD {
            self.previous = self.current.take();
            self.period_started = now;
        }
        self.current = Some(self.current.map_or(head, |least| least.min(head)));
    }

    fn least(&self) -> Option<Duration> {
        match (self.current, self.previous) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (one, other) => one.or(other),
        }
    }
}

/// A limit as a whole number of requests: at least 1.
fn whole(limit: f64) -> u32 {
    // Within [1, ceiling] by construction; the cast saturates anyway.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = limit.floor() as u32;
    whole.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn fixed(ceiling: u32) -> Controller {
        Controller::new(LimitSettings {
            ceiling,
            adaptive: false,
        })
    }

    fn adaptive(ceiling: u32) -> Controller {
        Controller::new(LimitSettings {
            ceiling,
            adaptive: true,
        })
    }

    /// Answers `n` requests sent at the current limit, each after `head`.
    fn answer(controller: &mut Controller, n: u32, head: Duration, now: Duration) {
        for _ in 0..n {
            let sent = controller.sent(controller.limit());
            controller.answered(sent, Some(head), now);
        }
    }

    #[test]
    fn fixed_starts_at_the_ceiling_and_adaptive_low() {
        assert_eq!(fixed(64).limit(), 64);
        assert_eq!(adaptive(64).limit(), INITIAL);
        assert_eq!(adaptive(3).limit(), 3);
        assert_eq!(fixed(0).limit(), 1);
    }

    #[test]
    fn slow_start_doubles_each_round_trip_up_to_the_ceiling() {
        let mut c = adaptive(64);
        let mut limits = Vec::new();
        for _ in 0..4 {
            let limit = c.limit();
            answer(&mut c, limit, ms(20), ms(0));
            limits.push(c.limit());
        }
        assert_eq!(limits, [16, 32, 64, 64]);
    }

    #[test]
    fn a_wave_of_push_backs_leaves_what_is_still_out() {
        // 64 sent, 48 refused at once, 16 still being served.
        let mut c = fixed(64);
        let sent = c.sent(64);
        for refused in 1..=48 {
            c.pushed_back(sent, true, 64 - refused);
        }
        assert_eq!(c.limit(), 16);
        assert_eq!(c.range(), (16, 64));
    }

    #[test]
    fn one_decrease_per_round_trip() {
        let mut c = fixed(100);
        let sent = c.sent(10);
        c.pushed_back(sent, false, 5);
        c.pushed_back(sent, false, 5);
        assert_eq!(
            c.limit(),
            90,
            "the second timeout of the round was old news"
        );
        let later = c.sent(10);
        c.pushed_back(later, false, 5);
        assert_eq!(
            c.limit(),
            81,
            "a timeout does not bring it down to what is out"
        );
    }

    #[test]
    fn after_a_fall_growth_is_fast_to_the_decrease_then_one_per_round_trip() {
        let mut c = fixed(64);
        let first = c.sent(20);
        c.pushed_back(first, true, 40);
        c.pushed_back(first, true, 19);
        assert_eq!(c.limit(), 19, "what was still out");
        let mut limits = Vec::new();
        for _ in 0..4 {
            let limit = c.limit();
            answer(&mut c, limit, ms(20), ms(0));
            limits.push(c.limit());
        }
        // Doubling up to 0.9 x 64 = 57.6, then one per round trip.
        assert_eq!(limits, [38, 58, 59, 60]);
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let mut c = adaptive(64);
        for _ in 0..100 {
            let sent = c.sent(1);
            c.answered(sent, Some(ms(5)), ms(0));
        }
        assert_eq!(c.limit(), INITIAL);
    }

    #[test]
    fn latency_well_above_the_unloaded_time_decreases() {
        // Two hosts answer alike, but for one round trip at twice the
        // unloaded time: that one ends lower.
        let rounds = |slow: u64| {
            let mut c = adaptive(64);
            answer(&mut c, 8, ms(20), ms(0));
            answer(&mut c, 16, ms(20), ms(0));
            let before = c.limit();
            answer(&mut c, before, ms(slow), ms(100));
            (before, c.limit())
        };
        assert_eq!(rounds(20), (32, 64));
        let (before, after) = rounds(40);
        assert_eq!(before, 32);
        assert!(
            (50..64).contains(&after),
            "grew within the round, then 0.9x: {after}"
        );
        // Fixed: the number chosen is kept, whatever the latency.
        let mut f = fixed(32);
        answer(&mut f, 32, ms(20), ms(0));
        answer(&mut f, 32, ms(2000), ms(100));
        assert_eq!(f.limit(), 32);
    }

    #[test]
    fn sub_millisecond_noise_is_not_queueing() {
        let mut c = adaptive(64);
        answer(&mut c, 8, Duration::from_micros(50), ms(0));
        answer(&mut c, 16, Duration::from_micros(900), ms(1));
        assert_eq!(c.limit(), 32, "18x a tiny time is still under 2 ms more");
    }

    #[test]
    fn the_unloaded_time_is_forgotten_after_two_periods() {
        let mut c = adaptive(8);
        c.baseline.note(ms(5), ms(0));
        c.baseline.note(ms(50), BASELINE_PERIOD);
        assert_eq!(c.baseline.least(), Some(ms(5)));
        c.baseline.note(ms(50), BASELINE_PERIOD * 2);
        assert_eq!(c.baseline.least(), Some(ms(50)));
    }

    #[test]
    fn a_restart_climbs_fast_to_half() {
        let mut c = fixed(40);
        c.restart();
        assert_eq!(c.limit(), 1);
        let mut limits = Vec::new();
        for _ in 0..6 {
            let limit = c.limit();
            answer(&mut c, limit, ms(10), ms(0));
            limits.push(c.limit());
        }
        assert_eq!(limits, [2, 4, 8, 16, 20, 21]);
    }

    #[derive(Clone, Debug)]
    enum Event {
        Answered {
            in_flight: u32,
            head_ms: u64,
        },
        PushedBack {
            in_flight: u32,
            old: bool,
            refused: bool,
        },
        Restart,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0..300u32, 0..5_000u64)
                .prop_map(|(in_flight, head_ms)| Event::Answered { in_flight, head_ms }),
            (0..300u32, any::<bool>(), any::<bool>()).prop_map(|(in_flight, old, refused)| {
                Event::PushedBack {
                    in_flight,
                    old,
                    refused,
                }
            }),
            Just(Event::Restart),
        ]
    }

    proptest! {
        /// Whatever a host answers, in whatever order, the limit stays
        /// within 1 and the ceiling.
        #[test]
        fn the_limit_stays_within_one_and_the_ceiling(
            ceiling in 0..400u32,
            adaptive in any::<bool>(),
            events in prop::collection::vec(event(), 0..400),
        ) {
            let mut c = Controller::new(LimitSettings { ceiling, adaptive });
            let old = c.sent(1);
            for (i, event) in events.into_iter().enumerate() {
                let now = ms(i as u64 * 7);
                match event {
                    Event::Answered { in_flight, head_ms } => {
                        let sent = c.sent(in_flight);
                        c.answered(sent, Some(ms(head_ms)), now);
                    }
                    Event::PushedBack { in_flight, old: is_old, refused } => {
                        let sent = if is_old { old } else { c.sent(in_flight) };
                        c.pushed_back(sent, refused, in_flight);
                    }
                    Event::Restart => c.restart(),
                }
                prop_assert!(c.limit() >= 1);
                prop_assert!(c.limit() <= ceiling.max(1));
                let (lowest, highest) = c.range();
                prop_assert!(lowest <= c.limit() && c.limit() <= highest);
            }
        }
    }
}
