//! Side-repo folders a tenant cannot abuse (issue: tenancy): paths outside
//! the workspace's folder, folders nested in another Environment's, a data
//! key left in an orphaned folder, and the moves a changed folder makes.
//! Each attack test is named `attack_…`.

use std::collections::BTreeMap;
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams, PostParams};
use quayside::api::Environment;
use quayside::gitops::{CommitMessage, PassPlan, SideRepo};
use quayside::render::RenderedFile;
use quayside::seal::Identity;
use quayside_testkit::harness::{Harness, SIDE_REPO};
use quayside_testkit::{cluster, wait};
use secrecy::ExposeSecret;

const T: Duration = Duration::from_secs(60);

/// An Environment delivering to `target`, with `spec.sideRepo.path` when given.
async fn create_env(
    h: &Harness,
    name: &str,
    target: &str,
    recipients: &[String],
    path: Option<&str>,
) {
    let mut spec = serde_json::json!({"target": {"namespace": target}, "recipients": recipients});
    if let Some(p) = path {
        spec["sideRepo"] = serde_json::json!({ "path": p });
    }
    let e: Environment = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap();
    h.environments()
        .create(&PostParams::default(), &e)
        .await
        .unwrap();
}

/// The condition `kind` of Environment `name`, once a pass has set it for
/// the current generation (True or False: the test asserts which).
async fn condition(h: &Harness, name: &str, kind: &str) -> Condition {
    wait::until(&format!("Environment {name} {kind} set"), T, || async {
        let e = h.environments().get(name).await.ok()?;
        let generation = e.metadata.generation;
        e.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == kind && c.observed_generation == generation)
    })
    .await
}

/// The condition once it has `status`.
async fn condition_is(h: &Harness, name: &str, kind: &str, status: &str) -> Condition {
    wait::until(
        &format!("Environment {name} {kind}={status}"),
        T,
        || async {
            let e = h.environments().get(name).await.ok()?;
            e.status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == kind && c.status == status)
        },
    )
    .await
}

fn git(h: &Harness, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(h.git.repo_path(SIDE_REPO))
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Every file at the side repository's tip, with its text.
fn side_files(h: &Harness) -> BTreeMap<String, String> {
    git(h, &["ls-tree", "-r", "--name-only", "main"])
        .lines()
        .map(|p| (p.to_string(), git(h, &["show", &format!("main:{p}")])))
        .collect()
}

fn under(files: &BTreeMap<String, String>, folder: &str) -> BTreeMap<String, String> {
    files
        .iter()
        .filter(|(p, _)| p.starts_with(&format!("{folder}/")))
        .map(|(p, t)| (p.clone(), t.clone()))
        .collect()
}

/// Commit `files` to the side repository as someone else would (a person,
/// a revert, an older quayside), through a working repository of its own.
fn push_folder(h: &Harness, folder: &str, files: &BTreeMap<String, String>, summary: &str) {
    let mut cfg = h.config().side_repo.unwrap();
    cfg.workdir = h.dir.path().join(format!("seed-{}", rand_suffix()));
    let mut side = SideRepo::open(cfg).unwrap();
    let rendered = files
        .iter()
        .map(|(p, t)| RenderedFile {
            path: p.clone(),
            contents: t.clone().into_bytes(),
        })
        .collect();
    side.apply(&PassPlan {
        folders: BTreeMap::from([(folder.to_string(), rendered)]),
        message: CommitMessage {
            summary: summary.into(),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
}

fn rand_suffix() -> String {
    Identity::generate().to_recipient().to_string()[5..15].to_string()
}

/// The data key of a sealed file, unwrapped from `id`'s stanza: what the
/// holder of `id` can decrypt with.
fn data_key(sealed: &str, id: &Identity) -> Vec<u8> {
    let doc: serde_norway::Value = serde_norway::from_str(sealed).unwrap();
    let age_id =
        age::x25519::Identity::from_str(id.to_secret_string().expose_secret().trim()).unwrap();
    let me = id.to_recipient().to_string();
    let stanza = doc["sops"]["age"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|s| s["recipient"].as_str() == Some(me.as_str()))
        .expect("a stanza for the identity");
    age::decrypt(&age_id, stanza["enc"].as_str().unwrap().as_bytes()).unwrap()
}

/// A tenant names folders outside its workspace's: a repository folder
/// (`.github`, whose workflows the pass would wipe and rewrite), another
/// workspace's folder, a path out of `environments/`. Each is refused with
/// a condition that says what to write, and nothing outside the
/// workspace's folder is written, nor removed when they are deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_side_repo_path_outside_the_workspace_is_refused() {
    let mut h = Harness::start().await;
    let ws = h.workspace.clone();
    let theirs = BTreeMap::from([
        (
            ".github/workflows/ci.yml".to_string(),
            "on: push\n".to_string(),
        ),
        (
            "environments/other-ws/prod/kustomization.yaml".to_string(),
            "kind: Kustomization\n".to_string(),
        ),
    ]);
    push_folder(&h, ".github", &under(&theirs, ".github"), "ci");
    push_folder(
        &h,
        "environments/other-ws/prod",
        &under(&theirs, "environments/other-ws/prod"),
        "another workspace",
    );
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("app", T).await;
    // Out of environments/ altogether: the API server refuses them.
    for (name, path) in [("gh", ".github"), ("up", "../x"), ("root", "environments")] {
        let e: Environment = serde_json::from_value(serde_json::json!({
            "apiVersion": "quayside.dev/v1alpha1", "kind": "Environment",
            "metadata": {"name": name},
            "spec": {"target": {"namespace": "t"}, "sideRepo": {"path": path}}
        }))
        .unwrap();
        match h.environments().create(&PostParams::default(), &e).await {
            Err(kube::Error::Api(e)) if e.code == 422 => assert!(
                e.message.contains("spec.sideRepo.path")
                    && e.message.contains("must be a folder under environments/"),
                "{name} ({path}): {}",
                e.message
            ),
            other => panic!("{name} ({path}): not refused by the API server: {other:?}"),
        }
    }
    // Well-formed, but not this workspace's: the controller refuses them.
    let attacks = [
        ("other", "environments/other-ws/prod"),
        ("everyone", &format!("environments/{ws}") as &str),
    ];
    for (name, path) in attacks {
        let target = h.target_namespace(name, false).await;
        create_env(&h, name, &target, &[], Some(path)).await;
    }
    let mut refused = Vec::new();
    for (name, _) in attacks {
        refused.push((name, condition(&h, name, "Committed").await));
    }
    for ((name, path), (_, c)) in attacks.iter().zip(&refused) {
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "SideRepoPathRefused"),
            "{name} ({path}): {}",
            c.message
        );
        assert!(
            c.message.contains("spec.sideRepo.path")
                && c.message.contains(&format!("environments/{ws}/")),
            "{name}: the condition says what to write: {}",
            c.message
        );
    }
    for (name, _) in attacks {
        cluster::delete_and_wait(&h.environments(), name, T).await;
    }
    h.stop_controller().await;
    let files = side_files(&h);
    for (path, text) in &theirs {
        assert_eq!(files.get(path), Some(text), "{path} is untouched");
    }
    let ours: Vec<&String> = files.keys().filter(|p| !theirs.contains_key(*p)).collect();
    assert!(ours.is_empty(), "nothing else was written: {ours:?}");
}

/// Nested folders, both ways: a younger Environment's folder inside an
/// older one's, or holding an older one's, would have one pass prune the
/// other's files. The younger one is refused either way, and the older
/// one keeps its folder and stays Ready. (Names sort like ages: a tie of
/// creation seconds is broken by name, and must not change the outcome.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_folder_nesting_is_refused_both_ways() {
    let mut h = Harness::start().await;
    let ws = h.workspace.clone();
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("app", T).await;
    let outer = format!("environments/{ws}/outer");
    let low = format!("environments/{ws}/shared/low");
    for (name, path) in [("a-outer", &outer), ("a-low", &low)] {
        let target = h.target_namespace(name, false).await;
        create_env(&h, name, &target, &[], Some(path)).await;
        condition_is(&h, name, "Committed", "True").await;
    }
    let inner = format!("{outer}/inner");
    let high = format!("environments/{ws}/shared");
    for (name, path) in [("b-inner", &inner), ("b-high", &high)] {
        let target = h.target_namespace(name, false).await;
        create_env(&h, name, &target, &[], Some(path)).await;
    }
    let inside = condition(&h, "b-inner", "Committed").await;
    let holding = condition(&h, "b-high", "Committed").await;
    let outer_ready = condition(&h, "a-outer", "Ready").await;
    let low_ready = condition(&h, "a-low", "Ready").await;
    h.stop_controller().await;
    for (name, c, older) in [
        ("b-inner", &inside, "a-outer"),
        ("b-high", &holding, "a-low"),
    ] {
        assert_eq!(c.status, "False", "{name} is refused: {}", c.message);
        assert!(
            c.message.contains("overlaps") && c.message.contains(&format!("{ws}/{older}")),
            "{name}: the condition names the older Environment: {}",
            c.message
        );
    }
    assert_eq!(outer_ready.status, "True", "{}", outer_ready.message);
    assert_eq!(low_ready.status, "True", "{}", low_ready.message);
    let files = side_files(&h);
    assert!(
        under(&files, &inner).is_empty(),
        "nothing written inside outer's folder"
    );
    assert!(
        files.contains_key(&format!("{low}/secrets/app-pull.sops.yaml")),
        "low keeps its files"
    );
    assert!(
        !files.contains_key(&format!("{high}/kustomization.yaml")),
        "nothing written around low's folder"
    );
}

/// A folder left behind — by an Environment that moved away, or by a
/// deleted one whose removal was reverted — still holds sealed files whose
/// data key the controller can open. A new Environment claiming the
/// folder, listing the old owner's public recipient next to its own, must
/// not get that key re-wrapped for its recipients: with it, it would
/// decrypt the old owner's files and their whole history.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attack_orphaned_folder_key_is_never_reused_by_a_new_owner() {
    let mut h = Harness::start().await;
    let ws = h.workspace.clone();
    let ids: Vec<Identity> = (0..3).map(|_| Identity::generate()).collect();
    let rec: Vec<String> = ids.iter().map(|i| i.to_recipient().to_string()).collect();
    let (f, g) = (
        format!("environments/{ws}/f"),
        format!("environments/{ws}/g"),
    );
    let sealed = |folder: &str| format!("{folder}/secrets/app-pull.sops.yaml");
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("app", T).await;
    let target_a = h.target_namespace("a", false).await;
    create_env(&h, "a", &target_a, &rec[..1], Some(&f)).await;
    let a_in_f = wait_sealed_for(&h, &sealed(&f), &rec[0]).await;
    // A moves away from F; B claims F.
    let patch = serde_json::json!({"spec": {"sideRepo": {"path": g}}});
    h.environments()
        .patch("a", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let a_in_g = wait_sealed_for(&h, &sealed(&g), &rec[0]).await;
    let target_b = h.target_namespace("b", false).await;
    create_env(&h, "b", &target_b, &rec[..2], Some(&f)).await;
    let b_in_f = wait_sealed_for(&h, &sealed(&f), &rec[1]).await;
    // A is deleted, its removal reverted; after a restart C claims G.
    let left = under(&side_files(&h), &g);
    cluster::delete_and_wait(&h.environments(), "a", T).await;
    h.stop_controller().await;
    if under(&side_files(&h), &g).is_empty() {
        push_folder(&h, &g, &left, "Revert \"quayside: remove environment a\"");
    }
    h.start_controller().await;
    let target_c = h.target_namespace("c", false).await;
    create_env(
        &h,
        "c",
        &target_c,
        &[rec[0].clone(), rec[2].clone()],
        Some(&g),
    )
    .await;
    let c_in_g = wait_sealed_for(&h, &sealed(&g), &rec[2]).await;
    h.stop_controller().await;
    assert_ne!(
        data_key(&b_in_f, &ids[1]),
        data_key(&a_in_f, &ids[0]),
        "B's recipients got the data key of the files A left in F (and so their history)"
    );
    assert_ne!(
        data_key(&c_in_g, &ids[2]),
        data_key(&a_in_g, &ids[0]),
        "C's recipients got the data key of the files deleted A left in G"
    );
}

/// The sealed file at `path` once its data key is wrapped for `recipient`.
async fn wait_sealed_for(h: &Harness, path: &str, recipient: &str) -> String {
    wait::until(&format!("{path} sealed for {recipient}"), T, || async {
        let text = side_files(h).remove(path)?;
        text.contains(recipient).then_some(text)
    })
    .await
}
/// An Environment whose folder changes (spec.sideRepo.path edited) writes
/// the new folder and removes the old one in the same commit, and records
/// the folder in its status.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_changed_folder_moves_in_one_commit() {
    let mut h = Harness::start().await;
    let ws = h.workspace.clone();
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("app", T).await;
    let target = h.target_namespace("mover", false).await;
    create_env(&h, "mover", &target, &[], None).await;
    let old = format!("environments/{ws}/mover");
    wait::until("the default folder", T, || async {
        side_files(&h)
            .contains_key(&format!("{old}/secrets/app-pull.sops.yaml"))
            .then_some(())
    })
    .await;
    // A pass may read a status older than its own last commit (the spec
    // edit is seen before the status write): the move must not depend on
    // the status naming the old folder. Wipe it to make that certain.
    wait::until("the default folder recorded", T, || async {
        let s = h.environments().get("mover").await.ok()?.status?;
        (s.side_repo_path.as_deref() == Some(old.as_str())).then_some(())
    })
    .await;
    h.stop_controller().await;
    let wipe = serde_json::json!({"status": {"sideRepoPath": null}});
    h.environments()
        .patch_status("mover", &PatchParams::default(), &Patch::Merge(&wipe))
        .await
        .unwrap();
    let new = format!("environments/{ws}/moved/here");
    let patch = serde_json::json!({"spec": {"sideRepo": {"path": new}}});
    h.environments()
        .patch("mover", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    h.start_controller().await;
    let recorded = wait::until("the new folder recorded", T, || async {
        let e = h.environments().get("mover").await.ok()?;
        let s = e.status?;
        (s.side_repo_path.as_deref() == Some(new.as_str())).then_some(s)
    })
    .await;
    h.stop_controller().await;
    let files = side_files(&h);
    assert!(under(&files, &old).is_empty(), "the old folder is gone");
    assert!(files.contains_key(&format!("{new}/secrets/app-pull.sops.yaml")));
    let commit = recorded.commit.expect("a commit");
    let changed = git(&h, &["show", "--name-status", "--format=", &commit]);
    assert!(
        changed.contains(&format!("D\t{old}/secrets/app-pull.sops.yaml"))
            && changed.contains(&format!("A\t{new}/secrets/app-pull.sops.yaml")),
        "one commit removes the old folder and writes the new one:\n{changed}"
    );
}

/// Folders written before the workspace level existed
/// (`environments/<name>`) move to `environments/<workspace>/<name>` in one
/// commit per Environment; a same-named folder of another workspace's
/// Environment stays where it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn legacy_default_folders_move_into_the_workspace_folder() {
    let mut h = Harness::start().await;
    let ws = h.workspace.clone();
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    let mut targets = Vec::new();
    for name in ["dev", "prod"] {
        let target = h.target_namespace(name, false).await;
        create_env(&h, name, &target, &[], None).await;
        targets.push(target);
    }
    // What the previous release wrote: environments/<name>, header naming
    // the workspace; "prod" belongs to another workspace's Environment.
    let legacy = |env: &str, owner_ws: &str| {
        BTreeMap::from([
            (
                format!("environments/{env}/kustomization.yaml"),
                format!(
                    "# Generated by quayside for Environment {env} (workspace {owner_ws}).\nkind: Kustomization\n"
                ),
            ),
            (
                format!("environments/{env}/secrets/app-pull.sops.yaml"),
                "stale: true\n".to_string(),
            ),
        ])
    };
    push_folder(&h, "environments/dev", &legacy("dev", &ws), "legacy dev");
    push_folder(
        &h,
        "environments/prod",
        &legacy("prod", "someone-else"),
        "legacy prod",
    );
    h.start_controller().await;
    h.wait_component_ready("app", T).await;
    for name in ["dev", "prod"] {
        wait::until(&format!("{name} moved"), T, || async {
            let e = h.environments().get(name).await.ok()?;
            let s = e.status?;
            let want = format!("environments/{ws}/{name}");
            let sealed = side_files(&h).contains_key(&format!("{want}/secrets/app-pull.sops.yaml"));
            (s.side_repo_path.as_deref() == Some(want.as_str()) && sealed).then_some(())
        })
        .await;
    }
    h.stop_controller().await;
    let files = side_files(&h);
    for name in ["dev", "prod"] {
        let new = format!("environments/{ws}/{name}/secrets/app-pull.sops.yaml");
        let sealed = files.get(&new).unwrap_or_else(|| panic!("{new} written"));
        quayside::seal::open(sealed, &h.identity).expect("a sealed Secret the controller opens");
    }
    assert!(
        !files.contains_key("environments/dev/kustomization.yaml"),
        "dev's legacy folder is gone"
    );
    assert_eq!(
        under(&files, "environments/prod"),
        legacy("prod", "someone-else"),
        "another workspace's legacy folder stays"
    );
    // The commit that removed the legacy folder wrote the new one: at no
    // commit is dev's folder missing.
    let removal = git(
        &h,
        &[
            "log",
            "--format=%H",
            "--diff-filter=D",
            "main",
            "--",
            "environments/dev/kustomization.yaml",
        ],
    );
    let removal: Vec<&str> = removal.lines().collect();
    assert_eq!(removal.len(), 1, "{removal:?}");
    let changed = git(&h, &["show", "--name-status", "--format=", removal[0]]);
    assert!(
        changed.contains("D\tenvironments/dev/kustomization.yaml")
            && changed.contains(&format!("A\tenvironments/{ws}/dev/kustomization.yaml")),
        "dev moved in one commit:\n{changed}"
    );
}
