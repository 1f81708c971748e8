//! Clients for target clusters: this cluster, or another one through a
//! kubeconfig Secret in the workspace. Clients are cached and rebuilt when
//! the Secret changes. Each remote client comes with its [`ClusterKey`],
//! the digest of the identity it connects as, for the remote watches.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use secrecy::ExposeSecret;

use super::error::Result;
use crate::api::Environment;
use crate::plan::remote_watch::{ClusterIdentity, ClusterKey, cluster_key};

/// Key in the cluster-credentials Secret that holds the kubeconfig.
pub const KUBECONFIG_KEY: &str = "kubeconfig";

/// Why a target cluster cannot be reached; messages never quote the
/// kubeconfig's contents.
#[derive(thiserror::Error, Debug)]
pub enum TargetClusterError {
    #[error(
        "the Secret {secret} named by spec.target.clusterCredentialsSecret does not exist in {namespace}; create it with the target cluster's kubeconfig under the key `{KUBECONFIG_KEY}`"
    )]
    SecretMissing { secret: String, namespace: String },
    #[error(
        "the Secret {0} has no `{KUBECONFIG_KEY}` key; put the target cluster's kubeconfig there"
    )]
    NoKubeconfig(String),
    #[error("the kubeconfig in Secret {0} is not UTF-8 text")]
    NotText(String),
    #[error("the kubeconfig in Secret {secret} is malformed: {detail}")]
    Malformed { secret: String, detail: String },
    #[error(
        "the kubeconfig in Secret {secret} is refused: {reason}; fix it and quayside uses it at once"
    )]
    Refused {
        secret: String,
        reason: super::kubeconfig::Refused,
    },
    #[error("the kubeconfig in Secret {secret} is unusable: {detail}")]
    Unusable { secret: String, detail: String },
    #[error("building a client from {secret}: {detail}")]
    Client { secret: String, detail: String },
    #[error(
        "the cluster named by the kubeconfig in Secret {secret} is unreachable ({detail}); check its server address and that the cluster is up (will retry)"
    )]
    Unreachable { secret: String, detail: String },
}

pub struct TargetClients {
    cache: Mutex<HashMap<SecretRef, Cached>>,
    /// Salts the [`ClusterKey`]s of this process.
    salt: [u8; 32],
}

impl Default for TargetClients {
    fn default() -> Self {
        TargetClients {
            cache: Mutex::default(),
            salt: rand::random(),
        }
    }
}

/// A kubeconfig Secret: (namespace, name).
type SecretRef = (String, String);
/// The client built from one resourceVersion of it, and its identity's key.
type Cached = (String, Client, ClusterKey);

impl TargetClients {
    /// The client for an Environment's target cluster.
    pub async fn for_environment(&self, local: &Client, env: &Environment) -> Result<Client> {
        Ok(self.keyed(local, env).await?.0)
    }

    /// The client for an Environment's target cluster and, for a remote
    /// one, the key of the identity it connects as.
    pub async fn keyed(
        &self,
        local: &Client,
        env: &Environment,
    ) -> Result<(Client, Option<ClusterKey>)> {
        let Some(secret_name) = env.spec.target.cluster_credentials_secret.as_deref() else {
            return Ok((local.clone(), None));
        };
        let ns = env.metadata.namespace.clone().unwrap_or_default();
        let secret = Api::<Secret>::namespaced(local.clone(), &ns)
            .get_opt(secret_name)
            .await?
            .ok_or_else(|| TargetClusterError::SecretMissing {
                secret: secret_name.to_string(),
                namespace: ns.clone(),
            })?;
        let version = secret.metadata.resource_version.clone().unwrap_or_default();
        let key = (ns.clone(), secret_name.to_string());
        if let Some((v, c, k)) = self.cache.lock().unwrap().get(&key)
            && *v == version
        {
            return Ok((c.clone(), Some(*k)));
        }
        let raw = secret
            .data
            .as_ref()
            .and_then(|d| d.get(KUBECONFIG_KEY))
            .ok_or_else(|| TargetClusterError::NoKubeconfig(secret_name.to_string()))?;
        let text = String::from_utf8(raw.0.clone())
            .map_err(|_| TargetClusterError::NotText(secret_name.to_string()))?;
        let kubeconfig =
            Kubeconfig::from_yaml(&text).map_err(|e| TargetClusterError::Malformed {
                secret: secret_name.to_string(),
                detail: redact(&e.to_string()),
            })?;
        // Only the allowlisted part is ever handed to the client: nothing in
        // it can make the controller read a file or run a program.
        let kubeconfig = super::kubeconfig::allowlisted(&kubeconfig).map_err(|reason| {
            TargetClusterError::Refused {
                secret: secret_name.to_string(),
                reason,
            }
        })?;
        let cluster = identity_key(&self.salt, &kubeconfig);
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| TargetClusterError::Unusable {
                secret: secret_name.to_string(),
                detail: bounded(&redact(&e.to_string())),
            })?;
        let client = Client::try_from(config).map_err(|e| TargetClusterError::Client {
            secret: secret_name.to_string(),
            detail: bounded(&e.to_string()),
        })?;
        self.cache
            .lock()
            .unwrap()
            .insert(key, (version, client.clone(), cluster));
        Ok((client, Some(cluster)))
    }
}

/// The key of an allowlisted kubeconfig's (single) cluster and user.
fn identity_key(salt: &[u8; 32], kc: &Kubeconfig) -> ClusterKey {
    let cluster = kc.clusters.first().and_then(|c| c.cluster.as_ref());
    let user = kc.auth_infos.first().and_then(|u| u.auth_info.as_ref());
    cluster_key(
        salt,
        &ClusterIdentity {
            server: cluster
                .and_then(|c| c.server.as_deref())
                .unwrap_or_default(),
            certificate_authority_data: cluster
                .and_then(|c| c.certificate_authority_data.as_deref()),
            tls_server_name: cluster.and_then(|c| c.tls_server_name.as_deref()),
            token: user
                .and_then(|u| u.token.as_ref())
                .map(|t| t.expose_secret()),
            client_certificate_data: user.and_then(|u| u.client_certificate_data.as_deref()),
            client_key_data: user
                .and_then(|u| u.client_key_data.as_ref())
                .map(|k| k.expose_secret()),
        },
    )
}

/// Text from a remote cluster's side, bounded: it lands in status and events.
pub fn bounded(text: &str) -> String {
    crate::text::bounded(text, 200)
}

/// Kubeconfig parse errors can quote the offending input, which may be a
/// credential: keep only where the problem is, never what it says.
fn redact(message: &str) -> String {
    match message.find("at line ") {
        Some(i) => message[i..].chars().take(40).collect(),
        None => "not a valid kubeconfig".to_string(),
    }
}
