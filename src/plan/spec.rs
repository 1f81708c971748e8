//! Checks of what a user wrote in an Environment's spec, each failure a
//! typed error whose message says what to fix (pure).

use std::collections::BTreeSet;

use crate::names::is_dns_label;
use crate::seal::Recipient;

/// A spec that cannot be served as written; fixed by changing the object.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    #[error("spec.target.namespace is empty; set it to the namespace workloads run in")]
    EmptyTargetNamespace,
    #[error(
        "spec.target.namespace {0:?} is not a valid namespace name (lower-case letters, digits and '-', at most 63 characters); fix it"
    )]
    InvalidTargetNamespace(String),
    #[error("the target namespace {0} does not exist; create it or fix spec.target.namespace")]
    TargetNamespaceMissing(String),
    #[error(
        "the ServiceAccount {0} does not exist in the target namespace; create it or fix spec.serviceAccount"
    )]
    ServiceAccountMissing(String),
    #[error(
        "spec.recipients[{0}] is not an age recipient (it must start with age1); fix or remove it"
    )]
    InvalidRecipient(usize),
    /// A Secret of the pull Secret's name is in the target namespace and
    /// is not this Environment's: it is never overwritten.
    #[error(
        "the Secret {name} in namespace {namespace} {holder}; quayside never overwrites it: remove or rename it, or deliver this Environment to another namespace"
    )]
    TargetSecretTaken {
        name: String,
        namespace: String,
        holder: String,
    },
    /// A `spec.sideRepo.path` that is malformed or outside what this
    /// Environment may write (`plan::side_path`).
    #[error(
        "spec.sideRepo.path {path:?} {reason}; write a folder of lower-case names separated by `/` such as {example}, or remove spec.sideRepo.path for the default environments/<workspace>/<name>"
    )]
    SideRepoPath {
        path: String,
        reason: String,
        example: String,
    },
    /// Another Environment owns an overlapping side-repo folder (the message
    /// comes from `plan::folders`).
    #[error("{0}")]
    FolderOverlap(String),
    #[error(
        "spec.target.deliveryServiceAccount {0:?} is not a ServiceAccount name (lower-case letters, digits, '-' and '.'); fix it, or remove it for the default"
    )]
    InvalidDeliveryAccount(String),
    #[error(
        "spec.delivery.mode {0} needs a side repository, and this controller runs without one; set spec.delivery.mode to Direct or remove it"
    )]
    NoSideRepository(String),
    /// A `spec.delivery.wake` entry that is not a valid object reference.
    #[error(
        "spec.delivery.wake[{index}] {reason}; name an object by its Kubernetes name (lower-case letters, digits, '-' and '.')"
    )]
    InvalidWake { index: usize, reason: String },
}

impl SpecError {
    /// Whether the fix is another object (a namespace or ServiceAccount to
    /// create, another Environment's folder to move), which does not wake
    /// this one: such errors are retried soon rather than on a change.
    pub fn fixed_by_another_object(&self) -> bool {
        match self {
            SpecError::TargetNamespaceMissing(_)
            | SpecError::ServiceAccountMissing(_)
            | SpecError::TargetSecretTaken { .. }
            | SpecError::FolderOverlap(_) => true,
            SpecError::EmptyTargetNamespace
            | SpecError::InvalidTargetNamespace(_)
            | SpecError::InvalidRecipient(_)
            | SpecError::InvalidDeliveryAccount(_)
            | SpecError::NoSideRepository(_)
            | SpecError::InvalidWake { .. }
            | SpecError::SideRepoPath { .. } => false,
        }
    }
}

impl SpecError {
    /// The condition's reason: a refused path has its own, so that a
    /// person (or an alert) tells it from the other spec problems.
    pub fn reason(&self) -> &'static str {
        match self {
            SpecError::SideRepoPath { .. } => "SideRepoPathRefused",
            _ => "InvalidSpec",
        }
    }

    /// The Secret a `TargetSecretTaken` is about.
    pub fn name(&self) -> Option<&str> {
        match self {
            SpecError::TargetSecretTaken { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// The target namespace, trimmed, when it is a valid namespace name.
/// Checked here, not by the API server: a name it cannot route would come
/// back as an opaque Kubernetes error instead of a spec problem.
pub fn target_namespace(raw: &str) -> Result<&str, SpecError> {
    let ns = raw.trim();
    if ns.is_empty() {
        return Err(SpecError::EmptyTargetNamespace);
    }
    if !is_dns_label(ns) {
        return Err(SpecError::InvalidTargetNamespace(ns.to_string()));
    }
    Ok(ns)
}

/// The recipients a folder is sealed to: the controller's own (so it can
/// re-read what it wrote) and every one in the spec, sorted, without repeats.
pub fn recipients(own: Recipient, spec: &[String]) -> Result<Vec<Recipient>, SpecError> {
    let mut out = BTreeSet::from([own]);
    for (i, r) in spec.iter().enumerate() {
        out.insert(
            r.trim()
                .parse()
                .map_err(|_| SpecError::InvalidRecipient(i))?,
        );
    }
    Ok(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::Identity;

    #[test]
    fn target_namespaces() {
        assert_eq!(target_namespace(" team-a-prod "), Ok("team-a-prod"));
        assert_eq!(target_namespace("  "), Err(SpecError::EmptyTargetNamespace));
        for bad in ["Prod", "shop.staging", "-x", &"n".repeat(64)] {
            assert_eq!(
                target_namespace(bad),
                Err(SpecError::InvalidTargetNamespace(bad.to_string()))
            );
        }
        let msg = SpecError::InvalidTargetNamespace("Prod".into()).to_string();
        assert!(msg.contains("\"Prod\"") && msg.contains("fix it"), "{msg}");
    }

    #[test]
    fn recipients_add_our_own_and_name_the_bad_entry() {
        let own = Identity::generate().to_recipient();
        let other = Identity::generate().to_recipient().to_string();
        let got = recipients(own.clone(), &[other.clone(), format!(" {other} ")]).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.contains(&own));
        assert_eq!(
            recipients(own, &[other, "ssh-rsa AAAA".into()]),
            Err(SpecError::InvalidRecipient(1))
        );
    }
}
