//! Meetings on the customer's own servers (see `docs/meetings.md`).
//!
//! This part holds the signalling clients: they move SDP offers and answers and server events,
//! verify TLS, and turn every bad server answer into a typed error. They never touch media:
//! the WebRTC peer produces and consumes the SDP they carry.
//!
//! - `https`: the one HTTP client for meeting servers (trust roots, timeouts, size limits).
//! - `janus`: the Janus VideoRoom HTTP API (sessions, publisher and subscriber handles, events).
//! - `whip`: WHIP (RFC 9725) and WHEP clients.

pub mod https;
pub mod janus;
pub mod whip;

#[cfg(test)]
mod test_server;
