//! What an Environment delivers: every live Component of its workspace that
//! has persisted pull credentials.

use std::collections::BTreeMap;

use kube::ResourceExt;

use crate::controller::context::Context;
use crate::controller::error::Result;
use crate::controller::workspace::Stored;
use crate::names;

/// A Component of the workspace with its persisted pull credentials.
pub(super) struct Deliverable {
    pub name: String,
    pub image: String,
    pub stored: Stored,
}

/// Read from the watches: a pass woken by a change sees it (the store
/// takes each change before it wakes anyone).
pub(super) async fn list(ctx: &Context, workspace_ns: &str) -> Result<Vec<Deliverable>> {
    let stores = ctx.stores().await?;
    let components = stores.components.in_namespace(workspace_ns);
    let secrets = stores.pull_secrets(workspace_ns);
    let mut by_component: BTreeMap<String, Stored> = secrets
        .iter()
        .filter_map(|s| Some((s.component.clone()?, s.stored.clone()?)))
        .collect();
    let mut out = Vec::new();
    for c in components {
        if c.metadata.deletion_timestamp.is_some() {
            continue; // a deleted Component is pruned from every Environment
        }
        let name = c.name_any();
        if let Some(stored) = by_component.remove(&name) {
            // The image Quay confirmed (status), so a mistyped organization
            // set after a good run never reaches the side repo; derived from
            // the spec only in the moment between the first Secret write and
            // the first status write of a new Component.
            let confirmed = c.status.as_ref().and_then(|s| s.image.clone());
            let image = confirmed.unwrap_or_else(|| {
                names::repository_name(workspace_ns, &name, c.spec.image.as_deref())
                    .map(|repo| ctx.image_of(&repo))
                    .unwrap_or_default()
            });
            out.push(Deliverable {
                image,
                name,
                stored,
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}
