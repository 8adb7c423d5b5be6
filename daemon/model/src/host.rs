//! The box's operating-system settings as data: the `host` branch of the status tree and what
//! applying `[host]` led to. The host worker (`roomd-system`) reads them back from systemd's
//! services; the room core publishes them.

use serde::Serialize;

/// `status.host`: what the operating system's services say, read back from them (never echoed
/// from the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostStatus {
    /// Whether roomd reaches the services it manages the system through (system D-Bus with
    /// logind, hostnamed, timedated and networkd).
    pub available: bool,
    /// Which of them cannot be reached, and why; empty when `available`.
    pub unavailable_reason: String,
    /// hostnamed's static hostname (its transient one when no static hostname is set).
    pub hostname: String,
    /// timedated's time zone.
    pub timezone: String,
    /// Whether time synchronisation over NTP is on (timedated `NTP`).
    pub ntp_enabled: bool,
    /// Whether the clock is synchronised (timedated `NTPSynchronized`).
    pub ntp_synchronized: bool,
    /// The NTP servers timesyncd uses (its link and system servers, each once); empty when
    /// timesyncd cannot be read.
    pub ntp_servers: Vec<String>,
    /// networkd's operational state (`routable`, `degraded`, `no-carrier`, …); empty when
    /// unknown.
    pub network_state: String,
    /// The kernel's global addresses on links other than loopback, `10.0.2.15/24` form, sorted.
    pub addresses: Vec<String>,
    /// RFC 3339 (UTC) time of the reboot logind has scheduled; `null` when none is.
    pub nightly_reboot_at: Option<String>,
    /// Empty when the last apply of `[host]` succeeded; else which key failed and what the
    /// service said.
    pub error: String,
}

impl HostStatus {
    /// Before the worker has looked.
    pub fn unknown() -> HostStatus {
        HostStatus {
            available: false,
            unavailable_reason: "not checked yet".to_owned(),
            hostname: String::new(),
            timezone: String::new(),
            ntp_enabled: false,
            ntp_synchronized: false,
            ntp_servers: Vec::new(),
            network_state: String::new(),
            addresses: Vec::new(),
            nightly_reboot_at: None,
            error: String::new(),
        }
    }
}

/// What the host worker tells the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostReport {
    /// `status.host` as read back from the services.
    Status(HostStatus),
    /// These `host.*` keys were applied (event `host.applied`).
    Applied {
        /// Dotted keys, e.g. `host.hostname`.
        keys: Vec<String>,
    },
    /// Applying a key failed (event `host.apply_failed`).
    ApplyFailed {
        /// Dotted key, e.g. `host.timezone`.
        key: String,
        /// What the service (or the file system) said.
        reason: String,
    },
}
