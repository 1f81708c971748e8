//! Errors of a reconcile pass, each with a condition reason a person can
//! act on and a retry class that says how soon trying again can help.

use crate::gitops::GitError;
use crate::names::NameError;
use crate::plan::SpecError;
use crate::plan::ownership::{self, Kind};
use crate::plan::requeue::{Retry, kube_answer};
use crate::quay::QuayError;
use crate::render::RenderError;
use crate::source::SourceError;

use super::targets::TargetClusterError;

#[derive(thiserror::Error, Debug)]
pub enum Error {
    #[error("{}", kube_text(.0))]
    Kube(#[from] kube::Error),
    /// The API server refused this spec's pass for good a moment ago (its
    /// words); retried when the spec changes, or at the backstop.
    #[error("{0}")]
    StillRefused(String),
    /// Adding or removing our finalizer raced another write of the object
    /// (its JSON Patch test failed): retried at once, not an error.
    #[error("the object changed while its finalizer was being updated; retrying")]
    FinalizerRace,
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
    /// A repository or robot on Quay with the name this Component would
    /// use is another Component's (`owner`: its uid) or was not made by
    /// quayside: it is never adopted, changed, rotated or deleted.
    #[error("{}", owned_elsewhere(*.object, .name, .owner.as_deref()))]
    OwnedElsewhere {
        object: Kind,
        name: String,
        owner: Option<String>,
    },
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
    /// The workspace's delivery ServiceAccount may not write into a
    /// namespace: the namespace's owner has not granted it.
    #[error(
        "quayside writes into namespace {namespace} as ServiceAccount {workspace}/{account}, which may not write there yet; the namespace's owner grants it with: {}",
        crate::plan::grant::grant_command(workspace, account, namespace)
    )]
    NotGranted {
        namespace: String,
        workspace: String,
        account: String,
    },
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
            Error::Kube(kube::Error::Api(e)) => kube_answer(e.code).0,
            Error::Kube(_) => "KubernetesError",
            Error::FinalizerRace => "Conflict",
            Error::StillRefused(_) => "KubernetesRefused",
            Error::Quay(e) => e.reason(),
            Error::PlanLimit { .. } => "QuayPlanLimit",
            Error::ImageChanged { .. } => "ImageImmutable",
            Error::ImageOutsideWorkspace { .. } => "ImageOutsideWorkspace",
            Error::OwnedElsewhere {
                object: Kind::Repository,
                ..
            } => ownership::REPOSITORY_OWNED_ELSEWHERE,
            Error::OwnedElsewhere {
                object: Kind::Robot,
                ..
            } => ownership::ROBOT_OWNED_ELSEWHERE,
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
            Error::NotGranted { .. } => "DeliveryNotGranted",
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
            // Another spec.image is the person's fix for a repository (and
            // a spec change wakes us); a robot in the way is deleted by the
            // organization admin on Quay, where no watch sees it.
            Error::OwnedElsewhere {
                object: Kind::Repository,
                ..
            } => Retry::SpecChange,
            Error::OwnedElsewhere {
                object: Kind::Robot,
                ..
            } => Retry::FixedElsewhere,
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
            | Error::ImageOutsideWorkspace { .. }
            | Error::StillRefused(_) => Retry::SpecChange,
            Error::Kube(kube::Error::Api(e)) => kube_answer(e.code).1,
            Error::Kube(_)
            | Error::FinalizerRace
            | Error::Render(_)
            | Error::Git(_)
            | Error::TargetCluster(_)
            | Error::ServiceAccountContention { .. }
            | Error::CleanupPending { .. }
            // A RoleBinding created wakes nothing: look again soon.
            | Error::NotGranted { .. }
            | Error::Finalizer(_)
            | Error::Task(_) => Retry::Soon,
        }
    }

    /// Whether retrying soon can help (spec errors wait for a spec change).
    pub fn is_transient(&self) -> bool {
        self.retry() == Retry::Soon
    }

    /// A race with another writer, expected now and then (at start-up
    /// above all): retried at once, neither logged as a failure nor
    /// counted in the errors metric an alert watches.
    /// The API server refused a write as invalid (400, 422): the same pass
    /// would fail the same way until something changes.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Error::Kube(kube::Error::Api(e)) if e.code == 400 || e.code == 422)
    }

    pub fn is_race(&self) -> bool {
        match self {
            Error::FinalizerRace => true,
            Error::Kube(kube::Error::Api(e)) => e.code == 409,
            _ => false,
        }
    }
}

/// The API server's answer in plain words: its own message and status,
/// never the debug dump of the response.
fn kube_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) => format!(
            "the Kubernetes API server answered {} {}: {}",
            s.code,
            s.reason,
            crate::text::bounded(&s.message, 400)
        ),
        other => format!(
            "Kubernetes API: {}",
            crate::text::bounded(&other.to_string(), 400)
        ),
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a person reads when a Quay object is not this Component's: whose
/// it is, and what to do.
fn owned_elsewhere(object: Kind, name: &str, owner: Option<&str>) -> String {
    let whose = match owner {
        Some(uid) => format!("is recorded for another Component (owner uid {uid})"),
        None => {
            "exists but was not created by quayside for this Component (it holds no owner record)"
                .to_string()
        }
    };
    match object {
        Kind::Repository => format!(
            "Quay repository {name} {whose}, so quayside never uses, changes or deletes it; pick another spec.image (or another Component name), or ask the Quay organization admin to remove it or to write this Component's uid into its description"
        ),
        Kind::Robot => format!(
            "Quay robot {name} {whose}, so quayside never uses, rotates or deletes it; ask the Quay organization admin to delete it (quayside then creates its own), or delete this Component and create one with another spec.image"
        ),
    }
}

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
        let robot = Error::OwnedElsewhere {
            object: Kind::Robot,
            name: "acme+team-a_app_push".into(),
            owner: None,
        };
        assert_eq!(robot.retry(), Retry::FixedElsewhere);
        assert_eq!(robot.reason(), "RobotOwnedElsewhere");
        assert!(robot.to_string().contains("acme+team-a_app_push"));
        assert!(robot.to_string().contains("Quay organization admin"));
        let repo = Error::OwnedElsewhere {
            object: Kind::Repository,
            name: "team-a/app".into(),
            owner: Some("uid-b".into()),
        };
        assert_eq!(repo.retry(), Retry::SpecChange);
        assert_eq!(repo.reason(), "RepositoryOwnedElsewhere");
        assert!(repo.to_string().contains("owner uid uid-b"));
        assert!(repo.to_string().contains("pick another spec.image"));
        let pending = Error::CleanupPending {
            environments: vec!["dev".into(), "prod".into()],
        };
        assert!(pending.to_string().contains("dev, prod"));
    }
}
