//! Controller metrics: reconciles, errors by reason, propagation latency.

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
pub struct ComponentLabels {
    pub namespace: String,
    pub component: String,
}

#[derive(Clone)]
pub struct Metrics {
    pub reconciles: Family<ReconcileLabels, Counter>,
    pub errors: Family<ErrorLabels, Counter>,
    /// Seconds from a rotation's persisted token to every Environment holding it.
    pub propagation_seconds: Histogram,
    /// Kubernetes writes (apply, patch, delete) made by reconcilers.
    pub kube_writes: Counter,
    /// Side-repository commits made.
    pub git_commits: Counter,
    /// Per Component with stragglers, how many Environments a rotation
    /// left behind at its deadline (series removed once they caught up).
    pub rotation_stragglers: Family<ComponentLabels, Gauge>,
    /// Rotations finished by their deadline rather than by every Environment.
    pub rotation_deadlines: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reconciles: Family::default(),
            errors: Family::default(),
            propagation_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            kube_writes: Counter::default(),
            git_commits: Counter::default(),
            rotation_stragglers: Family::default(),
            rotation_deadlines: Counter::default(),
        }
    }
}

impl Metrics {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "quayside_reconciles",
            "Reconcile passes by controller and result",
            self.reconciles.clone(),
        );
        registry.register(
            "quayside_reconcile_errors",
            "Failed reconcile passes by controller and reason",
            self.errors.clone(),
        );
        registry.register(
            "quayside_propagation_seconds",
            "Time from a rotated token being persisted to every Environment holding it",
            self.propagation_seconds.clone(),
        );
        registry.register(
            "quayside_kube_writes",
            "Kubernetes writes made by the reconcilers",
            self.kube_writes.clone(),
        );
        registry.register(
            "quayside_git_commits",
            "Commits pushed to the side repository",
            self.git_commits.clone(),
        );
        registry.register(
            "quayside_rotation_stragglers",
            "Environments a rotation left behind at its deadline, per Component, until they catch up",
            self.rotation_stragglers.clone(),
        );
        registry.register(
            "quayside_rotation_deadlines_passed",
            "Rotations finished by their deadline with Environments left behind",
            self.rotation_deadlines.clone(),
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
            component: component.into(),
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
}
