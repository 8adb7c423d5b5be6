//! Clients that trust exactly roomd's self-signed certificate, and nothing else. Verification is
//! never turned off: a test that passes proves the certificate roomd wrote is the one it serves,
//! with a name (127.0.0.1) that matches.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

use crate::HarnessError;

/// roomd's certificate, in both forms the two client libraries want.
#[derive(Clone)]
pub struct DeviceCertificate {
    pub der: CertificateDer<'static>,
    pub rustls: Arc<rustls::ClientConfig>,
}

impl DeviceCertificate {
    pub fn load(path: &Path) -> Result<DeviceCertificate, HarnessError> {
        let bad = |message: String| HarnessError::Certificate {
            path: path.to_owned(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
        let cert = ureq::tls::Certificate::from_pem(&pem)
            .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        let der = CertificateDer::from(cert.der().to_vec());
        let mut roots = RootCertStore::empty();
        roots
            .add(der.clone())
            .map_err(|e| bad(format!("rustls refuses it as a root: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(format!("no TLS versions: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(DeviceCertificate {
            der,
            rustls: Arc::new(config),
        })
    }

    /// A ureq agent that trusts only this certificate and hands every status back to the
    /// caller (tests assert on 4xx answers, so they must not become `Err`).
    pub fn ureq_agent(&self) -> ureq::Agent {
        let root = ureq::tls::Certificate::from_der(self.der.as_ref()).to_owned();
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .root_certs(ureq::tls::RootCerts::new_with_certs(&[root]))
            .build();
        ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .https_only(true)
            .allow_non_standard_methods(true)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    }
}
