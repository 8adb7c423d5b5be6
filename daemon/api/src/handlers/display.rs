use actix_web::http::header;
use actix_web::{HttpResponse, web};

use crate::ApiState;
use crate::error::ApiError;
use roomd_media::MediaError;

/// The frame the room display shows now, as PNG.
pub(crate) async fn snapshot(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let snapshots = state.display.clone();
    // Encoding a frame takes a few milliseconds of CPU: keep it off the async workers.
    let png = web::block(move || snapshots.png())
        .await
        .map_err(|e| ApiError::Internal(format!("snapshot task: {e}")))?
        .map_err(|e| match e {
            MediaError::NoDisplay => ApiError::Unavailable(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        })?;
    Ok(HttpResponse::Ok()
        .content_type("image/png")
        // A picture of the room: never kept by a browser or proxy.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(png))
}
