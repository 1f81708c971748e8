//! The step of a Component pass that looks at its Environments: which
//! credentials generation each target Secret holds.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;

use super::Pass;
use crate::api::{Component, EnvironmentDelivery};
use crate::controller::context::Context;
use crate::controller::error::Result;
use crate::plan::delivery::{effective_mode, reported_generation};
use crate::vocabulary::{generation_of, pull_secret_name};

impl Pass<'_> {
    pub(super) async fn observe_deliveries(
        &self,
    ) -> Result<Vec<(EnvironmentDelivery, Option<i64>)>> {
        observe(self.ctx, self.component).await
    }
}

/// For each live Environment of the workspace, the delivery record and the
/// generation its target Secret holds (`None`: missing or unreadable). A
/// `GitOps` Environment reports it in status, read as the workspace's
/// delivery identity (`plan::delivery::reported_generation`).
pub(super) async fn observe(
    ctx: &Context,
    component: &Component,
) -> Result<Vec<(EnvironmentDelivery, Option<i64>)>> {
    let ns = component.namespace().unwrap_or_default();
    let secret_name = pull_secret_name(&component.name_any());
    let stores = ctx.stores().await?;
    let mut out = Vec::new();
    for env in stores.live_environments(&ns) {
        let status = env.status.clone().unwrap_or_default();
        // The mode as the Environment's pass decides it, not as its status
        // last said: before its first pass, a GitOps target counts as empty.
        let mode = effective_mode(
            env.spec.delivery_mode(),
            ctx.config.delivery_mode,
            ctx.config.side_repo.is_some(),
        );
        let reported = reported_generation(mode.ok(), &status.live, &component.name_any());
        let generation = match reported {
            Some(g) => g,
            // In this cluster, the watch of our target Secrets knows.
            None if env.spec.target.cluster_credentials_secret.is_none() => stores
                .target_secrets
                .get(env.spec.target.namespace.trim(), &secret_name)
                .and_then(|s| s.generation),
            None => match ctx.targets.for_environment(&ctx.client, &env).await {
                Ok(client) => Api::<Secret>::namespaced(client, &env.spec.target.namespace)
                    .get_opt(&secret_name)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|s| generation_of(s.metadata.annotations.as_ref())),
                Err(_) => None,
            },
        };
        out.push((
            EnvironmentDelivery {
                name: env.name_any(),
                generation: generation.unwrap_or(0),
                service_account: status.linked_service_account,
            },
            generation,
        ));
    }
    out.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(out)
}
