//! Schemas of the spec fields the API server checks itself: names,
//! namespaces, age recipients and the side-repo folder, each with a rule
//! whose message says what to write. The controller checks them again
//! (a CRD from an older release may be installed); these refuse nonsense
//! at `kubectl apply`, before anything runs.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A DNS label (RFC 1123): what a namespace name is.
const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";
/// A DNS subdomain (RFC 1123): what a Secret or ServiceAccount name is.
const DNS_SUBDOMAIN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
/// An age X25519 recipient: `age1` and 58 characters of the bech32 alphabet.
pub const AGE_RECIPIENT: &str = "^age1[02-9ac-hj-np-z]{58}$";
/// A folder under `environments/` as `plan::side_path` accepts it.
const SIDE_REPO_PATH: &str = "^environments(/[a-z0-9][-a-z0-9_.]*)+$";

/// Most recipients an Environment may list: far more than a real one
/// needs, and a bound on the work each sealing does.
pub const MAX_RECIPIENTS: usize = 32;

/// A string schema checked by one CEL rule, with `message` on refusal.
fn checked(max_length: usize, pattern: &str, message: &str, nullable: bool) -> Schema {
    let mut s = json_schema!({
        "type": "string",
        "maxLength": max_length,
        "x-kubernetes-validations": [{
            "rule": format!("self.matches('{pattern}')"),
            "message": message,
        }],
    });
    if nullable {
        s.insert("nullable".into(), true.into());
    }
    s
}

pub fn namespace_name(_: &mut SchemaGenerator) -> Schema {
    checked(
        63,
        DNS_LABEL,
        "must be a namespace name: 1 to 63 lower-case letters, digits and '-', starting and ending with a letter or digit",
        false,
    )
}

pub fn secret_name(_: &mut SchemaGenerator) -> Schema {
    checked(
        253,
        DNS_SUBDOMAIN,
        "must be the name of a Secret in this namespace: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
        true,
    )
}

pub fn service_account_name(_: &mut SchemaGenerator) -> Schema {
    checked(
        253,
        DNS_SUBDOMAIN,
        "must be the name of a ServiceAccount of the target namespace: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
        true,
    )
}

pub fn delivery_account_name(_: &mut SchemaGenerator) -> Schema {
    checked(
        253,
        DNS_SUBDOMAIN,
        "must be the name of a ServiceAccount of this workspace (not a user name such as system:serviceaccount:...): lower-case letters, digits, '-' and '.'",
        true,
    )
}

pub fn recipients(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "maxItems": MAX_RECIPIENTS,
        "default": [],
        "items": checked(
            256,
            AGE_RECIPIENT,
            "must be an age recipient: age1 followed by 58 lower-case letters and digits, as age-keygen -y prints it",
            false,
        ),
    })
}

pub fn side_repo_path(_: &mut SchemaGenerator) -> Schema {
    checked(
        512,
        SIDE_REPO_PATH,
        "must be a folder under environments/, such as environments/<workspace>/<name>: lower-case names (letters, digits, '-', '_', '.', each starting with a letter or digit) separated by '/'",
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patterns_agree_with_the_controllers_checks() {
        let re = |p: &str| regex::Regex::new(p).unwrap();
        let recipient = quayside_recipient();
        assert!(re(AGE_RECIPIENT).is_match(&recipient), "{recipient}");
        assert!(!re(AGE_RECIPIENT).is_match("age1notakey"));
        let path = re(SIDE_REPO_PATH);
        for (p, ok) in [
            ("environments/team-a/dev", true),
            ("environments/team-a/eu/prod_1.x", true),
            ("environments", false),
            ("environments/", false),
            ("environments//x", false),
            ("environments/team-a/../x", false),
            ("environments/.git", false),
            ("../outside", false),
            (".github", false),
            ("/environments/a", false),
            ("environments/Team", false),
        ] {
            assert_eq!(path.is_match(p), ok, "{p}");
            // Whatever the CRD lets through, the controller judges alike
            // (when the workspace is not the question).
            let scope = crate::plan::side_path::PathScope::AnyUnderRoot;
            let controller = crate::plan::side_path::folder("team-a", "dev", Some(p), scope);
            assert_eq!(controller.is_ok(), ok, "{p}: {controller:?}");
        }
        let label = re(DNS_LABEL);
        assert!(label.is_match("team-a") && !label.is_match("Not A Namespace"));
        assert!(!label.is_match("") && !label.is_match("a."));
        let sub = re(DNS_SUBDOMAIN);
        assert!(sub.is_match("quayside-delivery") && sub.is_match("a.b"));
        assert!(!sub.is_match("system:serviceaccount:team-b:quayside-delivery"));
    }

    fn quayside_recipient() -> String {
        crate::seal::Identity::generate().to_recipient().to_string()
    }
}
