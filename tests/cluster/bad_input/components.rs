//! Bad Components: image names, source URLs, the private-repository
//! quota and the rotation annotation, each next to a good Component that
//! keeps its Secret.

use kube::api::{Patch, PatchParams};
use quayside_testkit::harness::{Harness, ORG};
use quayside_testkit::ports;

use super::{
    Expect, READY, T, check_message, component, component_condition, create_component_json,
    wait_event,
};

/// A controller over a Quay organization allowed no private repository
/// (the plan-limit cases), one Environment, and a good Component served.
struct Fixture {
    h: Harness,
    target: String,
    public: String,
    good_secret: k8s_openapi::api::core::v1::Secret,
}

async fn fixture() -> Fixture {
    let mut h = Harness::builder().private_quota(0).start().await;
    let target = h.target_namespace("bic", true).await;
    h.create_environment("env", &target, &[]).await;
    h.start_controller().await;
    let public = h.git.repo_url("public-app");
    h.create_component("good", &public, "public").await;
    h.wait_component_ready("good", T).await;
    let good_secret = h.target_secret(&target, "good").await.unwrap();
    Fixture {
        h,
        target,
        public,
        good_secret,
    }
}

impl Fixture {
    /// Still serving: the good Component kept its Secret, and a Component
    /// created after all the bad ones becomes Ready.
    async fn assert_still_serving(&self) {
        let h = &self.h;
        let still = h.target_secret(&self.target, "good").await.unwrap();
        assert_eq!(
            still.metadata.uid, self.good_secret.metadata.uid,
            "not recreated"
        );
        h.create_component("late", &self.public, "public").await;
        h.wait_component_ready("late", T).await;
        h.wait_component_ready("good", T).await;
    }
}

/// (name, object, expectation, suffix status.image must end with)
type Case = (&'static str, serde_json::Value, Expect, Option<String>);

/// Create every case, then check each: its condition and message, a
/// Warning event for a problem, and status.image.
async fn check_cases(h: &Harness, cases: &[Case]) {
    for (_, obj, _, _) in cases {
        create_component_json(h, obj.clone()).await;
    }
    for (name, _, e, image) in cases {
        let cond = component_condition(h, name, e).await;
        check_message(name, &cond, e);
        if e.status == "False" {
            wait_event(h, "Component", name, e.reason).await;
        }
        if let Some(suffix) = image {
            let c = h.components().get(name).await.unwrap();
            let img = c.status.unwrap().image.unwrap();
            assert!(img.ends_with(suffix.as_str()), "{name}: image {img}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn image_names() {
    let mut f = fixture().await;
    let (h, public) = (&f.h, &f.public);
    // Every image lies under the workspace's prefix (the tenancy rule);
    // what is tested here is how a name is brought to Quay's grammar.
    let ws = h.workspace.clone();
    let long_image = format!("{ws}/{}", "a".repeat(300));
    let upper = format!("{}/My App", ws.to_uppercase());
    let underscores = format!("{ws}/my__app");
    let dotdot = format!("../../{ws}/app");
    let cases: Vec<Case> = vec![
        (
            "img-symbols",
            component("img-symbols", public, "public", Some("---/...")),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "InvalidName",
                says: &["no letters or digits", "set spec.image"],
            },
            None,
        ),
        (
            "img-upper",
            component("img-upper", public, "public", Some(&upper)),
            READY,
            Some(format!("/{ws}/my-app")),
        ),
        (
            "img-underscores",
            component("img-underscores", public, "public", Some(&underscores)),
            READY,
            Some(format!("/{ws}/my_app")),
        ),
        (
            "img-too-long",
            component("img-too-long", public, "public", Some(&long_image)),
            READY,
            None,
        ),
        (
            "img-dotdot",
            component("img-dotdot", public, "public", Some(&dotdot)),
            READY,
            Some(format!("{ORG}/{ws}/app")),
        ),
        (
            "img-elsewhere",
            component("img-elsewhere", public, "public", Some("../../etc/app")),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "ImageOutsideWorkspace",
                says: &["outside this workspace", "remove spec.image"],
            },
            None,
        ),
    ];
    check_cases(h, &cases).await;
    // Too long: cut to Quay's 255 with a stable hash.
    let c = h.components().get("img-too-long").await.unwrap();
    let img = c.status.unwrap().image.unwrap();
    let repo = img.split_once(&format!("{ORG}/")).unwrap().1;
    assert!(
        repo.len() <= 255 && repo.starts_with(&format!("{ws}/aaaa")),
        "{repo}"
    );
    eprintln!("FIGURES bad-input component images: cases={}", cases.len());
    f.assert_still_serving().await;
    f.h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn source_urls() {
    let mut f = fixture().await;
    let (h, public) = (&f.h, &f.public);
    let closed = ports::unused().unwrap();
    let with_password = public.replacen("http://", "http://someone:pa55word-in-url@", 1);
    let bad_ssh = format!("git@127.0.0.1:{closed}/nope.git");
    let unreachable = format!("http://127.0.0.1:{closed}/app.git");
    let missing = h.git.repo_url("does-not-exist");
    let cases: Vec<Case> = vec![
        (
            "url-not-url",
            component("url-not-url", "not a url", "auto", None),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "SourceUrlInvalid",
                says: &["cannot be checked", "set spec.visibility explicitly"],
            },
            None,
        ),
        (
            "url-empty",
            component("url-empty", "", "auto", None),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "SourceUrlInvalid",
                says: &["use an https:// clone URL"],
            },
            None,
        ),
        (
            "url-file",
            component("url-file", "file:///etc/passwd", "auto", None),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "SourceUrlInvalid",
                says: &["not supported", "set spec.visibility explicitly"],
            },
            None,
        ),
        (
            "url-unreachable",
            component("url-unreachable", &unreachable, "auto", None),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "SourceUnreachable",
                says: &["could not be reached", "set spec.visibility explicitly"],
            },
            None,
        ),
        (
            "url-ssh-unreachable",
            component("url-ssh-unreachable", &bad_ssh, "auto", None),
            Expect {
                condition: "Ready",
                status: "False",
                reason: "SourceUnreachable",
                says: &["could not be reached"],
            },
            None,
        ),
        (
            "url-missing-repo",
            component("url-missing-repo", &missing, "auto", None),
            // The server asks for credentials (as GitHub does for a missing
            // repository), so it looks private: here, over the quota.
            Expect {
                condition: "Ready",
                status: "False",
                reason: "QuayPlanLimit",
                says: &["no more private repositories"],
            },
            None,
        ),
        (
            "url-with-password",
            component("url-with-password", &with_password, "auto", None),
            READY,
            None,
        ),
    ];
    check_cases(h, &cases).await;
    // The password in the source URL shows nowhere in status.
    let c = h.components().get("url-with-password").await.unwrap();
    assert!(
        !serde_json::to_string(&c.status)
            .unwrap()
            .contains("pa55word")
    );
    eprintln!("FIGURES bad-input component sources: cases={}", cases.len());
    f.assert_still_serving().await;
    f.h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn private_repositories_over_the_quota() {
    let mut f = fixture().await;
    let (h, public) = (&f.h, &f.public);
    h.create_component("flip", public, "public").await;
    h.wait_component_ready("flip", T).await;
    let cases: Vec<Case> = vec![(
        "private-over-quota",
        component("private-over-quota", public, "private", None),
        Expect {
            condition: "Ready",
            status: "False",
            reason: "QuayPlanLimit",
            says: &[
                "no more private repositories",
                "set spec.visibility: public",
            ],
        },
        None,
    )];
    // Visibility public → private over the quota: 402 condition, spec kept,
    // the repository stays as it was and nothing is taken away.
    let patch = serde_json::json!({"spec": {"visibility": "private"}});
    h.components()
        .patch("flip", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    check_cases(h, &cases).await;
    let flip = Expect {
        condition: "RepositoryReady",
        status: "False",
        reason: "QuayPlanLimit",
        says: &[
            "cannot be made private",
            "raise the plan limit or set spec.visibility: public",
        ],
    };
    let cond = component_condition(h, "flip", &flip).await;
    check_message("flip", &cond, &flip);
    wait_event(h, "Component", "flip", "QuayPlanLimit").await;
    let c = h.components().get("flip").await.unwrap();
    assert_eq!(
        serde_json::to_value(c.spec.visibility).unwrap(),
        "private",
        "spec kept as written"
    );
    let state = h.emulator.snapshot();
    let repo = state
        .repository(ORG, &format!("{}/flip", h.workspace))
        .unwrap();
    assert!(repo.public, "the repository keeps its visibility");
    assert!(
        h.target_secret(&f.target, "flip").await.is_some(),
        "flip's pull Secret is not taken away"
    );
    eprintln!(
        "FIGURES bad-input component quota: cases={}",
        cases.len() + 1
    );
    f.assert_still_serving().await;
    f.h.stop_controller().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotation_annotation_values_other_than_true() {
    let mut f = fixture().await;
    let (h, public) = (&f.h, &f.public);
    // Annotation values other than "true": ignored, with an event.
    let names = [("ann-yes", "yes"), ("ann-upper", "TRUE")];
    for (name, value) in names {
        h.create_component(name, public, "public").await;
        h.wait_component_ready(name, T).await;
        quayside_testkit::component::annotate_generate(&h.components(), name, value)
            .await
            .unwrap();
    }
    for (name, _) in names {
        wait_event(h, "Component", name, "InvalidAnnotation").await;
        let c = h.components().get(name).await.unwrap();
        assert_eq!(
            c.status.unwrap().credentials_generation,
            1,
            "{name}: not rotated"
        );
    }
    eprintln!(
        "FIGURES bad-input component annotations: cases={}",
        names.len()
    );
    f.assert_still_serving().await;
    f.h.stop_controller().await;
}
