//! Rotations with a real Flux reconciling the side repository: while a
//! watch records every value the target pull Secrets ever hold (in memory
//! only; no token is printed) and the Quay emulator tells when each token
//! is revoked, the Component is rotated again and again. The report is how
//! long any target served a revoked token after each rotation's cut-over.
//!
//! The rotation requested here is an emergency one: Quay regenerates the
//! token at once, so a target serves a revoked token until the new one is
//! delivered in any mode (reported apart, as the delivery gap). Each
//! target's cut-over is when it first holds the newer generation; the
//! figure that matters is how long a revoked token is served after that.
//!
//! Three delivery modes are run (docs/side-repo.md, "Delivery modes"):
//! - `Both` (the default: the controller commits *and* applies):
//!   kustomize-controller re-applies the revision it last fetched every
//!   interval, so after a cut-over it puts the revoked token back until it
//!   fetches the rotation's commit. Measured and printed, bounded loosely.
//! - `GitOps` with the emergency policy `Wait`: Flux is the only writer, so
//!   no revoked token ever comes back after a cut-over (asserted: 0).
//! - `GitOps` with the default emergency policy `Direct`: the controller
//!   applies an emergency's new token itself at once, and Flux may put the
//!   revoked one back until it fetches the commit — the documented price of
//!   not waiting. Measured and printed, bounded loosely.

use std::time::{Duration, Instant};

use quayside_testkit::component;
use quayside_testkit::served::{self, Report};

use super::flux_e2e::{APP, FLUX_T, FluxFixture};

/// Twenty rotations, as issue 14 asks; 100 with `QUAYSIDE_LONG=1`.
fn rotations() -> i64 {
    if quayside_testkit::long() { 100 } else { 20 }
}

/// Two Environments (two targets) whose spec carries `spec`, a running
/// Flux syncing both, and `n` rotations of Component [`APP`], each waited
/// for until the controller finished it (old robots deleted, annotation
/// removed) and both Kustomizations applied the side repository's new
/// head. Returns what the targets served.
async fn rotate_under_flux(n: i64, spec: serde_json::Value) -> Report {
    let f = FluxFixture::start(2, spec).await;
    f.wait_all_applied().await;
    let started = Instant::now();
    let work = async {
        let mut generation = component::generation(&f.h.components().get(APP).await.unwrap());
        for _ in 0..n {
            f.h.request_rotation(APP).await;
            let c = f.h.wait_rotated(APP, generation + 1, FLUX_T).await;
            generation = component::generation(&c);
            f.wait_all_applied().await;
        }
        generation
    };
    let (generation, record) = served::record_while(
        &f.h.client,
        &f.targets(),
        &format!("{APP}-pull"),
        &f.h.emulator,
        work,
    )
    .await;
    let report = record.report();
    eprintln!(
        "flux_rotation: {n} rotations in {:.1} s, ending at generation {generation}\n{}",
        started.elapsed().as_secs_f64(),
        report.summary()
    );
    assert!(
        record.all_current(&f.h.emulator),
        "every target ends holding a login Quay accepts"
    );
    // Every rotation revoked one token the targets had held, and each
    // target went through every generation.
    assert_eq!(report.exposures.len() as i64, n, "{}", report.summary());
    assert!(
        record.changes() >= 2 * (n as usize + 1),
        "the watch saw each target change at every rotation ({} changes)",
        record.changes()
    );
    report
}

/// Today's behaviour (the controller applies and commits; `Both`): the
/// longest time a target served a revoked token after its cut-over is
/// measured and printed (hundreds of milliseconds here, every stretch
/// written by kustomize-controller re-applying the revision it fetched
/// before the rotation). What is asserted is what this mode does bound:
/// every such stretch ends within one Flux round (the 2 s GitRepository
/// interval plus an apply; [`EXPOSURE_BOUND`] leaves room for a loaded
/// machine), and the targets end on the current login.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flux_rotations_in_both_mode_commit_and_apply() {
    let report = rotate_under_flux(rotations(), serde_json::json!({})).await;
    assert!(
        report.longest() < EXPOSURE_BOUND,
        "a revoked token was served for longer than one Flux round:\n{}",
        report.summary()
    );
}

/// `GitOps` mode, emergencies waiting for the engine: Flux is the only
/// writer of the target Secrets, so once a target holds the new generation
/// the revoked token never comes back — 0 after every cut-over. (Until the
/// cut-over the target serves the token Quay revoked at the emergency's
/// start: the delivery gap, in the report.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flux_rotations_in_gitops_mode_never_bring_a_revoked_token_back() {
    let spec = serde_json::json!({"delivery": {"mode": "GitOps", "emergency": "Wait"}});
    let report = rotate_under_flux(rotations(), spec).await;
    assert_eq!(
        report.longest(),
        Duration::ZERO,
        "a revoked token came back after a cut-over in GitOps mode:\n{}",
        report.summary()
    );
}

/// `GitOps` mode with the default emergency policy (`Direct`): the
/// controller applies an emergency's new token at once, beside Flux, which
/// can put the revoked one back until it fetches the rotation's commit.
/// Measured and printed; bounded like `Both`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flux_rotations_in_gitops_mode_with_direct_emergencies() {
    let spec = serde_json::json!({"delivery": {"mode": "GitOps"}});
    let report = rotate_under_flux(rotations(), spec).await;
    assert!(
        report.longest() < EXPOSURE_BOUND,
        "a revoked token was served for longer than one Flux round:\n{}",
        report.summary()
    );
}

/// One Flux round (2 s interval, fetch, decrypt, apply) with room for a
/// loaded CI machine.
const EXPOSURE_BOUND: Duration = Duration::from_secs(30);
