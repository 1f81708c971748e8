//! age X25519 recipients (public) and identities (secret), parsed and printed.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

use super::SealError;

/// An age X25519 recipient (`age1…`). Ordered and compared by its text form.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Recipient {
    text: String,
}

impl Recipient {
    pub(crate) fn to_age(&self) -> age::x25519::Recipient {
        self.text.parse().expect("validated when parsed")
    }
}

impl FromStr for Recipient {
    type Err = SealError;
    fn from_str(s: &str) -> Result<Self, SealError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(SealError::InvalidRecipient {
                value: String::new(),
                reason: "it is empty".into(),
            });
        }
        match t.parse::<age::x25519::Recipient>() {
            Ok(r) => Ok(Recipient {
                text: r.to_string(),
            }),
            Err(e) => Err(SealError::InvalidRecipient {
                value: t.chars().take(80).collect(),
                reason: e.to_string(),
            }),
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({})", self.text)
    }
}

/// An age X25519 identity. `Debug` shows only its public half.
#[derive(Clone)]
pub struct Identity {
    inner: age::x25519::Identity,
    /// The public half, derived once: deriving it is a scalar
    /// multiplication, and every Environment pass asks for it.
    public: Recipient,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}, secret: [REDACTED])", self.to_recipient())
    }
}

impl Identity {
    /// A fresh random identity.
    pub fn generate() -> Identity {
        Identity::of(age::x25519::Identity::generate())
    }

    fn of(inner: age::x25519::Identity) -> Identity {
        let public = Recipient {
            text: inner.to_public().to_string(),
        };
        Identity { inner, public }
    }

    /// Parse an `AGE-SECRET-KEY-1…` line, or an age-keygen file (comment and
    /// blank lines ignored; exactly one key expected).
    pub fn parse(s: &str) -> Result<Identity, SealError> {
        let mut keys = s
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let Some(line) = keys.next() else {
            return Err(SealError::InvalidIdentity {
                reason: "no `AGE-SECRET-KEY-1…` line found".into(),
            });
        };
        if keys.next().is_some() {
            return Err(SealError::InvalidIdentity {
                reason: "more than one key line; give a file with exactly one identity".into(),
            });
        }
        // The age parser's error text may quote its input; ours does not.
        match line.parse::<age::x25519::Identity>() {
            Ok(inner) => Ok(Identity::of(inner)),
            Err(_) => Err(SealError::InvalidIdentity {
                reason: if line.starts_with("AGE-SECRET-KEY-1") {
                    "the key line is damaged (bad length or checksum)".into()
                } else {
                    "the key line does not start with `AGE-SECRET-KEY-1`".into()
                },
            }),
        }
    }

    /// The public recipient for this identity.
    pub fn to_recipient(&self) -> Recipient {
        self.public.clone()
    }

    /// The `AGE-SECRET-KEY-1…` text, for writing a key file.
    pub fn to_secret_string(&self) -> SecretString {
        SecretString::from(self.inner.to_string().expose_secret().to_string())
    }

    pub(crate) fn as_age(&self) -> &age::x25519::Identity {
        &self.inner
    }
}
