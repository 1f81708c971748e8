//! The side-repository writer (git2): one commit per pass or group of passes, prune, push with retries, pull requests.
//!
//! Blocking by design (git2 and a blocking HTTP client): the controller calls
//! it from `spawn_blocking`. The working repository is bare: a pass builds its
//! trees directly in the object database, so there is no checkout to get
//! dirty, and the folders quayside does not own are carried over untouched.
//!
//! Local refs (in the workdir, which survives restarts):
//! - `refs/remotes/origin/<branch>`: the remote tip as last fetched.
//! - `refs/heads/<branch>`: our tip — the remote one, or ahead of it by
//!   commits a failed push left behind. Those are replayed onto the new
//!   remote head and pushed by the next pass, so nothing is lost.

mod error;
mod message;
mod packs;
mod pulls;
mod transport;
mod tree;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;

use git2::{Oid, Repository, Sort};
use secrecy::SecretString;

pub use error::GitError;
// The message is the pure core's (plan decides what a commit says); the
// writer is what uses it, so its callers find it here too.
pub use crate::plan::commit_message::{
    CommitMessage, TRAILER_COMPONENT, TRAILER_ENVIRONMENT, TRAILER_GENERATION, combine,
    parse_trailers,
};

use crate::render::RenderedFile;
use crate::tls::ExtraCa;
use message::{FileChange, Proposal};
use transport::PushResult;

/// How to authenticate to the side repository (https/http; local paths need none).
#[derive(Clone, Debug)]
pub enum GitAuth {
    None,
    /// Basic auth; with GitHub/Gitea/Forgejo the password is a token.
    Basic {
        username: String,
        password: SecretString,
    },
}

/// Where a pass's commit goes.
#[derive(Clone, Debug)]
pub enum DeliveryMode {
    /// Commit to the configured branch.
    Direct,
    /// Push to `quayside/update-<branch>` and open (or update) one pull
    /// request against the branch, through the forge's GitHub-shaped REST API.
    PullRequest {
        /// e.g. `https://api.github.com` or `https://gitea.example/api/v1`.
        api_url: String,
        owner: String,
        repo: String,
        token: SecretString,
    },
}

#[derive(Clone, Debug)]
pub struct SideRepoConfig {
    pub url: String,
    pub branch: String,
    pub auth: GitAuth,
    /// A folder quayside owns for its working repository (bare).
    pub workdir: PathBuf,
    pub mode: DeliveryMode,
    pub author_name: String,
    pub author_email: String,
    /// Push attempts per pass before giving up on a branch that keeps moving.
    pub max_push_attempts: u32,
}

/// What one pass wants the repository to look like.
#[derive(Clone, Debug, Default)]
pub struct PassPlan {
    /// Full desired content of each folder quayside owns and this pass
    /// covers (folder path -> its files, paths relative to the repository
    /// root). Files in these folders that are not listed are removed.
    pub folders: BTreeMap<String, Vec<RenderedFile>>,
    /// Folders of deleted Environments, removed entirely.
    pub removed_folders: Vec<String>,
    /// Single files removed: a folder given up, less what is nested in it
    /// that is not its owner's (see `plan::folders::files_to_remove`).
    pub removed_files: Vec<String>,
    pub message: CommitMessage,
}

impl PassPlan {
    /// Writes nothing and removes nothing.
    pub fn is_empty(&self) -> bool {
        self.folders.is_empty() && self.removed_folders.is_empty() && self.removed_files.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassOutcome {
    /// The commit this pass put on the remote: its own, or commits an earlier
    /// failed pass left behind. `None`: the remote already had everything.
    pub commit: Option<String>,
    /// Tip of the branch written (the target branch, or in pull-request mode
    /// the proposal branch); empty when the branch does not exist yet.
    pub head: String,
    /// The pull request's URL (pull-request mode, when there is something to propose).
    pub pull_request: Option<String>,
}

/// What one commit of several passes made (group commit).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupOutcome {
    /// The commit, shared by every plan of the group.
    pub outcome: PassOutcome,
    /// For each plan, in order: whether it changed the branch's files.
    pub changed: Vec<bool>,
}

/// A working repository for the side repository.
pub struct SideRepo {
    cfg: SideRepoConfig,
    repo: Repository,
    /// Trusted beside the system's CAs, by git over HTTPS and the forge.
    trust: Option<ExtraCa>,
}

impl std::fmt::Debug for SideRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideRepo")
            .field("cfg", &self.cfg)
            .field("trust", &self.trust)
            .finish()
    }
}

/// The first folder `next` writes that overlaps one an earlier plan of the
/// same commit writes: such a plan must wait for the next commit.
pub fn crowded(earlier: &[PassPlan], next: &PassPlan) -> Option<String> {
    validate::crowded(earlier, next)
}

/// The branch pull-request mode proposes from: one per target branch, so
/// every later pass updates the same branch and the same pull request.
pub fn proposal_branch(target: &str) -> String {
    format!("quayside/update-{}", target.replace('/', "-"))
}

/// Sealed files are ciphertext: a delta against another sealed file saves
/// next to nothing, but libgit2's delta search over thousands of them costs
/// seconds each time a pack is built (storing a pass, pushing it). So the
/// working repository turns the search down: `pack.windowMemory` shrinks the
/// window to one candidate, and `pack.deltaCacheSize` — which libgit2 1.9
/// also reads as its big-file threshold — keeps every object out of the
/// search. If a later libgit2 reads the threshold from its proper key, only
/// the speed-up is lost. Measured in `docs/benchmarks.md`.
fn tune_packing(repo: &Repository) -> Result<(), git2::Error> {
    let mut cfg = repo.config()?;
    cfg.set_i64("pack.windowMemory", 1)?;
    cfg.set_i64("pack.deltaCacheSize", 1)?;
    Ok(())
}

fn local_ref(branch: &str) -> String {
    format!("refs/heads/{branch}")
}

fn tracking_ref(branch: &str) -> String {
    format!("refs/remotes/origin/{branch}")
}

fn hex(oid: Option<Oid>) -> String {
    oid.map(|o| o.to_string()).unwrap_or_default()
}

impl SideRepo {
    /// Open the working repository in `cfg.workdir` (creating it when
    /// absent) and fetch. An empty remote is fine: the first pass creates
    /// the branch.
    pub fn open(cfg: SideRepoConfig) -> Result<SideRepo, GitError> {
        SideRepo::open_trusting(cfg, None)
    }

    /// [`SideRepo::open`], trusting `trust` (`--extra-ca-file`) beside the
    /// system's CAs for the remote over HTTPS and the pull-request forge.
    pub fn open_trusting(
        cfg: SideRepoConfig,
        trust: Option<ExtraCa>,
    ) -> Result<SideRepo, GitError> {
        for b in [cfg.branch.clone(), proposal_branch(&cfg.branch)] {
            if cfg.branch.is_empty() || !git2::Reference::is_valid_name(&local_ref(&b)) {
                return Err(GitError::InvalidPlan(format!(
                    "{:?} is not a valid branch name",
                    cfg.branch
                )));
            }
        }
        transport::init_libgit2();
        let local = |action, e: git2::Error| GitError::Local {
            workdir: cfg.workdir.display().to_string(),
            action,
            detail: e.message().to_string(),
        };
        let repo = match Repository::open_bare(&cfg.workdir) {
            Ok(r) => r,
            Err(_) => {
                std::fs::create_dir_all(&cfg.workdir).map_err(|e| GitError::Local {
                    workdir: cfg.workdir.display().to_string(),
                    action: "create the folder",
                    detail: e.to_string(),
                })?;
                Repository::init_bare(&cfg.workdir).map_err(|e| local("initialise", e))?
            }
        };
        tune_packing(&repo).map_err(|e| local("configure", e))?;
        let mut s = SideRepo { cfg, repo, trust };
        s.sync()?;
        Ok(s)
    }

    /// Let go of what libgit2 holds only to be faster: a fresh handle on
    /// the same repository, so the old one's object cache is freed and
    /// its pack windows unmapped (libgit2 maps a pack's pages for as long
    /// as a handle that read them lives; at 6,000 Environment folders
    /// that was 48 MB of RSS at rest). The next read maps what it needs.
    pub fn release_memory(&mut self) {
        match Repository::open_bare(&self.cfg.workdir) {
            Ok(fresh) => self.repo = fresh,
            Err(e) => tracing::debug!(error = %e.message(), "side repository kept open as it was"),
        }
    }

    /// Replace the credentials, e.g. after the Secret holding them changed.
    pub fn set_auth(&mut self, auth: GitAuth) {
        self.cfg.auth = auth;
    }

    pub fn config(&self) -> &SideRepoConfig {
        &self.cfg
    }

    /// A file at our current tip (the proposal in pull-request mode), for
    /// minimal diffs. `None` when absent, not a file, or not UTF-8.
    pub fn read(&self, path: &str) -> Option<String> {
        let tree = self.tip_tree()?;
        let entry = tree.get_path(std::path::Path::new(path)).ok()?;
        let blob = self.repo.find_blob(entry.id()).ok()?;
        String::from_utf8(blob.content().to_vec()).ok()
    }

    /// The id of the tree (folder) or blob at `path` at our current tip: it
    /// changes whenever anything below it does.
    pub fn tree_id(&self, path: &str) -> Option<String> {
        let tree = self.tip_tree()?;
        let entry = tree
            .get_path(std::path::Path::new(path.trim_matches('/')))
            .ok()?;
        Some(entry.id().to_string())
    }

    /// The paths of every file below `dir` at our current tip (empty when
    /// the folder does not exist), to tell what a pass removes.
    pub fn paths_under(&self, dir: &str) -> Vec<String> {
        let dir = dir.trim_matches('/');
        let Some(sub) = self
            .tip_tree()
            .and_then(|t| t.get_path(std::path::Path::new(dir)).ok())
        else {
            return Vec::new();
        };
        tree::files(&self.repo, Some(sub.id()))
            .unwrap_or_default()
            .into_keys()
            .map(|path| format!("{dir}/{path}"))
            .collect()
    }

    fn tip_tree(&self) -> Option<git2::Tree<'_>> {
        let tip = match self.cfg.mode {
            DeliveryMode::Direct => self.ref_oid(&local_ref(&self.cfg.branch)),
            DeliveryMode::PullRequest { .. } => self
                .ref_oid(&local_ref(&proposal_branch(&self.cfg.branch)))
                .or_else(|| self.ref_oid(&tracking_ref(&self.cfg.branch))),
        }?;
        self.repo.find_commit(tip).ok()?.tree().ok()
    }

    /// Fetch and move to the remote tip, keeping (on top of it) any commit a
    /// failed push left behind.
    pub fn sync(&mut self) -> Result<(), GitError> {
        let branch = self.cfg.branch.clone();
        match self.cfg.mode {
            DeliveryMode::Direct => {
                self.fetch(&[&branch])?;
                let remote = self.ref_oid(&tracking_ref(&branch));
                let local = self.ref_oid(&local_ref(&branch));
                let tip = self.in_memory(|w| self.rebase(w, local, &[], remote))?;
                self.set_ref(&local_ref(&branch), tip)
            }
            DeliveryMode::PullRequest { .. } => self.fetch(&[&branch, &proposal_branch(&branch)]),
        }
    }

    /// Write the plan's folders, make one commit if anything changed, and
    /// deliver it (push, or push and propose).
    pub fn apply(&mut self, plan: &PassPlan) -> Result<PassOutcome, GitError> {
        Ok(self.apply_all(std::slice::from_ref(plan))?.outcome)
    }

    /// [`SideRepo::apply`] for several passes at once: one commit and one
    /// push for all of them (passes that queued behind one another). Every
    /// plan's removals are applied before any plan's writes; plans whose
    /// written folders overlap are refused ([`crowded`]).
    pub fn apply_all(&mut self, plans: &[PassPlan]) -> Result<GroupOutcome, GitError> {
        for (i, plan) in plans.iter().enumerate() {
            validate::plan(plan)?;
            if let Some(folder) = validate::crowded(&plans[..i], plan) {
                return Err(GitError::Crowded { folder });
            }
        }
        if let Some(settled) = self.nothing_to_do(plans) {
            return Ok(settled);
        }
        let outcome = self.apply_mode(plans);
        self.compact_if_needed();
        outcome
    }

    /// The outcome of plans that change nothing, in direct mode, when every
    /// earlier commit is pushed: what the full path would answer, without
    /// opening a handle, writing a reference or counting packs. That is a
    /// no-op heartbeat's group: every folder known unchanged.
    fn nothing_to_do(&self, plans: &[PassPlan]) -> Option<GroupOutcome> {
        if !matches!(self.cfg.mode, DeliveryMode::Direct) || !plans.iter().all(PassPlan::is_empty) {
            return None;
        }
        let local = self.ref_oid(&local_ref(&self.cfg.branch));
        (local == self.ref_oid(&tracking_ref(&self.cfg.branch))).then(|| GroupOutcome {
            outcome: PassOutcome {
                commit: None,
                head: hex(local),
                pull_request: None,
            },
            changed: vec![false; plans.len()],
        })
    }

    /// How many pack files the working repository may hold before they are
    /// merged into one: every pass stores its objects as a pack, and each
    /// object lookup searches every pack, so passes slowed down as packs
    /// piled up (one per commit, thousands on a busy platform).
    pub const MAX_PACKS: usize = 32;

    /// The number of pack files in the working repository.
    pub fn pack_count(&self) -> usize {
        packs::count(self.repo.path())
    }

    /// Merge the packs into one when there are more than [`Self::MAX_PACKS`]:
    /// best effort (a failure is logged and the packs stay; nothing is
    /// lost, the next pass tries again).
    fn compact_if_needed(&mut self) {
        if self.pack_count() <= Self::MAX_PACKS {
            return;
        }
        if let Err(e) = packs::compact(&self.repo) {
            tracing::warn!(error = %e, "could not merge the side repository's packs; passes may slow down");
            return;
        }
        // libgit2 keeps a pack mapped as long as a handle that opened it
        // lives, removed or not: a fresh handle lets the merged ones go.
        match Repository::open_bare(&self.cfg.workdir) {
            Ok(fresh) => self.repo = fresh,
            Err(e) => tracing::warn!(
                error = %e.message(),
                "could not reopen the side repository after merging its packs; their memory stays mapped"
            ),
        }
    }

    fn apply_mode(&mut self, plans: &[PassPlan]) -> Result<GroupOutcome, GitError> {
        match self.cfg.mode.clone() {
            DeliveryMode::Direct => self.apply_direct(plans),
            DeliveryMode::PullRequest {
                api_url,
                owner,
                repo,
                token,
            } => {
                let forge =
                    pulls::Forge::new(&api_url, &owner, &repo, &token, self.trust.as_ref())?;
                self.apply_proposal(plans, &forge)
            }
        }
    }

    /// In pull-request mode, whether the forge answers with the token: a
    /// harmless call (the open pull requests from the proposal branch).
    /// `None` in direct mode. For `quayside doctor`.
    pub fn check_forge_access(&self) -> Option<Result<(), GitError>> {
        let DeliveryMode::PullRequest {
            api_url,
            owner,
            repo,
            token,
        } = &self.cfg.mode
        else {
            return None;
        };
        let head = proposal_branch(&self.cfg.branch);
        Some(
            pulls::Forge::new(api_url, owner, repo, token, self.trust.as_ref())
                .and_then(|forge| forge.find_open(&head))
                .map(|_| ()),
        )
    }

    fn apply_direct(&mut self, plans: &[PassPlan]) -> Result<GroupOutcome, GitError> {
        let branch = self.cfg.branch.clone();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let remote = self.ref_oid(&tracking_ref(&branch));
            let local = self.ref_oid(&local_ref(&branch));
            let (base, (new, changed)) = self.in_memory(|w| {
                let base = self.rebase(w, local, &[], remote)?;
                Ok((base, self.commit_plans(w, base, plans)?))
            })?;
            let tip = new.or(base);
            // Recorded before pushing: if the push fails, the work is kept.
            if tip != local {
                self.set_ref(&local_ref(&branch), tip)?;
            }
            let outcome = |commit| GroupOutcome {
                outcome: PassOutcome {
                    commit,
                    head: hex(tip),
                    pull_request: None,
                },
                changed: changed.clone(),
            };
            if tip == remote {
                return Ok(outcome(None));
            }
            let spec = format!("refs/heads/{branch}:refs/heads/{branch}");
            match self.push(&spec, &branch)? {
                PushResult::Pushed => {
                    self.set_ref(&tracking_ref(&branch), tip)?;
                    return Ok(outcome(Some(hex(tip))));
                }
                PushResult::NonFastForward => {
                    tracing::info!(
                        branch,
                        attempts,
                        "side repository moved; redoing the pass on its new head"
                    );
                    // Drop this attempt's commit: the plan is redone from
                    // scratch on the new head, so the result is one commit.
                    if new.is_some() {
                        self.set_ref(&local_ref(&branch), base)?;
                    }
                    if attempts >= self.cfg.max_push_attempts.max(1) {
                        return Err(GitError::Contended { branch, attempts });
                    }
                    self.fetch(&[&branch])?;
                }
            }
        }
    }

    fn apply_proposal(
        &mut self,
        plans: &[PassPlan],
        forge: &pulls::Forge,
    ) -> Result<GroupOutcome, GitError> {
        let target = self.cfg.branch.clone();
        let prop = proposal_branch(&target);
        // The proposal is computed against the target as it is now.
        self.fetch(&[&target, &prop])?;
        let target_tip = self.ref_oid(&tracking_ref(&target));
        let prop_remote = self.ref_oid(&tracking_ref(&prop));
        // The open proposal carried onto the current target, then any work a
        // failed push left locally, then this pass.
        let hide: Vec<Oid> = [prop_remote, target_tip].into_iter().flatten().collect();
        let local = self.ref_oid(&local_ref(&prop));
        let (base, (new, changed)) = self.in_memory(|w| {
            let upstream = self.rebase(w, prop_remote, &[], target_tip)?;
            let base = self.rebase(w, local, &hide, upstream)?;
            Ok((base, self.commit_plans(w, base, plans)?))
        })?;
        let tip = new.or(base);
        self.set_ref(&local_ref(&prop), tip)?;
        if self.tree_of(tip)? == self.tree_of(target_tip)? {
            return Ok(GroupOutcome {
                outcome: PassOutcome {
                    commit: None,
                    head: hex(tip),
                    pull_request: None,
                },
                changed,
            });
        }
        let mut pushed = false;
        if tip != prop_remote {
            // The proposal branch is quayside's own: a forced update is
            // fine there (and only there) when the target moved under it.
            let spec = format!("+refs/heads/{prop}:refs/heads/{prop}");
            match self.push(&spec, &prop)? {
                PushResult::Pushed => {
                    self.set_ref(&tracking_ref(&prop), tip)?;
                    pushed = true;
                }
                PushResult::NonFastForward => {
                    return Err(GitError::Contended {
                        branch: prop,
                        attempts: 1,
                    });
                }
            }
        }
        let proposal = self.proposal(&target, target_tip, tip)?;
        let (title, body) = (proposal.title(), proposal.body());
        let pull = match forge.find_open(&prop)? {
            Some(p) => forge.update(p.number, &title, &body)?,
            None => forge.create(&title, &prop, &target, &body)?,
        };
        Ok(GroupOutcome {
            outcome: PassOutcome {
                commit: pushed.then(|| hex(tip)),
                head: hex(tip),
                pull_request: Some(pull.reference()),
            },
            changed,
        })
    }

    /// Apply the plans on top of `base` as one commit; `None` when nothing
    /// changes. Also says, for each plan, whether it alone changes `base`,
    /// and only those plans' messages make the commit's.
    fn commit_plans(
        &self,
        repo: &Repository,
        base: Option<Oid>,
        plans: &[PassPlan],
    ) -> Result<(Option<Oid>, Vec<bool>), GitError> {
        let l = |e| self.local("write the pass", e);
        let base_tree = self.tree_in(repo, base)?;
        let root = self.edit_tree(repo, base_tree, plans)?;
        let changed = match plans {
            [_] => vec![root != base_tree],
            _ => plans
                .iter()
                .map(|p| Ok(self.edit_tree(repo, base_tree, std::slice::from_ref(p))? != base_tree))
                .collect::<Result<Vec<_>, GitError>>()?,
        };
        if root == base_tree {
            return Ok((None, changed));
        }
        let tree_id = match root {
            Some(t) => t,
            None => tree::empty(repo).map_err(l)?,
        };
        if base.is_some() && Some(tree_id) == base_tree {
            return Ok((None, changed));
        }
        let messages = plans.iter().zip(&changed).filter(|(_, c)| **c);
        let message = combine(messages.map(|(p, _)| p.message.clone()).collect()).render();
        let tree = repo.find_tree(tree_id).map_err(l)?;
        let sig = self.signature()?;
        let parent = base.map(|b| repo.find_commit(b)).transpose().map_err(l)?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let commit = repo
            .commit(None, &sig, &sig, &message, &tree, &parents)
            .map_err(l)?;
        Ok((Some(commit), changed))
    }

    /// The tree `root` with every plan's removals, then every plan's folders.
    fn edit_tree(
        &self,
        repo: &Repository,
        mut root: Option<Oid>,
        plans: &[PassPlan],
    ) -> Result<Option<Oid>, GitError> {
        let l = |e| self.local("write the pass", e);
        let removed = plans
            .iter()
            .flat_map(|p| p.removed_folders.iter().chain(&p.removed_files));
        for path in removed {
            let t = self.find_tree_in(repo, root)?;
            root = tree::edit(repo, t.as_ref(), &validate::components(path), None).map_err(l)?;
        }
        for (folder, files) in plans.iter().flat_map(|p| &p.folders) {
            let prefix = validate::components(folder).len();
            let mut blobs = Vec::with_capacity(files.len());
            for f in files {
                let oid = repo.blob(&f.contents).map_err(l)?;
                let comps = validate::components(&f.path);
                blobs.push((comps[prefix..].to_vec(), oid));
            }
            let sub = tree::build(repo, &blobs).map_err(l)?;
            let t = self.find_tree_in(repo, root)?;
            root = tree::edit(
                repo,
                t.as_ref(),
                &validate::components(folder),
                sub.map(|s| (s, tree::MODE_TREE)),
            )
            .map_err(l)?;
        }
        Ok(root)
    }

    /// Replay the commits reachable from `from` (and not from `onto` or
    /// `hide`) onto `onto`, file by file. Returns `from` itself when it
    /// already contains `onto`.
    fn rebase(
        &self,
        repo: &Repository,
        from: Option<Oid>,
        hide: &[Oid],
        onto: Option<Oid>,
    ) -> Result<Option<Oid>, GitError> {
        let Some(from) = from else { return Ok(onto) };
        let Some(onto) = onto else {
            return Ok(Some(from));
        };
        let l = |e| self.local("replay unpushed commits", e);
        if from == onto || repo.graph_descendant_of(from, onto).map_err(l)? {
            return Ok(Some(from));
        }
        let mut walk = repo.revwalk().map_err(l)?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)
            .map_err(l)?;
        walk.push(from).map_err(l)?;
        walk.hide(onto).map_err(l)?;
        for h in hide {
            walk.hide(*h).map_err(l)?;
        }
        let mut tip = onto;
        for oid in walk {
            let c = repo.find_commit(oid.map_err(l)?).map_err(l)?;
            if c.parent_count() > 1 {
                continue; // quayside never merges; a merge's changes come with its parents
            }
            let old = match c.parent_count() {
                1 => Some(c.parent(0).map_err(l)?.tree().map_err(l)?),
                _ => None,
            };
            let new = c.tree().map_err(l)?;
            let diff = repo
                .diff_tree_to_tree(old.as_ref(), Some(&new), None)
                .map_err(l)?;
            let tip_tree = repo.find_commit(tip).map_err(l)?.tree_id();
            let mut root = Some(tip_tree);
            for d in diff.deltas() {
                let Some(path) = d.new_file().path().or(d.old_file().path()) else {
                    continue;
                };
                let path = path.to_string_lossy().to_string();
                let comps: Vec<&str> = path.split('/').collect();
                let entry = match d.status() {
                    git2::Delta::Deleted => None,
                    _ => Some((d.new_file().id(), u32::from(d.new_file().mode()) as i32)),
                };
                let t = self.find_tree_in(repo, root)?;
                root = tree::edit(repo, t.as_ref(), &comps, entry).map_err(l)?;
            }
            let root = match root {
                Some(r) => r,
                None => tree::empty(repo).map_err(l)?,
            };
            if root == tip_tree {
                continue; // already on the new head
            }
            let parent = repo.find_commit(tip).map_err(l)?;
            let tree = repo.find_tree(root).map_err(l)?;
            let committer = self.signature()?;
            tip = repo
                .commit(
                    None,
                    &c.author(),
                    &committer,
                    c.message().unwrap_or_default(),
                    &tree,
                    &[&parent],
                )
                .map_err(l)?;
        }
        Ok(Some(tip))
    }

    /// What the proposal branch changes relative to the target.
    fn proposal(
        &self,
        target: &str,
        target_tip: Option<Oid>,
        tip: Option<Oid>,
    ) -> Result<Proposal, GitError> {
        let l = |e| self.local("describe the proposal", e);
        let before = tree::files(&self.repo, self.tree_of(target_tip)?).map_err(l)?;
        let after = tree::files(&self.repo, self.tree_of(tip)?).map_err(l)?;
        let mut p = Proposal {
            base: target.to_string(),
            ..Default::default()
        };
        for (path, oid) in &after {
            match before.get(path) {
                None => p.files.push((FileChange::Added, path.clone())),
                Some(o) if o != oid => p.files.push((FileChange::Modified, path.clone())),
                _ => {}
            }
        }
        for path in before.keys().filter(|k| !after.contains_key(*k)) {
            p.files.push((FileChange::Removed, path.clone()));
        }
        p.files.sort_by(|a, b| a.1.cmp(&b.1));
        if let Some(tip) = tip {
            let mut walk = self.repo.revwalk().map_err(l)?;
            walk.set_sorting(Sort::TOPOLOGICAL | Sort::REVERSE)
                .map_err(l)?;
            walk.push(tip).map_err(l)?;
            if let Some(t) = target_tip {
                walk.hide(t).map_err(l)?;
            }
            for oid in walk {
                let c = self.repo.find_commit(oid.map_err(l)?).map_err(l)?;
                let msg = c.message().unwrap_or_default().to_string();
                let (comps, envs) = parse_trailers(&msg);
                p.components.extend(comps);
                p.environments.extend(envs);
                p.commits.push(msg);
            }
        }
        Ok(p)
    }

    fn signature(&self) -> Result<git2::Signature<'static>, GitError> {
        git2::Signature::now(&self.cfg.author_name, &self.cfg.author_email).map_err(|e| {
            self.local(
                "make the commit signature (check the author name and email)",
                e,
            )
        })
    }

    fn ref_oid(&self, name: &str) -> Option<Oid> {
        self.repo.refname_to_id(name).ok()
    }

    fn set_ref(&self, name: &str, oid: Option<Oid>) -> Result<(), GitError> {
        match oid {
            Some(o) => self
                .repo
                .reference(name, o, true, "quayside pass")
                .map(|_| ())
                .map_err(|e| self.local("update a reference", e)),
            None => match self.repo.find_reference(name) {
                Ok(mut r) => r.delete().map_err(|e| self.local("delete a reference", e)),
                Err(_) => Ok(()),
            },
        }
    }

    /// Run `f` with a handle whose new objects are kept in memory, then
    /// store them (and only them) as one pack: a pass writes thousands of
    /// small objects, and one file beats thousands of loose ones by far.
    fn in_memory<T>(
        &self,
        f: impl FnOnce(&Repository) -> Result<T, GitError>,
    ) -> Result<T, GitError> {
        let l = |e| self.local("write the pass's objects", e);
        let w = Repository::open_bare(&self.cfg.workdir).map_err(l)?;
        let odb = w.odb().map_err(l)?;
        // Above the on-disk backends, so every write lands in memory.
        let mempack = odb.add_new_mempack_backend(1000).map_err(l)?;
        let out = f(&w)?;
        let mut pack = git2::Buf::new();
        packs::new_objects(&w, &mempack, &mut pack).map_err(l)?;
        // An empty pack is a 12-byte header and a 20-byte checksum.
        if pack.len() > 32 {
            let mut writer = odb.packwriter().map_err(l)?;
            std::io::Write::write_all(&mut writer, &pack).map_err(|e| GitError::Local {
                workdir: self.cfg.workdir.display().to_string(),
                action: "store the pass's objects",
                detail: e.to_string(),
            })?;
            writer.commit().map_err(l)?;
        }
        Ok(out)
    }

    fn tree_in(&self, repo: &Repository, commit: Option<Oid>) -> Result<Option<Oid>, GitError> {
        commit
            .map(|c| repo.find_commit(c).map(|c| c.tree_id()))
            .transpose()
            .map_err(|e| self.local("read a commit", e))
    }

    fn find_tree_in<'r>(
        &self,
        repo: &'r Repository,
        tree: Option<Oid>,
    ) -> Result<Option<git2::Tree<'r>>, GitError> {
        tree.map(|t| repo.find_tree(t))
            .transpose()
            .map_err(|e| self.local("read a tree", e))
    }

    fn tree_of(&self, commit: Option<Oid>) -> Result<Option<Oid>, GitError> {
        commit
            .map(|c| self.repo.find_commit(c).map(|c| c.tree_id()))
            .transpose()
            .map_err(|e| self.local("read a commit", e))
    }

    fn local(&self, action: &'static str, e: git2::Error) -> GitError {
        GitError::Local {
            workdir: self.cfg.workdir.display().to_string(),
            action,
            detail: e.message().to_string(),
        }
    }
}
