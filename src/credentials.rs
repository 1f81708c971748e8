//! Robot credentials and the `kubernetes.io/dockerconfigjson` payload built from them.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};

/// The registry host robots log in to, e.g. `quay.io`.
pub const DEFAULT_REGISTRY: &str = "quay.io";

/// A robot account's login: its full name (`org+short`) and its token.
/// `Debug` never shows the token.
#[derive(Clone)]
pub struct RobotCredentials {
    pub registry: String,
    pub username: String,
    pub token: SecretString,
}

impl std::fmt::Debug for RobotCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RobotCredentials")
            .field("registry", &self.registry)
            .field("username", &self.username)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl PartialEq for RobotCredentials {
    fn eq(&self, other: &Self) -> bool {
        self.registry == other.registry
            && self.username == other.username
            && self.token.expose_secret() == other.token.expose_secret()
    }
}

impl RobotCredentials {
    /// The `.dockerconfigjson` document for this robot, with a stable key order.
    pub fn docker_config_json(&self) -> SecretString {
        let token = self.token.expose_secret();
        let auth = STANDARD.encode(format!("{}:{}", self.username, token));
        let doc = serde_json::json!({
            "auths": {
                self.registry.as_str(): {
                    "auth": auth,
                    "password": token,
                    "username": self.username,
                }
            }
        });
        SecretString::from(doc.to_string())
    }

    /// Parse a `.dockerconfigjson` document back (the first registry in it).
    pub fn from_docker_config_json(json: &str) -> Option<RobotCredentials> {
        let v: serde_json::Value = serde_json::from_str(json).ok()?;
        let (registry, entry) = v.get("auths")?.as_object()?.iter().next()?;
        let (username, token) = match (entry.get("username"), entry.get("password")) {
            (Some(u), Some(p)) => (u.as_str()?.to_string(), p.as_str()?.to_string()),
            _ => {
                let raw = STANDARD.decode(entry.get("auth")?.as_str()?).ok()?;
                let s = String::from_utf8(raw).ok()?;
                let (u, p) = s.split_once(':')?;
                (u.to_string(), p.to_string())
            }
        };
        Some(RobotCredentials {
            registry: registry.clone(),
            username,
            token: SecretString::from(token),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_never_debugs_the_token() {
        let c = RobotCredentials {
            registry: "quay.io".into(),
            username: "org+pull".into(),
            token: SecretString::from("TOKENBYTES123".to_string()),
        };
        assert!(!format!("{c:?}").contains("TOKENBYTES123"));
        let json = c.docker_config_json();
        let back = RobotCredentials::from_docker_config_json(json.expose_secret()).unwrap();
        assert_eq!(back, c);
    }
}
