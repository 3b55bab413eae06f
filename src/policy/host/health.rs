//! How a host has been doing lately: its last answers, good or failed.
//!
//! The breaker opens, and the retry budget applies, only while at least
//! half of them failed: an outage, not a host with a few broken URLs. (A
//! host that fails one request in four would otherwise trip its breaker
//! on every run of five, and lose a fifth of its retries to the budget,
//! though it serves the rest well.)

/// The last answers counted.
const LAST: u32 = 32;

/// The last [`LAST`] answers of a host, failed or not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Health {
    /// One bit per answer, the newest lowest: 1 for a failure.
    failures: u32,
    /// Answers counted, up to [`LAST`].
    answers: u32,
}

impl Health {
    /// Counts an answer: `failed` or not.
    pub(crate) fn note(&mut self, failed: bool) {
        self.failures = (self.failures << 1) | u32::from(failed);
        self.answers = (self.answers + 1).min(LAST);
    }

    /// Whether at least half of the last answers failed.
    pub(crate) fn is_failing(self) -> bool {
        let mask = if self.answers >= 32 {
            u32::MAX
        } else {
            (1u32 << self.answers) - 1
        };
        self.answers > 0 && (self.failures & mask).count_ones() * 2 >= self.answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_means_half_of_the_last_answers() {
        let mut health = Health::default();
        assert!(!health.is_failing(), "nothing known");
        for _ in 0..5 {
            health.note(true);
        }
        assert!(health.is_failing(), "five of five");
        for _ in 0..5 {
            health.note(false);
        }
        assert!(health.is_failing(), "five of ten");
        health.note(false);
        assert!(!health.is_failing(), "five of eleven");
        // One in four failing, for long: never half.
        let mut mixed = Health::default();
        for i in 0..1000 {
            mixed.note(i % 4 == 3);
            assert!(!mixed.is_failing(), "answer {i}");
        }
        // Old failures are forgotten after 32 answers.
        for _ in 0..32 {
            health.note(false);
        }
        assert_eq!(health.failures, 0);
    }
}
