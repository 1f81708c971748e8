//! The emulator itself over real HTTP: Quay's status codes and bodies, the
//! registry challenge, fault injection as a client sees it, and the
//! `quay-emulator` command.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use quay_emulator::{Emulator, EmulatorConfig, Faults};
use quayside::api::ResolvedVisibility;
use quayside::quay::{QuayClient, QuayConfig, QuayError, RetryPolicy};

const ORG: &str = "acme";
const TOKEN: &str = "oauth-emulator-test-token";

async fn start(cfg: EmulatorConfig) -> Emulator {
    Emulator::start("127.0.0.1:0".parse().unwrap(), cfg)
        .await
        .unwrap()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test]
async fn answers_in_quays_shapes() {
    let e = start(EmulatorConfig::new(ORG, TOKEN)).await;
    let api = e.api_url();
    let c = http();

    let r = c
        .get(format!("{api}/repository/{ORG}/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no bearer token");
    let r = c
        .get(format!("{api}/organization/{ORG}/robots/nope"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "absent robot is 400 on Quay");
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Could not find robot")
    );

    let r = c
        .get(format!("{api}/organization/other/robots/nope"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    // Recorded from a real Quay: the permission check runs first, so an
    // organization that does not exist is a 403, like a missing right.
    assert_eq!(r.status(), 403, "unknown organization");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error_message"], "Unauthorized");

    let r = c
        .delete(format!("{api}/repository/{ORG}/never-was"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "deleting an absent repository is 204");

    let r = c
        .post(format!("{api}/repository"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"namespace": ORG, "repository": "a", "visibility": "public", "description": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = c
        .post(format!("{api}/repository"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"namespace": ORG, "repository": "a", "visibility": "public", "description": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error_message"], "Repository already exists");
}

/// The keys of a JSON object, sorted.
fn keys(v: &serde_json::Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

/// Send `method` to `path` below the API with the test token and `body`.
async fn send(
    e: &Emulator,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut req = http()
        .request(method, format!("{}{path}", e.api_url()))
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// Robots keep the description and `unstructured_metadata` they were
/// created with, in the shapes recorded from a real Quay
/// (/work/shared/quay-recorded, labels `robot.*`).
#[tokio::test]
async fn robots_keep_description_and_metadata_as_recorded() {
    use reqwest::Method;
    use serde_json::json;
    let e = start(EmulatorConfig::new(ORG, TOKEN)).await;
    let robots = format!("/organization/{ORG}/robots");
    let with = json!({"description": "oracle robot", "unstructured_metadata": {"k": "v"}});
    // robot.put.new
    let (status, body) = send(
        &e,
        Method::PUT,
        &format!("{robots}/qsbot"),
        Some(with.clone()),
    )
    .await;
    assert_eq!(status, 201);
    let recorded = [
        "created",
        "description",
        "last_accessed",
        "name",
        "token",
        "unstructured_metadata",
    ];
    assert_eq!(keys(&body), recorded);
    assert_eq!(body["name"], format!("{ORG}+qsbot"));
    assert_eq!(body["description"], "oracle robot");
    assert_eq!(body["unstructured_metadata"], json!({"k": "v"}));
    let token = body["token"].as_str().unwrap();
    assert!(
        token.len() == 64
            && token
                .bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    );
    // robot.put.again: 400, Quay's usual error body.
    let (status, body) = send(&e, Method::PUT, &format!("{robots}/qsbot"), Some(with)).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error_message"],
        format!("Existing robot with name: {ORG}+qsbot")
    );
    assert_eq!(body["error_type"], "invalid_request");
    // robot.put.no_body: description "" and metadata null.
    let (status, body) = send(&e, Method::PUT, &format!("{robots}/qsbot2"), None).await;
    assert_eq!(status, 201);
    assert_eq!(body["description"], "");
    assert_eq!(body["unstructured_metadata"], serde_json::Value::Null);
    assert_eq!(keys(&body), recorded);
    // robot.get.existing: the same as created.
    let (status, body) = send(&e, Method::GET, &format!("{robots}/qsbot"), None).await;
    assert_eq!(status, 200);
    assert_eq!(keys(&body), recorded);
    assert_eq!(body["unstructured_metadata"], json!({"k": "v"}));
    // robot.regen.existing: no unstructured_metadata in the answer...
    let (status, body) = send(
        &e,
        Method::POST,
        &format!("{robots}/qsbot/regenerate"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        keys(&body),
        ["created", "description", "last_accessed", "name", "token"]
    );
    // ...robot.get.after_regen: but the robot keeps it.
    let (_, body) = send(&e, Method::GET, &format!("{robots}/qsbot"), None).await;
    assert_eq!(body["unstructured_metadata"], json!({"k": "v"}));
    // robot.get.missing
    let (status, body) = send(&e, Method::GET, &format!("{robots}/nosuchbot"), None).await;
    assert_eq!(
        (status, body),
        (
            400,
            json!({"message": "Could not find robot with specified username"})
        )
    );
    let state = e.snapshot();
    let robot = state.robot(&format!("{ORG}+qsbot")).unwrap();
    assert_eq!(robot.unstructured_metadata, Some(json!({"k": "v"})));
    assert_eq!(
        state
            .robot(&format!("{ORG}+qsbot2"))
            .unwrap()
            .unstructured_metadata,
        None
    );
    // Longer descriptions than Quay's 255 characters are refused.
    let long = json!({"description": "d".repeat(256)});
    let (status, _) = send(&e, Method::PUT, &format!("{robots}/qsbot3"), Some(long)).await;
    assert_eq!(status, 400);
}

/// Quay's updateRepo (`PUT /repository/{org}/{repo}`): only the
/// description changes; `{"success": true}` as quay/quay's
/// endpoints/api/repository.py answers; 404 for a missing repository.
#[tokio::test]
async fn a_repository_description_is_updated_as_quay_does() {
    use reqwest::Method;
    use serde_json::json;
    let e = start(EmulatorConfig::new(ORG, TOKEN)).await;
    let create = json!({"namespace": ORG, "repository": "team/app", "visibility": "private",
                        "description": "oracle test", "repo_kind": "image"});
    assert_eq!(
        send(&e, Method::POST, "/repository", Some(create)).await.0,
        201
    );
    let path = format!("/repository/{ORG}/team/app");
    // repo.get.existing: the description comes back.
    let (_, body) = send(&e, Method::GET, &path, None).await;
    assert_eq!(body["description"], "oracle test");
    let update = json!({"description": "new text"});
    let (status, body) = send(&e, Method::PUT, &path, Some(update.clone())).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let (_, body) = send(&e, Method::GET, &path, None).await;
    assert_eq!(body["description"], "new text");
    assert_eq!(body["is_public"], false, "nothing else changed");
    let missing = format!("/repository/{ORG}/nosuchrepo");
    assert_eq!(send(&e, Method::PUT, &missing, Some(update)).await.0, 404);
    assert_eq!(send(&e, Method::PUT, &path, Some(json!({}))).await.0, 400);
    assert_eq!(e.snapshot().calls("update_repository"), 3);
}

#[tokio::test]
async fn the_registry_challenges_with_a_bearer_realm() {
    let e = start(EmulatorConfig::new(ORG, TOKEN)).await;
    let host = e.registry_host();
    let r = http()
        .get(format!("http://{host}/v2/"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        challenge,
        format!(r#"Bearer realm="http://{host}/v2/auth",service="{host}""#)
    );
    let r = http()
        .get(format!("http://{host}/v2/auth?service={host}"))
        .basic_auth("acme+nobody", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(e.api_calls(), 0, "registry calls are not API calls");
}

#[tokio::test]
async fn faults_look_like_faults_to_a_client() {
    let e = start(EmulatorConfig::new(ORG, TOKEN)).await;
    let url = format!("{}/repository/{ORG}/x", e.api_url());
    let c = http();

    e.set_faults(Faults {
        burst_429: 1,
        retry_after_secs: Some(3),
        ..Faults::default()
    });
    let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");
    let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 404, "the burst is over");

    e.set_faults(Faults {
        error_5xx_fraction: 1.0,
        ..Faults::default()
    });
    let r = c.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());

    e.set_faults(Faults {
        drop_fraction: 1.0,
        ..Faults::default()
    });
    let err = c.get(&url).bearer_auth(TOKEN).send().await.unwrap_err();
    assert!(err.status().is_none(), "no answer at all: {err:?}");

    e.set_faults(Faults {
        rate_limit: Some((0.001, 2)),
        ..Faults::default()
    });
    let statuses: Vec<u16> =
        futures::future::join_all((0..3).map(|_| c.get(&url).bearer_auth(TOKEN).send()))
            .await
            .into_iter()
            .map(|r| r.unwrap().status().as_u16())
            .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        1,
        "{statuses:?}"
    );
    assert!(e.snapshot().calls("get_repository") >= 7);
    e.shutdown().await;
}

#[tokio::test]
async fn the_command_serves_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut child = Command::new(quayside_testkit::tools::workspace_bin("quay-emulator"))
        .args(["--listen", "127.0.0.1:0", "--org", ORG])
        .arg("--token-file")
        .arg(&token_file)
        .args(["--private-quota", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut guard = KillOnDrop(Some(child.id()));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let api_url = line
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("emulator said {line:?}"))
        .trim()
        .to_string();

    let mut cfg = QuayConfig::new(&api_url, ORG, &token_file);
    cfg.retry = RetryPolicy {
        max_attempts: 2,
        base: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    let client = QuayClient::new(cfg).unwrap();
    let e = client
        .create_repository("app", ResolvedVisibility::Private, "")
        .await
        .unwrap_err();
    assert!(matches!(e, QuayError::PlanLimit { .. }), "{e:?}");
    client
        .create_repository("app", ResolvedVisibility::Public, "")
        .await
        .unwrap();
    assert!(
        client
            .get_repository("app")
            .await
            .unwrap()
            .unwrap()
            .is_public
    );

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = quayside_testkit::wait::until_blocking(
        "the emulator to exit",
        Duration::from_secs(10),
        || child.try_wait().unwrap(),
    );
    guard.0 = None;
    assert!(status.success(), "{status:?}");
}

/// Kills the emulator we started if the test fails before SIGTERM.
struct KillOnDrop(Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}
