//! The fleet channel (docs/fleet.md): the room connects out to the customer's MQTT 5 broker over
//! TLS with its device key as client certificate, keeps a retained presence (last will
//! "offline"), publishes its status (retained, plus coalesced deltas) and events, and takes
//! commands and configuration patches on its own commands topic; they go through the API's
//! parsing, role check and audit log, and are answered on the MQTT 5 response topic with the
//! request's correlation data.
//!
//! [`Link`] is the MQTT client alone (connection, reconnect with jittered backoff, topics); the
//! [`start`]ed worker ties it to the room core. The event loop task only polls and forwards:
//! publishing happens in other tasks, without ever waiting on the client's queue (rumqttc
//! #1025), and every CONNACK re-subscribes (rumqttc #250).

mod commands;
mod link;
mod tls;
mod topics;
mod update;
mod worker;

pub use link::{Link, LinkSettings, LinkState, OFFLINE, ONLINE, PUBLISHED_AT, SESSION_EXPIRY_S};
pub use roomd_base::backoff::Backoff;
pub use tls::{FleetTlsError, client_config, common_name};
pub use topics::{PREFIX, Topics};
pub use worker::{FleetSetup, start};
