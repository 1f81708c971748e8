//! Deleting an Environment: our Secrets and links leave the target, the
//! folders written for it leave the side repository. An unreachable target is retried
//! until the cleanup timeout, then reported and let go.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::{Api, ListParams};
use kube::runtime::controller::Action;
use kube::{Client, Resource, ResourceExt};

use super::folder::{self, Me};
use super::link::{Missing, set_entries};
use super::side_repo;
use super::target::target_clients;
use crate::api::Environment;
use crate::controller::acting::Writer;
use crate::controller::context::Context;
use crate::controller::error::Result;
use crate::controller::pass;
use crate::controller::workspace;
use crate::gitops::PassPlan;
use crate::plan::CommitMessage;
use crate::vocabulary::{SERVICE_ACCOUNT_DEFAULT, SERVICE_ACCOUNT_DEPLOYER, target_selector};

pub(super) async fn run(env: &Environment, ctx: &Context) -> Result<Action> {
    // Going away: its remote target is watched no more.
    crate::controller::remote_watch::forget(ctx, env);
    ctx.forget_targets(&env.uid().unwrap_or_default());
    ctx.unchanged_folders.forget(&env.uid().unwrap_or_default());
    if let Err(e) = clean_target(env, ctx).await {
        if !pass::cleanup_overdue(env, ctx) {
            return Err(e);
        }
        let note = format!(
            "could not remove the pull Secrets from the target ({e}); gave up after {:?}: remove Secrets labelled {} there by hand",
            ctx.config.cleanup_timeout,
            selector(env)
        );
        ctx.warn(&env.object_ref(&()), "CleanupIncomplete", "Cleanup", note)
            .await;
    }
    if ctx.config.side_repo.is_some() {
        remove_folders(env, ctx).await?;
    }
    Ok(Action::await_change())
}

/// Remove the folders written for this Environment. Only those: a folder
/// whose owner file names another Environment (it claimed the folder since)
/// is theirs, and so is another's folder nested in ours; and nothing
/// outside `environments/`, whatever the spec or status says.
async fn remove_folders(env: &Environment, ctx: &Context) -> Result<()> {
    let candidates = folder::given_up(env, None, ctx.config.side_repo_scope);
    let me = Me::of(env);
    let message = CommitMessage {
        summary: format!("quayside: remove environment {}", env.name_any()),
        body: format!(
            "Environment {}/{} was deleted; its folder is removed.",
            env.namespace().unwrap_or_default(),
            env.name_any()
        ),
        components: Vec::new(),
        environments: vec![env.name_any()],
        generation: None,
    };
    side_repo::with_side_repo(ctx, move |side| {
        Ok(PassPlan {
            removed_files: folder::removals(
                side,
                &folder::with_owned(side, &candidates, None, &me),
                None,
                &me,
            ),
            message,
            ..Default::default()
        })
    })
    .await?;
    Ok(())
}

fn selector(env: &Environment) -> String {
    target_selector(&env.namespace().unwrap_or_default(), &env.name_any())
}

/// Unlink our Secrets from every account they may be on, then delete them.
async fn clean_target(env: &Environment, ctx: &Context) -> Result<()> {
    let target_ns = env.spec.target.namespace.trim();
    if target_ns.is_empty() {
        return Ok(());
    }
    let (client, writer) = target_clients(env, ctx).await?;
    unlink_and_delete(env, ctx, client, &writer, target_ns)
        .await
        .map_err(|e| writer.refused(target_ns, e))
}

/// Read as `client`, write as `writer`.
async fn unlink_and_delete(
    env: &Environment,
    ctx: &Context,
    client: Client,
    writer: &Writer,
    target_ns: &str,
) -> Result<()> {
    let ours: BTreeSet<String> = Api::<Secret>::namespaced(client, target_ns)
        .list(&ListParams::default().labels(&selector(env)))
        .await?
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    let sas: Api<ServiceAccount> = Api::namespaced(writer.client.clone(), target_ns);
    let secrets: Api<Secret> = Api::namespaced(writer.client.clone(), target_ns);
    let mut accounts: BTreeSet<String> = [SERVICE_ACCOUNT_DEFAULT, SERVICE_ACCOUNT_DEPLOYER]
        .map(String::from)
        .into();
    accounts.extend(env.spec.service_account.clone());
    accounts.extend(
        env.status
            .as_ref()
            .and_then(|s| s.linked_service_account.clone()),
    );
    for sa in accounts {
        set_entries(&sas, &sa, &BTreeSet::new(), &ours, ctx, Missing::Fine, None).await?;
    }
    for name in ours {
        if workspace::delete_secret(&secrets, &name).await? {
            ctx.metrics.kube_writes.inc();
        }
    }
    Ok(())
}
