//! docs/configuration.md must match the flags of `quayside run`, as the
//! binary prints them (`quayside configuration`), and list every one.

use std::process::Command;

fn quayside(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_quayside"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "quayside {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_configuration_page_matches_the_flags() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == quayside(&["configuration"]),
        "docs/configuration.md is out of date; regenerate it with\n  cargo run -- configuration > docs/configuration.md"
    );
}

#[test]
fn every_flag_of_run_is_on_the_page_with_its_variable() {
    let page = quayside(&["configuration"]);
    let help = quayside(&["run", "--help"]);
    let mut flags = 0;
    for line in help.lines() {
        let Some(flag) = line
            .trim_start()
            .split([' ', ',', '='])
            .find(|w| w.starts_with("--"))
        else {
            continue;
        };
        if matches!(flag, "--help" | "--version") {
            continue;
        }
        flags += 1;
        assert!(
            page.contains(&format!("| `{flag}` |")),
            "{flag} is not on the page"
        );
    }
    assert!(
        flags >= 30,
        "only {flags} flags found in `quayside run --help`"
    );
    for line in page.lines().filter(|l| l.starts_with("| `--")) {
        assert!(
            line.contains("| `QUAYSIDE_") || line.contains("| `POD_NAMESPACE`"),
            "a flag without its variable: {line}"
        );
    }
    // The one on by default that issue 18 found undocumented.
    assert!(
        page.contains("| `--rotation-interval` | `QUAYSIDE_ROTATION_INTERVAL` | `90d` |"),
        "{page}"
    );
}

#[test]
fn version_names_the_release_and_the_commit() {
    let line = quayside(&["version"]);
    let want = format!("quayside {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&want), "{line}");
    let commit = line
        .trim_end()
        .trim_start_matches(&want)
        .trim_end_matches(')')
        .trim_end_matches(", or later: a debug build");
    assert!(
        commit == "unknown"
            || (commit.len() == 40 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{line}"
    );
    assert_eq!(quayside(&["--version"]), line, "--version says the same");
}
