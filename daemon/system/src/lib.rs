//! The box's operating system through systemd's D-Bus services, instead of shelling out
//! (docs/host-settings.md).
//!
//! - `network`: roomd's one networkd file, rendered from `[host]` and written atomically.
//! - `schedule`: when the nightly reboot is next due, and pushing it back during a meeting.
//! - `addresses`: the kernel's global addresses, for `status.host.addresses`.
//! - `services`: hostnamed, timedated, timesyncd, networkd and logind on the system bus.
//! - `worker`: the one owner of `status.host`: applies `[host]` at start and on every change,
//!   reads the services back every 10 s, keeps the nightly reboot scheduled, and follows
//!   `system.reboot` and `system.power_off`.
//!
//! The room core knows nothing of D-Bus: the worker reports
//! [`roomd_model::host::HostStatus`] to it, and the core publishes it.

mod addresses;
mod error;
mod network;
mod schedule;
mod services;
mod worker;

pub use addresses::global_addresses;
pub use error::HostError;
pub use network::{
    DEFAULT_NETWORK_DIR, NETWORK_FILE, remove_network_file, render_network, write_network_file,
};
pub use schedule::{POSTPONE_BY, POSTPONE_WINDOW, next_occurrence, postponed};
pub use worker::{HostSetup, start};
