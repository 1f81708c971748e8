//! Waking the GitOps engine after a push: a merge patch of one annotation
//! on each object `spec.delivery.wake` names (`plan::wake`), sent as the
//! workspace's delivery ServiceAccount, so a tenant can wake only what the
//! object's namespace owner granted it (ClusterRole `quayside-wake`). A
//! refusal is a Warning event naming the grant; it never fails the pass:
//! the engine's own polling still picks the change up.

use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::{Resource, ResourceExt};

use crate::api::Environment;
use crate::controller::context::Context;
use crate::plan::grant::delivery_account;
use crate::plan::wake::{Wake, wake_grant_command, wakes};

pub(super) async fn run(env: &Environment, ctx: &Context, now: Timestamp) {
    let Some(delivery) = env.spec.delivery.as_ref().filter(|d| !d.wake.is_empty()) else {
        return;
    };
    let workspace = env.namespace().unwrap_or_default();
    let planned = wakes(&delivery.wake, &workspace, &now.to_string());
    let account = env.spec.target.delivery_service_account.as_deref();
    let writer = ctx.writer(&workspace, account);
    let (planned, writer) = match (planned, writer) {
        (Ok(p), Ok(w)) => (p, w),
        (Err(e), _) => return warn(env, ctx, "InvalidSpec", e.to_string()).await,
        (_, Err(e)) => return warn(env, ctx, e.reason(), e.to_string()).await,
    };
    for w in planned {
        let api: Api<DynamicObject> =
            Api::namespaced_with(writer.client.clone(), &w.namespace, &resource(&w));
        let patch = serde_json::json!({"metadata": {"annotations": {w.annotation: w.value}}});
        match api
            .patch(&w.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => {
                ctx.metrics.kube_writes.inc();
                tracing::info!(environment = %env.name_any(), namespace = %workspace, kind = w.coordinates.kind, object = %format!("{}/{}", w.namespace, w.name), "woke the GitOps engine");
            }
            Err(kube::Error::Api(e)) if e.code == 403 => {
                let default = ctx
                    .config
                    .delivery
                    .as_ref()
                    .map(|d| d.default_account.as_str())
                    .unwrap_or("quayside-delivery");
                let who = delivery_account(account, default).unwrap_or(default);
                let note = format!(
                    "may not annotate {} {}/{} to wake the GitOps engine; its namespace's owner grants it with: {}",
                    w.coordinates.kind,
                    w.namespace,
                    w.name,
                    wake_grant_command(&workspace, who, &w.namespace)
                );
                warn(env, ctx, "WakeNotGranted", note).await;
            }
            Err(e) => {
                let note = format!(
                    "could not wake {} {}/{}: {e}",
                    w.coordinates.kind, w.namespace, w.name
                );
                warn(env, ctx, "WakeFailed", note).await;
            }
        }
    }
}

fn resource(w: &Wake) -> ApiResource {
    let c = w.coordinates;
    ApiResource {
        group: c.group.to_string(),
        version: c.version.to_string(),
        api_version: format!("{}/{}", c.group, c.version),
        kind: c.kind.to_string(),
        plural: c.plural.to_string(),
    }
}

async fn warn(env: &Environment, ctx: &Context, reason: &str, note: String) {
    tracing::warn!(environment = %env.name_any(), namespace = %env.namespace().unwrap_or_default(), reason, "{note}");
    ctx.warn(&env.object_ref(&()), reason, "Wake", note).await;
}
