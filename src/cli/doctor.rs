//! quayside doctor: check a set-up before the first Component fails. It
//! takes `quayside run`'s flags and variables (so in the controller's Pod
//! it needs none) and checks, with calls that change nothing: the age key,
//! the Quay token's rights, the side repository's read and write access,
//! the CRDs, and the controller's RBAC. One line per check; the exit
//! status is 1 when one failed.

use std::fmt;

use anyhow::Context as _;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use kube::api::{Api, ListParams, PostParams};
use quayside::api::{Component, Environment};
use quayside::gitops::SideRepo;
use quayside::seal::Identity;

use super::run;

/// Check the configuration `quayside run` would use.
#[derive(clap::Args, Debug)]
// `run::Args` is a group named `Args` already.
#[group(skip)]
pub struct Args {
    #[command(flatten)]
    pub run: run::Args,
    /// Check the Kubernetes permissions of this user instead of your own,
    /// e.g. `system:serviceaccount:quayside-system:quayside-controller`
    /// (you need the right to impersonate it).
    #[arg(long = "as", value_name = "USER")]
    pub as_user: Option<String>,
}

/// A check's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Works, but something is worth a look.
    Warn,
    Fail,
    /// Not configured, so not checked.
    Skip,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        })
    }
}

/// One line of the report.
pub struct Check {
    pub verdict: Verdict,
    pub what: &'static str,
    pub detail: String,
}

fn check(verdict: Verdict, what: &'static str, detail: impl Into<String>) -> Check {
    Check {
        verdict,
        what,
        detail: detail.into(),
    }
}

/// Run every check, print one line each; true when none failed.
pub async fn run(args: Args) -> anyhow::Result<bool> {
    let mut checks = Report::default();
    let identity = age_key(&args.run, &mut checks);
    quay(&args.run, &mut checks).await;
    side_repo(&args.run, identity.as_ref(), &mut checks).await;
    match kube_client(&args).await {
        Ok(client) => {
            crds(&client, &mut checks).await;
            rbac(&client, &args.run, &mut checks).await;
        }
        Err(e) => checks.push(check(Verdict::Fail, "kubernetes", format!("{e:#}"))),
    }
    Ok(!checks.failed)
}

/// The report: each line printed as soon as its check is done (a server
/// that does not answer holds up only the lines after it).
#[derive(Default)]
pub struct Report {
    failed: bool,
}

impl Report {
    fn push(&mut self, c: Check) {
        println!("{:<4}  {}: {}", c.verdict, c.what, c.detail);
        self.failed |= c.verdict == Verdict::Fail;
    }
}

async fn kube_client(args: &Args) -> anyhow::Result<kube::Client> {
    let mut config = run::kube_config(&args.run).await?;
    if let Some(user) = &args.as_user {
        config.auth_info.impersonate = Some(user.clone());
    }
    Ok(kube::Client::try_from(config)?)
}

fn age_key(args: &run::Args, checks: &mut Report) -> Option<Identity> {
    let path = &args.age_identity_file;
    let parsed = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read {}", path.display()))
        .and_then(|text| {
            Identity::parse(&text).with_context(|| {
                format!(
                    "{} holds no age identity (AGE-SECRET-KEY-1…)",
                    path.display()
                )
            })
        });
    match parsed {
        Ok(id) => {
            checks.push(check(
                Verdict::Ok,
                "age key",
                format!(
                    "{} parses; its recipient is {}",
                    path.display(),
                    id.to_recipient()
                ),
            ));
            Some(id)
        }
        Err(e) => {
            checks.push(check(Verdict::Fail, "age key", format!("{e:#}")));
            None
        }
    }
}

/// A repository name no Component gets (theirs are `<namespace>/<name>`):
/// reading it is harmless and needs what reading any repository needs.
const REPOSITORY_PROBE: &str = "quayside-access-check";

async fn quay(args: &run::Args, checks: &mut Report) {
    let quay = match run::quay_client(args) {
        Ok(q) => q,
        Err(e) => return checks.push(check(Verdict::Fail, "quay", format!("{e:#}"))),
    };
    let org = quay.organization().to_string();
    checks.push(match quay.get_robot(run::ACCESS_PROBE).await {
        Ok(_) => check(
            Verdict::Ok,
            "quay robots",
            format!("organization {org} exists and the token administers its robots (org:admin)"),
        ),
        Err(e) => check(
            Verdict::Fail,
            "quay robots",
            format!("the token cannot administer the robots of organization {org} (it needs org:admin): {e}"),
        ),
    });
    checks.push(match quay.get_repository(REPOSITORY_PROBE).await {
        Ok(_) => check(
            Verdict::Ok,
            "quay repositories",
            format!("the token reads repositories of {org} (repo:read)"),
        ),
        Err(e) => check(
            Verdict::Fail,
            "quay repositories",
            format!("the token cannot read repositories of {org} (it needs repo:read): {e}"),
        ),
    });
    checks.push(check(
        Verdict::Skip,
        "quay repository creation",
        "not probed: Quay has no call that tests repo:create without creating a repository",
    ));
}

async fn side_repo(args: &run::Args, identity: Option<&Identity>, checks: &mut Report) {
    let mut cfg = match run::side_repo_config(args) {
        Ok(Some(cfg)) => cfg,
        Ok(None) => {
            return checks.push(check(
                Verdict::Skip,
                "side repository",
                "none configured (--side-repo-url): delivery to clusters only",
            ));
        }
        Err(e) => return checks.push(check(Verdict::Fail, "side repository", format!("{e:#}"))),
    };
    // A clone of its own, never the controller's working repository, beside
    // it: in the controller's Pod only that volume is writable.
    let name = cfg
        .workdir
        .file_name()
        .map_or("side-repo".into(), |n| n.to_string_lossy());
    let scratch = cfg
        .workdir
        .with_file_name(format!("{name}.doctor-{}", std::process::id()));
    cfg.workdir = scratch.clone();
    let (url, branch) = (cfg.url.clone(), cfg.branch.clone());
    let trust = match args
        .extra_ca_file
        .as_deref()
        .map(quayside::tls::ExtraCa::load)
        .transpose()
    {
        Ok(t) => t,
        Err(e) => return checks.push(check(Verdict::Fail, "side repository", e.to_string())),
    };
    let found = tokio::task::spawn_blocking(move || {
        let repo = SideRepo::open_trusting(cfg, trust)?;
        let push = repo.check_push_access();
        let forge = repo.check_forge_access();
        let sealed: Vec<(String, String)> = repo
            .paths_under(quayside::plan::side_path::ROOT)
            .into_iter()
            .filter(|p| p.ends_with(".sops.yaml"))
            .filter_map(|p| repo.read(&p).map(|text| (p, text)))
            .collect();
        Ok::<_, quayside::gitops::GitError>((push, forge, sealed))
    })
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    let (push, forge, sealed) = match found {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            return checks.push(check(Verdict::Fail, "side repository read", e.to_string()));
        }
        Err(e) => return checks.push(check(Verdict::Fail, "side repository read", e.to_string())),
    };
    checks.push(check(
        Verdict::Ok,
        "side repository read",
        format!(
            "{url} fetched (branch {branch}); {} sealed files under environments/",
            sealed.len()
        ),
    ));
    checks.push(match push {
        Ok(()) => check(
            Verdict::Ok,
            "side repository write",
            format!("{url} accepts a push from these credentials (negotiated, nothing sent)"),
        ),
        Err(e) => check(Verdict::Fail, "side repository write", e.to_string()),
    });
    let forge_api = args.forge_api_url.clone().unwrap_or_default();
    checks.push(match forge {
        None => check(
            Verdict::Skip,
            "side repository forge",
            "direct mode: no pull requests",
        ),
        Some(Ok(())) => check(
            Verdict::Ok,
            "side repository forge",
            format!("{forge_api} lists the side repository's pull requests with the forge token"),
        ),
        Some(Err(e)) => check(Verdict::Fail, "side repository forge", e.to_string()),
    });
    if let Some(id) = identity {
        checks.push(sealed_for(id, &sealed));
    }
}

/// Whether every sealed file in the side repository lists the key's
/// recipient: one that does not was sealed for another key (a replaced
/// key), and the controller cannot reuse its data key.
fn sealed_for(id: &Identity, sealed: &[(String, String)]) -> Check {
    let recipient = id.to_recipient();
    let foreign: Vec<&str> = sealed
        .iter()
        .filter(|(_, text)| {
            quayside::seal::inspect(text).map_or(true, |info| !info.recipients.contains(&recipient))
        })
        .map(|(p, _)| p.as_str())
        .collect();
    match foreign.first() {
        None => check(
            Verdict::Ok,
            "age key recipients",
            format!(
                "every sealed file ({}) lists the key's recipient",
                sealed.len()
            ),
        ),
        Some(first) => check(
            Verdict::Warn,
            "age key recipients",
            format!(
                "{} of {} sealed files do not list the key's recipient (first: {first}): sealed for another key, they are sealed afresh on their next pass",
                foreign.len(),
                sealed.len()
            ),
        ),
    }
}

async fn crds(client: &kube::Client, checks: &mut Report) {
    let lp = ListParams::default().limit(1);
    let served = (
        Api::<Component>::all(client.clone()).list(&lp).await,
        Api::<Environment>::all(client.clone()).list(&lp).await,
    );
    if let (Err(e), _) | (_, Err(e)) = served {
        let detail = match &e {
            kube::Error::Api(s) if s.code == 404 => {
                "not installed: apply deploy/crds/quayside.dev.yaml".to_string()
            }
            _ => format!("cannot list Components and Environments: {e}"),
        };
        return checks.push(check(Verdict::Fail, "crds", detail));
    }
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut stale = Vec::new();
    for ours in [Component::crd(), Environment::crd()] {
        let name = ours.metadata.name.clone().unwrap_or_default();
        match api.get(&name).await {
            Ok(theirs) if schemas(&theirs) != schemas(&ours) => stale.push(name),
            Ok(_) => {}
            Err(_) => {
                return checks.push(check(
                    Verdict::Ok,
                    "crds",
                    "Components and Environments are served (the CRDs are not readable here to compare with this release)",
                ));
            }
        }
    }
    checks.push(if stale.is_empty() {
        check(
            Verdict::Ok,
            "crds",
            "installed and the same as this release's",
        )
    } else {
        check(
            Verdict::Warn,
            "crds",
            format!(
                "{} differ from this release's: apply deploy/crds/quayside.dev.yaml",
                stale.join(" and ")
            ),
        )
    });
}

fn schemas(crd: &CustomResourceDefinition) -> serde_json::Value {
    serde_json::to_value(
        crd.spec
            .versions
            .iter()
            .map(|v| (&v.name, &v.schema))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default()
}

/// The controller's ClusterRole and leader-election Role, as shipped.
const CLUSTER_ROLE: &str = include_str!("../../deploy/rbac/clusterrole.yaml");
const LEADER_ROLE: &str = include_str!("../../deploy/rbac/role.yaml");
/// The delivery rights, held cluster-wide without impersonation.
const DELIVERY_ROLE: &str = include_str!("../../deploy/rbac/delivery.yaml");

/// The rules of the first document of `kind` in a multi-document YAML file.
fn rules(yaml: &str, kind: &str) -> Vec<PolicyRule> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(yaml)
        .filter_map(|doc| serde_json::Value::deserialize(doc).ok())
        .find(|v| v["kind"] == kind)
        .and_then(|v| serde_json::from_value(v["rules"].clone()).ok())
        .unwrap_or_default()
}

/// Every (namespace, group, resource, verb) the controller needs.
fn needed(args: &run::Args) -> Vec<ResourceAttributes> {
    let mut sets = vec![(None, rules(CLUSTER_ROLE, "ClusterRole"))];
    // Sharding holds Leases too, with or without leader election.
    if args.leader_election || args.shards > 0 {
        sets.push((
            Some(args.leader_election_namespace.clone()),
            rules(LEADER_ROLE, "Role"),
        ));
    }
    if !args.impersonate {
        sets.push((None, rules(DELIVERY_ROLE, "ClusterRole")));
    }
    // Cluster-wide even with --watch-namespace: targets lie in other
    // namespaces, and the shipped binding is a ClusterRoleBinding.
    let mut out = Vec::new();
    for (ns, rules) in sets {
        for rule in rules {
            for group in rule.api_groups.iter().flatten() {
                for resource in rule.resources.iter().flatten() {
                    let (resource, subresource) = match resource.split_once('/') {
                        Some((r, s)) => (r.to_string(), Some(s.to_string())),
                        None => (resource.clone(), None),
                    };
                    for verb in &rule.verbs {
                        out.push(ResourceAttributes {
                            namespace: ns.clone(),
                            group: Some(group.clone()),
                            resource: Some(resource.clone()),
                            subresource: subresource.clone(),
                            verb: Some(verb.clone()),
                            ..Default::default()
                        });
                    }
                }
            }
        }
    }
    out
}

async fn rbac(client: &kube::Client, args: &run::Args, checks: &mut Report) {
    let who = whoami(client).await;
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let needed = needed(args);
    let reviews = needed.iter().map(|attrs| {
        let review = SelfSubjectAccessReview {
            spec: SelfSubjectAccessReviewSpec {
                resource_attributes: Some(attrs.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        let api = api.clone();
        async move { api.create(&PostParams::default(), &review).await }
    });
    let mut missing = Vec::new();
    for (attrs, answer) in needed.iter().zip(futures::future::join_all(reviews).await) {
        match answer {
            Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
            Ok(_) => missing.push(describe(attrs)),
            Err(e) => {
                return checks.push(check(
                    Verdict::Fail,
                    "rbac",
                    format!("cannot ask the API server: {e}"),
                ));
            }
        }
    }
    checks.push(if missing.is_empty() {
        check(Verdict::Ok, "rbac", format!("{who} may do all {} things the controller does", needed.len()))
    } else {
        check(
            Verdict::Fail,
            "rbac",
            format!(
                "{who} may not {} (of {}); bind the ClusterRole in deploy/rbac/ to the controller's ServiceAccount",
                missing.join(", "),
                needed.len()
            ),
        )
    });
}

fn describe(a: &ResourceAttributes) -> String {
    let group = a
        .group
        .as_deref()
        .filter(|g| !g.is_empty())
        .map(|g| format!(".{g}"))
        .unwrap_or_default();
    let sub = a
        .subresource
        .as_deref()
        .map(|s| format!("/{s}"))
        .unwrap_or_default();
    let ns = a
        .namespace
        .as_deref()
        .map(|n| format!(" in {n}"))
        .unwrap_or_default();
    format!(
        "{} {}{group}{sub}{ns}",
        a.verb.as_deref().unwrap_or_default(),
        a.resource.as_deref().unwrap_or_default()
    )
}

/// The user name the API server sees (SelfSubjectReview), for the report.
async fn whoami(client: &kube::Client) -> String {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    match api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(r) => r
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .unwrap_or_else(|| "this user".into()),
        Err(_) => "this user".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapped {
        #[command(flatten)]
        run: run::Args,
    }

    fn args(extra: &[&str]) -> run::Args {
        let base = [
            "quayside",
            "--quay-organization=o",
            "--quay-token-file=t",
            "--age-identity-file=a",
        ];
        Wrapped::try_parse_from(base.iter().chain(extra))
            .unwrap()
            .run
    }

    fn described(args: &run::Args) -> Vec<String> {
        needed(args).iter().map(describe).collect()
    }

    #[test]
    fn the_shipped_roles_are_what_is_checked() {
        let all = described(&args(&[]));
        for want in [
            "watch components.quayside.dev",
            "patch environments.quayside.dev/status",
            "impersonate serviceaccounts",
            "create events.events.k8s.io",
            "update leases.coordination.k8s.io in quayside-system",
        ] {
            assert!(all.iter().any(|d| d == want), "{want} not in {all:?}");
        }
        // Without impersonation the controller writes Secrets itself.
        assert!(!all.iter().any(|d| d == "delete secrets"), "{all:?}");
        let single = described(&args(&["--impersonate=false", "--leader-election=false"]));
        assert!(single.iter().any(|d| d == "delete secrets"), "{single:?}");
        assert!(!single.iter().any(|d| d.contains("leases")), "{single:?}");
        // Sharding lists the Leases and deletes a dead replica's membership.
        let sharded = described(&args(&["--leader-election=false", "--shards=12"]));
        for want in [
            "list leases.coordination.k8s.io in quayside-system",
            "delete leases.coordination.k8s.io in quayside-system",
        ] {
            assert!(
                sharded.iter().any(|d| d == want),
                "{want} not in {sharded:?}"
            );
        }
        // Watching one namespace, it still reads and writes in targets.
        let scoped = described(&args(&["--watch-namespace=team-a"]));
        assert!(scoped.iter().any(|d| d == "list secrets"), "{scoped:?}");
    }
}
