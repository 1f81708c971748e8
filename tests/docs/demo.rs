//! The README's first command, run non-interactively end to end: asserts
//! its outcome (what it recorded and what is left running), not its wording.

use std::process::Command;
use std::time::Duration;

use quayside_testkit::{tools, wait};

#[test]
fn the_demo_runs_end_to_end_and_leaves_nothing_running() {
    let dir = tempfile::Builder::new()
        .prefix("quayside-demo-test-")
        .tempdir()
        .unwrap();
    let out = Command::new("timeout")
        .args(["--kill-after=10s", "600s"])
        .arg(tools::root().join("scripts/demo"))
        .env("QUAYSIDE_BIN", env!("CARGO_BIN_EXE_quayside"))
        .env("QUAY_EMULATOR_BIN", tools::workspace_bin("quay-emulator"))
        .env("QUAYSIDE_DEMO_DIR", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "scripts/demo failed:\n{stdout}\n{stderr}"
    );
    let outcome: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("outcome.json")).expect("outcome.json"),
    )
    .unwrap();
    assert_eq!(outcome["components_ready"], 3, "{outcome}");
    assert_eq!(
        outcome["generation"], 2,
        "one emergency rotation: {outcome}"
    );
    assert_eq!(outcome["old_token_accepted"], false, "{outcome}");
    assert_eq!(outcome["new_token_accepted"], true, "{outcome}");
    assert!(
        outcome["side_repo_commits"].as_i64().unwrap() >= 2,
        "{outcome}"
    );

    // Every process it started is gone (the servers take a moment to stop).
    let marker = dir.path().to_string_lossy().to_string();
    wait::until_blocking("demo processes to exit", Duration::from_secs(30), || {
        let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
        let left: Vec<String> = String::from_utf8_lossy(&ps.stdout)
            .lines()
            .filter(|l| l.contains(&marker) && !l.contains("ps -eo"))
            .map(String::from)
            .collect();
        left.is_empty().then_some(())
    });
}
