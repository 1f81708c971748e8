//! The emergency-rotation state machine, recovered from what is persisted.
//!
//! Every step is decided from durable state only — the generation recorded
//! in status and the generation annotation on each workspace Secret — so a
//! controller that crashes at any point picks up exactly where it stopped:
//! a token regenerated on Quay but not yet persisted is simply regenerated
//! again (the lost one is revoked anyway), and nothing finishes before every
//! Environment holds the new token — or before the rotation's deadline,
//! counted from the start time recorded in status, has passed: then the
//! Environments still behind are left as stragglers, so one broken
//! Environment cannot keep a retired credential valid for the others.

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
    /// Every Environment holds `target`, or the deadline passed and
    /// `stragglers` do not: remove the annotation if any, delete the robots
    /// of the inactive slot, record `target`.
    Finish {
        target: i64,
        stragglers: Vec<String>,
    },
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
        RotationStep::Finish {
            target,
            stragglers: Vec::new(),
        }
    } else {
        RotationStep::AwaitPropagation { target, pending }
    }
}

/// Whether a rotation waiting since `started_secs` (recorded in status, so
/// a restart does not reset it) has reached its deadline. `None` as
/// deadline: never.
pub fn deadline_passed(
    started_secs: Option<i64>,
    deadline_secs: Option<i64>,
    now_secs: i64,
) -> bool {
    matches!((started_secs, deadline_secs), (Some(s), Some(d)) if now_secs - s >= d)
}

/// The deadline applied to a step: a rotation past its deadline finishes
/// now, naming the Environments still behind as stragglers — once every one
/// of them is `failing` (its last pass could not deliver to its target:
/// unreachable, namespace gone).
/// One that is healthy but has not delivered yet (a controller restarted
/// after the deadline has not reached it) is waited for: it is about to
/// catch up, and finishing first would delete a scheduled rotation's old
/// robots under it.
pub fn apply_deadline(
    step: RotationStep,
    started_secs: Option<i64>,
    deadline_secs: Option<i64>,
    now_secs: i64,
    failing: &[String],
) -> RotationStep {
    match step {
        RotationStep::AwaitPropagation { target, pending }
            if deadline_passed(started_secs, deadline_secs, now_secs)
                && pending.iter().all(|p| failing.contains(p)) =>
        {
            RotationStep::Finish {
                target,
                stragglers: pending,
            }
        }
        step => step,
    }
}

/// When the rotation in flight started, after a pass that ended at
/// `last` (the step it stopped at): kept while it waits (the first pass to
/// wait records `now`), cleared once nothing is in flight.
pub fn rotation_started(last: &RotationStep, recorded: Option<i64>, now_secs: i64) -> Option<i64> {
    match last {
        RotationStep::AwaitPropagation { .. } => Some(recorded.unwrap_or(now_secs)),
        RotationStep::Idle | RotationStep::Finish { .. } => None,
        // Not a step a pass stops at; a failed step keeps what was recorded.
        _ => recorded,
    }
}

/// The Environments to report as stragglers after a pass: those named
/// before or left behind by a deadline just now, while they still hold less
/// than the `recorded` generation (one that caught up, or was deleted,
/// drops out). Sorted, without repeats.
pub fn stragglers(
    previous: &[String],
    left_behind: &[String],
    delivered: &[(String, Option<i64>)],
    recorded: i64,
) -> Vec<String> {
    let mut out: Vec<String> = previous
        .iter()
        .chain(left_behind)
        .filter(|n| {
            delivered
                .iter()
                .any(|(d, g)| d == *n && g.unwrap_or(0) < recorded)
        })
        .cloned()
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A workspace Secret holding a robot's login is `missing` although the
/// Component was provisioned before: its repository was already on Quay
/// (`repository_found`: not created by this pass — status and the
/// Environments' copies may be gone too, the Environments prune a
/// Component without credentials), or status (`recorded`) or an
/// Environment (`delivered`) still shows a generation. A login the
/// controller lost is treated as exposed: its robots are replaced, and the
/// new logins start at the returned generation, above every one known.
/// `None`: a first provisioning, or nothing missing — or `never_stored`:
/// status names the repository but no generation, so no login was ever
/// stored (a refused write, retried), and none can have leaked.
pub fn lost_logins(
    missing: bool,
    repository_found: bool,
    never_stored: bool,
    recorded: i64,
    delivered: &[(String, Option<i64>)],
) -> Option<i64> {
    let known = delivered
        .iter()
        .filter_map(|(_, g)| *g)
        .fold(recorded, i64::max);
    let provisioned = (repository_found && !never_stored) || known > 0;
    (missing && provisioned).then_some(known + 1)
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
            RotationStep::Finish {
                target: 2,
                stragglers: vec![]
            }
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
            RotationStep::Finish {
                target: 4,
                stragglers: vec![]
            }
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
            RotationStep::Finish {
                target: 2,
                stragglers: vec![]
            }
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
            RotationStep::Finish {
                target: 5,
                stragglers: vec![]
            }
        );
    }

    const HOUR: i64 = 3600;

    #[test]
    fn the_deadline_finishes_a_rotation_that_waits_too_long() {
        let e = envs(&[("dev", Some(2)), ("prod", Some(1))]);
        let waiting = plan_rotation(true, false, 1, Some(2), Some(2), &e);
        // Table: (started, deadline, now) -> finished with stragglers?
        let table = [
            (Some(1000), Some(HOUR), 1000 + HOUR - 1, false),
            (Some(1000), Some(HOUR), 1000 + HOUR, true),
            (Some(1000), Some(HOUR), 1000 + 5 * HOUR, true),
            // Not recorded yet: this pass records it; never finished at once.
            (None, Some(HOUR), 1000 + 5 * HOUR, false),
            // Deadline disabled: waits for ever.
            (Some(1000), None, 1000 + 500 * HOUR, false),
        ];
        for (started, deadline, now, finished) in table {
            let step = apply_deadline(waiting.clone(), started, deadline, now, &["prod".into()]);
            let want = if finished {
                RotationStep::Finish {
                    target: 2,
                    stragglers: vec!["prod".into()],
                }
            } else {
                waiting.clone()
            };
            assert_eq!(step, want, "{started:?} {deadline:?} {now}");
        }
    }

    #[test]
    fn a_healthy_environment_behind_is_waited_for_past_the_deadline() {
        // A controller restarted after the deadline: `dev` is healthy but
        // its pass has not run yet; `prod` is down.
        let e = envs(&[("dev", Some(1)), ("prod", Some(1))]);
        let waiting = plan_rotation(false, false, 1, Some(2), Some(2), &e);
        let late = 1000 + 2 * HOUR;
        let down = ["prod".to_string()];
        assert!(deadline_passed(Some(1000), Some(HOUR), late));
        assert_eq!(
            apply_deadline(waiting.clone(), Some(1000), Some(HOUR), late, &down),
            waiting
        );
        // `dev` caught up: the rotation finishes without `prod`.
        let e = envs(&[("dev", Some(2)), ("prod", Some(1))]);
        let waiting = plan_rotation(false, false, 1, Some(2), Some(2), &e);
        assert_eq!(
            apply_deadline(waiting, Some(1000), Some(HOUR), late, &down),
            RotationStep::Finish {
                target: 2,
                stragglers: vec!["prod".into()]
            }
        );
    }

    #[test]
    fn the_deadline_changes_no_other_step() {
        for step in [
            RotationStep::Idle,
            RotationStep::RegeneratePush { target: 2 },
            RotationStep::RegeneratePull { target: 2 },
            RotationStep::StartScheduled { target: 2 },
            RotationStep::Finish {
                target: 2,
                stragglers: vec![],
            },
        ] {
            assert_eq!(
                apply_deadline(step.clone(), Some(0), Some(1), HOUR, &[]),
                step
            );
        }
    }

    #[test]
    fn the_start_is_recorded_once_and_cleared_when_done() {
        let waiting = RotationStep::AwaitPropagation {
            target: 2,
            pending: vec!["prod".into()],
        };
        assert_eq!(rotation_started(&waiting, None, 50), Some(50));
        assert_eq!(rotation_started(&waiting, Some(10), 50), Some(10));
        let done = RotationStep::Finish {
            target: 2,
            stragglers: vec!["prod".into()],
        };
        assert_eq!(rotation_started(&done, Some(10), 50), None);
        assert_eq!(rotation_started(&RotationStep::Idle, Some(10), 50), None);
        let failed = RotationStep::RegeneratePull { target: 2 };
        assert_eq!(rotation_started(&failed, Some(10), 50), Some(10));
    }

    /// Crash recovery across the deadline: every durable state a crash can
    /// leave, read again by a restarted controller after the deadline,
    /// leads to the same finish with the same stragglers.
    #[test]
    fn a_restart_after_the_deadline_finishes_the_same_rotation() {
        let e = envs(&[("dev", Some(2)), ("prod", Some(1))]);
        let started = Some(1000);
        let now = 1000 + HOUR;
        let want = RotationStep::Finish {
            target: 2,
            stragglers: vec!["prod".into()],
        };
        let f = vec!["prod".to_string()];
        // (requested, recorded): the annotation still there, or removed
        // before the crash (the generation not yet recorded).
        for requested in [true, false] {
            let step = plan_rotation(requested, false, 1, Some(2), Some(2), &e);
            assert_eq!(apply_deadline(step, started, Some(HOUR), now, &f), want);
        }
        // A scheduled rotation persisted, then crashed: same.
        let step = plan_rotation(false, false, 1, Some(2), Some(2), &e);
        assert_eq!(apply_deadline(step, started, Some(HOUR), now, &f), want);
        // Finished and recorded before the crash: nothing left to do, and
        // the straggler is still reported from status.
        let step = plan_rotation(false, false, 2, Some(2), Some(2), &e);
        assert_eq!(
            apply_deadline(step, None, Some(HOUR), now, &f),
            RotationStep::Idle
        );
        assert_eq!(
            stragglers(&["prod".into()], &[], &e, 2),
            vec!["prod".to_string()]
        );
        // The restart itself never moves the start: the status value is kept.
        let waiting = plan_rotation(false, false, 1, Some(2), Some(2), &e);
        assert_eq!(rotation_started(&waiting, started, now + 99), started);
    }

    #[test]
    fn stragglers_drop_out_when_they_catch_up_or_go() {
        let e = envs(&[("a", Some(1)), ("b", Some(2)), ("c", None)]);
        let prev = vec!["b".to_string(), "gone".to_string()];
        let left = vec!["a".to_string(), "c".to_string()];
        assert_eq!(stragglers(&prev, &left, &e, 2), vec!["a", "c"]);
        assert_eq!(stragglers(&["a".into()], &["a".into()], &e, 2), vec!["a"]);
        assert!(stragglers(&["a".into()], &[], &e, 1).is_empty());
    }

    #[test]
    fn lost_logins_after_provisioning_only() {
        let none: Vec<(String, Option<i64>)> = Vec::new();
        // A first provisioning: the repository made by this pass.
        assert_eq!(lost_logins(true, false, false, 0, &none), None);
        assert_eq!(
            lost_logins(true, false, false, 0, &envs(&[("dev", None)])),
            None
        );
        // Nothing missing.
        assert_eq!(
            lost_logins(false, true, false, 3, &envs(&[("dev", Some(3))])),
            None
        );
        // Secrets wiped, status kept: past what status recorded.
        assert_eq!(lost_logins(true, true, false, 3, &none), Some(4));
        // Status wiped too: the Environments tell, if they still hold it...
        assert_eq!(
            lost_logins(
                true,
                true,
                false,
                0,
                &envs(&[("a", Some(2)), ("b", Some(4))])
            ),
            Some(5)
        );
        // ...else the repository on Quay does (they pruned the Component).
        assert_eq!(
            lost_logins(true, true, false, 0, &envs(&[("a", None)])),
            Some(1)
        );
        // A write refused before any login was stored, retried: nothing leaked.
        assert_eq!(lost_logins(true, true, true, 0, &none), None);
    }
}
