//! What the core publishes to subscribers.

use serde::Serialize;
use serde_json::Value;

/// Something that happened in the room, numbered in order since the daemon started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub seq: u64,
    /// RFC 3339, UTC.
    pub time: String,
    pub name: String,
    pub data: Value,
}

/// One message on the core's broadcast channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// A leaf (or a whole new subtree) of the status tree changed.
    StatusChanged {
        path: String,
        value: Value,
    },
    Event(Event),
}
