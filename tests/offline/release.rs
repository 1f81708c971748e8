//! Release artifacts that need no tool to check: the version stated once
//! (Cargo.toml; the chart follows it), the licence, the changelog, and a
//! Dockerfile that builds for any architecture and ships only the binary.

use std::path::Path;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

const VERSION: &str = env!("CARGO_PKG_VERSION");

#[test]
fn the_chart_follows_the_cargo_version() {
    let chart: serde_json::Value =
        serde_norway::from_str(&read("deploy/helm/quayside/Chart.yaml")).unwrap();
    assert_eq!(
        chart["version"], VERSION,
        "Chart.yaml version; Cargo.toml says {VERSION}"
    );
    assert_eq!(
        chart["appVersion"], VERSION,
        "Chart.yaml appVersion; Cargo.toml says {VERSION}"
    );
    assert_eq!(chart["license"], "Apache-2.0");
    // deploy/'s image follows it too (the chart's defaults to appVersion).
    assert!(
        read("deploy/controller/deployment.yaml")
            .contains(&format!("image: quay.io/quayside/quayside:{VERSION}\n"))
    );
}

#[test]
fn the_licence_is_apache_2_and_the_changelog_names_the_version() {
    let licence = read("LICENSE");
    assert!(licence.contains("Apache License") && licence.contains("Version 2.0, January 2004"));
    assert!(
        licence.contains("END OF TERMS AND CONDITIONS"),
        "the full text, not a notice"
    );
    let changelog = read("CHANGELOG.md");
    assert!(
        changelog.contains(&format!("## [{VERSION}]")),
        "CHANGELOG.md has no section for {VERSION}"
    );
    assert!(changelog.contains("## [Unreleased]"));
}

#[test]
fn the_dockerfile_names_no_architecture_and_ships_only_the_binary() {
    let text = read("Dockerfile");
    let code: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    for arch in ["x86_64", "amd64", "aarch64", "arm64", "-linux-gnu"] {
        assert!(
            !code.iter().any(|l| l.contains(arch)),
            "the Dockerfile names {arch}:\n{text}"
        );
    }
    // The runtime stage: everything after the last FROM.
    let last_from = code.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let runtime = &code[last_from..];
    assert!(
        runtime[0].starts_with("FROM gcr.io/distroless/cc-debian12"),
        "{}",
        runtime[0]
    );
    let copies: Vec<&&str> = runtime
        .iter()
        .filter(|l| l.starts_with("COPY") || l.starts_with("ADD"))
        .collect();
    assert_eq!(
        copies,
        [&"COPY --from=build /src/target/release/quayside /usr/local/bin/quayside"],
        "the image holds the binary and nothing else"
    );
    // The build stage is the same Debian release (glibc) as the runtime's.
    assert!(
        code.iter()
            .any(|l| l.starts_with("FROM rust:") && l.contains("-bookworm"))
    );
    assert!(code.iter().any(|l| l.contains("--bin quayside")));
    assert!(runtime.contains(&"USER 65532:65532"));
}
