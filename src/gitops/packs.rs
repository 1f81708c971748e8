//! Keeping the working repository's packs few: each pass stores its
//! objects as one pack, and libgit2 searches every pack on each lookup,
//! so a long-running controller slowed down with every commit.
//!
//! Packs are merged geometrically, as `git repack --geometric=2` does:
//! only the small recent packs are rewritten into one, and everything
//! (what our references reach; the rest is dropped) only once the
//! repository has about doubled since the last full merge. Merging
//! everything every time cost a walk of the whole history per merge: on
//! 6,000 Environment folders it took most of the controller's CPU and
//! commits slowed from many a second to one every 8 s (docs/benchmarks.md).

use std::path::{Path, PathBuf};

use git2::{Binding, Mempack, Oid, Repository};

unsafe extern "C" {
    // libgit2 (1.9, bundled by libgit2-sys) has it; git2 does not wrap it.
    fn git_mempack_write_thin_pack(
        backend: *mut std::ffi::c_void,
        pb: *mut std::ffi::c_void,
    ) -> std::ffi::c_int;
}

/// Pack the objects a pass wrote into `mempack` — those alone — into
/// `out` (left empty when there are none). `Mempack::dump` is no use:
/// it packs each new commit with its whole tree, so every commit stored
/// a copy of the entire side repository. On 6,000 Environment folders
/// that was 72 % of the controller's CPU (deflating the copy) and a
/// working repository 7 times the size of the remote.
pub fn new_objects(
    repo: &Repository,
    mempack: &Mempack<'_>,
    out: &mut git2::Buf,
) -> Result<(), git2::Error> {
    let mut builder = repo.packbuilder()?;
    // SAFETY: both pointers come from live wrappers borrowed for the
    // whole call (the backend is owned by `repo`'s object database, the
    // builder by this function); the function only reads the backend's
    // object list and inserts those ids into the builder.
    let code = unsafe { git_mempack_write_thin_pack(mempack.raw().cast(), builder.raw().cast()) };
    if code < 0 {
        return Err(git2::Error::last_error(code));
    }
    if builder.object_count() > 0 {
        builder.write_buf(out)?;
    }
    Ok(())
}

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

/// How many of the packs, largest first by object count, to keep as they
/// are; the rest are merged into one. The kept packs and the merged one
/// must each hold at least twice what comes after them, so the number of
/// packs stays logarithmic in the repository's size and each object is
/// rewritten a logarithmic number of times. 0: merge them all.
pub fn packs_to_keep(sizes_largest_first: &[usize]) -> usize {
    let s = sizes_largest_first;
    // Largest k first: merge as little as the rule allows.
    (1..s.len())
        .rev()
        .find(|&k| {
            let merged: usize = s[k..].iter().sum();
            let geometric = s[..k].windows(2).all(|w| w[0] >= 2 * w[1]);
            geometric && s[k - 1] >= 2 * merged
        })
        .unwrap_or(0)
}

/// The object ids a version-2 pack index lists (what libgit2 and git
/// write); `None` for any other format.
pub fn index_objects(idx: &[u8]) -> Option<Vec<Oid>> {
    const HEADER: usize = 8;
    const FANOUT: usize = 256 * 4;
    if idx.get(..HEADER)? != [0xff, b't', b'O', b'c', 0, 0, 0, 2] {
        return None;
    }
    let last = idx.get(HEADER + FANOUT - 4..HEADER + FANOUT)?;
    let n = u32::from_be_bytes(last.try_into().ok()?) as usize;
    let ids = idx.get(HEADER + FANOUT..HEADER + FANOUT + n.checked_mul(20)?)?;
    ids.chunks_exact(20)
        .map(|c| Oid::from_bytes(c).ok())
        .collect()
}

/// A pack on disk: its file stem (`pack-<hash>`) and the objects it holds.
struct Pack {
    stem: String,
    objects: Vec<Oid>,
}

fn packs(dir: &Path) -> Result<Option<Vec<Pack>>, git2::Error> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_none_or(|x| x != "pack") {
            continue;
        }
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let idx = std::fs::read(dir.join(format!("{stem}.idx"))).map_err(io)?;
        let Some(objects) = index_objects(&idx) else {
            return Ok(None); // an index we cannot read: merge everything
        };
        found.push(Pack {
            stem: stem.to_string(),
            objects,
        });
    }
    found.sort_by_key(|p| std::cmp::Reverse(p.objects.len()));
    Ok(Some(found))
}

/// Merge the packs as [`packs_to_keep`] says. The new pack is complete
/// before any old one goes, so an interruption leaves both, never neither.
pub fn compact(repo: &Repository) -> Result<(), git2::Error> {
    let dir = pack_dir(repo.path());
    let Some(all) = packs(&dir)? else {
        return compact_all(repo);
    };
    let sizes: Vec<usize> = all.iter().map(|p| p.objects.len()).collect();
    let keep = packs_to_keep(&sizes);
    if keep == 0 {
        return compact_all(repo);
    }
    let merged = &all[keep..];
    let mut builder = repo.packbuilder()?;
    for oid in merged.iter().flat_map(|p| &p.objects) {
        builder.insert_object(*oid, None)?;
    }
    let Some(name) = write(&mut builder, &dir)? else {
        return Ok(());
    };
    let gone: Vec<&str> = merged
        .iter()
        .map(|p| p.stem.as_str())
        .filter(|s| *s != name)
        .collect();
    remove(&dir, |stem| gone.contains(&stem))?;
    repo.odb()?.refresh()?;
    Ok(())
}

/// One pack of every object the references reach; every other pack goes.
fn compact_all(repo: &Repository) -> Result<(), git2::Error> {
    let dir = pack_dir(repo.path());
    let mut walk = repo.revwalk()?;
    walk.push_glob("*")?;
    let mut builder = repo.packbuilder()?;
    builder.insert_walk(&mut walk)?;
    let Some(name) = write(&mut builder, &dir)? else {
        return Ok(());
    };
    remove(&dir, |stem| stem != name)?;
    repo.odb()?.refresh()?;
    Ok(())
}

/// Write the pack; its stem once it is on disk.
fn write(builder: &mut git2::PackBuilder<'_>, dir: &Path) -> Result<Option<String>, git2::Error> {
    builder.write(dir, 0)?;
    let Some(name) = builder.name()?.map(|n| format!("pack-{n}")) else {
        return Ok(None);
    };
    Ok(dir.join(format!("{name}.pack")).exists().then_some(name))
}

/// Remove the packs (and their indexes) whose stem `gone` picks.
fn remove(dir: &Path, gone: impl Fn(&str) -> bool) -> Result<(), git2::Error> {
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let ext = path.extension().and_then(|s| s.to_str()).unwrap_or("");
        if stem.starts_with("pack-") && gone(stem) && matches!(ext, "pack" | "idx" | "rev") {
            std::fs::remove_file(&path).map_err(io)?;
        }
    }
    Ok(())
}

fn io(e: std::io::Error) -> git2::Error {
    git2::Error::from_str(&e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_packs_are_merged_and_the_large_one_kept() {
        let mut sizes = vec![1000];
        sizes.extend([10; 32]);
        assert_eq!(packs_to_keep(&sizes), 1, "the 32 small ones hold 320 < 500");
    }

    #[test]
    fn everything_is_merged_once_the_small_ones_hold_half_the_large() {
        let mut sizes = vec![1000, 320];
        sizes.extend([10; 32]);
        // Merging the 32 would give a second pack of 320 beside one of
        // 320; with it, 640 beside 1,000: both break the doubling.
        assert_eq!(packs_to_keep(&sizes), 0);
    }

    #[test]
    fn a_geometric_run_of_packs_is_kept() {
        let mut sizes = vec![4000, 1000, 400];
        sizes.extend([5; 33]);
        assert_eq!(packs_to_keep(&sizes), 3);
        assert_eq!(packs_to_keep(&[]), 0);
        assert_eq!(packs_to_keep(&[7]), 0);
    }

    #[test]
    fn merges_stay_few_and_cheap_over_many_commits() {
        // One pack of 10 objects per commit, merged past 32 packs as the
        // side repository does: count the objects rewritten.
        let (mut packs, mut rewritten) = (Vec::<usize>::new(), 0usize);
        for _ in 0..5000 {
            packs.push(10);
            if packs.len() > 32 {
                packs.sort_unstable_by(|a, b| b.cmp(a));
                let keep = packs_to_keep(&packs);
                let merged: usize = packs[keep..].iter().sum();
                rewritten += merged;
                packs.truncate(keep);
                packs.push(merged);
            }
            assert!(packs.len() <= 33);
        }
        let written = 5000 * 10;
        // Merging everything each time rewrites about 156 merges × half
        // the repository on average: 78 times what was written (this
        // rule: 4.2 times).
        assert!(rewritten < 6 * written, "rewrote {rewritten} of {written}");
    }

    #[test]
    fn a_version_2_index_lists_its_objects() {
        let mut idx = vec![0xff, b't', b'O', b'c', 0, 0, 0, 2];
        let a = [0x11u8; 20];
        let b = [0x22u8; 20];
        for i in 0..256u32 {
            let n: u32 = if i < 0x11 {
                0
            } else if i < 0x22 {
                1
            } else {
                2
            };
            idx.extend(n.to_be_bytes());
        }
        idx.extend(a);
        idx.extend(b);
        let ids = index_objects(&idx).unwrap();
        assert_eq!(
            ids,
            vec![Oid::from_bytes(&a).unwrap(), Oid::from_bytes(&b).unwrap()]
        );
        assert_eq!(index_objects(&idx[..100]), None, "cut short");
        assert_eq!(index_objects(b"\0\0\0\0\0\0\0\0"), None, "version 1");
    }
}
