//! Folders known to be what their inputs render: an Environment pass with
//! the same inputs over the same folder (same tree at the tip) skips
//! rendering, which opens every sealed file of the folder to reuse its
//! data key. That is most of a no-op heartbeat's CPU. In memory only: a
//! restart renders each folder once more.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

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
