//! Clients that write as a workspace's delivery ServiceAccount
//! (impersonation), so that Kubernetes RBAC decides where a tenant may
//! deliver; and the translation of a refusal into the grant to ask for.

use std::collections::HashMap;
use std::sync::Mutex;

use kube::Client;

use super::error::{Error, Result};
use crate::plan::grant;

/// Who the writes of one pass act as.
#[derive(Clone)]
pub struct Writer {
    pub client: Client,
    /// `(workspace, account)` when impersonating; `None` writes as the
    /// controller itself (impersonation off, or a remote cluster whose
    /// kubeconfig is the tenant's own authority).
    acting_as: Option<(String, String)>,
}

impl Writer {
    /// Writes as whoever `client` authenticates as.
    pub fn direct(client: Client) -> Writer {
        Writer {
            client,
            acting_as: None,
        }
    }

    /// A 403 on a write into `namespace` is the missing grant: say which
    /// command gives it. Anything else passes through.
    pub fn refused(&self, namespace: &str, error: Error) -> Error {
        match (&self.acting_as, error) {
            (Some((workspace, account)), Error::Kube(kube::Error::Api(e))) if e.code == 403 => {
                Error::NotGranted {
                    namespace: namespace.to_string(),
                    workspace: workspace.clone(),
                    account: account.clone(),
                }
            }
            (_, other) => other,
        }
    }
}

/// Impersonating clients, one per ServiceAccount, built from the
/// controller's own configuration.
pub struct Delegation {
    base: kube::Config,
    clients: Mutex<HashMap<String, Client>>,
}

impl Delegation {
    pub fn new(base: kube::Config) -> Delegation {
        Delegation {
            base,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// A writer acting as `account` of `workspace`.
    pub fn writer(&self, workspace: &str, account: &str) -> Result<Writer> {
        let user = grant::username(workspace, account);
        let mut clients = self.clients.lock().unwrap();
        let client = match clients.get(&user) {
            Some(c) => c.clone(),
            None => {
                let mut config = self.base.clone();
                config.auth_info.impersonate = Some(user.clone());
                // The API server adds the ServiceAccount's own groups.
                config.auth_info.impersonate_groups = None;
                let client = Client::try_from(config)?;
                clients.insert(user, client.clone());
                client
            }
        };
        Ok(Writer {
            client,
            acting_as: Some((workspace.to_string(), account.to_string())),
        })
    }
}
