//! Embeds the git commit the binary is built from (`quayside version`):
//! `QUAYSIDE_GIT_COMMIT` when set (an image build without `.git`), else
//! `git rev-parse HEAD`, else `unknown`.
//!
//! A release build runs again whenever HEAD moves, so its commit is exact.
//! A debug build does not watch git: that would rebuild the crate and
//! every test binary after each commit, on machines where a rebuild costs
//! minutes; it keeps the commit of the build script's last run, and says so.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=QUAYSIDE_GIT_COMMIT");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let commit = match std::env::var("QUAYSIDE_GIT_COMMIT") {
        Ok(c) if !c.is_empty() => c,
        _ => {
            if release {
                watch_head();
            }
            match git(&["rev-parse", "HEAD"]) {
                Some(c) if release => c,
                Some(c) => format!("{c}, or later: a debug build"),
                None => "unknown".to_string(),
            }
        }
    };
    println!("cargo:rustc-env=QUAYSIDE_GIT_COMMIT={commit}");
}

/// Run again when HEAD moves: HEAD itself (a branch switch) and the branch
/// it points at (a commit), in a worktree too. A path that does not exist
/// would rerun this script on every build, so only existing ones are named.
fn watch_head() {
    let branch = git(&["symbolic-ref", "-q", "HEAD"]);
    let watched = ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref());
    for path in watched {
        if let Some(p) = git(&["rev-parse", "--git-path", path])
            && std::path::Path::new(&p).exists()
        {
            println!("cargo:rerun-if-changed={p}");
        }
    }
}
