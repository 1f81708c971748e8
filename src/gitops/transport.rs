//! Talking to the remote: fetch and push with a credentials callback (the
//! password never goes into a URL), and git's errors classified and scrubbed.

use std::cell::{Cell, RefCell};

use git2::{
    AutotagOption, CertificateCheckStatus, CredentialType, ErrorClass, ErrorCode, FetchOptions,
    FetchPrune, PushOptions, RemoteCallbacks,
};
use secrecy::ExposeSecret;

use super::error::scrub;
use super::{GitAuth, GitError, SideRepo};

pub(crate) enum PushResult {
    Pushed,
    /// The remote branch moved since we fetched it.
    NonFastForward,
}

/// libgit2's process-wide settings, once: bound how long a dead server can
/// hold a pass (libgit2 defaults to no timeout), and do not re-hash every
/// object read back from the working repository.
///
/// Re-hashing guards the local cache against disk corruption, and costs
/// about a tenth of a large pass's commit+push (`docs/benchmarks.md`). The
/// remote checks what matters anyway: it computes every pushed object's id
/// itself and refuses a push whose trees point at objects it did not get;
/// and a sealed file that reads back damaged fails to open, so it is sealed
/// afresh rather than reused.
pub(crate) fn init_libgit2() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: these write two C globals read when a connection starts;
        // `Once` makes quayside's write happen once, before its first use.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(15_000);
            let _ = git2::opts::set_server_timeout_in_milliseconds(120_000);
        }
        git2::opts::strict_hash_verification(false);
    });
}

impl SideRepo {
    fn secrets(&self) -> Vec<&str> {
        match &self.cfg.auth {
            GitAuth::Basic { password, .. } => vec![password.expose_secret()],
            GitAuth::None => vec![],
        }
    }

    fn callbacks<'a>(&'a self, refused: &'a Cell<bool>) -> RemoteCallbacks<'a> {
        let mut cbs = RemoteCallbacks::new();
        let mut calls = 0u32;
        cbs.credentials(move |_url, _user, allowed| {
            calls += 1;
            let result = match &self.cfg.auth {
                // libgit2 asks again after a 401: a second call means the
                // credentials were refused, and asking forever would hang.
                _ if calls > 1 => Err("the server refused the configured credentials"),
                GitAuth::Basic { username, password } if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) => {
                    return git2::Cred::userpass_plaintext(username, password.expose_secret());
                }
                GitAuth::Basic { .. } => Err("the server asked for a kind of credentials quayside does not support"),
                GitAuth::None => Err("the server requires authentication and no side-repo credentials are configured"),
            };
            refused.set(true);
            result.map_err(git2::Error::from_str)
        });
        // libgit2 verifies against the system's CAs first; a certificate it
        // refused is accepted only if the extra CA verifies it for this host.
        // Passthrough keeps libgit2's verdict either way otherwise.
        if let Some(trust) = &self.trust {
            cbs.certificate_check(move |cert, host| {
                let ours = cert
                    .as_x509()
                    .is_some_and(|x509| trust.verifies(x509.data(), host));
                Ok(if ours {
                    CertificateCheckStatus::CertificateOk
                } else {
                    CertificateCheckStatus::CertificatePassthrough
                })
            });
        }
        cbs
    }

    fn classify(&self, e: git2::Error, refused: &Cell<bool>) -> GitError {
        let url = scrub(&self.cfg.url, &self.secrets());
        let detail = scrub(e.message(), &self.secrets());
        if refused.get() || e.code() == ErrorCode::Auth {
            return GitError::Auth { url, detail };
        }
        // libgit2 says GIT_ECERTIFICATE without a certificate callback, and
        // a generic SSL error when ours passed its verdict through.
        let certificate = e.code() == ErrorCode::Certificate
            || (e.class() == ErrorClass::Ssl && e.message().contains("certificate"));
        if certificate {
            return GitError::Untrusted {
                detail: self.untrusted_advice(&detail),
                url,
            };
        }
        match e.class() {
            ErrorClass::Net
            | ErrorClass::Http
            | ErrorClass::Ssl
            | ErrorClass::Os
            | ErrorClass::Ssh => GitError::Unreachable { url, detail },
            _ if e.code() == ErrorCode::Eof => GitError::Unreachable { url, detail },
            _ => GitError::Local {
                workdir: self.cfg.workdir.display().to_string(),
                action: "talk to the remote",
                detail: format!("{detail} (remote {url})"),
            },
        }
    }

    /// What to do about a certificate libgit2 refused (it does not say why).
    fn untrusted_advice(&self, detail: &str) -> String {
        let host = crate::tls::host_of(&self.cfg.url);
        match &self.trust {
            None => format!(
                "{detail}; if {host} uses a private or self-signed CA, give that CA's certificate \
                 (PEM) with --extra-ca-file (QUAYSIDE_EXTRA_CA_FILE)"
            ),
            Some(ca) => format!(
                "{detail}; the --extra-ca-file {:?} does not verify it for {host}: put the CA that \
                 signed it in that file, or use a URL with a host name the certificate lists",
                ca.path()
            ),
        }
    }

    /// Fetch `branches` into `refs/remotes/origin/*`; a branch the remote
    /// does not have (yet) leaves no tracking ref.
    pub(crate) fn fetch(&self, branches: &[&str]) -> Result<(), GitError> {
        let refused = Cell::new(false);
        let mut remote = self
            .repo
            .remote_anonymous(&self.cfg.url)
            .map_err(|e| self.classify(e, &refused))?;
        let mut fo = FetchOptions::new();
        fo.remote_callbacks(self.callbacks(&refused))
            .download_tags(AutotagOption::None)
            .prune(FetchPrune::On);
        let specs: Vec<String> = branches
            .iter()
            .map(|b| format!("+refs/heads/{b}:refs/remotes/origin/{b}"))
            .collect();
        remote
            .fetch(&specs, Some(&mut fo), None)
            .map_err(|e| self.classify(e, &refused))?;
        // A branch the remote no longer advertises (deleted, or never
        // created) must not leave a stale tracking ref behind.
        if let Ok(heads) = remote.list() {
            let advertised: Vec<String> = heads.iter().map(|h| h.name().to_string()).collect();
            for b in branches {
                let name = format!("refs/heads/{b}");
                if !advertised.contains(&name) {
                    self.set_ref(&super::tracking_ref(b), None)?;
                }
            }
        }
        Ok(())
    }

    /// Push one refspec. Never forced unless the refspec says so (only the
    /// proposal branch's does).
    pub(crate) fn push(&self, refspec: &str, branch: &str) -> Result<PushResult, GitError> {
        let refused = Cell::new(false);
        let status: RefCell<Option<String>> = RefCell::new(None);
        let mut remote = self
            .repo
            .remote_anonymous(&self.cfg.url)
            .map_err(|e| self.classify(e, &refused))?;
        let mut cbs = self.callbacks(&refused);
        cbs.push_update_reference(|_name, s| {
            if let Some(s) = s {
                *status.borrow_mut() = Some(s.to_string());
            }
            Ok(())
        });
        let mut po = PushOptions::new();
        po.remote_callbacks(cbs).packbuilder_parallelism(0);
        let result = remote.push(&[refspec], Some(&mut po));
        drop(po);
        match result {
            Err(e) if e.code() == ErrorCode::NotFastForward => {
                return Ok(PushResult::NonFastForward);
            }
            Err(e) => return Err(self.classify(e, &refused)),
            Ok(()) => {}
        }
        match status.into_inner() {
            None => Ok(PushResult::Pushed),
            Some(s) if is_race(&s) => Ok(PushResult::NonFastForward),
            Some(s) => Err(GitError::Rejected {
                url: scrub(&self.cfg.url, &self.secrets()),
                refname: format!("refs/heads/{branch}"),
                reason: scrub(&s, &self.secrets()),
            }),
        }
    }
}

impl SideRepo {
    /// Whether the credentials may push, without pushing: negotiate a push
    /// (the server's receive-pack advertisement, which is where servers
    /// check write access, as `git push --dry-run` does) and send nothing.
    /// For `quayside doctor`.
    pub fn check_push_access(&self) -> Result<(), GitError> {
        let refused = Cell::new(false);
        let mut remote = self
            .repo
            .remote_anonymous(&self.cfg.url)
            .map_err(|e| self.classify(e, &refused))?;
        remote
            .connect_auth(git2::Direction::Push, Some(self.callbacks(&refused)), None)
            .map_err(|e| self.classify(e, &refused))?;
        remote.list().map_err(|e| self.classify(e, &refused))?;
        let _ = remote.disconnect();
        Ok(())
    }
}

/// Server-side statuses that mean "someone else updated the branch first".
fn is_race(status: &str) -> bool {
    let s = status.to_ascii_lowercase();
    [
        "non-fast-forward",
        "fetch first",
        "stale info",
        "failed to lock",
        "cannot lock ref",
    ]
    .iter()
    .any(|m| s.contains(m))
}
