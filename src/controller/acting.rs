//! Clients that write as a workspace's delivery ServiceAccount
//! (impersonation), so that Kubernetes RBAC decides where a tenant may
//! deliver; and the translation of a refusal into the grant to ask for.

use std::sync::Mutex;
use std::task::Poll;

use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response};
use kube::Client;
use kube::client::Body;

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

/// Impersonating clients, all sending through one client of the
/// controller's own: each is that client plus an `Impersonate-User`
/// header. A client per ServiceAccount built from the configuration held
/// its own connections and TLS state; at 2,000 workspaces that was 2,000
/// connections to the API server, each handshaken at start-up. Nor is a
/// writer kept per ServiceAccount: each holds a request queue of its own
/// (some 11 KB), 23 MB at 2,000 workspaces, and building one is a task
/// spawn, far less than the requests of the pass that asks for it.
pub struct Delegation {
    base: kube::Config,
    /// Built on the first writer (inside the runtime, which it needs).
    shared: Mutex<Option<Client>>,
}

impl Delegation {
    pub fn new(base: kube::Config) -> Delegation {
        Delegation {
            base,
            shared: Mutex::new(None),
        }
    }

    /// A writer acting as `account` of `workspace`.
    pub fn writer(&self, workspace: &str, account: &str) -> Result<Writer> {
        let user = grant::username(workspace, account);
        let shared = {
            let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            match &*shared {
                Some(s) => s.clone(),
                None => {
                    let mut own = self.base.clone();
                    own.auth_info.impersonate = None;
                    own.auth_info.impersonate_groups = None;
                    let s = Client::try_from(own)?;
                    *shared = Some(s.clone());
                    s
                }
            }
        };
        Ok(Writer {
            client: impersonating(shared, &user, &self.base.default_namespace)?,
            acting_as: Some((workspace.to_string(), account.to_string())),
        })
    }
}

/// `shared`, acting as `user`. The API server adds the ServiceAccount's
/// own groups, so only the user is named.
fn impersonating(shared: Client, user: &str, namespace: &str) -> Result<Client> {
    let user =
        HeaderValue::from_str(user).map_err(|e| Error::Kube(kube::Error::HttpError(e.into())))?;
    Ok(Client::new(Impersonate { shared, user }, namespace))
}

/// The shared client with `Impersonate-User` set on every request.
#[derive(Clone)]
struct Impersonate {
    shared: Client,
    user: HeaderValue,
}

impl tower::Service<Request<Body>> for Impersonate {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, std::result::Result<Response<Body>, kube::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> Poll<std::result::Result<(), kube::Error>> {
        // The shared client's own buffer applies backpressure in `send`.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        request
            .headers_mut()
            .insert(IMPERSONATE_USER, self.user.clone());
        let shared = self.shared.clone();
        Box::pin(async move { shared.send(request).await })
    }
}

const IMPERSONATE_USER: &str = "impersonate-user";

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::Secret;
    use kube::api::Api;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// What the stand-in API server saw: connections, and each request's
    /// `Impersonate-User`.
    #[derive(Default)]
    struct Seen {
        connections: usize,
        users: Vec<Option<String>>,
    }

    /// An HTTP/1.1 server answering every request 404, keeping connections.
    async fn stand_in() -> (String, Arc<Mutex<Seen>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                record.lock().unwrap().connections += 1;
                let record = record.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while let Ok(n) = conn.read(&mut chunk).await {
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                            buf.drain(..end + 4);
                            let user = head
                                .lines()
                                .find_map(|l| l.strip_prefix("impersonate-user: "))
                                .map(str::to_string);
                            record.lock().unwrap().users.push(user);
                            let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#;
                            let answer = format!(
                                "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                                body.len()
                            );
                            if conn.write_all(answer.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, seen)
    }

    #[tokio::test]
    async fn every_workspace_acts_as_itself_over_one_connection() {
        let (url, seen) = stand_in().await;
        let delegation = Delegation::new(kube::Config::new(url.parse().unwrap()));
        for workspace in ["team-a", "team-b", "team-a"] {
            let writer = delegation.writer(workspace, "quayside-delivery").unwrap();
            let secrets: Api<Secret> = Api::namespaced(writer.client, "target");
            assert!(secrets.get_opt("pull").await.unwrap().is_none());
        }
        let seen = seen.lock().unwrap();
        let user = |w: &str| Some(format!("system:serviceaccount:{w}:quayside-delivery"));
        assert_eq!(
            seen.users,
            vec![user("team-a"), user("team-b"), user("team-a")]
        );
        // A client per workspace opened a connection (and a TLS session)
        // per workspace: 2 here, 2,000 on a platform of 2,000.
        assert_eq!(seen.connections, 1, "one shared connection");
    }

    #[tokio::test]
    async fn no_writer_outlives_its_pass() {
        let (url, _) = stand_in().await;
        let delegation = Delegation::new(kube::Config::new(url.parse().unwrap()));
        let first = delegation.writer("team-0", "quayside-delivery").unwrap();
        let secrets: Api<Secret> = Api::namespaced(first.client, "target");
        assert!(secrets.get_opt("pull").await.unwrap().is_none());
        let alive = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        let settled = |most: usize| async move {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            while alive() > most && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            alive()
        };
        // The shared client and the stand-in server; no writer any more.
        let before = settled(usize::MAX).await;
        for i in 0..50 {
            let writer = delegation
                .writer(&format!("team-{i}"), "quayside-delivery")
                .unwrap();
            let secrets: Api<Secret> = Api::namespaced(writer.client, "target");
            assert!(secrets.get_opt("pull").await.unwrap().is_none());
        }
        // Kept per workspace, each writer's request queue lived on as a task.
        let after = settled(before).await;
        assert!(
            after <= before,
            "{after} tasks alive after 50 workspaces, {before} before"
        );
    }
}
