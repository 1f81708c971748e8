//! The link step: the chosen ServiceAccount lists our pull Secrets in its
//! `imagePullSecrets` (an atomic list, so read-modify-write with the
//! resourceVersion as a precondition, keeping everyone else's entries), and
//! a previously linked account loses them.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{LocalObjectReference, ServiceAccount};
use kube::Client;
use kube::api::{Api, PostParams};

use crate::api::Environment;
use crate::controller::context::Context;
use crate::controller::error::{Error, Result};
use crate::plan::{DesiredSecret, ObservedSecret, SpecError, choose_service_account, plan_link};
use crate::vocabulary::SERVICE_ACCOUNT_DEPLOYER;

/// Bound on read-modify-write retries of a ServiceAccount on 409 Conflict.
const LINK_ATTEMPTS: u32 = 8;

/// The target namespace's `deployer` ServiceAccount as one pass read it,
/// as the delivery identity. The commit's account hint and the link share
/// that one read; a link to `deployer` starts from the copy, and a copy gone
/// stale meanwhile fails the replace's resourceVersion precondition and is
/// read again. Not kept past the pass: the pass after a change reads anew.
#[derive(Clone, Default)]
pub(super) struct DeployerRead(Option<Option<ServiceAccount>>);

impl DeployerRead {
    /// The account to link, reading `deployer` only when the spec does not
    /// name one and this pass has not read it yet.
    pub(super) async fn choose(
        &mut self,
        env: &Environment,
        sas: &Api<ServiceAccount>,
    ) -> kube::Result<String> {
        let requested = env.spec.service_account.as_deref();
        let named = choose_service_account(requested, false);
        if requested.is_some_and(|r| !r.trim().is_empty()) {
            return Ok(named);
        }
        if self.0.is_none() {
            self.0 = Some(sas.get_opt(SERVICE_ACCOUNT_DEPLOYER).await?);
        }
        let exists = self.0.as_ref().is_some_and(Option::is_some);
        Ok(choose_service_account(requested, exists))
    }

    /// The copy read, when `name` is the account it is.
    fn copy_of(&self, name: &str) -> Option<ServiceAccount> {
        self.0
            .clone()
            .flatten()
            .filter(|sa| sa.metadata.name.as_deref() == Some(name))
    }
}

/// Link the account the Environment wants (`spec.serviceAccount`, else
/// `deployer` where it exists, else `default`) and unlink a previous one.
/// Returns the linked account and whether anything was written.
pub(super) async fn link_service_account(
    env: &Environment,
    ctx: &Context,
    client: &Client,
    target_ns: &str,
    desired: &[DesiredSecret],
    observed: &[ObservedSecret],
    deployer: &mut DeployerRead,
) -> Result<(String, bool)> {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), target_ns);
    let chosen = deployer.choose(env, &sas).await?;
    let ours: BTreeSet<String> = desired
        .iter()
        .map(|d| d.name.clone())
        .chain(observed.iter().map(|o| o.name.clone()))
        .collect();
    let wanted: BTreeSet<String> = desired.iter().map(|d| d.name.clone()).collect();
    let mut changed = false;
    let previous = env
        .status
        .as_ref()
        .and_then(|s| s.linked_service_account.clone());
    if let Some(prev) = previous.filter(|p| *p != chosen) {
        let first = deployer.copy_of(&prev);
        let none = BTreeSet::new();
        changed |= set_entries(&sas, &prev, &none, &ours, ctx, Missing::Fine, first).await?;
    }
    let first = deployer.copy_of(&chosen);
    changed |= set_entries(
        &sas,
        &chosen,
        &wanted,
        &ours,
        ctx,
        Missing::SpecError,
        first,
    )
    .await?;
    Ok((chosen, changed))
}

/// What an absent ServiceAccount means.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Missing {
    /// Nothing to unlink.
    Fine,
    /// The account to link must exist: a spec problem.
    SpecError,
}

/// Make our entries on `name` exactly `wanted` (theirs stay), retried on
/// conflict; the first attempt starts from `first` when the pass already
/// read the account. Says whether it wrote.
pub(super) async fn set_entries(
    sas: &Api<ServiceAccount>,
    name: &str,
    wanted: &BTreeSet<String>,
    ours: &BTreeSet<String>,
    ctx: &Context,
    missing: Missing,
    mut first: Option<ServiceAccount>,
) -> Result<bool> {
    for _ in 0..LINK_ATTEMPTS {
        let read = match first.take() {
            Some(sa) => Some(sa),
            None => sas.get_opt(name).await?,
        };
        let Some(mut sa) = read else {
            return match missing {
                Missing::Fine => Ok(false),
                Missing::SpecError => {
                    Err(SpecError::ServiceAccountMissing(name.to_string()).into())
                }
            };
        };
        let existing: Vec<String> = sa
            .image_pull_secrets
            .iter()
            .flatten()
            .map(|r| r.name.clone())
            .collect();
        let Some(new) = plan_link(&existing, wanted, |n| ours.contains(n)) else {
            return Ok(false);
        };
        sa.image_pull_secrets = Some(
            new.into_iter()
                .map(|n| LocalObjectReference { name: n })
                .collect(),
        );
        match sas.replace(name, &PostParams::default(), &sa).await {
            Ok(_) => {
                ctx.metrics.kube_writes.inc();
                return Ok(true);
            }
            Err(kube::Error::Api(e)) if e.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::ServiceAccountContention {
        name: name.to_string(),
        attempts: LINK_ATTEMPTS,
    })
}
