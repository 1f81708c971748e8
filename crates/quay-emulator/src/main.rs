//! `quay-emulator`: serve the Quay API emulator on loopback until Ctrl-C or
//! SIGTERM, printing `READY <api url>` once it listens (scripts/demo, docs);
//! with `--tls-ca-out FILE`, over HTTPS, the CA written to FILE before READY.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use quay_emulator::{Emulator, EmulatorConfig, Faults, TokenAccess};

/// Serve Quay's API (and a registry login at /v2/) on loopback, for tests and demos.
#[derive(Parser)]
#[command(name = "quay-emulator", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the READY line tells which).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Organization that exists (repeatable).
    #[arg(long = "org", default_value = "quayside")]
    orgs: Vec<String>,
    /// File holding the OAuth token the API accepts.
    #[arg(long, conflicts_with = "token", required_unless_present = "token")]
    token_file: Option<PathBuf>,
    /// The OAuth token the API accepts.
    #[arg(long, env = "QUAY_EMULATOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Another accepted token, as KIND=FILE (repeatable): KIND is org-admin,
    /// creator (may create repositories, not an org admin), reader
    /// (read-only member) or repo-read (an org admin's token with only the
    /// repo:read scope); FILE holds the token.
    #[arg(long = "extra-token", value_parser = parse_extra_token)]
    extra_tokens: Vec<(TokenAccess, PathBuf)>,
    /// Private repositories allowed per organization (402 past it).
    #[arg(long)]
    private_quota: Option<usize>,
    /// Latency added to every API call, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of API calls answered with a 5xx.
    #[arg(long, default_value_t = 0.0)]
    error_5xx_fraction: f64,
    /// Fraction of API calls whose connection is dropped.
    #[arg(long, default_value_t = 0.0)]
    drop_fraction: f64,
    /// Rate limit as REQUESTS_PER_SECOND:BURST (429 with Retry-After past it).
    #[arg(long, value_parser = parse_rate)]
    rate_limit: Option<(f64, u32)>,
    /// Serve HTTPS with a CA made at start-up, and write that CA's
    /// certificate (PEM) to FILE for clients to trust (`quayside run
    /// --extra-ca-file FILE`). Without it: plain HTTP.
    #[arg(long, value_name = "FILE")]
    tls_ca_out: Option<PathBuf>,
}

fn parse_rate(s: &str) -> Result<(f64, u32), String> {
    let (rate, burst) = s
        .split_once(':')
        .ok_or("expected REQUESTS_PER_SECOND:BURST, e.g. 5:10")?;
    let rate: f64 = rate.parse().map_err(|e| format!("rate {rate:?}: {e}"))?;
    let burst: u32 = burst.parse().map_err(|e| format!("burst {burst:?}: {e}"))?;
    if rate <= 0.0 || burst == 0 {
        return Err("rate and burst must be positive".into());
    }
    Ok((rate, burst))
}

fn parse_extra_token(s: &str) -> Result<(TokenAccess, PathBuf), String> {
    let (kind, file) = s
        .split_once('=')
        .ok_or("expected KIND=FILE, e.g. creator=/tmp/creator-token")?;
    Ok((TokenAccess::from_kind(kind)?, PathBuf::from(file)))
}

/// A token from its file, trimmed; empty is refused.
fn read_token(f: &PathBuf) -> anyhow::Result<String> {
    let token = std::fs::read_to_string(f)
        .with_context(|| format!("reading the token file {f:?}"))?
        .trim()
        .to_string();
    anyhow::ensure!(!token.is_empty(), "the token file {f:?} is empty");
    Ok(token)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let token = match (&args.token_file, &args.token) {
        (Some(f), _) => read_token(f)?,
        (None, Some(t)) => t.trim().to_string(),
        (None, None) => anyhow::bail!("give --token-file or --token"),
    };
    anyhow::ensure!(!token.is_empty(), "the OAuth token is empty");
    let cfg = EmulatorConfig {
        organizations: args.orgs,
        oauth_token: token,
        tokens: args
            .extra_tokens
            .iter()
            .map(|(access, f)| Ok((read_token(f)?, access.clone())))
            .collect::<anyhow::Result<_>>()?,
        private_quota: args.private_quota,
        faults: Faults {
            latency: Duration::from_millis(args.latency_ms),
            error_5xx_fraction: args.error_5xx_fraction,
            drop_fraction: args.drop_fraction,
            rate_limit: args.rate_limit,
            ..Faults::default()
        },
        tls: args.tls_ca_out.is_some(),
    };
    let emulator = Emulator::start(args.listen, cfg)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    if let (Some(out), Some(pem)) = (&args.tls_ca_out, emulator.ca_pem()) {
        std::fs::write(out, pem)
            .with_context(|| format!("writing the CA certificate to {out:?}"))?;
    }
    println!("READY {}", emulator.api_url());
    wait_for_signal().await?;
    emulator.shutdown().await;
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
