//! The Environment reconciler: every Component's pull Secret in the target
//! namespace, linked to the right ServiceAccount, and the same manifests
//! sealed into the Environment's side-repo folder — one commit per pass.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{LocalObjectReference, Namespace, Secret, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::{Client, Resource, ResourceExt};

use super::context::Context;
use super::error::{Error, Result};
use super::{labels, pass, workspace};
use crate::api::{Component, ConditionType, Environment, EnvironmentStatus, set_condition};
use crate::gitops::{CommitMessage, PassPlan};
use crate::plan::commit::{
    EnvironmentRef, RenderedSecret, component_changes, environment_commit_message,
};
use crate::plan::{
    DesiredSecret, ObservedSecret, choose_service_account, plan_link, plan_target_secrets,
};
use crate::render::{self, ComponentInput, EnvironmentInput};
use crate::seal::Recipient;

const CONTROLLER: &str = "environment";
/// Bound on read-modify-write retries of a ServiceAccount on 409 Conflict.
const LINK_ATTEMPTS: u32 = 8;

pub async fn reconcile(env: Arc<Environment>, ctx: Arc<Context>) -> Result<Action> {
    let ns = env.namespace().unwrap_or_default();
    let api: Api<Environment> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, labels::FINALIZER, env, |event| async {
        match event {
            Finalizer::Apply(e) => apply(e, ctx.clone()).await,
            Finalizer::Cleanup(e) => cleanup(e, ctx.clone()).await,
        }
    })
    .await;
    // Failures are reported as events inside the pass, where their cause is known.
    pass::finish(CONTROLLER, result, &ctx, None).await
}

pub fn error_policy(_e: Arc<Environment>, error: &Error, ctx: Arc<Context>) -> Action {
    pass::requeue_after(CONTROLLER, error, &ctx)
}

/// A Component of the workspace with its persisted pull credentials.
struct Deliverable {
    name: String,
    image: String,
    stored: workspace::Stored,
}

/// The pull-Secret name for a Component, and the labels that mark it ours.
fn target_labels(env: &Environment, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            labels::MANAGED_BY.to_string(),
            labels::MANAGED_BY_VALUE.to_string(),
        ),
        (labels::COMPONENT.to_string(), component.to_string()),
        (
            labels::WORKSPACE.to_string(),
            env.namespace().unwrap_or_default(),
        ),
        (labels::ENVIRONMENT.to_string(), env.name_any()),
    ])
}

fn target_selector(env: &Environment) -> String {
    format!(
        "{}={},{}={},{}={}",
        labels::MANAGED_BY,
        labels::MANAGED_BY_VALUE,
        labels::WORKSPACE,
        env.namespace().unwrap_or_default(),
        labels::ENVIRONMENT,
        env.name_any()
    )
}

async fn deliverables(ctx: &Context, workspace_ns: &str) -> Result<Vec<Deliverable>> {
    let components = Api::<Component>::namespaced(ctx.client.clone(), workspace_ns)
        .list(&ListParams::default())
        .await?;
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), workspace_ns)
        .list(&ListParams::default().labels(&format!(
            "{},{}=pull",
            labels::managed_selector(),
            labels::ROLE
        )))
        .await?;
    let mut by_component = BTreeMap::new();
    for s in &secrets.items {
        if let Some(c) = s.labels().get(labels::COMPONENT)
            && let Some(stored) = workspace::parse(s)
        {
            by_component.insert(c.clone(), stored);
        }
    }
    let mut out = Vec::new();
    for c in components.items {
        if c.metadata.deletion_timestamp.is_some() {
            continue; // a deleted Component is pruned from every Environment
        }
        let name = c.name_any();
        if let Some(stored) = by_component.remove(&name) {
            // Derived from the spec, not read from status: the status may
            // not be written yet, and a changing input would re-seal files.
            let image = crate::names::repository_name(workspace_ns, &name, c.spec.image.as_deref())
                .map(|repo| {
                    format!(
                        "{}/{}/{}",
                        ctx.config.registry_host,
                        ctx.quay.organization(),
                        repo
                    )
                })
                .unwrap_or_default();
            out.push(Deliverable {
                image,
                name,
                stored,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// What the pass did, for status.
#[derive(Default)]
struct Outcome {
    changed: bool,
    linked: Option<String>,
    commit: Option<String>,
    applied_problem: Option<(String, String)>,
    committed_problem: Option<(String, String)>,
}

async fn apply(env: Arc<Environment>, ctx: Arc<Context>) -> Result<Action> {
    let now = Timestamp::now();
    let mut out = Outcome::default();
    let workspace_ns = env.namespace().unwrap_or_default();
    let items = deliverables(&ctx, &workspace_ns).await?;

    match deliver_to_target(&env, &ctx, &items, &mut out).await {
        Ok(()) => {}
        Err(e) => {
            out.applied_problem = Some((e.reason().into(), e.to_string()));
            ctx.event(
                &env.object_ref(&()),
                true,
                e.reason(),
                "Deliver",
                e.to_string(),
            )
            .await;
        }
    }
    if ctx.config.side_repo.is_some() {
        match commit_side_repo(&env, &ctx, &items, out.linked.clone(), now).await {
            Ok(commit) => {
                if let Some(c) = commit.clone() {
                    out.changed = true;
                    ctx.event(
                        &env.object_ref(&()),
                        false,
                        "Committed",
                        "Commit",
                        format!("side repository updated at {c}"),
                    )
                    .await;
                }
                out.commit = commit;
            }
            Err(e) => {
                out.committed_problem = Some((e.reason().into(), e.to_string()));
                ctx.event(
                    &env.object_ref(&()),
                    true,
                    e.reason(),
                    "Commit",
                    e.to_string(),
                )
                .await;
            }
        }
    }
    let retry_soon = out.applied_problem.is_some() || out.committed_problem.is_some();
    write_status(&env, &ctx, &out, now).await?;
    if retry_soon {
        // Problems with the target or the side repo are retried with backoff
        // by the error path of the next pass; do not wait for the heartbeat.
        return Ok(Action::requeue(Duration::from_secs(10)));
    }
    Ok(Action::requeue(ctx.config.heartbeat))
}

async fn deliver_to_target(
    env: &Environment,
    ctx: &Context,
    items: &[Deliverable],
    out: &mut Outcome,
) -> Result<()> {
    let target_ns = env.spec.target.namespace.trim();
    if target_ns.is_empty() {
        return Err(Error::InvalidSpec(
            "spec.target.namespace is empty; set it to the namespace workloads run in".into(),
        ));
    }
    // Checked here, not by the API server: a name it cannot route would
    // come back as an opaque Kubernetes error instead of a spec problem.
    let valid_label = target_ns.len() <= 63
        && target_ns
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !target_ns.starts_with('-')
        && !target_ns.ends_with('-');
    if !valid_label {
        return Err(Error::InvalidSpec(format!(
            "spec.target.namespace {target_ns:?} is not a valid namespace name (lower-case letters, digits and '-', at most 63 characters); fix it"
        )));
    }
    let client = ctx.targets.for_environment(&ctx.client, env).await?;
    let lookup = Api::<Namespace>::all(client.clone())
        .get_opt(target_ns)
        .await;
    let found = match lookup {
        Ok(found) => found,
        // A remote cluster that does not answer at all is a problem of the
        // kubeconfig or that cluster, not of our Kubernetes API: say so.
        Err(e) if !matches!(e, kube::Error::Api(_)) => {
            match env.spec.target.cluster_credentials_secret.as_deref() {
                Some(secret) => {
                    return Err(Error::TargetCluster(format!(
                        "the cluster named by the kubeconfig in Secret {secret} is unreachable ({e}); check its server address and that the cluster is up (will retry)"
                    )));
                }
                None => return Err(e.into()),
            }
        }
        Err(e) => return Err(e.into()),
    };
    if found.is_none() {
        return Err(Error::InvalidSpec(format!(
            "the target namespace {target_ns} does not exist; create it or fix spec.target.namespace"
        )));
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), target_ns);

    let desired: Vec<DesiredSecret> = items
        .iter()
        .map(|d| DesiredSecret {
            name: render::pull_secret_name(&d.name),
            component: d.name.clone(),
            generation: d.stored.generation,
            payload: d.stored.credentials.docker_config_json(),
        })
        .collect();
    let observed_list = secrets
        .list(&ListParams::default().labels(&target_selector(env)))
        .await?;
    let observed: Vec<ObservedSecret> = observed_list
        .items
        .iter()
        .map(|s| ObservedSecret {
            name: s.name_any(),
            generation: labels::generation_of(s.metadata.annotations.as_ref()),
            payload: workspace::payload_of(s),
            labels_intact: true,
        })
        .collect();
    // A Secret of ours whose labels were stripped does not show up in the
    // labelled list: look up each missing desired name so it is re-applied.
    let plan = plan_target_secrets(&desired, &observed);
    for name in &plan.apply {
        let d = items
            .iter()
            .find(|d| render::pull_secret_name(&d.name) == *name)
            .expect("planned from items");
        let manifest = workspace::manifest(
            name,
            target_ns,
            target_labels(env, &d.name),
            &d.stored.credentials,
            d.stored.generation,
        );
        workspace::apply_secret(&secrets, name, manifest).await?;
        ctx.metrics.kube_writes.inc();
        out.changed = true;
    }
    for name in &plan.delete {
        match secrets.delete(name, &Default::default()).await {
            Ok(_) => {
                ctx.metrics.kube_writes.inc();
                out.changed = true;
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }

    // Link to the chosen ServiceAccount; unlink from a previous one.
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), target_ns);
    let deployer_exists = sas
        .get_opt(crate::plan::service_account::DEPLOYER)
        .await?
        .is_some();
    let chosen = choose_service_account(env.spec.service_account.as_deref(), deployer_exists);
    let ours: BTreeSet<String> = desired
        .iter()
        .map(|d| d.name.clone())
        .chain(observed.iter().map(|o| o.name.clone()))
        .collect();
    let wanted: BTreeSet<String> = desired.iter().map(|d| d.name.clone()).collect();
    let previous = env
        .status
        .as_ref()
        .and_then(|s| s.linked_service_account.clone());
    if let Some(prev) = previous.filter(|p| *p != chosen) {
        link(&sas, &prev, &BTreeSet::new(), &ours, ctx, out, false).await?;
    }
    link(&sas, &chosen, &wanted, &ours, ctx, out, true).await?;
    out.linked = Some(chosen);
    Ok(())
}

/// Read-modify-write of `imagePullSecrets` with the resourceVersion as a
/// precondition, retried on conflict: our entries change, theirs stay.
async fn link(
    sas: &Api<ServiceAccount>,
    name: &str,
    wanted: &BTreeSet<String>,
    ours: &BTreeSet<String>,
    ctx: &Context,
    out: &mut Outcome,
    must_exist: bool,
) -> Result<()> {
    for _ in 0..LINK_ATTEMPTS {
        let Some(mut sa) = sas.get_opt(name).await? else {
            if must_exist {
                return Err(Error::InvalidSpec(format!(
                    "the ServiceAccount {name} does not exist in the target namespace; create it or fix spec.serviceAccount"
                )));
            }
            return Ok(());
        };
        let existing: Vec<String> = sa
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|r| r.name.clone())
            .collect();
        let Some(new) = plan_link(&existing, wanted, |n| ours.contains(n)) else {
            return Ok(());
        };
        sa.image_pull_secrets = Some(
            new.into_iter()
                .map(|n| LocalObjectReference { name: n })
                .collect(),
        );
        match sas.replace(name, &PostParams::default(), &sa).await {
            Ok(_) => {
                ctx.metrics.kube_writes.inc();
                out.changed = true;
                return Ok(());
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Internal(format!(
        "the ServiceAccount {name} kept changing under us ({LINK_ATTEMPTS} conflicts in a row); will retry"
    )))
}

fn recipients(env: &Environment, ctx: &Context) -> Result<Vec<Recipient>> {
    let mut out = BTreeSet::new();
    out.insert(ctx.config.identity.to_recipient());
    for (i, r) in env.spec.recipients.iter().enumerate() {
        let parsed: Recipient = r.trim().parse().map_err(|_| {
            Error::InvalidSpec(format!(
                "spec.recipients[{i}] is not an age recipient (it must start with age1); fix or remove it"
            ))
        })?;
        out.insert(parsed);
    }
    Ok(out.into_iter().collect())
}

/// How folder `a` relates to folder `b`: `Some(Ordering::Equal)` when they
/// are the same, `Less` when `a` contains `b`, `Greater` when `a` is inside
/// `b`, `None` when they are apart.
fn folder_relation(a: &str, b: &str) -> Option<std::cmp::Ordering> {
    let parts = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    let n = a.len().min(b.len());
    (a[..n] == b[..n]).then(|| a.len().cmp(&b.len()))
}

/// Another live Environment served by this controller (they all share its
/// side repository, across workspaces) that already owns a folder overlapping this one's. A pass
/// rewrites its whole folder and prunes what it does not list, so a second
/// owner — `spec.sideRepo.path` naming another Environment's folder, or a
/// parent such as `environments` — would overwrite or delete theirs.
async fn folder_conflict(env: &Environment, ctx: &Context) -> Result<Option<String>> {
    let folder = env.spec.side_repo_path(&env.name_any());
    let key = |e: &Environment| {
        (
            e.metadata.creation_timestamp.as_ref().map(|t| t.0),
            e.namespace().unwrap_or_default(),
            e.name_any(),
        )
    };
    // The Environments this controller serves share its side repository:
    // those of its watched namespace, or of every namespace.
    let api: Api<Environment> = match ctx.config.namespace.as_deref() {
        Some(ns) => Api::namespaced(ctx.client.clone(), ns),
        None => Api::all(ctx.client.clone()),
    };
    let all = api.list(&ListParams::default()).await?;
    Ok(all
        .items
        .iter()
        .filter(|o| o.uid() != env.uid() && o.metadata.deletion_timestamp.is_none())
        .filter(|o| {
            // A folder holding another Environment's folder can never be
            // written without pruning theirs: it is always refused (so the
            // one inside it is free). The same folder: the older one keeps it.
            match folder_relation(&folder, &o.spec.side_repo_path(&o.name_any())) {
                Some(std::cmp::Ordering::Less) => true,
                Some(std::cmp::Ordering::Equal) => key(o) < key(env),
                _ => false,
            }
        })
        .map(|o| {
            format!(
                "the side-repo folder {folder:?} overlaps the folder {:?} of Environment {}/{}; choose a folder of its own with spec.sideRepo.path (default environments/<name>)",
                o.spec.side_repo_path(&o.name_any()),
                o.namespace().unwrap_or_default(),
                o.name_any()
            )
        })
        .next())
}

async fn commit_side_repo(
    env: &Environment,
    ctx: &Context,
    items: &[Deliverable],
    linked: Option<String>,
    now: Timestamp,
) -> Result<Option<String>> {
    if let Some(conflict) = folder_conflict(env, ctx).await? {
        return Err(Error::InvalidSpec(conflict));
    }
    let input = EnvironmentInput {
        name: env.name_any(),
        workspace: env.namespace().unwrap_or_default(),
        target_namespace: env.spec.target.namespace.clone(),
        folder: env.spec.side_repo_path(&env.name_any()),
        recipients: recipients(env, ctx)?,
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
    let repo = ctx.side_repo.clone();
    let cfg = ctx.config.side_repo.clone().expect("checked by caller");
    let identity = ctx.config.identity.clone();
    let flavor = ctx.config.flavor;
    let result = tokio::task::spawn_blocking(move || -> Result<Option<String>> {
        let mut guard = repo.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(crate::gitops::SideRepo::open(cfg)?);
        }
        let side = guard.as_mut().expect("opened above");
        // What render reads from the tip, kept for the commit message, so no
        // sealed file is read from git twice in a pass.
        let read = std::cell::RefCell::new(BTreeMap::new());
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
        let plan = PassPlan {
            folders: BTreeMap::from([(input.folder.clone(), files)]),
            removed_folders: Vec::new(),
            message,
        };
        let outcome = side.apply(&plan)?;
        Ok(outcome.commit)
    })
    .await
    .map_err(|e| Error::Internal(format!("side-repo task: {e}")))??;
    if result.is_some() {
        ctx.metrics.git_commits.inc();
    }
    Ok(result)
}

/// The pass's commit message, naming only the Components whose sealed file
/// this pass adds, changes or removes (compared with the current tip, of
/// which `read` holds what rendering already read).
fn commit_message(
    input: &EnvironmentInput,
    components: &[ComponentInput],
    files: &[render::RenderedFile],
    side: &crate::gitops::SideRepo,
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

async fn write_status(
    env: &Environment,
    ctx: &Context,
    out: &Outcome,
    now: Timestamp,
) -> Result<()> {
    let old = env.status.clone().unwrap_or_default();
    let mut status = EnvironmentStatus {
        linked_service_account: out.linked.clone().or(old.linked_service_account.clone()),
        last_sync: if out.changed || old.last_sync.is_none() {
            Some(Time(now))
        } else {
            old.last_sync.clone()
        },
        commit: out.commit.clone().or(old.commit.clone()),
        observed_generation: env.metadata.generation,
        conditions: old.conditions.clone(),
    };
    let g = env.metadata.generation;
    let t = Time(now);
    let applied_ok = out.applied_problem.is_none();
    let (reason, message) = out.applied_problem.clone().unwrap_or((
        "Applied".into(),
        format!(
            "pull Secrets applied and linked to ServiceAccount {}",
            out.linked.clone().unwrap_or_default()
        ),
    ));
    set_condition(
        &mut status.conditions,
        ConditionType::Applied,
        applied_ok,
        &reason,
        &message,
        g,
        t.clone(),
    );
    let committed_ok = out.committed_problem.is_none();
    if ctx.config.side_repo.is_some() {
        let (reason, message) = out.committed_problem.clone().unwrap_or((
            "Committed".into(),
            "side-repository folder is up to date".into(),
        ));
        set_condition(
            &mut status.conditions,
            ConditionType::Committed,
            committed_ok,
            &reason,
            &message,
            g,
            t.clone(),
        );
    }
    let ready = applied_ok && committed_ok;
    let (reason, message) = if ready {
        ("Ready".to_string(), String::new())
    } else {
        out.applied_problem
            .clone()
            .or(out.committed_problem.clone())
            .unwrap_or_default()
    };
    set_condition(
        &mut status.conditions,
        ConditionType::Ready,
        ready,
        &reason,
        &message,
        g,
        t,
    );
    if env.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<Environment> =
        Api::namespaced(ctx.client.clone(), &env.namespace().unwrap_or_default());
    api.patch_status(
        &env.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&serde_json::json!({ "status": status })),
    )
    .await?;
    ctx.metrics.kube_writes.inc();
    Ok(())
}

/// Deletion: remove our Secrets and links from the target and the folder
/// from the side repository. An unreachable target is retried until the
/// cleanup timeout, then reported and let go.
async fn cleanup(env: Arc<Environment>, ctx: Arc<Context>) -> Result<Action> {
    let result = cleanup_target(&env, &ctx).await;
    if let Err(e) = result {
        let deleted_at = env
            .metadata
            .deletion_timestamp
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(Timestamp::now);
        let waited = Timestamp::now().duration_since(deleted_at);
        if waited.as_secs() < ctx.config.cleanup_timeout.as_secs() as i64 {
            return Err(e);
        }
        ctx.event(
            &env.object_ref(&()),
            true,
            "CleanupIncomplete",
            "Cleanup",
            format!(
                "could not remove the pull Secrets from the target ({e}); gave up after {:?}: remove Secrets labelled {} there by hand",
                ctx.config.cleanup_timeout,
                target_selector(&env)
            ),
        )
        .await;
    }
    // A folder another Environment owns is theirs: deleting this one must
    // not remove it.
    let owns_folder =
        ctx.config.side_repo.is_some() && folder_conflict(&env, &ctx).await?.is_none();
    if owns_folder {
        let folder = env.spec.side_repo_path(&env.name_any());
        let repo = ctx.side_repo.clone();
        let cfg = ctx.config.side_repo.clone().expect("checked");
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
        let committed = tokio::task::spawn_blocking(move || -> Result<Option<String>> {
            let mut guard = repo.lock().unwrap_or_else(|p| p.into_inner());
            if guard.is_none() {
                *guard = Some(crate::gitops::SideRepo::open(cfg)?);
            }
            let side = guard.as_mut().expect("opened above");
            let plan = PassPlan {
                folders: BTreeMap::new(),
                removed_folders: vec![folder],
                message,
            };
            Ok(side.apply(&plan)?.commit)
        })
        .await
        .map_err(|e| Error::Internal(format!("side-repo task: {e}")))??;
        if committed.is_some() {
            ctx.metrics.git_commits.inc();
        }
    }
    Ok(Action::await_change())
}

async fn cleanup_target(env: &Environment, ctx: &Context) -> Result<()> {
    let client: Client = ctx.targets.for_environment(&ctx.client, env).await?;
    let target_ns = env.spec.target.namespace.trim();
    if target_ns.is_empty() {
        return Ok(());
    }
    let secrets: Api<Secret> = Api::namespaced(client.clone(), target_ns);
    let ours: BTreeSet<String> = secrets
        .list(&ListParams::default().labels(&target_selector(env)))
        .await?
        .items
        .iter()
        .map(|s| s.name_any())
        .collect();
    let sas: Api<ServiceAccount> = Api::namespaced(client, target_ns);
    let mut out = Outcome::default();
    let mut accounts: BTreeSet<String> = ["default", "deployer"].map(String::from).into();
    if let Some(s) = env.spec.service_account.clone() {
        accounts.insert(s);
    }
    if let Some(s) = env
        .status
        .as_ref()
        .and_then(|s| s.linked_service_account.clone())
    {
        accounts.insert(s);
    }
    for sa in accounts {
        link(&sas, &sa, &BTreeSet::new(), &ours, ctx, &mut out, false).await?;
    }
    for name in ours {
        match secrets.delete(&name, &Default::default()).await {
            Ok(_) => {
                ctx.metrics.kube_writes.inc();
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
