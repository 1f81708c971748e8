//! A real registry client logs in to the emulator with a robot's credentials:
//! `skopeo login` succeeds with the current token and fails once the token is
//! regenerated — the proof that rotation revokes the old token.

use std::path::Path;
use std::time::Duration;

use quayside_testkit::registry::emulator_with_client;
use quayside_testkit::tools;
use secrecy::ExposeSecret;

const ORG: &str = "acme";
const TOKEN: &str = "oauth-skopeo-test-token";

/// Run `skopeo login` with a fresh auth file; `Ok` when it succeeds, else its stderr.
async fn skopeo_login(host: &str, user: &str, password: &str, dir: &Path) -> Result<(), String> {
    let authfile = dir.join(format!("auth-{}.json", rand_suffix()));
    let out = tokio::process::Command::new(tools::bin("skopeo"))
        .args(["login", "--tls-verify=false", "--authfile"])
        .arg(&authfile)
        .args(["-u", user, "--password-stdin", host])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn skopeo");
    let mut child = out;
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(password.as_bytes()).await.unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("skopeo login finished within a minute")
        .unwrap();
    if out.status.success() {
        let written = std::fs::read_to_string(&authfile).unwrap();
        assert!(
            written.contains(host),
            "auth file names the registry: {written}"
        );
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// skopeo's words for a 401 from the token endpoint.
fn refused(stderr: &str) -> bool {
    let s = stderr.to_lowercase();
    s.contains("invalid username/password") || s.contains("unauthorized")
}

fn rand_suffix() -> u64 {
    rand::random()
}

#[tokio::test]
async fn skopeo_logs_in_with_the_current_token_only() {
    let (emulator, client, dir) = emulator_with_client(ORG, TOKEN).await;
    let host = emulator.registry_host();

    let robot = client.ensure_robot("app_pull", "pull").await.unwrap();
    skopeo_login(&host, &robot.name, robot.token.expose_secret(), dir.path())
        .await
        .expect("login with the current token");

    let err = skopeo_login(&host, &robot.name, "not-the-token", dir.path())
        .await
        .expect_err("a wrong password must not log in");
    assert!(refused(&err), "{err}");

    let rotated = client.regenerate_robot_token("app_pull").await.unwrap();
    let err = skopeo_login(&host, &robot.name, robot.token.expose_secret(), dir.path())
        .await
        .expect_err("the regenerated-away token is revoked");
    assert!(refused(&err), "{err}");
    assert!(
        !err.contains(robot.token.expose_secret()),
        "skopeo echoed the token: {err}"
    );

    skopeo_login(
        &host,
        &rotated.name,
        rotated.token.expose_secret(),
        dir.path(),
    )
    .await
    .expect("login with the new token");
    emulator.shutdown().await;
}
