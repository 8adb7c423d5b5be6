//! The device identity and the API's TLS server configuration.
//!
//! The device key is a NIST P-256 key in the TPM (`identity.backend = "tpm"`, the default) or,
//! only when configured explicitly, in `<state>/tls/key.pem` (`"software"`). The API serves a
//! self-signed certificate over that key (`<state>/tls/cert.pem`), re-issued with the same key
//! only when the names it must cover change, so clients that pinned it keep working. A
//! CA-issued chain for the same key (enrolment) replaces it once installed (`<state>/tls/chain.pem`).

mod client_revocation;
mod device_certificate;
mod device_key;
mod error;
mod handshake;
mod identity;
mod installed_chain;
mod refusals;
mod served_certificate;
mod server_config;
mod software_key;
mod source_limit;
mod tpm_key;

pub use client_revocation::load_client_crls;
pub use device_certificate::{CERTIFICATE_FILE, spki_of};
pub use device_key::DeviceKey;
pub use error::TlsError;
pub use handshake::{HandshakeError, Handshakes};
pub use identity::{DeviceIdentity, InstallError};
pub use installed_chain::{CHAIN_FILE, ChainError, to_pem};
pub use served_certificate::ServedCertificate;
pub use server_config::server_config;
pub use software_key::{SOFTWARE_KEY_FILE, load_or_create_software_key};
pub use tpm_key::TpmKey;
