//! A CA-issued certificate chain for the device key (enrolment): checked before it is accepted,
//! kept in `chain.pem`, and served instead of the self-signed certificate.
//!
//! The checks are the ones that protect the device, not a full path validation (the fleet's
//! clients do that against their own trust anchors): every certificate parses and is valid now,
//! each one is signed by the next, and the leaf certifies exactly the device key, so no
//! certificate for another key can be made to look like this device's.

use std::path::Path;

use base64::Engine;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, X509Certificate};

/// File name of the installed chain in the TLS directory.
pub const CHAIN_FILE: &str = "chain.pem";
/// More is never needed (leaf, a few intermediates, perhaps the root).
const MAX_CERTIFICATES: usize = 8;

/// Why a certificate chain offered for the device key was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainError {
    /// The text holds no PEM certificate block.
    #[error("no PEM certificate found (expected one or more -----BEGIN CERTIFICATE----- blocks)")]
    Empty,
    /// More certificates than the limit (8); the payload is how many there were.
    #[error("the chain has {0} certificates; at most {MAX_CERTIFICATES} are accepted")]
    TooLong(usize),
    /// A block is not valid PEM, or its contents not a single DER X.509 certificate.
    #[error("certificate {index} (0 = leaf) is not valid PEM/X.509: {reason}")]
    Unparsable {
        /// Position in the chain, 0 = leaf.
        index: usize,
        /// The parser's error.
        reason: String,
    },
    /// The leaf certifies another public key than the device key.
    #[error(
        "the leaf certificate is for another key (SHA-256 {found}); this device's key is \
         {expected}: have the CSR from GET /api/v1/identity/csr signed"
    )]
    ForeignKey {
        /// SHA-256 of the leaf's SubjectPublicKeyInfo, hex.
        found: String,
        /// SHA-256 of the device key's SubjectPublicKeyInfo, hex.
        expected: String,
    },
    /// A certificate is not yet valid or has expired.
    #[error("certificate {index} (0 = leaf) is not valid now (valid {not_before} to {not_after})")]
    NotValidNow {
        /// Position in the chain, 0 = leaf.
        index: usize,
        /// Start of its validity, as the certificate states it.
        not_before: String,
        /// End of its validity, as the certificate states it.
        not_after: String,
    },
    /// A certificate's issuer is not the next one's subject, or the next one's key does not
    /// verify its signature.
    #[error(
        "certificate {index} (0 = leaf) is not signed by certificate {next}: put the chain in \
         order, leaf first, each certificate followed by its issuer"
    )]
    NotInOrder {
        /// Position of the certificate, 0 = leaf.
        index: usize,
        /// Position of the certificate expected to have issued it (`index + 1`).
        next: usize,
    },
}

/// Parses and checks a PEM chain (leaf first) for the key whose SubjectPublicKeyInfo is
/// `device_spki`.
pub(super) fn check_chain(
    pem: &[u8],
    device_spki: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ChainError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .enumerate()
        .map(|(index, cert)| {
            cert.map_err(|e| ChainError::Unparsable {
                index,
                reason: e.to_string(),
            })
        })
        .collect::<Result<_, _>>()?;
    if chain.is_empty() {
        return Err(ChainError::Empty);
    }
    if chain.len() > MAX_CERTIFICATES {
        return Err(ChainError::TooLong(chain.len()));
    }
    let parsed: Vec<X509Certificate<'_>> = chain
        .iter()
        .enumerate()
        .map(
            |(index, der)| match X509Certificate::from_der(der.as_ref()) {
                Ok(([], cert)) => Ok(cert),
                Ok(_) => Err(ChainError::Unparsable {
                    index,
                    reason: "trailing bytes after the certificate".to_owned(),
                }),
                Err(e) => Err(ChainError::Unparsable {
                    index,
                    reason: e.to_string(),
                }),
            },
        )
        .collect::<Result<_, _>>()?;

    let leaf_spki = parsed[0].public_key().raw;
    if leaf_spki != device_spki {
        return Err(ChainError::ForeignKey {
            found: hex_sha256(leaf_spki),
            expected: hex_sha256(device_spki),
        });
    }
    for (index, cert) in parsed.iter().enumerate() {
        if !cert.validity().is_valid() {
            return Err(ChainError::NotValidNow {
                index,
                not_before: cert.validity().not_before.to_string(),
                not_after: cert.validity().not_after.to_string(),
            });
        }
    }
    for (index, pair) in parsed.windows(2).enumerate() {
        let (cert, issuer) = (&pair[0], &pair[1]);
        if cert.issuer() != issuer.subject()
            || cert.verify_signature(Some(issuer.public_key())).is_err()
        {
            return Err(ChainError::NotInOrder {
                index,
                next: index + 1,
            });
        }
    }
    Ok(chain)
}

/// The chain as PEM, one block per certificate, as it is stored and returned by the API.
pub fn to_pem(chain: &[CertificateDer<'_>]) -> String {
    let mut pem = String::new();
    for cert in chain {
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// The installed chain in `dir`, if there is one and it still fits the device key. A chain that
/// no longer fits (expired, or the key changed) is reported and ignored: the device falls back
/// to its self-signed certificate rather than refusing to start.
pub(super) fn load_installed(
    dir: &Path,
    device_spki: &[u8],
) -> Option<Vec<CertificateDer<'static>>> {
    let path = dir.join(CHAIN_FILE);
    let pem = std::fs::read(&path).ok()?;
    match check_chain(&pem, device_spki) {
        Ok(chain) => Some(chain),
        Err(e) => {
            tracing::warn!(
                path = %path.display(),
                "not serving the installed certificate chain, using the self-signed one: {e}"
            );
            None
        }
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
    };

    use super::*;

    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        pem: String,
    }

    fn ca(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    fn leaf_for(device: &KeyPair, ca: &Ca, days: (i64, i64)) -> String {
        let mut params = CertificateParams::new(vec!["room.example.org".to_owned()]).unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now + time::Duration::days(days.0);
        params.not_after = now + time::Duration::days(days.1);
        let issuer = Issuer::from_params(&ca.params, &ca.key);
        params.signed_by(device, &issuer).unwrap().pem()
    }

    fn device() -> KeyPair {
        KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()
    }

    fn spki(key: &KeyPair) -> Vec<u8> {
        rcgen::PublicKeyData::subject_public_key_info(key)
    }

    #[test]
    fn a_chain_for_the_device_key_in_order_is_accepted() {
        let (device, ca) = (device(), ca("Fleet CA"));
        let pem = format!("{}{}", leaf_for(&device, &ca, (-1, 30)), ca.pem);
        let chain = check_chain(pem.as_bytes(), &spki(&device)).unwrap();
        assert_eq!(chain.len(), 2);
        // Stored form round-trips.
        assert_eq!(
            check_chain(to_pem(&chain).as_bytes(), &spki(&device)).unwrap(),
            chain
        );
        // The leaf alone is a chain too.
        let leaf = leaf_for(&device, &ca, (-1, 30));
        assert_eq!(
            check_chain(leaf.as_bytes(), &spki(&device)).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_certificate_for_another_key_is_refused() {
        let ca = ca("Fleet CA");
        let pem = leaf_for(&device(), &ca, (-1, 30));
        let err = check_chain(pem.as_bytes(), &spki(&device())).unwrap_err();
        assert!(matches!(err, ChainError::ForeignKey { .. }), "{err}");
    }

    #[test]
    fn expired_and_future_certificates_are_refused() {
        let (device, ca) = (device(), ca("Fleet CA"));
        for days in [(-30, -1), (1, 30)] {
            let pem = leaf_for(&device, &ca, days);
            let err = check_chain(pem.as_bytes(), &spki(&device)).unwrap_err();
            assert!(
                matches!(err, ChainError::NotValidNow { index: 0, .. }),
                "{err}"
            );
        }
    }

    #[test]
    fn a_chain_out_of_order_or_with_a_wrong_issuer_is_refused() {
        let (device, ca1, ca2) = (device(), ca("Fleet CA"), ca("Other CA"));
        let leaf = leaf_for(&device, &ca1, (-1, 30));
        for pem in [
            format!("{}{}", ca1.pem, leaf),
            format!("{}{}", leaf, ca2.pem),
        ] {
            let err = check_chain(pem.as_bytes(), &spki(&device)).unwrap_err();
            assert!(
                matches!(
                    err,
                    ChainError::NotInOrder { .. } | ChainError::ForeignKey { .. }
                ),
                "{err}"
            );
        }
        let err =
            check_chain(format!("{}{}", leaf, ca2.pem).as_bytes(), &spki(&device)).unwrap_err();
        assert_eq!(err, ChainError::NotInOrder { index: 0, next: 1 });
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let device = device();
        assert_eq!(
            check_chain(b"hello", &spki(&device)),
            Err(ChainError::Empty)
        );
        let broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let err = check_chain(broken.as_bytes(), &spki(&device)).unwrap_err();
        assert!(
            matches!(err, ChainError::Unparsable { index: 0, .. }),
            "{err}"
        );
    }
}
