//! Which side-repo folder an Environment may write (pure): its default,
//! the rules a custom `spec.sideRepo.path` must follow, and the folder a
//! release before the workspace level wrote. Many tenants share one side
//! repository, so a tenant's folder stays inside its workspace's folder
//! and nothing is ever written outside `environments/`.

use super::spec::SpecError;

/// The only folder of the side repository quayside writes to.
pub const ROOT: &str = "environments";

/// Longest folder path accepted: far above any real layout, well below
/// what git and forges handle.
const MAX_PATH: usize = 512;

/// Where a custom path may point (`--side-repo-any-path`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PathScope {
    /// Under `environments/<workspace>/` (the default).
    #[default]
    Workspace,
    /// Anywhere under `environments/`: an administrator's choice, for a
    /// side repository whose layout predates workspaces.
    AnyUnderRoot,
}

/// The default folder: `environments/<workspace>/<environment>`.
pub fn default_folder(workspace: &str, name: &str) -> String {
    crate::api::default_side_repo_path(workspace, name)
}

/// The default folder of releases before the workspace level, which
/// collided between workspaces: `environments/<environment>`.
pub fn legacy_folder(name: &str) -> String {
    format!("{ROOT}/{name}")
}

/// The folder an Environment writes: the default, or its custom path when
/// that follows the rules. The error says what to write instead.
pub fn folder(
    workspace: &str,
    name: &str,
    custom: Option<&str>,
    scope: PathScope,
) -> Result<String, SpecError> {
    let Some(path) = custom else {
        return Ok(default_folder(workspace, name));
    };
    let allowed = match scope {
        PathScope::Workspace => format!("{ROOT}/{workspace}"),
        PathScope::AnyUnderRoot => ROOT.to_string(),
    };
    let refuse = |reason: String| SpecError::SideRepoPath {
        path: path.chars().take(100).collect(),
        reason,
        example: format!("{allowed}/{name}"),
    };
    // Strictly below: the workspace's folder itself would hold every other
    // Environment's folder of the workspace.
    if path
        .strip_prefix(&format!("{allowed}/"))
        .is_none_or(str::is_empty)
    {
        return Err(refuse(format!("is not inside {allowed}/")));
    }
    match malformed(path) {
        Some(reason) => Err(refuse(reason.to_string())),
        None => Ok(path.to_string()),
    }
}

/// Why a path is not a plain relative folder path, if it is not: each part
/// a lower-case name (letters, digits, `-`, `_`, `.`, starting with a letter
/// or digit), so no `.`, `..`, `.git`, hidden folder, backslash or space.
fn malformed(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("is empty");
    }
    if path.len() > MAX_PATH {
        return Some("is too long");
    }
    if path.starts_with('/') {
        return Some("is absolute; it must be relative to the repository root");
    }
    for part in path.split('/') {
        if part.is_empty() {
            return Some("has an empty part (`//` or a trailing `/`)");
        }
        if part == "." || part == ".." {
            return Some("has a `.` or `..` part");
        }
        let first = part.chars().next().unwrap_or('.');
        let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c);
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) || !part.chars().all(ok_char) {
            return Some(
                "has a part that is not a lower-case name (letters, digits, `-`, `_`, `.`, starting with a letter or digit)",
            );
        }
    }
    None
}

/// Whether `path` (a folder or file) lies strictly inside `environments/`
/// without leaving it: the last check before anything is written or
/// removed. Looser than [`folder`] on names (files are `README.md`).
pub fn inside_root(path: &str) -> bool {
    path.strip_prefix(&format!("{ROOT}/")).is_some_and(|rest| {
        rest.split('/')
            .all(|p| !p.is_empty() && !p.starts_with('.') && !p.contains(['\\', '\0']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use PathScope::{AnyUnderRoot, Workspace};

    #[test]
    fn the_default_is_inside_the_workspace() {
        assert_eq!(
            folder("team-a", "dev", None, Workspace),
            Ok("environments/team-a/dev".into())
        );
        assert_eq!(legacy_folder("dev"), "environments/dev");
        assert!(inside_root(&default_folder("team-a", "dev")));
    }

    #[test]
    fn custom_paths() {
        // (path, scope, accepted)
        let table: &[(&str, PathScope, bool)] = &[
            ("environments/team-a/dev", Workspace, true),
            ("environments/team-a/eu/prod.v2_x", Workspace, true),
            ("environments/team-a", Workspace, false),
            ("environments/team-a/", Workspace, false),
            ("environments/team-b/prod", Workspace, false),
            ("environments/team-ab/prod", Workspace, false),
            ("environments/dev", Workspace, false),
            ("environments", Workspace, false),
            (".github", Workspace, false),
            (".github/workflows", AnyUnderRoot, false),
            ("../x", Workspace, false),
            ("environments/team-a/../team-b/x", Workspace, false),
            ("environments/team-a/./dev", Workspace, false),
            ("environments/team-a//dev", Workspace, false),
            ("/environments/team-a/dev", Workspace, false),
            ("environments\\team-a\\dev", Workspace, false),
            ("environments/team-a/.git", Workspace, false),
            ("environments/team-a/Dev", Workspace, false),
            ("environments/team-a/d ev", Workspace, false),
            ("environments/team-a/-dev", Workspace, false),
            ("", Workspace, false),
            ("environments/team-b/prod", AnyUnderRoot, true),
            ("environments/dev", AnyUnderRoot, true),
            ("environments", AnyUnderRoot, false),
            ("clusters/prod", AnyUnderRoot, false),
        ];
        for (path, scope, ok) in table {
            let got = folder("team-a", "dev", Some(path), *scope);
            assert_eq!(got.is_ok(), *ok, "{path:?} {scope:?}: {got:?}");
        }
        let long = format!("environments/team-a/{}", "a/".repeat(300));
        assert!(folder("team-a", "dev", Some(&long), Workspace).is_err());
    }

    #[test]
    fn the_message_says_what_to_write() {
        let msg = folder("team-a", "dev", Some(".github"), Workspace)
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("spec.sideRepo.path \".github\"")
                && msg.contains("is not inside environments/team-a/")
                && msg.contains("environments/team-a/dev"),
            "{msg}"
        );
        let msg = folder(
            "team-a",
            "dev",
            Some("environments/team-a/../x"),
            AnyUnderRoot,
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("`..`") && msg.contains("environments/dev"),
            "{msg}"
        );
    }

    #[test]
    fn only_environments_is_writable() {
        assert!(inside_root("environments/team-a/dev/secrets/a.sops.yaml"));
        assert!(inside_root("environments/dev"));
        assert!(inside_root("environments/a/README.md"));
        for bad in [
            "environments",
            "environments/",
            ".github/x",
            "environments/../x",
            "x/environments/y",
        ] {
            assert!(!inside_root(bad), "{bad}");
        }
    }
}
