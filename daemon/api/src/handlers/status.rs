use actix_web::HttpResponse;
use actix_web::web::{self, Path};

use crate::ApiState;
use crate::error::ApiError;
use roomd_core::status_at;

pub(crate) async fn whole(state: web::Data<ApiState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(state.room.status().json.clone())
}

/// A subtree, e.g. `audio/volume` or `audio.volume`.
pub(crate) async fn at_path(
    state: web::Data<ApiState>,
    path: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let status = state.room.status();
    let value = status_at(&status.tree, &path).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no status at {:?}",
            path.chars().take(128).collect::<String>()
        ))
    })?;
    Ok(HttpResponse::Ok().json(value))
}
