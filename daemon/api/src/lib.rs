//! The local HTTPS API: parses requests into typed calls on the room core and the accounts,
//! and answers in JSON. The contract is `daemon/openapi.json`.

pub mod access;
pub mod accounts;
pub mod audit;
mod body;
mod connection_limit;
mod error;
mod events;
mod handlers;
pub mod logging;
mod metrics;
pub mod routes;
mod server;

#[cfg(test)]
mod openapi_contract;

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

pub use error::ApiError;
pub use handlers::commands::command_permission;
pub use handlers::openapi::OPENAPI_JSON;
pub use handlers::update::{BundleUrl, download_bundle};
pub use routes::{Access, ROUTES, Route};
pub use server::{ServeError, serve};

use crate::accounts::{Accounts, Role};
use crate::audit::AuditLog;
use crate::logging::RecentLog;
use roomd_core::RoomHandle;
use roomd_identity::tls::DeviceIdentity;
use roomd_media::DisplaySnapshots;
use roomd_meetings::MeetingEngineHandle;

/// What every handler can reach.
pub struct ApiState {
    /// The room core: status, configuration and commands.
    pub room: RoomHandle,
    /// Users, tokens, sessions, claiming and pairing.
    pub accounts: Arc<Accounts>,
    /// Where the access middleware records every state-changing request.
    pub audit: Arc<AuditLog>,
    /// The device's key and certificates (`/api/v1/identity`), and its TPM for attestation.
    pub identity: Arc<DeviceIdentity>,
    /// Role of callers authenticated by a client certificate (mutual TLS); `None`: off.
    pub client_role: Option<Role>,
    /// Frames of the room display, from the media engine.
    pub display: DisplaySnapshots,
    /// The meeting engine: guests' WHIP/WHEP offers of a hosted meeting go there.
    pub meetings: MeetingEngineHandle,
    /// The daemon's recent log records, for `GET /api/v1/logs`.
    pub logs: RecentLog,
    /// Firmware updates: `POST /api/v1/update` hands bundles to it.
    pub updates: roomd_update::UpdateHandle,
    /// Sealed secrets (the TURN password), set through `PATCH /api/v1/config`.
    pub secrets: Arc<roomd_identity::secrets::SecretStore>,
}

pub(crate) fn peer_ip(req: &actix_web::HttpRequest) -> IpAddr {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
}
