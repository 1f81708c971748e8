//! `quayside status`, run as the real binary against the control plane
//! with a controller delivering: each Component's generation per
//! Environment, the Environment's commit, Ready and why; and the same
//! report as the kubectl plugin (`kubectl quayside status`).

use std::time::Duration;

use quayside_testkit::harness::Harness;
use quayside_testkit::{tools, wait};

const T: Duration = Duration::from_secs(90);

/// What a run of the `quayside` binary printed, and whether it succeeded.
pub struct Ran {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run `quayside <args>` (the built binary) and wait for it.
pub async fn quayside(args: &[&str]) -> Ran {
    let out = tokio::process::Command::new(tools::workspace_bin("quayside"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .await
        .expect("run quayside");
    Ran {
        ok: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn kubeconfig(h: &Harness) -> String {
    h.cp.kubeconfig().display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_shows_delivery_and_why_not_ready() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("st", true).await;
    h.create_environment("dev", &target, &[]).await;
    h.start_controller().await;
    h.create_component("app", &h.git.repo_url("public-app"), "public")
        .await;
    h.wait_component_ready("app", T).await;
    wait::until("dev Ready with a commit", T, || async {
        let e = h.environments().get("dev").await.ok()?;
        let s = e.status?;
        s.commit?;
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
            .then_some(())
    })
    .await;
    // Stopped, so what status shows is what was read here.
    h.stop_controller().await;
    let env = h.environments().get("dev").await.unwrap();
    let commit: String = env
        .status
        .unwrap()
        .commit
        .unwrap()
        .chars()
        .take(12)
        .collect();
    let kc = kubeconfig(&h);
    let ws = h.workspace.clone();
    let ran = quayside(&["status", "-n", &ws, "--kubeconfig", &kc]).await;
    assert!(ran.ok, "{}", ran.stderr);
    let out = &ran.stdout;
    assert!(
        out.starts_with(&format!("Workspace {ws}\nCOMPONENT")),
        "{out}"
    );
    let app = line_of(out, "app ");
    for cell in ["True", "Ready", "dev=1", &format!("/{ws}/app")] {
        assert!(app.contains(cell), "app's row lacks {cell}: {app}\n{out}");
    }
    let dev = line_of(out, "dev ");
    for cell in ["True", &target, "deployer", &commit] {
        assert!(dev.contains(cell), "dev's row lacks {cell}: {dev}\n{out}");
    }
    eprintln!("{out}");
}

fn line_of<'a>(out: &'a str, start: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?}:\n{out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_says_why_a_component_is_not_ready() {
    let mut h = Harness::start().await;
    let target = h.target_namespace("sw", true).await;
    h.create_environment("dev", &target, &[]).await;
    let c: quayside::api::Component = serde_json::from_value(serde_json::json!({
        "apiVersion": "quayside.dev/v1alpha1", "kind": "Component",
        "metadata": {"name": "elsewhere"},
        "spec": {"source": {"git": {"url": h.git.repo_url("public-app")}}, "visibility": "public", "image": "../../etc/app"}
    }))
    .unwrap();
    h.components()
        .create(&Default::default(), &c)
        .await
        .unwrap();
    let kc = kubeconfig(&h);
    let ws = h.workspace.clone();
    // Before any controller ran: no Ready condition yet, and it says so.
    let before = quayside(&["status", "-n", &ws, "--kubeconfig", &kc]).await;
    assert!(before.ok, "{}", before.stderr);
    assert!(
        before.stdout.contains("  elsewhere: not reconciled yet"),
        "{}",
        before.stdout
    );
    h.start_controller().await;
    wait::until("elsewhere refused", T, || async {
        let c = h.components().get("elsewhere").await.ok()?;
        c.status?
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.reason == "ImageOutsideWorkspace")
            .then_some(())
    })
    .await;
    let ran = quayside(&["status", "-n", &ws, "--kubeconfig", &kc]).await;
    h.stop_controller().await;
    assert!(ran.ok, "{}", ran.stderr);
    let row = line_of(&ran.stdout, "elsewhere ");
    assert!(
        row.contains("False") && row.contains("ImageOutsideWorkspace"),
        "{row}"
    );
    let why = line_of(&ran.stdout, "  elsewhere: ");
    assert!(why.contains("outside this workspace"), "{why}");
    // Every namespace: this workspace's section is among them.
    let all = quayside(&["status", "--all-namespaces", "--kubeconfig", &kc]).await;
    assert!(
        all.ok && all.stdout.contains(&format!("Workspace {ws}\n")),
        "{}{}",
        all.stdout,
        all.stderr
    );
    // A namespace without objects says so, rather than printing nothing.
    let empty = quayside(&["status", "-n", &target, "--kubeconfig", &kc]).await;
    assert_eq!(
        empty.stdout, "No Components or Environments.\n",
        "{}",
        empty.stderr
    );
}

/// Installed as `kubectl-quayside` on the PATH, kubectl runs it as a
/// plugin; it reads the kubeconfig from KUBECONFIG as kubectl does, and
/// its usage names `kubectl quayside`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubectl_plugin_runs_the_same_commands() {
    let h = Harness::start().await;
    let target = h.target_namespace("pl", false).await;
    h.create_environment("dev", &target, &[]).await;
    let plugins = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        tools::workspace_bin("quayside"),
        plugins.path().join("kubectl-quayside"),
    )
    .unwrap();
    let kubectl = tools::bin("kubectl");
    let path = format!(
        "{}:{}:{}",
        plugins.path().display(),
        kubectl.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: Vec<String>| {
        let (path, kc, kubectl) = (path.clone(), kubeconfig(&h), kubectl.clone());
        async move {
            tokio::process::Command::new(kubectl)
                .args(&args)
                .env("PATH", path)
                .env("KUBECONFIG", kc)
                .output()
                .await
                .unwrap()
        }
    };
    let listed = run(vec!["plugin".into(), "list".into()]).await;
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("kubectl-quayside"),
        "{listed:?}"
    );
    let ws = h.workspace.clone();
    let out = run(vec![
        "quayside".into(),
        "status".into(),
        "-n".into(),
        ws.clone(),
    ])
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.starts_with(&format!("Workspace {ws}\nENVIRONMENT")),
        "{text}"
    );
    assert!(line_of(&text, "dev ").contains(&target), "{text}");
    let direct = quayside(&["status", "-n", &ws, "--kubeconfig", &kubeconfig(&h)]).await;
    assert_eq!(
        direct.stdout, text,
        "the plugin and the binary print the same"
    );
    let help = run(vec!["quayside".into(), "--help".into()]).await;
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("Usage: kubectl quayside"), "{help}");
    let version = run(vec!["quayside".into(), "version".into()]).await;
    assert!(
        String::from_utf8_lossy(&version.stdout).starts_with("quayside "),
        "{version:?}"
    );
}
