//! Quay naming rules: sanitised, stable, collision-resistant repository and robot names.
//!
//! Pure functions only. A repository name is `<namespace>/<component>` (or the
//! `spec.image` override) brought to Quay's grammar; robot names are derived
//! from the repository and a role, so a crash between "create robot" and
//! "record it" never leaks a robot: the next pass computes the same name and
//! finds it.

use sha2::{Digest, Sha256};

/// Longest repository name Quay accepts.
pub const MAX_REPOSITORY_LEN: usize = 255;

/// Longest robot short name we generate. Quay limits the full `org+short` name
/// to 255 characters; 200 leaves room for organization names up to 54 characters.
pub const MAX_ROBOT_SHORT_LEN: usize = 200;

/// Hex characters of the SHA-256 suffix that keeps shortened names distinct.
const HASH_LEN: usize = 10;

/// What a robot may do on its repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RobotRole {
    /// `write`: for builds in the workspace.
    Push,
    /// `read`: for workloads in every Environment.
    Pull,
}

impl RobotRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RobotRole::Push => "push",
            RobotRole::Pull => "pull",
        }
    }
}

/// A Kubernetes DNS label (RFC 1123): namespace names, at most 63
/// lower-case letters, digits and `-`, starting and ending alphanumeric.
pub fn is_dns_label(s: &str) -> bool {
    s.len() <= 63 && is_dns_part(s)
}

/// A Kubernetes DNS subdomain (RFC 1123): most object names, parts like
/// DNS labels joined by `.`, at most 253 characters in all (the API server
/// does not bound each part, so neither do we).
pub fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_part)
}

fn is_dns_part(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A name that cannot be brought to Quay's rules.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    #[error(
        "image name {input:?} has no letters or digits left after applying Quay's naming rules; \
         set spec.image to a name like `<namespace>/app` (lower-case letters, digits, `.`, `_`, `-`, `/`)"
    )]
    NothingLeft { input: String },
}

/// The Quay repository for a Component: `spec.image` when set, otherwise
/// `<namespace>/<component>`, sanitised to
/// `^[a-z0-9][.a-z0-9_-]*(/[a-z0-9][.a-z0-9_-]*)*$` and at most 255 characters.
///
/// Sanitising lower-cases, turns other characters into `-`, collapses runs of
/// separators (so the result is also a valid Docker reference path) and drops
/// empty path segments. A name longer than 255 characters is cut and gets a
/// hash of the whole input, so two long inputs never share a repository.
pub fn repository_name(
    namespace: &str,
    component: &str,
    image_override: Option<&str>,
) -> Result<String, NameError> {
    let input = match image_override {
        Some(o) => o.to_string(),
        None => format!("{namespace}/{component}"),
    };
    let segments: Vec<String> = input
        .split('/')
        .map(sanitise_segment)
        .filter(|s| !s.is_empty())
        .collect();
    if segments.is_empty() {
        return Err(NameError::NothingLeft { input });
    }
    let joined = segments.join("/");
    if joined.len() <= MAX_REPOSITORY_LEN {
        return Ok(joined);
    }
    let keep = MAX_REPOSITORY_LEN - HASH_LEN - 1;
    let head = trim_end_separators(&joined[..keep]);
    Ok(format!("{head}-{}", short_hash(&input)))
}

/// The part of the organization a workspace's repositories lie under: its
/// namespace, sanitised like a repository path segment.
pub fn workspace_prefix(namespace: &str) -> String {
    sanitise_segment(namespace)
}

/// Whether `repository` (from [`repository_name`]) lies in the workspace
/// `namespace`'s part of the organization: `<namespace>` or below
/// `<namespace>/`. Workspaces do not trust each other, and a repository
/// outside one's own prefix is another team's.
pub fn in_workspace(repository: &str, namespace: &str) -> bool {
    let prefix = workspace_prefix(namespace);
    !prefix.is_empty()
        && (repository == prefix
            || repository
                .strip_prefix(&prefix)
                .is_some_and(|rest| rest.starts_with('/')))
}

/// The robot short name (without `org+`) for a repository and role.
///
/// `slot` 0 is the base name; slot 1 is the alternate that scheduled rotation
/// brings up before it deletes the old robot. `/` becomes `_`; when the
/// repository itself contains `_` (so that mapping could make two repositories
/// meet) or the name would exceed [`MAX_ROBOT_SHORT_LEN`], a hash of the
/// repository is added. The result matches `^[a-z0-9]+(?:[._-][a-z0-9]+)*$`.
///
/// `repository` is expected to come from [`repository_name`]; anything else is
/// sanitised the same way first.
pub fn robot_short_name(repository: &str, role: RobotRole, slot: u8) -> String {
    let readable: String = repository
        .split('/')
        .map(sanitise_segment)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    let readable = if readable.is_empty() {
        "repo".to_string()
    } else {
        readable
    };
    let suffix = match slot {
        0 => format!("_{}", role.as_str()),
        n => format!("_{}_{n}", role.as_str()),
    };
    let ambiguous = repository.contains('_') || readable != repository.replace('/', "_");
    if !ambiguous && readable.len() + suffix.len() <= MAX_ROBOT_SHORT_LEN {
        return format!("{readable}{suffix}");
    }
    let hash = short_hash(repository);
    let room = MAX_ROBOT_SHORT_LEN - suffix.len() - HASH_LEN - 1;
    let head = trim_end_separators(&readable[..readable.len().min(room)]);
    format!("{head}_{hash}{suffix}")
}

/// The full robot name Quay uses for logins and permissions.
pub fn robot_full_name(organization: &str, short: &str) -> String {
    format!("{organization}+{short}")
}

/// One path segment in `[a-z0-9]+([._-][a-z0-9]+)*` form, or empty.
fn sanitise_segment(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut pending_sep: Option<char> = None;
    for c in raw.chars() {
        let c = c.to_ascii_lowercase();
        let c = match c {
            'a'..='z' | '0'..='9' => c,
            '.' | '_' | '-' => {
                pending_sep.get_or_insert(c);
                continue;
            }
            _ => {
                pending_sep.get_or_insert('-');
                continue;
            }
        };
        // Leading separators are dropped; runs collapse to their first character.
        if let Some(sep) = pending_sep.take()
            && !out.is_empty()
        {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

fn trim_end_separators(s: &str) -> &str {
    s.trim_end_matches(['.', '_', '-', '/'])
}

fn short_hash(input: &str) -> String {
    let digest = Sha256::digest(input.as_bytes());
    let mut hex = hex::encode(digest);
    hex.truncate(HASH_LEN);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_lie_in_their_workspace_or_not() {
        let repo = |image: &str| repository_name("team-a", "app", Some(image)).unwrap();
        assert!(in_workspace(&repo("team-a/app"), "team-a"));
        assert!(in_workspace(&repo("Team-A/My App"), "team-a"));
        assert!(in_workspace(&repo("../team-a/x/y"), "team-a"));
        assert!(in_workspace(
            &repository_name("team-a", "app", None).unwrap(),
            "team-a"
        ));
        for other in [
            "team-b/app",
            "team-ab/app",
            "team/app",
            "../../etc/app",
            "app",
        ] {
            assert!(!in_workspace(&repo(other), "team-a"), "{other}");
        }
        let long = repo(&format!("team-a/{}", "a".repeat(300)));
        assert!(in_workspace(&long, "team-a"), "a cut name keeps its prefix");
    }

    #[test]
    fn dns_labels_and_subdomains() {
        for ok in ["a", "team-a", "a1", &"x".repeat(63)] {
            assert!(is_dns_label(ok), "{ok}");
        }
        for bad in ["", "-a", "a-", "A", "a_b", "shop.staging", &"x".repeat(64)] {
            assert!(!is_dns_label(bad), "{bad}");
        }
        assert!(is_dns_subdomain("shop.staging"));
        assert!(is_dns_subdomain(&"x".repeat(100)));
        for bad in ["", "a..b", ".a", "a.", "a.-b", &"x".repeat(254)] {
            assert!(!is_dns_subdomain(bad), "{bad}");
        }
    }

    fn is_valid_repository(s: &str) -> bool {
        !s.is_empty() && s.len() <= MAX_REPOSITORY_LEN && s.split('/').all(is_valid_component)
    }

    /// Quay's and Docker's grammar for one component: alnum runs joined by single separators.
    fn is_valid_component(s: &str) -> bool {
        !s.is_empty()
            && s.split(['.', '_', '-']).all(|p| {
                !p.is_empty()
                    && p.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
    }

    fn is_valid_robot(s: &str) -> bool {
        (2..=MAX_ROBOT_SHORT_LEN).contains(&s.len()) && is_valid_component(s)
    }

    #[test]
    fn repository_names_table() {
        let long_ns = "n".repeat(200);
        let long_c = "c".repeat(200);
        let table: &[(&str, &str, Option<&str>, &str)] = &[
            ("team-a", "my-app", None, "team-a/my-app"),
            ("team-a", "my.app", None, "team-a/my.app"),
            ("ns", "c", Some("Team/App"), "team/app"),
            ("ns", "c", Some("my__app"), "my_app"),
            ("ns", "c", Some("__lead/trail__"), "lead/trail"),
            ("ns", "c", Some("a//b/"), "a/b"),
            ("ns", "c", Some("/x y/Z!z"), "x-y/z-z"),
            ("ns", "c", Some("a._-b"), "a.b"),
            ("ns", "c", Some("shared"), "shared"),
        ];
        for (ns, c, o, want) in table {
            let got = repository_name(ns, c, *o).unwrap();
            assert_eq!(&got, want, "input {ns:?} {c:?} {o:?}");
            assert!(is_valid_repository(&got), "{got:?}");
        }
        let long = repository_name(&long_ns, &long_c, None).unwrap();
        assert_eq!(long.len(), MAX_REPOSITORY_LEN);
        assert!(is_valid_repository(&long), "{long:?}");
        assert!(long.starts_with(&long_ns));
    }

    #[test]
    fn overrides_without_letters_are_refused_with_advice() {
        for bad in ["", "/", "__", "///", "?!"] {
            let e = repository_name("ns", "c", Some(bad)).unwrap_err();
            assert!(e.to_string().contains("spec.image"), "{e}");
        }
    }

    #[test]
    fn long_names_are_stable_and_distinct() {
        let ns = "workspace-".repeat(25);
        let a1 = repository_name(&ns, &"component-a".repeat(20), None).unwrap();
        let a2 = repository_name(&ns, &"component-a".repeat(20), None).unwrap();
        let b = repository_name(&ns, &"component-b".repeat(20), None).unwrap();
        // Differ only after the cut: the hash keeps them apart.
        let c1 = repository_name(&ns, &format!("{}x", "c".repeat(300)), None).unwrap();
        let c2 = repository_name(&ns, &format!("{}y", "c".repeat(300)), None).unwrap();
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert_ne!(c1, c2);
        for n in [&a1, &b, &c1, &c2] {
            assert!(is_valid_repository(n), "{n:?}");
        }
    }

    #[test]
    fn robot_names_table() {
        let table: &[(&str, RobotRole, u8, &str)] = &[
            ("team-a/my-app", RobotRole::Push, 0, "team-a_my-app_push"),
            ("team-a/my-app", RobotRole::Pull, 0, "team-a_my-app_pull"),
            ("team-a/my-app", RobotRole::Pull, 1, "team-a_my-app_pull_1"),
            ("a.b", RobotRole::Push, 0, "a.b_push"),
        ];
        for (repo, role, slot, want) in table {
            let got = robot_short_name(repo, *role, *slot);
            assert_eq!(&got, want);
            assert!(is_valid_robot(&got), "{got:?}");
        }
    }

    #[test]
    fn robot_names_never_meet() {
        // `a/b_c` and `a_b/c` would both read `a_b_c`: the hash keeps them apart.
        let names: Vec<String> = ["a/b_c", "a_b/c", "a/b/c", "a_b_c"]
            .iter()
            .flat_map(|r| {
                [RobotRole::Push, RobotRole::Pull]
                    .into_iter()
                    .flat_map(move |role| [0, 1].map(|slot| robot_short_name(r, role, slot)))
            })
            .collect();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{names:?}");
        assert!(names.iter().all(|n| is_valid_robot(n)), "{names:?}");
    }

    #[test]
    fn long_robot_names_fit_and_stay_distinct() {
        let long_a = repository_name(&"w".repeat(120), &"a".repeat(130), None).unwrap();
        let long_b =
            repository_name(&"w".repeat(120), &format!("{}b", "a".repeat(129)), None).unwrap();
        let ra = robot_short_name(&long_a, RobotRole::Push, 0);
        let rb = robot_short_name(&long_b, RobotRole::Push, 0);
        let ra1 = robot_short_name(&long_a, RobotRole::Push, 1);
        assert!(is_valid_robot(&ra) && is_valid_robot(&rb) && is_valid_robot(&ra1));
        assert!(robot_full_name(&"o".repeat(54), &ra1).len() <= 255);
        assert_ne!(ra, rb);
        assert_ne!(ra, ra1);
        assert_eq!(ra, robot_short_name(&long_a, RobotRole::Push, 0));
    }
}
