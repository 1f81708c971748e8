//! Crash points for tests: `QUAYSIDE_CRASH_AT=<point>` aborts the process
//! when it reaches that point, so a test can prove that a restart converges.
//! Compiled only into debug builds; release builds ignore the variable.

/// Abort the process here if the test asked for a crash at `point`.
#[inline]
pub fn point(point: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("QUAYSIDE_CRASH_AT").is_ok_and(|p| p == point) {
        eprintln!("quayside: crash point {point} reached; aborting as requested");
        std::process::abort();
    }
    #[cfg(not(debug_assertions))]
    let _ = point;
}

/// Every crash point of the rotation flow, in the order they are reached.
pub const ROTATION_POINTS: &[&str] = &[
    "rotation:push-regenerated",
    "rotation:push-persisted",
    "rotation:pull-regenerated",
    "rotation:pull-persisted",
    "rotation:annotation-removed",
];

/// Every crash point of a scheduled rotation, in the order they are
/// reached: new robots made and granted, their logins persisted, the old
/// robots deleted (before the generation is recorded).
pub const SCHEDULED_POINTS: &[&str] = &[
    "scheduled:robots-created",
    "scheduled:persisted",
    "rotation:old-robots-deleted",
];
