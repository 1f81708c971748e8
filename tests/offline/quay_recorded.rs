//! The Quay client against answers recorded from a real Quay server
//! (`fixtures/quay-recorded`), served by a scripted test server: each step
//! expects one request (method and path) and answers with a recorded pair
//! (status, content type, body). Provisioning, rotation and cleanup on
//! good answers; then what the client makes of the surprising ones: the
//! CSRF 403, 403 "Unauthorized", a missing organization, a 500 from a grant,
//! a `null` from changevisibility, a description over 255 characters.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use quayside::api::ResolvedVisibility;
use quayside::quay::{QuayClient, QuayConfig, QuayError, RetryPolicy, RobotFields, Role};
use serde_json::{Value, json};

/// What a step answers.
enum Answer {
    /// The recorded pair with this label.
    Recorded(&'static str),
    /// Not in the recording (`GET /organization/{org}`): status and JSON body.
    Synthetic(u16, Value),
}

struct Step {
    method: &'static str,
    path: String,
    answer: Answer,
}

fn step(method: &'static str, path: &str, label: &'static str) -> Step {
    Step {
        method,
        path: path.to_string(),
        answer: Answer::Recorded(label),
    }
}

/// `GET /organization/{org}`: 200 when it exists, 404 when not (Quay's
/// getOrganizationByName; not in the recording, see docs/quay.md).
fn org_check(org: &str, exists: bool) -> Step {
    let answer = if exists {
        Answer::Synthetic(200, json!({"name": org, "is_admin": false}))
    } else {
        Answer::Synthetic(
            404,
            json!({"detail": "Not Found", "error_message": "Not Found", "error_type": "not_found",
                   "title": "not_found", "type": "http://quay/api/v1/error/not_found", "status": 404}),
        )
    };
    Step {
        method: "GET",
        path: format!("/api/v1/organization/{org}"),
        answer,
    }
}

struct Server {
    script: Mutex<VecDeque<Step>>,
    /// Requests that did not match the script, and request bodies seen.
    mismatches: Mutex<Vec<String>>,
    bodies: Mutex<Vec<Value>>,
    recorded: Vec<Value>,
}

fn recording() -> Vec<Value> {
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/quay-recorded/real-quay-api.json");
    serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap()
}

impl Server {
    fn answer(&self, method: &Method, uri: &Uri, body: &Bytes) -> Response {
        self.bodies
            .lock()
            .unwrap()
            .push(serde_json::from_slice(body).unwrap_or(Value::Null));
        let Some(s) = self.script.lock().unwrap().pop_front() else {
            self.mismatches
                .lock()
                .unwrap()
                .push(format!("unexpected {method} {}", uri.path()));
            return StatusCode::IM_A_TEAPOT.into_response();
        };
        if s.method != method.as_str() || s.path != uri.path() {
            self.mismatches.lock().unwrap().push(format!(
                "expected {} {}, got {method} {}",
                s.method,
                s.path,
                uri.path()
            ));
            return StatusCode::IM_A_TEAPOT.into_response();
        }
        match s.answer {
            Answer::Synthetic(status, body) => {
                (StatusCode::from_u16(status).unwrap(), axum::Json(body)).into_response()
            }
            Answer::Recorded(label) => self.recorded_answer(label),
        }
    }

    fn recorded_answer(&self, label: &str) -> Response {
        let p = self
            .recorded
            .iter()
            .find(|p| p["label"] == label)
            .unwrap_or_else(|| panic!("no recorded pair {label}"));
        let body = match (&p["json"], p["text"].as_str()) {
            (Value::Null, Some(text)) => text.to_string(),
            (json, _) => json.to_string(),
        };
        let status = StatusCode::from_u16(p["status"].as_u64().unwrap() as u16).unwrap();
        let ct = p["headers"]["Content-Type"].as_str().unwrap().to_string();
        (status, [(header::CONTENT_TYPE, ct)], body).into_response()
    }
}

struct Fixture {
    server: Arc<Server>,
    client: QuayClient,
    _dir: tempfile::TempDir,
}

async fn fixture(org: &str, script: Vec<Step>) -> Fixture {
    let server = Arc::new(Server {
        script: Mutex::new(script.into()),
        mismatches: Mutex::new(Vec::new()),
        bodies: Mutex::new(Vec::new()),
        recorded: recording(),
    });
    let s = server.clone();
    let app = axum::Router::new().fallback(move |method: Method, uri: Uri, body: Bytes| {
        let s = s.clone();
        async move { s.answer(&method, &uri, &body) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "recorded-replay-token").unwrap();
    let mut cfg = QuayConfig::new(&format!("http://{addr}/api/v1"), org, &token_file);
    cfg.timeout = Duration::from_secs(10);
    // Eight attempts, as by default, but fast: a test counts them.
    cfg.retry = RetryPolicy {
        max_attempts: 8,
        base: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    Fixture {
        server,
        client: QuayClient::new(cfg).unwrap(),
        _dir: dir,
    }
}

impl Fixture {
    /// Every scripted step was asked for, and nothing else.
    fn done(&self) {
        let mismatches = self.server.mismatches.lock().unwrap();
        assert!(mismatches.is_empty(), "{mismatches:#?}");
        let left: Vec<String> = self
            .server
            .script
            .lock()
            .unwrap()
            .iter()
            .map(|s| format!("{} {}", s.method, s.path))
            .collect();
        assert!(left.is_empty(), "never asked: {left:?}");
    }
}

const REPO: &str = "/api/v1/repository";
const ROBOTS: &str = "/api/v1/organization/buynlarge/robots";
const PERM: &str = "/api/v1/repository/buynlarge/qsrepo/permissions/user/buynlarge+qsbot";

#[tokio::test]
async fn provisioning_rotation_and_cleanup_succeed_on_recorded_answers() {
    let f = fixture(
        "buynlarge",
        vec![
            step(
                "GET",
                &format!("{REPO}/buynlarge/qsrepo"),
                "repo.get.missing",
            ),
            step("POST", REPO, "repo.create.new"),
            step("PUT", &format!("{ROBOTS}/qsbot"), "robot.put.new"),
            step("PUT", PERM, "perm.put.write"),
            step(
                "POST",
                &format!("{ROBOTS}/qsbot/regenerate"),
                "robot.regen.existing",
            ),
            step(
                "POST",
                &format!("{REPO}/buynlarge/qsrepo/changevisibility"),
                "repo.vis.public",
            ),
            step("DELETE", PERM, "perm.delete.existing"),
            step("DELETE", PERM, "perm.delete.again"),
            step(
                "DELETE",
                &format!("{ROBOTS}/qsbot"),
                "robot.delete.existing",
            ),
            step("DELETE", &format!("{ROBOTS}/qsbot"), "robot.delete.again"),
            step(
                "DELETE",
                &format!("{REPO}/buynlarge/qsrepo"),
                "repo.delete.existing",
            ),
            step(
                "DELETE",
                &format!("{REPO}/buynlarge/qsrepo"),
                "repo.delete.again",
            ),
        ],
    )
    .await;
    let c = &f.client;
    assert!(c.get_repository("qsrepo").await.unwrap().is_none());
    c.create_repository("qsrepo", ResolvedVisibility::Private, "oracle test")
        .await
        .unwrap();
    let robot = c.create_robot("qsbot", "oracle robot").await.unwrap();
    assert_eq!(robot.name, "buynlarge+qsbot");
    c.grant("qsrepo", "qsbot", Role::Write).await.unwrap();
    c.regenerate_robot_token("qsbot").await.unwrap();
    c.change_visibility("qsrepo", ResolvedVisibility::Public)
        .await
        .unwrap();
    c.revoke("qsrepo", "qsbot").await.unwrap();
    c.revoke("qsrepo", "qsbot").await.unwrap();
    c.delete_robot("qsbot").await.unwrap();
    c.delete_robot("qsbot").await.unwrap();
    c.delete_repository("qsrepo").await.unwrap();
    c.delete_repository("qsrepo").await.unwrap();
    f.done();
}

#[tokio::test]
async fn an_unknown_token_is_an_authentication_failure_not_missing_scopes() {
    let f = fixture(
        "buynlarge",
        vec![
            step("POST", REPO, "auth.bad.create_repo"),
            step("PUT", &format!("{ROBOTS}/qsbot3"), "auth.bad.put_robot"),
            step("GET", &format!("{ROBOTS}/qsbot"), "auth.bad.get_robot"),
        ],
    )
    .await;
    let c = &f.client;
    let errors = [
        c.create_repository("qsrepo-badauth", ResolvedVisibility::Private, "oracle test")
            .await
            .unwrap_err(),
        c.create_robot("qsbot3", "oracle robot").await.unwrap_err(),
        c.get_robot("qsbot").await.unwrap_err(),
    ];
    for e in errors {
        assert!(matches!(e, QuayError::Unauthorized { .. }), "{e:?}");
        assert_eq!(e.reason(), "QuayUnauthorized");
        assert!(e.to_string().contains("unknown or expired"), "{e}");
        assert!(!e.to_string().contains("scopes"), "{e}");
    }
    f.done();
}

#[tokio::test]
async fn a_missing_right_names_what_the_call_needs() {
    let f = fixture(
        "buynlarge",
        vec![
            step(
                "PUT",
                &format!("{ROBOTS}/qsbot3"),
                "auth.nonadmin.put_robot",
            ),
            org_check("buynlarge", true),
            step("POST", REPO, "auth.reader.create_repo"),
            org_check("buynlarge", true),
            step("PUT", PERM, "auth.nonadmin.grant"),
            org_check("buynlarge", true),
        ],
    )
    .await;
    let c = &f.client;
    let robot = c.create_robot("qsbot3", "oracle robot").await.unwrap_err();
    let create = c
        .create_repository("qsrepo-reader", ResolvedVisibility::Private, "oracle test")
        .await
        .unwrap_err();
    let grant = c.grant("qsrepo", "qsbot", Role::Read).await.unwrap_err();
    for (e, needs) in [
        (robot, "org:admin"),
        (create, "repo:create"),
        (grant, "repo:admin"),
    ] {
        assert!(matches!(e, QuayError::Forbidden { .. }), "{e:?}");
        assert!(e.to_string().contains(needs), "{needs}: {e}");
    }
    f.done();
}

#[tokio::test]
async fn a_missing_organization_is_told_apart_from_a_missing_right() {
    let f = fixture(
        "nosuchorg",
        vec![
            step("POST", REPO, "repo.create.no_such_org"),
            org_check("nosuchorg", false),
            step(
                "GET",
                "/api/v1/organization/nosuchorg/robots/qsbot",
                "robot.get.no_such_org",
            ),
            org_check("nosuchorg", false),
        ],
    )
    .await;
    let c = &f.client;
    let e = c
        .create_repository("x", ResolvedVisibility::Private, "oracle test")
        .await
        .unwrap_err();
    assert!(matches!(e, QuayError::OrganizationNotFound { .. }), "{e:?}");
    assert_eq!(e.reason(), "QuayOrganizationNotFound");
    let e = c.get_robot("qsbot").await.unwrap_err();
    assert!(matches!(e, QuayError::OrganizationNotFound { .. }), "{e:?}");
    f.done();
}

#[tokio::test]
async fn a_grant_to_a_missing_repository_is_checked_not_retried() {
    let missing = "/api/v1/repository/buynlarge/nosuchrepo";
    let f = fixture(
        "buynlarge",
        vec![
            step(
                "PUT",
                &format!("{missing}/permissions/user/buynlarge+qsbot"),
                "perm.put.missing_repo",
            ),
            step("GET", missing, "repo.get.missing"),
        ],
    )
    .await;
    let e = f
        .client
        .grant("nosuchrepo", "qsbot", Role::Read)
        .await
        .unwrap_err();
    assert!(matches!(e, QuayError::NotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("nosuchrepo"), "{e}");
    assert!(!e.is_transient());
    assert_eq!(f.client.metrics().total_calls(), 2, "one grant, one look");
    f.done();
}

#[tokio::test]
async fn a_null_changevisibility_is_checked_by_reading_the_repository_back() {
    let missing = "/api/v1/repository/buynlarge/nosuchrepo";
    let f = fixture(
        "buynlarge",
        vec![
            step(
                "POST",
                &format!("{missing}/changevisibility"),
                "repo.vis.missing_repo",
            ),
            step("GET", missing, "repo.get.missing"),
        ],
    )
    .await;
    let e = f
        .client
        .change_visibility("nosuchrepo", ResolvedVisibility::Public)
        .await
        .unwrap_err();
    assert!(matches!(e, QuayError::NotFound { .. }), "{e:?}");
    f.done();
}

#[tokio::test]
async fn descriptions_are_bounded_to_255_characters_keeping_the_record() {
    let f = fixture(
        "buynlarge",
        vec![
            step("PUT", &format!("{ROBOTS}/qsbot"), "robot.put.new"),
            step("POST", REPO, "repo.create.new"),
        ],
    )
    .await;
    let record = "(managed by quayside; owner uid 0b5c9d2e-1111-2222-3333-444455556666)";
    let long = format!("quayside push robot for {} {record}", "n".repeat(240));
    f.client
        .create_robot("qsbot", RobotFields::from(long.as_str()))
        .await
        .unwrap();
    f.client
        .create_repository("qsrepo", ResolvedVisibility::Private, &long)
        .await
        .unwrap();
    let bodies = f.server.bodies.lock().unwrap().clone();
    for b in bodies {
        let d = b["description"].as_str().unwrap();
        assert!(d.chars().count() <= 255, "{} characters", d.chars().count());
        assert!(d.ends_with(record), "{d}");
    }
    f.done();
}
