//! The retry policy: bounded exponential backoff with full jitter, shared by
//! the Quay client and source detection.

use std::time::Duration;

/// How often and how patiently to retry a transient failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (at least 1).
    pub max_attempts: u32,
    /// Ceiling of the first backoff; it doubles each attempt.
    pub base: Duration,
    /// No single wait is longer than this, `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, 200 ms doubling up to 30 s: at most about 25 s of backoff
    /// in all (half that on average) unless Quay asks for longer with
    /// `Retry-After`, enough to ride out Quay.io's per-address rate limit.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            base: Duration::from_millis(200),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The exponential ceiling before `retry` (1 = the first retry): `base * 2^(retry-1)`, capped.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1).min(30));
        self.base.saturating_mul(factor).min(self.max_delay)
    }

    /// How long to wait before `retry`, given a random `unit` in [0, 1).
    /// A server's `Retry-After` wins (capped at `max_delay`, so the bound holds);
    /// otherwise full jitter: uniform in [0, ceiling], which spreads many
    /// clients out instead of having them retry in lock-step.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>, unit: f64) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_delay);
        }
        self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// [`RetryPolicy::delay`] with a fresh random draw.
    pub fn jittered_delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        self.delay(retry, retry_after, rand::random::<f64>())
    }
}

/// `Retry-After` as delta-seconds (the form Quay sends); HTTP dates are ignored.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_jitter_stays_below_it() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(3), Duration::from_millis(350));
        assert_eq!(p.ceiling(60), Duration::from_millis(350));
        assert_eq!(p.delay(2, None, 0.5), Duration::from_millis(100));
        assert_eq!(p.delay(2, None, 0.0), Duration::ZERO);
        for _ in 0..100 {
            assert!(p.jittered_delay(3, None) <= Duration::from_millis(350));
        }
    }

    #[test]
    fn retry_after_is_honoured_within_the_bound() {
        let p = RetryPolicy::default();
        assert_eq!(
            p.delay(1, Some(Duration::from_secs(2)), 0.9),
            Duration::from_secs(2)
        );
        assert_eq!(p.delay(1, Some(Duration::from_secs(600)), 0.9), p.max_delay);
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
