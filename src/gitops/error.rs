//! Errors of the side-repository writer, classified so the controller knows
//! whether to retry, and scrubbed so no credential ever appears in them.

/// What went wrong talking to the side repository or its forge.
///
/// Messages never contain a password or token: URLs are shown without their
/// userinfo, and git's own messages are scrubbed the same way.
#[derive(thiserror::Error, Debug, Clone)]
pub enum GitError {
    /// The server refused our credentials. Nothing is lost: the commit stays
    /// in the local working repository and is pushed by the next pass.
    #[error(
        "authentication to the side repository {url} failed: {detail}; check the side-repo \
         username and password/token (the commit is kept locally and pushed on the next pass)"
    )]
    Auth { url: String, detail: String },

    /// The server could not be reached (refused, DNS, TLS, timeout, 5xx).
    #[error("the side repository {url} is unreachable: {detail}; will retry")]
    Unreachable { url: String, detail: String },

    /// The server refused the push for a reason a retry will not fix, e.g. a
    /// protected branch or a hook.
    #[error(
        "the side repository {url} rejected the push to {refname}: {reason}; check branch \
         protection and hooks, or use the pull-request delivery mode"
    )]
    Rejected {
        url: String,
        refname: String,
        reason: String,
    },

    /// A server's TLS certificate (the remote's or the forge's) was refused;
    /// the detail says whether a CA belongs in `--extra-ca-file`.
    #[error("cannot trust the TLS certificate of {url}: {detail}")]
    Untrusted { url: String, detail: String },

    /// Someone else kept pushing between our fetch and our push.
    #[error(
        "the branch {branch} kept moving: {attempts} push attempts were non-fast-forward; will retry"
    )]
    Contended { branch: String, attempts: u32 },

    /// The forge's pull-request API answered with an error.
    #[error("the pull-request API {action} failed{}: {message}", status.map(|s| format!(" with HTTP {s}")).unwrap_or_default())]
    Forge {
        action: &'static str,
        status: Option<u16>,
        message: String,
    },

    /// Two passes gathered into one commit write folders that overlap; the
    /// later one is sent back to run again on the commit of the first.
    #[error(
        "the folder {folder} overlaps a folder another pass writes in the same commit; will retry"
    )]
    Crowded { folder: String },

    /// A plan asked for something quayside must not do (a path outside the
    /// repository, overlapping folders, a file outside its folder).
    #[error("invalid side-repo plan: {0}")]
    InvalidPlan(String),

    /// The local working repository failed (disk, corrupt object database).
    #[error("the local side-repo working copy at {workdir} failed to {action}: {detail}")]
    Local {
        workdir: String,
        action: &'static str,
        detail: String,
    },
}

impl GitError {
    /// True when retrying later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        match self {
            GitError::Unreachable { .. }
            | GitError::Contended { .. }
            | GitError::Crowded { .. } => true,
            GitError::Forge { status, .. } => match status {
                None => true,
                Some(s) => *s == 429 || *s >= 500,
            },
            GitError::Auth { .. }
            | GitError::Untrusted { .. }
            | GitError::Rejected { .. }
            | GitError::InvalidPlan(_)
            | GitError::Local { .. } => false,
        }
    }
}

/// Remove the userinfo (`user:password@`) from every URL in `text`, and any
/// literal occurrence of the given secrets, so git's messages can be shown.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first '/', whitespace, quote or end.
        let end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => out.push_str(&authority[at + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s, "[REDACTED]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_strips_userinfo_and_secrets() {
        let s = scrub(
            "failed to push to 'https://bot:hunter2@git.example/x.git' (hunter2) and http://a@b/c",
            &["hunter2"],
        );
        assert!(!s.contains("hunter2"), "{s}");
        assert!(s.contains("https://git.example/x.git"), "{s}");
        assert!(s.contains("http://b/c"), "{s}");
    }

    #[test]
    fn transient_classification() {
        let u = GitError::Unreachable {
            url: "u".into(),
            detail: "d".into(),
        };
        assert!(u.is_transient());
        let a = GitError::Auth {
            url: "u".into(),
            detail: "d".into(),
        };
        assert!(!a.is_transient());
        let f = GitError::Forge {
            action: "create",
            status: Some(503),
            message: "m".into(),
        };
        assert!(f.is_transient());
        let f = GitError::Forge {
            action: "create",
            status: Some(422),
            message: "m".into(),
        };
        assert!(!f.is_transient());
    }
}
