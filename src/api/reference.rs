//! The CRD reference in Markdown, generated from the same schemas as the
//! CRDs (so `docs/crd-reference.md` cannot drift from the types).

use kube::CustomResourceExt;
use serde_json::Value;

use super::{Component, Environment};

/// `docs/crd-reference.md`.
pub fn crd_reference_markdown() -> String {
    let mut out = String::from(
        "# CRD reference\n\nGenerated from the Rust types by `quayside crd --reference`; \
         `tests/offline/crd_drift.rs` fails when it is stale.\n",
    );
    for crd in [Component::crd(), Environment::crd()] {
        let v = serde_json::to_value(&crd).expect("CRD serialises");
        let kind = v["spec"]["names"]["kind"].as_str().unwrap_or_default();
        let group = v["spec"]["group"].as_str().unwrap_or_default();
        let version = &v["spec"]["versions"][0];
        out.push_str(&format!(
            "\n## {kind} (`{group}/{}`)\n\n",
            version["name"].as_str().unwrap_or_default()
        ));
        if let Some(d) = version["schema"]["openAPIV3Schema"]["description"].as_str() {
            out.push_str(d);
            out.push_str("\n\n");
        }
        out.push_str("| field | type | description |\n|---|---|---|\n");
        let props = &version["schema"]["openAPIV3Schema"]["properties"];
        for top in ["spec", "status"] {
            walk(&props[top], top, &mut out, 0);
        }
    }
    out
}

fn walk(schema: &Value, path: &str, out: &mut String, depth: usize) {
    if depth > 8 {
        return;
    }
    let ty = schema["type"]
        .as_str()
        .unwrap_or(if schema["enum"].is_array() {
            "string"
        } else {
            "object"
        });
    let mut ty = ty.to_string();
    if let Some(vals) = schema["enum"].as_array() {
        let vals: Vec<String> = vals
            .iter()
            .filter_map(|v| v.as_str().map(|s| format!("`{s}`")))
            .collect();
        ty = format!("enum: {}", vals.join(", "));
    }
    let desc = schema["description"]
        .as_str()
        .unwrap_or("")
        .replace('\n', " ")
        .replace('|', "\\|");
    out.push_str(&format!("| `{path}` | {ty} | {desc} |\n"));
    if path.ends_with("conditions") {
        return; // the standard metav1.Condition
    }
    if let Some(props) = schema["properties"].as_object() {
        for (name, s) in props {
            walk(s, &format!("{path}.{name}"), out, depth + 1);
        }
    }
    if schema["type"] == "array"
        && let Some(props) = schema["items"]["properties"].as_object()
    {
        for (name, s) in props {
            walk(s, &format!("{path}[].{name}"), out, depth + 1);
        }
    }
}
