//! Rendering (pure): an Environment's side-repo folder from its Components and credentials.
//!
//! No I/O, no clock: the previous files and `now` are passed in, so the same
//! inputs give the same bytes (sealed files are byte-identical when their
//! plaintext and recipients did not change, see [`crate::seal::seal`]).

mod inputs;
mod templates;

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::credentials::RobotCredentials;
use crate::names::{is_dns_label, is_dns_subdomain};
use crate::seal::{self, Identity, Recipient, SealError};
use crate::vocabulary::{
    ANNOTATION_GENERATION, ANNOTATION_IMAGE, MAX_COMPONENT_NAME, name_annotations, target_labels,
};

pub use inputs::{InputError, component_input, environment_input};

/// How the folder's `kustomization.yaml` gets its Secrets decrypted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KustomizeFlavor {
    /// Argo CD with the KSOPS generator (the default).
    #[default]
    Ksops,
    /// Flux: plain `resources:`, decrypted by kustomize-controller.
    Flux,
}

impl std::str::FromStr for KustomizeFlavor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "ksops" => Ok(KustomizeFlavor::Ksops),
            "flux" => Ok(KustomizeFlavor::Flux),
            other => Err(format!(
                "unknown kustomize flavor {other:?}: use `ksops` or `flux`"
            )),
        }
    }
}

/// An Environment as rendering needs it.
#[derive(Clone, Debug)]
pub struct EnvironmentInput {
    pub name: String,
    /// The namespace of the Environment and its Components.
    pub workspace: String,
    pub target_namespace: String,
    /// Folder in the side repository, e.g. `environments/dev`.
    pub folder: String,
    /// Who can decrypt: the Environment's recipients and the controller's.
    pub recipients: Vec<Recipient>,
    /// The ServiceAccount the pull Secrets are linked to.
    pub service_account: String,
}

/// A Component and its pull credentials.
#[derive(Clone, Debug)]
pub struct ComponentInput {
    pub name: String,
    /// Full pull spec, e.g. `quay.io/org/team/api`.
    pub image: String,
    /// Credentials generation (increments on each rotation).
    pub generation: i64,
    pub pull: RobotCredentials,
}

/// One file of the side repository, path relative to the repository root.
#[derive(Clone, PartialEq, Eq)]
pub struct RenderedFile {
    pub path: String,
    pub contents: Vec<u8>,
}

impl std::fmt::Debug for RenderedFile {
    // Contents are sealed, but never print them anyway: a debug line must not
    // be able to carry a secret even if a caller builds a plaintext file.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedFile")
            .field("path", &self.path)
            .field("bytes", &self.contents.len())
            .finish()
    }
}

#[derive(thiserror::Error, Debug)]
pub enum RenderError {
    #[error(
        "Environment {environment} has no age recipients: add `spec.recipients` (age1…) or configure the controller's age identity"
    )]
    NoRecipients { environment: String },
    #[error(
        "invalid {what} {value:?}: it must be a Kubernetes name (lower-case letters, digits, `-` and `.`, at most 253 characters)"
    )]
    InvalidName { what: &'static str, value: String },
    #[error("invalid side-repo folder {folder:?}: {reason}")]
    InvalidFolder {
        folder: String,
        reason: &'static str,
    },
    #[error(
        "Component name {name}… is longer than {max} characters: its sealed file name would not fit; the API server refuses such a Component too"
    )]
    NameTooLong { name: String, max: usize },
    #[error("Component {name} is listed twice for Environment {environment}")]
    DuplicateComponent { name: String, environment: String },
    #[error(
        "sealing the pull Secret of Component {component} for Environment {environment}: {source}"
    )]
    Seal {
        component: String,
        environment: String,
        #[source]
        source: SealError,
    },
}

pub use crate::vocabulary::pull_secret_name;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SecretManifest<'a> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Metadata<'a>,
    #[serde(rename = "type")]
    type_: &'static str,
    string_data: BTreeMap<&'static str, &'a str>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    name: String,
    namespace: &'a str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// The pull Secret (plaintext manifest YAML) for a Component in an
/// Environment's target namespace. The same manifest is sealed into git and
/// applied to the cluster.
pub fn pull_secret_manifest(env: &EnvironmentInput, c: &ComponentInput) -> SecretString {
    let config = c.pull.docker_config_json();
    let m = SecretManifest {
        api_version: "v1",
        kind: "Secret",
        metadata: Metadata {
            name: pull_secret_name(&c.name),
            namespace: &env.target_namespace,
            labels: target_labels(&env.workspace, &env.name, &c.name),
            annotations: name_annotations(Some(&env.name), &c.name)
                .into_iter()
                .chain([
                    (ANNOTATION_GENERATION.to_string(), c.generation.to_string()),
                    (ANNOTATION_IMAGE.to_string(), c.image.clone()),
                ])
                .collect(),
        },
        type_: "kubernetes.io/dockerconfigjson",
        string_data: BTreeMap::from([(".dockerconfigjson", config.expose_secret())]),
    };
    // Serialising plain strings and maps cannot fail.
    SecretString::from(serde_norway::to_string(&m).expect("a Secret manifest serialises"))
}

/// Path of a Component's sealed pull Secret inside the repository.
pub fn sealed_secret_path(env: &EnvironmentInput, component: &str) -> String {
    format!(
        "{}/secrets/{}.sops.yaml",
        folder(env),
        pull_secret_name(component)
    )
}

fn folder(env: &EnvironmentInput) -> &str {
    env.folder.trim_matches('/')
}

/// Every file of the Environment's folder, sorted by path: the full desired
/// content of the folder (anything else in it is pruned by the writer).
///
/// `previous(path)` returns the file currently in the repository; with the
/// controller's `identity` among the recipients, unchanged Secrets are
/// re-sealed byte for byte.
pub fn render_environment(
    env: &EnvironmentInput,
    components: &[ComponentInput],
    previous: &dyn Fn(&str) -> Option<String>,
    identity: &Identity,
    flavor: KustomizeFlavor,
    now: Timestamp,
) -> Result<Vec<RenderedFile>, RenderError> {
    validate(env, components)?;
    let mut components: Vec<&ComponentInput> = components.iter().collect();
    components.sort_by(|a, b| a.name.cmp(&b.name));
    let dir = folder(env);
    let mut files = Vec::with_capacity(components.len() + 4);
    // One folder, one recipient list: new files share one data key.
    let mut batch = seal::SealBatch::default();

    for c in &components {
        let path = sealed_secret_path(env, &c.name);
        let plaintext = pull_secret_manifest(env, c);
        let prev = previous(&path);
        let sealed = batch
            .seal(
                &plaintext,
                &env.recipients,
                prev.as_deref(),
                Some(identity),
                now,
            )
            .map_err(|source| RenderError::Seal {
                component: c.name.clone(),
                environment: env.name.clone(),
                source,
            })?;
        files.push(RenderedFile {
            path,
            contents: sealed.into_bytes(),
        });
    }

    let relative: Vec<String> = components
        .iter()
        .map(|c| format!("secrets/{}.sops.yaml", pull_secret_name(&c.name)))
        .collect();
    let common = [
        ("environment", env.name.as_str()),
        ("workspace", env.workspace.as_str()),
        ("namespace", env.target_namespace.as_str()),
        ("service_account", env.service_account.as_str()),
    ];
    match flavor {
        KustomizeFlavor::Ksops => {
            let listed: Vec<String> = relative.iter().map(|r| format!("./{r}")).collect();
            files.push(text(
                dir,
                "kustomization.yaml",
                templates::fill(templates::KUSTOMIZATION_KSOPS, &common),
            ));
            files.push(text(
                dir,
                "secret-generator.yaml",
                templates::fill(
                    templates::SECRET_GENERATOR,
                    &[("files", &templates::yaml_list(&listed))],
                ),
            ));
        }
        KustomizeFlavor::Flux => {
            let mut values = common.to_vec();
            let list = templates::yaml_list(&relative);
            values.push(("resources", &list));
            files.push(text(
                dir,
                "kustomization.yaml",
                templates::fill(templates::KUSTOMIZATION_FLUX, &values),
            ));
        }
    }

    let secrets: Vec<String> = components
        .iter()
        .map(|c| format!("name: {}", pull_secret_name(&c.name)))
        .collect();
    let mut values = common.to_vec();
    let list = templates::yaml_list(&secrets);
    values.push(("pull_secrets", &list));
    files.push(text(
        dir,
        "serviceaccount-link.yaml",
        templates::fill(templates::SERVICEACCOUNT_LINK, &values),
    ));

    files.push(text(dir, "README.md", readme(env, &components, flavor)));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

fn text(dir: &str, name: &str, contents: String) -> RenderedFile {
    RenderedFile {
        path: format!("{dir}/{name}"),
        contents: contents.into_bytes(),
    }
}

fn readme(
    env: &EnvironmentInput,
    components: &[&ComponentInput],
    flavor: KustomizeFlavor,
) -> String {
    let rows: Vec<String> = components
        .iter()
        .map(|c| {
            format!(
                "| `{}` | `{}` | {} | `secrets/{}.sops.yaml` |",
                c.name,
                c.image.replace('|', "\\|"),
                c.generation,
                pull_secret_name(&c.name)
            )
        })
        .collect();
    let rows = if rows.is_empty() {
        "| (none yet) | | | |".to_string()
    } else {
        rows.join("\n")
    };
    let recipients: BTreeSet<String> = env.recipients.iter().map(|r| format!("- `{r}`")).collect();
    let recipients: Vec<String> = recipients.into_iter().collect();
    let decryptor = match flavor {
        KustomizeFlavor::Ksops => "Argo CD with KSOPS (`secret-generator.yaml`)",
        KustomizeFlavor::Flux => "Flux kustomize-controller (`decryption.provider: sops`)",
    };
    templates::fill(
        templates::README,
        &[
            ("environment", &env.name),
            ("workspace", &env.workspace),
            ("namespace", &env.target_namespace),
            ("service_account", &env.service_account),
            ("decryptor", decryptor),
            ("component_rows", &rows),
            ("recipient_rows", &recipients.join("\n")),
        ],
    )
}

fn validate(env: &EnvironmentInput, components: &[ComponentInput]) -> Result<(), RenderError> {
    let name = |what, value: &str| {
        if is_dns_subdomain(value) {
            Ok(())
        } else {
            Err(RenderError::InvalidName {
                what,
                value: value.chars().take(100).collect(),
            })
        }
    };
    let label = |what, value: &str| {
        if is_dns_label(value) {
            Ok(())
        } else {
            Err(RenderError::InvalidName {
                what,
                value: value.chars().take(100).collect(),
            })
        }
    };
    name("Environment name", &env.name)?;
    // Namespaces are DNS labels: `shop.staging` is no namespace.
    label("workspace", &env.workspace)?;
    label("target namespace", &env.target_namespace)?;
    name("ServiceAccount name", &env.service_account)?;
    let f = folder(env);
    if f.is_empty() {
        return Err(RenderError::InvalidFolder {
            folder: env.folder.clone(),
            reason: "it is empty",
        });
    }
    if f.split('/')
        .any(|c| c.is_empty() || c == "." || c == ".." || c == ".git")
    {
        return Err(RenderError::InvalidFolder {
            folder: env.folder.clone(),
            reason: "it must be a relative path without `.`, `..`, `.git` or empty parts",
        });
    }
    if env.recipients.is_empty() {
        return Err(RenderError::NoRecipients {
            environment: env.name.clone(),
        });
    }
    let mut seen = BTreeSet::new();
    for c in components {
        name("Component name", &c.name)?;
        if c.name.len() > MAX_COMPONENT_NAME {
            return Err(RenderError::NameTooLong {
                name: c.name.chars().take(100).collect(),
                max: MAX_COMPONENT_NAME,
            });
        }
        if !seen.insert(c.name.as_str()) {
            return Err(RenderError::DuplicateComponent {
                name: c.name.clone(),
                environment: env.name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
