//! Linking pull Secrets to a ServiceAccount without disturbing anyone else's.
//!
//! `imagePullSecrets` is an atomic list: whoever writes it replaces all of it.
//! So the controller reads, merges and writes back with the resourceVersion
//! as a precondition; this module is the merge.

use std::collections::BTreeSet;

/// The new `imagePullSecrets` names, or `None` when nothing has to change.
///
/// - `existing`: the list as read, in order.
/// - `desired`: our Secrets that must be linked here.
/// - `ours`: tells whether a name is one of our Secrets (linked by us
///   earlier); those not desired any more are removed. Everyone else's
///   entries are kept, in their order; ours are appended in sorted order.
pub fn plan_link(
    existing: &[String],
    desired: &BTreeSet<String>,
    ours: impl Fn(&str) -> bool,
) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::with_capacity(existing.len() + desired.len());
    let mut seen = BTreeSet::new();
    for name in existing {
        if !seen.insert(name.clone()) {
            continue; // a duplicate entry is dropped: it would be rejected on apply anyway
        }
        if desired.contains(name) || !ours(name) {
            out.push(name.clone());
        }
    }
    for name in desired {
        if !seen.contains(name) {
            out.push(name.clone());
        }
    }
    (out != existing).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }
    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|x| x.to_string()).collect()
    }
    fn ours(n: &str) -> bool {
        n.ends_with("-pull")
    }

    #[test]
    fn appends_ours_and_keeps_theirs() {
        let got = plan_link(&s(&["theirs"]), &set(&["b-pull", "a-pull"]), ours).unwrap();
        assert_eq!(got, s(&["theirs", "a-pull", "b-pull"]));
    }

    #[test]
    fn nothing_to_do_when_already_linked() {
        assert_eq!(
            plan_link(&s(&["a-pull", "theirs"]), &set(&["a-pull"]), ours),
            None
        );
    }

    #[test]
    fn removes_only_our_stale_entries() {
        let got = plan_link(
            &s(&["old-pull", "theirs", "a-pull"]),
            &set(&["a-pull"]),
            ours,
        )
        .unwrap();
        assert_eq!(got, s(&["theirs", "a-pull"]));
    }

    #[test]
    fn unlink_everything_of_ours() {
        let got = plan_link(&s(&["a-pull", "theirs"]), &set(&[]), ours).unwrap();
        assert_eq!(got, s(&["theirs"]));
    }

    #[test]
    fn duplicates_are_collapsed() {
        let got = plan_link(&s(&["theirs", "theirs"]), &set(&[]), ours).unwrap();
        assert_eq!(got, s(&["theirs"]));
    }
}
