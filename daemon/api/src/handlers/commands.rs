use actix_web::web::{self, Path};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde_json::{Value, json};

use crate::ApiState;
use crate::access::AuditDetail;
use crate::accounts::{Permission, Principal, PrincipalKind, allows};
use crate::body::{self, LimitedBody};
use crate::error::ApiError;
use roomd_core::RoomCommand;

/// The permission a command needs besides the route's `RoomControl` (docs/permissions.md,
/// "Commands"). The D-Bus interface asks the same question, so both ways in agree.
pub fn command_permission(name: &str) -> Permission {
    match name {
        "update.reboot" => Permission::FirmwareUpdate,
        "system.factory_reset" => Permission::FactoryReset,
        "system.reboot" | "system.power_off" => Permission::SystemPower,
        _ => Permission::RoomControl,
    }
}

/// Who asked, as the log line after a factory reset says it: `user alice`, `token harness
/// (token:1a2b3c4d)` or `client certificate cert:…` (the audit log's names, which are unique).
fn who(principal: &Principal) -> String {
    match &principal.kind {
        PrincipalKind::Session => format!("user {}", principal.name),
        PrincipalKind::Token { .. } => {
            format!("token {} ({})", principal.name, principal.audit_name())
        }
        PrincipalKind::Certificate { .. } => {
            format!("client certificate {}", principal.audit_name())
        }
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
    let mut command = RoomCommand::parse(&name, &args)?;
    // The route needs RoomControl; some commands need more (firmware: admin only).
    let needed = command_permission(&name);
    let principal = req.extensions().get::<Principal>().cloned();
    let role = principal.as_ref().map(|p| p.role);
    if !role.is_some_and(|role| allows(role, needed)) {
        return Err(ApiError::Forbidden(format!(
            "the command {} needs the {needed:?} permission, which your role does not have",
            name.as_str()
        )));
    }
    req.extensions_mut()
        .insert(AuditDetail(format!("command {}", name.as_str())));
    // A factory reset remembers who asked: the log line after the wipe names them (the audit
    // log, which also does, is wiped).
    let resets = matches!(command, RoomCommand::FactoryReset { .. });
    // A factory reset, a reboot and a power-off remember who asked (log line, event).
    if let Some(by) = command.requester_mut() {
        *by = principal.as_ref().map(who).unwrap_or_default();
    }
    state.room.execute(command).await?;
    if resets {
        // Accepted, not done: the marker is written, and roomd restarts to wipe its state
        // once this answer (and its audit record) is out.
        return Ok(HttpResponse::Accepted().json(json!({"result": Value::from("restarting")})));
    }
    Ok(HttpResponse::Ok().json(json!({"result": Value::from("ok")})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use roomd_model::Role;

    #[test]
    fn only_admins_reboot_or_power_off_the_box() {
        for name in ["system.reboot", "system.power_off"] {
            let needed = command_permission(name);
            assert_eq!(needed, Permission::SystemPower, "{name}");
            let allowed: Vec<Role> = Role::ALL
                .into_iter()
                .filter(|&role| allows(role, Permission::RoomControl) && allows(role, needed))
                .collect();
            assert_eq!(allowed, [Role::Admin], "{name}");
            assert!(!allows(Role::RoomControl, needed), "{name}");
        }
        assert_eq!(
            command_permission("audio.volume.set"),
            Permission::RoomControl
        );
    }
}
