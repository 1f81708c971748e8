//! What an Environment delivers: every live Component of its workspace that
//! has persisted pull credentials.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, ListParams};

use crate::api::Component;
use crate::controller::context::Context;
use crate::controller::error::Result;
use crate::controller::workspace::{self, Stored};
use crate::names::{self, RobotRole};
use crate::vocabulary::{LABEL_COMPONENT, named_by, role_selector};

/// A Component of the workspace with its persisted pull credentials.
pub(super) struct Deliverable {
    pub name: String,
    pub image: String,
    pub stored: Stored,
}

pub(super) async fn list(ctx: &Context, workspace_ns: &str) -> Result<Vec<Deliverable>> {
    let components = Api::<Component>::namespaced(ctx.client.clone(), workspace_ns)
        .list(&ListParams::default())
        .await?;
    let secrets = Api::<Secret>::namespaced(ctx.client.clone(), workspace_ns)
        .list(&ListParams::default().labels(&role_selector(RobotRole::Pull)))
        .await?;
    let mut by_component: BTreeMap<String, Stored> = secrets
        .items
        .iter()
        .filter_map(|s| {
            Some((
                named_by(LABEL_COMPONENT, s.labels(), s.annotations())?,
                workspace::parse(s)?,
            ))
        })
        .collect();
    let mut out = Vec::new();
    for c in components.items {
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
