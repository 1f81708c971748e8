//! The controller process's memory: how the allocator and libgit2's
//! object cache are set up at start-up, and freed memory handed back to
//! the system once a burst of passes is over, so that RSS at rest is what
//! the caches hold rather than the high-water mark of the last burst
//! (docs/benchmarks.md, "Memory and start-up (issue 17)").

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Notify;

/// glibc malloc arenas when neither `MALLOC_ARENA_MAX` nor
/// `GLIBC_TUNABLES=glibc.malloc.arena_max=…` says otherwise.
/// glibc's own default is 8 per core: each thread that allocates under
/// contention gets an arena of its own, and a burst spread over the
/// blocking pool leaves its freed memory in many arenas, none of it
/// returned. Two keep the tokio workers from queueing on one lock.
pub const DEFAULT_ARENAS: i32 = 2;

/// How long passes must have stopped before freed memory is returned.
pub const QUIET: Duration = Duration::from_millis(500);

/// Set up the allocator and libgit2 for a long-running controller. Call
/// once, first thing, before the async runtime starts its threads (arenas
/// are handed out on a thread's first allocation).
pub fn configure() {
    limit_arenas();
    cache_folder_trees();
}

/// The largest tree (folder listing) libgit2 keeps parsed in its object
/// cache: an Environment folder of this many bytes, about 15,000 files.
/// libgit2's default is 4 KiB (some 60 files), so a render, which reads
/// each of a folder's sealed files by path, inflated and parsed the
/// folder's listing once per file: 1,000 times for 1,000 Components, most
/// of a start-up's CPU after the decryption.
pub const TREE_CACHE_LIMIT: usize = 1 << 20;

/// The most libgit2 keeps in its object cache (all repositories; the
/// controller has one). The default, 256 MiB, would let the folders of a
/// large side repository stay in memory for good.
pub const GIT_CACHE_MAX: isize = 32 << 20;

/// The most of the side repository's pack files libgit2 keeps mapped at
/// once (its default is 8 GiB on 64-bit): windows past it are unmapped,
/// least recently used first, so a side repository of gigabytes does not
/// show up whole in RSS. Every page a pass read stays in RSS while its
/// window is mapped: with 6,000 Environment folders, 198 MB of it were
/// pack pages.
pub const GIT_MAPPED_MAX: usize = 64 << 20;

/// The size of one mapped window of a pack (libgit2's default is 1 GiB on
/// 64-bit, which maps a whole pack at once and makes the limit above
/// meaningless for packs below it).
pub const GIT_WINDOW: usize = 16 << 20;

fn cache_folder_trees() {
    // SAFETY: libgit2's global options are set before any other thread
    // exists (`configure` runs first thing in main) and never again.
    let set = unsafe {
        git2::opts::set_cache_object_limit(git2::ObjectType::Tree, TREE_CACHE_LIMIT)
            .and_then(|()| git2::opts::set_cache_max_size(GIT_CACHE_MAX))
            .and_then(|()| git2::opts::set_mwindow_size(GIT_WINDOW))
            .and_then(|()| git2::opts::set_mwindow_mapped_limit(GIT_MAPPED_MAX))
    };
    if let Err(e) = set {
        // Only slower: every read parses its folder again.
        eprintln!("quayside: libgit2 cache options not set: {e}");
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_arenas() {
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() || tunables.contains("arena_max") {
        // glibc read it at start; the operator's word stands.
        return;
    }
    // SAFETY: mallopt only sets a malloc parameter; any value is accepted.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, DEFAULT_ARENAS);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_arenas() {}

/// What lets go of memory it holds only to be faster, at the end of a
/// burst of passes (before the trim); `false` once its owner is gone, and
/// it is dropped.
type AtRest = Box<dyn Fn() -> bool + Send>;

fn at_rest() -> &'static std::sync::Mutex<Vec<AtRest>> {
    static AT_REST: OnceLock<std::sync::Mutex<Vec<AtRest>>> = OnceLock::new();
    AT_REST.get_or_init(Default::default)
}

/// Call `release` at the end of each burst of passes, before the trim,
/// for as long as it returns `true`.
pub fn release_at_rest(release: impl Fn() -> bool + Send + 'static) {
    let mut hooks = at_rest().lock().unwrap_or_else(|p| p.into_inner());
    hooks.push(Box::new(release));
}

/// Run every [`release_at_rest`] hook, then [`trim`].
pub fn rest() {
    {
        let mut hooks = at_rest().lock().unwrap_or_else(|p| p.into_inner());
        hooks.retain(|release| release());
    }
    trim();
}

/// Return the free pages of every arena to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim() {
    // SAFETY: malloc_trim takes the arenas' locks itself; 0 keeps no pad.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

fn activity() -> &'static Arc<Notify> {
    static ACTIVITY: OnceLock<Arc<Notify>> = OnceLock::new();
    ACTIVITY.get_or_init(Arc::default)
}

/// A pass finished: once passes have been quiet for [`QUIET`], the memory
/// they freed is returned ([`trim_when_quiet`]).
pub fn pass_finished() {
    activity().notify_one();
}

/// Run for ever: after each burst of passes, once none has finished for
/// `quiet`, trim. Costs nothing while no pass runs (it waits on a
/// notification, not a timer); one trim per burst otherwise.
pub async fn trim_when_quiet(quiet: Duration) {
    after_bursts(activity().clone(), quiet, || async {
        let started = std::time::Instant::now();
        tokio::task::spawn_blocking(rest).await.ok();
        tracing::debug!(took = ?started.elapsed(), "returned freed memory after a burst of passes");
    })
    .await
}

/// Call `then` once after each burst of `activity`: when it has not been
/// notified for `quiet`.
async fn after_bursts<F, Fut>(activity: Arc<Notify>, quiet: Duration, mut then: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    loop {
        activity.notified().await;
        // Each pass finishing within `quiet` of the last one extends the
        // burst.
        while tokio::time::timeout(quiet, activity.notified())
            .await
            .is_ok()
        {}
        then().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::{Notify, mpsc};

    use super::after_bursts;

    /// Generous: a loaded machine may stall the test for seconds.
    const WAIT: Duration = Duration::from_secs(30);

    #[test]
    fn at_rest_each_live_hook_lets_go_and_a_gone_one_is_dropped() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let live = Arc::new(AtomicUsize::new(0));
        let gone = Arc::new(AtomicUsize::new(0));
        let (l, g) = (live.clone(), gone.clone());
        super::release_at_rest(move || l.fetch_add(1, Ordering::SeqCst) < usize::MAX);
        super::release_at_rest(move || {
            g.fetch_add(1, Ordering::SeqCst);
            false
        });
        super::rest();
        super::rest();
        // At least: another test's rest may call it too.
        assert!(live.load(Ordering::SeqCst) >= 2, "called at each rest");
        assert_eq!(
            gone.load(Ordering::SeqCst),
            1,
            "dropped once its owner is gone"
        );
    }

    #[tokio::test]
    async fn one_trim_per_burst_of_passes() {
        let activity = Arc::new(Notify::new());
        let (tx, mut trims) = mpsc::unbounded_channel();
        let quiet = Duration::from_millis(20);
        let task = tokio::spawn(after_bursts(activity.clone(), quiet, move || {
            let _ = tx.send(());
            async {}
        }));
        // A burst: many passes finishing at once.
        for _ in 0..100 {
            activity.notify_one();
        }
        let first = tokio::time::timeout(WAIT, trims.recv()).await;
        assert!(matches!(first, Ok(Some(()))), "a trim after the burst");
        // No pass, no trim, however long the wait: a second would have
        // come `quiet` after the first.
        let idle = tokio::time::timeout(quiet * 10, trims.recv()).await;
        assert!(idle.is_err(), "a trim without any pass: {idle:?}");
        activity.notify_one();
        let next = tokio::time::timeout(WAIT, trims.recv()).await;
        assert!(matches!(next, Ok(Some(()))), "a lone pass is a burst too");
        task.abort();
    }
}
