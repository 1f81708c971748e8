//! Labels and annotations quayside puts on the objects it owns.

use std::collections::BTreeMap;

// The label and annotation keys are the rendering's: the Secret applied to a
// target and the one sealed into git carry the same metadata.
pub const MANAGED_BY: &str = crate::render::LABEL_MANAGED_BY;
pub const MANAGED_BY_VALUE: &str = "quayside";
pub const COMPONENT: &str = crate::render::LABEL_COMPONENT;
pub const WORKSPACE: &str = crate::render::LABEL_WORKSPACE;
pub const ENVIRONMENT: &str = crate::render::LABEL_ENVIRONMENT;
pub const ROLE: &str = "quayside.dev/role";
pub const GENERATION: &str = crate::render::ANNOTATION_GENERATION;
pub const FINALIZER: &str = "quayside.dev/cleanup";
/// Field manager for server-side apply.
pub const FIELD_MANAGER: &str = "quayside";

/// Selector for every object quayside manages.
pub fn managed_selector() -> String {
    format!("{MANAGED_BY}={MANAGED_BY_VALUE}")
}

/// Name of a Component's workspace Secret for a robot role (`push` / `pull`).
pub fn workspace_secret_name(component: &str, role: &str) -> String {
    format!("{component}-image-{role}")
}

/// Labels of a workspace Secret.
pub fn workspace_labels(component: &str, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
        (COMPONENT.to_string(), component.to_string()),
        (ROLE.to_string(), role.to_string()),
    ])
}

/// The credentials generation recorded in an object's annotations.
pub fn generation_of(annotations: Option<&BTreeMap<String, String>>) -> Option<i64> {
    annotations?.get(GENERATION)?.parse().ok()
}
