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
//!   trip (TCP's slow start; by 32 per round trip above 64, RFC 3742's
//!   limited slow start): a host with room is found fast, and after a
//!   fall the limit climbs back quickly to where it was.
//! - **Multiplicative decrease** by [`BACKOFF`] (0.9, as Netflix's AIMD
//!   and Vector use: gentle, so the limit hovers near what the host takes
//!   rather than halving below it), at most once per round trip: an
//!   answer to a request sent before the last decrease is old news.
//! - **What is still out.** When refusals are many (half or more of the
//!   last round trip's answers), a refusal (429, 503) of a request
//!   sent before the last decrease, in the wave that caused it, brings the
//!   limit down to the requests still in flight: when 48 of 64 requests come back `429`
//!   at once, the 16 still out are what the host is taking, and the limit
//!   is 16 after the last of the 48, not 0.9 × 64. This is what makes a
//!   limit set four times too high cost one round trip, not a dozen. (A
//!   timeout or a reset says nothing of how many the host takes: those
//!   decrease by the factor only, once per round trip.)
//! - **Where the host said "too many".** A 429 also notes how many
//!   requests were in flight when the refused one was sent, and for
//!   [`HOLD`] the limit does not grow to that level again: a server at a
//!   fixed capacity is found once, not probed every few round trips at the
//!   price of a refusal each time (each one a request that waits out its
//!   Retry-After, a second at the end of a batch is its whole tail). A
//!   refusal below a level held (sent below it, and still below it when
//!   it came back: a request overtaken by the probe is refused for the
//!   probe), while most answers are good, ends the
//!   hold instead: a server that refuses some URLs whatever the load (one
//!   in ten, say) refuses at every level, and holding each level it refused
//!   at would ratchet the limit down to 1 (measured: a batch of 1,000 with
//!   such URLs ran 10 times longer); its refusals decrease the limit by the
//!   factor, once per round trip, and no more. A capacity can also come
//!   back (another client left): after [`FIRST_PROBE`], one request is
//!   sent at the level held; served, the hold ends and the limit grows
//!   again; refused, the next probe waits twice as long, up to [`HOLD`]
//!   (CUBIC's plateau and BBR's probing rounds do the like); once per
//!   probe, not per refusal (the wave that set the hold is no probe). Against a
//!   fixed capacity that is one refusal after 1.25 s, 2.5 s, 5 s, then
//!   every 10 s.
//! - **Latency.** A server that queues instead of refusing answers later as
//!   more is asked of it. Each round trip's mean time to the response head
//!   is compared with the host's unloaded time (the least seen over the
//!   last 10 to 20 s, so that a host that becomes slower for good is
//!   learned anew); above 1.25 times it (and 2 ms more: a loopback
//!   server's time is a fraction of a millisecond, and noise of that size
//!   is not a queue), the limit decreases by the share of the mean that is
//!   tolerated (Gradient2's gradient; Vegas and Vector's ARC read latency
//!   too), at least by [`BACKOFF`], at most by half. Slow start also ends
//!   at the first answer 1.5 times the unloaded time (HyStart's delay
//!   rule), so that it does not double past a queue for a whole round. This is adaptive
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

/// Where an adaptive limit starts: low enough that a host with little room
/// is refused little (an API that takes 16 refuses 16 once), high enough
/// that a batch of a few thousand does not spend its length climbing.
pub(crate) const INITIAL: u32 = 32;

/// Above this, slow start adds half of it per round trip instead of
/// doubling (RFC 3742's limited slow start): a few dozen new connections
/// at once, not hundreds, which a server's listen queue (often 128) would
/// drop, each dropped one a second lost to the SYN's resend.
pub(crate) const LIMITED_ABOVE: f64 = 128.0;

/// The factor of a decrease.
pub(crate) const BACKOFF: f64 = 0.9;

/// How long a least latency counts before it is forgotten (it lives one to
/// two periods).
const BASELINE_PERIOD: Duration = Duration::from_secs(10);

/// How far a round trip's mean may rise over the unloaded time before it
/// says the host queues (adaptive limits): a quarter, the queue of a
/// quarter of the requests in flight.
pub(crate) const TOLERANCE: f64 = 1.25;

/// What latency must rise by besides, to count: noise on a loopback
/// server's fraction of a millisecond is not a queue.
const MARGIN: Duration = Duration::from_millis(2);

/// How long a limit stays below the level a host refused at, unless a
/// probe finds the host takes it again.
pub(crate) const HOLD: Duration = Duration::from_secs(10);

/// When a level held is first probed: one request sent at it, to see
/// whether the host takes it again (a capacity that comes back). Each
/// probe refused doubles the wait, up to [`HOLD`]: against a fixed
/// capacity, a refusal every few seconds at most.
const FIRST_PROBE: Duration = Duration::from_millis(1250);

/// The fewest answers a latency window averages.
const MIN_WINDOW: u32 = 4;

/// The fewest answers over which refusals are counted as many or few.
const MIN_RECENT: u32 = 16;

/// What the controller is told once, for a host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LimitSettings {
    /// The most requests in flight: the threads, or `max_per_host`.
    pub(crate) ceiling: u32,
    /// Start low and find the limit (true), or start at the ceiling.
    pub(crate) adaptive: bool,
}

/// How a host pushed back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PushBack {
    /// "Too many" (429): about our requests; the level it came at is held.
    Throttled,
    /// "Unavailable" (503, 504): overloaded, or down.
    Refused,
    /// A timeout, a refused or reset connection: it says nothing of how
    /// many the host takes, only that it is not taking them well.
    Lost,
}

/// What a request was sent under: for the answer's judgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sent {
    /// The number of decreases (and probes refused) before it was sent.
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
    /// Where the host last said "too many", while the limit stays below.
    held: Option<Held>,
    /// The limit of the last good answer: where to climb back to, fast,
    /// after the host has been down.
    good: f64,
    recent: Recent,
    lowest: u32,
    highest: u32,
}

/// A level held: the requests in flight at which the host said "too many".
#[derive(Clone, Copy, Debug)]
struct Held {
    level: u32,
    /// Until when (the clock's time) the limit stays below the level.
    until: Duration,
    /// When one request may be sent at the level again, to see whether the
    /// host takes it now.
    probe_at: Duration,
    /// The wait before the next probe: doubled by each probe refused.
    gap: Duration,
}

impl Held {
    /// A level held from `now`, first probed after [`FIRST_PROBE`].
    fn new(level: u32, now: Duration) -> Held {
        Held {
            level,
            until: now.saturating_add(HOLD),
            probe_at: now.saturating_add(FIRST_PROBE),
            gap: FIRST_PROBE,
        }
    }

    /// The most the limit may be at `now`: below the level, or at it while
    /// a probe is due.
    fn cap(&self, now: Duration) -> f64 {
        let level = if now >= self.probe_at {
            self.level
        } else {
            self.level.saturating_sub(1)
        };
        f64::from(level.max(1))
    }

    /// A probe was refused at `now`: the level stands, probed again after
    /// twice the wait (at most [`HOLD`]).
    fn probe_refused(&mut self, now: Duration) {
        self.gap = self.gap.saturating_mul(2).min(HOLD);
        self.probe_at = now.saturating_add(self.gap);
        self.until = now.saturating_add(HOLD);
    }
}

/// Refusals and good answers over about the last round trip (at least
/// [`MIN_RECENT`] answers): whether refusals are the host's capacity
/// speaking.
#[derive(Debug, Default)]
struct Recent {
    good: f64,
    refused: f64,
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
            held: None,
            good: limit,
            recent: Recent::default(),
            lowest: whole(limit),
            highest: whole(limit),
        }
    }

    /// Requests the host may have in flight now.
    pub(crate) fn limit(&self) -> u32 {
        whole(self.limit)
    }

    /// Decreases (and probes refused) so far.
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
    /// clock's time). Whether its round trip's latency decreased the limit.
    pub(crate) fn answered(&mut self, sent: Sent, head: Option<Duration>, now: Duration) -> bool {
        self.count_answer(false);
        if let Some(head) = head {
            if let Some(factor) = self.latency_says_queueing(head, now) {
                self.decrease_by(factor);
                return true;
            }
            // Slow start ends at the first answer well above the unloaded
            // time (as HyStart ends TCP's): doubling on would overshoot
            // by a whole round trip before the round's mean is known.
            if self.limit < self.threshold && self.is_well_above(head, 1.5) {
                self.threshold = self.limit;
            }
        }
        // Served at the level held, sent since the last decrease or probe
        // refused: the host takes that many again (a level learned while
        // it refused everything, or a capacity back).
        if self
            .held
            .is_some_and(|held| sent.in_flight >= held.level && sent.epoch == self.epoch)
        {
            self.held = None;
        }
        // A limit not in use says nothing about the host: do not grow it.
        if f64::from(sent.in_flight) * 2.0 < self.limit {
            return false;
        }
        let grown = self.limit
            + if self.limit >= self.threshold {
                1.0 / self.limit
            } else if self.limit > LIMITED_ABOVE {
                LIMITED_ABOVE / 2.0 / self.limit
            } else {
                1.0
            };
        // Not back up to where the host said "too many", for a while.
        self.limit = match self.held {
            Some(level) if now < level.until => grown.min(level.cap(now)).max(self.limit),
            _ => grown,
        };
        self.settle();
        self.good = self.limit;
        false
    }

    /// Notes a round trip's `head` time at `now`; whether it ends a window
    /// whose mean says the host queues.
    fn latency_says_queueing(&mut self, head: Duration, now: Duration) -> Option<f64> {
        self.baseline.note(head, now);
        if self.window.epoch != self.epoch || self.window.length == 0 {
            self.window = self.new_window();
        }
        self.window.answers = self.window.answers.saturating_add(1);
        self.window.total = self.window.total.saturating_add(head);
        if self.window.answers >= self.window.length {
            let mean = self.window.total / self.window.answers;
            self.window = self.new_window();
            return self.queueing(mean);
        }
        None
    }

    /// The host pushed back on a request `sent` so, at `now`, as `how`;
    /// `in_flight` requests are still out.
    pub(crate) fn pushed_back(&mut self, sent: Sent, how: PushBack, in_flight: u32, now: Duration) {
        if how != PushBack::Lost {
            self.count_answer(true);
        }
        let many = self.recent.are_many();
        if how == PushBack::Throttled {
            let at = sent.in_flight.max(1);
            // Below a level only if fewer were out when it came back too: a
            // request overtaken by later ones (a probe) was refused for them.
            let below = |level: u32| at < level && in_flight.saturating_add(1) < level;
            self.held = match self.held.filter(|held| now < held.until) {
                // Refused below a level it refused at, yet most answers
                // are good: these refusals are not about how many.
                Some(held) if below(held.level) && !many => None,
                Some(held) if below(held.level) => Some(Held::new(at, now)),
                // A probe (sent at the level since the last decrease) was
                // refused: the host still takes no more. The limit goes
                // back below the level, and no further: it was right. Only
                // the first refusal once a probe is due doubles the wait:
                // the others (the rest of its round, or of the wave that
                // set the hold) were not probes.
                Some(mut held) if sent.epoch == self.epoch => {
                    if now >= held.probe_at {
                        held.probe_refused(now);
                        // The rest of its round is old news: one of them
                        // served (the host had just let another go) does
                        // not say the host takes more.
                        self.epoch += 1;
                    } else {
                        held.until = now.saturating_add(HOLD);
                    }
                    self.held = Some(held);
                    self.limit = self.limit.min(held.cap(now));
                    self.settle();
                    return;
                }
                Some(mut held) => {
                    held.until = now.saturating_add(HOLD);
                    Some(held)
                }
                None => Some(Held::new(at, now)),
            };
            if let Some(held) = self.held {
                // Past the hold, the level is probed a request at a time.
                self.threshold = self.threshold.min(f64::from(held.level));
            }
        }
        if sent.epoch == self.epoch {
            self.decrease();
        } else if how != PushBack::Lost && many {
            // Refused in the same wave as a refusal that has decreased the
            // limit already: the requests still out are what the host takes.
            self.limit = self.limit.min(f64::from(in_flight.max(1)));
            self.settle();
        }
    }

    /// The host is down (its breaker opened): one request at a time when it
    /// is back, climbing fast to half of where its last good answer was.
    pub(crate) fn restart(&mut self) {
        self.threshold = (self.good.max(self.limit) / 2.0).max(1.0);
        self.limit = 1.0;
        self.epoch += 1;
        self.settle();
    }

    /// The host refused a request sent alone and asked for a pause: after
    /// it, one request at a time, climbing fast to half of the last good
    /// limit (as TCP restarts after a retransmission timeout).
    pub(crate) fn paused(&mut self) {
        self.threshold = (self.good.max(self.limit) / 2.0).max(1.0);
        self.limit = 1.0;
        self.epoch += 1;
        self.settle();
    }

    /// Counts an answer, refused or good, among the recent ones.
    fn count_answer(&mut self, refused: bool) {
        let recent = &mut self.recent;
        if refused {
            recent.refused += 1.0;
        } else {
            recent.good += 1.0;
        }
        let window = f64::from(whole(self.limit).max(MIN_RECENT));
        let total = recent.good + recent.refused;
        if total > window {
            recent.good *= window / total;
            recent.refused *= window / total;
        }
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
        self.decrease_by(BACKOFF);
    }

    fn decrease_by(&mut self, factor: f64) {
        self.limit *= factor;
        self.threshold = self.limit.max(1.0);
        self.epoch += 1;
        self.settle();
    }

    /// Whether a round trip's mean time to the head says the host queues.
    /// If a round trip's mean time to the head says the host queues, the
    /// factor to bring the limit down by: the share of the mean that is
    /// the tolerated time (as Gradient2 does), between a half and
    /// [`BACKOFF`], so that a deep queue is drained in a round trip or two.
    fn queueing(&self, mean: Duration) -> Option<f64> {
        if !self.is_well_above(mean, TOLERANCE) {
            return None;
        }
        let tolerated = self.baseline.least()?.mul_f64(TOLERANCE);
        Some((tolerated.as_secs_f64() / mean.as_secs_f64()).clamp(0.5, BACKOFF))
    }

    /// Whether `time` is above `factor` times the unloaded time, and 2 ms
    /// more (adaptive limits only).
    fn is_well_above(&self, time: Duration, factor: f64) -> bool {
        let Some(baseline) = self.baseline.least().filter(|_| self.adaptive) else {
            return false;
        };
        time > baseline.mul_f64(factor) && time.saturating_sub(baseline) > MARGIN
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

impl Recent {
    /// Whether refusals are many: more than one, and half of the recent
    /// answers or more (a limit twice what the host takes).
    fn are_many(&self) -> bool {
        self.refused >= 2.0 && self.refused * 2.0 >= self.good + self.refused
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
    fn a_capacity_found_is_not_probed_again_for_a_while() {
        // The first round overshoots a host that takes 16: the 17th in
        // flight is refused, and the 15 others sent past it.
        let mut c = adaptive(64);
        let round = c.sent(32);
        c.pushed_back(c.sent(17), PushBack::Throttled, 31, ms(100));
        for still_out in (16..31).rev() {
            c.pushed_back(round, PushBack::Throttled, still_out, ms(100));
        }
        assert_eq!(c.limit(), 16, "what was still out");
        // Answers climb back to 16, never to 17, for the hold's length.
        for round in 0..20 {
            answer(&mut c, 16, ms(20), ms(100 + round * 20));
        }
        assert_eq!(c.limit(), 16);
        // After it, the host is asked for one more again.
        answer(&mut c, 17, ms(20), ms(100) + HOLD);
        assert_eq!(c.limit(), 17);
    }

    /// A host held at 16 (it refused the 17th).
    fn held_at_16() -> Controller {
        let mut c = fixed(64);
        c.pushed_back(c.sent(17), PushBack::Throttled, 16, ms(100));
        // As after the wave: the 16 still out are what it takes.
        c.limit = 16.0;
        c.threshold = 16.0;
        c.settle();
        c
    }

    /// Answers requests sent at `level - 1` in flight at `now` until the
    /// limit is `level` (a probe may go), or a round trip and more has not
    /// made it so.
    fn grows_to(c: &mut Controller, level: u32, now: Duration) -> bool {
        for _ in 0..(level * 2 + 8) {
            c.answered(c.sent(level - 1), Some(ms(20)), now);
            if c.limit() == level {
                return true;
            }
        }
        false
    }

    #[test]
    fn a_level_held_is_probed_and_a_refused_probe_costs_no_decrease() {
        let mut c = held_at_16();
        answer(&mut c, 64, ms(20), ms(99) + FIRST_PROBE);
        assert_eq!(c.limit(), 16, "no probe before its time");
        assert!(
            grows_to(&mut c, 17, ms(100) + FIRST_PROBE),
            "a probe is due"
        );
        let probe_refused_at = ms(100) + FIRST_PROBE;
        c.pushed_back(c.sent(17), PushBack::Throttled, 16, probe_refused_at);
        assert_eq!(c.limit(), 16, "back below the level, no further");
        // The next probe waits twice as long.
        answer(
            &mut c,
            64,
            ms(20),
            probe_refused_at
                .saturating_add(FIRST_PROBE * 2)
                .saturating_sub(ms(1)),
        );
        assert_eq!(c.limit(), 16);
        assert!(grows_to(&mut c, 17, probe_refused_at + FIRST_PROBE * 2));
    }

    // From the adversarial review of issue 22 (second round).
    #[test]
    fn refusals_that_are_not_probes_do_not_delay_the_next_probe() {
        // A host that takes 8, at 16 in flight: the 9th sent is refused
        // first, and the limit decreases; requests sent after that, while
        // the host is still full, are refused in the same wave.
        let mut c = fixed(16);
        let wave = c.sent(16);
        c.pushed_back(c.sent(9), PushBack::Throttled, 15, ms(100));
        let after = c.sent(14);
        for still_out in (12..15).rev() {
            c.pushed_back(after, PushBack::Throttled, still_out, ms(101));
        }
        for still_out in (8..12).rev() {
            c.pushed_back(wave, PushBack::Throttled, still_out, ms(102));
        }
        assert_eq!(c.limit(), 8, "below the level refused at");
        // None of them was a probe: the first is due FIRST_PROBE after
        // the hold began (it was 10 s: each doubled the wait).
        answer(
            &mut c,
            64,
            ms(20),
            (ms(102) + FIRST_PROBE).saturating_sub(ms(3)),
        );
        assert_eq!(c.limit(), 8, "no probe before its time");
        assert!(grows_to(&mut c, 9, ms(102) + FIRST_PROBE));
        // The probe and another request of its round are refused: the
        // next probe waits twice as long, not four times.
        let refused_at = ms(102) + FIRST_PROBE;
        let probe = c.sent(9);
        c.pushed_back(probe, PushBack::Throttled, 8, refused_at);
        c.pushed_back(probe, PushBack::Throttled, 8, refused_at + ms(1));
        assert_eq!(c.limit(), 8);
        assert!(grows_to(&mut c, 9, refused_at + FIRST_PROBE * 2 + ms(1)));
    }

    /// A probe refused at `now`: until the next (twice the wait later),
    /// answers at the limit do not grow it past 16.
    fn assert_held_until_the_next_probe(c: &mut Controller, now: Duration) {
        let before_next = (now + FIRST_PROBE * 2).saturating_sub(ms(1));
        answer(c, 64, ms(20), before_next);
        assert_eq!(c.limit(), 16, "no growth before the next probe");
    }

    // From the adversarial review of issue 22 (second round).
    #[test]
    fn a_request_of_a_refused_probes_round_served_does_not_end_the_hold() {
        // Two requests go at the level while the probe is due: one is
        // refused, the other served (the host had just let one go, before
        // its answer was counted here). The refusal stands.
        let mut c = held_at_16();
        let now = ms(100) + FIRST_PROBE;
        assert!(grows_to(&mut c, 17, now));
        let round = c.sent(17);
        c.pushed_back(round, PushBack::Throttled, 16, now);
        c.answered(round, Some(ms(20)), now + ms(20));
        assert_held_until_the_next_probe(&mut c, now);
    }

    // From the adversarial review of issue 22 (second round).
    #[test]
    fn a_request_overtaken_by_the_probe_and_refused_is_the_probes_refusal() {
        // Held at 17; the probe is due and goes 17th. A request sent 16th
        // reaches the host after it, and is refused while 17 are out: the
        // host still takes 16, and the hold stands (it ended, and the limit
        // climbed on, to be refused again a round trip or two later).
        let mut c = held_at_16();
        let now = ms(100) + FIRST_PROBE;
        assert!(grows_to(&mut c, 17, now));
        c.pushed_back(c.sent(16), PushBack::Throttled, 16, now);
        assert_eq!(c.limit(), 16);
        assert_held_until_the_next_probe(&mut c, now);
    }

    #[test]
    fn a_probe_served_ends_the_hold() {
        let mut c = held_at_16();
        assert!(grows_to(&mut c, 17, ms(100) + FIRST_PROBE));
        // Served at 17 in flight: the host takes 17 now, and more is tried.
        answer(&mut c, 40, ms(20), ms(100) + FIRST_PROBE + ms(20));
        assert!(c.limit() >= 18, "{}", c.limit());
    }

    #[test]
    fn fixed_starts_at_the_ceiling_and_adaptive_low() {
        assert_eq!(fixed(64).limit(), 64);
        assert_eq!(adaptive(64).limit(), INITIAL);
        assert_eq!(adaptive(3).limit(), 3);
        assert_eq!(fixed(0).limit(), 1);
    }

    #[test]
    fn slow_start_doubles_each_round_trip_then_adds_64() {
        let mut c = adaptive(400);
        let mut limits = Vec::new();
        for _ in 0..6 {
            let limit = c.limit();
            answer(&mut c, limit, ms(20), ms(0));
            limits.push(c.limit());
        }
        // 32, doubled to 128; past it, about 64 more per round trip (a
        // round of 128 answers adds 64 / 128 each, less as it grows).
        assert_eq!(limits, [64, 128, 181, 236, 293, 351]);
    }

    #[test]
    fn a_wave_of_push_backs_leaves_what_is_still_out() {
        // 64 sent, 48 refused at once, 16 still being served.
        let mut c = fixed(64);
        let sent = c.sent(64);
        for refused in 1..=48 {
            c.pushed_back(sent, PushBack::Throttled, 64 - refused, ms(0));
        }
        assert_eq!(c.limit(), 16);
        assert_eq!(c.range(), (16, 64));
    }

    #[test]
    fn refusals_of_one_url_in_ten_do_not_ratchet_the_limit_down() {
        // A server that refuses some URLs whatever the load: one answer in
        // ten is a 429, at every level. AIMD settles where a decrease of a
        // tenth per round trip meets the growth of one (about 10); holding
        // each level refused at would bring it to 1.
        let mut c = fixed(32);
        for round in 0..200u64 {
            let limit = c.limit();
            let sent = c.sent(limit);
            for answer in 0..limit {
                if answer % 10 == 9 {
                    c.pushed_back(sent, PushBack::Throttled, limit - 1, ms(round * 20));
                } else {
                    c.answered(sent, Some(ms(20)), ms(round * 20));
                }
            }
        }
        assert!((8..=16).contains(&c.limit()), "{}", c.limit());
    }

    #[test]
    fn one_decrease_per_round_trip() {
        let mut c = fixed(100);
        let sent = c.sent(10);
        c.pushed_back(sent, PushBack::Lost, 5, ms(0));
        c.pushed_back(sent, PushBack::Lost, 5, ms(0));
        assert_eq!(
            c.limit(),
            90,
            "the second timeout of the round was old news"
        );
        let later = c.sent(10);
        c.pushed_back(later, PushBack::Lost, 5, ms(0));
        assert_eq!(
            c.limit(),
            81,
            "a timeout does not bring it down to what is out"
        );
    }

    #[test]
    fn after_a_refusal_growth_is_one_request_per_round_trip() {
        let mut c = fixed(64);
        let first = c.sent(20);
        c.pushed_back(first, PushBack::Throttled, 40, ms(0));
        c.pushed_back(first, PushBack::Throttled, 19, ms(0));
        assert_eq!(c.limit(), 19, "what was still out");
        // Below the level it refused at (20 in flight) while the hold lasts.
        answer(&mut c, 19, ms(20), ms(0));
        assert_eq!(c.limit(), 19);
        let mut limits = Vec::new();
        for _ in 0..4 {
            let limit = c.limit();
            answer(&mut c, limit, ms(20), HOLD);
            limits.push(c.limit());
        }
        // Then one more per round trip: the host refused at 20, where its
        // room may be now is found a request at a time.
        assert_eq!(limits, [20, 21, 22, 23]);
    }

    #[test]
    fn an_unused_limit_does_not_grow() {
        let mut c = adaptive(64);
        for _ in 0..100 {
            let sent = c.sent(8);
            c.answered(sent, Some(ms(5)), ms(0));
        }
        assert_eq!(c.limit(), INITIAL);
    }

    #[test]
    fn latency_well_above_the_unloaded_time_decreases() {
        // Two hosts answer alike, but for one round trip at twice the
        // unloaded time: that one ends lower.
        let rounds = |slow: u64| {
            let mut c = adaptive(128);
            answer(&mut c, 32, ms(20), ms(0));
            let before = c.limit();
            answer(&mut c, before, ms(slow), ms(100));
            (before, c.limit())
        };
        assert_eq!(rounds(20), (64, 128));
        let (before, after) = rounds(40);
        assert_eq!(before, 64);
        assert!(
            (32..64).contains(&after),
            "slow start ended at the first slow answer, then 25 ms / 40 ms of it: {after}"
        );
        // Fixed: the number chosen is kept, whatever the latency.
        let mut f = fixed(32);
        answer(&mut f, 32, ms(20), ms(0));
        answer(&mut f, 32, ms(2000), ms(100));
        assert_eq!(f.limit(), 32);
    }

    #[test]
    fn sub_millisecond_noise_is_not_queueing() {
        let mut c = adaptive(256);
        answer(&mut c, 32, Duration::from_micros(50), ms(0));
        answer(&mut c, 64, Duration::from_micros(900), ms(1));
        assert_eq!(c.limit(), 128, "18x a tiny time is still under 2 ms more");
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
    fn after_an_outage_the_climb_is_fast_to_half_the_last_good_limit() {
        // Answers at 20 in flight, then the host fails everything: the
        // limit falls to 1 before its breaker opens.
        let mut c = fixed(20);
        answer(&mut c, 20, ms(10), ms(0));
        let wave = c.sent(20);
        for in_flight in (0..20).rev() {
            c.pushed_back(wave, PushBack::Refused, in_flight, ms(5));
        }
        assert_eq!(c.limit(), 1);
        c.restart();
        let mut limits = Vec::new();
        for _ in 0..5 {
            let limit = c.limit();
            answer(&mut c, limit, ms(10), ms(10));
            limits.push(c.limit());
        }
        assert_eq!(limits, [2, 4, 8, 10, 11], "doubling to 10, half of 20");
    }

    #[test]
    fn a_restart_or_a_pause_climbs_fast_to_half() {
        // After an outage (restart) or a pause the host asked for: one
        // request at a time, doubling to half of the last good limit.
        let restart: fn(&mut Controller) = Controller::restart;
        let paused: fn(&mut Controller) = Controller::paused;
        for begin in [restart, paused] {
            let mut c = fixed(40);
            begin(&mut c);
            assert_eq!(c.limit(), 1);
            let mut limits = Vec::new();
            for _ in 0..6 {
                let limit = c.limit();
                answer(&mut c, limit, ms(10), ms(0));
                limits.push(c.limit());
            }
            assert_eq!(limits, [2, 4, 8, 16, 20, 21]);
        }
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
            how: PushBack,
        },
        Restart,
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (0..300u32, 0..5_000u64)
                .prop_map(|(in_flight, head_ms)| Event::Answered { in_flight, head_ms }),
            (0..300u32, any::<bool>(), 0..3u8).prop_map(|(in_flight, old, how)| {
                let how =
                    [PushBack::Throttled, PushBack::Refused, PushBack::Lost][usize::from(how)];
                Event::PushedBack {
                    in_flight,
                    old,
                    how,
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
                    Event::PushedBack { in_flight, old: is_old, how } => {
                        let sent = if is_old { old } else { c.sent(in_flight) };
                        c.pushed_back(sent, how, in_flight, now);
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
