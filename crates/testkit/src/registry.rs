//! Reading delivered credentials and proving them with a real registry
//! client (`skopeo login`) against the Quay emulator.

use std::process::Stdio;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use quayside::credentials::RobotCredentials;
use secrecy::ExposeSecret;

use crate::tools;

/// A Quay emulator on loopback for `org` and OAuth `token`, with a client
/// that retries briefly; the scratch folder holds the token file (and is
/// free for the test's own files). Keep all three alive for the test.
pub async fn emulator_with_client(
    org: &str,
    token: &str,
) -> (
    quay_emulator::Emulator,
    quayside::quay::QuayClient,
    tempfile::TempDir,
) {
    use quayside::quay::{QuayClient, QuayConfig, RetryPolicy};
    let emulator = quay_emulator::Emulator::start(
        "127.0.0.1:0".parse().unwrap(),
        quay_emulator::EmulatorConfig::new(org, token),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let mut cfg = QuayConfig::new(&emulator.api_url(), org, &token_file);
    cfg.retry = RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    };
    let client = QuayClient::new(cfg).unwrap();
    (emulator, client, dir)
}

/// The robot credentials in a `kubernetes.io/dockerconfigjson` Secret.
pub fn creds_of(secret: &Secret) -> RobotCredentials {
    let raw = &secret.data.as_ref().unwrap()[".dockerconfigjson"].0;
    RobotCredentials::from_docker_config_json(std::str::from_utf8(raw).unwrap()).unwrap()
}

/// `skopeo login` against the emulator's registry endpoint. Async: the
/// emulator runs on the test's runtime, so a blocking wait would starve it.
pub async fn skopeo_login(registry: &str, creds: &RobotCredentials) -> bool {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(tools::bin("skopeo"))
        .args(["login", "--tls-verify=false", "--authfile"])
        .arg(dir.path().join("auth.json"))
        .args(["-u", &creds.username, "--password-stdin", registry])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(creds.token.expose_secret().as_bytes())
        .await
        .unwrap();
    drop(stdin);
    tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("skopeo login finished within a minute")
        .unwrap()
        .success()
}
