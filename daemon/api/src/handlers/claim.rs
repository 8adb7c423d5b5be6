use actix_web::web;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::access::AuditActor;
use crate::body::{self, LimitedBody};
use crate::error::{ApiError, blocking};
use crate::{ApiState, peer_ip};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClaimRequest {
    code: String,
    username: String,
    password: String,
}

/// Creates the first administrator with the one-time claim code.
pub(crate) async fn claim(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let request: ClaimRequest = body::parse(&req, &body)?;
    req.extensions_mut()
        .insert(AuditActor(request.username.chars().take(64).collect()));
    let accounts = state.accounts.clone();
    let source = peer_ip(&req);
    let user = blocking(move || {
        Ok(accounts.claim(&request.code, &request.username, &request.password, source)?)
    })
    .await?;
    state.room.mark_claimed().await?;
    tracing::info!(username = %user.username, "device claimed");
    Ok(HttpResponse::Created().json(json!({"username": user.username, "role": user.role})))
}
