//! Status from what a pass found and did: the conditions and fields of a
//! Component's and an Environment's status, derived by pure functions so
//! every reason is covered by a table test, and written once per pass.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::{
    ComponentStatus, ConditionStatus, ConditionType, ConditionValue, DeliveryMode,
    EnvironmentDelivery, EnvironmentStatus, LiveGeneration, ResolvedVisibility, set_condition,
};
use crate::plan::delivery::{Served, served};

/// Why something is not ready: a CamelCase reason and a message that tells
/// a person what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: String,
    pub message: String,
}

impl Problem {
    pub fn new(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            reason: reason.into(),
            message: message.into(),
        }
    }
}

/// What a Component pass learned about its Environments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Propagation {
    /// The pass stopped before it looked (an earlier step failed).
    NotChecked,
    /// Every Environment holds the recorded generation.
    Delivered { environments: usize },
    /// These Environments do not hold the recorded generation yet.
    Pending(Vec<String>),
    /// A rotation waits for these Environments to hold its new token.
    Rotating(Vec<String>),
}

/// Everything a Component pass found and did that status reports.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentReport {
    /// Full pull spec, once Quay confirmed the repository (never a name
    /// Quay did not answer for: a mistyped organization, a refused create).
    pub image: Option<String>,
    pub visibility: Option<ResolvedVisibility>,
    pub push_secret: String,
    pub push_robot: Option<String>,
    pub pull_robot: Option<String>,
    /// `None`: the repository is there as the spec asks.
    pub repository: Option<Problem>,
    /// `None`: no step about the credentials failed.
    pub credentials: Option<Problem>,
    /// The last completed credentials generation (0: never provisioned).
    pub generation: i64,
    pub rotated_at: Option<Time>,
    pub propagation: Propagation,
    /// Per Environment, when the pass looked (`None`: keep the last record).
    pub deliveries: Option<Vec<EnvironmentDelivery>>,
    /// The last `quayside.dev/rotate` value handled.
    pub rotate_handled: Option<String>,
    /// Why the generate annotation is not obeyed (`None`: it is not refused).
    pub rotation_request: Option<Problem>,
    /// The last verification of the Quay objects (this pass, or the last one).
    pub quay_verified_at: Option<Time>,
    /// When the rotation in flight began waiting (`None`: none in flight).
    pub rotation_started_at: Option<Time>,
    /// Environments a rotation left behind at its deadline that still miss
    /// `generation`; not counted in `propagation`, named by Degraded.
    pub stragglers: Vec<String>,
}

const TRUE: ConditionStatus = ConditionStatus::True;
const FALSE: ConditionStatus = ConditionStatus::False;

/// The four conditions of a Component, Ready last.
pub fn component_conditions(r: &ComponentReport) -> [ConditionValue; 4] {
    let repository = match &r.repository {
        None => ConditionValue::new(ConditionType::RepositoryReady, TRUE, "RepositoryReady", ""),
        Some(p) => failed(ConditionType::RepositoryReady, p),
    };
    let credentials = match &r.credentials {
        Some(p) => failed(ConditionType::CredentialsReady, p),
        None if r.generation > 0 => ConditionValue::new(
            ConditionType::CredentialsReady,
            TRUE,
            "CredentialsReady",
            "",
        ),
        None => ConditionValue::new(
            ConditionType::CredentialsReady,
            FALSE,
            "Pending",
            "robot credentials are not provisioned yet",
        ),
    };
    let propagated = propagated(r);
    let ready = if [&repository, &credentials, &propagated]
        .iter()
        .all(|c| c.status == TRUE)
    {
        ConditionValue::new(ConditionType::Ready, TRUE, "Ready", "")
    } else if let Some(p) = &r.repository {
        failed(ConditionType::Ready, p)
    } else if credentials.status != TRUE {
        ConditionValue::new(
            ConditionType::Ready,
            FALSE,
            "CredentialsNotReady",
            "see the CredentialsReady condition",
        )
    } else {
        ConditionValue::new(
            ConditionType::Ready,
            FALSE,
            "NotPropagated",
            "see the Propagated condition",
        )
    };
    [repository, credentials, propagated, ready]
}

fn propagated(r: &ComponentReport) -> ConditionValue {
    let kind = ConditionType::Propagated;
    match &r.propagation {
        Propagation::NotChecked => ConditionValue::new(
            kind,
            ConditionStatus::Unknown,
            "NotChecked",
            "the Environments were not checked because an earlier step failed; see the other conditions",
        ),
        // Nothing was delivered: saying "generation 0 delivered" would
        // claim what did not happen.
        _ if r.generation == 0 => ConditionValue::new(
            kind,
            FALSE,
            "AwaitingCredentials",
            "nothing to deliver until the robot credentials are provisioned",
        ),
        Propagation::Delivered { environments } => ConditionValue::new(
            kind,
            TRUE,
            "Propagated",
            format!(
                "generation {} delivered to {environments} Environment(s)",
                r.generation
            ),
        ),
        Propagation::Rotating(pending) => ConditionValue::new(
            kind,
            FALSE,
            "RotationInProgress",
            format!(
                "waiting for Environment(s) {} to hold the rotated token; see their conditions if this lasts",
                pending.join(", ")
            ),
        ),
        Propagation::Pending(pending) => ConditionValue::new(
            kind,
            FALSE,
            "Propagating",
            format!(
                "waiting for Environment(s) {} to receive generation {}; see their conditions if this lasts",
                pending.join(", "),
                r.generation
            ),
        ),
    }
}

/// Degraded=True naming the stragglers, while there are any: Ready speaks
/// for the Environments that hold the current generation.
pub fn degraded(r: &ComponentReport) -> Option<ConditionValue> {
    if r.stragglers.is_empty() {
        return None;
    }
    Some(ConditionValue::new(
        ConditionType::Degraded,
        TRUE,
        "RotationStragglers",
        format!(
            "Environment(s) {} missed the rotation to generation {} when its deadline passed: \
             they hold an older token, no longer valid, and receive the current one as soon as \
             they can be reached again; see their conditions",
            r.stragglers.join(", "),
            r.generation
        ),
    ))
}

fn failed(kind: ConditionType, p: &Problem) -> ConditionValue {
    ConditionValue::new(kind, FALSE, p.reason.clone(), p.message.clone())
}

/// The Component's new status. `old` keeps the transition times of
/// conditions whose status did not change, and the delivery records when
/// the pass did not look at the Environments.
pub fn component_status(
    old: &ComponentStatus,
    r: &ComponentReport,
    observed_generation: Option<i64>,
    now: Time,
) -> ComponentStatus {
    let mut conditions = old.conditions.clone();
    for value in component_conditions(r) {
        set_condition(&mut conditions, &value, observed_generation, now.clone());
    }
    // Present only while a request is refused, so a Component that never
    // had one shows the same four conditions as before.
    match &r.rotation_request {
        Some(p) => set_condition(
            &mut conditions,
            &failed(ConditionType::RotationRequest, p),
            observed_generation,
            now.clone(),
        ),
        None => conditions.retain(|c| c.type_ != ConditionType::RotationRequest.as_str()),
    }
    // Degraded likewise: present only while a rotation's stragglers miss it.
    match degraded(r) {
        Some(d) => set_condition(&mut conditions, &d, observed_generation, now.clone()),
        None => conditions.retain(|c| c.type_ != ConditionType::Degraded.as_str()),
    }
    ComponentStatus {
        image: r.image.clone(),
        visibility: r.visibility,
        push_secret: Some(r.push_secret.clone()),
        push_robot: r.push_robot.clone(),
        pull_robot: r.pull_robot.clone(),
        credentials_generation: r.generation,
        rotated_at: r.rotated_at.clone(),
        rotate_handled: r.rotate_handled.clone(),
        quay_verified_at: r.quay_verified_at.clone(),
        rotation_started_at: r.rotation_started_at.clone(),
        rotation_stragglers: r.stragglers.clone(),
        environments: r
            .deliveries
            .clone()
            .unwrap_or_else(|| old.environments.clone()),
        observed_generation,
        conditions,
    }
}

/// Everything an Environment pass found and did that status reports.
#[derive(Clone, Debug, PartialEq)]
pub struct EnvironmentReport {
    /// The ServiceAccount linked, or why delivery to the target failed.
    pub applied: Result<String, Problem>,
    /// `None` without a side repository; the commit made (if any) or why
    /// committing failed.
    pub committed: Option<Result<Option<String>, Problem>>,
    /// The pass wrote something (a Secret, a link, a commit).
    pub changed: bool,
    /// The side-repo folder that holds this Environment's files after the
    /// pass (`None`: not written by this pass); recorded in status so a
    /// later change of folder knows which one to remove.
    pub folder: Option<String>,
    /// The delivery mode the pass ran in.
    pub mode: DeliveryMode,
    /// What the target serves, when the pass read it (GitOps, Both).
    pub live: Option<Vec<LiveGeneration>>,
    /// The open pull request holding unmerged changes (pull-request side repo).
    pub pull_request: Option<String>,
}

impl EnvironmentReport {
    /// A report of a pass in `mode` that read nothing from the target and
    /// found no pull request (the fields tests vary are set after).
    pub fn new(
        mode: DeliveryMode,
        applied: Result<String, Problem>,
        committed: Option<Result<Option<String>, Problem>>,
    ) -> Self {
        EnvironmentReport {
            applied,
            committed,
            changed: false,
            folder: None,
            mode,
            live: None,
            pull_request: None,
        }
    }

    /// In `GitOps` mode, what the target serves against what is wanted.
    pub fn served(&self) -> Option<Served> {
        let live = self.live.as_deref()?;
        (self.mode == DeliveryMode::GitOps).then(|| served(live, self.pull_request.as_deref()))
    }
}

/// The conditions of an Environment: Applied, Committed (with a side
/// repository), Ready last.
pub fn environment_conditions(r: &EnvironmentReport) -> Vec<ConditionValue> {
    let mut out = vec![match (&r.applied, r.served()) {
        (Err(p), _) => failed(ConditionType::Applied, p),
        (Ok(sa), None) => ConditionValue::new(
            ConditionType::Applied,
            TRUE,
            "Applied",
            format!("pull Secrets applied and linked to ServiceAccount {sa}"),
        ),
        (Ok(sa), Some(Served::AllLive)) => ConditionValue::new(
            ConditionType::Applied,
            TRUE,
            "Live",
            format!("the GitOps engine applied every pull Secret; linked to ServiceAccount {sa}"),
        ),
        (Ok(_), Some(Served::AwaitingReview { url, pending })) => ConditionValue::new(
            ConditionType::Applied,
            FALSE,
            "AwaitingReview",
            format!(
                "pull request {url} holds the change for {}: nothing reaches the target before it is merged and the GitOps engine applies it",
                pending.join(", ")
            ),
        ),
        (Ok(_), Some(Served::AwaitingEngine { pending })) => ConditionValue::new(
            ConditionType::Applied,
            FALSE,
            "AwaitingEngine",
            format!(
                "committed; waiting for the GitOps engine to apply the pull Secret(s) of {}; check its sync status if this lasts",
                pending.join(", ")
            ),
        ),
    }];
    match &r.committed {
        None => {}
        Some(Ok(_)) => out.push(ConditionValue::new(
            ConditionType::Committed,
            TRUE,
            "Committed",
            "side-repository folder is up to date",
        )),
        Some(Err(p)) => out.push(failed(ConditionType::Committed, p)),
    }
    let first_problem = out.iter().find(|c| c.status != TRUE);
    out.push(match first_problem {
        None => ConditionValue::new(ConditionType::Ready, TRUE, "Ready", ""),
        Some(c) => ConditionValue::new(ConditionType::Ready, FALSE, &c.reason, &c.message),
    });
    out
}

/// The Environment's new status: what changed moves `lastSync` to `now`;
/// the linked account and commit are kept when the pass did not learn new ones.
pub fn environment_status(
    old: &EnvironmentStatus,
    r: &EnvironmentReport,
    observed_generation: Option<i64>,
    now: Time,
) -> EnvironmentStatus {
    let mut conditions = old.conditions.clone();
    for value in environment_conditions(r) {
        set_condition(&mut conditions, &value, observed_generation, now.clone());
    }
    let linked = match &r.applied {
        Ok(sa) => Some(sa.clone()),
        Err(_) => old.linked_service_account.clone(),
    };
    let commit = match &r.committed {
        Some(Ok(Some(c))) => Some(c.clone()),
        _ => old.commit.clone(),
    };
    if r.committed.is_none() {
        // Direct mode (or no side repository): nothing to report as committed.
        conditions.retain(|c| c.type_ != ConditionType::Committed.as_str());
    }
    let live = match (&r.live, r.mode) {
        (Some(l), _) => l.clone(),
        (None, DeliveryMode::Direct) => Vec::new(),
        (None, _) => old.live.clone(),
    };
    let pull_request = match r.served() {
        Some(Served::AwaitingReview { url, .. }) => Some(url),
        _ => None,
    };
    EnvironmentStatus {
        linked_service_account: linked,
        last_sync: if r.changed || old.last_sync.is_none() {
            Some(now)
        } else {
            old.last_sync.clone()
        },
        commit,
        side_repo_path: r.folder.clone().or_else(|| old.side_repo_path.clone()),
        observed_generation,
        delivery_mode: Some(r.mode.as_str().to_string()),
        live,
        pull_request,
        conditions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(s).unwrap())
    }

    fn report() -> ComponentReport {
        ComponentReport {
            image: Some("quay.io/acme/team/api".into()),
            visibility: Some(ResolvedVisibility::Private),
            push_secret: "api-image-push".into(),
            push_robot: Some("acme+push".into()),
            pull_robot: Some("acme+pull".into()),
            repository: None,
            credentials: None,
            generation: 2,
            rotated_at: None,
            propagation: Propagation::Delivered { environments: 2 },
            deliveries: Some(Vec::new()),
            rotate_handled: None,
            rotation_request: None,
            quay_verified_at: None,
            rotation_started_at: None,
            stragglers: Vec::new(),
        }
    }

    #[test]
    fn stragglers_are_a_degraded_condition_only_while_they_exist() {
        let degraded = ComponentReport {
            stragglers: vec!["dead".into(), "down".into()],
            ..report()
        };
        let s = component_status(&ComponentStatus::default(), &degraded, Some(1), t(10));
        let c = s.conditions.iter().find(|c| c.type_ == "Degraded").unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "RotationStragglers")
        );
        assert!(c.message.contains("dead, down") && c.message.contains("generation 2"));
        assert_eq!(s.rotation_stragglers, vec!["dead", "down"]);
        // Ready speaks for the healthy Environments.
        assert!(
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        );
        let healed = component_status(&s, &report(), Some(1), t(20));
        assert!(!healed.conditions.iter().any(|c| c.type_ == "Degraded"));
        assert!(healed.rotation_stragglers.is_empty());
    }

    #[test]
    fn a_refused_rotation_request_is_a_condition_only_while_refused() {
        let refused = ComponentReport {
            rotation_request: problem("RotationRequestRefused"),
            rotate_handled: Some("v1".into()),
            ..report()
        };
        let s = component_status(&ComponentStatus::default(), &refused, Some(1), t(10));
        let c = s.conditions.iter().find(|c| c.type_ == "RotationRequest");
        assert_eq!(
            c.map(|c| (c.status.as_str(), c.reason.as_str())),
            Some(("False", "RotationRequestRefused"))
        );
        assert_eq!(s.rotate_handled.as_deref(), Some("v1"));
        // Ready is about the credentials, which are fine.
        assert!(
            s.conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        );
        let cleared = component_status(&s, &report(), Some(1), t(20));
        assert!(
            !cleared
                .conditions
                .iter()
                .any(|c| c.type_ == "RotationRequest"),
            "{cleared:?}"
        );
    }

    fn problem(reason: &str) -> Option<Problem> {
        Some(Problem::new(reason, format!("{reason} happened; fix it")))
    }

    /// (condition, status, reason) for each of the four conditions.
    fn summary(r: &ComponentReport) -> Vec<(&'static str, &'static str, String)> {
        component_conditions(r)
            .iter()
            .map(|c| (c.kind.as_str(), c.status.as_str(), c.reason.clone()))
            .collect()
    }

    fn row(v: [(&'static str, &'static str); 4]) -> Vec<(&'static str, &'static str, String)> {
        let kinds = ["RepositoryReady", "CredentialsReady", "Propagated", "Ready"];
        kinds
            .iter()
            .zip(v)
            .map(|(k, (s, r))| (*k, s, r.to_string()))
            .collect()
    }

    #[test]
    fn every_component_reason_from_what_the_pass_saw() {
        let ok = report();
        let mut invalid_name = report();
        invalid_name.repository = problem("InvalidName");
        invalid_name.generation = 0;
        invalid_name.propagation = Propagation::NotChecked;
        let mut plan_limit = report();
        plan_limit.repository = problem("QuayPlanLimit");
        let mut robots_failed = report();
        robots_failed.credentials = problem("QuayUnavailable");
        robots_failed.propagation = Propagation::NotChecked;
        let mut fresh = report();
        fresh.generation = 0;
        let mut pending = report();
        pending.propagation = Propagation::Pending(vec!["prod".into()]);
        let mut rotating = report();
        rotating.propagation = Propagation::Rotating(vec!["dev".into()]);
        let table = [
            (
                &ok,
                [
                    ("True", "RepositoryReady"),
                    ("True", "CredentialsReady"),
                    ("True", "Propagated"),
                    ("True", "Ready"),
                ],
            ),
            (
                &invalid_name,
                [
                    ("False", "InvalidName"),
                    ("False", "Pending"),
                    ("Unknown", "NotChecked"),
                    ("False", "InvalidName"),
                ],
            ),
            (
                &plan_limit,
                [
                    ("False", "QuayPlanLimit"),
                    ("True", "CredentialsReady"),
                    ("True", "Propagated"),
                    ("False", "QuayPlanLimit"),
                ],
            ),
            (
                &robots_failed,
                [
                    ("True", "RepositoryReady"),
                    ("False", "QuayUnavailable"),
                    ("Unknown", "NotChecked"),
                    ("False", "CredentialsNotReady"),
                ],
            ),
            (
                &fresh,
                [
                    ("True", "RepositoryReady"),
                    ("False", "Pending"),
                    ("False", "AwaitingCredentials"),
                    ("False", "CredentialsNotReady"),
                ],
            ),
            (
                &pending,
                [
                    ("True", "RepositoryReady"),
                    ("True", "CredentialsReady"),
                    ("False", "Propagating"),
                    ("False", "NotPropagated"),
                ],
            ),
            (
                &rotating,
                [
                    ("True", "RepositoryReady"),
                    ("True", "CredentialsReady"),
                    ("False", "RotationInProgress"),
                    ("False", "NotPropagated"),
                ],
            ),
        ];
        for (r, want) in table {
            assert_eq!(summary(r), row(want), "{r:?}");
        }
    }

    #[test]
    fn a_quay_object_owned_elsewhere_is_a_repository_reason() {
        // A repository that is not this Component's: refused before any
        // robot, so nothing is provisioned or delivered.
        let mut repository_elsewhere = report();
        repository_elsewhere.repository =
            problem(crate::plan::ownership::REPOSITORY_OWNED_ELSEWHERE);
        repository_elsewhere.generation = 0;
        repository_elsewhere.propagation = Propagation::NotChecked;
        // A robot in the way of a new Component: the repository is ours,
        // the name is taken, no credentials exist.
        let mut robot_elsewhere = report();
        robot_elsewhere.repository = problem(crate::plan::ownership::ROBOT_OWNED_ELSEWHERE);
        robot_elsewhere.generation = 0;
        robot_elsewhere.propagation = Propagation::NotChecked;
        // Found at rotation time on a provisioned Component: the credentials
        // it has keep being delivered.
        let mut robot_at_rotation = report();
        robot_at_rotation.repository = problem("RobotOwnedElsewhere");
        robot_at_rotation.credentials = problem("RobotOwnedElsewhere");
        let table = [
            (
                &repository_elsewhere,
                [
                    ("False", "RepositoryOwnedElsewhere"),
                    ("False", "Pending"),
                    ("Unknown", "NotChecked"),
                    ("False", "RepositoryOwnedElsewhere"),
                ],
            ),
            (
                &robot_elsewhere,
                [
                    ("False", "RobotOwnedElsewhere"),
                    ("False", "Pending"),
                    ("Unknown", "NotChecked"),
                    ("False", "RobotOwnedElsewhere"),
                ],
            ),
            (
                &robot_at_rotation,
                [
                    ("False", "RobotOwnedElsewhere"),
                    ("False", "RobotOwnedElsewhere"),
                    ("True", "Propagated"),
                    ("False", "RobotOwnedElsewhere"),
                ],
            ),
        ];
        for (r, want) in table {
            assert_eq!(summary(r), row(want), "{r:?}");
        }
    }

    #[test]
    fn a_component_never_provisioned_claims_no_delivery() {
        // The old status said "generation 0 delivered to 0 Environment(s)".
        let mut r = report();
        r.generation = 0;
        r.propagation = Propagation::Delivered { environments: 0 };
        let [_, _, propagated, ready] = component_conditions(&r);
        assert_eq!(propagated.status, ConditionStatus::False);
        assert!(!propagated.message.contains("delivered"));
        assert_eq!(ready.status, ConditionStatus::False);
    }

    #[test]
    fn messages_say_what_to_do_and_name_the_environments() {
        let mut r = report();
        r.propagation = Propagation::Pending(vec!["dev".into(), "prod".into()]);
        let [_, _, p, _] = component_conditions(&r);
        assert!(p.message.contains("dev, prod") && p.message.contains("generation 2"));
        let [_, _, p, _] = component_conditions(&report());
        assert_eq!(p.message, "generation 2 delivered to 2 Environment(s)");
        r.repository = problem("InvalidName");
        let [repo, _, _, ready] = component_conditions(&r);
        assert_eq!(ready.message, repo.message);
    }

    #[test]
    fn an_unchanged_pass_produces_an_identical_status() {
        let first = component_status(&ComponentStatus::default(), &report(), Some(1), t(10));
        let second = component_status(&first, &report(), Some(1), t(20));
        assert_eq!(first, second);
    }

    #[test]
    fn deliveries_are_kept_when_the_pass_did_not_look() {
        let mut r = report();
        r.deliveries = Some(vec![EnvironmentDelivery {
            name: "dev".into(),
            generation: 2,
            ..Default::default()
        }]);
        let first = component_status(&ComponentStatus::default(), &r, Some(1), t(10));
        r.deliveries = None;
        r.propagation = Propagation::NotChecked;
        r.credentials = problem("QuayUnavailable");
        let second = component_status(&first, &r, Some(1), t(20));
        assert_eq!(second.environments, first.environments);
        let ready = second
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(ready.last_transition_time, t(20));
    }

    fn env_summary(r: &EnvironmentReport) -> Vec<(&'static str, &'static str, String)> {
        environment_conditions(r)
            .iter()
            .map(|c| (c.kind.as_str(), c.status.as_str(), c.reason.clone()))
            .collect()
    }

    #[test]
    fn every_environment_reason_from_what_the_pass_saw() {
        let applied = Ok("deployer".to_string());
        let target_down = Err(Problem::new("TargetClusterUnavailable", "m"));
        let cases = [
            (
                EnvironmentReport {
                    changed: false,
                    folder: None,
                    ..EnvironmentReport::new(DeliveryMode::Both, applied.clone(), None)
                },
                vec![("Applied", "True", "Applied"), ("Ready", "True", "Ready")],
            ),
            (
                EnvironmentReport {
                    changed: true,
                    folder: None,
                    ..EnvironmentReport::new(
                        DeliveryMode::Both,
                        applied.clone(),
                        Some(Ok(Some("abc".into()))),
                    )
                },
                vec![
                    ("Applied", "True", "Applied"),
                    ("Committed", "True", "Committed"),
                    ("Ready", "True", "Ready"),
                ],
            ),
            (
                EnvironmentReport {
                    changed: false,
                    folder: None,
                    ..EnvironmentReport::new(
                        DeliveryMode::Both,
                        target_down.clone(),
                        Some(Ok(None)),
                    )
                },
                vec![
                    ("Applied", "False", "TargetClusterUnavailable"),
                    ("Committed", "True", "Committed"),
                    ("Ready", "False", "TargetClusterUnavailable"),
                ],
            ),
            (
                EnvironmentReport {
                    changed: false,
                    folder: None,
                    ..EnvironmentReport::new(
                        DeliveryMode::Both,
                        applied.clone(),
                        Some(Err(Problem::new("SideRepoError", "m"))),
                    )
                },
                vec![
                    ("Applied", "True", "Applied"),
                    ("Committed", "False", "SideRepoError"),
                    ("Ready", "False", "SideRepoError"),
                ],
            ),
        ];
        for (r, want) in cases {
            let want: Vec<_> = want
                .into_iter()
                .map(|(k, s, reason)| (k, s, reason.to_string()))
                .collect();
            assert_eq!(env_summary(&r), want, "{r:?}");
        }
    }

    #[test]
    fn environment_status_keeps_what_the_pass_did_not_learn() {
        let ok = EnvironmentReport {
            changed: true,
            folder: Some("environments/ws/dev".into()),
            ..EnvironmentReport::new(
                DeliveryMode::Both,
                Ok("deployer".into()),
                Some(Ok(Some("c1".into()))),
            )
        };
        let first = environment_status(&EnvironmentStatus::default(), &ok, Some(1), t(10));
        assert_eq!(first.linked_service_account.as_deref(), Some("deployer"));
        assert_eq!(first.commit.as_deref(), Some("c1"));
        assert_eq!(first.side_repo_path.as_deref(), Some("environments/ws/dev"));
        assert_eq!(first.last_sync, Some(t(10)));
        // A heartbeat that changes nothing keeps lastSync and the commit.
        let quiet = EnvironmentReport {
            changed: false,
            folder: None,
            ..EnvironmentReport::new(DeliveryMode::Both, Ok("deployer".into()), Some(Ok(None)))
        };
        let second = environment_status(&first, &quiet, Some(1), t(20));
        assert_eq!(second, first);
        // A failed delivery keeps the last linked account.
        let failed = EnvironmentReport {
            changed: false,
            folder: None,
            ..EnvironmentReport::new(
                DeliveryMode::Both,
                Err(Problem::new("KubernetesError", "m")),
                Some(Ok(None)),
            )
        };
        let third = environment_status(&first, &failed, Some(1), t(30));
        assert_eq!(third.linked_service_account.as_deref(), Some("deployer"));
    }

    fn gitops(live: Vec<LiveGeneration>, pr: Option<&str>) -> EnvironmentReport {
        EnvironmentReport {
            live: Some(live),
            pull_request: pr.map(String::from),
            ..EnvironmentReport::new(DeliveryMode::GitOps, Ok("deployer".into()), Some(Ok(None)))
        }
    }

    fn lg(component: &str, generation: Option<i64>, desired: i64) -> LiveGeneration {
        LiveGeneration {
            component: component.into(),
            generation,
            desired,
        }
    }

    #[test]
    fn gitops_reasons_say_what_the_target_waits_for() {
        let cases = [
            (gitops(vec![lg("a", Some(2), 2)], None), "True", "Live"),
            (
                gitops(vec![lg("a", Some(1), 2)], None),
                "False",
                "AwaitingEngine",
            ),
            (
                gitops(vec![lg("a", None, 1)], Some("http://forge/pulls/3")),
                "False",
                "AwaitingReview",
            ),
            // An open pull request that holds nothing this target waits for.
            (
                gitops(vec![lg("a", Some(2), 2)], Some("http://forge/pulls/3")),
                "True",
                "Live",
            ),
        ];
        for (r, status, reason) in cases {
            let got = env_summary(&r);
            assert_eq!(got[0], ("Applied", status, reason.to_string()), "{r:?}");
            let ready = if status == "True" { "Ready" } else { reason };
            assert_eq!(got.last().unwrap().2, ready, "Ready carries it: {r:?}");
        }
        let review = gitops(vec![lg("a", None, 1)], Some("http://forge/pulls/3"));
        let s = environment_status(&EnvironmentStatus::default(), &review, Some(1), t(10));
        assert_eq!(s.pull_request.as_deref(), Some("http://forge/pulls/3"));
        assert_eq!(s.delivery_mode.as_deref(), Some("GitOps"));
        assert_eq!(s.live, vec![lg("a", None, 1)]);
        let ready = s.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
        assert!(ready.message.contains("http://forge/pulls/3"), "{ready:?}");
        // Merged and applied: the field goes away.
        let live = gitops(vec![lg("a", Some(1), 1)], None);
        let s = environment_status(&s, &live, Some(1), t(20));
        assert_eq!(s.pull_request, None);
    }

    #[test]
    fn direct_mode_reports_no_commit_and_no_live_generations() {
        let both = EnvironmentReport {
            live: Some(vec![lg("a", Some(1), 1)]),
            ..EnvironmentReport::new(DeliveryMode::Both, Ok("deployer".into()), Some(Ok(None)))
        };
        let first = environment_status(&EnvironmentStatus::default(), &both, Some(1), t(10));
        assert!(first.conditions.iter().any(|c| c.type_ == "Committed"));
        let direct = EnvironmentReport::new(DeliveryMode::Direct, Ok("deployer".into()), None);
        let second = environment_status(&first, &direct, Some(2), t(20));
        assert!(
            !second.conditions.iter().any(|c| c.type_ == "Committed"),
            "{:?}",
            second.conditions
        );
        assert!(second.live.is_empty());
        assert_eq!(second.delivery_mode.as_deref(), Some("Direct"));
    }
}
