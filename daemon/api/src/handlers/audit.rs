use std::collections::BTreeMap;

use actix_web::HttpResponse;
use actix_web::web::{self, Query};

use crate::ApiState;
use crate::error::{ApiError, blocking};

/// `limit`: entries to return, newest first, 1..=1000 (default 100). `before`: only entries with
/// a smaller sequence number, for paging back. Parsed by hand so that an error names the
/// parameter.
pub(crate) async fn list(
    state: web::Data<ApiState>,
    query: Query<BTreeMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut limit = 100;
    let mut before = None;
    for (key, value) in query.iter() {
        match key.as_str() {
            "limit" => limit = number(key, value, 1, 1000)? as usize,
            "before" => before = Some(number(key, value, 0, u64::MAX)?),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {:?}; known: limit, before",
                    other.chars().take(32).collect::<String>()
                )));
            }
        }
    }
    let audit = state.audit.clone();
    let records = blocking(move || {
        audit
            .read(before, limit)
            .map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    Ok(HttpResponse::Ok().json(records))
}

pub(super) fn number(key: &str, value: &str, min: u64, max: u64) -> Result<u64, ApiError> {
    let shown: String = value.chars().take(32).collect();
    let n: u64 = value
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{key}: {shown:?} is not a whole number")))?;
    if n < min || n > max {
        return Err(ApiError::BadRequest(format!(
            "{key}: {n} is out of range {min}..={max}"
        )));
    }
    Ok(n)
}
