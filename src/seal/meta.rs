//! The `sops:` block: recipients with their wrapped data keys, `lastmodified`,
//! the encrypted MAC, which leaves are encrypted, and the version.

use std::sync::LazyLock;

use regex::Regex;

use super::tree::Node;
use super::{Recipient, SealError};

/// The regex quayside seals with: only a Secret's payload is encrypted.
pub const ENCRYPTED_REGEX: &str = "^(data|stringData)$";
/// The sops version written into new files (sops refuses files without one).
pub const SOPS_VERSION: &str = "3.11.0";

/// Compiled once: compiling a regex costs more than sealing a Secret.
static OURS: LazyLock<Regex> = LazyLock::new(|| Regex::new(ENCRYPTED_REGEX).expect("valid regex"));

/// One age stanza: a recipient and the data key armored for it.
#[derive(Clone)]
pub(crate) struct AgeStanza {
    /// As written; may fail to parse as a recipient (then it never matches).
    pub recipient: String,
    pub enc: String,
}

/// Which leaves sops encrypts, from the file's metadata.
pub(crate) enum Rule {
    EncryptedRegex(Regex),
    UnencryptedRegex(Regex),
    EncryptedSuffix(String),
    UnencryptedSuffix(String),
}

impl Rule {
    /// sops's rule: a leaf is decided by any key on its path.
    pub(crate) fn encrypts(&self, keys: &[&str]) -> bool {
        match self {
            Rule::EncryptedRegex(r) => keys.iter().any(|k| r.is_match(k)),
            Rule::UnencryptedRegex(r) => !keys.iter().any(|k| r.is_match(k)),
            Rule::EncryptedSuffix(s) => keys.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedSuffix(s) => !keys.iter().any(|k| k.ends_with(s.as_str())),
        }
    }

    pub(crate) fn ours() -> Rule {
        Rule::EncryptedRegex(OURS.clone())
    }

    pub(crate) fn is_ours(&self) -> bool {
        matches!(self, Rule::EncryptedRegex(r) if r.as_str() == ENCRYPTED_REGEX)
    }
}

/// The parsed `sops:` block.
pub(crate) struct Meta {
    pub age: Vec<AgeStanza>,
    pub lastmodified: String,
    pub mac: String,
    pub rule: Rule,
    pub mac_only_encrypted: bool,
}

/// Other key services sops knows; tolerated (we only use age) but not kept.
const OTHER_KEY_SERVICES: &[&str] = &["kms", "gcp_kms", "azure_kv", "hc_vault", "pgp"];

fn not_sealed(reason: impl Into<String>) -> SealError {
    SealError::NotSealed {
        reason: reason.into(),
    }
}

fn text(v: &Node, what: &str) -> Result<String, SealError> {
    match v {
        Node::Str(s) => Ok(s.clone()),
        _ => Err(not_sealed(format!("`sops.{what}` is not a string"))),
    }
}

fn regex(v: &Node, what: &str) -> Result<Regex, SealError> {
    let s = text(v, what)?;
    if s == ENCRYPTED_REGEX {
        return Ok(OURS.clone());
    }
    Regex::new(&s)
        .map_err(|_| not_sealed(format!("`sops.{what}` is not a valid regular expression")))
}

impl Meta {
    pub(crate) fn parse(node: &Node) -> Result<Meta, SealError> {
        let Node::Map(entries) = node else {
            return Err(not_sealed("the `sops:` block is not a mapping"));
        };
        let mut age = Vec::new();
        let (mut lastmodified, mut mac, mut version) = (None, None, None);
        let mut rules = Vec::new();
        let mut mac_only_encrypted = false;
        for (k, v) in entries {
            match k.as_str() {
                "age" => age = parse_age(v)?,
                "lastmodified" => lastmodified = Some(text(v, k)?),
                "mac" => mac = Some(text(v, k)?),
                "version" => {
                    version = match v {
                        Node::Str(s) if !s.is_empty() => Some(()),
                        Node::Int(_) | Node::Float(_) => Some(()),
                        _ => return Err(not_sealed("`sops.version` is empty or not a version")),
                    }
                }
                "encrypted_regex" => rules.push(Rule::EncryptedRegex(regex(v, k)?)),
                "unencrypted_regex" => rules.push(Rule::UnencryptedRegex(regex(v, k)?)),
                "encrypted_suffix" => rules.push(Rule::EncryptedSuffix(text(v, k)?)),
                "unencrypted_suffix" => rules.push(Rule::UnencryptedSuffix(text(v, k)?)),
                "mac_only_encrypted" => {
                    mac_only_encrypted = match v {
                        Node::Bool(b) => *b,
                        Node::Null => false,
                        _ => return Err(not_sealed("`sops.mac_only_encrypted` is not a boolean")),
                    }
                }
                k if OTHER_KEY_SERVICES.contains(&k) => {}
                other => {
                    return Err(SealError::UnknownSopsKey {
                        key: other.chars().take(64).collect(),
                    });
                }
            }
        }
        if rules.len() > 1 {
            return Err(not_sealed(
                "more than one of encrypted_regex/unencrypted_regex/encrypted_suffix/unencrypted_suffix is set",
            ));
        }
        let rule = rules
            .pop()
            .unwrap_or_else(|| Rule::UnencryptedSuffix("_unencrypted".into()));
        if version.is_none() {
            return Err(not_sealed("`sops.version` is missing"));
        }
        Ok(Meta {
            age,
            lastmodified: lastmodified
                .ok_or_else(|| not_sealed("`sops.lastmodified` is missing"))?,
            mac: mac.ok_or_else(|| not_sealed("`sops.mac` is missing"))?,
            rule,
            mac_only_encrypted,
        })
    }

    /// The recipients that parse, in file order.
    pub(crate) fn recipients(&self) -> Vec<Recipient> {
        self.age
            .iter()
            .filter_map(|s| s.recipient.parse().ok())
            .collect()
    }
}

fn parse_age(v: &Node) -> Result<Vec<AgeStanza>, SealError> {
    let items = match v {
        Node::Seq(items) => items,
        Node::Null => return Ok(Vec::new()),
        _ => return Err(not_sealed("`sops.age` is not a list")),
    };
    items
        .iter()
        .map(|item| {
            let Node::Map(fields) = item else {
                return Err(not_sealed("an entry of `sops.age` is not a mapping"));
            };
            let (mut recipient, mut enc) = (None, None);
            for (k, v) in fields {
                match k.as_str() {
                    "recipient" => recipient = Some(text(v, "age[].recipient")?),
                    "enc" => enc = Some(text(v, "age[].enc")?),
                    other => {
                        return Err(SealError::UnknownSopsKey {
                            key: format!("age[].{}", other.chars().take(64).collect::<String>()),
                        });
                    }
                }
            }
            Ok(AgeStanza {
                recipient: recipient
                    .ok_or_else(|| not_sealed("an age entry has no `recipient`"))?,
                enc: enc.ok_or_else(|| not_sealed("an age entry has no `enc`"))?,
            })
        })
        .collect()
}

/// The `sops:` block quayside writes, keys in the order sops 3.11 writes them.
pub(crate) fn render(age: &[AgeStanza], lastmodified: &str, mac: &str) -> Node {
    Node::Map(vec![
        (
            "age".into(),
            Node::Seq(
                age.iter()
                    .map(|s| {
                        Node::Map(vec![
                            ("recipient".into(), Node::Str(s.recipient.clone())),
                            ("enc".into(), Node::Str(s.enc.clone())),
                        ])
                    })
                    .collect(),
            ),
        ),
        ("lastmodified".into(), Node::Str(lastmodified.into())),
        ("mac".into(), Node::Str(mac.into())),
        ("encrypted_regex".into(), Node::Str(ENCRYPTED_REGEX.into())),
        ("version".into(), Node::Str(SOPS_VERSION.into())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(s: &str) -> Node {
        Node::from_value(serde_norway::from_str(s).unwrap(), &mut Vec::new())
            .ok()
            .unwrap()
    }

    #[test]
    fn rules_decide_by_any_key_on_the_path() {
        let r = Rule::ours();
        assert!(r.encrypts(&["data", "x"]));
        assert!(r.encrypts(&["metadata", "annotations", "data"]));
        assert!(!r.encrypts(&["metadata", "name"]));
        assert!(!r.encrypts(&["database"]));
        let u = Rule::UnencryptedSuffix("_unencrypted".into());
        assert!(u.encrypts(&["a", "b"]));
        assert!(!u.encrypts(&["a_unencrypted", "b"]));
    }

    #[test]
    fn unknown_keys_and_missing_fields_are_typed_errors() {
        let ok = "age: []\nlastmodified: x\nmac: y\nversion: 3.11.0\n";
        assert!(Meta::parse(&node(ok)).is_ok());
        let e = Meta::parse(&node(&format!("{ok}shamir_threshold: 2\n")))
            .err()
            .unwrap();
        assert!(matches!(e, SealError::UnknownSopsKey { ref key } if key == "shamir_threshold"));
        let e = Meta::parse(&node(
            "age: [{recipient: a, enc: b, x: 1}]\nlastmodified: x\nmac: y\nversion: 1\n",
        ))
        .err()
        .unwrap();
        assert!(matches!(e, SealError::UnknownSopsKey { ref key } if key == "age[].x"));
        let e = Meta::parse(&node("age: []\nlastmodified: x\nmac: y\n"))
            .err()
            .unwrap();
        assert!(matches!(e, SealError::NotSealed { .. }));
        let e = Meta::parse(&node("age: []\nmac: y\nversion: 1\n"))
            .err()
            .unwrap();
        assert!(matches!(e, SealError::NotSealed { .. }));
        // Empty lists of other key services, as older sops wrote them, are fine.
        assert!(
            Meta::parse(&node(&format!(
                "{ok}kms: []\npgp: []\nunencrypted_suffix: _unencrypted\n"
            )))
            .is_ok()
        );
    }
}
