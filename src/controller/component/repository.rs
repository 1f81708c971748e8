//! Steps of a Component pass that talk to Quay when something may have
//! changed: the repository with its visibility, and the robots with their
//! grants, whose logins are persisted in the workspace. Nothing found on
//! Quay is used before its owner record says it is this Component's.

use super::Pass;
use super::owners::refused;
use crate::api::{ResolvedVisibility, Visibility};
use crate::controller::error::{Error, Result};
use crate::names::{self, RobotRole};
use crate::plan::credentials::{base_generation, next_generation};
use crate::plan::ownership::{self, Decision, Kind};
use crate::quay::{Creation, QuayError, Repository, Robot};
use crate::source::{SourceVisibility, detect_visibility};

const ROLES: [RobotRole; 2] = [RobotRole::Push, RobotRole::Pull];

impl Pass<'_> {
    /// The repository exists with the visibility the spec asks for. A plan
    /// that refuses a private repository is `Error::PlanLimit`.
    pub(super) async fn ensure_repository(&mut self, repo: &str) -> Result<()> {
        let visibility = self.resolve_visibility().await?;
        self.visibility = Some(visibility);
        let Some(existing) = self.existing_repository(repo, visibility).await? else {
            return Ok(());
        };
        self.repository_found = true;
        self.claim_repository(repo, &existing).await?;
        if existing.visibility() != visibility {
            let quay = &self.ctx.quay;
            quay.change_visibility(repo, visibility)
                .await
                .map_err(|e| plan_limit(repo, e))?;
        }
        Ok(())
    }

    /// The repository as it was before this pass, or `None` when this pass
    /// created it (with its owner record, and the visibility asked for).
    /// One that appeared between our look and our create is looked at
    /// again: someone else may have made it.
    async fn existing_repository(
        &self,
        repo: &str,
        visibility: ResolvedVisibility,
    ) -> Result<Option<Repository>> {
        let quay = &self.ctx.quay;
        // A Component with no persisted credentials most likely has no
        // repository yet: create first (one call; "exists" sends us to look),
        // as `ensure_robots` does. Otherwise look first: a read is cheaper
        // on Quay's rate limit than a refused create, and leaves no audit log.
        let fresh = self.push.is_none() && self.pull.is_none();
        if !fresh && let Some(existing) = quay.get_repository(repo).await? {
            return Ok(Some(existing));
        }
        let description = self.claim(repo).repository_description();
        let created = quay.create_repository(repo, visibility, &description).await;
        match created.map_err(|e| plan_limit(repo, e))? {
            Creation::Created => Ok(None),
            Creation::Existed => Ok(quay.get_repository(repo).await?),
        }
    }

    /// Use an existing repository only when it is this Component's; one
    /// made before owner records gets its record now.
    async fn claim_repository(&self, repo: &str, existing: &Repository) -> Result<()> {
        let claim = self.claim(repo);
        match claim.repository(&self.ctx.quay, repo, existing).await? {
            Decision::Adopt => Ok(()),
            Decision::AdoptAndRecord => {
                let description = ownership::description_with_record(
                    &existing.description,
                    &claim.component,
                    &self.uid,
                );
                self.ctx
                    .quay
                    .update_repository_description(repo, &description)
                    .await?;
                tracing::info!(component = %self.name, namespace = %self.ns, repository = repo, "recorded this Component as the owner of a repository provisioned before owner records");
                Ok(())
            }
            Decision::Refuse(r) => Err(refused(Kind::Repository, repo, r)),
        }
    }

    /// `auto` follows the source repository: asked anonymously when the spec
    /// changed or it was never asked, remembered in status otherwise.
    pub(super) async fn resolve_visibility(&self) -> Result<ResolvedVisibility> {
        let spec_changed = self.old.observed_generation != self.component.metadata.generation;
        if let Some(probed) = self.probed {
            return Ok(probed);
        }
        Ok(match self.component.spec.visibility {
            Visibility::Private => ResolvedVisibility::Private,
            Visibility::Public => ResolvedVisibility::Public,
            Visibility::Auto => match self.old.visibility {
                Some(v) if !spec_changed => v,
                _ => {
                    let url = &self.component.spec.source.git.url;
                    let config = &self.ctx.config;
                    match detect_visibility(url, &config.source_retry, config.source_scope).await? {
                        SourceVisibility::Private => ResolvedVisibility::Private,
                        SourceVisibility::Public => ResolvedVisibility::Public,
                    }
                }
            },
        })
    }

    /// Both robots of the active slot exist with their grants, and their
    /// logins are persisted. A token that differs from ours was regenerated
    /// outside quayside: it is persisted as a new generation.
    pub(super) async fn ensure_robots(&mut self, repo: &str) -> Result<()> {
        // A Component with no persisted credentials most likely has no
        // robots yet: create first (one call) instead of get-then-create.
        let fresh = self.push.is_none() && self.pull.is_none();
        let mut robots = Vec::new();
        for role in ROLES {
            let short = names::robot_short_name(repo, role, self.slot);
            let claim = self.claim(repo);
            let fields = claim.robot_fields(role);
            let robot = if fresh {
                self.ctx.quay.create_robot(&short, fields).await?
            } else {
                self.ctx.quay.ensure_robot(&short, fields).await?
            };
            // Checked before any grant or persist: a robot that exists
            // but is not ours gets nothing, and its token goes nowhere.
            robots.push((role, claim.robot(robot)?));
        }
        for role in ROLES {
            let short = names::robot_short_name(repo, role, self.slot);
            self.ctx.quay.grant(repo, &short, role.into()).await?;
        }
        // Remember only a clean verification: a refused visibility change
        // (402) must be retried, and its condition kept, on the next pass.
        if self.repository_problem.is_none() {
            let spec_generation = self.component.metadata.generation.unwrap_or_default();
            self.ctx.mark_verified(&self.uid, spec_generation, repo);
        }
        self.persist_found(robots).await?;
        if self.old.image.is_none() {
            let note = format!(
                "repository {} ({}) with push and pull robots",
                self.ctx.image_of(repo),
                self.visibility.map(|v| v.as_str()).unwrap_or_default()
            );
            let oref = self.component_ref();
            self.ctx
                .notice(&oref, "RepositoryReady", "EnsureRepository", note)
                .await;
        }
        Ok(())
    }

    /// Persist the logins Quay holds where they differ from the stored ones.
    async fn persist_found(&mut self, robots: Vec<(RobotRole, Robot)>) -> Result<()> {
        let base = base_generation(
            self.generation_of(RobotRole::Push),
            self.generation_of(RobotRole::Pull),
            // Past every generation delivered when logins were lost.
            self.old.credentials_generation.max(self.generation_floor),
        );
        for (role, robot) in robots {
            let credentials = robot.credentials(&self.ctx.config.registry_host);
            let stored = self.stored(role).as_ref();
            if stored.is_some_and(|s| s.credentials == credentials) {
                continue;
            }
            let generation = next_generation(stored.map(|s| s.generation), base);
            self.persist(role, &robot, generation).await?;
        }
        Ok(())
    }
}

/// A plan that refuses a private repository (402) is `Error::PlanLimit`.
fn plan_limit(repo: &str, e: QuayError) -> Error {
    match e {
        QuayError::PlanLimit { .. } => Error::PlanLimit {
            repository: repo.to_string(),
        },
        other => Error::Quay(other),
    }
}
