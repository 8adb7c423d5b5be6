//! The EK certificate against the CA certificates a verifier trusts (the TPM manufacturer's
//! root and intermediates, e.g. swtpm-localca's `issuercert.pem` and root).

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use x509_parser::prelude::{FromDer, X509Certificate};

/// How many issuers are followed before giving up (manufacturer chains are 2–3 long).
const MAX_DEPTH: usize = 6;

/// Why an EK certificate is not trusted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EkCertificateError {
    /// The EK certificate is not parsable DER X.509.
    #[error("the EK certificate is not X.509: {0}")]
    Unparsable(String),
    /// The CA PEM holds no certificate that parses (unparsable ones are skipped).
    #[error("the CA file holds no usable PEM certificate")]
    NoCa,
    /// The EK certificate itself is outside its validity period.
    #[error("the EK certificate is not valid now")]
    Expired,
    /// No valid trusted CA signed a certificate on the chain, or no self-signed root is reached
    /// within the depth limit.
    #[error("no trusted CA certificate issued {subject:?} (issuer {issuer:?})")]
    UntrustedIssuer {
        /// Subject (RFC 4514 string) of the certificate whose issuer was not found.
        subject: String,
        /// Issuer it names.
        issuer: String,
    },
}

/// Follows issuers from the EK certificate through `ca_pem` (PEM certificates, any order) until
/// a self-signed one; each link must be signed by the next and valid now. Returns the EK
/// certificate's SubjectPublicKeyInfo (DER).
pub fn verify_ek_certificate(ek_der: &[u8], ca_pem: &[u8]) -> Result<Vec<u8>, EkCertificateError> {
    let cas: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(ca_pem)
        .filter_map(Result::ok)
        .collect();
    let cas: Vec<X509Certificate<'_>> = cas
        .iter()
        .filter_map(|der| X509Certificate::from_der(der.as_ref()).ok().map(|(_, c)| c))
        .collect();
    if cas.is_empty() {
        return Err(EkCertificateError::NoCa);
    }
    let (_, ek) = X509Certificate::from_der(ek_der)
        .map_err(|e| EkCertificateError::Unparsable(e.to_string()))?;
    if !ek.validity().is_valid() {
        return Err(EkCertificateError::Expired);
    }
    let mut current = &ek;
    for _ in 0..MAX_DEPTH {
        let issuer = cas.iter().find(|ca| {
            ca.subject() == current.issuer()
                && ca.validity().is_valid()
                && current.verify_signature(Some(ca.public_key())).is_ok()
        });
        let Some(issuer) = issuer else {
            return Err(EkCertificateError::UntrustedIssuer {
                subject: current.subject().to_string(),
                issuer: current.issuer().to_string(),
            });
        };
        if issuer.subject() == issuer.issuer() {
            return Ok(ek.public_key().raw.to_vec());
        }
        current = issuer;
    }
    Err(EkCertificateError::UntrustedIssuer {
        subject: current.subject().to_string(),
        issuer: current.issuer().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, PKCS_ECDSA_P256_SHA256,
    };

    use super::*;

    fn ca(
        name: &str,
        parent: Option<(&CertificateParams, &KeyPair)>,
    ) -> (CertificateParams, KeyPair, String) {
        let mut params = CertificateParams::new(Vec::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = match parent {
            None => params.self_signed(&key).unwrap().pem(),
            Some((p, k)) => params
                .signed_by(&key, &Issuer::from_params(p, k))
                .unwrap()
                .pem(),
        };
        (params, key, pem)
    }

    fn ek_cert(issuer: (&CertificateParams, &KeyPair)) -> (Vec<u8>, Vec<u8>) {
        let params = CertificateParams::new(Vec::new()).unwrap();
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params
            .signed_by(&key, &Issuer::from_params(issuer.0, issuer.1))
            .unwrap();
        (
            cert.der().to_vec(),
            rcgen::PublicKeyData::subject_public_key_info(&key),
        )
    }

    #[test]
    fn a_chain_through_an_intermediate_to_a_trusted_root_verifies() {
        let (root_p, root_k, root_pem) = ca("TPM Root", None);
        let (int_p, int_k, int_pem) = ca("TPM Issuer", Some((&root_p, &root_k)));
        let (ek, spki) = ek_cert((&int_p, &int_k));
        let bundle = format!("{int_pem}{root_pem}");
        assert_eq!(verify_ek_certificate(&ek, bundle.as_bytes()), Ok(spki));
    }

    #[test]
    fn another_manufacturer_or_a_missing_root_is_refused() {
        let (root_p, root_k, root_pem) = ca("TPM Root", None);
        let (int_p, int_k, int_pem) = ca("TPM Issuer", Some((&root_p, &root_k)));
        let (_, _, other_pem) = ca("Other Root", None);
        let (ek, _) = ek_cert((&int_p, &int_k));
        for bundle in [other_pem.clone(), int_pem.clone(), root_pem.clone()] {
            let err = verify_ek_certificate(&ek, bundle.as_bytes()).unwrap_err();
            assert!(
                matches!(err, EkCertificateError::UntrustedIssuer { .. }),
                "{err}"
            );
        }
        assert_eq!(
            verify_ek_certificate(&ek, b"nothing"),
            Err(EkCertificateError::NoCa)
        );
    }
}
