//! Finding a secret where it must not be: raw, or base64-encoded at any of
//! the three byte alignments it can have inside a longer base64 text (a
//! token inside `user:token`, inside a docker config, inside Secret data).

use base64::Engine;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// The byte strings that betray `secret`: itself, and the base64 characters
/// that only its own bits decide, for each of the three offsets it can sit
/// at in an encoded stream (standard and URL-safe alphabets).
pub fn needles(secret: &str) -> Vec<Vec<u8>> {
    let bytes = secret.as_bytes();
    let mut out = vec![bytes.to_vec()];
    for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
        for offset in 0..3 {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(bytes);
            let encoded = engine.encode(&shifted);
            // Characters carrying any bit of the padding before, or of
            // whatever follows, are not the secret's alone.
            let start = (8 * offset).div_ceil(6);
            let end = (8 * shifted.len()) / 6;
            if end > start {
                out.push(encoded.as_bytes()[start..end].to_vec());
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether any of `needles` occurs in `haystack`.
pub fn found(haystack: &[u8], needles: &[Vec<u8>]) -> bool {
    needles
        .iter()
        .any(|n| !n.is_empty() && haystack.windows(n.len()).any(|w| w == n.as_slice()))
}

/// The values of a Secret's `data`, decoded (what base64 hides in its JSON).
pub fn secret_data(secret: &k8s_openapi::api::core::v1::Secret) -> Vec<u8> {
    let mut out = Vec::new();
    for value in secret.data.iter().flat_map(|d| d.values()) {
        out.extend_from_slice(&value.0);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    #[test]
    fn a_secret_is_found_at_every_alignment_and_nested() {
        let token = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
        let n = needles(token);
        for prefix in ["", "u", "us", "user:"] {
            let login = STANDARD.encode(format!("{prefix}{token}"));
            let config = format!(r#"{{"auths":{{"quay.io":{{"auth":"{login}"}}}}}}"#);
            assert!(found(config.as_bytes(), &n), "{prefix:?}");
        }
        // A docker config that is itself base64 (a Secret's raw JSON) hides
        // the token twice: decoding the data once finds the inner one.
        assert!(found(token.as_bytes(), &n));
        assert!(!found(b"nothing of it here", &n));
        assert!(
            !found(STANDARD.encode("ABCDEFGH").as_bytes(), &n),
            "a prefix alone is not it"
        );
    }
}
