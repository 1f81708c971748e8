//! Leader election on a Lease, decided the way client-go decides it (pure):
//! a lease has expired when *this* process has seen its record unchanged for
//! the lease duration on its own monotonic clock. The holder's `renewTime`
//! is never compared with our wall clock, so clock skew between nodes
//! cannot make two replicas lead at once.

use std::time::Duration;

/// The parts of a Lease that say who holds it and whether it moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// `None` or empty: nobody (released, or never held).
    pub holder: Option<String>,
    /// `renewTime` as written, compared only for equality.
    pub renewed: Option<String>,
    pub duration: Duration,
}

/// A record and the local time (since an arbitrary start) it was first seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    pub record: Record,
    pub since: Duration,
}

/// Fold a fresh read into what was seen before: the clock restarts only
/// when the record changed.
pub fn observe(previous: Option<&Observation>, record: Record, now: Duration) -> Observation {
    match previous {
        Some(p) if p.record == record => p.clone(),
        _ => Observation { record, since: now },
    }
}

/// What to do after a read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Write ourselves as holder (first acquisition, or a renewal).
    Take,
    /// Someone else holds a lease that has not expired here.
    Wait,
    /// We led, and now another holds it: stop acting at once.
    Lost(String),
}

pub fn decide(me: &str, leading: bool, seen: &Observation, now: Duration) -> Next {
    match seen.record.holder.as_deref() {
        None | Some("") => Next::Take,
        Some(h) if h == me => Next::Take,
        Some(other) if leading => Next::Lost(other.to_string()),
        Some(_) if now.saturating_sub(seen.since) > seen.record.duration => Next::Take,
        Some(_) => Next::Wait,
    }
}

/// How often to act and when a leader gives up, for a lease duration (the
/// client-go defaults 15 s / 10 s / 2 s, scaled): a leader that could not
/// renew for the renew deadline stops before any follower can think the
/// lease expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub lease: Duration,
    pub renew_deadline: Duration,
    pub retry: Duration,
}

impl Timing {
    pub fn for_lease(lease: Duration) -> Timing {
        let lease = lease.max(Duration::from_secs(1));
        Timing {
            lease,
            renew_deadline: lease * 2 / 3,
            retry: (lease / 10).clamp(Duration::from_millis(200), Duration::from_secs(2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn record(holder: Option<&str>, renewed: &str) -> Record {
        Record {
            holder: holder.map(String::from),
            renewed: Some(renewed.into()),
            duration: 15 * S,
        }
    }

    #[test]
    fn expiry_is_judged_by_the_local_clock_since_the_record_last_moved() {
        let a = record(Some("a"), "10:00:00");
        let seen = observe(None, a.clone(), 100 * S);
        assert_eq!(decide("b", false, &seen, 110 * S), Next::Wait);
        // The same record read again keeps its first-seen time...
        let seen = observe(Some(&seen), a, 114 * S);
        assert_eq!(seen.since, 100 * S);
        assert_eq!(decide("b", false, &seen, 116 * S), Next::Take);
        // ...a renewal restarts it, whatever time the holder wrote (a
        // holder whose clock runs an hour behind is still alive).
        let renewed = observe(Some(&seen), record(Some("a"), "09:00:03"), 116 * S);
        assert_eq!(decide("b", false, &renewed, 130 * S), Next::Wait);
    }

    #[test]
    fn a_free_or_own_lease_is_taken_and_a_leader_that_lost_it_stops() {
        let now = 5 * S;
        for holder in [None, Some(""), Some("me")] {
            let seen = observe(None, record(holder, "t"), now);
            assert_eq!(decide("me", false, &seen, now), Next::Take, "{holder:?}");
        }
        let seen = observe(None, record(Some("other"), "t"), now);
        assert_eq!(decide("me", true, &seen, now), Next::Lost("other".into()));
    }

    #[test]
    fn a_leader_gives_up_before_a_follower_may_take_over() {
        let t = Timing::for_lease(15 * S);
        assert_eq!(t.renew_deadline, 10 * S);
        assert_eq!(t.retry, Duration::from_millis(1500));
        assert!(t.renew_deadline < t.lease);
        assert_eq!(Timing::for_lease(Duration::ZERO).lease, S);
    }
}
