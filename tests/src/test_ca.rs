//! A certificate authority made for one test, so that servers the test starts (Janus) speak
//! HTTPS that roomd verifies for real: roomd's `meeting.ca_file` points at the CA's PEM, and
//! nothing turns verification off.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::HarnessError;

pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate and its private key, both PEM.
pub struct ServerCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl ServerCertificate {
    /// A rustls server configuration (ring, safe defaults, no client authentication) that
    /// serves this certificate; `what` names the server in errors.
    pub fn rustls_server_config(
        &self,
        what: &str,
    ) -> Result<std::sync::Arc<rustls::ServerConfig>, HarnessError> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let fail = |message: String| HarnessError::Config { message };
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| fail(format!("{what} certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|e| fail(format!("{what} key: {e}")))?;
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| fail(format!("{what} TLS: {e}")))?;
        Ok(std::sync::Arc::new(config))
    }
}

/// A TLS client certificate and its private key, both PEM.
pub struct ClientCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Result<TestCa, HarnessError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(fail)?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(fail)?;
        Ok(TestCa { issuer })
    }

    /// The CA certificate, PEM (what clients trust).
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A TLS server certificate for `names` (DNS names or IP addresses).
    pub fn issue_server(&self, names: &[String]) -> Result<ServerCertificate, HarnessError> {
        let mut params = CertificateParams::new(names.to_vec()).map_err(fail)?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("server", String::as_str),
        );
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().map_err(fail)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(fail)?;
        Ok(ServerCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

impl TestCa {
    /// A TLS client certificate with common name `name` (what a fleet manager or a monitoring
    /// server presents to roomd's mutual TLS).
    pub fn issue_client(&self, name: &str) -> Result<ClientCertificate, HarnessError> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(fail)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(fail)?;
        Ok(ClientCertificate {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn fail(e: rcgen::Error) -> HarnessError {
    HarnessError::Config {
        message: format!("cannot make a test certificate: {e}"),
    }
}
