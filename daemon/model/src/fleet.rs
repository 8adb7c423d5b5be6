//! The fleet channel as data: `status.fleet`, which the fleet worker (`roomd-fleet`) fills and
//! the room core publishes.

use serde::Serialize;

/// `status.fleet`: whether the room is connected to its fleet broker (present only when
/// `fleet.broker` is set).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FleetStatus {
    /// Whether the MQTT session with the broker is up (CONNACK received, not lost since).
    pub connected: bool,
    /// `fleet.broker` as configured.
    pub broker: String,
    /// The room's id in topics (`roomd/<room_id>/…`); empty until known.
    pub room_id: String,
    /// Why the last connection failed or ended; empty when none did.
    pub last_error: String,
    /// How many times the room connected since roomd started.
    pub connects: u64,
}

impl FleetStatus {
    /// Before the first attempt to connect.
    pub fn starting(broker: &str, room_id: &str) -> FleetStatus {
        FleetStatus {
            connected: false,
            broker: broker.to_owned(),
            room_id: room_id.to_owned(),
            last_error: String::new(),
            connects: 0,
        }
    }
}
