//! The rotation step of a Component pass: runs what `plan::rotation`
//! decides from durable state, one step at a time, until it waits for the
//! Environments or is done — by all of them, or by its deadline with the
//! others named as stragglers. Crash points sit between every two writes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams};

use super::Pass;
use crate::api::Component;
use crate::api::{ConditionStatus, ConditionType, Environment};
use crate::controller::crash;
use crate::controller::error::Result;
use crate::names::{self, RobotRole};
use crate::plan::rotation::{deadline_passed, rotation_started};
use crate::plan::rotation_request::{
    RequestDecision, RequestInput, decide_request, generate_owners, refusal_message,
};
use crate::plan::status::Problem;
use crate::plan::{RotationStep, apply_deadline, plan_rotation, scheduled_rotation_due};
use crate::vocabulary::{ANNOTATION_GENERATE, ANNOTATION_ROTATE};

/// The condition reason and event reason of a refused rotation request.
const REFUSED: &str = "RotationRequestRefused";

impl Pass<'_> {
    pub(super) async fn rotate(&mut self, repo: &str) -> Result<()> {
        let request = self.rotation_request().await;
        let requested = request.rotate;
        let due = scheduled_rotation_due(
            self.ctx
                .config
                .rotation_interval
                .map(|d| d.as_secs() as i64),
            self.old.rotated_at.as_ref().map(|t| t.0.as_second()),
            self.component
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
            self.now.as_second(),
        );
        let delivered: Vec<(String, Option<i64>)> = self
            .deliveries
            .iter()
            .flatten()
            .map(|(d, g)| (d.name.clone(), *g))
            .collect();
        let (started, deadline, failing) = self.deadline_inputs().await?;
        loop {
            let step = plan_rotation(
                requested,
                due,
                self.generation,
                self.generation_of(RobotRole::Push),
                self.generation_of(RobotRole::Pull),
                &delivered,
            );
            let now = self.now.as_second();
            let step = apply_deadline(step, started, deadline, now, &failing);
            // Durable before anything waits on it: written with this pass's status.
            self.rotation_started_at = rotation_started(&step, started, self.now.as_second())
                .and_then(|s| k8s_openapi::jiff::Timestamp::from_second(s).ok())
                .map(Time);
            match step {
                RotationStep::Idle => return Ok(()),
                RotationStep::StartScheduled { target } => {
                    self.start_scheduled(repo, target).await?
                }
                RotationStep::RegeneratePush { target } => {
                    self.regenerate(repo, RobotRole::Push, target).await?
                }
                RotationStep::RegeneratePull { target } => {
                    self.regenerate(repo, RobotRole::Pull, target).await?
                }
                RotationStep::AwaitPropagation { target, pending } => {
                    tracing::info!(component = %self.name, namespace = %self.ns, target, pending = pending.len(), "waiting for Environments to hold the rotated token");
                    self.rotating = Some(pending);
                    return Ok(());
                }
                RotationStep::Finish { target, stragglers } => {
                    return self
                        .finish_rotation(repo, target, &stragglers, &request)
                        .await;
                }
            }
        }
    }

    /// When the rotation in flight started (status), the deadline, and —
    /// asked only once it has passed — which Environments are failing.
    async fn deadline_inputs(&self) -> Result<(Option<i64>, Option<i64>, Vec<String>)> {
        let started = self.rotation_started_at.as_ref().map(|t| t.0.as_second());
        let deadline = self
            .ctx
            .config
            .rotation_deadline
            .map(|d| d.as_secs() as i64);
        let failing = if deadline_passed(started, deadline, self.now.as_second()) {
            self.failing_environments().await?
        } else {
            Vec::new()
        };
        Ok((started, deadline, failing))
    }

    /// What the rotation annotations ask for, judged by
    /// `plan::rotation_request`: a refused generate annotation is recorded
    /// for the RotationRequest condition, with who set it.
    async fn rotation_request(&mut self) -> RequestDecision {
        let annotations = self.component.annotations();
        let cooldown = self.ctx.config.rotation_request_cooldown.as_secs() as i64;
        let previous = self.rotation_request.take();
        let decision = decide_request(&RequestInput {
            generate: annotations.get(ANNOTATION_GENERATE).map(String::as_str),
            rotate: annotations.get(ANNOTATION_ROTATE).map(String::as_str),
            rotate_handled: self.old.rotate_handled.as_deref(),
            provisioned: self.old.credentials_generation > 0,
            refused_before: previous.is_some(),
            last_rotation_secs: self.old.rotated_at.as_ref().map(|t| t.0.as_second()),
            now_secs: self.now.as_second(),
            cooldown_secs: cooldown,
        });
        if let Some(v) = &decision.invalid_generate {
            let note = format!(
                "{ANNOTATION_GENERATE}={v:?} is ignored; set it to \"true\" to rotate the robot tokens"
            );
            self.ctx
                .warn(&self.component_ref(), "InvalidAnnotation", "Rotate", note)
                .await;
        }
        if let Some(refusal) = &decision.refused {
            // The first refusal's message (how long after the rotation) is
            // kept while the annotation stays: status does not churn.
            let problem = match previous {
                Some(p) => p,
                None => {
                    let managed = self.component.metadata.managed_fields.as_deref();
                    let owners = generate_owners(managed.unwrap_or_default());
                    let message = refusal_message(refusal, &owners, cooldown);
                    tracing::warn!(component = %self.name, namespace = %self.ns, ?owners, "rotation request refused by the storm guard");
                    self.ctx
                        .warn(&self.component_ref(), REFUSED, "Rotate", message.clone())
                        .await;
                    Problem::new(REFUSED, message)
                }
            };
            self.rotation_request = Some(problem);
        }
        if !decision.rotate {
            // A value present before the first credentials: adopted as handled.
            if let Some(v) = &decision.handle_value {
                self.rotate_handled = Some(v.clone());
            }
        }
        decision
    }

    /// Scheduled rotation: new robots in the other slot, granted and
    /// persisted as `target`. The old robots keep working meanwhile.
    async fn start_scheduled(&mut self, repo: &str, target: i64) -> Result<()> {
        let next = 1 - self.slot;
        let mut fresh = Vec::new();
        for role in [RobotRole::Push, RobotRole::Pull] {
            let short = names::robot_short_name(repo, role, next);
            let claim = self.claim(repo);
            let robot = self
                .ctx
                .quay
                .create_robot(&short, claim.robot_fields(role))
                .await?;
            // A robot already in the other slot is used only if it is ours.
            let robot = claim.robot(robot)?;
            self.ctx.quay.grant(repo, &short, role.into()).await?;
            fresh.push((role, robot));
        }
        crash::point("scheduled:robots-created");
        for (role, robot) in fresh {
            self.persist(role, &robot, target).await?;
        }
        crash::point("scheduled:persisted");
        self.ctx.rotation_started(&self.uid, target);
        self.slot = next;
        tracing::info!(component = %self.name, namespace = %self.ns, target, "scheduled rotation: new robots persisted, old ones kept until every Environment follows");
        Ok(())
    }

    /// Emergency rotation of one robot: Quay revokes the old token at once,
    /// so the new one is persisted before anything else.
    async fn regenerate(&mut self, repo: &str, role: RobotRole, target: i64) -> Result<()> {
        let short = names::robot_short_name(repo, role, self.slot);
        // Regenerating revokes the old token at once: never do that to a
        // robot that is not ours. An absent one fails in regenerate, as before.
        self.claim(repo)
            .existing_robot(&self.ctx.quay, &short)
            .await?;
        let robot = self.ctx.quay.regenerate_robot_token(&short).await?;
        crash::point(&format!("rotation:{}-regenerated", role.as_str()));
        self.persist(role, &robot, target).await?;
        crash::point(&format!("rotation:{}-persisted", role.as_str()));
        if role == RobotRole::Pull {
            self.ctx.rotation_started(&self.uid, target);
        }
        Ok(())
    }

    /// Every Environment holds `target`, or the deadline passed and the
    /// `stragglers` do not: remove the generate annotation if it was obeyed
    /// (never the rotate one: it is the requester's, and the value is
    /// recorded instead), delete the inactive slot's robots (a scheduled
    /// rotation's old ones), record it.
    async fn finish_rotation(
        &mut self,
        repo: &str,
        target: i64,
        stragglers: &[String],
        request: &RequestDecision,
    ) -> Result<()> {
        if request.generate_obeyed {
            let api: Api<Component> = Api::namespaced(self.ctx.client.clone(), &self.ns);
            let patch =
                serde_json::json!({"metadata": {"annotations": {ANNOTATION_GENERATE: null}}});
            api.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            self.ctx.metrics.kube_writes.inc();
            crash::point("rotation:annotation-removed");
        }
        self.slot = self.active_slot(repo);
        for role in [RobotRole::Push, RobotRole::Pull] {
            let inactive = names::robot_short_name(repo, role, 1 - self.slot);
            // A robot in the other slot that is not ours is left alone and
            // reported; it does not hold the rotation back.
            let left = self.claim(repo).delete_robot(self.ctx, &inactive).await?;
            if let Some(e) = left {
                self.ctx
                    .warn(&self.component_ref(), e.reason(), "Rotate", e.to_string())
                    .await;
            }
        }
        crash::point("rotation:old-robots-deleted");
        self.ctx.rotation_finished(&self.uid, target);
        if request.rotate
            && let Some(v) = &request.handle_value
        {
            self.rotate_handled = Some(v.clone());
        }
        self.generation = target;
        self.rotated_at = Some(Time(self.now));
        let delivered =
            (self.deliveries.as_ref().map_or(0, Vec::len)).saturating_sub(stragglers.len());
        let note = format!(
            "robot tokens regenerated (generation {target}) and delivered to {delivered} Environment(s)"
        );
        self.ctx
            .notice(&self.component_ref(), "CredentialsRotated", "Rotate", note)
            .await;
        if !stragglers.is_empty() {
            self.left_behind(target, stragglers).await;
        }
        Ok(())
    }

    /// Disaster recovery, between the repository and the robots: a
    /// workspace Secret with a robot's login is gone (deleted, or a backup
    /// restored without it) although the Component was provisioned (see
    /// `plan::rotation::lost_logins`). Its robots, in both slots, are
    /// deleted — whoever removed the Secret may hold the token — so the
    /// robots step creates them anew, at a generation above every one
    /// known. Decided from what is stored each pass, so a crash half-way
    /// repeats it for the rest.
    pub(super) async fn recover_lost_logins(&mut self, repo: &str) -> Result<()> {
        let missing: Vec<RobotRole> = [RobotRole::Push, RobotRole::Pull]
            .into_iter()
            .filter(|r| self.generation_of(*r).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let recorded = self.old.credentials_generation;
        // Status says what was recorded; without it, the Environments may.
        let delivered: Vec<(String, Option<i64>)> = if recorded > 0 || !self.repository_found {
            Vec::new()
        } else {
            let observed = self.observe_deliveries().await?;
            observed.into_iter().map(|(d, g)| (d.name, g)).collect()
        };
        let found = self.repository_found;
        let never_stored = self.old.image.is_some() && recorded == 0;
        let lost =
            crate::plan::rotation::lost_logins(true, found, never_stored, recorded, &delivered);
        let Some(floor) = lost else {
            return Ok(());
        };
        for role in &missing {
            for slot in [0, 1] {
                let short = names::robot_short_name(repo, *role, slot);
                if let Some(e) = self.claim(repo).delete_robot(self.ctx, &short).await? {
                    self.ctx
                        .warn(&self.component_ref(), e.reason(), "Recover", e.to_string())
                        .await;
                }
            }
        }
        self.generation_floor = floor;
        let roles: Vec<&str> = missing.iter().map(|r| r.as_str()).collect();
        tracing::warn!(component = %self.name, namespace = %self.ns, ?roles, floor, "workspace login lost; its robots are replaced");
        let note = format!(
            "the workspace Secret(s) with the {} robot login were gone while the repository \
             exists: the robots are replaced, so copies of their old tokens no longer work, and \
             the new tokens are delivered as generation {floor}",
            roles.join(" and ")
        );
        self.ctx
            .warn(&self.component_ref(), "CredentialsLost", "Recover", note)
            .await;
        Ok(())
    }

    /// The Environments of the workspace whose last pass could not deliver
    /// to their target (Applied is False: cluster unreachable, namespace
    /// gone, access revoked): those a rotation past its deadline may leave
    /// behind. A side-repository failure alone (Committed) does not count:
    /// it does not keep the target from the new token.
    async fn failing_environments(&self) -> Result<Vec<String>> {
        let envs = self.ctx.stores().await?.environments.in_namespace(&self.ns);
        let failing = |e: &Environment| {
            e.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == ConditionType::Applied.as_str()
                        && c.status == ConditionStatus::False.as_str()
                })
            })
        };
        Ok(envs
            .iter()
            .filter(|e| failing(e))
            .map(|e| e.name_any())
            .collect())
    }

    /// The deadline finished the rotation without `stragglers`: say so in
    /// an event, a log line and a metric; status names them (Degraded).
    async fn left_behind(&mut self, target: i64, stragglers: &[String]) {
        self.stragglers.extend(stragglers.iter().cloned());
        // A pass that read the Component before this finish's status write
        // finishes again (idempotently): say it once.
        if !self.ctx.first_deadline_report(&self.uid, target) {
            return;
        }
        self.ctx.metrics.rotation_deadlines.inc();
        let deadline = self.ctx.config.rotation_deadline.unwrap_or_default();
        tracing::warn!(component = %self.name, namespace = %self.ns, target, ?stragglers, "rotation deadline passed; finished without these Environments");
        let note = format!(
            "the rotation to generation {target} passed its deadline ({}s) and finished without \
             Environment(s) {}: they hold an older token, no longer valid, and receive the current \
             one as soon as they can be reached again",
            deadline.as_secs(),
            stragglers.join(", ")
        );
        self.ctx
            .warn(
                &self.component_ref(),
                "RotationDeadlinePassed",
                "Rotate",
                note,
            )
            .await;
    }
}
