//! The Component reconciler: the Quay repository, its push and pull robots,
//! the workspace Secrets, rotation, delivery status, and cleanup.
//!
//! A pass is a [`Pass`] value that runs named steps in order — names,
//! `ensure_repository`, `ensure_robots`, `observe_deliveries`, `rotate` —
//! each recording what it found; status is derived from that record by
//! `plan::status` and written once at the end, whether a step failed or not.

mod cleanup;
mod deliveries;
mod drift;
mod owners;
mod repository;
mod rotation;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::error::{Error, Result};
use super::pass::{self, Kind};
use super::workspace::{self, Stored};
use crate::api::{
    Component, ComponentStatus, ConditionStatus, ConditionType, EnvironmentDelivery,
    ResolvedVisibility,
};
use crate::names::{self, RobotRole};
use crate::plan::status::{ComponentReport, Problem, Propagation, component_status};
use crate::plan::{self, credentials, requeue};
use crate::quay::Robot;
use crate::vocabulary::{FINALIZER, workspace_secret_name};

/// Entry point for kube-runtime.
pub async fn reconcile(component: Arc<Component>, ctx: Arc<Context>) -> Result<Action> {
    // A shard label a tenant changed is put back first, admitted or not.
    crate::controller::sharded::correct_label(&ctx, component.as_ref()).await;
    let Some(_pass) = ctx.shards.admit(&component.namespace().unwrap_or_default()) else {
        return Ok(Action::await_change()); // another replica's shard
    };
    let api: Api<Component> = Api::namespaced(
        ctx.client.clone(),
        &component.namespace().unwrap_or_default(),
    );
    let oref = component.object_ref(&());
    let key = pass::key_of(component.as_ref());
    let started = std::time::Instant::now();
    let result = finalizer(&api, FINALIZER, component, |event| async {
        match event {
            Finalizer::Apply(c) => apply(&c, &ctx).await,
            Finalizer::Cleanup(c) => {
                let done = cleanup::run(&c, &ctx).await;
                pass::forget_when_cleaned(Kind::Component, c.as_ref(), &done, &ctx);
                done
            }
        }
    })
    .await;
    // The condition already says what to fix; a Warning event makes it
    // visible in `kubectl describe` and to event-based alerting.
    pass::finish(Kind::Component, &key, started, result, &ctx, Some(&oref)).await
}

/// Requeue policy on error: see [`pass::requeue_after`].
pub fn error_policy(component: Arc<Component>, error: &Error, ctx: Arc<Context>) -> Action {
    pass::requeue_after(
        Kind::Component,
        &pass::key_of(component.as_ref()),
        error,
        &ctx,
    )
}

/// One pass: run the steps, then write the status they add up to.
async fn apply(component: &Component, ctx: &Context) -> Result<Action> {
    let mut pass = Pass::new(component, ctx);
    let outcome = pass.run().await;
    let report = pass.report();
    let status = component_status(
        &pass.old,
        &report,
        component.metadata.generation,
        Time(pass.now),
    );
    ctx.metrics
        .stragglers(&pass.ns, &pass.name, report.stragglers.len());
    super::status::write(ctx, component, component.status.as_ref(), &status).await?;
    let (ns, name) = (&pass.ns, &pass.name);
    let m = &ctx.metrics;
    m.observe_ready(Kind::Component.as_str(), ns, name, &status.conditions);
    // Scheduled rotation counts from creation until the first rotation.
    let since = status
        .rotated_at
        .as_ref()
        .or(component.metadata.creation_timestamp.as_ref());
    if let Some(at) = since {
        m.observe_rotation(ns, name, at.0.as_second());
    }
    outcome
}

/// What a Component pass has observed and done so far.
struct Pass<'a> {
    component: &'a Component,
    ctx: &'a Context,
    ns: String,
    name: String,
    uid: String,
    now: Timestamp,
    secrets: Api<Secret>,
    /// Status as the pass found it.
    old: ComponentStatus,
    /// The Quay repository, once the names step derived it.
    repo: Option<String>,
    /// Quay confirmed the repository (this pass, or status already names
    /// it): until then status names no image and no robot.
    confirmed: bool,
    /// The stored logins were read this pass (else `push`/`pull` are unknown).
    logins_read: bool,
    push: Option<Stored>,
    pull: Option<Stored>,
    /// The robot slot (0 or 1) the persisted credentials belong to.
    slot: u8,
    visibility: Option<ResolvedVisibility>,
    repository_problem: Option<Problem>,
    credentials_problem: Option<Problem>,
    /// The last completed credentials generation.
    generation: i64,
    rotated_at: Option<Time>,
    /// Per Environment, the delivery record and the generation its target
    /// Secret holds; `None` until the pass looked.
    deliveries: Option<Vec<(EnvironmentDelivery, Option<i64>)>>,
    /// A rotation waits for these Environments.
    rotating: Option<Vec<String>>,
    /// When the rotation in flight began waiting (status, then this pass).
    rotation_started_at: Option<Time>,
    /// Environments a rotation's deadline left behind (status, then this pass).
    stragglers: Vec<String>,
    /// Logins created this pass replace lost ones: their generation is at
    /// least this (above every one delivered), so no Environment keeps an
    /// older token believing it current.
    generation_floor: i64,
    /// The repository was on Quay before this pass (not created by it).
    repository_found: bool,
    /// The last `quayside.dev/rotate` value handled.
    rotate_handled: Option<String>,
    /// Why the generate annotation is refused; starts as the last status
    /// said, so a pass that stops before deciding keeps the refusal.
    rotation_request: Option<Problem>,
    /// A failure recorded in status that did not stop the pass; returned at
    /// the end so the error policy retries it.
    deferred: Option<Error>,
    /// The last verification of the Quay objects (`status.quayVerifiedAt`).
    quay_verified_at: Option<Time>,
    /// The source's visibility as the heartbeat probe just found it
    /// (`auto` only): what the repository must have.
    probed: Option<ResolvedVisibility>,
}

impl<'a> Pass<'a> {
    fn new(component: &'a Component, ctx: &'a Context) -> Self {
        let ns = component.namespace().unwrap_or_default();
        let old = component.status.clone().unwrap_or_default();
        Pass {
            component,
            ctx,
            name: component.name_any(),
            uid: component.uid().unwrap_or_default(),
            now: Timestamp::now(),
            secrets: Api::namespaced(ctx.client.clone(), &ns),
            ns,
            repo: None,
            confirmed: false,
            logins_read: false,
            push: None,
            pull: None,
            slot: 0,
            visibility: old.visibility,
            repository_problem: None,
            credentials_problem: None,
            generation: old.credentials_generation,
            rotated_at: old.rotated_at.clone(),
            deliveries: None,
            rotating: None,
            rotation_started_at: old.rotation_started_at.clone(),
            stragglers: old.rotation_stragglers.clone(),
            generation_floor: 0,
            repository_found: false,
            rotate_handled: old.rotate_handled.clone(),
            rotation_request: refused_request(&old),
            deferred: None,
            quay_verified_at: old.quay_verified_at.clone(),
            probed: None,
            old,
        }
    }

    /// The steps in order. A step that fails has recorded its problem for
    /// status; the error goes on to the error policy. A problem recorded
    /// without stopping the pass (a plan limit) is the root cause of what
    /// fails after it, so it is the error returned.
    async fn run(&mut self) -> Result<Action> {
        let result = self.steps().await;
        match self.deferred.take() {
            Some(e) => Err(e),
            None => result.map(|()| self.next_action()),
        }
    }

    async fn steps(&mut self) -> Result<()> {
        let repo =
            names::repository_name(&self.ns, &self.name, self.component.spec.image.as_deref());
        let repo = record(&mut self.repository_problem, repo.map_err(Error::from))?;
        let repo = self.provisioned_repository(repo);
        let in_workspace = self.check_workspace(&repo);
        record(&mut self.repository_problem, in_workspace)?;
        self.repo = Some(repo.clone());
        // Confirmed by an earlier status, or by this process's own Quay
        // check of this spec (whose status write may have been lost, e.g.
        // to an API server restart).
        let spec_generation = self.component.metadata.generation.unwrap_or_default();
        self.confirmed = self.old.image.as_deref() == Some(&self.ctx.image_of(&repo))
            || self.ctx.is_verified(&self.uid, spec_generation, &repo);
        self.read_logins().await?;
        self.logins_read = true;
        self.slot = self.active_slot(&repo);
        if let Some(p) = self.ctx.recent_refusal(&self.uid, spec_generation) {
            self.credentials_problem = Some(p.clone());
            return Err(Error::StillRefused(p.message));
        }
        if self.must_check_quay(&repo) {
            self.check_quay(&repo).await?;
        } else if self.verification_due() {
            // The heartbeat's cheap look; what it finds is healed by the
            // same steps as a full check, and reported once healed.
            let found = self.verify_quay(&repo).await;
            let found = record(&mut self.repository_problem, found)?;
            if !found.is_empty() {
                let before = (
                    self.generation_of(RobotRole::Push),
                    self.generation_of(RobotRole::Pull),
                );
                self.check_quay(&repo).await?;
                self.healed(&repo, &found, before).await?;
            }
            self.verified_now();
        }
        self.deliveries = Some(self.observe_deliveries().await?);
        self.generation = credentials::recorded_generation(
            self.old.credentials_generation,
            self.generation_of(RobotRole::Pull),
        );
        let rotated = self.rotate(&repo).await;
        self.stragglers = self.still_behind();
        if let Err(e @ Error::OwnedElsewhere { .. }) = &rotated {
            self.repository_problem = Some(problem(e));
        }
        rotated.inspect_err(|e| {
            self.credentials_problem = Some(Problem::new(
                e.reason(),
                format!("rotating the robot tokens failed: {e}"),
            ));
        })
    }

    /// The full check: the repository with its visibility, then both
    /// robots with their grants; a success counts as a verification.
    async fn check_quay(&mut self, repo: &str) -> Result<()> {
        match self.ensure_repository(repo).await {
            Ok(()) => self.confirmed = true,
            // The repository exists with the wrong visibility, or not at
            // all: robots and delivery go on, the condition says why.
            Err(e @ Error::PlanLimit { .. }) => {
                self.repository_problem = Some(problem(&e));
                self.deferred = Some(e);
            }
            Err(e) => {
                self.repository_problem = Some(problem(&e));
                self.forget_refused(&e, repo);
                return Err(e);
            }
        }
        let recovered = self.recover_lost_logins(repo).await;
        record(&mut self.credentials_problem, recovered)?;
        let robots = self.ensure_robots(repo).await;
        if let Err(e) = &robots
            && e.is_refusal()
        {
            let generation = self.component.metadata.generation.unwrap_or_default();
            self.ctx.remember_refusal(&self.uid, generation, problem(e));
        }
        record(self.problem_slot(&robots), robots)?;
        self.verified_now();
        Ok(())
    }

    /// Where a robot step's failure is reported: a robot that is not ours
    /// is about the repository's name (RepositoryReady), like a repository
    /// that is not ours; anything else about the credentials.
    fn problem_slot<T>(&mut self, result: &Result<T>) -> &mut Option<Problem> {
        match result {
            Err(Error::OwnedElsewhere { .. }) => &mut self.repository_problem,
            _ => &mut self.credentials_problem,
        }
    }

    /// A refused repository never provisioned by this Component is not
    /// named in status: the person can then pick another spec.image (the
    /// API server allows that only while status names no image).
    fn forget_refused(&mut self, e: &Error, repo: &str) {
        let provisioned = self.old.image.as_deref() == Some(&self.ctx.image_of(repo));
        if matches!(e, Error::OwnedElsewhere { .. }) && !provisioned {
            self.repo = None;
        }
    }

    /// This Component, its stored logins, and whether status names `repo`:
    /// what owner checks decide with.
    fn claim(&self, repo: &str) -> owners::Claim<'_> {
        owners::Claim {
            uid: &self.uid,
            component: format!("{}/{}", self.ns, self.name),
            status_names_repository: self.old.image.as_deref() == Some(&self.ctx.image_of(repo)),
            logins: [&self.push, &self.pull]
                .into_iter()
                .flatten()
                .map(|s| &s.credentials)
                .collect(),
        }
    }

    /// The repository the spec names, unless the Component already has
    /// another one: a repository never moves (the API server refuses the
    /// change too; this covers objects written before that rule). The pass
    /// goes on with the provisioned one, so delivery continues, and status
    /// says to set `spec.image` back.
    fn provisioned_repository(&mut self, derived: String) -> String {
        let prefix = self.ctx.image_of("");
        let Some(old) = credentials::moved_from(self.old.image.as_deref(), &prefix, &derived)
        else {
            return derived;
        };
        let e = Error::ImageChanged {
            provisioned: old.clone(),
            requested: derived,
        };
        self.repository_problem = Some(problem(&e));
        self.deferred = Some(e);
        old
    }

    /// A repository outside the workspace's prefix is another team's: it is
    /// never touched. One provisioned before that rule keeps working (its
    /// owner records on Quay decide; see docs/security.md).
    fn check_workspace(&self, repo: &str) -> Result<()> {
        let provisioned = self.old.image.as_deref() == Some(&self.ctx.image_of(repo));
        if provisioned || names::in_workspace(repo, &self.ns) {
            return Ok(());
        }
        Err(Error::ImageOutsideWorkspace {
            repository: repo.to_string(),
            prefix: names::workspace_prefix(&self.ns),
        })
    }

    /// Whether this pass must ask Quay (see `plan::credentials`).
    fn must_check_quay(&self, repo: &str) -> bool {
        let spec_generation = self.component.metadata.generation.unwrap_or_default();
        credentials::must_check_quay(credentials::QuayCheck {
            repository_ready: self.old.conditions.iter().any(|c| {
                c.type_ == ConditionType::RepositoryReady.as_str()
                    && c.status == ConditionStatus::True.as_str()
            }),
            spec_changed: self.old.observed_generation != self.component.metadata.generation,
            credentials_stored: self.push.is_some() && self.pull.is_some(),
            same_image: self.old.image.as_deref() == Some(&self.ctx.image_of(repo)),
            verified_in_memory: self.ctx.is_verified(&self.uid, spec_generation, repo),
        })
    }

    /// The robot slot (0 or 1) the persisted pull credentials belong to.
    fn active_slot(&self, repo: &str) -> u8 {
        let alternate =
            self.ctx
                .quay
                .robot_name(&names::robot_short_name(repo, RobotRole::Pull, 1));
        match &self.pull {
            Some(p) if p.credentials.username == alternate => 1,
            _ => 0,
        }
    }

    fn stored(&mut self, role: RobotRole) -> &mut Option<Stored> {
        match role {
            RobotRole::Push => &mut self.push,
            RobotRole::Pull => &mut self.pull,
        }
    }

    fn generation_of(&self, role: RobotRole) -> Option<i64> {
        match role {
            RobotRole::Push => self.push.as_ref().map(|s| s.generation),
            RobotRole::Pull => self.pull.as_ref().map(|s| s.generation),
        }
    }

    /// Persist a robot's login as the workspace Secret of its role, before
    /// anything else uses it.
    async fn persist(&mut self, role: RobotRole, robot: &Robot, generation: i64) -> Result<()> {
        let credentials = robot.credentials(&self.ctx.config.registry_host);
        self.persist_login(role, credentials, generation).await
    }

    /// Read both logins. One written before `--shards` lacks the shard
    /// label, so the watch never sees it: written again with it, once.
    async fn read_logins(&mut self) -> Result<()> {
        for role in [RobotRole::Push, RobotRole::Pull] {
            let (stored, unstamped) = self.read_login(role).await?;
            self.stored(role).clone_from(&stored);
            if let (true, Some(s)) = (unstamped, stored) {
                self.persist_login(role, s.credentials, s.generation)
                    .await?;
            }
        }
        Ok(())
    }

    /// The workspace Secret of `role`, from the watch when it is current
    /// (see [`workspace::read_cached`]); the heartbeat reads nothing else.
    /// Also whether it must be written again with its shard label.
    async fn read_login(&self, role: RobotRole) -> Result<(Option<Stored>, bool)> {
        let name = crate::vocabulary::workspace_secret_name(&self.name, role);
        let cached = self
            .ctx
            .stores()
            .await?
            .workspace_secrets
            .get(&self.ns, &name);
        let key = format!("{}/{name}", self.ns);
        let known = self.ctx.secret_version(&key);
        let shard = self.ctx.shards.shard_of(&self.ns).map(|s| s.to_string());
        let (stored, rv, unstamped) = workspace::read_cached(
            &self.secrets,
            cached,
            known.as_deref(),
            &self.name,
            role,
            self.old.credentials_generation,
            shard.as_deref(),
        )
        .await?;
        self.ctx.note_secret_version(key, rv);
        Ok((stored, unstamped))
    }

    /// Persist `credentials` as the workspace Secret of `role`.
    async fn persist_login(
        &mut self,
        role: RobotRole,
        credentials: crate::credentials::RobotCredentials,
        generation: i64,
    ) -> Result<()> {
        // Written as the workspace's delivery account: the controller
        // holds no write on Secrets of its own.
        let writer = self.ctx.writer(&self.ns, None)?;
        let secrets = Api::namespaced(writer.client.clone(), &self.ns);
        let rv = workspace::write(
            &secrets,
            &self.ns,
            (&self.name, role),
            &credentials,
            generation,
            self.ctx.shards.shard_of(&self.ns),
        )
        .await
        .map_err(|e| writer.refused(&self.ns, e))?;
        let name = crate::vocabulary::workspace_secret_name(&self.name, role);
        self.ctx
            .note_secret_version(format!("{}/{name}", self.ns), rv);
        self.ctx.metrics.kube_writes.inc();
        *self.stored(role) = Some(Stored {
            credentials,
            generation,
        });
        Ok(())
    }

    /// The Component, as events name it.
    fn component_ref(&self) -> k8s_openapi::api::core::v1::ObjectReference {
        self.component.object_ref(&())
    }

    /// After a good pass: soon while Environments still have to follow,
    /// else at the heartbeat or the next scheduled rotation.
    fn next_action(&self) -> Action {
        let behind = self.rotating.is_some() || !self.pending().is_empty();
        let streak = self.ctx.propagation_streak(&self.uid, behind);
        if behind {
            // Watches on the target Secrets wake us sooner; this is the backstop.
            let workspace = self.component.namespace().unwrap_or_default();
            let watched = !self.ctx.has_remote_target(&workspace);
            return Action::requeue(requeue::propagation_backstop(streak, watched));
        }
        if !self.stragglers.is_empty() {
            // They may be gone for hours: look less often. Their Environment
            // passes (and the watches) wake us when they catch up.
            return Action::requeue(Duration::from_secs(60));
        }
        let last = self
            .rotated_at
            .as_ref()
            .map(|t| t.0)
            .or(self
                .component
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0))
            .unwrap_or(self.now);
        let next = requeue::next_pass(
            self.ctx.config.heartbeat,
            self.ctx.config.rotation_interval,
            last.as_second(),
            self.now.as_second(),
        );
        // A pass woken by something else must not put the verification
        // off by up to a heartbeat.
        let verification = plan::drift::until_due(
            self.last_verification(),
            self.ctx.config.quay_verify_interval,
            self.now.as_second(),
        );
        Action::requeue(next.min(verification))
    }

    /// Environments whose target Secret holds less than the recorded
    /// generation, stragglers of a past deadline aside (Degraded names them).
    fn pending(&self) -> Vec<String> {
        self.deliveries
            .iter()
            .flatten()
            .filter(|(d, g)| g.unwrap_or(0) < self.generation && !self.stragglers.contains(&d.name))
            .map(|(d, _)| d.name.clone())
            .collect()
    }

    /// The stragglers still behind the recorded generation after this pass.
    fn still_behind(&self) -> Vec<String> {
        let delivered: Vec<(String, Option<i64>)> = self
            .deliveries
            .iter()
            .flatten()
            .map(|(d, g)| (d.name.clone(), *g))
            .collect();
        plan::rotation::stragglers(&self.stragglers, &[], &delivered, self.generation)
    }

    /// What status reports of this pass: names only of what Quay
    /// confirmed, a repository it answered for and robots whose logins
    /// it gave us (a mistyped organization must not appear as provisioned).
    fn report(&self) -> ComponentReport {
        let confirmed = self.repo.as_ref().filter(|_| self.confirmed);
        let robot = |role| {
            // A pass that stopped before reading the stored logins (the API
            // server restarting, say) knows nothing new: keep what status said.
            if !self.logins_read {
                return match role {
                    RobotRole::Push => self.old.push_robot.clone(),
                    RobotRole::Pull => self.old.pull_robot.clone(),
                };
            }
            let stored = match role {
                RobotRole::Push => &self.push,
                RobotRole::Pull => &self.pull,
            };
            confirmed.filter(|_| stored.is_some()).map(|r| {
                self.ctx
                    .quay
                    .robot_name(&names::robot_short_name(r, role, self.slot))
            })
        };
        let propagation = match (&self.deliveries, &self.rotating) {
            (None, _) => Propagation::NotChecked,
            (Some(_), Some(waiting)) => Propagation::Rotating(waiting.clone()),
            (Some(d), None) => match self.pending() {
                p if p.is_empty() => Propagation::Delivered {
                    environments: d.len().saturating_sub(self.stragglers.len()),
                },
                p => Propagation::Pending(p),
            },
        };
        ComponentReport {
            image: confirmed.map(|r| self.ctx.image_of(r)),
            visibility: self.visibility,
            push_secret: workspace_secret_name(&self.name, RobotRole::Push),
            push_robot: robot(RobotRole::Push),
            pull_robot: robot(RobotRole::Pull),
            repository: self.repository_problem.clone(),
            credentials: self.credentials_problem.clone(),
            generation: self.generation,
            rotated_at: self.rotated_at.clone(),
            propagation,
            deliveries: self
                .deliveries
                .as_ref()
                .map(|d| d.iter().map(|(d, _)| d.clone()).collect()),
            rotate_handled: self.rotate_handled.clone(),
            rotation_request: self.rotation_request.clone(),
            quay_verified_at: self.verified_at(),
            rotation_started_at: self.rotation_started_at.clone(),
            stragglers: self.stragglers.clone(),
        }
    }
}

/// The refusal of a rotation request the last status recorded, if any.
fn refused_request(old: &ComponentStatus) -> Option<Problem> {
    old.conditions
        .iter()
        .find(|c| {
            c.type_ == ConditionType::RotationRequest.as_str()
                && c.status == ConditionStatus::False.as_str()
        })
        .map(|c| Problem::new(c.reason.clone(), c.message.clone()))
}

/// A condition problem from an error.
fn problem(e: &Error) -> Problem {
    Problem::new(e.reason(), e.to_string())
}

/// Pass a step's result on, recording its failure in `slot` first.
fn record<T>(slot: &mut Option<Problem>, result: Result<T>) -> Result<T> {
    result.inspect_err(|e| *slot = Some(problem(e)))
}
