//! Sealing: the SOPS v3 file format with age recipients, written and read.
//!
//! Pure: no I/O, no clock (`now` is passed in). A sealed file is a Kubernetes
//! Secret manifest whose `data`/`stringData` leaves are AES-256-GCM encrypted
//! under a random data key, that key age-encrypted to each recipient, exactly
//! as the `sops` binary writes it, so the ecosystem's decryptors read it.

mod error;
mod keys;

pub use error::SealError;
pub use keys::{Identity, Recipient};

use k8s_openapi::jiff::Timestamp;
use secrecy::SecretString;

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
    /// True when every `data`/`stringData` leaf is encrypted.
    pub fn all_sealed(&self) -> bool {
        self.unsealed.is_empty()
    }
}

/// Seal a Secret manifest for `recipients`.
///
/// With `previous` (a file sealed earlier) and an `identity` that opens it,
/// the result is a minimal diff against it; see `docs/sealing.md`.
pub fn seal(
    plaintext_yaml: &SecretString,
    recipients: &[Recipient],
    previous: Option<&str>,
    identity: Option<&Identity>,
    now: Timestamp,
) -> Result<String, SealError> {
    let _ = (plaintext_yaml, recipients, previous, identity, now);
    Err(SealError::NotImplemented)
}

/// Open a sealed file: the plaintext Secret manifest, MAC verified.
pub fn open(sealed: &str, identity: &Identity) -> Result<SecretString, SealError> {
    let _ = (sealed, identity);
    Err(SealError::NotImplemented)
}

/// Read a sealed file's metadata without a key.
pub fn inspect(sealed: &str) -> Result<SealedInfo, SealError> {
    let _ = sealed;
    Err(SealError::NotImplemented)
}
