//! The status tree, in the shape of Cisco's xAPI `Status` branch.

use serde::Serialize;

pub use roomd_model::IdentityStatus;
use serde_json::Value;

use super::meeting::MeetingStatus;
use super::report::MediaEngineStatus;
use super::room::now_rfc3339;
use roomd_hardware::HardwareStatus;
use roomd_model::config::{CameraPosition, Config, Layout, SelfviewMode, SelfviewPosition};
use roomd_model::fleet::FleetStatus;
use roomd_model::host::HostStatus;
use roomd_model::provisioning::ProvisioningStatus;
use roomd_model::sip::SipStatus;
use roomd_model::update::UpdateStatus;

/// The whole status tree (`GET /api/v1/status`); only the room core changes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoomStatus {
    /// `system`: name, version, start time, hardware and media engine.
    pub system: SystemStatus,
    /// `meeting`: the meeting the room is in, its participants and streams.
    pub meeting: MeetingStatus,
    /// `audio`: volume, mute and microphone level.
    pub audio: AudioStatus,
    /// `video`: layout, self-view, camera and content sharing.
    pub video: VideoStatus,
    /// `standby`: whether the room sleeps.
    pub standby: StandbyStatus,
    /// `identity`: the device key and certificate.
    pub identity: IdentityStatus,
    /// `update`: firmware updates (the running image, the current update, rollbacks).
    pub update: UpdateStatus,
    /// `host`: the operating system's settings as its services report them.
    pub host: HostStatus,
    /// `fleet`: the MQTT fleet channel (docs/fleet.md); absent when `fleet.broker` is empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<FleetStatus>,
    /// `provisioning`: zero-touch provisioning (docs/provisioning.md); absent when it is not
    /// configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provisioning: Option<ProvisioningStatus>,
    /// `sip`: the room's SIP account (docs/meetings.md, "SIP"); absent when `sip.registrar` is
    /// empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sip: Option<SipStatus>,
}

impl RoomStatus {
    /// The status of a room that just started with `config`: awake, idle, nothing measured.
    pub fn at_start(c: &Config, claimed: bool, identity: IdentityStatus) -> RoomStatus {
        RoomStatus {
            system: SystemStatus {
                name: c.system.name.clone(),
                version: env!("CARGO_PKG_VERSION"),
                hardware_profile: c.system.hardware_profile.clone(),
                claimed,
                started_at: now_rfc3339(),
                hardware: None,
                media: MediaEngineStatus::starting(),
                dbus: DbusStatus {
                    state: DbusState::Off,
                    bus: c.dbus.bus.clone(),
                    detail: String::new(),
                },
            },
            meeting: MeetingStatus::idle(now_rfc3339()),
            audio: AudioStatus {
                volume: c.audio.default_volume,
                microphones: MicrophonesStatus {
                    muted: false,
                    level: SILENCE_DB,
                },
            },
            video: VideoStatus {
                layout: c.video.default_layout,
                selfview: SelfviewStatus {
                    mode: c.video.selfview,
                    position: c.video.selfview_position,
                },
                camera: CameraStatus {
                    state: CameraState::On,
                    position: CameraPosition::HOME,
                },
                content: ContentStatus {
                    state: ContentState::Inactive,
                },
            },
            standby: StandbyStatus {
                state: StandbyState::Off,
            },
            identity,
            update: UpdateStatus::unknown(),
            host: HostStatus::unknown(),
            fleet: None,
            provisioning: None,
            sip: None,
        }
    }
}

/// The level reported for silence (and before the first measurement), in dBFS.
pub(crate) const SILENCE_DB: f64 = -100.0;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemStatus {
    pub name: String,
    pub version: &'static str,
    pub hardware_profile: String,
    pub claimed: bool,
    /// RFC 3339 time the daemon started; uptime is derived from it by the reader.
    pub started_at: String,
    /// What of the hardware profile is really there; `null` until the probe has run.
    pub hardware: Option<HardwareStatus>,
    pub media: MediaEngineStatus,
    /// Whether `org.roomd.Room1` is served on D-Bus (`dbus.bus`), and why not.
    pub dbus: DbusStatus,
}

/// `system.dbus`: the D-Bus interface's state, reported by roomd's D-Bus service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DbusStatus {
    /// Off (`dbus.bus = "none"`, or not started yet), serving, or failed.
    pub state: DbusState,
    /// `dbus.bus` as configured.
    pub bus: String,
    /// Why the interface is not served (bus unreachable, name taken or refused); empty otherwise.
    pub detail: String,
}

/// Whether `org.roomd.Room1` is served (`system.dbus.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DbusState {
    /// Not configured (`none`) or not started yet.
    Off,
    /// The name `org.roomd` is owned and the interface answers.
    Serving,
    /// The bus cannot be reached or the name cannot be owned; roomd runs on without it.
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AudioStatus {
    pub volume: u8,
    pub microphones: MicrophonesStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MicrophonesStatus {
    pub muted: bool,
    /// Level of the processed microphone signal in dBFS (RMS, -100 = silence), about 5 times a
    /// second while the media engine runs.
    pub level: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VideoStatus {
    pub layout: Layout,
    pub selfview: SelfviewStatus,
    pub camera: CameraStatus,
    pub content: ContentStatus,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CameraStatus {
    /// `off` stops the picture at the camera: nothing of it reaches the display or the encoder.
    pub state: CameraState,
    pub position: CameraPosition,
}

/// Whether the camera is on (`video.camera.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CameraState {
    /// The camera's picture is used.
    On,
    /// The picture is stopped at the camera.
    Off,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContentStatus {
    /// `active` while content (e.g. a laptop on the HDMI input) is shared.
    pub state: ContentState,
}

/// Whether content is shared (`video.content.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContentState {
    /// Content is shared.
    Active,
    /// Nothing is shared.
    Inactive,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SelfviewStatus {
    pub mode: SelfviewMode,
    pub position: SelfviewPosition,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StandbyStatus {
    /// `on` while the room sleeps, `off` while it is awake.
    pub state: StandbyState,
}

/// Whether the room is in standby (`standby.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StandbyState {
    /// The room sleeps.
    On,
    /// The room is awake.
    Off,
}

/// The status as published, once per change: typed for the adapters inside roomd (media
/// engine, meetings), which read it directly, and rendered once for the API (the tree for path
/// lookups, its JSON text for whole-status answers).
#[derive(Debug, Clone, PartialEq)]
pub struct StatusSnapshot {
    /// The status itself, for readers inside roomd.
    pub status: RoomStatus,
    /// The tree as a JSON value, for lookups with [`status_at`].
    pub tree: Value,
    /// `tree` as compact JSON text.
    pub json: String,
}

impl StatusSnapshot {
    /// `tree` is `status` rendered as JSON (the core renders it once to find the changed
    /// leaves); its text is serialised here, once.
    pub fn new(status: RoomStatus, tree: Value) -> Self {
        let json = tree.to_string();
        StatusSnapshot { status, tree, json }
    }
}

/// Looks up `path` (segments separated by `.` or `/`; empty = whole tree) in a status value.
/// An empty segment inside the path (`audio..volume`) names nothing.
pub fn status_at<'a>(tree: &'a Value, path: &str) -> Option<&'a Value> {
    let path = path.trim_matches(['.', '/']);
    if path.is_empty() {
        return Some(tree);
    }
    path.split(['.', '/'])
        .try_fold(tree, |node, segment| node.as_object()?.get(segment))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_accept_dots_and_slashes() {
        let tree = json!({"audio": {"volume": 50, "microphones": {"muted": false}}});
        assert_eq!(status_at(&tree, "audio/volume"), Some(&json!(50)));
        assert_eq!(
            status_at(&tree, "audio.microphones.muted"),
            Some(&json!(false))
        );
        assert_eq!(status_at(&tree, ""), Some(&tree));
        assert_eq!(status_at(&tree, "audio/nope"), None);
        assert_eq!(status_at(&tree, "audio/volume/deeper"), None);
        assert_eq!(status_at(&tree, "audio..volume"), None);
        assert_eq!(status_at(&tree, "/audio/volume/"), Some(&json!(50)));
    }
}
