//! The benchmarked platform's shape: W workspace namespaces, each with E
//! Environments delivering to a target namespace of their own and the
//! tenancy the controller needs there (the delivery ServiceAccount's
//! RoleBindings, each namespace's `default` ServiceAccount); Components
//! spread over the workspaces; and a watch that counts them Ready.
//! Everything is created concurrently, [`IN_FLIGHT`] requests at a time.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use serde_json::json;

use quayside::api::{Component, Environment};
use quayside_testkit::cluster::{self, DELIVERY_ACCOUNT};
use quayside_testkit::component;

/// Creations in flight at once: fast, and far below the API server's
/// default 400 concurrent requests.
pub const IN_FLIGHT: usize = 32;

/// W workspaces × E Environments, one target namespace per Environment.
pub struct Tenancy {
    pub workspaces: Vec<String>,
    /// Environments per workspace.
    pub envs: usize,
    /// The side repository's URL on the bench's git server.
    pub side_repo: String,
    names: HashSet<String>,
}

impl Tenancy {
    /// Names only; [`Tenancy::create`] makes the objects. One workspace is
    /// `bench-<tag>` with targets `bench-<tag>-env-NN`, as before W existed.
    pub fn new(tag: &str, workspaces: usize, envs: usize, side_repo: String) -> Tenancy {
        let workspaces: Vec<String> = if workspaces <= 1 {
            vec![format!("bench-{tag}")]
        } else {
            (0..workspaces)
                .map(|j| format!("bench-{tag}-w{j:04}"))
                .collect()
        };
        let names = workspaces.iter().cloned().collect();
        Tenancy {
            workspaces,
            envs,
            side_repo,
            names,
        }
    }

    /// The single workspace (the rotation and throttled parts have one).
    pub fn ns(&self) -> &str {
        &self.workspaces[0]
    }

    pub fn single(&self) -> bool {
        self.workspaces.len() == 1
    }

    /// Environments over all workspaces.
    pub fn environments(&self) -> usize {
        self.workspaces.len() * self.envs
    }

    pub fn contains(&self, namespace: &str) -> bool {
        self.names.contains(namespace)
    }

    fn target(ws: &str, i: usize) -> String {
        format!("{ws}-env-{i:02}")
    }

    /// Component `i`'s workspace and name: spread round-robin, so every
    /// workspace holds C/W of them at each step.
    pub fn component(&self, i: usize) -> (&str, String) {
        (
            &self.workspaces[i % self.workspaces.len()],
            format!("c{i:05}"),
        )
    }

    /// Every namespace first, then what lives in them, concurrently.
    pub async fn create(&self, client: &Client, argo: &str) -> anyhow::Result<()> {
        let mut namespaces = Vec::new();
        let mut jobs = Vec::new();
        for ws in &self.workspaces {
            namespaces.push(ws.clone());
            jobs.push(Job::Account(ws.clone()));
            jobs.push(Job::Grant(ws.clone(), ws.clone()));
            for i in 0..self.envs {
                let target = Self::target(ws, i);
                namespaces.push(target.clone());
                jobs.push(Job::Account(target.clone()));
                jobs.push(Job::Grant(ws.clone(), target.clone()));
                jobs.push(Job::Environment(ws.clone(), i, target));
            }
        }
        let ns_jobs = namespaces.into_iter().map(Job::Namespace).collect();
        run_all(client, argo, ns_jobs).await?;
        run_all(client, argo, jobs).await
    }

    /// Create Components `range` (overall numbering), [`IN_FLIGHT`] at a time.
    pub async fn create_components(
        &self,
        client: &Client,
        range: std::ops::Range<usize>,
    ) -> anyhow::Result<()> {
        futures::stream::iter(range)
            .map(|i| async move {
                let (ws, name) = self.component(i);
                let c: Component = serde_json::from_value(json!({
                    "apiVersion": "quayside.dev/v1alpha1", "kind": "Component",
                    "metadata": {"name": name},
                    "spec": {"source": {"git": {"url": format!("https://git.invalid/team/{name}")}},
                             "visibility": "private"}
                }))?;
                let api: Api<Component> = Api::namespaced(client.clone(), ws);
                cluster::ignore_conflict(api.create(&PostParams::default(), &c).await)?;
                anyhow::Ok(())
            })
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(())
    }
}

/// One object to create.
enum Job {
    Namespace(String),
    /// The namespace's `default` ServiceAccount (no controller-manager here makes it).
    Account(String),
    /// Let workspace `.0`'s delivery account write in namespace `.1`.
    Grant(String, String),
    /// Environment `env-NN` of workspace `.0`, delivering to `.2`.
    Environment(String, usize, String),
}

async fn run_all(client: &Client, argo: &str, jobs: Vec<Job>) -> anyhow::Result<()> {
    futures::stream::iter(jobs)
        .map(|j| run_one(client, argo, j))
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(())
}

async fn run_one(client: &Client, argo: &str, job: Job) -> anyhow::Result<()> {
    let pp = PostParams::default();
    let c = client.clone();
    let r = match job {
        Job::Namespace(name) => {
            let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
            cluster::ignore_conflict(Api::<Namespace>::all(c).create(&pp, &ns).await)
        }
        Job::Account(ns) => {
            let sa: ServiceAccount =
                serde_json::from_value(json!({"metadata": {"name": "default"}}))?;
            cluster::ignore_conflict(Api::namespaced(c, &ns).create(&pp, &sa).await)
        }
        Job::Grant(ws, ns) => {
            // What a namespace's owner does, as `cluster::grant_delivery`.
            let rb: RoleBinding = serde_json::from_value(json!({
                "metadata": {"name": format!("quayside-delivery-{ws}")},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                    "name": quayside::plan::grant::DELIVERY_CLUSTER_ROLE,
                },
                "subjects": [{"kind": "ServiceAccount", "name": DELIVERY_ACCOUNT, "namespace": ws}],
            }))?;
            cluster::ignore_conflict(Api::namespaced(c, &ns).create(&pp, &rb).await)
        }
        Job::Environment(ws, i, target) => {
            let e: Environment = serde_json::from_value(json!({
                "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
                "metadata": {"name": format!("env-{i:02}")},
                "spec": {"target": {"namespace": target}, "recipients": [argo]}
            }))?;
            cluster::ignore_conflict(Api::namespaced(c, &ws).create(&pp, &e).await)
        }
    };
    Ok(r?)
}

/// Which Components of a [`Tenancy`] are Ready, kept current by one
/// cluster-wide watch (polling a LIST per workspace would cost the API
/// server as much as the controller does). Dropping it ends the watch.
pub struct ReadyWatch {
    task: tokio::task::JoinHandle<()>,
    ready: Arc<Mutex<BTreeMap<String, bool>>>,
    pub wake: Arc<tokio::sync::Notify>,
}

impl ReadyWatch {
    pub fn start(client: &Client, t: &Tenancy) -> ReadyWatch {
        let ready: Arc<Mutex<BTreeMap<String, bool>>> = Arc::default();
        let wake = Arc::new(tokio::sync::Notify::new());
        let api: Api<Component> = Api::all(client.clone());
        let names = t.names.clone();
        let (record, notify) = (ready.clone(), wake.clone());
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(item) = stream.next().await {
                let Ok(c) = item else { continue };
                let ns = c.namespace().unwrap_or_default();
                if names.contains(&ns) {
                    record
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(format!("{ns}/{}", c.name_any()), component::is_ready(&c));
                    notify.notify_waiters();
                }
            }
        });
        ReadyWatch { task, ready, wake }
    }

    pub fn count(&self) -> usize {
        self.ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|r| **r)
            .count()
    }
}

impl Drop for ReadyWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_spread_round_robin_and_one_workspace_keeps_its_old_names() {
        let t = Tenancy::new("scale", 1, 3, String::new());
        assert_eq!(t.workspaces, ["bench-scale"]);
        assert_eq!(Tenancy::target(t.ns(), 2), "bench-scale-env-02");
        let t = Tenancy::new("tenants", 3, 2, String::new());
        assert_eq!(t.environments(), 6);
        assert_eq!(
            t.component(4),
            ("bench-tenants-w0001", "c00004".to_string())
        );
        let per: Vec<usize> = t
            .workspaces
            .iter()
            .map(|w| (0..10).filter(|i| t.component(*i).0 == w).count())
            .collect();
        assert_eq!(per, [4, 3, 3]);
        assert!(t.contains("bench-tenants-w0002") && !t.contains("bench-scale"));
    }
}
