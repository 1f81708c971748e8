//! The commit step of an Environment pass: render and seal the folder,
//! and commit it to the side repository with a message that names what
//! changed. A path outside the rules, or a folder that overlaps an older
//! Environment's, is refused; a folder given up is removed in the same commit.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::deliverables::Deliverable;
use super::folder::{self, Me};
use super::unchanged;
use crate::api::Environment;
use crate::controller::context::Context;
use crate::controller::error::Result;
use crate::gitops::{GitError, PassOutcome, PassPlan, SideRepo};
use crate::plan::commit::{
    EnvironmentRef, RenderedSecret, component_changes, environment_commit_message,
};
use crate::plan::folders::{FolderClaim, folder_conflict};
use crate::plan::side_path::{self, PathScope};
use crate::plan::{CommitMessage, SpecError, choose_service_account, spec};
use crate::render::{self, ComponentInput, EnvironmentInput};

/// What the commit step did: the commit (when something changed) and the
/// folder that now holds the Environment's files, for status.
pub(super) struct Written {
    pub commit: Option<String>,
    pub folder: String,
    /// The open pull request holding changes not on the branch yet
    /// (pull-request mode).
    pub pull_request: Option<String>,
}

pub(super) async fn commit(
    env: &Environment,
    ctx: &Context,
    items: &[Deliverable],
    linked: Option<String>,
    now: Timestamp,
) -> Result<Written> {
    let scope = ctx.config.side_repo_scope;
    // A refused path writes nothing, not even a removal of the old folder.
    let target = folder::resolve(env, scope)?;
    let others = others(env, ctx).await?;
    if let Some(conflict) = conflict(env, &target, &others, scope) {
        return Err(SpecError::FolderOverlap(conflict).into());
    }
    let live: BTreeMap<String, String> = others
        .iter()
        .map(|o| (o.uid().unwrap_or_default(), owner_name(o)))
        .collect();
    let given_up = folder::given_up(env, Some(&target), scope);
    let me = Me::of(env);
    let (input, components) = render_inputs(env, ctx, items, linked, &target)?;
    let identity = ctx.config.identity.clone();
    let flavor = ctx.config.flavor;
    // What this pass would render, without the credentials (their
    // generation stands for them): the same inputs over the same folder
    // render the same files, so the folder need not be opened again.
    let direct = !matches!(
        ctx.config.side_repo.as_ref().map(|c| &c.mode),
        Some(crate::gitops::DeliveryMode::PullRequest { .. })
    );
    let check = unchanged::Check::new(
        ctx.unchanged_folders.clone(),
        env.uid().unwrap_or_default(),
        unchanged::fingerprint(&input, &components, &given_up, flavor),
        direct,
    );
    let in_pass = check.clone();
    let outcome = side_repo_pass(ctx, move |side| {
        if in_pass.skip(side, &input) {
            return Ok(PassPlan::default());
        }
        if let Some(held) = folder::nested_owner(side, &input.folder, &me, &live) {
            return Err(SpecError::FolderOverlap(held).into());
        }
        let reuse = folder::keys_reusable(side, &input.folder, &me);
        // What render reads from the tip, kept for the commit message, so no
        // sealed file is read from git twice in a pass. A folder written for
        // another Environment reads as empty: nothing of it is reused.
        let read = RefCell::new(BTreeMap::new());
        let mut files = render::render_environment(
            &input,
            &components,
            &|path| {
                let text = reuse.then(|| side.read(path)).flatten();
                read.borrow_mut().insert(path.to_string(), text.clone());
                text
            },
            &identity,
            flavor,
            now,
        )?;
        files.push(me.owner_file(&input.folder));
        let given_up = folder::with_owned(side, &given_up, Some(&input.folder), &me);
        let removed_files = folder::removals(side, &given_up, Some(&input.folder), &me);
        let mut message = commit_message(&input, &components, &files, side, read.into_inner());
        if !removed_files.is_empty() {
            moved_message(&mut message, &given_up, &input.folder);
        }
        Ok(PassPlan {
            folders: BTreeMap::from([(input.folder.clone(), files)]),
            removed_folders: Vec::new(),
            removed_files,
            message,
        })
    })
    .await?;
    check.settle(outcome.commit.is_some() || outcome.pull_request.is_some());
    Ok(Written {
        commit: outcome.commit,
        folder: target,
        pull_request: outcome.pull_request,
    })
}

/// What the Environment's folder is rendered from.
fn render_inputs(
    env: &Environment,
    ctx: &Context,
    items: &[Deliverable],
    linked: Option<String>,
    folder: &str,
) -> Result<(EnvironmentInput, Vec<ComponentInput>)> {
    let input = EnvironmentInput {
        name: env.name_any(),
        workspace: env.namespace().unwrap_or_default(),
        target_namespace: env.spec.target.namespace.clone(),
        folder: folder.to_string(),
        recipients: spec::recipients(ctx.config.identity.to_recipient(), &env.spec.recipients)?,
        service_account: linked
            .unwrap_or_else(|| choose_service_account(env.spec.service_account.as_deref(), false)),
    };
    let components = items
        .iter()
        .map(|d| ComponentInput {
            name: d.name.clone(),
            image: d.image.clone(),
            generation: d.stored.generation,
            pull: d.stored.credentials.clone(),
        })
        .collect();
    Ok((input, components))
}

/// A pass that also gives up a folder says so: the summary names the move.
fn moved_message(message: &mut CommitMessage, given_up: &[String], folder: &str) {
    message.summary = format!(
        "quayside: {}: move folder to {folder}",
        message
            .environments
            .first()
            .map(String::as_str)
            .unwrap_or("environment")
    );
    message.body = format!(
        "The folder moved from {} to {folder}; the old one is removed in this commit.\n\n{}",
        given_up.join(", "),
        message.body
    );
}

/// Run `plan` against the side repository (opened on first use; one pass
/// at a time) off the async runtime, and apply what it returns as one
/// commit. The commit id, when something changed.
pub(super) async fn with_side_repo<F>(ctx: &Context, plan: F) -> Result<Option<String>>
where
    F: FnOnce(&SideRepo) -> Result<PassPlan> + Send + 'static,
{
    Ok(side_repo_pass(ctx, plan).await?.commit)
}

/// [`with_side_repo`], with the pull request the pass left open.
async fn side_repo_pass<F>(ctx: &Context, plan: F) -> Result<PassOutcome>
where
    F: FnOnce(&SideRepo) -> Result<PassPlan> + Send + 'static,
{
    let Some(cfg) = ctx.config.side_repo.clone() else {
        return Ok(PassOutcome {
            commit: None,
            head: String::new(),
            pull_request: None,
        });
    };
    let checked = move |side: &SideRepo| {
        let pass = plan(side)?;
        outside_root(&pass)?;
        Ok(pass)
    };
    let outcome = ctx
        .side_repo
        .pass(
            cfg,
            ctx.extra_ca.clone(),
            ctx.metrics.clone(),
            Box::new(checked),
        )
        .await?;
    Ok(outcome)
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

/// The last check before a pass is applied: quayside writes and removes
/// nothing outside `environments/`, whatever a spec or status says.
fn outside_root(pass: &PassPlan) -> Result<()> {
    let paths = pass
        .folders
        .keys()
        .chain(&pass.removed_folders)
        .chain(&pass.removed_files);
    match paths.into_iter().find(|p| !side_path::inside_root(p)) {
        Some(p) => Err(GitError::InvalidPlan(format!(
            "{p:?} is outside {}/, which is all quayside writes",
            side_path::ROOT
        ))
        .into()),
        None => Ok(()),
    }
}

/// Every other live Environment whose folder may overlap this one's: all
/// of those served by this controller (they share its side repository,
/// across workspaces), or — when folders stay inside their workspace's
/// folder — those of the same workspace. Read from the watch.
pub(super) async fn others(env: &Environment, ctx: &Context) -> Result<Vec<Arc<Environment>>> {
    let stores = ctx.stores().await?;
    let candidates = match ctx.config.side_repo_scope {
        PathScope::Workspace => stores
            .environments
            .in_namespace(&env.namespace().unwrap_or_default()),
        PathScope::AnyUnderRoot => stores.environments.store().state(),
    };
    Ok(candidates
        .into_iter()
        .filter(|o| o.uid() != env.uid() && o.metadata.deletion_timestamp.is_none())
        .collect())
}

/// An older Environment whose folder overlaps `folder`; see
/// `plan::folders`. Folders the path rules refuse are never written, so
/// they claim nothing.
fn conflict(
    env: &Environment,
    folder: &str,
    others: &[Arc<Environment>],
    scope: PathScope,
) -> Option<String> {
    let claims: Vec<_> = others
        .iter()
        .filter_map(|o| Some(claim(o, folder::resolve(o, scope).ok()?)))
        .collect();
    folder_conflict(&claim(env, folder.to_string()), &claims)
}

type Age = (Option<Timestamp>, String, String);

fn owner_name(e: &Environment) -> String {
    format!("{}/{}", e.namespace().unwrap_or_default(), e.name_any())
}

fn claim(e: &Environment, folder: String) -> FolderClaim<Age> {
    FolderClaim {
        folder,
        age: (
            e.metadata.creation_timestamp.as_ref().map(|t| t.0),
            e.namespace().unwrap_or_default(),
            e.name_any(),
        ),
        owner: owner_name(e),
    }
}
