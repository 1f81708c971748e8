//! The `quayside` binary is the controller only: its help lists `run`,
//! `render`, `verify` and `crd`, and nothing of the test tooling (the Quay
//! emulator and the benchmarks are binaries of their own).

use std::process::Command;

#[test]
fn quayside_lists_no_emulator_or_benchmark_commands() {
    let out = Command::new(env!("CARGO_BIN_EXE_quayside"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout).to_lowercase();
    for command in ["run", "render", "verify", "crd"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "`{command}` missing:\n{help}"
        );
    }
    for tooling in ["emulator", "bench", "dry-parse"] {
        assert!(!help.contains(tooling), "`{tooling}` listed:\n{help}");
    }
    // Nor does it accept them.
    for args in [
        &["quay-emulator"][..],
        &["bench", "seal"],
        &["--dry-parse", "crd"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_quayside"))
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "`quayside {}` ran", args.join(" "));
    }
}

/// Bounded work: `--concurrency` is offered with its default, and zero (no
/// bound at all) is refused with the option named.
#[test]
fn run_bounds_its_concurrent_passes() {
    let help = Command::new(env!("CARGO_BIN_EXE_quayside"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    assert!(
        help.contains("--concurrency") && help.contains("[default: 64]"),
        "{help}"
    );
    let zero = Command::new(env!("CARGO_BIN_EXE_quayside"))
        .args(["run", "--concurrency", "0"])
        .output()
        .unwrap();
    assert!(!zero.status.success());
    let err = String::from_utf8_lossy(&zero.stderr);
    assert!(err.contains("--concurrency"), "{err}");
}

/// The defaults docs/operations.md states: a heartbeat of 24 hours, a
/// scheduled rotation every 90 days, a rotation deadline of one hour.
#[test]
fn run_defaults_match_the_docs() {
    let help = Command::new(env!("CARGO_BIN_EXE_quayside"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let default_of = |flag: &str| -> String {
        let at = help.find(flag).unwrap_or_else(|| panic!("{flag} missing"));
        let rest = &help[at..];
        let d = rest.find("[default: ").expect("a default") + "[default: ".len();
        rest[d..rest[d..].find(']').unwrap() + d].to_string()
    };
    assert_eq!(default_of("--heartbeat"), "24h");
    assert_eq!(default_of("--rotation-interval"), "90d");
    assert_eq!(default_of("--rotation-deadline"), "1h");
    let ops = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/operations.md"))
        .unwrap();
    assert!(
        ops.contains("| `--heartbeat` | `QUAYSIDE_HEARTBEAT` | `24h` |"),
        "docs say 24h"
    );
    assert!(
        ops.contains("| `--rotation-deadline` | `QUAYSIDE_ROTATION_DEADLINE` | `1h` |"),
        "docs say 1h"
    );
}
