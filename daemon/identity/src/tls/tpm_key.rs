//! The TPM's device key, seen by rustls (to sign TLS handshakes) and by rcgen (to sign the
//! device certificate and CSRs). Both hand over the message unhashed; the TPM signs its SHA-256
//! digest and the signature goes back DER-encoded, as TLS and X.509 carry it.

use rustls::SignatureScheme;
use rustls::sign::{Signer, SigningKey};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use sha2::{Digest, Sha256};

use super::refusals::{self, Refusal};
use crate::tpm::{Tpm, TpmError};

/// The device key as a rustls key (server certificate) and rcgen key (certificates, CSRs).
#[derive(Debug, Clone)]
pub struct TpmKey {
    tpm: Tpm,
    spki: Vec<u8>,
    point: Vec<u8>,
}

impl TpmKey {
    /// The device key of `tpm` (opened with it), its public key read once.
    pub fn new(tpm: Tpm) -> TpmKey {
        let spki = tpm.device_key().spki_der();
        let point = tpm.device_key().uncompressed_point();
        TpmKey { tpm, spki, point }
    }

    /// The TPM the key lives in (for attestation).
    pub fn tpm(&self) -> &Tpm {
        &self.tpm
    }

    /// X.509 SubjectPublicKeyInfo of the key, DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, TpmError> {
        let digest: [u8; 32] = Sha256::digest(message).into();
        Ok(self.tpm.sign_digest(digest)?.to_der())
    }

    /// Like `sign_message`, but refused at once when the TPM's handshake queue is full.
    ///
    /// rustls calls this inside a handshake's poll. On the handshake runtime (multi-threaded) the
    /// wait is announced with `block_in_place`, so that the runtime's other handshakes (a
    /// resumption needs no signature) go on on another thread meanwhile.
    fn sign_handshake(&self, message: &[u8]) -> Result<Vec<u8>, TpmError> {
        let digest: [u8; 32] = Sha256::digest(message).into();
        let sign = || self.tpm.sign_digest_for_handshake(digest);
        let multi_threaded = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        let signature = if multi_threaded {
            tokio::task::block_in_place(sign)
        } else {
            sign()
        }?;
        Ok(signature.to_der())
    }
}

impl SigningKey for TpmKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::ECDSA_NISTP256_SHA256)
            .then(|| Box::new(self.clone()) as Box<dyn Signer>)
    }

    fn public_key(&self) -> Option<SubjectPublicKeyInfoDer<'_>> {
        Some(SubjectPublicKeyInfoDer::from(self.spki.as_slice()))
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::ECDSA
    }
}

impl Signer for TpmKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        self.sign_handshake(message).map_err(|e| {
            match e {
                TpmError::Busy { .. } => refusals::note(Refusal::TpmBusy),
                _ => tracing::error!("TLS handshake: {e}"),
            }
            rustls::Error::General(format!("the TPM could not sign: {e}"))
        })
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ECDSA_NISTP256_SHA256
    }
}

impl rcgen::PublicKeyData for TpmKey {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for TpmKey {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.sign_message(message).map_err(|e| {
            // rcgen's error has no room for the cause: log it where a person will see it.
            tracing::error!("signing a certificate or CSR: {e}");
            rcgen::Error::RemoteKeyError
        })
    }
}
