//! The device key, wherever it lives: one type for everything that signs as the device (TLS
//! handshakes, the self-signed certificate, enrolment CSRs).

use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair};
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use sha2::{Digest, Sha256};

use super::{TlsError, TpmKey};

/// The device's P-256 signing key, in the TPM or in a file (`identity.backend`).
#[derive(Clone)]
pub enum DeviceKey {
    /// In the TPM: cannot be copied.
    Tpm(TpmKey),
    /// In a file (`identity.backend = "software"`).
    Software(Arc<KeyPair>),
}

impl std::fmt::Debug for DeviceKey {
    // Never print key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("backend", &self.backend())
            .field("fingerprint", &self.fingerprint())
            .finish()
    }
}

impl DeviceKey {
    /// `tpm` or `software`, as the status and the API show it.
    pub fn backend(&self) -> &'static str {
        match self {
            DeviceKey::Tpm(_) => "tpm",
            DeviceKey::Software(_) => "software",
        }
    }

    /// X.509 SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> Vec<u8> {
        match self {
            DeviceKey::Tpm(key) => key.spki_der().to_vec(),
            DeviceKey::Software(pair) => {
                rcgen::PublicKeyData::subject_public_key_info(pair.as_ref())
            }
        }
    }

    /// SHA-256 of the SubjectPublicKeyInfo, lower-case hex.
    pub fn fingerprint(&self) -> String {
        Sha256::digest(self.spki_der())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// The key as rustls signs with it.
    pub fn rustls_key(&self) -> Result<Arc<dyn rustls::sign::SigningKey>, TlsError> {
        match self {
            DeviceKey::Tpm(key) => Ok(Arc::new(key.clone())),
            DeviceKey::Software(pair) => {
                let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pair.serialize_der()));
                Ok(rustls::crypto::ring::default_provider()
                    .key_provider
                    .load_private_key(der)?)
            }
        }
    }

    /// A certificate for this key, signed by itself. With the TPM this blocks while it signs.
    pub fn self_signed(&self, params: &CertificateParams) -> Result<String, TlsError> {
        Ok(match self {
            DeviceKey::Tpm(key) => params.self_signed(key)?.pem(),
            DeviceKey::Software(pair) => params.self_signed(pair.as_ref())?.pem(),
        })
    }

    /// A PKCS#10 certification request for this key, PEM. With the TPM this blocks while it
    /// signs.
    pub fn certification_request(&self, params: &CertificateParams) -> Result<String, TlsError> {
        Ok(match self {
            DeviceKey::Tpm(key) => params.serialize_request(key)?.pem()?,
            DeviceKey::Software(pair) => params.serialize_request(pair.as_ref())?.pem()?,
        })
    }
}
