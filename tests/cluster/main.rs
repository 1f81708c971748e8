//! Tests against a real Kubernetes control plane (kube-apiserver + etcd,
//! one shared by the whole binary, each test in namespaces of its own),
//! with the Quay emulator, the git server and the controller: the
//! end-to-end flows, bad input, security, crash consistency, faults,
//! operations, deploy/, the Argo CD scripts over live objects, and a real
//! Flux syncing the side repository. `cargo test --test cluster`;
//! `QUAYSIDE_LONG=1` runs the long variants of the `reliability_` and
//! `flux_rotation` tests.

mod api_refusals;
mod argocd_health;
mod bad_input;
mod cli_doctor;
mod cli_rotate;
mod cli_status;
mod control_plane;
mod controller_e2e;
mod crd_validation;
mod delivery_modes;
mod deploy_manifests;
mod documented_paths;
mod flux_e2e;
mod flux_rotation;
mod helm_manifests;
mod high_availability;
mod operations;
mod quay_drift;
mod quay_fidelity;
mod reliability_apiserver;
mod reliability_crash;
mod reliability_faults;
mod remote_watches;
mod render_kubectl;
mod rotation_crash;
mod rotation_deadline;
mod rotation_requests;
mod security_e2e;
mod sharding;
mod tenancy_attacks;
mod tenancy_folders;
mod tenancy_quay;
