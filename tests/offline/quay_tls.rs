//! The Quay client against the emulator over HTTPS (a CA made at start-up):
//! with that CA as `extra_ca` (`quayside run --extra-ca-file`) every call
//! works; without it, or with another CA, or under a host name the
//! certificate does not list, the first call fails at once, not retried,
//! with a sentence that says what to change.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use quay_emulator::{Emulator, EmulatorConfig, TestAuthority};
use quayside::api::ResolvedVisibility;
use quayside::quay::{QuayClient, QuayConfig, QuayError, RetryPolicy};

const ORG: &str = "acme";
const TOKEN: &str = "oauth-tls-token-5d1e0b7a";

struct Fixture {
    emulator: Emulator,
    dir: tempfile::TempDir,
    token_file: PathBuf,
    ca_file: PathBuf,
}

async fn fixture() -> Fixture {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let emulator = Emulator::start(addr, EmulatorConfig::new(ORG, TOKEN).with_tls())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, emulator.ca_pem().expect("a CA over TLS")).unwrap();
    Fixture {
        emulator,
        dir,
        token_file,
        ca_file,
    }
}

/// Eight attempts, as by default: a refusal that were retried would show
/// in the emulator's count (no call reaches it) and in the time taken.
fn client(api_url: &str, token_file: &Path, extra_ca: Option<&Path>) -> QuayClient {
    let mut cfg = QuayConfig::new(api_url, ORG, token_file);
    cfg.extra_ca = extra_ca.map(Path::to_path_buf);
    cfg.timeout = Duration::from_secs(10);
    cfg.retry = RetryPolicy {
        max_attempts: 8,
        base: Duration::from_millis(200),
        max_delay: Duration::from_secs(2),
    };
    QuayClient::new(cfg).unwrap()
}

#[tokio::test]
async fn the_emulator_serves_https_and_the_client_trusts_the_extra_ca() {
    let f = fixture().await;
    assert!(f.emulator.api_url().starts_with("https://127.0.0.1:"));
    let c = client(&f.emulator.api_url(), &f.token_file, Some(&f.ca_file));
    c.create_repository("tls/app", ResolvedVisibility::Private, "over TLS")
        .await
        .unwrap();
    c.ensure_robot("tls_app_pull", "pull robot").await.unwrap();
    let repo = c.get_repository("tls/app").await.unwrap().unwrap();
    assert!(!repo.is_public);
    assert_eq!(f.emulator.snapshot().repositories.len(), 1);
}

#[tokio::test]
async fn without_the_ca_the_first_call_fails_at_once_naming_the_flag() {
    let f = fixture().await;
    let c = client(&f.emulator.api_url(), &f.token_file, None);
    let started = std::time::Instant::now();
    let err = c.get_repository("tls/app").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, QuayError::Untrusted { .. }), "{err:?}");
    assert_eq!(err.reason(), "QuayCertificateUntrusted");
    assert!(!err.is_transient());
    assert!(text.contains("--extra-ca-file"), "{text}");
    assert!(text.contains("does not trust"), "{text}");
    assert!(
        text.contains(&f.emulator.local_addr().to_string()),
        "names the server: {text}"
    );
    // Not a rustls dump, and the token nowhere.
    assert!(!text.contains("UnknownIssuer"), "{text}");
    assert!(!text.contains("invalid peer certificate"), "{text}");
    assert!(!text.contains(TOKEN));
    // One handshake, no retry: no request ever reached the API, and the
    // seven back-offs (at least 200 ms each) were not waited.
    assert_eq!(f.emulator.api_calls(), 0);
    assert!(started.elapsed() < Duration::from_secs(1), "retried?");
}

#[tokio::test]
async fn a_ca_file_without_the_signing_ca_is_named_in_the_error() {
    let f = fixture().await;
    let other = f.dir.path().join("other-ca.pem");
    std::fs::write(&other, TestAuthority::generate().unwrap().ca_pem()).unwrap();
    let c = client(&f.emulator.api_url(), &f.token_file, Some(&other));
    let text = c.get_repository("tls/app").await.unwrap_err().to_string();
    assert!(text.contains("other-ca.pem"), "{text}");
    assert!(text.contains("--extra-ca-file"), "{text}");
}

#[tokio::test]
async fn a_host_name_the_certificate_does_not_list_is_not_blamed_on_the_ca() {
    // 127.0.0.2 is loopback too, but not a name in the certificate
    // (127.0.0.1, ::1, localhost).
    let addr: SocketAddr = "127.0.0.2:0".parse().unwrap();
    let emulator = Emulator::start(addr, EmulatorConfig::new(ORG, TOKEN).with_tls())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (token_file, ca_file) = (dir.path().join("token"), dir.path().join("ca.pem"));
    std::fs::write(&token_file, TOKEN).unwrap();
    std::fs::write(&ca_file, emulator.ca_pem().unwrap()).unwrap();
    let c = client(&emulator.api_url(), &token_file, Some(&ca_file));
    let err = c.get_repository("tls/app").await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, QuayError::Untrusted { .. }), "{err:?}");
    assert!(text.contains("not valid for the name 127.0.0.2"), "{text}");
}

#[tokio::test]
async fn the_command_writes_its_ca_before_ready_and_serves_https() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().unwrap();
    let (token_file, ca_file) = (dir.path().join("token"), dir.path().join("ca.pem"));
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut child = Command::new(quayside_testkit::tools::workspace_bin("quay-emulator"))
        .args(["--listen", "127.0.0.1:0", "--org", ORG])
        .arg("--token-file")
        .arg(&token_file)
        .arg("--tls-ca-out")
        .arg(&ca_file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed however the test ends.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let _child = Kill(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let api_url = line.strip_prefix("READY ").expect("READY").trim();
    assert!(api_url.starts_with("https://127.0.0.1:"), "{api_url}");
    // Written before READY: no waiting for the file.
    let pem = std::fs::read_to_string(&ca_file).unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    let trusted = client(api_url, &token_file, Some(&ca_file));
    trusted.get_repository("tls/app").await.unwrap();
    let untrusted = client(api_url, &token_file, None);
    let err = untrusted.get_repository("tls/app").await.unwrap_err();
    assert!(err.to_string().contains("--extra-ca-file"), "{err}");
}
