//! quayside rotate: ask the controller to rotate a Component's robot
//! tokens now, by setting `quayside.dev/rotate` to a value it has not
//! handled (the GitOps-safe request, never removed), or — against a CRD
//! from before that annotation — the ADR's `image.redhat.com/generate`.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use quayside::api::Component;
use quayside::duration::parse as parse_duration;
use quayside::vocabulary::{ANNOTATION_GENERATE, ANNOTATION_ROTATE, FIELD_MANAGER_CLI};

use super::connect::{self, KubeArgs};

/// Rotate a Component's robot tokens now.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The Component.
    pub component: String,
    /// Its workspace (namespace); default: the context's namespace.
    #[arg(short, long)]
    pub namespace: Option<String>,
    /// Wait until the new credentials are issued (status.credentialsGeneration grows).
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub kube: KubeArgs,
}

/// Which request the installed CRD knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Request {
    /// `quayside.dev/rotate: <new value>`.
    Rotate,
    /// `image.redhat.com/generate: "true"`, removed by the controller when done.
    Generate,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (client, default_ns) = connect::client(&args.kube).await?;
    let ns = args.namespace.clone().unwrap_or(default_ns);
    let api: Api<Component> = Api::namespaced(client.clone(), &ns);
    let name = &args.component;
    let before = api
        .get_opt(name)
        .await?
        .with_context(|| format!("there is no Component {name} in namespace {ns}"))?;
    let generation = before
        .status
        .as_ref()
        .map_or(0, |s| s.credentials_generation);
    let request = request_kind(&client).await;
    let (key, value) = match request {
        Request::Rotate => (ANNOTATION_ROTATE, Timestamp::now().to_string()),
        Request::Generate => (ANNOTATION_GENERATE, "true".to_string()),
    };
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER_CLI.into()),
        ..Default::default()
    };
    api.patch(name, &params, &Patch::Merge(&patch))
        .await
        .with_context(|| format!("annotating Component {ns}/{name}"))?;
    println!(
        "Component {ns}/{name}: rotation requested ({key}={value}) at credentials generation {generation}"
    );
    if generation == 0 {
        println!(
            "It has no credentials yet: its first ones are new anyway, and nothing is rotated."
        );
        return Ok(());
    }
    if args.wait {
        let after = wait_rotated(&api, name, request, &value, generation, args.timeout).await?;
        println!("Component {ns}/{name}: rotated to credentials generation {after}");
    }
    Ok(())
}

/// `quayside.dev/rotate` when the installed CRD records it
/// (`status.rotateHandled`) or cannot be read (a tenant may not read
/// CRDs: this release's CRD is assumed); the ADR annotation otherwise.
async fn request_kind(client: &kube::Client) -> Request {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    match crds.get("components.quayside.dev").await {
        Ok(crd) if !records_rotate(&crd) => Request::Generate,
        _ => Request::Rotate,
    }
}

/// Whether a Component CRD has `status.rotateHandled`, where the
/// controller records the `quayside.dev/rotate` values it handled.
fn records_rotate(crd: &CustomResourceDefinition) -> bool {
    serde_json::to_value(&crd.spec.versions).is_ok_and(|v| {
        v.as_array().into_iter().flatten().any(|version| {
            let status = &version["schema"]["openAPIV3Schema"]["properties"]["status"];
            !status["properties"]["rotateHandled"].is_null()
        })
    })
}

/// Poll until the rotation is done: the value handled (or the ADR
/// annotation removed) and the generation past `before`.
async fn wait_rotated(
    api: &Api<Component>,
    name: &str,
    request: Request,
    value: &str,
    before: i64,
    timeout: Duration,
) -> anyhow::Result<i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let c = api.get(name).await?;
        let status = c.status.clone().unwrap_or_default();
        let handled = match request {
            Request::Rotate => status.rotate_handled.as_deref() == Some(value),
            Request::Generate => !c
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(ANNOTATION_GENERATE)),
        };
        if handled && status.credentials_generation > before {
            return Ok(status.credentials_generation);
        }
        // The storm guard refuses only the ADR annotation, never a value.
        let refusal = status
            .conditions
            .iter()
            .find(|c| c.type_ == "RotationRequest" && c.status == "False");
        if let Some(refused) = refusal.filter(|_| request == Request::Generate) {
            bail!("the controller refused the request: {}", refused.message);
        }
        if Instant::now() > deadline {
            bail!(
                "not rotated within {timeout:?}; see `quayside status` and the Component's conditions"
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::CustomResourceExt;

    #[test]
    fn an_older_crd_gets_the_adr_annotation() {
        let crd = Component::crd();
        assert!(records_rotate(&crd), "this release's CRD");
        let mut older = serde_json::to_value(&crd).unwrap();
        let status =
            &mut older["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"];
        status["properties"]
            .as_object_mut()
            .unwrap()
            .remove("rotateHandled");
        let older: CustomResourceDefinition = serde_json::from_value(older).unwrap();
        assert!(
            !records_rotate(&older),
            "a CRD from before quayside.dev/rotate"
        );
    }
}
