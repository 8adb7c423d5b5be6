//! roomd: the daemon that owns a meeting room.
//!
//! One owner of room state (`core`) receives typed commands from every input (API, timers, later
//! D-Bus and the touch panel) and publishes status and events. Everything else is an adapter
//! around it.

pub mod accounts;
pub mod api;
pub mod audit;
pub mod call_history;
pub mod config;
pub mod core;
pub mod daemon;
pub mod fsutil;
pub mod hardware;
pub mod json_error;
pub mod logging;
pub mod media;
pub mod meeting;
pub mod net_source;
pub mod random;
pub mod remote_attestation;
pub mod secrets;
pub mod service;
pub mod tls;
pub mod tpm;
pub mod webrtc;
