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

/// Requeue policy on error: transient errors retry soon, errors fixed
/// outside the object every minute, spec errors wait for a change to the
/// object (which wakes it at once) or five minutes.
pub fn requeue_after(controller: &str, error: &Error, ctx: &Context) -> Action {
    ctx.metrics.reconciled(controller, "error");
    ctx.metrics.failed(controller, error.reason());
    Action::requeue(retry_delay(error))
}

fn retry_delay(error: &Error) -> Duration {
    if error.is_transient() {
        Duration::from_secs(2)
    } else if error.is_fixed_elsewhere() {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(300)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quay::QuayError;

    #[test]
    fn each_kind_of_error_waits_as_long_as_its_fix_takes() {
        let unavailable = Error::Quay(QuayError::Exhausted {
            attempts: 12,
            last: "HTTP 503".into(),
        });
        let revoked = Error::Quay(QuayError::Unauthorized {
            organization: "acme".into(),
            token_file: "/etc/quayside/quay-token".into(),
            message: "invalid token".into(),
        });
        let spec = Error::InvalidSpec("no target namespace".into());
        assert_eq!(retry_delay(&unavailable), Duration::from_secs(2));
        assert_eq!(retry_delay(&revoked), Duration::from_secs(60));
        assert_eq!(retry_delay(&spec), Duration::from_secs(300));
    }
}
