//! What every reconcile pass shares around its work: the finalizer's
//! outcome turned into metrics (and a Warning event), and the error policy:
//! backoff by kind of error, the error metric by reason, and a warn log once
//! per change of reason.

use k8s_openapi::api::core::v1::ObjectReference;
use kube::ResourceExt;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Error as FinalizerError;

use super::context::Context;
use super::error::{Error, Result};
use crate::plan::requeue::retry_delay;

/// The two reconcilers, as named in metrics and logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Component,
    Environment,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Component => "component",
            Kind::Environment => "environment",
        }
    }
}

/// `namespace/name` of an object, the key of its failure count.
pub fn key_of(object: &impl ResourceExt) -> String {
    format!(
        "{}/{}",
        object.namespace().unwrap_or_default(),
        object.name_any()
    )
}

/// Whether an object's cleanup has waited longer than `--cleanup-timeout`
/// since its deletion, and should report what is left and let go.
pub fn cleanup_overdue(object: &impl ResourceExt, ctx: &Context) -> bool {
    let now = k8s_openapi::jiff::Timestamp::now();
    let deleted_at = object
        .meta()
        .deletion_timestamp
        .as_ref()
        .map_or(now, |t| t.0);
    now.duration_since(deleted_at).as_secs() >= ctx.config.cleanup_timeout.as_secs() as i64
}

/// Count the pass and unwrap the finalizer's error. With `warn`, a failed
/// apply also publishes a Warning event on that object (reconcilers that
/// report their failures themselves, where the cause is known, pass `None`).
pub async fn finish(
    kind: Kind,
    key: &str,
    started: std::time::Instant,
    result: std::result::Result<Action, FinalizerError<Error>>,
    ctx: &Context,
    warn: Option<&ObjectReference>,
) -> Result<Action> {
    ctx.metrics.timed(kind.as_str(), started.elapsed());
    crate::memory::pass_finished();
    tracing::trace!(
        controller = kind.as_str(),
        object = key,
        ok = result.is_ok(),
        "pass done"
    );
    match result {
        Ok(action) => {
            ctx.metrics.reconciled(kind.as_str(), "ok");
            if ctx.good_pass(kind.as_str(), key) {
                tracing::info!(
                    controller = kind.as_str(),
                    object = key,
                    "reconciled again after failures"
                );
            }
            Ok(action)
        }
        Err(FinalizerError::ApplyFailed(e)) => {
            if let Some(object) = warn {
                ctx.warn(object, e.reason(), "Reconcile", e.to_string())
                    .await;
            }
            Err(e)
        }
        Err(FinalizerError::CleanupFailed(e)) => Err(e),
        // The finalizer patch tests the list it changes: a concurrent write
        // (our own status, a stale cache at start-up) fails that test with
        // 422, or the write with 409. Both are races, not faults.
        Err(FinalizerError::AddFinalizer(kube::Error::Api(e)))
        | Err(FinalizerError::RemoveFinalizer(kube::Error::Api(e)))
            if e.code == 409 || e.code == 422 =>
        {
            Err(Error::FinalizerRace)
        }
        Err(e) => Err(Error::Finalizer(e.to_string())),
    }
}

/// Once an object's cleanup is done (its finalizer is about to go), drop
/// its per-object series: a deleted object is neither ready nor not.
pub fn forget_when_cleaned<T>(
    kind: Kind,
    object: &impl ResourceExt,
    done: &Result<T>,
    ctx: &Context,
) {
    if done.is_ok() {
        let ns = object.namespace().unwrap_or_default();
        ctx.metrics.forget(kind.as_str(), &ns, &object.name_any());
    }
}

/// How soon a pass that raced another writer runs again.
const RACE_RETRY: std::time::Duration = std::time::Duration::from_millis(500);

/// The error policy of both reconcilers: count the failure by reason, log
/// it at warn when its reason changed (debug while it repeats), and retry
/// after the delay its kind of error needs, backing off while it lasts.
pub fn requeue_after(kind: Kind, key: &str, error: &Error, ctx: &Context) -> Action {
    if error.is_race() {
        ctx.metrics.reconciled(kind.as_str(), "retry");
        tracing::debug!(controller = kind.as_str(), object = key, error = %error, "raced another writer; retrying");
        return Action::requeue(RACE_RETRY);
    }
    ctx.metrics.reconciled(kind.as_str(), "error");
    ctx.metrics.failed(kind.as_str(), error.reason());
    let (failures, changed) = ctx.failed_pass(kind.as_str(), key, error.reason());
    let delay = retry_delay(error.retry(), failures);
    if changed {
        tracing::warn!(controller = kind.as_str(), object = key, reason = error.reason(), error = %error, retry_in = ?delay, "reconcile failed");
    } else {
        tracing::debug!(controller = kind.as_str(), object = key, reason = error.reason(), failures, retry_in = ?delay, "reconcile failed again");
    }
    Action::requeue(delay)
}
