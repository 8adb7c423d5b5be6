use actix_web::cookie::{Cookie, SameSite};
use actix_web::web::{self, ReqData};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::access::{AuditActor, SESSION_COOKIE};
use crate::accounts::{Principal, PrincipalKind};
use crate::body::{self, LimitedBody};
use crate::error::{ApiError, blocking};
use crate::{ApiState, peer_ip};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    username: String,
    password: String,
}

/// Logs in with username and password; the session lives in an HttpOnly cookie.
pub(crate) async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let login: LoginRequest = body::parse(&req, &body)?;
    req.extensions_mut()
        .insert(AuditActor(login.username.chars().take(64).collect()));
    let accounts = state.accounts.clone();
    let source = peer_ip(&req);
    let attempt = accounts.begin_login(&login.username, source)?;
    // An account under attack is paced: the attempt waits here, holding no thread.
    if !attempt.wait.is_zero() {
        tokio::time::sleep(attempt.wait).await;
    }
    let permit = accounts.password_check_permit(&attempt)?;
    let session =
        blocking(move || Ok(accounts.finish_login(attempt, &login.password, permit)?)).await?;
    let cookie = Cookie::build(SESSION_COOKIE, session.cookie.expose().to_owned())
        .http_only(true)
        .secure(true)
        .same_site(SameSite::Strict)
        .path("/")
        .finish();
    Ok(HttpResponse::Ok().cookie(cookie).json(json!({
        "username": session.principal.name,
        "role": session.principal.role,
        "csrf_token": session.csrf_token.expose(),
        "expires_idle_seconds": session.idle_timeout.as_secs(),
    })))
}

/// Who the caller is.
pub(crate) async fn get(principal: ReqData<Principal>) -> HttpResponse {
    HttpResponse::Ok().json(
        json!({"username": principal.name, "role": principal.role, "kind": principal.kind_name()}),
    )
}

/// Logs out: the session is forgotten and the cookie cleared.
pub(crate) async fn delete(
    req: HttpRequest,
    state: web::Data<ApiState>,
    principal: ReqData<Principal>,
) -> Result<HttpResponse, ApiError> {
    match principal.kind {
        PrincipalKind::Token { .. } => return Err(ApiError::Conflict(
            "this request uses an API token, not a session; revoke tokens with DELETE /api/v1/tokens/{id}".into(),
        )),
        PrincipalKind::Certificate { .. } => return Err(ApiError::Conflict(
            "this request is authenticated by a client certificate, not a session; there is nothing to log out".into(),
        )),
        PrincipalKind::Session => {}
    }
    if let Some(cookie) = req.cookie(SESSION_COOKIE) {
        state.accounts.logout(cookie.value());
    }
    let mut removal = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .secure(true)
        .http_only(true)
        .finish();
    removal.make_removal();
    Ok(HttpResponse::NoContent().cookie(removal).finish())
}
