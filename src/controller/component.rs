//! The Component reconciler: the Quay repository, its push and pull robots,
//! the workspace Secrets, emergency rotation, delivery status, and cleanup.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::error::{Error, Result};
use super::{crash, labels, pass, workspace};
use crate::api::{
    Component, ComponentStatus, ConditionType, EnvironmentDelivery, GENERATE_ANNOTATION,
    KEEP_REPOSITORY_ANNOTATION, ResolvedVisibility, Visibility, set_condition,
};
use crate::credentials::RobotCredentials;
use crate::names::{self, RobotRole};
use crate::plan::{RotationStep, plan_rotation};
use crate::quay::{QuayError, Role};
use crate::source::{SourceVisibility, detect_visibility};

const CONTROLLER: &str = "component";

/// Entry point for kube-runtime.
pub async fn reconcile(component: Arc<Component>, ctx: Arc<Context>) -> Result<Action> {
    let ns = component.namespace().unwrap_or_default();
    let api: Api<Component> = Api::namespaced(ctx.client.clone(), &ns);
    let oref = component.object_ref(&());
    let result = finalizer(&api, labels::FINALIZER, component, |event| async {
        match event {
            Finalizer::Apply(c) => apply(c, ctx.clone()).await,
            Finalizer::Cleanup(c) => cleanup(c, ctx.clone()).await,
        }
    })
    .await;
    // The condition already says what to fix; a Warning event makes it
    // visible in `kubectl describe` and to event-based alerting.
    pass::finish(CONTROLLER, result, &ctx, Some(&oref)).await
}

/// Requeue policy on error: transient errors retry soon, spec errors wait.
pub fn error_policy(_c: Arc<Component>, error: &Error, ctx: Arc<Context>) -> Action {
    pass::requeue_after(CONTROLLER, error, &ctx)
}

/// What one pass learned, to be written into status.
struct Observed {
    repository: Option<String>,
    visibility: Option<ResolvedVisibility>,
    repository_problem: Option<(String, String)>,
    credentials_problem: Option<(String, String)>,
    generation: i64,
    rotated_at: Option<Time>,
    deliveries: Vec<EnvironmentDelivery>,
    pending: Vec<String>,
    rotation_pending: bool,
    slot: u8,
}

async fn apply(component: Arc<Component>, ctx: Arc<Context>) -> Result<Action> {
    let ns = component.namespace().unwrap_or_default();
    let name = component.name_any();
    let now = Timestamp::now();
    let old_status = component.status.clone().unwrap_or_default();
    let spec_changed = old_status.observed_generation != component.metadata.generation;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);

    let mut obs = Observed {
        repository: None,
        visibility: old_status.visibility,
        repository_problem: None,
        credentials_problem: None,
        generation: old_status.credentials_generation,
        rotated_at: old_status.rotated_at.clone(),
        deliveries: Vec::new(),
        pending: Vec::new(),
        rotation_pending: false,
        slot: 0,
    };

    // 1. Names: a spec error stops here with a condition that says what to fix.
    let repo = match names::repository_name(&ns, &name, component.spec.image.as_deref()) {
        Ok(r) => r,
        Err(e) => {
            obs.repository_problem = Some(("InvalidName".into(), e.to_string()));
            write_status(&component, &ctx, &obs, now).await?;
            ctx.event(
                &component.object_ref(&()),
                true,
                "InvalidName",
                "Validate",
                e.to_string(),
            )
            .await;
            return Ok(Action::await_change());
        }
    };
    obs.repository = Some(repo.clone());
    let mut push = workspace::read(&secrets, &name, "push").await?;
    let mut pull = workspace::read(&secrets, &name, "pull").await?;
    // Robots live in one of two slots; a scheduled rotation moves to the
    // other one. The persisted pull Secret says which slot is active.
    let slot = active_slot(&ctx, &repo, pull.as_ref());
    let push_short = names::robot_short_name(&repo, RobotRole::Push, slot);
    let pull_short = names::robot_short_name(&repo, RobotRole::Pull, slot);
    obs.slot = slot;

    // 2. Quay: skipped when nothing can have changed since the last
    // verification (so a heartbeat with nothing to do makes no Quay calls).
    let verified_recently = old_status
        .conditions
        .iter()
        .any(|c| c.type_ == "RepositoryReady" && c.status == "True")
        && !spec_changed
        && push.is_some()
        && pull.is_some()
        && old_status.image.as_deref() == Some(&image_of(&ctx, &repo));
    // The pass our own Secret writes trigger sees the Component before its
    // status says RepositoryReady: remember in memory what this process has
    // verified for this spec generation, so Quay is not asked twice.
    let uid = component.uid().unwrap_or_default();
    let spec_generation = component.metadata.generation.unwrap_or_default();
    let verified_recently = verified_recently
        || (push.is_some() && pull.is_some() && ctx.is_verified(&uid, spec_generation, &repo));
    if !verified_recently {
        let visibility = match resolve_visibility(&component, &old_status, spec_changed, &ctx).await
        {
            Ok(v) => v,
            Err(e) => {
                obs.repository_problem = Some((e.reason().into(), e.to_string()));
                write_status(&component, &ctx, &obs, now).await?;
                return Err(e);
            }
        };
        obs.visibility = Some(visibility);
        match ensure_repository(&ctx, &component, &repo, visibility).await {
            Ok(()) => {}
            Err(Error::Quay(QuayError::PlanLimit { .. })) => {
                let msg = format!(
                    "the Quay organization's plan allows no more private repositories, so {repo} cannot be made private; raise the plan limit or set spec.visibility: public"
                );
                obs.repository_problem = Some(("QuayPlanLimit".into(), msg.clone()));
                ctx.event(
                    &component.object_ref(&()),
                    true,
                    "QuayPlanLimit",
                    "EnsureRepository",
                    msg,
                )
                .await;
            }
            Err(e) => {
                obs.repository_problem = Some((e.reason().into(), e.to_string()));
                write_status(&component, &ctx, &obs, now).await?;
                return Err(e);
            }
        }
        // A Component with no persisted credentials most likely has no
        // robots yet: create first (one call) instead of get-then-create.
        let fresh = push.is_none() && pull.is_none();
        let robots = async {
            let robot = |short: String, role: &'static str| {
                let ctx = ctx.clone();
                let desc = format!("quayside {role} robot for {ns}/{name}");
                async move {
                    if fresh {
                        ctx.quay.create_robot(&short, &desc).await
                    } else {
                        ctx.quay.ensure_robot(&short, &desc).await
                    }
                }
            };
            let p = robot(push_short.clone(), "push").await?;
            let q = robot(pull_short.clone(), "pull").await?;
            ctx.quay.grant(&repo, &push_short, Role::Write).await?;
            ctx.quay.grant(&repo, &pull_short, Role::Read).await?;
            Ok::<_, QuayError>((p, q))
        }
        .await;
        let (push_robot, pull_robot) = match robots {
            Ok(r) => r,
            Err(e) => {
                let e = Error::from(e);
                obs.credentials_problem = Some((e.reason().into(), e.to_string()));
                write_status(&component, &ctx, &obs, now).await?;
                return Err(e);
            }
        };
        // Remember only a clean verification: a refused visibility change
        // (402) must be retried, and its condition kept, on the next pass.
        if obs.repository_problem.is_none() {
            ctx.mark_verified(&uid, spec_generation, &repo);
        }
        // Persist what Quay holds. A token that differs from ours was
        // regenerated outside quayside: it is a new generation.
        let base = push
            .as_ref()
            .map(|p| p.generation)
            .max(pull.as_ref().map(|p| p.generation))
            .unwrap_or(0)
            .max(old_status.credentials_generation);
        for (role, robot, stored) in [
            ("push", &push_robot, &mut push),
            ("pull", &pull_robot, &mut pull),
        ] {
            let creds = RobotCredentials {
                registry: ctx.config.registry_host.clone(),
                username: robot.name.clone(),
                token: robot.token.clone(),
            };
            let same = stored.as_ref().is_some_and(|s| s.credentials == creds);
            if !same {
                let generation = match stored {
                    Some(s) => s.generation.max(base) + 1,
                    None => base.max(1),
                };
                workspace::write(&secrets, &ns, &name, role, &creds, generation).await?;
                ctx.metrics.kube_writes.inc();
                *stored = Some(workspace::Stored {
                    credentials: creds,
                    generation,
                });
            }
        }
        if old_status.image.is_none() {
            ctx.event(
                &component.object_ref(&()),
                false,
                "RepositoryReady",
                "EnsureRepository",
                format!(
                    "repository {} ({}) with push and pull robots",
                    image_of(&ctx, &repo),
                    visibility.as_str()
                ),
            )
            .await;
        }
    }

    // 3. Rotation, from durable state only (see plan::rotation).
    let annotation = component.annotations().get(GENERATE_ANNOTATION).cloned();
    if let Some(v) = annotation.as_deref()
        && v != "true"
    {
        ctx.event(
            &component.object_ref(&()),
            true,
            "InvalidAnnotation",
            "Rotate",
            format!("{GENERATE_ANNOTATION}={v:?} is ignored; set it to \"true\" to rotate the robot tokens"),
        )
        .await;
    }
    let requested = annotation.as_deref() == Some("true");
    let deliveries = observe_deliveries(&ctx, &component).await?;
    // The first provisioning is recorded directly: it is not a rotation.
    let recorded = if old_status.credentials_generation == 0 {
        pull.as_ref().map(|p| p.generation).unwrap_or(0)
    } else {
        old_status.credentials_generation
    };
    obs.generation = recorded;
    let due = crate::plan::scheduled_rotation_due(
        ctx.config.rotation_interval.map(|d| d.as_secs() as i64),
        old_status.rotated_at.as_ref().map(|t| t.0.as_second()),
        component
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.as_second()),
        now.as_second(),
    );
    // A failed rotation step (Quay refusing, the API down) must show in
    // the conditions, not only in an event: the credentials still work but
    // the rotation someone asked for has not happened.
    let rotation: Result<()> = async {
        loop {
            let delivered: Vec<(String, Option<i64>)> = deliveries
                .iter()
                .map(|(d, g)| (d.name.clone(), *g))
                .collect();
            let step = plan_rotation(
                requested,
                due,
                recorded,
                push.as_ref().map(|p| p.generation),
                pull.as_ref().map(|p| p.generation),
                &delivered,
            );
            match step {
                RotationStep::Idle => break,
                RotationStep::StartScheduled { target } => {
                    let next = 1 - obs.slot;
                    let mut fresh = Vec::new();
                    for (role, quay_role, kind) in [
                        (RobotRole::Push, Role::Write, "push"),
                        (RobotRole::Pull, Role::Read, "pull"),
                    ] {
                        let short = names::robot_short_name(&repo, role, next);
                        let robot = ctx
                            .quay
                            .create_robot(&short, &format!("quayside {kind} robot for {ns}/{name}"))
                            .await?;
                        ctx.quay.grant(&repo, &short, quay_role).await?;
                        fresh.push((kind, robot));
                    }
                    crash::point("scheduled:robots-created");
                    for (kind, robot) in fresh {
                        let creds = RobotCredentials {
                            registry: ctx.config.registry_host.clone(),
                            username: robot.name.clone(),
                            token: robot.token.clone(),
                        };
                        workspace::write(&secrets, &ns, &name, kind, &creds, target).await?;
                        ctx.metrics.kube_writes.inc();
                        let stored = Some(workspace::Stored {
                            credentials: creds,
                            generation: target,
                        });
                        if kind == "push" {
                            push = stored;
                        } else {
                            pull = stored;
                        }
                    }
                    crash::point("scheduled:persisted");
                    ctx.rotation_started(&uid, target);
                    obs.slot = next;
                    tracing::info!(component = %name, namespace = %ns, target, "scheduled rotation: new robots persisted, old ones kept until every Environment follows");
                }
                RotationStep::RegeneratePush { target } => {
                    let robot = ctx.quay.regenerate_robot_token(&push_short).await?;
                    crash::point("rotation:push-regenerated");
                    let creds = RobotCredentials {
                        registry: ctx.config.registry_host.clone(),
                        username: robot.name.clone(),
                        token: robot.token.clone(),
                    };
                    workspace::write(&secrets, &ns, &name, "push", &creds, target).await?;
                    ctx.metrics.kube_writes.inc();
                    crash::point("rotation:push-persisted");
                    push = Some(workspace::Stored {
                        credentials: creds,
                        generation: target,
                    });
                }
                RotationStep::RegeneratePull { target } => {
                    let robot = ctx.quay.regenerate_robot_token(&pull_short).await?;
                    crash::point("rotation:pull-regenerated");
                    let creds = RobotCredentials {
                        registry: ctx.config.registry_host.clone(),
                        username: robot.name.clone(),
                        token: robot.token.clone(),
                    };
                    workspace::write(&secrets, &ns, &name, "pull", &creds, target).await?;
                    ctx.metrics.kube_writes.inc();
                    crash::point("rotation:pull-persisted");
                    ctx.rotation_started(&uid, target);
                    pull = Some(workspace::Stored {
                        credentials: creds,
                        generation: target,
                    });
                }
                RotationStep::AwaitPropagation { target, pending } => {
                    obs.generation = recorded;
                    obs.pending = pending;
                    obs.rotation_pending = true;
                    tracing::info!(component = %name, namespace = %ns, target, pending = obs.pending.len(), "waiting for Environments to hold the rotated token");
                    break;
                }
                RotationStep::Finish { target } => {
                    if requested {
                        let api: Api<Component> = Api::namespaced(ctx.client.clone(), &ns);
                        let patch = serde_json::json!({"metadata": {"annotations": {GENERATE_ANNOTATION: null}}});
                        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                            .await?;
                        ctx.metrics.kube_writes.inc();
                        crash::point("rotation:annotation-removed");
                    }
                    // Every Environment holds the new robots: the inactive slot's
                    // robots (if a scheduled rotation left any) can go now.
                    let active = active_slot(&ctx, &repo, pull.as_ref());
                    obs.slot = active;
                    for role in [RobotRole::Push, RobotRole::Pull] {
                        ctx.quay
                            .delete_robot(&names::robot_short_name(&repo, role, 1 - active))
                            .await?;
                    }
                    ctx.rotation_finished(&uid, target);
                    obs.generation = target;
                    obs.rotated_at = Some(Time(now));
                    ctx.event(
                        &component.object_ref(&()),
                        false,
                        "CredentialsRotated",
                        "Rotate",
                        format!(
                            "robot tokens regenerated (generation {target}) and delivered to {} Environment(s)",
                            deliveries.len()
                        ),
                    )
                    .await;
                    break;
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = rotation {
        obs.credentials_problem = Some((
            e.reason().into(),
            format!("rotating the robot tokens failed: {e}"),
        ));
        obs.deliveries = deliveries.into_iter().map(|(d, _)| d).collect();
        write_status(&component, &ctx, &obs, now).await?;
        return Err(e);
    }
    if !obs.rotation_pending {
        obs.pending = deliveries
            .iter()
            .filter(|(_, g)| g.unwrap_or(0) < obs.generation)
            .map(|(d, _)| d.name.clone())
            .collect();
    }
    obs.deliveries = deliveries.into_iter().map(|(d, _)| d).collect();
    write_status(&component, &ctx, &obs, now).await?;
    if obs.rotation_pending || !obs.pending.is_empty() {
        // Watches on the target Secrets wake us sooner; this is the backstop.
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    // Wake up for the next scheduled rotation if it comes before the heartbeat.
    let mut next = ctx.config.heartbeat;
    if let Some(interval) = ctx.config.rotation_interval {
        let last = obs
            .rotated_at
            .as_ref()
            .map(|t| t.0)
            .or(component.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .unwrap_or(now);
        let elapsed = now.duration_since(last).as_secs().max(0) as u64;
        let left = interval.as_secs().saturating_sub(elapsed).max(1);
        next = next.min(Duration::from_secs(left));
    }
    Ok(Action::requeue(next))
}

/// The robot slot (0 or 1) the persisted pull credentials belong to.
fn active_slot(ctx: &Context, repo: &str, pull: Option<&workspace::Stored>) -> u8 {
    let alternate = ctx
        .quay
        .robot_name(&names::robot_short_name(repo, RobotRole::Pull, 1));
    match pull {
        Some(p) if p.credentials.username == alternate => 1,
        _ => 0,
    }
}

fn image_of(ctx: &Context, repo: &str) -> String {
    format!(
        "{}/{}/{}",
        ctx.config.registry_host,
        ctx.quay.organization(),
        repo
    )
}

async fn resolve_visibility(
    component: &Component,
    old: &ComponentStatus,
    spec_changed: bool,
    ctx: &Context,
) -> Result<ResolvedVisibility> {
    Ok(match component.spec.visibility {
        Visibility::Private => ResolvedVisibility::Private,
        Visibility::Public => ResolvedVisibility::Public,
        Visibility::Auto => match old.visibility {
            Some(v) if !spec_changed => v,
            _ => match detect_visibility(&component.spec.source.git.url, &ctx.config.source_retry)
                .await?
            {
                SourceVisibility::Private => ResolvedVisibility::Private,
                SourceVisibility::Public => ResolvedVisibility::Public,
            },
        },
    })
}

async fn ensure_repository(
    ctx: &Context,
    component: &Component,
    repo: &str,
    visibility: ResolvedVisibility,
) -> Result<()> {
    let description = format!(
        "Images of Component {}/{} (managed by quayside)",
        component.namespace().unwrap_or_default(),
        component.name_any()
    );
    match ctx.quay.get_repository(repo).await? {
        None => {
            ctx.quay
                .create_repository(repo, visibility, &description)
                .await?
        }
        Some(existing) => {
            let want_public = visibility == ResolvedVisibility::Public;
            if existing.is_public != want_public {
                ctx.quay.change_visibility(repo, visibility).await?;
            }
        }
    }
    Ok(())
}

/// For each Environment of the workspace, the delivery record and the
/// generation its target Secret holds (None: missing or unreadable).
async fn observe_deliveries(
    ctx: &Context,
    component: &Component,
) -> Result<Vec<(EnvironmentDelivery, Option<i64>)>> {
    let ns = component.namespace().unwrap_or_default();
    let name = component.name_any();
    let envs = Api::<crate::api::Environment>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await?;
    let mut out = Vec::new();
    for env in envs.items {
        if env.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let env_name = env.name_any();
        let generation = match ctx.targets.for_environment(&ctx.client, &env).await {
            Ok(client) => Api::<Secret>::namespaced(client, &env.spec.target.namespace)
                .get_opt(&crate::render::pull_secret_name(&name))
                .await
                .ok()
                .flatten()
                .and_then(|s| labels::generation_of(s.metadata.annotations.as_ref())),
            Err(_) => None,
        };
        let status = env.status.clone().unwrap_or_default();
        out.push((
            EnvironmentDelivery {
                name: env_name,
                generation: generation.unwrap_or(0),
                commit: status.commit.clone(),
                service_account: status.linked_service_account.clone(),
                last_heartbeat: status.last_sync.clone(),
            },
            generation,
        ));
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(out)
}

async fn write_status(
    component: &Component,
    ctx: &Context,
    obs: &Observed,
    now: Timestamp,
) -> Result<()> {
    let old = component.status.clone().unwrap_or_default();
    let name = component.name_any();
    let mut status = ComponentStatus {
        image: obs.repository.as_ref().map(|r| image_of(ctx, r)),
        visibility: obs.visibility,
        push_secret: Some(labels::workspace_secret_name(&name, "push")),
        push_robot: obs.repository.as_ref().map(|r| {
            ctx.quay
                .robot_name(&names::robot_short_name(r, RobotRole::Push, obs.slot))
        }),
        pull_robot: obs.repository.as_ref().map(|r| {
            ctx.quay
                .robot_name(&names::robot_short_name(r, RobotRole::Pull, obs.slot))
        }),
        credentials_generation: obs.generation,
        rotated_at: obs.rotated_at.clone(),
        environments: obs.deliveries.clone(),
        observed_generation: component.metadata.generation,
        conditions: old.conditions.clone(),
    };
    let t = Time(now);
    let g = component.metadata.generation;
    let repo_ok = obs.repository_problem.is_none();
    let (reason, message) = obs
        .repository_problem
        .clone()
        .unwrap_or(("RepositoryReady".into(), String::new()));
    set_condition(
        &mut status.conditions,
        ConditionType::RepositoryReady,
        repo_ok,
        &reason,
        &message,
        g,
        t.clone(),
    );
    let creds_ok = obs.credentials_problem.is_none() && obs.generation > 0;
    let (reason, message) = obs.credentials_problem.clone().unwrap_or(if creds_ok {
        ("CredentialsReady".into(), String::new())
    } else {
        (
            "Pending".into(),
            "robot credentials are not provisioned yet".into(),
        )
    });
    set_condition(
        &mut status.conditions,
        ConditionType::CredentialsReady,
        creds_ok,
        &reason,
        &message,
        g,
        t.clone(),
    );
    let propagated = obs.pending.is_empty() && !obs.rotation_pending;
    let (reason, message) = if propagated {
        (
            "Propagated",
            format!(
                "generation {} delivered to {} Environment(s)",
                obs.generation,
                obs.deliveries.len()
            ),
        )
    } else if obs.rotation_pending {
        (
            "RotationInProgress",
            format!(
                "waiting for Environment(s) {} to hold the rotated token; see their conditions if this lasts",
                obs.pending.join(", ")
            ),
        )
    } else {
        (
            "Propagating",
            format!(
                "waiting for Environment(s) {} to receive generation {}; see their conditions if this lasts",
                obs.pending.join(", "),
                obs.generation
            ),
        )
    };
    set_condition(
        &mut status.conditions,
        ConditionType::Propagated,
        propagated,
        reason,
        &message,
        g,
        t.clone(),
    );
    let ready = repo_ok && creds_ok && propagated;
    let (reason, message) = if ready {
        ("Ready".to_string(), String::new())
    } else if !repo_ok {
        obs.repository_problem.clone().unwrap()
    } else if !creds_ok {
        (
            "CredentialsNotReady".to_string(),
            "see the CredentialsReady condition".to_string(),
        )
    } else {
        (
            "NotPropagated".to_string(),
            "see the Propagated condition".to_string(),
        )
    };
    set_condition(
        &mut status.conditions,
        ConditionType::Ready,
        ready,
        &reason,
        &message,
        g,
        t,
    );
    if component.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<Component> = Api::namespaced(
        ctx.client.clone(),
        &component.namespace().unwrap_or_default(),
    );
    let patch = serde_json::json!({"status": status});
    api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    ctx.metrics.kube_writes.inc();
    Ok(())
}

/// Deletion: wait until no Environment holds our pull Secret (their passes
/// drop deleted Components), then delete the robots and the repository
/// (unless kept or shared) and the workspace Secrets.
async fn cleanup(component: Arc<Component>, ctx: Arc<Context>) -> Result<Action> {
    let ns = component.namespace().unwrap_or_default();
    let name = component.name_any();
    let deliveries = observe_deliveries(&ctx, &component).await?;
    let still: Vec<String> = deliveries
        .iter()
        .filter(|(_, g)| g.is_some())
        .map(|(d, _)| d.name.clone())
        .collect();
    let deleted_at = component
        .metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0)
        .unwrap_or_else(Timestamp::now);
    let waited = Timestamp::now().duration_since(deleted_at);
    if !still.is_empty() {
        if waited.as_secs() < ctx.config.cleanup_timeout.as_secs() as i64 {
            // An error keeps the finalizer (Ok would remove it) and retries soon.
            return Err(Error::CleanupPending(format!(
                "waiting for Environment(s) {} to drop the pull Secret",
                still.join(", ")
            )));
        }
        ctx.event(
            &component.object_ref(&()),
            true,
            "CleanupIncomplete",
            "Cleanup",
            format!(
                "gave up waiting for Environment(s) {} to drop the pull Secret after {:?}; remove it there by hand",
                still.join(", "),
                ctx.config.cleanup_timeout
            ),
        )
        .await;
    }
    if let Ok(repo) = names::repository_name(&ns, &name, component.spec.image.as_deref()) {
        let keep = component
            .annotations()
            .get(KEEP_REPOSITORY_ANNOTATION)
            .is_some_and(|v| v == "true");
        let shared = repository_shared(&ctx, &component, &repo).await?;
        if !keep && !shared {
            for role in [RobotRole::Push, RobotRole::Pull] {
                for slot in [0, 1] {
                    ctx.quay
                        .delete_robot(&names::robot_short_name(&repo, role, slot))
                        .await?;
                }
            }
            ctx.quay.delete_repository(&repo).await?;
        } else if !shared {
            // Kept repository: the robots still go, so no credential outlives
            // the Component.
            for role in [RobotRole::Push, RobotRole::Pull] {
                for slot in [0, 1] {
                    ctx.quay
                        .delete_robot(&names::robot_short_name(&repo, role, slot))
                        .await?;
                }
            }
        }
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    for role in ["push", "pull"] {
        match secrets
            .delete(
                &labels::workspace_secret_name(&name, role),
                &Default::default(),
            )
            .await
        {
            Ok(_) => {
                ctx.metrics.kube_writes.inc();
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    ctx.forget(&component.uid().unwrap_or_default());
    Ok(Action::await_change())
}

/// Another live Component (in any workspace) resolves to the same repository.
async fn repository_shared(ctx: &Context, component: &Component, repo: &str) -> Result<bool> {
    let all = Api::<Component>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?;
    Ok(all.items.iter().any(|c| {
        c.uid() != component.uid()
            && c.metadata.deletion_timestamp.is_none()
            && names::repository_name(
                &c.namespace().unwrap_or_default(),
                &c.name_any(),
                c.spec.image.as_deref(),
            )
            .is_ok_and(|r| r == repo)
    }))
}
