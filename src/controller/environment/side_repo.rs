//! The commit step of an Environment pass: render and seal the folder,
//! and commit it to the side repository with a message that names what
//! changed. Folders that overlap another Environment's are refused.

use std::cell::RefCell;
use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use super::deliverables::Deliverable;
use crate::api::Environment;
use crate::controller::context::Context;
use crate::controller::error::{Error, Result};
use crate::gitops::{PassPlan, SideRepo};
use crate::plan::commit::{
    EnvironmentRef, RenderedSecret, component_changes, environment_commit_message,
};
use crate::plan::folders::{FolderClaim, folder_conflict};
use crate::plan::{CommitMessage, SpecError, choose_service_account, spec};
use crate::render::{self, ComponentInput, EnvironmentInput};

pub(super) async fn commit(
    env: &Environment,
    ctx: &Context,
    items: &[Deliverable],
    linked: Option<String>,
    now: Timestamp,
) -> Result<Option<String>> {
    if let Some(conflict) = conflict(env, ctx).await? {
        return Err(SpecError::FolderOverlap(conflict).into());
    }
    let input = EnvironmentInput {
        name: env.name_any(),
        workspace: env.namespace().unwrap_or_default(),
        target_namespace: env.spec.target.namespace.clone(),
        folder: env.spec.side_repo_path(&env.name_any()),
        recipients: spec::recipients(ctx.config.identity.to_recipient(), &env.spec.recipients)?,
        service_account: linked
            .unwrap_or_else(|| choose_service_account(env.spec.service_account.as_deref(), false)),
    };
    let components: Vec<ComponentInput> = items
        .iter()
        .map(|d| ComponentInput {
            name: d.name.clone(),
            image: d.image.clone(),
            generation: d.stored.generation,
            pull: d.stored.credentials.clone(),
        })
        .collect();
    let identity = ctx.config.identity.clone();
    let flavor = ctx.config.flavor;
    with_side_repo(ctx, move |side| {
        // What render reads from the tip, kept for the commit message, so no
        // sealed file is read from git twice in a pass.
        let read = RefCell::new(BTreeMap::new());
        let files = render::render_environment(
            &input,
            &components,
            &|path| {
                let text = side.read(path);
                read.borrow_mut().insert(path.to_string(), text.clone());
                text
            },
            &identity,
            flavor,
            now,
        )?;
        let message = commit_message(&input, &components, &files, side, read.into_inner());
        Ok(PassPlan {
            folders: BTreeMap::from([(input.folder.clone(), files)]),
            removed_folders: Vec::new(),
            message,
        })
    })
    .await
}

/// Run `plan` against the side repository (opened on first use; one pass
/// at a time) off the async runtime, and apply what it returns as one
/// commit. The commit id, when something changed.
pub(super) async fn with_side_repo<F>(ctx: &Context, plan: F) -> Result<Option<String>>
where
    F: FnOnce(&SideRepo) -> Result<PassPlan> + Send + 'static,
{
    let repo = ctx.side_repo.clone();
    let Some(cfg) = ctx.config.side_repo.clone() else {
        return Ok(None);
    };
    let commit = tokio::task::spawn_blocking(move || -> Result<Option<String>> {
        let mut guard = repo.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(SideRepo::open(cfg)?);
        }
        let side = guard.as_mut().expect("opened above");
        let pass = plan(side)?;
        Ok(side.apply(&pass)?.commit)
    })
    .await
    .map_err(|e| Error::Task(e.to_string()))??;
    if commit.is_some() {
        ctx.metrics.git_commits.inc();
    }
    Ok(commit)
}

/// The pass's commit message, naming only the Components whose sealed file
/// this pass adds, changes or removes (compared with the current tip, of
/// which `read` holds what rendering already read).
fn commit_message(
    input: &EnvironmentInput,
    components: &[ComponentInput],
    files: &[render::RenderedFile],
    side: &SideRepo,
    mut read: BTreeMap<String, Option<String>>,
) -> CommitMessage {
    let paths: Vec<String> = components
        .iter()
        .map(|c| render::sealed_secret_path(input, &c.name))
        .collect();
    let rendered: Vec<RenderedSecret<'_>> = components
        .iter()
        .zip(&paths)
        .filter_map(|(c, path)| {
            let f = files.iter().find(|f| &f.path == path)?;
            Some(RenderedSecret {
                component: &c.name,
                path,
                contents: &f.contents,
                generation: c.generation,
            })
        })
        .collect();
    let secrets_dir = format!("{}/secrets", input.folder.trim_matches('/'));
    // Only files of Components no longer rendered are read here.
    let previous: BTreeMap<String, String> = side
        .paths_under(&secrets_dir)
        .into_iter()
        .filter_map(|path| {
            let text = read.remove(&path).unwrap_or_else(|| side.read(&path))?;
            Some((path, text))
        })
        .collect();
    let changes = component_changes(&rendered, &previous);
    environment_commit_message(
        &EnvironmentRef {
            workspace: &input.workspace,
            name: &input.name,
            target_namespace: &input.target_namespace,
        },
        &changes,
    )
}

/// Another live Environment served by this controller (they all share its
/// side repository, across workspaces) that keeps this one from its folder;
/// see `plan::folders`.
pub(super) async fn conflict(env: &Environment, ctx: &Context) -> Result<Option<String>> {
    let api: Api<Environment> = match ctx.config.namespace.as_deref() {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let others: Vec<_> = api
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter(|o| o.uid() != env.uid() && o.metadata.deletion_timestamp.is_none())
        .map(claim)
        .collect();
    Ok(folder_conflict(&claim(env), &others))
}

type Age = (Option<Timestamp>, String, String);

fn claim(e: &Environment) -> FolderClaim<Age> {
    let (ns, name) = (e.namespace().unwrap_or_default(), e.name_any());
    FolderClaim {
        folder: e.spec.side_repo_path(&name),
        age: (
            e.metadata.creation_timestamp.as_ref().map(|t| t.0),
            ns.clone(),
            name.clone(),
        ),
        owner: format!("{ns}/{name}"),
    }
}
