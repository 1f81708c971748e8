//! quayside run: the controller, with its flags (each also an environment variable).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use kube::config::{KubeConfigOptions, Kubeconfig};
use secrecy::SecretString;

use quayside::controller::{self, Config, Context, DeliveryIdentity, Metrics, Readiness};
use quayside::duration::parse as parse_duration;
use quayside::gitops::{DeliveryMode, GitAuth, SideRepoConfig};
use quayside::plan::side_path::PathScope;
use quayside::quay::{QuayClient, QuayConfig, RateLimit, RetryPolicy};
use quayside::render::KustomizeFlavor;
use quayside::seal::Identity;
use quayside::source::ProbeScope;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Quay API base URL.
    #[arg(
        long,
        env = "QUAYSIDE_QUAY_API_URL",
        default_value = "https://quay.io/api/v1"
    )]
    pub quay_api_url: String,
    /// Quay organization that holds the repositories and robots.
    #[arg(long, env = "QUAYSIDE_QUAY_ORGANIZATION")]
    pub quay_organization: String,
    /// File holding the Quay OAuth token; read on every call, so it can be rotated without a restart.
    #[arg(long, env = "QUAYSIDE_QUAY_TOKEN_FILE")]
    pub quay_token_file: PathBuf,
    /// Registry host written into pull Secrets and status.
    #[arg(long, env = "QUAYSIDE_REGISTRY_HOST", default_value = "quay.io")]
    pub registry_host: String,
    /// Extra CA certificates (PEM) trusted beside the system's, for Quay, the side repository (git over HTTPS) and the forge.
    #[arg(long, env = "QUAYSIDE_EXTRA_CA_FILE")]
    pub extra_ca_file: Option<PathBuf>,
    /// Timeout of each Quay request.
    #[arg(long, env = "QUAYSIDE_QUAY_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub quay_timeout: Duration,
    /// Quay API requests per second, shared by every reconcile (Quay.io allows about 5 per address); 0: unlimited (a Quay of your own without a rate limit).
    #[arg(long, env = "QUAYSIDE_QUAY_RATE_LIMIT", default_value_t = 5.0)]
    pub quay_rate_limit: f64,
    /// Quay API requests that may go at once after a quiet spell (the token bucket's size).
    #[arg(long, env = "QUAYSIDE_QUAY_BURST", default_value_t = 25)]
    pub quay_burst: u32,

    /// Side repository clone URL (https, http or a local path). Unset: deliver to clusters only.
    #[arg(long, env = "QUAYSIDE_SIDE_REPO_URL")]
    pub side_repo_url: Option<String>,
    /// Branch Argo CD syncs.
    #[arg(long, env = "QUAYSIDE_SIDE_REPO_BRANCH", default_value = "main")]
    pub side_repo_branch: String,
    /// User for basic auth to the side repository.
    #[arg(long, env = "QUAYSIDE_SIDE_REPO_USERNAME")]
    pub side_repo_username: Option<String>,
    /// File holding the password or token for the side repository.
    #[arg(long, env = "QUAYSIDE_SIDE_REPO_PASSWORD_FILE")]
    pub side_repo_password_file: Option<PathBuf>,
    /// Where the controller keeps its clone.
    #[arg(
        long,
        env = "QUAYSIDE_SIDE_REPO_WORKDIR",
        default_value = "/tmp/quayside/side-repo"
    )]
    pub side_repo_workdir: PathBuf,
    /// `direct` commits to the branch; `pull-request` pushes a branch and opens a pull request.
    #[arg(long, env = "QUAYSIDE_SIDE_REPO_MODE", value_enum, default_value_t = SideRepoMode::Direct)]
    pub side_repo_mode: SideRepoMode,
    /// Who writes each Environment's pull Secrets when its
    /// `spec.delivery.mode` is unset: `direct` (the controller applies, no
    /// commit), `gitops` (the controller commits, a GitOps engine applies),
    /// `both` (commit, then apply). Without a side repository: `direct`.
    #[arg(long, env = "QUAYSIDE_DELIVERY_MODE", value_enum, default_value_t = DeliveryModeArg::Both)]
    pub delivery_mode: DeliveryModeArg,
    /// Forge REST API (GitHub shape) for pull-request mode, e.g. https://api.github.com.
    #[arg(long, env = "QUAYSIDE_FORGE_API_URL")]
    pub forge_api_url: Option<String>,
    /// Owner/repository of the side repository on the forge, e.g. platform/gitops.
    #[arg(long, env = "QUAYSIDE_FORGE_REPOSITORY")]
    pub forge_repository: Option<String>,
    /// File holding the forge API token (defaults to the side-repo password file).
    #[arg(long, env = "QUAYSIDE_FORGE_TOKEN_FILE")]
    pub forge_token_file: Option<PathBuf>,
    /// `ksops` (Argo CD) or `flux` kustomization flavour.
    #[arg(long, env = "QUAYSIDE_KUSTOMIZE_FLAVOR", default_value = "ksops")]
    pub kustomize_flavor: KustomizeFlavor,
    /// The controller's age identity file (AGE-SECRET-KEY-1…), mounted from a Secret.
    #[arg(long, env = "QUAYSIDE_AGE_IDENTITY_FILE")]
    pub age_identity_file: PathBuf,

    /// Let the anonymous source-repository probe reach loopback, private and
    /// link-local addresses: for a git server on the platform's own network.
    /// Off by default, so a tenant's URL cannot aim the controller at
    /// internal services.
    #[arg(long, env = "QUAYSIDE_SOURCE_ALLOW_INTERNAL", default_value_t = false, action = clap::ArgAction::Set)]
    pub source_allow_internal: bool,

    /// Write into namespaces as a ServiceAccount of the workspace
    /// (impersonation), so Kubernetes RBAC decides where a tenant may
    /// deliver. `false` only on single-tenant clusters.
    #[arg(long, env = "QUAYSIDE_IMPERSONATE", default_value_t = true, action = clap::ArgAction::Set)]
    pub impersonate: bool,
    /// The workspace ServiceAccount writes act as when an Environment names none.
    #[arg(
        long,
        env = "QUAYSIDE_DEFAULT_DELIVERY_SERVICE_ACCOUNT",
        default_value = "quayside-delivery"
    )]
    pub default_delivery_service_account: String,
    /// Let an Environment's spec.sideRepo.path name any folder under
    /// `environments/` instead of only one under `environments/<workspace>/`:
    /// for a side repository laid out before workspaces, where tenants are
    /// trusted with each other's folders. Nothing outside `environments/`
    /// is ever written.
    #[arg(long, env = "QUAYSIDE_SIDE_REPO_ANY_PATH", default_value_t = false, action = clap::ArgAction::Set)]
    pub side_repo_any_path: bool,

    /// Passes of each kind (Component, Environment) that run at once; more
    /// wait their turn. Bounds memory, Quay and API server load. A
    /// rotation's Environments share side-repository commits only as far
    /// as they run at once: past this many, each later one waits for a
    /// push of its own.
    #[arg(long, env = "QUAYSIDE_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Watch pairs (our Secrets, the ServiceAccounts) on remote clusters at
    /// most: one per identity and target namespace that Environments use.
    /// Beyond it, remote targets are healed by the heartbeat only (logged,
    /// with a Warning event on each Environment affected); 0 watches none.
    #[arg(long, env = "QUAYSIDE_REMOTE_WATCH_LIMIT", default_value_t = 100)]
    pub remote_watch_limit: usize,
    /// Reconcile every Environment and Component again after this long.
    #[arg(long, env = "QUAYSIDE_HEARTBEAT", default_value = "24h", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// Verify each Component's Quay repository, robots and grants this often
    /// (two API calls each, plus one listing of the organization's robots
    /// shared by all); default: the heartbeat.
    #[arg(long, env = "QUAYSIDE_QUAY_VERIFY_INTERVAL", value_parser = parse_duration)]
    pub quay_verify_interval: Option<Duration>,
    /// Rotate every Component's robots this often without downtime; 0 disables.
    #[arg(long, env = "QUAYSIDE_ROTATION_INTERVAL", default_value = "90d", value_parser = parse_duration)]
    pub rotation_interval: Duration,
    /// Finish a rotation this long after its new tokens were persisted, even
    /// if some Environments do not hold them yet (they are reported as
    /// stragglers and catch up when they come back); 0 waits for ever.
    #[arg(long, env = "QUAYSIDE_ROTATION_DEADLINE", default_value = "1h", value_parser = parse_duration)]
    pub rotation_deadline: Duration,
    /// Refuse `image.redhat.com/generate` set again this soon after a
    /// completed rotation (a GitOps engine re-applying it); 0 disables.
    #[arg(long, env = "QUAYSIDE_ROTATION_REQUEST_COOLDOWN", default_value = "5m", value_parser = parse_duration)]
    pub rotation_request_cooldown: Duration,
    /// Give up cleaning an unreachable target after this long (with an event).
    #[arg(long, env = "QUAYSIDE_CLEANUP_TIMEOUT", default_value = "10m", value_parser = parse_duration)]
    pub cleanup_timeout: Duration,

    /// Watch Components and Environments in this namespace only (default: all).
    #[arg(long, env = "QUAYSIDE_WATCH_NAMESPACE")]
    pub watch_namespace: Option<String>,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(long, env = "QUAYSIDE_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Kubeconfig to use instead of the in-cluster or default configuration.
    #[arg(long, env = "QUAYSIDE_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Hold a Lease so only one replica acts (ignored with `--shards`).
    #[arg(long, env = "QUAYSIDE_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Split the workspaces over the replicas: each workspace namespace
    /// falls in one of this many shards, each replica holds a fair share
    /// of the shards' Leases and serves only their workspaces. Every
    /// replica must have the same number. 0: no sharding, one leader acts.
    #[arg(long, env = "QUAYSIDE_SHARDS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub shards: u32,
    /// Namespace of the leader-election Lease (and of the shard Leases).
    #[arg(long, env = "POD_NAMESPACE", default_value = "quayside-system")]
    pub leader_election_namespace: String,
    /// How long a leader's (or a shard's) Lease lasts without renewal; it
    /// renews every tenth of that (at most 2 s) and steps down after two
    /// thirds.
    #[arg(long, env = "QUAYSIDE_LEADER_ELECTION_LEASE_DURATION", default_value = "15s", value_parser = parse_duration)]
    pub leader_election_lease_duration: Duration,
    /// `json` or `text` logs.
    #[arg(long, env = "QUAYSIDE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How the controller delivers to the side repository.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SideRepoMode {
    /// Commit to the branch.
    Direct,
    /// Push a branch and open a pull request.
    PullRequest,
}

/// The cluster-wide default delivery mode (`--delivery-mode`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryModeArg {
    Direct,
    #[value(name = "gitops")]
    GitOps,
    Both,
}

impl From<DeliveryModeArg> for quayside::api::DeliveryMode {
    fn from(m: DeliveryModeArg) -> Self {
        match m {
            DeliveryModeArg::Direct => quayside::api::DeliveryMode::Direct,
            DeliveryModeArg::GitOps => quayside::api::DeliveryMode::GitOps,
            DeliveryModeArg::Both => quayside::api::DeliveryMode::Both,
        }
    }
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

fn read_secret_file(path: &PathBuf, what: &str) -> anyhow::Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} from {}", path.display()))?;
    Ok(SecretString::from(text.trim().to_string()))
}

pub(super) fn side_repo_config(args: &Args) -> anyhow::Result<Option<SideRepoConfig>> {
    let Some(url) = args.side_repo_url.clone() else {
        return Ok(None);
    };
    let password = match &args.side_repo_password_file {
        Some(p) => Some(read_secret_file(p, "side-repository password")?),
        None => None,
    };
    let auth = match (&args.side_repo_username, password.clone()) {
        (Some(u), Some(p)) => GitAuth::Basic {
            username: u.clone(),
            password: p,
        },
        (None, Some(p)) => GitAuth::Basic {
            username: "x-access-token".into(),
            password: p,
        },
        _ => GitAuth::None,
    };
    let mode = match args.side_repo_mode {
        SideRepoMode::Direct => DeliveryMode::Direct,
        SideRepoMode::PullRequest => {
            let api_url = args
                .forge_api_url
                .clone()
                .context("--side-repo-mode pull-request needs --forge-api-url")?;
            let full = args
                .forge_repository
                .clone()
                .context("--side-repo-mode pull-request needs --forge-repository owner/name")?;
            let (owner, repo) = full
                .split_once('/')
                .context("--forge-repository must be owner/name")?;
            let token = match &args.forge_token_file {
                Some(p) => read_secret_file(p, "forge token")?,
                None => password.context(
                    "--side-repo-mode pull-request needs --forge-token-file or --side-repo-password-file",
                )?,
            };
            DeliveryMode::PullRequest {
                api_url,
                owner: owner.into(),
                repo: repo.into(),
                token,
            }
        }
    };
    Ok(Some(SideRepoConfig {
        url,
        branch: args.side_repo_branch.clone(),
        auth,
        workdir: args.side_repo_workdir.clone(),
        mode,
        author_name: "quayside".into(),
        author_email: "quayside@localhost".into(),
        max_push_attempts: 5,
    }))
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn,hyper=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == LogFormat::Json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    init_tracing(args.log_format);
    let identity_text = read_secret_file(&args.age_identity_file, "age identity")?;
    let identity = Identity::parse(secrecy::ExposeSecret::expose_secret(&identity_text))
        .context("the --age-identity-file does not hold an age identity (AGE-SECRET-KEY-1…)")?;
    // Checked at start-up, so a bad file stops the controller with one
    // clear line rather than failing every pass.
    let extra_ca = args
        .extra_ca_file
        .as_deref()
        .map(quayside::tls::ExtraCa::load)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let quay = quay_client(&args)?;
    tokio::spawn(check_quay_token(quay.clone()));
    let config = controller_config(&args, identity)?;
    let kube_config = kube_config(&args).await?;
    let client = Client::try_from(kube_config.clone())?;
    // Shard Leases on connections of their own: renewals must not queue
    // behind a busy controller's requests.
    let lease_client = (args.shards > 0)
        .then(|| Client::try_from(kube_config.clone()))
        .transpose()?;
    let config = Config {
        delivery: args.impersonate.then(|| DeliveryIdentity {
            base: kube_config,
            default_account: args.default_delivery_service_account.clone(),
        }),
        ..config
    };

    let metrics = Metrics::default();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    quay.metrics().register(&mut registry);
    let shards = quayside::shard::Shards::new(args.shards);
    shards.register(&mut registry);
    let readiness = Readiness::default();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(quayside::server::serve(
        args.listen,
        registry,
        readiness.clone(),
        stopped(stop_rx.clone()),
    ));
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight passes");
        let _ = stop_tx.send(true);
    });
    // Ready means "can serve", leader or standby: a rollout of two replicas
    // must not wait for a standby that will never lead.
    tokio::spawn(controller::report_readiness(
        client.clone(),
        readiness.clone(),
    ));
    // With shards there is no leader: every replica serves its shards.
    let sharder = lease_client.map(|lease_client| {
        quayside::shard::Sharder::new(
            lease_client,
            &args.leader_election_namespace,
            &replica_identity(),
            args.leader_election_lease_duration,
            shards.clone(),
        )
    });
    let elector =
        (args.leader_election && sharder.is_none()).then(|| elector(&args, client.clone()));
    if let Some(e) = &elector {
        tracing::info!("waiting for leadership");
        tokio::select! {
            r = e.acquire() => r?,
            _ = stopped(stop_rx.clone()) => return Ok(()),
        }
        tracing::info!("leading");
    }
    // What a burst of passes freed goes back to the system once it is over.
    tokio::spawn(quayside::memory::trim_when_quiet(quayside::memory::QUIET));
    let ctx = Context::new(client, config, quay, metrics).with_extra_ca(extra_ca);
    let ctx = Arc::new(ctx.with_shards(shards));
    let stop = stopped(stop_rx.clone());
    match sharder {
        Some(sharder) => {
            // Watches follow the shards held once two rounds saw no change.
            let lease = args.leader_election_lease_duration;
            let settle = quayside::plan::lease::Timing::for_lease(lease).retry * 2;
            let run = controller::sharded::run(ctx, settle, stop);
            serve_shards(sharder, run).await
        }
        None => lead(elector.as_ref(), controller::run(ctx, stop)).await?,
    }
    let _ = server.await;
    Ok(())
}

/// Resolves once `rx` says stop.
async fn stopped(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// Run the controllers; with an elector, only while leading, and hand the
/// lease over when stopped on purpose.
async fn lead(
    elector: Option<&quayside::leader::LeaderElector>,
    run: impl std::future::Future<Output = ()>,
) -> anyhow::Result<()> {
    let Some(e) = elector else {
        run.await;
        return Ok(());
    };
    tokio::select! {
        _ = run => {}
        err = e.hold() => {
            anyhow::bail!("stepping down: {err}");
        }
    }
    // Stopped on purpose: hand over now, not after the lease expires.
    match e.release().await {
        Ok(()) => tracing::info!("released the lease"),
        Err(err) => tracing::warn!(error = %err, "releasing the lease"),
    }
    Ok(())
}

/// Run the controllers while the sharder holds shards; once they drained
/// after a stop, the sharder gives its shards up (kept renewed until then,
/// so passes finishing are still the holder's).
async fn serve_shards(
    sharder: quayside::shard::Sharder,
    run: impl std::future::Future<Output = ()>,
) {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let holding = tokio::spawn(sharder.run(async move {
        let _ = done_rx.await;
    }));
    run.await;
    let _ = done_tx.send(());
    let _ = holding.await;
}

/// This replica's name in Leases: its Pod's, else one of this process.
fn replica_identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| format!("quayside-{}", std::process::id()))
}

fn elector(args: &Args, client: Client) -> quayside::leader::LeaderElector {
    quayside::leader::LeaderElector::new(
        client,
        &args.leader_election_namespace,
        quayside::vocabulary::LEASE_LEADER,
        &replica_identity(),
        args.leader_election_lease_duration,
    )
}

/// A robot name no Component ever gets (robot names of Components carry a
/// repository's name and a role): reading it is harmless.
pub(super) const ACCESS_PROBE: &str = "quayside_access_check";

/// Say at start-up, in one line, whether the Quay token can do what every
/// Component needs: reading a robot needs the organization to exist and
/// the token to administer it (`org:admin`), the rarest of the rights.
/// A failure is logged, not fatal: the token file may be fixed while the
/// controller runs, and each Component's condition says the same.
async fn check_quay_token(quay: QuayClient) {
    let org = quay.organization().to_string();
    match tokio::time::timeout(Duration::from_secs(30), quay.get_robot(ACCESS_PROBE)).await {
        Ok(Ok(_)) => tracing::info!(
            organization = %org,
            "Quay token checked: the organization exists and the token administers its robots"
        ),
        Ok(Err(e)) => tracing::error!(
            organization = %org,
            reason = e.reason(),
            error = %e,
            "Quay token check failed: every Component will fail until this is fixed"
        ),
        Err(_) => tracing::warn!(
            organization = %org,
            "Quay token check: no answer within 30 s; the API URL may be wrong or Quay down"
        ),
    }
}

pub(super) fn quay_client(args: &Args) -> anyhow::Result<QuayClient> {
    QuayClient::new(QuayConfig {
        api_url: args.quay_api_url.clone(),
        organization: args.quay_organization.clone(),
        token_file: args.quay_token_file.clone(),
        extra_ca: args.extra_ca_file.clone(),
        timeout: args.quay_timeout,
        retry: RetryPolicy::default(),
        rate_limit: rate_limit(args.quay_rate_limit, args.quay_burst)?,
    })
    .context("configuring the Quay client")
}

/// The shared Quay rate limit from its flags; 0 requests per second is none.
fn rate_limit(per_second: f64, burst: u32) -> anyhow::Result<Option<RateLimit>> {
    if !per_second.is_finite() || per_second < 0.0 {
        anyhow::bail!(
            "--quay-rate-limit must be 0 (unlimited) or a positive number of requests per second, not {per_second}"
        );
    }
    if per_second == 0.0 {
        return Ok(None);
    }
    if burst == 0 {
        anyhow::bail!("--quay-burst must be at least 1 (requests that may go at once)");
    }
    Ok(Some(RateLimit { per_second, burst }))
}

/// The Kubernetes client configuration: `--kubeconfig`, else in-cluster or
/// `KUBECONFIG`.
pub(super) async fn kube_config(args: &Args) -> anyhow::Result<kube::Config> {
    Ok(match &args.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?
        }
        None => kube::Config::infer()
            .await
            .context("no Kubernetes configuration (in-cluster or KUBECONFIG)")?,
    })
}

/// The controller's configuration from the flags (delivery is set once the
/// Kubernetes configuration it impersonates from is known).
fn controller_config(args: &Args, identity: Identity) -> anyhow::Result<Config> {
    Ok(Config {
        registry_host: args.registry_host.clone(),
        side_repo: side_repo_config(args)?,
        delivery_mode: args.delivery_mode.into(),
        flavor: args.kustomize_flavor,
        identity,
        heartbeat: args.heartbeat,
        quay_verify_interval: args.quay_verify_interval.unwrap_or(args.heartbeat),
        rotation_interval: (!args.rotation_interval.is_zero()).then_some(args.rotation_interval),
        cleanup_timeout: args.cleanup_timeout,
        source_retry: RetryPolicy::default(),
        source_scope: if args.source_allow_internal {
            ProbeScope::AnyAddress
        } else {
            ProbeScope::PublicOnly
        },
        namespace: args.watch_namespace.clone(),
        delivery: None,
        side_repo_scope: if args.side_repo_any_path {
            PathScope::AnyUnderRoot
        } else {
            PathScope::Workspace
        },
        rotation_request_cooldown: args.rotation_request_cooldown,
        rotation_deadline: (!args.rotation_deadline.is_zero()).then_some(args.rotation_deadline),
        concurrency: args.concurrency,
        remote_watch_limit: args.remote_watch_limit,
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
