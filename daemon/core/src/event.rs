//! What the core publishes to subscribers.
//!
//! Every event the room can publish is a variant of [`RoomEvent`], declared once below with its
//! dotted name and its data: the name the API shows (`event.name`), the serialised data
//! (`event.data`) and the in-process match all come from that one declaration.

use serde::Serialize;
use serde_json::Value;

use super::meeting::{E2eeStatus, MeetingState, StreamStats};
use super::moderation::Moderation;
use roomd_model::config::{CameraPosition, Layout, SelfviewMode, SelfviewPosition};
use roomd_model::update::UpdateState;

/// Something that happened in the room, numbered in order since the daemon started.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Position in the room's sequence of events since the daemon started, from 0.
    pub seq: u64,
    /// RFC 3339, UTC.
    pub time: String,
    /// What happened: serialised as `name` and `data`.
    #[serde(flatten)]
    pub event: RoomEvent,
}

impl Event {
    /// The event's dotted name, e.g. `audio.volume.changed`.
    pub fn name(&self) -> &'static str {
        self.event.name()
    }
}

/// One message on the core's broadcast channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// A leaf (or a whole new subtree) of the status tree changed.
    StatusChanged {
        /// Dotted path of what changed, e.g. `audio.volume`.
        path: String,
        /// Its new value.
        value: Value,
    },
    /// An event, in order.
    Event(Event),
}

/// Declares [`RoomEvent`]: each variant with its dotted name and its data fields. The name
/// given here is both the serde tag and what [`RoomEvent::name`] returns, so they cannot drift.
macro_rules! room_events {
    ($(
        $(#[$doc:meta])*
        $variant:ident = $name:literal {
            $( $(#[$field_attr:meta])* $field:ident : $ty:ty ),* $(,)?
        }
    )*) => {
        /// Every event the room publishes, with its data (docs/api.md, "Events").
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "name", content = "data")]
        pub enum RoomEvent {
            $(
                $(#[$doc])*
                #[serde(rename = $name)]
                $variant {
                    $( $(#[$field_attr])* #[allow(missing_docs)] $field: $ty, )*
                },
            )*
        }

        impl RoomEvent {
            /// The event's dotted name.
            pub fn name(&self) -> &'static str {
                match self {
                    $( RoomEvent::$variant { .. } => $name, )*
                }
            }

            /// Every name an event can have, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($name),*];
        }
    };
}

room_events! {
    /// The room was claimed: it has an administrator now.
    SystemClaimed = "system.claimed" {}
    /// Devices of the hardware profile are missing or unusable.
    HardwareMissing = "system.hardware.missing" { missing: usize }
    /// The speaker volume changed (0..=100).
    VolumeChanged = "audio.volume.changed" { level: u8 }
    /// The microphones were muted.
    MicrophonesMuted = "audio.microphones.muted" {}
    /// The microphones were unmuted.
    MicrophonesUnmuted = "audio.microphones.unmuted" {}
    /// The display's layout changed.
    LayoutChanged = "video.layout.changed" { layout: Layout }
    /// The selfview's mode or position changed.
    SelfviewChanged = "video.selfview.changed" {
        mode: SelfviewMode,
        position: SelfviewPosition,
    }
    /// The camera was switched on.
    CameraOn = "video.camera.on" {}
    /// The camera was switched off: nothing of its picture leaves it.
    CameraOff = "video.camera.off" {}
    /// Content sharing started.
    ContentStarted = "video.content.started" {}
    /// Content sharing stopped.
    ContentStopped = "video.content.stopped" {}
    /// The camera moved; `preset` names the preset recalled, if one was.
    CameraMoved = "video.camera.moved" {
        #[serde(flatten)]
        position: CameraPosition,
        #[serde(skip_serializing_if = "Option::is_none")]
        preset: Option<String>,
    }
    /// The camera's current position was saved as a preset.
    CameraPresetSaved = "video.camera.preset.saved" {
        name: String,
        position: CameraPosition,
    }
    /// The media engine failed; `detail` says why.
    MediaFailed = "media.failed" { detail: String }
    /// A media branch (video or audio) was rebuilt, and why.
    BranchRebuilt = "media.branch.rebuilt" {
        branch: &'static str,
        reason: String,
        elapsed_ms: u64,
    }
    /// The room fell asleep (`reason`: timer or command).
    StandbyActivated = "standby.activated" { reason: &'static str }
    /// The room woke up (`reason`: activity).
    StandbyDeactivated = "standby.deactivated" { reason: &'static str }
    /// Configuration keys changed (dotted names).
    ConfigChanged = "config.changed" { keys: Vec<String> }
    /// The room is joining a meeting (target without secrets).
    MeetingJoining = "meeting.joining" {
        target: Value,
        id: String,
        join_url: String,
    }
    /// A SIP call rings (`status.sip.incoming`): answer with `meeting.answer`, or decline.
    MeetingRinging = "meeting.ringing" {
        id: String,
        display_name: String,
        uri: String,
    }
    /// A SIP call in ended before it was answered (declined, not answered in time, the caller
    /// gave up, busy, or refused: an offer without encryption while it is required), and why.
    MeetingRingingEnded = "meeting.ringing.ended" {
        display_name: String,
        uri: String,
        reason: String,
    }
    /// The room put its SIP call on hold (`meeting.hold`) or resumed it (`meeting.resume`).
    MeetingHold = "meeting.hold" { on_hold: bool }
    /// The room confirmed the short authentication string it compared with `participant`.
    MeetingE2eeConfirmed = "meeting.e2ee.confirmed" {
        participant: String,
        by: String,
    }
    /// The far end of the SIP call put it on hold or resumed it (`status.meeting.far_end_on_hold`).
    MeetingHoldFarEnd = "meeting.hold.far_end" { on_hold: bool }
    /// A hold or resume did not take (the far end refused the re-INVITE, or never answered):
    /// the call is as `on_hold` says (`status.meeting.on_hold` follows), and `reason` says why.
    MeetingHoldFailed = "meeting.hold.failed" {
        on_hold: bool,
        reason: String,
    }
    /// A failed meeting's error was cleared.
    MeetingCleared = "meeting.cleared" {}
    /// The meeting ended (`outcome`: ended or failed).
    MeetingEnded = "meeting.ended" {
        outcome: &'static str,
        error: String,
        duration_seconds: u64,
    }
    /// The far end ended the meeting.
    MeetingEndedRemotely = "meeting.ended.remotely" { reason: String }
    /// The meeting's state changed.
    MeetingStateChanged = "meeting.state" {
        state: MeetingState,
        error: String,
    }
    /// A guest waits in the lobby of the hosted meeting.
    GuestWaiting = "meeting.guest.waiting" {
        participant: String,
        name: String,
    }
    /// A guest was let in from the lobby.
    ParticipantAdmitted = "meeting.participant.admitted" {
        participant: String,
        name: String,
    }
    /// A participant was removed from the meeting.
    ParticipantRemoved = "meeting.participant.removed" { participant: String }
    /// Roles or the lock of the hosted meeting changed (`status.meeting.moderation`), by the
    /// room or a moderator (named).
    MeetingModeration = "meeting.moderation" {
        moderation: Moderation,
        by: String,
    }
    /// A guest was asked to switch their microphone off (by the room or a moderator).
    MuteRequested = "meeting.participant.mute_requested" {
        participant: String,
        by: String,
    }
    /// A moderator ended the hosted meeting for everyone.
    MeetingEndedByModerator = "meeting.ended.by_moderator" { by: String }
    /// Someone joined the meeting for the first time.
    ParticipantJoined = "meeting.participant.joined" {
        participant: String,
        name: String,
    }
    /// Someone seen before in this meeting is connected again.
    ParticipantConnected = "meeting.participant.connected" {
        participant: String,
        name: String,
    }
    /// A participant left.
    ParticipantLeft = "meeting.participant.left" { participant: String }
    /// Statistics of the meeting's streams, measured on the transports.
    MeetingStats = "meeting.stats" {
        streams: Vec<StreamStats>,
        encrypted: bool,
    }
    /// The meeting's end-to-end encryption changed (`status.meeting.e2ee`): keys established
    /// with a participant, a participant verified, a rekey.
    MeetingE2ee = "meeting.e2ee" { e2ee: E2eeStatus }
    /// The firmware update's state changed (`status.update.state`).
    UpdateStateChanged = "update.state" {
        state: UpdateState,
        version: String,
        error: String,
    }
    /// A firmware update was installed; it runs after `update.reboot`.
    UpdateInstalled = "update.installed" { version: String }
    /// A firmware update failed; the running slot is untouched.
    UpdateFailed = "update.failed" { error: String }
    /// The boot loader fell back from the newest installed version.
    UpdateRolledBack = "update.rolled_back" { from: String, to: String }
    /// roomd marked the booted slot good after its health check.
    UpdateMarkedGood = "update.marked_good" { slot: String, version: String }
    /// An administrator asked for the reboot into the installed update.
    UpdateRebootRequested = "update.reboot.requested" { version: String }
    /// An administrator asked for a factory reset: the marker is written; roomd restarts and
    /// wipes its state.
    FactoryResetRequested = "system.factory_reset.requested" { by: String }
    /// An administrator asked for a reboot (`system.reboot`); roomd asks logind next.
    SystemRebootRequested = "system.reboot_requested" { by: String }
    /// An administrator asked to power the box off (`system.power_off`); roomd asks logind next.
    SystemPowerOffRequested = "system.power_off_requested" { by: String }
    /// A signed provisioning bundle was applied (`status.provisioning`).
    ProvisioningApplied = "provisioning.applied" { source: String, serial: u64 }
    /// A provisioning bundle was refused; the room is as it was.
    ProvisioningRefused = "provisioning.refused" { source: String, reason: String }
    /// `[host]` settings were applied to the operating system.
    HostApplied = "host.applied" { keys: Vec<String> }
    /// A `[host]` setting could not be applied (`status.host.error`).
    HostApplyFailed = "host.apply_failed" { key: String, reason: String }
    /// The first picture of a far end reached the display.
    FirstRemoteFrame = "meeting.first_remote_frame" {
        participant: String,
        since_join_ms: u64,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn events_serialise_as_name_and_data() {
        let event = Event {
            seq: 3,
            time: "2026-12-06T10:00:00Z".into(),
            event: RoomEvent::VolumeChanged { level: 40 },
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"seq": 3, "time": "2026-12-06T10:00:00Z", "name": "audio.volume.changed",
                   "data": {"level": 40}})
        );
        let claimed = serde_json::to_value(RoomEvent::SystemClaimed {}).unwrap();
        assert_eq!(claimed, json!({"name": "system.claimed", "data": {}}));
    }

    #[test]
    fn a_moved_camera_names_the_preset_only_when_one_was_recalled() {
        let moved = |preset: Option<&str>| {
            serde_json::to_value(RoomEvent::CameraMoved {
                position: CameraPosition::HOME,
                preset: preset.map(str::to_owned),
            })
            .unwrap()["data"]
                .clone()
        };
        assert_eq!(moved(None), json!({"pan": 0, "tilt": 0, "zoom": 100}));
        assert_eq!(moved(Some("table"))["preset"], "table");
    }

    #[test]
    fn every_event_is_in_the_api_reference() {
        let doc = include_str!("../../../docs/api.md");
        let missing: Vec<_> = RoomEvent::NAMES
            .iter()
            .filter(|name| !doc.contains(&format!("| `{name}` |")))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/api.md's event reference lacks {missing:?}"
        );
    }

    #[test]
    fn names_are_unique_and_dotted() {
        let mut names = RoomEvent::NAMES.to_vec();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), RoomEvent::NAMES.len());
        assert!(names.iter().all(|n| n.contains('.')), "{names:?}");
    }
}
