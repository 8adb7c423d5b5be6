use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::ApiState;

/// Healthy means the room core answers, not merely that the HTTP server runs.
pub(crate) async fn health(state: web::Data<ApiState>) -> HttpResponse {
    match tokio::time::timeout(Duration::from_secs(2), state.room.ping()).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({"status": "ok"})),
        _ => HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable"})),
    }
}
