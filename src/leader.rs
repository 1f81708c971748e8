//! Leader election on a `coordination.k8s.io` Lease, so two replicas never
//! both act (decisions in `plan::lease`). Every write is conditional on the
//! resourceVersion read, every request has a deadline, a leader that cannot
//! renew within the renew deadline steps down (the process exits, which
//! drops every in-flight pass), and a leader that stops releases the Lease
//! so a standby takes over within a retry period instead of a lease.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;

use crate::plan::lease::{Next, Observation, Record, Timing, decide, observe};

#[derive(thiserror::Error, Debug)]
pub enum LeaderError {
    #[error("Kubernetes API while handling the lease: {0}")]
    Kube(#[from] kube::Error),
    #[error("no answer from the Kubernetes API within {0:?} while handling the lease")]
    Timeout(Duration),
    #[error("lost the lease {0} to {1}")]
    Lost(String, String),
}

pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    started: Instant,
    seen: Mutex<Option<Observation>>,
    leading: AtomicBool,
}

impl LeaderElector {
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration: Duration,
    ) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            timing: Timing::for_lease(duration),
            started: Instant::now(),
            seen: Mutex::new(None),
            leading: AtomicBool::new(false),
        }
    }

    /// Try once to become (or stay) the holder. `Ok(true)` = we hold it.
    pub async fn try_acquire(&self) -> Result<bool, LeaderError> {
        let now = self.started.elapsed();
        let lease = self.bounded(self.api.get_opt(&self.name)).await?;
        let Some(lease) = lease else {
            return self.create().await;
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let record = record_of(&spec);
        let seen = {
            let mut last = self.seen.lock().unwrap();
            let seen = observe(last.as_ref(), record, now);
            *last = Some(seen.clone());
            seen
        };
        let leading = self.leading.load(Ordering::Relaxed);
        match decide(&self.identity, leading, &seen, now) {
            Next::Wait => Ok(false),
            Next::Lost(other) => {
                self.leading.store(false, Ordering::Relaxed);
                Err(LeaderError::Lost(self.name.clone(), other))
            }
            Next::Take => self.take(lease, spec).await,
        }
    }

    /// Write ourselves as holder, conditional on the version we read.
    async fn take(&self, mut lease: Lease, spec: LeaseSpec) -> Result<bool, LeaderError> {
        lease.spec = Some(taken(&spec, &self.identity, self.timing.lease));
        let params = PostParams::default();
        let write = self.api.replace(&self.name, &params, &lease);
        match self.bounded(write).await {
            Ok(_) => {
                self.leading.store(true, Ordering::Relaxed);
                Ok(true)
            }
            // Someone wrote in between: read again next time.
            Err(LeaderError::Kube(kube::Error::Api(e))) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn create(&self) -> Result<bool, LeaderError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                ..Default::default()
            },
            spec: Some(first(&self.identity, self.timing.lease)),
        };
        match self
            .bounded(self.api.create(&PostParams::default(), &lease))
            .await
        {
            Ok(_) => {
                self.leading.store(true, Ordering::Relaxed);
                Ok(true)
            }
            Err(LeaderError::Kube(kube::Error::Api(e))) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Wait until we hold the lease.
    pub async fn acquire(&self) -> Result<(), LeaderError> {
        loop {
            match self.try_acquire().await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election"),
            }
            tokio::time::sleep(self.timing.retry).await;
        }
    }

    /// Renew every retry period; return why leadership ended: the lease
    /// was taken, or no renewal succeeded within the renew deadline (the
    /// caller exits: another replica may lead once the lease expires).
    pub async fn hold(&self) -> LeaderError {
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(self.timing.retry).await;
            match self.try_acquire().await {
                Ok(true) => renewed = Instant::now(),
                Ok(false) => {}
                Err(e @ LeaderError::Lost(..)) => return e,
                Err(e) => tracing::warn!(error = %e, "renewing the lease"),
            }
            if renewed.elapsed() > self.timing.renew_deadline {
                self.leading.store(false, Ordering::Relaxed);
                return LeaderError::Timeout(self.timing.renew_deadline);
            }
        }
    }

    /// Give the lease up if we hold it, so a standby takes over at its next
    /// retry rather than after the lease expires.
    pub async fn release(&self) -> Result<(), LeaderError> {
        self.leading.store(false, Ordering::Relaxed);
        let Some(mut lease) = self.bounded(self.api.get_opt(&self.name)).await? else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        lease.spec = Some(released(&spec));
        self.bounded(self.api.replace(&self.name, &PostParams::default(), &lease))
            .await?;
        Ok(())
    }

    /// One API call, with a deadline well inside the renew deadline.
    async fn bounded<T>(
        &self,
        call: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, LeaderError> {
        let limit = self.timing.renew_deadline / 2;
        match tokio::time::timeout(limit, call).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(LeaderError::Timeout(limit)),
        }
    }
}

// The Lease writes, shared with the shard Leases (`crate::shard`).

/// What a Lease says about who holds it, for `plan::lease`.
pub fn record_of(spec: &LeaseSpec) -> Record {
    Record {
        holder: spec.holder_identity.clone(),
        renewed: spec.renew_time.as_ref().map(|t| t.0.to_string()),
        duration: Duration::from_secs(spec.lease_duration_seconds.unwrap_or(1).max(1) as u64),
    }
}

/// The spec of a Lease `identity` creates, holding it.
pub fn first(identity: &str, duration: Duration) -> LeaseSpec {
    let now = MicroTime(Timestamp::now());
    LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(duration.as_secs().max(1) as i32),
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        lease_transitions: Some(0),
        ..Default::default()
    }
}

/// `spec` taken or renewed by `identity`: a change of holder is a
/// transition.
pub fn taken(spec: &LeaseSpec, identity: &str, duration: Duration) -> LeaseSpec {
    let now = MicroTime(Timestamp::now());
    let ours = spec.holder_identity.as_deref() == Some(identity);
    let mut new = spec.clone();
    if !ours {
        new.acquire_time = Some(now.clone());
        new.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
    }
    new.holder_identity = Some(identity.to_string());
    new.lease_duration_seconds = Some(duration.as_secs().max(1) as i32);
    new.renew_time = Some(now);
    new
}

/// `spec` given up: no holder, and a one-second duration, so whoever
/// reads it next may take it at once.
pub fn released(spec: &LeaseSpec) -> LeaseSpec {
    let mut new = spec.clone();
    new.holder_identity = None;
    new.lease_duration_seconds = Some(1);
    new.renew_time = Some(MicroTime(Timestamp::now()));
    new
}
