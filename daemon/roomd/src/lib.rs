//! roomd: the daemon that owns a meeting room.
//!
//! One owner of room state (`roomd_core`) receives typed commands from every input (API,
//! timers, later D-Bus and the touch panel) and publishes status and events. Everything else is
//! an adapter around it; this crate wires them together (`daemon`), carries out a factory reset
//! at start (`factory_reset`) and speaks to systemd (`service`).

pub mod daemon;
pub mod factory_reset;
pub mod service;
