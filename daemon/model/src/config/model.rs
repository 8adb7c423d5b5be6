//! The configuration model: one struct per section of roomd.toml, with the defaults that apply
//! to every key the file leaves out.
//!
//! Every field that has a range or format is read through a function in `checks`, so a value
//! is validated the same way whether it comes from the file or from a JSON merge patch, and the
//! error surfaces with the key it belongs to.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::checks;

/// The whole configuration of one roomd.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[system]`: the room's name, hardware profile and state directory.
    pub system: SystemConfig,
    /// `[api]`: where and how the HTTPS API is served.
    pub api: ApiConfig,
    /// `[audio]`: the volume at start.
    pub audio: AudioConfig,
    /// `[video]`: layout, self-view and camera presets.
    pub video: VideoConfig,
    /// `[standby]`: automatic standby.
    pub standby: StandbyConfig,
    /// `[accounts]`: delays after failed logins.
    pub accounts: AccountsConfig,
    /// `[logging]`: log level and the audit log's size and retention.
    pub logging: LoggingConfig,
    /// `[identity]`: where the device key lives.
    pub identity: IdentityConfig,
    /// `[meeting]`: how the room joins and hosts meetings.
    pub meeting: MeetingConfig,
    /// `[update]`: firmware updates through RAUC.
    pub update: UpdateConfig,
    /// `[dbus]`: the `org.roomd.Room1` interface on D-Bus.
    pub dbus: DbusConfig,
    /// `[host]`: the operating system's settings, applied through systemd's D-Bus services
    /// (docs/host-settings.md). An absent key leaves the system as it is.
    pub host: HostConfig,
    /// `[fleet]`: the fleet channel over MQTT 5 (docs/fleet.md); off while `broker` is empty.
    pub fleet: FleetConfig,
    /// `[provisioning]`: zero-touch provisioning from a signed bundle (docs/provisioning.md);
    /// off while neither `url` nor `dns_sd` is set.
    pub provisioning: ProvisioningConfig,
    /// `[sip]`: the room's SIP account (docs/meetings.md, "SIP"); off while `registrar` is empty.
    pub sip: SipConfig,
}

/// `[system]`: what the room is called, what it runs on and where it keeps its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SystemConfig {
    /// Room name shown on displays and in meetings.
    #[serde(deserialize_with = "checks::room_name")]
    pub name: String,
    /// Name of the hardware description `hw/<name>.toml`.
    #[serde(deserialize_with = "checks::hardware_profile")]
    pub hardware_profile: String,
    /// Where roomd keeps keys, accounts and the audit log.
    #[serde(
        deserialize_with = "checks::absolute_path",
        serialize_with = "checks::serialize_path"
    )]
    pub state_dir: PathBuf,
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            name: "roomd".to_owned(),
            hardware_profile: "simulated".to_owned(),
            state_dir: PathBuf::from("/var/lib/roomd"),
        }
    }
}

/// `[api]`: the HTTPS API's addresses, certificate names, limits and client certificates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Socket addresses the HTTPS API is served on.
    #[serde(deserialize_with = "checks::listen_addresses")]
    pub listen: Vec<SocketAddr>,
    /// Extra DNS names or IP addresses for the device certificate.
    #[serde(deserialize_with = "checks::certificate_names")]
    pub certificate_names: Vec<String>,
    /// Largest request body the API accepts.
    #[serde(deserialize_with = "checks::max_body_bytes")]
    pub max_body_bytes: usize,
    /// A session without requests for this long is closed.
    #[serde(deserialize_with = "checks::session_idle_minutes")]
    pub session_idle_minutes: u32,
    /// PEM file of the CA whose client certificates authenticate (mutual TLS); empty: off.
    #[serde(deserialize_with = "checks::optional_absolute_path")]
    pub client_ca: String,
    /// Role of a caller authenticated by such a client certificate.
    #[serde(deserialize_with = "checks::role")]
    pub client_role: String,
    /// SHA-256 fingerprints (hex) of the only client certificates accepted; empty: any that
    /// `client_ca` issued. Removing a fingerprint revokes that certificate.
    #[serde(deserialize_with = "checks::certificate_fingerprints")]
    pub client_fingerprints: Vec<String>,
    /// PEM file of certificate revocation lists of `client_ca`; empty: none.
    #[serde(deserialize_with = "checks::optional_absolute_path")]
    pub client_crl: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            // Loopback only: the API is reachable from the network only once an admin says so.
            listen: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8443)],
            certificate_names: Vec::new(),
            max_body_bytes: 65536,
            session_idle_minutes: 30,
            client_ca: String::new(),
            client_role: "integrator".to_owned(),
            client_fingerprints: Vec::new(),
            client_crl: String::new(),
        }
    }
}

/// `[audio]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AudioConfig {
    /// Volume at start, 0..=100.
    #[serde(deserialize_with = "checks::volume")]
    pub default_volume: u8,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig { default_volume: 50 }
    }
}

/// `[video]`: how the main display is laid out and the saved camera positions.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VideoConfig {
    /// Layout of the main display at start.
    #[serde(deserialize_with = "checks::named")]
    pub default_layout: Layout,
    /// Whether the room sees its own camera picture.
    #[serde(deserialize_with = "checks::named")]
    pub selfview: SelfviewMode,
    /// Corner of the display the self-view picture sits in.
    #[serde(deserialize_with = "checks::named")]
    pub selfview_position: SelfviewPosition,
    /// Saved camera positions, recalled by name (`video.camera.preset.recall`).
    #[serde(deserialize_with = "checks::camera_presets")]
    pub camera_presets: Vec<CameraPreset>,
    /// The codec the room encodes its camera in (chosen when roomd starts).
    #[serde(deserialize_with = "checks::named")]
    pub codec: VideoCodec,
}

/// The codec the room sends its camera in. Every meeting kind decodes both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VideoCodec {
    /// H.264: hardware encoders on most boxes, and what SIP room systems expect.
    #[default]
    H264,
    /// VP8: what browsers can receive in end-to-end encrypted meetings (docs/security.md).
    Vp8,
}

/// Where the camera looks: pan and tilt in percent of their range either side of centre,
/// zoom in percent of the widest view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CameraPosition {
    /// Percent of the pan range, negative to the left; within [`Self::PAN_TILT_RANGE`].
    pub pan: i8,
    /// Percent of the tilt range, negative downwards; within [`Self::PAN_TILT_RANGE`].
    pub tilt: i8,
    /// Percent of the widest view (100: widest, 400: four times magnified); within
    /// [`Self::ZOOM_RANGE`].
    pub zoom: u16,
}

impl CameraPosition {
    /// Values `pan` and `tilt` may take.
    pub const PAN_TILT_RANGE: std::ops::RangeInclusive<i8> = -100..=100;
    /// Values `zoom` may take.
    pub const ZOOM_RANGE: std::ops::RangeInclusive<u16> = 100..=400;
    /// Straight ahead, widest view.
    pub const HOME: CameraPosition = CameraPosition {
        pan: 0,
        tilt: 0,
        zoom: 100,
    };
}

/// A named camera position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraPreset {
    /// 1 to 32 lowercase letters, digits and `-`; unique among the presets.
    pub name: String,
    /// As [`CameraPosition::pan`].
    pub pan: i8,
    /// As [`CameraPosition::tilt`].
    pub tilt: i8,
    /// As [`CameraPosition::zoom`].
    pub zoom: u16,
}

impl CameraPreset {
    /// The position this preset saves, without its name.
    pub fn position(&self) -> CameraPosition {
        CameraPosition {
            pan: self.pan,
            tilt: self.tilt,
            zoom: self.zoom,
        }
    }
}

/// How the far-end participants are arranged on the main display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// The active speaker large.
    #[default]
    Speaker,
    /// All participants in a grid.
    Grid,
    /// The shared content large.
    Presentation,
    /// One participant only.
    Single,
}

/// Whether the room sees its own camera picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelfviewMode {
    /// The self-view picture is shown.
    #[default]
    On,
    /// The self-view picture is hidden.
    Off,
}

/// Corner of the display the self-view picture sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelfviewPosition {
    /// Top left corner.
    UpperLeft,
    /// Top right corner.
    UpperRight,
    /// Bottom left corner.
    LowerLeft,
    /// Bottom right corner.
    #[default]
    LowerRight,
}

/// `[standby]`: automatic standby when the room is idle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StandbyConfig {
    /// Enter standby automatically after `delay_minutes` without activity.
    pub enabled: bool,
    /// Minutes without activity (no call, no input) before automatic standby, 1..=480.
    #[serde(deserialize_with = "checks::standby_delay_minutes")]
    pub delay_minutes: u32,
}

impl Default for StandbyConfig {
    fn default() -> Self {
        StandbyConfig {
            enabled: true,
            delay_minutes: 10,
        }
    }
}

/// `[accounts]`: how password guessing is slowed down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Failed logins per user and source before delays start.
    #[serde(deserialize_with = "checks::lockout_threshold")]
    pub lockout_threshold: u32,
    /// Cap of the growing delay between login attempts.
    #[serde(deserialize_with = "checks::lockout_max_seconds")]
    pub lockout_max_seconds: u64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            lockout_threshold: 5,
            lockout_max_seconds: 900,
        }
    }
}

/// `[logging]`: the log level and the audit log's size, rotation and retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// Least severe level that is logged; read at start only.
    #[serde(deserialize_with = "checks::named")]
    pub level: LogLevel,
    /// `audit.log` is rotated before it grows past this many bytes.
    #[serde(deserialize_with = "checks::audit_max_file_bytes")]
    pub audit_max_file_bytes: u64,
    /// Rotated audit files kept (`audit.log.1` …); the oldest beyond is deleted.
    #[serde(deserialize_with = "checks::audit_max_files")]
    pub audit_max_files: u32,
    /// Days an audit record is kept (it names people and their addresses).
    #[serde(deserialize_with = "checks::audit_retention_days")]
    pub audit_retention_days: u32,
    /// Anonymous 404/405 requests are written as one record per source per this interval.
    #[serde(deserialize_with = "checks::audit_noise_interval_seconds")]
    pub audit_noise_interval_seconds: u32,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig {
            level: LogLevel::default(),
            audit_max_file_bytes: 4 * 1024 * 1024,
            audit_max_files: 8,
            audit_retention_days: 365,
            audit_noise_interval_seconds: 60,
        }
    }
}

/// Least severe log level that is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// Also the ordinary course of events.
    #[default]
    Info,
    /// Also detail for finding a fault.
    Debug,
    /// Everything; the most verbose.
    Trace,
}

impl LogLevel {
    /// The level as written in the file, which is also what tracing filters understand.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `[identity]`: where the device key lives and how the TPM is reached; file-only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Where the device key lives.
    #[serde(deserialize_with = "checks::named")]
    pub backend: IdentityBackend,
    /// How to reach the TPM (tpm2-tss TCTI name and configuration).
    #[serde(deserialize_with = "checks::tcti")]
    pub tcti: String,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            backend: IdentityBackend::Tpm,
            tcti: "device:/dev/tpmrm0".to_owned(),
        }
    }
}

/// Where the device key lives: in the TPM (the key cannot be copied), or in a file (only when
/// someone opts in explicitly; status shows a warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentityBackend {
    /// A P-256 key created once in the TPM; its private part never leaves it.
    #[default]
    Tpm,
    /// A key file in the state directory that anyone with the disk can copy.
    Software,
}

impl IdentityBackend {
    /// The backend as written in the file: `tpm` or `software`.
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityBackend::Tpm => "tpm",
            IdentityBackend::Software => "software",
        }
    }
}

/// `[meeting]`: encryption, ICE servers, trusted CAs, the servers the room may reach and the
/// lobby of hosted meetings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeetingConfig {
    /// Refuse any meeting transport that is not DTLS-SRTP.
    pub require_encryption: bool,
    /// STUN server for ICE (`stun://host:port`); empty: none (no public service by default).
    #[serde(deserialize_with = "checks::stun_server")]
    pub stun_server: String,
    /// TURN relay for ICE (`turn://user@host:port` or `turns://…`); empty: none. The password
    /// is `turn_password`.
    #[serde(deserialize_with = "checks::turn_server")]
    pub turn_server: String,
    /// The TURN password: `"set"` when the sealed secret store holds it, `""` when not. A new
    /// password given here (file or API) is moved into the store and replaced by `"set"` before
    /// anything keeps or shows the configuration; it is never written or served.
    #[serde(
        deserialize_with = "checks::sealed_secret",
        serialize_with = "checks::serialize_sealed_secret"
    )]
    pub turn_password: String,
    /// PEM file of extra CA certificates that meeting servers and other rooms are verified
    /// against (besides the system's); empty: the system's only.
    #[serde(deserialize_with = "checks::optional_absolute_path")]
    pub ca_file: String,
    /// The address guests use to reach this room (`https://host[:port]`), for join links;
    /// empty: derived from `api.listen` and `api.certificate_names`.
    #[serde(deserialize_with = "checks::public_url")]
    pub public_url: String,
    /// Days the call history keeps an entry.
    #[serde(deserialize_with = "checks::history_retention_days")]
    pub history_retention_days: u32,
    /// Host patterns of the meeting servers and other rooms the device may reach (name,
    /// `*.domain`, address or address/prefix); empty: none. File-only.
    #[serde(deserialize_with = "checks::allowed_servers")]
    pub allowed_servers: Vec<String>,
    /// Seconds a guest of a hosted meeting may wait in the lobby before the place is freed.
    #[serde(deserialize_with = "checks::lobby_timeout_seconds")]
    pub lobby_timeout_seconds: u32,
    /// A hosted meeting must have a PIN (`meeting.join` without one is refused).
    pub require_pin: bool,
    /// Who of a hosted meeting's guests waits in the lobby: everyone, or only those whose name
    /// is not in `known_guest_names` (a known name skips it only with the meeting's PIN).
    pub lobby: LobbyPolicy,
    /// Names that skip the lobby under `lobby = "unknown-names"` (compared without case).
    #[serde(deserialize_with = "checks::known_guest_names")]
    pub known_guest_names: Vec<String>,
    /// Guests of a hosted meeting may pass documents to each other (over the meeting's data
    /// channels, through the room's memory, never its disk).
    pub documents: bool,
    /// The largest document, in megabytes (10^6 bytes).
    #[serde(deserialize_with = "checks::document_max_mb")]
    pub document_max_mb: u32,
    /// End-to-end encryption of Janus meetings: every frame is encrypted with SFrame before it
    /// reaches Janus, with keys agreed over the room's data channel and bound to the device
    /// identity (docs/security.md). File-only.
    pub e2ee: bool,
    /// PEM file of the CAs whose room certificates count as verified in end-to-end encrypted
    /// meetings; empty: none (participants show as not verified). File-only.
    #[serde(deserialize_with = "checks::optional_absolute_path")]
    pub e2ee_ca_file: String,
    /// In an end-to-end encrypted meeting, send no media while any participant has no
    /// end-to-end keys with the room (the reason is in status). File-only.
    pub require_e2ee: bool,
    /// Seconds between the room's new sender keys in an end-to-end encrypted meeting (besides
    /// the new key whenever someone leaves). File-only.
    #[serde(deserialize_with = "checks::e2ee_rekey_s")]
    pub e2ee_rekey_s: u32,
}

impl Default for MeetingConfig {
    fn default() -> Self {
        MeetingConfig {
            require_encryption: true,
            stun_server: String::new(),
            turn_server: String::new(),
            turn_password: String::new(),
            ca_file: String::new(),
            public_url: String::new(),
            history_retention_days: 30,
            allowed_servers: Vec::new(),
            lobby_timeout_seconds: 600,
            require_pin: false,
            lobby: LobbyPolicy::Always,
            known_guest_names: Vec::new(),
            documents: true,
            document_max_mb: 100,
            e2ee: false,
            e2ee_ca_file: String::new(),
            require_e2ee: false,
            e2ee_rekey_s: 3600,
        }
    }
}

/// `meeting.lobby`: who of a hosted meeting's guests waits to be admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LobbyPolicy {
    /// Every guest.
    #[default]
    Always,
    /// Guests whose name is not in `meeting.known_guest_names`; a known name is let in at once,
    /// but only into a meeting with a PIN, which the guest gave (a name alone proves nothing).
    UnknownNames,
}

/// `[update]`: how roomd reaches RAUC, what it reads to know the running image, and the limits
/// of a bundle download.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateConfig {
    /// The D-Bus RAUC listens on: `system`, or a D-Bus address (`unix:path=/run/x`).
    #[serde(deserialize_with = "checks::rauc_bus")]
    pub rauc_bus: String,
    /// The os-release file that names the running image (`IMAGE_VERSION`, `ROOMD_SECURITY_FLOOR`).
    #[serde(deserialize_with = "checks::absolute_path_string")]
    pub os_release: String,
    /// Largest bundle accepted, in MiB.
    #[serde(deserialize_with = "checks::max_bundle_mib")]
    pub max_bundle_mib: u32,
    /// How long downloading a bundle from a URL may take, in seconds.
    #[serde(deserialize_with = "checks::download_timeout_s")]
    pub download_timeout_s: u32,
    /// How long after start roomd waits for its health before it gives up marking the slot good.
    #[serde(deserialize_with = "checks::health_timeout_s")]
    pub health_timeout_s: u32,
}

impl Default for UpdateConfig {
    fn default() -> Self {
        UpdateConfig {
            rauc_bus: "system".to_owned(),
            os_release: "/etc/os-release".to_owned(),
            max_bundle_mib: 2048,
            download_timeout_s: 1800,
            health_timeout_s: 300,
        }
    }
}

/// `[dbus]`: where roomd offers `org.roomd.Room1` (docs/dbus.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DbusConfig {
    /// `system`, `none` (no D-Bus interface), or a D-Bus address (`unix:path=/run/x`).
    #[serde(deserialize_with = "checks::dbus_bus")]
    pub bus: String,
}

impl Default for DbusConfig {
    fn default() -> Self {
        DbusConfig {
            bus: "system".to_owned(),
        }
    }
}

/// `[host]`: hostname, time zone, time synchronisation, nightly reboot and network of the box,
/// applied through hostnamed, timedated, logind and networkd. Every key is optional: absent
/// (`null` in JSON) leaves the operating system as it is, so a roomd installed on a plain
/// system changes nothing there unless told to.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// The static hostname (RFC 1123, lowercase).
    #[serde(deserialize_with = "checks::host_hostname")]
    pub hostname: Option<String>,
    /// The time zone, a name of the tz database (`Europe/Berlin`, `UTC`).
    #[serde(deserialize_with = "checks::host_timezone")]
    pub timezone: Option<String>,
    /// Whether the clock is synchronised over NTP (systemd-timesyncd).
    pub ntp: Option<bool>,
    /// NTP servers (IP addresses or host names) given to the wired links; empty leaves them to
    /// DHCP and the image.
    #[serde(deserialize_with = "checks::host_ntp_servers")]
    pub ntp_servers: Vec<String>,
    /// `HH:MM`: the box reboots every night at this local time (postponed while a meeting is
    /// on); absent: never.
    #[serde(deserialize_with = "checks::host_nightly_reboot")]
    pub nightly_reboot: Option<String>,
    /// `[host.network]`: the wired links' addresses; absent leaves the image's default.
    pub network: HostNetworkConfig,
}

/// `[host.network]`: how the wired links get their addresses. With no `mode` the section is
/// absent and nothing of the network is changed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "checks::RawHostNetwork")]
pub struct HostNetworkConfig {
    /// `dhcp` or `static`; absent (`null`): the image's default.
    pub mode: Option<NetworkMode>,
    /// Static addresses with their prefix length (`192.0.2.10/24`, `2001:db8::10/64`).
    pub addresses: Vec<String>,
    /// Default gateways (static only).
    pub gateways: Vec<String>,
    /// DNS servers (with DHCP: used besides those DHCP offers).
    pub dns: Vec<String>,
}

impl HostNetworkConfig {
    /// Whether the section says anything (a mode).
    pub fn is_set(&self) -> bool {
        self.mode.is_some()
    }
}

/// `host.network.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// Addresses, gateway and DNS from DHCP (IPv6: also router advertisements).
    Dhcp,
    /// The addresses and gateways configured here.
    Static,
}

/// `[fleet]`: the room connects out to the customer's MQTT 5 broker over TLS, with its device
/// key as client certificate, and publishes presence, status and events there and takes
/// commands from there (docs/fleet.md). An empty `broker` means no fleet channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FleetConfig {
    /// `mqtts://host[:port]` (port 8883 when absent); empty: no fleet channel.
    #[serde(deserialize_with = "checks::fleet_broker")]
    pub broker: String,
    /// The CA certificate(s) (PEM) that issued the broker's certificate.
    #[serde(deserialize_with = "checks::optional_absolute_path_string")]
    pub ca_file: String,
    /// The room's name in topics (`roomd/<room_id>/…`); empty: the common name of the device
    /// certificate in use.
    #[serde(deserialize_with = "checks::fleet_room_id")]
    pub room_id: String,
    /// The role commands and configuration patches from the fleet channel run with.
    #[serde(deserialize_with = "checks::role")]
    pub role: String,
    /// MQTT keep-alive, in seconds.
    #[serde(deserialize_with = "checks::fleet_keepalive_s")]
    pub keepalive_s: u32,
    /// Shortest wait before reconnecting, in milliseconds (doubled per failed attempt, jittered).
    #[serde(deserialize_with = "checks::fleet_backoff_min_ms")]
    pub backoff_min_ms: u32,
    /// Longest wait before reconnecting, in milliseconds.
    #[serde(deserialize_with = "checks::fleet_backoff_max_ms")]
    pub backoff_max_ms: u32,
    /// Status is published at most once per this many milliseconds (changes are coalesced).
    #[serde(deserialize_with = "checks::fleet_status_interval_ms")]
    pub status_interval_ms: u32,
    /// Largest command or configuration patch accepted, in bytes.
    #[serde(deserialize_with = "checks::fleet_max_payload_bytes")]
    pub max_payload_bytes: u32,
    /// Commands and patches accepted per minute; more are refused with status 429.
    #[serde(deserialize_with = "checks::fleet_commands_per_minute")]
    pub commands_per_minute: u32,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            broker: String::new(),
            ca_file: String::new(),
            room_id: String::new(),
            role: "room-control".to_owned(),
            keepalive_s: 30,
            backoff_min_ms: 1000,
            backoff_max_ms: 60000,
            status_interval_ms: 1000,
            max_payload_bytes: 65536,
            commands_per_minute: 60,
        }
    }
}

/// `[provisioning]`: where a new room fetches its signed provisioning bundle, and which key
/// must have signed it (docs/provisioning.md). File-only: it decides whom the room obeys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "checks::RawProvisioning")]
pub struct ProvisioningConfig {
    /// `https://` URL of the bundle; empty: none (DNS-SD, or provisioning off).
    pub url: String,
    /// Look the bundle's server up by unicast DNS-SD (`_roomd-provisioning._tcp.<domain>`).
    pub dns_sd: bool,
    /// PEM public key (Ed25519 or ECDSA P-256) the bundle's signature must verify with;
    /// required when `url` or `dns_sd` is set.
    pub trust_key: String,
    /// PEM CA certificate(s) the bundle's HTTPS server is verified against; empty: the
    /// system's roots.
    pub server_ca_file: String,
    /// Longest wait between two attempts after a failure, in seconds.
    pub retry_max_s: u32,
}

impl ProvisioningConfig {
    /// Whether provisioning is configured at all.
    pub fn is_on(&self) -> bool {
        !self.url.is_empty() || self.dns_sd
    }
}

impl Default for ProvisioningConfig {
    fn default() -> Self {
        ProvisioningConfig {
            url: String::new(),
            dns_sd: false,
            trust_key: String::new(),
            server_ca_file: String::new(),
            retry_max_s: 300,
        }
    }
}

/// `[sip]`: the room registers with a SIP registrar over TLS (SIPS) with digest authentication,
/// so that it can call and be called by SIP room systems and bridges. An empty `registrar` means
/// no SIP account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipConfig {
    /// `sips:host[:port]` (port 5061 when absent); empty: no SIP account.
    #[serde(deserialize_with = "checks::sip_server")]
    pub registrar: String,
    /// `sips:host[:port]` of the outbound proxy every request goes to; empty: the registrar.
    #[serde(deserialize_with = "checks::sip_server")]
    pub proxy: String,
    /// `sips:host[:port]` of the proxy to fail over to when `proxy` (or the registrar) does not
    /// answer; empty: none.
    #[serde(deserialize_with = "checks::sip_server")]
    pub fallback_proxy: String,
    /// The user part of the room's address of record (`sips:<user>@<registrar host>`).
    #[serde(deserialize_with = "checks::sip_user")]
    pub user: String,
    /// The name for digest authentication; empty: `user`.
    #[serde(deserialize_with = "checks::sip_user")]
    pub auth_user: String,
    /// The digest password: `"set"` or `""` here, the value in the sealed secret store.
    #[serde(
        deserialize_with = "checks::sealed_secret",
        serialize_with = "checks::serialize_sealed_secret"
    )]
    pub password: String,
    /// The name the far end sees.
    #[serde(deserialize_with = "checks::sip_display_name")]
    pub display_name: String,
    /// The registration lifetime asked for, in seconds; the room registers again before it ends.
    #[serde(deserialize_with = "checks::sip_register_interval_s")]
    pub register_interval_s: u32,
    /// The CA certificate(s) (PEM) that issued the registrar's and proxies' certificates.
    #[serde(deserialize_with = "checks::optional_absolute_path_string")]
    pub ca_file: String,
    /// Callers (`sip:user@host` or `sips:user@host`, parameters ignored) whose calls the room
    /// answers at once; anyone else rings. Empty by default: every call rings.
    #[serde(deserialize_with = "checks::sip_auto_answer")]
    pub auto_answer: Vec<String>,
    /// Seconds a call in rings before it ends unanswered (480 to the caller).
    #[serde(deserialize_with = "checks::sip_ring_timeout_s")]
    pub ring_timeout_s: u32,
    /// Seconds a connected call may go without any media from the far end (while neither side
    /// holds it) before the room hangs up, as an RTP timeout.
    #[serde(deserialize_with = "checks::sip_media_timeout_s")]
    pub media_timeout_s: u32,
}

impl Default for SipConfig {
    fn default() -> Self {
        SipConfig {
            registrar: String::new(),
            proxy: String::new(),
            fallback_proxy: String::new(),
            user: String::new(),
            auth_user: String::new(),
            password: String::new(),
            display_name: String::new(),
            register_interval_s: 600,
            ca_file: String::new(),
            auto_answer: Vec::new(),
            ring_timeout_s: 45,
            media_timeout_s: 30,
        }
    }
}
