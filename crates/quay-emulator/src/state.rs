//! The emulator's memory: repositories, robots, tokens and permissions, and
//! Quay's answers (status codes, bodies and quirks) to each operation.
//! No I/O here: the HTTP layer only parses and forwards.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::reply::{Reply, enum_violation, too_long};

/// How long a registry bearer token lives (Quay's is an hour).
const REGISTRY_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// A repository creation request.
pub(crate) struct NewRepository<'a> {
    pub org: &'a str,
    pub name: &'a str,
    pub visibility: &'a str,
    pub description: &'a str,
    /// The token (by index) that asks; a creator administers what it made.
    pub creator: usize,
}

#[derive(Clone, Debug)]
struct Repo {
    public: bool,
    description: String,
    creator: usize,
    status_token: String,
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
    /// registry bearer token -> when it expires
    registry_tokens: HashMap<String, Instant>,
    /// `/v2/auth` requests received (registry logins, good or bad).
    registry_logins: u64,
}

/// What the emulator holds, for tests to check. Robot tokens stay secret.
#[derive(Clone, Debug, Default)]
pub struct EmulatorState {
    pub repositories: Vec<RepositoryState>,
    pub robots: Vec<RobotState>,
    pub permissions: Vec<PermissionState>,
    /// API calls received, by endpoint (`create_repository`, `get_robot`, ...).
    pub api_calls: BTreeMap<String, u64>,
    /// Registry logins (`/v2/auth`) received: not API calls, counted apart.
    pub registry_logins: u64,
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

/// A robot name Quay accepts: checked as Quay's `validate_namespace`
/// does, with its words (recorded: `robot.put.invalid_upper`, `too_short`).
fn robot_name_problem(short: &str) -> Option<String> {
    let valid_form = short.split(['.', '_', '-']).all(|p| {
        !p.is_empty()
            && p.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    });
    let problem = if !valid_form {
        "Namespace must match expression ^([a-z0-9]+(?:[._-][a-z0-9]+)*)$"
    } else if !(2..=255).contains(&short.len()) {
        "Namespace must be between 2 and 255 characters in length"
    } else {
        return None;
    };
    Some(format!(
        "The name for the robot '{short}' is invalid: {problem}"
    ))
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

const VISIBILITY_DESCRIPTION: &str = "Visibility which the repository will start with";
/// Quay's robot description column holds 255 characters; its API refuses longer.
pub(crate) const MAX_ROBOT_DESCRIPTION: usize = 255;

/// `public`/`private`, or jsonschema's refusal of anything else.
fn parse_visibility(visibility: &str) -> Result<bool, Reply> {
    match visibility {
        "public" => Ok(true),
        "private" => Ok(false),
        other => Err(enum_violation(
            "visibility",
            VISIBILITY_DESCRIPTION,
            &["public", "private"],
            other,
        )),
    }
}

/// Random upper-case letters and digits (a robot token is 64 of them).
fn new_token() -> String {
    use rand::RngExt;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..64)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// A random UUID (version 4 form), as Quay's `status_token`.
fn new_uuid() -> String {
    let b: [u8; 16] = rand::random();
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// The avatar Quay attaches to a permission's user.
fn avatar(name: &str) -> Value {
    use sha2::Digest;
    const COLORS: [&str; 4] = ["#b5cf6b", "#9edae5", "#ff7f0e", "#393b79"];
    let digest = sha2::Sha256::digest(name.as_bytes());
    let hash: String = digest.iter().map(|x| format!("{x:02x}")).collect();
    json!({
        "name": name,
        "hash": hash,
        "color": COLORS[usize::from(digest[0]) % COLORS.len()],
        "kind": "robot",
    })
}

fn permission_body(role: &str, user: &str) -> Value {
    json!({
        "role": role,
        "name": user,
        "is_robot": true,
        "avatar": avatar(user),
        "is_org_member": true,
    })
}

impl Model {
    fn private_count(&self, org: &str) -> usize {
        self.repos
            .iter()
            .filter(|((ns, _), r)| ns == org && !r.public)
            .count()
    }

    fn plan_limit(org: &str) -> Reply {
        Reply::error(
            StatusCode::PAYMENT_REQUIRED,
            "exceeds_license",
            format!(
                "Organization {org} has reached its private repository limit; upgrade the plan"
            ),
        )
    }

    /// The token (by index) that created `org/name`, if it exists.
    pub(crate) fn creator_of(&self, org: &str, name: &str) -> Option<usize> {
        self.repos
            .get(&(org.to_string(), name.to_string()))
            .map(|r| r.creator)
    }

    pub(crate) fn create_repository(
        &mut self,
        req: NewRepository<'_>,
        quota: Option<usize>,
    ) -> Reply {
        let public = match parse_visibility(req.visibility) {
            Ok(p) => p,
            Err(r) => return r,
        };
        if !valid_repo_name(req.name) {
            return Reply::invalid("Invalid repository name");
        }
        let key = (req.org.to_string(), req.name.to_string());
        if self.repos.contains_key(&key) {
            return Reply::invalid("Repository already exists");
        }
        if !public && quota.is_some_and(|q| self.private_count(req.org) >= q) {
            return Self::plan_limit(req.org);
        }
        self.repos.insert(
            key,
            Repo {
                public,
                description: req.description.to_string(),
                creator: req.creator,
                status_token: new_uuid(),
            },
        );
        Reply::json(
            StatusCode::CREATED,
            json!({"namespace": req.org, "name": req.name, "kind": "image"}),
        )
    }

    /// `can_admin`: whether the asking token administers the repository.
    pub(crate) fn get_repository(&self, org: &str, name: &str, can_admin: bool) -> Reply {
        let Some(r) = self.repos.get(&(org.to_string(), name.to_string())) else {
            return Reply::not_found();
        };
        // Recorded: a public repository's status_token is "".
        let status_token = if r.public { "" } else { &r.status_token };
        Reply::json(
            StatusCode::OK,
            json!({
                "namespace": org,
                "name": name,
                "kind": "image",
                "description": r.description,
                "is_public": r.public,
                "is_organization": true,
                "is_starred": false,
                "status_token": status_token,
                "trust_enabled": false,
                "tag_expiration_s": 1_209_600,
                "is_free_account": false,
                "state": "NORMAL",
                "tags": {},
                "can_write": can_admin,
                "can_admin": can_admin,
            }),
        )
    }

    /// A missing repository answers 200 `null` (recorded: `repo.vis.missing_repo`).
    pub(crate) fn change_visibility(
        &mut self,
        org: &str,
        name: &str,
        visibility: &str,
        quota: Option<usize>,
    ) -> Reply {
        let public = match parse_visibility(visibility) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let private_now = self.private_count(org);
        let Some(repo) = self.repos.get_mut(&(org.to_string(), name.to_string())) else {
            return Reply::json(StatusCode::OK, Value::Null);
        };
        if repo.public && !public && quota.is_some_and(|q| private_now >= q) {
            return Self::plan_limit(org);
        }
        repo.public = public;
        Reply::json(StatusCode::OK, json!({"success": true}))
    }

    /// Quay's updateRepo: only the description changes; 404 when absent.
    pub(crate) fn update_repository(
        &mut self,
        org: &str,
        name: &str,
        description: Option<&str>,
    ) -> Reply {
        let Some(description) = description else {
            return Reply::invalid("'description' is a required property");
        };
        match self.repos.get_mut(&(org.to_string(), name.to_string())) {
            Some(repo) => {
                repo.description = description.to_string();
                Reply::json(StatusCode::OK, json!({"success": true}))
            }
            None => Reply::not_found(),
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
        Reply::no_content()
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

    /// Recorded for GET, regenerate and DELETE of an absent robot.
    fn absent_robot() -> Reply {
        Reply::message(
            StatusCode::BAD_REQUEST,
            "Could not find robot with specified username",
        )
    }

    pub(crate) fn get_robot(&self, org: &str, short: &str) -> Reply {
        let full = format!("{org}+{short}");
        match self.robots.get(&full) {
            Some(r) => Reply::json(StatusCode::OK, Self::robot_body(&full, r)),
            None => Self::absent_robot(),
        }
    }

    /// `GET /organization/{org}/robots`: every robot of the organization in
    /// Quay's list shape (`teams`, `repositories` and `description`, no
    /// metadata), with its token unless `token=false`, and the names of the
    /// repositories it has a permission on only with `permissions=true`
    /// (Quay leaves the list empty otherwise).
    pub(crate) fn list_robots(&self, org: &str, tokens: bool, permissions: bool) -> Reply {
        let prefix = format!("{org}+");
        let robots: Vec<Value> = self
            .robots
            .iter()
            .filter(|(name, _)| name.starts_with(&prefix))
            .map(|(name, r)| {
                let repositories: Vec<&str> = match permissions {
                    true => self
                        .perms
                        .keys()
                        .filter(|(_, user)| user == name)
                        .filter_map(|(repo, _)| repo.split_once('/').map(|(_, n)| n))
                        .collect(),
                    false => Vec::new(),
                };
                let mut body = json!({
                    "name": name,
                    "created": "Fri, 27 Nov 2026 00:00:00 -0000",
                    "last_accessed": null,
                    "teams": [],
                    "repositories": repositories,
                    "description": r.description,
                });
                if tokens {
                    body["token"] = json!(r.token);
                }
                body
            })
            .collect();
        Reply::json(StatusCode::OK, json!({ "robots": robots }))
    }

    /// Quay keeps `description` (at most 255 characters, checked with the
    /// request's schema, before the name) and `metadata`
    /// (`unstructured_metadata`) as given; neither can change afterwards.
    pub(crate) fn create_robot(
        &mut self,
        org: &str,
        short: &str,
        description: &str,
        metadata: Option<Value>,
    ) -> Reply {
        if description.chars().count() > MAX_ROBOT_DESCRIPTION {
            return too_long("description", MAX_ROBOT_DESCRIPTION, description);
        }
        if let Some(problem) = robot_name_problem(short) {
            return Reply::invalid(problem);
        }
        let full = format!("{org}+{short}");
        if self.robots.contains_key(&full) {
            return Reply::invalid(format!("Existing robot with name: {full}"));
        }
        let rec = RobotRec {
            token: new_token(),
            description: description.to_string(),
            metadata,
        };
        let body = Self::robot_body(&full, &rec);
        self.robots.insert(full, rec);
        Reply::json(StatusCode::CREATED, body)
    }

    pub(crate) fn regenerate_robot(&mut self, org: &str, short: &str) -> Reply {
        let full = format!("{org}+{short}");
        match self.robots.get_mut(&full) {
            Some(r) => {
                r.token = new_token();
                Reply::json(StatusCode::OK, Self::regenerated_body(&full, r))
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
        Reply::no_content()
    }

    /// The role is checked by the request schema, then the user; a missing
    /// repository is an unhandled error in Quay: 500 (recorded:
    /// `perm.put.missing_repo`).
    pub(crate) fn grant(&mut self, org: &str, repo: &str, user: &str, role: &str) -> Reply {
        if !matches!(role, "read" | "write" | "admin") {
            return enum_violation(
                "role",
                "Role to use for the user",
                &["read", "write", "admin"],
                role,
            );
        }
        if !self.robots.contains_key(user) {
            return Reply::invalid(format!("Invalid username: {user}"));
        }
        if !self
            .repos
            .contains_key(&(org.to_string(), repo.to_string()))
        {
            return Reply::server_error();
        }
        self.perms.insert(
            (format!("{org}/{repo}"), user.to_string()),
            role.to_string(),
        );
        Reply::json(StatusCode::OK, permission_body(role, user))
    }

    /// No permission, no robot or no repository: the same 400 (recorded).
    pub(crate) fn revoke(&mut self, org: &str, repo: &str, user: &str) -> Reply {
        match self
            .perms
            .remove(&(format!("{org}/{repo}"), user.to_string()))
        {
            Some(_) => Reply::no_content(),
            None => Reply::invalid("User does not have permission for repo."),
        }
    }

    /// Quay's listRepoUserPermissions: `{"permissions": {name: permission}}`,
    /// each as the single-permission answer. Read from Quay's source (not
    /// recorded): the permissions are a join on the repository, so a
    /// missing repository lists none (200, empty).
    pub(crate) fn list_permissions(&self, org: &str, repo: &str) -> Reply {
        let full = format!("{org}/{repo}");
        let permissions: serde_json::Map<String, Value> = self
            .perms
            .iter()
            .filter(|((r, _), _)| *r == full)
            .map(|((_, user), role)| (user.clone(), permission_body(role, user)))
            .collect();
        Reply::json(StatusCode::OK, json!({ "permissions": permissions }))
    }

    pub(crate) fn count_registry_login(&mut self) {
        self.registry_logins += 1;
    }

    pub(crate) fn get_permission(&self, org: &str, repo: &str, user: &str) -> Reply {
        match self.perms.get(&(format!("{org}/{repo}"), user.to_string())) {
            Some(role) => Reply::json(StatusCode::OK, permission_body(role, user)),
            None => Reply::invalid("User does not have permission for repo."),
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
            .insert(bearer.clone(), Instant::now() + REGISTRY_TOKEN_LIFETIME);
        Some(bearer)
    }

    /// A bearer is valid for its lifetime, as on a real Quay: regenerating
    /// or deleting the robot stops new logins with the old token, not the
    /// sessions already issued.
    pub(crate) fn registry_bearer_valid(&self, bearer: &str) -> bool {
        self.registry_tokens
            .get(bearer)
            .is_some_and(|until| Instant::now() < *until)
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
            registry_logins: self.registry_logins,
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

    fn new_repo<'a>(org: &'a str, name: &'a str, visibility: &'a str) -> NewRepository<'a> {
        NewRepository {
            org,
            name,
            visibility,
            description: "",
            creator: 0,
        }
    }

    #[test]
    fn quirks_absent_robot_is_400_and_existing_robot_put_is_400() {
        let mut m = Model::default();
        assert_eq!(m.get_robot("org", "r1").status, StatusCode::BAD_REQUEST);
        assert_eq!(
            m.create_robot("org", "r1", "d", None).status,
            StatusCode::CREATED
        );
        let r = m.create_robot("org", "r1", "d", None);
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            r.value("h")["error_message"],
            "Existing robot with name: org+r1"
        );
        assert_eq!(
            m.delete_repository("org", "nope").status,
            StatusCode::NO_CONTENT
        );
        let long = "d".repeat(MAX_ROBOT_DESCRIPTION + 1);
        assert_eq!(
            m.create_robot("org", "r2", &long, None).status,
            StatusCode::BAD_REQUEST
        );
        let fits = "d".repeat(MAX_ROBOT_DESCRIPTION);
        assert_eq!(
            m.create_robot("org", "r2", &fits, None).status,
            StatusCode::CREATED
        );
    }

    #[test]
    fn private_quota_applies_to_create_and_change_visibility() {
        let mut m = Model::default();
        let q = Some(1);
        assert_eq!(
            m.create_repository(new_repo("o", "a", "private"), q).status,
            StatusCode::CREATED
        );
        assert_eq!(
            m.create_repository(new_repo("o", "b", "private"), q).status,
            StatusCode::PAYMENT_REQUIRED
        );
        assert_eq!(
            m.create_repository(new_repo("o", "b", "public"), q).status,
            StatusCode::CREATED
        );
        assert_eq!(
            m.change_visibility("o", "b", "private", q).status,
            StatusCode::PAYMENT_REQUIRED
        );
        assert_eq!(
            m.change_visibility("o", "a", "public", q).status,
            StatusCode::OK
        );
        assert_eq!(
            m.change_visibility("o", "b", "private", q).status,
            StatusCode::OK
        );
    }

    #[test]
    fn registry_sessions_outlive_a_regenerate_but_old_logins_fail() {
        let mut m = Model::default();
        let r = m.create_robot("o", "bot", "", None);
        let token = r.value("h")["token"].as_str().unwrap().to_string();
        let bearer = m.registry_login("o+bot", &token).unwrap();
        assert!(m.registry_bearer_valid(&bearer));
        m.regenerate_robot("o", "bot");
        assert!(
            m.registry_bearer_valid(&bearer),
            "issued before: lives its hour"
        );
        assert!(m.registry_login("o+bot", &token).is_none());
        m.delete_robot("o", "bot");
        assert!(
            m.registry_bearer_valid(&bearer),
            "even after the robot is deleted"
        );
    }
}
