//! A blocking client for the forge's pull-request API in GitHub's REST shape
//! (GitHub, Gitea and Forgejo serve it): find, open and update one pull request.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::GitError;
use super::error::scrub;
use crate::tls::{ExtraCa, Refusal, host_of};

/// A pull request as the forge reports it (the fields quayside reads).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Pull {
    pub number: u64,
    #[serde(default)]
    pub html_url: Option<String>,
}

impl Pull {
    pub fn reference(&self) -> String {
        self.html_url
            .clone()
            .unwrap_or_else(|| format!("#{}", self.number))
    }
}

pub(crate) struct Forge {
    http: reqwest::blocking::Client,
    base: String,
    owner: String,
    token: SecretString,
    /// The extra CA file trusted, named when a certificate is refused.
    trust: Option<std::path::PathBuf>,
}

impl Forge {
    pub fn new(
        api_url: &str,
        owner: &str,
        repo: &str,
        token: &SecretString,
        trust: Option<&ExtraCa>,
    ) -> Result<Forge, GitError> {
        let mut builder = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("quayside/", env!("CARGO_PKG_VERSION")));
        for cert in trust.map(ExtraCa::reqwest_certificates).unwrap_or_default() {
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| GitError::Forge {
            action: "set-up",
            status: None,
            message: e.to_string(),
        })?;
        Ok(Forge {
            http,
            base: format!(
                "{}/repos/{owner}/{repo}/pulls",
                api_url.trim_end_matches('/')
            ),
            owner: owner.to_string(),
            token: token.clone(),
            trust: trust.map(|t| t.path().to_path_buf()),
        })
    }

    fn send(
        &self,
        action: &'static str,
        req: reqwest::blocking::RequestBuilder,
    ) -> Result<reqwest::blocking::Response, GitError> {
        let resp = req
            .header(
                "Authorization",
                format!("token {}", self.token.expose_secret()),
            )
            .header("Accept", "application/vnd.github+json")
            .send()
            .map_err(|e| self.unsent(action, &e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| text.chars().take(200).collect());
        let hint = match status {
            401 | 403 => " (check the pull-request token and its scopes)",
            404 => " (check the API URL, owner and repository)",
            _ => "",
        };
        Err(GitError::Forge {
            action,
            status: Some(status),
            message: scrub(&format!("{message}{hint}"), &[self.token.expose_secret()]),
        })
    }

    /// A request that got no answer: a refused certificate says what to
    /// change (and is not retried as a network failure).
    fn unsent(&self, action: &'static str, e: &reqwest::Error) -> GitError {
        if let Some(refusal) = Refusal::find(e) {
            let host = host_of(&self.base);
            return GitError::Untrusted {
                detail: refusal.advice(&host, self.trust.as_deref()),
                url: host,
            };
        }
        GitError::Forge {
            action,
            status: None,
            message: scrub(&e.to_string(), &[self.token.expose_secret()]),
        }
    }

    fn json<T: for<'de> Deserialize<'de>>(
        action: &'static str,
        resp: reqwest::blocking::Response,
    ) -> Result<T, GitError> {
        resp.json().map_err(|e| GitError::Forge {
            action,
            status: None,
            message: format!("unexpected response: {e}"),
        })
    }

    /// The open pull request from `head` (a branch of the same repository).
    pub fn find_open(&self, head: &str) -> Result<Option<Pull>, GitError> {
        let action = "list open pull requests";
        let resp = self.send(
            action,
            self.http.get(&self.base).query(&[
                ("state", "open"),
                ("head", &format!("{}:{head}", self.owner)),
            ]),
        )?;
        let pulls: Vec<Pull> = Self::json(action, resp)?;
        Ok(pulls.into_iter().min_by_key(|p| p.number))
    }

    pub fn create(
        &self,
        title: &str,
        head: &str,
        base: &str,
        body: &str,
    ) -> Result<Pull, GitError> {
        let action = "open a pull request";
        let resp = self.send(
            action,
            self.http.post(&self.base).json(&serde_json::json!({
                "title": title, "head": head, "base": base, "body": body,
            })),
        )?;
        Self::json(action, resp)
    }

    pub fn update(&self, number: u64, title: &str, body: &str) -> Result<Pull, GitError> {
        let action = "update the pull request";
        let resp = self.send(
            action,
            self.http
                .patch(format!("{}/{number}", self.base))
                .json(&serde_json::json!({ "title": title, "body": body })),
        )?;
        Self::json(action, resp)
    }
}
