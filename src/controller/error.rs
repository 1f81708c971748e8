//! Errors of a reconcile pass, each with a condition reason a person can act on.

use crate::gitops::GitError;
use crate::quay::QuayError;
use crate::render::RenderError;
use crate::source::SourceError;

#[derive(thiserror::Error, Debug)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("Quay: {0}")]
    Quay(#[from] QuayError),
    #[error("source repository: {0}")]
    Source(#[from] SourceError),
    #[error("rendering the side-repository folder: {0}")]
    Render(#[from] RenderError),
    #[error("side repository: {0}")]
    Git(#[from] GitError),
    #[error("invalid name: {0}")]
    Name(#[from] crate::names::NameError),
    #[error("{0}")]
    InvalidSpec(String),
    #[error("target cluster: {0}")]
    TargetCluster(String),
    #[error("the workspace Secret {0} is malformed; delete it and quayside recreates it from Quay")]
    MalformedSecret(String),
    #[error("cleanup in progress: {0}")]
    CleanupPending(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    /// A CamelCase reason for conditions, events and the errors metric.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesError",
            Error::Quay(e) => e.reason(),
            // The source error knows whether the URL is invalid, the
            // repository missing or the host unreachable: say which.
            Error::Source(e) => e.reason(),
            Error::Render(_) => "RenderFailed",
            Error::Git(_) => "SideRepoError",
            Error::Name(_) => "InvalidName",
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::TargetCluster(_) => "TargetClusterUnavailable",
            Error::MalformedSecret(_) => "MalformedSecret",
            Error::CleanupPending(_) => "CleanupPending",
            Error::Internal(_) => "InternalError",
        }
    }

    /// Whether the fix is made outside the object, where no watch sees it:
    /// a Quay token replaced in the mounted Secret, an organization created,
    /// a plan upgraded. Such errors are retried every minute rather than
    /// waiting five, so the fix shows within about a minute.
    pub fn is_fixed_elsewhere(&self) -> bool {
        matches!(self, Error::Quay(e) if !e.is_transient())
    }

    /// Whether retrying soon can help (spec errors wait for a spec change).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Quay(e) => e.is_transient(),
            // An invalid URL or a missing repository waits for a spec change
            // instead of probing again every two seconds.
            Error::Source(e) => e.is_transient(),
            Error::Name(_) | Error::InvalidSpec(_) => false,
            _ => true,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
