//! Private-source detection: an anonymous git ls-remote of a Component's source URL.
//!
//! Success means anyone can read the source, so the image may be public; an
//! authentication challenge means it is private. A network failure is retried
//! and then reported, never guessed: guessing "public" would expose a private
//! project's images.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::quay::RetryPolicy;

/// Longest one ls-remote may take before it counts as a network failure.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// What anonymous access to the source repository tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceVisibility {
    Public,
    Private,
}

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    #[error(
        "source URL {url:?} cannot be checked: {reason}; use an https:// clone URL or set spec.visibility explicitly"
    )]
    InvalidUrl { url: String, reason: String },
    #[error(
        "source repository {url:?} does not exist (HTTP 404); fix spec.source.git.url or set spec.visibility explicitly"
    )]
    NotFound { url: String },
    #[error(
        "source repository {url:?} could not be reached after {attempts} attempts ({message}); visibility is not guessed: it will be checked again, or set spec.visibility explicitly"
    )]
    Unreachable {
        url: String,
        attempts: u32,
        message: String,
    },
}

impl SourceError {
    /// Whether checking again later can succeed on its own.
    pub fn is_transient(&self) -> bool {
        matches!(self, SourceError::Unreachable { .. })
    }

    /// A CamelCase reason for a status condition.
    pub fn reason(&self) -> &'static str {
        match self {
            SourceError::InvalidUrl { .. } => "SourceUrlInvalid",
            SourceError::NotFound { .. } => "SourceNotFound",
            SourceError::Unreachable { .. } => "SourceUnreachable",
        }
    }
}

/// Ask the source repository, anonymously, whether it is public.
pub async fn detect_visibility(
    url: &str,
    retry: &RetryPolicy,
) -> Result<SourceVisibility, SourceError> {
    let anon = anonymous_url(url)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let probe_url = anon.clone();
        let outcome = tokio::time::timeout(
            ATTEMPT_TIMEOUT,
            tokio::task::spawn_blocking(move || probe(&probe_url)),
        )
        .await;
        let failure = match outcome {
            Ok(Ok(Ok(v))) => return Ok(v),
            Ok(Ok(Err(Probe::NotFound))) => {
                return Err(SourceError::NotFound {
                    url: url.to_string(),
                });
            }
            Ok(Ok(Err(Probe::Network(m)))) => m,
            Ok(Err(join)) => format!("the check failed: {join}"),
            Err(_) => format!("no answer within {ATTEMPT_TIMEOUT:?}"),
        };
        if attempt >= retry.max_attempts.max(1) {
            return Err(SourceError::Unreachable {
                url: url.to_string(),
                attempts: attempt,
                message: failure,
            });
        }
        let delay = retry.jittered_delay(attempt, None);
        tracing::debug!(url, attempt, ?delay, reason = %failure, "retrying source visibility check");
        tokio::time::sleep(delay).await;
    }
}

/// The URL to probe: userinfo removed (the check must be anonymous), SSH
/// forms mapped to HTTPS on the same host and path (what GitHub, GitLab and
/// Gitea serve), anything else refused — in particular local paths.
pub fn anonymous_url(url: &str) -> Result<String, SourceError> {
    let invalid = |reason: &str| SourceError::InvalidUrl {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = url.trim();
    // scp-like `git@host:owner/repo.git`
    if !trimmed.contains("://")
        && let Some((userhost, path)) = trimmed.split_once(':')
    {
        let host = userhost.rsplit('@').next().unwrap_or(userhost);
        if host.is_empty() || path.is_empty() || host.contains('/') {
            return Err(invalid("not a URL"));
        }
        return Ok(format!("https://{host}/{}", path.trim_start_matches('/')));
    }
    let mut u = url::Url::parse(trimmed).map_err(|e| invalid(&e.to_string()))?;
    match u.scheme() {
        "http" | "https" | "git" => {}
        "ssh" | "git+ssh" | "ssh+git" => {
            let host = u.host_str().ok_or_else(|| invalid("no host"))?.to_string();
            return Ok(format!("https://{host}{}", u.path()));
        }
        other => return Err(invalid(&format!("scheme {other:?} is not supported"))),
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(invalid("no host"));
    }
    let _ = u.set_username("");
    let _ = u.set_password(None);
    Ok(u.to_string())
}

enum Probe {
    NotFound,
    Network(String),
}

/// One ls-remote (blocking). The credentials callback refuses, so libgit2 can
/// use no credential helper and no stored login: the check stays anonymous.
fn probe(url: &str) -> Result<SourceVisibility, Probe> {
    let mut remote =
        git2::Remote::create_detached(url).map_err(|e| Probe::Network(e.message().to_string()))?;
    let asked = Arc::new(AtomicBool::new(false));
    let mut callbacks = git2::RemoteCallbacks::new();
    {
        let asked = asked.clone();
        callbacks.credentials(move |_url, _user, _allowed| {
            asked.store(true, Ordering::SeqCst);
            Err(git2::Error::from_str(
                "anonymous visibility check: no credentials offered",
            ))
        });
    }
    let result = remote
        .connect_auth(git2::Direction::Fetch, Some(callbacks), None)
        .and_then(|conn| conn.list().map(|_| ()));
    match result {
        Ok(()) => Ok(SourceVisibility::Public),
        Err(e) => {
            let msg = e.message().to_string();
            // libgit2 says "unexpected http status code: N"; match that phrase,
            // not bare digits, which could be part of an address or port.
            let status = |code: &str| msg.contains(&format!("status code: {code}"));
            if asked.load(Ordering::SeqCst)
                || e.code() == git2::ErrorCode::Auth
                || status("401")
                || status("403")
            {
                Ok(SourceVisibility::Private)
            } else if status("404") {
                Err(Probe::NotFound)
            } else {
                Err(Probe::Network(msg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_anonymous_https_and_local_paths_are_refused() {
        let ok = |u: &str| anonymous_url(u).unwrap();
        assert_eq!(
            ok("https://user:pw@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(ok("git@github.com:o/r.git"), "https://github.com/o/r.git");
        assert_eq!(
            ok("ssh://git@gitlab.com:22/o/r.git"),
            "https://gitlab.com/o/r.git"
        );
        assert_eq!(
            ok("http://127.0.0.1:8080/r.git"),
            "http://127.0.0.1:8080/r.git"
        );
        for bad in ["file:///etc", "/srv/git/r.git", "not a url"] {
            let e = anonymous_url(bad).unwrap_err();
            assert!(e.to_string().contains("spec.visibility"), "{bad}: {e}");
        }
    }
}
