//! Extra CA certificates trusted beside the system's (`--extra-ca-file`), and what a refused server certificate tells the operator.
//!
//! One file serves the three places quayside speaks HTTPS to a server the
//! platform may run itself: the Quay API (`quay::QuayClient`), the side
//! repository over git (libgit2, through a certificate check that accepts a
//! certificate this CA signed) and the pull-request forge (`reqwest`).
//! Trust is added, never replaced: what the system trusts stays trusted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, RootCertStore};

/// The certificates of an extra CA file, ready for each client.
#[derive(Clone)]
pub struct ExtraCa {
    path: PathBuf,
    certs: Vec<CertificateDer<'static>>,
    verifier: Arc<WebPkiServerVerifier>,
}

impl std::fmt::Debug for ExtraCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtraCa")
            .field("path", &self.path)
            .field("certificates", &self.certs.len())
            .finish()
    }
}

impl ExtraCa {
    /// Read PEM certificates from `path`; a file that cannot be read, is
    /// not PEM or holds no certificate is refused with a sentence saying so.
    pub fn load(path: &Path) -> Result<ExtraCa, String> {
        let pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the extra CA file {path:?}: {e}"))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the extra CA file {path:?} is not PEM certificates: {e}"))?;
        if certs.is_empty() {
            return Err(format!(
                "the extra CA file {path:?} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
            ));
        }
        let mut roots = RootCertStore::empty();
        let (_, unusable) = roots.add_parsable_certificates(certs.iter().cloned());
        if roots.is_empty() {
            return Err(format!(
                "the extra CA file {path:?} holds {unusable} certificate(s), none usable as a CA"
            ));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| format!("the extra CA file {path:?}: {e}"))?;
        Ok(ExtraCa {
            path: path.to_path_buf(),
            certs,
            verifier,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The certificates, for `reqwest::ClientBuilder::add_root_certificate`.
    pub fn reqwest_certificates(&self) -> Vec<reqwest::Certificate> {
        self.certs
            .iter()
            .filter_map(|c| reqwest::Certificate::from_der(c).ok())
            .collect()
    }

    /// Whether `leaf` (DER) is valid now for `host` and signed by this CA
    /// (directly, or through another certificate of the file).
    pub fn verifies(&self, leaf: &[u8], host: &str) -> bool {
        let Ok(name) = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
        else {
            return false;
        };
        self.verifier
            .verify_server_cert(
                &CertificateDer::from(leaf),
                &[],
                &name,
                &[],
                UnixTime::now(),
            )
            .is_ok()
    }
}

/// Why a server's certificate was refused, found in an error's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Signed by a CA nobody told us to trust (or self-signed).
    UnknownIssuer,
    /// Valid, but for other host names than the one in the URL.
    WrongName,
    /// Expired, or not valid yet.
    Expired,
    /// Revoked, a bad signature, an unsupported extension...
    Other,
}

impl Refusal {
    /// Look through `e` and its sources for a rustls certificate error
    /// (`io::Error`s, nested ones too, wrap it without exposing it as a source).
    pub fn find(e: &(dyn std::error::Error + 'static)) -> Option<Refusal> {
        let mut next = Some(e);
        while let Some(err) = next {
            let mut wrapped = Some(err);
            while let Some(w) = wrapped {
                if let Some(rustls::Error::InvalidCertificate(c)) =
                    w.downcast_ref::<rustls::Error>()
                {
                    return Some(Refusal::of(c));
                }
                wrapped = w
                    .downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .map(|i| i as &(dyn std::error::Error + 'static));
            }
            next = err.source();
        }
        None
    }

    fn of(c: &CertificateError) -> Refusal {
        match c {
            // A bad signature from an issuer we know by name: another CA of
            // the same name (re-made, or a file holding the wrong one).
            CertificateError::UnknownIssuer | CertificateError::BadSignature => {
                Refusal::UnknownIssuer
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Refusal::WrongName
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => Refusal::Expired,
            _ => Refusal::Other,
        }
    }

    /// What is wrong and what to do, for a server at `host`; `extra_ca` is
    /// the CA file configured, if any.
    pub fn advice(self, host: &str, extra_ca: Option<&Path>) -> String {
        match (self, extra_ca) {
            (Refusal::UnknownIssuer, None) => format!(
                "the TLS certificate of {host} is signed by a CA quayside does not trust; if the \
                 server uses a private or self-signed CA, give that CA's certificate (PEM) with \
                 --extra-ca-file (QUAYSIDE_EXTRA_CA_FILE)"
            ),
            (Refusal::UnknownIssuer, Some(file)) => format!(
                "the TLS certificate of {host} is signed by a CA quayside does not trust, and not \
                 by one in the --extra-ca-file {file:?}; put the certificate (PEM) of the CA that \
                 signed it in that file"
            ),
            (Refusal::WrongName, _) => format!(
                "the TLS certificate of {host} is not valid for the name {host}; use a URL with a \
                 host name the certificate lists (--extra-ca-file cannot change this)"
            ),
            (Refusal::Expired, _) => format!(
                "the TLS certificate of {host} has expired or is not valid yet; renew it on the \
                 server, or check this machine's clock"
            ),
            (Refusal::Other, _) => format!(
                "the TLS certificate of {host} was refused (revoked, badly signed or malformed); \
                 check the server's certificate (a private CA goes in --extra-ca-file)"
            ),
        }
    }
}

/// `host[:port]` of `url`, for messages (never userinfo).
pub fn host_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => String::new(),
        },
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_files_without_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let missing = ExtraCa::load(&dir.path().join("absent.pem")).unwrap_err();
        assert!(missing.contains("cannot read"), "{missing}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no pem here\n").unwrap();
        let err = ExtraCa::load(&empty).unwrap_err();
        assert!(err.contains("holds no PEM certificate"), "{err}");
    }

    #[test]
    fn advice_names_the_flag_for_an_unknown_issuer_only_when_it_helps() {
        let unknown = Refusal::UnknownIssuer.advice("quay.corp:443", None);
        assert!(unknown.contains("--extra-ca-file"), "{unknown}");
        let configured =
            Refusal::UnknownIssuer.advice("quay.corp", Some(Path::new("/etc/quayside/ca.pem")));
        assert!(configured.contains("/etc/quayside/ca.pem"), "{configured}");
        let name = Refusal::WrongName.advice("10.0.0.1", None);
        assert!(name.contains("cannot change this"), "{name}");
    }

    #[test]
    fn host_of_drops_userinfo_and_path() {
        assert_eq!(
            host_of("https://u:p@git.corp:8443/a/b.git"),
            "git.corp:8443"
        );
        assert_eq!(host_of("https://quay.io/api/v1"), "quay.io");
        assert_eq!(host_of("/local/path"), "");
    }
}
