//! The folder's text files, from templates embedded at build time.

pub(crate) const KUSTOMIZATION_KSOPS: &str =
    include_str!("../../templates/kustomization-ksops.yaml");
pub(crate) const KUSTOMIZATION_FLUX: &str = include_str!("../../templates/kustomization-flux.yaml");
pub(crate) const SECRET_GENERATOR: &str = include_str!("../../templates/secret-generator.yaml");
pub(crate) const SERVICEACCOUNT_LINK: &str =
    include_str!("../../templates/serviceaccount-link.yaml");
pub(crate) const README: &str = include_str!("../../templates/README.md");

/// Replace each `{{key}}`. Values are inserted as is: callers pass only
/// validated names and lists they built themselves.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    for (k, v) in values {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    debug_assert!(!out.contains("{{"), "unfilled placeholder in a template");
    out
}

/// A YAML block list continuing a `key:` line: `\n  - a\n  - b`, or ` []`.
pub(crate) fn yaml_list(items: &[String]) -> String {
    if items.is_empty() {
        " []".to_string()
    } else {
        items.iter().map(|i| format!("\n  - {i}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder() {
        assert_eq!(
            fill("a {{x}} {{y}} {{x}}", &[("x", "1"), ("y", "2")]),
            "a 1 2 1"
        );
        assert_eq!(yaml_list(&[]), " []");
        assert_eq!(yaml_list(&["a".into(), "b".into()]), "\n  - a\n  - b");
    }
}
