//! A YAML writer in the layout the `sops` binary writes (go-yaml v3, 4-space
//! indent, indented sequences, literal blocks for multi-line text), so files
//! we seal look like files sops sealed and diff the same way.

use std::sync::LazyLock;

use regex::Regex;

use super::tree::{Node, format_float};

/// Write a top-level mapping as a YAML document.
pub(crate) fn document(entries: &[(String, Node)]) -> String {
    let mut out = String::with_capacity(256 * entries.len().max(1));
    map(&mut out, entries, 0, 4);
    out
}

/// Mapping entries with keys at `key_col` and nested content at `child_col`
/// (they differ from the usual 4 only for a mapping that starts a sequence item).
fn map(out: &mut String, entries: &[(String, Node)], key_col: usize, child_col: usize) {
    for (i, (k, v)) in entries.iter().enumerate() {
        // The first key of a sequence item follows its "- " on the same line.
        if i > 0 || !out.ends_with("- ") {
            pad(out, key_col);
        }
        out.push_str(&scalar_text(k));
        out.push(':');
        value(out, v, child_col);
    }
}

/// The part after `key:` or `-`: inline scalar, or nested block at `col`.
fn value(out: &mut String, v: &Node, col: usize) {
    match v {
        Node::Map(entries) if !entries.is_empty() => {
            out.push('\n');
            map(out, entries, col, col + 4);
        }
        Node::Seq(items) if !items.is_empty() => {
            out.push('\n');
            seq(out, items, col);
        }
        Node::Str(s) if literal_ok(s) => literal(out, s, col),
        leaf => {
            out.push(' ');
            out.push_str(&leaf_text(leaf));
            out.push('\n');
        }
    }
}

/// Sequence items with their dashes at `dash_col`.
fn seq(out: &mut String, items: &[Node], dash_col: usize) {
    for item in items {
        if !out.ends_with("- ") {
            pad(out, dash_col);
        }
        out.push('-');
        match item {
            Node::Map(entries) if !entries.is_empty() => {
                out.push(' ');
                map(out, entries, dash_col + 2, dash_col + 4);
            }
            Node::Seq(inner) if !inner.is_empty() => {
                out.push(' ');
                seq(out, inner, dash_col + 2);
            }
            Node::Str(s) if literal_ok(s) => literal(out, s, dash_col + 2),
            leaf => {
                out.push(' ');
                out.push_str(&leaf_text(leaf));
                out.push('\n');
            }
        }
    }
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn leaf_text(v: &Node) -> String {
    match v {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Int(i) => i.to_string(),
        Node::Float(f) if f.is_nan() => ".nan".into(),
        Node::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.into(),
        Node::Float(f) => {
            let s = format_float(*f);
            // Keep it a float when read back.
            if s.contains('.') { s } else { format!("{s}.0") }
        }
        Node::Str(s) => scalar_text(s),
        Node::Map(_) => "{}".into(),
        Node::Seq(_) => "[]".into(),
    }
}

/// A literal block (`|`, `|-`, `|+`) for multi-line text, when it reads back
/// unchanged (go-yaml's rules: no leading space or break, no space before a
/// break or at the end, only printable characters).
fn literal_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && !s.ends_with(' ')
        && !s.contains(" \n")
        && s.chars().all(|c| c == '\n' || c == '\t' || printable(c))
}

fn literal(out: &mut String, s: &str, col: usize) {
    let body = s.trim_end_matches('\n');
    out.push_str(match s.len() - body.len() {
        0 => " |-\n",
        1 => " |\n",
        _ => " |+\n",
    });
    for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
        if !line.is_empty() {
            pad(out, col);
            out.push_str(line);
        }
        out.push('\n');
    }
}

/// A string as a one-line YAML scalar: plain when it reads back as the same
/// string, else single-quoted, else double-quoted with escapes.
pub(crate) fn scalar_text(s: &str) -> String {
    // go-yaml double-quotes what would read back as another type, and
    // single-quotes what is merely awkward; we follow it so diffs match sops.
    if s.is_empty() || NOT_A_STRING.is_match(s) {
        double_quoted(s)
    } else if plain_ok(s) {
        s.to_string()
    } else if s.chars().all(printable) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        double_quoted(s)
    }
}

/// go-yaml's printable set (so we quote what it quotes), less the Unicode
/// line and paragraph separators, which YAML 1.1 readers take as line breaks.
fn printable(c: char) -> bool {
    matches!(c as u32, 0x20..=0x7E | 0xA0..=0xD7FF | 0xE000..=0xFFFD)
        && !matches!(c, '\u{FEFF}' | '\u{2028}' | '\u{2029}')
}

/// A double-quoted scalar with go-yaml's escapes.
fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        let short = match c {
            '\0' => Some('0'),
            '\u{7}' => Some('a'),
            '\u{8}' => Some('b'),
            '\t' => Some('t'),
            '\n' => Some('n'),
            '\u{B}' => Some('v'),
            '\u{C}' => Some('f'),
            '\r' => Some('r'),
            '\u{1B}' => Some('e'),
            '"' => Some('"'),
            '\\' => Some('\\'),
            '\u{85}' => Some('N'),
            '\u{2028}' => Some('L'),
            '\u{2029}' => Some('P'),
            _ => None,
        };
        match short {
            Some(e) => {
                out.push('\\');
                out.push(e);
            }
            None if printable(c) => out.push(c),
            None => {
                let n = c as u32;
                let esc = if n <= 0xFF {
                    format!("\\x{n:02X}")
                } else if n <= 0xFFFF {
                    format!("\\u{n:04X}")
                } else {
                    format!("\\U{n:08X}")
                };
                out.push_str(&esc);
            }
        }
    }
    out.push('"');
    out
}

/// Strings a YAML 1.1 or 1.2 reader would take for something else
/// (null, bool, number, timestamp, merge key): they must be quoted.
static NOT_A_STRING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?:~|null|Null|NULL|y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE",
        r"|on|On|ON|off|Off|OFF|<<|=",
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
        r"|[-+]?(?:0b[01_]+|0o?[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*(?::[0-5]?[0-9])*(?:\.[0-9_]*)?)",
        r"|[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?",
        r"|[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+",
        r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*",
        r")$"
    ))
    .expect("valid regex")
});

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) || first == ' ' {
        return false;
    }
    if s.ends_with([' ', ':']) || s.contains(": ") || s.contains(" #") {
        return false;
    }
    if !s.chars().all(printable) {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads_back(s: &str) {
        let doc = vec![(s.to_string(), Node::Str(s.to_string()))];
        let text = document(&doc);
        let v: serde_norway::Value =
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{s:?}: {e}\n{text}"));
        let m = v.as_mapping().unwrap();
        let (k, v) = m.iter().next().unwrap();
        assert_eq!(k.as_str(), Some(s), "key {s:?} -> {text}");
        assert_eq!(v.as_str(), Some(s), "value {s:?} -> {text}");
    }

    #[test]
    fn every_kind_of_string_reads_back_as_itself() {
        for s in [
            "plain",
            "n",
            "yes",
            "on",
            "~",
            "null",
            "true",
            "5",
            "-3",
            "1.5",
            "3.11.0",
            "1e3",
            ".5",
            "0x1f",
            "0o17",
            "1:20",
            "2006-01-02T15:04:05Z",
            ".inf",
            ".nan",
            "<<",
            "=",
            "",
            " lead",
            "trail ",
            "a: b",
            "a #b",
            "#c",
            "-",
            "- x",
            "-x",
            "?",
            ":",
            "a:",
            "{\"auths\":{}}",
            "[x]",
            "it's",
            "\"q\"",
            "tab\there",
            "nl\nin",
            "two\nlines\n",
            "x\n\n",
            "\nlead",
            "ctl\u{1}",
            "bom\u{FEFF}",
            "ünï",
            "ENC[AES256_GCM,data:x+/=,iv:y,tag:z,type:str]",
            "^(data|stringData)$",
            "a\\b",
            "a\r\nb",
            "line one\n  indented\nthree",
            "end space \nx",
            "%x",
            "@x",
            "`x",
            "!x",
            "&x",
            "*x",
            "|x",
            ">x",
            ",x",
        ] {
            reads_back(s);
        }
    }

    #[test]
    fn layout_matches_go_yaml_as_sops_writes_it() {
        let doc = vec![
            (
                "metadata".into(),
                Node::Map(vec![("name".into(), Node::Str("x".into()))]),
            ),
            (
                "sops".into(),
                Node::Map(vec![
                    (
                        "age".into(),
                        Node::Seq(vec![Node::Map(vec![
                            ("recipient".into(), Node::Str("age1abc".into())),
                            (
                                "enc".into(),
                                Node::Str("-----BEGIN\nAAA\n-----END\n".into()),
                            ),
                        ])]),
                    ),
                    (
                        "lastmodified".into(),
                        Node::Str("2026-01-02T03:04:05Z".into()),
                    ),
                    (
                        "list".into(),
                        Node::Seq(vec![
                            Node::Seq(vec![Node::Int(1), Node::Bool(true)]),
                            Node::Map(vec![]),
                            Node::Float(2.0),
                        ]),
                    ),
                ]),
            ),
        ];
        assert_eq!(
            document(&doc),
            "metadata:\n    name: x\nsops:\n    age:\n        - recipient: age1abc\n          enc: |\n            -----BEGIN\n            AAA\n            -----END\n    lastmodified: \"2026-01-02T03:04:05Z\"\n    list:\n        - - 1\n          - true\n        - {}\n        - 2.0\n"
        );
    }
}
