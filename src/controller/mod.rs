//! The reconcilers (kube-runtime): thin passes that observe, ask the pure
//! core (`plan`), execute its steps and write the status it derives.
//! Wiring of watches lives here; each reconciler is a module of steps.

pub mod acting;
pub mod backoff;
pub mod component;
pub mod config;
pub mod context;
pub mod crash;
pub mod environment;
pub mod error;
pub mod kubeconfig;
pub mod metrics;
pub mod pass;
pub mod remote_watch;
pub mod status;
pub mod targets;
pub mod workspace;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::Api;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Client, ResourceExt};

use crate::api::{Component, Environment};
use crate::names::RobotRole;
use crate::vocabulary::{
    LABEL_COMPONENT, LABEL_ENVIRONMENT, LABEL_WORKSPACE, managed_selector, named_by, role_of,
};
pub use config::{Config, DeliveryIdentity};
pub use context::Context;
pub use error::Error;
pub use metrics::Metrics;

/// Set once the API answers for both kinds, on the leader and on a standby
/// alike (for `/readyz`).
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    fn set(&self) {
        self.0.store(true, Ordering::Relaxed)
    }
}

/// Run both controllers until `shutdown` resolves; in-flight passes finish
/// (for at most [`SHUTDOWN_GRACE`]). Readiness is reported by the caller
/// ([`report_readiness`]), leader or not.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let client = ctx.client.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    let scope = ctx.config.namespace.clone();
    // Bounded work: at most this many passes of each kind at once.
    let bounded_passes =
        kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency);
    let components =
        component_controller(client.clone(), scope.as_deref()).with_config(bounded_passes.clone());
    let component_store = components.store();
    let components = components
        .reconcile_all_on(ctx.shards.gained())
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(component::reconcile, component::error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "component reconcile");
            }
        });
    let environments = environment_controller(client.clone(), scope.as_deref())
        .reconcile_on(ctx.remote_watches.triggers())
        .with_config(bounded_passes);
    let environment_store = environments.store();
    let environments = environments
        .reconcile_all_on(ctx.shards.gained())
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(
            environment::reconcile,
            environment::error_policy,
            ctx.clone(),
        )
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "environment reconcile");
            }
        });
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    futures::join!(
        bounded(components, component_store, stopped(stop_rx.clone())),
        bounded(environments, environment_store, stopped(stop_rx)),
    );
    ctx.remote_watches.stop_all();
}

/// Mark `readiness` once the API answers for both kinds (for `/readyz`).
pub async fn report_readiness(client: Client, readiness: Readiness) {
    loop {
        let a = Api::<Component>::all(client.clone())
            .list_metadata(&kube::api::ListParams::default().limit(1))
            .await;
        let b = Api::<Environment>::all(client.clone())
            .list_metadata(&kube::api::ListParams::default().limit(1))
            .await;
        if a.is_ok() && b.is_ok() {
            readiness.set();
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// How long in-flight passes may run after shutdown was asked for. Under
/// the 30 s a Pod gets by default; a pass cut short is safe (every step is
/// idempotent and resumes on the next start).
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(20);

/// Run one controller until it drains after `stop`, but never longer than
/// [`SHUTDOWN_GRACE`] past it. kube-runtime's graceful shutdown waits for
/// the object cache before it runs anything, and a cache that had not
/// finished its first list when the stop came never becomes ready: without
/// this bound that shutdown would wait forever. Nothing ran in that case,
/// so it stops at once.
async fn bounded<K: kube::Resource + Clone + 'static>(
    run: impl Future<Output = ()>,
    store: kube::runtime::reflector::Store<K>,
    stop: impl Future<Output = ()>,
) where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    use futures::FutureExt;
    let deadline = async {
        stop.await;
        if store.wait_until_ready().now_or_never().is_none() {
            tracing::debug!("stopping before the object cache was ready");
            return;
        }
        tokio::time::sleep(SHUTDOWN_GRACE).await;
        tracing::warn!(
            grace = ?SHUTDOWN_GRACE,
            "passes still running at shutdown were cut short; they resume on the next start"
        );
    };
    tokio::select! {
        () = run => {}
        () = deadline => {}
    }
}

/// All objects of a kind, or those of one namespace.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

fn component_controller(client: Client, namespace: Option<&str>) -> Controller<Component> {
    let ctrl = Controller::new(
        scoped::<Component>(&client, namespace),
        watcher::Config::default(),
    );
    let store = ctrl.store();
    ctrl.trigger_backoff(backoff::WatchBackoff::for_watches())
        // Workspace Secrets we own → their Component.
        .watches(
            Api::<Secret>::all(client.clone()),
            watcher::Config::default().labels(&managed_selector()),
            move |s: Secret| {
                let labels = s.labels();
                let component = named_by(LABEL_COMPONENT, labels, s.annotations());
                // Target Secrets carry the workspace label; workspace ones
                // live in the workspace itself.
                let ns = labels
                    .get(LABEL_WORKSPACE)
                    .cloned()
                    .or_else(|| s.namespace());
                component
                    .zip(ns)
                    .map(|(c, ns)| ObjectRef::<Component>::new(&c).within(&ns))
            },
        )
        // A new or changed Environment changes every Component's delivery status.
        .watches(
            scoped::<Environment>(&client, namespace),
            watcher::Config::default(),
            move |e: Environment| {
                let ns = e.namespace().unwrap_or_default();
                store
                    .state()
                    .into_iter()
                    .filter(|c| c.namespace().as_deref() == Some(ns.as_str()))
                    .map(|c| ObjectRef::from_obj(&*c))
                    .collect::<Vec<_>>()
            },
        )
}

fn environment_controller(client: Client, namespace: Option<&str>) -> Controller<Environment> {
    let ctrl = Controller::new(
        scoped::<Environment>(&client, namespace),
        watcher::Config::default(),
    );
    let by_workspace = ctrl.store();
    let by_workspace2 = ctrl.store();
    let by_target = ctrl.store();
    let in_workspace = move |store: &kube::runtime::reflector::Store<Environment>, ns: &str| {
        store
            .state()
            .into_iter()
            .filter(|e| e.namespace().as_deref() == Some(ns))
            .map(|e| ObjectRef::from_obj(&*e))
            .collect::<Vec<_>>()
    };
    ctrl.trigger_backoff(backoff::WatchBackoff::for_watches())
        // Any Component change (new, rotated, deleted) → every Environment of its workspace.
        .watches(
            scoped::<Component>(&client, namespace),
            watcher::Config::default(),
            move |c: Component| in_workspace(&by_workspace, &c.namespace().unwrap_or_default()),
        )
        // Our Secrets: a target Secret deleted or tampered with → its
        // Environment; a workspace Secret rewritten → its workspace.
        .watches(
            Api::<Secret>::all(client.clone()),
            watcher::Config::default().labels(&managed_selector()),
            move |s: Secret| {
                let l = s.labels();
                let env = named_by(LABEL_ENVIRONMENT, l, s.annotations());
                match (l.get(LABEL_WORKSPACE), env) {
                    (Some(ws), Some(env)) => vec![ObjectRef::<Environment>::new(&env).within(ws)],
                    // Environments only deliver pull credentials: a push
                    // Secret change gives them nothing to do.
                    _ if role_of(l) == Some(RobotRole::Push) => Vec::new(),
                    _ => in_workspace(&by_workspace2, &s.namespace().unwrap_or_default()),
                }
            },
        )
        // ServiceAccounts in target namespaces: a removed link, or a
        // `deployer` that appears, heals within seconds.
        .watches(
            Api::<ServiceAccount>::all(client),
            watcher::Config::default(),
            move |sa: ServiceAccount| {
                let ns = sa.namespace().unwrap_or_default();
                by_target
                    .state()
                    .into_iter()
                    .filter(|e| {
                        e.spec.target.cluster_credentials_secret.is_none()
                            && e.spec.target.namespace == ns
                    })
                    .map(|e| ObjectRef::from_obj(&*e))
                    .collect::<Vec<_>>()
            },
        )
}
