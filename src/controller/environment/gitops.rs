//! GitOps mode's target step: the engine writes the pull Secrets, so the
//! controller only reads them — as the workspace's delivery identity, so
//! RBAC decides what a tenant may look at — to learn which generation is
//! live; applies one itself only for an emergency rotation under the
//! `Direct` policy (`plan::delivery`); and links the ServiceAccount to the
//! Secrets that are there (the link is the controller's: the engine never
//! writes the ServiceAccount).

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use secrecy::ExposeSecret;

use super::deliverables::Deliverable;
use super::link::{self, DeployerRead};
use super::target;
use crate::api::{Environment, LiveGeneration};
use crate::controller::acting::Writer;
use crate::controller::context::Context;
use crate::controller::error::Result;
use crate::controller::workspace;
use crate::credentials::RobotCredentials;
use crate::plan::delivery::{GitOpsTarget, Live, Wanted, gitops_target};
use crate::plan::target::{Holder, holder};
use crate::plan::{DesiredSecret, ObservedSecret, spec};
use crate::vocabulary::{generation_of, pull_secret_name};

/// What the step found and did.
pub(super) struct Served {
    pub linked: String,
    pub live: Vec<LiveGeneration>,
    pub changed: bool,
}

pub(super) async fn serve(
    env: &Environment,
    ctx: &Context,
    items: &[Deliverable],
    deployer: &mut DeployerRead,
) -> Result<Served> {
    let target_ns = spec::target_namespace(&env.spec.target.namespace)?;
    let (_, writer) = target::open_target(env, ctx, target_ns).await?;
    let secrets: Api<Secret> = Api::namespaced(writer.client.clone(), target_ns);
    let policy = env
        .spec
        .delivery
        .as_ref()
        .and_then(|d| d.emergency)
        .unwrap_or_default();
    let mut live = Vec::new();
    let mut present = Vec::new();
    let mut changed = false;
    for d in items {
        let name = pull_secret_name(&d.name);
        let found = read(env, &writer, &secrets, target_ns, &name).await?;
        let wanted = Wanted {
            generation: d.stored.generation,
            robot: d.stored.credentials.username.clone(),
        };
        let mut generation = found.as_ref().and_then(|l| l.generation);
        if gitops_target(&wanted, found.as_ref(), policy) == GitOpsTarget::ApplyNow {
            workspace::apply_secret(&secrets, &name, target::manifest(env, ctx, d))
                .await
                .map_err(|e| writer.refused(target_ns, e))?;
            ctx.metrics.kube_writes.inc();
            changed = true;
            generation = Some(d.stored.generation);
            let note = format!(
                "emergency rotation of {}: the live token was revoked, so generation {} was applied directly instead of waiting for the GitOps engine (spec.delivery.emergency: Direct)",
                d.name, d.stored.generation
            );
            ctx.notice(&env.object_ref(&()), "EmergencyApplied", "Deliver", note)
                .await;
        }
        if generation.is_some() {
            present.push(name.clone());
        }
        live.push(LiveGeneration {
            component: d.name.clone(),
            generation,
            desired: d.stored.generation,
        });
    }
    let (linked, relinked) = link_present(env, ctx, &writer, target_ns, &present, deployer).await?;
    Ok(Served {
        linked,
        live,
        changed: changed || relinked,
    })
}

/// The target Secret `name` as this Environment's, read as the delivery
/// identity; one without this Environment's labels is not ours to count.
async fn read(
    env: &Environment,
    writer: &Writer,
    secrets: &Api<Secret>,
    target_ns: &str,
    name: &str,
) -> Result<Option<Live>> {
    let found = secrets
        .get_opt(name)
        .await
        .map_err(|e| writer.refused(target_ns, e.into()))?;
    let Some(s) = found else {
        return Ok(None);
    };
    let ours = holder(
        Some(s.labels()),
        &env.namespace().unwrap_or_default(),
        &env.name_any(),
    );
    if ours != Holder::This {
        return Ok(None);
    }
    let robot = workspace::payload_of(&s)
        .and_then(|p| RobotCredentials::from_docker_config_json(p.expose_secret()))
        .map(|c| c.username);
    Ok(Some(Live {
        generation: generation_of(s.metadata.annotations.as_ref()),
        robot,
    }))
}

/// Link the Secrets the target holds (nothing before the engine applies
/// them: a reviewed change reaches the target only through the engine),
/// and unlink those of ours it no longer holds.
async fn link_present(
    env: &Environment,
    ctx: &Context,
    writer: &Writer,
    target_ns: &str,
    present: &[String],
    deployer: &mut DeployerRead,
) -> Result<(String, bool)> {
    let desired: Vec<DesiredSecret> = present
        .iter()
        .map(|name| DesiredSecret {
            name: name.clone(),
            component: String::new(),
            generation: 0,
            payload: secrecy::SecretString::from(String::new()),
        })
        .collect();
    // Ours to unlink when no longer present: what the last pass saw (a
    // Component deleted since, a Secret the engine pruned).
    let before = env.status.iter().flat_map(|s| &s.live);
    let ours: std::collections::BTreeSet<String> = present
        .iter()
        .cloned()
        .chain(before.map(|l| pull_secret_name(&l.component)))
        .collect();
    let observed: Vec<ObservedSecret> = ours
        .iter()
        .map(|name| ObservedSecret {
            name: name.clone(),
            generation: None,
            payload: None,
            labels_intact: true,
        })
        .collect();
    let client = &writer.client;
    link::link_service_account(env, ctx, client, target_ns, &desired, &observed, deployer)
        .await
        .map_err(|e| writer.refused(target_ns, e))
}
