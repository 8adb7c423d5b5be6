use actix_web::{HttpResponse, web};

use crate::ApiState;
use crate::error::{ApiError, blocking};
use roomd_core::call_history::CallHistory;

/// The call history, newest first, within `meeting.history_retention_days`.
pub(crate) async fn list(state: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let config = state.room.config();
    let history = CallHistory::in_state_dir(&config.system.state_dir);
    let retention = config.meeting.history_retention_days;
    let calls = blocking(move || {
        history
            .list(retention)
            .map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    Ok(HttpResponse::Ok().json(calls))
}
