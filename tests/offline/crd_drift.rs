//! The committed CRDs under deploy/crds/ must match the Rust types.

#[test]
fn committed_crds_match_the_rust_types() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds/quayside.dev.yaml");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    let generated = quayside::api::crds_yaml();
    assert!(
        committed == generated,
        "deploy/crds/quayside.dev.yaml is out of date; regenerate it with\n  cargo run -- crd > deploy/crds/quayside.dev.yaml"
    );
}

#[test]
fn the_crd_reference_matches_the_rust_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/crd-reference.md");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == quayside::api::crd_reference_markdown(),
        "docs/crd-reference.md is out of date; regenerate it with\n  cargo run -- crd --reference > docs/crd-reference.md"
    );
}
