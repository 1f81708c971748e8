//! Reaching the cluster from an operator's command (`status`, `rotate`,
//! `doctor`): the kubeconfig from `--kubeconfig`, else `KUBECONFIG` or
//! `~/.kube/config`, else the Pod's ServiceAccount, as kubectl does.

use std::path::PathBuf;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The flags every operator command takes to reach the cluster.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KubeArgs {
    /// Kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long)]
    pub context: Option<String>,
}

/// The client configuration `args` name.
pub async fn config(args: &KubeArgs) -> anyhow::Result<kube::Config> {
    let options = KubeConfigOptions {
        context: args.context.clone(),
        ..Default::default()
    };
    match &args.kubeconfig {
        Some(path) => {
            let kc = Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            Ok(kube::Config::from_custom_kubeconfig(kc, &options).await?)
        }
        None if args.context.is_some() => Ok(kube::Config::from_kubeconfig(&options).await?),
        None => kube::Config::infer().await.context(
            "no Kubernetes configuration (--kubeconfig, KUBECONFIG, ~/.kube/config or in-cluster)",
        ),
    }
}

/// A client, and the namespace commands use when none is given (the
/// context's, else `default`).
pub async fn client(args: &KubeArgs) -> anyhow::Result<(kube::Client, String)> {
    let config = config(args).await?;
    let namespace = config.default_namespace.clone();
    Ok((kube::Client::try_from(config)?, namespace))
}
