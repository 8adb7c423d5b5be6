//! The device identity: what it is (`GET /identity`), a CSR for enrolment, and installing the
//! CA-issued certificate chain. Attestation is in `attestation.rs`.

use actix_web::web;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use base64::Engine;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiState;
use crate::access::AuditDetail;
use crate::body::{self, LimitedBody};
use crate::error::ApiError;
use roomd_identity::tls::{DeviceIdentity, DeviceKey, InstallError, to_pem};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InstallRequest {
    /// PEM, leaf first.
    certificate_chain: String,
}

pub(crate) async fn get(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(document(&state.identity))
}

/// A PKCS#10 request signed by the device key, for the fleet's CA.
pub(crate) async fn csr(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let identity = state.identity.clone();
    // The TPM blocks while it signs: keep that off the async workers.
    let pem = web::block(move || identity.certification_request())
        .await
        .map_err(|e| ApiError::Internal(format!("the CSR task failed: {e}")))?
        .map_err(|e| ApiError::Internal(format!("cannot make the CSR: {e}")))?;
    Ok(HttpResponse::Ok().json(json!({
        "csr": pem,
        "key_sha256": state.identity.key().fingerprint(),
    })))
}

/// Installs a CA-issued chain for the device key; served from the next handshake on.
pub(crate) async fn put_certificate(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let request: InstallRequest = body::parse(&req, &body)?;
    let identity = state.identity.clone();
    let chain = web::block(move || identity.install_chain(request.certificate_chain.as_bytes()))
        .await
        .map_err(|e| ApiError::Internal(format!("the installation task failed: {e}")))?
        .map_err(|e| match e {
            InstallError::Refused(reason) => ApiError::Unprocessable {
                field: Some("certificate_chain".to_owned()),
                message: format!("certificate_chain: {reason}"),
            },
            InstallError::Failed(e) => ApiError::Internal(e.to_string()),
        })?;
    state.room.set_identity(state.identity.status()).await?;
    req.extensions_mut().insert(AuditDetail(format!(
        "installed a certificate chain of {} certificates, certificate SHA-256 {}",
        chain.len(),
        state.identity.certificate_sha256()
    )));
    Ok(HttpResponse::Ok().json(document(&state.identity)))
}

pub(super) fn base64_of(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn document(identity: &DeviceIdentity) -> Value {
    let status = identity.status();
    let key = identity.key();
    let attestation = match key {
        DeviceKey::Tpm(key) => key.tpm().attestation(),
        DeviceKey::Software(_) => None,
    };
    json!({
        "ek_certificate": attestation
            .and_then(|a| a.ek_certificate.as_deref())
            .map(|der| pem_block("CERTIFICATE", der)),
        "attestation_key": attestation.map(|a| pem_block("PUBLIC KEY", &a.ak_public.spki_der())),
        "attestation_key_public_area": attestation.map(|a| base64_of(&a.ak_public_area)),
        "backend": status.backend,
        "warning": status.warning,
        "key_sha256": status.key_sha256,
        "public_key": pem_block("PUBLIC KEY", &key.spki_der()),
        "certificate_chain": to_pem(&identity.served_chain()),
        "certificate_sha256": status.certificate_sha256,
        "self_signed": identity.serves_self_signed(),
    })
}

pub(super) fn pem_block(label: &str, der: &[u8]) -> String {
    let encoded = base64_of(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}
