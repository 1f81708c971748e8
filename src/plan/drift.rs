//! Quay-side drift: whether a heartbeat pass verifies a Component's Quay
//! objects, and what the cheap verification found (pure).
//!
//! Once per heartbeat a Component's repository (existence, visibility,
//! owner record) and its permission list are read — two API calls — and the
//! stored logins are compared with a listing of the organization's robots
//! shared by every Component (a registry login confirms any mismatch before
//! it counts). What differs from what quayside
//! made is a [`Drift`]; the controller heals it with its usual steps and
//! reports each one with [`Drift::message`].

use std::collections::BTreeMap;
use std::time::Duration;

use crate::api::ResolvedVisibility;

/// Whether this pass verifies Quay: a heartbeat has passed since the last
/// verification (`status.quayVerifiedAt`, in seconds). Recorded in status,
/// so a restart does not verify everything again at once; never recorded
/// (a Component from before the field) is due.
pub fn verification_due(last_verified: Option<i64>, heartbeat: Duration, now: i64) -> bool {
    match last_verified {
        Some(last) => now - last >= heartbeat.as_secs() as i64,
        None => true,
    }
}

/// How long until the next verification is due (at least a second): a
/// pass woken by something else must not push the verification back.
/// Never verified: a heartbeat (such a pass verifies as it goes).
pub fn until_due(last_verified: Option<i64>, heartbeat: Duration, now: i64) -> Duration {
    let Some(last) = last_verified else {
        return heartbeat;
    };
    let left = (last + heartbeat.as_secs() as i64 - now).max(1);
    Duration::from_secs(left as u64)
}

/// How old the shared robot listing may be when a verification uses it: a
/// token regenerated on Quay is then seen within a heartbeat and a quarter
/// (never more than five minutes late), and the listing costs at most four
/// calls per heartbeat for the whole organization, whatever the number of
/// Components.
pub fn listing_max_age(heartbeat: Duration) -> Duration {
    (heartbeat / 4).min(Duration::from_secs(300))
}

/// One of the Component's robots as quayside made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedRobot {
    /// Full name, `org+short`.
    pub name: String,
    /// `write` (push) or `read` (pull).
    pub role: &'static str,
    /// Whether the stored token is the robot's current one (`None`: not
    /// known, e.g. no stored login).
    pub token_current: Option<bool>,
}

/// What the verification saw of the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenRepository {
    pub visibility: ResolvedVisibility,
    /// Its owner record names this Component.
    pub ours: bool,
}

/// Everything one verification looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// The repository, `None` when Quay does not have it.
    pub repository: Option<SeenRepository>,
    /// The visibility it must have (spec, or the source just probed).
    pub wanted: ResolvedVisibility,
    /// The visibility status recorded: differs from `wanted` when an
    /// `auto` source changed.
    pub recorded: Option<ResolvedVisibility>,
    /// User and robot permissions on the repository, name → role (`None`:
    /// not read, the repository being gone).
    pub permissions: Option<BTreeMap<String, String>>,
    pub robots: Vec<ExpectedRobot>,
}

/// A difference between Quay and what quayside made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Drift {
    RepositoryDeleted,
    /// The owner record no longer names this Component: the full check
    /// (owner rules) decides; no event of its own.
    OwnerRecordChanged,
    /// `source_changed`: not drift but an `auto` source that changed.
    Visibility {
        found: ResolvedVisibility,
        wanted: ResolvedVisibility,
        source_changed: bool,
    },
    /// The stored token is not current and the robot has no permission
    /// left: deleted on Quay.
    RobotDeleted {
        robot: String,
    },
    /// The stored token is not current but the robot is still granted:
    /// its token was regenerated on Quay.
    TokenRegenerated {
        robot: String,
    },
    /// The robot's permission is missing or another role.
    Permission {
        robot: String,
        wanted: &'static str,
        found: Option<String>,
    },
}

/// What differs. Empty: nothing to heal.
pub fn findings(v: &Verification) -> Vec<Drift> {
    let Some(repo) = &v.repository else {
        return vec![Drift::RepositoryDeleted];
    };
    let mut out = Vec::new();
    if !repo.ours {
        out.push(Drift::OwnerRecordChanged);
    }
    if repo.visibility != v.wanted {
        out.push(Drift::Visibility {
            found: repo.visibility,
            wanted: v.wanted,
            source_changed: v.recorded.is_some_and(|r| r != v.wanted),
        });
    }
    for robot in &v.robots {
        let found = v
            .permissions
            .as_ref()
            .and_then(|p| p.get(&robot.name))
            .cloned();
        let refused = robot.token_current == Some(false);
        let name = robot.name.clone();
        match (refused, found.as_deref()) {
            (true, None) => out.push(Drift::RobotDeleted { robot: name }),
            (true, Some(role)) if role == robot.role => {
                out.push(Drift::TokenRegenerated { robot: name })
            }
            (true, Some(_)) => {
                out.push(Drift::TokenRegenerated {
                    robot: name.clone(),
                });
                out.push(Drift::Permission {
                    robot: name,
                    wanted: robot.role,
                    found,
                });
            }
            (false, Some(role)) if role == robot.role => {}
            (false, _) => out.push(Drift::Permission {
                robot: name,
                wanted: robot.role,
                found,
            }),
        }
    }
    out
}

impl Drift {
    /// Whether this is reported as Quay drift (a Warning): everything but
    /// a followed source and an owner record (the owner rules report that).
    pub fn is_drift(&self) -> bool {
        !matches!(
            self,
            Drift::OwnerRecordChanged
                | Drift::Visibility {
                    source_changed: true,
                    ..
                }
        )
    }

    /// What was found and done, for the event. `image` is the repository's
    /// pull spec. No token ever appears here.
    pub fn message(&self, image: &str) -> String {
        match self {
            Drift::RepositoryDeleted => format!(
                "repository {image} was deleted on Quay; created again and both robots granted again (its images are gone)"
            ),
            Drift::OwnerRecordChanged => format!(
                "the owner record of repository {image} changed on Quay; ownership checked again"
            ),
            Drift::Visibility {
                found,
                wanted,
                source_changed: false,
            } => format!(
                "repository {image} was made {} on Quay; made {} again",
                found.as_str(),
                wanted.as_str()
            ),
            Drift::Visibility { wanted, .. } => format!(
                "the source repository is now {}: repository {image} made {} (visibility auto)",
                wanted.as_str(),
                wanted.as_str()
            ),
            Drift::RobotDeleted { robot } => format!(
                "robot {robot} was deleted on Quay; recreated, granted again and its new token delivered"
            ),
            Drift::TokenRegenerated { robot } => format!(
                "the token of robot {robot} was regenerated on Quay; the new token is stored and delivered"
            ),
            Drift::Permission {
                robot,
                wanted,
                found: None,
            } => format!(
                "the {wanted} permission of robot {robot} on {image} was removed on Quay; granted again"
            ),
            Drift::Permission {
                robot,
                wanted,
                found: Some(found),
            } => format!(
                "robot {robot} had {found} instead of {wanted} on {image} (changed on Quay); set back to {wanted}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResolvedVisibility::{Private, Public};

    const H: Duration = Duration::from_secs(3600);

    #[test]
    fn the_shared_listing_is_a_quarter_heartbeat_old_at_most_five_minutes() {
        let s = Duration::from_secs;
        assert_eq!(listing_max_age(s(4)), s(1));
        assert_eq!(listing_max_age(s(600)), s(150));
        assert_eq!(listing_max_age(H), s(300));
        assert_eq!(listing_max_age(s(24 * 3600)), s(300));
    }

    #[test]
    fn verification_is_due_once_per_heartbeat() {
        let cases = [
            (None, 100, true, 3600),
            (Some(100), 100, false, 3600),
            (Some(100), 3699, false, 1),
            (Some(100), 3700, true, 1),
            (Some(100), 9000, true, 1),
            // A clock that went back: not due, and not sooner than a second.
            (Some(5000), 100, false, 8500),
        ];
        for (last, now, due, left) in cases {
            assert_eq!(verification_due(last, H, now), due, "{last:?} {now}");
            assert_eq!(
                until_due(last, H, now),
                Duration::from_secs(left),
                "{last:?} {now}"
            );
        }
    }

    fn robot(name: &str, role: &'static str, login: Option<bool>) -> ExpectedRobot {
        ExpectedRobot {
            name: name.into(),
            role,
            token_current: login,
        }
    }

    fn steady() -> Verification {
        Verification {
            repository: Some(SeenRepository {
                visibility: Private,
                ours: true,
            }),
            wanted: Private,
            recorded: Some(Private),
            permissions: Some(
                [("o+push", "write"), ("o+pull", "read"), ("alice", "admin")]
                    .into_iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            ),
            robots: vec![
                robot("o+push", "write", Some(true)),
                robot("o+pull", "read", Some(true)),
            ],
        }
    }

    /// What a case is called, how it changes the steady state, what it finds.
    type Case = (&'static str, fn(&mut Verification), Vec<Drift>);

    fn perms(v: &mut Verification) -> &mut BTreeMap<String, String> {
        v.permissions.as_mut().unwrap()
    }

    #[test]
    fn each_kind_of_drift() {
        assert_eq!(findings(&steady()), vec![], "a person's grant is not drift");
        let table: Vec<Case> = vec![
            (
                "repository deleted",
                |v| v.repository = None,
                vec![Drift::RepositoryDeleted],
            ),
            (
                "made public",
                |v| v.repository.as_mut().unwrap().visibility = Public,
                vec![Drift::Visibility {
                    found: Public,
                    wanted: Private,
                    source_changed: false,
                }],
            ),
            (
                "source turned private",
                |v| {
                    v.repository.as_mut().unwrap().visibility = Public;
                    v.recorded = Some(Public);
                },
                vec![Drift::Visibility {
                    found: Public,
                    wanted: Private,
                    source_changed: true,
                }],
            ),
            (
                "owner record changed",
                |v| v.repository.as_mut().unwrap().ours = false,
                vec![Drift::OwnerRecordChanged],
            ),
            (
                "pull robot deleted",
                |v| {
                    perms(v).remove("o+pull");
                    v.robots[1].token_current = Some(false);
                },
                vec![Drift::RobotDeleted {
                    robot: "o+pull".into(),
                }],
            ),
            (
                "push token regenerated",
                |v| v.robots[0].token_current = Some(false),
                vec![Drift::TokenRegenerated {
                    robot: "o+push".into(),
                }],
            ),
            (
                "pull permission revoked",
                |v| {
                    perms(v).remove("o+pull");
                },
                vec![Drift::Permission {
                    robot: "o+pull".into(),
                    wanted: "read",
                    found: None,
                }],
            ),
            (
                "pull robot raised to admin",
                |v| {
                    perms(v).insert("o+pull".into(), "admin".into());
                },
                vec![Drift::Permission {
                    robot: "o+pull".into(),
                    wanted: "read",
                    found: Some("admin".into()),
                }],
            ),
            (
                "no stored login: only the permission counts",
                |v| v.robots[1].token_current = None,
                vec![],
            ),
        ];
        for (what, change, want) in table {
            let mut v = steady();
            change(&mut v);
            assert_eq!(findings(&v), want, "{what}");
        }
    }

    #[test]
    fn messages_say_what_was_found_and_done() {
        let image = "quay.io/o/team/app";
        let deleted = Drift::RobotDeleted {
            robot: "o+pull".into(),
        };
        assert!(deleted.is_drift());
        assert_eq!(
            deleted.message(image),
            "robot o+pull was deleted on Quay; recreated, granted again and its new token delivered"
        );
        let public = Drift::Visibility {
            found: Public,
            wanted: Private,
            source_changed: false,
        };
        assert_eq!(
            public.message(image),
            "repository quay.io/o/team/app was made public on Quay; made private again"
        );
        let source = Drift::Visibility {
            found: Public,
            wanted: Private,
            source_changed: true,
        };
        assert!(!source.is_drift());
        assert!(
            source
                .message(image)
                .contains("source repository is now private")
        );
        assert!(!Drift::OwnerRecordChanged.is_drift());
    }
}
