//! What the stores keep of quayside's Secrets: the few fields passes read,
//! taken out of each object as the watch decodes it. A whole Secret kept
//! in memory is some 2 KB (two label and annotation maps of 11-slot nodes,
//! owner references, uid, the encoded data); at 10,000 Components with
//! five Secrets each that was most of the controller's memory.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Secret;
use kube::Resource;
use kube::api::ObjectMeta;
use kube::core::PartialObjectMeta;
use serde::{Deserialize, Deserializer};

use crate::controller::workspace::{self, Stored};
use crate::names::RobotRole;
use crate::vocabulary::{
    LABEL_COMPONENT, LABEL_ENVIRONMENT, LABEL_WORKSPACE, generation_of, named_by, role_of,
};

/// Name, namespace and resourceVersion: what the store keys and compares
/// objects by; nothing else of the metadata is kept.
fn identity(meta: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        resource_version: meta.resource_version.clone(),
        deletion_timestamp: meta.deletion_timestamp.clone(),
        ..ObjectMeta::default()
    }
}

/// The labels and annotations, empty where there are none.
fn maps(meta: &ObjectMeta) -> (&BTreeMap<String, String>, &BTreeMap<String, String>) {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    (
        meta.labels.as_ref().unwrap_or(&EMPTY),
        meta.annotations.as_ref().unwrap_or(&EMPTY),
    )
}

/// A quayside Secret in a workspace (a robot's login), as kept.
#[derive(Clone)]
pub struct WorkspaceSecret {
    metadata: ObjectMeta,
    /// The Component it belongs to (its label, or the full name the
    /// annotation gives for a shortened label).
    pub component: Option<String>,
    pub role: Option<RobotRole>,
    /// The login and its generation, when the Secret holds a valid one.
    pub stored: Option<Stored>,
}

impl WorkspaceSecret {
    pub fn keep(s: &Secret) -> WorkspaceSecret {
        let (labels, annotations) = maps(&s.metadata);
        WorkspaceSecret {
            metadata: identity(&s.metadata),
            component: named_by(LABEL_COMPONENT, labels, annotations),
            role: role_of(labels),
            stored: workspace::parse(s),
        }
    }
}

/// A pull Secret delivered into a target namespace of this cluster, as
/// kept (watched as metadata: its data never reaches this process).
#[derive(Clone)]
pub struct TargetSecret {
    metadata: ObjectMeta,
    /// The workspace label.
    pub workspace: Option<String>,
    /// The Environment label as written (shortened for a long name).
    pub environment_label: Option<String>,
    /// The Environment and the Component it names (full names).
    pub environment: Option<String>,
    pub component: Option<String>,
    /// The credentials generation annotation.
    pub generation: Option<i64>,
}

impl TargetSecret {
    pub fn keep(s: &PartialObjectMeta<Secret>) -> TargetSecret {
        let (labels, annotations) = maps(&s.metadata);
        TargetSecret {
            metadata: identity(&s.metadata),
            workspace: labels.get(LABEL_WORKSPACE).cloned(),
            environment_label: labels.get(LABEL_ENVIRONMENT).cloned(),
            environment: named_by(LABEL_ENVIRONMENT, labels, annotations),
            component: named_by(LABEL_COMPONENT, labels, annotations),
            generation: generation_of(s.metadata.annotations.as_ref()),
        }
    }
}

impl<'de> Deserialize<'de> for WorkspaceSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Secret::deserialize(d).map(|s| WorkspaceSecret::keep(&s))
    }
}

impl<'de> Deserialize<'de> for TargetSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PartialObjectMeta::<Secret>::deserialize(d).map(|s| TargetSecret::keep(&s))
    }
}

// Never the login: the name is enough to say which.
impl fmt::Debug for WorkspaceSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkspaceSecret")
            .field("namespace", &self.metadata.namespace)
            .field("name", &self.metadata.name)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for TargetSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetSecret")
            .field("namespace", &self.metadata.namespace)
            .field("name", &self.metadata.name)
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

/// Both are Secrets to the API: the same kind, path and scope.
macro_rules! secret_resource {
    ($t:ty, $metadata_api:expr) => {
        impl Resource for $t {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn metadata_api() -> bool {
                $metadata_api
            }
            fn kind(dt: &()) -> Cow<'_, str> {
                Secret::kind(dt)
            }
            fn group(dt: &()) -> Cow<'_, str> {
                Secret::group(dt)
            }
            fn version(dt: &()) -> Cow<'_, str> {
                Secret::version(dt)
            }
            fn plural(dt: &()) -> Cow<'_, str> {
                Secret::plural(dt)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

secret_resource!(WorkspaceSecret, false);
secret_resource!(TargetSecret, true);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::RobotCredentials;
    use crate::vocabulary::{name_annotations, pull_secret_name, target_labels, workspace_labels};
    use secrecy::ExposeSecret;

    #[test]
    fn a_workspace_secret_keeps_its_login_and_nothing_else() {
        let creds = RobotCredentials {
            registry: "quay.io".into(),
            username: "org+ws_app_pull".into(),
            token: "t0ken-bytes".to_string().into(),
        };
        let mut s = workspace::manifest(
            "app-pull-login",
            "ws",
            workspace_labels("app", RobotRole::Pull),
            name_annotations(None, "app"),
            &creds,
            3,
        );
        s.metadata.resource_version = Some("41".into());
        s.metadata.uid = Some("u-1".into());
        let json = serde_json::to_string(&s).unwrap();
        let kept: WorkspaceSecret = serde_json::from_str(&json).unwrap();
        assert_eq!(kept.meta().name.as_deref(), Some("app-pull-login"));
        assert_eq!(kept.meta().namespace.as_deref(), Some("ws"));
        assert_eq!(kept.meta().resource_version.as_deref(), Some("41"));
        assert_eq!(kept.meta().uid, None);
        assert_eq!(kept.meta().labels, None);
        assert_eq!(kept.component.as_deref(), Some("app"));
        assert_eq!(kept.role, Some(RobotRole::Pull));
        let stored = kept.stored.clone().expect("a login");
        assert_eq!(stored.generation, 3);
        assert_eq!(stored.credentials.username, "org+ws_app_pull");
        assert_eq!(stored.credentials.token.expose_secret(), "t0ken-bytes");
        assert!(!format!("{kept:?}").contains("t0ken-bytes"));
    }

    #[test]
    fn a_target_secret_keeps_whose_it_is_and_its_generation() {
        let long = "e".repeat(70);
        let mut annotations = name_annotations(Some(&long), "app");
        annotations.insert(crate::vocabulary::ANNOTATION_GENERATION.into(), "7".into());
        let json = serde_json::json!({
            "apiVersion": "meta.k8s.io/v1",
            "kind": "PartialObjectMetadata",
            "metadata": {
                "name": pull_secret_name("app"),
                "namespace": "target",
                "resourceVersion": "9",
                "labels": target_labels("ws", &long, "app"),
                "annotations": annotations,
            }
        });
        let kept: TargetSecret = serde_json::from_value(json).unwrap();
        assert_eq!(kept.meta().resource_version.as_deref(), Some("9"));
        assert_eq!(kept.workspace.as_deref(), Some("ws"));
        assert_eq!(kept.environment.as_deref(), Some(long.as_str()));
        assert_ne!(kept.environment_label.as_deref(), Some(long.as_str()));
        assert_eq!(kept.component.as_deref(), Some("app"));
        assert_eq!(kept.generation, Some(7));
        assert_eq!(kept.meta().annotations, None);
    }
}
