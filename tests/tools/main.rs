//! Tests against the real tools `scripts/setup` installs and servers on
//! loopback, but no Kubernetes control plane: `sops` and `age` both ways,
//! `quayside render` checked by `sops`, `skopeo login` against the
//! emulator, and the git server (`testcluster gitserver`) behind source
//! detection and the side-repository writer (over HTTPS too), Argo CD's
//! repo server (kustomize with the KSOPS exec plugin) over rendered folders
//! and its Lua health checks and actions for quayside's kinds (`argo-lua`),
//! and `helm` on the chart and `promtool` on the alerting rules.
//! `cargo test --test tools`.

mod argocd_kustomize;
mod argocd_lua;
mod gitops_side_repo;
mod helm_chart;
mod monitoring;
mod render_cli;
mod seal_interop;
mod seal_minimal_diff;
mod side_repo_tls;
mod skopeo_login;
mod source_detection;
