//! Status conditions: the names quayside uses and a helper that keeps
//! `lastTransitionTime` stable while a condition's status does not change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// The condition types quayside reports.
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
    /// Component, only while a rotation request is refused (the storm guard).
    RotationRequest,
    /// Component, only while a rotation's stragglers miss its generation.
    Degraded,
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
            ConditionType::RotationRequest => "RotationRequest",
            ConditionType::Degraded => "Degraded",
        }
    }
}

/// A condition's status: `Unknown` when the pass did not get far enough to
/// find out (so status never claims what it did not check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

impl ConditionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionStatus::True => "True",
            ConditionStatus::False => "False",
            ConditionStatus::Unknown => "Unknown",
        }
    }
}

/// One condition as a pass derived it, before times are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionValue {
    pub kind: ConditionType,
    pub status: ConditionStatus,
    pub reason: String,
    pub message: String,
}

impl ConditionValue {
    pub fn new(
        kind: ConditionType,
        status: ConditionStatus,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConditionValue {
            kind,
            status,
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// Insert or update a condition. The transition time moves only when the
/// status changes, so a steady state writes an identical status.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    value: &ConditionValue,
    observed_generation: Option<i64>,
    now: Time,
) {
    let status = value.status.as_str();
    if let Some(existing) = conditions
        .iter_mut()
        .find(|c| c.type_ == value.kind.as_str())
    {
        if existing.status != status {
            existing.last_transition_time = now;
        }
        existing.status = status.to_string();
        existing.reason = value.reason.clone();
        existing.message = value.message.clone();
        existing.observed_generation = observed_generation;
    } else {
        conditions.push(Condition {
            type_: value.kind.as_str().to_string(),
            status: status.to_string(),
            reason: value.reason.clone(),
            message: value.message.clone(),
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

    fn ready(status: ConditionStatus, reason: &str) -> ConditionValue {
        ConditionValue::new(ConditionType::Ready, status, reason, "m")
    }

    #[test]
    fn transition_time_moves_only_on_status_change() {
        let mut c = Vec::new();
        set_condition(
            &mut c,
            &ready(ConditionStatus::False, "Pending"),
            Some(1),
            t(10),
        );
        set_condition(
            &mut c,
            &ready(ConditionStatus::False, "Still"),
            Some(1),
            t(20),
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].last_transition_time, t(10));
        assert_eq!(c[0].reason, "Still");
        set_condition(&mut c, &ready(ConditionStatus::True, "Ok"), Some(2), t(30));
        assert_eq!(c[0].last_transition_time, t(30));
        assert_eq!(c[0].status, "True");
        set_condition(
            &mut c,
            &ready(ConditionStatus::Unknown, "NotChecked"),
            Some(2),
            t(40),
        );
        assert_eq!(c[0].status, "Unknown");
        assert_eq!(c[0].last_transition_time, t(40));
    }
}
