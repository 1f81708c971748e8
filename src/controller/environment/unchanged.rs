//! Folders known to be what their inputs render: an Environment pass with
//! the same inputs over the same folder (same tree at the tip) skips
//! rendering, which opens every sealed file of the folder to reuse its
//! data key. That is most of a no-op heartbeat's CPU. In memory only: a
//! restart renders each folder once more.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use crate::gitops::SideRepo;
use crate::plan::side_path;
use crate::render::{ComponentInput, EnvironmentInput, KustomizeFlavor};

/// Per Environment (uid): the fingerprint of its inputs and the folder's
/// tree id at the tip when a pass found nothing to change.
#[derive(Default)]
pub struct UnchangedFolders(Mutex<HashMap<String, (u64, String)>>);

impl UnchangedFolders {
    /// Whether the folder is known to hold what `inputs` render.
    pub fn holds(&self, uid: &str, inputs: u64, tree: Option<&str>) -> bool {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        tree.is_some_and(|t| map.get(uid).is_some_and(|(i, k)| *i == inputs && k == t))
    }

    /// A pass rendered `inputs` over `tree` and changed nothing.
    pub fn record(&self, uid: &str, inputs: u64, tree: String) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(uid.to_string(), (inputs, tree));
    }

    /// Forget a deleted Environment.
    pub fn forget(&self, uid: &str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(uid);
    }
}

/// One pass's use of [`UnchangedFolders`]: [`Check::skip`] inside the
/// side-repository pass, [`Check::settle`] after it (clones share what the
/// first saw).
#[derive(Clone)]
pub struct Check {
    memo: Arc<UnchangedFolders>,
    uid: String,
    inputs: u64,
    /// Off in pull-request mode: a proposal's state lives on the forge.
    enabled: bool,
    seen: Arc<Mutex<Option<String>>>,
}

impl Check {
    pub fn new(memo: Arc<UnchangedFolders>, uid: String, inputs: u64, enabled: bool) -> Check {
        Check {
            memo,
            uid,
            inputs,
            enabled,
            seen: Arc::default(),
        }
    }

    /// Whether the render can be skipped: the folder and its workspace's
    /// folder (a given-up folder that comes back, say by a revert, must be
    /// seen) are as a pass with these inputs left them.
    pub fn skip(&self, side: &SideRepo, env: &EnvironmentInput) -> bool {
        let workspace_folder = format!("{}/{}", side_path::ROOT, env.workspace);
        let tree = side
            .tree_id(&env.folder)
            .zip(side.tree_id(&workspace_folder))
            .map(|(a, b)| format!("{a}:{b}"));
        if self.enabled && self.memo.holds(&self.uid, self.inputs, tree.as_deref()) {
            return true;
        }
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = tree;
        false
    }

    /// After the pass: when it changed nothing, the folder as it was is
    /// what these inputs render, and the next pass may skip.
    pub fn settle(&self, changed: bool) {
        let tree = self.seen.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let (false, Some(tree)) = (changed, tree) {
            self.memo.record(&self.uid, self.inputs, tree);
        }
    }
}

/// What a render depends on, credentials aside: each Component's
/// generation stands for its credentials (a new token is a new generation).
/// In memory only, never written anywhere.
pub fn fingerprint(
    env: &EnvironmentInput,
    components: &[ComponentInput],
    given_up: &[String],
    flavor: KustomizeFlavor,
) -> u64 {
    let mut h = DefaultHasher::new();
    (
        &env.name,
        &env.workspace,
        &env.target_namespace,
        &env.folder,
        &env.service_account,
    )
        .hash(&mut h);
    for r in &env.recipients {
        r.to_string().hash(&mut h);
    }
    for c in components {
        (&c.name, &c.image, c.generation).hash(&mut h);
    }
    given_up.hash(&mut h);
    format!("{flavor:?}").hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_known_only_with_the_same_inputs_and_tree() {
        let memo = UnchangedFolders::default();
        assert!(!memo.holds("u", 1, Some("t1")));
        memo.record("u", 1, "t1".into());
        assert!(memo.holds("u", 1, Some("t1")));
        assert!(!memo.holds("u", 2, Some("t1")), "other inputs");
        assert!(!memo.holds("u", 1, Some("t2")), "the folder changed");
        assert!(!memo.holds("u", 1, None), "the folder is gone");
        memo.forget("u");
        assert!(!memo.holds("u", 1, Some("t1")));
    }
}
