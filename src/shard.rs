//! Sharding over N replicas (`--shards`): which workspaces this replica
//! serves ([`Shards`], read by every pass) and the loop that holds shard
//! Leases to decide it ([`Sharder`]; decisions in `plan::shard` and
//! `plan::lease`).
//!
//! Each workspace namespace falls in one of S shards; each shard has a
//! Lease `quayside-shard-<i>` and each replica a membership Lease
//! `quayside-member-<identity>`. Every retry period a replica lists them
//! all (one request), renews what it holds, takes free or expired shards up
//! to its fair share (ceil(S / live members)) and gives up the rest. It
//! serves a shard only while its last successful write of that Lease was
//! sent less than the renew deadline ago: another replica can take it only
//! after seeing the Lease unchanged for the whole lease duration, later
//! still. A shard given up stops being served first; its Lease is released
//! once its passes in flight finished, or after a renew deadline of grace.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::BoxStream;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams, Preconditions};
use kube::{Client, ResourceExt};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::leader::{first, record_of, released, taken};
use crate::plan::lease::{Next, Observation, Timing, decide, observe};
use crate::plan::shard::{Holder, counts_disagree, rebalance, shard_of};
use crate::vocabulary::{
    ANNOTATION_SHARDS, LABEL_SHARDING, SHARDING_MEMBER, SHARDING_SHARD, member_lease_name,
    shard_lease_name, shard_of_lease,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ShardLabels {
    shard: String,
}

/// Which shards this replica serves, shared by the passes and the
/// [`Sharder`]; without sharding ([`Shards::off`]) every workspace is ours.
#[derive(Clone, Default)]
pub struct Shards(Option<Arc<Table>>);

struct Table {
    base: Instant,
    slots: Vec<Slot>,
    /// Bumped whenever a shard is gained, so every object is queued again.
    gained: tokio::sync::watch::Sender<u64>,
    /// The shards whose Leases this replica holds and keeps (not being
    /// given up): what its watches select. Unlike serving, a renewal late
    /// under load does not change it.
    holding: tokio::sync::watch::Sender<BTreeSet<u32>>,
    held: Gauge,
    members: Gauge,
    passes: Family<ShardLabels, Counter>,
}

#[derive(Default)]
struct Slot {
    /// Nanoseconds since `base` until which the shard is served; 0: not.
    serving_until: AtomicU64,
    in_flight: Arc<AtomicUsize>,
}

/// A pass admitted to run: counted in flight for its shard until dropped.
pub struct Pass(Option<Arc<AtomicUsize>>);

impl Drop for Pass {
    fn drop(&mut self) {
        if let Some(n) = &self.0 {
            n.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Shards {
    /// No sharding: this replica serves every workspace.
    pub fn off() -> Shards {
        Shards(None)
    }

    /// `count` shards, none served yet.
    pub fn new(count: u32) -> Shards {
        if count == 0 {
            return Shards::off();
        }
        let passes = Family::<ShardLabels, Counter>::default();
        // Every shard's series from the start, at 0: a dashboard sees the
        // shards that had no pass, and the family is always exposed.
        for shard in 0..count {
            let _ = passes.get_or_create(&ShardLabels {
                shard: shard.to_string(),
            });
        }
        Shards(Some(Arc::new(Table {
            base: Instant::now(),
            slots: (0..count).map(|_| Slot::default()).collect(),
            gained: tokio::sync::watch::channel(0).0,
            holding: tokio::sync::watch::channel(BTreeSet::new()).0,
            held: Gauge::default(),
            members: Gauge::default(),
            passes,
        })))
    }

    /// The shard of the workspace `namespace`; `None` without sharding.
    pub fn shard_of(&self, namespace: &str) -> Option<u32> {
        (self.count() > 0).then(|| shard_of(namespace, self.count()))
    }

    /// The shard label value to write on an object of the workspace
    /// `namespace` whose label is `current`, when it is not right
    /// (`plan::shard::label_to_write`); never without sharding.
    pub fn label_to_write(&self, namespace: &str, current: Option<&str>) -> Option<String> {
        crate::plan::shard::label_to_write(namespace, self.count(), current)
    }

    /// The shards whose Leases this replica holds and keeps, as they
    /// change (`None` without sharding): what its watches select.
    pub fn holding(&self) -> Option<tokio::sync::watch::Receiver<BTreeSet<u32>>> {
        Some(self.0.as_ref()?.holding.subscribe())
    }

    /// The number of shards; 0 without sharding.
    pub fn count(&self) -> u32 {
        self.0.as_ref().map_or(0, |t| t.slots.len() as u32)
    }

    /// Whether this replica serves the workspace `namespace` now.
    pub fn owns(&self, namespace: &str) -> bool {
        match &self.0 {
            None => true,
            Some(t) => t.serving(shard_of(namespace, self.count())),
        }
    }

    /// Let a pass of an object in `namespace` run if this replica serves
    /// its workspace (counting it per shard), else `None`: the pass does
    /// nothing. Counted in flight first and checked after, so a shard
    /// being given up either sees this pass or the pass sees it is not
    /// ours.
    pub fn admit(&self, namespace: &str) -> Option<Pass> {
        let Some(t) = &self.0 else {
            return Some(Pass(None));
        };
        let shard = shard_of(namespace, self.count());
        let in_flight = t.slots[shard as usize].in_flight.clone();
        in_flight.fetch_add(1, Ordering::SeqCst);
        let pass = Pass(Some(in_flight));
        if !t.serving(shard) {
            return None;
        }
        t.passes
            .get_or_create(&ShardLabels {
                shard: shard.to_string(),
            })
            .inc();
        Some(pass)
    }

    /// Yields whenever this replica gains a shard (never without
    /// sharding): the controllers then queue every object again, and the
    /// passes of the gained workspaces run.
    pub fn gained(&self) -> BoxStream<'static, ()> {
        match &self.0 {
            None => futures::stream::pending().boxed(),
            Some(t) => futures::stream::unfold(t.gained.subscribe(), |mut rx| async move {
                rx.changed().await.ok()?;
                Some(((), rx))
            })
            .boxed(),
        }
    }

    /// `quayside_shards_held`, `quayside_shard_members` and
    /// `quayside_shard_passes_total{shard}`.
    pub fn register(&self, registry: &mut Registry) {
        let Some(t) = &self.0 else { return };
        let q = registry.sub_registry_with_prefix("quayside");
        q.register(
            "shards_held",
            "Shards this replica serves (--shards)",
            t.held.clone(),
        );
        q.register(
            "shard_members",
            "Live replicas this replica counts when it takes its share of the shards",
            t.members.clone(),
        );
        q.register(
            "shard_passes",
            "Reconcile passes this replica ran, by shard of their workspace",
            t.passes.clone(),
        );
    }

    fn table(&self) -> &Table {
        self.0.as_ref().expect("sharding is on")
    }
}

impl Table {
    fn now(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }

    fn serving(&self, shard: u32) -> bool {
        let until = self.slots[shard as usize]
            .serving_until
            .load(Ordering::SeqCst);
        self.now() < until
    }

    /// Serve `shard` until `until`; true when it was not served before.
    fn serve_until(&self, shard: u32, until: Instant) -> bool {
        let was = self.serving(shard);
        let nanos = until.saturating_duration_since(self.base).as_nanos() as u64;
        self.slots[shard as usize]
            .serving_until
            .store(nanos, Ordering::SeqCst);
        !was
    }

    fn stop_serving(&self, shard: u32) {
        self.slots[shard as usize]
            .serving_until
            .store(0, Ordering::SeqCst);
    }

    fn in_flight(&self, shard: u32) -> usize {
        self.slots[shard as usize].in_flight.load(Ordering::SeqCst)
    }

    fn count_held(&self) {
        let n = (0..self.slots.len() as u32)
            .filter(|s| self.serving(*s))
            .count();
        self.held.set(n as i64);
    }

    /// Say which shards are held and kept, if that changed.
    fn hold(&self, held: BTreeSet<u32>) {
        self.holding.send_if_modified(|now| {
            let changed = *now != held;
            *now = held;
            changed
        });
    }
}

/// The Lease writes of one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    Renew,
    Take,
    Release,
}

/// When a Lease write was sent, and the Lease written (`None`: someone
/// wrote in between).
type Written = (Instant, Result<Option<Lease>, crate::leader::LeaderError>);

/// What one read of the Leases says.
struct View {
    states: Vec<Holder>,
    /// The shard Leases by shard, as read (for conditional writes).
    leases: HashMap<u32, Lease>,
    member: Option<Lease>,
    members: usize,
    disagree: bool,
    /// Membership Leases of replicas gone for long: deleted.
    gone: Vec<Lease>,
}

/// Holds this replica's shard Leases and drives [`Shards`].
pub struct Sharder {
    api: Api<Lease>,
    identity: String,
    timing: Timing,
    shards: Shards,
    started: tokio::time::Instant,
    seen: HashMap<String, Observation>,
    /// Shards being given up, since when.
    draining: BTreeMap<u32, Instant>,
    disagreed: bool,
    /// The shard Leases and our membership as last read or written: a
    /// round whose read fails still renews from them.
    known: HashMap<u32, Lease>,
    member: Option<Lease>,
}

/// A membership Lease unchanged this many lease durations is deleted.
const GONE_AFTER: u32 = 10;

impl Sharder {
    pub fn new(
        client: Client,
        namespace: &str,
        identity: &str,
        lease: Duration,
        shards: Shards,
    ) -> Sharder {
        assert!(shards.count() > 0, "a sharder needs shards");
        Sharder {
            api: Api::namespaced(client, namespace),
            identity: identity.to_string(),
            timing: Timing::for_lease(lease),
            shards,
            started: tokio::time::Instant::now(),
            seen: HashMap::new(),
            draining: BTreeMap::new(),
            disagreed: false,
            known: HashMap::new(),
            member: None,
        }
    }

    /// Hold shards until `until` resolves (the controllers drained), then
    /// give every one up and leave, so the others take them at once.
    pub async fn run(mut self, until: impl Future<Output = ()>) {
        tracing::info!(
            shards = self.shards.count(),
            identity = %self.identity,
            "sharding: taking a fair share of the shards"
        );
        tokio::pin!(until);
        loop {
            self.round().await;
            tokio::select! {
                () = &mut until => break,
                () = tokio::time::sleep(self.timing.retry) => {}
            }
        }
        self.leave().await;
    }

    /// One round: renew what is held while reading every Lease (a slow
    /// read must not cost the shards, nor our membership), then take or
    /// give up shards as the read says.
    async fn round(&mut self) {
        let shards = self.shards.clone();
        let table = shards.table();
        let ours = self.known.iter().filter(|(_, l)| self.holds(l));
        let renew: Vec<(u32, Write)> = ours.map(|(s, _)| (*s, Write::Renew)).collect();
        let (read, renewed, member) = futures::join!(
            self.read(),
            self.send(&renew),
            self.renew_membership(self.member.as_ref())
        );
        let member = match member {
            Ok(written) => written,
            Err(e) => {
                tracing::warn!(error = %e, "sharding: renewing this replica's membership");
                None
            }
        };
        let written = self.apply(renew, renewed);
        let items = match read {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(error = %e, "sharding: reading the Leases");
                self.member = member.or(self.member.take());
                table.count_held();
                return;
            }
        };
        let view = self.view(items);
        self.known = view.leases.clone();
        // What we just wrote is at least as new as what the read saw.
        for (s, lease) in written {
            if view.states[s as usize] == Holder::Us {
                self.known.insert(s, lease);
            }
        }
        // Our membership as written this round, else as read (a renewal
        // refused for a stale version goes on from the fresh one).
        self.member = member.or(view.member.clone());
        table.members.set(view.members as i64);
        // A shard not ours any more (taken after we missed renewals) stops now.
        for s in 0..self.shards.count() {
            if view.states[s as usize] != Holder::Us && table.serving(s) {
                tracing::warn!(shard = s, "sharding: lost a shard to another replica");
                table.stop_serving(s);
            }
            if view.states[s as usize] != Holder::Us {
                self.draining.remove(&s);
            }
        }
        let writes = self.plan_writes(&view);
        let results = self.send(&writes).await;
        self.apply(writes, results);
        for lease in &view.gone {
            self.delete_gone(lease).await;
        }
        table.count_held();
        table.hold(self.keeping());
    }

    /// The shards whose Leases we hold, as last read or written, less
    /// those being given up; none while shard counts disagree.
    fn keeping(&self) -> BTreeSet<u32> {
        if self.disagreed {
            return BTreeSet::new();
        }
        self.known
            .iter()
            .filter(|(s, l)| self.holds(l) && !self.draining.contains_key(s))
            .map(|(s, _)| *s)
            .collect()
    }

    /// Decide this round's writes from a read.
    fn plan_writes(&mut self, view: &View) -> Vec<(u32, Write)> {
        let shards = self.shards.clone();
        let table = shards.table();
        let ours = (0..self.shards.count()).filter(|s| view.states[*s as usize] == Holder::Us);
        if view.disagree {
            if !self.disagreed {
                tracing::error!(
                    shards = self.shards.count(),
                    "sharding: a live replica runs with another --shards; serving nothing until its Leases expire"
                );
            }
            self.disagreed = true;
            return ours
                .map(|s| {
                    table.stop_serving(s);
                    (s, Write::Release)
                })
                .collect();
        }
        self.disagreed = false;
        let draining: BTreeSet<u32> = self.draining.keys().copied().collect();
        let moves = rebalance(&self.identity, &view.states, view.members, &draining);
        if moves != Default::default() {
            tracing::debug!(
                members = view.members,
                ?moves,
                ?draining,
                "sharding: rebalancing"
            );
        }
        for s in &moves.release {
            // Stop first; the Lease goes once the shard's passes finished.
            table.stop_serving(*s);
            self.draining.insert(*s, Instant::now());
        }
        // Held shards were renewed already; a drained one is given up.
        let grace = self.timing.renew_deadline;
        let drained = |s: &u32| {
            self.draining
                .get(s)
                .is_some_and(|since| table.in_flight(*s) == 0 || since.elapsed() > grace)
        };
        let mut writes: Vec<(u32, Write)> =
            ours.filter(drained).map(|s| (s, Write::Release)).collect();
        writes.extend(moves.take.iter().map(|s| (*s, Write::Take)));
        writes
    }

    /// Send the writes at once.
    async fn send(&self, writes: &[(u32, Write)]) -> Vec<Written> {
        let sends = writes
            .iter()
            .map(|(s, w)| self.write(*s, *w, self.known.get(s)));
        futures::future::join_all(sends).await
    }

    /// Serve what the writes secured; the Leases written, by shard.
    fn apply(&mut self, writes: Vec<(u32, Write)>, results: Vec<Written>) -> Vec<(u32, Lease)> {
        let mut written = Vec::new();
        let shards = self.shards.clone();
        let table = shards.table();
        let mut gained = Vec::new();
        for ((s, w), (sent, result)) in writes.into_iter().zip(results) {
            if let Ok(Some(lease)) = &result {
                self.known.insert(s, lease.clone());
                written.push((s, lease.clone()));
            }
            match (w, result.map(|l| l.is_some())) {
                (Write::Release, Ok(true)) => {
                    self.draining.remove(&s);
                    tracing::info!(shard = s, "sharding: gave a shard up");
                }
                (Write::Release, _) => {}
                (_, Ok(true)) if self.draining.contains_key(&s) || self.disagreed => {}
                (_, Ok(true)) => {
                    if table.serve_until(s, sent + self.timing.renew_deadline) {
                        gained.push(s);
                    }
                }
                (_, Ok(false)) => {}
                (w, Err(e)) => tracing::warn!(shard = s, ?w, error = %e, "sharding: a Lease write"),
            }
        }
        if !gained.is_empty() {
            tracing::info!(shards = ?gained, "sharding: serving more shards");
            table.gained.send_modify(|n| *n += 1);
        }
        written
    }

    /// Read the Leases: each shard's holder as we judge it, the live
    /// members, and whether some live shard Lease has another shard count.
    fn view(&mut self, items: Vec<Lease>) -> View {
        let now = self.started.elapsed();
        let count = self.shards.count();
        let mut view = View {
            states: vec![Holder::Free; count as usize],
            leases: HashMap::new(),
            member: None,
            members: 1,
            disagree: false,
            gone: Vec::new(),
        };
        let mut other_counts = Vec::new();
        let names: BTreeSet<String> = items.iter().map(|l| l.name_any()).collect();
        self.seen.retain(|name, _| names.contains(name));
        for lease in items {
            let name = lease.name_any();
            let record = record_of(&lease.spec.clone().unwrap_or_default());
            let seen = observe(self.seen.get(&name), record, now);
            self.seen.insert(name.clone(), seen.clone());
            let holder = match seen.record.holder.as_deref() {
                Some(h) if h == self.identity => Holder::Us,
                _ if decide(&self.identity, false, &seen, now) == Next::Take => Holder::Free,
                _ => Holder::Other,
            };
            match lease.labels().get(LABEL_SHARDING).map(String::as_str) {
                Some(SHARDING_MEMBER) if name == member_lease_name(&self.identity) => {
                    view.member = Some(lease);
                }
                // A replica of another shard count cannot take our shards
                // (it stands aside): it is no member to share them with.
                Some(SHARDING_MEMBER) => match holder {
                    Holder::Other if count_of(&lease).is_none_or(|c| c == count) => {
                        view.members += 1
                    }
                    Holder::Other => {}
                    _ if now.saturating_sub(seen.since) > self.timing.lease * GONE_AFTER => {
                        view.gone.push(lease)
                    }
                    _ => {}
                },
                Some(SHARDING_SHARD) => {
                    if holder == Holder::Other {
                        other_counts.push(count_of(&lease));
                    }
                    if let Some(s) = shard_of_lease(&name).filter(|s| *s < count) {
                        view.states[s as usize] = holder;
                        view.leases.insert(s, lease);
                    }
                }
                _ => {}
            }
        }
        view.disagree = counts_disagree(count, other_counts);
        view
    }

    /// One shard Lease write, conditional on the version read (a create
    /// when there was none). `Ok(None)`: someone wrote in between.
    async fn write(
        &self,
        shard: u32,
        what: Write,
        read: Option<&Lease>,
    ) -> (Instant, Result<Option<Lease>, crate::leader::LeaderError>) {
        let sent = Instant::now();
        let lease = match (what, read) {
            (Write::Release, None) => return (sent, Ok(None)),
            (Write::Release, Some(l)) => {
                let mut l = l.clone();
                l.spec = Some(released(&l.spec.clone().unwrap_or_default()));
                l
            }
            (_, Some(l)) => {
                let mut l = l.clone();
                l.spec = Some(taken(
                    &l.spec.clone().unwrap_or_default(),
                    &self.identity,
                    self.timing.lease,
                ));
                l
            }
            (_, None) => self.new_lease(shard_lease_name(shard), SHARDING_SHARD),
        };
        (sent, self.put(lease, read.is_some()).await)
    }

    /// Renew (or create) this replica's membership Lease.
    async fn renew_membership(
        &self,
        read: Option<&Lease>,
    ) -> Result<Option<Lease>, crate::leader::LeaderError> {
        let lease = match read {
            Some(l) => {
                let mut l = l.clone();
                l.spec = Some(taken(
                    &l.spec.clone().unwrap_or_default(),
                    &self.identity,
                    self.timing.lease,
                ));
                l
            }
            None => self.new_lease(member_lease_name(&self.identity), SHARDING_MEMBER),
        };
        self.put(lease, read.is_some()).await
    }

    fn new_lease(&self, name: String, role: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some(name),
                labels: Some([(LABEL_SHARDING.to_string(), role.to_string())].into()),
                ..Default::default()
            },
            spec: Some(first(&self.identity, self.timing.lease)),
        }
    }

    /// Replace (conditional on the resourceVersion it carries) or create;
    /// the Lease written, or `None` when someone wrote in between.
    async fn put(
        &self,
        lease: Lease,
        existed: bool,
    ) -> Result<Option<Lease>, crate::leader::LeaderError> {
        // Every Lease we write says our shard count.
        let mut lease = lease;
        lease
            .annotations_mut()
            .insert(ANNOTATION_SHARDS.into(), self.shards.count().to_string());
        let params = PostParams::default();
        let result = if existed {
            let name = lease.name_any();
            self.bounded(self.api.replace(&name, &params, &lease)).await
        } else {
            self.bounded(self.api.create(&params, &lease)).await
        };
        match result {
            Ok(written) => Ok(Some(written)),
            Err(crate::leader::LeaderError::Kube(kube::Error::Api(e))) if e.code == 409 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Delete the membership Lease of a replica gone for long (it was
    /// killed, or its Pod's name will never come back), unless it moved.
    async fn delete_gone(&self, lease: &Lease) {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.resource_version(),
                uid: lease.uid(),
            }),
            ..Default::default()
        };
        let name = lease.name_any();
        match self.bounded(self.api.delete(&name, &params)).await {
            Ok(_) => {
                tracing::info!(lease = %name, "sharding: removed the membership of a replica gone for long")
            }
            Err(e) => tracing::debug!(lease = %name, error = %e, "sharding: removing a membership"),
        }
    }

    /// Stop serving, release every shard held and the membership.
    async fn leave(&mut self) {
        let shards = self.shards.clone();
        let table = shards.table();
        for s in 0..self.shards.count() {
            table.stop_serving(s);
        }
        table.count_held();
        table.hold(BTreeSet::new());
        let Ok(items) = self.read().await else {
            tracing::warn!("sharding: could not read the Leases to give them up; they expire");
            return;
        };
        let view = self.view(items);
        let ours: Vec<u32> = (0..self.shards.count())
            .filter(|s| view.states[*s as usize] == Holder::Us)
            .collect();
        let releases = ours
            .iter()
            .map(|s| self.write(*s, Write::Release, view.leases.get(s)));
        let released = futures::future::join_all(releases).await;
        let ok = released
            .iter()
            .filter(|(_, r)| matches!(r, Ok(Some(_))))
            .count();
        let member = member_lease_name(&self.identity);
        let _ = self
            .bounded(self.api.delete(&member, &DeleteParams::default()))
            .await;
        tracing::info!(
            released = ok,
            of = ours.len(),
            "sharding: gave the shards up"
        );
    }

    /// Whether `lease` names this replica its holder.
    fn holds(&self, lease: &Lease) -> bool {
        let holder = lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.as_deref());
        holder == Some(self.identity.as_str())
    }

    /// Every shard and membership Lease, in one request.
    async fn read(&self) -> Result<Vec<Lease>, crate::leader::LeaderError> {
        let params = ListParams::default().labels(LABEL_SHARDING);
        Ok(self.bounded(self.api.list(&params)).await?.items)
    }

    /// One API call, with a deadline well inside the renew deadline.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, crate::leader::LeaderError> {
        let limit = self.timing.renew_deadline / 2;
        match tokio::time::timeout(limit, call).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(crate::leader::LeaderError::Timeout(limit)),
        }
    }
}

/// The shard count a Lease's writer ran with.
fn count_of(lease: &Lease) -> Option<u32> {
    lease.annotations().get(ANNOTATION_SHARDS)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A namespace of shard `shard` of `count`.
    fn namespace_in(shard: u32, count: u32) -> String {
        (0..)
            .map(|i| format!("team-{i}"))
            .find(|ns| shard_of(ns, count) == shard)
            .unwrap()
    }

    #[test]
    fn without_shards_every_workspace_is_served() {
        let off = Shards::off();
        assert!(off.owns("anything"));
        assert!(off.admit("anything").is_some());
        assert_eq!(Shards::new(0).count(), 0);
    }

    #[test]
    fn a_shard_is_served_only_until_its_renew_deadline() {
        let shards = Shards::new(4);
        let t = shards.table();
        let ns = namespace_in(2, 4);
        assert!(
            !shards.owns(&ns),
            "nothing is served before a Lease is held"
        );
        assert!(t.serve_until(2, Instant::now() + Duration::from_secs(60)));
        assert!(shards.owns(&ns));
        assert!(!shards.owns(&namespace_in(1, 4)));
        // Renewed again: not a gain.
        assert!(!t.serve_until(2, Instant::now() + Duration::from_secs(60)));
        // A renewal sent longer ago than the renew deadline serves nothing.
        t.serve_until(2, Instant::now() - Duration::from_millis(1));
        assert!(!shards.owns(&ns));
        t.serve_until(2, Instant::now() + Duration::from_secs(60));
        t.stop_serving(2);
        assert!(!shards.owns(&ns));
    }

    #[test]
    fn passes_are_counted_in_flight_and_refused_outside_the_served_shards() {
        let shards = Shards::new(4);
        let t = shards.table();
        let ns = namespace_in(3, 4);
        assert!(shards.admit(&ns).is_none());
        assert_eq!(t.in_flight(3), 0, "a refused pass is not in flight");
        t.serve_until(3, Instant::now() + Duration::from_secs(60));
        let pass = shards.admit(&ns).expect("served");
        let second = shards.admit(&ns).expect("served");
        assert_eq!(t.in_flight(3), 2);
        drop(pass);
        assert_eq!(t.in_flight(3), 1);
        // Given up: new passes refused, the one in flight still counted.
        t.stop_serving(3);
        assert!(shards.admit(&ns).is_none());
        assert_eq!(t.in_flight(3), 1);
        drop(second);
        assert_eq!(t.in_flight(3), 0);
        let mut registry = Registry::default();
        shards.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("quayside_shard_passes_total{shard=\"3\"} 2"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn gaining_a_shard_is_announced() {
        let shards = Shards::new(2);
        let mut gained = shards.gained();
        shards.table().gained.send_modify(|n| *n += 1);
        let next = tokio::time::timeout(Duration::from_secs(5), gained.next()).await;
        assert_eq!(next.unwrap(), Some(()));
    }
}
