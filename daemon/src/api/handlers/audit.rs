use actix_web::HttpResponse;
use actix_web::web::{self, Query};
use serde::Deserialize;

use crate::api::ApiState;
use crate::api::error::{ApiError, blocking};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries to return, newest first: 1..=1000, default 100.
    limit: Option<usize>,
    /// Only entries with a smaller sequence number (for paging back).
    before: Option<u64>,
}

pub async fn list(
    state: web::Data<ApiState>,
    query: Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit: {limit} is out of range 1..=1000"
        )));
    }
    let before = query.before;
    let audit = state.audit.clone();
    let records = blocking(move || {
        audit
            .read(before, limit)
            .map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    Ok(HttpResponse::Ok().json(records))
}
