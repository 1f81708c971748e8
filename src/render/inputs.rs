//! From the custom resources to rendering inputs (pure): names, folder,
//! recipients, image.

use crate::api::{Component, Environment};
use crate::credentials::RobotCredentials;
use crate::seal::{Recipient, SealError};

use super::{ComponentInput, EnvironmentInput};

#[derive(thiserror::Error, Debug)]
pub enum InputError {
    #[error(
        "{kind} has no metadata.{field}; it must come from the API server or a complete manifest"
    )]
    Missing {
        kind: &'static str,
        field: &'static str,
    },
    #[error("Environment {environment}: spec.recipients has an invalid entry: {source}")]
    Recipient {
        environment: String,
        #[source]
        source: SealError,
    },
    #[error("Component {component}: {source}")]
    Image {
        component: String,
        #[source]
        source: crate::names::NameError,
    },
}

/// The rendering input of an Environment: its recipients plus `extra` (the
/// controller's own), sorted and de-duplicated, and the ServiceAccount that
/// is (or will be) linked.
pub fn environment_input(
    env: &Environment,
    extra: &[Recipient],
    service_account: &str,
) -> Result<EnvironmentInput, InputError> {
    let name = env.metadata.name.clone().ok_or(InputError::Missing {
        kind: "Environment",
        field: "name",
    })?;
    let workspace = env.metadata.namespace.clone().ok_or(InputError::Missing {
        kind: "Environment",
        field: "namespace",
    })?;
    let mut recipients = env
        .spec
        .recipients
        .iter()
        .map(|r| r.parse::<Recipient>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| InputError::Recipient {
            environment: name.clone(),
            source,
        })?;
    recipients.extend(extra.iter().cloned());
    recipients.sort();
    recipients.dedup();
    Ok(EnvironmentInput {
        folder: env.spec.side_repo_path(&workspace, &name),
        target_namespace: env.spec.target.namespace.clone(),
        name,
        workspace,
        recipients,
        service_account: service_account.to_string(),
    })
}

/// The rendering input of a Component. The image is `status.image` when the
/// controller has recorded it, otherwise derived the way the controller
/// names it: `<registry>/<organization of the robot>/<repository>`.
pub fn component_input(
    c: &Component,
    pull: RobotCredentials,
    generation: i64,
) -> Result<ComponentInput, InputError> {
    let name = c.metadata.name.clone().ok_or(InputError::Missing {
        kind: "Component",
        field: "name",
    })?;
    let image = match c.status.as_ref().and_then(|s| s.image.clone()) {
        Some(i) => i,
        None => {
            let ns = c.metadata.namespace.as_deref().unwrap_or_default();
            let repo = crate::names::repository_name(ns, &name, c.spec.image.as_deref()).map_err(
                |source| InputError::Image {
                    component: name.clone(),
                    source,
                },
            )?;
            let org = pull.username.split('+').next().unwrap_or_default();
            format!("{}/{org}/{repo}", pull.registry)
        }
    };
    Ok(ComponentInput {
        name,
        image,
        generation,
        pull,
    })
}
