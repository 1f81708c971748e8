//! The Component resource: a source repository that gets a Quay image repository.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a Component asks for: where its source lives, and the visibility
/// and name of its image repository.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "quayside.dev",
    version = "v1alpha1",
    kind = "Component",
    namespaced,
    status = "ComponentStatus",
    shortname = "comp",
    category = "quayside",
    doc = "A Component: one image repository on Quay with a push and a pull robot, whose pull credentials quayside delivers to every Environment of the Component's namespace (the workspace). Status says what was provisioned and which credentials generation each Environment holds.",
    printcolumn = r#"{"name":"Image","type":"string","jsonPath":".status.image"}"#,
    printcolumn = r#"{"name":"Visibility","type":"string","jsonPath":".status.visibility"}"#,
    printcolumn = r#"{"name":"Generation","type":"integer","jsonPath":".status.credentialsGeneration"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    validation = Rule::new(
        "!has(oldSelf.status) || !has(oldSelf.status.image) || (has(self.spec.image) ? (has(oldSelf.spec.image) && self.spec.image == oldSelf.spec.image) : !has(oldSelf.spec.image))"
    ).message("spec.image cannot change once the repository is provisioned (status.image is set): create a new Component for a new repository, then delete this one"),
    // `<name>-pull.sops.yaml` must fit in a file name (255 bytes) in the
    // side repository, and `<name>-image-push` in a Secret name.
    validation = Rule::new("size(self.metadata.name) <= 240").message(
        "metadata.name is longer than 240 characters: the names derived from it (the sealed file <name>-pull.sops.yaml, the Secret <name>-image-push) would not fit; choose a shorter name"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ComponentSpec {
    /// Where the Component's source lives.
    pub source: SourceSpec,
    /// `auto` (default): private when the source repository is private, public otherwise.
    #[serde(default)]
    pub visibility: Visibility,
    /// Repository name inside the Quay organization; default `<namespace>/<component>`,
    /// sanitised to Quay's naming rules. It must lie under `<namespace>/` (another
    /// workspace's repositories are refused) and cannot change once provisioned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub image: Option<String>,
}

/// Where a Component's source lives.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SourceSpec {
    /// The git repository the Component's images are built from.
    pub git: GitSource,
}

/// A git source repository.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitSource {
    /// Clone URL of the source repository (https, http or ssh); asked
    /// anonymously when visibility is `auto`.
    #[schemars(length(max = 2048))]
    pub url: String,
}

/// Requested visibility of the image repository.
// Private and Public carry no doc comments: schemars would then describe
// each variant, and the generated enum would change shape.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Private when the source repository is private, public otherwise.
    #[default]
    Auto,
    Private,
    Public,
}

/// Visibility as applied on Quay.
// No doc comments on the variants, or the generated enum loses its `null`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResolvedVisibility {
    Private,
    Public,
}

impl ResolvedVisibility {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolvedVisibility::Private => "private",
            ResolvedVisibility::Public => "public",
        }
    }
}

/// What quayside has done for a Component.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Full pull spec, `quay.io/<org>/<repo>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<ResolvedVisibility>,
    /// Name of the workspace Secret holding the push credentials for builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_secret: Option<String>,
    /// Full name (`org+short`) of the robot with `write` on the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push_robot: Option<String>,
    /// Full name (`org+short`) of the robot with `read` on the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_robot: Option<String>,
    /// Increments on each rotation of the robot tokens.
    #[serde(default)]
    pub credentials_generation: i64,
    /// When the robot tokens were last rotated (RFC 3339); scheduled
    /// rotation (`--rotation-interval`) counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_at: Option<Time>,
    /// The last value of the `quayside.dev/rotate` annotation that was
    /// handled: a rotation happens when the annotation holds another value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_handled: Option<String>,
    /// When quayside last verified the repository, its visibility, the
    /// robots' permissions and the stored logins on Quay: at most once per
    /// `--quay-verify-interval`, the heartbeat by default (docs/quay.md,
    /// "Drift").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quay_verified_at: Option<Time>,
    /// When the rotation in flight began waiting for the Environments: its
    /// deadline (`--rotation-deadline`) counts from here, across restarts.
    // Written as null when cleared: status is merge-patched, so a field
    // left out would keep its old value.
    #[serde(default)]
    pub rotation_started_at: Option<Time>,
    /// Environments a rotation left behind when its deadline passed, while
    /// they still hold an older generation (see the Degraded condition).
    #[serde(default, serialize_with = "null_if_empty")]
    pub rotation_stragglers: Vec<String>,
    /// One entry per Environment of the workspace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environments: Vec<EnvironmentDelivery>,
    /// The `metadata.generation` this status was written for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (the summary, with the reason why not), `RepositoryReady`,
    /// `CredentialsReady`, `Propagated`, and `RotationRequest` while a
    /// rotation request is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub conditions: Vec<Condition>,
}

/// Delivery of a Component's pull credentials to one Environment.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentDelivery {
    /// Environment name.
    pub name: String,
    /// Credentials generation delivered to the target namespace.
    pub generation: i64,
    /// ServiceAccount the pull Secret is linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

/// An empty list as `null`, which a merge patch reads as "remove": the
/// field is absent from status rather than `[]` on every Component.
fn null_if_empty<S: serde::Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    if v.is_empty() {
        s.serialize_none()
    } else {
        serde::Serialize::serialize(v, s)
    }
}
