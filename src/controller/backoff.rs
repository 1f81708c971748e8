//! The wait between failed watch (re)starts of a controller: short, capped
//! at a few seconds, and reset by the next event that gets through.
//!
//! kube-runtime applies one backoff to the merged stream of all of a
//! controller's watches, and sleeps it before reading anything else. Its
//! default (client-go's: 0.8 s doubling to 30 s, reset after 2 minutes
//! without errors) turned an API server restart — where each watch fails a
//! few times, first refused, then `410 Gone` while the new server's watch
//! cache fills — into sleeps of up to 30 s *per error*, and the controller
//! took up to three minutes to resume (`tests/reliability_apiserver.rs`).
//! Seven watches retrying every few seconds at worst is no load for an API
//! server.

use std::time::Duration;

use kube::runtime::utils::Backoff;

/// Doubling from `min` to `max`, each wait drawn uniformly from its upper
/// half (so watches that failed together do not retry in lock-step).
pub struct WatchBackoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl WatchBackoff {
    pub fn new(min: Duration, max: Duration) -> WatchBackoff {
        WatchBackoff {
            min,
            max,
            next: min,
        }
    }

    /// The controllers' policy: 200 ms doubling to 5 s.
    pub fn for_watches() -> WatchBackoff {
        WatchBackoff::new(Duration::from_millis(200), Duration::from_secs(5))
    }

    fn wait(&mut self, unit: f64) -> Duration {
        let current = self.next;
        self.next = (self.next * 2).min(self.max);
        current.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
    }
}

impl Iterator for WatchBackoff {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        Some(self.wait(rand::random::<f64>()))
    }
}

impl Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_its_cap_and_starts_over_after_a_reset() {
        let mut b = WatchBackoff::for_watches();
        let upper: Vec<Duration> = (0..8).map(|_| b.wait(1.0)).collect();
        let ms: Vec<u128> = upper.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(b.wait(0.0), Duration::from_millis(2500), "lower half bound");
        b.reset();
        assert_eq!(b.wait(1.0), Duration::from_millis(200));
        // Never gives up: a watch must come back whenever the server does.
        assert!(b.take(1000).all(|d| d <= Duration::from_secs(5)));
    }
}
