//! With `--shards`: run the controllers over the objects of the shards this
//! replica holds only — their watches select them by the shard label — and
//! start them again over the new set when it changes; and stamp that label
//! on the Components and Environments of the held shards, which tenants
//! create without it.
//!
//! Kubernetes cannot select objects by a set of namespaces, so every
//! object quayside caches carries `quayside.dev/shard=<its workspace's
//! shard>`: quayside writes it on its own Secrets, and the holder of a
//! shard stamps it on the tenants' objects. A cluster-wide watch of the
//! Components and Environments whose label is missing or names no shard
//! (`quayside.dev/shard notin (0,…,S-1)`, metadata only) finds those to
//! stamp: nearly empty once they are stamped, so it costs next to nothing
//! at rest. A tenant who writes another shard's number on its object only
//! delays itself: the holder of that shard sees the object in its own
//! watch, and its pass puts the right number back (passes still check the
//! namespace's shard, never the label).

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::api::{Api, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::backoff::WatchBackoff;
use super::context::Context;
use crate::api::{Component, Environment};
use crate::vocabulary::{LABEL_SHARD, shard_selector, unsharded_selector};

/// How often the objects left to stamp are looked at again (a stamp that
/// failed, a shard gained between two events).
const RESTAMP: Duration = Duration::from_secs(10);

/// A held set that keeps changing is watched anyway after this many
/// settling periods.
const SETTLE_AT_MOST: u32 = 5;

/// Run the controllers over the held shards' objects until `shutdown`,
/// restarting them once the held set changed and then stayed unchanged
/// for `settle` (a few rounds of the sharder, so a rebalance costs one
/// restart, not one per shard). Without sharding: [`super::run`].
pub async fn run(
    ctx: Arc<Context>,
    settle: Duration,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let Some(holding) = ctx.shards.holding() else {
        return super::run(ctx, shutdown).await;
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let stamping = tokio::spawn(stamp_all(ctx.clone()));
    let mut watching = BTreeSet::new();
    // The next set, when the run that watched the last one saw it settle.
    let next: Arc<Mutex<Option<BTreeSet<u32>>>> = Arc::default();
    loop {
        let settled_before = next.lock().unwrap_or_else(|p| p.into_inner()).take();
        watching = match settled_before {
            Some(s) => s,
            None => tokio::select! {
                s = settled(holding.clone(), &watching, settle) => s,
                () = stopped(stop_rx.clone()) => break,
            },
        };
        if watching.is_empty() {
            tracing::info!("sharding: no shard held; watching nothing");
            continue;
        }
        tracing::info!(shards = ?watching, "sharding: watching the objects of the shards held");
        let (rx, seen, next) = (holding.clone(), watching.clone(), next.clone());
        let changed = async move {
            let s = settled(rx, &seen, settle).await;
            *next.lock().unwrap_or_else(|p| p.into_inner()) = Some(s);
        };
        let stop = stopped(stop_rx.clone());
        let until = async move {
            tokio::select! {
                () = stop => {}
                () = changed => {}
            }
        };
        let selector = Some(shard_selector(&watching));
        super::run_selected(ctx.clone(), selector, until).await;
        if *stop_rx.borrow() {
            break;
        }
        tracing::info!("sharding: the shards held changed; restarting the watches");
    }
    stamping.abort();
}

/// The held set once it differs from `watching` and has not changed for
/// `settle` (or has kept changing for [`SETTLE_AT_MOST`] of that).
async fn settled(
    mut rx: watch::Receiver<BTreeSet<u32>>,
    watching: &BTreeSet<u32>,
    settle: Duration,
) -> BTreeSet<u32> {
    loop {
        if rx.wait_for(|held| held != watching).await.is_err() {
            // The sharder is gone: nothing will change any more.
            return std::future::pending().await;
        }
        let first = Instant::now();
        loop {
            let held = rx.borrow_and_update().clone();
            if held == *watching {
                break;
            }
            let quiet = tokio::time::timeout(settle, rx.changed()).await;
            if quiet.is_err() || first.elapsed() > settle * SETTLE_AT_MOST {
                return rx.borrow_and_update().clone();
            }
        }
    }
}

/// Stamp the shard label on the Components and Environments of the shards
/// served that lack it or name no shard.
async fn stamp_all(ctx: Arc<Context>) {
    futures::join!(
        stamp_kind::<Component>(ctx.clone()),
        stamp_kind::<Environment>(ctx)
    );
}

async fn stamp_kind<K>(ctx: Arc<Context>)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    let client = ctx.client.clone();
    let api: Api<PartialObjectMeta<K>> = match &ctx.config.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let config = watcher::Config::default().labels(&unsharded_selector(ctx.shards.count()));
    let (store, writer) = reflector::store::<PartialObjectMeta<K>>();
    let events = watcher::watcher(api, config)
        .modify(|o| o.metadata.managed_fields = None)
        .backoff(WatchBackoff::for_watches());
    let events = reflector::reflector(writer, events);
    let mut events = std::pin::pin!(events);
    let mut gained = ctx.shards.gained();
    let mut every = tokio::time::interval(RESTAMP);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(Event::Apply(o) | Event::InitApply(o))) => stamp(&ctx, &o).await,
                Some(_) => {}
                None => return,
            },
            _ = gained.next() => stamp_stored(&ctx, &store).await,
            _ = every.tick() => stamp_stored(&ctx, &store).await,
        }
    }
}

/// Stamp what the watch holds (objects leave it once stamped).
async fn stamp_stored<K>(ctx: &Context, store: &Store<PartialObjectMeta<K>>)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    for o in store.state() {
        stamp(ctx, &o).await;
    }
}

/// Stamp one object found by the watch of unlabelled ones, if its
/// workspace is served here (each is the holder's to stamp, once).
async fn stamp<K>(ctx: &Context, o: &PartialObjectMeta<K>)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let ns = o.namespace().unwrap_or_default();
    if ctx.shards.owns(&ns) {
        relabel::<K>(ctx, &ns, &o.name_any(), o.labels().get(LABEL_SHARD)).await;
    }
}

/// At the start of a pass: put the right shard label on `o` if it carries
/// another (a tenant wrote it; it is in this replica's watch because its
/// value names a shard held here). Nothing without sharding.
pub async fn correct_label<K>(ctx: &Context, o: &K)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    if ctx.shards.count() == 0 {
        return;
    }
    let ns = o.namespace().unwrap_or_default();
    relabel::<K>(ctx, &ns, &o.name_any(), o.labels().get(LABEL_SHARD)).await;
}

/// Merge-patch the shard label of `namespace/name` when `current` is not
/// its workspace's shard. Failures are logged: the next look retries.
async fn relabel<K>(ctx: &Context, namespace: &str, name: &str, current: Option<&String>)
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let Some(value) = ctx
        .shards
        .label_to_write(namespace, current.map(String::as_str))
    else {
        return;
    };
    let patch = serde_json::json!({"metadata": {"labels": {LABEL_SHARD: value}}});
    let api: Api<K> = Api::namespaced(ctx.client.clone(), namespace);
    match api
        .patch_metadata(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => {
            ctx.metrics.kube_writes.inc();
            tracing::debug!(kind = %K::kind(&()), namespace, name, shard = %value, "sharding: stamped the shard label");
        }
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => {
            tracing::warn!(kind = %K::kind(&()), namespace, name, error = %e, "sharding: stamping the shard label")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUND: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn a_new_held_set_is_watched_once_it_settles() {
        let (tx, rx) = watch::channel(BTreeSet::new());
        tx.send_replace(BTreeSet::from([1, 4]));
        let got = tokio::time::timeout(
            BOUND,
            settled(rx, &BTreeSet::new(), Duration::from_millis(50)),
        )
        .await
        .expect("settled within the bound");
        assert_eq!(got, BTreeSet::from([1, 4]));
    }

    #[tokio::test]
    async fn the_set_watched_already_restarts_nothing() {
        let held = BTreeSet::from([2]);
        let (tx, rx) = watch::channel(held.clone());
        // Written again unchanged: still what is watched.
        tx.send_replace(held.clone());
        let waited = tokio::time::timeout(
            Duration::from_millis(300),
            settled(rx, &held, Duration::from_millis(20)),
        )
        .await;
        assert!(waited.is_err(), "no restart for the same set: {waited:?}");
    }

    #[tokio::test]
    async fn a_set_that_keeps_changing_is_watched_after_a_bounded_wait() {
        let (tx, rx) = watch::channel(BTreeSet::new());
        let churn = tokio::spawn(async move {
            for i in 0u32.. {
                tx.send_replace(BTreeSet::from([i % 3 + 1]));
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        let got = tokio::time::timeout(
            BOUND,
            settled(rx, &BTreeSet::new(), Duration::from_millis(100)),
        )
        .await
        .expect("a churning set is still watched, after at most 5 settling periods");
        churn.abort();
        assert_eq!(got.len(), 1, "{got:?}");
    }
}
