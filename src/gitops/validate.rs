//! Checks that a plan only touches what quayside owns: relative paths inside
//! the repository, folders that do not overlap, files inside their folder.

use super::{GitError, PassPlan};

/// Path components of a relative path (empty ones from `a//b` dropped).
pub(crate) fn components(path: &str) -> Vec<&str> {
    path.split('/').filter(|c| !c.is_empty()).collect()
}

fn check_path(path: &str, what: &str) -> Result<(), GitError> {
    let bad = |why: &str| Err(GitError::InvalidPlan(format!("{what} {path:?} {why}")));
    if path.starts_with('/') {
        return bad("must be relative to the repository root");
    }
    let comps = components(path);
    if comps.is_empty() {
        return bad("is empty");
    }
    for c in comps {
        if c == "." || c == ".." {
            return bad("must not contain `.` or `..`");
        }
        if c.eq_ignore_ascii_case(".git") {
            return bad("must not touch `.git`");
        }
        if c.contains(['\\', '\0']) {
            return bad("contains a backslash or NUL");
        }
    }
    Ok(())
}

fn nested(a: &[&str], b: &[&str]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

pub(crate) fn plan(plan: &PassPlan) -> Result<(), GitError> {
    let mut all: Vec<(&str, Vec<&str>)> = Vec::new();
    for folder in plan.folders.keys().chain(plan.removed_folders.iter()) {
        check_path(folder, "folder")?;
        let comps = components(folder);
        if let Some((other, _)) = all.iter().find(|(_, c)| nested(c, &comps)) {
            return Err(GitError::InvalidPlan(format!(
                "folders {other:?} and {folder:?} overlap; each folder must be owned by one Environment"
            )));
        }
        all.push((folder, comps));
    }
    for file in &plan.removed_files {
        check_path(file, "removed file")?;
        let c = components(file);
        if let Some((folder, _)) = all
            .iter()
            .find(|(_, f)| c.len() > f.len() && c[..f.len()] == f[..])
        {
            return Err(GitError::InvalidPlan(format!(
                "removed file {file:?} is inside the folder {folder:?} the same pass writes or removes"
            )));
        }
    }
    for (folder, files) in &plan.folders {
        let fc = components(folder);
        for f in files {
            check_path(&f.path, "file")?;
            let c = components(&f.path);
            if c.len() <= fc.len() || c[..fc.len()] != fc[..] {
                return Err(GitError::InvalidPlan(format!(
                    "file {:?} is not inside its folder {folder:?}",
                    f.path
                )));
            }
        }
    }
    Ok(())
}

/// The first folder `next` writes that overlaps (equals, holds or sits
/// inside) a folder an earlier plan of the same commit writes. Removals
/// never crowd: a commit applies every plan's removals before any plan's
/// writes, so a folder given up by one pass and taken by another ends up
/// the taker's.
pub(crate) fn crowded(earlier: &[PassPlan], next: &PassPlan) -> Option<String> {
    next.folders.keys().find_map(|folder| {
        let comps = components(folder);
        earlier
            .iter()
            .flat_map(|p| p.folders.keys())
            .any(|other| nested(&components(other), &comps))
            .then(|| folder.clone())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::RenderedFile;

    #[test]
    fn removed_files_stay_outside_the_folders_of_the_pass() {
        let mut ok = p(&[("environments/ws/dev", &[])], &[]);
        ok.removed_files = vec!["environments/dev/README.md".into()];
        plan(&ok).unwrap();
        for bad in ["environments/ws/dev/README.md", "../x", ".git/config"] {
            let mut p = ok.clone();
            p.removed_files = vec![bad.into()];
            assert!(matches!(plan(&p), Err(GitError::InvalidPlan(_))), "{bad}");
        }
    }

    fn p(folders: &[(&str, &[&str])], removed: &[&str]) -> PassPlan {
        PassPlan {
            folders: folders
                .iter()
                .map(|(f, files)| {
                    (
                        f.to_string(),
                        files
                            .iter()
                            .map(|p| RenderedFile {
                                path: p.to_string(),
                                contents: vec![],
                            })
                            .collect(),
                    )
                })
                .collect(),
            removed_folders: removed.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_overlapping_writes_crowd_a_commit() {
        let dev = p(&[("environments/ws/dev", &[])], &[]);
        let prod = p(&[("environments/ws/prod", &[])], &["environments/ws/dev"]);
        assert_eq!(crowded(std::slice::from_ref(&dev), &prod), None);
        for folder in [
            "environments/ws/dev",
            "environments/ws/dev/x",
            "environments/ws",
        ] {
            let other = p(&[(folder, &[])], &[]);
            assert_eq!(
                crowded(&[prod.clone(), dev.clone()], &other),
                Some(folder.to_string()),
                "{folder}"
            );
        }
    }

    #[test]
    fn accepts_separate_folders() {
        plan(&p(
            &[("environments/dev", &["environments/dev/a.yaml"])],
            &["environments/old"],
        ))
        .unwrap();
    }

    #[test]
    fn rejects_what_quayside_does_not_own() {
        for bad in [
            p(&[("environments/dev", &["environments/prod/a.yaml"])], &[]),
            p(&[("environments", &[]), ("environments/dev", &[])], &[]),
            p(&[("environments/dev", &[])], &["environments/dev"]),
            p(&[("../x", &[])], &[]),
            p(&[("/abs", &[])], &[]),
            p(&[("env/.git", &[])], &[]),
            p(&[("", &[])], &[]),
            p(&[("environments/dev", &["environments/dev"])], &[]),
        ] {
            assert!(
                matches!(plan(&bad), Err(GitError::InvalidPlan(_))),
                "{bad:?}"
            );
        }
    }
}
