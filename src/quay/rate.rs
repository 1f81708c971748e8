//! One token bucket per Quay host, shared by every call of the process:
//! passes that run at once take turns instead of each finding the server's
//! limit on its own, and a 429 pauses them all for the server's
//! `Retry-After` rather than only the call that got it.

use std::time::{Duration, Instant};

/// Requests per second and how many may go at once after a quiet spell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

impl RateLimit {
    /// Quay.io's limit as measured against its front end: 5 requests per
    /// second per address, with a burst of 25.
    pub const QUAY_IO: RateLimit = RateLimit {
        per_second: 5.0,
        burst: 25,
    };
}

/// The bucket's state (pure: every decision is [`Bucket::take`]).
#[derive(Clone, Debug)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
    paused_until: Option<Instant>,
}

impl Bucket {
    /// A full bucket.
    pub fn new(limit: RateLimit, now: Instant) -> Self {
        Bucket {
            tokens: f64::from(limit.burst.max(1)),
            last: now,
            paused_until: None,
        }
    }

    /// Take a token at `now`, or say how long to wait before asking again.
    pub fn take(&mut self, limit: RateLimit, now: Instant) -> Result<(), Duration> {
        if let Some(until) = self.paused_until {
            if now < until {
                return Err(until - now);
            }
            self.paused_until = None;
        }
        let burst = f64::from(limit.burst.max(1));
        let rate = limit.per_second.max(f64::MIN_POSITIVE);
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * rate;
        self.tokens = (self.tokens + refill).min(burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }

    /// The server refused with 429: nobody sends before `now + wait`, and
    /// the bucket starts empty then (the server's window is full).
    pub fn pause(&mut self, now: Instant, wait: Duration) {
        let until = now + wait;
        self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
        self.tokens = 0.0;
        self.last = until;
    }
}

/// The shared limiter: callers wait their turn in arrival order (the
/// async mutex is fair), so a long queue drains at the limit's rate.
pub struct Limiter {
    limit: RateLimit,
    bucket: tokio::sync::Mutex<Bucket>,
}

impl Limiter {
    pub fn new(limit: RateLimit) -> Self {
        Limiter {
            limit,
            bucket: tokio::sync::Mutex::new(Bucket::new(limit, Instant::now())),
        }
    }

    /// Wait for a token; returns how long this caller waited.
    pub async fn acquire(&self) -> Duration {
        let started = Instant::now();
        let mut bucket = self.bucket.lock().await;
        while let Err(wait) = bucket.take(self.limit, Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        started.elapsed()
    }

    /// Quay answered 429: pause every caller for `wait`.
    pub async fn pause(&self, wait: Duration) {
        self.bucket.lock().await.pause(Instant::now(), wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: RateLimit = RateLimit {
        per_second: 5.0,
        burst: 3,
    };

    #[test]
    fn a_full_bucket_lets_the_burst_through_then_paces_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(L, t0);
        for _ in 0..3 {
            assert_eq!(b.take(L, t0), Ok(()));
        }
        let wait = b.take(L, t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(200));
        assert_eq!(b.take(L, t0 + wait), Ok(()));
        // A long quiet spell refills up to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(b.take(L, later), Ok(()));
        }
        assert!(b.take(L, later).is_err());
    }

    #[test]
    fn a_429_pauses_everyone_for_the_servers_wait_then_starts_empty() {
        let t0 = Instant::now();
        let mut b = Bucket::new(L, t0);
        b.pause(t0, Duration::from_secs(2));
        assert_eq!(b.take(L, t0).unwrap_err(), Duration::from_secs(2));
        let at = t0 + Duration::from_secs(1);
        assert_eq!(b.take(L, at).unwrap_err(), Duration::from_secs(1));
        // A shorter pause does not shorten a longer one.
        b.pause(at, Duration::from_millis(100));
        assert_eq!(b.take(L, at).unwrap_err(), Duration::from_secs(1));
        let resumed = t0 + Duration::from_secs(2);
        assert_eq!(b.take(L, resumed).unwrap_err(), Duration::from_millis(200));
        assert_eq!(b.take(L, resumed + Duration::from_millis(200)), Ok(()));
    }
}
