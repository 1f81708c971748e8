//! The calls of the heartbeat verification (docs/quay.md, "Drift"): the
//! repository's permission list, and a registry login with a stored robot
//! login — which sees a regenerated token no API answer without the token shows.

use std::collections::BTreeMap;
use std::time::Instant;

use reqwest::{Method, StatusCode};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{Need, QuayClient, decode, scrub};
use crate::credentials::RobotCredentials;
use crate::quay::QuayError;

#[derive(Deserialize)]
struct PermissionList {
    permissions: BTreeMap<String, PermissionEntry>,
}

#[derive(Deserialize)]
struct PermissionEntry {
    role: String,
}

impl QuayClient {
    /// Quay's listRepoUserPermissions: every user and robot granted on
    /// `repo`, by name (`org+short` for robots), with its role. A missing
    /// repository lists none (the permissions are a join on it).
    pub async fn list_permissions(
        &self,
        repo: &str,
    ) -> Result<BTreeMap<String, String>, QuayError> {
        // The trailing slash is part of Quay's route.
        let path = self.repo_path(repo, &["permissions", "user", ""]);
        let a = self
            .call("get_repository_permissions", Method::GET, &path, None)
            .await?;
        match a.status.as_u16() {
            200 => {
                let list: PermissionList = decode("get_repository_permissions", a.body)?;
                Ok(list
                    .permissions
                    .into_iter()
                    .map(|(name, p)| (name, p.role))
                    .collect())
            }
            _ => Err(self
                .fail("get_repository_permissions", repo, Need::Admin, a)
                .await),
        }
    }

    /// Whether the registry (on the API's host, as Quay serves both) logs
    /// `login` in now: `false` for a token that is not the robot's current
    /// one, or a robot that is gone. Not an API call: Docker token
    /// authentication (`GET /v2/auth`, Basic), as `docker login` does.
    /// Throttling, 5xx and network failures are retried under the policy.
    pub async fn registry_login(&self, login: &RobotCredentials) -> Result<bool, QuayError> {
        let inner = &*self.inner;
        let mut url = inner.base.clone();
        url.set_path("/v2/auth");
        url.query_pairs_mut()
            .append_pair("account", &login.username)
            .append_pair("service", &self.registry_host());
        let secret = login.token.clone();
        let policy = &inner.cfg.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let started = Instant::now();
            let sent = inner
                .http
                .request(Method::GET, url.clone())
                .basic_auth(&login.username, Some(secret.expose_secret()))
                .send()
                .await;
            let elapsed = started.elapsed().as_secs_f64();
            let failure = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    inner
                        .metrics
                        .observe("registry_login", super::outcome_of(status), elapsed);
                    match status {
                        StatusCode::OK => return Ok(true),
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => return Ok(false),
                        s if s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error() => {
                            format!("HTTP {}", s.as_u16())
                        }
                        s => {
                            return Err(QuayError::Unexpected {
                                endpoint: "registry_login",
                                status: s.as_u16(),
                                message: "the registry's token endpoint gave an unexpected answer"
                                    .into(),
                            });
                        }
                    }
                }
                Err(e) => {
                    inner
                        .metrics
                        .observe("registry_login", "network_error", elapsed);
                    scrub(&super::network_text(&e), &secret)
                }
            };
            if attempt >= policy.max_attempts {
                return Err(QuayError::Exhausted {
                    attempts: attempt,
                    last: failure,
                });
            }
            inner.metrics.retried("registry_login");
            tokio::time::sleep(policy.jittered_delay(attempt, None)).await;
        }
    }
}
