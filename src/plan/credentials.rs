//! Which credentials generation to record, and when Quay must be asked
//! again: the bookkeeping of a Component's robot tokens (pure).

/// The generation that credentials found on Quay build on: the highest one
/// persisted or recorded so far.
pub fn base_generation(push: Option<i64>, pull: Option<i64>, recorded: i64) -> i64 {
    push.max(pull).unwrap_or(0).max(recorded)
}

/// The generation of credentials that differ from the persisted ones: a
/// token regenerated outside quayside is a new generation; the first ones
/// are generation 1 (or carry on from `base`).
pub fn next_generation(stored: Option<i64>, base: i64) -> i64 {
    match stored {
        Some(s) => s.max(base) + 1,
        None => base.max(1),
    }
}

/// The generation status records: the first provisioning is recorded as it
/// is persisted (it is not a rotation); after that, only a finished
/// rotation moves it.
pub fn recorded_generation(status: i64, pull: Option<i64>) -> i64 {
    if status == 0 {
        pull.unwrap_or(0)
    } else {
        status
    }
}

/// The provisioned repository when the spec now derives another one:
/// `image` is status's pull spec, `prefix` the `<registry>/<organization>/`
/// it starts with. `None` when nothing was provisioned, nothing moved, or
/// the image is of another registry or organization (the administrator
/// moved quayside, and the Component is provisioned anew there).
pub fn moved_from(image: Option<&str>, prefix: &str, derived: &str) -> Option<String> {
    image?
        .strip_prefix(prefix)
        .filter(|old| *old != derived)
        .map(str::to_string)
}

/// What decides whether a pass may skip Quay.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuayCheck {
    /// Status says RepositoryReady=True.
    pub repository_ready: bool,
    /// The spec changed since status was written.
    pub spec_changed: bool,
    /// Both workspace Secrets are there.
    pub credentials_stored: bool,
    /// Status names the image this pass derives.
    pub same_image: bool,
    /// This process verified Quay for this spec generation and repository.
    pub verified_in_memory: bool,
}

/// Whether Quay must be asked this pass. Skipped when nothing can have
/// changed since the last verification, so a heartbeat with nothing to do
/// makes no Quay calls; the pass our own Secret writes trigger (which sees
/// the Component before its status says RepositoryReady) is covered by
/// what this process remembers.
pub fn must_check_quay(c: QuayCheck) -> bool {
    let from_status = c.repository_ready && !c.spec_changed && c.same_image;
    !(c.credentials_stored && (from_status || c.verified_in_memory))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations() {
        assert_eq!(base_generation(None, None, 0), 0);
        assert_eq!(base_generation(Some(3), Some(2), 1), 3);
        assert_eq!(base_generation(Some(1), None, 4), 4);
        // First credentials: generation 1, or after whatever was recorded.
        assert_eq!(next_generation(None, 0), 1);
        assert_eq!(next_generation(None, 5), 5);
        // Regenerated outside quayside: the next one.
        assert_eq!(next_generation(Some(2), 2), 3);
        assert_eq!(next_generation(Some(2), 4), 5);
        assert_eq!(recorded_generation(0, Some(1)), 1);
        assert_eq!(recorded_generation(0, None), 0);
        assert_eq!(recorded_generation(3, Some(4)), 3);
    }

    #[test]
    fn a_provisioned_repository_never_moves() {
        let prefix = "quay.io/acme/";
        assert_eq!(moved_from(None, prefix, "team-a/app"), None);
        assert_eq!(
            moved_from(Some("quay.io/acme/team-a/app"), prefix, "team-a/app"),
            None
        );
        assert_eq!(
            moved_from(Some("quay.io/acme/team-a/app"), prefix, "team-b/app").as_deref(),
            Some("team-a/app")
        );
        assert_eq!(
            moved_from(Some("quay.io/old-org/team-a/app"), prefix, "team-b/app"),
            None
        );
    }

    #[test]
    fn quay_is_skipped_only_when_nothing_can_have_changed() {
        let steady = QuayCheck {
            repository_ready: true,
            credentials_stored: true,
            same_image: true,
            ..Default::default()
        };
        assert!(!must_check_quay(steady));
        assert!(must_check_quay(QuayCheck {
            spec_changed: true,
            ..steady
        }));
        assert!(must_check_quay(QuayCheck {
            same_image: false,
            ..steady
        }));
        assert!(must_check_quay(QuayCheck {
            repository_ready: false,
            ..steady
        }));
        assert!(must_check_quay(QuayCheck {
            credentials_stored: false,
            verified_in_memory: true,
            ..steady
        }));
        assert!(!must_check_quay(QuayCheck {
            repository_ready: false,
            spec_changed: true,
            verified_in_memory: true,
            ..steady
        }));
    }
}
