//! Serving `org.roomd.Room1`: connecting to the configured bus, owning `org.roomd`, and passing
//! the core's status changes and events on as D-Bus signals.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use zbus::Variant;
use zbus::fdo::{RequestNameFlags, RequestNameReply};
use zbus::names::InterfaceName;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, connection};

use crate::interface::{BUS_NAME, INTERFACE, OBJECT_PATH, Room1};
use roomd_api::audit::AuditLog;
use roomd_core::{DbusState, DbusStatus, Notification, RoomHandle};

/// What the D-Bus service needs.
pub struct DbusSetup {
    /// The room core: commands go in, status and events come out.
    pub room: RoomHandle,
    /// Where commands run through D-Bus are recorded, as API commands are.
    pub audit: Arc<AuditLog>,
    /// `dbus.bus`: `system`, `none`, or a D-Bus address.
    pub bus: String,
}

/// Serves the interface until the core stops (or the task is aborted). A bus that cannot be
/// reached or a name that cannot be owned is logged and shown in `status.system.dbus`; roomd
/// runs on without D-Bus.
pub fn start(setup: DbusSetup) -> JoinHandle<()> {
    tokio::spawn(run(setup))
}

async fn run(setup: DbusSetup) {
    let DbusSetup { room, audit, bus } = setup;
    let report = |state, detail: String| {
        let room = room.clone();
        let bus = bus.clone();
        async move {
            let _ = room.dbus_report(DbusStatus { state, bus, detail }).await;
        }
    };
    if bus == "none" {
        tracing::info!("dbus.bus is \"none\": org.roomd.Room1 is not served");
        return;
    }
    // Subscribed before the name is owned, so that nothing published after is missed.
    let events = room.subscribe();
    let status = room.watch_status();
    let connection = match connect(&bus, &room, audit).await {
        Ok(connection) => connection,
        Err(detail) => {
            tracing::warn!("{detail}; roomd runs on without its D-Bus interface");
            report(DbusState::Failed, detail).await;
            return;
        }
    };
    tracing::info!("serving {INTERFACE} at {OBJECT_PATH} as {BUS_NAME} on the {bus} D-Bus");
    report(DbusState::Serving, String::new()).await;
    forward(&connection, status, events).await;
}

async fn connect(bus: &str, room: &RoomHandle, audit: Arc<AuditLog>) -> Result<Connection, String> {
    let builder = if bus == "system" {
        connection::Builder::system()
    } else {
        connection::Builder::address(bus)
    };
    let room1 = Room1 {
        room: room.clone(),
        audit,
    };
    let connection = builder
        .serve_at(OBJECT_PATH, room1)
        .build()
        .await
        .map_err(|e| format!("cannot connect to the {bus} D-Bus: {e}"))?;
    // No queueing and no replacing: a second roomd (or an impostor that got the name first)
    // is a fault to show, not something to wait behind or take over from.
    let taken = || format!("{BUS_NAME} is already owned by another program on the {bus} D-Bus");
    let reply = connection
        .request_name_with_flags(BUS_NAME, RequestNameFlags::DO_NOT_QUEUE)
        .await
        .map_err(|e| match e {
            zbus::Error::NameTaken => taken(),
            other => format!("cannot own {BUS_NAME} on the {bus} D-Bus: {other}"),
        })?;
    match reply {
        RequestNameReply::PrimaryOwner | RequestNameReply::AlreadyOwner => Ok(connection),
        RequestNameReply::Exists | RequestNameReply::InQueue => Err(taken()),
    }
}

/// Passes status changes on as `PropertiesChanged` and events as `Event` until the core stops.
async fn forward(
    connection: &Connection,
    mut status: tokio::sync::watch::Receiver<Arc<roomd_core::StatusSnapshot>>,
    mut events: tokio::sync::broadcast::Receiver<Notification>,
) {
    let emitter = match SignalEmitter::new(connection, OBJECT_PATH) {
        Ok(emitter) => emitter,
        Err(e) => {
            tracing::error!("cannot emit signals at {OBJECT_PATH}: {e}");
            return;
        }
    };
    let mut sent = sections(&status.borrow_and_update().tree);
    loop {
        tokio::select! {
            changed = status.changed() => {
                // The core's task has ended: roomd is stopping.
                if changed.is_err() {
                    return;
                }
                let now = sections(&status.borrow_and_update().tree);
                emit_changes(&emitter, &sent, &now).await;
                sent = now;
            }
            notification = events.recv() => match notification {
                Ok(Notification::Event(event)) => {
                    let data = serde_json::to_value(&event.event)
                        .ok()
                        .and_then(|v| v.get("data").cloned())
                        .unwrap_or(Value::Null)
                        .to_string();
                    if let Err(e) = Room1::event(&emitter, event.name(), &data, event.seq).await {
                        tracing::warn!("cannot emit the D-Bus event {}: {e}", event.name());
                    }
                }
                Ok(Notification::StatusChanged { .. }) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!("D-Bus event signals fell behind: {missed} events not sent");
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}

/// The status tree's top-level sections as JSON text, by property name (`system` → `System`).
fn sections(tree: &Value) -> HashMap<String, String> {
    let empty = Map::new();
    tree.as_object()
        .unwrap_or(&empty)
        .iter()
        .map(|(key, value)| (property_name(key), value.to_string()))
        .collect()
}

/// The D-Bus property of a status section: its name with a capital initial, as zbus names the
/// interface's getters.
pub(crate) fn property_name(section: &str) -> String {
    let mut chars = section.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

async fn emit_changes(
    emitter: &SignalEmitter<'_>,
    before: &HashMap<String, String>,
    now: &HashMap<String, String>,
) {
    let changed: HashMap<&str, Variant<'_>> = now
        .iter()
        .filter(|(name, value)| before.get(*name) != Some(*value))
        .map(|(name, value)| (name.as_str(), Variant::from(value.as_str())))
        .collect();
    if changed.is_empty() {
        return;
    }
    let interface = InterfaceName::from_static_str_unchecked(INTERFACE);
    let result =
        zbus::fdo::Properties::properties_changed(emitter, interface, changed, Cow::Borrowed(&[]))
            .await;
    if let Err(e) = result {
        tracing::warn!("cannot emit PropertiesChanged: {e}");
    }
}
