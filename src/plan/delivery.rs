//! Delivery modes (pure): which steps an Environment pass runs in each
//! mode, and in `GitOps` mode what each Component's target needs — wait
//! for the engine, or (an emergency rotation under the `Direct` policy)
//! the controller's own apply. One writer per object at a time.

use crate::api::{DeliveryMode, EmergencyDelivery, LiveGeneration};

use super::spec::SpecError;

/// The mode an Environment runs in: its `spec.delivery.mode`, else the
/// controller's default. Without a side repository there is nothing to
/// commit: the default falls back to `Direct`, while a mode the spec asks
/// for explicitly is refused rather than silently ignored.
pub fn effective_mode(
    spec: Option<DeliveryMode>,
    default: DeliveryMode,
    side_repo: bool,
) -> Result<DeliveryMode, SpecError> {
    match (spec, side_repo) {
        (_, true) => Ok(spec.unwrap_or(default)),
        (None | Some(DeliveryMode::Direct), false) => Ok(DeliveryMode::Direct),
        (Some(m), false) => Err(SpecError::NoSideRepository(m.as_str().to_string())),
    }
}

/// The steps of a pass, in order: commit (when set) before apply, so the
/// engine's source already holds what the controller applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steps {
    /// Render, seal and commit the folder.
    pub commit: bool,
    /// The controller applies every pull Secret, heals and prunes them.
    pub apply: bool,
    /// The controller reads the target to learn which generation is live.
    pub observe: bool,
}

pub fn steps(mode: DeliveryMode) -> Steps {
    match mode {
        DeliveryMode::Direct => Steps {
            commit: false,
            apply: true,
            observe: false,
        },
        DeliveryMode::GitOps => Steps {
            commit: true,
            apply: false,
            observe: true,
        },
        DeliveryMode::Both => Steps {
            commit: true,
            apply: true,
            observe: true,
        },
    }
}

/// What quayside wants a Component's target Secret to hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub generation: i64,
    /// The robot the credentials log in as (`org+short`).
    pub robot: String,
}

/// What the target Secret holds, read from the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Live {
    pub generation: Option<i64>,
    pub robot: Option<String>,
}

/// In `GitOps` mode, what to do about one Component's target Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GitOpsTarget {
    /// The target serves the wanted generation (or a later one).
    Live,
    /// The engine has not applied it yet: wait (and wake it).
    AwaitEngine,
    /// An emergency rotation under the `Direct` policy: the live token is
    /// the same robot's older one, which Quay revoked when it regenerated;
    /// waiting would leave pulls failing, so the controller applies now.
    ApplyNow,
}

/// Decide for one Component. An emergency rotation regenerates the token
/// of the robot already delivered (a scheduled one delivers a robot of
/// the other slot, whose old token keeps working), so "same robot, older
/// generation" is exactly "the live token is revoked", read from durable
/// state only.
pub fn gitops_target(
    wanted: &Wanted,
    live: Option<&Live>,
    policy: EmergencyDelivery,
) -> GitOpsTarget {
    let Some(live) = live else {
        return GitOpsTarget::AwaitEngine;
    };
    match live.generation {
        Some(g) if g >= wanted.generation => GitOpsTarget::Live,
        Some(_)
            if policy == EmergencyDelivery::Direct
                && live.robot.as_deref() == Some(wanted.robot.as_str()) =>
        {
            GitOpsTarget::ApplyNow
        }
        _ => GitOpsTarget::AwaitEngine,
    }
}

/// How the Applied condition reads in `GitOps` mode, from what is live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Served {
    /// Every Component's wanted generation is live.
    AllLive,
    /// These Components wait for an open pull request (its URL).
    AwaitingReview { url: String, pending: Vec<String> },
    /// These Components wait for the engine to apply what is committed.
    AwaitingEngine { pending: Vec<String> },
}

pub fn served(live: &[LiveGeneration], pull_request: Option<&str>) -> Served {
    let pending: Vec<String> = live
        .iter()
        .filter(|l| l.generation.unwrap_or(0) < l.desired)
        .map(|l| l.component.clone())
        .collect();
    match (pending.is_empty(), pull_request) {
        (true, _) => Served::AllLive,
        (false, Some(url)) => Served::AwaitingReview {
            url: url.to_string(),
            pending,
        },
        (false, None) => Served::AwaitingEngine { pending },
    }
}

/// The generation a Component's rotation waits on for one Environment,
/// when that Environment reports it: in `GitOps` mode (`mode`, the
/// Environment's effective one) its own pass read the target as the
/// workspace's delivery identity, and its `status.live` is the answer
/// (`Some(None)`: nothing live for this Component, or no pass reported
/// yet). `None`: the Component reads the target itself, as before.
pub fn reported_generation(
    mode: Option<DeliveryMode>,
    live: &[LiveGeneration],
    component: &str,
) -> Option<Option<i64>> {
    (mode == Some(DeliveryMode::GitOps)).then(|| {
        live.iter()
            .find(|l| l.component == component)
            .and_then(|l| l.generation)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeliveryMode::*;

    #[test]
    fn the_spec_wins_and_no_side_repository_means_direct() {
        let cases = [
            (None, Both, true, Ok(Both)),
            (Some(GitOps), Both, true, Ok(GitOps)),
            (Some(Direct), GitOps, true, Ok(Direct)),
            (None, GitOps, false, Ok(Direct)),
            (Some(Direct), Both, false, Ok(Direct)),
            (
                Some(GitOps),
                Direct,
                false,
                Err(SpecError::NoSideRepository("GitOps".into())),
            ),
            (
                Some(Both),
                Direct,
                false,
                Err(SpecError::NoSideRepository("Both".into())),
            ),
        ];
        for (spec, default, side, want) in cases {
            assert_eq!(
                effective_mode(spec, default, side),
                want,
                "{spec:?} {default:?} {side}"
            );
        }
    }

    #[test]
    fn exactly_one_writer_per_mode() {
        assert_eq!(
            steps(Direct),
            Steps {
                commit: false,
                apply: true,
                observe: false
            }
        );
        // GitOps: the engine is the only writer of the Secrets.
        assert!(!steps(GitOps).apply && steps(GitOps).commit && steps(GitOps).observe);
        assert!(steps(Both).apply && steps(Both).commit);
    }

    fn wanted(g: i64, robot: &str) -> Wanted {
        Wanted {
            generation: g,
            robot: robot.into(),
        }
    }

    fn live(g: Option<i64>, robot: Option<&str>) -> Live {
        Live {
            generation: g,
            robot: robot.map(String::from),
        }
    }

    #[test]
    fn gitops_waits_for_the_engine_except_for_a_revoked_token() {
        use EmergencyDelivery::{Direct as Now, Wait};
        use GitOpsTarget::*;
        let w = wanted(3, "org+a_pull0");
        let cases = [
            // Nothing there yet: first delivery goes through git.
            (None, Now, AwaitEngine),
            (Some(live(Some(3), Some("org+a_pull0"))), Now, Live),
            (Some(live(Some(4), Some("org+a_pull0"))), Now, Live),
            // Same robot, older generation: regenerated, old token revoked.
            (Some(live(Some(2), Some("org+a_pull0"))), Now, ApplyNow),
            (Some(live(Some(2), Some("org+a_pull0"))), Wait, AwaitEngine),
            // Another slot's robot: a scheduled rotation, the old one works.
            (Some(live(Some(2), Some("org+a_pull1"))), Now, AwaitEngine),
            // Unreadable payload or no generation: not known to be revoked.
            (Some(live(Some(2), None)), Now, AwaitEngine),
            (Some(live(None, Some("org+a_pull0"))), Now, AwaitEngine),
        ];
        for (l, policy, want) in cases {
            assert_eq!(
                gitops_target(&w, l.as_ref(), policy),
                want,
                "{l:?} {policy:?}"
            );
        }
    }

    fn lg(c: &str, g: Option<i64>, d: i64) -> LiveGeneration {
        LiveGeneration {
            component: c.into(),
            generation: g,
            desired: d,
        }
    }

    #[test]
    fn served_names_what_waits_and_on_what() {
        let all = [lg("a", Some(2), 2), lg("b", Some(3), 2)];
        assert_eq!(served(&all, Some("http://pr/1")), Served::AllLive);
        assert_eq!(served(&[], None), Served::AllLive);
        let some = [lg("a", Some(1), 2), lg("b", None, 1), lg("c", Some(1), 1)];
        assert_eq!(
            served(&some, Some("http://pr/1")),
            Served::AwaitingReview {
                url: "http://pr/1".into(),
                pending: vec!["a".into(), "b".into()]
            }
        );
        assert_eq!(
            served(&some, None),
            Served::AwaitingEngine {
                pending: vec!["a".into(), "b".into()]
            }
        );
    }

    #[test]
    fn gitops_environments_report_what_the_component_waits_on() {
        let live = [lg("a", Some(3), 3), lg("b", None, 1)];
        assert_eq!(reported_generation(Some(GitOps), &live, "a"), Some(Some(3)));
        assert_eq!(reported_generation(Some(GitOps), &live, "b"), Some(None));
        // Not listed (a new Component, or no pass reported yet): nothing live.
        assert_eq!(reported_generation(Some(GitOps), &live, "c"), Some(None));
        assert_eq!(reported_generation(Some(GitOps), &[], "a"), Some(None));
        // Direct and Both apply themselves; a mode this controller cannot
        // run: the Component reads the target.
        assert_eq!(reported_generation(Some(Both), &live, "a"), None);
        assert_eq!(reported_generation(Some(Direct), &live, "a"), None);
        assert_eq!(reported_generation(None, &live, "a"), None);
    }
}
