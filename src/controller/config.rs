//! The controller's configuration, assembled by `quayside run` from flags.

use std::time::Duration;

use crate::gitops::SideRepoConfig;
use crate::plan::side_path::PathScope;
use crate::quay::RetryPolicy;
use crate::render::KustomizeFlavor;
use crate::seal::Identity;
use crate::source::ProbeScope;

/// Everything a running controller needs to know.
pub struct Config {
    /// Registry host written into pull Secrets and status (`quay.io`).
    pub registry_host: String,
    /// The GitOps side repository; `None` delivers to clusters only.
    pub side_repo: Option<SideRepoConfig>,
    /// Who writes an Environment's pull Secrets when its spec does not say
    /// (`--delivery-mode`); see `plan::delivery`.
    pub delivery_mode: crate::api::DeliveryMode,
    pub flavor: KustomizeFlavor,
    /// The controller's own age identity: always a recipient, so it can
    /// re-read (and minimally re-seal) what it wrote.
    pub identity: Identity,
    /// How often every Environment and Component is reconciled again.
    pub heartbeat: Duration,
    /// How often a Component's Quay objects are verified (the heartbeat
    /// pass does it when this much time has passed since the last one).
    pub quay_verify_interval: Duration,
    /// Rotate every Component's robots this often, without downtime (new
    /// robots are delivered before the old ones are deleted). `None`: never.
    pub rotation_interval: Option<Duration>,
    /// A rotation that has waited this long for its Environments finishes
    /// for those that hold the new token; the others are named stragglers
    /// (`--rotation-deadline`). `None`: wait for every Environment.
    pub rotation_deadline: Option<Duration>,
    /// How long cleanup waits on an unreachable target before giving up.
    pub cleanup_timeout: Duration,
    /// Retries of the anonymous source-repository probe.
    pub source_retry: RetryPolicy,
    /// Which hosts that probe may reach (public ones only, by default).
    pub source_scope: ProbeScope,
    /// Watch Components and Environments in this namespace only (all when unset).
    pub namespace: Option<String>,
    /// Writes into namespaces of this cluster (workspace credentials,
    /// target pull Secrets and their links) act as a ServiceAccount of the
    /// workspace, so RBAC decides where a tenant may deliver. `None`: they
    /// act as the controller itself (`--impersonate false`, single-tenant).
    pub delivery: Option<DeliveryIdentity>,
    /// Where `spec.sideRepo.path` may point (`--side-repo-any-path`).
    pub side_repo_scope: PathScope,
    /// The storm guard's window (`--rotation-request-cooldown`): the
    /// generate annotation set again this soon after a rotation is refused.
    /// Zero turns the guard off.
    pub rotation_request_cooldown: Duration,
    /// Passes of each reconciler that run at once (`--concurrency`).
    pub concurrency: u16,
    /// Watch pairs on remote clusters at most (`--remote-watch-limit`).
    pub remote_watch_limit: usize,
}

/// How namespace writes impersonate a workspace's ServiceAccount.
#[derive(Clone)]
pub struct DeliveryIdentity {
    /// The controller's own client configuration, to impersonate from.
    pub base: kube::Config,
    /// The account when an Environment names none (and for Components).
    pub default_account: String,
}
