//! The pull-request text built from the commits a proposal carries (pure).

use std::collections::BTreeSet;

/// How a file differs between the target branch and the proposal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileChange {
    Added,
    Modified,
    Removed,
}

/// Everything a pull request proposes, for its title and body.
#[derive(Clone, Debug, Default)]
pub struct Proposal {
    pub base: String,
    pub files: Vec<(FileChange, String)>,
    pub components: BTreeSet<String>,
    pub environments: BTreeSet<String>,
    /// Rendered messages of the commits on the branch, oldest first.
    pub commits: Vec<String>,
}

impl Proposal {
    pub fn title(&self) -> String {
        let envs: Vec<&str> = self.environments.iter().map(String::as_str).collect();
        let what = if envs.is_empty() {
            "the side repository".to_string()
        } else if envs.len() <= 3 {
            envs.join(", ")
        } else {
            format!("{} environments", envs.len())
        };
        format!("quayside: update pull credentials for {what}")
    }

    pub fn body(&self) -> String {
        let mut b = format!(
            "quayside proposes these changes to `{}`. Secret values are sealed (SOPS + age): \
             review the file list, the readable metadata and the commit messages; \
             `sops --decrypt` with an environment's age key shows the plaintext.\n",
            self.base
        );
        let list = |set: &BTreeSet<String>| {
            set.iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.components.is_empty() {
            b.push_str(&format!("\n**Components:** {}\n", list(&self.components)));
        }
        if !self.environments.is_empty() {
            b.push_str(&format!(
                "\n**Environments:** {}\n",
                list(&self.environments)
            ));
        }
        b.push_str("\n### Changed files\n\n");
        if self.files.is_empty() {
            b.push_str("(none)\n");
        }
        for (change, path) in &self.files {
            let c = match change {
                FileChange::Added => "added",
                FileChange::Modified => "modified",
                FileChange::Removed => "removed",
            };
            b.push_str(&format!("- {c}: `{path}`\n"));
        }
        if !self.commits.is_empty() {
            b.push_str("\n### Passes\n");
            for m in &self.commits {
                let summary = m.lines().next().unwrap_or_default();
                b.push_str(&format!("\n- {summary}"));
            }
            b.push('\n');
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proposal_lists_files() {
        let p = Proposal {
            base: "main".into(),
            files: vec![(
                FileChange::Added,
                "environments/dev/kustomization.yaml".into(),
            )],
            environments: ["dev".to_string()].into(),
            ..Default::default()
        };
        assert_eq!(p.title(), "quayside: update pull credentials for dev");
        assert!(
            p.body()
                .contains("- added: `environments/dev/kustomization.yaml`")
        );
    }
}
