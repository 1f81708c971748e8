//! The emulator's memory: repositories, robots, tokens and permissions, and
//! Quay's answers (status codes, bodies and quirks) to each operation.
//! No I/O here: the HTTP layer only parses and forwards.

use std::collections::{BTreeMap, HashMap};

use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

/// An answer in Quay's shape.
pub(crate) type Reply = (StatusCode, Value);

#[derive(Clone, Debug)]
struct Repo {
    public: bool,
    description: String,
}

#[derive(Clone)]
struct RobotRec {
    token: String,
    description: String,
    /// Set at creation only: Quay has no call that changes it.
    metadata: Option<Value>,
}

/// Everything the emulator remembers.
#[derive(Default)]
pub(crate) struct Model {
    /// (namespace, name)
    repos: BTreeMap<(String, String), Repo>,
    /// full name `org+short`
    robots: BTreeMap<String, RobotRec>,
    /// ("org/repo", full robot name) -> role
    perms: BTreeMap<(String, String), String>,
    /// registry bearer token -> (robot, the robot token it was issued for)
    registry_tokens: HashMap<String, (String, String)>,
}

/// What the emulator holds, for tests to check. Robot tokens stay secret.
#[derive(Clone, Debug, Default)]
pub struct EmulatorState {
    pub repositories: Vec<RepositoryState>,
    pub robots: Vec<RobotState>,
    pub permissions: Vec<PermissionState>,
    /// API calls received, by endpoint (`create_repository`, `get_robot`, ...).
    pub api_calls: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepositoryState {
    pub namespace: String,
    pub name: String,
    pub public: bool,
    pub description: String,
}

#[derive(Clone)]
pub struct RobotState {
    /// Full name, `org+short`.
    pub name: String,
    pub token: SecretString,
    pub description: String,
    /// `unstructured_metadata` as created (`None`: Quay answers `null`).
    pub unstructured_metadata: Option<Value>,
}

impl std::fmt::Debug for RobotState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotState")
            .field("name", &self.name)
            .field("token", &"[REDACTED]")
            .field("description", &self.description)
            .field("unstructured_metadata", &self.unstructured_metadata)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PermissionState {
    /// `org/repo`
    pub repository: String,
    /// Full robot name.
    pub robot: String,
    /// `read`, `write` or `admin`.
    pub role: String,
}

impl EmulatorState {
    pub fn repository(&self, namespace: &str, name: &str) -> Option<&RepositoryState> {
        self.repositories
            .iter()
            .find(|r| r.namespace == namespace && r.name == name)
    }

    pub fn robot(&self, full_name: &str) -> Option<&RobotState> {
        self.robots.iter().find(|r| r.name == full_name)
    }

    /// The role of `robot` on `org/repo`.
    pub fn permission(&self, repository: &str, robot: &str) -> Option<&str> {
        self.permissions
            .iter()
            .find(|p| p.repository == repository && p.robot == robot)
            .map(|p| p.role.as_str())
    }

    /// Calls received by one endpoint.
    pub fn calls(&self, endpoint: &str) -> u64 {
        self.api_calls.get(endpoint).copied().unwrap_or(0)
    }
}

/// Quay's usual error body.
pub(crate) fn quay_error(status: StatusCode, error_type: &str, message: &str) -> Reply {
    (
        status,
        json!({
            "status": status.as_u16(),
            "error_message": message,
            "error_type": error_type,
            "title": error_type,
            "detail": message,
            "type": format!("/api/v1/error/{error_type}"),
        }),
    )
}

/// The bare `{message}` body some robot endpoints answer with.
fn message(status: StatusCode, text: &str) -> Reply {
    (status, json!({ "message": text }))
}

pub(crate) fn not_found() -> Reply {
    quay_error(StatusCode::NOT_FOUND, "not_found", "Not Found")
}

fn valid_repo_name(name: &str) -> bool {
    name.len() <= 255
        && !name.is_empty()
        && name.split('/').all(|seg| {
            let mut b = seg.bytes();
            matches!(b.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
                && b.all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
                })
        })
}

fn valid_robot_short(short: &str) -> bool {
    (2..=255).contains(&short.len())
        && short.split(['.', '_', '-']).all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// A robot token in Quay's form: 64 upper-case letters and digits.
fn new_token() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..64)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

impl Model {
    fn private_count(&self, org: &str) -> usize {
        self.repos
            .iter()
            .filter(|((ns, _), r)| ns == org && !r.public)
            .count()
    }

    fn plan_limit(org: &str) -> Reply {
        quay_error(
            StatusCode::PAYMENT_REQUIRED,
            "exceeds_license",
            &format!(
                "Organization {org} has reached its private repository limit; upgrade the plan"
            ),
        )
    }

    pub(crate) fn create_repository(
        &mut self,
        org: &str,
        name: &str,
        visibility: &str,
        description: &str,
        quota: Option<usize>,
    ) -> Reply {
        if !valid_repo_name(name) {
            return quay_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Invalid repository name",
            );
        }
        let public = match visibility {
            "public" => true,
            "private" => false,
            _ => {
                return quay_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("Invalid visibility: {visibility}"),
                );
            }
        };
        let key = (org.to_string(), name.to_string());
        if self.repos.contains_key(&key) {
            return quay_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Repository already exists",
            );
        }
        if !public && quota.is_some_and(|q| self.private_count(org) >= q) {
            return Self::plan_limit(org);
        }
        self.repos.insert(
            key,
            Repo {
                public,
                description: description.to_string(),
            },
        );
        (
            StatusCode::CREATED,
            json!({"namespace": org, "name": name, "kind": "image"}),
        )
    }

    pub(crate) fn get_repository(&self, org: &str, name: &str) -> Reply {
        match self.repos.get(&(org.to_string(), name.to_string())) {
            Some(r) => (
                StatusCode::OK,
                json!({
                    "namespace": org,
                    "name": name,
                    "kind": "image",
                    "description": r.description,
                    "is_public": r.public,
                    "is_organization": true,
                    "is_starred": false,
                    "state": "NORMAL",
                    "can_write": true,
                    "can_admin": true,
                }),
            ),
            None => not_found(),
        }
    }

    pub(crate) fn change_visibility(
        &mut self,
        org: &str,
        name: &str,
        visibility: &str,
        quota: Option<usize>,
    ) -> Reply {
        let public = match visibility {
            "public" => true,
            "private" => false,
            _ => {
                return quay_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("Invalid visibility: {visibility}"),
                );
            }
        };
        let private_now = self.private_count(org);
        let Some(repo) = self.repos.get_mut(&(org.to_string(), name.to_string())) else {
            return not_found();
        };
        if repo.public && !public && quota.is_some_and(|q| private_now >= q) {
            return Self::plan_limit(org);
        }
        repo.public = public;
        (StatusCode::OK, json!({"success": true}))
    }

    /// Quay's updateRepo: only the description changes; 404 when absent.
    pub(crate) fn update_repository(
        &mut self,
        org: &str,
        name: &str,
        description: Option<&str>,
    ) -> Reply {
        let Some(description) = description else {
            return quay_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "'description' is a required property",
            );
        };
        match self.repos.get_mut(&(org.to_string(), name.to_string())) {
            Some(repo) => {
                repo.description = description.to_string();
                (StatusCode::OK, json!({"success": true}))
            }
            None => not_found(),
        }
    }

    /// What Quay's API cannot do, for tests: set a robot's description and
    /// metadata (e.g. to stand in for a robot an older quayside made).
    /// `false` when there is no such robot.
    pub(crate) fn rewrite_robot(
        &mut self,
        full: &str,
        description: &str,
        metadata: Option<Value>,
    ) -> bool {
        let Some(r) = self.robots.get_mut(full) else {
            return false;
        };
        r.description = description.to_string();
        r.metadata = metadata;
        true
    }

    /// 204 even when absent, as Quay does.
    pub(crate) fn delete_repository(&mut self, org: &str, name: &str) -> Reply {
        self.repos.remove(&(org.to_string(), name.to_string()));
        let full = format!("{org}/{name}");
        self.perms.retain(|(repo, _), _| repo != &full);
        (StatusCode::NO_CONTENT, Value::Null)
    }

    /// A robot as GET and PUT answer (regenerate leaves out the metadata).
    fn robot_body(full: &str, r: &RobotRec) -> Value {
        let mut body = Self::regenerated_body(full, r);
        body["unstructured_metadata"] = r.metadata.clone().unwrap_or(Value::Null);
        body
    }

    fn regenerated_body(full: &str, r: &RobotRec) -> Value {
        json!({
            "name": full,
            "created": "Fri, 27 Nov 2026 00:00:00 -0000",
            "last_accessed": null,
            "description": r.description,
            "token": r.token,
        })
    }

    fn absent_robot() -> Reply {
        message(
            StatusCode::BAD_REQUEST,
            "Could not find robot with specified username",
        )
    }

    pub(crate) fn get_robot(&self, org: &str, short: &str) -> Reply {
        let full = format!("{org}+{short}");
        match self.robots.get(&full) {
            Some(r) => (StatusCode::OK, Self::robot_body(&full, r)),
            None => Self::absent_robot(),
        }
    }

    /// Quay keeps `description` (at most 255 characters) and `metadata`
    /// (`unstructured_metadata`) as given; neither can change afterwards.
    pub(crate) fn create_robot(
        &mut self,
        org: &str,
        short: &str,
        description: &str,
        metadata: Option<Value>,
    ) -> Reply {
        if !valid_robot_short(short) {
            return message(
                StatusCode::BAD_REQUEST,
                &format!(
                    "Invalid robot account shortname: {short}; must match ^[a-z0-9]+(?:[._-][a-z0-9]+)*$"
                ),
            );
        }
        let full = format!("{org}+{short}");
        if self.robots.contains_key(&full) {
            return quay_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("Existing robot with name: {full}"),
            );
        }
        if description.chars().count() > 255 {
            return quay_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Robot description must be 255 characters or fewer",
            );
        }
        let rec = RobotRec {
            token: new_token(),
            description: description.to_string(),
            metadata,
        };
        let body = Self::robot_body(&full, &rec);
        self.robots.insert(full, rec);
        (StatusCode::CREATED, body)
    }

    pub(crate) fn regenerate_robot(&mut self, org: &str, short: &str) -> Reply {
        let full = format!("{org}+{short}");
        match self.robots.get_mut(&full) {
            Some(r) => {
                r.token = new_token();
                (StatusCode::OK, Self::regenerated_body(&full, r))
            }
            None => Self::absent_robot(),
        }
    }

    pub(crate) fn delete_robot(&mut self, org: &str, short: &str) -> Reply {
        let full = format!("{org}+{short}");
        if self.robots.remove(&full).is_none() {
            return Self::absent_robot();
        }
        self.perms.retain(|(_, robot), _| robot != &full);
        (StatusCode::NO_CONTENT, Value::Null)
    }

    pub(crate) fn grant(&mut self, org: &str, repo: &str, user: &str, role: &str) -> Reply {
        if !self
            .repos
            .contains_key(&(org.to_string(), repo.to_string()))
        {
            return not_found();
        }
        if !matches!(role, "read" | "write" | "admin") {
            return quay_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("Invalid role: {role}"),
            );
        }
        if !self.robots.contains_key(user) {
            return quay_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("Invalid username: {user}"),
            );
        }
        self.perms.insert(
            (format!("{org}/{repo}"), user.to_string()),
            role.to_string(),
        );
        (
            StatusCode::OK,
            json!({"role": role, "name": user, "is_robot": true, "is_org_member": true}),
        )
    }

    pub(crate) fn revoke(&mut self, org: &str, repo: &str, user: &str) -> Reply {
        if !self
            .repos
            .contains_key(&(org.to_string(), repo.to_string()))
        {
            return not_found();
        }
        match self
            .perms
            .remove(&(format!("{org}/{repo}"), user.to_string()))
        {
            Some(_) => (StatusCode::NO_CONTENT, Value::Null),
            None => quay_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "User does not have permission for repo.",
            ),
        }
    }

    pub(crate) fn get_permission(&self, org: &str, repo: &str, user: &str) -> Reply {
        match self.perms.get(&(format!("{org}/{repo}"), user.to_string())) {
            Some(role) => (
                StatusCode::OK,
                json!({"role": role, "name": user, "is_robot": true}),
            ),
            None => quay_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "User does not have permission for repo.",
            ),
        }
    }

    /// A registry bearer token for a robot's current credentials, or `None`.
    pub(crate) fn registry_login(&mut self, user: &str, password: &str) -> Option<String> {
        let r = self.robots.get(user)?;
        if r.token != password {
            return None;
        }
        let bearer = new_token();
        self.registry_tokens
            .insert(bearer.clone(), (user.to_string(), password.to_string()));
        Some(bearer)
    }

    /// A bearer is valid while the robot still has the token it was issued for:
    /// regenerating the robot token revokes its sessions too.
    pub(crate) fn registry_bearer_valid(&self, bearer: &str) -> bool {
        self.registry_tokens
            .get(bearer)
            .is_some_and(|(robot, token)| self.robots.get(robot).is_some_and(|r| &r.token == token))
    }

    pub(crate) fn snapshot(&self) -> EmulatorState {
        EmulatorState {
            repositories: self
                .repos
                .iter()
                .map(|((ns, name), r)| RepositoryState {
                    namespace: ns.clone(),
                    name: name.clone(),
                    public: r.public,
                    description: r.description.clone(),
                })
                .collect(),
            robots: self
                .robots
                .iter()
                .map(|(name, r)| RobotState {
                    name: name.clone(),
                    token: SecretString::from(r.token.clone()),
                    description: r.description.clone(),
                    unstructured_metadata: r.metadata.clone(),
                })
                .collect(),
            permissions: self
                .perms
                .iter()
                .map(|((repo, robot), role)| PermissionState {
                    repository: repo.clone(),
                    robot: robot.clone(),
                    role: role.clone(),
                })
                .collect(),
            api_calls: BTreeMap::new(),
        }
    }
}

/// Whether a robot token in a snapshot equals `candidate` (tests compare tokens this way).
pub fn same_token(a: &SecretString, candidate: &SecretString) -> bool {
    a.expose_secret() == candidate.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quirks_absent_robot_is_400_and_existing_robot_put_is_400() {
        let mut m = Model::default();
        assert_eq!(m.get_robot("org", "r1").0, StatusCode::BAD_REQUEST);
        assert_eq!(
            m.create_robot("org", "r1", "d", None).0,
            StatusCode::CREATED
        );
        let (s, body) = m.create_robot("org", "r1", "d", None);
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(body["error_message"], "Existing robot with name: org+r1");
        assert_eq!(m.delete_repository("org", "nope").0, StatusCode::NO_CONTENT);
    }

    #[test]
    fn private_quota_applies_to_create_and_change_visibility() {
        let mut m = Model::default();
        let q = Some(1);
        assert_eq!(
            m.create_repository("o", "a", "private", "", q).0,
            StatusCode::CREATED
        );
        assert_eq!(
            m.create_repository("o", "b", "private", "", q).0,
            StatusCode::PAYMENT_REQUIRED
        );
        assert_eq!(
            m.create_repository("o", "b", "public", "", q).0,
            StatusCode::CREATED
        );
        assert_eq!(
            m.change_visibility("o", "b", "private", q).0,
            StatusCode::PAYMENT_REQUIRED
        );
        assert_eq!(m.change_visibility("o", "a", "public", q).0, StatusCode::OK);
        assert_eq!(
            m.change_visibility("o", "b", "private", q).0,
            StatusCode::OK
        );
    }

    #[test]
    fn regenerating_revokes_registry_sessions() {
        let mut m = Model::default();
        let (_, body) = m.create_robot("o", "bot", "", None);
        let token = body["token"].as_str().unwrap().to_string();
        let bearer = m.registry_login("o+bot", &token).unwrap();
        assert!(m.registry_bearer_valid(&bearer));
        m.regenerate_robot("o", "bot");
        assert!(!m.registry_bearer_valid(&bearer));
        assert!(m.registry_login("o+bot", &token).is_none());
    }
}
