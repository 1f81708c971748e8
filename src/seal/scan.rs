//! Finding plaintext where only sealed Secrets belong: `kind: Secret` YAML with
//! unencrypted payload, and the bytes of known secret values anywhere at all.
//! Pure; `quayside verify` feeds it files and git blobs.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_norway::Value;

use super::cipher;

/// Values shorter than this are not searched for: too likely to occur by
/// chance, and no credential quayside handles is that short.
pub const MIN_NEEDLE_LEN: usize = 12;

/// Keys whose values are identities, not secrets (they appear in reviews).
const NOT_SECRET_KEYS: &[&str] = &["username", "user", "email"];

/// In every `kind: Secret` document of `text`, the paths (`data:token`) of
/// `data`/`stringData` leaves that are not `ENC[...]` (empty values and nulls
/// hide nothing and are not reported). Text that is not YAML yields nothing.
pub fn plaintext_secret_leaves(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let Ok(v) = Value::deserialize(doc) else {
            // A YAML error ends the stream; what was read so far still counts.
            break;
        };
        if v.get("kind").and_then(Value::as_str) != Some("Secret") {
            continue;
        }
        for top in ["data", "stringData"] {
            if let Some(payload) = v.get(top) {
                collect_plain(payload, top.to_string(), &mut found);
            }
        }
    }
    found
}

fn collect_plain(v: &Value, path: String, out: &mut Vec<String>) {
    match v {
        Value::Mapping(m) => {
            for (k, child) in m {
                let key = match k {
                    Value::String(s) => s.clone(),
                    _ => "?".into(),
                };
                collect_plain(child, format!("{path}:{key}"), out);
            }
        }
        Value::Sequence(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_plain(child, format!("{path}[{i}]"), out);
            }
        }
        Value::Null => {}
        Value::String(s) if s.is_empty() || cipher::is_enc(s) => {}
        Value::Tagged(t) => collect_plain(&t.value, path, out),
        _ => out.push(path),
    }
}

/// Searches bytes for any secret value of a set of opened Secrets, in one pass.
/// `Debug` shows only how many values it holds.
pub struct LeakScanner {
    needles: usize,
    re: Option<regex::bytes::Regex>,
}

impl fmt::Debug for LeakScanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeakScanner({} values, [REDACTED])", self.needles)
    }
}

impl LeakScanner {
    /// Build from the plaintext manifests of opened sealed files (as returned
    /// by [`super::open`]). Looks for each secret value as it is, base64
    /// encoded and base64 decoded, and for the token inside a
    /// `.dockerconfigjson` (its `password`, and `auth`).
    pub fn new(opened: &[SecretString]) -> LeakScanner {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for manifest in opened {
            needles_of(manifest.expose_secret(), &mut needles);
        }
        needles.retain(|n| n.len() >= MIN_NEEDLE_LEN);
        needles.sort();
        needles.dedup();
        let re = (!needles.is_empty()).then(|| {
            let pattern = needles
                .iter()
                .map(|n| n.iter().map(|b| format!("\\x{b:02x}")).collect::<String>())
                .collect::<Vec<_>>()
                .join("|");
            regex::bytes::RegexBuilder::new(&format!("(?-u:{pattern})"))
                .size_limit(1 << 30)
                .dfa_size_limit(1 << 28)
                .build()
                .expect("escaped literals always compile")
        });
        LeakScanner {
            needles: needles.len(),
            re,
        }
    }

    /// How many distinct values are searched for.
    pub fn len(&self) -> usize {
        self.needles
    }

    pub fn is_empty(&self) -> bool {
        self.needles == 0
    }

    /// Does `haystack` contain any of the secret values?
    pub fn leaks_in(&self, haystack: &[u8]) -> bool {
        self.re.as_ref().is_some_and(|re| re.is_match(haystack))
    }
}

fn needles_of(manifest: &str, out: &mut Vec<Vec<u8>>) {
    let Ok(v) = serde_norway::from_str::<Value>(manifest) else {
        return;
    };
    for (top, is_b64) in [("data", true), ("stringData", false)] {
        let Some(Value::Mapping(m)) = v.get(top) else {
            continue;
        };
        for (k, val) in m {
            let key = k.as_str().unwrap_or_default();
            let Some(text) = val.as_str() else { continue };
            if NOT_SECRET_KEYS.contains(&key) {
                continue;
            }
            let raw: Vec<u8> = if is_b64 {
                out.push(text.as_bytes().to_vec());
                match STANDARD.decode(text) {
                    Ok(d) => d,
                    Err(_) => continue,
                }
            } else {
                text.as_bytes().to_vec()
            };
            match docker_tokens(&raw) {
                Some(tokens) => out.extend(tokens),
                None => {
                    out.push(STANDARD.encode(&raw).into_bytes());
                    out.push(raw);
                }
            }
        }
    }
}

/// The secret parts of a `.dockerconfigjson` document, if it is one.
fn docker_tokens(raw: &[u8]) -> Option<Vec<Vec<u8>>> {
    let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    let auths = v.get("auths")?.as_object()?;
    let mut out = Vec::new();
    for entry in auths.values() {
        for field in ["password", "auth", "identitytoken", "registrytoken"] {
            if let Some(s) = entry.get(field).and_then(|x| x.as_str()) {
                out.push(s.as_bytes().to_vec());
                if field != "auth" {
                    out.push(STANDARD.encode(s).into_bytes());
                }
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_payloads_of_secrets_are_found_by_path() {
        let text = "kind: ConfigMap\ndata:\n  a: plain\n---\nkind: Secret\nmetadata:\n  name: x\ndata:\n  ok: ENC[AES256_GCM,data:a,iv:b,tag:c,type:str]\n  empty: \"\"\n  bad: c2VjcmV0\nstringData:\n  n: 5\n  l: [x]\n";
        assert_eq!(
            plaintext_secret_leaves(text),
            vec!["data:bad", "stringData:n", "stringData:l[0]"]
        );
        assert!(plaintext_secret_leaves("not: [yaml").is_empty());
        assert!(plaintext_secret_leaves("\u{0}\u{1} binary").is_empty());
    }

    #[test]
    fn scanner_finds_tokens_in_every_encoding_but_not_usernames() {
        let token = "ROBOTTOKEN0123456789ABCDEF";
        let cfg = format!(
            r#"{{"auths":{{"quay.io":{{"auth":"{}","password":"{token}","username":"org+web_pull"}}}}}}"#,
            STANDARD.encode(format!("org+web_pull:{token}"))
        );
        let manifest = format!(
            "kind: Secret\nstringData:\n  .dockerconfigjson: '{cfg}'\n  username: org+web_pull_long_name\ndata:\n  other: {}\n",
            STANDARD.encode("another-long-secret-value")
        );
        let s = LeakScanner::new(&[SecretString::from(manifest)]);
        assert!(s.leaks_in(format!("x {token} y").as_bytes()));
        assert!(s.leaks_in(STANDARD.encode(token).as_bytes()));
        assert!(s.leaks_in(b"...another-long-secret-value..."));
        assert!(s.leaks_in(STANDARD.encode("another-long-secret-value").as_bytes()));
        assert!(!s.leaks_in(b"robot org+web_pull_long_name is linked"));
        assert!(!s.leaks_in(b"nothing here"));
        let dbg = format!("{s:?}");
        assert!(!dbg.contains(token), "{dbg}");
        assert!(LeakScanner::new(&[]).is_empty());
    }
}
