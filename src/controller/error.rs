//! Errors of a reconcile pass, each with a condition reason a person can
//! act on and a retry class that says how soon trying again can help.

use crate::gitops::GitError;
use crate::names::NameError;
use crate::plan::SpecError;
use crate::plan::requeue::Retry;
use crate::quay::QuayError;
use crate::render::RenderError;
use crate::source::SourceError;

use super::targets::TargetClusterError;

#[derive(thiserror::Error, Debug)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("Quay: {0}")]
    Quay(#[from] QuayError),
    /// The organization's plan refused a private repository (402).
    #[error(
        "the Quay organization's plan allows no more private repositories, so {repository} cannot be made private; raise the plan limit or set spec.visibility: public"
    )]
    PlanLimit { repository: String },
    /// `spec.image` names another repository than the one provisioned.
    #[error(
        "spec.image now names {requested:?}, but this Component's repository is {provisioned:?} and a repository never moves; set spec.image back (or remove it), and create a new Component for a new repository"
    )]
    ImageChanged {
        provisioned: String,
        requested: String,
    },
    /// `spec.image` names a repository outside the workspace's prefix.
    #[error(
        "spec.image {repository:?} is outside this workspace's repositories; use a name under {prefix:?} (for example {prefix}/<name>), or remove spec.image for the default"
    )]
    ImageOutsideWorkspace { repository: String, prefix: String },
    #[error("source repository: {0}")]
    Source(#[from] SourceError),
    #[error("rendering the side-repository folder: {0}")]
    Render(#[from] RenderError),
    #[error("side repository: {0}")]
    Git(#[from] GitError),
    #[error("invalid name: {0}")]
    Name(#[from] NameError),
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error("target cluster: {0}")]
    TargetCluster(#[from] TargetClusterError),
    /// Someone else kept writing the ServiceAccount between our read and write.
    #[error(
        "the ServiceAccount {name} kept changing under us ({attempts} conflicts in a row); will retry"
    )]
    ServiceAccountContention { name: String, attempts: u32 },
    /// Deletion waits for these Environments to drop the pull Secret.
    #[error("cleanup in progress: waiting for Environment(s) {} to drop the pull Secret", .environments.join(", "))]
    CleanupPending { environments: Vec<String> },
    /// The finalizer machinery failed (adding or removing the finalizer).
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// A blocking side-repository task did not finish (it panicked).
    #[error("side-repo task: {0}")]
    Task(String),
}

impl Error {
    /// A CamelCase reason for conditions, events and the errors metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesError",
            Error::Quay(e) => e.reason(),
            Error::PlanLimit { .. } => "QuayPlanLimit",
            Error::ImageChanged { .. } => "ImageImmutable",
            Error::ImageOutsideWorkspace { .. } => "ImageOutsideWorkspace",
            // The source error knows whether the URL is invalid, the
            // repository missing or the host unreachable: say which.
            Error::Source(e) => e.reason(),
            Error::Render(_) => "RenderFailed",
            Error::Git(_) => "SideRepoError",
            Error::Name(_) => "InvalidName",
            Error::Spec(e) => e.reason(),
            Error::TargetCluster(_) => "TargetClusterUnavailable",
            Error::ServiceAccountContention { .. } => "ServiceAccountConflict",
            Error::CleanupPending { .. } => "CleanupPending",
            Error::Finalizer(_) | Error::Task(_) => "InternalError",
        }
    }

    /// How soon trying again can help. Every variant is listed, so a new
    /// one has to say.
    pub fn retry(&self) -> Retry {
        match self {
            // Fixed where no watch sees it: a Quay token replaced in the
            // mounted Secret, an organization created, a plan upgraded.
            Error::Quay(e) if !e.is_transient() => Retry::FixedElsewhere,
            Error::PlanLimit { .. } => Retry::FixedElsewhere,
            Error::Quay(_) => Retry::Soon,
            // An invalid URL or a missing repository waits for a spec change
            // instead of probing again every few seconds.
            Error::Source(e) if !e.is_transient() => Retry::SpecChange,
            Error::Source(_) => Retry::Soon,
            // A namespace or ServiceAccount created, another folder moved:
            // nothing wakes this object, so look again soon.
            Error::Spec(e) if e.fixed_by_another_object() => Retry::Soon,
            Error::Name(_)
            | Error::Spec(_)
            | Error::ImageChanged { .. }
            | Error::ImageOutsideWorkspace { .. } => Retry::SpecChange,
            Error::Kube(_)
            | Error::Render(_)
            | Error::Git(_)
            | Error::TargetCluster(_)
            | Error::ServiceAccountContention { .. }
            | Error::CleanupPending { .. }
            | Error::Finalizer(_)
            | Error::Task(_) => Retry::Soon,
        }
    }

    /// Whether retrying soon can help (spec errors wait for a spec change).
    pub fn is_transient(&self) -> bool {
        self.retry() == Retry::Soon
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_error_retries_as_its_fix_needs() {
        let unavailable = Error::Quay(QuayError::Exhausted {
            attempts: 12,
            last: "HTTP 503".into(),
        });
        let revoked = Error::Quay(QuayError::Unauthorized {
            organization: "acme".into(),
            token_file: "/etc/quayside/quay-token".into(),
            message: "invalid token".into(),
        });
        let plan = Error::PlanLimit {
            repository: "team/app".into(),
        };
        let spec = Error::Spec(SpecError::EmptyTargetNamespace);
        assert_eq!(unavailable.retry(), Retry::Soon);
        assert_eq!(revoked.retry(), Retry::FixedElsewhere);
        assert_eq!(plan.retry(), Retry::FixedElsewhere);
        assert_eq!(spec.retry(), Retry::SpecChange);
        let missing = Error::Spec(SpecError::TargetNamespaceMissing("prod".into()));
        assert_eq!(missing.retry(), Retry::Soon);
        assert_eq!(spec.reason(), "InvalidSpec");
        assert_eq!(plan.reason(), "QuayPlanLimit");
        assert!(plan.to_string().contains("set spec.visibility: public"));
        let pending = Error::CleanupPending {
            environments: vec!["dev".into(), "prod".into()],
        };
        assert!(pending.to_string().contains("dev, prod"));
    }
}
