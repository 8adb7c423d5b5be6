use actix_web::web::{self, Path};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde_json::{Value, json};

use crate::ApiState;
use crate::access::AuditDetail;
use crate::body::{self, LimitedBody};
use crate::error::ApiError;
use roomd_core::RoomCommand;

/// Runs a room command. A command without arguments may be sent with an empty body.
pub(crate) async fn run(
    req: HttpRequest,
    state: web::Data<ApiState>,
    name: Path<String>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let args = if body.is_empty() {
        json!({})
    } else {
        body::parse_value(&req, &body)?
    };
    let command = RoomCommand::parse(&name, &args)?;
    req.extensions_mut()
        .insert(AuditDetail(format!("command {}", name.as_str())));
    state.room.execute(command).await?;
    Ok(HttpResponse::Ok().json(json!({"result": Value::from("ok")})))
}
