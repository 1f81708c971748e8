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
    assert_eq!(r.status(), 404, "unknown organization");

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
