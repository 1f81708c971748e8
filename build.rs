//! Embeds the git commit the binary is built from (`quayside version`):
//! `QUAYSIDE_GIT_COMMIT` when set (an image build without `.git`), else
//! `git rev-parse HEAD`, else `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=QUAYSIDE_GIT_COMMIT");
    let commit = std::env::var("QUAYSIDE_GIT_COMMIT")
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| {
            // Built again when HEAD moves: HEAD itself (a branch switch) and
            // the branch it points at (a commit), in a worktree too.
            // A path that does not exist would rerun this script on every
            // build, so only existing ones are named.
            let branch = git(&["symbolic-ref", "-q", "HEAD"]);
            let watched = ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref());
            for path in watched {
                if let Some(p) = git(&["rev-parse", "--git-path", path])
                    && std::path::Path::new(&p).exists()
                {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            git(&["rev-parse", "HEAD"])
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=QUAYSIDE_GIT_COMMIT={commit}");
}
