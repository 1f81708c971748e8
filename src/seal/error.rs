//! The sealing layer's errors. Messages say what to do and never carry plaintext.

/// Why sealing or opening failed.
#[derive(thiserror::Error, Debug)]
pub enum SealError {
    #[error(
        "invalid age recipient {value:?}: {reason}; expected an `age1…` public key as printed by `age-keygen -y`"
    )]
    InvalidRecipient { value: String, reason: String },
    #[error(
        "invalid age identity: {reason}; expected an `AGE-SECRET-KEY-1…` line or an age-keygen key file"
    )]
    InvalidIdentity { reason: String },
    #[error("no recipients given: a sealed file needs at least one age recipient")]
    NoRecipients,
    #[error("not a sealed file: {reason}")]
    NotSealed { reason: String },
    #[error(
        "unknown key `{key}` in the `sops:` block; this file was written by a sops feature quayside does not support (only age recipients)"
    )]
    UnknownSopsKey { key: String },
    #[error(
        "the age-encrypted data key for recipient {recipient} is damaged ({reason}); re-seal the file"
    )]
    Armor { recipient: String, reason: String },
    #[error(
        "none of the file's recipients matches the given identity; use the key of one of: {recipients}"
    )]
    NoMatchingIdentity { recipients: String },
    #[error(
        "the file's MAC does not match its contents: it was modified outside sops/quayside; re-seal it from the source"
    )]
    MacMismatch,
    #[error(
        "the encrypted value at `{path}` fails authentication (tampered, or moved from another key); re-seal the file"
    )]
    ValueTampered { path: String },
    #[error("malformed encrypted value at `{path}`: {reason}")]
    MalformedValue { path: String, reason: String },
    #[error("invalid YAML: {reason}")]
    Yaml { reason: String },
}
