//! The Quay client against the in-process emulator, over real HTTP: the
//! provisioning calls and their count, retries through injected 429/5xx and
//! dropped connections, permanent errors surfacing once, robots reused after a
//! crash, the token file re-read on every call, and no secret in any Debug.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use quay_emulator::{Emulator, EmulatorConfig, Faults, same_token};
use quayside::api::ResolvedVisibility;
use quayside::names::{RobotRole, repository_name, robot_short_name};
use quayside::quay::{QuayClient, QuayConfig, QuayError, RetryPolicy, Role};
use secrecy::ExposeSecret;

const ORG: &str = "acme";
const TOKEN: &str = "oauth-test-token-7f3a9c2e51";

struct Fixture {
    emulator: Emulator,
    client: QuayClient,
    token_file: PathBuf,
    _dir: tempfile::TempDir,
}

fn fast_retry(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

async fn fixture(cfg: EmulatorConfig, retry: RetryPolicy) -> Fixture {
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let emulator = Emulator::start(addr, cfg).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let client = client_for(&emulator, ORG, &token_file, retry);
    Fixture {
        emulator,
        client,
        token_file,
        _dir: dir,
    }
}

fn client_for(
    emulator: &Emulator,
    org: &str,
    token_file: &PathBuf,
    retry: RetryPolicy,
) -> QuayClient {
    let mut cfg = QuayConfig::new(&emulator.api_url(), org, token_file);
    cfg.timeout = Duration::from_secs(10);
    cfg.retry = retry;
    QuayClient::new(cfg).unwrap()
}

/// What the controller does for one Component: a repository, two robots, two grants.
async fn provision(
    client: &QuayClient,
    repo: &str,
    visibility: ResolvedVisibility,
) -> Result<(), QuayError> {
    let push = robot_short_name(repo, RobotRole::Push, 0);
    let pull = robot_short_name(repo, RobotRole::Pull, 0);
    client
        .create_repository(repo, visibility, "built by quayside")
        .await?;
    client.ensure_robot(&push, "push robot").await?;
    client.ensure_robot(&pull, "pull robot").await?;
    client.grant(repo, &push, Role::Write).await?;
    client.grant(repo, &pull, Role::Read).await?;
    Ok(())
}

#[tokio::test]
async fn provisioning_one_component_takes_seven_calls_then_five() {
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(3)).await;
    let repo = repository_name("team-a", "my-app", None).unwrap();
    assert_eq!(f.client.registry_host(), f.emulator.registry_host());

    provision(&f.client, &repo, ResolvedVisibility::Private)
        .await
        .unwrap();
    let first = f.emulator.api_calls();
    provision(&f.client, &repo, ResolvedVisibility::Private)
        .await
        .unwrap();
    let second = f.emulator.api_calls() - first;
    println!("calls to provision one Component: first pass {first}, idempotent pass {second}");

    // create + (get 400 + put) x2 + 2 grants; then create(400 exists) + 2 gets + 2 grants.
    assert_eq!(first, 7);
    assert_eq!(second, 5);
    assert_eq!(f.client.metrics().total_calls(), first + second);

    let s = f.emulator.snapshot();
    let r = s
        .repository(ORG, "team-a/my-app")
        .expect("repository created");
    assert!(!r.public);
    assert_eq!(s.repositories.len(), 1);
    assert_eq!(s.robots.len(), 2);
    let full_repo = format!("{ORG}/{repo}");
    assert_eq!(
        s.permission(&full_repo, "acme+team-a_my-app_push"),
        Some("write")
    );
    assert_eq!(
        s.permission(&full_repo, "acme+team-a_my-app_pull"),
        Some("read")
    );
    assert_eq!(s.calls("create_robot"), 2);

    let got = f.client.get_repository(&repo).await.unwrap().unwrap();
    assert_eq!(got.visibility(), ResolvedVisibility::Private);
    f.client
        .change_visibility(&repo, ResolvedVisibility::Public)
        .await
        .unwrap();
    assert!(
        f.client
            .get_repository(&repo)
            .await
            .unwrap()
            .unwrap()
            .is_public
    );
    assert!(f.emulator.snapshot().repository(ORG, &repo).unwrap().public);
}

#[tokio::test]
async fn retries_through_a_429_burst_honouring_retry_after() {
    let retry = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_millis(5),
        max_delay: Duration::from_secs(2),
    };
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), retry).await;
    f.emulator.set_faults(Faults {
        burst_429: 2,
        retry_after_secs: Some(1),
        ..Faults::default()
    });
    f.client
        .create_repository("burst", ResolvedVisibility::Public, "")
        .await
        .unwrap();
    let s = f.emulator.snapshot();
    assert_eq!(s.calls("create_repository"), 3);
    assert!(s.repository(ORG, "burst").is_some());
    assert_eq!(f.client.metrics().retries("create_repository"), 2);
    assert_eq!(
        f.client.metrics().calls("create_repository", "throttled"),
        2
    );
}

#[tokio::test]
async fn retries_through_5xx_and_dropped_connections() {
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(40)).await;
    f.emulator.set_faults(Faults {
        error_5xx_fraction: 0.3,
        drop_fraction: 0.2,
        ..Faults::default()
    });
    for i in 0..5 {
        let repo = format!("svc-{i}");
        provision(&f.client, &repo, ResolvedVisibility::Private)
            .await
            .unwrap();
    }
    let s = f.emulator.snapshot();
    assert_eq!(s.repositories.len(), 5);
    // A lost PUT answer must not create a second robot: names are deterministic.
    assert_eq!(s.robots.len(), 10);
    assert_eq!(s.permissions.len(), 10);
    let m = f.client.metrics();
    assert!(
        f.emulator.api_calls() > 35,
        "faults were injected: {}",
        f.emulator.api_calls()
    );
    assert!(m.total_calls() >= f.emulator.api_calls());
}

#[tokio::test]
async fn transient_errors_past_the_bound_are_exhausted_not_permanent() {
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(4)).await;
    f.emulator.set_faults(Faults {
        error_5xx_fraction: 1.0,
        ..Faults::default()
    });
    let e = f.client.get_robot("bot").await.unwrap_err();
    assert!(
        matches!(e, QuayError::Exhausted { attempts: 4, .. }),
        "{e:?}"
    );
    assert!(e.is_transient());
    assert_eq!(e.reason(), "QuayUnavailable");
    assert_eq!(f.emulator.snapshot().calls("get_robot"), 4);
}

#[tokio::test]
async fn timeouts_are_retried_like_other_transient_failures() {
    let mut f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(2)).await;
    let mut cfg = f.client.config().clone();
    cfg.timeout = Duration::from_millis(200);
    f.client = QuayClient::new(cfg).unwrap();
    f.emulator.set_faults(Faults {
        latency: Duration::from_secs(5),
        ..Faults::default()
    });
    let e = f.client.get_repository("slow").await.unwrap_err();
    match &e {
        QuayError::Exhausted { attempts: 2, last } => assert!(last.contains("timed out"), "{last}"),
        other => panic!("expected Exhausted after 2 attempts, got {other:?}"),
    }
    assert_eq!(
        f.client.metrics().calls("get_repository", "network_error"),
        2
    );
    f.emulator.set_faults(Faults::default());
    assert_eq!(f.client.get_repository("slow").await, Ok(None));
}

#[tokio::test]
async fn permanent_errors_surface_once_and_typed() {
    let mut cfg = EmulatorConfig::new(ORG, TOKEN);
    cfg.private_quota = Some(1);
    let f = fixture(cfg, fast_retry(6)).await;
    f.client
        .create_repository("first", ResolvedVisibility::Private, "")
        .await
        .unwrap();

    // 402 on create
    let e = f
        .client
        .create_repository("second", ResolvedVisibility::Private, "")
        .await
        .unwrap_err();
    assert!(matches!(e, QuayError::PlanLimit { .. }), "{e:?}");
    assert!(!e.is_transient());
    assert_eq!(e.reason(), "QuayPlanLimit");
    assert!(e.to_string().contains("spec.visibility: public"), "{e}");
    assert_eq!(f.emulator.snapshot().calls("create_repository"), 2);

    // 402 on change of visibility
    f.client
        .create_repository("second", ResolvedVisibility::Public, "")
        .await
        .unwrap();
    let e = f
        .client
        .change_visibility("second", ResolvedVisibility::Private)
        .await
        .unwrap_err();
    assert!(matches!(e, QuayError::PlanLimit { .. }), "{e:?}");
    assert_eq!(f.emulator.snapshot().calls("change_visibility"), 1);

    // 400 invalid
    let e = f
        .client
        .create_repository("Not Valid!", ResolvedVisibility::Public, "")
        .await
        .unwrap_err();
    match &e {
        QuayError::Invalid { message } => assert!(message.contains("Invalid repository name")),
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_eq!(e.reason(), "QuayInvalidRequest");
    assert_eq!(f.emulator.snapshot().calls("create_repository"), 4);
    let e = f.client.ensure_robot("Bad Robot", "").await.unwrap_err();
    assert!(matches!(e, QuayError::Invalid { .. }), "{e:?}");

    // A missing organization: 403 as for a missing right, told apart by
    // one look at the organization.
    let other = client_for(&f.emulator, "no-such-org", &f.token_file, fast_retry(6));
    let before = f.emulator.api_calls();
    let e = other.get_robot("bot").await.unwrap_err();
    assert!(matches!(e, QuayError::OrganizationNotFound { .. }), "{e:?}");
    assert_eq!(f.emulator.api_calls() - before, 2);
}

#[tokio::test]
async fn absent_things_are_success_where_deleting_and_none_where_reading() {
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(3)).await;
    assert!(f.client.get_repository("nope").await.unwrap().is_none());
    assert!(f.client.get_robot("nope").await.unwrap().is_none());
    f.client.delete_repository("nope").await.unwrap();
    f.client.delete_robot("nope").await.unwrap();
    f.client
        .create_repository("here", ResolvedVisibility::Public, "")
        .await
        .unwrap();
    f.client.revoke("here", "nope").await.unwrap();
    f.client.revoke("gone", "nope").await.unwrap();
    let e = f.client.regenerate_robot_token("nope").await.unwrap_err();
    assert!(matches!(e, QuayError::NotFound { .. }), "{e:?}");

    // Grant, revoke, delete: each leaves the state it promises.
    f.client.ensure_robot("bot", "").await.unwrap();
    f.client.grant("here", "bot", Role::Read).await.unwrap();
    f.client.grant("here", "bot", Role::Write).await.unwrap();
    assert_eq!(
        f.emulator.snapshot().permission("acme/here", "acme+bot"),
        Some("write")
    );
    f.client.revoke("here", "bot").await.unwrap();
    assert_eq!(
        f.emulator.snapshot().permission("acme/here", "acme+bot"),
        None
    );
    f.client.delete_robot("bot").await.unwrap();
    f.client.delete_repository("here").await.unwrap();
    let s = f.emulator.snapshot();
    assert!(s.robots.is_empty() && s.repositories.is_empty());
}

#[tokio::test]
async fn a_robot_created_before_a_crash_is_reused_not_duplicated() {
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(3)).await;
    let short = robot_short_name("team-a/app", RobotRole::Push, 0);
    let before_crash = f.client.ensure_robot(&short, "push").await.unwrap();
    drop(f.client.clone()); // the controller dies before recording the robot...

    // ...and a new process, with a new client, runs the same pass again.
    let restarted = client_for(&f.emulator, ORG, &f.token_file, fast_retry(3));
    let after = restarted.ensure_robot(&short, "push").await.unwrap();
    assert_eq!(after.name, before_crash.name);
    assert!(
        after.token.expose_secret() == before_crash.token.expose_secret(),
        "expected the same token (values not printed)"
    );

    // Two passes racing: one PUT wins, the other's "Existing robot" turns into a GET.
    let other = robot_short_name("team-a/app", RobotRole::Pull, 0);
    let (a, b) = tokio::join!(
        f.client.ensure_robot(&other, "pull"),
        restarted.ensure_robot(&other, "pull")
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(
        a.token.expose_secret() == b.token.expose_secret(),
        "expected the same token (values not printed)"
    );

    let s = f.emulator.snapshot();
    assert_eq!(s.robots.len(), 2, "{:?}", s.robots);
    assert!(same_token(
        &s.robot("acme+team-a_app_push").unwrap().token,
        &after.token
    ));
}

/// What owner checks read: a robot's description and metadata as created,
/// and an existing robot returned with *its own* fields, never ours; a
/// repository's description, which updateRepo replaces; and whether a
/// create made the repository or found it.
#[tokio::test]
async fn owner_records_round_trip_through_the_client() {
    use quayside::quay::{Creation, RobotFields};
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(3)).await;
    let mine = RobotFields {
        description: "quayside push robot (managed by quayside; owner uid u1)".into(),
        metadata: Some(serde_json::json!({"quayside.owner": "u1"})),
    };
    let created = f.client.create_robot("bot", mine.clone()).await.unwrap();
    assert_eq!(created.description, mine.description);
    assert_eq!(Some(created.unstructured_metadata.clone()), mine.metadata);
    let got = f.client.get_robot("bot").await.unwrap().unwrap();
    assert_eq!(got.unstructured_metadata, created.unstructured_metadata);

    // Someone else's robot, and our PUT on its name: Quay's 400
    // "Existing robot" becomes the robot as it is, with its own record.
    f.client
        .create_robot("theirs", "made by hand")
        .await
        .unwrap();
    let found = f.client.create_robot("theirs", mine.clone()).await.unwrap();
    assert_eq!(found.description, "made by hand");
    assert_eq!(found.unstructured_metadata, serde_json::Value::Null);
    let found = f.client.ensure_robot("theirs", mine).await.unwrap();
    assert_eq!(found.description, "made by hand");

    // A regenerate answer leaves the metadata out; the robot keeps it.
    let regenerated = f.client.regenerate_robot_token("bot").await.unwrap();
    assert_eq!(regenerated.unstructured_metadata, serde_json::Value::Null);
    let got = f.client.get_robot("bot").await.unwrap().unwrap();
    assert_eq!(got.unstructured_metadata["quayside.owner"], "u1");

    let first = f
        .client
        .create_repository("team/app", ResolvedVisibility::Private, "first")
        .await
        .unwrap();
    let again = f
        .client
        .create_repository("team/app", ResolvedVisibility::Public, "second")
        .await
        .unwrap();
    assert_eq!((first, again), (Creation::Created, Creation::Existed));
    let repo = f.client.get_repository("team/app").await.unwrap().unwrap();
    assert_eq!(
        repo.description, "first",
        "the existing repository is untouched"
    );
    f.client
        .update_repository_description("team/app", "recorded")
        .await
        .unwrap();
    let repo = f.client.get_repository("team/app").await.unwrap().unwrap();
    assert_eq!(
        (repo.description.as_str(), repo.is_public),
        ("recorded", false)
    );
    let e = f
        .client
        .update_repository_description("gone", "x")
        .await
        .unwrap_err();
    assert!(matches!(e, QuayError::NotFound { .. }), "{e:?}");
}

#[test]
fn bad_configuration_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let mut cfg = QuayConfig::new("https://quay.example/api/v1", ORG, dir.path().join("t"));
    cfg.extra_ca = Some(not_pem);
    let e = QuayClient::new(cfg).unwrap_err();
    assert!(matches!(e, QuayError::Config { .. }), "{e:?}");

    let quay = QuayClient::new(QuayConfig::new("https://quay.io/api/v1", ORG, "/t")).unwrap();
    assert_eq!(quay.registry_host(), "quay.io");

    let cfg = QuayConfig::new("quay.io/api/v1", ORG, dir.path().join("t"));
    let e = QuayClient::new(cfg).unwrap_err();
    assert!(e.to_string().contains("https://quay.io/api/v1"), "{e}");
    assert_eq!(e.reason(), "QuayConfigInvalid");
}

#[tokio::test]
async fn regenerating_a_token_replaces_it() {
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(3)).await;
    let old = f.client.ensure_robot("bot", "").await.unwrap();
    let new = f.client.regenerate_robot_token("bot").await.unwrap();
    assert_eq!(new.name, "acme+bot");
    assert!(
        old.token.expose_secret() != new.token.expose_secret(),
        "expected a different token (values not printed)"
    );
    let fetched = f.client.get_robot("bot").await.unwrap().unwrap();
    assert!(
        fetched.token.expose_secret() == new.token.expose_secret(),
        "expected the same token (values not printed)"
    );
    assert!(
        f.emulator
            .accepts_login("acme+bot", new.token.expose_secret())
    );
    assert!(
        !f.emulator
            .accepts_login("acme+bot", old.token.expose_secret())
    );
}

#[tokio::test]
async fn the_token_file_is_read_on_every_call() {
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(3)).await;
    f.client.get_robot("bot").await.unwrap();

    std::fs::write(&f.token_file, "a-revoked-token-value").unwrap();
    let e = f.client.get_robot("bot").await.unwrap_err();
    assert!(matches!(e, QuayError::Unauthorized { .. }), "{e:?}");
    assert_eq!(e.reason(), "QuayUnauthorized");
    assert!(!e.to_string().contains("a-revoked-token-value"), "{e}");

    std::fs::write(&f.token_file, TOKEN).unwrap();
    f.client.get_robot("bot").await.unwrap();

    std::fs::remove_file(&f.token_file).unwrap();
    let e = f.client.get_robot("bot").await.unwrap_err();
    assert!(matches!(e, QuayError::Config { .. }), "{e:?}");
    assert!(e.to_string().contains("token"), "{e}");
}

#[tokio::test]
async fn no_debug_or_error_shows_a_token() {
    let mut cfg = EmulatorConfig::new(ORG, TOKEN);
    cfg.private_quota = Some(0);
    let f = fixture(cfg.clone(), fast_retry(2)).await;
    let robot = f.client.ensure_robot("bot", "").await.unwrap();
    let robot_token = robot.token.expose_secret().to_string();
    assert!(robot_token.len() >= 32);
    let err = f
        .client
        .create_repository("x", ResolvedVisibility::Private, "")
        .await
        .unwrap_err();
    let shown = [
        format!("{robot:?}"),
        format!("{:?}", f.client),
        format!("{:?}", f.client.config()),
        format!("{cfg:?}"),
        format!("{:?}", f.emulator),
        format!("{:?}", f.emulator.snapshot()),
        format!("{:?}", robot.credentials("quay.io")),
        format!("{err:?} {err}"),
    ];
    for s in &shown {
        assert!(!s.contains(&robot_token), "robot token in {s}");
        assert!(!s.contains(TOKEN), "OAuth token in {s}");
    }
    assert!(shown[0].contains("acme+bot"));
}

#[tokio::test]
async fn metrics_register_in_a_prometheus_registry() {
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(3)).await;
    f.client.get_robot("bot").await.unwrap();
    let mut registry = prometheus_client::registry::Registry::default();
    f.client.metrics().register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(
            r#"quayside_quay_api_requests_total{endpoint="get_robot",outcome="client_error"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains("quayside_quay_api_request_duration_seconds"),
        "{text}"
    );
}

/// The heartbeat's robot listing: one call serves every Component until it
/// is older than asked or a robot was written through the client; it tells
/// a current token from a regenerated one and a deleted robot.
#[tokio::test]
async fn the_robot_listing_is_shared_until_stale_and_judges_stored_tokens() {
    use quayside::quay::TokenState;
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(3)).await;
    let short = robot_short_name("team-a/app", RobotRole::Pull, 0);
    let robot = f.client.ensure_robot(&short, "pull").await.unwrap();
    let login = robot.credentials("quay.example");
    let long = Duration::from_secs(3600);
    let listings = || f.emulator.snapshot().calls("list_robots");

    let first = f.client.robot_tokens(long).await.unwrap();
    assert_eq!(first.state(&login), TokenState::Current);
    let again = f.client.robot_tokens(long).await.unwrap();
    assert_eq!(again.len(), first.len());
    assert_eq!(
        listings(),
        1,
        "a fresh listing is shared, not fetched again"
    );

    // Regenerated through this client: the listing is stale at once.
    let regenerated = f.client.regenerate_robot_token(&short).await.unwrap();
    let after = f.client.robot_tokens(long).await.unwrap();
    assert_eq!(listings(), 2);
    assert_eq!(after.state(&login), TokenState::Differs);
    let new_login = regenerated.credentials("quay.example");
    assert_eq!(after.state(&new_login), TokenState::Current);

    // Regenerated by someone else: seen once the listing is older than asked.
    let other = client_for(&f.emulator, ORG, &f.token_file, fast_retry(3));
    other.delete_robot(&short).await.unwrap();
    let cached = f.client.robot_tokens(long).await.unwrap();
    assert_eq!(
        cached.state(&new_login),
        TokenState::Current,
        "still the old listing"
    );
    let fresh = f.client.robot_tokens(Duration::ZERO).await.unwrap();
    assert_eq!(fresh.state(&new_login), TokenState::Absent);
    assert_eq!(listings(), 3);
}

/// Many passes at once behind Quay's limit: with the client's shared bucket
/// a little under the server's they take turns instead of finding the limit
/// one by one, so (almost) nothing is answered 429 and the whole takes
/// about (calls − burst) / rate. The margin covers the server's bucket
/// starting later than ours (at the first request's arrival, which on a
/// loaded machine can be a while after the client's first token).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_shared_rate_limit_keeps_concurrent_calls_under_the_servers_limit() {
    use quayside::quay::RateLimit;
    const CALLS: usize = 40;
    let (server_rate, server_burst) = (20.0, 5u32);
    let (rate, burst) = (18.0, 4u32);
    let f = fixture(EmulatorConfig::new(ORG, TOKEN), fast_retry(8)).await;
    f.emulator.set_faults(Faults {
        rate_limit: Some((server_rate, server_burst)),
        ..Faults::default()
    });
    let mut cfg = QuayConfig::new(&f.emulator.api_url(), ORG, &f.token_file);
    cfg.retry = fast_retry(8);
    cfg.rate_limit = Some(RateLimit {
        per_second: rate,
        burst,
    });
    let client = QuayClient::new(cfg).unwrap();
    let started = std::time::Instant::now();
    let calls = (0..CALLS).map(|i| {
        let c = client.clone();
        tokio::spawn(async move { c.get_repository(&format!("r{i}")).await })
    });
    for call in calls {
        assert!(call.await.unwrap().unwrap().is_none());
    }
    let elapsed = started.elapsed();
    let throttled = client.metrics().calls("get_repository", "throttled");
    let bound = Duration::from_secs_f64((CALLS as f64 - f64::from(burst)) / rate);
    println!(
        "{CALLS} concurrent calls at {rate}/s burst {burst}: {elapsed:?} (bound {bound:?}), {throttled} answered 429"
    );
    assert!(
        throttled * 50 <= CALLS as u64,
        "{throttled} of {CALLS} calls answered 429 (at most 2 %)"
    );
    assert!(
        elapsed >= bound.mul_f64(0.9),
        "{elapsed:?}: faster than the limit allows ({bound:?})"
    );
}
