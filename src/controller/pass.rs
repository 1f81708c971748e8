//! What every reconcile pass shares around its work: the outcome of the
//! finalizer wrapper turned into metrics (and an event), and the requeue
//! policy on error.

use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::Error as FinalizerError;

use super::context::Context;
use super::error::{Error, Result};

/// Count the pass and unwrap the finalizer's error. With `warn`, a failed
/// apply also publishes a Warning event on that object.
pub async fn finish(
    controller: &str,
    result: std::result::Result<Action, FinalizerError<Error>>,
    ctx: &Context,
    warn: Option<&ObjectReference>,
) -> Result<Action> {
    match result {
        Ok(action) => {
            ctx.metrics.reconciled(controller, "ok");
            Ok(action)
        }
        Err(FinalizerError::ApplyFailed(e)) => {
            if let Some(object) = warn {
                ctx.event(object, true, e.reason(), "Reconcile", e.to_string())
                    .await;
            }
            Err(e)
        }
        Err(FinalizerError::CleanupFailed(e)) => Err(e),
        Err(e) => Err(Error::Internal(e.to_string())),
    }
}

/// Requeue policy on error: transient errors retry soon, spec errors wait
/// for a change (or five minutes).
pub fn requeue_after(controller: &str, error: &Error, ctx: &Context) -> Action {
    ctx.metrics.reconciled(controller, "error");
    ctx.metrics.failed(controller, error.reason());
    if error.is_transient() {
        Action::requeue(Duration::from_secs(2))
    } else {
        Action::requeue(Duration::from_secs(300))
    }
}
