//! Touch panel pairing: `POST /api/v1/pairing` asks (the code appears on the room display only),
//! `POST /api/v1/pairing/{request_id}` with the code answers with a `room-control` token.
//! Both are public (a panel has no credentials yet) and audited by the access middleware.

use actix_web::web::{self, Path};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::access::{AuditActor, AuditDetail};
use crate::accounts::PAIRING_TTL;
use crate::body::{self, LimitedBody};
use crate::error::{ApiError, blocking};
use crate::{ApiState, peer_ip};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRequest {
    /// What the panel calls itself, e.g. "Table panel"; names the token.
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    code: String,
}

pub(crate) async fn request(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let new: NewRequest = body::parse(&req, &body)?;
    let panel = new.name.chars().take(48).collect::<String>();
    req.extensions_mut()
        .insert(AuditActor(format!("panel {panel}")));
    req.extensions_mut()
        .insert(AuditDetail(format!("pairing requested by panel {panel}")));
    let accounts = state.accounts.clone();
    let source = peer_ip(&req);
    // Writes the code file for the console (atomically, with fsync): off the async workers.
    let answer = blocking(move || Ok(accounts.request_pairing(&new.name, source)?)).await?;
    // The code leaves the display when its request expires, even if nobody answers.
    let accounts = state.accounts.clone();
    let id = answer.request_id.clone();
    actix_web::rt::spawn(async move {
        tokio::time::sleep(PAIRING_TTL).await;
        accounts.expire_pairing(&id);
    });
    Ok(HttpResponse::Created().json(answer))
}

pub(crate) async fn complete(
    req: HttpRequest,
    state: web::Data<ApiState>,
    request_id: Path<String>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let answer: Answer = body::parse(&req, &body)?;
    req.extensions_mut().insert(AuditActor("pairing".into()));
    let accounts = state.accounts.clone();
    let source = peer_ip(&req);
    let id = request_id.into_inner();
    let (info, secret) =
        blocking(move || Ok(accounts.complete_pairing(&id, &answer.code, source)?)).await?;
    req.extensions_mut().insert(AuditDetail(format!(
        "paired {}: token {} ({})",
        info.name, info.id, info.role
    )));
    let mut body = json!(info);
    body["token"] = json!(secret.expose());
    Ok(HttpResponse::Created().json(body))
}
