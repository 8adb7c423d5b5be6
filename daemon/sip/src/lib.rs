//! SIP for roomd (issue 14; docs/meetings.md, "SIP"). This first slice is the room's account:
//! it registers with the configured registrar over TLS only (SIPS, the registrar's certificate
//! verified against `sip.ca_file`), answers digest challenges with the password from the sealed
//! secret store, registers again before the binding expires, and fails over to
//! `sip.fallback_proxy` when the first server cannot be reached. `status.sip` says where it
//! stands.
//!
//! Signalling is rsipstack's (transactions, TLS transport, digest): roomd writes no SIP stack
//! of its own, only the policy around it.

mod calls;
mod content;
mod error;
mod floor_connect;
mod floor_tls;
mod registration;
pub mod sdp;
mod server;

pub use calls::SipPhone;
pub use error::SipError;
pub use registration::{SipAccount, SipSetup, start};
pub use server::{SipServer, parse_server};
