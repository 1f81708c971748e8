//! Components as a person and the tests see them: the Ready condition, and
//! the emergency rotation requested with the `generate` annotation.

use std::time::Duration;

use kube::api::{Api, Patch, PatchParams};
use quayside::api::{Component, GENERATE_ANNOTATION};

use crate::wait;

/// Whether the Component's Ready condition is True.
pub fn is_ready(c: &Component) -> bool {
    c.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Whether a rotation was requested and not yet done (the annotation is there).
pub fn rotation_pending(c: &Component) -> bool {
    c.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(GENERATE_ANNOTATION))
}

/// The Component's credentials generation (0 before its first pass).
pub fn generation(c: &Component) -> i64 {
    c.status.as_ref().map_or(0, |s| s.credentials_generation)
}

/// Set the rotation annotation to `value`: `"true"` asks for a rotation;
/// anything else is what a person might mistype.
pub async fn annotate_generate(
    api: &Api<Component>,
    name: &str,
    value: &str,
) -> Result<Component, kube::Error> {
    let patch = serde_json::json!({"metadata": {"annotations": {GENERATE_ANNOTATION: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
}

/// Ask for an emergency rotation of `name`, as a person does.
pub async fn request_rotation(api: &Api<Component>, name: &str) -> Result<Component, kube::Error> {
    annotate_generate(api, name, "true").await
}

/// Wait until a requested rotation of `name` is done: the annotation
/// removed and the credentials generation at least `generation`. Returns
/// the Component then.
pub async fn wait_rotated(
    api: &Api<Component>,
    name: &str,
    generation: i64,
    timeout: Duration,
) -> Component {
    wait::until(
        &format!("{name} rotated to generation {generation}"),
        timeout,
        || async {
            let c = api.get(name).await.ok()?;
            (!rotation_pending(&c) && self::generation(&c) >= generation).then_some(c)
        },
    )
    .await
}
