//! Where the tools installed by `scripts/setup` live.

use std::path::{Path, PathBuf};

/// The repository root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Path of an external tool: the Go-built `testcluster`, the venv's `sops` and
/// `kubectl`, or a system binary such as `age` and `skopeo`. Panics with the
/// command to run when it is missing, so a test never fails obscurely.
pub fn bin(name: &str) -> PathBuf {
    let candidates = [
        root().join(".cache/bin").join(name),
        root().join(".venv/bin").join(name),
        PathBuf::from("/usr/bin").join(name),
        PathBuf::from("/usr/local/bin").join(name),
    ];
    for c in &candidates {
        if is_executable(c) {
            return c.clone();
        }
    }
    panic!("`{name}` is not installed; run `scripts/setup` first (looked in {candidates:?})");
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
