//! What target Secrets served, and for how long after their token was
//! revoked: a watch records every value each target pull Secret ever holds
//! (in memory only; tokens are never printed), while the Quay emulator is
//! polled for the moment each token stops logging in (the rotation's
//! cut-over). [`Served::report`] then says, per revoked token, how long any
//! target still served it after the cut-over, and whether a target ever
//! went back to it afterwards (a GitOps engine re-applying a stale revision).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;
use kube::runtime::watcher;
use secrecy::{ExposeSecret, SecretString};

use quay_emulator::Emulator;
use quayside::credentials::RobotCredentials;
use quayside::vocabulary::ANNOTATION_GENERATION;

/// A robot login a target held: who, and the token (never printed).
struct Login {
    username: String,
    token: SecretString,
    /// `quayside.dev/credentials-generation` of the Secret that held it.
    generation: i64,
}

impl Login {
    fn same(&self, other: &Login) -> bool {
        self.username == other.username && self.token.expose_secret() == other.token.expose_secret()
    }
}

/// One change of one target: from `at` on it held login `login` (an index
/// into [`Served::logins`]), or nothing.
struct Change {
    at: Instant,
    login: Option<usize>,
    /// The field manager that owns the token field after the change.
    writer: Option<String>,
}

/// Everything the targets held while some work ran.
pub struct Served {
    logins: Vec<Login>,
    /// When the emulator first refused each login (its cut-over).
    revoked: BTreeMap<usize, Instant>,
    /// Per target (`namespace/name`), its changes in order.
    timelines: BTreeMap<String, Vec<Change>>,
    end: Instant,
    /// Watch restarts (a relist): changes in between may be missed.
    pub restarts: usize,
    /// Targets a direct read just after a token's revocation found still
    /// holding it (as opposed to a watch event still on its way).
    pub live_at_cut: usize,
}

/// Per revoked token: how long targets served it after its cut-over.
#[derive(Debug, Clone)]
pub struct Exposure {
    pub generation: i64,
    /// Longest time any one target served the token after its cut-over:
    /// the later of the token's revocation and the target's first newer
    /// generation (an emergency rotation revokes before it delivers).
    pub longest: Duration,
    /// Times a target went back to the token after holding a newer one.
    pub comebacks: usize,
    /// Longest such comeback (a subset of `longest`).
    pub longest_comeback: Duration,
    /// Longest time from the revocation to a target's first newer
    /// generation: the delivery gap of an emergency rotation, which revokes
    /// the old token first (0 when the new one was there before).
    pub gap: Duration,
    /// Who wrote the value of each stretch served after the cut-over
    /// (comebacks and stretches begun before it alike): field manager →
    /// count.
    pub writers: BTreeMap<String, usize>,
}

/// The whole run: one [`Exposure`] per token that was revoked.
#[derive(Debug, Clone)]
pub struct Report {
    pub exposures: Vec<Exposure>,
    /// Targets a direct read just after a token's revocation found still
    /// holding it.
    pub live_at_cut: usize,
    /// Distinct logins the targets held.
    pub logins: usize,
    pub restarts: usize,
}

impl Report {
    /// The longest time any target served any revoked token.
    pub fn longest(&self) -> Duration {
        self.exposures
            .iter()
            .map(|e| e.longest)
            .max()
            .unwrap_or_default()
    }

    /// All comebacks of revoked tokens.
    pub fn comebacks(&self) -> usize {
        self.exposures.iter().map(|e| e.comebacks).sum()
    }

    /// Who wrote the stretches served after a cut-over, over all tokens:
    /// field manager → count.
    pub fn writers(&self) -> BTreeMap<String, usize> {
        let mut all = BTreeMap::new();
        for e in &self.exposures {
            for (w, n) in &e.writers {
                *all.entry(w.clone()).or_default() += n;
            }
        }
        all
    }

    /// The longest comeback of a revoked token.
    pub fn longest_comeback(&self) -> Duration {
        self.exposures
            .iter()
            .map(|e| e.longest_comeback)
            .max()
            .unwrap_or_default()
    }

    /// One line per revoked token plus a summary, in milliseconds; no token.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for e in &self.exposures {
            s.push_str(&format!(
                "generation {:>3}: served {:>5} ms after cut-over, {} comeback(s) (longest {} ms), revoked {:>5} ms before delivery\n",
                e.generation,
                e.longest.as_millis(),
                e.comebacks,
                e.longest_comeback.as_millis(),
                e.gap.as_millis()
            ));
        }
        s.push_str(&format!(
            "{} revoked tokens, {} logins seen, {} watch restarts; longest served after cut-over: {} ms; {} comebacks (longest {} ms); stretches after cut-over written by {:?}; longest revoked-before-delivery gap {} ms ({} target reads at a revocation still held the token)",
            self.exposures.len(),
            self.logins,
            self.restarts,
            self.longest().as_millis(),
            self.comebacks(),
            self.longest_comeback().as_millis(),
            self.writers(),
            self.exposures.iter().map(|e| e.gap).max().unwrap_or_default().as_millis(),
            self.live_at_cut
        ));
        s
    }
}

/// Run `work` while recording the pull Secret `secret` in each of
/// `namespaces`, polling `emulator` every 20 ms for revoked logins; returns
/// the work's output and the record. The record starts when the watches
/// have listed once.
pub async fn record_while<F: Future>(
    client: &Client,
    namespaces: &[String],
    secret: &str,
    emulator: &Emulator,
    work: F,
) -> (F::Output, Served) {
    let streams = namespaces.iter().map(|ns| {
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let cfg = watcher::Config::default().fields(&format!("metadata.name={secret}"));
        let target = format!("{ns}/{secret}");
        watcher(api, cfg).map(move |e| (target.clone(), e)).boxed()
    });
    let mut events = futures::stream::select_all(streams);
    let mut served = Served {
        logins: Vec::new(),
        revoked: BTreeMap::new(),
        timelines: namespaces
            .iter()
            .map(|ns| (format!("{ns}/{secret}"), Vec::new()))
            .collect(),
        end: Instant::now(),
        restarts: 0,
        live_at_cut: 0,
    };
    let apis: Vec<Api<Secret>> = namespaces
        .iter()
        .map(|ns| Api::namespaced(client.clone(), ns))
        .collect();
    served.wait_listed(&mut events, namespaces.len()).await;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut work = std::pin::pin!(work);
    let output = loop {
        tokio::select! {
            biased;
            out = &mut work => break out,
            Some((target, event)) = events.next() => served.on_event(&target, event),
            _ = tick.tick() => served.poll_revoked(emulator, &apis, secret).await,
        }
    };
    // Take what already arrived, then look once more at Quay.
    while let Some(Some((target, event))) = futures::FutureExt::now_or_never(events.next()) {
        served.on_event(&target, event);
    }
    served.poll_revoked(emulator, &apis, secret).await;
    served.end = Instant::now();
    (output, served)
}

type Events<'a> = futures::stream::SelectAll<
    futures::stream::BoxStream<'a, (String, Result<watcher::Event<Secret>, watcher::Error>)>,
>;

impl Served {
    /// Record until every watch has listed once (bounded: 60 s).
    async fn wait_listed(&mut self, events: &mut Events<'_>, watches: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let mut listed = 0;
        while listed < watches {
            let next = tokio::time::timeout_at(deadline, events.next())
                .await
                .expect("the target watches listed within 60 s");
            let Some((target, event)) = next else { break };
            if matches!(event, Ok(watcher::Event::InitDone)) {
                listed += 1;
            }
            self.on_event(&target, event);
        }
        self.restarts = 0;
    }

    fn on_event(&mut self, target: &str, event: Result<watcher::Event<Secret>, watcher::Error>) {
        let now = Instant::now();
        let (held, writer) = match event {
            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => {
                (Some(self.login_of(&s)), token_writer(&s))
            }
            Ok(watcher::Event::Delete(_)) => (None, None),
            Ok(watcher::Event::Init) => {
                self.restarts += 1;
                return;
            }
            Ok(watcher::Event::InitDone) | Err(_) => return,
        };
        let timeline = self.timelines.entry(target.to_string()).or_default();
        if timeline.last().map(|c| c.login) != Some(held) {
            timeline.push(Change {
                at: now,
                login: held,
                writer,
            });
        }
    }

    /// The index of the login `s` holds, added when new.
    fn login_of(&mut self, s: &Secret) -> usize {
        let creds = s
            .data
            .as_ref()
            .and_then(|d| d.get(".dockerconfigjson"))
            .and_then(|raw| std::str::from_utf8(&raw.0).ok())
            .and_then(RobotCredentials::from_docker_config_json);
        let generation = s
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_GENERATION))
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        let login = match creds {
            Some(c) => Login {
                username: c.username.clone(),
                token: c.token.clone(),
                generation,
            },
            None => Login {
                username: String::new(),
                token: SecretString::from(String::new()),
                generation,
            },
        };
        match self.logins.iter().position(|l| l.same(&login)) {
            Some(i) => i,
            None => {
                self.logins.push(login);
                self.logins.len() - 1
            }
        }
    }

    /// Record the first time the emulator refuses each known login, and
    /// read every target directly then: does it still hold that login?
    async fn poll_revoked(&mut self, emulator: &Emulator, targets: &[Api<Secret>], secret: &str) {
        let now = Instant::now();
        let mut cut = Vec::new();
        for (i, l) in self.logins.iter().enumerate() {
            if l.username.is_empty() || self.revoked.contains_key(&i) {
                continue;
            }
            if !emulator.accepts_login(&l.username, l.token.expose_secret()) {
                cut.push(i);
            }
        }
        for &i in &cut {
            self.revoked.insert(i, now);
        }
        if cut.is_empty() {
            return;
        }
        for api in targets {
            if let Ok(Some(s)) = api.get_opt(secret).await {
                let held = self.login_of(&s);
                if cut.contains(&held) {
                    self.live_at_cut += 1;
                }
            }
        }
    }

    /// Whether every target's last value is a login the emulator accepts now.
    pub fn all_current(&self, emulator: &Emulator) -> bool {
        self.timelines.values().all(|t| {
            t.last().and_then(|c| c.login).is_some_and(|i| {
                let l = &self.logins[i];
                emulator.accepts_login(&l.username, l.token.expose_secret())
            })
        })
    }

    /// How many distinct changes the targets went through in all.
    pub fn changes(&self) -> usize {
        self.timelines.values().map(Vec::len).sum()
    }

    /// Measure: for each revoked login, the stretches of each target that
    /// held it after its cut-over.
    pub fn report(&self) -> Report {
        let mut exposures = Vec::new();
        for (&login, &revoked) in &self.revoked {
            let generation = self.logins[login].generation;
            let mut e = Exposure {
                generation,
                longest: Duration::ZERO,
                comebacks: 0,
                longest_comeback: Duration::ZERO,
                gap: Duration::ZERO,
                writers: BTreeMap::new(),
            };
            for timeline in self.timelines.values() {
                // The target's cut-over: when it first held a newer
                // generation, or the revocation, whichever came later.
                let newer = timeline
                    .iter()
                    .find(|c| {
                        c.login
                            .is_some_and(|i| self.logins[i].generation > generation)
                    })
                    .map(|c| c.at);
                if let Some(newer) = newer {
                    e.gap = e.gap.max(newer.saturating_duration_since(revoked));
                }
                let cut = newer.map_or(revoked, |n| n.max(revoked));
                for (k, change) in timeline.iter().enumerate() {
                    let until = timeline.get(k + 1).map_or(self.end, |n| n.at);
                    if change.login != Some(login) || until <= cut {
                        continue;
                    }
                    let held = until - change.at.max(cut);
                    e.longest = e.longest.max(held);
                    let writer = change.writer.clone().unwrap_or_else(|| "?".into());
                    *e.writers.entry(writer).or_default() += 1;
                    if newer.is_some_and(|n| change.at > n) {
                        e.comebacks += 1;
                        e.longest_comeback = e.longest_comeback.max(held);
                    }
                }
            }
            exposures.push(e);
        }
        exposures.sort_by_key(|e| e.generation);
        Report {
            exposures,
            live_at_cut: self.live_at_cut,
            logins: self.logins.len(),
            restarts: self.restarts,
        }
    }
}

/// The field manager owning the Secret's token field (`.dockerconfigjson`)
/// — the last to write it with server-side apply — by the latest entry.
fn token_writer(s: &Secret) -> Option<String> {
    s.metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| {
            m.fields_v1
                .as_ref()
                .is_some_and(|f| f.0.to_string().contains("f:.dockerconfigjson"))
        })
        .max_by_key(|m| m.time.as_ref().map(|t| t.0))
        .and_then(|m| m.manager.clone())
}
