//! Meetings on the customer's own servers, and meetings the room hosts (see `docs/meetings.md`).
//!
//! The engine follows the room core's meeting plan and runs one session at a time; sessions do
//! the signalling and hand SDP to WebRTC peers (`roomd_media::webrtc`), which carry the media:
//!
//! - `engine`: the task, and the handle the API uses for guests' media.
//! - `session`: what every session gets; `hosted_session`, `janus_session`, `whip_session`,
//!   `direct_session` and `sip_session` are the five kinds; `janus_content` is a Janus meeting's content share.
//! - `e2ee_janus`, `e2ee_identity`: end-to-end encryption of Janus meetings (keys over the
//!   VideoRoom's data channels, announces signed by the device key).
//! - `roster`: peers grouped by participant; participants, statistics and events for the core.
//! - `https`, `whip`, `janus`: the signalling clients (TLS always verified, typed errors for
//!   every bad answer).

mod backoff;
mod direct_session;
mod e2ee_content;
mod e2ee_identity;
mod e2ee_janus;
mod engine;
mod error;
mod hosted_chat;
mod hosted_documents;
mod hosted_forwarding;
mod hosted_messages;
mod hosted_mute_requests;
mod hosted_session;
pub mod https;
pub mod janus;
mod janus_content;
mod janus_session;
mod outbound_resolver;
mod roster;
mod session;
mod sip_session;
pub mod whip;
mod whip_session;

pub use e2ee_identity::{E2eeCaError, MeetingIdentity};
pub use engine::{GuestDirection, MeetingEngineHandle, start};
pub use error::MeetingError;
pub use sip_session::{CallEncryption, HoldError, SipCall, SipCalls, SipFuture};

#[cfg(test)]
mod test_server;
