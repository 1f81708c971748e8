//! Status conditions: the names quayside uses and a helper that keeps
//! `lastTransitionTime` stable while a condition's status does not change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The condition types quayside reports (design §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionType {
    Ready,
    RepositoryReady,
    CredentialsReady,
    Propagated,
    /// Environment: the pull Secrets are applied and linked in the target namespace.
    Applied,
    /// Environment: the sealed folder is committed to the side repository.
    Committed,
}

impl ConditionType {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionType::Ready => "Ready",
            ConditionType::RepositoryReady => "RepositoryReady",
            ConditionType::CredentialsReady => "CredentialsReady",
            ConditionType::Propagated => "Propagated",
            ConditionType::Applied => "Applied",
            ConditionType::Committed => "Committed",
        }
    }
}

/// Insert or update a condition. The transition time moves only when the
/// status changes, so a steady state writes an identical status.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    kind: ConditionType,
    ok: bool,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: Time,
) {
    let status = if ok { "True" } else { "False" };
    if let Some(existing) = conditions.iter_mut().find(|c| c.type_ == kind.as_str()) {
        if existing.status != status {
            existing.last_transition_time = now;
        }
        existing.status = status.to_string();
        existing.reason = reason.to_string();
        existing.message = message.to_string();
        existing.observed_generation = observed_generation;
    } else {
        conditions.push(Condition {
            type_: kind.as_str().to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation,
            last_transition_time: now,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut c = Vec::new();
        set_condition(
            &mut c,
            ConditionType::Ready,
            false,
            "Pending",
            "m",
            Some(1),
            t(10),
        );
        set_condition(
            &mut c,
            ConditionType::Ready,
            false,
            "Still",
            "m2",
            Some(1),
            t(20),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, t(10));
        assert_eq!(c[0].reason, "Still");
        set_condition(&mut c, ConditionType::Ready, true, "Ok", "", Some(2), t(30));
        assert_eq!(c[0].last_transition_time, t(30));
        assert_eq!(c[0].status, "True");
    }
}
