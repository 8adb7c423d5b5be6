use std::collections::BTreeMap;

use actix_web::web::{self, Query};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use tracing::Level;

use super::audit::number;
use crate::ApiState;
use crate::accounts::{Principal, Role};
use crate::error::ApiError;
use crate::logging::parse_level;

/// `limit`: records to return, newest first, 1..=1000 (default 200). `level`: the least severe
/// level to include (`error`, `warn`, `info`, `debug`, `trace`; default all). Parsed by hand so
/// that an error names the parameter.
pub(crate) async fn list(
    req: HttpRequest,
    state: web::Data<ApiState>,
    query: Query<BTreeMap<String, String>>,
) -> Result<HttpResponse, ApiError> {
    let mut limit = 200;
    let mut level = Level::TRACE;
    for (key, value) in query.iter() {
        match key.as_str() {
            "limit" => limit = number(key, value, 1, 1000)? as usize,
            "level" => {
                level = parse_level(value).ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "level: {:?} is not a level; known: error, warn, info, debug, trace",
                        value.chars().take(32).collect::<String>()
                    ))
                })?
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {:?}; known: limit, level",
                    other.chars().take(32).collect::<String>()
                )));
            }
        }
    }
    // Usernames (in a failed login: whatever was typed) are for admins only.
    let admin = req
        .extensions()
        .get::<Principal>()
        .is_some_and(|p| p.role == Role::Admin);
    Ok(HttpResponse::Ok().json(state.logs.read(level, limit, admin)))
}
