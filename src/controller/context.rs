//! What every reconcile pass shares: clients, configuration, the side
//! repository, metrics and the event recorder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::config::Config;
use super::metrics::Metrics;
use super::targets::TargetClients;
use crate::gitops::SideRepo;
use crate::quay::QuayClient;

pub struct Context {
    pub client: Client,
    pub config: Config,
    pub quay: QuayClient,
    /// Opened lazily on the first pass; one pass at a time uses it.
    pub side_repo: Arc<Mutex<Option<SideRepo>>>,
    pub targets: TargetClients,
    pub metrics: Metrics,
    pub recorder: Recorder,
    /// When each in-flight rotation's tokens were persisted (component uid,
    /// target generation), for the propagation-latency metric. In memory
    /// only: a restart loses the sample, never the rotation.
    pub rotations_started: Mutex<HashMap<(String, i64), Instant>>,
    /// Components whose Quay repository and robots this process verified,
    /// by uid: (spec generation, repository). Saves a second round of Quay
    /// calls on the pass our own Secret writes trigger.
    pub verified: Mutex<HashMap<String, (i64, String)>>,
}

impl Context {
    pub fn new(client: Client, config: Config, quay: QuayClient, metrics: Metrics) -> Context {
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: "quayside".into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        );
        Context {
            client,
            config,
            quay,
            side_repo: Arc::new(Mutex::new(None)),
            targets: TargetClients::default(),
            metrics,
            recorder,
            rotations_started: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
        }
    }

    /// Publish an event; failing to record one never fails a pass.
    pub async fn event(
        &self,
        object: &ObjectReference,
        warning: bool,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note.chars().take(1000).collect()),
            action: action.into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, object).await {
            tracing::debug!(error = %e, "could not record event");
        }
    }
}
