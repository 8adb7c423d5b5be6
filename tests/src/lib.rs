//! End-to-end test harness for roomd: starts the real `roomd` binary in a temporary directory,
//! waits for its systemd READY=1, and talks HTTPS and WebSocket to it with clients that trust
//! exactly the device's self-signed certificate. Nothing is mocked.
//!
//! Meeting tests add real peers: a [`TestNetwork`] (namespace + veth, since ICE skips loopback),
//! a [`Janus`] VideoRoom server, and Chromium participants ([`BrowserPeer`]); [`meeting`] reads
//! roomd's `status.meeting`.
//!
//! ```no_run
//! let roomd = roomd_tests::Roomd::start_claimed("")?;
//! let token = roomd.token_for("user")?;
//! let status = roomd.get("/api/v1/status").bearer(&token).send()?;
//! assert_eq!(status.status, 200);
//! # Ok::<(), roomd_tests::HarnessError>(())
//! ```

pub mod bfcp_peer;
mod binaries;
pub mod browser;
mod command;
pub mod cpu;
pub mod dbus;
pub mod e2ee;
mod error;
pub mod firmware;
pub mod fleet_rooms;
pub mod flood;
mod gst_launch;
pub mod hosted;
mod hostile;
mod http;
mod janus;
pub mod linphone;
pub mod meeting;
pub mod mosquitto;
mod netns;
mod notify;
pub mod pebble;
mod poll;
pub mod rauc;
mod roomctl;
mod roomd;
mod session;
pub mod sip;
pub mod sipp;
mod swtpm;
mod test_ca;
mod tls;
pub mod trickle;
mod vm;
mod ws;

pub use binaries::{roomctl_bin, roomd_bin};
pub use browser::BrowserPeer;
pub use error::HarnessError;
pub use gst_launch::{GstLaunch, ROOMD_PAD_CONVERTER, roomd_encoder};
pub use hostile::{HostileAnswer, HostileRequest, HostileServer};
pub use http::{ApiRequest, ApiResponse};
pub use janus::{Janus, JanusBuilder};
pub use netns::{Bottleneck, TestNetwork};
pub use notify::NotifySocket;
pub use poll::wait_for;
pub use roomctl::{RoomctlOutput, run_roomctl};
pub use roomd::{ADMIN_PASSWORD, ADMIN_USERNAME, Roomd, RoomdBuilder};
pub use session::{SESSION_COOKIE, Session};
pub use swtpm::Swtpm;
pub use test_ca::{ClientCertificate, ServerCertificate, TestCa};
pub use tls::DeviceCertificate;
pub use vm::{
    FirmwareVm, GUEST_API_PORT, SNAKEOIL_CERT, SNAKEOIL_KEY, esp_boot_entries, free_port,
};
pub use ws::EventSocket;

/// The roles of docs/api.md.
pub const ROLES: [&str; 6] = [
    "admin",
    "integrator",
    "user",
    "room-control",
    "audit",
    "metrics",
];

/// Path of the API contract file, `daemon/openapi.json`.
pub fn openapi_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("daemon")
        .join("openapi.json")
}
