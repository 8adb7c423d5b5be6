//! Attestation: a TPM quote of the boot measurements for a verifier's nonce, and the answer to
//! a verifier's credential challenge that binds the attestation key to the EK.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use super::identity::{base64_of, pem_block};
use crate::ApiState;
use crate::body::{self, LimitedBody};
use crate::error::ApiError;
use roomd_identity::tls::DeviceKey;

/// Nonce length limits in bytes: enough entropy, and within a TPM2B_DATA (64 bytes).
const NONCE_MIN_BYTES: usize = 8;
const NONCE_MAX_BYTES: usize = 32;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuoteRequest {
    /// Hex, chosen by the verifier.
    nonce: String,
}

/// A TPM quote over PCRs 0–7 and 11 (SHA-256) with the verifier's nonce, signed by the AK.
pub(crate) async fn quote(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let request: QuoteRequest = body::parse(&req, &body)?;
    let nonce = parse_nonce(&request.nonce)?;
    let tpm = attesting_tpm(&state)?;
    let ak = tpm
        .attestation()
        .map(|a| a.ak_public.spki_der())
        .unwrap_or_default();
    let quote = web::block(move || tpm.quote(nonce))
        .await
        .map_err(|e| ApiError::Internal(format!("the quote task failed: {e}")))?
        .map_err(|e| ApiError::Internal(format!("cannot quote: {e}")))?;
    let pcrs: serde_json::Map<String, Value> = quote
        .pcrs
        .iter()
        .map(|(index, value)| (index.to_string(), Value::String(hex(value))))
        .collect();
    Ok(HttpResponse::Ok().json(json!({
        "attest": base64_of(&quote.attest),
        "signature": base64_of(&quote.signature.to_der()),
        "pcr_bank": "sha256",
        "pcrs": pcrs,
        "attestation_key": pem_block("PUBLIC KEY", &ak),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivateRequest {
    /// TPM2B_ID_OBJECT contents from TPM2_MakeCredential, base64.
    credential_blob: String,
    /// TPM2B_ENCRYPTED_SECRET contents, base64.
    encrypted_secret: String,
}

/// Answers a verifier's credential challenge (TPM2_ActivateCredential with the AK and the EK):
/// proof that the attestation key lives in the TPM the EK certificate was issued for.
pub(crate) async fn activate(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let request: ActivateRequest = body::parse(&req, &body)?;
    let decode = |field: &str, text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| ApiError::Unprocessable {
                field: Some(field.to_owned()),
                message: format!("{field}: not base64 ({e})"),
            })
    };
    let blob = decode("credential_blob", &request.credential_blob)?;
    let secret = decode("encrypted_secret", &request.encrypted_secret)?;
    let tpm = attesting_tpm(&state)?;
    let credential = web::block(move || tpm.activate_credential(blob, secret))
        .await
        .map_err(|e| ApiError::Internal(format!("the activation task failed: {e}")))?
        // The TPM refuses a challenge made for another EK or AK name: the caller's problem.
        .map_err(|e| ApiError::Unprocessable {
            field: None,
            message: format!("the TPM did not release the credential: {e}"),
        })?;
    Ok(HttpResponse::Ok().json(json!({ "credential": base64_of(&credential) })))
}

/// The TPM, if this device has one with attestation set up.
fn attesting_tpm(state: &ApiState) -> Result<roomd_identity::tpm::Tpm, ApiError> {
    let DeviceKey::Tpm(key) = state.identity.key() else {
        return Err(ApiError::Conflict(
            "this device has no TPM (identity.backend = \"software\"): nothing to attest".into(),
        ));
    };
    let tpm = key.tpm().clone();
    if tpm.attestation().is_none() {
        return Err(ApiError::Unavailable(
            "attestation could not be set up in this TPM; roomd's start-up log says why".into(),
        ));
    }
    Ok(tpm)
}

fn parse_nonce(text: &str) -> Result<Vec<u8>, ApiError> {
    let invalid = || ApiError::Unprocessable {
        field: Some("nonce".to_owned()),
        message: format!(
            "nonce: expected {NONCE_MIN_BYTES} to {NONCE_MAX_BYTES} bytes as hexadecimal \
             ({} to {} hex digits)",
            2 * NONCE_MIN_BYTES,
            2 * NONCE_MAX_BYTES
        ),
    };
    if !text.len().is_multiple_of(2)
        || !(2 * NONCE_MIN_BYTES..=2 * NONCE_MAX_BYTES).contains(&text.len())
    {
        return Err(invalid());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(invalid)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_are_hex_of_a_bounded_length() {
        assert_eq!(parse_nonce("00ff10aa00ff10aa").unwrap().len(), 8);
        assert_eq!(parse_nonce(&"ab".repeat(32)).unwrap().len(), 32);
        for bad in [
            "",
            "00ff10aa00ff10a",
            "00ff10aa00ff10zz",
            &"ab".repeat(33),
            "éé00ff10aa00ff10",
        ] {
            assert!(parse_nonce(bad).is_err(), "{bad:?}");
        }
    }
}
