//! rustls server settings for the local API.

use std::sync::Arc;

use rustls::ServerConfig;

use super::{SoftwareIdentity, TlsError};

/// TLS 1.3 and 1.2 only, ring's default (AEAD, forward-secret) cipher suites, HTTP/1.1.
pub fn server_config(identity: &SoftwareIdentity) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(vec![identity.certificate.clone()], identity.key.clone_key())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
