use actix_web::web::{self, Path};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde_json::{Value, json};

use crate::ApiState;
use crate::access::AuditDetail;
use crate::accounts::{Permission, Principal, allows};
use crate::body::{self, LimitedBody};
use crate::error::ApiError;
use roomd_core::RoomCommand;

/// The permission a command needs besides the route's `RoomControl` (docs/permissions.md,
/// "Commands"). The D-Bus interface asks the same question, so both ways in agree.
pub fn command_permission(name: &str) -> Permission {
    match name {
        "update.reboot" => Permission::FirmwareUpdate,
        _ => Permission::RoomControl,
    }
}

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
    // The route needs RoomControl; some commands need more (firmware: admin only).
    let needed = command_permission(&name);
    let role = req.extensions().get::<Principal>().map(|p| p.role);
    if !role.is_some_and(|role| allows(role, needed)) {
        return Err(ApiError::Forbidden(format!(
            "the command {} needs the {needed:?} permission, which your role does not have",
            name.as_str()
        )));
    }
    req.extensions_mut()
        .insert(AuditDetail(format!("command {}", name.as_str())));
    state.room.execute(command).await?;
    Ok(HttpResponse::Ok().json(json!({"result": Value::from("ok")})))
}
