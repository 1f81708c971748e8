//! Whose a Quay repository or robot is: quayside's owner records, and the decision to adopt, record or refuse (pure).
//!
//! quayside records the owning Component's uid in a repository's
//! description and in a robot's metadata and description. For an object
//! that already exists, [`decide`] says whether to adopt it, adopt it and
//! write the record (made before records existed), or refuse it.
//! Quay has one namespace per organization, shared by every tenant, by
//! people and by other tools: a name alone proves nothing. A robot's
//! description and metadata are fixed at its creation (Quay has no call to
//! change them), so they are a birth record; a repository's description can
//! be changed by an organization admin, which is how ownership is handed over.

use serde_json::{Value, json};

/// Condition reasons of a refusal (`controller::Error::OwnedElsewhere`).
pub const REPOSITORY_OWNED_ELSEWHERE: &str = "RepositoryOwnedElsewhere";
pub const ROBOT_OWNED_ELSEWHERE: &str = "RobotOwnedElsewhere";

/// Keys of a robot's `unstructured_metadata`: the owning Component's uid,
/// and its `namespace/name` for people reading Quay.
pub const METADATA_OWNER: &str = "quayside.owner";
pub const METADATA_COMPONENT: &str = "quayside.component";

/// What quayside wrote in descriptions before owner records.
const MANAGED: &str = "(managed by quayside)";
/// The record in a description: `(managed by quayside; owner uid <uid>)`.
const RECORD_START: &str = "(managed by quayside; owner uid ";
/// Quay refuses longer robot descriptions with 400; repository
/// descriptions are held to the same bound.
const MAX_ROBOT_DESCRIPTION: usize = 255;
const MAX_DESCRIPTION: usize = MAX_ROBOT_DESCRIPTION;

/// A repository or a robot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Repository,
    Robot,
}

/// The owner record Quay holds for an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// No record: made by a person, another tool, or quayside before records.
    Absent,
    /// The owning Component's uid.
    Owner(String),
}

/// What this Component's own state proves about an unrecorded object made
/// by quayside before owner records existed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Status (written by the controller only) names this repository.
    pub status_names_repository: bool,
    /// A stored login (workspace Secret) holds the robot's current token —
    /// for a repository, the current token of one of its robots. A tenant
    /// can write any name into its own Secret, but not a token it never
    /// had: this is what keeps the migration from being a takeover.
    pub holds_current_token: bool,
}

/// What to do with an object that exists on Quay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// This Component's: use it.
    Adopt,
    /// This Component's from before owner records: use it and write the
    /// record (a repository's description; a robot's cannot be written).
    AdoptAndRecord,
    /// Not this Component's: never use, change, rotate or delete it.
    Refuse(Refusal),
}

/// Why an object is not this Component's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Recorded for the Component with this uid.
    OtherOwner(String),
    /// No record, and nothing of this Component's proves it made it.
    NotQuaysides,
}

/// Decide about an existing object from its record, this Component's uid
/// and what its own state proves. A robot from before records is adopted
/// without recording: Quay cannot change a robot's metadata.
pub fn decide(kind: Kind, record: &Record, uid: &str, provisioned: Provisioned) -> Decision {
    match record {
        Record::Owner(owner) if owner == uid && !uid.is_empty() => Decision::Adopt,
        Record::Owner(owner) => Decision::Refuse(Refusal::OtherOwner(owner.clone())),
        Record::Absent
            if provisioned.status_names_repository && provisioned.holds_current_token =>
        {
            match kind {
                Kind::Repository => Decision::AdoptAndRecord,
                Kind::Robot => Decision::Adopt,
            }
        }
        Record::Absent => Decision::Refuse(Refusal::NotQuaysides),
    }
}

fn record_text(uid: &str) -> String {
    format!("{RECORD_START}{uid})")
}

/// The description of a repository quayside creates for `component`
/// (`namespace/name`).
/// At most 255 characters: a long name is cut, the record never.
pub fn repository_description(component: &str, uid: &str) -> String {
    let full = format!("Images of Component {component} {}", record_text(uid));
    crate::text::fit_keeping_note(&full, MAX_DESCRIPTION)
}

/// A description from before owner records, with the record added: the
/// old marker is replaced, any other text kept.
/// Within 255 characters the record stays where the marker was; past
/// them the human text is cut and the record goes last, whole.
pub fn description_with_record(old: &str, component: &str, uid: &str) -> String {
    if old.trim().is_empty() {
        return repository_description(component, uid);
    }
    let in_place = if old.contains(MANAGED) {
        old.replacen(MANAGED, &record_text(uid), 1)
    } else {
        format!("{} {}", old.trim_end(), record_text(uid))
    };
    if in_place.chars().count() <= MAX_DESCRIPTION {
        return in_place;
    }
    let text = old.replacen(MANAGED, "", 1);
    let full = format!("{} {}", text.trim(), record_text(uid));
    crate::text::fit_keeping_note(&full, MAX_DESCRIPTION)
}

/// The owner record in a description: the last `(managed by quayside;
/// owner uid <uid>)` in it.
pub fn description_record(description: &str) -> Record {
    let uid = description
        .rfind(RECORD_START)
        .map(|at| &description[at + RECORD_START.len()..])
        .and_then(|rest| rest.split_once(')'))
        .map(|(uid, _)| uid.trim())
        .filter(|uid| !uid.is_empty());
    match uid {
        Some(uid) => Record::Owner(uid.to_string()),
        None => Record::Absent,
    }
}

/// The description of a robot quayside creates (`role`: push or pull),
/// within Quay's 255 characters: the Component's name goes first when
/// there is no room (it is in the metadata too).
pub fn robot_description(role: &str, component: &str, uid: &str) -> String {
    let full = format!("quayside {role} robot for {component} {}", record_text(uid));
    if full.chars().count() <= MAX_ROBOT_DESCRIPTION {
        full
    } else {
        format!("quayside {role} robot {}", record_text(uid))
    }
}

/// The `unstructured_metadata` of a robot quayside creates.
pub fn robot_metadata(component: &str, uid: &str) -> Value {
    json!({ METADATA_OWNER: uid, METADATA_COMPONENT: component })
}

/// A robot's owner record: its metadata, else its description.
pub fn robot_record(description: &str, metadata: &Value) -> Record {
    match metadata.get(METADATA_OWNER).and_then(Value::as_str) {
        Some(uid) if !uid.is_empty() => Record::Owner(uid.to_string()),
        _ => description_record(description),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "0f8e7d6c-1111-4222-8333-444455556666";
    const OTHER: &str = "9a9b9c9d-aaaa-4bbb-8ccc-dddddddddddd";

    fn owner(uid: &str) -> Record {
        Record::Owner(uid.to_string())
    }

    fn proof(status: bool, token: bool) -> Provisioned {
        Provisioned {
            status_names_repository: status,
            holds_current_token: token,
        }
    }

    #[test]
    fn every_decision_from_the_record_and_the_proof() {
        use Decision::*;
        use Kind::*;
        let not_ours = Refuse(Refusal::NotQuaysides);
        let theirs = Refuse(Refusal::OtherOwner(OTHER.into()));
        let table = [
            // Recorded for me: mine, whatever my state says.
            (Repository, owner(ME), proof(false, false), Adopt),
            (Robot, owner(ME), proof(true, true), Adopt),
            // Recorded for another Component: never, even with a proof.
            (Repository, owner(OTHER), proof(true, true), theirs.clone()),
            (Robot, owner(OTHER), proof(false, false), theirs),
            // No record: mine only when status names the repository and I
            // hold a current token (migration); a robot cannot be recorded.
            (
                Repository,
                Record::Absent,
                proof(true, true),
                AdoptAndRecord,
            ),
            (Robot, Record::Absent, proof(true, true), Adopt),
            // A name in a Secret the tenant wrote, or a status alone, is no proof.
            (
                Repository,
                Record::Absent,
                proof(true, false),
                not_ours.clone(),
            ),
            (
                Repository,
                Record::Absent,
                proof(false, true),
                not_ours.clone(),
            ),
            (Robot, Record::Absent, proof(true, false), not_ours.clone()),
            (Robot, Record::Absent, proof(false, false), not_ours.clone()),
        ];
        for (kind, record, provisioned, want) in table {
            assert_eq!(
                decide(kind, &record, ME, provisioned),
                want,
                "{kind:?} {record:?} {provisioned:?}"
            );
        }
        // A Component without a uid owns nothing (no record can be "empty").
        assert_eq!(
            decide(Repository, &owner(""), "", proof(false, false)),
            Refuse(Refusal::OtherOwner(String::new()))
        );
    }

    #[test]
    fn records_read_back_as_written() {
        let repo = repository_description("team-a/app", ME);
        assert_eq!(
            repo,
            format!("Images of Component team-a/app (managed by quayside; owner uid {ME})")
        );
        assert_eq!(description_record(&repo), owner(ME));
        let desc = robot_description("push", "team-a/app", ME);
        assert_eq!(robot_record(&desc, &Value::Null), owner(ME));
        let meta = robot_metadata("team-a/app", ME);
        assert_eq!(meta["quayside.component"], "team-a/app");
        assert_eq!(robot_record("made by hand", &meta), owner(ME));
    }

    #[test]
    fn what_is_not_a_record() {
        let table = [
            ("", Record::Absent),
            (
                "Images of Component team-a/app (managed by quayside)",
                Record::Absent,
            ),
            ("our images, made by hand", Record::Absent),
            ("(managed by quayside; owner uid )", Record::Absent),
            ("(managed by quayside; owner uid abc", Record::Absent),
            // The last record counts: an admin hands over by appending.
            (
                "(managed by quayside; owner uid a) now (managed by quayside; owner uid b)",
                owner("b"),
            ),
        ];
        for (text, want) in table {
            assert_eq!(description_record(text), want, "{text:?}");
        }
        // Metadata wins over the description; an empty owner is no owner.
        let meta = json!({ METADATA_OWNER: OTHER });
        let desc = robot_description("pull", "team-a/app", ME);
        assert_eq!(robot_record(&desc, &meta), owner(OTHER));
        assert_eq!(
            robot_record("x", &json!({ METADATA_OWNER: "" })),
            Record::Absent
        );
        assert_eq!(robot_record("x", &json!({"k": "v"})), Record::Absent);
    }

    #[test]
    fn migration_keeps_the_human_text() {
        let table = [
            (
                "Images of Component team-a/app (managed by quayside)",
                format!("Images of Component team-a/app (managed by quayside; owner uid {ME})"),
            ),
            ("", repository_description("team-a/app", ME)),
            (
                "Our app's images ",
                format!("Our app's images (managed by quayside; owner uid {ME})"),
            ),
        ];
        for (old, want) in table {
            let new = description_with_record(old, "team-a/app", ME);
            assert_eq!(new, want);
            assert_eq!(description_record(&new), owner(ME));
        }
    }

    #[test]
    fn repository_descriptions_fit_255_with_the_record_whole() {
        let long = format!("{}/{}", "n".repeat(63), "c".repeat(253));
        let desc = repository_description(&long, ME);
        assert!(desc.chars().count() <= MAX_DESCRIPTION, "{desc}");
        assert_eq!(description_record(&desc), owner(ME));
        let old = format!("Images of Component {long} (managed by quayside) and more");
        let desc = description_with_record(&old, &long, ME);
        assert!(desc.chars().count() <= MAX_DESCRIPTION, "{desc}");
        assert_eq!(description_record(&desc), owner(ME));
    }

    #[test]
    fn robot_descriptions_fit_quays_limit() {
        let long = format!("{}/{}", "n".repeat(63), "c".repeat(253));
        let desc = robot_description("push", &long, ME);
        assert!(desc.chars().count() <= MAX_ROBOT_DESCRIPTION, "{desc}");
        assert_eq!(robot_record(&desc, &Value::Null), owner(ME));
        assert!(robot_description("pull", "a/b", ME).contains("for a/b"));
    }
}
