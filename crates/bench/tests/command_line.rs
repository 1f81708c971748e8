//! The `quayside-bench` binary's command line: both benchmarks listed, and
//! `--dry-parse` (for the docs test) kept out of the help. The documented
//! benchmark commands themselves are argument-checked by quayside's
//! `tests/docs/commands.rs`.

use std::process::Command;

#[test]
fn help_lists_both_benchmarks_and_hides_dry_parse() {
    let out = Command::new(env!("CARGO_BIN_EXE_quayside-bench"))
        .arg("--help")
        .output()
        .expect("run quayside-bench");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["seal", "controller"] {
        assert!(help.contains(sub), "{sub} missing:\n{help}");
    }
    assert!(!help.contains("dry-parse"), "{help}");
}
