//! Every label and annotation key, object name and finalizer quayside uses,
//! in one place: the Secret applied to a target and the one sealed into git
//! carry the same metadata, and the watches select on the same keys.

use std::collections::BTreeMap;

use sha2::Digest;

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
/// The full Component and Environment names, on a Secret whose label
/// value had to be shortened ([`label_value`]): a name can be 253
/// characters, a label value only 63.
pub const ANNOTATION_COMPONENT_NAME: &str = "quayside.dev/component-name";
pub const ANNOTATION_ENVIRONMENT_NAME: &str = "quayside.dev/environment-name";
/// `push` or `pull`, on workspace Secrets ([`RobotRole::as_str`]).
pub const LABEL_ROLE: &str = "quayside.dev/role";

/// The credentials generation a Secret holds.
pub const ANNOTATION_GENERATION: &str = "quayside.dev/credentials-generation";
/// The image a pull Secret is for (readable in the sealed file).
pub const ANNOTATION_IMAGE: &str = "quayside.dev/image";
/// `"true"` on a Component: regenerate its robot tokens now (emergency rotation).
pub const ANNOTATION_GENERATE: &str = "image.redhat.com/generate";
/// Any value on a Component: rotate its robot tokens once per distinct
/// value (recorded in `status.rotateHandled`); never removed by quayside,
/// so a GitOps engine can keep it in git without a rotation storm.
pub const ANNOTATION_ROTATE: &str = "quayside.dev/rotate";
/// `"true"` on a Component: keep its Quay repository when it is deleted.
pub const ANNOTATION_KEEP_REPOSITORY: &str = "quayside.dev/keep-repository";

/// The longest Component name: `<name>-pull.sops.yaml` must fit in a file
/// name (255 bytes) and `<name>-image-push` in a Secret name (253). The
/// CRD refuses longer names (`x-kubernetes-validations`), `render` too.
pub const MAX_COMPONENT_NAME: usize = 240;

/// Finalizer on Components and Environments until their cleanup ran.
pub const FINALIZER: &str = "quayside.dev/cleanup";
/// Field manager for server-side apply, and the events' reporter.
pub const FIELD_MANAGER: &str = "quayside";
/// Field manager of the operator commands' writes (`quayside rotate`).
pub const FIELD_MANAGER_CLI: &str = "quayside-cli";

/// The ServiceAccount linked when it exists and the Environment names none.
pub const SERVICE_ACCOUNT_DEPLOYER: &str = "deployer";
/// The ServiceAccount linked where there is no `deployer`.
pub const SERVICE_ACCOUNT_DEFAULT: &str = "default";

/// The Lease a single leader holds (`--shards 0`).
pub const LEASE_LEADER: &str = "quayside-leader";
/// Label on the Leases of sharding, naming their role (below): one list
/// with this label reads every shard and member Lease.
pub const LABEL_SHARDING: &str = "quayside.dev/sharding";
/// [`LABEL_SHARDING`] of a shard's Lease.
pub const SHARDING_SHARD: &str = "shard";
/// [`LABEL_SHARDING`] of a replica's membership Lease.
pub const SHARDING_MEMBER: &str = "member";
/// The shard count (`--shards`) of the replica that last wrote a shard's
/// Lease: replicas of different counts must never both serve.
pub const ANNOTATION_SHARDS: &str = "quayside.dev/shards";

/// The shard (`0`..`--shards`) of the workspace an object belongs to, in
/// decimal: on Components and Environments (stamped by the replica that
/// holds the shard) and on the Secrets quayside writes with `--shards`,
/// so each replica's watches select only its shards' objects. Tenants can
/// write it on their own objects: it is read only as a selector, and
/// every pass still checks the namespace's shard.
pub const LABEL_SHARD: &str = "quayside.dev/shard";

/// Selector for the objects of the shards `held` (not empty).
pub fn shard_selector(held: &std::collections::BTreeSet<u32>) -> String {
    let list: Vec<String> = held.iter().map(u32::to_string).collect();
    format!("{LABEL_SHARD} in ({})", list.join(","))
}

/// Selector for the objects no shard's selector finds: without the label,
/// or with a value that is no shard of `count` (a set-based `notin`
/// matches an object without the key too).
pub fn unsharded_selector(count: u32) -> String {
    let list: Vec<String> = (0..count).map(|s| s.to_string()).collect();
    format!("{LABEL_SHARD} notin ({})", list.join(","))
}

/// The Lease of shard `i`.
pub fn shard_lease_name(i: u32) -> String {
    format!("quayside-shard-{i}")
}

/// Shard `i` from its Lease's name.
pub fn shard_of_lease(name: &str) -> Option<u32> {
    let i = name.strip_prefix("quayside-shard-")?;
    // Only the canonical spelling: `quayside-shard-01` is no shard's.
    i.parse().ok().filter(|n: &u32| n.to_string() == i)
}

/// The membership Lease of the replica `identity`.
pub fn member_lease_name(identity: &str) -> String {
    format!("quayside-member-{identity}")
}

/// The longest label value the API server accepts.
pub const MAX_LABEL_VALUE: usize = 63;
/// Characters of a long name kept in its label value, before `-<hash>`.
const LABEL_HEAD: usize = MAX_LABEL_VALUE - 1 - 10;

/// A name as a label value: itself when it fits (so labels written before
/// this rule keep matching), else its first characters and a hash of the
/// whole name, so two long names that share a beginning stay apart.
pub fn label_value(name: &str) -> String {
    if name.len() <= MAX_LABEL_VALUE {
        return name.to_string();
    }
    let head = name.get(..LABEL_HEAD).unwrap_or(name);
    // A label value must end alphanumeric before the `-`.
    let head = head.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
    let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
    format!("{head}-{}", &digest[..10])
}

/// Annotations with the full names whose label values were shortened
/// (none for names that fit): what the watches and readers map back from.
pub fn name_annotations(environment: Option<&str>, component: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if component.len() > MAX_LABEL_VALUE {
        out.insert(ANNOTATION_COMPONENT_NAME.to_string(), component.to_string());
    }
    if let Some(e) = environment.filter(|e| e.len() > MAX_LABEL_VALUE) {
        out.insert(ANNOTATION_ENVIRONMENT_NAME.to_string(), e.to_string());
    }
    out
}

/// The Component (`LABEL_COMPONENT`) or Environment (`LABEL_ENVIRONMENT`)
/// an object is labelled for: the full name from its annotation when the
/// label value is shortened, else the label value.
pub fn named_by(
    label: &str,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<String> {
    let annotation = match label {
        LABEL_COMPONENT => ANNOTATION_COMPONENT_NAME,
        LABEL_ENVIRONMENT => ANNOTATION_ENVIRONMENT_NAME,
        _ => return labels.get(label).cloned(),
    };
    let value = labels.get(label)?;
    match annotations.get(annotation) {
        // Only the annotation of the name this label value stands for.
        Some(full) if label_value(full) == *value => Some(full.clone()),
        _ => Some(value.clone()),
    }
}

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
        (LABEL_COMPONENT.to_string(), label_value(component)),
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
        (LABEL_ENVIRONMENT.to_string(), label_value(environment)),
        (LABEL_COMPONENT.to_string(), label_value(component)),
    ])
}

/// Selector for the pull Secrets one Environment delivered.
pub fn target_selector(workspace: &str, environment: &str) -> String {
    format!(
        "{},{LABEL_WORKSPACE}={workspace},{LABEL_ENVIRONMENT}={}",
        managed_selector(),
        label_value(environment)
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
    fn shard_lease_names_round_trip_and_only_the_canonical_spelling_parses() {
        assert_eq!(shard_lease_name(7), "quayside-shard-7");
        assert_eq!(
            member_lease_name("quayside-5d9f-x"),
            "quayside-member-quayside-5d9f-x"
        );
        for i in [0, 7, 11, 1023] {
            assert_eq!(shard_of_lease(&shard_lease_name(i)), Some(i));
        }
        for name in [
            "quayside-shard-01",
            "quayside-shard-",
            "quayside-shard--1",
            "quayside-leader",
        ] {
            assert_eq!(shard_of_lease(name), None, "{name}");
        }
    }

    #[test]
    fn shard_selectors_name_the_held_shards_or_none_of_them() {
        let held = std::collections::BTreeSet::from([11, 0, 3]);
        assert_eq!(shard_selector(&held), "quayside.dev/shard in (0,3,11)");
        assert_eq!(unsharded_selector(3), "quayside.dev/shard notin (0,1,2)");
    }

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

    #[test]
    fn label_values_stay_within_63_characters_and_select_alike() {
        let (env, comp) = ("e".repeat(80), format!("{}.x", "c".repeat(120)));
        let labels = target_labels("team-a", &env, &comp);
        for (k, v) in &labels {
            assert!(v.len() <= 63, "{k}={v} is {} characters", v.len());
            assert!(
                v.ends_with(|c: char| c.is_ascii_alphanumeric()),
                "{k}={v} must end alphanumeric"
            );
        }
        let selector = target_selector("team-a", &env);
        assert!(
            selector.ends_with(&format!(
                "{LABEL_ENVIRONMENT}={}",
                labels[LABEL_ENVIRONMENT]
            )),
            "{selector}"
        );
        // Two long names that share their first 63 characters stay apart.
        let other = target_labels("team-a", &format!("{env}2"), &comp);
        assert_ne!(other[LABEL_ENVIRONMENT], labels[LABEL_ENVIRONMENT]);
        // Short names are their own label value, as before.
        assert_eq!(
            target_labels("team-a", "prod", "api")[LABEL_ENVIRONMENT],
            "prod"
        );
        for (k, v) in workspace_labels(&comp, RobotRole::Pull) {
            assert!(v.len() <= 63, "{k}={v}");
        }
    }
}
