//! What the media engine follows of the room's status: the core owns it, the engine reads each
//! published snapshot into this typed view and applies it to the pipelines.

use serde::Deserialize;
use serde_json::Value;

use roomd_model::config::{CameraPosition, Layout, SelfviewMode, SelfviewPosition};

/// The room's status as the pipelines need it.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomView {
    /// The room's name (`status.system.name`), shown on the display.
    pub name: String,
    /// Whether the room has an owner; an unclaimed room shows only its claim code.
    pub claimed: bool,
    /// Speaker volume, 0–100.
    pub volume: u8,
    /// Whether the microphones are muted (they then send digital silence).
    pub muted: bool,
    /// How the display arranges the pictures.
    pub layout: Layout,
    /// When the room's own camera is shown on its display.
    pub selfview: SelfviewMode,
    /// Where the self-view is placed.
    pub selfview_position: SelfviewPosition,
    /// Whether the camera is on (off sends black).
    pub camera_on: bool,
    /// Pan, tilt and zoom.
    pub camera_position: CameraPosition,
    /// Whether content is being shared.
    pub content_active: bool,
    /// Whether the room is in standby (the display shows only the standby screen).
    pub standby: bool,
    /// The room is joining, waiting in a lobby, in, or rejoining a meeting: only then is
    /// anything encoded (nothing to send to otherwise, and no encoded copy of the room exists).
    pub in_meeting: bool,
    /// The meeting has streams and every one is encrypted (`status.meeting.encrypted`, measured
    /// on the transports): only then does the display say ENCRYPTED.
    pub encrypted: bool,
}

/// Meeting states in which the room sends (or is about to send) its picture and sound.
const MEETING_STATES: [&str; 4] = ["joining", "lobby", "connected", "reconnecting"];

#[derive(Deserialize)]
struct Tree {
    system: System,
    audio: Audio,
    video: Video,
    standby: State,
    /// Added by the meetings feature; a tree without it is a room that is not in a meeting.
    #[serde(default)]
    meeting: Option<MeetingView>,
}

#[derive(Deserialize)]
struct MeetingView {
    state: String,
    /// Absent means not measured: not encrypted.
    #[serde(default)]
    encrypted: bool,
}

#[derive(Deserialize)]
struct System {
    name: String,
    claimed: bool,
}

#[derive(Deserialize)]
struct Audio {
    volume: u8,
    microphones: Microphones,
}

#[derive(Deserialize)]
struct Microphones {
    muted: bool,
}

#[derive(Deserialize)]
struct Video {
    layout: Layout,
    selfview: Selfview,
    camera: CameraView,
    content: State,
}

#[derive(Deserialize)]
struct Selfview {
    mode: SelfviewMode,
    position: SelfviewPosition,
}

#[derive(Deserialize)]
struct CameraView {
    state: String,
    position: CameraPosition,
}

#[derive(Deserialize)]
struct State {
    state: String,
}

impl RoomView {
    /// Reads the view from a status tree. The tree comes from the core, so a failure means the
    /// status model changed without this view: the engine then keeps the privacy-safe default.
    pub fn from_status(tree: &Value) -> Option<RoomView> {
        let tree = Tree::deserialize(tree).ok()?;
        Some(RoomView {
            name: tree.system.name,
            claimed: tree.system.claimed,
            volume: tree.audio.volume,
            muted: tree.audio.microphones.muted,
            layout: tree.video.layout,
            selfview: tree.video.selfview.mode,
            selfview_position: tree.video.selfview.position,
            camera_on: tree.video.camera.state == "on",
            camera_position: tree.video.camera.position,
            content_active: tree.video.content.state == "active",
            standby: tree.standby.state == "on",
            in_meeting: tree
                .meeting
                .as_ref()
                .is_some_and(|m| MEETING_STATES.contains(&m.state.as_str())),
            encrypted: tree.meeting.is_some_and(|m| m.encrypted),
        })
    }

    /// Nothing leaves the room until the engine knows the room's wishes.
    pub fn private() -> RoomView {
        RoomView {
            name: String::new(),
            claimed: true,
            volume: 0,
            muted: true,
            layout: Layout::Speaker,
            selfview: SelfviewMode::Off,
            selfview_position: SelfviewPosition::LowerRight,
            camera_on: false,
            camera_position: CameraPosition::HOME,
            content_active: false,
            standby: true,
            in_meeting: false,
            encrypted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::RoomView;

    fn tree(meeting: Option<&str>) -> serde_json::Value {
        let mut tree = json!({
            "system": {"name": "Room", "claimed": true},
            "audio": {"volume": 50, "microphones": {"muted": false}},
            "video": {"layout": "speaker", "selfview": {"mode": "on", "position": "lower-right"},
                      "camera": {"state": "on", "position": {"pan": 0, "tilt": 0, "zoom": 100}},
                      "content": {"state": "inactive"}},
            "standby": {"state": "off"}
        });
        if let Some(state) = meeting {
            tree["meeting"] = json!({"state": state});
        }
        tree
    }

    #[test]
    fn only_meeting_states_that_send_count_as_in_a_meeting() {
        let in_meeting = |m| RoomView::from_status(&tree(m)).unwrap().in_meeting;
        assert!(!in_meeting(None), "no meeting branch");
        for state in ["idle", "failed"] {
            assert!(!in_meeting(Some(state)), "{state}");
        }
        for state in ["joining", "lobby", "connected", "reconnecting"] {
            assert!(in_meeting(Some(state)), "{state}");
        }
    }

    #[test]
    fn the_display_is_encrypted_only_when_status_says_so() {
        let view = |encrypted: Option<bool>| {
            let mut tree = tree(Some("connected"));
            if let Some(encrypted) = encrypted {
                tree["meeting"]["encrypted"] = json!(encrypted);
            }
            RoomView::from_status(&tree).unwrap()
        };
        assert!(view(Some(true)).encrypted);
        assert!(!view(Some(false)).encrypted);
        assert!(!view(None).encrypted, "not measured is not encrypted");
        let shown = crate::layout::indicators(&view(Some(false)));
        assert!(shown.ends_with("NOT ENCRYPTED"), "{shown}");
        let shown = crate::layout::indicators(&view(Some(true)));
        assert!(shown.ends_with("|  ENCRYPTED"), "{shown}");
    }
}
