//! The workspace Secrets: where a Component's robot credentials are
//! persisted (push for builds, pull for delivery) before anything else uses
//! them, and the Secret objects quayside applies.

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use secrecy::{ExposeSecret, SecretString};

use super::error::Result;
use crate::credentials::RobotCredentials;
use crate::names::RobotRole;
use crate::vocabulary::{
    ANNOTATION_GENERATION, FIELD_MANAGER, LABEL_SHARD, generation_of, name_annotations,
    workspace_labels, workspace_secret_name,
};

const DOCKER_CONFIG_KEY: &str = ".dockerconfigjson";

/// Credentials read back from a workspace Secret.
#[derive(Clone, Debug)]
pub struct Stored {
    pub credentials: RobotCredentials,
    pub generation: i64,
}

/// Read a Component's workspace Secret for `role`; `None` when absent.
pub async fn read(api: &Api<Secret>, component: &str, role: RobotRole) -> Result<Option<Stored>> {
    let name = workspace_secret_name(component, role);
    Ok(api.get_opt(&name).await?.as_ref().and_then(parse))
}

/// Credentials and generation of a Secret we wrote; `None` when it was
/// tampered with beyond recognition (the caller rewrites it).
pub fn parse(secret: &Secret) -> Option<Stored> {
    let generation = generation_of(secret.metadata.annotations.as_ref())?;
    let json = payload_of(secret)?;
    let credentials = RobotCredentials::from_docker_config_json(json.expose_secret())?;
    Some(Stored {
        credentials,
        generation,
    })
}

/// The Secret object for a robot's credentials.
pub fn manifest(
    name: &str,
    namespace: &str,
    labels: std::collections::BTreeMap<String, String>,
    mut annotations: std::collections::BTreeMap<String, String>,
    credentials: &RobotCredentials,
    generation: i64,
) -> Secret {
    let payload = credentials.docker_config_json();
    annotations.insert(ANNOTATION_GENERATION.to_string(), generation.to_string());
    Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..Default::default()
        },
        type_: Some("kubernetes.io/dockerconfigjson".to_string()),
        data: Some(
            [(
                DOCKER_CONFIG_KEY.to_string(),
                ByteString(payload.expose_secret().as_bytes().to_vec()),
            )]
            .into(),
        ),
        ..Default::default()
    }
}

/// Read a Component's workspace Secret for `role` from the watch, or
/// from the API when the watch may be behind: it has not seen the version
/// this process last wrote or read (`known`), it has none (a miss costs
/// one GET), or it holds a generation older than `at_least` (status
/// recorded a newer one, perhaps written by a replica before this one).
/// Returns the resourceVersion it judged by, for the next read, and
/// whether the Secret read from the API lacks the shard label `shard`
/// (`--shards`: written before it; the watch cannot see it).
pub async fn read_cached(
    api: &Api<Secret>,
    cached: Option<std::sync::Arc<crate::controller::kept::WorkspaceSecret>>,
    known: Option<&str>,
    component: &str,
    role: RobotRole,
    at_least: i64,
    shard: Option<&str>,
) -> Result<(Option<Stored>, Option<String>, bool)> {
    if let Some(s) = cached {
        let rv = s.meta().resource_version.as_deref();
        let stored = s.stored.clone();
        let current = known.is_none_or(|k| Some(k) == rv);
        if current && stored.as_ref().is_some_and(|st| st.generation >= at_least) {
            return Ok((stored, rv.map(str::to_string), false));
        }
    }
    let name = workspace_secret_name(component, role);
    let fresh = api.get_opt(&name).await?;
    let rv = fresh
        .as_ref()
        .and_then(|s| s.metadata.resource_version.clone());
    let unstamped = fresh.as_ref().is_some_and(|s| {
        shard.is_some_and(|want| s.labels().get(LABEL_SHARD).map(String::as_str) != Some(want))
    });
    Ok((fresh.as_ref().and_then(parse), rv, unstamped))
}

/// Persist credentials in the workspace (server-side apply, forced: we own
/// it), labelled with the workspace's `shard` (`--shards`).
pub async fn write(
    api: &Api<Secret>,
    namespace: &str,
    (component, role): (&str, RobotRole),
    credentials: &RobotCredentials,
    generation: i64,
    shard: Option<u32>,
) -> Result<Option<String>> {
    let name = workspace_secret_name(component, role);
    let mut labels = workspace_labels(component, role);
    if let Some(s) = shard {
        labels.insert(LABEL_SHARD.to_string(), s.to_string());
    }
    let secret = manifest(
        &name,
        namespace,
        labels,
        name_annotations(None, component),
        credentials,
        generation,
    );
    apply_secret_versioned(api, &name, secret).await
}

/// Server-side apply of a Secret under quayside's field manager.
pub async fn apply_secret(api: &Api<Secret>, name: &str, secret: Secret) -> Result<()> {
    apply_secret_versioned(api, name, secret).await.map(|_| ())
}

/// [`apply_secret`], returning the resourceVersion written.
pub async fn apply_secret_versioned(
    api: &Api<Secret>,
    name: &str,
    secret: Secret,
) -> Result<Option<String>> {
    let written = api
        .patch(
            name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&applied(secret)),
        )
        .await?;
    Ok(written.metadata.resource_version)
}

/// A Secret as an apply patch: with its kind, without managed fields.
fn applied(mut secret: Secret) -> serde_json::Value {
    secret.metadata.managed_fields = None;
    // A Secret of strings and byte strings always serialises.
    let mut value = serde_json::to_value(&secret).expect("a Secret serialises");
    value["apiVersion"] = "v1".into();
    value["kind"] = "Secret".into();
    value
}

/// Delete a Secret; one already gone is fine. Says whether it deleted one.
pub async fn delete_secret(api: &Api<Secret>, name: &str) -> Result<bool> {
    match api.delete(name, &Default::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// The payload of a Secret, as a secret string.
pub fn payload_of(secret: &Secret) -> Option<SecretString> {
    let raw = secret.data.as_ref()?.get(DOCKER_CONFIG_KEY)?;
    String::from_utf8(raw.0.clone())
        .ok()
        .map(SecretString::from)
}
