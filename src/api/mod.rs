//! The quayside.dev/v1alpha1 API: the Component and Environment custom resources.

mod component;
mod condition;
mod environment;
mod reference;

pub use component::{
    Component, ComponentSpec, ComponentStatus, EnvironmentDelivery, GitSource, ResolvedVisibility,
    SourceSpec, Visibility,
};
pub use condition::{ConditionType, set_condition};
pub use environment::{Environment, EnvironmentSpec, EnvironmentStatus, SideRepoSpec, TargetSpec};
pub use reference::crd_reference_markdown;

use kube::CustomResourceExt;

/// API group of every quayside resource.
pub const GROUP: &str = "quayside.dev";

/// Annotation that asks for an emergency rotation of a Component's robot tokens.
pub const GENERATE_ANNOTATION: &str = "image.redhat.com/generate";

/// Annotation that keeps the Quay repository when its Component is deleted.
pub const KEEP_REPOSITORY_ANNOTATION: &str = "quayside.dev/keep-repository";

/// The CRDs of this API, rendered as one multi-document YAML stream in a stable order.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in [Component::crd(), Environment::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd).expect("a CRD always serialises"));
    }
    out
}
