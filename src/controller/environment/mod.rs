//! The Environment reconciler: every Component's pull Secret in the target
//! namespace, linked to the right ServiceAccount, and the same manifests
//! sealed into the Environment's side-repo folder — one commit per pass.
//!
//! The delivery mode (`plan::delivery`) picks the steps: `commit` (side
//! repository) first, then `deliver` (Direct, Both: apply the target
//! Secrets and link) or `serve` (GitOps: read what the engine applied, as
//! the delivery identity, and link it); a push wakes the engine. A failure
//! of one step does not stop the other. Each is reported as an event where its cause is known, status is
//! derived from both by `plan::status` and written once, and the first
//! failure goes on to the error policy.

mod cleanup;
mod deliverables;
mod folder;
mod gitops;
mod link;
mod side_repo;
mod target;
pub(crate) mod unchanged;
mod wake;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Resource, ResourceExt};

use super::context::Context;
use super::error::{Error, Result};
use super::pass::{self, Kind};
use crate::api::Environment;
use crate::plan;
use crate::plan::delivery::{self, Served};
use crate::plan::status::{EnvironmentReport, Problem, environment_status};
use crate::vocabulary::FINALIZER;

/// How often an Environment waiting for its GitOps engine or a review is
/// looked at again (engine applies wake it sooner, through the Secret watch).
const AWAITING_POLL: Duration = Duration::from_secs(30);

pub async fn reconcile(env: Arc<Environment>, ctx: Arc<Context>) -> Result<Action> {
    // A shard label a tenant changed is put back first, admitted or not.
    crate::controller::sharded::correct_label(&ctx, env.as_ref()).await;
    let Some(_pass) = ctx.shards.admit(&env.namespace().unwrap_or_default()) else {
        return Ok(Action::await_change()); // another replica's shard
    };
    let api: Api<Environment> =
        Api::namespaced(ctx.client.clone(), &env.namespace().unwrap_or_default());
    let key = pass::key_of(env.as_ref());
    let started = std::time::Instant::now();
    let result = finalizer(&api, FINALIZER, env, |event| async {
        match event {
            Finalizer::Apply(e) => apply(&e, &ctx).await,
            Finalizer::Cleanup(e) => {
                let done = cleanup::run(&e, &ctx).await;
                pass::forget_when_cleaned(Kind::Environment, e.as_ref(), &done, &ctx);
                done
            }
        }
    })
    .await;
    // Failures are reported as events inside the pass, where their cause is known.
    pass::finish(Kind::Environment, &key, started, result, &ctx, None).await
}

/// Requeue policy on error: see [`pass::requeue_after`].
pub fn error_policy(env: Arc<Environment>, error: &Error, ctx: Arc<Context>) -> Action {
    pass::requeue_after(Kind::Environment, &pass::key_of(env.as_ref()), error, &ctx)
}

async fn apply(env: &Environment, ctx: &Context) -> Result<Action> {
    let now = Timestamp::now();
    let side_repo = ctx.config.side_repo.is_some();
    let mode = match delivery::effective_mode(
        env.spec.delivery_mode(),
        ctx.config.delivery_mode,
        side_repo,
    ) {
        Ok(m) => m,
        Err(e) => return refuse_mode(env, ctx, e.into(), now).await,
    };
    let steps = delivery::steps(mode);
    let items = deliverables::list(ctx, &env.namespace().unwrap_or_default()).await?;
    let mut first_error = None;
    let mut deployer = link::DeployerRead::default();
    // Commit first: the engine's source holds a change before anything
    // reaches the target (Both), or instead of it (GitOps).
    let written = match steps.commit {
        true => Some(commit(env, ctx, &items, now, &mut first_error, &mut deployer).await),
        false => None,
    };
    let mut report = EnvironmentReport::new(
        mode,
        Err(Problem::new("NotChecked", "")),
        written.as_ref().map(|w| w.committed.clone()),
    );
    report.folder = written.as_ref().and_then(|w| w.folder.clone());
    report.pull_request = written.as_ref().and_then(|w| w.pull_request.clone());
    report.changed = written.as_ref().is_some_and(|w| w.changed);
    if steps.apply {
        report.applied = match target::deliver(env, ctx, &items, &mut deployer).await {
            Ok(d) => {
                report.changed |= d.changed;
                Ok(d.linked)
            }
            Err(e) => Err(failed(env, ctx, "Deliver", e, &mut first_error).await),
        };
    } else {
        report.applied = match gitops::serve(env, ctx, &items, &mut deployer).await {
            Ok(s) => {
                report.changed |= s.changed;
                report.live = Some(s.live);
                Ok(s.linked)
            }
            Err(e) => Err(failed(env, ctx, "Deliver", e, &mut first_error).await),
        };
    }
    let old = env.status.clone().unwrap_or_default();
    let awaiting = matches!(report.served(), Some(Served::AwaitingEngine { .. }));
    let pushed = written.as_ref().is_some_and(|w| w.pushed_to_branch);
    if plan::wake::should_wake(pushed, awaiting, old.pull_request.is_some()) {
        wake::run(env, ctx, now).await;
    }
    let status = environment_status(&old, &report, env.metadata.generation, Time(now));
    super::status::write(ctx, env, env.status.as_ref(), &status).await?;
    ctx.metrics.observe_ready(
        Kind::Environment.as_str(),
        &env.namespace().unwrap_or_default(),
        &env.name_any(),
        &status.conditions,
    );
    match first_error {
        Some(e) => Err(e),
        None => Ok(Action::requeue(requeue(ctx, &report))),
    }
}

/// How soon to look again: the heartbeat, or sooner while the target
/// waits for the engine or a review (a merge wakes nothing in the cluster).
fn requeue(ctx: &Context, report: &EnvironmentReport) -> Duration {
    match report.served() {
        Some(Served::AllLive) | None => ctx.config.heartbeat,
        Some(_) => ctx.config.heartbeat.min(AWAITING_POLL),
    }
}

/// The commit step's outcome, for the report.
struct Written {
    committed: std::result::Result<Option<String>, Problem>,
    folder: Option<String>,
    pull_request: Option<String>,
    changed: bool,
    /// The commit went to the branch the engine syncs (not a proposal).
    pushed_to_branch: bool,
}

async fn commit(
    env: &Environment,
    ctx: &Context,
    items: &[deliverables::Deliverable],
    now: Timestamp,
    first_error: &mut Option<Error>,
    deployer: &mut link::DeployerRead,
) -> Written {
    let hint = match target::account_hint(env, ctx, deployer).await {
        Some(sa) => Some(sa),
        None => env
            .status
            .as_ref()
            .and_then(|s| s.linked_service_account.clone()),
    };
    match side_repo::commit(env, ctx, items, hint, now).await {
        Ok(written) => {
            let proposal = matches!(
                ctx.config.side_repo.as_ref().map(|c| &c.mode),
                Some(crate::gitops::DeliveryMode::PullRequest { .. })
            );
            if let Some(c) = &written.commit {
                let note = format!("side repository updated at {c}");
                ctx.notice(&env.object_ref(&()), "Committed", "Commit", note)
                    .await;
            }
            Written {
                changed: written.commit.is_some(),
                pushed_to_branch: written.commit.is_some() && !proposal,
                committed: Ok(written.commit),
                folder: Some(written.folder),
                pull_request: written.pull_request,
            }
        }
        Err(e) => Written {
            committed: Err(failed(env, ctx, "Commit", e, first_error).await),
            folder: None,
            pull_request: None,
            changed: false,
            pushed_to_branch: false,
        },
    }
}

/// A delivery mode this controller cannot run: reported, nothing written.
async fn refuse_mode(env: &Environment, ctx: &Context, e: Error, now: Timestamp) -> Result<Action> {
    let mut first = None;
    let problem = failed(env, ctx, "Deliver", e, &mut first).await;
    let mode = env.spec.delivery_mode().unwrap_or(ctx.config.delivery_mode);
    let report = EnvironmentReport::new(mode, Err(problem), None);
    let old = env.status.clone().unwrap_or_default();
    let status = environment_status(&old, &report, env.metadata.generation, Time(now));
    super::status::write(ctx, env, env.status.as_ref(), &status).await?;
    Err(first.expect("failed keeps the first error"))
}

/// A failed step: a Warning event says which step and why, status gets the
/// problem, and the first error of the pass is kept for the error policy.
async fn failed(
    env: &Environment,
    ctx: &Context,
    action: &str,
    e: Error,
    first: &mut Option<Error>,
) -> Problem {
    let problem = Problem::new(e.reason(), e.to_string());
    ctx.warn(&env.object_ref(&()), e.reason(), action, e.to_string())
        .await;
    first.get_or_insert(e);
    problem
}
