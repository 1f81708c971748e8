//! Leader election on a `coordination.k8s.io` Lease, so two replicas never
//! both act. The holder renews; a follower takes over an expired lease; a
//! leader that cannot renew in time steps down (the process exits and is
//! restarted, which is the simplest way to drop every in-flight pass).

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};

#[derive(thiserror::Error, Debug)]
pub enum LeaderError {
    #[error("Kubernetes API while handling the lease: {0}")]
    Kube(#[from] kube::Error),
    #[error("lost the lease {0} to {1}")]
    Lost(String, String),
}

pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration: Duration,
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
            duration,
        }
    }

    /// Try once to become (or stay) the holder. `Ok(true)` = we hold it.
    pub async fn try_acquire(&self) -> Result<bool, LeaderError> {
        let now = MicroTime(Timestamp::now());
        let secs = self.duration.as_secs().max(1) as i32;
        match self.api.get_opt(&self.name).await? {
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..Default::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.identity.clone()),
                        lease_duration_seconds: Some(secs),
                        acquire_time: Some(now.clone()),
                        renew_time: Some(now),
                        lease_transitions: Some(0),
                        ..Default::default()
                    }),
                };
                match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            Some(mut lease) => {
                let spec = lease.spec.clone().unwrap_or_default();
                let holder = spec.holder_identity.clone().unwrap_or_default();
                let expired = spec.renew_time.as_ref().is_none_or(|t| {
                    let d = spec.lease_duration_seconds.unwrap_or(secs) as i64;
                    Timestamp::now().as_second() > t.0.as_second() + d
                });
                if holder != self.identity && !holder.is_empty() && !expired {
                    return Ok(false);
                }
                let mut new = spec.clone();
                if holder != self.identity {
                    new.acquire_time = Some(now.clone());
                    new.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
                }
                new.holder_identity = Some(self.identity.clone());
                new.lease_duration_seconds = Some(secs);
                new.renew_time = Some(now);
                lease.spec = Some(new);
                match self
                    .api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
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
            tokio::time::sleep(self.duration / 4).await;
        }
    }

    /// Renew until renewal fails for longer than the lease lasts; then
    /// return the error (the caller exits: another replica may now lead).
    pub async fn hold(&self) -> LeaderError {
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.duration / 3).await;
            match self.try_acquire().await {
                Ok(true) => last_ok = tokio::time::Instant::now(),
                Ok(false) => {
                    return LeaderError::Lost(self.name.clone(), "another replica".into());
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the lease");
                    if last_ok.elapsed() > self.duration {
                        return e;
                    }
                }
            }
        }
    }
}
