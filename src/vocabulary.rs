//! Every label and annotation key, object name and finalizer quayside uses,
//! in one place: the Secret applied to a target and the one sealed into git
//! carry the same metadata, and the watches select on the same keys.

use std::collections::BTreeMap;

use crate::names::RobotRole;

/// API group of quayside's resources.
pub const GROUP: &str = "quayside.dev";

/// Label on every object quayside manages; its value is [`MANAGED_BY_VALUE`].
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "quayside";
/// The workspace (namespace of the Component and Environment) a target Secret serves.
pub const LABEL_WORKSPACE: &str = "quayside.dev/workspace";
pub const LABEL_ENVIRONMENT: &str = "quayside.dev/environment";
pub const LABEL_COMPONENT: &str = "quayside.dev/component";
/// `push` or `pull`, on workspace Secrets ([`RobotRole::as_str`]).
pub const LABEL_ROLE: &str = "quayside.dev/role";

/// The credentials generation a Secret holds.
pub const ANNOTATION_GENERATION: &str = "quayside.dev/credentials-generation";
/// The image a pull Secret is for (readable in the sealed file).
pub const ANNOTATION_IMAGE: &str = "quayside.dev/image";
/// `"true"` on a Component: regenerate its robot tokens now (emergency rotation).
pub const ANNOTATION_GENERATE: &str = "image.redhat.com/generate";
/// `"true"` on a Component: keep its Quay repository when it is deleted.
pub const ANNOTATION_KEEP_REPOSITORY: &str = "quayside.dev/keep-repository";

/// Finalizer on Components and Environments until their cleanup ran.
pub const FINALIZER: &str = "quayside.dev/cleanup";
/// Field manager for server-side apply, and the events' reporter.
pub const FIELD_MANAGER: &str = "quayside";

/// The ServiceAccount linked when it exists and the Environment names none.
pub const SERVICE_ACCOUNT_DEPLOYER: &str = "deployer";
/// The ServiceAccount linked where there is no `deployer`.
pub const SERVICE_ACCOUNT_DEFAULT: &str = "default";

/// Selector for every object quayside manages.
pub fn managed_selector() -> String {
    format!("{LABEL_MANAGED_BY}={MANAGED_BY_VALUE}")
}

/// Selector for a workspace's Secrets of one robot role.
pub fn role_selector(role: RobotRole) -> String {
    format!("{},{LABEL_ROLE}={}", managed_selector(), role.as_str())
}

/// Name of a Component's workspace Secret for a robot role.
pub fn workspace_secret_name(component: &str, role: RobotRole) -> String {
    format!("{component}-image-{}", role.as_str())
}

/// Name of a Component's pull Secret in a target namespace (and in git).
pub fn pull_secret_name(component: &str) -> String {
    format!("{component}-pull")
}

/// The Component a pull Secret's name is for (the inverse of
/// [`pull_secret_name`]); a name not of that form is returned as it is.
pub fn component_of_pull_secret(name: &str) -> &str {
    name.strip_suffix("-pull").unwrap_or(name)
}

/// Labels of a workspace Secret.
pub fn workspace_labels(component: &str, role: RobotRole) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
        (LABEL_COMPONENT.to_string(), component.to_string()),
        (LABEL_ROLE.to_string(), role.as_str().to_string()),
    ])
}

/// Labels of a pull Secret delivered for `component` by Environment
/// `environment` of `workspace`: the applied and the sealed one alike.
pub fn target_labels(
    workspace: &str,
    environment: &str,
    component: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), MANAGED_BY_VALUE.to_string()),
        (LABEL_WORKSPACE.to_string(), workspace.to_string()),
        (LABEL_ENVIRONMENT.to_string(), environment.to_string()),
        (LABEL_COMPONENT.to_string(), component.to_string()),
    ])
}

/// Selector for the pull Secrets one Environment delivered.
pub fn target_selector(workspace: &str, environment: &str) -> String {
    format!(
        "{},{LABEL_WORKSPACE}={workspace},{LABEL_ENVIRONMENT}={environment}",
        managed_selector()
    )
}

/// The credentials generation recorded in an object's annotations.
pub fn generation_of(annotations: Option<&BTreeMap<String, String>>) -> Option<i64> {
    annotations?.get(ANNOTATION_GENERATION)?.parse().ok()
}

/// The workspace Secret role a label value names.
pub fn role_of(labels: &BTreeMap<String, String>) -> Option<RobotRole> {
    match labels.get(LABEL_ROLE)?.as_str() {
        "push" => Some(RobotRole::Push),
        "pull" => Some(RobotRole::Pull),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_selectors_are_stable() {
        // These strings are in users' clusters and git history: changing one
        // orphans every object that carries the old one.
        assert_eq!(
            workspace_secret_name("api", RobotRole::Push),
            "api-image-push"
        );
        assert_eq!(pull_secret_name("api"), "api-pull");
        assert_eq!(
            component_of_pull_secret(&pull_secret_name("a-pull")),
            "a-pull"
        );
        assert_eq!(component_of_pull_secret("other"), "other");
        assert_eq!(
            target_selector("team-a", "prod"),
            "app.kubernetes.io/managed-by=quayside,quayside.dev/workspace=team-a,quayside.dev/environment=prod"
        );
        assert_eq!(
            role_selector(RobotRole::Pull),
            "app.kubernetes.io/managed-by=quayside,quayside.dev/role=pull"
        );
    }

    #[test]
    fn role_and_generation_read_back() {
        let labels = workspace_labels("api", RobotRole::Pull);
        assert_eq!(role_of(&labels), Some(RobotRole::Pull));
        let ann = BTreeMap::from([(ANNOTATION_GENERATION.to_string(), "7".to_string())]);
        assert_eq!(generation_of(Some(&ann)), Some(7));
        assert_eq!(generation_of(None), None);
    }
}
