//! quayside's test kit: real servers on loopback for the integration tests
//! and the benchmarks — a Kubernetes control plane ([`cluster`]), a git
//! server ([`git_server`]), the Quay emulator and the controller together
//! ([`harness`]), a real Flux ([`flux`]) and a record of what target
//! Secrets served ([`served`]), plus the scratch folders, ports and paths
//! they use. One copy, shared by `tests/` and `crates/bench`; the
//! controller never depends on it.

pub mod cluster;
pub mod component;
pub mod flux;
pub mod git_server;
pub mod harness;
pub mod leaks;
pub mod ports;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod scratch;
pub mod served;
pub mod tools;
pub mod wait;

/// `QUAYSIDE_LONG=1`: run the long variants of the reliability tests
/// (their sizes are small by default, for CI).
pub fn long() -> bool {
    std::env::var("QUAYSIDE_LONG").is_ok_and(|v| v == "1")
}
