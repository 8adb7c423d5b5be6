//! The topic layout (docs/fleet.md): everything of one room under `roomd/<room_id>/`, so that a
//! broker ACL with the pattern `roomd/%u/#` confines each room to its own topics.

/// The prefix of every fleet topic.
pub const PREFIX: &str = "roomd";

/// One room's topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// `roomd/<id>/status`: the whole status tree, retained.
    pub status: String,
    /// `roomd/<id>/status/delta`: the leaves that changed since the previous publication.
    pub delta: String,
    /// `roomd/<id>/events`: every room event.
    pub events: String,
    /// `roomd/<id>/presence`: retained `online`; the last will sets `offline`.
    pub presence: String,
    /// `roomd/<id>/commands`: commands and configuration patches to the room.
    pub commands: String,
    /// `roomd/<id>/replies/`: response topics must start with this.
    pub replies_prefix: String,
}

impl Topics {
    /// The topics of room `room_id` (checked by the configuration: one topic level).
    pub fn for_room(room_id: &str) -> Topics {
        let base = format!("{PREFIX}/{room_id}");
        Topics {
            status: format!("{base}/status"),
            delta: format!("{base}/status/delta"),
            events: format!("{base}/events"),
            presence: format!("{base}/presence"),
            commands: format!("{base}/commands"),
            replies_prefix: format!("{base}/replies/"),
        }
    }
}
