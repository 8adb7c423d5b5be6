//! The room's identity in end-to-end encrypted meetings: its device key (in the TPM) signs the
//! room's announce, and its served certificate chain goes with it, so that the others can check
//! it against the CAs they trust (`roomd_e2ee::verify`).

use std::sync::Arc;

use roomd_e2ee::exchange::{Identity, IdentitySigner, SignError};
use roomd_identity::tls::{DeviceKey, ServedCertificate};
use rustls::SignatureScheme;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why the trusted CAs for verification cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum E2eeCaError {
    /// The file does not read or holds no PEM certificate.
    #[error("meeting.e2ee_ca_file {path}: no PEM certificates can be read from it")]
    Unreadable {
        /// The configured path.
        path: String,
        /// What failed.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
}

/// What the meeting engine needs of the device identity: the key and the chain served now.
#[derive(Clone)]
pub struct MeetingIdentity {
    key: DeviceKey,
    served: Arc<ServedCertificate>,
}

impl MeetingIdentity {
    /// The device key and the certificate chain the device serves (it may be replaced by an
    /// enrolment; each meeting takes the chain current at its start).
    pub fn new(key: DeviceKey, served: Arc<ServedCertificate>) -> MeetingIdentity {
        MeetingIdentity { key, served }
    }

    /// A signer for one meeting, with the chain as it is now.
    pub(crate) fn signer(&self) -> DeviceSigner {
        DeviceSigner {
            key: self.key.clone(),
            chain: self
                .served
                .current()
                .cert
                .iter()
                .map(|c| c.as_ref().to_vec())
                .collect(),
        }
    }
}

/// Signs announces with the device key. With the TPM, signing blocks: call it off the runtime.
pub(crate) struct DeviceSigner {
    key: DeviceKey,
    chain: Vec<Vec<u8>>,
}

impl IdentitySigner for DeviceSigner {
    fn identity(&self) -> Identity {
        Identity::Certificate {
            chain: self.chain.clone(),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<[u8; 64], SignError> {
        let key = self.key.rustls_key()?;
        let signer = key
            .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
            .ok_or("the device key does not sign ECDSA P-256 SHA-256")?;
        let der = signer.sign(message)?;
        raw_signature(&der).ok_or_else(|| "the device key's signature is not DER ECDSA".into())
    }
}

/// An ECDSA signature as DER (`SEQUENCE { INTEGER r, INTEGER s }`, what rustls signers give)
/// turned into r ‖ s, 32 bytes each (what the announce carries, as WebCrypto makes it).
pub(crate) fn raw_signature(der: &[u8]) -> Option<[u8; 64]> {
    let (&tag, rest) = der.split_first()?;
    let (&len, body) = rest.split_first()?;
    if tag != 0x30 || usize::from(len) != body.len() || len >= 0x80 {
        return None;
    }
    let (r, body) = integer(body)?;
    let (s, rest) = integer(body)?;
    if !rest.is_empty() {
        return None;
    }
    let mut out = [0u8; 64];
    out[32 - r.len()..32].copy_from_slice(r);
    out[64 - s.len()..].copy_from_slice(s);
    Some(out)
}

/// One DER INTEGER of at most 32 significant bytes, without its sign byte; and what follows.
fn integer(der: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let len = usize::from(len);
    if tag != 0x02 || len == 0 || len > 33 || rest.len() < len {
        return None;
    }
    let (mut value, rest) = rest.split_at(len);
    while value.len() > 1 && value[0] == 0 {
        value = &value[1..];
    }
    (value.len() <= 32).then_some((value, rest))
}

/// The CAs of `meeting.e2ee_ca_file` (none when it is empty).
pub(crate) fn trusted_cas(path: &str) -> Result<Vec<CertificateDer<'static>>, E2eeCaError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let unreadable = |source| E2eeCaError::Unreadable {
        path: path.to_owned(),
        source,
    };
    let cas = CertificateDer::pem_file_iter(path)
        .map_err(unreadable)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable)?;
    if cas.is_empty() {
        return Err(unreadable(rustls::pki_types::pem::Error::NoItemsFound));
    }
    Ok(cas)
}

#[cfg(test)]
mod tests {
    use super::raw_signature;

    #[test]
    fn der_signatures_become_r_and_s_of_32_bytes_each() {
        // r with a sign byte (33 bytes), s short (31 bytes).
        let mut der = vec![0x30, 0, 0x02, 33, 0x00];
        der.extend([0x80; 32]);
        der.extend([0x02, 31]);
        der.extend([0x11; 31]);
        der[1] = (der.len() - 2) as u8;
        let raw = raw_signature(&der).unwrap();
        assert_eq!(&raw[..32], &[0x80; 32]);
        assert_eq!(raw[32], 0);
        assert_eq!(&raw[33..], &[0x11; 31]);
        assert!(raw_signature(&der[..der.len() - 1]).is_none());
        assert!(raw_signature(&[0x30, 0]).is_none());
    }
}
