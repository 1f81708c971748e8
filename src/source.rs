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
/// Longest a whole check may take, every attempt and pause included.
const DEADLINE: Duration = Duration::from_secs(120);
/// Probes at once: each holds a blocking thread, and a tenant controls the
/// URL, so a workspace of unreachable URLs cannot take every thread.
const CONCURRENT_PROBES: usize = 4;
static PROBES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(CONCURRENT_PROBES);
/// How much of libgit2's error text (bytes) reaches a condition.
const MAX_MESSAGE: usize = 200;

/// libgit2's own socket timeouts, so a blocking probe thread cannot hang on
/// a server that accepts and never answers (the async timeout above only
/// stops waiting for it). Process-wide: they bound side-repo operations too.
fn bound_libgit2_sockets() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: libgit2 options are set once, before any probe starts.
        unsafe {
            let _ = git2::opts::set_server_connect_timeout_in_milliseconds(10_000);
            let _ = git2::opts::set_server_timeout_in_milliseconds(60_000);
        }
    });
}

/// What anonymous access to the source repository tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceVisibility {
    Public,
    Private,
}

/// Which hosts the probe may reach. It is a request the controller makes on
/// a tenant's behalf, from inside the cluster's network: by default only to
/// public addresses, so a URL cannot aim it at the cloud metadata service,
/// the API server or another internal service.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProbeScope {
    #[default]
    PublicOnly,
    /// Internal addresses too (`--source-allow-internal`): for a git server
    /// on the platform's own network, and for tests and the demo.
    AnyAddress,
}

#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    #[error(
        "source URL {url:?} points at an internal address (loopback, private or link-local), which quayside does not probe; set spec.visibility explicitly, or ask the administrator to allow internal source hosts (--source-allow-internal)"
    )]
    InternalAddress { url: String },
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
            SourceError::InternalAddress { .. } => "SourceAddressRefused",
            SourceError::NotFound { .. } => "SourceNotFound",
            SourceError::Unreachable { .. } => "SourceUnreachable",
        }
    }
}

/// Ask the source repository, anonymously, whether it is public.
pub async fn detect_visibility(
    url: &str,
    retry: &RetryPolicy,
    scope: ProbeScope,
) -> Result<SourceVisibility, SourceError> {
    let anon = anonymous_url(url)?;
    if scope == ProbeScope::PublicOnly && reaches_internal(&anon).await {
        return Err(SourceError::InternalAddress {
            url: url.to_string(),
        });
    }
    bound_libgit2_sockets();
    let started = tokio::time::Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let probe_url = anon.clone();
        let outcome = tokio::time::timeout(ATTEMPT_TIMEOUT, async {
            // The semaphore is never closed, so a permit always comes.
            let _permit = PROBES.acquire().await.expect("the probe semaphore is open");
            tokio::task::spawn_blocking(move || probe(&probe_url)).await
        })
        .await;
        let failure = match outcome {
            Ok(Ok(Ok(v))) => return Ok(v),
            Ok(Ok(Err(Probe::NotFound))) => {
                return Err(SourceError::NotFound {
                    url: url.to_string(),
                });
            }
            Ok(Ok(Err(Probe::Network(m)))) => crate::text::bounded(&m, MAX_MESSAGE),
            Ok(Err(join)) => format!("the check failed: {join}"),
            Err(_) => format!("no answer within {ATTEMPT_TIMEOUT:?}"),
        };
        let delay = retry.jittered_delay(attempt, None);
        if attempt >= retry.max_attempts.max(1) || started.elapsed() + delay >= DEADLINE {
            return Err(SourceError::Unreachable {
                url: url.to_string(),
                attempts: attempt,
                message: failure,
            });
        }
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

/// Whether the URL's host is, or resolves to, an internal address. A host
/// that does not resolve is left to the probe, which reports it as
/// unreachable. (libgit2 resolves again when it connects: a DNS answer
/// that changes in between is not caught here.)
async fn reaches_internal(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    let port = u.port_or_known_default().unwrap_or(443);
    match u.host() {
        Some(url::Host::Ipv4(ip)) => is_internal(ip.into()),
        Some(url::Host::Ipv6(ip)) => is_internal(ip.into()),
        Some(url::Host::Domain(name)) => {
            let lookup = tokio::net::lookup_host((name.to_string(), port));
            match tokio::time::timeout(Duration::from_secs(10), lookup).await {
                Ok(Ok(mut addrs)) => addrs.any(|a| is_internal(a.ip())),
                _ => false,
            }
        }
        None => false,
    }
}

/// Whether an address is one a server-side request from the controller
/// must not reach on a tenant's behalf: loopback, private (RFC 1918, shared
/// CGNAT space, IPv6 unique-local), link-local (which holds the cloud
/// metadata services, 169.254.169.254 and fd00:ec2::254 alike), unspecified,
/// multicast, broadcast or documentation ranges, and IPv4 in IPv6 forms of
/// any of those.
pub fn is_internal(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && v4.octets()[2] == 0)
                || a >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped().or_else(|| v6.to_ipv4())
                && !v6.is_loopback()
            {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
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

    #[tokio::test]
    async fn internal_hosts_are_refused_before_any_request() {
        let retry = RetryPolicy::default();
        for url in [
            "http://127.0.0.1:9/r.git",
            "https://169.254.169.254/latest/meta-data",
            "http://[::1]/r.git",
            "http://localhost:9/r.git",
            "git@10.0.0.5:team/app.git",
        ] {
            let got = detect_visibility(url, &retry, ProbeScope::PublicOnly).await;
            assert_eq!(
                got,
                Err(SourceError::InternalAddress { url: url.into() }),
                "{url}"
            );
        }
        let e = SourceError::InternalAddress { url: "x".into() };
        assert_eq!(e.reason(), "SourceAddressRefused");
        assert!(!e.is_transient());
        assert!(e.to_string().contains("set spec.visibility"));
    }

    #[test]
    fn internal_addresses_are_recognised_in_every_form() {
        let internal = [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.170",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
        ];
        for ip in internal {
            assert!(is_internal(ip.parse().unwrap()), "{ip} is internal");
        }
        for ip in [
            "140.82.112.3",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip} is public");
        }
    }

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
