//! Group commit for the side repository: passes that queue behind one
//! another while a commit is being pushed go out together, as one commit
//! and one push, instead of one after the other.
//!
//! Every pass puts its plan in the queue and then takes a turn at the
//! repository; whichever turn gets the repository first plans and applies
//! everything queued by then. A turn that finds the queue empty was served
//! by an earlier one. Each pass has its own turn, so nothing waits on a turn
//! that never comes.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::error::{Error, Result};
use super::metrics::Metrics;
use crate::gitops::{GitError, PassOutcome, PassPlan, SideRepo, SideRepoConfig, crowded};
use crate::tls::ExtraCa;

/// What a pass asks of the side repository: its plan, made against the
/// repository as it is when the pass's group is written.
pub type Plan = Box<dyn FnOnce(&SideRepo) -> Result<PassPlan> + Send>;

/// The most passes one commit carries: a bound on the commit message and on
/// what one failed push sends back to retry.
pub const MAX_GROUP: usize = 200;

struct Waiting {
    plan: Plan,
    answer: oneshot::Sender<Result<PassOutcome>>,
}

/// The side repository (opened on first use) and the passes waiting for it.
#[derive(Default)]
pub struct GroupCommit {
    queue: Mutex<Vec<Waiting>>,
    repo: Mutex<Option<SideRepo>>,
}

impl GroupCommit {
    /// Apply `plan` with whatever else is queued; the outcome of this pass
    /// (its `commit` is `None` when its own plan changed nothing).
    pub async fn pass(
        self: &Arc<Self>,
        cfg: SideRepoConfig,
        trust: Option<ExtraCa>,
        metrics: Metrics,
        plan: Plan,
    ) -> Result<PassOutcome> {
        let (answer, answered) = oneshot::channel();
        lock(&self.queue).push(Waiting { plan, answer });
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.turn(cfg, trust, &metrics))
            .await
            .map_err(|e| Error::Task(e.to_string()))?;
        answered.await.map_err(|_| {
            Error::Task("the side-repository pass ended without an answer".to_string())
        })?
    }

    /// Between bursts of passes: the repository lets go of its caches and
    /// mapped packs ([`SideRepo::release_memory`]). Skipped while a turn
    /// holds it: that turn's burst is not over.
    pub fn release_memory(&self) {
        let Ok(mut repo) = self.repo.try_lock() else {
            return;
        };
        if let Some(side) = repo.as_mut() {
            side.release_memory();
        }
    }

    /// Take the repository and write everything queued (up to [`MAX_GROUP`]).
    fn turn(&self, cfg: SideRepoConfig, trust: Option<ExtraCa>, metrics: &Metrics) {
        let mut repo = lock(&self.repo);
        let group: Vec<Waiting> = {
            let mut queue = lock(&self.queue);
            let n = queue.len().min(MAX_GROUP);
            queue.drain(..n).collect()
        };
        if group.is_empty() {
            return;
        }
        if repo.is_none() {
            match SideRepo::open_trusting(cfg, trust) {
                Ok(opened) => *repo = Some(opened),
                Err(e) => return refuse_all(group, &e),
            }
        }
        let side = repo.as_mut().expect("opened above");
        let started = std::time::Instant::now();
        let (plans, answers) = plan_group(side, group);
        if plans.is_empty() {
            return;
        }
        let planned = started.elapsed();
        let applied = side.apply_all(&plans);
        tracing::debug!(plans = plans.len(), ?planned, took = ?started.elapsed(), "side repository group written");
        match applied {
            Ok(done) => {
                if done.outcome.commit.is_some() {
                    metrics.git_commits.inc();
                }
                let someone = done.changed.iter().any(|c| *c);
                for (answer, changed) in answers.into_iter().zip(done.changed) {
                    // A pass whose own plan changed nothing did not commit,
                    // unless nobody did and the push carried older work.
                    let mut outcome = done.outcome.clone();
                    if someone && !changed {
                        outcome.commit = None;
                    }
                    let _ = answer.send(Ok(outcome));
                }
            }
            Err(e) => {
                for answer in answers {
                    let _ = answer.send(Err(e.clone().into()));
                }
            }
        }
    }
}

/// Make each queued pass's plan; a pass whose plan fails, or writes a
/// folder an earlier plan of the group writes, gets its answer now.
fn plan_group(
    side: &SideRepo,
    group: Vec<Waiting>,
) -> (Vec<PassPlan>, Vec<oneshot::Sender<Result<PassOutcome>>>) {
    let mut plans = Vec::with_capacity(group.len());
    let mut answers = Vec::with_capacity(group.len());
    for w in group {
        match (w.plan)(side) {
            Ok(plan) => match crowded(&plans, &plan) {
                None => {
                    plans.push(plan);
                    answers.push(w.answer);
                }
                Some(folder) => {
                    let _ = w.answer.send(Err(GitError::Crowded { folder }.into()));
                }
            },
            Err(e) => {
                let _ = w.answer.send(Err(e));
            }
        }
    }
    (plans, answers)
}

fn refuse_all(group: Vec<Waiting>, e: &GitError) {
    for w in group {
        let _ = w.answer.send(Err(e.clone().into()));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::gitops::{CommitMessage, DeliveryMode, GitAuth};
    use crate::render::RenderedFile;

    fn config(remote: &std::path::Path, work: &std::path::Path) -> SideRepoConfig {
        SideRepoConfig {
            url: remote.display().to_string(),
            branch: "main".into(),
            auth: GitAuth::None,
            workdir: work.to_path_buf(),
            mode: DeliveryMode::Direct,
            author_name: "quayside".into(),
            author_email: "quayside@example.invalid".into(),
            max_push_attempts: 3,
        }
    }

    fn writes(env: &'static str) -> Plan {
        Box::new(move |_| {
            let folder = format!("environments/ws/{env}");
            Ok(PassPlan {
                folders: [(
                    folder.clone(),
                    vec![RenderedFile {
                        path: format!("{folder}/kustomization.yaml"),
                        contents: env.as_bytes().to_vec(),
                    }],
                )]
                .into(),
                message: CommitMessage {
                    summary: format!("deliver {env}"),
                    environments: vec![env.into()],
                    ..Default::default()
                },
                ..Default::default()
            })
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn passes_queued_behind_a_commit_share_the_next_one() {
        let remote = tempfile::tempdir().unwrap();
        git2::Repository::init_bare(remote.path()).unwrap();
        let work = tempfile::tempdir().unwrap();
        let cfg = config(remote.path(), work.path());
        let group = Arc::new(GroupCommit::default());
        let pass = |plan: Plan| {
            let (group, cfg) = (group.clone(), cfg.clone());
            tokio::spawn(async move { group.pass(cfg, None, Metrics::default(), plan).await })
        };
        // The first pass holds the repository until the others have queued.
        let (started, running) = mpsc::channel();
        let (release, released) = mpsc::channel::<()>();
        let inner = writes("a");
        let first = pass(Box::new(move |side| {
            started.send(()).unwrap();
            released.recv_timeout(Duration::from_secs(60)).unwrap();
            inner(side)
        }));
        running.recv_timeout(Duration::from_secs(60)).unwrap();
        // Queued one after the other: the order decides which of `b` and
        // `b/nested` is the crowded one (spawned at once, either could
        // queue first).
        let queued = |n: usize| {
            let group = group.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                while lock(&group.queue).len() < n {
                    assert!(Instant::now() < deadline, "pass {n} never queued");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        };
        let b = pass(writes("b"));
        queued(1).await;
        let c = pass(writes("c"));
        queued(2).await;
        let failing = pass(Box::new(|_| Err(Error::Task("plan failed".into()))));
        queued(3).await;
        let nested = pass(writes("b/nested"));
        queued(4).await;
        release.send(()).unwrap();

        let first = first.await.unwrap().unwrap().commit.expect("a commit");
        let (b, c) = (b.await.unwrap().unwrap(), c.await.unwrap().unwrap());
        assert!(b.commit.is_some() && b.commit != Some(first.clone()));
        assert_eq!(b.commit, c.commit, "queued passes share one commit");
        let failed = failing.await.unwrap().unwrap_err();
        assert!(failed.to_string().contains("plan failed"), "{failed}");
        let crowded = nested.await.unwrap().unwrap_err();
        assert!(
            matches!(crowded, Error::Git(GitError::Crowded { .. })),
            "{crowded}"
        );
        let remote = git2::Repository::open_bare(remote.path()).unwrap();
        let mut walk = remote.revwalk().unwrap();
        walk.push_ref("refs/heads/main").unwrap();
        assert_eq!(walk.count(), 2, "one commit for a, one for b and c");
    }
}
