//! The retry rules: which failures are worth another attempt, and how long
//! to wait before it.
//!
//! Everything about retrying one request lives here; the engine
//! (`engine/journey.rs`) only asks [`RetryPolicy::decide`], and the host's
//! governor (`policy/host/`) whether the host's retry budget allows it. Delays follow the `backoff` crate's
//! exponential schedule (used for the delay sequence only: its own `retry()`
//! loop would ignore our cap when a server sends Retry-After), plus additive
//! jitter so that a batch of threads that failed together does not come back
//! together.

use std::time::{Duration, SystemTime};

use backoff::backoff::Backoff;
use backoff::exponential::ExponentialBackoff;
use backoff::SystemClock;

use crate::error::classify::is_retryable;
use crate::error::ErrorKind;
use crate::request::{Method, Request};

/// How a failed attempt is followed up.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Retries after the first attempt; at most `max_retries + 1` attempts.
    pub(crate) max_retries: u32,
    /// The first backoff delay.
    pub(crate) initial_delay: Duration,
    /// Growth factor of the delay, at least 1.
    pub(crate) multiplier: f64,
    /// No backoff delay is longer than this.
    pub(crate) max_delay: Duration,
    /// The longest Retry-After honoured; a server that asks for longer
    /// gets the request back at once, as an error that says so.
    pub(crate) max_retry_after: Duration,
    /// Up to this much random time is added to each backoff delay.
    pub(crate) jitter: Duration,
}

/// The least a request waits for its host's breaker: time for the first
/// probe (1 s after it opens) and one more.
pub(crate) const LEAST_PATIENCE: Duration = Duration::from_secs(3);

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Wait `after`, then try again; `asked` when the server named the wait
    /// (Retry-After), which the host's retry budget does not count.
    Retry { after: Duration, asked: bool },
    /// Return the error.
    GiveUp,
}

/// A failed attempt, as the retry rules see it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FailedAttempt {
    pub(crate) kind: ErrorKind,
    pub(crate) status: Option<u16>,
    /// Attempts made so far, this one included (1-based).
    pub(crate) attempts: u32,
    /// Whether the request may be sent again at all.
    pub(crate) idempotent: bool,
    /// The server's Retry-After, already parsed; used on 429 and 503 only.
    pub(crate) retry_after: Option<Duration>,
}

/// One request's sequence of backoff delays, created on its first failure.
pub(crate) struct Delays {
    backoff: ExponentialBackoff<SystemClock>,
}

impl std::fmt::Debug for Delays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delays")
            .field("next", &self.backoff.current_interval)
            .finish()
    }
}

impl RetryPolicy {
    /// The backoff sequence for one request, before jitter and cap.
    pub(crate) fn delays(&self) -> Delays {
        let backoff = backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(self.initial_delay)
            .with_multiplier(self.multiplier)
            .with_randomization_factor(0.0)
            .with_max_interval(self.max_delay)
            .with_max_elapsed_time(None)
            .build();
        Delays { backoff }
    }

    /// How long a request that has made `attempts` attempts may still wait
    /// for its host to come back: what its remaining retries would take,
    /// their backoff delays and jitter (10 s with the defaults, for a
    /// request yet to be sent), and at least [`LEAST_PATIENCE`], so that a
    /// request with short or no retries still sees a probe or two.
    pub(crate) fn patience(&self, attempts: u32) -> Duration {
        self.remaining_schedule(attempts).max(LEAST_PATIENCE)
    }

    /// What the retries left after `attempts` attempts would take.
    fn remaining_schedule(&self, attempts: u32) -> Duration {
        let done = attempts.saturating_sub(1);
        let mut total = Duration::ZERO;
        let mut delay = self.initial_delay;
        for retry in 0..self.max_retries {
            if delay >= self.max_delay {
                // Capped from here on: the rest at once.
                let left = self.max_retries - retry.max(done);
                let each = self.max_delay.saturating_add(self.jitter);
                return total.saturating_add(each.checked_mul(left).unwrap_or(Duration::MAX));
            }
            if retry >= done {
                total = total.saturating_add(delay.saturating_add(self.jitter));
            }
            delay = Duration::try_from_secs_f64(delay.as_secs_f64() * self.multiplier)
                .unwrap_or(Duration::MAX);
        }
        total
    }

    /// Decides the follow-up of a failed attempt. `random` is a number in
    /// `[0, 1)` for the jitter.
    pub(crate) fn decide(
        &self,
        failed: &FailedAttempt,
        delays: &mut Delays,
        random: f64,
    ) -> Decision {
        if !failed.idempotent
            || !is_retryable(failed.kind, failed.status)
            || failed.attempts > self.max_retries
        {
            return Decision::GiveUp;
        }
        let backoff = delays.backoff.next_backoff().unwrap_or(self.max_delay);
        let spread = |most: Duration| most.mul_f64(random.clamp(0.0, 1.0));
        match asked_to_wait(failed.status, failed.retry_after) {
            // Waiting less than the server asked would be wasted and rude;
            // waiting longer than max_retry_after is not ours to do: the
            // caller gets the error, with its `retry_after()`, at once.
            Some(wait) if wait > self.max_retry_after => Decision::GiveUp,
            // Never sooner than asked; a little later, at random, so that
            // the requests a host turned away together do not come back
            // together.
            Some(wait) => Decision::Retry {
                after: wait.saturating_add(spread(self.jitter.min(wait / 10))),
                asked: true,
            },
            None => Decision::Retry {
                after: backoff
                    .saturating_add(spread(self.jitter))
                    .min(self.max_delay),
                asked: false,
            },
        }
    }
}

/// Whether `request` may be sent more than once: as it was marked
/// ([`Request::idempotent`]), or else as RFC 9110 §9.2.2 says of its
/// method. GET, HEAD, OPTIONS, PUT and DELETE are idempotent: the same
/// request twice leaves the server as once. POST and PATCH are not: a
/// second one may add or change twice. The method decides, not whether the
/// request has a body: a PUT with one is retried, a POST without is not.
pub(crate) fn may_resend(request: &Request) -> bool {
    request.idempotent_mark().unwrap_or(match request.method() {
        Method::Get | Method::Head | Method::Options | Method::Put | Method::Delete => true,
        Method::Post | Method::Patch => false,
    })
}

/// How long a server asked to be left alone: its Retry-After, on a 429 or a
/// 503 only. The retry delay and the host's governor (which may pause the
/// whole host, `policy/host/`) both follow this rule.
pub(crate) fn asked_to_wait(
    status: Option<u16>,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    match status {
        Some(429 | 503) => retry_after,
        _ => None,
    }
}

/// Parses a Retry-After value: delta-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, which counts from `now`). A date in the
/// past means "now". Anything else is ignored (`None`).
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
            jitter: Duration::from_secs(1),
        }
    }

    /// Runs `decide` for attempts 1.. until it gives up, with fixed inputs.
    fn sequence(
        policy: &RetryPolicy,
        kind: ErrorKind,
        status: Option<u16>,
        retry_after: Option<Duration>,
        random: f64,
    ) -> Vec<Duration> {
        let mut delays = policy.delays();
        let mut out = Vec::new();
        for attempts in 1.. {
            let failed = FailedAttempt {
                kind,
                status,
                attempts,
                idempotent: true,
                retry_after,
            };
            match policy.decide(&failed, &mut delays, random) {
                Decision::Retry { after, .. } => out.push(after),
                Decision::GiveUp => break,
            }
        }
        out
    }

    fn secs(list: &[f64]) -> Vec<Duration> {
        list.iter().copied().map(Duration::from_secs_f64).collect()
    }

    /// (name, policy, kind, status, retry-after secs, random, expected delays in secs)
    type Case = (
        &'static str,
        RetryPolicy,
        ErrorKind,
        Option<u16>,
        Option<u64>,
        f64,
        Vec<f64>,
    );

    #[test]
    fn delay_sequences() {
        let long = RetryPolicy {
            max_retries: 8,
            ..policy()
        };
        let cases: &[Case] = &[
            (
                "defaults, no jitter",
                policy(),
                ErrorKind::Status,
                Some(500),
                None,
                0.0,
                vec![1.0, 2.0, 4.0],
            ),
            (
                "full jitter adds up to 1 s",
                policy(),
                ErrorKind::Network,
                None,
                None,
                0.999,
                vec![1.999, 2.999, 4.999],
            ),
            (
                "half jitter",
                policy(),
                ErrorKind::Timeout,
                None,
                None,
                0.5,
                vec![1.5, 2.5, 4.5],
            ),
            (
                "capped at 60 s",
                long.clone(),
                ErrorKind::Status,
                Some(502),
                None,
                0.0,
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0],
            ),
            (
                "jitter never passes the cap",
                long,
                ErrorKind::Status,
                Some(502),
                None,
                0.999,
                vec![1.999, 2.999, 4.999, 8.999, 16.999, 32.999, 60.0, 60.0],
            ),
            (
                "retry-after on 429, spread by up to a tenth",
                policy(),
                ErrorKind::Status,
                Some(429),
                Some(7),
                0.5,
                vec![7.35, 7.35, 7.35],
            ),
            (
                "retry-after on 503",
                policy(),
                ErrorKind::Status,
                Some(503),
                Some(2),
                0.0,
                vec![2.0, 2.0, 2.0],
            ),
            (
                "retry-after past its cap (5 min): give up at once",
                policy(),
                ErrorKind::Status,
                Some(503),
                Some(3600),
                0.0,
                vec![],
            ),
            (
                "retry-after at its cap, past the backoff's",
                policy(),
                ErrorKind::Status,
                Some(429),
                Some(300),
                0.0,
                vec![300.0, 300.0, 300.0],
            ),
            (
                "501 never retried",
                policy(),
                ErrorKind::Status,
                Some(501),
                None,
                0.0,
                vec![],
            ),
            (
                "retry-after ignored on 500",
                policy(),
                ErrorKind::Status,
                Some(500),
                Some(30),
                0.0,
                vec![1.0, 2.0, 4.0],
            ),
            (
                "404 never retried",
                policy(),
                ErrorKind::NotFound,
                Some(404),
                None,
                0.0,
                vec![],
            ),
            (
                "403 never retried",
                policy(),
                ErrorKind::Status,
                Some(403),
                None,
                0.0,
                vec![],
            ),
            (
                "408 retried",
                policy(),
                ErrorKind::Status,
                Some(408),
                None,
                0.0,
                vec![1.0, 2.0, 4.0],
            ),
            (
                "tls never retried",
                policy(),
                ErrorKind::Tls,
                None,
                None,
                0.0,
                vec![],
            ),
            (
                "json never retried",
                policy(),
                ErrorKind::InvalidJson,
                None,
                None,
                0.0,
                vec![],
            ),
        ];
        for (name, policy, kind, status, retry_after, random, want) in cases {
            let got = sequence(
                policy,
                *kind,
                *status,
                retry_after.map(Duration::from_secs),
                *random,
            );
            assert_eq!(got, secs(want), "{name}");
        }
    }

    #[test]
    fn zero_retries_gives_up_at_once() {
        let policy = RetryPolicy {
            max_retries: 0,
            ..policy()
        };
        assert!(sequence(&policy, ErrorKind::Network, None, None, 0.0).is_empty());
    }

    #[test]
    fn patience_is_what_the_remaining_retries_would_take() {
        let policy = policy();
        assert_eq!(
            policy.patience(0),
            Duration::from_secs(10),
            "1+2+4 and jitter"
        );
        assert_eq!(policy.patience(1), Duration::from_secs(10));
        assert_eq!(policy.patience(2), Duration::from_secs(8), "2+4 and jitter");
        assert_eq!(policy.patience(4), LEAST_PATIENCE, "no retries left");
        let quick = RetryPolicy {
            initial_delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            ..policy.clone()
        };
        assert_eq!(quick.patience(0), LEAST_PATIENCE);
        let huge = RetryPolicy {
            max_retries: u32::MAX,
            multiplier: 1e300,
            ..policy
        };
        assert!(huge.patience(0) >= Duration::from_secs(60));
    }

    #[test]
    fn waits_the_server_asked_for_are_marked() {
        let policy = policy();
        let decide = |status, retry_after| {
            let failed = FailedAttempt {
                kind: ErrorKind::Status,
                status: Some(status),
                attempts: 1,
                idempotent: true,
                retry_after,
            };
            policy.decide(&failed, &mut policy.delays(), 0.0)
        };
        let asked = Some(Duration::from_secs(2));
        assert_eq!(
            decide(429, asked),
            Decision::Retry {
                after: Duration::from_secs(2),
                asked: true
            }
        );
        assert_eq!(
            decide(503, None),
            Decision::Retry {
                after: Duration::from_secs(1),
                asked: false
            }
        );
        // A Retry-After on a 500 is not an ask.
        assert_eq!(
            decide(500, asked),
            Decision::Retry {
                after: Duration::from_secs(1),
                asked: false
            }
        );
    }

    #[test]
    fn non_idempotent_requests_are_not_retried() {
        let policy = policy();
        let mut delays = policy.delays();
        let failed = FailedAttempt {
            kind: ErrorKind::Network,
            status: None,
            attempts: 1,
            idempotent: false,
            retry_after: None,
        };
        let decision = policy.decide(&failed, &mut delays, 0.0);
        assert_eq!(decision, Decision::GiveUp);
    }

    #[test]
    fn idempotency_follows_the_method_unless_marked() {
        let cases = [
            (Request::get("http://h/"), true),
            (Request::head("http://h/"), true),
            (Request::new(Method::Options, "http://h/"), true),
            (Request::put("http://h/").body("x", "text/plain"), true),
            (Request::delete("http://h/"), true),
            (Request::post("http://h/"), false),
            (Request::post_json("http://h/", &1), false),
            (Request::patch("http://h/").json(&1), false),
            (Request::post("http://h/").idempotent(true), true),
            (Request::patch("http://h/").idempotent(true), true),
            (Request::get("http://h/").idempotent(false), false),
            (Request::put("http://h/").idempotent(false), false),
        ];
        for (request, want) in cases {
            assert_eq!(may_resend(&request), want, "{request:?}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let cases = [
            ("120", Some(120)),
            (" 3 ", Some(3)),
            ("0", Some(0)),
            ("Wed, 21 Oct 2015 07:28:05 GMT", Some(5)),
            ("Wed, 21 Oct 2015 07:27:00 GMT", Some(0)),
            ("-1", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
            ("99999999999999999999999", None),
        ];
        for (value, want) in cases {
            assert_eq!(
                parse_retry_after(value, now),
                want.map(Duration::from_secs),
                "{value:?}"
            );
        }
    }
}
