//! The controller's view of the API: one watch per kind, held in reflector
//! stores with an index by namespace, and the passes each change asks for.
//! Passes read here instead of listing, so a pass that finds nothing to do
//! (the heartbeat) costs the API server nothing, and each kind is watched
//! once for both controllers.
//!
//! What is cached is only what passes read: Components and Environments
//! whole; of quayside's workspace Secrets the login each holds, and of the
//! target Secrets it delivered (watched as metadata: never a cluster-wide
//! copy of Secret data) whose they are and their generation (`kept`);
//! ServiceAccounts not at all (their watch only wakes passes).
//!
//! With `--shards`, every cached kind is selected by the shard label as
//! well (`quayside.dev/shard in (<held>)`): a replica caches only its
//! shards' objects (`controller::sharded` restarts the watches when the
//! shards held change).

use std::collections::{BTreeSet, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::{Client, Resource, ResourceExt};

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::backoff::WatchBackoff;
use super::kept::{TargetSecret, WorkspaceSecret};
use super::metrics::{CACHED_KINDS, KindLabels};
use crate::api::{Component, Environment};
use crate::names::RobotRole;
use crate::vocabulary::{LABEL_WORKSPACE, managed_selector};

/// A store and, per namespace, the names it holds (counted in `cached`).
pub struct Indexed<K: Resource<DynamicType = ()> + Clone + 'static> {
    store: Store<K>,
    by_namespace: Mutex<HashMap<String, BTreeSet<String>>>,
    cached: Gauge,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Indexed<K> {
    fn new(store: Store<K>, cached: Gauge) -> Indexed<K> {
        cached.set(0);
        Indexed {
            store,
            by_namespace: Mutex::new(HashMap::new()),
            cached,
        }
    }

    /// The object `name` of `namespace`, as last seen.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }

    /// Every object of `namespace`, by name.
    pub fn in_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let names: Vec<String> = self
            .index()
            .get(namespace)
            .map(|n| n.iter().cloned().collect())
            .unwrap_or_default();
        names
            .iter()
            .filter_map(|n| self.get(namespace, n))
            .collect()
    }

    /// Whether the store holds any object of `namespace`: that namespace
    /// existed when the watch last saw it.
    pub fn holds_any(&self, namespace: &str) -> bool {
        self.index().get(namespace).is_some_and(|n| !n.is_empty())
    }

    /// The store, for a controller to look its objects up in.
    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    fn index(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeSet<String>>> {
        self.by_namespace.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn add(&self, o: &K) {
        let ns = o.meta().namespace.clone().unwrap_or_default();
        if self.index().entry(ns).or_default().insert(o.name_any()) {
            self.cached.inc();
        }
    }

    fn remove(&self, o: &K) {
        let ns = o.meta().namespace.clone().unwrap_or_default();
        let mut index = self.index();
        if let Some(names) = index.get_mut(&ns) {
            if names.remove(&o.name_any()) {
                self.cached.dec();
            }
            if names.is_empty() {
                index.remove(&ns);
            }
        }
    }

    /// After a fresh listing: the index is what the store now holds.
    fn rebuild(&self) {
        let mut index = HashMap::<String, BTreeSet<String>>::new();
        for o in self.store.state() {
            let ns = o.meta().namespace.clone().unwrap_or_default();
            index.entry(ns).or_default().insert(o.name_any());
        }
        let count: usize = index.values().map(BTreeSet::len).sum();
        *self.index() = index;
        self.cached.set(count as i64);
    }
}

/// What passes read instead of the API.
pub struct Stores {
    pub components: Indexed<Component>,
    pub environments: Indexed<Environment>,
    /// quayside's Secrets in workspaces (push and pull credentials), as kept.
    pub workspace_secrets: Indexed<WorkspaceSecret>,
    /// The pull Secrets delivered into this cluster's target namespaces,
    /// metadata only.
    pub target_secrets: Indexed<TargetSecret>,
    /// This cluster's target namespaces → the Environments (workspace,
    /// name) delivering there.
    by_target: Mutex<TargetIndex>,
    /// One bit per watch that has finished its first listing. Our own
    /// flag: kube's `Store::wait_until_ready` wakes only the last of
    /// several concurrent waiters (one oneshot receiver behind a mutex),
    /// so passes waiting on it together hung.
    listed: tokio::sync::watch::Sender<u8>,
    /// Target Secrets this process wrote, `(namespace, name)` → the
    /// resourceVersion the write returned: the watch event of that version
    /// is the writer's own and wakes only the Component, not the
    /// Environment that wrote it (its pass already knows what it wrote).
    own_target_writes: OwnWrites,
}

/// `(namespace, name)` → the resourceVersion this process wrote.
#[derive(Default)]
struct OwnWrites(Mutex<HashMap<(String, String), String>>);

impl OwnWrites {
    fn note(&self, namespace: &str, name: &str, version: String) {
        let mut own = self.0.lock().unwrap_or_else(|p| p.into_inner());
        own.insert((namespace.to_string(), name.to_string()), version);
    }

    /// Whether `version` is the one noted; any event of the Secret ends
    /// what was noted of it, so the map holds only writes not seen yet.
    fn seen(&self, namespace: &str, name: &str, version: Option<&str>) -> bool {
        let mut own = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let key = (namespace.to_string(), name.to_string());
        own.remove(&key)
            .is_some_and(|v| Some(v.as_str()) == version)
    }
}

/// Every watch's bit in [`Stores::listed`].
const ALL_LISTED: u8 = 0b1111;

/// Target namespace → Environments, and back.
#[derive(Default)]
struct TargetIndex {
    envs: HashMap<String, BTreeSet<(String, String)>>,
    target: HashMap<(String, String), String>,
}

impl Stores {
    /// A target Secret this process wrote, at the version the write
    /// returned (see [`Stores::own_target_writes`]).
    pub fn note_own_target_write(&self, namespace: &str, name: &str, version: String) {
        self.own_target_writes.note(namespace, name, version);
    }

    /// Wait until every store holds its first full listing: a pass that
    /// read an empty store before that would prune what exists.
    pub async fn ready(&self) {
        let mut listed = self.listed.subscribe();
        let _ = listed.wait_for(|bits| *bits == ALL_LISTED).await;
    }

    /// Whether every watch has finished its first listing.
    pub fn is_listed(&self) -> bool {
        *self.listed.borrow() == ALL_LISTED
    }

    /// The live (not deleted) Environments of `workspace`.
    pub fn live_environments(&self, workspace: &str) -> Vec<Arc<Environment>> {
        let mut out = self.environments.in_namespace(workspace);
        out.retain(|e| e.metadata.deletion_timestamp.is_none());
        out
    }

    /// The watches stopped: nothing is cached any more.
    pub fn uncount(&self) {
        self.components.cached.set(0);
        self.environments.cached.set(0);
        self.workspace_secrets.cached.set(0);
        self.target_secrets.cached.set(0);
    }

    /// The pull Secrets quayside keeps in `workspace`.
    pub fn pull_secrets(&self, workspace: &str) -> Vec<Arc<WorkspaceSecret>> {
        let mut out = self.workspace_secrets.in_namespace(workspace);
        out.retain(|s| s.role == Some(RobotRole::Pull));
        out
    }
}

impl Stores {
    /// Record (or forget) which target namespace of this cluster `e`
    /// delivers to.
    fn follow_target(&self, e: &Environment, gone: bool) {
        let key = (e.namespace().unwrap_or_default(), e.name_any());
        let mut index = self.by_target.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = index.target.remove(&key)
            && let Some(envs) = index.envs.get_mut(&old)
        {
            envs.remove(&key);
            if envs.is_empty() {
                index.envs.remove(&old);
            }
        }
        if !gone && e.spec.target.cluster_credentials_secret.is_none() {
            let ns = e.spec.target.namespace.trim().to_string();
            index
                .envs
                .entry(ns.clone())
                .or_default()
                .insert(key.clone());
            index.target.insert(key, ns);
        }
    }

    fn delivering_to(&self, namespace: &str) -> Vec<(String, String)> {
        let index = self.by_target.lock().unwrap_or_else(|p| p.into_inner());
        index
            .envs
            .get(namespace)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }
}

/// The passes a change asks for, per controller.
pub struct Triggers {
    pub components: UnboundedReceiver<ObjectRef<Component>>,
    pub environments: UnboundedReceiver<ObjectRef<Environment>>,
}

#[derive(Clone)]
struct Senders {
    components: UnboundedSender<ObjectRef<Component>>,
    environments: UnboundedSender<ObjectRef<Environment>>,
}

impl Senders {
    fn component(&self, ns: &str, name: &str) {
        let _ = self
            .components
            .unbounded_send(ObjectRef::new(name).within(ns));
    }
    fn environment(&self, ns: &str, name: &str) {
        tracing::trace!(namespace = ns, name, "environment pass asked for");
        let _ = self
            .environments
            .unbounded_send(ObjectRef::new(name).within(ns));
    }
}

/// Start the watches (as tasks that end when `stop` resolves or the
/// returned stores are dropped); `namespace` scopes Components,
/// Environments and workspace Secrets (`--namespace`); `shards`, a label
/// selector, narrows every cached kind to the shards held (`--shards`).
/// `cached` counts what each store holds.
pub fn start(
    client: &Client,
    namespace: Option<&str>,
    shards: Option<&str>,
    cached: &Family<KindLabels, Gauge>,
) -> (Arc<Stores>, Triggers, Vec<tokio::task::JoinHandle<()>>) {
    let (c_tx, c_rx) = unbounded();
    let (e_tx, e_rx) = unbounded();
    let send = Senders {
        components: c_tx,
        environments: e_tx,
    };
    let (c_store, c_writer) = kube::runtime::reflector::store::<Component>();
    let (e_store, e_writer) = kube::runtime::reflector::store::<Environment>();
    let (w_store, w_writer) = kube::runtime::reflector::store::<WorkspaceSecret>();
    let (t_store, t_writer) = kube::runtime::reflector::store::<TargetSecret>();
    let gauge = |kind: &str| {
        cached
            .get_or_create(&KindLabels { kind: kind.into() })
            .clone()
    };
    let [c_kind, e_kind, w_kind, t_kind] = CACHED_KINDS;
    let stores = Arc::new(Stores {
        components: Indexed::new(c_store, gauge(c_kind)),
        environments: Indexed::new(e_store, gauge(e_kind)),
        workspace_secrets: Indexed::new(w_store, gauge(w_kind)),
        target_secrets: Indexed::new(t_store, gauge(t_kind)),
        by_target: Mutex::new(TargetIndex::default()),
        listed: tokio::sync::watch::Sender::new(0),
        own_target_writes: OwnWrites::default(),
    });
    let selected = |base: String| {
        let all = [Some(base.as_str()), shards].into_iter().flatten();
        let all: Vec<&str> = all.filter(|s| !s.is_empty()).collect();
        match all.is_empty() {
            true => watcher::Config::default(),
            false => watcher::Config::default().labels(&all.join(",")),
        }
    };
    let workspace_secrets = selected(format!("{},!{LABEL_WORKSPACE}", managed_selector()));
    let target_secrets = selected(format!("{},{LABEL_WORKSPACE}", managed_selector()));
    let tenants = || selected(String::new());
    let tasks = vec![
        tokio::spawn(pump(
            watcher::watcher(scoped(client, namespace), tenants()),
            c_writer,
            Arc::downgrade(&stores),
            |s| &s.components,
            0b0001,
            |c| {
                crate::plan::rotation_request::trim_to_generate_owners(
                    &mut c.metadata.managed_fields,
                )
            },
            component_changed(send.clone()),
        )),
        tokio::spawn(pump(
            watcher::watcher(scoped(client, namespace), tenants()),
            e_writer,
            Arc::downgrade(&stores),
            |s| &s.environments,
            0b0010,
            drop_managed_fields,
            environment_changed(send.clone()),
        )),
        tokio::spawn(pump(
            watcher::watcher(scoped(client, namespace), workspace_secrets),
            w_writer,
            Arc::downgrade(&stores),
            |s| &s.workspace_secrets,
            0b0100,
            drop_managed_fields,
            workspace_secret_changed(send.clone()),
        )),
        tokio::spawn(pump(
            watcher::watcher(Api::<TargetSecret>::all(client.clone()), target_secrets),
            t_writer,
            Arc::downgrade(&stores),
            |s| &s.target_secrets,
            0b1000,
            drop_managed_fields,
            target_secret_changed(send.clone()),
        )),
        tokio::spawn(accounts(
            Api::<PartialObjectMeta<ServiceAccount>>::all(client.clone()),
            Arc::downgrade(&stores),
            send,
        )),
    ];
    let triggers = Triggers {
        components: c_rx,
        environments: e_rx,
    };
    (stores, triggers, tasks)
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// A change seen by a watch, after the store took it.
enum Change<K> {
    Applied(Arc<K>),
    Deleted(K),
    /// A fresh listing: everything the store now holds (it may have missed
    /// deletions, so what depends on the whole kind looks again).
    Relisted(Vec<Arc<K>>),
}

/// Keep `writer`'s store and its index up to date from `events`, and tell
/// `changed` what changed. Errors back off and retry (the watcher relists).
async fn pump<K, S>(
    events: S,
    mut writer: Writer<K>,
    stores: std::sync::Weak<Stores>,
    indexed: fn(&Stores) -> &Indexed<K>,
    bit: u8,
    trim: fn(&mut K),
    mut changed: impl FnMut(&Stores, Change<K>) + Send,
) where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
    S: Stream<Item = watcher::Result<Event<K>>> + Send,
{
    let events = events.modify(trim).backoff(WatchBackoff::for_watches());
    let mut events = std::pin::pin!(events);
    let mut last_error = None::<String>;
    while let Some(event) = events.next().await {
        let Some(stores) = stores.upgrade() else {
            return;
        };
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                let text = e.to_string();
                if last_error.as_deref() != Some(text.as_str()) {
                    tracing::warn!(kind = %K::kind(&()), error = %text, "watch failed; retrying");
                    last_error = Some(text);
                }
                continue;
            }
        };
        last_error = None;
        if let Event::Apply(o) | Event::Delete(o) = &event {
            tracing::trace!(kind = %K::kind(&()), object = %ObjectRef::from_obj(o), "watch event");
        }
        writer.apply_watcher_event(&event);
        let index = indexed(&stores);
        match event {
            Event::Apply(o) => {
                index.add(&o);
                let stored = index.store.get(&ObjectRef::from_obj(&o));
                if let Some(o) = stored {
                    changed(&stores, Change::Applied(o));
                }
            }
            Event::Delete(o) => {
                index.remove(&o);
                changed(&stores, Change::Deleted(o));
            }
            Event::InitDone => {
                index.rebuild();
                stores.listed.send_modify(|bits| *bits |= bit);
                changed(&stores, Change::Relisted(index.store.state()));
            }
            Event::Init | Event::InitApply(_) => {}
        }
    }
}

/// What nothing of quayside reads, and most of a small object's size.
fn drop_managed_fields<K: Resource>(o: &mut K) {
    o.meta_mut().managed_fields = None;
}

fn fingerprint(parts: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// What the other kind reads of each object (uid → fingerprint), so an
/// event wakes the other controller only when that changed.
#[derive(Default)]
struct Fingerprints(HashMap<String, u64>);

impl Fingerprints {
    /// Record `print` for `uid` (or forget it when `gone`); whether the
    /// other kind must look again.
    fn changed(&mut self, uid: String, print: u64, gone: bool) -> bool {
        if gone {
            self.0.remove(&uid);
            return true;
        }
        self.0.insert(uid, print) != Some(print)
    }
}

impl<K> Change<K> {
    /// `f(object, gone)` for each object of the change.
    fn each(self, mut f: impl FnMut(&K, bool)) {
        match self {
            Change::Applied(o) => f(&o, false),
            Change::Deleted(o) => f(&o, true),
            Change::Relisted(all) => all.iter().for_each(|o| f(o, false)),
        }
    }
}

/// A Component → its own pass, and the Environments of its workspace when
/// what they deliver changed (spec, deletion, the image Quay confirmed) —
/// not on every status write of the Component.
fn component_changed(send: Senders) -> impl FnMut(&Stores, Change<Component>) + Send {
    let mut seen = Fingerprints::default();
    move |stores, change| {
        change.each(|c, gone| {
            let ns = c.namespace().unwrap_or_default();
            if !gone {
                send.component(&ns, &c.name_any());
            }
            let print = fingerprint((
                c.metadata.generation,
                c.metadata.deletion_timestamp.is_some(),
                c.status.as_ref().and_then(|s| s.image.as_deref()),
            ));
            if seen.changed(c.uid().unwrap_or_default(), print, gone) {
                for e in stores.environments.in_namespace(&ns) {
                    send.environment(&ns, &e.name_any());
                }
            }
        })
    }
}

/// An Environment → its own pass, and the Components of its workspace when
/// what their status reports of it changed (spec, deletion, what the
/// engine serves, the account linked) — not on each of its commits.
fn environment_changed(send: Senders) -> impl FnMut(&Stores, Change<Environment>) + Send {
    let mut seen = Fingerprints::default();
    let mut own = Fingerprints::default();
    move |stores, change| {
        change.each(|e, gone| {
            let ns = e.namespace().unwrap_or_default();
            if wakes_itself(&mut own, e, gone) {
                send.environment(&ns, &e.name_any());
            }
            let print = what_components_read(e);
            stores.follow_target(e, gone);
            if seen.changed(e.uid().unwrap_or_default(), print, gone) {
                for c in stores.components.in_namespace(&ns) {
                    send.component(&ns, &c.name_any());
                }
            }
        })
    }
}

/// What a Component pass reads of an Environment: its spec, deletion,
/// what its engine serves, its linked account, and whether it applies (a
/// rotation past its deadline may leave a failing Environment behind, and
/// must hear that it fails, not wait for its backstop).
fn what_components_read(e: &Environment) -> u64 {
    let status = e.status.as_ref();
    let applied = status.and_then(|s| {
        s.conditions
            .iter()
            .find(|c| c.type_ == "Applied")
            .map(|c| c.status.as_str())
    });
    fingerprint((
        e.metadata.generation,
        e.metadata.deletion_timestamp.is_some(),
        status.map(|s| serde_json::to_string(&s.live).unwrap_or_default()),
        status.and_then(|s| s.linked_service_account.as_deref()),
        applied,
    ))
}

/// Whether a change of `e` asks for its own pass: not when only its
/// status changed. Each pass writes the status, and waking on that doubled
/// every rotation's passes (a second, no-op pass per Environment, holding
/// a concurrency slot and a place in the group commit while the real ones
/// queued behind it).
fn wakes_itself(own: &mut Fingerprints, e: &Environment, gone: bool) -> bool {
    let asks = fingerprint((
        e.metadata.generation,
        e.metadata.deletion_timestamp.is_some(),
        &e.metadata.finalizers,
        &e.metadata.labels,
        &e.metadata.annotations,
    ));
    own.changed(e.uid().unwrap_or_default(), asks, gone) && !gone
}

/// A workspace Secret → its Component; a pull one also → every
/// Environment of the workspace (a push Secret gives them nothing to do).
fn workspace_secret_changed(send: Senders) -> impl FnMut(&Stores, Change<WorkspaceSecret>) + Send {
    move |stores, change| {
        let one = |s: &WorkspaceSecret| {
            let ns = s.namespace().unwrap_or_default();
            if let Some(c) = &s.component {
                send.component(&ns, c);
            }
            if s.role != Some(RobotRole::Push) {
                for e in stores.environments.in_namespace(&ns) {
                    send.environment(&ns, &e.name_any());
                }
            }
        };
        match change {
            Change::Applied(s) => one(&s),
            Change::Deleted(s) => one(&s),
            // Each workspace's passes run on their own listing anyway.
            Change::Relisted(_) => {}
        }
    }
}

/// A target Secret (deleted, tampered with, written) → its Environment and
/// its Component; the version an Environment's own pass wrote wakes only
/// the Component (which reports what each Environment holds).
fn target_secret_changed(send: Senders) -> impl FnMut(&Stores, Change<TargetSecret>) + Send {
    move |stores, change| {
        let applied = matches!(change, Change::Applied(_));
        change.each(|s, gone| {
            let Some(ws) = &s.workspace else {
                return;
            };
            let ns = s.namespace().unwrap_or_default();
            let own = !gone
                && applied
                && stores.own_target_writes.seen(
                    &ns,
                    &s.name_any(),
                    s.resource_version().as_deref(),
                );
            if let Some(env) = s.environment.as_deref().filter(|_| !own) {
                send.environment(ws, env);
            }
            if let Some(c) = &s.component {
                send.component(ws, c);
            }
        })
    }
}

/// ServiceAccounts of target namespaces, metadata only and not kept: a
/// removed link, or a `deployer` that appears, wakes the Environments that
/// deliver there (in this cluster).
async fn accounts(
    api: Api<PartialObjectMeta<ServiceAccount>>,
    stores: std::sync::Weak<Stores>,
    send: Senders,
) {
    let events =
        watcher::watcher(api, watcher::Config::default()).backoff(WatchBackoff::for_watches());
    let mut events = std::pin::pin!(events);
    while let Some(event) = events.next().await {
        let Some(stores) = stores.upgrade() else {
            return;
        };
        // The first listing wakes nothing: every Environment has its own.
        let (Ok(Event::Apply(sa)) | Ok(Event::Delete(sa))) = event else {
            continue;
        };
        for (ws, env) in stores.delivering_to(&sa.namespace().unwrap_or_default()) {
            send.environment(&ws, &env);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Fingerprints, OwnWrites, wakes_itself, what_components_read};
    use crate::api::Environment;

    #[test]
    fn components_hear_when_an_environment_stops_applying() {
        let condition = |type_: &str, status: &str| {
            serde_json::json!({"type": type_, "status": status, "reason": "R", "message": "",
                "lastTransitionTime": "2026-12-07T00:00:00Z"})
        };
        let env = |conditions: Vec<serde_json::Value>| -> Environment {
            serde_json::from_value(serde_json::json!({
                "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
                "metadata": {"name": "far", "namespace": "ws", "uid": "u1", "generation": 1},
                "spec": {"target": {"namespace": "t"}},
                "status": {"conditions": conditions},
            }))
            .unwrap()
        };
        let applying = what_components_read(&env(vec![condition("Applied", "True")]));
        let failing = what_components_read(&env(vec![condition("Applied", "False")]));
        assert_ne!(
            applying, failing,
            "a failing Environment wakes its Components"
        );
        let ready_only = what_components_read(&env(vec![
            condition("Applied", "True"),
            condition("Ready", "False"),
        ]));
        assert_eq!(applying, ready_only, "another condition does not");
    }

    #[test]
    fn an_environment_is_not_woken_by_its_own_status() {
        let mut own = Fingerprints::default();
        let mut e: Environment = serde_json::from_value(serde_json::json!({
            "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": "dev", "namespace": "ws", "uid": "u1", "generation": 1},
            "spec": {"target": {"namespace": "t"}},
        }))
        .unwrap();
        assert!(wakes_itself(&mut own, &e, false), "first sight");
        e.status = Some(Default::default());
        e.status.as_mut().unwrap().linked_service_account = Some("default".into());
        assert!(!wakes_itself(&mut own, &e, false), "its own status write");
        e.metadata.generation = Some(2);
        assert!(wakes_itself(&mut own, &e, false), "the spec changed");
        e.metadata.labels = Some([("quayside.dev/shard".to_string(), "3".to_string())].into());
        assert!(
            wakes_itself(&mut own, &e, false),
            "a label (the shard) changed"
        );
        e.metadata.finalizers = Some(vec!["quayside.dev/cleanup".into()]);
        assert!(wakes_itself(&mut own, &e, false), "a finalizer");
        assert!(
            !wakes_itself(&mut own, &e, true),
            "deleted: nothing to pass"
        );
        assert!(
            wakes_itself(&mut own, &e, false),
            "seen anew after deletion"
        );
    }

    #[test]
    fn only_the_version_written_is_taken_for_our_own_and_only_once() {
        let own = OwnWrites::default();
        own.note("t", "s", "7".into());
        assert!(!own.seen("t", "other", Some("7")), "another Secret");
        assert!(own.seen("t", "s", Some("7")), "the write's own event");
        assert!(
            !own.seen("t", "s", Some("7")),
            "seen once: a later event wakes"
        );
        own.note("t", "s", "8".into());
        assert!(!own.seen("t", "s", Some("9")), "someone wrote after us");
        assert!(
            !own.seen("t", "s", Some("8")),
            "forgotten at the first event"
        );
    }

    #[test]
    fn the_other_kind_looks_again_only_when_what_it_reads_changed() {
        let mut seen = Fingerprints::default();
        assert!(seen.changed("u".into(), 1, false), "first sight");
        assert!(!seen.changed("u".into(), 1, false), "a status write only");
        assert!(seen.changed("u".into(), 2, false), "the spec changed");
        assert!(seen.changed("u".into(), 2, true), "deleted");
        assert!(
            seen.changed("u".into(), 2, false),
            "seen anew after deletion"
        );
    }
}
