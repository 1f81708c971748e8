//! Waking a GitOps engine after a push (pure): which object, which
//! annotation and value, when, and the one grant that allows it. The
//! patch touches that annotation only, and is sent as the workspace's
//! delivery ServiceAccount, so RBAC decides whose objects a tenant may wake.

use crate::api::{EngineKind, EngineRef};
use crate::names::{is_dns_label, is_dns_subdomain};

use super::spec::SpecError;

/// The ClusterRole a namespace's owner binds so a workspace may wake the
/// engine objects there (deploy/rbac/wake.yaml).
pub const WAKE_CLUSTER_ROLE: &str = "quayside-wake";

/// Flux: any new value asks the controller to reconcile now.
pub const FLUX_REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
/// Argo CD: `normal` refreshes the Application from git (the
/// application-controller removes the annotation when done).
pub const ARGO_REFRESH: &str = "argocd.argoproj.io/refresh";

/// The API coordinates of a kind quayside wakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coordinates {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
}

pub fn coordinates(kind: EngineKind) -> Coordinates {
    match kind {
        EngineKind::GitRepository => Coordinates {
            group: "source.toolkit.fluxcd.io",
            version: "v1",
            kind: "GitRepository",
            plural: "gitrepositories",
        },
        EngineKind::Kustomization => Coordinates {
            group: "kustomize.toolkit.fluxcd.io",
            version: "v1",
            kind: "Kustomization",
            plural: "kustomizations",
        },
        EngineKind::Application => Coordinates {
            group: "argoproj.io",
            version: "v1alpha1",
            kind: "Application",
            plural: "applications",
        },
    }
}

/// One wake-up to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wake {
    pub coordinates: Coordinates,
    pub namespace: String,
    pub name: String,
    /// The merge patch's only content: this annotation and value.
    pub annotation: &'static str,
    pub value: String,
}

/// The wake-ups an Environment asks for; `workspace` is the default
/// namespace, `now` (RFC 3339) the value Flux records as requested.
pub fn wakes(refs: &[EngineRef], workspace: &str, now: &str) -> Result<Vec<Wake>, SpecError> {
    refs.iter()
        .enumerate()
        .map(|(index, r)| {
            let invalid = |reason: String| SpecError::InvalidWake { index, reason };
            let name = r.name.trim();
            if !is_dns_subdomain(name) {
                return Err(invalid(format!("name {name:?} is not an object name")));
            }
            let namespace = r.namespace.as_deref().map(str::trim).unwrap_or(workspace);
            if !is_dns_label(namespace) {
                return Err(invalid(format!(
                    "namespace {namespace:?} is not a namespace name"
                )));
            }
            let (annotation, value) = match r.kind {
                EngineKind::GitRepository | EngineKind::Kustomization => {
                    (FLUX_REQUESTED_AT, now.to_string())
                }
                EngineKind::Application => (ARGO_REFRESH, "normal".to_string()),
            };
            Ok(Wake {
                coordinates: coordinates(r.kind),
                namespace: namespace.to_string(),
                name: name.to_string(),
                annotation,
                value,
            })
        })
        .collect()
}

/// Whether a pass wakes the engine: it pushed a commit to the branch the
/// engine syncs, or a change the engine has not applied is no longer held
/// by a pull request (merged since the last pass, which nothing else
/// reports to quayside).
pub fn should_wake(
    pushed_to_branch: bool,
    awaiting_engine: bool,
    was_awaiting_review: bool,
) -> bool {
    pushed_to_branch || (awaiting_engine && was_awaiting_review)
}

/// The command that lets `workspace`'s `account` wake engine objects in `namespace`.
pub fn wake_grant_command(workspace: &str, account: &str, namespace: &str) -> String {
    format!(
        "kubectl create rolebinding {WAKE_CLUSTER_ROLE}-{workspace} --clusterrole={WAKE_CLUSTER_ROLE} --serviceaccount={workspace}:{account} --namespace={namespace}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(kind: EngineKind, name: &str, ns: Option<&str>) -> EngineRef {
        EngineRef {
            kind,
            name: name.into(),
            namespace: ns.map(String::from),
        }
    }

    #[test]
    fn each_kind_gets_its_documented_annotation_only() {
        let w = wakes(
            &[
                r(EngineKind::GitRepository, "side", Some("flux-system")),
                r(EngineKind::Kustomization, "team-a", None),
                r(EngineKind::Application, "team-a-prod", Some("argocd")),
            ],
            "team-a",
            "2026-11-28T13:00:00Z",
        )
        .unwrap();
        let got: Vec<_> = w
            .iter()
            .map(|w| {
                (
                    w.coordinates.plural,
                    w.namespace.as_str(),
                    w.name.as_str(),
                    w.annotation,
                    w.value.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "gitrepositories",
                    "flux-system",
                    "side",
                    FLUX_REQUESTED_AT,
                    "2026-11-28T13:00:00Z"
                ),
                (
                    "kustomizations",
                    "team-a",
                    "team-a",
                    FLUX_REQUESTED_AT,
                    "2026-11-28T13:00:00Z"
                ),
                (
                    "applications",
                    "argocd",
                    "team-a-prod",
                    ARGO_REFRESH,
                    "normal"
                ),
            ]
        );
    }

    #[test]
    fn hostile_references_are_refused_before_any_request() {
        for (name, ns) in [
            ("", None),
            ("../x", None),
            ("a/b", None),
            ("ok", Some("a.b")),
            ("ok", Some("")),
            ("ok", Some("Flux")),
        ] {
            let got = wakes(&[r(EngineKind::Kustomization, name, ns)], "team-a", "t");
            assert!(
                matches!(got, Err(SpecError::InvalidWake { index: 0, .. })),
                "{name:?} {ns:?}: {got:?}"
            );
        }
    }

    #[test]
    fn wake_after_a_push_or_a_merged_review() {
        assert!(should_wake(true, false, false));
        assert!(should_wake(false, true, true));
        assert!(!should_wake(false, true, false));
        assert!(!should_wake(false, false, true));
    }

    #[test]
    fn the_grant_is_one_command_for_that_namespace_only() {
        assert_eq!(
            wake_grant_command("team-a", "quayside-delivery", "flux-system"),
            "kubectl create rolebinding quayside-wake-team-a --clusterrole=quayside-wake --serviceaccount=team-a:quayside-delivery --namespace=flux-system"
        );
    }
}
