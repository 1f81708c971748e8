//! Who may do what: OAuth tokens with a role in the organization and a set
//! of scopes, checked the way Quay checks them (scope and permission
//! first, so a missing organization is 403 like a missing right).

/// A token owner's place in the organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrgRole {
    /// Administers the organization: robots, every repository.
    Admin,
    /// May create repositories (and administers the ones it created), but
    /// is not an organization admin: no robots.
    Creator,
    /// A read-only member: reads repositories, creates and administers nothing.
    Reader,
}

/// An OAuth scope of a Quay application token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    RepoRead,
    RepoWrite,
    RepoAdmin,
    RepoCreate,
    OrgAdmin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::RepoRead,
        Scope::RepoWrite,
        Scope::RepoAdmin,
        Scope::RepoCreate,
        Scope::OrgAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RepoRead => "repo:read",
            Scope::RepoWrite => "repo:write",
            Scope::RepoAdmin => "repo:admin",
            Scope::RepoCreate => "repo:create",
            Scope::OrgAdmin => "org:admin",
        }
    }
}

/// What a token may do: its owner's role and the token's scopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenAccess {
    pub role: OrgRole,
    pub scopes: Vec<Scope>,
}

impl TokenAccess {
    /// An organization admin's token with every scope (the default token).
    pub fn org_admin() -> Self {
        TokenAccess {
            role: OrgRole::Admin,
            scopes: Scope::ALL.to_vec(),
        }
    }

    /// A member who may create repositories but is not an org admin, every scope.
    pub fn creator() -> Self {
        TokenAccess {
            role: OrgRole::Creator,
            scopes: Scope::ALL.to_vec(),
        }
    }

    /// A read-only member of the organization, every scope.
    pub fn reader() -> Self {
        TokenAccess {
            role: OrgRole::Reader,
            scopes: Scope::ALL.to_vec(),
        }
    }

    /// An org admin's token granted only `repo:read`.
    pub fn read_scope_only() -> Self {
        TokenAccess {
            role: OrgRole::Admin,
            scopes: vec![Scope::RepoRead],
        }
    }

    /// The `quay-emulator --extra-token KIND=FILE` kinds.
    pub fn from_kind(kind: &str) -> Result<Self, String> {
        match kind {
            "org-admin" => Ok(Self::org_admin()),
            "creator" => Ok(Self::creator()),
            "reader" => Ok(Self::reader()),
            "repo-read" => Ok(Self::read_scope_only()),
            other => Err(format!(
                "unknown token kind {other:?}; use org-admin, creator, reader or repo-read"
            )),
        }
    }

    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

/// What a call needs, besides its scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// Read the repository.
    Read,
    /// Administer the repository (visibility, permissions, description, delete).
    Admin,
    /// Create a repository in the organization.
    Create,
    /// Administer the organization (robots).
    Organization,
}

impl Need {
    /// The scope Quay requires for calls needing this.
    pub(crate) fn scope(self) -> Scope {
        match self {
            Need::Read => Scope::RepoRead,
            Need::Admin => Scope::RepoAdmin,
            Need::Create => Scope::RepoCreate,
            Need::Organization => Scope::OrgAdmin,
        }
    }
}

/// Whether `access` may do what `need`s, in an organization that exists
/// (`org_exists`) on a repository this token created (`own_repo`).
pub(crate) fn allowed(access: &TokenAccess, need: Need, org_exists: bool, own_repo: bool) -> bool {
    if !org_exists || !access.has(need.scope()) {
        return false;
    }
    match (access.role, need) {
        (OrgRole::Admin, _) => true,
        (OrgRole::Creator, Need::Create) => true,
        (OrgRole::Creator, Need::Read | Need::Admin) => own_repo,
        (OrgRole::Reader, Need::Read) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_and_scopes_as_recorded() {
        let admin = TokenAccess::org_admin();
        let creator = TokenAccess::creator();
        let reader = TokenAccess::reader();
        let scope = TokenAccess::read_scope_only();
        for need in [Need::Read, Need::Admin, Need::Create, Need::Organization] {
            assert!(allowed(&admin, need, true, false), "{need:?}");
            assert!(
                !allowed(&admin, need, false, false),
                "missing org: {need:?}"
            );
        }
        assert!(allowed(&creator, Need::Create, true, false));
        assert!(!allowed(&creator, Need::Organization, true, true));
        assert!(!allowed(&creator, Need::Read, true, false));
        assert!(allowed(&creator, Need::Admin, true, true));
        assert!(!allowed(&reader, Need::Create, true, false));
        assert!(!allowed(&reader, Need::Organization, true, false));
        assert!(allowed(&reader, Need::Read, true, false));
        assert!(allowed(&scope, Need::Read, true, false));
        assert!(!allowed(&scope, Need::Create, true, false));
        assert!(!allowed(&scope, Need::Organization, true, false));
        assert_eq!(
            TokenAccess::from_kind("repo-read"),
            Ok(TokenAccess::read_scope_only())
        );
        assert!(TokenAccess::from_kind("root").is_err());
    }
}
