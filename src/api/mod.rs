//! The quayside.dev/v1alpha1 API: the Component and Environment custom resources.

mod component;
mod condition;
mod environment;
mod reference;
pub(crate) mod schema;

pub use component::{
    Component, ComponentSpec, ComponentStatus, EnvironmentDelivery, GitSource, ResolvedVisibility,
    SourceSpec, Visibility,
};
pub use condition::{ConditionStatus, ConditionType, ConditionValue, set_condition};
pub use environment::{
    Environment, EnvironmentSpec, EnvironmentStatus, SideRepoSpec, TargetSpec,
    default_side_repo_path,
};
pub use reference::crd_reference_markdown;

use kube::CustomResourceExt;

// The keys live in `crate::vocabulary`; these names are what tools and
// tests outside the controller import.
pub use crate::vocabulary::{
    ANNOTATION_GENERATE as GENERATE_ANNOTATION,
    ANNOTATION_KEEP_REPOSITORY as KEEP_REPOSITORY_ANNOTATION,
    ANNOTATION_ROTATE as ROTATE_ANNOTATION, GROUP,
};

/// The CRDs of this API, rendered as one multi-document YAML stream in a stable order.
pub fn crds_yaml() -> String {
    let mut out = String::new();
    for crd in [Component::crd(), Environment::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_norway::to_string(&crd).expect("a CRD always serialises"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_too_long_for_derived_objects_are_refused_by_the_crd() {
        let crd = serde_json::to_value(Component::crd()).unwrap();
        let rules =
            &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["x-kubernetes-validations"];
        let text = rules.to_string();
        assert!(
            text.contains("size(self.metadata.name) <= 240"),
            "no name-length rule on the Component CRD: {text}"
        );
    }
}
