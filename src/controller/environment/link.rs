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
) -> Result<(String, bool)> {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), target_ns);
    let deployer_exists = sas.get_opt(SERVICE_ACCOUNT_DEPLOYER).await?.is_some();
    let chosen = choose_service_account(env.spec.service_account.as_deref(), deployer_exists);
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
        changed |= set_entries(&sas, &prev, &BTreeSet::new(), &ours, ctx, Missing::Fine).await?;
    }
    changed |= set_entries(&sas, &chosen, &wanted, &ours, ctx, Missing::SpecError).await?;
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
/// conflict. Says whether it wrote.
pub(super) async fn set_entries(
    sas: &Api<ServiceAccount>,
    name: &str,
    wanted: &BTreeSet<String>,
    ours: &BTreeSet<String>,
    ctx: &Context,
    missing: Missing,
) -> Result<bool> {
    for _ in 0..LINK_ATTEMPTS {
        let Some(mut sa) = sas.get_opt(name).await? else {
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
