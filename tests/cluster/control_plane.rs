//! Proves the test control plane is a real Kubernetes API server: CRUD and
//! watch of a Component through kube-rs, server-side apply with managed
//! fields, and a finalizer that blocks deletion.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use quayside::api::{Component, ComponentSpec, GitSource, SourceSpec, Visibility};
use quayside_testkit::{cluster, wait};

fn component(name: &str) -> Component {
    Component::new(
        name,
        ComponentSpec {
            source: SourceSpec {
                git: GitSource {
                    url: "https://example.invalid/app.git".into(),
                },
            },
            visibility: Visibility::Auto,
            image: None,
        },
    )
}

#[tokio::test]
async fn component_create_get_list_watch() {
    let cp = cluster::shared();
    let client = cp.client().await;
    let ns = cluster::new_namespace(&client, "crud").await;
    let api: Api<Component> = Api::namespaced(client.clone(), &ns);

    // Start watching before creating, and expect to see both objects arrive.
    let mut events = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();

    api.create(&PostParams::default(), &component("one"))
        .await
        .unwrap();
    api.create(&PostParams::default(), &component("two"))
        .await
        .unwrap();

    let got = api.get("one").await.unwrap();
    assert_eq!(got.spec.source.git.url, "https://example.invalid/app.git");
    // The default from the schema round-trips.
    assert_eq!(got.spec.visibility, Visibility::Auto);

    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, vec!["one".to_string(), "two".to_string()]);

    let mut seen = std::collections::BTreeSet::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while seen.len() < 2 {
            let c = events.try_next().await.unwrap().unwrap();
            seen.insert(c.metadata.name.unwrap());
        }
    })
    .await
    .expect("watch delivered both Components");
}

#[tokio::test]
async fn invalid_visibility_is_rejected_by_the_schema() {
    let cp = cluster::shared();
    let client = cp.client().await;
    let ns = cluster::new_namespace(&client, "schema").await;
    // Our enum cannot even hold "secret", so post raw JSON through the
    // dynamic API to reach the server's own validation.
    let raw = kube::api::Api::<kube::api::DynamicObject>::namespaced_with(
        client,
        &ns,
        &kube::api::ApiResource::erase::<Component>(&()),
    );
    let obj: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Component",
        "metadata": {"name": "bad2"},
        "spec": {"source": {"git": {"url": "x"}}, "visibility": "secret"}
    }))
    .unwrap();
    let err = raw.create(&PostParams::default(), &obj).await.unwrap_err();
    assert!(
        err.to_string().contains("spec.visibility"),
        "server-side validation names the field: {err}"
    );
}

#[tokio::test]
async fn server_side_apply_records_managed_fields() {
    let cp = cluster::shared();
    let client = cp.client().await;
    let ns = cluster::new_namespace(&client, "ssa").await;
    let api: Api<Secret> = Api::namespaced(client, &ns);
    let secret = serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "applied", "labels": {"app.kubernetes.io/managed-by": "quayside"}},
        "stringData": {"k": "v"}
    });
    let pp = PatchParams::apply("quayside-test").force();
    api.patch("applied", &pp, &Patch::Apply(&secret))
        .await
        .unwrap();
    let got = api.get("applied").await.unwrap();
    let managers: Vec<_> = got
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("quayside-test".to_string(), "Apply".to_string())),
        "managed fields: {managers:?}"
    );
    assert_eq!(got.data.unwrap()["k"].0, b"v");
}

#[tokio::test]
async fn finalizer_blocks_deletion_until_removed() {
    let cp = cluster::shared();
    let client = cp.client().await;
    let ns = cluster::new_namespace(&client, "fin").await;
    let api: Api<Component> = Api::namespaced(client, &ns);
    let mut c = component("held");
    c.metadata.finalizers = Some(vec!["quayside.dev/cleanup".into()]);
    api.create(&PostParams::default(), &c).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();

    let held = api
        .get("held")
        .await
        .expect("still present while finalized");
    assert!(held.metadata.deletion_timestamp.is_some());

    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    api.patch("held", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    wait::until("Component deleted", Duration::from_secs(30), || async {
        api.get_opt("held").await.unwrap().is_none().then_some(())
    })
    .await;
}

#[test]
fn a_second_control_plane_is_independent() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let other = cluster::ControlPlane::start();
    rt.block_on(async {
        let a = cluster::shared().client().await;
        let b = other.client().await;
        let ns = cluster::new_namespace(&b, "only-in-b").await;
        let in_a = Api::<k8s_openapi::api::core::v1::Namespace>::all(a)
            .get_opt(&ns)
            .await
            .unwrap();
        assert!(
            in_a.is_none(),
            "namespaces are not shared between control planes"
        );
    });
    other.stop();
}
