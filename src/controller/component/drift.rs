//! The heartbeat's verification of a Component's Quay objects: two API
//! calls (the repository, its permission list) and the stored logins
//! compared with the organization's robot listing that all Components share
//! (a registry login only to confirm a mismatch), decided and judged by
//! `plan::drift`. What it finds is
//! healed by the usual steps (`check_quay`), then reported, one event per
//! finding. Nothing is adopted here: the full check applies the owner rules.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::Pass;
use crate::api::{ResolvedVisibility, Visibility};
use crate::controller::error::Result;
use crate::names::{self, RobotRole};
use crate::plan::drift::{
    Drift, ExpectedRobot, SeenRepository, Verification, findings, listing_max_age, verification_due,
};
use crate::plan::ownership::{Record, description_record};
use crate::quay::{Repository, Role, TokenState};
use crate::source::{SourceVisibility, detect_visibility};

/// The event reason of healed drift (a Warning: someone changed Quay).
pub const DRIFT_HEALED: &str = "QuayDriftHealed";
/// The event reason of an `auto` repository following its source.
pub const FOLLOWED_SOURCE: &str = "VisibilityFollowedSource";

impl Pass<'_> {
    /// `--quay-verify-interval` has passed since the last verification.
    pub(super) fn verification_due(&self) -> bool {
        verification_due(
            self.last_verification(),
            self.ctx.config.quay_verify_interval,
            self.now.as_second(),
        )
    }

    /// The later of status's record and this process's memory: the status
    /// a pass reads may predate the last verification's write.
    pub(super) fn last_verification(&self) -> Option<i64> {
        let recorded = self.quay_verified_at.as_ref().map(|t| t.0.as_second());
        recorded.max(self.ctx.last_quay_verification(&self.uid))
    }

    /// What status records: the last verification, as a time.
    pub(super) fn verified_at(&self) -> Option<Time> {
        let at = self.last_verification()?;
        let status = self.quay_verified_at.as_ref();
        match status {
            Some(t) if t.0.as_second() == at => Some(t.clone()),
            _ => Timestamp::from_second(at).ok().map(Time),
        }
    }

    /// Record a verification made by this pass.
    pub(super) fn verified_now(&mut self) {
        self.quay_verified_at = Some(Time(self.now));
        self.ctx.quay_verified(&self.uid, self.now.as_second());
    }

    /// Look at Quay as cheaply as possible; what differs from what
    /// quayside made. Sets `probed` when something must be healed, so the
    /// full check applies the visibility just probed.
    pub(super) async fn verify_quay(&mut self, repo: &str) -> Result<Vec<Drift>> {
        let wanted = self.heartbeat_visibility().await;
        let quay = &self.ctx.quay;
        let repository = quay.get_repository(repo).await?;
        // Gone with the repository: no need to ask.
        let permissions = match &repository {
            Some(_) => Some(quay.list_permissions(repo).await?),
            None => None,
        };
        let robots = self.robots_seen(repo).await?;
        let v = Verification {
            repository: repository.as_ref().map(|r| self.seen(r)),
            wanted,
            recorded: self.old.visibility,
            permissions,
            robots,
        };
        let found = findings(&v);
        if !found.is_empty() {
            tracing::info!(component = %self.name, namespace = %self.ns, repository = repo, ?found, "Quay differs from what quayside made; healing");
            self.probed = Some(wanted);
        }
        Ok(found)
    }

    fn seen(&self, r: &Repository) -> SeenRepository {
        SeenRepository {
            visibility: r.visibility(),
            ours: description_record(&r.description) == Record::Owner(self.uid.clone()),
        }
    }

    /// The active slot's robots, each judged by whether its stored token is
    /// the current one: from the shared listing when it agrees, from a
    /// registry login when it does not (a stale listing, or real drift),
    /// so only a confirmed mismatch is ever healed.
    async fn robots_seen(&self, repo: &str) -> Result<Vec<ExpectedRobot>> {
        let quay = &self.ctx.quay;
        let listing = quay
            .robot_tokens(listing_max_age(self.ctx.config.quay_verify_interval))
            .await?;
        let mut robots = Vec::new();
        for role in [RobotRole::Push, RobotRole::Pull] {
            let name = quay.robot_name(&names::robot_short_name(repo, role, self.slot));
            let stored = match role {
                RobotRole::Push => &self.push,
                RobotRole::Pull => &self.pull,
            };
            let token_current = match stored.as_ref().filter(|s| s.credentials.username == name) {
                Some(s) if listing.state(&s.credentials) == TokenState::Current => Some(true),
                Some(s) => Some(quay.registry_login(&s.credentials).await?),
                None => None,
            };
            robots.push(ExpectedRobot {
                name,
                role: Role::from(role).as_str(),
                token_current,
            });
        }
        Ok(robots)
    }

    /// The visibility the repository must have now: `auto` asks the source
    /// again (one anonymous git probe, no Quay call). A probe that fails
    /// keeps what status recorded: a source host down is no reason to flip.
    async fn heartbeat_visibility(&self) -> ResolvedVisibility {
        match self.component.spec.visibility {
            Visibility::Private => ResolvedVisibility::Private,
            Visibility::Public => ResolvedVisibility::Public,
            Visibility::Auto => {
                let url = &self.component.spec.source.git.url;
                let config = &self.ctx.config;
                match detect_visibility(url, &config.source_retry, config.source_scope).await {
                    Ok(SourceVisibility::Private) => ResolvedVisibility::Private,
                    Ok(SourceVisibility::Public) => ResolvedVisibility::Public,
                    Err(e) => {
                        tracing::warn!(component = %self.name, namespace = %self.ns, error = %e, "could not probe the source repository at the heartbeat; keeping the recorded visibility");
                        self.old.visibility.unwrap_or(ResolvedVisibility::Private)
                    }
                }
            }
        }
    }

    /// After the full check healed `found`: keep both logins on one
    /// generation (a healed token is a new one; a lone bump would read as
    /// a scheduled rotation cut short), then report each finding.
    /// `before`: the push and pull generations before the heal.
    pub(super) async fn healed(
        &mut self,
        repo: &str,
        found: &[Drift],
        before: (Option<i64>, Option<i64>),
    ) -> Result<()> {
        if before.0 == before.1 {
            self.align_generations().await?;
        }
        let image = self.ctx.image_of(repo);
        let oref = self.component_ref();
        for drift in found {
            let visibility = matches!(drift, Drift::Visibility { .. });
            // A refused visibility change (plan limit) is on the condition.
            if visibility && self.repository_problem.is_some() {
                continue;
            }
            let note = drift.message(&image);
            if drift.is_drift() {
                self.ctx.warn(&oref, DRIFT_HEALED, "VerifyQuay", note).await;
            } else if visibility {
                self.ctx
                    .notice(&oref, FOLLOWED_SOURCE, "VerifyQuay", note)
                    .await;
            }
        }
        Ok(())
    }

    /// Persist the login whose generation fell behind at the other's.
    async fn align_generations(&mut self) -> Result<()> {
        let push = self.generation_of(RobotRole::Push);
        let pull = self.generation_of(RobotRole::Pull);
        let (Some(push), Some(pull)) = (push, pull) else {
            return Ok(());
        };
        let (behind, target) = match push.cmp(&pull) {
            std::cmp::Ordering::Less => (RobotRole::Push, pull),
            std::cmp::Ordering::Greater => (RobotRole::Pull, push),
            std::cmp::Ordering::Equal => return Ok(()),
        };
        let Some(stored) = self.stored(behind).as_ref() else {
            return Ok(());
        };
        let credentials = stored.credentials.clone();
        self.persist_login(behind, credentials, target).await
    }
}
