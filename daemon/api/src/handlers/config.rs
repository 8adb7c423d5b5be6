use actix_web::web;
use actix_web::{HttpMessage, HttpRequest, HttpResponse};

use crate::ApiState;
use crate::access::AuditDetail;
use crate::accounts::{Principal, Role};
use crate::body::{self, LimitedBody};
use crate::error::ApiError;
use roomd_model::config::{ADMIN_ONLY_KEYS, Config};

pub(crate) async fn get(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok().json(state.room.config().to_json())
}

/// Applies a JSON merge patch (RFC 7396); validated like the file, persisted atomically.
pub(crate) async fn patch(
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
    let mut patch = patch;
    let secrets = roomd_model::config::take_from_patch(&mut patch);
    let before = state.room.config();
    refuse_admin_only_keys(&req, &before, &patch)?;
    // Checked before the secret is stored, so that a refused patch stores nothing.
    before.apply_merge_patch(&patch)?;
    store_secrets(&state, secrets).await?;
    let after = state.room.patch_config(patch).await?;
    let keys = before.changed_keys(&after);
    if !keys.is_empty() {
        req.extensions_mut()
            .insert(AuditDetail(format!("changed {}", keys.join(", "))));
    }
    Ok(HttpResponse::Ok().json(after.to_json()))
}

/// New secrets go into the sealed store, cleared ones out of it.
async fn store_secrets(
    state: &web::Data<ApiState>,
    secrets: roomd_model::config::PatchSecrets,
) -> Result<(), ApiError> {
    let store = state.secrets.clone();
    web::block(move || {
        for secret in &secrets.new {
            store.put(secret.store_name, secret.value.expose().as_bytes())?;
        }
        for name in &secrets.cleared {
            store.remove(name)?;
        }
        Ok::<(), roomd_identity::secrets::SecretsError>(())
    })
    .await
    .map_err(|e| ApiError::Internal(format!("the secret store task failed: {e}")))?
    .map_err(|e| ApiError::Internal(format!("cannot store the secret: {e}")))
}

/// Keys in [`ADMIN_ONLY_KEYS`] may be changed by an admin only (an integrator also has
/// `ConfigWrite`). A patch that does not apply is left to the core, which names its error.
fn refuse_admin_only_keys(
    req: &HttpRequest,
    before: &Config,
    patch: &serde_json::Value,
) -> Result<(), ApiError> {
    let Ok(after) = before.apply_merge_patch(patch) else {
        return Ok(());
    };
    let role = req.extensions().get::<Principal>().map(|p| p.role);
    if role == Some(Role::Admin) {
        return Ok(());
    }
    match before
        .changed_keys(&after)
        .into_iter()
        .find(|key| ADMIN_ONLY_KEYS.contains(&key.as_str()))
    {
        Some(key) => Err(ApiError::Forbidden(format!(
            "only an admin may change {key}: it decides how hard this device is to get into"
        ))),
        None => Ok(()),
    }
}

/// Every configuration key with its type, default, allowed values and meaning, for forms.
pub(crate) async fn schema() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "keys": roomd_model::config::schema() }))
}
