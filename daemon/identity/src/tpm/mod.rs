//! The TPM: the device key lives here and never leaves it.
//!
//! tss-esapi's `Context` takes `&mut self`, blocks in C and is not meant to be shared between
//! threads, and swtpm (like a TPM without a resource manager) must see one command stream at a
//! time. So one dedicated thread owns the context (`thread`), and the rest of roomd talks to it
//! through a cloneable `Tpm` handle that sends requests and waits for the reply.
//!
//! The device key is a NIST P-256 ECDSA signing key, persisted at `DEVICE_KEY_HANDLE` in the
//! owner hierarchy. It is created once (as a child of a freshly derived storage primary, so the
//! private part comes from the TPM's random generator, not from a template) and reused at every
//! start after that.

mod attestation;
mod device_key;
mod ecdsa;
mod error;
mod sealing;
mod thread;

#[cfg(test)]
pub(crate) mod test_swtpm;
#[cfg(test)]
mod tests;

pub use attestation::{AttestationIdentity, QUOTED_PCRS, Quote};
pub use ecdsa::{EcdsaSignature, P256PublicKey};
pub use error::TpmError;
pub use sealing::MAX_SEALED_BYTES;
pub use thread::{MAX_WAITING_HANDSHAKE_SIGNATURES, Tpm};

/// Persistent handle of the device key. 0x8101xxxx is the owner range that TCG's provisioning
/// guidance leaves to platform software; 0x81010001/2 are conventionally taken by EKs.
pub const DEVICE_KEY_HANDLE: u32 = 0x8101_0010;

/// Persistent handle of the attestation key (a restricted P-256 signing key under the EK).
pub const AK_HANDLE: u32 = 0x8101_0011;
