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
    /// No rotation requested.
    Idle,
    /// Regenerate the push robot's token and persist it as `target` first.
    RegeneratePush { target: i64 },
    /// Regenerate the pull robot's token and persist it as `target`.
    RegeneratePull { target: i64 },
    /// Tokens are persisted; these Environments still hold an older one.
    AwaitPropagation { target: i64, pending: Vec<String> },
    /// Every Environment holds `target`: remove the annotation, record it.
    Finish { target: i64 },
}

/// Decide the next rotation step.
///
/// - `requested`: the generate annotation is `"true"`.
/// - `recorded`: `status.credentialsGeneration` (the last completed generation).
/// - `push`, `pull`: generations persisted on the workspace Secrets.
/// - `delivered`: per Environment, the generation its target Secret holds.
pub fn plan_rotation(
    requested: bool,
    recorded: i64,
    push: Option<i64>,
    pull: Option<i64>,
    delivered: &[(String, Option<i64>)],
) -> RotationStep {
    if !requested {
        return RotationStep::Idle;
    }
    let target = recorded + 1;
    if push.unwrap_or(0) < target {
        return RotationStep::RegeneratePush { target };
    }
    if pull.unwrap_or(0) < target {
        return RotationStep::RegeneratePull { target };
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn envs(v: &[(&str, Option<i64>)]) -> Vec<(String, Option<i64>)> {
        v.iter().map(|(n, g)| (n.to_string(), *g)).collect()
    }

    #[test]
    fn idle_without_request() {
        assert_eq!(
            plan_rotation(false, 3, Some(3), Some(3), &[]),
            RotationStep::Idle
        );
    }

    #[test]
    fn walks_every_step_in_order() {
        let e = envs(&[("dev", Some(1)), ("prod", Some(1))]);
        assert_eq!(
            plan_rotation(true, 1, Some(1), Some(1), &e),
            RotationStep::RegeneratePush { target: 2 }
        );
        assert_eq!(
            plan_rotation(true, 1, Some(2), Some(1), &e),
            RotationStep::RegeneratePull { target: 2 }
        );
        assert_eq!(
            plan_rotation(true, 1, Some(2), Some(2), &e),
            RotationStep::AwaitPropagation {
                target: 2,
                pending: vec!["dev".into(), "prod".into()]
            }
        );
        let e = envs(&[("dev", Some(2)), ("prod", Some(1))]);
        assert_eq!(
            plan_rotation(true, 1, Some(2), Some(2), &e),
            RotationStep::AwaitPropagation {
                target: 2,
                pending: vec!["prod".into()]
            }
        );
        let e = envs(&[("dev", Some(2)), ("prod", Some(2))]);
        assert_eq!(
            plan_rotation(true, 1, Some(2), Some(2), &e),
            RotationStep::Finish { target: 2 }
        );
    }

    #[test]
    fn a_missing_target_secret_is_pending() {
        let e = envs(&[("dev", None)]);
        assert!(matches!(
            plan_rotation(true, 1, Some(2), Some(2), &e),
            RotationStep::AwaitPropagation { .. }
        ));
    }

    #[test]
    fn no_environments_finishes_once_persisted() {
        assert_eq!(
            plan_rotation(true, 4, Some(5), Some(5), &[]),
            RotationStep::Finish { target: 5 }
        );
    }
}
