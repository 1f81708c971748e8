//! Which watches on remote clusters run: one pair (our Secrets, the
//! ServiceAccounts) per distinct remote identity and target namespace that
//! some Environment uses, within a global limit; which Environments an
//! event on one of them wakes; and how long a failing one waits.
//!
//! A watch runs with the identity the Environments behind it deliver with
//! (the tenant's kubeconfig), so it reads exactly what their passes read.
//! It is keyed by a digest of that identity, never by the server alone:
//! two kubeconfigs share a watch only when they hold the same credentials
//! for the same server, and the key itself holds no credential. The digest
//! is salted per process, so the part of it shown in logs cannot be used
//! to test guesses of a token offline.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use sha2::{Digest, Sha256};

/// What a kubeconfig connects to and as whom: everything that decides
/// what a watch built from it can read.
#[derive(Clone, Copy, Default)]
pub struct ClusterIdentity<'a> {
    pub server: &'a str,
    pub certificate_authority_data: Option<&'a str>,
    pub tls_server_name: Option<&'a str>,
    pub token: Option<&'a str>,
    pub client_certificate_data: Option<&'a str>,
    pub client_key_data: Option<&'a str>,
}

/// A salted SHA-256 digest of a [`ClusterIdentity`]: under one salt, equal
/// exactly when the identities are. Shown as its first 12 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterKey([u8; 32]);

impl fmt::Display for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterKey({self})")
    }
}

/// The key of `identity` under `salt`. Every field is length-prefixed and
/// tagged, so no two different identities can run together into the same
/// bytes.
pub fn cluster_key(salt: &[u8; 32], identity: &ClusterIdentity<'_>) -> ClusterKey {
    let mut h = Sha256::new();
    h.update(b"quayside remote cluster v1");
    h.update(salt);
    let fields = [
        Some(identity.server),
        identity.certificate_authority_data,
        identity.tls_server_name,
        identity.token,
        identity.client_certificate_data,
        identity.client_key_data,
    ];
    for field in fields {
        match field {
            None => h.update([0u8]),
            Some(v) => {
                h.update([1u8]);
                h.update((v.len() as u64).to_be_bytes());
                h.update(v.as_bytes());
            }
        }
    }
    ClusterKey(h.finalize().into())
}

/// One watch pair: a remote identity and the target namespace it watches.
/// Per namespace, because a tenant's credentials are usually granted one
/// namespace: a cluster-wide watch would need (and push tenants to grant)
/// more than delivery does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WatchKey {
    pub cluster: ClusterKey,
    pub namespace: String,
}

impl fmt::Display for WatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.cluster, self.namespace)
    }
}

/// An Environment, by workspace and name.
pub type EnvironmentId = (String, String);

/// What to do to the running watches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchPlan {
    pub start: Vec<WatchKey>,
    pub stop: Vec<WatchKey>,
    /// Wanted but beyond the limit: their Environments rely on the heartbeat.
    pub over_limit: Vec<WatchKey>,
}

/// The watches wanted for `registered` (each remote Environment's watch
/// key), given those `running`, at most `limit` of them. Running watches
/// that are still wanted keep their place, so a new cluster never takes a
/// watch from one that has it; the rest are granted in key order.
pub fn plan_watches(
    registered: &BTreeMap<EnvironmentId, WatchKey>,
    running: &BTreeSet<WatchKey>,
    limit: usize,
) -> WatchPlan {
    let wanted: BTreeSet<&WatchKey> = registered.values().collect();
    let (kept, new): (Vec<&WatchKey>, Vec<&WatchKey>) =
        wanted.iter().copied().partition(|k| running.contains(*k));
    let kept: Vec<&WatchKey> = kept.into_iter().take(limit).collect();
    let room = limit - kept.len();
    let start: Vec<WatchKey> = new.iter().take(room).map(|k| (*k).clone()).collect();
    let granted: BTreeSet<&WatchKey> = kept.iter().copied().chain(start.iter()).collect();
    WatchPlan {
        stop: running
            .iter()
            .filter(|k| !granted.contains(k))
            .cloned()
            .collect(),
        over_limit: wanted
            .into_iter()
            .filter(|k| !granted.contains(k))
            .cloned()
            .collect(),
        start,
    }
}

/// A change seen by one watch pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    /// One of our Secrets (by label), naming its workspace and Environment
    /// (`None` where a label is missing).
    Secret {
        workspace: Option<String>,
        environment: Option<String>,
    },
    /// A ServiceAccount of the namespace (a link removed, `deployer` added).
    ServiceAccount,
    /// A fresh listing, after a start or a reconnection: a deletion while
    /// disconnected shows as nothing at all, so every Environment looks.
    Relisted,
}

/// The Environments an event on the watch `key` wakes: only ever those
/// registered under that very key. A Secret's labels are written by
/// whoever can write in the remote namespace, so they only narrow the set,
/// never reach an Environment of another cluster or identity.
pub fn woken(
    registered: &BTreeMap<EnvironmentId, WatchKey>,
    key: &WatchKey,
    seen: &Seen,
) -> Vec<EnvironmentId> {
    let under_key = registered.iter().filter(|(_, k)| *k == key);
    match seen {
        Seen::ServiceAccount | Seen::Relisted => under_key.map(|(id, _)| id.clone()).collect(),
        Seen::Secret {
            workspace: Some(ws),
            environment: Some(env),
        } => under_key
            .filter(|((w, e), _)| w == ws && e == env)
            .map(|(id, _)| id.clone())
            .collect(),
        // Not one of ours as labelled: nothing of ours to heal.
        Seen::Secret { .. } => Vec::new(),
    }
}

/// First wait after a failed connection to a remote cluster.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait: an unreachable cluster costs one attempt per watch
/// this often, and is back within this long after it returns.
pub const RETRY_CAP: Duration = Duration::from_secs(300);

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; 32] = [7; 32];

    fn identity(server: &'static str, token: &'static str) -> ClusterIdentity<'static> {
        ClusterIdentity {
            server,
            certificate_authority_data: Some("Q0E="),
            token: Some(token),
            ..Default::default()
        }
    }

    fn key(server: &'static str, token: &'static str, ns: &str) -> WatchKey {
        WatchKey {
            cluster: cluster_key(&SALT, &identity(server, token)),
            namespace: ns.into(),
        }
    }

    fn id(ws: &str, name: &str) -> EnvironmentId {
        (ws.into(), name.into())
    }

    #[test]
    fn the_key_is_the_whole_identity_and_shows_none_of_it() {
        let a = cluster_key(&SALT, &identity("https://a:6443", "token-one"));
        assert_eq!(
            a,
            cluster_key(&SALT, &identity("https://a:6443", "token-one"))
        );
        let different = [
            identity("https://b:6443", "token-one"),
            identity("https://a:6443", "token-two"),
            ClusterIdentity {
                certificate_authority_data: Some("T1RIRVI="),
                ..identity("https://a:6443", "token-one")
            },
            ClusterIdentity {
                tls_server_name: Some("a"),
                ..identity("https://a:6443", "token-one")
            },
            // The same bytes split differently between two fields.
            ClusterIdentity {
                server: "https://a:6443",
                certificate_authority_data: Some("Q0E=token-one"),
                ..Default::default()
            },
            ClusterIdentity {
                token: None,
                client_certificate_data: Some("token-one"),
                ..identity("https://a:6443", "x")
            },
        ];
        for other in different {
            assert_ne!(a, cluster_key(&SALT, &other), "{}", other.server);
        }
        let other_process = cluster_key(&[8; 32], &identity("https://a:6443", "token-one"));
        assert_ne!(a, other_process, "salted");
        let shown = format!("{a} {a:?}");
        assert!(!shown.contains("token-one") && !shown.contains("a:6443"));
        assert_eq!(a.to_string().len(), 12);
    }

    #[test]
    fn one_pair_per_identity_and_namespace_started_and_stopped_with_its_environments() {
        let k1 = key("https://a", "t", "apps");
        let k2 = key("https://a", "t", "web");
        let k3 = key("https://a", "other", "apps");
        let none = BTreeSet::new();
        type Case<'a> = (
            &'a str,
            Vec<(EnvironmentId, WatchKey)>,
            BTreeSet<WatchKey>,
            usize,
            WatchPlan,
        );
        let cases: Vec<Case> = vec![
            ("nothing", vec![], none.clone(), 8, WatchPlan::default()),
            (
                "two Environments on one cluster and namespace: one pair",
                vec![(id("w", "a"), k1.clone()), (id("w2", "b"), k1.clone())],
                none.clone(),
                8,
                WatchPlan {
                    start: vec![k1.clone()],
                    ..Default::default()
                },
            ),
            (
                "same server, other credentials or namespace: pairs of their own",
                vec![
                    (id("w", "a"), k1.clone()),
                    (id("w", "b"), k2.clone()),
                    (id("w2", "c"), k3.clone()),
                ],
                BTreeSet::from([k1.clone()]),
                8,
                WatchPlan {
                    start: {
                        let mut s = vec![k2.clone(), k3.clone()];
                        s.sort();
                        s
                    },
                    ..Default::default()
                },
            ),
            (
                "the last Environment gone (or its credentials changed): stop",
                vec![(id("w", "a"), k3.clone())],
                BTreeSet::from([k1.clone()]),
                8,
                WatchPlan {
                    start: vec![k3.clone()],
                    stop: vec![k1.clone()],
                    ..Default::default()
                },
            ),
            (
                "running and wanted: nothing to do",
                vec![(id("w", "a"), k1.clone())],
                BTreeSet::from([k1.clone()]),
                8,
                WatchPlan::default(),
            ),
        ];
        for (name, registered, running, limit, want) in cases {
            let registered: BTreeMap<_, _> = registered.into_iter().collect();
            assert_eq!(plan_watches(&registered, &running, limit), want, "{name}");
        }
    }

    #[test]
    fn beyond_the_limit_running_watches_keep_their_place() {
        let keys: Vec<WatchKey> = ["n1", "n2", "n3"]
            .iter()
            .map(|ns| key("https://a", "t", ns))
            .collect();
        let registered: BTreeMap<_, _> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (id("w", &format!("e{i}")), k.clone()))
            .collect();
        let running = BTreeSet::from([keys[2].clone()]);
        let plan = plan_watches(&registered, &running, 2);
        assert_eq!(plan.start, vec![keys[0].clone()]);
        assert!(plan.stop.is_empty());
        assert_eq!(plan.over_limit, vec![keys[1].clone()]);
        // A limit lowered below what runs stops the surplus.
        let running = BTreeSet::from([keys[0].clone(), keys[2].clone()]);
        let plan = plan_watches(&registered, &running, 1);
        assert_eq!(plan.stop, vec![keys[2].clone()]);
        assert_eq!(plan.over_limit, vec![keys[1].clone(), keys[2].clone()]);
        assert!(plan.start.is_empty());
        // Limit 0: no remote watch at all.
        let plan = plan_watches(&registered, &BTreeSet::new(), 0);
        assert_eq!((plan.start.len(), plan.over_limit.len()), (0, 3));
    }

    #[test]
    fn an_event_wakes_only_environments_of_its_own_watch() {
        let k1 = key("https://a", "t", "apps");
        let k_other = key("https://a", "someone-else", "apps");
        let registered: BTreeMap<_, _> = [
            (id("w", "a"), k1.clone()),
            (id("w", "b"), k1.clone()),
            (id("victim", "prod"), k_other.clone()),
        ]
        .into_iter()
        .collect();
        let secret = |ws: Option<&str>, env: Option<&str>| Seen::Secret {
            workspace: ws.map(String::from),
            environment: env.map(String::from),
        };
        let cases = [
            (
                "ours, by label",
                secret(Some("w"), Some("b")),
                vec![id("w", "b")],
            ),
            (
                "a ServiceAccount: every Environment of the pair",
                Seen::ServiceAccount,
                vec![id("w", "a"), id("w", "b")],
            ),
            // Anyone who can write in the remote namespace can label a
            // Secret: naming another cluster's Environment wakes nothing.
            (
                "labels naming another identity's Environment",
                secret(Some("victim"), Some("prod")),
                vec![],
            ),
            ("a label missing", secret(Some("w"), None), vec![]),
            (
                "listed afresh: every Environment of the pair",
                Seen::Relisted,
                vec![id("w", "a"), id("w", "b")],
            ),
        ];
        for (name, seen, want) in cases {
            assert_eq!(woken(&registered, &k1, &seen), want, "{name}");
        }
    }
}
