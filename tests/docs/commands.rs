//! Every command in README.md and docs/*.md is exercised, and the ledger
//! below says how: run here (`Run`), run in CI by a named file
//! (`CoveredBy`), only argument-checked because a full run takes too long
//! (`ArgsOnly`), or impossible on this machine (`NotHere`).
//!
//! What counts as a command (tests/docs/commands/markdown.rs): every line
//! of a ```sh, ```bash or ```shell block (continuations joined, `# comments`
//! and a leading `$ ` dropped; in ```console blocks only the `$ ` lines),
//! and every inline `code` span that, after any `NAME=value` assignments,
//! starts with a known program (`quayside`, `kubectl`, `sops`, `age`,
//! `git`, `cargo`, … or a file under `scripts/`, `.cache/bin/`,
//! `target/release/`, `fuzz/target/` …) followed by more than one bare
//! subcommand or flag name: `quayside run`, `skopeo login` and
//! `sops --encrypt` name a tool, `quayside run --help` and
//! `scripts/fuzz 10` are commands. docs/crd-reference.md is generated and
//! skipped. Commands are compared after whitespace normalisation, with
//! `<placeholders>` (and the docs' capitalised ones, like `DIR`) as written.
//!
//! A documented command without an entry fails the test (classify it), and
//! so does an entry whose command is no longer documented (remove it). Run
//! entries are run by the scenario they name, which fails if one of them
//! did not run; CoveredBy evidence is searched for in its file; ArgsOnly
//! commands go through the program's own argument parser
//! (`quayside-bench … --dry-parse`, `scripts/bench … --dry-parse`, `cargo … --help`).
//!
//! `cargo test --test docs commands::`; see docs/development.md.

mod markdown;
mod shell;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use quayside::credentials::RobotCredentials;
use quayside_testkit::{tools, wait};
use secrecy::ExposeSecret;
use shell::{Cmd, Shell};

/// Where a Run entry runs: each scenario is one test below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// A control plane started by the documented command, deploy/, a
    /// git server, the Quay emulator and `quayside run`.
    Cluster,
    /// No servers: rendering, generated files, keys, help.
    Offline,
    /// The quick benchmarks.
    Bench,
}

enum How {
    Run(Scenario),
    /// CI runs it from `file`. With no `shows`, `file` must contain the
    /// documented command itself (a `<placeholder>` matching any word);
    /// otherwise CI runs it with other values (`why` says which and why)
    /// and `file` must contain each of `shows`, in order.
    CoveredBy {
        file: &'static str,
        shows: &'static [&'static str],
        why: &'static str,
    },
    /// Too long for CI; its arguments are checked by the program's parser.
    ArgsOnly(&'static str),
    /// Cannot run on this machine.
    NotHere(&'static str),
}

use How::{ArgsOnly, NotHere, Run};
use Scenario::{Bench, Cluster, Offline};

const fn covered(file: &'static str) -> How {
    How::CoveredBy {
        file,
        shows: &[],
        why: "",
    }
}

const QUAY_EMULATOR: &str = "quay-emulator --listen 127.0.0.1:PORT --org ORG --token-file F [--private-quota N] [--latency-ms …] [--error-5xx-fraction …] [--drop-fraction …] [--rate-limit RPS:BURST]";
const RENDER: &str = "quayside render --components components/ --environments environments/ --credentials credentials.yaml --out side-repo/ [--identity controller.agekey] [--flavor flux]";
const DATAKEY: [&str; 3] = [
    "r=$(age-keygen -y key.txt)",
    "sed -n \"/recipient: $r/,/END AGE/{s/^ *//;/^-----BEGIN/,/^-----END/p}\" web-pull.sops.yaml > datakey.age",
    "age --decrypt -i key.txt datakey.age | od -An -tx1",
];
const INSTALL_SECRET: &str = "kubectl -n quayside-system create secret generic quayside-credentials --from-file=quay-token=./quay-token --from-file=side-repo-token=./side-repo-token --from-file=age.key=./controller.key";
const HELM_INSTALL: &str = "helm install quayside deploy/helm/quayside --namespace quayside-system --set quay.organization=my-org --set sideRepo.url=https://github.com/my-org/gitops-secrets.git";
const HELM_UPGRADE: &str =
    "helm upgrade quayside deploy/helm/quayside --namespace quayside-system --reuse-values";
const HELM_PACKAGE: &str = "helm package deploy/helm/quayside --destination dist/";
const NO_CONTAINERS: &str = "no container engine or registry on these machines (docs/release.md)";
const ARGOCD_KUSTOMIZE: &str = "tests/tools/argocd_kustomize.rs";
const FUZZ_IN_CI: &[&str] = &["scripts/fuzz \"${QUAYSIDE_FUZZ_SECONDS:-10}\""];
const CARGO_TEST_IN_CI: &[&str] = &["cargo test --workspace --all-targets --locked"];

/// The ledger: every documented command and how it is exercised.
const LEDGER: &[(&str, How)] = &[
    // README.md, docs/getting-started.md
    ("scripts/demo", covered("tests/docs/demo.rs")),
    ("scripts/test", covered(".ci/run")),
    ("kubectl get components", Run(Cluster)),
    (
        "kubectl annotate component frontend image.redhat.com/generate=true",
        Run(Cluster),
    ),
    ("age-keygen -o controller.key", Run(Cluster)),
    ("kubectl apply -k deploy/", Run(Cluster)),
    ("kubectl create namespace quayside-system", Run(Cluster)),
    (INSTALL_SECRET, Run(Cluster)),
    (HELM_INSTALL, Run(Cluster)),
    (HELM_UPGRADE, Run(Cluster)),
    // docs/release.md
    (
        "scripts/release-manifests",
        covered("tests/tools/helm_chart.rs"),
    ),
    (HELM_PACKAGE, Run(Offline)),
    (
        "helm push dist/quayside-<version>.tgz oci://quay.io/quayside/charts",
        NotHere(NO_CONTAINERS),
    ),
    (
        "docker buildx build --platform linux/amd64,linux/arm64 --build-arg QUAYSIDE_GIT_COMMIT=$(git rev-parse HEAD) --tag quay.io/quayside/quayside:<version> --push .",
        NotHere(NO_CONTAINERS),
    ),
    (
        "cosign sign --yes quay.io/quayside/quayside@<digest>",
        NotHere(NO_CONTAINERS),
    ),
    (
        "cosign verify quay.io/quayside/quayside@<digest> --certificate-oidc-issuer https://token.actions.githubusercontent.com --certificate-identity-regexp '^https://github.com/<owner>/quayside/.github/workflows/release.yaml@refs/tags/v'",
        NotHere(NO_CONTAINERS),
    ),
    (
        "kubectl -n quayside-system rollout status deployment/quayside-controller",
        NotHere("the test control plane has no controller-manager: no Pod is ever made"),
    ),
    // docs/development.md
    (".cache/bin/testcluster start --dir /tmp/cp", Run(Cluster)),
    (
        "kubectl --kubeconfig /tmp/cp/kubeconfig get ns",
        Run(Cluster),
    ),
    (
        "testcluster gitserver --root DIR --password P [--public a.git]",
        Run(Cluster),
    ),
    (
        "cargo run -- crd > deploy/crds/quayside.dev.yaml",
        Run(Offline),
    ),
    (
        "cargo run -- configuration > docs/configuration.md",
        Run(Offline),
    ),
    ("cargo fmt --all -- --check", covered("scripts/test")),
    ("cargo fetch --locked", covered("scripts/deny")),
    (
        "cargo fetch --locked --manifest-path fuzz/Cargo.toml",
        covered("scripts/fuzz"),
    ),
    ("cargo test --workspace", covered("scripts/test")),
    (
        "cargo test --workspace --all-targets --locked",
        covered("scripts/test"),
    ),
    (
        "cargo test --test offline",
        How::CoveredBy {
            file: "scripts/test",
            shows: CARGO_TEST_IN_CI,
            why: "--workspace --all-targets includes every test binary",
        },
    ),
    (
        "cargo test --test cluster bad_input",
        How::CoveredBy {
            file: "scripts/test",
            shows: CARGO_TEST_IN_CI,
            why: "--workspace --all-targets runs the cluster binary, bad_input included",
        },
    ),
    (
        "cargo test --workspace --test docs",
        How::CoveredBy {
            file: "scripts/test",
            shows: CARGO_TEST_IN_CI,
            why: "--all-targets includes the docs binary",
        },
    ),
    (
        "cargo test -p quay-emulator",
        How::CoveredBy {
            file: "scripts/test",
            shows: CARGO_TEST_IN_CI,
            why: "--workspace includes every package",
        },
    ),
    (
        "cargo clippy --workspace --all-targets --locked -- -D warnings",
        covered("scripts/test"),
    ),
    (
        "cargo test --test docs commands::",
        How::CoveredBy {
            file: "scripts/test",
            shows: CARGO_TEST_IN_CI,
            why: "--all-targets includes the docs binary, commands included",
        },
    ),
    (
        "scripts/fuzz 10",
        How::CoveredBy {
            file: "scripts/test",
            shows: FUZZ_IN_CI,
            why: "10 is the default of QUAYSIDE_FUZZ_SECONDS",
        },
    ),
    // docs/operations.md: onboarding a tenant
    (
        "kubectl -n team-a create serviceaccount quayside-delivery",
        Run(Cluster),
    ),
    (
        "kubectl create rolebinding quayside-delivery-team-a --clusterrole=quayside-delivery --serviceaccount=team-a:quayside-delivery --namespace=team-a",
        Run(Cluster),
    ),
    (
        "kubectl create rolebinding quayside-delivery-team-a --clusterrole=quayside-delivery --serviceaccount=team-a:quayside-delivery --namespace=team-a-prod",
        Run(Cluster),
    ),
    // docs/operations.md
    (
        "kubectl -n <workspace> annotate component <name> image.redhat.com/generate=true",
        Run(Cluster),
    ),
    (
        "kubectl -n <workspace> get component <name> -w",
        Run(Cluster),
    ),
    (
        "kubectl -n <workspace> annotate --overwrite component <name> quayside.dev/rotate=\"$(date -u +%Y%m%dT%H%M%SZ)\"",
        How::CoveredBy {
            file: "tests/cluster/rotation_requests.rs",
            shows: &[
                "rotate_handled(&c) == Some(value)",
                "ROTATE_ANNOTATION: \"first\"",
            ],
            why: "the test sets the value annotation (as a GitOps engine's server-side apply) and waits for status.rotateHandled",
        },
    ),
    (
        "kubectl -n <workspace> get component <name> -o jsonpath='{.status.rotateHandled}'",
        How::CoveredBy {
            file: "tests/cluster/rotation_requests.rs",
            shows: &["rotate_handled"],
            why: "the test reads status.rotateHandled through the API",
        },
    ),
    ("quayside run --help", Run(Offline)),
    // docs/operations.md: the operator commands, run as the built binary
    // against the test control plane, the Quay emulator and the git server.
    (
        "quayside status -n <workspace>",
        How::CoveredBy {
            file: "tests/cluster/cli_status.rs",
            shows: &["\"status\", \"-n\""],
            why: "with the test control plane's --kubeconfig",
        },
    ),
    (
        "quayside status --all-namespaces",
        How::CoveredBy {
            file: "tests/cluster/cli_status.rs",
            shows: &["\"status\", \"--all-namespaces\""],
            why: "with the test control plane's --kubeconfig",
        },
    ),
    (
        "quayside rotate <name> -n <workspace> --wait",
        How::CoveredBy {
            file: "tests/cluster/cli_rotate.rs",
            shows: &["\"rotate\"", "\"-n\"", "\"--wait\""],
            why: "with the test control plane's --kubeconfig and a --timeout",
        },
    ),
    (
        "quayside doctor --as system:serviceaccount:quayside-system:quayside-controller",
        How::CoveredBy {
            file: "tests/cluster/cli_doctor.rs",
            shows: &["\"doctor\"", "\"--as\", &controller"],
            why: "with run's flags for the test's servers, as a ServiceAccount of the test's namespace bound to deploy/rbac/'s roles",
        },
    ),
    (
        "kubectl plugin list",
        How::CoveredBy {
            file: "tests/cluster/cli_status.rs",
            shows: &["\"plugin\".into(), \"list\".into()"],
            why: "with kubectl-quayside on the PATH",
        },
    ),
    (
        "kubectl quayside status",
        How::CoveredBy {
            file: "tests/cluster/cli_status.rs",
            shows: &["\"quayside\".into(),", "\"status\".into(),"],
            why: "with kubectl-quayside on the PATH and -n the test's namespace",
        },
    ),
    ("kubectl get components -A", Run(Cluster)),
    ("age-keygen -o new.key", Run(Offline)),
    // docs/quay.md
    (QUAY_EMULATOR, Run(Cluster)),
    ("skopeo login -u org+robot -p TOKEN", Run(Cluster)),
    // docs/sealing.md
    (
        "SOPS_AGE_KEY_FILE=key.txt sops --decrypt environments/team-a/dev/secrets/web-pull.sops.yaml",
        Run(Cluster),
    ),
    (DATAKEY[0], Run(Cluster)),
    (DATAKEY[1], Run(Cluster)),
    (DATAKEY[2], Run(Cluster)),
    (
        "quayside verify environments/ --identity key.txt",
        Run(Cluster),
    ),
    (
        "quayside verify . --history --identity key.txt",
        Run(Cluster),
    ),
    // docs/side-repo.md
    ("git log --grep 'Quayside-Component: api'", Run(Cluster)),
    ("kubectl kustomize environments/team-a/dev", Run(Offline)),
    (
        "SOPS_AGE_KEY_FILE=key.txt sops --decrypt environments/team-a/dev/secrets/api-pull.sops.yaml",
        Run(Cluster),
    ),
    ("quayside verify DIR", Run(Cluster)),
    (RENDER, Run(Offline)),
    // docs/side-repo.md: Argo CD with KSOPS
    ("age-keygen -o argocd.agekey", covered(ARGOCD_KUSTOMIZE)),
    (
        "kubectl -n argocd create secret generic argocd-sops-age-key --from-file=keys.txt=argocd.agekey",
        covered(ARGOCD_KUSTOMIZE),
    ),
    (
        "kubectl -n argocd patch deployment argocd-repo-server --patch-file docs/examples/argocd-repo-server-ksops.yaml",
        How::CoveredBy {
            file: ARGOCD_KUSTOMIZE,
            shows: &["\"patch\", \"--local\"", "argocd-repo-server-ksops.yaml"],
            why: "no Argo CD here: the same patch file is applied locally to a trimmed argocd-repo-server Deployment, and kustomize runs in the layout that comes out",
        },
    ),
    (
        "kubectl -n argocd patch configmap argocd-cm --patch-file docs/examples/argocd-cm-ksops.yaml",
        How::CoveredBy {
            file: ARGOCD_KUSTOMIZE,
            shows: &["\"patch\", \"--local\"", "argocd-cm-ksops.yaml"],
            why: "no Argo CD here: the same patch file is applied locally to an argocd-cm, and kustomize runs with the buildOptions that come out",
        },
    ),
    // docs/operations.md: Argo CD
    (
        "kubectl -n argocd patch configmap argocd-cm --patch-file deploy/argocd/argocd-cm.yaml",
        How::CoveredBy {
            file: "tests/tools/argocd_lua.rs",
            shows: &["deploy(\"argocd-cm.yaml\")", "\"patch\", \"--local\""],
            why: "no Argo CD here: the same patch file is applied locally to an argocd-cm, and the result is checked to hold the Lua files",
        },
    ),
    // docs/benchmarks.md
    (
        "cargo build --release --workspace",
        ArgsOnly(
            "a release build takes minutes on 2 cores; CI compiles the same code with `cargo clippy` and `cargo test`, and the benchmarks here run the debug build",
        ),
    ),
    (
        "target/release/quayside-bench seal",
        ArgsOnly("seals 10,000 Secrets and runs sops 1,100 times"),
    ),
    (
        "target/release/quayside-bench seal --sizes 1000 --sops-sizes 100",
        Run(Bench),
    ),
    ("target/release/quayside-bench seal --quick", Run(Bench)),
    ("quayside-bench seal --quick", Run(Bench)),
    (
        "target/release/quayside-bench seal --sizes 1000,10000 --sops-sizes 100",
        ArgsOnly("seals 10,000 Secrets"),
    ),
    (
        "sops --encrypt --age R1,R2 --encrypted-regex '^(data|stringData)$'",
        How::CoveredBy {
            file: "crates/bench/src/seal.rs",
            shows: &[
                "\"--encrypt\"",
                "\"--age\"",
                "\"--encrypted-regex\"",
                "\"^(data|stringData)$\"",
            ],
            why: "what `quayside-bench seal` runs once per file, with the file appended; the Bench scenario runs it",
        },
    ),
    (
        "scripts/bench --plot",
        ArgsOnly(
            "every benchmark at full size (over an hour), and the plot needs matplotlib, which scripts/setup does not install",
        ),
    ),
    ("scripts/bench --quick", Run(Bench)),
    (
        "target/release/quayside-bench controller --only scale --components 1000 --environments 10 --steps 1000 --restarts 2 --json scale.json",
        ArgsOnly("1,000 Components × 10 Environments: tens of minutes"),
    ),
    (
        "target/release/quayside-bench controller --only scale --components 10000 --workspaces 2000 --environments 3 --steps 2000 --restarts 2 --timeout 60m --json tenants.json",
        ArgsOnly("10,000 Components in 2,000 workspaces × 3 Environments: hours"),
    ),
    (
        "scripts/bench --plot-only scale.json tenants.json",
        ArgsOnly(
            "draws from the JSON of two full-size runs, and the plot needs matplotlib, which scripts/setup does not install",
        ),
    ),
    (
        "target/release/quayside-bench controller --only rotation,throttled --json rot.json",
        ArgsOnly(
            "40 rotations over 50 Environments and 100 Components behind a 5 req/s limit: minutes",
        ),
    ),
    (
        "target/release/quayside-bench controller --only scale --components 300 --workspaces 300 --environments 3 --steps 300 --replicas 3 --shards 12 --delivery-mode direct --json replicas.json",
        ArgsOnly(
            "300 workspaces served by one replica, then by three sharded ones: tens of minutes",
        ),
    ),
    (
        "perf record -e cpu-clock",
        NotHere(
            "how a profile was taken, not a project command: perf is not installed by scripts/setup (so not in CI), and bare `perf record` samples the whole machine until interrupted",
        ),
    ),
    (
        "perf stat -e instructions",
        NotHere("hardware counters are not available in these VMs: perf reports `<not supported>`"),
    ),
    // docs/reliability.md
    (
        "scripts/fuzz",
        How::CoveredBy {
            file: "scripts/test",
            shows: FUZZ_IN_CI,
            why: "CI fuzzes every target 10 s instead of 30",
        },
    ),
    (
        "scripts/fuzz 300 names",
        How::CoveredBy {
            file: "scripts/test",
            shows: FUZZ_IN_CI,
            why: "CI fuzzes every target, `names` included, 10 s instead of 300",
        },
    ),
    (
        "scripts/fuzz 5",
        How::CoveredBy {
            file: "scripts/test",
            shows: FUZZ_IN_CI,
            why: "a run quoted in the text; CI fuzzes 10 s per target",
        },
    ),
    (
        "scripts/fuzz 20",
        How::CoveredBy {
            file: "scripts/test",
            shows: FUZZ_IN_CI,
            why: "CI fuzzes 10 s per target",
        },
    ),
    (
        "fuzz/target/x86_64-unknown-linux-gnu/release/<target> <file>",
        How::CoveredBy {
            file: "scripts/fuzz",
            shows: &[
                "bin=\"fuzz/target/$(rustc -vV | sed -n 's/^host: //p')/release\"",
                "\"$bin/$t\"",
            ],
            why: "CI runs the same target binaries, on the corpus folder instead of one file",
        },
    ),
    ("scripts/deny", covered("scripts/test")),
    (
        "cargo deny check licenses bans sources",
        How::CoveredBy {
            file: "scripts/deny",
            shows: &[
                "cargo deny --offline --locked check --hide-inclusion-graph licenses bans sources",
            ],
            why: "offline: these machines cannot reach GitHub",
        },
    ),
    (
        "cargo deny check advisories",
        How::CoveredBy {
            file: "scripts/deny",
            shows: &["cargo deny --locked check --hide-inclusion-graph advisories"],
            why: "the same check, with the lock file enforced",
        },
    ),
    (
        "QUAYSIDE_LONG=1 cargo test --test cluster reliability_",
        How::CoveredBy {
            file: "scripts/test",
            shows: CARGO_TEST_IN_CI,
            why: "CI runs these tests (the cluster binary's reliability_ modules) at their small sizes; QUAYSIDE_LONG=1 only raises the counts",
        },
    ),
    (
        "cargo test --test cluster reliability_faults",
        How::CoveredBy {
            file: "scripts/test",
            shows: CARGO_TEST_IN_CI,
            why: "--all-targets includes it",
        },
    ),
    (
        "skopeo login --tls-verify=false --password-stdin",
        Run(Cluster),
    ),
];

fn entry(command: &str) -> Option<&'static How> {
    LEDGER.iter().find(|(c, _)| *c == command).map(|(_, h)| h)
}

fn run_entries(scenario: Scenario) -> Vec<&'static str> {
    LEDGER
        .iter()
        .filter(|(_, h)| matches!(h, Run(s) if *s == scenario))
        .map(|(c, _)| *c)
        .collect()
}

fn quayside() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quayside"))
}

/// The workspace's other binaries the docs run, built by
/// `cargo test --workspace` (a test run alone says how to build them).
fn quay_emulator() -> PathBuf {
    tools::workspace_bin("quay-emulator")
}

fn quayside_bench() -> PathBuf {
    tools::workspace_bin("quayside-bench")
}

/// A shell for `scenario`, with the binaries it runs on PATH.
fn shell(scenario: Scenario) -> Shell {
    let bins = match scenario {
        Cluster => vec![quayside(), quay_emulator()],
        Offline => vec![quayside()],
        Bench => vec![quayside(), quayside_bench()],
    };
    Shell::new(&tools::root(), &bins, run_entries(scenario))
}

/// A path as a shell word: temporary paths here have no blanks.
fn p(path: &Path) -> String {
    let s = path.display().to_string();
    assert!(!s.contains(char::is_whitespace), "{s:?}");
    s
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// The ledger against the docs

#[test]
fn every_documented_command_has_a_ledger_entry_and_every_entry_is_documented() {
    let root = tools::root();
    let found = markdown::commands_in_docs(&root);
    let mut places: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in &found {
        places.entry(&f.command).or_default().push(&f.place);
    }
    let missing: Vec<String> = places
        .iter()
        .filter(|(c, _)| entry(c).is_none())
        .map(|(c, at)| format!("{c}    ({})", at.join(", ")))
        .collect();
    let stale: Vec<&str> = LEDGER
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !places.contains_key(c))
        .collect();
    let mut seen = BTreeSet::new();
    let twice: Vec<&str> = LEDGER
        .iter()
        .map(|(c, _)| *c)
        .filter(|c| !seen.insert(*c))
        .collect();
    assert!(
        missing.is_empty() && stale.is_empty() && twice.is_empty(),
        "documented commands without a ledger entry in tests/docs/commands.rs (say how each is exercised):\n  {}\n\
         ledger entries no longer in the docs (remove them):\n  {}\n\
         ledger entries listed twice:\n  {}",
        missing.join("\n  "),
        stale.join("\n  "),
        twice.join("\n  ")
    );

    let mut counts = BTreeMap::new();
    for (command, how) in LEDGER {
        let kind = match how {
            Run(_) => "Run",
            How::CoveredBy { file, shows, why } => {
                check_evidence(&root, command, file, shows, why);
                "CoveredBy"
            }
            ArgsOnly(reason) | NotHere(reason) => {
                assert!(reason.len() > 10, "`{command}`: give the reason");
                if matches!(how, ArgsOnly(_)) {
                    "ArgsOnly"
                } else {
                    "NotHere"
                }
            }
        };
        *counts.entry(kind).or_insert(0) += 1;
    }
    eprintln!(
        "{} documented commands ({} occurrences): {counts:?}",
        places.len(),
        found.len()
    );
}

/// The evidence is in the file, and CI runs the file: it cannot rot.
fn check_evidence(root: &Path, command: &str, file: &str, shows: &[&str], why: &str) {
    assert!(run_by_ci(root, file), "`{command}`: CI does not run {file}");
    let text = read(&root.join(file));
    if shows.is_empty() {
        let re = regex::Regex::new(&command_pattern(command)).unwrap();
        assert!(
            re.is_match(&text),
            "`{command}`: {file} does not run it (looked for /{re}/)"
        );
        return;
    }
    assert!(
        why.len() > 10,
        "`{command}`: say why {file} runs it differently"
    );
    let mut rest = text.as_str();
    for s in shows {
        let at = rest.find(s).unwrap_or_else(|| {
            panic!("`{command}`: {file} no longer contains {s:?} (in this order)")
        });
        rest = &rest[at + s.len()..];
    }
}

/// CI runs `.ci/run`, which runs `scripts/test`, which runs every test
/// target and the scripts it names; `crates/bench/src/seal.rs` is `quayside-bench seal`,
/// which the Bench scenario below runs.
fn run_by_ci(root: &Path, file: &str) -> bool {
    let named_in = |f: &str| read(&root.join(f)).contains(file);
    file == ".ci/run"
        || (file.starts_with("tests/") && file.ends_with(".rs") && !file.contains("/support/"))
        || file == "crates/bench/src/seal.rs"
        || named_in(".ci/run")
        || named_in("scripts/test")
}

/// A regex for the documented command in a script: words separated by any
/// blanks, a `<placeholder>` matching any word.
fn command_pattern(command: &str) -> String {
    let placeholder = regex::Regex::new(r"<[^>\s]+>").unwrap();
    let words: Vec<String> = command
        .split_whitespace()
        .map(|w| {
            let mut out = String::new();
            let mut last = 0;
            for m in placeholder.find_iter(w) {
                out.push_str(&regex::escape(&w[last..m.start()]));
                out.push_str(r"\S+");
                last = m.end();
            }
            out.push_str(&regex::escape(&w[last..]));
            out
        })
        .collect();
    format!(r#"(?m)(^|[\s"'(/]){}($|[\s"';)&|])"#, words.join(r"\s+"))
}

#[test]
fn args_only_commands_pass_their_programs_argument_parser() {
    let root = tools::root();
    let sh = Shell::new(&root, &[quayside_bench()], vec![]);
    // The mechanism itself: a misspelt flag is refused.
    let out = sh
        .check(Cmd::doc("quayside-bench seal").append("--sizez 5 --dry-parse"))
        .fails();
    assert!(out.stderr.contains("--sizez"), "{}", out.stderr);

    for (command, how) in LEDGER {
        let ArgsOnly(_) = how else { continue };
        let words: Vec<&str> = command.split_whitespace().collect();
        match words[0] {
            "quayside-bench" | "target/release/quayside-bench" => {
                let cmd = if words[0] == "quayside-bench" {
                    Cmd::doc(command)
                } else {
                    Cmd::doc(command).fill("target/release/quayside-bench", "quayside-bench")
                };
                let out = sh.check(cmd.append("--dry-parse")).ok();
                assert!(
                    out.stdout.is_empty(),
                    "`{command}` did some work: {}",
                    out.stdout
                );
            }
            "scripts/bench" => {
                let out = sh
                    .check(Cmd::doc(command).append("--dry-parse"))
                    .env("QUAYSIDE_BIN", quayside())
                    .env("QUAYSIDE_BENCH_BIN", quayside_bench())
                    .ok();
                assert!(
                    out.stdout.contains("arguments accepted, nothing run"),
                    "{}",
                    out.stdout
                );
                if command.contains("--plot") {
                    assert!(
                        out.stdout
                            .contains("--plot would redraw docs/benchmarks.png")
                    );
                }
            }
            "cargo" => {
                // cargo's parser rejects an unknown flag before it reaches
                // --help; what follows `--` belongs to the test binary.
                let (cargo_args, _) = command.split_once(" -- ").unwrap_or((command, ""));
                let out = sh
                    .check(Cmd::doc(command).fill(command, format!("{cargo_args} --help")))
                    .ok();
                assert!(out.stdout.contains("Usage: cargo"), "{}", out.stdout);
                for pair in words.windows(2) {
                    if pair[0] == "--test" {
                        let tests = root.join("tests");
                        let file = tests.join(format!("{}.rs", pair[1]));
                        let dir = tests.join(pair[1]).join("main.rs");
                        assert!(
                            file.is_file() || dir.is_file(),
                            "`{command}`: no {} or {}",
                            file.display(),
                            dir.display()
                        );
                    }
                }
            }
            other => panic!("`{command}`: no argument check for {other}; add one here"),
        }
    }
}

// ---------------------------------------------------------------------------
// Scenario: a control plane and everything that talks to it

const ORG: &str = "quayside-docs";
const QUAY_TOKEN: &str = "docs-quay-oauth-token";
const GIT_PASSWORD: &str = "docs-git-password";

/// `kubectl` as a helper (not a documented command), bounded.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("60")
        .arg(tools::bin("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl_apply(kubeconfig: &Path, yaml: &str) {
    use std::io::Write;
    let mut child = Command::new("timeout")
        .arg("60")
        .arg(tools::bin("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "kubectl apply:\n{yaml}");
}

fn git(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg("60")
        .arg("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap()
}

/// The pull robot in `<component>-pull` of `namespace`.
fn pull_credentials(kubeconfig: &Path, namespace: &str, component: &str) -> RobotCredentials {
    use base64::Engine;
    let b64 = kubectl(
        kubeconfig,
        &[
            "-n",
            namespace,
            "get",
            "secret",
            &format!("{component}-pull"),
            "-o",
            r"jsonpath={.data.\.dockerconfigjson}",
        ],
    );
    let json = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .expect("base64");
    RobotCredentials::from_docker_config_json(std::str::from_utf8(&json).unwrap())
        .expect("a dockerconfigjson")
}

/// `kubectl get` output as rows of (column → cell).
fn table(out: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    lines
        .map(|l| {
            header
                .iter()
                .map(|h| h.to_string())
                .zip(l.split_whitespace().map(String::from))
                .collect()
        })
        .collect()
}

/// The age recipient written by `age-keygen -o FILE` into FILE.
fn recipient_of(key_file: &Path) -> String {
    read(key_file)
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap_or_else(|| panic!("{} has no public key line", key_file.display()))
        .to_string()
}

/// The documented commands against a control plane started by the
/// documented `testcluster start`: install, the git server, the Quay
/// emulator, `quayside run`, what users look at, both rotations, registry
/// logins, and the side repository read, verified and decrypted by hand.
/// One flow per step below, in order: each needs what the ones before set up.
#[test]
fn cluster_commands_run_against_a_real_control_plane() {
    let sh = shell(Cluster);
    let tmp = tempfile::Builder::new()
        .prefix("docs-cluster-")
        .tempdir()
        .unwrap();
    let t = tmp.path().to_path_buf();
    let (cp, admin, kc) = start_control_plane(&sh, &t);
    install_with_helm(&sh, &t, &kc);
    let (gitserver, git_root, git_url) = start_git_server(&sh, &t);
    let (emulator, api, registry) = start_quay_emulator(&sh, &t);
    let scene = Scene {
        key_txt: t.join("key.txt"),
        sh,
        t,
        admin,
        kc,
        git_root,
        git_url,
        api,
        registry,
    };
    let argo = scene.keys();
    let controller = scene.run_controller(&argo);
    scene.components_as_users_see_them();
    let old = scene.rotations();
    let new = scene.registry_logins(&old);
    let clone = scene.clone_side_repo();
    scene.git_log_lists_a_components_changes(&clone);
    scene.verify(&clone);
    scene.decrypt_by_hand(&clone, &new);

    scene.sh.assert_ran_everything();
    drop(controller);
    drop(emulator);
    drop(gitserver);
    drop(cp);
}

/// docs/development.md: `testcluster start`, and `kubectl get ns` with its
/// admin kubeconfig. Returns the control plane, that kubeconfig, and the
/// user's own (current namespace `team-a`, as in the demo).
fn start_control_plane(sh: &Shell, t: &Path) -> (shell::Background, PathBuf, PathBuf) {
    // `--watch-stdin` (documented on the same page) is added so the
    // servers cannot outlive this test.
    let cp_dir = t.join("cp");
    let cp = sh
        .run(
            Cmd::doc(".cache/bin/testcluster start --dir /tmp/cp")
                .fill("/tmp/cp", p(&cp_dir))
                .append("--watch-stdin"),
        )
        .limit(Duration::from_secs(900))
        .spawn();
    let ready = cp.line("READY", Duration::from_secs(120), |l| {
        l.starts_with("READY")
    });
    assert_eq!(ready, format!("READY {}/kubeconfig", cp_dir.display()));
    let admin = cp_dir.join("kubeconfig");

    let out = sh
        .run(Cmd::doc("kubectl --kubeconfig /tmp/cp/kubeconfig get ns").fill("/tmp/cp", p(&cp_dir)))
        .ok();
    let namespaces = table(&out.stdout);
    for ns in ["default", "kube-system"] {
        assert!(
            namespaces
                .iter()
                .any(|r| r["NAME"] == ns && r["STATUS"] == "Active"),
            "{}",
            out.stdout
        );
    }

    // Users run kubectl with their own kubeconfig, here one whose current
    // namespace is the workspace (as in the demo).
    let kc = t.join("kubeconfig");
    std::fs::copy(&admin, &kc).unwrap();
    kubectl(
        &kc,
        &["config", "set-context", "--current", "--namespace=team-a"],
    );
    (cp, admin, kc)
}

/// docs/getting-started.md: install with Helm, as a user would, from
/// the credentials Secret to `helm install` and an upgrade. The objects
/// must really exist. (The key and tokens here are throwaway: the
/// controller this scenario runs later is started by hand.)
fn install_with_helm(sh: &Shell, t: &Path, kc: &Path) {
    let dir = t.join("install");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("quay-token"), "placeholder-quay-token").unwrap();
    std::fs::write(dir.join("side-repo-token"), "placeholder-side-repo-token").unwrap();
    let key = Command::new(tools::bin("age-keygen"))
        .arg("-o")
        .arg(dir.join("controller.key"))
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(key.success());
    sh.run(Cmd::doc("kubectl create namespace quayside-system"))
        .env("KUBECONFIG", kc)
        .ok();
    let secret = sh
        .run(Cmd::doc(INSTALL_SECRET))
        .cwd(&dir)
        .env("KUBECONFIG", kc)
        .ok();
    assert!(
        secret
            .stdout
            .contains("secret/quayside-credentials created"),
        "{}",
        secret.stdout
    );
    let keys = kubectl(
        kc,
        &[
            "-n",
            "quayside-system",
            "get",
            "secret",
            "quayside-credentials",
            "-o",
            "jsonpath={.data}",
        ],
    );
    for k in ["quay-token", "side-repo-token", "age.key"] {
        assert!(keys.contains(&format!("\"{k}\"")), "{k} missing: {keys}");
    }
    let out = sh.run(Cmd::doc(HELM_INSTALL)).env("KUBECONFIG", kc).ok();
    assert!(out.stdout.contains("STATUS: deployed"), "{}", out.stdout);
    kubectl(
        kc,
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/components.quayside.dev",
            "crd/environments.quayside.dev",
        ],
    );
    let deployment = |path: &str| {
        kubectl(
            kc,
            &[
                "-n",
                "quayside-system",
                "get",
                "deployment",
                "quayside-controller",
                "-o",
                &format!("jsonpath={path}"),
            ],
        )
    };
    assert_eq!(
        deployment("{.spec.replicas}"),
        "2",
        "getting-started.md: two replicas"
    );
    let config = kubectl(
        kc,
        &[
            "-n",
            "quayside-system",
            "get",
            "configmap",
            "quayside-config",
            "-o",
            "jsonpath={.data}",
        ],
    );
    assert!(
        config.contains("my-org") && config.contains("gitops-secrets.git"),
        "{config}"
    );
    let out = sh.run(Cmd::doc(HELM_UPGRADE)).env("KUBECONFIG", kc).ok();
    assert!(out.stdout.contains("REVISION: 2"), "{}", out.stdout);
    // The same objects without Helm: `kubectl apply -k deploy/` over the
    // chart's, checked by the API server without changing them.
    let out = sh
        .run(Cmd::doc("kubectl apply -k deploy/").append("--dry-run=server"))
        .env("KUBECONFIG", kc)
        .ok();
    for object in [
        "customresourcedefinition.apiextensions.k8s.io/components.quayside.dev",
        "clusterrole.rbac.authorization.k8s.io/quayside-delivery",
        "deployment.apps/quayside-controller",
    ] {
        assert!(
            out.stdout.contains(object),
            "{object} missing:\n{}",
            out.stdout
        );
    }
}

/// docs/development.md: the git server. `a.git` is public, the side
/// repository is not. Returns it, its root folder and its URL.
fn start_git_server(sh: &Shell, t: &Path) -> (shell::Background, PathBuf, String) {
    let git_root = t.join("git");
    quayside_testkit::git_server::init_bare(&git_root.join("a.git"));
    quayside_testkit::git_server::init_bare(&git_root.join("gitops.git"));
    let gitserver = sh
        .run(
            Cmd::doc("testcluster gitserver --root DIR --password P [--public a.git]")
                .fill_secret("--password P", &format!("--password {GIT_PASSWORD}"))
                .fill("DIR", p(&git_root))
                .fill("[--public a.git]", "--public a.git")
                .append("--watch-stdin"),
        )
        .limit(Duration::from_secs(900))
        .spawn();
    let git_url = gitserver
        .line("READY", Duration::from_secs(30), |l| {
            l.starts_with("READY ")
        })
        .trim_start_matches("READY ")
        .to_string();
    assert!(
        git(t, &["ls-remote", &format!("{git_url}/a.git")])
            .status
            .success(),
        "a public repository is readable anonymously"
    );
    assert!(
        !git(t, &["ls-remote", &format!("{git_url}/gitops.git")])
            .status
            .success(),
        "a private repository needs the password"
    );
    (gitserver, git_root, git_url)
}

/// docs/quay.md: the emulator, every option given. Returns it, its API URL
/// and its registry host.
fn start_quay_emulator(sh: &Shell, t: &Path) -> (shell::Background, String, String) {
    std::fs::write(t.join("quay-token"), QUAY_TOKEN).unwrap();
    let emulator = sh
        .run(
            Cmd::doc(QUAY_EMULATOR)
                .fill("--listen 127.0.0.1:PORT", "--listen 127.0.0.1:0")
                .fill("--org ORG", format!("--org {ORG}"))
                .fill(
                    "--token-file F",
                    format!("--token-file {}", p(&t.join("quay-token"))),
                )
                .fill("[--private-quota N]", "--private-quota 10")
                .fill("[--latency-ms …]", "--latency-ms 1")
                .fill("[--error-5xx-fraction …]", "--error-5xx-fraction 0")
                .fill("[--drop-fraction …]", "--drop-fraction 0")
                .fill("[--rate-limit RPS:BURST]", "--rate-limit 500:1000"),
        )
        .limit(Duration::from_secs(900))
        .spawn();
    let api = emulator
        .line("READY", Duration::from_secs(30), |l| {
            l.starts_with("READY ")
        })
        .trim_start_matches("READY ")
        .to_string();
    let registry = api
        .trim_start_matches("http://")
        .trim_end_matches("/api/v1")
        .to_string();
    (emulator, api, registry)
}

/// What the cluster scenario's flows share.
struct Scene {
    sh: Shell,
    /// The scratch folder.
    t: PathBuf,
    /// The control plane's admin kubeconfig.
    admin: PathBuf,
    /// The user's kubeconfig (current namespace `team-a`).
    kc: PathBuf,
    git_root: PathBuf,
    git_url: String,
    /// The Quay emulator's API URL and registry host.
    api: String,
    registry: String,
    /// The reader's key (docs/sealing.md), also the "Argo CD" recipient.
    key_txt: PathBuf,
}

impl Scene {
    /// docs/getting-started.md: the controller's identity; the "Argo CD"
    /// key is the reader's key.txt of docs/sealing.md. Returns its recipient.
    fn keys(&self) -> String {
        let Scene { sh, t, .. } = self;
        let out = sh.run(Cmd::doc("age-keygen -o controller.key")).cwd(t).ok();
        assert!(read(&t.join("controller.key")).contains("AGE-SECRET-KEY-1"));
        assert!(
            out.stderr
                .contains(&recipient_of(&t.join("controller.key"))),
            "age-keygen prints the public key: {}",
            out.stderr
        );
        let key_txt = t.join("key.txt");
        let status = Command::new(tools::bin("age-keygen"))
            .arg("-o")
            .arg(&key_txt)
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());

        recipient_of(&key_txt)
    }

    /// The workspace's objects applied, and `quayside run` until every
    /// Component is Ready.
    fn run_controller(&self, argo: &str) -> shell::Background {
        let Scene {
            sh,
            t,
            admin,
            kc,
            git_url,
            api,
            registry,
            ..
        } = self;
        let source = format!("{git_url}/a.git");
        let mut objects = String::new();
        for ns in ["team-a", "team-a-dev", "team-a-prod"] {
            objects += &format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\n");
            // No controller-manager creates it.
            objects += &format!(
                "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {ns}}}\n---\n"
            );
        }
        objects += "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: deployer, namespace: team-a-dev}\n---\n";
        // Onboarding (docs/operations.md) needs the ClusterRole `kubectl apply -k deploy/` installs.
        objects += include_str!("../../deploy/rbac/delivery.yaml");
        objects += "\n---\n";
        for c in ["api", "web", "frontend"] {
            objects += &format!(
                "apiVersion: quayside.dev/v1alpha1\nkind: Component\nmetadata: {{name: {c}, namespace: team-a}}\nspec:\n  source: {{git: {{url: {source}}}}}\n  visibility: auto\n---\n"
            );
        }
        objects += &format!(
            "apiVersion: quayside.dev/v1alpha1\nkind: Environment\nmetadata: {{name: dev, namespace: team-a}}\nspec:\n  target: {{namespace: team-a-dev}}\n  recipients: [{argo}]\n"
        );
        kubectl_apply(kc, &objects);
        // docs/operations.md, "Onboarding a tenant", as a platform team runs it.
        for doc in [
            "kubectl -n team-a create serviceaccount quayside-delivery",
            "kubectl create rolebinding quayside-delivery-team-a --clusterrole=quayside-delivery --serviceaccount=team-a:quayside-delivery --namespace=team-a",
            "kubectl create rolebinding quayside-delivery-team-a --clusterrole=quayside-delivery --serviceaccount=team-a:quayside-delivery --namespace=team-a-prod",
        ] {
            sh.run(Cmd::doc(doc)).env("KUBECONFIG", kc).ok();
        }
        // The same for dev, where the Environment of this scene delivers.
        kubectl(
            kc,
            &[
                "create",
                "rolebinding",
                "quayside-delivery-team-a",
                "--clusterrole=quayside-delivery",
                "--serviceaccount=team-a:quayside-delivery",
                "--namespace=team-a-dev",
            ],
        );

        std::fs::write(t.join("git-password"), GIT_PASSWORD).unwrap();
        let controller_args = [
            format!("--kubeconfig {}", p(admin)),
            "--watch-namespace team-a --leader-election false --listen 127.0.0.1:0".into(),
            format!("--quay-api-url {api} --quay-organization {ORG}"),
            format!("--quay-token-file {}", p(&t.join("quay-token"))),
            format!("--registry-host {registry} --source-allow-internal true"),
            format!("--side-repo-url {git_url}/gitops.git --side-repo-username quayside"),
            format!("--side-repo-password-file {}", p(&t.join("git-password"))),
            format!("--side-repo-workdir {}", p(&t.join("controller-clone"))),
            format!("--age-identity-file {}", p(&t.join("controller.key"))),
        ];
        let controller = sh
            .helper(&format!("quayside run {}", controller_args.join(" ")))
            .limit(Duration::from_secs(900))
            .spawn();
        let ready = Command::new("timeout")
            .arg("150")
            .arg(tools::bin("kubectl"))
            .arg("--kubeconfig")
            .arg(kc)
            .args([
                "wait",
                "--for=condition=Ready",
                "component",
                "--all",
                "--timeout=120s",
            ])
            .output()
            .unwrap();
        assert!(
            ready.status.success(),
            "Components not Ready: {}\ncontroller log:\n{}",
            String::from_utf8_lossy(&ready.stderr),
            controller.stderr_tail()
        );
        controller
    }

    /// docs/getting-started.md and docs/operations.md: what users look at;
    /// and the emulator really holds the repository, behind its token.
    fn components_as_users_see_them(&self) {
        let Scene {
            sh,
            kc,
            api,
            registry,
            ..
        } = self;
        let out = sh
            .run(Cmd::doc("kubectl get components"))
            .env("KUBECONFIG", kc)
            .ok();
        let rows = table(&out.stdout);
        let names: BTreeSet<&str> = rows.iter().map(|r| r["NAME"].as_str()).collect();
        assert_eq!(
            names,
            BTreeSet::from(["api", "frontend", "web"]),
            "{}",
            out.stdout
        );
        for r in &rows {
            assert_eq!(r["VISIBILITY"], "public", "a public source: {}", out.stdout);
            assert_eq!(r["GENERATION"], "1", "{}", out.stdout);
            assert_eq!(r["READY"], "True", "{}", out.stdout);
        }
        let image = rows.iter().find(|r| r["NAME"] == "api").unwrap()["IMAGE"].clone();
        let out = sh
            .run(Cmd::doc("kubectl get components -A"))
            .env("KUBECONFIG", kc)
            .ok();
        let all = table(&out.stdout);
        assert_eq!(
            all.iter().filter(|r| r["NAMESPACE"] == "team-a").count(),
            3,
            "{}",
            out.stdout
        );

        // The emulator really holds the repository, behind its token.
        let repo = image
            .strip_prefix(&format!("{registry}/"))
            .unwrap_or_else(|| panic!("image {image} is not on {registry}"));
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let url = format!("{api}/repository/{repo}");
        let with = http.get(&url).bearer_auth(QUAY_TOKEN).send().unwrap();
        assert_eq!(with.status(), 200, "{url}");
        let body: serde_json::Value = with.json().unwrap();
        assert_eq!(body["is_public"], true, "{body}");
        assert_eq!(http.get(&url).send().unwrap().status(), 401, "{url}");
    }

    /// docs/operations.md's emergency rotation runbook and the demo's
    /// rotation (docs/getting-started.md). Returns api's pull credentials
    /// from before.
    fn rotations(&self) -> RobotCredentials {
        let Scene { sh, admin, kc, .. } = self;
        let old = pull_credentials(admin, "team-a-dev", "api");
        let watch = sh
            .run(
                Cmd::doc("kubectl -n <workspace> get component <name> -w")
                    .fill("<workspace>", "team-a")
                    .fill("<name>", "api"),
            )
            .env("KUBECONFIG", kc)
            .limit(Duration::from_secs(300))
            .spawn();
        let header = watch.line("a header", Duration::from_secs(30), |l| {
            l.starts_with("NAME")
        });
        let generation = header
            .split_whitespace()
            .position(|h| h == "GENERATION")
            .expect("a GENERATION column");
        let at = |g: &'static str| move |l: &str| l.split_whitespace().nth(generation) == Some(g);
        watch.line("api at generation 1", Duration::from_secs(30), at("1"));
        let out = sh
        .run(
            Cmd::doc(
                "kubectl -n <workspace> annotate component <name> image.redhat.com/generate=true",
            )
            .fill("<workspace>", "team-a")
            .fill("<name>", "api"),
        )
        .env("KUBECONFIG", kc)
        .ok();
        assert!(
            out.stdout.contains("component.quayside.dev/api annotated"),
            "{}",
            out.stdout
        );
        watch.line("api at generation 2", Duration::from_secs(60), at("2"));
        drop(watch);
        let rotated = |name: &str| {
            let kc = kc.clone();
            let name = name.to_string();
            move || {
                let out = kubectl(
                    &kc,
                    &[
                        "get",
                        "component",
                        &name,
                        "-o",
                        r"jsonpath={.status.credentialsGeneration} {.metadata.annotations.image\.redhat\.com/generate}",
                    ],
                );
                (out.trim() == "2").then_some(())
            }
        };
        wait::until_blocking(
            "api's annotation removed",
            Duration::from_secs(60),
            rotated("api"),
        );

        // docs/getting-started.md: the demo's rotation, in the current namespace.
        let out = sh
            .run(Cmd::doc(
                "kubectl annotate component frontend image.redhat.com/generate=true",
            ))
            .env("KUBECONFIG", kc)
            .ok();
        assert!(
            out.stdout
                .contains("component.quayside.dev/frontend annotated"),
            "{}",
            out.stdout
        );
        wait::until_blocking(
            "frontend rotated and its annotation removed",
            Duration::from_secs(60),
            rotated("frontend"),
        );
        old
    }

    /// docs/quay.md and docs/reliability.md: a real registry client accepts
    /// the new token only. The emulator serves plain HTTP on loopback, hence
    /// --tls-verify=false, and a registry must be named. Returns the new
    /// credentials.
    fn registry_logins(&self, old: &RobotCredentials) -> RobotCredentials {
        let Scene {
            sh,
            admin,
            registry,
            ..
        } = self;
        let new = pull_credentials(admin, "team-a-dev", "api");
        assert!(
            new.token.expose_secret() != old.token.expose_secret(),
            "the rotation changed the pull token"
        );
        let login = |token: &str| {
            Cmd::doc("skopeo login -u org+robot -p TOKEN")
                .fill("org+robot", &new.username)
                .fill_secret("TOKEN", token)
                .append(&format!("--tls-verify=false {registry}"))
        };
        sh.run(login(new.token.expose_secret())).ok();
        let refused = sh
            .run(login(old.token.expose_secret()))
            .fails()
            .stderr
            .to_lowercase();
        assert!(
            refused.contains("unauthorized") || refused.contains("invalid username/password"),
            "the old token is refused as such: {refused}"
        );
        sh.run(
            Cmd::doc("skopeo login --tls-verify=false --password-stdin")
                .append(&format!("-u {} {registry}", new.username)),
        )
        .stdin(new.token.expose_secret().as_bytes())
        .ok();
        new
    }

    /// docs/side-repo.md and docs/sealing.md run in a clone of the side
    /// repository once both rotations are pushed (created, then rotated:
    /// two commits change each Secret). Returns the clone.
    fn clone_side_repo(&self) -> PathBuf {
        let Scene {
            t,
            git_root,
            git_url,
            key_txt,
            ..
        } = self;
        let side = git_root.join("gitops.git");
        for c in ["api", "frontend"] {
            let file = format!("environments/team-a/dev/secrets/{c}-pull.sops.yaml");
            wait::until_blocking(
                &format!("{c}'s rotation pushed"),
                Duration::from_secs(60),
                || {
                    let out = git(&side, &["log", "--format=%H", "main", "--", &file]);
                    (String::from_utf8_lossy(&out.stdout).lines().count() >= 2).then_some(())
                },
            );
        }
        let clone = t.join("clone");
        let authed = git_url.replacen("http://", &format!("http://quayside:{GIT_PASSWORD}@"), 1);
        let out = git(
            t,
            &[
                "clone",
                "--quiet",
                &format!("{authed}/gitops.git"),
                &p(&clone),
            ],
        );
        assert!(
            out.status.success(),
            "git clone of the side repository failed"
        );
        std::fs::copy(key_txt, clone.join("key.txt")).unwrap();
        clone
    }

    /// docs/side-repo.md: `git log --grep` lists exactly the commits that
    /// changed one Component.
    fn git_log_lists_a_components_changes(&self, clone: &Path) {
        let sh = &self.sh;
        let out = sh
            .run(Cmd::doc("git log --grep 'Quayside-Component: api'"))
            .cwd(clone)
            .ok();
        let listed: Vec<&str> = out.stdout.split("\ncommit ").collect();
        assert!(
            listed.len() >= 2,
            "creation and rotation of api:\n{}",
            out.stdout
        );
        assert!(
            listed.iter().all(|c| c.contains("Quayside-Component: api")),
            "{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("Quayside-Generation: 2"),
            "{}",
            out.stdout
        );
        // "lists every change to one Component": each commit that changed
        // api's sealed Secret is among them.
        let changed = git(
            clone,
            &[
                "log",
                "--format=%H",
                "--",
                "environments/*/secrets/api-pull.sops.yaml",
            ],
        );
        let changed = String::from_utf8_lossy(&changed.stdout).into_owned();
        // ...and only those: the trailers name the Components a commit changed,
        // not every Component of the Environment.
        for listed in out.stdout.lines().filter_map(|l| l.strip_prefix("commit ")) {
            assert!(
                changed.lines().any(|c| c == listed.trim()),
                "{listed} is listed but did not change api's Secret:\n{}",
                out.stdout
            );
        }
        assert!(
            changed.lines().count() >= 2,
            "created and rotated: {changed}"
        );
        for commit in changed.lines() {
            assert!(
                out.stdout.contains(&format!("commit {commit}")),
                "{commit} changed api's Secret but is not listed:\n{}",
                out.stdout
            );
        }
    }

    /// docs/sealing.md and docs/side-repo.md: `quayside verify`.
    fn verify(&self, clone: &Path) {
        let sh = &self.sh;
        let out = sh
            .run(Cmd::doc("quayside verify environments/ --identity key.txt"))
            .cwd(clone)
            .ok();
        assert!(
            out.stdout
                .starts_with("ok: 3 sealed file(s) checked, opened with the identity"),
            "{}",
            out.stdout
        );
        let out = sh
            .run(Cmd::doc("quayside verify . --history --identity key.txt"))
            .cwd(clone)
            .ok();
        let scanned: usize = regex::Regex::new(r"(\d+) commit\(s\) scanned")
            .unwrap()
            .captures(&out.stdout)
            .unwrap_or_else(|| panic!("{}", out.stdout))[1]
            .parse()
            .unwrap();
        assert!(
            out.stdout.starts_with("ok: 3 sealed file(s) checked") && scanned >= 3,
            "{}",
            out.stdout
        );
        let verify_dir = || Cmd::doc("quayside verify DIR").fill("DIR", "environments");
        let out = sh.run(verify_dir()).cwd(clone).ok();
        assert!(
            out.stdout.starts_with("ok: 3 sealed file(s) checked"),
            "{}",
            out.stdout
        );
        // And it does catch a plaintext Secret.
        let leak = clone.join("environments/team-a/dev/leak.yaml");
        std::fs::write(
        &leak,
        "apiVersion: v1\nkind: Secret\nmetadata: {name: leak}\nstringData: {token: not-sealed-0123456789}\n",
    )
    .unwrap();
        let out = sh.run(verify_dir()).cwd(clone).fails();
        assert!(out.stderr.contains("leak.yaml"), "{}", out.stderr);
        std::fs::remove_file(&leak).unwrap();
    }

    /// docs/sealing.md: `sops --decrypt` with the reader's key, and the data
    /// key opened with `age` and `od`.
    fn decrypt_by_hand(&self, clone: &Path, new: &RobotCredentials) {
        let Scene {
            sh, admin, key_txt, ..
        } = self;
        let web = pull_credentials(admin, "team-a-dev", "web");
        for (doc, name, want) in [
            (
                "SOPS_AGE_KEY_FILE=key.txt sops --decrypt environments/team-a/dev/secrets/web-pull.sops.yaml",
                "web",
                &web,
            ),
            (
                "SOPS_AGE_KEY_FILE=key.txt sops --decrypt environments/team-a/dev/secrets/api-pull.sops.yaml",
                "api",
                new,
            ),
        ] {
            let out = sh.run(Cmd::doc(doc)).cwd(clone).secret_stdout().ok();
            let secret: serde_json::Value = serde_norway::from_str(&out.stdout).expect("YAML");
            assert_eq!(secret["kind"], "Secret");
            assert_eq!(secret["metadata"]["name"], format!("{name}-pull"));
            assert_eq!(secret["metadata"]["namespace"], "team-a-dev");
            let got = RobotCredentials::from_docker_config_json(
                secret["stringData"][".dockerconfigjson"]
                    .as_str()
                    .expect("stringData .dockerconfigjson"),
            )
            .expect("a dockerconfigjson");
            assert_eq!(got.username, want.username);
            assert!(
                got.token.expose_secret() == want.token.expose_secret(),
                "the side repository holds {name}'s current token"
            );
        }

        let secrets = clone.join("environments/team-a/dev/secrets");
        std::fs::copy(key_txt, secrets.join("key.txt")).unwrap();
        let out = sh
            .script(DATAKEY.into_iter().map(Cmd::doc).collect())
            .cwd(&secrets)
            .secret_stdout()
            .ok();
        let bytes = out
            .stdout
            .split_whitespace()
            .filter(|w| w.len() == 2 && w.chars().all(|c| c.is_ascii_hexdigit()))
            .count();
        assert_eq!(bytes, 32, "a 32-byte data key");
        assert_eq!(
            out.stdout.split_whitespace().count(),
            32,
            "nothing but the key's bytes"
        );
    }
}

// ---------------------------------------------------------------------------
// Scenario: offline commands

#[test]
fn offline_commands_run() {
    let root = tools::root();
    let sh = shell(Offline);
    let tmp = tempfile::Builder::new()
        .prefix("docs-offline-")
        .tempdir()
        .unwrap();
    let t = tmp.path();

    // docs/development.md: `cargo run --` is this build; its output goes to
    // a temporary file, compared with the committed one (not rewritten).
    let crd = t.join("crd.yaml");
    sh.run(
        Cmd::doc("cargo run -- crd > deploy/crds/quayside.dev.yaml")
            .fill("cargo run --", "quayside")
            .fill("deploy/crds/quayside.dev.yaml", p(&crd)),
    )
    .ok();
    assert!(
        read(&crd) == read(&root.join("deploy/crds/quayside.dev.yaml")),
        "deploy/crds/quayside.dev.yaml is stale: run `cargo run -- crd > deploy/crds/quayside.dev.yaml`"
    );

    // docs/configuration.md, the same way.
    let configuration = t.join("configuration.md");
    sh.run(
        Cmd::doc("cargo run -- configuration > docs/configuration.md")
            .fill("cargo run --", "quayside")
            .fill("docs/configuration.md", p(&configuration)),
    )
    .ok();
    assert!(
        read(&configuration) == read(&root.join("docs/configuration.md")),
        "docs/configuration.md is stale: run `cargo run -- configuration > docs/configuration.md`"
    );

    // docs/release.md: the chart package holds the files its symbolic
    // links point at, so a packaged chart is whole.
    let dist = t.join("dist");
    let out = sh
        .run(
            Cmd::doc(HELM_PACKAGE)
                .fill("--destination dist/", format!("--destination {}", p(&dist))),
        )
        .ok();
    let tgz = dist.join(format!("quayside-{}.tgz", env!("CARGO_PKG_VERSION")));
    assert!(out.stdout.contains(&p(&tgz)), "{}", out.stdout);
    let listing = Command::new("tar").arg("tvzf").arg(&tgz).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    for file in [
        "crds/quayside.dev.yaml",
        "files/rules.yaml",
        "files/dashboard.json",
    ] {
        let line = listing
            .lines()
            .find(|l| l.ends_with(&format!("quayside/{file}")))
            .unwrap_or_else(|| panic!("{file} not packaged:\n{listing}"));
        assert!(line.starts_with('-'), "{file} packaged as a link: {line}");
    }

    // docs/operations.md: the help lists every flag of the configuration
    // table, with its variable and default.
    let help = sh.run(Cmd::doc("quayside run --help")).ok().stdout;
    let ops = read(&root.join("docs/operations.md"));
    let mut rows = 0;
    for line in ops.lines().filter(|l| l.starts_with("| `--")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let flag = cells[1].trim_matches('`');
        let var = cells[2].trim_matches('`');
        assert!(
            help.contains(&format!("{flag} <")),
            "{flag} is not in `quayside run --help`"
        );
        assert!(
            help.contains(&format!("[env: {var}=")),
            "{var} is not in `quayside run --help`"
        );
        let default = cells[3];
        if default.starts_with('`') && default.ends_with('`') && default.matches('`').count() == 2 {
            let d = default.trim_matches('`');
            assert!(
                help.contains(&format!("[default: {d}]")),
                "{flag}: default {d} is not what `quayside run --help` says"
            );
        }
        rows += 1;
    }
    assert!(
        rows >= 20,
        "the configuration table of docs/operations.md has moved"
    );

    // docs/operations.md: a new controller key.
    let out = sh.run(Cmd::doc("age-keygen -o new.key")).cwd(t).ok();
    let key = read(&t.join("new.key"));
    assert!(
        key.contains("AGE-SECRET-KEY-1"),
        "new.key holds an identity"
    );
    assert!(
        out.stderr.contains(&recipient_of(&t.join("new.key"))),
        "{}",
        out.stderr
    );

    // docs/side-repo.md: previews, in a folder laid out as the page says.
    let fixtures = root.join("fixtures/render");
    let workspace = |name: &str| {
        let ws = t.join(name);
        for dir in ["components", "environments"] {
            std::fs::create_dir_all(ws.join(dir)).unwrap();
            for e in std::fs::read_dir(fixtures.join(dir)).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), ws.join(dir).join(e.file_name())).unwrap();
            }
        }
        for f in ["credentials.yaml", "controller.agekey"] {
            std::fs::copy(fixtures.join(f), ws.join(f)).unwrap();
        }
        ws
    };
    let plain = workspace("plain");
    let out = sh
        .run(
            Cmd::doc(RENDER)
                .fill(" [--identity controller.agekey]", "")
                .fill(" [--flavor flux]", ""),
        )
        .cwd(&plain)
        .ok();
    for env in ["dev", "prod", "staging"] {
        assert!(out.stdout.contains(&format!("{env}: ")), "{}", out.stdout);
    }
    let sealed = read(&plain.join("side-repo/environments/team-a/dev/secrets/web-pull.sops.yaml"));
    assert!(sealed.contains("ENC[") && !sealed.contains("FAKE-TOKEN"));
    assert!(
        read(&plain.join("side-repo/environments/team-a/dev/kustomization.yaml"))
            .contains("secret-generator.yaml"),
        "KSOPS by default"
    );

    let flux = workspace("flux");
    let render_flux = || {
        sh.run(
            Cmd::doc(RENDER)
                .fill(
                    "[--identity controller.agekey]",
                    "--identity controller.agekey",
                )
                .fill("[--flavor flux]", "--flavor flux"),
        )
        .cwd(&flux)
        .ok()
    };
    render_flux();
    let first = read(&flux.join("side-repo/environments/team-a/dev/secrets/web-pull.sops.yaml"));
    render_flux();
    assert!(
        first == read(&flux.join("side-repo/environments/team-a/dev/secrets/web-pull.sops.yaml")),
        "with --identity, re-rendering leaves an unchanged Secret byte for byte"
    );
    let out = sh
        .run(Cmd::doc("kubectl kustomize environments/team-a/dev"))
        .cwd(&flux.join("side-repo"))
        .ok();
    for want in ["kind: Secret", "name: web-pull", "sops:", "ENC["] {
        assert!(out.stdout.contains(want), "{want} missing:\n{}", out.stdout);
    }
    assert!(!out.stdout.contains("FAKE-TOKEN"), "still sealed");

    sh.assert_ran_everything();
}

// ---------------------------------------------------------------------------
// Scenario: the quick benchmarks

/// The seal benchmark printed a row for `n` Secrets, with sops run on
/// `files` files, and a ratio.
fn assert_seal_row(stdout: &str, n: usize, files: usize) {
    let row = stdout
        .lines()
        .find(|l| l.starts_with(&format!("| {n} |")))
        .unwrap_or_else(|| panic!("no row for {n} Secrets:\n{stdout}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert!(
        cells[7].ends_with(&format!("({files})")),
        "sops on {files} files: {row}"
    );
    let ratio = cells[8].trim_end_matches('×');
    assert!(
        cells[8].ends_with('×') && ratio.parse::<u32>().is_ok_and(|r| r > 0),
        "a ratio: {row}"
    );
}

#[test]
fn bench_commands_run() {
    let sh = shell(Bench);
    let tmp = tempfile::Builder::new()
        .prefix("docs-bench-")
        .tempdir()
        .unwrap();

    // `target/release/quayside-bench` is this (debug) build: the commands and
    // their output are the same, only slower.
    let out = sh
        .run(
            Cmd::doc("target/release/quayside-bench seal --quick")
                .fill("target/release/quayside-bench", "quayside-bench"),
        )
        .limit(Duration::from_secs(120))
        .ok();
    assert_seal_row(&out.stdout, 100, 20);
    let out = sh
        .run(Cmd::doc("quayside-bench seal --quick"))
        .limit(Duration::from_secs(120))
        .ok();
    assert_seal_row(&out.stdout, 100, 20);
    let out = sh
        .run(
            Cmd::doc("target/release/quayside-bench seal --sizes 1000 --sops-sizes 100")
                .fill("target/release/quayside-bench", "quayside-bench"),
        )
        .limit(Duration::from_secs(300))
        .ok();
    assert_seal_row(&out.stdout, 1000, 100);

    // docs/benchmarks.md says CI runs this: it does, here, on the debug
    // build, with its figures kept out of target/bench.
    let out = sh
        .run(Cmd::doc("scripts/bench --quick"))
        .env("QUAYSIDE_BIN", quayside())
        .env("QUAYSIDE_BENCH_BIN", quayside_bench())
        .env("QUAYSIDE_BENCH_OUT", tmp.path())
        .limit(Duration::from_secs(400))
        .ok();
    assert_seal_row(&out.stdout, 100, 20);
    assert!(
        out.stdout
            .contains("| measure | figure | target | ratio | met |"),
        "{}",
        out.stdout
    );
    let figures: serde_json::Value =
        serde_json::from_str(&read(&tmp.path().join("controller.json"))).unwrap();
    assert_eq!(figures["quick"], true);
    for part in ["scale", "scale_workspaces", "rotation", "throttled"] {
        assert!(figures[part].is_object(), "{part} missing: {figures}");
    }
    // The tiny multi-tenant shape ran, and the API server's LIST count of
    // its heartbeat was read (a number, whatever its value).
    assert_eq!(figures["scale_workspaces"]["shape"]["workspaces"], 3);
    assert!(figures["scale_workspaces"]["failed"].is_null(), "{figures}");
    assert!(
        figures["scale_workspaces"]["heartbeat"]["list_requests"].is_number(),
        "{figures}"
    );
    assert!(
        figures["targets"].as_array().is_some_and(|t| !t.is_empty()),
        "{figures}"
    );
    // The scale part records a failed step instead of erroring out: a run
    // that measured nothing must not pass.
    assert!(figures["scale"]["failed"].is_null(), "{figures}");
    assert!(
        figures["scale"]["steps"]
            .as_array()
            .is_some_and(|s| !s.is_empty()),
        "{figures}"
    );

    sh.assert_ran_everything();
}
