//! The API's TLS identity and server configuration.
//!
//! Until the TPM issue lands, the key is a software ECDSA P-256 key generated on first start and
//! kept 0600 in `<state>/tls/`. The certificate is self-signed; it is re-issued (same key) only
//! when the names it must cover change, so clients that pinned it keep working across restarts.

mod identity;
mod server_config;

pub use identity::{SoftwareIdentity, TlsError};
pub use server_config::server_config;
