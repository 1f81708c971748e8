//! What every reconcile pass shares: clients, configuration, the side
//! repository, metrics and the event recorder.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::acting::{Delegation, Writer};
use super::config::Config;
use super::error::Result;
use super::metrics::Metrics;
use super::remote_watch::RemoteWatches;
use super::stores::Stores;
use super::targets::TargetClients;
use crate::plan::ObservedSecret;
use crate::plan::requeue::FailureCounts;
use crate::plan::status::Problem;
use crate::quay::QuayClient;
use crate::tls::ExtraCa;

pub struct Context {
    pub client: Client,
    pub config: Config,
    pub quay: QuayClient,
    /// Opened lazily on the first pass; one pass at a time uses it.
    pub side_repo: Arc<super::group_commit::GroupCommit>,
    /// Trusted beside the system's CAs by the side repository and its
    /// forge (`--extra-ca-file`; the Quay client holds its own copy).
    pub extra_ca: Option<ExtraCa>,
    pub targets: TargetClients,
    /// Watches on the remote clusters Environments deliver to.
    pub remote_watches: RemoteWatches,
    /// Impersonating clients, when `config.delivery` is set.
    delegation: Option<Delegation>,
    pub metrics: Metrics,
    pub recorder: Recorder,
    /// When each in-flight rotation's tokens were persisted (component uid,
    /// target generation), for the propagation-latency metric. In memory
    /// only: a restart loses the sample, never the rotation.
    rotations_started: Mutex<HashMap<(String, i64), Instant>>,
    /// Rotations (uid, target) this process reported as finished by their
    /// deadline: a pass that still sees the old status repeats the finish.
    deadlines_reported: Mutex<std::collections::HashSet<(String, i64)>>,
    /// Components whose Quay repository and robots this process verified,
    /// by uid: (spec generation, repository). Saves a second round of Quay
    /// calls on the pass our own Secret writes trigger.
    verified: Mutex<HashMap<String, (i64, String)>>,
    /// When this process last verified each Component's Quay objects (uid
    /// → seconds): a pass that reads a status written before that
    /// verification landed does not verify again.
    quay_verified: Mutex<HashMap<String, i64>>,
    /// Failed passes in a row per object (controller, namespace/name) and
    /// the last reason: sets the backoff, and logs a failure at warn once
    /// per change of reason instead of on every retry.
    failures: Mutex<FailureCounts<FailureKey>>,
    /// Components whose last pass the API server refused for good (400,
    /// 422), by uid: (spec generation, the problem, when). A pass woken
    /// meanwhile by anything but a spec change (our own status write, say)
    /// reports the same problem without repeating the Quay calls before it.
    refusals: Mutex<HashMap<String, (i64, Problem, Instant)>>,
    /// Per Environment (uid): its target Secrets as last listed — their
    /// resourceVersions and what was read — so a pass lists again only
    /// when the watch shows a change.
    targets_seen: Mutex<HashMap<String, TargetsSeen>>,
    /// Per Component uid: good passes in a row that found Environments
    /// still behind (the propagation backstop backs off with it).
    propagation_streaks: Mutex<HashMap<String, u32>>,
    /// The resourceVersion of each workspace Secret (`namespace/name`) as
    /// this process last wrote or read it: a cached copy of another
    /// version is not trusted (the watch may be behind our own write).
    secret_versions: Mutex<HashMap<String, String>>,
    /// Side-repo folders known to hold what their inputs render.
    pub unchanged_folders: Arc<super::environment::unchanged::UnchangedFolders>,
    /// The watched objects passes read (set when the controllers start;
    /// replaced when they restart over other shards).
    stores: Mutex<Option<Arc<Stores>>>,
    /// The workspaces this replica serves (`--shards`; all without).
    pub shards: crate::shard::Shards,
}

/// An Environment's target Secrets as listed: name → resourceVersion, and
/// what the listing read.
type TargetsSeen = (BTreeMap<String, String>, Vec<ObservedSecret>);

/// (controller, `namespace/name`) of a reconciled object.
type FailureKey = (&'static str, String);

/// The kind of an event: a Warning asks a person to look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Normal,
    Warning,
}

impl Context {
    pub fn new(client: Client, config: Config, quay: QuayClient, metrics: Metrics) -> Context {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "quayside".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        let delegation = config
            .delivery
            .as_ref()
            .map(|d| Delegation::new(d.base.clone()));
        let remote_watches = RemoteWatches::new(config.remote_watch_limit, metrics.clone());
        let side_repo = Arc::<super::group_commit::GroupCommit>::default();
        let held = Arc::downgrade(&side_repo);
        crate::memory::release_at_rest(move || {
            held.upgrade().map(|side| side.release_memory()).is_some()
        });
        Context {
            client,
            remote_watches,
            config,
            delegation,
            quay,
            side_repo,
            extra_ca: None,
            targets: TargetClients::default(),
            metrics,
            recorder,
            rotations_started: Mutex::new(HashMap::new()),
            deadlines_reported: Mutex::new(Default::default()),
            verified: Mutex::new(HashMap::new()),
            quay_verified: Mutex::new(HashMap::new()),
            failures: Mutex::new(FailureCounts::default()),
            refusals: Mutex::new(HashMap::new()),
            stores: Mutex::new(None),
            targets_seen: Mutex::new(HashMap::new()),
            propagation_streaks: Mutex::new(HashMap::new()),
            unchanged_folders: Arc::default(),
            secret_versions: Mutex::new(HashMap::new()),
            shards: crate::shard::Shards::off(),
        }
    }

    /// Whether a live Environment of `workspace` delivers to another
    /// cluster (whose target Secrets no watch here sees); answered from
    /// the stores, `true` before they exist (the cautious answer).
    pub fn has_remote_target(&self, workspace: &str) -> bool {
        let stores = lock(&self.stores).clone();
        stores.is_none_or(|s| {
            s.live_environments(workspace)
                .iter()
                .any(|e| e.spec.target.cluster_credentials_secret.is_some())
        })
    }

    /// The watched objects, once every store holds its first listing.
    pub async fn stores(&self) -> Result<Arc<Stores>> {
        let stores = self
            .stores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| super::error::Error::Task("the watches have not started".into()))?;
        stores.ready().await;
        Ok(stores)
    }

    /// What the last listing of an Environment's target Secrets read, if
    /// the watch still shows exactly the versions listed then.
    pub fn targets_seen(
        &self,
        uid: &str,
        versions: &BTreeMap<String, String>,
    ) -> Option<Vec<ObservedSecret>> {
        let seen = self.targets_seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(uid)
            .filter(|(v, _)| v == versions)
            .map(|(_, o)| o.clone())
    }

    /// Keep a listing of an Environment's target Secrets (see
    /// [`Context::targets_seen`]).
    pub fn remember_targets(
        &self,
        uid: &str,
        versions: BTreeMap<String, String>,
        observed: Vec<ObservedSecret>,
    ) {
        let mut seen = self.targets_seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert(uid.to_string(), (versions, observed));
    }

    /// Fold this process's own writes to an Environment's target Secrets
    /// (name, the version written, what it holds) and deletions into what
    /// was listed: once the watch shows the versions we wrote, the pass our
    /// write wakes need not list them again. Nothing is kept for an
    /// Environment not listed yet (or whose target is remote).
    pub fn note_targets_written(
        &self,
        uid: &str,
        written: Vec<(String, ObservedSecret)>,
        deleted: &[String],
    ) {
        let mut seen = self.targets_seen.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(listed) = seen.get_mut(uid) {
            fold_written(listed, written, deleted);
        }
    }

    /// Count a Component's good pass: while `behind`, how many such passes
    /// came before this one in a row; 0 (and forgotten) once it is not.
    pub fn propagation_streak(&self, uid: &str, behind: bool) -> u32 {
        let mut streaks = lock(&self.propagation_streaks);
        if !behind {
            streaks.remove(uid);
            return 0;
        }
        let n = streaks.entry(uid.to_string()).or_default();
        let before = *n;
        *n = n.saturating_add(1);
        before
    }

    /// The workspace Secret's version last written or read here.
    pub fn secret_version(&self, key: &str) -> Option<String> {
        let v = self
            .secret_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        v.get(key).cloned()
    }

    /// Remember (or, when it is gone, forget) a workspace Secret's version.
    pub fn note_secret_version(&self, key: String, rv: Option<String>) {
        let mut v = self
            .secret_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match rv {
            Some(rv) => v.insert(key, rv),
            None => v.remove(&key),
        };
    }

    /// Forget what was listed for a deleted Environment.
    pub fn forget_targets(&self, uid: &str) {
        let mut seen = self.targets_seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.remove(uid);
    }

    /// Hand the passes the watched objects (`controller::run`, on each
    /// start of the controllers).
    pub(super) fn set_stores(&self, stores: Arc<Stores>) {
        *self.stores.lock().unwrap_or_else(|p| p.into_inner()) = Some(stores);
    }

    /// The controllers stopped: their caches go with them.
    pub(super) fn clear_stores(&self) {
        let stores = self.stores.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(s) = stores {
            s.uncount();
        }
    }

    /// Serve only the workspaces of the shards this replica holds.
    pub fn with_shards(mut self, shards: crate::shard::Shards) -> Context {
        self.shards = shards;
        self
    }

    /// Trust `ca` for the side repository and the forge too.
    pub fn with_extra_ca(mut self, ca: Option<ExtraCa>) -> Context {
        self.extra_ca = ca;
        self
    }

    /// Who writes into this cluster's namespaces for `workspace`: its
    /// delivery ServiceAccount (`account`, else the default), or the
    /// controller itself when impersonation is off.
    pub fn writer(&self, workspace: &str, account: Option<&str>) -> Result<Writer> {
        match (&self.delegation, &self.config.delivery) {
            (Some(delegation), Some(delivery)) => {
                let account =
                    crate::plan::grant::delivery_account(account, &delivery.default_account)?;
                delegation.writer(workspace, account)
            }
            _ => Ok(Writer::direct(self.client.clone())),
        }
    }

    /// Count a failed pass of `object`: how many failed in a row, and
    /// whether the reason differs from the previous failure's.
    pub fn failed_pass(
        &self,
        controller: &'static str,
        object: &str,
        reason: &'static str,
    ) -> (u32, bool) {
        lock(&self.failures).fail((controller, object.to_string()), reason)
    }

    /// A good pass of `object`: the next failure starts a new backoff.
    pub fn good_pass(&self, controller: &'static str, object: &str) -> bool {
        lock(&self.failures).succeed(&(controller, object.to_string()))
    }

    /// The full pull spec of a repository: `<registry>/<organization>/<repo>`.
    pub fn image_of(&self, repo: &str) -> String {
        format!(
            "{}/{}/{}",
            self.config.registry_host,
            self.quay.organization(),
            repo
        )
    }

    /// Whether this process verified the Component `uid`'s Quay repository
    /// `repo` for its spec `generation`.
    pub fn is_verified(&self, uid: &str, generation: i64, repo: &str) -> bool {
        lock(&self.verified)
            .get(uid)
            .is_some_and(|(g, r)| *g == generation && r == repo)
    }

    /// Remember that the API server refused this Component's pass for good.
    pub fn remember_refusal(&self, uid: &str, generation: i64, problem: Problem) {
        lock(&self.refusals).insert(uid.to_string(), (generation, problem, Instant::now()));
    }

    /// The refusal of this spec generation, while it is recent: retrying
    /// it before the backstop of a spec error would repeat every call.
    pub fn recent_refusal(&self, uid: &str, generation: i64) -> Option<Problem> {
        let backstop =
            crate::plan::requeue::retry_delay(crate::plan::requeue::Retry::SpecChange, 1);
        lock(&self.refusals)
            .get(uid)
            .filter(|(g, _, at)| *g == generation && at.elapsed() < backstop)
            .map(|(_, p, _)| p.clone())
    }

    pub fn mark_verified(&self, uid: &str, generation: i64, repo: &str) {
        lock(&self.verified).insert(uid.to_string(), (generation, repo.to_string()));
    }

    /// The Component `uid`'s Quay objects were verified at `at` (seconds).
    pub fn quay_verified(&self, uid: &str, at: i64) {
        lock(&self.quay_verified).insert(uid.to_string(), at);
    }

    /// When this process last verified the Component `uid`'s Quay objects.
    pub fn last_quay_verification(&self, uid: &str) -> Option<i64> {
        lock(&self.quay_verified).get(uid).copied()
    }

    /// The rotation of `uid` to `target` has persisted its new tokens.
    pub fn rotation_started(&self, uid: &str, target: i64) {
        lock(&self.rotations_started).insert((uid.to_string(), target), Instant::now());
    }

    /// The rotation of `uid` to `target` reached every Environment: record
    /// how long that took, when this process saw it start.
    pub fn rotation_finished(&self, uid: &str, target: i64) {
        if let Some(started) = lock(&self.rotations_started).remove(&(uid.to_string(), target)) {
            self.metrics
                .propagation_seconds
                .observe(started.elapsed().as_secs_f64());
        }
    }

    /// Whether the deadline finish of `uid`'s rotation to `target` is new to
    /// this process (then it is remembered): reported once, counted once.
    pub fn first_deadline_report(&self, uid: &str, target: i64) -> bool {
        lock(&self.deadlines_reported).insert((uid.to_string(), target))
    }

    /// Drop what this process remembers of a deleted Component.
    pub fn forget(&self, uid: &str) {
        lock(&self.verified).remove(uid);
        lock(&self.quay_verified).remove(uid);
        lock(&self.rotations_started).retain(|(u, _), _| u != uid);
        lock(&self.deadlines_reported).retain(|(u, _)| u != uid);
    }

    /// Publish a Warning event.
    pub async fn warn(&self, object: &ObjectReference, reason: &str, action: &str, note: String) {
        self.event(object, EventKind::Warning, reason, action, note)
            .await
    }

    /// Publish a Normal event.
    pub async fn notice(&self, object: &ObjectReference, reason: &str, action: &str, note: String) {
        self.event(object, EventKind::Normal, reason, action, note)
            .await
    }

    /// Publish an event; failing to record one never fails a pass.
    pub async fn event(
        &self,
        object: &ObjectReference,
        kind: EventKind,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_: match kind {
                EventKind::Normal => EventType::Normal,
                EventKind::Warning => EventType::Warning,
            },
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, object).await {
            tracing::debug!(error = %e, "could not record event");
        }
    }
}

/// A poisoned lock only means another pass panicked; the map is still usable.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a listing becomes after our own writes and deletions.
fn fold_written(
    listed: &mut TargetsSeen,
    written: Vec<(String, ObservedSecret)>,
    deleted: &[String],
) {
    let (versions, observed) = listed;
    for (rv, now) in written {
        observed.retain(|o| o.name != now.name);
        versions.insert(now.name.clone(), rv);
        observed.push(now);
    }
    for name in deleted {
        observed.retain(|o| &o.name != name);
        versions.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(name: &str, generation: i64) -> ObservedSecret {
        ObservedSecret {
            name: name.into(),
            generation: Some(generation),
            payload: None,
            labels_intact: true,
        }
    }

    #[test]
    fn own_writes_replace_what_was_listed_and_deletions_leave_it() {
        let mut listed: TargetsSeen = (
            [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "2".to_string()),
            ]
            .into(),
            vec![held("a", 1), held("b", 1)],
        );
        fold_written(
            &mut listed,
            vec![("7".into(), held("a", 2)), ("8".into(), held("c", 2))],
            &["b".to_string()],
        );
        assert_eq!(
            listed.0,
            [
                ("a".to_string(), "7".to_string()),
                ("c".to_string(), "8".to_string())
            ]
            .into()
        );
        let mut names: Vec<_> = listed
            .1
            .iter()
            .map(|o| (o.name.as_str(), o.generation))
            .collect();
        names.sort();
        assert_eq!(names, vec![("a", Some(2)), ("c", Some(2))]);
    }
}
