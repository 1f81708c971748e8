//! What can go wrong talking to Quay, typed so the controller can tell a
//! person what to do and knows whether trying again can help.

use std::path::PathBuf;

/// An error from the Quay API client. Messages never contain the OAuth token
/// nor a robot token.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum QuayError {
    /// 402: the organization's plan allows no more private repositories.
    #[error(
        "Quay refused a private repository {repository:?} in organization {organization:?}: the plan's \
         private-repository limit is reached ({message}); upgrade the plan, delete unused private \
         repositories, or set spec.visibility: public"
    )]
    PlanLimit {
        organization: String,
        repository: String,
        message: String,
    },
    /// 401, or the 403 "CSRF token was invalid or missing." Quay answers a
    /// write with a token it does not know: the OAuth token is missing,
    /// wrong or expired.
    #[error(
        "Quay rejected the OAuth token: the token is unknown or expired ({message}); put a valid \
         token for organization {organization:?} in {token_file:?}"
    )]
    Unauthorized {
        organization: String,
        token_file: PathBuf,
        message: String,
    },
    /// 403 "Unauthorized" in an organization that exists: the token is
    /// valid but lacks a scope, or its user lacks a role.
    #[error(
        "Quay forbids {call} in organization {organization:?} ({message}): the token needs \
         {needs}; see docs/getting-started.md for the token's permissions"
    )]
    Forbidden {
        organization: String,
        /// The call refused, e.g. "creating robot accounts".
        call: &'static str,
        /// The scope and role that call needs.
        needs: &'static str,
        message: String,
    },
    /// The organization does not exist (Quay answers 403 "Unauthorized"
    /// for it, like a missing right; one look at the organization tells them apart).
    #[error(
        "Quay organization {organization:?} does not exist; check the configured organization \
         (--quay-organization) for a typing mistake"
    )]
    OrganizationNotFound { organization: String },
    /// 404 on an object that must exist for the call (a grant on a deleted repository...).
    #[error("Quay says {what} does not exist ({message})")]
    NotFound { what: String, message: String },
    /// 400: Quay refused the request as invalid; retrying the same request cannot help.
    #[error("Quay refused the request as invalid: {message}")]
    Invalid { message: String },
    /// Transient errors (429, 5xx, timeouts, connection failures) past the retry bound.
    #[error(
        "Quay did not answer successfully after {attempts} attempts (last: {last}); it may be \
         down or rate-limiting us: the call will be tried again later"
    )]
    Exhausted { attempts: u32, last: String },
    /// Quay's TLS certificate was refused: the advice says whether a CA
    /// belongs in `--extra-ca-file` or the server or URL is at fault.
    /// Retrying cannot help until someone changes one of them.
    #[error("cannot reach Quay over TLS: {message}")]
    Untrusted { message: String },
    /// The client's own configuration (token file, CA file, URL) is unusable.
    #[error("Quay client configuration: {message}")]
    Config { message: String },
    /// Any other answer we do not expect from Quay.
    #[error("Quay answered {status} to {endpoint}: {message}")]
    Unexpected {
        endpoint: &'static str,
        status: u16,
        message: String,
    },
}

impl QuayError {
    /// Whether trying again later can succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, QuayError::Exhausted { .. })
    }

    /// A CamelCase reason for a status condition.
    pub fn reason(&self) -> &'static str {
        match self {
            QuayError::PlanLimit { .. } => "QuayPlanLimit",
            QuayError::Unauthorized { .. } => "QuayUnauthorized",
            QuayError::Forbidden { .. } => "QuayForbidden",
            QuayError::OrganizationNotFound { .. } => "QuayOrganizationNotFound",
            QuayError::NotFound { .. } => "QuayNotFound",
            QuayError::Invalid { .. } => "QuayInvalidRequest",
            QuayError::Exhausted { .. } => "QuayUnavailable",
            QuayError::Config { .. } => "QuayConfigInvalid",
            QuayError::Untrusted { .. } => "QuayCertificateUntrusted",
            QuayError::Unexpected { .. } => "QuayUnexpectedResponse",
        }
    }
}
