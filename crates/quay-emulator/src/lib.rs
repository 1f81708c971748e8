//! The Quay emulator: Quay's endpoints, quirks and a registry token endpoint, with fault injection.
//!
//! Runs in-process (tests, benchmarks) or alone (the `quay-emulator`
//! binary). Test tooling: the quayside controller never depends on it.
//! Faults apply to `/api/v1` calls only, before the bearer token is checked,
//! the way a rate-limiting front end sits before Quay itself.

mod access;
mod http;
mod reply;
mod state;
pub mod tls;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

pub use access::{OrgRole, Scope, TokenAccess};
pub use state::{EmulatorState, PermissionState, RepositoryState, RobotState, same_token};
pub use tls::TestAuthority;

/// What the emulator serves.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// Organizations that exist; calls about any other answer 403
    /// "Unauthorized", as Quay's permission check does.
    pub organizations: Vec<String>,
    /// An organization admin's OAuth token with every scope, accepted as
    /// `Authorization: Bearer`.
    pub oauth_token: String,
    /// More tokens, each with its owner's role and its scopes (tests of
    /// what a token lacking a right is told).
    pub tokens: Vec<(String, TokenAccess)>,
    /// Private repositories allowed per organization; past it, 402.
    pub private_quota: Option<usize>,
    pub faults: Faults,
    /// Serve HTTPS with a CA made at start-up ([`Emulator::ca_pem`]);
    /// plain HTTP when false (the default).
    pub tls: bool,
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig")
            .field("organizations", &self.organizations)
            .field("oauth_token", &"[REDACTED]")
            .field(
                "tokens",
                &self.tokens.iter().map(|(_, a)| a).collect::<Vec<_>>(),
            )
            .field("private_quota", &self.private_quota)
            .field("faults", &self.faults)
            .field("tls", &self.tls)
            .finish()
    }
}

impl EmulatorConfig {
    /// One organization, no quota, no faults.
    pub fn new(organization: &str, oauth_token: &str) -> Self {
        EmulatorConfig {
            organizations: vec![organization.to_string()],
            oauth_token: oauth_token.to_string(),
            tokens: Vec::new(),
            private_quota: None,
            faults: Faults::default(),
            tls: false,
        }
    }

    /// Serve HTTPS, with a CA made at start-up.
    pub fn with_tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Accept `token` too, with `access`.
    pub fn with_token(mut self, token: &str, access: TokenAccess) -> Self {
        self.tokens.push((token.to_string(), access));
        self
    }

    /// Which token (0: `oauth_token`, then `tokens` in order) `bearer` is,
    /// and what it may do; `None` for a token Quay never issued.
    pub(crate) fn access_of(&self, bearer: &str) -> Option<(usize, TokenAccess)> {
        if bearer == self.oauth_token {
            return Some((0, TokenAccess::org_admin()));
        }
        self.tokens
            .iter()
            .position(|(t, _)| t == bearer)
            .map(|i| (i + 1, self.tokens[i].1.clone()))
    }
}

/// Faults injected into `/api/v1` calls.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Added to every call.
    pub latency: Duration,
    /// The next N calls get 429.
    pub burst_429: u32,
    /// `Retry-After` seconds sent with injected 429s.
    pub retry_after_secs: Option<u64>,
    /// Fraction of calls answered 500 (JSON) or 502 (an HTML page, as a proxy would).
    pub error_5xx_fraction: f64,
    /// Fraction of calls whose connection is closed without an answer.
    pub drop_fraction: f64,
    /// A token bucket: requests per second and burst; past it, 429 with `Retry-After`.
    pub rate_limit: Option<(f64, u32)>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

pub(crate) struct Shared {
    cfg: EmulatorConfig,
    host: String,
    /// `http` or `https`, for URLs the emulator hands out (the registry realm).
    scheme: &'static str,
    model: Mutex<state::Model>,
    faults: Mutex<Faults>,
    burst_left: AtomicU32,
    bucket: Mutex<Option<Bucket>>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
    total: AtomicU64,
}

/// A running emulator; stops on [`Emulator::shutdown`] or when dropped.
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    authority: Option<TestAuthority>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .field("config", &self.shared.cfg)
            .finish()
    }
}

/// Why a connection was closed without an answer (injected `drop_fraction`).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by fault injection")
    }
}

impl std::error::Error for Dropped {}

impl Emulator {
    /// Listen on `listen` (port 0 picks a free one) and serve until shut
    /// down; over HTTPS with a fresh CA when `cfg.tls`.
    pub async fn start(listen: SocketAddr, cfg: EmulatorConfig) -> std::io::Result<Emulator> {
        let authority = if cfg.tls {
            Some(TestAuthority::generate().map_err(std::io::Error::other)?)
        } else {
            None
        };
        let acceptor = match &authority {
            Some(a) => Some(tokio_rustls::TlsAcceptor::from(
                a.server_config().map_err(std::io::Error::other)?,
            )),
            None => None,
        };
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let faults = cfg.faults.clone();
        let shared = Arc::new(Shared {
            host: addr.to_string(),
            scheme: if cfg.tls { "https" } else { "http" },
            burst_left: AtomicU32::new(faults.burst_429),
            bucket: Mutex::new(None),
            faults: Mutex::new(faults),
            model: Mutex::new(state::Model::default()),
            calls: Mutex::new(BTreeMap::new()),
            total: AtomicU64::new(0),
            cfg,
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(listener, acceptor, shared.clone(), stopped));
        Ok(Emulator {
            addr,
            shared,
            authority,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT/api/v1`, or `https://…` when serving TLS.
    pub fn api_url(&self) -> String {
        format!("{}://{}/api/v1", self.shared.scheme, self.addr)
    }

    /// The PEM certificate of the CA that signed the emulator's server
    /// certificate: what a client must trust. `None` over plain HTTP.
    pub fn ca_pem(&self) -> Option<&str> {
        self.authority.as_ref().map(TestAuthority::ca_pem)
    }

    /// `127.0.0.1:PORT`: the registry (`/v2/`) is served on the same address.
    pub fn registry_host(&self) -> String {
        self.addr.to_string()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replace the faults; `burst_429` starts counting again.
    pub fn set_faults(&self, f: Faults) {
        self.shared.burst_left.store(f.burst_429, Ordering::SeqCst);
        *self.shared.bucket.lock().unwrap() = None;
        *self.shared.faults.lock().unwrap() = f;
    }

    pub fn snapshot(&self) -> EmulatorState {
        let mut s = self.shared.model.lock().unwrap().snapshot();
        s.api_calls = self
            .shared
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        s
    }

    /// Whether the registry would log `username` (`org+short`) in with
    /// `token` now: true only for a robot's current token. The same check
    /// `/v2/auth` makes, for tests that need no registry client.
    pub fn accepts_login(&self, username: &str, token: &str) -> bool {
        self.shared
            .model
            .lock()
            .unwrap()
            .registry_login(username, token)
            .is_some()
    }

    /// Set a robot's description and `unstructured_metadata`, which Quay's
    /// API cannot change: for tests that need a robot as an older quayside,
    /// or a person, left it. `false` when there is no robot `full_name`.
    pub fn rewrite_robot(
        &self,
        full_name: &str,
        description: &str,
        metadata: Option<serde_json::Value>,
    ) -> bool {
        self.shared
            .model
            .lock()
            .unwrap()
            .rewrite_robot(full_name, description, metadata)
    }

    /// `/api/v1` calls received so far, faulted ones included.
    pub fn api_calls(&self) -> u64 {
        self.shared.total.load(Ordering::SeqCst)
    }

    /// Stop listening and close every connection.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    let app = http::router(shared.clone());
    // Dropping the set aborts the connections still open.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                let shared = shared.clone();
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    handle(shared.clone(), app.clone(), req)
                });
                let acceptor = acceptor.clone();
                conns.spawn(async move {
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        // A client that refuses our certificate ends the
                        // handshake: nothing to serve.
                        Some(tls) => {
                            let Ok(stream) = tls.accept(stream).await else { return };
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
}

/// Faults first (for API calls), then the router. Returning `Err` makes
/// hyper close the connection without writing an answer.
async fn handle(
    shared: Arc<Shared>,
    app: axum::Router,
    req: Request<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let path = req.uri().path();
    if path == "/api/v1" || path.starts_with("/api/v1/") {
        let endpoint = http::Route::parse(req.method(), path).endpoint();
        shared.total.fetch_add(1, Ordering::SeqCst);
        *shared.calls.lock().unwrap().entry(endpoint).or_default() += 1;
        if let Some(reply) = inject_faults(&shared).await? {
            return Ok(reply);
        }
    }
    let resp = tower::ServiceExt::oneshot(app, req)
        .await
        .unwrap_or_else(|never| match never {});
    Ok(resp)
}

async fn inject_faults(shared: &Shared) -> Result<Option<Response<Body>>, Dropped> {
    let f = shared.faults.lock().unwrap().clone();
    if !f.latency.is_zero() {
        tokio::time::sleep(f.latency).await;
    }
    if f.drop_fraction > 0.0 && rand::random::<f64>() < f.drop_fraction {
        return Err(Dropped);
    }
    let took_burst = shared
        .burst_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if took_burst {
        return Ok(Some(too_many(&shared.host, f.retry_after_secs)));
    }
    if let Some((rate, burst)) = f.rate_limit
        && let Some(wait) = take_token(shared, rate, burst)
    {
        return Ok(Some(too_many(&shared.host, Some(wait))));
    }
    if f.error_5xx_fraction > 0.0 && rand::random::<f64>() < f.error_5xx_fraction {
        let resp = if rand::random::<bool>() {
            reply::Reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Internal Server Error",
            )
            .render(&shared.host)
        } else {
            (
                StatusCode::BAD_GATEWAY,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
            )
                .into_response()
        };
        return Ok(Some(resp));
    }
    Ok(None)
}

/// Take a token from the bucket; `Some(seconds to wait)` when it is empty.
fn take_token(shared: &Shared, rate: f64, burst: u32) -> Option<u64> {
    let mut b = shared.bucket.lock().unwrap();
    let now = Instant::now();
    let bucket = b.get_or_insert(Bucket {
        tokens: f64::from(burst),
        last: now,
    });
    let refill = now.duration_since(bucket.last).as_secs_f64() * rate;
    bucket.tokens = (bucket.tokens + refill).min(f64::from(burst));
    bucket.last = now;
    if bucket.tokens >= 1.0 {
        bucket.tokens -= 1.0;
        None
    } else {
        Some((((1.0 - bucket.tokens) / rate.max(f64::MIN_POSITIVE)).ceil() as u64).max(1))
    }
}

fn too_many(host: &str, retry_after: Option<u64>) -> Response<Body> {
    let mut resp = reply::Reply::error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "Too Many Requests",
    )
    .render(host);
    if let Some(secs) = retry_after {
        resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    resp
}
