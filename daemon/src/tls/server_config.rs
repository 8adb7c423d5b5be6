//! rustls server settings for the local API.

use std::sync::Arc;

use rustls::ServerConfig;

use super::{ServedCertificate, TlsError};

/// TLS 1.3 and 1.2 only, ring's default (AEAD, forward-secret) cipher suites, HTTP/1.1. The
/// certificate comes from `served`, so an installed chain applies to the next handshake.
pub fn server_config(served: Arc<ServedCertificate>) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(served);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
