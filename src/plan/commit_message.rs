//! Commit messages with trailers that tie a commit to the objects it is
//! for (pure): what a pass changed and why, as git and forges show it.

use std::collections::BTreeSet;

/// What a pass changed and why. Rendered as the commit message, with one
/// trailer line per component and environment so `git log --grep` and the
/// forge's UI tie the commit back to the Kubernetes objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitMessage {
    /// First line, e.g. `Rotate pull credentials of api (generation 3)`.
    pub summary: String,
    /// Free text: why this pass ran.
    pub body: String,
    pub components: Vec<String>,
    pub environments: Vec<String>,
    /// The credentials generation delivered, when one applies.
    pub generation: Option<i64>,
}

pub const TRAILER_COMPONENT: &str = "Quayside-Component";
pub const TRAILER_ENVIRONMENT: &str = "Quayside-Environment";
pub const TRAILER_GENERATION: &str = "Quayside-Generation";

impl CommitMessage {
    /// The full message: summary, blank line, body, blank line, trailers.
    /// Trailer values are sorted and de-duplicated so equal passes produce
    /// equal messages.
    pub fn render(&self) -> String {
        let summary = one_line(&self.summary);
        let mut out = if summary.is_empty() {
            "quayside: update side repository".to_string()
        } else {
            summary
        };
        out.push('\n');
        let body = self.body.trim();
        if !body.is_empty() {
            out.push('\n');
            out.push_str(body);
            out.push('\n');
        }
        let trailers = self.trailers();
        if !trailers.is_empty() {
            out.push('\n');
            for (k, v) in trailers {
                out.push_str(&format!("{k}: {v}\n"));
            }
        }
        out
    }

    fn trailers(&self) -> Vec<(&'static str, String)> {
        let mut t = Vec::new();
        let comps: BTreeSet<String> = self.components.iter().map(|c| one_line(c)).collect();
        let envs: BTreeSet<String> = self.environments.iter().map(|e| one_line(e)).collect();
        t.extend(comps.into_iter().map(|c| (TRAILER_COMPONENT, c)));
        t.extend(envs.into_iter().map(|e| (TRAILER_ENVIRONMENT, e)));
        if let Some(g) = self.generation {
            t.push((TRAILER_GENERATION, g.to_string()));
        }
        t
    }
}

/// One message for a commit that carries several passes (group commit):
/// one pass keeps its own; several get a summary naming what they share,
/// each pass's summary and body in turn, and every trailer of every pass,
/// so `git log --grep` still finds the commit for each Component.
pub fn combine(messages: Vec<CommitMessage>) -> CommitMessage {
    if messages.len() <= 1 {
        return messages.into_iter().next().unwrap_or_default();
    }
    let components: BTreeSet<String> = messages
        .iter()
        .flat_map(|m| m.components.iter().map(|c| one_line(c)))
        .collect();
    let environments: BTreeSet<String> = messages
        .iter()
        .flat_map(|m| m.environments.iter().map(|e| one_line(e)))
        .collect();
    let first = messages[0].generation;
    let generation = first.filter(|_| messages.iter().all(|m| m.generation == first));
    let what = match components.len() {
        0 => "folders".to_string(),
        1..=3 => format!(
            "pull credentials of {}",
            components.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        n => format!("pull credentials of {n} Components"),
    };
    let summary = format!(
        "quayside: {what} in {} Environments ({} passes in one commit)",
        environments.len(),
        messages.len()
    );
    let body = messages
        .iter()
        .map(|m| format!("* {}\n{}", one_line(&m.summary), m.body.trim()))
        .collect::<Vec<_>>()
        .join("\n\n");
    CommitMessage {
        summary,
        body,
        components: components.into_iter().collect(),
        environments: environments.into_iter().collect(),
        generation,
    }
}

/// The trailer values found in a commit message: (components, environments).
pub fn parse_trailers(message: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut comps = BTreeSet::new();
    let mut envs = BTreeSet::new();
    for line in message.lines() {
        if let Some(v) = line.strip_prefix(&format!("{TRAILER_COMPONENT}: ")) {
            comps.insert(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix(&format!("{TRAILER_ENVIRONMENT}: ")) {
            envs.insert(v.trim().to_string());
        }
    }
    (comps, envs)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_summary_body_and_sorted_trailers() {
        let m = CommitMessage {
            summary: "Rotate  api\n(now)".into(),
            body: "Requested by the annotation.\n".into(),
            components: vec!["web".into(), "api".into(), "api".into()],
            environments: vec!["dev".into()],
            generation: Some(3),
        };
        assert_eq!(
            m.render(),
            "Rotate api (now)\n\nRequested by the annotation.\n\n\
             Quayside-Component: api\nQuayside-Component: web\n\
             Quayside-Environment: dev\nQuayside-Generation: 3\n"
        );
        let (c, e) = parse_trailers(&m.render());
        assert_eq!(c.into_iter().collect::<Vec<_>>(), vec!["api", "web"]);
        assert_eq!(e.into_iter().collect::<Vec<_>>(), vec!["dev"]);
    }

    #[test]
    fn empty_message_still_has_a_summary() {
        assert_eq!(
            CommitMessage::default().render(),
            "quayside: update side repository\n"
        );
    }

    fn pass(component: &str, env: &str, generation: i64) -> CommitMessage {
        CommitMessage {
            summary: format!("quayside: {env}: rotate pull credentials of {component}"),
            body: format!("Environment ws/{env}."),
            components: vec![component.into()],
            environments: vec![env.into()],
            generation: Some(generation),
        }
    }

    #[test]
    fn one_pass_keeps_its_message() {
        let m = pass("api", "dev", 2);
        assert_eq!(combine(vec![m.clone()]), m);
        assert_eq!(combine(vec![]), CommitMessage::default());
    }

    #[test]
    fn several_passes_share_one_message_with_every_trailer() {
        let m = combine(vec![pass("api", "dev", 3), pass("api", "prod", 3)]);
        assert_eq!(
            m.summary,
            "quayside: pull credentials of api in 2 Environments (2 passes in one commit)"
        );
        let text = m.render();
        assert!(
            text.contains("* quayside: dev: rotate pull credentials of api\nEnvironment ws/dev."),
            "{text}"
        );
        assert!(text.contains("* quayside: prod: rotate"), "{text}");
        let (c, e) = parse_trailers(&text);
        assert_eq!(c.into_iter().collect::<Vec<_>>(), vec!["api"]);
        assert_eq!(e.into_iter().collect::<Vec<_>>(), vec!["dev", "prod"]);
        assert!(text.ends_with("Quayside-Generation: 3\n"), "{text}");
    }

    #[test]
    fn different_generations_name_none_and_many_components_are_counted() {
        let m = combine(
            ["a", "b", "c", "d"]
                .iter()
                .enumerate()
                .map(|(i, c)| pass(c, "dev", i as i64))
                .collect(),
        );
        assert_eq!(m.generation, None);
        assert!(
            m.summary
                .contains("pull credentials of 4 Components in 1 Environments"),
            "{}",
            m.summary
        );
    }
}
