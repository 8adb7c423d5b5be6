use actix_web::http::header::ACCEPT;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::ApiState;
use crate::error::ApiError;
use crate::metrics::{ApiMetrics, Format, render};

/// `GET /api/v1/metrics`: computed now from the status snapshot and the process.
pub(crate) async fn metrics(
    req: HttpRequest,
    state: web::Data<ApiState>,
    api: Option<web::Data<ApiMetrics>>,
) -> Result<HttpResponse, ApiError> {
    let api = api.ok_or_else(|| ApiError::Internal("API metrics missing".into()))?;
    let format = Format::from_accept(req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()));
    let snapshot = state.room.status();
    // /proc and /sys are small files but still file system calls: off the async worker.
    let body = web::block(move || render(&snapshot.status, &api, format))
        .await
        .map_err(|e| ApiError::Internal(format!("metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type(format.content_type())
        .body(body))
}
