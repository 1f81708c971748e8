//! Writing a reconciled object's status: once per pass, and only when the
//! pure core derived something different from what is there.

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::context::Context;
use super::error::Result;

/// Merge-patch `status` onto `object` unless `current` already equals it.
/// Only onto the version the pass read (a conflict otherwise, retried at
/// once as a race): a pass that read a cached object older than another
/// pass's status write must not put the older fields back.
pub async fn write<K, S>(ctx: &Context, object: &K, current: Option<&S>, status: &S) -> Result<()>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    S: Serialize + PartialEq,
{
    if current == Some(status) {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &object.namespace().unwrap_or_default());
    api.patch_status(
        &object.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch(object.resource_version(), status)),
    )
    .await?;
    ctx.metrics.kube_writes.inc();
    Ok(())
}

fn patch(resource_version: Option<String>, status: &impl Serialize) -> serde_json::Value {
    match resource_version {
        Some(rv) => serde_json::json!({ "metadata": { "resourceVersion": rv }, "status": status }),
        None => serde_json::json!({ "status": status }),
    }
}
