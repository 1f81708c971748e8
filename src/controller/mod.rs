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
pub mod group_commit;
pub mod kept;
pub mod kubeconfig;
pub mod metrics;
pub mod pass;
pub mod remote_watch;
pub mod sharded;
pub mod status;
pub mod stores;
pub mod targets;
pub mod workspace;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use kube::Client;
use kube::api::Api;
use kube::runtime::Controller;

use crate::api::{Component, Environment};
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
    run_selected(ctx, None, shutdown).await
}

/// [`run`], with every cached kind narrowed by the label selector `shards`
/// (`controller::sharded`).
async fn run_selected(
    ctx: Arc<Context>,
    shards: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };

    let scope = ctx.config.namespace.clone();
    let cached = &ctx.metrics.cached_objects;
    let (stores, triggers, watches) =
        stores::start(&client, scope.as_deref(), shards.as_deref(), cached);
    ctx.set_stores(stores.clone());
    // Bounded work: at most this many passes of each kind at once.
    let bounded_passes =
        kube::runtime::controller::Config::default().concurrency(ctx.config.concurrency);
    // Every trigger comes from the shared watches (`stores`): the
    // controllers' own trigger streams stay empty.
    let components = Controller::for_shared_stream(
        futures::stream::pending::<Arc<Component>>(),
        stores.components.store(),
    )
    .reconcile_on(triggers.components)
    .with_config(bounded_passes.clone());
    let components = components
        .reconcile_all_on(ctx.shards.gained())
        .graceful_shutdown_on(stopped(stop_rx.clone()))
        .run(component::reconcile, component::error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "component reconcile");
            }
        });
    let environments = Controller::for_shared_stream(
        futures::stream::pending::<Arc<Environment>>(),
        stores.environments.store(),
    )
    .reconcile_on(triggers.environments)
    .reconcile_on(ctx.remote_watches.triggers())
    .with_config(bounded_passes);
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
        bounded(components, &stores, stopped(stop_rx.clone())),
        bounded(environments, &stores, stopped(stop_rx)),
    );
    watches.iter().for_each(|w| w.abort());
    ctx.remote_watches.stop_all();
    ctx.clear_stores();
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
async fn bounded(
    run: impl Future<Output = ()>,
    stores: &stores::Stores,
    stop: impl Future<Output = ()>,
) {
    let deadline = async {
        stop.await;
        if !stores.is_listed() {
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
