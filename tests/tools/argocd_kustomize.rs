//! Argo CD's path, run as its repo server runs it: the real kustomize
//! (`scripts/setup` builds v5.8.2 from the module proxy) builds folders that
//! `quayside render` wrote, with the options of
//! `docs/examples/argocd-cm-ksops.yaml`, from the repository root as Argo CD
//! does, in the layout that `docs/examples/argocd-repo-server-ksops.yaml`
//! sets up (read from a trimmed Argo CD repo-server Deployment patched
//! with that file by `kubectl patch --local`): `ksops` on `$PATH`, the age key from the
//! Secret the documented `kubectl create secret` command makes, named by
//! `SOPS_AGE_KEY_FILE`. KSOPS itself is not served by the module proxy, so
//! `ksops` is `tools/ksops-standin`, a test-only KRM exec function that
//! decrypts with the real `sops`.
//!
//! The Secrets that come out are checked against the credentials rendered,
//! and one `.dockerconfigjson` is used as a registry client's auth file
//! against the Quay emulator. The layout the example had before (ksops
//! only at the legacy plugin path) fails the same build, as it did for
//! users, and so does a repo server whose key is not a recipient.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use quayside_testkit::registry::emulator_with_client;
use quayside_testkit::tools;
use secrecy::ExposeSecret;
use serde_json::Value;

/// The documented command that stores the repo server's age key
/// (docs/side-repo.md, docs/examples/argocd-repo-server-ksops.yaml).
const AGE_SECRET_CMD: &str = "kubectl -n argocd create secret generic argocd-sops-age-key --from-file=keys.txt=argocd.agekey";
/// The documented command that makes the repo server's age key.
const KEYGEN_CMD: &str = "age-keygen -o argocd.agekey";
const REPO_SERVER: &str = "argocd-repo-server";
/// Where the repo server image keeps binaries on its `$PATH`.
const IMAGE_PATH_DIR: &str = "/usr/local/bin";

/// An external tool's run, bounded: a hang fails the test.
fn run(cmd: &mut Command) -> Output {
    quayside_testkit::process::output_within(cmd, Duration::from_secs(120))
}

/// `kubectl -n argocd patch … --patch-file docs/examples/PATCH`, done
/// locally (no Argo CD here) on a copy of the object under fixtures/argocd/.
fn patched(base: &str, patch: &str) -> Value {
    let root = tools::root();
    let o = run(Command::new(tools::bin("kubectl"))
        .args(["patch", "--local", "-o", "json", "-f"])
        .arg(root.join("fixtures/argocd").join(base))
        .arg("--patch-file")
        .arg(root.join("docs/examples").join(patch))
        .env("KUBECONFIG", root.join("fixtures/argocd/no-kubeconfig")));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no entry named {name} in {list}"))
}

/// The repo server's file system and environment as the example patch
/// lays them out, under a temporary root.
struct RepoServer {
    root: tempfile::TempDir,
    /// `SOPS_AGE_KEY_FILE`, under `root`.
    key_file: PathBuf,
    /// The directory on `$PATH` that holds `ksops`, under `root`.
    bin: PathBuf,
    /// `kustomize.buildOptions` of argocd-cm.
    build_options: Vec<String>,
}

/// Lay out a repo server from the examples, with `agekey` stored in the
/// Secret by the documented command.
fn repo_server(agekey: &Path) -> RepoServer {
    let deployment = patched("argocd-repo-server.yaml", "argocd-repo-server-ksops.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = named(&pod["containers"], REPO_SERVER);
    let key_path = named(&container["env"], "SOPS_AGE_KEY_FILE")["value"]
        .as_str()
        .unwrap()
        .to_string();

    // ksops: copied by the init container into the shared volume, mounted
    // into a directory of the image's $PATH.
    let mounts = container["volumeMounts"].as_array().unwrap();
    let ksops = mounts
        .iter()
        .find(|m| m["subPath"] == "ksops")
        .expect("the repo server mounts ksops");
    let ksops_at = ksops["mountPath"].as_str().unwrap();
    assert_eq!(
        Path::new(ksops_at),
        Path::new(IMAGE_PATH_DIR).join("ksops"),
        "kustomize finds exec functions on $PATH"
    );
    let tools_volume = ksops["name"].as_str().unwrap();
    let init = named(&pod["initContainers"], "install-ksops");
    let init_mount = named(&init["volumeMounts"], tools_volume)["mountPath"]
        .as_str()
        .unwrap();
    let command: Vec<&str> = init["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(command[1..], ["install", init_mount], "{command:?}");
    assert!(
        init["image"]
            .as_str()
            .unwrap()
            .starts_with("viaductoss/ksops:v4.")
    );
    // The patch merges into Argo CD's Deployment: its own parts stay.
    assert_eq!(
        container["image"], "quay.io/argoproj/argocd:v3.2.0",
        "the repo server's own kustomize is kept"
    );
    named(&pod["initContainers"], "copyutil");
    named(&pod["volumes"], "tls-certs");
    assert!(mounts.iter().any(|m| m["mountPath"] == "/app/config/tls"));

    // The age key: a Secret volume mounted above SOPS_AGE_KEY_FILE.
    let key_mount = mounts
        .iter()
        .find(|m| key_path.starts_with(&format!("{}/", m["mountPath"].as_str().unwrap())))
        .expect("SOPS_AGE_KEY_FILE lies in a mounted volume");
    let key_name = &key_path[key_mount["mountPath"].as_str().unwrap().len() + 1..];
    let volume = named(&pod["volumes"], key_mount["name"].as_str().unwrap());
    let secret_name = volume["secret"]["secretName"].as_str().unwrap();

    let root = tempfile::tempdir().unwrap();
    let under = |p: &str| root.path().join(p.trim_start_matches('/'));
    let bin = under(IMAGE_PATH_DIR);
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(
        tools::root().join(".cache/ksops-standin/ksops"),
        bin.join("ksops"),
    )
    .expect("the KSOPS stand-in is built: run scripts/setup");
    let key_file = under(&key_path);
    std::fs::create_dir_all(key_file.parent().unwrap()).unwrap();
    let secret = age_key_secret(agekey);
    assert_eq!(secret["metadata"]["name"], secret_name);
    assert_eq!(secret["metadata"]["namespace"], "argocd");
    let key = base64::engine::general_purpose::STANDARD
        .decode(
            secret["data"][key_name]
                .as_str()
                .expect("the Secret has the key the mount names"),
        )
        .unwrap();
    std::fs::write(&key_file, key).unwrap();

    let cm = patched("argocd-cm.yaml", "argocd-cm-ksops.yaml");
    assert_eq!(
        cm["data"]["url"], "https://argocd.example",
        "merged, not replaced"
    );
    let build_options = cm["data"]["kustomize.buildOptions"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect();
    RepoServer {
        root,
        key_file,
        bin,
        build_options,
    }
}

/// The Secret the documented command creates (client-side dry run: the
/// same object, printed instead of sent).
fn age_key_secret(agekey: &Path) -> Value {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(agekey, dir.path().join("argocd.agekey")).unwrap();
    let mut words = AGE_SECRET_CMD.split_whitespace();
    assert_eq!(words.next(), Some("kubectl"));
    let o = run(Command::new(tools::bin("kubectl"))
        .args(words)
        .args(["--dry-run=client", "-o", "json"])
        .current_dir(dir.path())
        .env("KUBECONFIG", dir.path().join("none")));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

impl RepoServer {
    /// `kustomize build FOLDER <buildOptions>` from the repository root,
    /// as Argo CD runs it. `sops` is on `$PATH` for the stand-in only (KSOPS
    /// embeds sops); nothing else of this machine's `$PATH` is.
    fn build(&self, repo: &Path, folder: &str) -> Output {
        self.build_with(repo, folder, |_| {})
    }

    fn build_with(&self, repo: &Path, folder: &str, adjust: impl FnOnce(&mut Command)) -> Output {
        let sops_dir = tools::bin("sops").parent().unwrap().to_path_buf();
        let path = std::env::join_paths([self.bin.clone(), sops_dir]).unwrap();
        let mut cmd = Command::new(tools::bin("kustomize"));
        cmd.arg("build")
            .arg(folder)
            .args(&self.build_options)
            .current_dir(repo)
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.root.path())
            .env("SOPS_AGE_KEY_FILE", &self.key_file)
            .stdin(Stdio::null());
        adjust(&mut cmd);
        run(&mut cmd)
    }
}

fn render(components: &Path, environments: &Path, credentials: &Path, out: &Path) {
    let o = run(Command::new(env!("CARGO_BIN_EXE_quayside"))
        .arg("render")
        .arg("--components")
        .arg(components)
        .arg("--environments")
        .arg(environments)
        .arg("--credentials")
        .arg(credentials)
        .arg("--out")
        .arg(out));
    assert!(
        o.status.success(),
        "quayside render: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn built(o: &Output) -> Vec<Value> {
    assert!(
        o.status.success(),
        "kustomize build failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_norway::Deserializer::from_slice(&o.stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect()
}

/// The registry, username and password of a pull Secret built by kustomize.
fn login(secret: &Value) -> (String, String, String) {
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    let config: Value =
        serde_json::from_str(secret["stringData"][".dockerconfigjson"].as_str().unwrap()).unwrap();
    let auths = config["auths"].as_object().unwrap();
    assert_eq!(auths.len(), 1, "{config}");
    let (registry, entry) = auths.iter().next().unwrap();
    let user = entry["username"].as_str().unwrap();
    let password = entry["password"].as_str().unwrap();
    let auth = base64::engine::general_purpose::STANDARD
        .decode(entry["auth"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        auth,
        format!("{user}:{password}").into_bytes(),
        "auth is user:password"
    );
    (registry.clone(), user.to_string(), password.to_string())
}

#[test]
fn argo_cd_builds_every_rendered_folder_with_ksops_on_path() {
    let f = tools::root().join("fixtures/render");
    let repo = tempfile::tempdir().unwrap();
    render(
        &f.join("components"),
        &f.join("environments"),
        &f.join("credentials.yaml"),
        repo.path(),
    );
    let server = repo_server(&f.join("argocd.agekey"));
    let folders = [
        ("environments/team-a/dev", "team-a-dev", &["api", "web"][..]),
        ("clusters/prod/team-a", "team-a-prod", &["api", "web"][..]),
        (
            "environments/team-b/staging",
            "team-b-staging",
            &["worker"][..],
        ),
    ];
    let credentials: Value =
        serde_norway::from_str(&std::fs::read_to_string(f.join("credentials.yaml")).unwrap())
            .unwrap();
    for (folder, namespace, components) in folders {
        let objects = built(&server.build(repo.path(), folder));
        let names: Vec<&str> = objects
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        let want: Vec<String> = components.iter().map(|c| format!("{c}-pull")).collect();
        assert_eq!(names, want, "{folder}: exactly the pull Secrets");
        for (secret, component) in objects.iter().zip(components) {
            assert_eq!(secret["metadata"]["namespace"], namespace);
            assert!(
                secret.get("sops").is_none(),
                "decrypted, without sops metadata"
            );
            assert_eq!(
                secret["metadata"]["labels"]["quayside.dev/component"],
                *component
            );
            let entry = [format!("team-a/{component}"), component.to_string()]
                .iter()
                .map(|k| &credentials[k.as_str()])
                .find(|v| !v.is_null())
                .unwrap()
                .clone();
            let (registry, user, password) = login(secret);
            assert_eq!(registry, entry["registry"].as_str().unwrap_or("quay.io"));
            assert_eq!(user, entry["username"].as_str().unwrap());
            assert_eq!(password, entry["token"].as_str().unwrap());
        }
    }
}

#[test]
fn the_legacy_plugin_layout_and_a_key_that_is_no_recipient_fail_the_build() {
    let f = tools::root().join("fixtures/render");
    let repo = tempfile::tempdir().unwrap();
    render(
        &f.join("components"),
        &f.join("environments"),
        &f.join("credentials.yaml"),
        repo.path(),
    );
    let folder = "environments/team-a/dev";

    // What the example did before: ksops only at the legacy plugin path
    // under XDG_CONFIG_HOME, nothing on $PATH. Users saw this error.
    let legacy = repo_server(&f.join("argocd.agekey"));
    let plugin_dir = legacy
        .root
        .path()
        .join(".config/kustomize/plugin/viaduct.ai/v1/ksops");
    std::fs::create_dir_all(&plugin_dir).unwrap();
    std::fs::rename(legacy.bin.join("ksops"), plugin_dir.join("ksops")).unwrap();
    let o = legacy.build_with(repo.path(), folder, |c| {
        c.env("XDG_CONFIG_HOME", legacy.root.path().join(".config"));
    });
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("\"ksops\": executable file not found in $PATH"),
        "{err}"
    );

    // A repo server with a new key (the documented command) that nobody
    // added to the folder's recipients.
    let stranger = tempfile::tempdir().unwrap();
    let mut words = KEYGEN_CMD.split_whitespace();
    let k = run(Command::new(tools::bin(words.next().unwrap()))
        .args(words)
        .current_dir(stranger.path()));
    assert!(k.status.success());
    let key = stranger.path().join("argocd.agekey");
    let o = repo_server(&key).build(repo.path(), folder);
    assert!(!o.status.success(), "a stranger's key decrypted the folder");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("secrets/api-pull.sops.yaml"),
        "names the file: {err}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).contains("FAKE-TOKEN"));
}

// Multi-threaded: the emulator serves while skopeo blocks this thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_dockerconfigjson_logs_a_registry_client_in() {
    const ORG: &str = "acme";
    const TOKEN: &str = "oauth-argocd-kustomize-test";
    let (emulator, client, dir) = emulator_with_client(ORG, TOKEN).await;
    let robot = client
        .ensure_robot("team-a_api_pull", "pull")
        .await
        .unwrap();
    let host = emulator.registry_host();

    // Render the robot's login for one Environment, as the controller would.
    let f = tools::root().join("fixtures/render");
    let inputs = dir.path().join("inputs");
    std::fs::create_dir_all(inputs.join("components")).unwrap();
    std::fs::create_dir_all(inputs.join("environments")).unwrap();
    std::fs::copy(
        f.join("components/team-a.yaml"),
        inputs.join("components/team-a.yaml"),
    )
    .unwrap();
    let dev = std::fs::read_to_string(f.join("environments/team-a.yaml")).unwrap();
    let dev = dev.split("\n---\n").next().unwrap();
    std::fs::write(inputs.join("environments/dev.yaml"), dev).unwrap();
    let creds = format!(
        "team-a/api:\n  username: {}\n  token: {}\n  registry: \"{host}\"\nweb:\n  username: unused\n  token: unused\n",
        robot.name,
        robot.token.expose_secret()
    );
    std::fs::write(inputs.join("credentials.yaml"), creds).unwrap();
    let repo = dir.path().join("repo");
    render(
        &inputs.join("components"),
        &inputs.join("environments"),
        &inputs.join("credentials.yaml"),
        &repo,
    );

    let server = repo_server(&f.join("argocd.agekey"));
    let objects = built(&server.build(&repo, "environments/team-a/dev"));
    let api = objects
        .iter()
        .find(|o| o["metadata"]["name"] == "api-pull")
        .unwrap();
    let (registry, _, _) = login(api);
    assert_eq!(registry, host);

    // The kubelet reads .dockerconfigjson as an auth file; so does skopeo.
    let authfile = dir.path().join("auth.json");
    std::fs::write(
        &authfile,
        api["stringData"][".dockerconfigjson"].as_str().unwrap(),
    )
    .unwrap();
    let skopeo_login = || {
        run(Command::new(tools::bin("skopeo"))
            .args(["login", "--tls-verify=false", "--authfile"])
            .arg(&authfile)
            .arg(&host)
            .stdin(Stdio::null()))
    };
    let o = skopeo_login();
    assert!(
        o.status.success(),
        "the built credentials log in: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The check is real: once the token is regenerated, the same file fails.
    client
        .regenerate_robot_token("team-a_api_pull")
        .await
        .unwrap();
    let o = skopeo_login();
    assert!(!o.status.success(), "a revoked token still logged in");
    emulator.shutdown().await;
}
