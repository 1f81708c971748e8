//! quayside render: render and seal Environment folders offline, e.g. to
//! preview in a pull request what the controller would commit.
//!
//! Reads Component and Environment manifests (YAML, several documents per
//! file allowed) and a credentials file, and writes one folder per
//! Environment under `--out`, laid out like the side repository.
//!
//! Credentials file (YAML): one entry per Component, keyed by its name or
//! `<namespace>/<name>`:
//!
//! ```yaml
//! api:
//!   username: org+team_api_pull     # the pull robot (read-only)
//!   token: "..."                     # its token
//!   registry: quay.io                # optional, default quay.io
//!   generation: 1                    # optional, credentials generation, default 1
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use k8s_openapi::jiff::Timestamp;
use secrecy::SecretString;
use serde::Deserialize;

use quayside::api::{Component, Environment};
use quayside::credentials::{DEFAULT_REGISTRY, RobotCredentials};
use quayside::plan::folders::{FolderClaim, folder_conflict};
use quayside::render::{self, KustomizeFlavor, RenderedFile};
use quayside::seal::Identity;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder of Component manifests (*.yaml, *.yml).
    #[arg(long)]
    pub components: PathBuf,
    /// Folder of Environment manifests (*.yaml, *.yml).
    #[arg(long)]
    pub environments: PathBuf,
    /// YAML map: component (or namespace/component) -> {username, token, registry?, generation?}.
    #[arg(long)]
    pub credentials: PathBuf,
    /// Where to write the folders (like the side repository's root).
    #[arg(long)]
    pub out: PathBuf,
    /// The controller's age identity file: its recipient is added to every
    /// Environment, and earlier output under --out is re-sealed byte for
    /// byte when unchanged. Without it, files are sealed afresh each run.
    #[arg(long)]
    pub identity: Option<PathBuf>,
    /// `ksops` (Argo CD, default) or `flux`.
    #[arg(long, default_value = "ksops")]
    pub flavor: KustomizeFlavor,
    /// ServiceAccount recorded as linked when an Environment does not name one
    /// (the controller picks `deployer`, or `default` where it is absent).
    #[arg(long, default_value = "deployer")]
    pub service_account: String,
    /// The time written as `lastmodified` for files that change (RFC 3339);
    /// default now.
    #[arg(long)]
    pub now: Option<Timestamp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialEntry {
    username: String,
    #[serde(deserialize_with = "secret")]
    token: SecretString,
    #[serde(default)]
    registry: Option<String>,
    #[serde(default)]
    generation: Option<i64>,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SecretString, D::Error> {
    String::deserialize(d).map(SecretString::from)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let components: Vec<Component> = read_manifests(&args.components)?;
    let environments: Vec<Environment> = read_manifests(&args.environments)?;
    if environments.is_empty() {
        bail!(
            "no Environment manifests found in {}",
            args.environments.display()
        );
    }
    let text = std::fs::read_to_string(&args.credentials).with_context(|| {
        format!(
            "reading the credentials file {}",
            args.credentials.display()
        )
    })?;
    let credentials: BTreeMap<String, CredentialEntry> = serde_norway::from_str(&text)
        .with_context(|| format!("parsing the credentials file {} (expected: component -> {{username, token, registry?, generation?}})", args.credentials.display()))?;
    let (identity, extra) = match &args.identity {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the identity {}", p.display()))?;
            let id = Identity::parse(&text)
                .with_context(|| format!("parsing the identity {}", p.display()))?;
            let r = id.to_recipient();
            (id, vec![r])
        }
        // Nobody holds this key: it only satisfies the renderer, which
        // opens previous files with it (there are none it can open).
        None => (Identity::generate(), vec![]),
    };
    let now = args.now.unwrap_or_else(Timestamp::now);
    check_folders(&environments)?;

    for env in &environments {
        let workspace = env.metadata.namespace.clone().unwrap_or_default();
        let sa = env
            .spec
            .service_account
            .clone()
            .unwrap_or_else(|| args.service_account.clone());
        let input = render::environment_input(env, &extra, &sa)?;
        let mut inputs = Vec::new();
        for c in components
            .iter()
            .filter(|c| c.metadata.namespace.as_deref() == Some(&workspace))
        {
            let name = c.metadata.name.clone().unwrap_or_default();
            let entry = credentials
                .get(&format!("{workspace}/{name}"))
                .or_else(|| credentials.get(&name))
                .with_context(|| {
                    format!(
                        "no entry for Component {workspace}/{name} in {}",
                        args.credentials.display()
                    )
                })?;
            let pull = RobotCredentials {
                registry: entry
                    .registry
                    .clone()
                    .unwrap_or_else(|| DEFAULT_REGISTRY.to_string()),
                username: entry.username.clone(),
                token: entry.token.clone(),
            };
            inputs.push(render::component_input(
                c,
                pull,
                entry.generation.unwrap_or(1),
            )?);
        }
        let out = args.out.clone();
        let previous = move |path: &str| std::fs::read_to_string(out.join(path)).ok();
        let files =
            render::render_environment(&input, &inputs, &previous, &identity, args.flavor, now)?;
        write_folder(&args.out, &input.folder, &files)?;
        println!(
            "{}: {} component(s) -> {}",
            input.name,
            inputs.len(),
            args.out.join(&input.folder).display()
        );
    }
    Ok(())
}

/// Refuse Environments whose folders overlap (the same, or one inside the
/// other), before anything is written: each folder is rewritten whole and
/// pruned, so the later one would overwrite or delete the earlier's. The
/// rule is the controller's (`plan::folders`); here the first listed wins.
fn check_folders(environments: &[Environment]) -> anyhow::Result<()> {
    let claims: Vec<FolderClaim<usize>> = environments
        .iter()
        .enumerate()
        .map(|(age, e)| {
            let ns = e.metadata.namespace.clone().unwrap_or_default();
            let name = e.metadata.name.clone().unwrap_or_default();
            FolderClaim {
                folder: e.spec.side_repo_path(&ns, &name),
                age,
                owner: format!("{ns}/{name}"),
            }
        })
        .collect();
    for mine in &claims {
        if let Some(conflict) = folder_conflict(mine, &claims) {
            bail!("Environment {}: {conflict}", mine.owner);
        }
    }
    Ok(())
}

/// Every manifest in the folder's YAML files, sorted by file name.
fn read_manifests<T: for<'de> Deserialize<'de>>(dir: &Path) -> anyhow::Result<Vec<T>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
        for doc in serde_norway::Deserializer::from_str(&text) {
            let value = serde_norway::Value::deserialize(doc)
                .with_context(|| format!("parsing {}", p.display()))?;
            if value.is_null() {
                continue;
            }
            out.push(
                serde_norway::from_value(value)
                    .with_context(|| format!("parsing {}", p.display()))?,
            );
        }
    }
    Ok(out)
}

/// Write the folder completely or not at all: its files go to a staging
/// folder next to it, which then takes its place (files no longer rendered
/// go with the old folder, as the side-repo writer prunes them). A failure
/// half-way leaves the previous folder as it was.
fn write_folder(root: &Path, folder: &str, files: &[RenderedFile]) -> anyhow::Result<()> {
    let folder = folder.trim_matches('/');
    let dir = root.join(folder);
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        bail!("invalid folder {folder:?}");
    };
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = name.to_string_lossy();
    let staging = parent.join(format!(".{name}.quayside-new-{}", std::process::id()));
    let result = stage(&staging, folder, files).and_then(|()| swap(&staging, &dir));
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Write `files` (paths under `folder`) into `staging`.
fn stage(staging: &Path, folder: &str, files: &[RenderedFile]) -> anyhow::Result<()> {
    let _ = std::fs::remove_dir_all(staging);
    for f in files {
        let rel = Path::new(&f.path)
            .strip_prefix(folder)
            .with_context(|| format!("{} is outside {folder}", f.path))?;
        let path = staging.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &f.contents)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Put `staging` in the place of `dir`; the old folder is removed after.
fn swap(staging: &Path, dir: &Path) -> anyhow::Result<()> {
    let old: PathBuf = staging.with_extension("old");
    let had = dir.exists();
    if had {
        std::fs::rename(dir, &old).with_context(|| format!("moving {} aside", dir.display()))?;
    }
    if let Err(e) = std::fs::rename(staging, dir) {
        if had {
            let _ = std::fs::rename(&old, dir);
        }
        return Err(e).with_context(|| format!("moving the new {} in place", dir.display()));
    }
    if had {
        std::fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}
