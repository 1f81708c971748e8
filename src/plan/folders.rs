//! Side-repo folders: which Environment owns a folder when two ask for
//! overlapping ones (pure). A pass rewrites its whole folder and prunes what
//! it does not list, so a second owner would overwrite or delete the first's.

use std::cmp::Ordering;

/// How folder `a` relates to folder `b`: `Some(Equal)` when they are the
/// same, `Less` when `a` contains `b`, `Greater` when `a` is inside `b`,
/// `None` when they are apart.
pub fn folder_relation(a: &str, b: &str) -> Option<Ordering> {
    let parts = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty())
            .map(String::from)
            .collect()
    };
    let (a, b) = (parts(a), parts(b));
    let n = a.len().min(b.len());
    (a[..n] == b[..n]).then(|| a.len().cmp(&b.len()))
}

/// An Environment's claim on a folder. `age` orders claims: the older one
/// (creation time, then namespace and name) keeps a contested folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderClaim<K: Ord> {
    pub folder: String,
    pub age: K,
    /// `namespace/name`, for the message.
    pub owner: String,
}

/// The first other claim that keeps `mine` from its folder, as a message
/// that says what to do. A folder holding another Environment's folder can
/// never be written without pruning theirs: it is always refused (so the
/// one inside it is free). The same folder: the older claim keeps it.
pub fn folder_conflict<K: Ord>(mine: &FolderClaim<K>, others: &[FolderClaim<K>]) -> Option<String> {
    others
        .iter()
        .find(|o| match folder_relation(&mine.folder, &o.folder) {
            Some(Ordering::Less) => true,
            Some(Ordering::Equal) => o.age < mine.age,
            _ => false,
        })
        .map(|o| {
            format!(
                "the side-repo folder {:?} overlaps the folder {:?} of Environment {}; choose a folder of its own with spec.sideRepo.path (default environments/<name>)",
                mine.folder, o.folder, o.owner
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(folder: &str, age: i64) -> FolderClaim<i64> {
        FolderClaim {
            folder: folder.into(),
            age,
            owner: format!("ws/{age}"),
        }
    }

    #[test]
    fn relations() {
        assert_eq!(folder_relation("a/b", "a/b/"), Some(Ordering::Equal));
        assert_eq!(folder_relation("a", "a/b"), Some(Ordering::Less));
        assert_eq!(folder_relation("/a/b/c", "a/b"), Some(Ordering::Greater));
        assert_eq!(folder_relation("a/b", "a/bc"), None);
        assert_eq!(folder_relation("x", "y"), None);
    }

    #[test]
    fn the_older_claim_keeps_a_folder_and_a_parent_is_always_refused() {
        let dev = claim("environments/dev", 1);
        let later_dev = claim("environments/dev", 2);
        let parent = claim("environments", 0);
        let inside = claim("environments/dev/x", 3);
        assert!(folder_conflict(&later_dev, std::slice::from_ref(&dev)).is_some());
        assert!(folder_conflict(&dev, std::slice::from_ref(&later_dev)).is_none());
        // The parent is refused even though it is older; what it holds is free.
        let msg = folder_conflict(&parent, std::slice::from_ref(&dev)).unwrap();
        assert!(
            msg.contains("spec.sideRepo.path") && msg.contains("ws/1"),
            "{msg}"
        );
        assert!(folder_conflict(&dev, std::slice::from_ref(&parent)).is_none());
        assert!(folder_conflict(&inside, std::slice::from_ref(&dev)).is_none());
        assert!(folder_conflict(&dev, &[claim("environments/prod", 0)]).is_none());
    }
}
