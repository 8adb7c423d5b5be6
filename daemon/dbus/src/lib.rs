//! roomd on D-Bus: the interface `org.roomd.Room1` at `/org/roomd/Room` under the name
//! `org.roomd` (docs/dbus.md).
//!
//! It mirrors the API from the core's typed model instead of a second description: `Run` takes
//! any entry of the core's command table and checks it with the API's permission table, each
//! top-level section of the status tree is a property (JSON text) with `PropertiesChanged` when
//! the core publishes a change, and every room event is an `Event` signal. roomd runs on without
//! the bus; `status.system.dbus` says whether the interface is served.

mod error;
mod interface;
mod roles;
mod service;

#[cfg(test)]
mod tests;

pub use error::{ERROR_PREFIX, RoomError};
pub use interface::{BUS_NAME, INTERFACE, OBJECT_PATH};
pub use roles::{ADMIN_GROUP, CONTROL_GROUP, role_of_uid};
pub use service::{DbusSetup, start};
