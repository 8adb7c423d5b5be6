//! What the status tells about the device identity; the identity crate fills it in, the room
//! core publishes it.

use serde::Serialize;

/// The device key and certificate the API presents, as shown in `status.system.identity`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdentityStatus {
    /// Where the device key lives: `tpm` or `software`.
    pub backend: &'static str,
    /// SHA-256 of the device key's SubjectPublicKeyInfo (DER), lower-case hex: stable across
    /// certificates.
    pub key_sha256: String,
    /// SHA-256 of the API's TLS certificate (DER), colon-separated hex, for pinning by clients.
    pub certificate_sha256: String,
    /// Set when the identity is weaker than it should be (a software key); UIs show it.
    pub warning: Option<String>,
}
