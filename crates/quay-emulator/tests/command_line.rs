//! The `quay-emulator` binary's command line: every fault has a flag, and
//! it refuses to start without a token or with a malformed rate limit.
//! (Serving until SIGTERM is tested with quayside's Quay client in
//! quayside's `tests/offline/quay_emulator.rs`.)

use std::process::{Command, Output};

fn emulator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quay-emulator"))
        .args(args)
        .env_remove("QUAY_EMULATOR_TOKEN")
        .output()
        .expect("run quay-emulator")
}

#[test]
fn help_names_every_option() {
    let out = emulator(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--org",
        "--token-file",
        "--token",
        "--private-quota",
        "--latency-ms",
        "--error-5xx-fraction",
        "--drop-fraction",
        "--rate-limit",
    ] {
        assert!(help.contains(flag), "{flag} missing:\n{help}");
    }
}

#[test]
fn a_token_is_required_and_a_rate_limit_needs_a_burst() {
    let out = emulator(&["--listen", "127.0.0.1:0"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--token-file"), "{err}");

    let out = emulator(&["--token", "t", "--rate-limit", "5"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("REQUESTS_PER_SECOND:BURST"), "{err}");
}
