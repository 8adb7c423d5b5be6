use actix_web::web::{self, Path};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::ApiState;
use crate::access::AuditDetail;
use crate::accounts::Role;
use crate::body::{self, LimitedBody};
use crate::error::{ApiError, blocking};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    role: Role,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewPassword {
    password: String,
}

pub(crate) async fn list(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(state.accounts.list_users())
}

pub(crate) async fn create(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let new: NewUser = body::parse(&req, &body)?;
    req.extensions_mut().insert(AuditDetail(format!(
        "create user {} as {}",
        new.username.chars().take(64).collect::<String>(),
        new.role
    )));
    let accounts = state.accounts.clone();
    let user =
        blocking(move || Ok(accounts.create_user(&new.username, &new.password, new.role)?)).await?;
    Ok(HttpResponse::Created().json(user))
}

pub(crate) async fn delete(
    req: HttpRequest,
    state: web::Data<ApiState>,
    username: Path<String>,
) -> Result<HttpResponse, ApiError> {
    req.extensions_mut().insert(AuditDetail(format!(
        "delete user {}",
        username.chars().take(64).collect::<String>()
    )));
    let accounts = state.accounts.clone();
    blocking(move || Ok(accounts.delete_user(&username)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}

pub(crate) async fn set_password(
    req: HttpRequest,
    state: web::Data<ApiState>,
    username: Path<String>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let new: NewPassword = body::parse(&req, &body)?;
    req.extensions_mut().insert(AuditDetail(format!(
        "set password of {}",
        username.chars().take(64).collect::<String>()
    )));
    let accounts = state.accounts.clone();
    blocking(move || Ok(accounts.set_password(&username, &new.password)?)).await?;
    Ok(HttpResponse::NoContent().finish())
}
