//! Owner checks before a Component uses, changes, rotates or deletes a
//! repository or robot on Quay: what Quay's record says, and what the
//! Component's own state proves, decided by `plan::ownership`.

use secrecy::ExposeSecret;

use crate::controller::context::Context;
use crate::controller::error::{Error, Result};
use crate::credentials::RobotCredentials;
use crate::names::{self, RobotRole};
use crate::plan::ownership::{
    self, Decision, Kind, Provisioned, Record, Refusal, description_record, robot_record,
};
use crate::quay::{QuayClient, Repository, Robot, RobotFields};

/// Who asks, and what its own state holds: enough to decide about any of
/// its Quay objects.
pub(super) struct Claim<'a> {
    pub uid: &'a str,
    /// `namespace/name`, as records name the Component.
    pub component: String,
    /// Status names the repository in question.
    pub status_names_repository: bool,
    /// The stored push and pull logins.
    pub logins: Vec<&'a RobotCredentials>,
}

impl Claim<'_> {
    /// What a robot this Component creates carries: its birth record.
    pub fn robot_fields(&self, role: RobotRole) -> RobotFields {
        RobotFields {
            description: ownership::robot_description(role.as_str(), &self.component, self.uid),
            metadata: Some(ownership::robot_metadata(&self.component, self.uid)),
        }
    }

    pub fn repository_description(&self) -> String {
        ownership::repository_description(&self.component, self.uid)
    }

    /// Whether a stored login holds `robot`'s current token.
    fn holds(&self, robot: &Robot) -> bool {
        self.logins.iter().any(|l| {
            l.username == robot.name && l.token.expose_secret() == robot.token.expose_secret()
        })
    }

    fn proof(&self, holds_current_token: bool) -> Provisioned {
        Provisioned {
            status_names_repository: self.status_names_repository,
            holds_current_token,
        }
    }

    /// The robot when it is this Component's; the typed refusal otherwise.
    pub fn robot(&self, robot: Robot) -> Result<Robot> {
        let record = robot_record(&robot.description, &robot.unstructured_metadata);
        match ownership::decide(
            Kind::Robot,
            &record,
            self.uid,
            self.proof(self.holds(&robot)),
        ) {
            Decision::Adopt | Decision::AdoptAndRecord => Ok(robot),
            Decision::Refuse(r) => Err(refused(Kind::Robot, &robot.name, r)),
        }
    }

    /// Whether `existing` is this Component's repository: `Adopt`,
    /// `AdoptAndRecord` (made before records) or `Refuse`. An unrecorded
    /// repository is looked into (its robots' tokens) only when status
    /// names it, so a refusal costs no extra call.
    pub async fn repository(
        &self,
        quay: &QuayClient,
        repo: &str,
        existing: &Repository,
    ) -> Result<Decision> {
        let record = description_record(&existing.description);
        let holds = record == Record::Absent
            && self.status_names_repository
            && self.holds_a_robot_of(quay, repo).await?;
        Ok(ownership::decide(
            Kind::Repository,
            &record,
            self.uid,
            self.proof(holds),
        ))
    }

    /// Whether a stored login holds the current token of a robot of `repo`.
    async fn holds_a_robot_of(&self, quay: &QuayClient, repo: &str) -> Result<bool> {
        for role in [RobotRole::Push, RobotRole::Pull] {
            for slot in [0, 1] {
                let short = names::robot_short_name(repo, role, slot);
                let full = quay.robot_name(&short);
                if !self.logins.iter().any(|l| l.username == full) {
                    continue;
                }
                if let Some(robot) = quay.get_robot(&short).await?
                    && self.holds(&robot)
                {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// The robot `short` when it exists and is this Component's; `None`
    /// when absent; the refusal when it is not ours.
    pub async fn existing_robot(&self, quay: &QuayClient, short: &str) -> Result<Option<Robot>> {
        match quay.get_robot(short).await? {
            Some(robot) => self.robot(robot).map(Some),
            None => Ok(None),
        }
    }

    /// Delete the robot `short` if it is this Component's. One that is not
    /// is left alone: the refusal comes back for the caller to report,
    /// while the rest of the cleanup goes on.
    pub async fn delete_robot(&self, ctx: &Context, short: &str) -> Result<Option<Error>> {
        match self.existing_robot(&ctx.quay, short).await {
            Ok(Some(_)) => ctx
                .quay
                .delete_robot(short)
                .await
                .map(|()| None)
                .map_err(Into::into),
            Ok(None) => Ok(None),
            Err(e @ Error::OwnedElsewhere { .. }) => Ok(Some(e)),
            Err(e) => Err(e),
        }
    }
}

/// The error for an object that is not this Component's.
pub(super) fn refused(object: Kind, name: &str, refusal: Refusal) -> Error {
    Error::OwnedElsewhere {
        object,
        name: name.to_string(),
        owner: match refusal {
            Refusal::OtherOwner(uid) => Some(uid),
            Refusal::NotQuaysides => None,
        },
    }
}
