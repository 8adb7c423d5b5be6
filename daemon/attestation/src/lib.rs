//! The verifier's side of attestation (used by `roomctl identity verify`): checks what a device
//! presents against what only its TPM could have produced. Pure parsing and cryptography, no TPM.
//!
//! - `ek`: the EK certificate chains to the manufacturer CA the verifier trusts.
//! - `credential`: the attestation key lives in the same TPM as the EK (TPM2_MakeCredential in
//!   software; the device answers with TPM2_ActivateCredential).
//! - `quote`: the quote is signed by the attestation key, carries the verifier's nonce, covers
//!   exactly PCRs 0–7 and 11 (SHA-256), and its PCR digest matches the PCR values reported.

mod credential;
mod device;
mod ek;
mod quote;

pub use credential::{CredentialChallenge, CredentialError, ak_name, ak_point, make_credential};
pub use device::{BindingChallenge, DeviceCheckError, challenge_ak_binding, check_device};
pub use ek::{EkCertificateError, verify_ek_certificate};
pub use quote::{QuoteError, VerifiedQuote, verify_quote};
