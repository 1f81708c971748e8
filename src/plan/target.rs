//! Which pull Secrets to write and delete in an Environment's target namespace.

use std::collections::BTreeMap;

use secrecy::{ExposeSecret, SecretString};

/// A pull Secret that must exist in the target namespace.
#[derive(Clone, Debug)]
pub struct DesiredSecret {
    pub name: String,
    pub component: String,
    pub generation: i64,
    /// The `.dockerconfigjson` payload.
    pub payload: SecretString,
}

/// A Secret found in the target namespace with our labels.
#[derive(Clone, Debug)]
pub struct ObservedSecret {
    pub name: String,
    pub generation: Option<i64>,
    pub payload: Option<SecretString>,
    /// The Secret carries every label we set (nobody stripped them).
    pub labels_intact: bool,
}

/// The writes an Environment pass must make in its target namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TargetPlan {
    /// Secrets to (re)apply: missing, tampered, or of an older generation.
    pub apply: Vec<String>,
    /// Our Secrets for Components that no longer exist.
    pub delete: Vec<String>,
}

/// Who holds a Secret name an Environment wants in its target namespace,
/// read from the labels of the Secret found there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    /// No Secret of that name.
    Nobody,
    /// quayside's, for this Environment (its labels were intact).
    This,
    /// quayside's, for another Environment (`workspace/name`).
    OtherEnvironment { workspace: String, name: String },
    /// Not quayside's: a team's own Secret, never overwritten.
    Foreign,
}

/// The holder of a Secret with `labels` (`None`: there is none), seen by
/// Environment `environment` of `workspace`.
pub fn holder(
    labels: Option<&BTreeMap<String, String>>,
    workspace: &str,
    environment: &str,
) -> Holder {
    use crate::vocabulary::{
        LABEL_ENVIRONMENT, LABEL_MANAGED_BY, LABEL_WORKSPACE, MANAGED_BY_VALUE, label_value,
    };
    let Some(labels) = labels else {
        return Holder::Nobody;
    };
    let get = |k: &str| labels.get(k).map(String::as_str);
    if get(LABEL_MANAGED_BY) != Some(MANAGED_BY_VALUE) {
        return Holder::Foreign;
    }
    match (get(LABEL_WORKSPACE), get(LABEL_ENVIRONMENT)) {
        (Some(w), Some(e)) if w == workspace && e == label_value(environment) => Holder::This,
        (Some(w), Some(e)) => Holder::OtherEnvironment {
            workspace: w.to_string(),
            name: e.to_string(),
        },
        _ => Holder::Foreign,
    }
}

/// Compare desired and observed Secrets; an unchanged Secret is not written.
pub fn plan_target_secrets(desired: &[DesiredSecret], observed: &[ObservedSecret]) -> TargetPlan {
    let by_name: BTreeMap<&str, &ObservedSecret> =
        observed.iter().map(|o| (o.name.as_str(), o)).collect();
    let mut plan = TargetPlan::default();
    for d in desired {
        let up_to_date = by_name.get(d.name.as_str()).is_some_and(|o| {
            o.labels_intact
                && o.generation == Some(d.generation)
                && o.payload
                    .as_ref()
                    .is_some_and(|p| p.expose_secret() == d.payload.expose_secret())
        });
        if !up_to_date {
            plan.apply.push(d.name.clone());
        }
    }
    for o in observed {
        if !desired.iter().any(|d| d.name == o.name) {
            plan.delete.push(o.name.clone());
        }
    }
    plan.apply.sort();
    plan.delete.sort();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_by_label() {
        use crate::vocabulary::{LABEL_MANAGED_BY, target_labels};
        let ours = target_labels("team-a", "prod", "api");
        assert_eq!(holder(None, "team-a", "prod"), Holder::Nobody);
        assert_eq!(holder(Some(&ours), "team-a", "prod"), Holder::This);
        assert_eq!(
            holder(Some(&ours), "team-a", "dev"),
            Holder::OtherEnvironment {
                workspace: "team-a".into(),
                name: "prod".into()
            }
        );
        assert_eq!(
            holder(Some(&ours), "team-b", "prod").clone(),
            Holder::OtherEnvironment {
                workspace: "team-a".into(),
                name: "prod".into()
            }
        );
        let theirs = BTreeMap::from([("app".to_string(), "billing".to_string())]);
        assert_eq!(holder(Some(&theirs), "team-a", "prod"), Holder::Foreign);
        let mut forged = ours.clone();
        forged.insert(LABEL_MANAGED_BY.into(), "someone-else".into());
        assert_eq!(holder(Some(&forged), "team-a", "prod"), Holder::Foreign);
    }

    fn desired(name: &str, g: i64, p: &str) -> DesiredSecret {
        DesiredSecret {
            name: name.into(),
            component: name.trim_end_matches("-pull").into(),
            generation: g,
            payload: SecretString::from(p.to_string()),
        }
    }
    fn observed(name: &str, g: Option<i64>, p: Option<&str>) -> ObservedSecret {
        ObservedSecret {
            name: name.into(),
            generation: g,
            payload: p.map(|p| SecretString::from(p.to_string())),
            labels_intact: true,
        }
    }

    #[test]
    fn unchanged_is_not_written() {
        let plan = plan_target_secrets(
            &[desired("a-pull", 1, "x")],
            &[observed("a-pull", Some(1), Some("x"))],
        );
        assert_eq!(plan, TargetPlan::default());
    }

    #[test]
    fn missing_tampered_old_are_applied_and_orphans_deleted() {
        let d = [
            desired("a-pull", 1, "x"),
            desired("b-pull", 2, "y"),
            desired("c-pull", 1, "z"),
        ];
        let o = [
            observed("b-pull", Some(1), Some("y-old")),
            observed("c-pull", Some(1), Some("tampered")),
            observed("gone-pull", Some(1), Some("q")),
        ];
        let plan = plan_target_secrets(&d, &o);
        assert_eq!(plan.apply, vec!["a-pull", "b-pull", "c-pull"]);
        assert_eq!(plan.delete, vec!["gone-pull"]);
    }

    #[test]
    fn stripped_labels_are_reapplied() {
        let mut o = observed("a-pull", Some(1), Some("x"));
        o.labels_intact = false;
        let plan = plan_target_secrets(&[desired("a-pull", 1, "x")], &[o]);
        assert_eq!(plan.apply, vec!["a-pull"]);
    }
}
