//! Keeping the working repository's packs few: each pass stores its
//! objects as one pack, and libgit2 searches every pack on each lookup,
//! so a long-running controller slowed down with every commit. Merging
//! them into one pack of everything our references reach keeps lookups
//! and pushes fast; what no reference reaches is dropped.

use std::path::{Path, PathBuf};

use git2::Repository;

fn pack_dir(git_dir: &Path) -> PathBuf {
    git_dir.join("objects").join("pack")
}

/// Pack files (`*.pack`) in the repository at `git_dir`.
pub fn count(git_dir: &Path) -> usize {
    std::fs::read_dir(pack_dir(git_dir))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "pack"))
                .count()
        })
        .unwrap_or(0)
}

/// Write one pack of every object the references reach, then remove the
/// other packs (with their indexes). The new pack is complete before any
/// old one goes, so an interruption leaves both, never neither.
pub fn compact(repo: &Repository) -> Result<(), git2::Error> {
    let dir = pack_dir(repo.path());
    let mut walk = repo.revwalk()?;
    walk.push_glob("*")?;
    let mut builder = repo.packbuilder()?;
    builder.insert_walk(&mut walk)?;
    builder.write(&dir, 0)?;
    let Some(name) = builder.name()?.map(|n| format!("pack-{n}")) else {
        return Ok(());
    };
    if !dir.join(format!("{name}.pack")).exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(&dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("");
        if stem.starts_with("pack-") && stem != name && matches!(ext, "pack" | "idx" | "rev") {
            std::fs::remove_file(&path).map_err(io)?;
        }
    }
    repo.odb()?.refresh()?;
    Ok(())
}

fn io(e: std::io::Error) -> git2::Error {
    git2::Error::from_str(&e.to_string())
}
