//! quayside status: a workspace at a glance. Each Component with the
//! credentials generation each Environment holds, each Environment with
//! its target and last side-repo commit, and for both Ready and, when not
//! Ready, why (the condition's reason and message).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use quayside::api::{Component, Environment};

use super::connect::{self, KubeArgs};

/// Show Components and Environments, their delivery and readiness.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The workspace (namespace) to show; default: the context's namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Show every workspace.
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    pub all_namespaces: bool,
    #[command(flatten)]
    pub kube: KubeArgs,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (client, default_ns) = connect::client(&args.kube).await?;
    let (components, environments): (Api<Component>, Api<Environment>) = if args.all_namespaces {
        (Api::all(client.clone()), Api::all(client))
    } else {
        let ns = args.namespace.unwrap_or(default_ns);
        (
            Api::namespaced(client.clone(), &ns),
            Api::namespaced(client, &ns),
        )
    };
    let lp = ListParams::default();
    let components = components.list(&lp).await?.items;
    let environments = environments.list(&lp).await?.items;
    print!("{}", render(&components, &environments));
    Ok(())
}

/// The report, one section per namespace (pure, for tests).
pub fn render(components: &[Component], environments: &[Environment]) -> String {
    let mut by_ns: BTreeMap<String, (Vec<&Component>, Vec<&Environment>)> = BTreeMap::new();
    for c in components {
        by_ns
            .entry(c.namespace().unwrap_or_default())
            .or_default()
            .0
            .push(c);
    }
    for e in environments {
        by_ns
            .entry(e.namespace().unwrap_or_default())
            .or_default()
            .1
            .push(e);
    }
    if by_ns.is_empty() {
        return "No Components or Environments.\n".to_string();
    }
    let mut out = String::new();
    for (ns, (mut comps, mut envs)) in by_ns {
        comps.sort_by_key(|c| c.name_any());
        envs.sort_by_key(|e| e.name_any());
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("Workspace {ns}\n"));
        if !comps.is_empty() {
            out.push_str(&components_table(&comps));
        }
        if !envs.is_empty() {
            out.push_str(&environments_table(&envs));
        }
    }
    out
}

fn components_table(comps: &[&Component]) -> String {
    let mut rows = vec![row(&[
        "COMPONENT",
        "READY",
        "REASON",
        "GENERATION",
        "DELIVERED",
        "IMAGE",
    ])];
    let mut why = Vec::new();
    for c in comps {
        let status = c.status.clone().unwrap_or_default();
        let (ready, reason) = ready(&status.conditions, &c.name_any(), &mut why);
        let delivered: Vec<String> = status
            .environments
            .iter()
            .map(|d| {
                let behind = if d.generation < status.credentials_generation {
                    " (behind)"
                } else {
                    ""
                };
                format!("{}={}{behind}", d.name, d.generation)
            })
            .collect();
        rows.push(vec![
            c.name_any(),
            ready,
            reason,
            status.credentials_generation.to_string(),
            dash(delivered.join(", ")),
            dash(status.image.unwrap_or_default()),
        ]);
    }
    table(&rows) + &why.concat()
}

fn environments_table(envs: &[&Environment]) -> String {
    let mut rows = vec![row(&[
        "ENVIRONMENT",
        "READY",
        "REASON",
        "TARGET",
        "SERVICEACCOUNT",
        "COMMIT",
    ])];
    let mut why = Vec::new();
    for e in envs {
        let status = e.status.clone().unwrap_or_default();
        let (ready, reason) = ready(&status.conditions, &e.name_any(), &mut why);
        let target = match &e.spec.target.cluster_credentials_secret {
            Some(secret) => format!("{} (cluster of Secret {secret})", e.spec.target.namespace),
            None => e.spec.target.namespace.clone(),
        };
        rows.push(vec![
            e.name_any(),
            ready,
            reason,
            target,
            dash(status.linked_service_account.unwrap_or_default()),
            dash(
                status
                    .commit
                    .map(|c| c.chars().take(12).collect())
                    .unwrap_or_default(),
            ),
        ]);
    }
    table(&rows) + &why.concat()
}

/// The Ready condition's status and reason; when it is not True, a line
/// with its message (the why) is added to `why`.
fn ready(conditions: &[Condition], name: &str, why: &mut Vec<String>) -> (String, String) {
    match conditions.iter().find(|c| c.type_ == "Ready") {
        None => {
            why.push(format!(
                "  {name}: not reconciled yet (no Ready condition): is the controller running?\n"
            ));
            ("Unknown".into(), "-".into())
        }
        Some(c) => {
            if c.status != "True" {
                why.push(format!("  {name}: {}\n", one_line(&c.message)));
            }
            (c.status.clone(), dash(c.reason.clone()))
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn dash(s: String) -> String {
    if s.is_empty() { "-".into() } else { s }
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|s| s.to_string()).collect()
}

/// Columns padded to their widest cell, as kubectl prints them.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(ns: &str, name: &str, status: serde_json::Value) -> Component {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "quayside.dev/v1alpha1", "kind": "Component",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"source": {"git": {"url": "https://git.example/a"}}},
            "status": status
        }))
        .unwrap()
    }

    fn cond(status: &str, reason: &str, message: &str) -> serde_json::Value {
        serde_json::json!([{"type": "Ready", "status": status, "reason": reason,
            "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z"}])
    }

    #[test]
    fn generations_behind_and_the_why_of_not_ready_are_shown() {
        let a = component(
            "team-a",
            "api",
            serde_json::json!({
                "credentialsGeneration": 3, "image": "quay.io/o/team-a/api",
                "environments": [{"name": "dev", "generation": 3}, {"name": "prod", "generation": 2}],
                "conditions": cond("False", "Propagating", "waiting for\n prod")
            }),
        );
        let b = component("team-a", "web", serde_json::json!({}));
        let out = render(&[b, a], &[]);
        assert!(out.starts_with("Workspace team-a\nCOMPONENT"), "{out}");
        assert!(out.contains("dev=3, prod=2 (behind)"), "{out}");
        assert!(out.contains("  api: waiting for prod\n"), "{out}");
        assert!(out.contains("  web: not reconciled yet"), "{out}");
        let api = out.lines().position(|l| l.starts_with("api ")).unwrap();
        let web = out.lines().position(|l| l.starts_with("web ")).unwrap();
        assert!(api < web, "sorted by name: {out}");
        assert_eq!(render(&[], &[]), "No Components or Environments.\n");
    }
}
