//! Which ServiceAccount an Environment's pull Secrets are linked to.

use crate::vocabulary::{SERVICE_ACCOUNT_DEFAULT as DEFAULT, SERVICE_ACCOUNT_DEPLOYER as DEPLOYER};

/// `spec.serviceAccount` when set, else `deployer` when it exists, else `default`.
pub fn choose_service_account(requested: Option<&str>, deployer_exists: bool) -> String {
    match requested {
        Some(name) if !name.trim().is_empty() => name.to_string(),
        _ if deployer_exists => DEPLOYER.to_string(),
        _ => DEFAULT.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            (Some("builder"), true, "builder"),
            (Some("builder"), false, "builder"),
            (Some(""), true, "deployer"),
            (None, true, "deployer"),
            (None, false, "default"),
        ];
        for (req, deployer, want) in cases {
            assert_eq!(
                choose_service_account(req, deployer),
                want,
                "{req:?} {deployer}"
            );
        }
    }
}
