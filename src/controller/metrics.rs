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
    /// Watch pairs running on remote clusters (one per identity and namespace).
    pub remote_watches: Gauge,
    /// Remote watch pairs wanted beyond `--remote-watch-limit`.
    pub remote_watches_over_limit: Gauge,
    /// Failed list or watch attempts on remote clusters.
    pub remote_watch_failures: Counter,
    /// Environment passes asked for by remote watch events.
    pub remote_watch_triggers: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reconciles: Family::default(),
            errors: Family::default(),
            propagation_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 14)),
            kube_writes: Counter::default(),
            git_commits: Counter::default(),
            remote_watches: Gauge::default(),
            remote_watches_over_limit: Gauge::default(),
            remote_watch_failures: Counter::default(),
            remote_watch_triggers: Counter::default(),
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
            "quayside_remote_watches",
            "Watch pairs (Secrets, ServiceAccounts) running on remote clusters",
            self.remote_watches.clone(),
        );
        registry.register(
            "quayside_remote_watches_over_limit",
            "Remote watch pairs wanted beyond --remote-watch-limit (healed by the heartbeat only)",
            self.remote_watches_over_limit.clone(),
        );
        registry.register(
            "quayside_remote_watch_failures",
            "Failed list or watch attempts on remote clusters",
            self.remote_watch_failures.clone(),
        );
        registry.register(
            "quayside_remote_watch_triggers",
            "Environment passes asked for by events on remote clusters",
            self.remote_watch_triggers.clone(),
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

    pub fn failed(&self, controller: &str, reason: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                controller: controller.into(),
                reason: reason.into(),
            })
            .inc();
    }
}
