//! What an Environment pass's side-repo commit says: which Components' sealed
//! pull Secrets it adds, rotates, re-seals or removes, and why (pure).

use std::collections::BTreeMap;

use super::commit_message::CommitMessage;
use crate::vocabulary::{
    ANNOTATION_COMPONENT_NAME, ANNOTATION_GENERATION, LABEL_COMPONENT, component_of_pull_secret,
};

/// How one Component's sealed file changes in a pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new file: the Component now deploys to this Environment.
    Added,
    /// New credentials: the generation moved on from `from`.
    Rotated { from: i64 },
    /// Same credentials, sealed again (recipients, labels or image changed).
    Resealed,
    /// The file goes: the Component no longer deploys here.
    Removed,
}

/// One Component's change, with the credentials generation it delivers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentChange {
    pub component: String,
    pub change: Change,
    /// The generation now delivered (`None` for a removal).
    pub generation: Option<i64>,
}

/// A sealed file the pass renders for a Component.
pub struct RenderedSecret<'a> {
    pub component: &'a str,
    pub path: &'a str,
    pub contents: &'a [u8],
    pub generation: i64,
}

/// Compare the rendered sealed files with the ones at the tip of the
/// Environment's `secrets/` folder (`previous`: path → contents). Files equal
/// byte for byte are not changes. Sorted by Component.
pub fn component_changes(
    rendered: &[RenderedSecret<'_>],
    previous: &BTreeMap<String, String>,
) -> Vec<ComponentChange> {
    let mut out = Vec::new();
    for r in rendered {
        let change = match previous.get(r.path) {
            None => Change::Added,
            Some(old) if old.as_bytes() == r.contents => continue,
            Some(old) => match sealed_metadata(old).1 {
                Some(from) if from != r.generation => Change::Rotated { from },
                _ => Change::Resealed,
            },
        };
        out.push(ComponentChange {
            component: r.component.to_string(),
            change,
            generation: Some(r.generation),
        });
    }
    for (path, old) in previous {
        if rendered.iter().any(|r| r.path == path) {
            continue;
        }
        let name = sealed_metadata(old).0.unwrap_or_else(|| {
            // Not readable as ours: name it after the file.
            let file = path.rsplit('/').next().unwrap_or(path);
            component_of_pull_secret(file.trim_end_matches(".sops.yaml")).to_string()
        });
        out.push(ComponentChange {
            component: name,
            change: Change::Removed,
            generation: None,
        });
    }
    out.sort_by(|a, b| a.component.cmp(&b.component));
    out
}

/// The Component label and generation annotation of a sealed file (both are
/// plaintext metadata in a sops file).
fn sealed_metadata(text: &str) -> (Option<String>, Option<i64>) {
    let Ok(doc) = serde_norway::from_str::<serde_norway::Value>(text) else {
        return (None, None);
    };
    let meta = &doc["metadata"];
    // A long name's label value is shortened; its annotation is whole.
    let component = meta["annotations"][ANNOTATION_COMPONENT_NAME]
        .as_str()
        .or(meta["labels"][LABEL_COMPONENT].as_str())
        .map(str::to_string);
    let generation = meta["annotations"][ANNOTATION_GENERATION]
        .as_str()
        .and_then(|g| g.parse().ok());
    (component, generation)
}

/// Where an Environment's folder goes and whose it is, for the message.
pub struct EnvironmentRef<'a> {
    pub workspace: &'a str,
    pub name: &'a str,
    pub target_namespace: &'a str,
}

/// The commit message of an Environment pass: a summary naming what changed,
/// one body line per Component, and trailers for exactly the Components whose
/// sealed file changed, so `git log --grep 'Quayside-Component: api'` lists
/// the commits that touched api's credentials and no others.
pub fn environment_commit_message(
    env: &EnvironmentRef<'_>,
    changes: &[ComponentChange],
) -> CommitMessage {
    let summary = match changes {
        [] => format!("quayside: update environment {}", env.name),
        [one] => format!(
            "quayside: {}: {} pull credentials of {}{}",
            env.name,
            verb(&one.change),
            one.component,
            one.generation
                .map(|g| format!(" (generation {g})"))
                .unwrap_or_default()
        ),
        many => {
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for c in many {
                *counts.entry(past(&c.change)).or_default() += 1;
            }
            let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            format!(
                "quayside: {}: pull credentials of {} Components ({})",
                env.name,
                many.len(),
                parts.join(", ")
            )
        }
    };
    let mut body = format!(
        "Environment {}/{} (target namespace {}).",
        env.workspace, env.name, env.target_namespace
    );
    if changes.is_empty() {
        body.push_str("\nNo pull Secret changed; the folder's other files were updated.");
    }
    for c in changes {
        body.push_str(&format!("\n- {}: {}", c.component, describe(c)));
    }
    CommitMessage {
        summary,
        body,
        components: changes.iter().map(|c| c.component.clone()).collect(),
        environments: vec![env.name.to_string()],
        generation: changes.iter().filter_map(|c| c.generation).max(),
    }
}

fn verb(c: &Change) -> &'static str {
    match c {
        Change::Added => "add",
        Change::Rotated { .. } => "rotate",
        Change::Resealed => "re-seal",
        Change::Removed => "remove",
    }
}

fn past(c: &Change) -> &'static str {
    match c {
        Change::Added => "added",
        Change::Rotated { .. } => "rotated",
        Change::Resealed => "re-sealed",
        Change::Removed => "removed",
    }
}

fn describe(c: &ComponentChange) -> String {
    match (&c.change, c.generation) {
        (Change::Added, Some(g)) => format!("added, credentials generation {g}"),
        (Change::Rotated { from }, Some(g)) => {
            format!("rotated, credentials generation {from} → {g}")
        }
        (Change::Resealed, Some(g)) => {
            format!("re-sealed (recipients, labels or image changed), credentials generation {g}")
        }
        (Change::Removed, _) => "removed (no longer deployed here)".to_string(),
        (other, None) => past(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(component: &str, generation: i64, value: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n    name: {component}-pull\n    labels:\n        {LABEL_COMPONENT}: {component}\n    annotations:\n        {ANNOTATION_GENERATION}: \"{generation}\"\nstringData:\n    .dockerconfigjson: ENC[{value}]\n"
        )
    }

    const ENV: EnvironmentRef<'static> = EnvironmentRef {
        workspace: "team-a",
        name: "dev",
        target_namespace: "team-a-dev",
    };

    #[test]
    fn only_files_that_differ_are_changes_and_each_says_how() {
        let previous = BTreeMap::from([
            (
                "e/secrets/api-pull.sops.yaml".to_string(),
                sealed("api", 2, "a"),
            ),
            (
                "e/secrets/db-pull.sops.yaml".to_string(),
                sealed("db", 4, "d"),
            ),
            (
                "e/secrets/old-pull.sops.yaml".to_string(),
                sealed("old", 1, "o"),
            ),
            (
                "e/secrets/web-pull.sops.yaml".to_string(),
                sealed("web", 1, "w"),
            ),
        ]);
        let (api, db, new, web) = (
            sealed("api", 3, "a2"),
            sealed("db", 4, "d2"),
            sealed("new", 1, "n"),
            sealed("web", 1, "w"),
        );
        let rendered = [
            RenderedSecret {
                component: "api",
                path: "e/secrets/api-pull.sops.yaml",
                contents: api.as_bytes(),
                generation: 3,
            },
            RenderedSecret {
                component: "db",
                path: "e/secrets/db-pull.sops.yaml",
                contents: db.as_bytes(),
                generation: 4,
            },
            RenderedSecret {
                component: "new",
                path: "e/secrets/new-pull.sops.yaml",
                contents: new.as_bytes(),
                generation: 1,
            },
            RenderedSecret {
                component: "web",
                path: "e/secrets/web-pull.sops.yaml",
                contents: web.as_bytes(),
                generation: 1,
            },
        ];
        let changes = component_changes(&rendered, &previous);
        let got: Vec<(&str, &Change)> = changes
            .iter()
            .map(|c| (c.component.as_str(), &c.change))
            .collect();
        assert_eq!(
            got,
            [
                ("api", &Change::Rotated { from: 2 }),
                ("db", &Change::Resealed),
                ("new", &Change::Added),
                ("old", &Change::Removed),
            ]
        );

        let m = environment_commit_message(&ENV, &changes);
        assert_eq!(
            m.summary,
            "quayside: dev: pull credentials of 4 Components (1 added, 1 re-sealed, 1 removed, 1 rotated)"
        );
        assert_eq!(
            m.components,
            ["api", "db", "new", "old"],
            "web did not change"
        );
        assert_eq!(m.generation, Some(4));
        assert!(
            m.body
                .contains("- api: rotated, credentials generation 2 → 3"),
            "{}",
            m.body
        );
        assert!(m.body.contains("- old: removed"), "{}", m.body);
    }

    #[test]
    fn one_change_is_named_in_the_summary_and_none_says_so() {
        let changes = [ComponentChange {
            component: "api".into(),
            change: Change::Rotated { from: 2 },
            generation: Some(3),
        }];
        let m = environment_commit_message(&ENV, &changes);
        assert_eq!(
            m.summary,
            "quayside: dev: rotate pull credentials of api (generation 3)"
        );
        assert_eq!(m.render().matches("Quayside-Component: ").count(), 1);

        let m = environment_commit_message(&ENV, &[]);
        assert_eq!(m.summary, "quayside: update environment dev");
        assert!(m.components.is_empty());
        assert_eq!(m.generation, None);
    }

    #[test]
    fn a_removed_file_that_is_not_ours_is_named_after_its_file() {
        let previous = BTreeMap::from([(
            "e/secrets/legacy-pull.sops.yaml".to_string(),
            "not: [yaml".to_string(),
        )]);
        let changes = component_changes(&[], &previous);
        assert_eq!(changes[0].component, "legacy");
        assert_eq!(changes[0].change, Change::Removed);
    }
}
