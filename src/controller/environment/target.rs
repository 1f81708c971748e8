//! The deliver step of an Environment pass: the pull Secrets in the target
//! namespace as `plan::target` decides, then the ServiceAccount link.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};

use super::deliverables::Deliverable;
use super::link::{self, DeployerRead};
use crate::api::Environment;
use crate::controller::acting::Writer;
use crate::controller::context::Context;
use crate::controller::error::{Error, Result};
use crate::controller::remote_watch;
use crate::controller::targets::{self, TargetClusterError};
use crate::controller::workspace;
use crate::plan::remote_watch::ClusterKey;
use crate::plan::target::{self, Holder};
use crate::plan::{DesiredSecret, ObservedSecret, SpecError, plan_target_secrets, spec};
use crate::vocabulary::{
    LABEL_SHARD, generation_of, label_value, name_annotations, pull_secret_name, target_labels,
    target_selector,
};

/// What delivery did.
pub(super) struct Delivered {
    pub linked: String,
    pub changed: bool,
}

pub(super) async fn deliver(
    env: &Environment,
    ctx: &Context,
    items: &[Deliverable],
    deployer: &mut DeployerRead,
) -> Result<Delivered> {
    let target_ns = spec::target_namespace(&env.spec.target.namespace)
        .inspect_err(|_| remote_watch::forget(ctx, env))?;
    let (client, writer) = open_target(env, ctx, target_ns).await?;
    let target = Target {
        ns: target_ns,
        client,
        writer: &writer,
    };
    write_as(target, env, ctx, items, deployer).await
}

/// The target namespace and the clients to read and write it with.
struct Target<'a> {
    ns: &'a str,
    client: Client,
    writer: &'a Writer,
}

/// Deliver, writing as `writer`; its refusal names the grant to ask for.
async fn write_as(
    target: Target<'_>,
    env: &Environment,
    ctx: &Context,
    items: &[Deliverable],
    deployer: &mut DeployerRead,
) -> Result<Delivered> {
    let Target {
        ns: target_ns,
        client,
        writer,
    } = target;
    let secrets = TargetSecrets {
        read: Api::namespaced(client, target_ns),
        write: Api::namespaced(writer.client.clone(), target_ns),
    };
    let desired: Vec<DesiredSecret> = items
        .iter()
        .map(|d| DesiredSecret {
            name: pull_secret_name(&d.name),
            component: d.name.clone(),
            generation: d.stored.generation,
            payload: d.stored.credentials.docker_config_json(),
        })
        .collect();
    let observed = observe_secrets(env, ctx, &secrets.read).await?;
    let (mut changed, refused) = apply_secrets(env, ctx, &secrets, items, &desired, &observed)
        .await
        .map_err(|e| writer.refused(target_ns, e))?;
    // A name held by someone else is not linked either: that Secret is theirs.
    let desired: Vec<DesiredSecret> = desired
        .into_iter()
        .filter(|d| !refused.iter().any(|r| r.name() == Some(d.name.as_str())))
        .collect();
    let (linked, relinked) = link::link_service_account(
        env,
        ctx,
        &writer.client,
        target_ns,
        &desired,
        &observed,
        deployer,
    )
    .await
    .map_err(|e| writer.refused(target_ns, e))?;
    changed |= relinked;
    if let Some(first) = refused.into_iter().next() {
        return Err(first.into());
    }
    Ok(Delivered { linked, changed })
}

/// The target namespace's Secrets: read as the controller (or the remote
/// kubeconfig's user), written as the delivery writer.
struct TargetSecrets {
    read: Api<Secret>,
    write: Api<Secret>,
}

/// The clients of an Environment's target: one to read with, and the
/// writer. In this cluster writes act as the workspace's delivery
/// ServiceAccount; in another, the tenant's kubeconfig is the authority.
pub(super) async fn target_clients(env: &Environment, ctx: &Context) -> Result<(Client, Writer)> {
    let (client, writer, _) = keyed_target_clients(env, ctx).await?;
    Ok((client, writer))
}

/// [`target_clients`], and the key of a remote target's identity.
async fn keyed_target_clients(
    env: &Environment,
    ctx: &Context,
) -> Result<(Client, Writer, Option<ClusterKey>)> {
    let (client, cluster) = ctx.targets.keyed(&ctx.client, env).await?;
    let writer = match env.spec.target.cluster_credentials_secret {
        Some(_) => Writer::direct(client.clone()),
        None => ctx.writer(
            &env.namespace().unwrap_or_default(),
            env.spec.target.delivery_service_account.as_deref(),
        )?,
    };
    Ok((client, writer, cluster))
}

/// The pull Secret of `d` for this Environment's target, as the
/// controller applies it (the sealed one in git renders the same object).
/// With `--shards` it also carries the workspace's shard label (the
/// sealed one does not: git's content must not depend on the shard count).
pub(super) fn manifest(env: &Environment, ctx: &Context, d: &Deliverable) -> Secret {
    let workspace = env.namespace().unwrap_or_default();
    let name = pull_secret_name(&d.name);
    let mut labels = target_labels(&workspace, &env.name_any(), &d.name);
    if let Some(s) = ctx.shards.shard_of(&workspace) {
        labels.insert(LABEL_SHARD.to_string(), s.to_string());
    }
    workspace::manifest(
        &name,
        env.spec.target.namespace.trim(),
        labels,
        name_annotations(Some(&env.name_any()), &d.name),
        &d.stored.credentials,
        d.stored.generation,
    )
}

/// The ServiceAccount the link step will choose, read before a commit so
/// the side repository records the same one; `None` when the target
/// cannot be read now (the commit then uses the last one linked). Read as
/// the delivery identity, like the link itself: what a namespace that did
/// not grant this workspace holds never reaches its folder. The read is
/// kept in `deployer` for the link of the same pass.
pub(super) async fn account_hint(
    env: &Environment,
    ctx: &Context,
    deployer: &mut DeployerRead,
) -> Option<String> {
    let ns = spec::target_namespace(&env.spec.target.namespace).ok()?;
    let (_, writer) = target_clients(env, ctx).await.ok()?;
    let sas = Api::<ServiceAccount>::namespaced(writer.client, ns);
    deployer.choose(env, &sas).await.ok()
}

/// The clients for the target cluster, once it is known the target
/// namespace exists there.
pub(super) async fn open_target(
    env: &Environment,
    ctx: &Context,
    target_ns: &str,
) -> Result<(Client, Writer)> {
    let (client, writer, cluster) = keyed_target_clients(env, ctx)
        .await
        .inspect_err(|e| remote_watch::lost(ctx, env, e))?;
    // Watched from the start, reachable or not: the watch backs off on its own.
    remote_watch::follow(ctx, env, target_ns, &client, cluster).await;
    // A namespace in this cluster that holds our Secrets exists: the watch
    // would have seen them go with it. So a heartbeat asks nothing here.
    if env.spec.target.cluster_credentials_secret.is_none()
        && ctx.stores().await?.target_secrets.holds_any(target_ns)
    {
        return Ok((client, writer));
    }
    match Api::<Namespace>::all(client.clone())
        .get_opt(target_ns)
        .await
    {
        Ok(Some(_)) => Ok((client, writer)),
        Ok(None) => Err(SpecError::TargetNamespaceMissing(target_ns.to_string()).into()),
        // A remote cluster that does not answer at all is a problem of the
        // kubeconfig or that cluster, not of our Kubernetes API: say so.
        Err(e) if !matches!(e, kube::Error::Api(_)) => {
            match env.spec.target.cluster_credentials_secret.as_deref() {
                Some(secret) => Err(TargetClusterError::Unreachable {
                    secret: secret.to_string(),
                    detail: targets::bounded(&e.to_string()),
                }
                .into()),
                None => Err(e.into()),
            }
        }
        Err(e) => Err(Error::from(e)),
    }
}

/// The Secrets of this Environment in the target namespace, by label. In
/// this cluster, listed only when the watch of our target Secrets shows a
/// change since the last listing (a heartbeat lists nothing).
async fn observe_secrets(
    env: &Environment,
    ctx: &Context,
    secrets: &Api<Secret>,
) -> Result<Vec<ObservedSecret>> {
    let versions = match env.spec.target.cluster_credentials_secret {
        Some(_) => None,
        None => Some(watched_versions(env, ctx).await?),
    };
    let uid = env.uid().unwrap_or_default();
    let workspace = env.namespace().unwrap_or_default();
    if let Some(v) = &versions
        && let Some(observed) = ctx.targets_seen(&uid, v)
    {
        return Ok(observed);
    }
    let selector = target_selector(&workspace, &env.name_any());
    let list = secrets
        .list(&ListParams::default().labels(&selector))
        .await?;
    let observed: Vec<ObservedSecret> = list
        .items
        .iter()
        .map(|s| ObservedSecret {
            name: s.name_any(),
            generation: generation_of(s.metadata.annotations.as_ref()),
            payload: workspace::payload_of(s),
            // One applied before `--shards` is applied again with its
            // shard label, so the watch sees it from then on.
            labels_intact: ctx
                .shards
                .label_to_write(&workspace, s.labels().get(LABEL_SHARD).map(String::as_str))
                .is_none(),
        })
        .collect();
    if versions.is_some() {
        let listed = list
            .items
            .iter()
            .map(|s| (s.name_any(), s.resource_version().unwrap_or_default()))
            .collect();
        ctx.remember_targets(&uid, listed, observed.clone());
    }
    Ok(observed)
}

/// Name → resourceVersion of this Environment's Secrets in its target
/// namespace (this cluster), as the watch last saw them.
async fn watched_versions(env: &Environment, ctx: &Context) -> Result<BTreeMap<String, String>> {
    let workspace = env.namespace().unwrap_or_default();
    let name = label_value(&env.name_any());
    Ok(ctx
        .stores()
        .await?
        .target_secrets
        .in_namespace(env.spec.target.namespace.trim())
        .iter()
        .filter(|s| {
            s.workspace.as_ref() == Some(&workspace) && s.environment_label.as_ref() == Some(&name)
        })
        .map(|s| (s.name_any(), s.resource_version().unwrap_or_default()))
        .collect())
}

/// Apply what is missing or stale, delete what no Component wants. A
/// missing name may be held by a Secret without our labels for this
/// Environment: it is applied only when nobody else holds it (or its
/// quayside owner is gone or younger); the refusals are returned.
async fn apply_secrets(
    env: &Environment,
    ctx: &Context,
    secrets: &TargetSecrets,
    items: &[Deliverable],
    desired: &[DesiredSecret],
    observed: &[ObservedSecret],
) -> Result<(bool, Vec<SpecError>)> {
    let plan = plan_target_secrets(desired, observed);
    let mut refused = Vec::new();
    let mut written = Vec::new();
    for d in items
        .iter()
        .filter(|d| plan.apply.contains(&pull_secret_name(&d.name)))
    {
        let name = pull_secret_name(&d.name);
        let known = observed.iter().any(|o| o.name == name);
        if !known && let Some(taken) = taken(env, ctx, &secrets.read, &name).await? {
            refused.push(taken);
            continue;
        }
        let rv =
            workspace::apply_secret_versioned(&secrets.write, &name, manifest(env, ctx, d)).await?;
        ctx.metrics.kube_writes.inc();
        if let (Some(v), None) = (&rv, &env.spec.target.cluster_credentials_secret) {
            ctx.stores().await?.note_own_target_write(
                env.spec.target.namespace.trim(),
                &name,
                v.clone(),
            );
        }
        let held = ObservedSecret {
            name,
            generation: Some(d.stored.generation),
            payload: Some(d.stored.credentials.docker_config_json()),
            labels_intact: true,
        };
        written.push((rv, held));
    }
    let mut deleted = Vec::new();
    for name in &plan.delete {
        if workspace::delete_secret(&secrets.write, name).await? {
            ctx.metrics.kube_writes.inc();
            deleted.push(name.clone());
        }
    }
    let changed = !written.is_empty() || !deleted.is_empty();
    let written = written
        .into_iter()
        .filter_map(|(rv, held)| Some((rv?, held)))
        .collect();
    ctx.note_targets_written(&env.uid().unwrap_or_default(), written, &deleted);
    Ok((changed, refused))
}

/// Why the Secret `name` in the target namespace may not be written by
/// this Environment, if it may not. Two Environments that want one name
/// are settled by age: the older one keeps it.
async fn taken(
    env: &Environment,
    ctx: &Context,
    secrets: &Api<Secret>,
    name: &str,
) -> Result<Option<SpecError>> {
    let found = secrets.get_metadata_opt(name).await?;
    let workspace = env.namespace().unwrap_or_default();
    let holder = target::holder(
        found.as_ref().map(|s| s.labels()),
        &workspace,
        &env.name_any(),
    );
    let held_by = match holder {
        Holder::Nobody | Holder::This => return Ok(None),
        Holder::Foreign => "was not created by quayside".to_string(),
        Holder::OtherEnvironment {
            workspace: ws,
            name: other,
        } => {
            let owner = Api::<Environment>::namespaced(ctx.client.clone(), &ws)
                .get_opt(&other)
                .await?
                .filter(|o| o.metadata.deletion_timestamp.is_none());
            match owner {
                Some(o) if age(&o) < age(env) => {
                    format!("belongs to Environment {ws}/{other}, which is older")
                }
                // Its owner is gone or younger: this one takes it.
                _ => return Ok(None),
            }
        }
    };
    Ok(Some(SpecError::TargetSecretTaken {
        name: name.to_string(),
        namespace: env.spec.target.namespace.trim().to_string(),
        holder: held_by,
    }))
}

/// Creation time, then namespace and name: a total order, older first.
fn age(e: &Environment) -> (Option<k8s_openapi::jiff::Timestamp>, String, String) {
    (
        e.metadata.creation_timestamp.as_ref().map(|t| t.0),
        e.namespace().unwrap_or_default(),
        e.name_any(),
    )
}
