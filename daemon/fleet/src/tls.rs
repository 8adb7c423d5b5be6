//! The client side of the device identity: TLS to the broker, verified against `fleet.ca_file`,
//! with the device key (in the TPM) and the certificate roomd serves as client certificate.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use roomd_identity::tls::ServedCertificate;

/// Why the fleet channel's TLS settings cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum FleetTlsError {
    /// `fleet.ca_file` holds no usable CA certificate.
    #[error("fleet.ca_file: {0}")]
    Ca(String),
    /// rustls refused the settings.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// TLS 1.3 and 1.2 with ring, trusting exactly the CAs in `ca_pem`, presenting `certificate`'s
/// current chain and key (an installed CA-issued chain counts from the next handshake).
pub fn client_config(
    ca_pem: &[u8],
    certificate: Arc<ServedCertificate>,
) -> Result<ClientConfig, FleetTlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| FleetTlsError::Ca(format!("not PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| FleetTlsError::Ca(format!("not a usable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(FleetTlsError::Ca("holds no certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(DeviceCertificate(certificate)));
    Ok(config)
}

/// The subject's common name of the certificate `certificate` presents now.
pub fn common_name(certificate: &ServedCertificate) -> Option<String> {
    let current = certificate.current();
    let leaf = current.cert.first()?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = parsed.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

struct DeviceCertificate(Arc<ServedCertificate>);

impl std::fmt::Debug for DeviceCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceCertificate")
    }
}

impl ResolvesClientCert for DeviceCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let current = self.0.current();
        current
            .key
            .choose_scheme(sigschemes)
            .is_some()
            .then_some(current)
    }

    fn has_certs(&self) -> bool {
        true
    }
}
