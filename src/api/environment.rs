//! The Environment resource: a target namespace that receives pull credentials.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an Environment asks for: the target namespace, the ServiceAccount
/// to link, who may decrypt its sealed Secrets, and its side-repo folder.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "quayside.dev",
    version = "v1alpha1",
    kind = "Environment",
    namespaced,
    status = "EnvironmentStatus",
    shortname = "env",
    category = "quayside",
    doc = "An Environment: a namespace (in this cluster or another) that every Component of the workspace (the Environment's namespace) is deployed to. quayside applies each Component's pull Secret there, links it to a ServiceAccount, and commits it sealed with SOPS and age to the side repository.",
    printcolumn = r#"{"name":"Target","type":"string","jsonPath":".spec.target.namespace"}"#,
    printcolumn = r#"{"name":"ServiceAccount","type":"string","jsonPath":".status.linkedServiceAccount"}"#,
    printcolumn = r#"{"name":"Commit","type":"string","jsonPath":".status.commit"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// Where the workloads of this Environment run.
    pub target: TargetSpec,
    /// Link the pull Secrets to this ServiceAccount of the target namespace
    /// instead of `deployer` (when it exists), else `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::service_account_name")]
    pub service_account: Option<String>,
    /// age public keys (`age1…`, as `age-keygen -y` prints them) that may
    /// decrypt this Environment's sealed Secrets, e.g. Argo CD's; at most 32.
    /// The controller's own recipient is always added.
    #[serde(default)]
    #[schemars(schema_with = "crate::api::schema::recipients")]
    pub recipients: Vec<String>,
    /// Where this Environment's sealed files go in the side repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side_repo: Option<SideRepoSpec>,
    /// Who writes the pull Secrets into the target, and which GitOps
    /// objects to wake after a push (docs/side-repo.md, "Delivery modes").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliverySpec>,
}

/// How an Environment's pull Secrets reach the target namespace.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliverySpec {
    /// `Direct`: quayside applies the Secrets, nothing is committed.
    /// `GitOps`: quayside only commits; a GitOps engine applies, and quayside
    /// reads the target to learn which generation is live. `Both`: commit,
    /// then apply. Default: the controller's `--delivery-mode`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<DeliveryMode>,
    /// In `GitOps` mode, what an emergency rotation (the live token already
    /// revoked by Quay) does: `Direct` (default) applies the new Secret at
    /// once, without waiting for the engine or a review; `Wait` waits for
    /// the engine like any other change (pulls fail meanwhile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency: Option<EmergencyDelivery>,
    /// GitOps objects annotated after each push so the engine syncs at
    /// once: Flux `GitRepository` / `Kustomization`
    /// (`reconcile.fluxcd.io/requestedAt`) or an Argo CD `Application`
    /// (`argocd.argoproj.io/refresh`). Patched as the workspace's delivery
    /// ServiceAccount, which needs the `quayside-wake` ClusterRole bound in
    /// the object's namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub wake: Vec<EngineRef>,
}

/// Who writes the target Secrets.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum DeliveryMode {
    Direct,
    GitOps,
    Both,
}

impl DeliveryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::Direct => "Direct",
            DeliveryMode::GitOps => "GitOps",
            DeliveryMode::Both => "Both",
        }
    }
}

/// An emergency rotation's delivery in `GitOps` mode.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum EmergencyDelivery {
    #[default]
    Direct,
    Wait,
}

/// A GitOps engine object to wake after a push.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EngineRef {
    /// Which kind of engine object: `GitRepository`, `Kustomization` or
    /// `Application`.
    pub kind: EngineKind,
    /// Its name.
    #[schemars(schema_with = "crate::api::schema::engine_object_name")]
    pub name: String,
    /// Its namespace; default the Environment's own (the workspace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::engine_namespace")]
    pub namespace: Option<String>,
}

/// The kinds quayside knows how to wake.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum EngineKind {
    /// Flux `source.toolkit.fluxcd.io/v1` GitRepository.
    GitRepository,
    /// Flux `kustomize.toolkit.fluxcd.io/v1` Kustomization.
    Kustomization,
    /// Argo CD `argoproj.io/v1alpha1` Application.
    Application,
}

/// Where workloads of this Environment run.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetSpec {
    /// Namespace workloads are deployed to (a DNS label: lower-case
    /// letters, digits and `-`, at most 63 characters).
    #[schemars(schema_with = "crate::api::schema::namespace_name")]
    pub namespace: String,
    /// Name of a Secret in the workspace holding a kubeconfig (key `kubeconfig`)
    /// for another cluster; absent means this cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::secret_name")]
    pub cluster_credentials_secret: Option<String>,
    /// ServiceAccount of this workspace that quayside acts as (impersonates)
    /// to write the pull Secrets and ServiceAccount links in `namespace` of
    /// this cluster; the namespace's owner grants it by binding the
    /// ClusterRole `quayside-delivery`. Default: the controller's
    /// `--default-delivery-service-account` (`quayside-delivery`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::delivery_account_name")]
    pub delivery_service_account: Option<String>,
}

/// Placement of this Environment in the side repository.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SideRepoSpec {
    /// Folder in the side repository; default `environments/<workspace>/<name>`.
    /// It must lie inside `environments/<workspace>/` (the Environment's
    /// namespace), e.g. `environments/<workspace>/eu/prod`: lower-case names
    /// (letters, digits, `-`, `_`, `.`) separated by `/`, relative, without
    /// `.`, `..` or empty parts. An administrator may allow any folder under
    /// `environments/` (`--side-repo-any-path`); nothing outside it is ever
    /// written. A folder overlapping an older Environment's is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::api::schema::side_repo_path")]
    pub path: Option<String>,
}

/// What quayside has done for an Environment.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentStatus {
    /// The ServiceAccount of the target namespace the pull Secrets are linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linked_service_account: Option<String>,
    /// When a pass last changed what this Environment delivers (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync: Option<Time>,
    /// Side-repo commit of the last pass that changed this Environment's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Side-repo folder this Environment's files were last written to; when
    /// the folder changes, this one is removed in the commit that writes
    /// the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side_repo_path: Option<String>,
    /// The `metadata.generation` this status was written for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The delivery mode in effect (`Direct`, `GitOps` or `Both`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_mode: Option<String>,
    /// Per Component, the credentials generation the target serves, as
    /// read from it by the last pass (GitOps and Both modes).
    /// (Always serialised: status is merge-patched, and an empty list or a
    /// null is what removes the previous value.)
    #[serde(default)]
    pub live: Vec<LiveGeneration>,
    /// The open pull request that holds this Environment's change, while
    /// it awaits review (GitOps mode with a pull-request side repository).
    #[serde(default)]
    pub pull_request: Option<String>,
    /// `Ready` (the summary, with the reason why not), `Applied` (pull
    /// Secrets applied and linked in the target namespace) and `Committed`
    /// (sealed folder committed to the side repository).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub conditions: Vec<Condition>,
}

/// What the target serves for one Component.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveGeneration {
    pub component: String,
    /// The generation the target Secret holds; absent when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// The generation quayside wants there.
    pub desired: i64,
}

impl EnvironmentSpec {
    /// The side-repo folder asked for by an Environment named `name` in
    /// `workspace`, as written: the controller checks it
    /// (`plan::side_path::folder`) before writing anything.
    pub fn side_repo_path(&self, workspace: &str, name: &str) -> String {
        self.custom_side_repo_path()
            .map(String::from)
            .unwrap_or_else(|| default_side_repo_path(workspace, name))
    }

    /// `spec.delivery.mode`, when set.
    pub fn delivery_mode(&self) -> Option<DeliveryMode> {
        self.delivery.as_ref().and_then(|d| d.mode)
    }

    /// `spec.sideRepo.path`, when set.
    pub fn custom_side_repo_path(&self) -> Option<&str> {
        self.side_repo.as_ref().and_then(|s| s.path.as_deref())
    }
}

/// The default side-repo folder: one folder per workspace, so same-named
/// Environments of two workspaces never share one.
pub fn default_side_repo_path(workspace: &str, name: &str) -> String {
    format!("environments/{workspace}/{name}")
}
