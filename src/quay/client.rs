//! The Quay API client: each call quayside makes (docs/quay.md), idempotent, retried on
//! transient failures, with the OAuth token re-read from its file every time.

mod robot_tokens;
mod verify;

pub use robot_tokens::{RobotTokens, TokenState};

use std::path::PathBuf;

use crate::text::{bounded, fit_keeping_note};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::QuayError;
use super::metrics::QuayMetrics;
use super::rate::{Limiter, RateLimit};
use super::retry::{RetryPolicy, parse_retry_after};
use crate::api::ResolvedVisibility;
use crate::credentials::RobotCredentials;

/// Where Quay is and how to talk to it. Holds the token's path, never the token.
#[derive(Clone, Debug)]
pub struct QuayConfig {
    /// Base of the API, e.g. `https://quay.io/api/v1`.
    pub api_url: String,
    pub organization: String,
    /// File holding the OAuth token; read again on every call so a rotated
    /// Secret takes effect without a restart.
    pub token_file: PathBuf,
    /// PEM file of extra CA certificates to trust (a private Quay).
    pub extra_ca: Option<PathBuf>,
    /// Timeout of each HTTP request.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// The API's rate limit, shared by every call of this client (`None`:
    /// unlimited). Registry logins are not counted: they are not API calls.
    pub rate_limit: Option<RateLimit>,
}

impl QuayConfig {
    /// Quay.io defaults: 30 s timeout, the default retry policy.
    pub fn new(api_url: &str, organization: &str, token_file: impl Into<PathBuf>) -> Self {
        QuayConfig {
            api_url: api_url.to_string(),
            organization: organization.to_string(),
            token_file: token_file.into(),
            extra_ca: None,
            timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            rate_limit: None,
        }
    }
}

/// A repository as Quay reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repository {
    pub namespace: String,
    pub name: String,
    pub is_public: bool,
    /// Where quayside keeps its owner record (`plan::ownership`).
    pub description: String,
}

/// What [`QuayClient::create_repository`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Creation {
    Created,
    /// Quay said "already exists": made by someone else, or by our own
    /// attempt whose answer was lost. Look before using it.
    Existed,
}

impl Repository {
    pub fn visibility(&self) -> ResolvedVisibility {
        if self.is_public {
            ResolvedVisibility::Public
        } else {
            ResolvedVisibility::Private
        }
    }
}

/// A robot account and its current token. `Debug` never shows the token.
#[derive(Clone)]
pub struct Robot {
    /// Full name, `org+short`.
    pub name: String,
    pub token: SecretString,
    pub description: String,
    /// `unstructured_metadata` as created (`Null` when none, and in a
    /// regenerate answer, which leaves it out).
    pub unstructured_metadata: Value,
}

impl std::fmt::Debug for Robot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Robot")
            .field("name", &self.name)
            .field("token", &"[REDACTED]")
            .field("description", &self.description)
            .field("unstructured_metadata", &self.unstructured_metadata)
            .finish()
    }
}

/// What a robot is created with. Quay keeps both for the robot's life and
/// has no call to change them, so they are the robot's birth record.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RobotFields {
    /// At most 255 characters (Quay refuses longer ones with 400).
    pub description: String,
    /// `unstructured_metadata`; `None` sends none.
    pub metadata: Option<Value>,
}

impl From<&str> for RobotFields {
    /// A description only.
    fn from(description: &str) -> Self {
        RobotFields {
            description: description.to_string(),
            metadata: None,
        }
    }
}

impl Robot {
    /// This robot's login to `registry` (e.g. `quay.io`).
    pub fn credentials(&self, registry: &str) -> RobotCredentials {
        RobotCredentials {
            registry: registry.to_string(),
            username: self.name.clone(),
            token: self.token.clone(),
        }
    }
}

/// A robot's role on a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Read,
    Write,
}

impl From<crate::names::RobotRole> for Role {
    /// The permission each of quayside's robots gets: push robots write,
    /// pull robots (the ones delivered to Environments) only read.
    fn from(role: crate::names::RobotRole) -> Role {
        match role {
            crate::names::RobotRole::Push => Role::Write,
            crate::names::RobotRole::Pull => Role::Read,
        }
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
        }
    }
}

/// The Quay API client. Cheap to clone: clones share the connection pool and metrics.
#[derive(Clone)]
pub struct QuayClient {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: QuayConfig,
    base: url::Url,
    http: reqwest::Client,
    metrics: QuayMetrics,
    /// The last robot listing (`robot_tokens`), shared by the verifications.
    robot_listing: tokio::sync::Mutex<Option<robot_tokens::Listing>>,
    /// Robots written through this client: a listing made before is stale.
    robot_writes: std::sync::atomic::AtomicU64,
    limiter: Option<Limiter>,
}

impl std::fmt::Debug for QuayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuayClient")
            .field("api_url", &self.inner.cfg.api_url)
            .field("organization", &self.inner.cfg.organization)
            .field("token_file", &self.inner.cfg.token_file)
            .finish_non_exhaustive()
    }
}

/// The last answer of a call that was not retried away.
struct Answer {
    status: StatusCode,
    body: Value,
    /// The error text of the body (`error_message`, `message`, `error`), token-scrubbed.
    message: String,
}

#[derive(Deserialize)]
struct RobotBody {
    name: String,
    token: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    unstructured_metadata: Value,
}

#[derive(Deserialize)]
struct RepositoryBody {
    namespace: String,
    name: String,
    is_public: bool,
    #[serde(default)]
    description: Option<String>,
}

impl QuayClient {
    /// Check the configuration (URL, CA file) and build the HTTP client. The
    /// token file is not read here: it is read on every call.
    pub fn new(cfg: QuayConfig) -> Result<Self, QuayError> {
        let base =
            url::Url::parse(cfg.api_url.trim_end_matches('/')).map_err(|e| QuayError::Config {
                message: format!(
                    "the Quay API URL {:?} is not a URL ({e}); use e.g. https://quay.io/api/v1",
                    cfg.api_url
                ),
            })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(QuayError::Config {
                message: format!(
                    "the Quay API URL {:?} must be http(s); use e.g. https://quay.io/api/v1",
                    cfg.api_url
                ),
            });
        }
        if cfg.organization.is_empty() {
            return Err(QuayError::Config {
                message: "no Quay organization configured; set the organization flag".into(),
            });
        }
        if cfg.retry.max_attempts == 0 {
            return Err(QuayError::Config {
                message: "the retry policy needs at least one attempt".into(),
            });
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("quayside/", env!("CARGO_PKG_VERSION")))
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)));
        if let Some(ca) = &cfg.extra_ca {
            let pem = std::fs::read(ca).map_err(|e| QuayError::Config {
                message: format!("cannot read the extra CA file {ca:?}: {e}"),
            })?;
            let certs =
                reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| QuayError::Config {
                    message: format!("the extra CA file {ca:?} is not PEM certificates: {e}"),
                })?;
            // An empty bundle parses fine but would silently trust nothing extra.
            if certs.is_empty() {
                return Err(QuayError::Config {
                    message: format!(
                        "the extra CA file {ca:?} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                    ),
                });
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| QuayError::Config {
            message: format!("cannot build the HTTP client: {e}"),
        })?;
        Ok(QuayClient {
            inner: Arc::new(Inner {
                base,
                http,
                metrics: QuayMetrics::default(),
                robot_listing: tokio::sync::Mutex::new(None),
                robot_writes: std::sync::atomic::AtomicU64::new(0),
                limiter: cfg.rate_limit.map(Limiter::new),
                cfg,
            }),
        })
    }

    pub fn organization(&self) -> &str {
        &self.inner.cfg.organization
    }

    /// The registry robots log in to: the API's host and port (Quay serves
    /// both), e.g. `quay.io` for `https://quay.io/api/v1`.
    pub fn registry_host(&self) -> String {
        let base = &self.inner.base;
        let host = base.host_str().unwrap_or_default();
        match base.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    }

    pub fn config(&self) -> &QuayConfig {
        &self.inner.cfg
    }

    pub fn metrics(&self) -> &QuayMetrics {
        &self.inner.metrics
    }

    /// Full robot name, `org+short`.
    pub fn robot_name(&self, short: &str) -> String {
        crate::names::robot_full_name(self.organization(), short)
    }

    /// Create `repo` in the organization. An existing repository is not an
    /// error but [`Creation::Existed`]: whose it is, and its visibility, are
    /// for [`Self::get_repository`] to tell.
    pub async fn create_repository(
        &self,
        repo: &str,
        visibility: ResolvedVisibility,
        description: &str,
    ) -> Result<Creation, QuayError> {
        let org = self.organization();
        let body = json!({
            "namespace": org,
            "repository": repo,
            "visibility": visibility.as_str(),
            "description": fit_keeping_note(description, MAX_DESCRIPTION),
            "repo_kind": "image",
        });
        let a = self
            .call(
                "create_repository",
                Method::POST,
                &["repository"],
                Some(body),
            )
            .await?;
        match a.status.as_u16() {
            200 | 201 => Ok(Creation::Created),
            400 if a.message.to_ascii_lowercase().contains("already exists") => {
                Ok(Creation::Existed)
            }
            404 => Err(self.org_not_found()),
            _ => Err(self.fail("create_repository", repo, Need::Create, a).await),
        }
    }

    /// The repository, or `None` when Quay does not have it.
    pub async fn get_repository(&self, repo: &str) -> Result<Option<Repository>, QuayError> {
        let a = self
            .call(
                "get_repository",
                Method::GET,
                &self.repo_path(repo, &[]),
                None,
            )
            .await?;
        match a.status.as_u16() {
            200 => {
                let r: RepositoryBody = decode("get_repository", a.body)?;
                Ok(Some(Repository {
                    namespace: r.namespace,
                    name: r.name,
                    is_public: r.is_public,
                    description: r.description.unwrap_or_default(),
                }))
            }
            404 => Ok(None),
            _ => Err(self.fail("get_repository", repo, Need::Read, a).await),
        }
    }

    pub async fn change_visibility(
        &self,
        repo: &str,
        visibility: ResolvedVisibility,
    ) -> Result<(), QuayError> {
        let a = self
            .call(
                "change_visibility",
                Method::POST,
                &self.repo_path(repo, &["changevisibility"]),
                Some(json!({ "visibility": visibility.as_str() })),
            )
            .await?;
        match a.status.as_u16() {
            // Quay answers 200 `null` when the repository does not exist:
            // only the repository itself says whether the change happened.
            200 if a.body.is_null() => self.verify_visibility(repo, visibility).await,
            200 | 201 | 204 => Ok(()),
            _ => Err(self.fail("change_visibility", repo, Need::Admin, a).await),
        }
    }

    /// Read `repo` back after an answer that proves nothing.
    async fn verify_visibility(
        &self,
        repo: &str,
        visibility: ResolvedVisibility,
    ) -> Result<(), QuayError> {
        match self.get_repository(repo).await? {
            None => Err(self.repository_gone(repo, "changing its visibility")),
            Some(r) if r.visibility() == visibility => Ok(()),
            Some(r) => Err(QuayError::Unexpected {
                endpoint: "change_visibility",
                status: 200,
                message: format!(
                    "Quay accepted the change of {repo:?} to {} but the repository is still {}",
                    visibility.as_str(),
                    r.visibility().as_str()
                ),
            }),
        }
    }

    fn repository_gone(&self, repo: &str, doing: &str) -> QuayError {
        QuayError::NotFound {
            what: format!(
                "repository {repo:?} in organization {:?}",
                self.organization()
            ),
            message: format!("it was not there when {doing}; the next pass creates it again"),
        }
    }

    /// Replace the repository's description (Quay's updateRepo, which
    /// changes nothing else); 404 when absent is `NotFound`.
    pub async fn update_repository_description(
        &self,
        repo: &str,
        description: &str,
    ) -> Result<(), QuayError> {
        let a = self
            .call(
                "update_repository",
                Method::PUT,
                &self.repo_path(repo, &[]),
                Some(json!({ "description": fit_keeping_note(description, MAX_DESCRIPTION) })),
            )
            .await?;
        match a.status.as_u16() {
            200 | 201 | 204 => Ok(()),
            _ => Err(self.fail("update_repository", repo, Need::Admin, a).await),
        }
    }

    /// Delete `repo`; an absent repository is success.
    pub async fn delete_repository(&self, repo: &str) -> Result<(), QuayError> {
        let a = self
            .call(
                "delete_repository",
                Method::DELETE,
                &self.repo_path(repo, &[]),
                None,
            )
            .await?;
        match a.status.as_u16() {
            200 | 202 | 204 | 404 => Ok(()),
            _ => Err(self.fail("delete_repository", repo, Need::Admin, a).await),
        }
    }

    /// The robot and its current token, or `None`. Quay answers 400, not 404,
    /// for an absent robot.
    pub async fn get_robot(&self, short: &str) -> Result<Option<Robot>, QuayError> {
        let a = self
            .call("get_robot", Method::GET, &self.robot_path(short, &[]), None)
            .await?;
        match a.status.as_u16() {
            200 => Ok(Some(robot_from("get_robot", a.body)?)),
            400 => Ok(None),
            404 => Err(self.org_not_found()),
            _ => Err(self.fail("get_robot", short, Need::Organization, a).await),
        }
    }

    /// The robot, created when absent. Returns an existing robot as it is:
    /// one left by an earlier pass (which crashed before recording it) or
    /// anyone else's, so the caller checks its description and metadata
    /// (`plan::ownership`) before using it.
    pub async fn ensure_robot(
        &self,
        short: &str,
        fields: impl Into<RobotFields>,
    ) -> Result<Robot, QuayError> {
        if let Some(r) = self.get_robot(short).await? {
            return Ok(r);
        }
        self.create_robot(short, fields).await
    }

    /// Create the robot, or return the existing one: the same result as
    /// [`Self::ensure_robot`] with one call fewer when the robot is new (the
    /// usual case for a new Component), one more when it already exists.
    /// An existing robot keeps its own description and metadata (Quay
    /// cannot change them), which is how the caller tells whose it is.
    pub async fn create_robot(
        &self,
        short: &str,
        fields: impl Into<RobotFields>,
    ) -> Result<Robot, QuayError> {
        let fields = fields.into();
        self.robot_written();
        let mut body =
            json!({ "description": fit_keeping_note(&fields.description, MAX_DESCRIPTION) });
        if let Some(m) = fields.metadata {
            body["unstructured_metadata"] = m;
        }
        let a = self
            .call(
                "create_robot",
                Method::PUT,
                &self.robot_path(short, &[]),
                Some(body),
            )
            .await?;
        match a.status.as_u16() {
            200 | 201 => robot_from("create_robot", a.body),
            // Created concurrently, or by our own earlier attempt whose answer was lost.
            400 if a.message.contains("Existing robot") => match self.get_robot(short).await? {
                Some(r) => Ok(r),
                None => Err(QuayError::Unexpected {
                    endpoint: "create_robot",
                    status: 400,
                    message: format!(
                        "Quay says robot {} exists but does not return it",
                        self.robot_name(short)
                    ),
                }),
            },
            404 => Err(self.org_not_found()),
            _ => Err(self
                .fail("create_robot", short, Need::Organization, a)
                .await),
        }
    }

    /// A new token for the robot; Quay revokes the old one at once.
    pub async fn regenerate_robot_token(&self, short: &str) -> Result<Robot, QuayError> {
        self.robot_written();
        let a = self
            .call(
                "regenerate_robot",
                Method::POST,
                &self.robot_path(short, &["regenerate"]),
                None,
            )
            .await?;
        match a.status.as_u16() {
            200 | 201 => robot_from("regenerate_robot", a.body),
            400 => Err(QuayError::NotFound {
                what: format!("robot {}", self.robot_name(short)),
                message: a.message,
            }),
            404 => Err(self.org_not_found()),
            _ => Err(self
                .fail("regenerate_robot", short, Need::Organization, a)
                .await),
        }
    }

    /// Delete the robot (and with it its permissions); absent is success.
    pub async fn delete_robot(&self, short: &str) -> Result<(), QuayError> {
        self.robot_written();
        let a = self
            .call(
                "delete_robot",
                Method::DELETE,
                &self.robot_path(short, &[]),
                None,
            )
            .await?;
        match a.status.as_u16() {
            200 | 202 | 204 | 400 => Ok(()),
            404 => Err(self.org_not_found()),
            _ => Err(self
                .fail("delete_robot", short, Need::Organization, a)
                .await),
        }
    }

    /// Give the robot `role` on `repo` (replacing any other role it had).
    pub async fn grant(&self, repo: &str, robot_short: &str, role: Role) -> Result<(), QuayError> {
        let user = self.robot_name(robot_short);
        let path = self.repo_path(repo, &["permissions", "user", &user]);
        let body = json!({ "role": role.as_str() });
        // Quay answers a grant on a missing repository with 500: look at
        // the repository before retrying a 500 as transient.
        let first = self
            .call_with(
                "grant",
                Method::PUT,
                &path,
                Some(body.clone()),
                Retry5xx::No,
            )
            .await?;
        let a = if first.status.is_server_error() {
            let missing_repo_answer = first.status == StatusCode::INTERNAL_SERVER_ERROR;
            if missing_repo_answer && self.get_repository(repo).await?.is_none() {
                return Err(self.repository_gone(repo, "granting a robot access"));
            }
            // A proxy's 502 or a 500 with the repository there: transient.
            self.call("grant", Method::PUT, &path, Some(body)).await?
        } else {
            first
        };
        match a.status.as_u16() {
            200 | 201 | 204 => Ok(()),
            _ => Err(self.fail("grant", repo, Need::Admin, a).await),
        }
    }

    /// Remove the robot's permission on `repo`. A permission, robot or
    /// repository already gone is success (Quay says 400 or 404 for those).
    pub async fn revoke(&self, repo: &str, robot_short: &str) -> Result<(), QuayError> {
        let user = self.robot_name(robot_short);
        let a = self
            .call(
                "revoke",
                Method::DELETE,
                &self.repo_path(repo, &["permissions", "user", &user]),
                None,
            )
            .await?;
        match a.status.as_u16() {
            200 | 202 | 204 | 400 | 404 => Ok(()),
            _ => Err(self.fail("revoke", repo, Need::Admin, a).await),
        }
    }

    fn repo_path(&self, repo: &str, tail: &[&str]) -> Vec<String> {
        let mut p = vec!["repository".to_string(), self.organization().to_string()];
        p.extend(repo.split('/').map(str::to_string));
        p.extend(tail.iter().map(|s| s.to_string()));
        p
    }

    fn robot_path(&self, short: &str, tail: &[&str]) -> Vec<String> {
        let mut p = vec![
            "organization".to_string(),
            self.organization().to_string(),
            "robots".to_string(),
            short.to_string(),
        ];
        p.extend(tail.iter().map(|s| s.to_string()));
        p
    }

    fn org_not_found(&self) -> QuayError {
        QuayError::OrganizationNotFound {
            organization: self.organization().to_string(),
        }
    }

    /// The typed error for a permanent answer, after one look at the
    /// organization when Quay said 403 "Unauthorized": Quay answers that for
    /// an organization that does not exist as for a missing right.
    async fn fail(&self, endpoint: &'static str, object: &str, need: Need, a: Answer) -> QuayError {
        match self.error(endpoint, object, a) {
            QuayError::Forbidden {
                organization,
                message,
                ..
            } => match self.organization_exists().await {
                Some(false) => self.org_not_found(),
                _ => QuayError::Forbidden {
                    organization,
                    call: need.call(),
                    needs: need.needs(),
                    message,
                },
            },
            other => other,
        }
    }

    /// `GET /organization/{org}`: 200 when it exists, 404 when it does not,
    /// whatever the token's rights (Quay's getOrganizationByName); `None`
    /// when the answer tells neither.
    async fn organization_exists(&self) -> Option<bool> {
        let path = ["organization", self.organization()];
        match self
            .call("get_organization", Method::GET, &path, None)
            .await
        {
            Ok(a) if a.status == StatusCode::OK => Some(true),
            Ok(a) if a.status == StatusCode::NOT_FOUND => Some(false),
            _ => None,
        }
    }

    /// The typed error for a permanent answer.
    fn error(&self, endpoint: &'static str, object: &str, a: Answer) -> QuayError {
        let cfg = &self.inner.cfg;
        match a.status.as_u16() {
            400 => QuayError::Invalid { message: a.message },
            401 => QuayError::Unauthorized {
                organization: cfg.organization.clone(),
                token_file: cfg.token_file.clone(),
                message: a.message,
            },
            402 => QuayError::PlanLimit {
                organization: cfg.organization.clone(),
                repository: object.to_string(),
                message: a.message,
            },
            // A write with a token Quay does not know fails its CSRF check
            // first (recorded): an authentication failure, not a scope.
            403 if a.message.contains(CSRF_REFUSAL) => QuayError::Unauthorized {
                organization: cfg.organization.clone(),
                token_file: cfg.token_file.clone(),
                message: a.message,
            },
            403 => QuayError::Forbidden {
                organization: cfg.organization.clone(),
                call: "this call",
                needs: "more rights",
                message: a.message,
            },
            404 => QuayError::NotFound {
                what: format!("{object:?} in organization {:?}", cfg.organization),
                message: a.message,
            },
            status => QuayError::Unexpected {
                endpoint,
                status,
                message: a.message,
            },
        }
    }

    fn read_token(&self) -> Result<SecretString, QuayError> {
        let path = &self.inner.cfg.token_file;
        let raw = std::fs::read_to_string(path).map_err(|e| QuayError::Config {
            message: format!(
                "cannot read the Quay OAuth token from {path:?} ({}); mount the token Secret there",
                e.kind()
            ),
        })?;
        let token = raw.trim();
        if token.is_empty() {
            return Err(QuayError::Config {
                message: format!("the Quay OAuth token file {path:?} is empty"),
            });
        }
        Ok(SecretString::from(token.to_string()))
    }

    /// Send one API request, retrying 429, 5xx and network failures under the
    /// retry policy. Any other answer comes back for the caller to interpret.
    async fn call(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &[impl AsRef<str>],
        body: Option<Value>,
    ) -> Result<Answer, QuayError> {
        self.call_with(endpoint, method, path, body, Retry5xx::Yes)
            .await
    }

    /// [`Self::call`], with 5xx answers returned at once when `retry_5xx` says so.
    async fn call_with(
        &self,
        endpoint: &'static str,
        method: Method,
        path: &[impl AsRef<str>],
        body: Option<Value>,
        retry_5xx: Retry5xx,
    ) -> Result<Answer, QuayError> {
        let inner = &*self.inner;
        let mut url = inner.base.clone();
        url.path_segments_mut()
            .expect("checked in new: the API URL can be a base")
            .pop_if_empty()
            .extend(path.iter().map(|s| s.as_ref()));
        let policy = &inner.cfg.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (failure, retry_after) = match self
                .attempt(endpoint, &method, &url, body.as_ref(), retry_5xx)
                .await?
            {
                Attempt::Answered(answer) => return Ok(answer),
                Attempt::Failed {
                    failure,
                    retry_after,
                } => (failure, retry_after),
            };
            if attempt >= policy.max_attempts {
                tracing::warn!(endpoint, attempts = attempt, last = %failure, "Quay call failed; giving up for now");
                return Err(QuayError::Exhausted {
                    attempts: attempt,
                    last: failure,
                });
            }
            let delay = policy.jittered_delay(attempt, retry_after);
            tracing::debug!(endpoint, attempt, ?delay, reason = %failure, "retrying Quay call");
            inner.metrics.retried(endpoint);
            tokio::time::sleep(delay).await;
        }
    }
    /// One request and its answer: what to return, or why it failed and
    /// may be retried (with the server's `Retry-After`).
    async fn attempt(
        &self,
        endpoint: &'static str,
        method: &Method,
        url: &reqwest::Url,
        body: Option<&Value>,
        retry_5xx: Retry5xx,
    ) -> Result<Attempt, QuayError> {
        let inner = &*self.inner;
        // Read on every attempt: a token rotated mid-backoff is picked up.
        let token = self.read_token()?;
        let mut req = inner
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(token.expose_secret())
            .header("accept", "application/json");
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(limiter) = &inner.limiter {
            limiter.acquire().await;
        }
        let started = Instant::now();
        let sent = req.send().await;
        let (failure, retry_after) = match sent {
            Ok(resp) => {
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                match resp.bytes().await {
                    Ok(bytes) => {
                        let outcome = outcome_of(status);
                        inner
                            .metrics
                            .observe(endpoint, outcome, started.elapsed().as_secs_f64());
                        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        let message = error_text(status, &body, &bytes, &token);
                        let retried = status == StatusCode::TOO_MANY_REQUESTS
                            || (status.is_server_error() && retry_5xx == Retry5xx::Yes);
                        if retried {
                            if status == StatusCode::TOO_MANY_REQUESTS
                                && let Some(limiter) = &inner.limiter
                            {
                                // Everyone waits, not only this call: the
                                // server's window is shared by the process.
                                let wait = retry_after.unwrap_or(Duration::from_secs(1));
                                limiter.pause(wait.min(inner.cfg.retry.max_delay)).await;
                            }
                            (format!("HTTP {} {message}", status.as_u16()), retry_after)
                        } else {
                            return Ok(Attempt::Answered(Answer {
                                status,
                                body,
                                message,
                            }));
                        }
                    }
                    Err(e) => {
                        inner.metrics.observe(
                            endpoint,
                            "network_error",
                            started.elapsed().as_secs_f64(),
                        );
                        (scrub(&format!("reading the answer: {e}"), &token), None)
                    }
                }
            }
            Err(e) => {
                inner
                    .metrics
                    .observe(endpoint, "network_error", started.elapsed().as_secs_f64());
                if e.is_builder() {
                    return Err(QuayError::Config {
                        message: scrub(&format!("cannot build the request: {e}"), &token),
                    });
                }
                // A refused certificate is not transient: say what to
                // change instead of retrying it.
                if let Some(refusal) = crate::tls::Refusal::find(&e) {
                    let host = crate::tls::host_of(&inner.cfg.api_url);
                    return Err(QuayError::Untrusted {
                        message: refusal.advice(&host, inner.cfg.extra_ca.as_deref()),
                    });
                }
                (scrub(&network_text(&e), &token), None)
            }
        };
        Ok(Attempt::Failed {
            failure,
            retry_after,
        })
    }
}

/// One attempt's outcome.
enum Attempt {
    Answered(Answer),
    Failed {
        failure: String,
        retry_after: Option<Duration>,
    },
}

/// Whether [`QuayClient::call_with`] retries a 5xx answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry5xx {
    Yes,
    No,
}

/// Quay's limit on robot descriptions (400 past it, recorded); repository
/// descriptions are held to it too.
const MAX_DESCRIPTION: usize = 255;

/// What Quay answers a write with a token it does not know.
const CSRF_REFUSAL: &str = "CSRF token was invalid or missing";

/// What a call needs of the token, for a 403's message.
#[derive(Clone, Copy)]
enum Need {
    Read,
    Create,
    Admin,
    Organization,
}

impl Need {
    fn call(self) -> &'static str {
        match self {
            Need::Read => "reading the repository",
            Need::Create => "creating repositories",
            Need::Admin => {
                "changing the repository (visibility, permissions, description, deletion)"
            }
            Need::Organization => "managing robot accounts",
        }
    }

    fn needs(self) -> &'static str {
        match self {
            Need::Read => "the repo:read scope and read access to the repository",
            Need::Create => {
                "the repo:create scope (\"Create Repositories\") and a user allowed to create repositories in the organization"
            }
            Need::Admin => {
                "the repo:admin scope (\"Administer Repositories\") and admin rights on the repository (an organization administrator has them)"
            }
            Need::Organization => {
                "the org:admin scope (\"Administer Organization\") and a user who is an administrator of the organization"
            }
        }
    }
}

fn outcome_of(status: StatusCode) -> &'static str {
    if status.is_success() {
        "ok"
    } else if status == StatusCode::TOO_MANY_REQUESTS {
        "throttled"
    } else if status.is_server_error() {
        "server_error"
    } else {
        "client_error"
    }
}

/// Quay's error bodies vary: `error_message`, then `message`, then `error`;
/// otherwise a short piece of the raw body or the status text.
/// The longest error text (bytes) kept from a Quay answer: enough for any
/// message Quay writes, small enough for a condition and an event (1 KiB).
const MAX_ERROR_TEXT: usize = 300;

/// The error text of an answer, with the token scrubbed *before* it is cut:
/// a cut through an echoed token would leave a piece no scrub recognises.
fn error_text(status: StatusCode, body: &Value, raw: &[u8], token: &SecretString) -> String {
    for key in ["error_message", "message", "error"] {
        if let Some(s) = body.get(key).and_then(Value::as_str)
            && !s.is_empty()
        {
            return bounded(&scrub(s, token), MAX_ERROR_TEXT);
        }
    }
    let raw = String::from_utf8_lossy(raw);
    let raw = raw.trim();
    if raw.is_empty() || status.is_success() {
        status.canonical_reason().unwrap_or("").to_string()
    } else {
        bounded(&scrub(raw, token), 200)
    }
}

/// A network failure in a few words (the innermost cause is the useful part).
fn network_text(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "connection failed"
    };
    let mut cause = String::new();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        format!("{kind}: {e}")
    } else {
        format!("{kind}: {cause}")
    }
}

/// Never let the OAuth token through, even if a server echoes it.
fn scrub(text: &str, token: &SecretString) -> String {
    let t = token.expose_secret();
    if t.is_empty() {
        text.to_string()
    } else {
        text.replace(t, "[REDACTED]")
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    endpoint: &'static str,
    body: Value,
) -> Result<T, QuayError> {
    serde_json::from_value(body).map_err(|e| QuayError::Unexpected {
        endpoint,
        status: 200,
        message: format!("unexpected answer body: {e}"),
    })
}

fn robot_from(endpoint: &'static str, body: Value) -> Result<Robot, QuayError> {
    let r: RobotBody = decode(endpoint, body)?;
    Ok(Robot {
        name: r.name,
        token: SecretString::from(r.token),
        description: r.description.unwrap_or_default(),
        unstructured_metadata: r.unstructured_metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_token() -> SecretString {
        SecretString::from(String::new())
    }

    #[test]
    fn a_token_echoed_at_the_cut_is_scrubbed_before_the_cut() {
        let token = SecretString::from("T0KENT0KENT0KENT0KENT0KENT0KEN99".to_string());
        let echoed = format!(
            "{}{}",
            "x".repeat(MAX_ERROR_TEXT - 10),
            token.expose_secret()
        );
        let s = StatusCode::BAD_REQUEST;
        let got = error_text(s, &json!({ "message": echoed }), b"", &token);
        assert!(!got.contains("T0KENT0KEN"), "{got}");
        let raw = format!("{}{}", "y".repeat(190), token.expose_secret());
        let got = error_text(s, &Value::Null, raw.as_bytes(), &token);
        assert!(!got.contains("T0KENT0KEN"), "{got}");
    }

    #[test]
    fn error_text_prefers_error_message_then_message_then_error() {
        let s = StatusCode::BAD_REQUEST;
        let both = json!({"error_message": "A", "message": "B", "error": "C"});
        assert_eq!(error_text(s, &both, b"", &no_token()), "A");
        assert_eq!(
            error_text(s, &json!({"message": "B", "error": "C"}), b"", &no_token()),
            "B"
        );
        assert_eq!(error_text(s, &json!({"error": "C"}), b"", &no_token()), "C");
        assert_eq!(
            error_text(s, &Value::Null, b"<html>oops</html>", &no_token()),
            "<html>oops</html>"
        );
        assert_eq!(error_text(s, &Value::Null, b"", &no_token()), "Bad Request");
    }

    #[test]
    fn long_error_texts_are_bounded() {
        let s = StatusCode::BAD_REQUEST;
        let long = "A".repeat(1100);
        let got = error_text(s, &json!({ "error_message": long }), b"", &no_token());
        assert_eq!(got.chars().count(), MAX_ERROR_TEXT + 1);
        assert!(got.ends_with('…'));
        let wide = "é".repeat(1000);
        let got = error_text(s, &json!({ "message": wide }), b"", &no_token());
        assert!(got.len() <= MAX_ERROR_TEXT + '…'.len_utf8());
    }

    #[test]
    fn scrub_removes_the_token() {
        let t = SecretString::from("TOKEN123".to_string());
        assert_eq!(scrub("bad TOKEN123 here", &t), "bad [REDACTED] here");
    }
}
