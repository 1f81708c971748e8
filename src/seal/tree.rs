//! The YAML document as sops sees it: ordered mappings, sequences and typed
//! scalar leaves, with the path of every leaf.
//!
//! No `Debug` on purpose: a tree may hold plaintext Secret values.

use serde_norway::Value;

/// A YAML node. Mappings keep document order.
#[derive(Clone, PartialEq)]
pub(crate) enum Node {
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

/// One step from a node to a child: a mapping key or a sequence index.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum Step {
    Key(String),
    Index(usize),
}

impl Node {
    /// Convert a parsed YAML value. Errors name the path, never a value.
    pub(crate) fn from_value(v: Value, path: &mut Vec<String>) -> Result<Node, String> {
        Ok(match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(b),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Node::Int(i)
                } else if n.is_f64() {
                    Node::Float(n.as_f64().unwrap_or_default())
                } else {
                    return Err(format!(
                        "the number at `{}` does not fit a 64-bit signed integer",
                        path.join(":")
                    ));
                }
            }
            Value::String(s) => Node::Str(s),
            Value::Sequence(items) => Node::Seq(
                items
                    .into_iter()
                    .map(|i| Node::from_value(i, path))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Mapping(m) => {
                let mut entries = Vec::with_capacity(m.len());
                for (k, v) in m {
                    let Value::String(k) = k else {
                        return Err(format!(
                            "a mapping key under `{}` is not a string; quote it",
                            path.join(":")
                        ));
                    };
                    path.push(k);
                    let child = Node::from_value(v, path)?;
                    let k = path.pop().expect("pushed above");
                    entries.push((k, child));
                }
                Node::Map(entries)
            }
            Value::Tagged(_) => {
                return Err(format!(
                    "the value at `{}` has a YAML tag (`!…`), which sops does not support",
                    path.join(":")
                ));
            }
        })
    }

    /// The bytes sops feeds to the MAC for this leaf.
    pub(crate) fn mac_bytes(&self) -> Vec<u8> {
        match self {
            Node::Str(s) => s.as_bytes().to_vec(),
            Node::Int(i) => i.to_string().into_bytes(),
            Node::Float(f) => format_float(*f).into_bytes(),
            // sops writes Python's spelling here (a legacy of the Python sops).
            Node::Bool(true) => b"True".to_vec(),
            Node::Bool(false) => b"False".to_vec(),
            Node::Null | Node::Map(_) | Node::Seq(_) => Vec::new(),
        }
    }
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`: shortest round-trip, no exponent.
/// Rust's `Display` for f64 has the same shape for finite numbers.
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{f}")
    }
}

/// A leaf visitor: (key path, full steps, leaf).
pub(crate) type Visit<'f, 'a, E> = dyn FnMut(&[&'a str], &[Step], &'a Node) -> Result<(), E> + 'f;
/// A leaf rewriter: (key path, full steps, leaf) -> new leaf.
pub(crate) type Rewrite<'f, E> = dyn FnMut(&[&str], &[Step], &Node) -> Result<Node, E> + 'f;

/// Visit every leaf in document order with its key path (sequence indices are
/// not part of sops's key path, but are part of `steps`).
pub(crate) fn walk_leaves<'a, E>(
    entries: &'a [(String, Node)],
    f: &mut Visit<'_, 'a, E>,
) -> Result<(), E> {
    fn go<'a, E>(
        node: &'a Node,
        keys: &mut Vec<&'a str>,
        steps: &mut Vec<Step>,
        f: &mut Visit<'_, 'a, E>,
    ) -> Result<(), E> {
        match node {
            Node::Map(entries) => {
                for (k, v) in entries {
                    keys.push(k);
                    steps.push(Step::Key(k.clone()));
                    go(v, keys, steps, f)?;
                    steps.pop();
                    keys.pop();
                }
                Ok(())
            }
            Node::Seq(items) => {
                for (i, v) in items.iter().enumerate() {
                    steps.push(Step::Index(i));
                    go(v, keys, steps, f)?;
                    steps.pop();
                }
                Ok(())
            }
            leaf => f(keys, steps, leaf),
        }
    }
    let mut keys = Vec::new();
    let mut steps = Vec::new();
    for (k, v) in entries {
        keys.push(k.as_str());
        steps.push(Step::Key(k.clone()));
        go(v, &mut keys, &mut steps, f)?;
        steps.pop();
        keys.pop();
    }
    Ok(())
}

/// Rebuild a tree, replacing each leaf with `f(keys, steps, leaf)`.
pub(crate) fn map_leaves<E>(
    entries: &[(String, Node)],
    f: &mut Rewrite<'_, E>,
) -> Result<Vec<(String, Node)>, E> {
    fn go<'a, E>(
        node: &'a Node,
        keys: &mut Vec<&'a str>,
        steps: &mut Vec<Step>,
        f: &mut Rewrite<'_, E>,
    ) -> Result<Node, E> {
        match node {
            Node::Map(entries) => {
                let mut out = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    keys.push(k);
                    steps.push(Step::Key(k.clone()));
                    out.push((k.clone(), go(v, keys, steps, f)?));
                    steps.pop();
                    keys.pop();
                }
                Ok(Node::Map(out))
            }
            Node::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, v) in items.iter().enumerate() {
                    steps.push(Step::Index(i));
                    out.push(go(v, keys, steps, f)?);
                    steps.pop();
                }
                Ok(Node::Seq(out))
            }
            leaf => f(keys, steps, leaf),
        }
    }
    let root = Node::Map(entries.to_vec());
    match go(&root, &mut Vec::new(), &mut Vec::new(), f)? {
        Node::Map(out) => Ok(out),
        _ => unreachable!("a mapping maps to a mapping"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Vec<(String, Node)> {
        match Node::from_value(serde_norway::from_str(s).unwrap(), &mut Vec::new()).unwrap() {
            Node::Map(m) => m,
            _ => panic!("not a map"),
        }
    }

    #[test]
    fn leaves_come_in_document_order_with_key_paths() {
        let doc = parse("b: 1\na:\n  z: x\n  l: [p, {q: r}]\n");
        let mut seen = Vec::new();
        walk_leaves::<()>(&doc, &mut |keys, steps, _| {
            seen.push((keys.join(":"), steps.len()));
            Ok(())
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                ("b".into(), 1),
                ("a:z".into(), 2),
                ("a:l".into(), 3),
                ("a:l:q".into(), 4)
            ]
        );
    }

    #[test]
    fn mac_bytes_follow_sops_spelling() {
        assert_eq!(Node::Bool(true).mac_bytes(), b"True");
        assert_eq!(Node::Bool(false).mac_bytes(), b"False");
        assert_eq!(Node::Int(-7).mac_bytes(), b"-7");
        assert_eq!(Node::Float(1.5).mac_bytes(), b"1.5");
        assert_eq!(Node::Float(2.0).mac_bytes(), b"2");
        assert_eq!(Node::Float(1e21).mac_bytes(), b"1000000000000000000000");
        assert_eq!(Node::Null.mac_bytes(), b"");
    }

    #[test]
    fn tags_and_non_string_keys_are_rejected_by_path() {
        let v: Value = serde_norway::from_str("a:\n  b: !x 1\n").unwrap();
        let err = Node::from_value(v, &mut Vec::new()).err().unwrap();
        assert!(err.contains("`a:b`"), "{err}");
        let v: Value = serde_norway::from_str("a:\n  1: x\n").unwrap();
        assert!(Node::from_value(v, &mut Vec::new()).is_err());
    }

    #[test]
    fn map_leaves_keeps_shape() {
        let doc = parse("a: [1, 2]\nb: {c: d}\n");
        let out = map_leaves::<()>(&doc, &mut |_, _, l| {
            Ok(match l {
                Node::Int(i) => Node::Int(i * 10),
                other => other.clone(),
            })
        })
        .unwrap();
        assert!(out == parse("a: [10, 20]\nb: {c: d}\n"));
    }
}
