//! Deleting a Component: wait until no Environment holds its pull Secret
//! (their passes drop deleted Components), then delete the robots and the
//! repository (unless kept or shared; only those that are this
//! Component's) and the workspace Secrets.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};

use super::deliveries;
use super::owners::{Claim, refused};
use crate::api::Component;
use crate::controller::context::Context;
use crate::controller::error::{Error, Result};
use crate::controller::pass;
use crate::controller::workspace;
use crate::names::{self, RobotRole};
use crate::plan::ownership::{Decision, Kind};
use crate::vocabulary::{ANNOTATION_KEEP_REPOSITORY, workspace_secret_name};

pub(super) async fn run(component: &Component, ctx: &Context) -> Result<Action> {
    let ns = component.namespace().unwrap_or_default();
    let name = component.name_any();
    ctx.propagation_streak(&component.uid().unwrap_or_default(), false);
    wait_for_environments(component, ctx).await?;
    if let Ok(repo) = names::repository_name(&ns, &name, component.spec.image.as_deref()) {
        let keep = component
            .annotations()
            .get(ANNOTATION_KEEP_REPOSITORY)
            .is_some_and(|v| v == "true");
        // Only a repository of this workspace (or one this Component was
        // provisioned with before that rule) is this Component's to clean;
        // a repository another Component uses keeps its robots too: they
        // are that Component's as much as this one's.
        let provisioned = component.status.as_ref().and_then(|s| s.image.as_deref())
            == Some(ctx.image_of(&repo).as_str());
        let ours = provisioned || names::in_workspace(&repo, &ns);
        if ours && !repository_shared(ctx, component, &repo).await? {
            clean_quay(component, ctx, &repo, provisioned, keep).await?;
        }
    }
    let writer = ctx.writer(&ns, None)?;
    let secrets: Api<Secret> = Api::namespaced(writer.client.clone(), &ns);
    for role in [RobotRole::Push, RobotRole::Pull] {
        let deleted = workspace::delete_secret(&secrets, &workspace_secret_name(&name, role))
            .await
            .map_err(|e| writer.refused(&ns, e))?;
        if deleted {
            ctx.metrics.kube_writes.inc();
        }
        let key = format!("{ns}/{}", workspace_secret_name(&name, role));
        ctx.note_secret_version(key, None);
    }
    ctx.metrics.stragglers(&ns, &name, 0);
    ctx.forget(&component.uid().unwrap_or_default());
    Ok(Action::await_change())
}

/// Wait (by failing the pass, which keeps the finalizer) until no
/// Environment holds the pull Secret; after the cleanup timeout, report
/// the ones left and go on.
async fn wait_for_environments(component: &Component, ctx: &Context) -> Result<()> {
    let still: Vec<String> = deliveries::observe(ctx, component)
        .await?
        .into_iter()
        .filter(|(_, g)| g.is_some())
        .map(|(d, _)| d.name)
        .collect();
    if still.is_empty() {
        return Ok(());
    }
    if !pass::cleanup_overdue(component, ctx) {
        return Err(Error::CleanupPending {
            environments: still,
        });
    }
    let note = format!(
        "gave up waiting for Environment(s) {} to drop the pull Secret after {:?}; remove it there by hand",
        still.join(", "),
        ctx.config.cleanup_timeout
    );
    ctx.warn(
        &component.object_ref(&()),
        "CleanupIncomplete",
        "Cleanup",
        note,
    )
    .await;
    Ok(())
}

/// Delete both slots' robots — even with a kept repository, so no
/// credential outlives the Component — and, unless kept, the repository:
/// each only when it is this Component's. What is not is left and named
/// in a Warning event; the deletion goes on.
async fn clean_quay(
    component: &Component,
    ctx: &Context,
    repo: &str,
    provisioned: bool,
    keep: bool,
) -> Result<()> {
    let (ns, name) = (
        component.namespace().unwrap_or_default(),
        component.name_any(),
    );
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
    let push = workspace::read(&secrets, &name, RobotRole::Push).await?;
    let pull = workspace::read(&secrets, &name, RobotRole::Pull).await?;
    let uid = component.uid().unwrap_or_default();
    let claim = Claim {
        uid: &uid,
        component: format!("{ns}/{name}"),
        status_names_repository: provisioned,
        logins: [&push, &pull]
            .into_iter()
            .flatten()
            .map(|s| &s.credentials)
            .collect(),
    };
    // Decided before the robots go: a repository from before owner
    // records is proven ours by the tokens of its robots.
    let repository = match ctx.quay.get_repository(repo).await? {
        Some(existing) if !keep => Some(claim.repository(&ctx.quay, repo, &existing).await?),
        _ => None,
    };
    let mut left = Vec::new();
    for role in [RobotRole::Push, RobotRole::Pull] {
        for slot in [0, 1] {
            let short = names::robot_short_name(repo, role, slot);
            left.extend(claim.delete_robot(ctx, &short).await?);
        }
    }
    match repository {
        Some(Decision::Adopt | Decision::AdoptAndRecord) => {
            ctx.quay.delete_repository(repo).await?
        }
        Some(Decision::Refuse(r)) => left.push(refused(Kind::Repository, repo, r)),
        None => {}
    }
    let oref = component.object_ref(&());
    for e in left {
        ctx.warn(&oref, e.reason(), "Cleanup", e.to_string()).await;
    }
    Ok(())
}

/// Another live Component (in any workspace) resolves to the same repository.
async fn repository_shared(ctx: &Context, component: &Component, repo: &str) -> Result<bool> {
    let all = Api::<Component>::all(ctx.client.clone())
        .list(&ListParams::default())
        .await?;
    Ok(all.items.iter().any(|c| {
        c.uid() != component.uid()
            && c.metadata.deletion_timestamp.is_none()
            && names::repository_name(
                &c.namespace().unwrap_or_default(),
                &c.name_any(),
                c.spec.image.as_deref(),
            )
            .is_ok_and(|r| r == repo)
    }))
}
