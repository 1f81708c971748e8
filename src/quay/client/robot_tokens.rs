//! One listing of the organization's robots and their current tokens,
//! shared by every heartbeat verification for a while (docs/quay.md,
//! "Drift"): it tells a regenerated or deleted robot from a current one for
//! all Components at the cost of one call, where a registry login per
//! stored login cost two calls per Component.
//!
//! The listing holds tokens, so it lives only in memory, as secrets, and
//! for at most the age its caller allows; any robot written through this
//! client (created, regenerated, deleted) makes it stale at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::{Need, QuayClient, decode};
use crate::credentials::RobotCredentials;
use crate::quay::QuayError;

/// A listing and when it was made.
pub(super) struct Listing {
    fetched: Instant,
    /// The client's robot-write count when the request was sent.
    writes: u64,
    tokens: Arc<RobotTokens>,
}

/// The organization's robots by full name (`org+short`), each with its
/// current token when Quay showed it (only to an organization admin).
pub struct RobotTokens {
    robots: HashMap<String, Option<SecretString>>,
}

/// What the listing says about a stored login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    /// The robot exists and the stored token is its current one.
    Current,
    /// The robot exists with another token: regenerated elsewhere, or the
    /// listing is older than our last write.
    Differs,
    /// The listing has no such robot.
    Absent,
    /// Quay did not show the token (not an organization admin).
    Unknown,
}

impl RobotTokens {
    pub fn state(&self, login: &RobotCredentials) -> TokenState {
        match self.robots.get(&login.username) {
            None => TokenState::Absent,
            Some(None) => TokenState::Unknown,
            Some(Some(t)) if t.expose_secret() == login.token.expose_secret() => {
                TokenState::Current
            }
            Some(Some(_)) => TokenState::Differs,
        }
    }

    pub fn len(&self) -> usize {
        self.robots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.robots.is_empty()
    }
}

#[derive(Deserialize)]
struct RobotList {
    robots: Vec<ListedRobot>,
}

#[derive(Deserialize)]
struct ListedRobot {
    name: String,
    /// Moved into a secret as soon as it is read.
    #[serde(default)]
    token: Option<String>,
}

impl QuayClient {
    /// The organization's robot tokens, from a listing no older than
    /// `max_age` made after this client's last robot write; one request at
    /// a time (callers that arrive meanwhile share its answer).
    pub async fn robot_tokens(&self, max_age: Duration) -> Result<Arc<RobotTokens>, QuayError> {
        let mut slot = self.inner.robot_listing.lock().await;
        let writes = self.inner.robot_writes.load(Ordering::SeqCst);
        if let Some(l) = slot.as_ref()
            && l.writes == writes
            && l.fetched.elapsed() <= max_age
        {
            return Ok(l.tokens.clone());
        }
        let fetched = Instant::now();
        let tokens = Arc::new(self.list_robot_tokens().await?);
        *slot = Some(Listing {
            fetched,
            writes,
            tokens: tokens.clone(),
        });
        Ok(tokens)
    }

    /// Quay's getOrgRobots: every robot of the organization, with its token
    /// (Quay's default `token=true`; shown to organization admins only).
    async fn list_robot_tokens(&self) -> Result<RobotTokens, QuayError> {
        let path = [
            "organization".to_string(),
            self.organization().to_string(),
            "robots".to_string(),
        ];
        let a = self.call("list_robots", Method::GET, &path, None).await?;
        match a.status.as_u16() {
            200 => {
                let list: RobotList = decode("list_robots", a.body)?;
                Ok(RobotTokens {
                    robots: list
                        .robots
                        .into_iter()
                        .map(|r| (r.name, r.token.map(SecretString::from)))
                        .collect(),
                })
            }
            404 => Err(self.org_not_found()),
            _ => {
                let org = self.organization().to_string();
                Err(self.fail("list_robots", &org, Need::Organization, a).await)
            }
        }
    }

    /// A robot is about to be written: listings made before are stale.
    pub(super) fn robot_written(&self) {
        self.inner.robot_writes.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(user: &str, token: &str) -> RobotCredentials {
        RobotCredentials {
            registry: "quay.example".into(),
            username: user.into(),
            token: SecretString::from(token.to_string()),
        }
    }

    #[test]
    fn a_stored_login_is_judged_against_the_listing() {
        let tokens = RobotTokens {
            robots: HashMap::from([
                (
                    "o+a".to_string(),
                    Some(SecretString::from("t1".to_string())),
                ),
                ("o+b".to_string(), None),
            ]),
        };
        assert_eq!(tokens.state(&login("o+a", "t1")), TokenState::Current);
        assert_eq!(tokens.state(&login("o+a", "t0")), TokenState::Differs);
        assert_eq!(tokens.state(&login("o+b", "t1")), TokenState::Unknown);
        assert_eq!(tokens.state(&login("o+c", "t1")), TokenState::Absent);
    }
}
