//! Who quayside acts as when it writes into a namespace for a workspace,
//! and the one command that grants it (pure). Kubernetes RBAC, not
//! quayside, decides where a tenant may deliver: writes impersonate a
//! ServiceAccount of the workspace, which the namespace's owner binds to
//! the ready-made ClusterRole.

use super::spec::SpecError;
use crate::names::is_dns_subdomain;

/// The ClusterRole a namespace's owner binds for a workspace (deploy/rbac).
pub const DELIVERY_CLUSTER_ROLE: &str = "quayside-delivery";

/// The workspace ServiceAccount an Environment's writes act as: its
/// `spec.target.deliveryServiceAccount`, else the controller's default.
pub fn delivery_account<'a>(spec: Option<&'a str>, default: &'a str) -> Result<&'a str, SpecError> {
    match spec.map(str::trim) {
        None => Ok(default),
        Some(name) if is_dns_subdomain(name) => Ok(name),
        Some(name) => Err(SpecError::InvalidDeliveryAccount(name.to_string())),
    }
}

/// The Kubernetes user name of a ServiceAccount, as impersonation sends it.
pub fn username(workspace: &str, account: &str) -> String {
    format!("system:serviceaccount:{workspace}:{account}")
}

/// The command that lets `workspace`'s `account` deliver into `namespace`.
pub fn grant_command(workspace: &str, account: &str, namespace: &str) -> String {
    format!(
        "kubectl create rolebinding {DELIVERY_CLUSTER_ROLE}-{workspace} --clusterrole={DELIVERY_CLUSTER_ROLE} --serviceaccount={workspace}:{account} --namespace={namespace}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_names_the_account_else_the_default() {
        assert_eq!(
            delivery_account(None, "quayside-delivery"),
            Ok("quayside-delivery")
        );
        assert_eq!(
            delivery_account(Some(" ci-bot "), "quayside-delivery"),
            Ok("ci-bot")
        );
        for bad in ["", "Bot", "a/b", "system:serviceaccount:kube-system:x"] {
            assert_eq!(
                delivery_account(Some(bad), "d"),
                Err(SpecError::InvalidDeliveryAccount(bad.to_string())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_grant_is_one_command_for_that_namespace_only() {
        assert_eq!(
            username("team-a", "quayside-delivery"),
            "system:serviceaccount:team-a:quayside-delivery"
        );
        assert_eq!(
            grant_command("team-a", "quayside-delivery", "team-a-prod"),
            "kubectl create rolebinding quayside-delivery-team-a --clusterrole=quayside-delivery --serviceaccount=team-a:quayside-delivery --namespace=team-a-prod"
        );
    }
}
