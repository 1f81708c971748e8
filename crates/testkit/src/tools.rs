//! Where things live: the repository, the external tools `scripts/setup`
//! installs, and the binaries of this workspace that cargo built.

use std::path::{Path, PathBuf};

/// The repository root (the workspace's Cargo.toml).
pub fn root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .expect("crates/testkit sits two levels below the root")
        .to_path_buf()
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

/// A binary of this workspace (`quayside`, `quay-emulator`,
/// `quayside-bench`) from the folder cargo builds every binary into —
/// `target/debug` next to a test's `deps/`, or the folder of the running
/// binary. `cargo test --workspace` builds them all before any test runs; a
/// test run alone says how to build a missing or stale one.
pub fn workspace_bin(name: &str) -> PathBuf {
    try_workspace_bin(name).unwrap_or_else(|e| panic!("{e}"))
}

/// [`workspace_bin`], with the problem as an error: missing, or older than
/// one of its sources (by the dependency list cargo writes next to it,
/// `<name>.d`).
pub fn try_workspace_bin(name: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let mut dir = exe
        .parent()
        .ok_or("this program has no folder")?
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(name);
    let build = if dir.ends_with("release") {
        "cargo build --release --workspace --bins"
    } else {
        "cargo build --workspace --bins"
    };
    if !is_executable(&bin) {
        return Err(format!(
            "`{name}` is not built in {}: run `{build}` (`cargo test --workspace` does it)",
            dir.display()
        ));
    }
    if let Some(source) = newer_source(&bin) {
        return Err(format!(
            "{} is older than {}: run `{build}` (`cargo test --workspace` does it)",
            bin.display(),
            source.display()
        ));
    }
    Ok(bin)
}

/// A source file of `bin` modified after it was built.
fn newer_source(bin: &Path) -> Option<PathBuf> {
    let built = bin.metadata().and_then(|m| m.modified()).ok()?;
    let deps = std::fs::read_to_string(bin.with_extension("d")).ok()?;
    let (_, sources) = deps.split_once(": ")?;
    // Make's syntax: blanks separate paths; a blank inside one is escaped.
    let sources = sources.replace("\\ ", "\u{0}");
    sources
        .split_whitespace()
        .map(|s| PathBuf::from(s.replace('\u{0}', " ")))
        .find(|s| {
            s.metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > built)
        })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
