//! The device's identity and what it protects: the TPM (device key, attestation, sealing),
//! the API's TLS (certificates, handshakes off the API's workers) and secrets at rest.
//! Everything that touches key material lives here, behind small typed handles.

pub mod secrets;
pub mod tls;
pub mod tpm;
