//! Steps of a Component pass that talk to Quay when something may have
//! changed: the repository with its visibility, and the robots with their
//! grants, whose logins are persisted in the workspace.

use super::Pass;
use crate::api::{ResolvedVisibility, Visibility};
use crate::controller::error::{Error, Result};
use crate::names::{self, RobotRole};
use crate::plan::credentials::{base_generation, next_generation};
use crate::quay::{QuayError, Robot};
use crate::source::{SourceVisibility, detect_visibility};

const ROLES: [RobotRole; 2] = [RobotRole::Push, RobotRole::Pull];

impl Pass<'_> {
    /// The repository exists with the visibility the spec asks for. A plan
    /// that refuses a private repository is `Error::PlanLimit`.
    pub(super) async fn ensure_repository(&mut self, repo: &str) -> Result<()> {
        let visibility = self.resolve_visibility().await?;
        self.visibility = Some(visibility);
        let description = format!(
            "Images of Component {}/{} (managed by quayside)",
            self.ns, self.name
        );
        let quay = &self.ctx.quay;
        let result = match quay.get_repository(repo).await? {
            None => quay.create_repository(repo, visibility, &description).await,
            Some(existing) if existing.visibility() != visibility => {
                quay.change_visibility(repo, visibility).await
            }
            Some(_) => Ok(()),
        };
        match result {
            Err(QuayError::PlanLimit { .. }) => Err(Error::PlanLimit {
                repository: repo.to_string(),
            }),
            other => Ok(other?),
        }
    }

    /// `auto` follows the source repository: asked anonymously when the spec
    /// changed or it was never asked, remembered in status otherwise.
    async fn resolve_visibility(&self) -> Result<ResolvedVisibility> {
        let spec_changed = self.old.observed_generation != self.component.metadata.generation;
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
            let description = self.robot_description(role);
            let robot = if fresh {
                self.ctx.quay.create_robot(&short, &description).await?
            } else {
                self.ctx.quay.ensure_robot(&short, &description).await?
            };
            robots.push((role, robot));
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
            self.old.credentials_generation,
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
