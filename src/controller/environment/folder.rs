//! Whose folder is whose in the side repository: the folder an Environment
//! may write, the folders it gives up when that changes, and whether a
//! folder found at the tip was written for it. Decisions are
//! `plan::side_path` and `plan::folders`; this reads what they need.

use std::collections::{BTreeMap, BTreeSet};

use kube::ResourceExt;

use crate::api::Environment;
use crate::gitops::SideRepo;
use crate::plan::SpecError;
use crate::plan::folders::{FolderOwner, OWNER_FILE, files_to_remove, legacy_owner, owned_folders};
use crate::plan::side_path::{self, PathScope};
use crate::render::RenderedFile;

/// The Environment a pass works for, as its folders record it.
#[derive(Clone, Debug)]
pub(super) struct Me(pub FolderOwner);

impl Me {
    pub fn of(env: &Environment) -> Me {
        Me(FolderOwner {
            workspace: env.namespace().unwrap_or_default(),
            environment: env.name_any(),
            uid: env.uid().unwrap_or_default(),
        })
    }

    /// The owner file of `folder`, written with every pass.
    pub fn owner_file(&self, folder: &str) -> RenderedFile {
        RenderedFile {
            path: format!("{}/{OWNER_FILE}", folder.trim_matches('/')),
            contents: self.0.render().into_bytes(),
        }
    }
}

/// The folder `env` writes, checked against the path rules.
pub(super) fn resolve(env: &Environment, scope: PathScope) -> Result<String, SpecError> {
    side_path::folder(
        &env.namespace().unwrap_or_default(),
        &env.name_any(),
        env.spec.custom_side_repo_path(),
        scope,
    )
}

/// Folders `env` may have written before and no longer wants: the one its
/// status records, or — before a status recorded one — the default of
/// releases without the workspace level. When deleting (`keep` is `None`),
/// also the folder it asks for now. Only folders inside `environments/`.
pub(super) fn given_up(env: &Environment, keep: Option<&str>, scope: PathScope) -> Vec<String> {
    let recorded = env.status.as_ref().and_then(|s| s.side_repo_path.clone());
    let mut out: Vec<String> = match (&recorded, keep) {
        (Some(r), Some(_)) => vec![r.clone()],
        (None, Some(_)) => vec![side_path::legacy_folder(&env.name_any())],
        (_, None) => recorded
            .into_iter()
            .chain(resolve(env, scope).ok())
            .chain([side_path::legacy_folder(&env.name_any())])
            .collect(),
    };
    out.retain(|f| side_path::inside_root(f) && Some(f.as_str()) != keep);
    out.dedup();
    out
}

/// `given_up` and every other folder under the workspace's folder whose
/// owner file names this Environment, except `keep`: the status records
/// only the last folder written, and a pass can read a status older than
/// its own last commit (a spec edit seen before the status write).
pub(super) fn with_owned(
    side: &SideRepo,
    given_up: &[String],
    keep: Option<&str>,
    me: &Me,
) -> Vec<String> {
    let mut out = given_up.to_vec();
    let paths = side.paths_under(&format!("{}/{}", side_path::ROOT, me.0.workspace));
    for f in owned_folders(&paths, |p| side.read(p), &me.0.uid) {
        if Some(f.as_str()) != keep && !out.contains(&f) {
            out.push(f);
        }
    }
    out
}

fn owner_at(side: &SideRepo, folder: &str) -> Option<FolderOwner> {
    FolderOwner::parse(&side.read(&format!("{}/{OWNER_FILE}", folder.trim_matches('/')))?)
}

/// Whether `folder` at the tip was written for this Environment: its owner
/// file names our uid or, written before owner files existed, its
/// kustomization names our workspace and name.
pub(super) fn written_for(side: &SideRepo, folder: &str, me: &Me) -> bool {
    match owner_at(side, folder) {
        Some(o) => o.uid == me.0.uid,
        None => side
            .read(&format!("{}/kustomization.yaml", folder.trim_matches('/')))
            .and_then(|k| legacy_owner(&k))
            .is_some_and(|(ws, env)| ws == me.0.workspace && env == me.0.environment),
    }
}

/// Whether the sealed files of `folder` may keep their data keys: only
/// when this very Environment (uid) wrote them. Anyone else — a later
/// owner of an orphaned folder, a same-named successor — seals afresh, so
/// no data key is ever re-wrapped for recipients who did not have it.
pub(super) fn keys_reusable(side: &SideRepo, folder: &str, me: &Me) -> bool {
    owner_at(side, folder).is_some_and(|o| o.uid == me.0.uid)
}

/// A folder nested in `folder` that another live Environment (`live`: uid
/// to `namespace/name`) wrote: writing `folder` whole would prune it.
pub(super) fn nested_owner(
    side: &SideRepo,
    folder: &str,
    me: &Me,
    live: &BTreeMap<String, String>,
) -> Option<String> {
    let folder = folder.trim_matches('/');
    let own = format!("{folder}/{OWNER_FILE}");
    side.paths_under(folder)
        .into_iter()
        .filter(|p| p.ends_with(&format!("/{OWNER_FILE}")) && *p != own)
        .find_map(|p| {
            let o = FolderOwner::parse(&side.read(&p)?)?;
            let who = live.get(&o.uid).filter(|_| o.uid != me.0.uid)?;
            Some(format!(
                "the side-repo folder {folder:?} overlaps (it holds) the folder {:?} that Environment {who} wrote; choose a folder of its own with spec.sideRepo.path (default environments/<workspace>/<name>)",
                p.trim_end_matches(&format!("/{OWNER_FILE}"))
            ))
        })
}

/// The files to remove from the folders given up (see [`given_up`]):
/// only from folders written for this Environment, never what lies in
/// `keep` or in another Environment's folder nested in them.
pub(super) fn removals(
    side: &SideRepo,
    given_up: &[String],
    keep: Option<&str>,
    me: &Me,
) -> Vec<String> {
    let mut out = BTreeSet::new();
    for old in given_up.iter().filter(|f| written_for(side, f, me)) {
        out.extend(files_to_remove(old, keep, &side.paths_under(old)));
    }
    out.into_iter().collect()
}
