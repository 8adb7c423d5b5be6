//! What the media engine follows of the room's status: the core owns it, the engine reads each
//! published snapshot into this typed view and applies it to the pipelines.

use roomd_core::{CameraState, ContentState, RoomStatus, StandbyState};
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

impl RoomView {
    /// Reads the view from the room's status as the core published it.
    pub fn from_status(status: &RoomStatus) -> RoomView {
        RoomView {
            name: status.system.name.clone(),
            claimed: status.system.claimed,
            volume: status.audio.volume,
            muted: status.audio.microphones.muted,
            layout: status.video.layout,
            selfview: status.video.selfview.mode,
            selfview_position: status.video.selfview.position,
            camera_on: status.video.camera.state == CameraState::On,
            camera_position: status.video.camera.position,
            content_active: status.video.content.state == ContentState::Active,
            standby: status.standby.state == StandbyState::On,
            // Joining, waiting in a lobby, in, or rejoining a meeting: the room sends (or is
            // about to send) its picture and sound.
            in_meeting: status.meeting.state.active(),
            encrypted: status.meeting.encrypted,
        }
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
    use roomd_core::{IdentityStatus, MeetingState, RoomStatus};
    use roomd_model::config::Config;

    use super::RoomView;

    fn status(meeting: MeetingState, encrypted: bool) -> RoomStatus {
        let identity = IdentityStatus {
            backend: "software",
            key_sha256: String::new(),
            certificate_sha256: String::new(),
            warning: None,
        };
        let mut status = RoomStatus::at_start(&Config::default(), true, identity);
        status.meeting.state = meeting;
        status.meeting.encrypted = encrypted;
        status
    }

    #[test]
    fn only_meeting_states_that_send_count_as_in_a_meeting() {
        let in_meeting = |m| RoomView::from_status(&status(m, false)).in_meeting;
        for state in [MeetingState::Idle, MeetingState::Failed] {
            assert!(!in_meeting(state), "{state}");
        }
        for state in [
            MeetingState::Joining,
            MeetingState::Lobby,
            MeetingState::Connected,
            MeetingState::Reconnecting,
        ] {
            assert!(in_meeting(state), "{state}");
        }
    }

    #[test]
    fn the_display_is_encrypted_only_when_status_says_so() {
        let view = |encrypted| RoomView::from_status(&status(MeetingState::Connected, encrypted));
        assert!(view(true).encrypted);
        assert!(!view(false).encrypted);
        let shown = crate::layout::indicators(&view(false));
        assert!(shown.ends_with("NOT ENCRYPTED"), "{shown}");
        let shown = crate::layout::indicators(&view(true));
        assert!(shown.ends_with("|  ENCRYPTED"), "{shown}");
    }
}
