//! Building and editing trees directly in the object database: a pass never
//! needs a checkout, so it is fast and cannot trip over a dirty work tree.

use std::collections::BTreeMap;

use git2::{ObjectType, Oid, Repository, Tree};

pub(crate) const MODE_BLOB: i32 = 0o100644;
pub(crate) const MODE_TREE: i32 = 0o040000;

/// Set (`Some`) or remove (`None`) the entry at `path` below `root`, creating
/// or dropping intermediate trees. Returns the new root, `None` when empty.
pub(crate) fn edit(
    repo: &Repository,
    root: Option<&Tree<'_>>,
    path: &[&str],
    entry: Option<(Oid, i32)>,
) -> Result<Option<Oid>, git2::Error> {
    let Some((head, rest)) = path.split_first() else {
        return Ok(entry.map(|(oid, _)| oid));
    };
    let mut b = repo.treebuilder(root)?;
    let replacement = if rest.is_empty() {
        entry
    } else {
        let sub = match b.get(head)? {
            Some(e) if e.kind() == Some(ObjectType::Tree) => Some(repo.find_tree(e.id())?),
            _ => None,
        };
        edit(repo, sub.as_ref(), rest, entry)?.map(|oid| (oid, MODE_TREE))
    };
    match replacement {
        Some((oid, mode)) => {
            b.insert(head, oid, mode)?;
        }
        None => {
            if b.get(head)?.is_some() {
                b.remove(head)?;
            }
        }
    }
    if b.is_empty() {
        Ok(None)
    } else {
        b.write().map(Some)
    }
}

/// A tree from `(path relative to it, blob)` pairs. `None` when there are none.
pub(crate) fn build(
    repo: &Repository,
    files: &[(Vec<&str>, Oid)],
) -> Result<Option<Oid>, git2::Error> {
    #[derive(Default)]
    struct Node<'a> {
        blobs: BTreeMap<&'a str, Oid>,
        dirs: BTreeMap<&'a str, Node<'a>>,
    }
    fn write(repo: &Repository, n: &Node<'_>) -> Result<Option<Oid>, git2::Error> {
        let mut b = repo.treebuilder(None)?;
        for (name, sub) in &n.dirs {
            if let Some(oid) = write(repo, sub)? {
                b.insert(name, oid, MODE_TREE)?;
            }
        }
        for (name, oid) in &n.blobs {
            b.insert(name, *oid, MODE_BLOB)?;
        }
        if b.is_empty() {
            Ok(None)
        } else {
            b.write().map(Some)
        }
    }
    let mut root = Node::default();
    for (path, oid) in files {
        let Some((name, dirs)) = path.split_last() else {
            continue;
        };
        let mut n = &mut root;
        for d in dirs {
            n = n.dirs.entry(d).or_default();
        }
        n.blobs.insert(name, *oid);
    }
    write(repo, &root)
}

/// The id of the empty tree (a commit needs a tree even when nothing is left).
pub(crate) fn empty(repo: &Repository) -> Result<Oid, git2::Error> {
    repo.treebuilder(None)?.write()
}

/// Every blob below `tree`, as (path, blob id), for comparisons.
pub(crate) fn files(
    repo: &Repository,
    tree: Option<Oid>,
) -> Result<BTreeMap<String, Oid>, git2::Error> {
    let mut out = BTreeMap::new();
    if let Some(t) = tree {
        let t = repo.find_tree(t)?;
        t.walk(git2::TreeWalkMode::PreOrder, |dir, e| {
            if e.kind() == Some(ObjectType::Blob) {
                out.insert(format!("{dir}{}", e.name().unwrap_or_default()), e.id());
            }
            git2::TreeWalkResult::Ok
        })?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_sets_and_removes_nested_paths() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let a = repo.blob(b"a").unwrap();
        let b = repo.blob(b"b").unwrap();
        let sub = build(&repo, &[(vec!["x", "f"], a), (vec!["g"], b)])
            .unwrap()
            .unwrap();
        let root = edit(&repo, None, &["env", "dev"], Some((sub, MODE_TREE)))
            .unwrap()
            .unwrap();
        let root = edit(
            &repo,
            Some(&repo.find_tree(root).unwrap()),
            &["top"],
            Some((a, MODE_BLOB)),
        )
        .unwrap()
        .unwrap();
        let all = files(&repo, Some(root)).unwrap();
        assert_eq!(
            all.keys().collect::<Vec<_>>(),
            vec!["env/dev/g", "env/dev/x/f", "top"]
        );
        let root = edit(
            &repo,
            Some(&repo.find_tree(root).unwrap()),
            &["env", "dev"],
            None,
        )
        .unwrap()
        .unwrap();
        let all = files(&repo, Some(root)).unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), vec!["top"]);
        let none = edit(&repo, Some(&repo.find_tree(root).unwrap()), &["top"], None).unwrap();
        assert_eq!(none, None);
    }
}
