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
    /// `Ready` (the summary, with the reason why not), `Applied` (pull
    /// Secrets applied and linked in the target namespace) and `Committed`
    /// (sealed folder committed to the side repository).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub conditions: Vec<Condition>,
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
