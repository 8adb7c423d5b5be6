//! One device checked end to end from what its API returned: `GET /identity` and
//! `POST /identity/quote` with the verifier's nonce.

use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, SubjectPublicKeyInfoDer};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::{
    CredentialError, EkCertificateError, QuoteError, ak_name, ak_point, make_credential,
    verify_ek_certificate, verify_quote,
};

/// Why a device failed the end-to-end check; each variant names the step that failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceCheckError {
    /// A field the check needs is absent from the device's answer (the payload names it).
    #[error("the device reports no {0} (is identity.backend \"tpm\"?)")]
    Missing(&'static str),
    /// A field is present but cannot be decoded (PEM, base64, hex or X.509).
    #[error("the device's {what} is malformed: {reason}")]
    Malformed {
        /// Which field or object.
        what: &'static str,
        /// Why it could not be decoded.
        reason: String,
    },
    /// The EK certificate does not chain to a trusted CA.
    #[error("EK certificate: {0}")]
    Ek(#[from] EkCertificateError),
    /// The quote names another attestation key than `GET /identity` reported.
    #[error("the quote was signed by another attestation key than the one the device reports")]
    AkChanged,
    /// The attestation key's public area was refused, or no credential could be made for the EK.
    #[error("attestation key: {0}")]
    Credential(#[from] CredentialError),
    /// The public area's point differs from the reported attestation key.
    #[error("the attestation key's public area does not describe the attestation key reported")]
    AkMismatch,
    /// The device's answer to the credential challenge is wrong: its AK is not in the EK's TPM.
    #[error(
        "the device did not return the credential made for its EK and attestation key: the \
         attestation key is not in the TPM the EK certificate was issued for"
    )]
    NotActivated,
    /// The quote itself failed verification.
    #[error("quote: {0}")]
    Quote(#[from] QuoteError),
    /// The quote verified, but its PCR digest is not the one the verifier expected.
    #[error("the PCR digest is {found}, expected {expected}")]
    UnexpectedPcrDigest {
        /// The quoted digest, lower-case hex.
        found: String,
        /// The digest the verifier was given, as given (compared case-insensitively).
        expected: String,
    },
}

/// A credential challenge for the device's attestation key, to send to `POST /identity/activate`.
pub struct BindingChallenge {
    /// The request body.
    pub request: Value,
    expected: Vec<u8>,
}

impl BindingChallenge {
    /// Checks the device's answer (`{credential}`).
    pub fn check_answer(&self, answer: &Value) -> Result<(), DeviceCheckError> {
        let credential = base64_field(answer, "credential")?;
        if credential == self.expected {
            Ok(())
        } else {
            Err(DeviceCheckError::NotActivated)
        }
    }
}

/// Checks the EK certificate against `ek_ca_pem` and that the reported AK public area is a
/// restricted signing key describing the reported attestation key, then makes a credential for
/// the EK and the AK's name: only the TPM holding both can answer it.
pub fn challenge_ak_binding(
    identity: &Value,
    ek_ca_pem: &[u8],
) -> Result<BindingChallenge, DeviceCheckError> {
    let ek_pem = text(identity, "ek_certificate", "EK certificate")?;
    let ek = CertificateDer::from_pem_slice(ek_pem.as_bytes()).map_err(|e| {
        DeviceCheckError::Malformed {
            what: "EK certificate",
            reason: e.to_string(),
        }
    })?;
    let ek_spki = verify_ek_certificate(ek.as_ref(), ek_ca_pem)?;
    let area = base64_field(identity, "attestation_key_public_area")?;
    let ak_pem = text(identity, "attestation_key", "attestation key")?;
    if ak_point(&area)? != spki_point(ak_pem)? {
        return Err(DeviceCheckError::AkMismatch);
    }
    let challenge = make_credential(&ek_spki, &ak_name(&area))?;
    let engine = base64::engine::general_purpose::STANDARD;
    Ok(BindingChallenge {
        request: json!({
            "credential_blob": engine.encode(&challenge.credential_blob),
            "encrypted_secret": engine.encode(&challenge.encrypted_secret),
        }),
        expected: challenge.credential,
    })
}

/// The uncompressed point of a PEM SubjectPublicKeyInfo.
fn spki_point(pem: &str) -> Result<Vec<u8>, DeviceCheckError> {
    let malformed = |reason: String| DeviceCheckError::Malformed {
        what: "attestation key",
        reason,
    };
    let spki = SubjectPublicKeyInfoDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| malformed(e.to_string()))?;
    let (_, parsed) =
        SubjectPublicKeyInfo::from_der(spki.as_ref()).map_err(|e| malformed(e.to_string()))?;
    Ok(parsed.subject_public_key.data.to_vec())
}

/// Checks `identity` and `quote` (the API's JSON answers) for `nonce`, with EK certificates
/// trusted up to the certificates in `ek_ca_pem`. Returns a report for people and scripts.
pub fn check_device(
    identity: &Value,
    quote: &Value,
    nonce: &[u8],
    ek_ca_pem: &[u8],
    expected_pcr_digest: Option<&str>,
) -> Result<Value, DeviceCheckError> {
    let ek_pem = text(identity, "ek_certificate", "EK certificate")?;
    let ek = CertificateDer::from_pem_slice(ek_pem.as_bytes()).map_err(|e| {
        DeviceCheckError::Malformed {
            what: "EK certificate",
            reason: e.to_string(),
        }
    })?;
    verify_ek_certificate(ek.as_ref(), ek_ca_pem)?;
    let (_, ek_parsed) = x509_parser::parse_x509_certificate(ek.as_ref()).map_err(|e| {
        DeviceCheckError::Malformed {
            what: "EK certificate",
            reason: e.to_string(),
        }
    })?;

    let ak_pem = text(identity, "attestation_key", "attestation key")?;
    if text(quote, "attestation_key", "attestation key")? != ak_pem {
        return Err(DeviceCheckError::AkChanged);
    }
    let ak_point = spki_point(ak_pem)?;
    let ak_spki = SubjectPublicKeyInfoDer::from_pem_slice(ak_pem.as_bytes()).map_err(|e| {
        DeviceCheckError::Malformed {
            what: "attestation key",
            reason: e.to_string(),
        }
    })?;

    let attest = base64_field(quote, "attest")?;
    let signature = base64_field(quote, "signature")?;
    let pcrs = pcr_values(quote)?;
    let verified = verify_quote(&ak_point, &attest, &signature, nonce, &pcrs)?;
    let digest = hex(&verified.pcr_digest);
    if let Some(expected) = expected_pcr_digest
        && !expected.eq_ignore_ascii_case(&digest)
    {
        return Err(DeviceCheckError::UnexpectedPcrDigest {
            found: digest,
            expected: expected.to_owned(),
        });
    }
    Ok(json!({
        "verified": true,
        "attestation_key_bound_to_ek": true,
        "ek_certificate": {
            "subject": ek_parsed.subject().to_string(),
            "issuer": ek_parsed.issuer().to_string(),
        },
        "attestation_key_sha256": hex(&Sha256::digest(ak_spki.as_ref())),
        "nonce": hex(nonce),
        "pcr_bank": "sha256",
        "pcrs": pcrs.iter().map(|(i, v)| (i.to_string(), Value::String(hex(v)))).collect::<serde_json::Map<_, _>>(),
        "pcr_digest": digest,
        "clock_ms": verified.clock,
        "reset_count": verified.reset_count,
        "restart_count": verified.restart_count,
    }))
}

fn text<'a>(
    document: &'a Value,
    field: &str,
    what: &'static str,
) -> Result<&'a str, DeviceCheckError> {
    document[field]
        .as_str()
        .ok_or(DeviceCheckError::Missing(what))
}

fn base64_field(document: &Value, field: &'static str) -> Result<Vec<u8>, DeviceCheckError> {
    let encoded = text(document, field, field)?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| DeviceCheckError::Malformed {
            what: field,
            reason: e.to_string(),
        })
}

fn pcr_values(quote: &Value) -> Result<Vec<(u8, Vec<u8>)>, DeviceCheckError> {
    let malformed = |reason: String| DeviceCheckError::Malformed {
        what: "PCR values",
        reason,
    };
    let Some(map) = quote["pcrs"].as_object() else {
        return Err(DeviceCheckError::Missing("PCR values"));
    };
    map.iter()
        .map(|(index, value)| {
            let index: u8 = index
                .parse()
                .map_err(|_| malformed(format!("{index:?} is not a PCR index")))?;
            let text = value
                .as_str()
                .ok_or_else(|| malformed(format!("PCR {index} is not a string")))?;
            Ok((
                index,
                unhex(text).ok_or_else(|| malformed(format!("PCR {index} is not hex")))?,
            ))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|p| u8::from_str_radix(p, 16).ok())
        })
        .collect()
}
