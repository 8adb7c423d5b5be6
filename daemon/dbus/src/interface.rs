//! `org.roomd.Room1`: the API's commands, status and events, taken from the core's typed model
//! (the command table [`COMMANDS`], the status tree, [`RoomEvent`]) rather than written again.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use serde_json::Value;
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};

use crate::error::RoomError;
use crate::roles::{ADMIN_GROUP, CONTROL_GROUP, role_of_uid};
use roomd_api::accounts::{Permission, allows};
use roomd_api::audit::{AuditLog, NewAuditRecord};
use roomd_api::{ApiError, command_permission};
use roomd_core::{COMMANDS, RoomCommand, RoomEvent, RoomHandle};
use roomd_model::Role;

/// The well-known name roomd owns.
pub const BUS_NAME: &str = "org.roomd";
/// Where the room's object lives.
pub const OBJECT_PATH: &str = "/org/roomd/Room";
/// The interface's name.
pub const INTERFACE: &str = "org.roomd.Room1";

/// What the audit log records as the "method" of a D-Bus call (the API records HTTP methods).
const AUDIT_METHOD: &str = "DBUS";
/// What it records as the "path".
const AUDIT_PATH: &str = "org.roomd.Room1.Run";

/// The room as a D-Bus object.
pub(crate) struct Room1 {
    pub(crate) room: RoomHandle,
    pub(crate) audit: Arc<AuditLog>,
}

/// A caller as roomd sees it: its uid and the role it gets from its groups.
#[derive(Debug, Clone, Copy)]
struct Caller {
    uid: u32,
    role: Option<Role>,
}

#[interface(name = "org.roomd.Room1")]
impl Room1 {
    /// Runs the room command `name` (one of the `Commands` property, as
    /// `POST /api/v1/commands/{name}`) with its arguments as a JSON object (`""` or `"{}"` when
    /// there are none). Errors are `org.roomd.Error.<Kind>` with the API's messages. Root and
    /// members of `roomd-admin` may run every command, members of `roomd-control` the room's
    /// commands (not `update.reboot`, `system.reboot`, `system.power_off` or
    /// `system.factory_reset`). Every call is written to the audit log as `dbus:uid=<n>`.
    async fn run(
        &self,
        name: String,
        arguments_json: String,
        #[zbus(header)] header: Header<'_>,
        #[zbus(connection)] connection: &Connection,
    ) -> Result<(), RoomError> {
        let caller = caller_of(connection, &header).await?;
        let outcome = self.run_as(caller, &name, &arguments_json).await;
        self.record(caller, &name, &outcome).await;
        outcome
    }

    /// Every command's name, from the core's command table.
    #[zbus(property(emits_changed_signal = "const"))]
    pub(crate) fn commands(&self) -> Vec<String> {
        COMMANDS.iter().map(|c| c.name.to_owned()).collect()
    }

    /// Every name the `Event` signal can carry, from the core's event model.
    #[zbus(property(emits_changed_signal = "const"))]
    pub(crate) fn event_names(&self) -> Vec<String> {
        RoomEvent::NAMES.iter().map(|&n| n.to_owned()).collect()
    }

    /// `status.system` as JSON (as `GET /api/v1/status/system`).
    #[zbus(property)]
    fn system(&self) -> String {
        self.section("system")
    }

    /// `status.meeting` as JSON.
    #[zbus(property)]
    fn meeting(&self) -> String {
        self.section("meeting")
    }

    /// `status.audio` as JSON.
    #[zbus(property)]
    fn audio(&self) -> String {
        self.section("audio")
    }

    /// `status.video` as JSON.
    #[zbus(property)]
    fn video(&self) -> String {
        self.section("video")
    }

    /// `status.standby` as JSON.
    #[zbus(property)]
    fn standby(&self) -> String {
        self.section("standby")
    }

    /// `status.identity` as JSON.
    #[zbus(property)]
    fn identity(&self) -> String {
        self.section("identity")
    }

    /// `status.update` as JSON.
    #[zbus(property)]
    fn update(&self) -> String {
        self.section("update")
    }

    /// `status.host` as JSON (the operating system's settings as its services report them).
    #[zbus(property)]
    fn host(&self) -> String {
        self.section("host")
    }

    /// Every room event (`GET /api/v1/events`): its dotted name, its data as JSON, and its
    /// sequence number.
    #[zbus(signal)]
    pub(crate) async fn event(
        emitter: &SignalEmitter<'_>,
        name: &str,
        data_json: &str,
        seq: u64,
    ) -> zbus::Result<()>;
}

impl Room1 {
    fn section(&self, name: &str) -> String {
        self.room
            .status()
            .tree
            .get(name)
            .map(Value::to_string)
            .unwrap_or_else(|| "null".to_owned())
    }

    /// The API's checks in the API's order: the caller may control the room at all, the audit
    /// log can take the record, the arguments are bounded JSON, the command exists and its
    /// arguments fit, the caller's role has the command's permission; then the core runs it.
    async fn run_as(&self, caller: Caller, name: &str, arguments: &str) -> Result<(), RoomError> {
        let role = caller.role.filter(|&r| allows(r, Permission::RoomControl));
        let Some(role) = role else {
            return Err(ApiError::Forbidden(format!(
                "uid {} is neither root nor a member of {CONTROL_GROUP} or {ADMIN_GROUP}",
                caller.uid
            ))
            .into());
        };
        let audit = self.audit.clone();
        let writable = tokio::task::spawn_blocking(move || audit.check_writable()).await;
        if !matches!(writable, Ok(Ok(()))) {
            tracing::error!("refusing a D-Bus command that cannot be audited");
            return Err(ApiError::Unavailable(
                "the audit log cannot record this change (its disk is full or read-only), so \
                 the change was refused and nothing was changed; free space in the state \
                 directory"
                    .into(),
            )
            .into());
        }
        // The same bound as an API request body, so that no way in takes more.
        let limit = self.room.config().api.max_body_bytes;
        if arguments.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit }.into());
        }
        let args: Value = if arguments.trim().is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_str(arguments).map_err(|e| {
                ApiError::BadRequest(format!("arguments_json is not valid JSON: {e}"))
            })?
        };
        let mut command = RoomCommand::parse(name, &args).map_err(ApiError::from)?;
        // A factory reset names who asked in its log line (the audit log is wiped with it); a
        // reboot and a power-off in their events.
        if let Some(by) = command.requester_mut() {
            *by = format!("D-Bus caller uid {}", caller.uid);
        }
        let needed = command_permission(name);
        if !allows(role, needed) {
            return Err(ApiError::Forbidden(format!(
                "the command {name} needs the {needed:?} permission, which your role does not have"
            ))
            .into());
        }
        self.room
            .execute(command)
            .await
            .map_err(|e| RoomError::from(ApiError::from(e)))
    }

    async fn record(&self, caller: Caller, name: &str, outcome: &Result<(), RoomError>) {
        let record = NewAuditRecord {
            actor: format!("dbus:uid={}", caller.uid),
            role: caller.role,
            // A local caller has no address; `::` as for callers whose address is unknown.
            source: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            method: AUDIT_METHOD.to_owned(),
            path: AUDIT_PATH.to_owned(),
            status: match outcome {
                Ok(()) => 200,
                Err(e) => e.http_status(),
            },
            detail: Some(format!(
                "command {}",
                name.chars().take(64).collect::<String>()
            )),
        };
        let audit = self.audit.clone();
        match tokio::task::spawn_blocking(move || audit.append(record)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("audit log write failed: {e}"),
            Err(e) => tracing::error!("audit log task failed: {e}"),
        }
    }
}

/// Asks the bus which uid sent the call, and the group database which role that uid has.
async fn caller_of(connection: &Connection, header: &Header<'_>) -> Result<Caller, RoomError> {
    let internal = |what: String| RoomError::from(ApiError::Internal(what));
    let sender = header
        .sender()
        .ok_or_else(|| internal("the call has no sender".into()))?
        .to_owned();
    let bus = zbus::fdo::DBusProxy::new(connection)
        .await
        .map_err(|e| internal(format!("cannot ask the bus who called: {e}")))?;
    let uid = bus
        .get_connection_unix_user(sender.into())
        .await
        .map_err(|e| internal(format!("the bus does not say who called: {e}")))?;
    let role = tokio::task::spawn_blocking(move || role_of_uid(uid))
        .await
        .map_err(|e| internal(format!("cannot look up the caller's groups: {e}")))?;
    Ok(Caller { uid, role })
}
