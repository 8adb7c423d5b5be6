use actix_web::web::{self, Path, ReqData};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::ApiState;
use crate::access::AuditDetail;
use crate::accounts::{Principal, Role};
use crate::body::{self, LimitedBody};
use crate::error::{ApiError, blocking};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewToken {
    name: String,
    role: Role,
}

pub(crate) async fn list(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(state.accounts.list_tokens())
}

/// Creates a token; its secret is in this response and nowhere else, ever.
pub(crate) async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    principal: ReqData<Principal>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let new: NewToken = body::parse(&req, &body)?;
    req.extensions_mut().insert(AuditDetail(format!(
        "create token {} as {}",
        new.name.chars().take(64).collect::<String>(),
        new.role
    )));
    let accounts = state.accounts.clone();
    let creator = principal.name.clone();
    let (info, secret) =
        blocking(move || Ok(accounts.create_token(&new.name, new.role, &creator)?)).await?;
    let mut body = json!(info);
    body["token"] = json!(secret.expose());
    Ok(HttpResponse::Created().json(body))
}

pub(crate) async fn revoke(
    req: HttpRequest,
    state: web::Data<ApiState>,
    id: Path<String>,
) -> Result<HttpResponse, ApiError> {
    req.extensions_mut().insert(AuditDetail(format!(
        "revoke token {}",
        id.chars().take(64).collect::<String>()
    )));
    let accounts = state.accounts.clone();
    blocking(move || Ok(accounts.revoke_token(&id)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}
