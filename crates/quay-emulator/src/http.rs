//! The emulator's HTTP surface: Quay's `/api/v1` routes (bearer token and
//! organization checked first, as Quay does) and the registry's `/v2/` login
//! with Docker token authentication.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use base64::Engine;
use serde_json::{Value, json};

use super::Shared;
use super::access::{self, Need};
use super::reply::Reply;
use super::state::NewRepository;

/// One API call, parsed from method and path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    CreateRepository,
    /// Not in the recording; modelled on Quay's getOrganizationByName.
    GetOrganization {
        org: String,
    },
    GetRepository {
        org: String,
        repo: String,
    },
    ChangeVisibility {
        org: String,
        repo: String,
    },
    DeleteRepository {
        org: String,
        repo: String,
    },
    UpdateRepository {
        org: String,
        repo: String,
    },
    GetPermission {
        org: String,
        repo: String,
        user: String,
    },
    /// Quay's listRepoUserPermissions: every user and robot permission.
    ListPermissions {
        org: String,
        repo: String,
    },
    Grant {
        org: String,
        repo: String,
        user: String,
    },
    Revoke {
        org: String,
        repo: String,
        user: String,
    },
    ListRobots {
        org: String,
    },
    GetRobot {
        org: String,
        short: String,
    },
    CreateRobot {
        org: String,
        short: String,
    },
    RegenerateRobot {
        org: String,
        short: String,
    },
    DeleteRobot {
        org: String,
        short: String,
    },
    Unknown,
}

impl Route {
    /// Parse a path below `/api/v1`.
    pub(crate) fn parse(method: &Method, path: &str) -> Route {
        let segs: Vec<&str> = path
            .trim_start_matches("/api/v1")
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let own = |s: &[&str]| s.join("/");
        match (method, segs.as_slice()) {
            (&Method::POST, ["repository"]) => Route::CreateRepository,
            (&Method::GET, ["organization", org]) => Route::GetOrganization {
                org: org.to_string(),
            },
            (&Method::GET, ["organization", org, "robots"]) => Route::ListRobots {
                org: org.to_string(),
            },
            (m, ["organization", org, "robots", short]) => {
                let (org, short) = (org.to_string(), short.to_string());
                match *m {
                    Method::GET => Route::GetRobot { org, short },
                    Method::PUT => Route::CreateRobot { org, short },
                    Method::DELETE => Route::DeleteRobot { org, short },
                    _ => Route::Unknown,
                }
            }
            (&Method::POST, ["organization", org, "robots", short, "regenerate"]) => {
                Route::RegenerateRobot {
                    org: org.to_string(),
                    short: short.to_string(),
                }
            }
            (m, ["repository", org, rest @ ..]) if !rest.is_empty() => {
                let org = org.to_string();
                let n = rest.len();
                if n >= 4 && rest[n - 3] == "permissions" && rest[n - 2] == "user" {
                    let repo = own(&rest[..n - 3]);
                    let user = rest[n - 1].replace("%2B", "+").replace("%2b", "+");
                    return match *m {
                        Method::GET => Route::GetPermission { org, repo, user },
                        Method::PUT => Route::Grant { org, repo, user },
                        Method::DELETE => Route::Revoke { org, repo, user },
                        _ => Route::Unknown,
                    };
                }
                if *m == Method::GET
                    && n >= 3
                    && rest[n - 2] == "permissions"
                    && rest[n - 1] == "user"
                {
                    return Route::ListPermissions {
                        org,
                        repo: own(&rest[..n - 2]),
                    };
                }
                if *m == Method::POST && n >= 2 && rest[n - 1] == "changevisibility" {
                    return Route::ChangeVisibility {
                        org,
                        repo: own(&rest[..n - 1]),
                    };
                }
                let repo = own(rest);
                match *m {
                    Method::GET => Route::GetRepository { org, repo },
                    Method::DELETE => Route::DeleteRepository { org, repo },
                    Method::PUT => Route::UpdateRepository { org, repo },
                    _ => Route::Unknown,
                }
            }
            _ => Route::Unknown,
        }
    }

    /// The endpoint name calls are counted under.
    pub(crate) fn endpoint(&self) -> &'static str {
        match self {
            Route::CreateRepository => "create_repository",
            Route::GetOrganization { .. } => "get_organization",
            Route::GetRepository { .. } => "get_repository",
            Route::ChangeVisibility { .. } => "change_visibility",
            Route::DeleteRepository { .. } => "delete_repository",
            Route::UpdateRepository { .. } => "update_repository",
            Route::GetPermission { .. } => "get_permission",
            Route::ListPermissions { .. } => "get_repository_permissions",
            Route::Grant { .. } => "grant",
            Route::Revoke { .. } => "revoke",
            Route::ListRobots { .. } => "list_robots",
            Route::GetRobot { .. } => "get_robot",
            Route::CreateRobot { .. } => "create_robot",
            Route::RegenerateRobot { .. } => "regenerate_robot",
            Route::DeleteRobot { .. } => "delete_robot",
            Route::Unknown => "unknown",
        }
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/api/v1/{*rest}", any(api))
        .route("/v2", get(registry_ping))
        .route("/v2/", get(registry_ping))
        .route("/v2/auth", get(registry_auth))
        .with_state(shared)
}

fn str_field<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or("")
}

/// What a route needs, and the repository it is about (if any).
fn need_of<'r>(route: &'r Route, body: &'r Value) -> Option<(Need, &'r str, Option<&'r str>)> {
    Some(match route {
        Route::CreateRepository => (Need::Create, str_field(body, "namespace"), None),
        Route::GetRepository { org, repo } => (Need::Read, org, Some(repo)),
        Route::ChangeVisibility { org, repo }
        | Route::DeleteRepository { org, repo }
        | Route::UpdateRepository { org, repo }
        | Route::GetPermission { org, repo, .. }
        | Route::ListPermissions { org, repo }
        | Route::Grant { org, repo, .. }
        | Route::Revoke { org, repo, .. } => (Need::Admin, org, Some(repo)),
        Route::ListRobots { org }
        | Route::GetRobot { org, .. }
        | Route::CreateRobot { org, .. }
        | Route::RegenerateRobot { org, .. }
        | Route::DeleteRobot { org, .. } => (Need::Organization, org, None),
        Route::GetOrganization { .. } | Route::Unknown => return None,
    })
}

async fn api(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let host = shared.host.clone();
    answer(&shared, &method, &uri, &headers, &body).render(&host)
}

/// Quay's order: the token (an unknown one fails the CSRF check on a
/// write), the request body, the scope and permission (which also fails
/// for an organization that does not exist), then the operation.
fn answer(shared: &Shared, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Reply {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some((identity, access)) = bearer.and_then(|b| shared.cfg.access_of(b)) else {
        return if *method == Method::GET {
            Reply::requires_authentication()
        } else {
            Reply::csrf()
        };
    };
    let route = Route::parse(method, uri.path());
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return Reply::invalid(format!("Invalid JSON body: {e}")),
        }
    };
    if let Route::GetOrganization { org } = &route {
        return organization(shared, org, &access);
    }
    let Some((need, org, repo)) = need_of(&route, &body) else {
        return Reply::not_found();
    };
    let mut m = shared.model.lock().unwrap();
    let org_exists = shared.cfg.organizations.iter().any(|o| o == org);
    let own = repo.is_some_and(|r| m.creator_of(org, r) == Some(identity));
    if !access::allowed(&access, need, org_exists, own) {
        return Reply::unauthorized();
    }
    let quota = shared.cfg.private_quota;
    match &route {
        Route::CreateRepository => m.create_repository(
            NewRepository {
                org,
                name: str_field(&body, "repository"),
                visibility: str_field(&body, "visibility"),
                description: str_field(&body, "description"),
                creator: identity,
            },
            quota,
        ),
        Route::GetRepository { org, repo } => {
            let admin = access::allowed(&access, Need::Admin, true, own);
            m.get_repository(org, repo, admin)
        }
        Route::ChangeVisibility { org, repo } => {
            m.change_visibility(org, repo, str_field(&body, "visibility"), quota)
        }
        Route::DeleteRepository { org, repo } => m.delete_repository(org, repo),
        Route::UpdateRepository { org, repo } => {
            m.update_repository(org, repo, body.get("description").and_then(Value::as_str))
        }
        Route::GetPermission { org, repo, user } => m.get_permission(org, repo, user),
        Route::ListPermissions { org, repo } => m.list_permissions(org, repo),
        Route::Grant { org, repo, user } => m.grant(org, repo, user, str_field(&body, "role")),
        Route::Revoke { org, repo, user } => m.revoke(org, repo, user),
        Route::ListRobots { org } => {
            let tokens = query_flag(uri, "token", true);
            let permissions = query_flag(uri, "permissions", false);
            m.list_robots(org, tokens, permissions)
        }
        Route::GetRobot { org, short } => m.get_robot(org, short),
        // A PUT without a body makes a robot with description "" and
        // metadata null, as Quay does.
        Route::CreateRobot { org, short } => m.create_robot(
            org,
            short,
            str_field(&body, "description"),
            body.get("unstructured_metadata")
                .filter(|v| !v.is_null())
                .cloned(),
        ),
        Route::RegenerateRobot { org, short } => m.regenerate_robot(org, short),
        Route::DeleteRobot { org, short } => m.delete_robot(org, short),
        Route::GetOrganization { .. } | Route::Unknown => Reply::not_found(),
    }
}

/// A boolean query parameter as Quay's `truthy_bool` reads it (`true`,
/// `1`, `yes`, any case), or `default` when absent.
fn query_flag(uri: &Uri, name: &str, default: bool) -> bool {
    let Some(query) = uri.query() else {
        return default;
    };
    query
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == name)
        .map_or(default, |(_, v)| {
            matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes")
        })
}

/// Quay shows any signed-in user an organization that exists (what a
/// client uses to tell a missing organization from a missing right, both
/// 403 elsewhere), and 404 for one that does not.
fn organization(shared: &Shared, org: &str, access: &access::TokenAccess) -> Reply {
    if !shared.cfg.organizations.iter().any(|o| o == org) {
        return Reply::not_found();
    }
    Reply::json(
        StatusCode::OK,
        json!({
            "name": org,
            "is_admin": access.role == access::OrgRole::Admin,
            "is_member": true,
        }),
    )
}

/// The host clients used to reach us, for the token realm.
fn host(shared: &Shared, headers: &HeaderMap) -> String {
    headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| shared.host.clone())
}

fn registry_unauthorized(shared: &Shared, headers: &HeaderMap) -> Response {
    let host = host(shared, headers);
    let scheme = shared.scheme;
    let challenge = format!(r#"Bearer realm="{scheme}://{host}/v2/auth",service="{host}""#);
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, challenge),
            (
                header::HeaderName::from_static("docker-distribution-api-version"),
                "registry/2.0".to_string(),
            ),
        ],
        axum::Json(json!({"errors": [{
            "code": "UNAUTHORIZED",
            "message": "access to the requested resource is not authorized",
            "detail": null,
        }]})),
    )
        .into_response()
}

/// `GET /v2/`: 200 with a valid bearer, otherwise the Docker token challenge.
async fn registry_ping(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = bearer.is_some_and(|b| shared.model.lock().unwrap().registry_bearer_valid(b));
    if !ok {
        return registry_unauthorized(&shared, &headers);
    }
    (
        StatusCode::OK,
        [(
            header::HeaderName::from_static("docker-distribution-api-version"),
            "registry/2.0",
        )],
        axum::Json(json!({})),
    )
        .into_response()
}

/// `GET /v2/auth`: a registry token for a robot's current credentials (Basic auth).
async fn registry_auth(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let creds = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    shared.model.lock().unwrap().count_registry_login();
    let token = creds.as_deref().and_then(|c| {
        let (user, password) = c.split_once(':')?;
        shared.model.lock().unwrap().registry_login(user, password)
    });
    match token {
        Some(t) => (
            StatusCode::OK,
            axum::Json(json!({"token": t, "access_token": t, "expires_in": 3600})),
        )
            .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"details": "Invalid username or password"})),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse_nested_repositories_and_suffixes() {
        let p = |m: Method, path: &str| Route::parse(&m, path);
        assert_eq!(
            p(Method::POST, "/api/v1/repository"),
            Route::CreateRepository
        );
        assert_eq!(
            p(Method::GET, "/api/v1/repository/o/team/app"),
            Route::GetRepository {
                org: "o".into(),
                repo: "team/app".into()
            }
        );
        assert_eq!(
            p(
                Method::POST,
                "/api/v1/repository/o/team/app/changevisibility"
            ),
            Route::ChangeVisibility {
                org: "o".into(),
                repo: "team/app".into()
            }
        );
        assert_eq!(
            p(
                Method::PUT,
                "/api/v1/repository/o/team/app/permissions/user/o+bot"
            ),
            Route::Grant {
                org: "o".into(),
                repo: "team/app".into(),
                user: "o+bot".into()
            }
        );
        assert_eq!(
            p(
                Method::GET,
                "/api/v1/repository/o/team/app/permissions/user/"
            ),
            Route::ListPermissions {
                org: "o".into(),
                repo: "team/app".into()
            }
        );
        assert_eq!(
            p(Method::POST, "/api/v1/organization/o/robots/bot/regenerate").endpoint(),
            "regenerate_robot"
        );
        assert_eq!(
            p(Method::PATCH, "/api/v1/organization/o/robots/bot"),
            Route::Unknown
        );
    }
}
