//! sops's value encryption: AES-256-GCM with a 32-byte IV, the key path as
//! additional data, written as `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`.

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::aes::cipher::consts::U32;
use aes_gcm::{AesGcm, Nonce, Tag};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretBox};

/// sops uses a 256-bit IV rather than GCM's usual 96.
type Aes256Gcm32 = AesGcm<Aes256, U32>;

const IV_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The random 32-byte key every value of one file is encrypted under.
pub(crate) struct DataKey(SecretBox<[u8; 32]>);

impl DataKey {
    pub(crate) fn generate() -> DataKey {
        let mut k = Box::new([0u8; 32]);
        rand::fill(&mut k[..]);
        DataKey(SecretBox::new(k))
    }

    pub(crate) fn from_bytes(b: &[u8]) -> Option<DataKey> {
        let arr: [u8; 32] = b.try_into().ok()?;
        Some(DataKey(SecretBox::new(Box::new(arr))))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }

    fn cipher(&self) -> Aes256Gcm32 {
        Aes256Gcm32::new(self.bytes().into())
    }
}

/// The parts of an `ENC[...]` string.
pub(crate) struct EncValue {
    pub data: Vec<u8>,
    pub iv: Vec<u8>,
    pub tag: Vec<u8>,
    pub kind: String,
}

/// Why an `ENC[...]` string could not be used.
pub(crate) enum CipherError {
    Malformed(String),
    /// The GCM tag did not verify: wrong key, wrong path, or altered bytes.
    Auth,
}

/// Encrypt `plaintext` under `key` with a fresh random IV.
pub(crate) fn encrypt(key: &DataKey, plaintext: &[u8], aad: &[u8], kind: &str) -> String {
    let mut iv = [0u8; IV_LEN];
    rand::fill(&mut iv[..]);
    let mut buf = plaintext.to_vec();
    let tag = key
        .cipher()
        .encrypt_inout_detached(&Nonce::<U32>::from(iv), aad, buf.as_mut_slice().into())
        .expect("AES-GCM accepts any value a YAML file can hold");
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{}]",
        STANDARD.encode(&buf),
        STANDARD.encode(iv),
        STANDARD.encode(tag),
        kind
    )
}

/// Decrypt an `ENC[...]` string; returns the plaintext bytes and the type.
pub(crate) fn decrypt(
    key: &DataKey,
    value: &str,
    aad: &[u8],
) -> Result<(Vec<u8>, String), CipherError> {
    let EncValue {
        mut data,
        iv,
        tag,
        kind,
    } = parse(value)?;
    let tag: [u8; TAG_LEN] = tag.as_slice().try_into().map_err(|_| {
        CipherError::Malformed(format!("the tag is {} bytes, expected 16", tag.len()))
    })?;
    let iv: [u8; IV_LEN] = iv.as_slice().try_into().map_err(|_| {
        CipherError::Malformed(format!("the IV is {} bytes, expected 32", iv.len()))
    })?;
    key.cipher()
        .decrypt_inout_detached(
            &Nonce::<U32>::from(iv),
            aad,
            data.as_mut_slice().into(),
            &Tag::from(tag),
        )
        .map_err(|_| CipherError::Auth)?;
    Ok((data, kind))
}

/// Split an `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` string into its parts.
pub(crate) fn parse(value: &str) -> Result<EncValue, CipherError> {
    let bad = |why: &str| CipherError::Malformed(why.to_string());
    let inner = value
        .strip_prefix("ENC[")
        .and_then(|v| v.strip_suffix(']'))
        .ok_or_else(|| bad("expected `ENC[...]`"))?;
    let mut parts = inner.split(',');
    if parts.next() != Some("AES256_GCM") {
        return Err(bad("only AES256_GCM values are supported"));
    }
    let mut field = |name: &str| -> Result<&str, CipherError> {
        parts
            .next()
            .and_then(|p| p.strip_prefix(name))
            .and_then(|p| p.strip_prefix(':'))
            .ok_or_else(|| bad(&format!("missing `{name}:` field")))
    };
    let b64 = |name: &str, s: &str| {
        STANDARD
            .decode(s)
            .map_err(|_| bad(&format!("`{name}` is not valid base64")))
    };
    let data = b64("data", field("data")?)?;
    let iv = b64("iv", field("iv")?)?;
    let tag = b64("tag", field("tag")?)?;
    let kind = field("type")?.to_string();
    if parts.next().is_some() {
        return Err(bad("unexpected extra fields"));
    }
    Ok(EncValue {
        data,
        iv,
        tag,
        kind,
    })
}

/// Does this string look like an encrypted value (whether or not it is valid)?
pub(crate) fn is_enc(value: &str) -> bool {
    value.starts_with("ENC[") && value.ends_with(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_path_as_aad() {
        let k = DataKey::generate();
        let e = encrypt(&k, b"hunter2", b"data:pw:", "str");
        assert!(e.starts_with("ENC[AES256_GCM,data:") && e.ends_with(",type:str]"));
        let p = parse(&e).ok().unwrap();
        assert_eq!((p.iv.len(), p.tag.len(), p.data.len()), (32, 16, 7));
        let (pt, kind) = decrypt(&k, &e, b"data:pw:").ok().unwrap();
        assert_eq!((pt.as_slice(), kind.as_str()), (&b"hunter2"[..], "str"));
        // Moving a value to another key breaks it.
        assert!(matches!(
            decrypt(&k, &e, b"data:other:"),
            Err(CipherError::Auth)
        ));
        assert!(matches!(
            decrypt(&DataKey::generate(), &e, b"data:pw:"),
            Err(CipherError::Auth)
        ));
    }

    #[test]
    fn fresh_iv_each_time() {
        let k = DataKey::generate();
        assert_ne!(
            encrypt(&k, b"x", b"a:", "str"),
            encrypt(&k, b"x", b"a:", "str")
        );
    }

    #[test]
    fn malformed_values_are_reported_not_panicked() {
        let k = DataKey::generate();
        for bad in [
            "ENC[",
            "ENC[]",
            "ENC[AES128,data:,iv:,tag:,type:str]",
            "ENC[AES256_GCM,data:!!,iv:AA==,tag:AA==,type:str]",
            "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]",
            "ENC[AES256_GCM,data:AA==,iv:AA==,type:str]",
            "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str,x]",
        ] {
            assert!(
                matches!(decrypt(&k, bad, b"a:"), Err(CipherError::Malformed(_))),
                "{bad}"
            );
        }
    }
}
