//! The Environment reconciler: every Component's pull Secret in the target
//! namespace, linked to the right ServiceAccount, and the same manifests
//! sealed into the Environment's side-repo folder — one commit per pass.
//!
//! A pass runs two independent steps, `deliver` (target Secrets and link)
//! and `commit` (side repository); a failure of one does not stop the
//! other. Each is reported as an event where its cause is known, status is
//! derived from both by `plan::status` and written once, and the first
//! failure goes on to the error policy.

mod cleanup;
mod deliverables;
mod folder;
mod link;
mod side_repo;
mod target;

use std::sync::Arc;

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
use crate::plan::status::{EnvironmentReport, Problem, environment_status};
use crate::vocabulary::FINALIZER;

pub async fn reconcile(env: Arc<Environment>, ctx: Arc<Context>) -> Result<Action> {
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
    let items = deliverables::list(ctx, &env.namespace().unwrap_or_default()).await?;
    let mut first_error = None;
    let mut changed = false;

    let delivered = target::deliver(env, ctx, &items).await;
    let linked = delivered.as_ref().ok().map(|d| d.linked.clone());
    let applied = match delivered {
        Ok(d) => {
            changed |= d.changed;
            Ok(d.linked)
        }
        Err(e) => Err(failed(env, ctx, "Deliver", e, &mut first_error).await),
    };
    let mut committed = None;
    let mut folder = None;
    if ctx.config.side_repo.is_some() {
        committed = Some(
            match side_repo::commit(env, ctx, &items, linked, now).await {
                Ok(written) => {
                    folder = Some(written.folder);
                    let commit = written.commit;
                    if let Some(c) = &commit {
                        changed = true;
                        let note = format!("side repository updated at {c}");
                        ctx.notice(&env.object_ref(&()), "Committed", "Commit", note)
                            .await;
                    }
                    Ok(commit)
                }
                Err(e) => Err(failed(env, ctx, "Commit", e, &mut first_error).await),
            },
        );
    }
    let report = EnvironmentReport {
        applied,
        committed,
        changed,
        folder,
    };

    let status = environment_status(
        &env.status.clone().unwrap_or_default(),
        &report,
        env.metadata.generation,
        Time(now),
    );
    super::status::write(ctx, env, env.status.as_ref(), &status).await?;
    ctx.metrics.observe_ready(
        Kind::Environment.as_str(),
        &env.namespace().unwrap_or_default(),
        &env.name_any(),
        &status.conditions,
    );
    match first_error {
        Some(e) => Err(e),
        None => Ok(Action::requeue(ctx.config.heartbeat)),
    }
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
