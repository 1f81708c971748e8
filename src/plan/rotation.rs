//! The emergency-rotation state machine, recovered from what is persisted.
//!
//! Every step is decided from durable state only — the generation recorded
//! in status and the generation annotation on each workspace Secret — so a
//! controller that crashes at any point picks up exactly where it stopped:
//! a token regenerated on Quay but not yet persisted is simply regenerated
//! again (the lost one is revoked anyway), and nothing finishes before every
//! Environment holds the new token.

/// What the Component reconciler must do next about rotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RotationStep {
    /// Nothing in flight, nothing due.
    Idle,
    /// Emergency: regenerate the push robot's token and persist it as `target` first.
    RegeneratePush { target: i64 },
    /// Emergency: regenerate the pull robot's token and persist it as `target`.
    RegeneratePull { target: i64 },
    /// Scheduled: create robots in the other slot, grant them, persist their
    /// credentials as `target`. The old robots keep working meanwhile.
    StartScheduled { target: i64 },
    /// Tokens are persisted; these Environments still hold an older one.
    AwaitPropagation { target: i64, pending: Vec<String> },
    /// Every Environment holds `target`: remove the annotation if any, delete
    /// the robots of the inactive slot, record `target`.
    Finish { target: i64 },
}

/// Decide the next rotation step.
///
/// - `requested`: the generate annotation is `"true"` (emergency).
/// - `scheduled_due`: the rotation interval has passed since the last rotation.
/// - `recorded`: `status.credentialsGeneration` (the last completed generation).
/// - `push`, `pull`: generations persisted on the workspace Secrets.
/// - `delivered`: per Environment, the generation its target Secret holds.
///
/// A persisted generation above the recorded one means a rotation is in
/// flight (scheduled, or an emergency whose annotation is already gone):
/// it is finished before anything new starts.
pub fn plan_rotation(
    requested: bool,
    scheduled_due: bool,
    recorded: i64,
    push: Option<i64>,
    pull: Option<i64>,
    delivered: &[(String, Option<i64>)],
) -> RotationStep {
    let push = push.unwrap_or(0);
    let pull = pull.unwrap_or(0);
    let target = if requested {
        let target = recorded + 1;
        if push < target {
            return RotationStep::RegeneratePush { target };
        }
        if pull < target {
            return RotationStep::RegeneratePull { target };
        }
        target
    } else if pull != push && (pull > recorded || push > recorded) {
        // A scheduled rotation stopped between persisting the two Secrets:
        // persist both again (the new robots exist and are reused).
        return RotationStep::StartScheduled {
            target: pull.max(push),
        };
    } else if pull > recorded || push > recorded {
        pull.max(push)
    } else if scheduled_due && recorded > 0 {
        return RotationStep::StartScheduled {
            target: recorded + 1,
        };
    } else {
        return RotationStep::Idle;
    };
    let pending: Vec<String> = delivered
        .iter()
        .filter(|(_, g)| g.unwrap_or(0) < target)
        .map(|(n, _)| n.clone())
        .collect();
    if pending.is_empty() {
        RotationStep::Finish { target }
    } else {
        RotationStep::AwaitPropagation { target, pending }
    }
}

/// Whether a scheduled rotation is due: `interval` has passed since the last
/// rotation (or, never rotated, since creation). `None` disables it.
pub fn scheduled_rotation_due(
    interval_secs: Option<i64>,
    last_rotation_secs: Option<i64>,
    created_secs: Option<i64>,
    now_secs: i64,
) -> bool {
    match (interval_secs, last_rotation_secs.or(created_secs)) {
        (Some(i), Some(last)) if i > 0 => now_secs - last >= i,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envs(v: &[(&str, Option<i64>)]) -> Vec<(String, Option<i64>)> {
        v.iter().map(|(n, g)| (n.to_string(), *g)).collect()
    }

    #[test]
    fn idle_without_request() {
        assert_eq!(
            plan_rotation(false, false, 3, Some(3), Some(3), &[]),
            RotationStep::Idle
        );
    }

    #[test]
    fn walks_every_step_in_order() {
        let e = envs(&[("dev", Some(1)), ("prod", Some(1))]);
        assert_eq!(
            plan_rotation(true, false, 1, Some(1), Some(1), &e),
            RotationStep::RegeneratePush { target: 2 }
        );
        assert_eq!(
            plan_rotation(true, false, 1, Some(2), Some(1), &e),
            RotationStep::RegeneratePull { target: 2 }
        );
        assert_eq!(
            plan_rotation(true, false, 1, Some(2), Some(2), &e),
            RotationStep::AwaitPropagation {
                target: 2,
                pending: vec!["dev".into(), "prod".into()]
            }
        );
        let e = envs(&[("dev", Some(2)), ("prod", Some(1))]);
        assert_eq!(
            plan_rotation(true, false, 1, Some(2), Some(2), &e),
            RotationStep::AwaitPropagation {
                target: 2,
                pending: vec!["prod".into()]
            }
        );
        let e = envs(&[("dev", Some(2)), ("prod", Some(2))]);
        assert_eq!(
            plan_rotation(true, false, 1, Some(2), Some(2), &e),
            RotationStep::Finish { target: 2 }
        );
    }

    #[test]
    fn a_missing_target_secret_is_pending() {
        let e = envs(&[("dev", None)]);
        assert!(matches!(
            plan_rotation(true, false, 1, Some(2), Some(2), &e),
            RotationStep::AwaitPropagation { .. }
        ));
    }

    #[test]
    fn scheduled_rotation_starts_then_waits_then_finishes() {
        let e = envs(&[("dev", Some(3))]);
        assert_eq!(
            plan_rotation(false, true, 3, Some(3), Some(3), &e),
            RotationStep::StartScheduled { target: 4 }
        );
        assert_eq!(
            plan_rotation(false, true, 3, Some(4), Some(4), &e),
            RotationStep::AwaitPropagation {
                target: 4,
                pending: vec!["dev".into()]
            }
        );
        let e = envs(&[("dev", Some(4))]);
        assert_eq!(
            plan_rotation(false, false, 3, Some(4), Some(4), &e),
            RotationStep::Finish { target: 4 }
        );
        assert_eq!(
            plan_rotation(false, false, 4, Some(4), Some(4), &e),
            RotationStep::Idle
        );
    }

    #[test]
    fn an_emergency_whose_annotation_is_gone_still_finishes() {
        // Crash between removing the annotation and recording the generation.
        let e = envs(&[("dev", Some(2))]);
        assert_eq!(
            plan_rotation(false, false, 1, Some(2), Some(2), &e),
            RotationStep::Finish { target: 2 }
        );
    }

    #[test]
    fn a_half_persisted_scheduled_rotation_is_redone() {
        assert_eq!(
            plan_rotation(false, false, 3, Some(4), Some(3), &[]),
            RotationStep::StartScheduled { target: 4 }
        );
    }

    #[test]
    fn nothing_is_scheduled_before_first_provisioning() {
        assert_eq!(
            plan_rotation(false, true, 0, None, None, &[]),
            RotationStep::Idle
        );
    }

    #[test]
    fn due_table() {
        assert!(!scheduled_rotation_due(None, Some(0), Some(0), 100));
        assert!(!scheduled_rotation_due(Some(0), Some(0), Some(0), 100));
        assert!(scheduled_rotation_due(Some(50), Some(50), Some(0), 100));
        assert!(!scheduled_rotation_due(Some(50), Some(60), Some(0), 100));
        assert!(scheduled_rotation_due(Some(50), None, Some(10), 100));
        assert!(!scheduled_rotation_due(Some(50), None, None, 100));
    }

    #[test]
    fn no_environments_finishes_once_persisted() {
        assert_eq!(
            plan_rotation(true, false, 4, Some(5), Some(5), &[]),
            RotationStep::Finish { target: 5 }
        );
    }
}
