//! Whether a Component asks for an emergency rotation, and whether that
//! request is obeyed: the ADR's `image.redhat.com/generate: "true"` (removed
//! once done), `quayside.dev/rotate: <value>` (once per distinct value, never
//! removed), and the storm guard that refuses the ADR annotation when it
//! comes back right after a rotation — what a GitOps engine's self-heal does.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry};

use crate::vocabulary::{ANNOTATION_GENERATE, ANNOTATION_ROTATE};

/// What a pass knows about the rotation requests on a Component.
#[derive(Clone, Debug, Default)]
pub struct RequestInput<'a> {
    /// The value of `image.redhat.com/generate`, if set.
    pub generate: Option<&'a str>,
    /// The value of `quayside.dev/rotate`, if set.
    pub rotate: Option<&'a str>,
    /// `status.rotateHandled`.
    pub rotate_handled: Option<&'a str>,
    /// Credentials existed before this pass (`status.credentialsGeneration > 0`).
    pub provisioned: bool,
    /// The last status already refused the generate annotation.
    pub refused_before: bool,
    /// When the last rotation completed (`status.rotatedAt`), in seconds.
    pub last_rotation_secs: Option<i64>,
    pub now_secs: i64,
    /// The storm guard's window; 0 turns it off.
    pub cooldown_secs: i64,
}

/// Why the generate annotation is not obeyed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Set within the window after a completed rotation; `remaining` seconds
    /// of the window are left.
    TooSoon { since_secs: i64, remaining: i64 },
    /// Refused before and never taken away since: the same request.
    StillSet,
}

/// The decision about a Component's rotation requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestDecision {
    /// Rotate the robot tokens now (an emergency rotation).
    pub rotate: bool,
    /// The generate annotation is obeyed: remove it when the rotation finishes.
    pub generate_obeyed: bool,
    /// Record this `quayside.dev/rotate` value as handled: when the rotation
    /// finishes, or at once when `rotate` is false (the first credentials
    /// are new anyway, so a value present at creation costs no rotation).
    pub handle_value: Option<String>,
    /// The generate annotation is set and not obeyed.
    pub refused: Option<Refusal>,
    /// The generate annotation holds something other than `"true"`.
    pub invalid_generate: Option<String>,
}

/// Decide what the rotation annotations ask for.
pub fn decide_request(i: &RequestInput) -> RequestDecision {
    let mut d = RequestDecision::default();
    if let Some(v) = i.rotate.filter(|v| Some(*v) != i.rotate_handled) {
        d.handle_value = Some(v.to_string());
        d.rotate = i.provisioned;
    }
    match i.generate {
        None => {}
        Some("true") => match refusal(i) {
            Some(r) => d.refused = Some(r),
            None => {
                d.generate_obeyed = true;
                d.rotate = true;
            }
        },
        Some(other) => d.invalid_generate = Some(other.to_string()),
    }
    d
}

/// The storm guard: a refusal sticks while the annotation stays (else an
/// engine that keeps it in git would rotate once per window), and a new
/// one is refused within the window after a completed rotation.
fn refusal(i: &RequestInput) -> Option<Refusal> {
    if i.refused_before {
        return Some(Refusal::StillSet);
    }
    let since = i.now_secs - i.last_rotation_secs?;
    (i.cooldown_secs > 0 && since < i.cooldown_secs).then_some(Refusal::TooSoon {
        since_secs: since.max(0),
        remaining: i.cooldown_secs - since.max(0),
    })
}

/// The field managers that own the generate annotation, from
/// `metadata.managedFields` (several when they share it); empty when the
/// API server recorded none.
pub fn generate_owners(entries: &[ManagedFieldsEntry]) -> Vec<String> {
    let mut owners: Vec<String> = entries
        .iter()
        .filter(|e| owns_annotation(e, ANNOTATION_GENERATE))
        .filter_map(|e| e.manager.clone())
        .collect();
    owners.sort();
    owners.dedup();
    owners
}

/// Only what [`generate_owners`] reads: the entries that own the generate
/// annotation, each cut down to its manager and that one field. The
/// controller keeps every Component in memory; the rest of their
/// `managedFields` is most of their size.
pub fn trim_to_generate_owners(entries: &mut Option<Vec<ManagedFieldsEntry>>) {
    let Some(list) = entries.take() else {
        return;
    };
    let kept: Vec<ManagedFieldsEntry> = list
        .into_iter()
        .filter(|e| owns_annotation(e, ANNOTATION_GENERATE))
        .map(|e| ManagedFieldsEntry {
            manager: e.manager,
            operation: e.operation,
            fields_type: e.fields_type,
            fields_v1: Some(FieldsV1(serde_json::json!({
                "f:metadata": {"f:annotations": {format!("f:{ANNOTATION_GENERATE}"): {}}}
            }))),
            ..Default::default()
        })
        .collect();
    *entries = (!kept.is_empty()).then_some(kept);
}

fn owns_annotation(entry: &ManagedFieldsEntry, key: &str) -> bool {
    entry.fields_v1.as_ref().is_some_and(|f| {
        f.0.get("f:metadata")
            .and_then(|m| m.get("f:annotations"))
            .and_then(|a| a.get(format!("f:{key}")))
            .is_some()
    })
}

/// The condition message of a refusal: who set the annotation, why it is
/// not obeyed, and how to rotate on purpose.
pub fn refusal_message(refusal: &Refusal, owners: &[String], cooldown_secs: i64) -> String {
    let who = match owners {
        [] => "an unknown writer (no managedFields entry owns it)".to_string(),
        [one] => format!("field manager {one:?}"),
        many => format!("field managers {}", quoted(many)),
    };
    let why = match refusal {
        Refusal::TooSoon { since_secs, .. } => format!(
            "was set by {who} {since_secs}s after the last rotation completed, within the \
             {cooldown_secs}s rotation-request cooldown"
        ),
        Refusal::StillSet => format!(
            "is still set by {who} after it was refused (a GitOps engine re-applying it would \
             otherwise revoke the tokens in a loop)"
        ),
    };
    let wait = match refusal {
        Refusal::TooSoon { remaining, .. } => format!(" at least {remaining}s from now"),
        Refusal::StillSet => String::new(),
    };
    format!(
        "{ANNOTATION_GENERATE}={:?} {why}; it is not obeyed and not removed. To rotate on \
         purpose, set {ANNOTATION_ROTATE} to a new value (safe to keep in git), or remove \
         {ANNOTATION_GENERATE} and set it again{wait}",
        "true"
    )
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> RequestInput<'static> {
        RequestInput {
            provisioned: true,
            last_rotation_secs: Some(1_000),
            now_secs: 2_000,
            cooldown_secs: 300,
            ..RequestInput::default()
        }
    }

    #[test]
    fn decision_table() {
        let obeyed = RequestDecision {
            rotate: true,
            generate_obeyed: true,
            ..Default::default()
        };
        let value = |v: &str, rotate| RequestDecision {
            rotate,
            handle_value: Some(v.into()),
            ..Default::default()
        };
        let too_soon = |since, remaining| RequestDecision {
            refused: Some(Refusal::TooSoon {
                since_secs: since,
                remaining,
            }),
            ..Default::default()
        };
        #[rustfmt::skip]
        let cases: Vec<(&str, RequestInput, RequestDecision)> = vec![
            ("nothing set", input(), RequestDecision::default()),
            ("generate, long after the last rotation", RequestInput { generate: Some("true"), ..input() }, obeyed.clone()),
            ("generate, never rotated", RequestInput { generate: Some("true"), last_rotation_secs: None, ..input() }, obeyed.clone()),
            ("generate, within the window", RequestInput { generate: Some("true"), now_secs: 1_010, ..input() }, too_soon(10, 290)),
            ("generate, at the window's end", RequestInput { generate: Some("true"), now_secs: 1_300, ..input() }, obeyed.clone()),
            ("generate, guard off", RequestInput { generate: Some("true"), now_secs: 1_010, cooldown_secs: 0, ..input() }, obeyed.clone()),
            ("generate, refused before", RequestInput { generate: Some("true"), refused_before: true, ..input() },
                RequestDecision { refused: Some(Refusal::StillSet), ..Default::default() }),
            ("generate, not true", RequestInput { generate: Some("yes"), ..input() },
                RequestDecision { invalid_generate: Some("yes".into()), ..Default::default() }),
            ("new value", RequestInput { rotate: Some("a"), ..input() }, value("a", true)),
            ("new value, within the window", RequestInput { rotate: Some("b"), rotate_handled: Some("a"), now_secs: 1_001, ..input() }, value("b", true)),
            ("value already handled", RequestInput { rotate: Some("a"), rotate_handled: Some("a"), ..input() }, RequestDecision::default()),
            ("value at creation is adopted", RequestInput { rotate: Some("a"), provisioned: false, ..input() }, value("a", false)),
            ("both, generate refused", RequestInput { rotate: Some("b"), generate: Some("true"), refused_before: true, ..input() },
                RequestDecision { refused: Some(Refusal::StillSet), ..value("b", true) }),
            ("both obeyed", RequestInput { rotate: Some("b"), generate: Some("true"), ..input() },
                RequestDecision { handle_value: Some("b".into()), ..obeyed }),
        ];
        for (what, i, want) in cases {
            assert_eq!(decide_request(&i), want, "{what}");
        }
    }

    fn entry(manager: &str, fields: serde_json::Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        }
    }

    #[test]
    fn trimmed_managed_fields_keep_the_generate_owners_only() {
        let entry = |manager: &str, fields: serde_json::Value| ManagedFieldsEntry {
            manager: Some(manager.into()),
            fields_v1: Some(FieldsV1(fields)),
            ..Default::default()
        };
        let mut entries = Some(vec![
            entry(
                "argocd-controller",
                serde_json::json!({"f:metadata": {"f:annotations": {
                    "f:image.redhat.com/generate": {}, "f:other": {}}}, "f:spec": {}}),
            ),
            entry("quayside", serde_json::json!({"f:status": {}})),
        ]);
        let before = generate_owners(entries.as_deref().unwrap());
        trim_to_generate_owners(&mut entries);
        assert_eq!(entries.as_ref().map(Vec::len), Some(1));
        assert_eq!(generate_owners(entries.as_deref().unwrap()), before);
        let mut none = Some(vec![entry("quayside", serde_json::json!({"f:status": {}}))]);
        trim_to_generate_owners(&mut none);
        assert!(none.is_none());
    }

    #[test]
    fn owners_come_from_managed_fields() {
        let generate = serde_json::json!({"f:metadata": {"f:annotations": {"f:image.redhat.com/generate": {}}}});
        let other =
            serde_json::json!({"f:metadata": {"f:annotations": {"f:quayside.dev/rotate": {}}}});
        let entries = vec![
            entry("kubectl-client-side-apply", other),
            entry("argocd-controller", generate.clone()),
            entry("kubectl-annotate", generate),
            entry("quayside", serde_json::json!({"f:status": {}})),
        ];
        assert_eq!(
            generate_owners(&entries),
            vec!["argocd-controller", "kubectl-annotate"]
        );
        assert!(generate_owners(&[]).is_empty());
    }

    #[test]
    fn the_message_names_the_writer_and_the_way_out() {
        let m = refusal_message(
            &Refusal::TooSoon {
                since_secs: 4,
                remaining: 296,
            },
            &["argocd-controller".into()],
            300,
        );
        assert!(m.contains("\"argocd-controller\""), "{m}");
        assert!(m.contains("quayside.dev/rotate"), "{m}");
        assert!(m.contains("296s"), "{m}");
        let m = refusal_message(&Refusal::StillSet, &[], 300);
        assert!(m.contains("unknown writer"), "{m}");
    }
}
