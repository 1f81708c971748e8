//! Controller metrics, every one named `quayside_…`: passes and their
//! duration, errors by reason, each object's Ready condition, each
//! Component's last rotation, propagation latency, writes, and build info.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    pub controller: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

/// One Component or Environment.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectLabels {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

/// One Component.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ComponentLabels {
    pub namespace: String,
    pub name: String,
}

/// One kind of object the watches cache.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

/// The kinds of `quayside_cached_objects`, as `controller::stores` names them.
pub const CACHED_KINDS: [&str; 4] = [
    "component",
    "environment",
    "workspace_secret",
    "target_secret",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub commit: String,
}

type DurationFamily = Family<ControllerLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 10 ms .. ~80 s: a pass is a few API calls, a Quay call or a git push.
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    /// Seconds one reconcile pass took, by controller.
    pub reconcile_seconds: DurationFamily,
    /// 1 while an object's Ready condition is True, else 0.
    pub ready: Family<ObjectLabels, Gauge>,
    /// Unix time of each Component's last completed rotation (its creation
    /// until then: the time the rotation schedule counts from).
    pub rotated_at: Family<ComponentLabels, Gauge>,
    /// Seconds from a rotation's persisted token to every Environment holding it.
    pub propagation_seconds: Histogram,
    /// Kubernetes writes (apply, patch, delete) made by reconcilers.
    pub kube_writes: Counter,
    /// Side-repository commits made.
    pub git_commits: Counter,
    /// Watch pairs running on remote clusters (one per identity and namespace).
    pub remote_watches: Gauge,
    /// Remote watch pairs wanted beyond `--remote-watch-limit`.
    pub remote_watches_over_limit: Gauge,
    /// Failed list or watch attempts on remote clusters.
    pub remote_watch_failures: Counter,
    /// Environment passes asked for by remote watch events.
    pub remote_watch_triggers: Counter,
    /// Per Component with stragglers, how many Environments a rotation
    /// left behind at its deadline (series removed once they caught up).
    pub rotation_stragglers: Family<ComponentLabels, Gauge>,
    /// Rotations finished by their deadline rather than by every Environment.
    pub rotation_deadlines: Counter,
    /// Objects held by the watches' caches now, by kind ([`CACHED_KINDS`]):
    /// with `--shards`, those of this replica's shards only.
    pub cached_objects: Family<KindLabels, Gauge>,
    build_info: Family<BuildLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
                commit: build_commit().into(),
            })
            .set(1);
        Metrics {
            reconciles: Family::default(),
            errors: Family::default(),
            reconcile_seconds: Family::new_with_constructor(
                duration_histogram as fn() -> Histogram,
            ),
            ready: Family::default(),
            rotated_at: Family::default(),
            propagation_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            kube_writes: Counter::default(),
            git_commits: Counter::default(),
            remote_watches: Gauge::default(),
            remote_watches_over_limit: Gauge::default(),
            remote_watch_failures: Counter::default(),
            remote_watch_triggers: Counter::default(),
            build_info,
            rotation_stragglers: Family::default(),
            rotation_deadlines: Counter::default(),
            cached_objects: cached_objects(),
        }
    }
}

/// Every kind's series from the start, at 0.
fn cached_objects() -> Family<KindLabels, Gauge> {
    let family = Family::<KindLabels, Gauge>::default();
    for kind in CACHED_KINDS {
        let _ = family.get_or_create(&KindLabels { kind: kind.into() });
    }
    family
}

/// The git commit the binary was built from, when the build said
/// (`QUAYSIDE_GIT_COMMIT` at compile time), else `unknown`.
pub fn build_commit() -> &'static str {
    match option_env!("QUAYSIDE_GIT_COMMIT") {
        Some(c) if !c.is_empty() => c,
        _ => "unknown",
    }
}

/// The metric names this module, the Quay client and sharding
/// (`shard::Shards`) register, as they appear in `/metrics` (counters carry
/// `_total`, histograms `_bucket`, `_sum`, `_count`). The dashboard and
/// alert tests check their queries against this list.
pub const FAMILIES: &[&str] = &[
    "quayside_build_info",
    "quayside_reconciles_total",
    "quayside_reconcile_errors_total",
    "quayside_reconcile_duration_seconds",
    "quayside_object_ready",
    "quayside_component_rotated_timestamp_seconds",
    "quayside_propagation_seconds",
    "quayside_kube_writes_total",
    "quayside_git_commits_total",
    "quayside_remote_watches",
    "quayside_remote_watches_over_limit",
    "quayside_remote_watch_failures_total",
    "quayside_remote_watch_triggers_total",
    "quayside_rotation_stragglers",
    "quayside_rotation_deadlines_passed_total",
    "quayside_quay_api_requests_total",
    "quayside_quay_api_retries_total",
    "quayside_quay_api_request_duration_seconds",
    "quayside_cached_objects",
    "quayside_shards_held",
    "quayside_shard_members",
    "quayside_shard_passes_total",
];

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        let q = registry.sub_registry_with_prefix("quayside");
        q.register(
            "build_info",
            "The running quayside's version and git commit (always 1)",
            self.build_info.clone(),
        );
        q.register(
            "reconciles",
            "Reconcile passes by controller and result",
            self.reconciles.clone(),
        );
        q.register(
            "reconcile_errors",
            "Failed reconcile passes by controller and reason",
            self.errors.clone(),
        );
        q.register(
            "reconcile_duration_seconds",
            "Time one reconcile pass took, by controller",
            self.reconcile_seconds.clone(),
        );
        q.register(
            "object_ready",
            "1 while a Component's or Environment's Ready condition is True, else 0",
            self.ready.clone(),
        );
        q.register(
            "component_rotated_timestamp_seconds",
            "Unix time of each Component's last token rotation, or of its creation before the first",
            self.rotated_at.clone(),
        );
        q.register(
            "propagation_seconds",
            "Time from a rotated token being persisted to every Environment holding it",
            self.propagation_seconds.clone(),
        );
        q.register(
            "kube_writes",
            "Kubernetes writes made by the reconcilers",
            self.kube_writes.clone(),
        );
        q.register(
            "git_commits",
            "Commits pushed to the side repository",
            self.git_commits.clone(),
        );
        q.register(
            "remote_watches",
            "Watch pairs (Secrets, ServiceAccounts) running on remote clusters",
            self.remote_watches.clone(),
        );
        q.register(
            "remote_watches_over_limit",
            "Remote watch pairs wanted beyond --remote-watch-limit (healed by the heartbeat only)",
            self.remote_watches_over_limit.clone(),
        );
        q.register(
            "remote_watch_failures",
            "Failed list or watch attempts on remote clusters",
            self.remote_watch_failures.clone(),
        );
        q.register(
            "remote_watch_triggers",
            "Environment passes asked for by events on remote clusters",
            self.remote_watch_triggers.clone(),
        );
        q.register(
            "rotation_stragglers",
            "Environments a rotation left behind at its deadline, per Component, until they catch up",
            self.rotation_stragglers.clone(),
        );
        q.register(
            "rotation_deadlines_passed",
            "Rotations finished by their deadline with Environments left behind",
            self.rotation_deadlines.clone(),
        );
        q.register(
            "cached_objects",
            "Objects the watches cache, by kind (with --shards: this replica's shards' only)",
            self.cached_objects.clone(),
        );
    }

    pub fn reconciled(&self, controller: &str, result: &str) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                controller: controller.into(),
                result: result.into(),
            })
            .inc();
    }

    /// Publish a Component's stragglers (none: its series goes).
    pub fn stragglers(&self, namespace: &str, component: &str, count: usize) {
        let labels = ComponentLabels {
            namespace: namespace.into(),
            name: component.into(),
        };
        if count == 0 {
            self.rotation_stragglers.remove(&labels);
        } else {
            self.rotation_stragglers
                .get_or_create(&labels)
                .set(count as i64);
        }
    }

    pub fn failed(&self, controller: &str, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                controller: controller.into(),
                reason: reason.into(),
            })
            .inc();
    }

    /// Record how long one pass of `controller` took.
    pub fn timed(&self, controller: &str, took: Duration) {
        self.reconcile_seconds
            .get_or_create(&ControllerLabels {
                controller: controller.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// Record the Ready condition of `kind` `namespace/name` as its status
    /// now says.
    pub fn observe_ready(&self, kind: &str, namespace: &str, name: &str, conditions: &[Condition]) {
        self.ready
            .get_or_create(&object_labels(kind, namespace, name))
            .set(ready_value(conditions));
    }

    /// Record a Component's last rotation (Unix seconds).
    pub fn observe_rotation(&self, namespace: &str, name: &str, at_unix_seconds: i64) {
        self.rotated_at
            .get_or_create(&ComponentLabels {
                namespace: namespace.into(),
                name: name.into(),
            })
            .set(at_unix_seconds);
    }

    /// Drop every series of an object that is gone, so a deleted object
    /// is not reported as not Ready for ever.
    pub fn forget(&self, kind: &str, namespace: &str, name: &str) {
        self.ready.remove(&object_labels(kind, namespace, name));
        let component = ComponentLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        self.rotated_at.remove(&component);
        self.rotation_stragglers.remove(&component);
    }
}

fn object_labels(kind: &str, namespace: &str, name: &str) -> ObjectLabels {
    ObjectLabels {
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// 1 when the conditions hold `Ready=True`, else 0 (no Ready condition yet
/// counts as not ready: a new object has not been reconciled).
pub fn ready_value(conditions: &[Condition]) -> i64 {
    conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True") as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn condition(type_: &str, status: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: "R".into(),
            message: String::new(),
            last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
            observed_generation: None,
        }
    }

    #[test]
    fn ready_value_reads_only_the_ready_condition() {
        let cases: &[(&[(&str, &str)], i64)] = &[
            (&[], 0),
            (&[("Ready", "True")], 1),
            (&[("Ready", "False")], 0),
            (&[("Ready", "Unknown")], 0),
            (&[("RepositoryReady", "True"), ("Ready", "False")], 0),
            (&[("RepositoryReady", "False"), ("Ready", "True")], 1),
            (&[("Propagated", "True")], 0),
        ];
        for (conditions, want) in cases {
            let conditions: Vec<_> = conditions.iter().map(|(t, s)| condition(t, s)).collect();
            assert_eq!(ready_value(&conditions), *want, "{conditions:?}");
        }
    }

    fn exposed(registry: &Registry) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, registry).unwrap();
        out
    }

    #[test]
    fn every_family_is_registered_under_quayside() {
        let m = Metrics::default();
        let quay = crate::quay::QuayMetrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        quay.register(&mut registry);
        crate::shard::Shards::new(2).register(&mut registry);
        // A family without a series is not exposed: give each one.
        m.reconciled("component", "ok");
        m.failed("component", "QuayUnavailable");
        m.timed("component", Duration::from_millis(20));
        m.observe_ready("component", "ns", "a", &[]);
        m.observe_rotation("ns", "a", 0);
        m.stragglers("ns", "a", 1);
        quay.observe("get_robot", "ok", 0.01);
        quay.retried("get_robot");
        let text = exposed(&registry);
        let mut names: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        names.sort();
        for name in &names {
            assert!(
                name.starts_with("quayside_"),
                "{name} is not under quayside_"
            );
        }
        // `# TYPE` names counters without `_total`: compare the families.
        let mut want: Vec<&str> = FAMILIES
            .iter()
            .map(|f| f.strip_suffix("_total").unwrap_or(f))
            .collect();
        want.sort();
        assert_eq!(names, want);
    }

    #[test]
    fn build_info_names_the_version_and_a_deleted_object_is_forgotten() {
        let m = Metrics::default();
        let mut registry = Registry::default();
        m.register(&mut registry);
        m.observe_ready("component", "ns", "a", &[condition("Ready", "True")]);
        m.observe_ready("environment", "ns", "e", &[condition("Ready", "False")]);
        m.observe_rotation("ns", "a", 1_700_000_000);
        let text = exposed(&registry);
        let version = env!("CARGO_PKG_VERSION");
        assert!(text.contains(&format!(
            "quayside_build_info{{version=\"{version}\",commit=\"{}\"}} 1",
            build_commit()
        )));
        assert!(
            text.contains(r#"quayside_object_ready{kind="component",namespace="ns",name="a"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"quayside_object_ready{kind="environment",namespace="ns",name="e"} 0"#)
        );
        assert!(text.contains(
            r#"quayside_component_rotated_timestamp_seconds{namespace="ns",name="a"} 1700000000"#
        ));
        m.forget("component", "ns", "a");
        let text = exposed(&registry);
        assert!(!text.contains(r#"name="a""#), "{text}");
        assert!(text.contains(r#"name="e""#));
    }
}
