use actix_web::web;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};

use crate::api::ApiState;
use crate::api::access::AuditDetail;
use crate::api::body::{self, LimitedBody};
use crate::api::error::ApiError;

pub async fn get(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(state.room.config().to_json())
}

/// Applies a JSON merge patch (RFC 7396); validated like the file, persisted atomically.
pub async fn patch(
    req: HttpRequest,
    state: web::Data<ApiState>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let patch = body::parse_value(&req, &body)?;
    if !patch.is_object() {
        return Err(ApiError::InvalidConfig {
            field: None,
            message: "a configuration patch must be a JSON object, e.g. {\"audio\": {\"default_volume\": 40}}".into(),
        });
    }
    let before = state.room.config();
    let after = state.room.patch_config(patch).await?;
    let keys = before.changed_keys(&after);
    if !keys.is_empty() {
        req.extensions_mut()
            .insert(AuditDetail(format!("changed {}", keys.join(", "))));
    }
    Ok(HttpResponse::Ok().json(after.to_json()))
}

/// Every configuration key with its type, default, allowed values and meaning, for forms.
pub async fn schema() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "keys": crate::config::schema() }))
}
