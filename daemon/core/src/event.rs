//! What the core publishes to subscribers.

use serde::Serialize;
use serde_json::Value;

/// Something that happened in the room, numbered in order since the daemon started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// 1 for the first event since the daemon started, then one more for each.
    pub seq: u64,
    /// RFC 3339, UTC.
    pub time: String,
    /// Dotted name, e.g. `config.changed` or `meeting.participant.left`.
    pub name: String,
    /// The event's details; a JSON object whose fields depend on `name`.
    pub data: Value,
}

/// One message on the core's broadcast channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// A leaf (or a whole new subtree) of the status tree changed.
    StatusChanged {
        /// Dotted path in the status tree, e.g. `audio.volume`.
        path: String,
        /// The new value; `null` when the subtree went away.
        value: Value,
    },
    /// An event, after the status changes it caused.
    Event(Event),
}
