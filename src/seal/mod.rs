//! Sealing: the SOPS v3 file format with age recipients, written and read.
//!
//! Pure: no I/O, no clock (`now` is passed in). A sealed file is a Kubernetes
//! Secret manifest whose `data`/`stringData` leaves are AES-256-GCM encrypted
//! under a random data key, that key age-encrypted to each recipient, exactly
//! as the `sops` binary writes it, so the ecosystem's decryptors read it.

mod cipher;
mod emit;
mod error;
mod keys;
mod meta;
pub mod scan;
mod tree;

pub use error::SealError;
pub use keys::{Identity, Recipient};

use std::collections::HashMap;

use k8s_openapi::jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha512};

use cipher::{CipherError, DataKey};
use meta::{AgeStanza, Meta, Rule};
use tree::{Node, Step};

pub use meta::{ENCRYPTED_REGEX, SOPS_VERSION};

/// What can be learned from a sealed file without a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedInfo {
    /// The age recipients the data key is wrapped for, in file order.
    pub recipients: Vec<Recipient>,
    /// `sops.lastmodified` as written.
    pub lastmodified: String,
    /// Paths (`stringData:.dockerconfigjson`) of the leaves that are `ENC[...]`.
    pub encrypted: Vec<String>,
    /// Paths of `data`/`stringData` leaves left in plaintext (should be empty).
    pub unsealed: Vec<String>,
}

impl SealedInfo {
    /// `lastmodified` as a timestamp, when it parses.
    pub fn lastmodified_at(&self) -> Option<Timestamp> {
        self.lastmodified.parse().ok()
    }

    /// True when every `data`/`stringData` leaf is encrypted.
    pub fn all_sealed(&self) -> bool {
        self.unsealed.is_empty()
    }
}

/// Seal a Secret manifest for `recipients`.
///
/// With `previous` (a file sealed earlier) and an `identity` that opens it,
/// the result is a minimal diff against it (see `docs/sealing.md`):
/// - same plaintext, same recipients: `previous`, byte for byte;
/// - changed values: same data key, unchanged values keep their ciphertext,
///   new `lastmodified` and `mac`;
/// - recipients added: the data key is wrapped for them, everything else kept;
/// - a recipient removed, or `previous` unreadable: sealed afresh (new data key),
///   so a removed recipient's copy of the old key opens nothing new.
pub fn seal(
    plaintext_yaml: &SecretString,
    recipients: &[Recipient],
    previous: Option<&str>,
    identity: Option<&Identity>,
    now: Timestamp,
) -> Result<String, SealError> {
    SealBatch::default().seal(plaintext_yaml, recipients, previous, identity, now)
}

/// Seals several files for the same recipients, as one Environment's folder
/// is sealed in a pass: the files sealed afresh share one new data key and
/// its age stanzas, so the key is wrapped once per recipient per batch
/// instead of once per file (the X25519 work is most of a fresh seal).
///
/// Sharing changes nobody's access: every file of the batch is readable by
/// exactly the same recipients, and each value still has its own random IV
/// and its own AAD (its key path). Files re-sealed from a previous version
/// keep their own data key, as [`seal`] describes.
#[derive(Default)]
pub struct SealBatch {
    fresh: Option<FreshKey>,
}

/// A data key made for one batch, with its stanzas for `recipients`.
struct FreshKey {
    recipients: Vec<Recipient>,
    key: DataKey,
    stanzas: Vec<AgeStanza>,
}

impl SealBatch {
    /// [`seal`], sharing the batch's fresh data key when `previous` cannot be
    /// reused.
    pub fn seal(
        &mut self,
        plaintext_yaml: &SecretString,
        recipients: &[Recipient],
        previous: Option<&str>,
        identity: Option<&Identity>,
        now: Timestamp,
    ) -> Result<String, SealError> {
        let doc = parse_doc(plaintext_yaml.expose_secret(), "the Secret manifest")?;
        if doc.iter().any(|(k, _)| k == "sops") {
            return Err(SealError::Yaml {
                reason:
                    "the manifest already has a `sops:` block; seal the plaintext manifest instead"
                        .into(),
            });
        }
        let mut recipients = recipients.to_vec();
        recipients.sort();
        recipients.dedup();
        if recipients.is_empty() {
            return Err(SealError::NoRecipients);
        }

        let prev = match (previous, identity) {
            (Some(p), Some(id)) => open_full(p, id).ok().filter(|o| {
                o.meta.rule.is_ours()
                    && !o.meta.mac_only_encrypted
                    && o.meta.age.iter().all(|s| {
                        s.recipient
                            .parse::<Recipient>()
                            .is_ok_and(|r| recipients.contains(&r))
                    })
            }),
            _ => None,
        };

        let (key, stanzas): (&DataKey, Vec<AgeStanza>) = match &prev {
            // The same recipients as a set (`sops` writes them in the
            // order of its .sops.yaml): the previous stanzas as they are.
            Some(o) if o.meta.age.len() == recipients.len() => (&o.key, o.meta.age.clone()),
            Some(o) => {
                let stanzas = recipients
                    .iter()
                    .map(|r| match o.stanza_for(r) {
                        Some(s) => Ok(s.clone()),
                        None => wrap(&o.key, r),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (&o.key, stanzas)
            }
            None => {
                let fresh = self.fresh_for(&recipients)?;
                (&fresh.key, fresh.stanzas.clone())
            }
        };
        seal_doc(&doc, key, &stanzas, prev.as_ref(), previous, now)
    }

    fn fresh_for(&mut self, recipients: &[Recipient]) -> Result<&FreshKey, SealError> {
        if self
            .fresh
            .as_ref()
            .is_none_or(|f| f.recipients != recipients)
        {
            let key = DataKey::generate();
            let stanzas = recipients
                .iter()
                .map(|r| wrap(&key, r))
                .collect::<Result<Vec<_>, _>>()?;
            self.fresh = Some(FreshKey {
                recipients: recipients.to_vec(),
                key,
                stanzas,
            });
        }
        Ok(self.fresh.as_ref().expect("set above"))
    }
}

/// Encrypt `doc`'s values under `key`, reusing `prev`'s ciphertext for
/// unchanged values, and return `previous` itself when nothing differs.
fn seal_doc(
    doc: &[(String, Node)],
    key: &DataKey,
    stanzas: &[AgeStanza],
    prev: Option<&Opened>,
    previous: Option<&str>,
    now: Timestamp,
) -> Result<String, SealError> {
    let rule = Rule::ours();
    let sealed = tree::map_leaves::<SealError>(doc, &mut |keys, steps, leaf| {
        if !rule.encrypts(keys) || is_blank(leaf) {
            return Ok(leaf.clone());
        }
        if let Some((enc, old)) = prev.and_then(|o| o.enc_at.get(steps))
            && old == leaf
        {
            return Ok(Node::Str(enc.clone()));
        }
        let (bytes, kind) = leaf_plaintext(leaf);
        Ok(Node::Str(cipher::encrypt(
            key,
            &bytes,
            aad(keys).as_bytes(),
            kind,
        )))
    })?;

    if let (Some(o), Some(previous)) = (prev, previous) {
        let same = render(&sealed, stanzas, &o.meta.lastmodified, &o.meta.mac);
        if same == previous {
            return Ok(same);
        }
    }
    let lastmodified = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mac = cipher::encrypt(
        key,
        compute_mac(doc, &rule, false).as_bytes(),
        lastmodified.as_bytes(),
        "str",
    );
    Ok(render(&sealed, stanzas, &lastmodified, &mac))
}

/// Open a sealed file: the plaintext Secret manifest, MAC verified.
pub fn open(sealed: &str, identity: &Identity) -> Result<SecretString, SealError> {
    let o = open_full(sealed, identity)?;
    Ok(SecretString::from(emit::document(&o.plain)))
}

/// Read a sealed file's metadata without a key.
pub fn inspect(sealed: &str) -> Result<SealedInfo, SealError> {
    let (doc, meta) = split(sealed)?;
    let mut info = SealedInfo {
        recipients: meta.recipients(),
        lastmodified: meta.lastmodified.clone(),
        encrypted: Vec::new(),
        unsealed: Vec::new(),
    };
    tree::walk_leaves::<()>(&doc, &mut |keys, steps, leaf| {
        let payload = matches!(keys.first(), Some(&"data" | &"stringData"));
        match leaf {
            Node::Str(s) if cipher::is_enc(s) => info.encrypted.push(display_path(steps)),
            leaf if (payload || meta.rule.encrypts(keys)) && !is_blank(leaf) => {
                info.unsealed.push(display_path(steps))
            }
            _ => {}
        }
        Ok(())
    })
    .ok();
    Ok(info)
}

/// A sealed file opened with a key: everything a minimal re-seal can reuse.
struct Opened {
    plain: Vec<(String, Node)>,
    key: DataKey,
    meta: Meta,
    /// Per leaf position: its `ENC[...]` text and the plaintext it holds.
    enc_at: HashMap<Vec<Step>, (String, Node)>,
}

impl Opened {
    fn stanza_for(&self, r: &Recipient) -> Option<&AgeStanza> {
        self.meta
            .age
            .iter()
            .find(|s| s.recipient.parse::<Recipient>().is_ok_and(|x| &x == r))
    }
}

fn open_full(sealed: &str, identity: &Identity) -> Result<Opened, SealError> {
    let (doc, meta) = split(sealed)?;
    let key = unwrap_key(&meta, identity)?;
    let mut enc_at = HashMap::new();
    let plain = tree::map_leaves::<SealError>(&doc, &mut |keys, steps, leaf| {
        if !meta.rule.encrypts(keys) || is_blank(leaf) {
            return Ok(leaf.clone());
        }
        let path = display_path(steps);
        let Node::Str(enc) = leaf else {
            return Err(SealError::MalformedValue {
                path,
                reason: "expected an ENC[...] value, found a plaintext one".into(),
            });
        };
        let (bytes, kind) =
            cipher::decrypt(&key, enc, aad(keys).as_bytes()).map_err(|e| match e {
                CipherError::Auth => SealError::ValueTampered { path: path.clone() },
                CipherError::Malformed(reason) => SealError::MalformedValue {
                    path: path.clone(),
                    reason,
                },
            })?;
        let value = typed(bytes, &kind).ok_or_else(|| SealError::MalformedValue {
            path,
            reason: format!("the decrypted value does not fit its type `{kind}`"),
        })?;
        enc_at.insert(steps.to_vec(), (enc.clone(), value.clone()));
        Ok(value)
    })?;
    let want = compute_mac(&plain, &meta.rule, meta.mac_only_encrypted);
    let stored = cipher::decrypt(&key, &meta.mac, meta.lastmodified.as_bytes())
        .map_err(|_| SealError::MacMismatch)?
        .0;
    if !stored.eq_ignore_ascii_case(want.as_bytes()) {
        return Err(SealError::MacMismatch);
    }
    Ok(Opened {
        plain,
        key,
        meta,
        enc_at,
    })
}

/// Parse a sealed file into its document and its `sops:` block.
fn split(sealed: &str) -> Result<(Vec<(String, Node)>, Meta), SealError> {
    let mut doc = parse_doc(sealed, "the sealed file")?;
    let Some(at) = doc.iter().position(|(k, _)| k == "sops") else {
        return Err(SealError::NotSealed {
            reason: "there is no `sops:` block; seal it with `quayside render` or `sops --encrypt`"
                .into(),
        });
    };
    let (_, node) = doc.remove(at);
    Ok((doc, Meta::parse(&node)?))
}

/// Parse YAML into a top-level mapping. Errors carry a location, never text
/// from the document (it may be a plaintext Secret).
fn parse_doc(text: &str, what: &str) -> Result<Vec<(String, Node)>, SealError> {
    let value: serde_norway::Value = serde_norway::from_str(text).map_err(|e| SealError::Yaml {
        reason: match e.location() {
            Some(l) => format!(
                "{what} is not valid YAML (line {}, column {})",
                l.line(),
                l.column()
            ),
            None => format!("{what} is not a single valid YAML document"),
        },
    })?;
    match Node::from_value(value, &mut Vec::new()) {
        Ok(Node::Map(entries)) => Ok(entries),
        Ok(_) => Err(SealError::Yaml {
            reason: format!("{what} is not a YAML mapping"),
        }),
        Err(reason) => Err(SealError::Yaml {
            reason: format!("{what}: {reason}"),
        }),
    }
}

/// The data key, from the first age stanza the identity opens.
fn unwrap_key(meta: &Meta, identity: &Identity) -> Result<DataKey, SealError> {
    let me = identity.to_recipient().to_string();
    let mut stanzas: Vec<&AgeStanza> = meta.age.iter().collect();
    // Ours first: a damaged stanza for our own recipient is the error to report.
    stanzas.sort_by_key(|s| s.recipient.trim() != me);
    let mut damaged = None;
    for s in stanzas {
        match age::decrypt(identity.as_age(), s.enc.as_bytes()) {
            Ok(bytes) => {
                return DataKey::from_bytes(&bytes).ok_or_else(|| SealError::Armor {
                    recipient: s.recipient.clone(),
                    reason: format!("the data key is {} bytes, expected 32", bytes.len()),
                });
            }
            Err(age::DecryptError::NoMatchingKeys) => {}
            Err(e) => {
                if s.recipient.trim() == me && damaged.is_none() {
                    damaged = Some(SealError::Armor {
                        recipient: s.recipient.clone(),
                        reason: e.to_string(),
                    });
                }
            }
        }
    }
    Err(damaged.unwrap_or_else(|| SealError::NoMatchingIdentity {
        recipients: meta
            .age
            .iter()
            .map(|s| s.recipient.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    }))
}

/// Wrap the data key for one recipient, armored, as sops does.
fn wrap(key: &DataKey, r: &Recipient) -> Result<AgeStanza, SealError> {
    let enc = age::encrypt_and_armor(&r.to_age(), key.bytes()).map_err(|e| SealError::Armor {
        recipient: r.to_string(),
        reason: e.to_string(),
    })?;
    Ok(AgeStanza {
        recipient: r.to_string(),
        enc,
    })
}

/// sops seeds a MAC over encrypted values only with these 32 bytes, so it
/// never equals the MAC over all values (checked against sops 3.11's output
/// in `tests/seal_interop.rs`).
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// SHA-512 over the leaves in document order, as sops computes it.
fn compute_mac(doc: &[(String, Node)], rule: &Rule, only_encrypted: bool) -> String {
    let mut h = Sha512::new();
    if only_encrypted {
        h.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    tree::walk_leaves::<()>(doc, &mut |keys, _, leaf| {
        if !only_encrypted || rule.encrypts(keys) {
            h.update(leaf.mac_bytes());
        }
        Ok(())
    })
    .ok();
    hex::encode_upper(h.finalize())
}

fn render(doc: &[(String, Node)], stanzas: &[AgeStanza], lastmodified: &str, mac: &str) -> String {
    let mut all = doc.to_vec();
    all.push(("sops".into(), meta::render(stanzas, lastmodified, mac)));
    emit::document(&all)
}

/// sops leaves empty strings and nulls as they are: nothing to hide.
fn is_blank(leaf: &Node) -> bool {
    matches!(leaf, Node::Null) || matches!(leaf, Node::Str(s) if s.is_empty())
}

/// The additional data sops binds a value to: its key path, `:`-joined, plus `:`.
fn aad(keys: &[&str]) -> String {
    let mut s = keys.join(":");
    s.push(':');
    s
}

fn display_path(steps: &[Step]) -> String {
    let mut s = String::new();
    for step in steps {
        match step {
            Step::Key(k) => {
                if !s.is_empty() {
                    s.push(':');
                }
                s.push_str(k);
            }
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// The bytes and sops type name a leaf is encrypted as.
fn leaf_plaintext(leaf: &Node) -> (Vec<u8>, &'static str) {
    match leaf {
        Node::Int(i) => (i.to_string().into_bytes(), "int"),
        Node::Float(f) => (tree::format_float(*f).into_bytes(), "float"),
        // "True"/"False", as sops writes them.
        Node::Bool(_) => (leaf.mac_bytes(), "bool"),
        other => (other.mac_bytes(), "str"),
    }
}

/// A decrypted value back to its YAML type.
fn typed(bytes: Vec<u8>, kind: &str) -> Option<Node> {
    let s = String::from_utf8(bytes).ok()?;
    Some(match kind {
        "str" | "bytes" => Node::Str(s),
        "int" => Node::Int(s.parse().ok()?),
        "float" => Node::Float(s.parse().ok()?),
        // Go's strconv.ParseBool, which sops uses.
        "bool" => match s.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Node::Bool(true),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Node::Bool(false),
            _ => return None,
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(s: &str) -> Vec<(String, Node)> {
        parse_doc(s, "test").ok().unwrap()
    }

    #[test]
    fn mac_is_sha512_of_all_leaves_in_order_upper_hex() {
        let d = doc("a: x\ndata:\n  b: 5\n  n: null\n  e: \"\"\nc: [true, 1.5]\n");
        assert_eq!(
            compute_mac(&d, &Rule::ours(), false),
            "C45B2BD3B18CEE634187E9ED331990EA1027D254C47A8C0E0150897CE56D8FC939DE9F98F3D6BFC50FA012151B58D7D9BB797B8598BB9A40B77333809AF324DB"
        );
        // Only the encrypted leaf (data:b), after sops's seed.
        assert_eq!(
            compute_mac(&d, &Rule::ours(), true),
            "05AC5D08FFB3EA1A8E7AC1C9576AD7E1B8625D502FA6608A2B927F3894229CB0D92DBD7C0603CC407AB6353DD0B631F4338FACFAA29C9324A7698FC593086AF6"
        );
    }

    #[test]
    fn aad_and_paths() {
        assert_eq!(
            aad(&["stringData", ".dockerconfigjson"]),
            "stringData:.dockerconfigjson:"
        );
        let steps = [
            Step::Key("data".into()),
            Step::Key("l".into()),
            Step::Index(2),
        ];
        assert_eq!(display_path(&steps), "data:l[2]");
    }

    #[test]
    fn typed_values_round_trip_as_sops_types_them() {
        for leaf in [
            Node::Str("s".into()),
            Node::Int(-3),
            Node::Float(2.5),
            Node::Bool(true),
            Node::Bool(false),
        ] {
            let (bytes, kind) = leaf_plaintext(&leaf);
            assert!(typed(bytes, kind) == Some(leaf.clone()));
        }
        assert!(typed(b"true".to_vec(), "bool") == Some(Node::Bool(true)));
        assert!(typed(b"maybe".to_vec(), "bool").is_none());
        assert!(typed(b"x".to_vec(), "int").is_none());
        assert!(typed(b"x".to_vec(), "comment").is_none());
        assert!(typed(vec![0xff], "str").is_none());
    }

    #[test]
    fn timestamps_are_written_in_utc_seconds() {
        let id = Identity::generate();
        let now: Timestamp = "2026-03-04T05:06:07.899+02:00".parse().unwrap();
        let out = seal(
            &SecretString::from("data:\n  a: b\n"),
            &[id.to_recipient()],
            None,
            None,
            now,
        )
        .unwrap();
        assert!(
            out.contains("lastmodified: \"2026-03-04T03:06:07Z\""),
            "{out}"
        );
    }

    /// Each stanza as (recipient, armored key): what a shared key repeats.
    fn stanzas_of(sealed: &str) -> Vec<(String, String)> {
        split(sealed)
            .unwrap()
            .1
            .age
            .into_iter()
            .map(|s| (s.recipient, s.enc))
            .collect()
    }

    #[test]
    fn a_batch_wraps_one_data_key_for_its_fresh_files_and_each_opens() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let rs = [a.to_recipient(), b.to_recipient()];
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let mut batch = SealBatch::default();
        let one = SecretString::from("data:\n  x: one\n");
        let two = SecretString::from("data:\n  x: two\n");
        let s1 = batch.seal(&one, &rs, None, None, now).unwrap();
        let s2 = batch.seal(&two, &rs, None, None, now).unwrap();
        assert_eq!(stanzas_of(&s1), stanzas_of(&s2), "one wrap per recipient");
        for id in [&a, &b] {
            assert_eq!(
                open(&s1, id).unwrap().expose_secret(),
                "data:\n    x: one\n"
            );
            assert_eq!(
                open(&s2, id).unwrap().expose_secret(),
                "data:\n    x: two\n"
            );
        }
        // Same plaintext, same key: the random IV still makes the values differ.
        let s3 = batch.seal(&one, &rs, None, None, now).unwrap();
        assert_ne!(s1, s3);

        // Other recipients get their own key; standalone seals never share.
        let s4 = batch.seal(&one, &rs[..1], None, None, now).unwrap();
        assert_ne!(stanzas_of(&s4)[0], stanzas_of(&s1)[0]);
        let s5 = seal(&one, &rs, None, None, now).unwrap();
        assert_ne!(stanzas_of(&s5), stanzas_of(&s1));
    }

    #[test]
    fn a_batch_keeps_previous_files_on_their_own_key_byte_for_byte() {
        let a = Identity::generate();
        let rs = [a.to_recipient()];
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let later: Timestamp = "2026-02-02T03:04:05Z".parse().unwrap();
        let one = SecretString::from("data:\n  x: one\n");
        let before = seal(&one, &rs, None, None, now).unwrap();
        let mut batch = SealBatch::default();
        let fresh = batch
            .seal(
                &SecretString::from("data:\n  x: new\n"),
                &rs,
                None,
                None,
                later,
            )
            .unwrap();
        let again = batch
            .seal(&one, &rs, Some(&before), Some(&a), later)
            .unwrap();
        assert_eq!(again, before);
        assert_ne!(stanzas_of(&fresh), stanzas_of(&before));
    }

    #[test]
    fn the_same_recipients_in_another_order_are_not_rewritten() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let rs = [a.to_recipient(), b.to_recipient()];
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
        let later: Timestamp = "2026-02-02T03:04:05Z".parse().unwrap();
        let plain = SecretString::from("data:\n  x: one\n");
        let ours = seal(&plain, &rs, None, None, now).unwrap();
        // As `sops` writes it when .sops.yaml lists the keys the other way round.
        let opened = open_full(&ours, &a).unwrap();
        let mut stanzas = opened.meta.age.clone();
        stanzas.reverse();
        let theirs = seal_doc(
            &doc(plain.expose_secret()),
            &opened.key,
            &stanzas,
            None,
            None,
            now,
        )
        .unwrap();
        assert_ne!(stanzas_of(&theirs), stanzas_of(&ours), "order differs");
        let again = seal(
            &plain,
            &[rs[1].clone(), rs[0].clone()],
            Some(&theirs),
            Some(&a),
            later,
        )
        .unwrap();
        assert_eq!(
            again, theirs,
            "same recipients as a set: nothing to rewrite"
        );
    }
}
