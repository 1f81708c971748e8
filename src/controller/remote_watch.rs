//! Watches on remote clusters, so a pull Secret deleted or a link removed
//! there heals in seconds, as in this cluster, instead of at the next
//! heartbeat. An Environment pass registers the identity and namespace it
//! delivers to; `plan::remote_watch` decides which watch pairs run (one per
//! identity and namespace, within `--remote-watch-limit`); each pair lists
//! and watches our Secrets (by label) and the namespace's ServiceAccounts,
//! metadata only, as the Environment's own kubeconfig, and wakes the
//! Environments registered under it through the Environment controller's
//! trigger stream. A failing pair backs off per stream (doubling to a cap)
//! and logs once per change of error.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, Weak};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::mpsc;

use super::backoff::WatchBackoff;
use super::context::Context;
use super::error::Error;
use super::metrics::Metrics;
use super::targets;
use crate::api::Environment;
use crate::plan::remote_watch::{
    ClusterKey, EnvironmentId, RETRY_CAP, RETRY_FIRST, Seen, WatchKey, plan_watches, woken,
};
use crate::vocabulary::{LABEL_ENVIRONMENT, LABEL_WORKSPACE, managed_selector, named_by};

/// Passes asked for but not yet taken by the Environment controller; a
/// full queue holds the watch back (backpressure, not loss).
const TRIGGER_QUEUE: usize = 256;

/// The remote watch pairs of this process.
pub struct RemoteWatches {
    limit: usize,
    shared: Arc<Shared>,
    receiver: Mutex<Option<mpsc::Receiver<ObjectRef<Environment>>>>,
}

/// What the watch tasks reach (through a weak reference: dropping the
/// controller ends them).
struct Shared {
    state: Mutex<State>,
    trigger: mpsc::Sender<ObjectRef<Environment>>,
    metrics: Metrics,
}

#[derive(Default)]
struct State {
    /// Each remote Environment's watch key, as its last pass found it.
    registered: BTreeMap<EnvironmentId, WatchKey>,
    /// The newest client per wanted key (all connect as the same identity).
    clients: HashMap<WatchKey, Client>,
    running: BTreeMap<WatchKey, tokio::task::JoinHandle<()>>,
    over_limit: BTreeSet<WatchKey>,
}

impl Drop for State {
    fn drop(&mut self) {
        for (_, task) in std::mem::take(&mut self.running) {
            task.abort();
        }
    }
}

/// Whether an Environment's target is watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Watched {
    Yes,
    /// Beyond the limit; `newly` the first time this pass saw it so.
    OverLimit {
        newly: bool,
    },
}

impl RemoteWatches {
    pub fn new(limit: usize, metrics: Metrics) -> RemoteWatches {
        let (trigger, receiver) = mpsc::channel(TRIGGER_QUEUE);
        RemoteWatches {
            limit,
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                trigger,
                metrics,
            }),
            receiver: Mutex::new(Some(receiver)),
        }
    }

    /// The Environments to reconcile because of remote events (once; a
    /// second call gets an empty stream).
    pub fn triggers(&self) -> BoxStream<'static, ObjectRef<Environment>> {
        match lock(&self.receiver).take() {
            Some(rx) => {
                futures::stream::unfold(
                    rx,
                    |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
                )
                .boxed()
            }
            None => futures::stream::empty().boxed(),
        }
    }

    /// `env` delivers to `key` with `client`.
    pub fn register(&self, env: EnvironmentId, key: WatchKey, client: Client) -> Watched {
        let mut st = lock(&self.shared.state);
        let was_over = st.registered.get(&env) == Some(&key) && st.over_limit.contains(&key);
        let previous = st.registered.insert(env, key.clone());
        st.clients.insert(key.clone(), client);
        if previous.as_ref() != Some(&key) {
            self.replan(&mut st);
        }
        match st.over_limit.contains(&key) {
            true => Watched::OverLimit { newly: !was_over },
            false => Watched::Yes,
        }
    }

    /// `env` no longer delivers to a remote cluster (deleted, local now,
    /// or its credentials unusable).
    pub fn unregister(&self, env: &EnvironmentId) {
        let mut st = lock(&self.shared.state);
        if st.registered.remove(env).is_some() {
            self.replan(&mut st);
        }
    }

    /// Stop every watch (the controller is stopping).
    pub fn stop_all(&self) {
        let mut st = lock(&self.shared.state);
        st.registered.clear();
        self.replan(&mut st);
    }

    /// Start and stop pairs as `plan_watches` says.
    fn replan(&self, st: &mut State) {
        let running: BTreeSet<WatchKey> = st.running.keys().cloned().collect();
        let plan = plan_watches(&st.registered, &running, self.limit);
        for key in &plan.stop {
            if let Some(task) = st.running.remove(key) {
                task.abort();
                tracing::info!(watch = %key, "stopped watching a remote cluster");
            }
        }
        for key in plan.start {
            let Some(client) = st.clients.get(&key).cloned() else {
                continue;
            };
            let label = first_user(&st.registered, &key);
            tracing::info!(watch = %key, environment = %label, "watching a remote cluster");
            let task = watch_pair(key.clone(), label, client, Arc::downgrade(&self.shared));
            st.running.insert(key, tokio::spawn(task));
        }
        let wanted: BTreeSet<&WatchKey> = st.registered.values().collect();
        st.clients.retain(|k, _| wanted.contains(k));
        let over: BTreeSet<WatchKey> = plan.over_limit.into_iter().collect();
        if over != st.over_limit {
            log_over_limit(&over, &st.registered, self.limit);
            st.over_limit = over;
        }
        let metrics = &self.shared.metrics;
        metrics.remote_watches.set(st.running.len() as i64);
        metrics
            .remote_watches_over_limit
            .set(st.over_limit.len() as i64);
    }
}

fn log_over_limit(
    over: &BTreeSet<WatchKey>,
    registered: &BTreeMap<EnvironmentId, WatchKey>,
    limit: usize,
) {
    if over.is_empty() {
        tracing::info!(limit, "every remote cluster is watched again");
        return;
    }
    let environments: Vec<String> = over.iter().map(|k| first_user(registered, k)).collect();
    tracing::warn!(
        limit,
        unwatched = over.len(),
        ?environments,
        "--remote-watch-limit reached: these remote targets are healed by the heartbeat only; raise the limit"
    );
}

/// An Environment using `key`, as `workspace/name`, for logs.
fn first_user(registered: &BTreeMap<EnvironmentId, WatchKey>, key: &WatchKey) -> String {
    registered
        .iter()
        .find(|(_, k)| *k == key)
        .map(|((ws, name), _)| format!("{ws}/{name}"))
        .unwrap_or_default()
}

impl Shared {
    /// Ask for a pass of every Environment `seen` concerns.
    async fn wake(&self, key: &WatchKey, seen: &Seen) {
        let ids = woken(&lock(&self.state).registered, key, seen);
        for (ws, name) in ids {
            self.metrics.remote_watch_triggers.inc();
            let r = ObjectRef::<Environment>::new(&name).within(&ws);
            if self.trigger.send(r).await.is_err() {
                return;
            }
        }
    }
}

/// Which stream of a pair.
#[derive(Clone, Copy, Debug)]
enum PairStream {
    Secrets = 0,
    ServiceAccounts = 1,
}

/// List and watch one pair until aborted.
async fn watch_pair(key: WatchKey, label: String, client: Client, shared: Weak<Shared>) {
    let ns = key.namespace.clone();
    let secrets = watched(
        Api::<PartialObjectMeta<Secret>>::namespaced(client.clone(), &ns),
        watcher::Config::default().labels(&managed_selector()),
        PairStream::Secrets,
        seen_secret,
    );
    let accounts = watched(
        Api::<PartialObjectMeta<ServiceAccount>>::namespaced(client, &ns),
        watcher::Config::default(),
        PairStream::ServiceAccounts,
        |_| Seen::ServiceAccount,
    );
    let mut events = futures::stream::select(secrets, accounts);
    let mut failing: [Option<String>; 2] = [None, None];
    while let Some((which, item)) = events.next().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let slot = &mut failing[which as usize];
        match item {
            Ok(seen) => {
                if slot.take().is_some() {
                    tracing::info!(watch = %key, environment = %label, stream = ?which, "remote watch back");
                }
                if let Some(seen) = seen {
                    shared.wake(&key, &seen).await;
                }
            }
            Err(e) => {
                shared.metrics.remote_watch_failures.inc();
                let message = targets::bounded(&e.to_string());
                if slot.as_deref() != Some(message.as_str()) {
                    tracing::warn!(
                        watch = %key, environment = %label, stream = ?which, error = %message,
                        retry_cap = ?RETRY_CAP,
                        "remote watch failing; retrying with backoff (doubling up to the cap), logged again only when the error changes"
                    );
                    *slot = Some(message);
                    // Its credentials no longer work: the Environments'
                    // passes re-read the kubeconfig Secret, and a changed
                    // one moves them to a pair of its own (this one stops).
                    if unauthorized(&e) {
                        shared.wake(&key, &Seen::Relisted).await;
                    }
                }
            }
        }
    }
}

/// A metadata-only watch of `api`, backing off on failure, as what it saw:
/// a change of one object, or a fresh listing (which may have missed a
/// deletion, so it concerns every Environment of the pair).
fn watched<K>(
    api: Api<PartialObjectMeta<K>>,
    config: watcher::Config,
    which: PairStream,
    seen: fn(&PartialObjectMeta<K>) -> Seen,
) -> BoxStream<'static, (PairStream, Result<Option<Seen>, watcher::Error>)>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: Send + Sync + 'static,
{
    backing_off(watcher::watcher(api, config).boxed())
        .map(move |item| {
            let seen = item.map(|event| match event {
                Event::Apply(o) | Event::Delete(o) => Some(seen(&o)),
                Event::InitDone => Some(Seen::Relisted),
                Event::Init | Event::InitApply(_) => None,
            });
            (which, seen)
        })
        .boxed()
}

/// `events`, waiting after each error: 1 s doubling to [`RETRY_CAP`],
/// back to the start once the watch makes progress. Not kube-runtime's
/// `backoff()`: the watcher yields `Init` before every list attempt, and
/// that resets its backoff, so an unreachable cluster was retried every
/// second or faster (`remote_watches::an_unreachable_…` counted 32
/// attempts in 12 s).
fn backing_off<T: Send + 'static>(
    events: BoxStream<'static, Result<Event<T>, watcher::Error>>,
) -> impl futures::Stream<Item = Result<Event<T>, watcher::Error>> + Send {
    let backoff = WatchBackoff::new(RETRY_FIRST, RETRY_CAP);
    futures::stream::unfold(
        (events, backoff, None),
        |(mut events, mut backoff, wait)| async move {
            if let Some(wait) = wait {
                tokio::time::sleep(wait).await;
            }
            let item = events.next().await?;
            let wait = match &item {
                Err(_) => backoff.next(),
                // Announces a list attempt; it is no sign of success.
                Ok(Event::Init) => None,
                Ok(_) => {
                    backoff.reset();
                    None
                }
            };
            Some((item, (events, backoff, wait)))
        },
    )
}

/// Whether the remote API server refused the credentials themselves.
fn unauthorized(e: &watcher::Error) -> bool {
    match e {
        watcher::Error::InitialListFailed(k)
        | watcher::Error::WatchStartFailed(k)
        | watcher::Error::WatchFailed(k) => {
            matches!(k, kube::Error::Api(s) if s.code == 401)
        }
        watcher::Error::WatchError(s) => s.code == 401,
        watcher::Error::NoResourceVersion => false,
    }
}

fn seen_secret(s: &PartialObjectMeta<Secret>) -> Seen {
    let labels = s.labels();
    Seen::Secret {
        workspace: labels.get(LABEL_WORKSPACE).cloned(),
        environment: named_by(LABEL_ENVIRONMENT, labels, s.annotations()),
    }
}

/// After a pass resolved `env`'s target clients: watch its remote target
/// namespace (`cluster` is `None` for this cluster). An Environment beyond
/// the limit gets a Warning event once.
pub async fn follow(
    ctx: &Context,
    env: &Environment,
    namespace: &str,
    client: &Client,
    cluster: Option<ClusterKey>,
) {
    let id = id_of(env);
    let Some(cluster) = cluster else {
        ctx.remote_watches.unregister(&id);
        return;
    };
    let key = WatchKey {
        cluster,
        namespace: namespace.to_string(),
    };
    let watched = ctx.remote_watches.register(id, key, client.clone());
    if watched == (Watched::OverLimit { newly: true }) {
        let note = format!(
            "the controller already watches {} remote targets (--remote-watch-limit): changes in {namespace} there are healed by the heartbeat only",
            ctx.config.remote_watch_limit
        );
        ctx.warn(&env.object_ref(&()), "RemoteWatchLimit", "Watch", note)
            .await;
    }
}

/// A pass could not resolve `env`'s target: unusable credentials stop
/// its watch (they changed, or are gone); a failure to read them does not.
pub fn lost(ctx: &Context, env: &Environment, error: &Error) {
    if matches!(error, Error::TargetCluster(_)) {
        ctx.remote_watches.unregister(&id_of(env));
    }
}

/// The Environment is going away (or its target is not valid): no watch.
pub fn forget(ctx: &Context, env: &Environment) {
    ctx.remote_watches.unregister(&id_of(env));
}

fn id_of(env: &Environment) -> EnvironmentId {
    (env.namespace().unwrap_or_default(), env.name_any())
}

/// A poisoned lock only means another task panicked; the state is usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
