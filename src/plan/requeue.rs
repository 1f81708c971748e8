//! When a reconciled object is looked at again: after a failure (backoff by
//! kind of error) and after a good pass (heartbeat, or the next scheduled
//! rotation when it comes first). Pure: the caller passes the clock.

use std::collections::HashMap;
use std::time::Duration;

/// How a failed pass can be fixed, which sets how soon retrying helps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// A passing fault (network, conflict, an API server restarting): soon,
    /// backing off while it lasts.
    Soon,
    /// Fixed outside the object, where no watch sees it (a Quay token
    /// replaced, an organization created, a plan upgraded): every minute.
    FixedElsewhere,
    /// Fixed by changing the object, which wakes it at once: five minutes
    /// is only the backstop.
    SpecChange,
}

/// First and longest delay of [`Retry::Soon`].
pub const SOON_FIRST: Duration = Duration::from_secs(2);
pub const SOON_MAX: Duration = Duration::from_secs(16);

/// The delay before the next pass after `failures` failed passes in a row
/// (1 for the first failure).
pub fn retry_delay(retry: Retry, failures: u32) -> Duration {
    match retry {
        Retry::Soon => {
            let doublings = failures.saturating_sub(1).min(8);
            (SOON_FIRST * 2u32.pow(doublings)).min(SOON_MAX)
        }
        Retry::FixedElsewhere => Duration::from_secs(60),
        Retry::SpecChange => Duration::from_secs(300),
    }
}

/// How an answer of the Kubernetes API server is retried, by its status
/// code, and the condition reason it shows. A request the server found
/// invalid (400, 422) fails the same way until the object or its inputs
/// change, so it waits for a change instead of repeating every step (and
/// every Quay call) before it; a refusal by RBAC (403) is fixed by someone
/// granting it; a conflict (409) is someone else's write in between.
pub fn kube_answer(code: u16) -> (&'static str, Retry) {
    match code {
        400 | 422 => ("KubernetesRefused", Retry::SpecChange),
        403 => ("KubernetesForbidden", Retry::FixedElsewhere),
        409 => ("Conflict", Retry::Soon),
        _ => ("KubernetesError", Retry::Soon),
    }
}

/// The backstop of a Component whose Environments still have to follow,
/// after `streak` passes in a row that found them behind: 5 s, doubling.
/// In this cluster the watches of the target Secrets wake it as they
/// change, so it backs off to 5 minutes: its cost is the Components
/// waiting ÷ the cap, and with 8,000 waiting at once a 30 s cap made 270
/// passes a second, the CPU the Environment passes they waited for
/// needed. A workspace with a remote target (`watched` false) backs off to
/// 30 s only: nothing wakes a Component when a remote target is written.
pub fn propagation_backstop(streak: u32, watched: bool) -> Duration {
    let cap = match watched {
        true => Duration::from_secs(300),
        false => Duration::from_secs(30),
    };
    Duration::from_secs(5)
        .saturating_mul(1 << streak.min(6))
        .min(cap)
}

/// After a good pass with nothing pending: the heartbeat, or the next
/// scheduled rotation when it is due first. `last` is the last rotation
/// (or creation), `now` the pass's time, both in seconds.
pub fn next_pass(
    heartbeat: Duration,
    rotation_interval: Option<Duration>,
    last: i64,
    now: i64,
) -> Duration {
    let Some(interval) = rotation_interval else {
        return heartbeat;
    };
    let elapsed = (now - last).max(0) as u64;
    let left = interval.as_secs().saturating_sub(elapsed).max(1);
    heartbeat.min(Duration::from_secs(left))
}

/// Failed passes in a row per object, and the reason of the last one: the
/// backoff's count, and whether a failure is news (its reason changed) or a
/// repeat. A good pass forgets the object.
#[derive(Debug, Default)]
pub struct FailureCounts<K: std::hash::Hash + Eq> {
    by_object: HashMap<K, (u32, &'static str)>,
}

impl<K: std::hash::Hash + Eq> FailureCounts<K> {
    /// Count a failure: how many in a row now, and whether its reason
    /// differs from the previous failure's (always, for the first).
    pub fn fail(&mut self, object: K, reason: &'static str) -> (u32, bool) {
        let entry = self.by_object.entry(object).or_insert((0, ""));
        let changed = entry.1 != reason;
        *entry = (entry.0.saturating_add(1), reason);
        (entry.0, changed)
    }

    /// A good pass: whether the object had been failing.
    pub fn succeed(&mut self, object: &K) -> bool {
        self.by_object.remove(object).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_propagation_backstop_backs_off_to_five_minutes() {
        let secs = |watched| -> Vec<u64> {
            (0..9)
                .map(|n| propagation_backstop(n, watched).as_secs())
                .collect()
        };
        assert_eq!(secs(true), vec![5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(secs(false), vec![5, 10, 20, 30, 30, 30, 30, 30, 30]);
        assert_eq!(propagation_backstop(u32::MAX, true).as_secs(), 300);
    }

    #[test]
    fn kubernetes_answers_retry_as_their_fix_needs() {
        assert_eq!(kube_answer(422), ("KubernetesRefused", Retry::SpecChange));
        assert_eq!(kube_answer(400), ("KubernetesRefused", Retry::SpecChange));
        assert_eq!(
            kube_answer(403),
            ("KubernetesForbidden", Retry::FixedElsewhere)
        );
        assert_eq!(kube_answer(409), ("Conflict", Retry::Soon));
        for passing in [404, 429, 500, 503, 504] {
            assert_eq!(kube_answer(passing).1, Retry::Soon, "{passing}");
        }
    }

    #[test]
    fn failures_count_in_a_row_and_news_is_a_changed_reason() {
        let mut f = FailureCounts::default();
        assert_eq!(f.fail("a", "QuayUnavailable"), (1, true));
        assert_eq!(f.fail("a", "QuayUnavailable"), (2, false));
        assert_eq!(f.fail("b", "QuayUnavailable"), (1, true));
        assert_eq!(f.fail("a", "KubernetesError"), (3, true));
        assert!(f.succeed(&"a"));
        assert!(!f.succeed(&"a"));
        assert_eq!(f.fail("a", "KubernetesError"), (1, true));
    }

    #[test]
    fn passing_faults_back_off_to_a_cap_and_others_wait_for_their_fix() {
        let soon: Vec<u64> = (1..=6)
            .map(|n| retry_delay(Retry::Soon, n).as_secs())
            .collect();
        assert_eq!(soon, [2, 4, 8, 16, 16, 16]);
        assert_eq!(retry_delay(Retry::Soon, 0), SOON_FIRST);
        assert_eq!(retry_delay(Retry::Soon, u32::MAX), SOON_MAX);
        assert_eq!(
            retry_delay(Retry::FixedElsewhere, 5),
            Duration::from_secs(60)
        );
        assert_eq!(retry_delay(Retry::SpecChange, 1), Duration::from_secs(300));
    }

    #[test]
    fn the_next_pass_comes_at_the_heartbeat_or_the_rotation() {
        let day = Duration::from_secs(86_400);
        assert_eq!(next_pass(day, None, 0, 1_000), day);
        let hour = Duration::from_secs(3_600);
        assert_eq!(
            next_pass(day, Some(hour), 1_000, 1_600),
            Duration::from_secs(3_000)
        );
        // Overdue: at once (one second), not never.
        assert_eq!(
            next_pass(day, Some(hour), 0, 10_000),
            Duration::from_secs(1)
        );
        assert_eq!(next_pass(hour, Some(day), 0, 10), hour);
    }
}
