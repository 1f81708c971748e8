//! quayside: private-by-default Quay image repositories for Components, with
//! pull credentials delivered to every Environment as sealed GitOps manifests
//! and as Secrets linked in the target namespace.
//!
//! Pure core, thin adapters (see `docs/architecture.md`):
//! - [`api`]: the custom resources; [`credentials`]: robot logins;
//!   [`vocabulary`]: every label, annotation, object name and finalizer.
//! - pure: [`plan`] (steps and status), [`names`], [`render`], and the
//!   sealed format in [`seal`].
//! - adapters: [`quay`] (reqwest), [`source`] and [`gitops`] (git2), with
//!   [`tls`] for the extra CA they trust.
//!
//! The Quay emulator, the test kit and the benchmarks are crates of their
//! own under `crates/`; nothing here depends on them.

pub mod api;
pub mod controller;
pub mod credentials;
pub mod duration;
pub mod gitops;
pub mod leader;
pub mod memory;
pub mod names;
pub mod plan;
pub mod quay;
pub mod render;
pub mod seal;
pub mod server;
pub mod shard;
pub mod source;
pub mod text;
pub mod tls;
pub mod vocabulary;
