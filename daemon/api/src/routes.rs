//! The route table: every route the API serves, who may call it, and which handler answers.
//!
//! The table is the single source for registration and for authorisation (see `access.rs`), so
//! a route cannot be served without an access rule. `openapi.json` documents the API part of the
//! same table; a unit test keeps the two identical.
//!
//! The web UI's pages and assets are routes of this table too (public, outside `/api/`), so the
//! same registration and access rules apply to them. They are not API operations: they return
//! HTML and static files, not data, so `openapi.json` leaves them out ([`Route::is_page`]).

use actix_web::{HttpResponse, web};

use super::error::ApiError;
use super::handlers;
use crate::accounts::Permission;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// An authenticated principal whose role grants the permission.
    Requires(Permission),
    /// A guest of a hosted meeting. The bearer token is a guest token, not an API credential:
    /// the handler has the room core check it against the guest it names.
    Guest,
}

/// The handler that answers a route; one per operation of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// `GET /api/v1/health`: whether the room core answers.
    Health,
    /// `GET /api/v1/openapi.json`: the API's contract.
    OpenApi,
    /// `POST /api/v1/claim`: the first admin, with the claim code.
    Claim,
    /// `POST /api/v1/session`: log in; sets the session cookie.
    SessionCreate,
    /// `GET /api/v1/session`: who the caller is.
    SessionGet,
    /// `DELETE /api/v1/session`: log out.
    SessionDelete,
    /// `GET /api/v1/status`: the whole room status.
    Status,
    /// `GET /api/v1/status/{path}`: one subtree of the status.
    StatusPath,
    /// `GET /api/v1/config`: the configuration (secrets left out).
    ConfigGet,
    /// `PATCH /api/v1/config`: a JSON merge patch of the configuration.
    ConfigPatch,
    /// `POST /api/v1/commands/{name}`: runs a room command.
    Command,
    /// `GET /api/v1/events`: the WebSocket of status changes and events.
    Events,
    /// `GET /api/v1/users`: every user.
    UsersList,
    /// `POST /api/v1/users`: adds a user.
    UserCreate,
    /// `DELETE /api/v1/users/{username}`: deletes a user and ends their sessions.
    UserDelete,
    /// `PUT /api/v1/users/{username}/password`: sets a user's password.
    UserPassword,
    /// `GET /api/v1/tokens`: every API token (no secrets).
    TokensList,
    /// `POST /api/v1/tokens`: makes a token; the only response with its secret.
    TokenCreate,
    /// `DELETE /api/v1/tokens/{id}`: revokes a token.
    TokenRevoke,
    /// `GET /api/v1/audit`: audit records, newest first.
    Audit,
    /// `GET /api/v1/logs`: recent log records, newest first.
    Logs,
    /// `GET /api/v1/identity`: the device's certificates and key fingerprints.
    IdentityGet,
    /// `GET /api/v1/identity/csr`: a certification request signed by the device key.
    IdentityCsr,
    /// `PUT /api/v1/identity/certificate`: installs a CA-issued chain.
    IdentityCertificatePut,
    /// `POST /api/v1/identity/quote`: a TPM quote for a verifier's nonce.
    IdentityQuote,
    /// `POST /api/v1/identity/activate`: answers a credential challenge.
    IdentityActivate,
    /// `GET /api/v1/display/snapshot`: the room display's current frame (PNG).
    DisplaySnapshot,
    /// `GET /api/v1/calls`: the call history.
    CallsList,
    /// `POST /api/v1/update`: a firmware bundle, uploaded or from a URL.
    UpdateInstall,
    /// `POST /api/v1/join/{meeting_id}/guests`: a guest arrives in the lobby.
    GuestArrive,
    /// `GET …/guests/{guest_id}`: the guest's state (lobby, admitted, removed, ended).
    GuestState,
    /// `DELETE …/guests/{guest_id}`: the guest leaves.
    GuestLeave,
    /// `POST …/guests/{guest_id}/moderation`: a moderator's request.
    GuestModerate,
    /// `POST …/guests/{guest_id}/{direction}`: a WHIP or WHEP offer.
    GuestMediaConnect,
    /// `DELETE …/guests/{guest_id}/{direction}`: ends a WHIP or WHEP session.
    GuestMediaDisconnect,
    /// `GET /api/v1/config/schema`: every configuration key with type and default.
    ConfigSchema,
    /// `POST /api/v1/pairing`: a touch panel asks to be paired.
    PairingRequest,
    /// `POST /api/v1/pairing/{request_id}`: the panel's code, for a token.
    PairingComplete,
    /// `GET /api/v1/metrics`: figures for Prometheus (text format or OpenMetrics).
    Metrics,
    /// `/`: redirects to the panel or the admin pages.
    PageRoot,
    /// The web UI's single page (panel, admin, guest join).
    Page,
    /// The web UI's hashed scripts and styles.
    PageAsset,
}

/// Where the web UI's routes start: everything else is `/api/`.
const API_PREFIX: &str = "/api/";

/// One entry of [`ROUTES`].
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// HTTP method, uppercase (`GET`, `POST` …).
    pub method: &'static str,
    /// actix path pattern; `{path:.*}` matches the rest of the path.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// What answers it.
    pub handler: Handler,
}

impl Route {
    /// A page or asset of the web UI rather than an API operation: public, no data, not in
    /// `openapi.json`.
    pub fn is_page(&self) -> bool {
        !self.path.starts_with(API_PREFIX)
    }
}

use Access::{Guest, Public, Requires};
use Handler as H;
use Permission as P;

const fn route(
    method: &'static str,
    path: &'static str,
    access: Access,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

/// Every route roomd serves: the API, then the web UI's pages. A path with several methods is
/// one resource; other methods on it get 405 with `Allow`.
#[rustfmt::skip]
pub const ROUTES: &[Route] = &[
    route("GET", "/api/v1/health", Public, H::Health),
    route("GET", "/api/v1/openapi.json", Public, H::OpenApi),
    route("POST", "/api/v1/claim", Public, H::Claim),
    route("POST", "/api/v1/session", Public, H::SessionCreate),
    route("GET", "/api/v1/session", Requires(P::SessionOwn), H::SessionGet),
    route("DELETE", "/api/v1/session", Requires(P::SessionOwn), H::SessionDelete),
    route("GET", "/api/v1/status", Requires(P::StatusRead), H::Status),
    route("GET", "/api/v1/status/{path:.*}", Requires(P::StatusRead), H::StatusPath),
    route("GET", "/api/v1/config", Requires(P::ConfigRead), H::ConfigGet),
    route("GET", "/api/v1/config/schema", Requires(P::ConfigRead), H::ConfigSchema),
    route("PATCH", "/api/v1/config", Requires(P::ConfigWrite), H::ConfigPatch),
    route("POST", "/api/v1/commands/{name}", Requires(P::RoomControl), H::Command),
    route("GET", "/api/v1/events", Requires(P::EventsRead), H::Events),
    route("GET", "/api/v1/users", Requires(P::UsersManage), H::UsersList),
    route("POST", "/api/v1/users", Requires(P::UsersManage), H::UserCreate),
    route("DELETE", "/api/v1/users/{username}", Requires(P::UsersManage), H::UserDelete),
    route("PUT", "/api/v1/users/{username}/password", Requires(P::UsersManage), H::UserPassword),
    route("GET", "/api/v1/tokens", Requires(P::TokensManage), H::TokensList),
    route("POST", "/api/v1/tokens", Requires(P::TokensManage), H::TokenCreate),
    route("DELETE", "/api/v1/tokens/{id}", Requires(P::TokensManage), H::TokenRevoke),
    route("GET", "/api/v1/audit", Requires(P::AuditRead), H::Audit),
    route("GET", "/api/v1/logs", Requires(P::LogsRead), H::Logs),
    route(
        "GET",
        "/api/v1/identity",
        Requires(P::IdentityRead),
        H::IdentityGet,
    ),
    route(
        "GET",
        "/api/v1/identity/csr",
        Requires(P::IdentityEnrol),
        H::IdentityCsr,
    ),
    route(
        "PUT",
        "/api/v1/identity/certificate",
        Requires(P::IdentityManage),
        H::IdentityCertificatePut,
    ),
    route(
        "POST",
        "/api/v1/identity/quote",
        Requires(P::IdentityAttest),
        H::IdentityQuote,
    ),
    route(
        "POST",
        "/api/v1/identity/activate",
        Requires(P::IdentityAttest),
        H::IdentityActivate,
    ),
    route("GET", "/api/v1/display/snapshot", Requires(P::DisplayView), H::DisplaySnapshot),
    route("GET", "/api/v1/calls", Requires(P::CallHistoryRead), H::CallsList),
    route("POST", "/api/v1/update", Requires(P::FirmwareUpdate), H::UpdateInstall),
    route("POST", "/api/v1/join/{meeting_id}/guests", Public, H::GuestArrive),
    route("GET", "/api/v1/join/{meeting_id}/guests/{guest_id}", Guest, H::GuestState),
    route("DELETE", "/api/v1/join/{meeting_id}/guests/{guest_id}", Guest, H::GuestLeave),
    // Before `{direction}`: the router tries paths in the table's order.
    route("POST", "/api/v1/join/{meeting_id}/guests/{guest_id}/moderation", Guest, H::GuestModerate),
    route("POST", "/api/v1/join/{meeting_id}/guests/{guest_id}/{direction}", Guest, H::GuestMediaConnect),
    route("DELETE", "/api/v1/join/{meeting_id}/guests/{guest_id}/{direction}", Guest, H::GuestMediaDisconnect),
    route("GET", "/api/v1/metrics", Requires(P::MetricsRead), H::Metrics),
    route("POST", "/api/v1/pairing", Public, H::PairingRequest),
    route("POST", "/api/v1/pairing/{request_id}", Public, H::PairingComplete),
    // The web UI (pages, not API operations; see the module comment).
    route("GET", "/", Public, H::PageRoot),
    route("GET", "/panel", Public, H::Page),
    route("GET", "/admin", Public, H::Page),
    route("GET", "/join/{meeting_id}", Public, H::Page),
    route("GET", "/assets/{file}", Public, H::PageAsset),
];

/// The route for a request, given the resource pattern the router matched.
pub fn find(method: &str, pattern: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .find(|r| r.method == method && r.path == pattern)
}

/// Registers every route of the table, one resource per path.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&str> = Vec::new();
    for r in ROUTES {
        if !paths.contains(&r.path) {
            paths.push(r.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path).default_service(web::to(method_not_allowed));
        for r in ROUTES.iter().filter(|r| r.path == path) {
            let method = actix_web::http::Method::from_bytes(r.method.as_bytes())
                .unwrap_or(actix_web::http::Method::GET);
            resource = resource.route(handler_route(r.handler).method(method));
        }
        cfg.service(resource);
    }
}

fn handler_route(handler: Handler) -> actix_web::Route {
    use handlers::*;
    let r = web::route();
    match handler {
        H::Health => r.to(health::health),
        H::OpenApi => r.to(openapi::openapi),
        H::Claim => r.to(claim::claim),
        H::SessionCreate => r.to(session::create),
        H::SessionGet => r.to(session::get),
        H::SessionDelete => r.to(session::delete),
        H::Status => r.to(status::whole),
        H::StatusPath => r.to(status::at_path),
        H::ConfigGet => r.to(config::get),
        H::ConfigPatch => r.to(config::patch),
        H::Command => r.to(commands::run),
        H::Events => r.to(super::events::events),
        H::UsersList => r.to(users::list),
        H::UserCreate => r.to(users::create),
        H::UserDelete => r.to(users::delete),
        H::UserPassword => r.to(users::set_password),
        H::TokensList => r.to(tokens::list),
        H::TokenCreate => r.to(tokens::create),
        H::TokenRevoke => r.to(tokens::revoke),
        H::Audit => r.to(audit::list),
        H::Logs => r.to(logs::list),
        H::IdentityGet => r.to(identity::get),
        H::IdentityCsr => r.to(identity::csr),
        H::IdentityCertificatePut => r.to(identity::put_certificate),
        H::IdentityQuote => r.to(attestation::quote),
        H::IdentityActivate => r.to(attestation::activate),
        H::DisplaySnapshot => r.to(display::snapshot),
        H::CallsList => r.to(calls::list),
        H::UpdateInstall => r.to(update::install),
        H::GuestArrive => r.to(guests::arrive),
        H::GuestState => r.to(guests::state),
        H::GuestLeave => r.to(guests::leave),
        H::GuestModerate => r.to(guests::moderate),
        H::GuestMediaConnect => r.to(guests::connect_media),
        H::GuestMediaDisconnect => r.to(guests::disconnect_media),
        H::ConfigSchema => r.to(config::schema),
        H::PairingRequest => r.to(pairing::request),
        H::PairingComplete => r.to(pairing::complete),
        H::Metrics => r.to(metrics::metrics),
        H::PageRoot => r.to(pages::root),
        H::Page => r.to(pages::page),
        H::PageAsset => r.to(pages::asset),
    }
}

/// 405 with the `Allow` header RFC 9110 requires, listing the methods the table serves there.
async fn method_not_allowed(req: actix_web::HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    use actix_web::http::header::{ALLOW, HeaderValue};
    let pattern = req.match_pattern().unwrap_or_default();
    let allowed: Vec<&str> = ROUTES
        .iter()
        .filter(|r| r.path == pattern)
        .map(|r| r.method)
        .collect();
    let allowed = allowed.join(", ");
    let mut response = ApiError::MethodNotAllowed(format!(
        "{} is not allowed on {}; allowed: {allowed}",
        req.method(),
        req.path(),
    ))
    .error_response();
    if let Ok(value) = HeaderValue::from_str(&allowed) {
        response.headers_mut().insert(ALLOW, value);
    }
    response
}

/// The default service: 404 naming the method and path (cut to 128 characters).
pub async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no such API route: {} {}",
        req.method(),
        truncated(req.path())
    )))
}

fn truncated(path: &str) -> String {
    path.chars().take(128).collect()
}
