//! Metrics of the Quay client: HTTP attempts by endpoint and outcome,
//! retries, and latency, ready to register in a Prometheus registry.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of one HTTP attempt.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub endpoint: &'static str,
    /// `ok`, `client_error`, `throttled`, `server_error` or `network_error`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub endpoint: &'static str,
}

type LatencyFamily = Family<EndpointLabels, Histogram, fn() -> Histogram>;

/// Counters and histograms of a [`super::QuayClient`]; clones share the values.
#[derive(Clone)]
pub struct QuayMetrics {
    attempts: Family<AttemptLabels, Counter>,
    retries: Family<EndpointLabels, Counter>,
    latency: LatencyFamily,
    total: std::sync::Arc<AtomicU64>,
}

impl std::fmt::Debug for QuayMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuayMetrics")
            .field("total_calls", &self.total_calls())
            .finish_non_exhaustive()
    }
}

fn latency_histogram() -> Histogram {
    // 5 ms .. ~20 s
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

impl Default for QuayMetrics {
    fn default() -> Self {
        QuayMetrics {
            attempts: Family::default(),
            retries: Family::default(),
            latency: Family::new_with_constructor(latency_histogram as fn() -> Histogram),
            total: Default::default(),
        }
    }
}

impl QuayMetrics {
    /// Add these metrics to `registry` (names prefixed `quayside_quay_`,
    /// like every quayside metric).
    pub fn register(&self, registry: &mut Registry) {
        let sub = registry.sub_registry_with_prefix("quayside_quay");
        sub.register(
            "api_requests",
            "HTTP requests sent to the Quay API, by endpoint and outcome",
            self.attempts.clone(),
        );
        sub.register(
            "api_retries",
            "Quay API requests retried after a transient failure",
            self.retries.clone(),
        );
        sub.register(
            "api_request_duration_seconds",
            "Latency of Quay API requests",
            self.latency.clone(),
        );
    }

    /// HTTP requests sent so far, every attempt counted.
    pub fn total_calls(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }

    /// Requests sent to `endpoint` that ended with `outcome`.
    pub fn calls(&self, endpoint: &'static str, outcome: &'static str) -> u64 {
        self.attempts
            .get_or_create(&AttemptLabels { endpoint, outcome })
            .get()
    }

    /// Retries of `endpoint`.
    pub fn retries(&self, endpoint: &'static str) -> u64 {
        self.retries
            .get_or_create(&EndpointLabels { endpoint })
            .get()
    }

    pub(crate) fn observe(&self, endpoint: &'static str, outcome: &'static str, seconds: f64) {
        self.total.fetch_add(1, Ordering::Relaxed);
        self.attempts
            .get_or_create(&AttemptLabels { endpoint, outcome })
            .inc();
        self.latency
            .get_or_create(&EndpointLabels { endpoint })
            .observe(seconds);
    }

    pub(crate) fn retried(&self, endpoint: &'static str) {
        self.retries
            .get_or_create(&EndpointLabels { endpoint })
            .inc();
    }
}
