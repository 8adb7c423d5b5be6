//! rustls server settings for the local API.

use std::path::Path;
use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};

use super::{ServedCertificate, TlsError};

/// TLS 1.3 and 1.2 only, ring's default (AEAD, forward-secret) cipher suites, HTTP/1.1. The
/// certificate comes from `served`, so an installed chain applies to the next handshake.
///
/// With `client_ca`, clients may present a certificate issued by one of its CAs (mutual TLS);
/// one from another CA ends the handshake, and clients without one are served as before (they
/// authenticate with a token or session).
pub fn server_config(
    served: Arc<ServedCertificate>,
    client_ca: Option<&Path>,
    client_crls: Vec<CertificateRevocationListDer<'static>>,
) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let roots = client_roots(path)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .with_crls(client_crls)
                .build()
                .map_err(|e| TlsError::ClientCa {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(served);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Returning clients resume (TLS 1.3 PSK with a fresh (EC)DHE, TLS 1.2 tickets) and need no
    // new signature by the device key, which in a TPM is slow and shared. Stateless tickets,
    // encrypted under a key that lives only in memory and rotates, so a flood of new clients
    // cannot evict returning ones the way it would from a session cache.
    config.ticketer = rustls::crypto::ring::Ticketer::new()?;
    Ok(config)
}

fn client_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let bad = |reason: String| TlsError::ClientCa {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("it holds no PEM certificate".to_owned()));
    }
    Ok(roots)
}
