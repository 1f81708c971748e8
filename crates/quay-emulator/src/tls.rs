//! HTTPS for tests: a CA made at start-up and a server certificate it signs for `127.0.0.1` and `localhost`.
//!
//! Nothing is read from or written to disk here: the CA's certificate is
//! handed to clients as PEM (`Emulator::ca_pem`, `quay-emulator
//! --tls-ca-out FILE`), and other test servers (the git server) can take a
//! certificate and key from [`TestAuthority::generate`] too.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A fresh CA and a server certificate it signed, all in PEM.
#[derive(Clone)]
pub struct TestAuthority {
    ca_pem: String,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    key_der: Vec<u8>,
    key_pem: String,
}

impl std::fmt::Debug for TestAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestAuthority")
            .field("ca_pem", &self.ca_pem)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl TestAuthority {
    /// A CA named "quay-emulator test CA" and a certificate for
    /// `127.0.0.1`, `::1` and `localhost` signed by it (ECDSA P-256).
    pub fn generate() -> Result<TestAuthority, rcgen::Error> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "quay-emulator test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;

        let names = ["127.0.0.1", "::1", "localhost"].map(String::from).to_vec();
        let mut server = CertificateParams::new(names)?;
        server
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate()?;
        let cert = server.signed_by(&key, &ca)?;
        Ok(TestAuthority {
            ca_pem: ca.pem(),
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The CA's certificate: what a client must trust.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The server's certificate (leaf only; the CA is the issuer).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The server's private key (PKCS#8).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A rustls server configuration presenting the certificate (HTTP/1.1).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], key)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_pem_and_a_usable_server_config() {
        let a = TestAuthority::generate().unwrap();
        assert!(a.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.cert_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(a.key_pem().contains("PRIVATE KEY"));
        assert_ne!(a.ca_pem(), a.cert_pem());
        assert!(!format!("{a:?}").contains(a.key_pem()));
        a.server_config().unwrap();
    }
}
