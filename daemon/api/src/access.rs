//! Authentication, authorisation and auditing of every request, in one place.
//!
//! The middleware looks up the matched route in the route table: public routes pass, others
//! need a principal whose role grants the route's permission. Cookie sessions must also present
//! their CSRF token on state-changing requests. Every state-changing request is written to the
//! audit log with who, what, when, from where, and the outcome; one the log cannot take is
//! refused before it changes anything. Anonymous 404/405 noise is counted, not written per
//! request.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};

use super::ApiState;
use super::error::ApiError;
use super::routes::{self, Access};
use sha2::{Digest, Sha256};

use super::server::ClientCertificate;
use crate::accounts::{Principal, PrincipalKind, allows};
use crate::audit::NewAuditRecord;

/// Name of the session cookie. The `__Host-` prefix makes browsers accept it only with
/// `Secure`, `Path=/` and no `Domain`, so a sibling host cannot set or shadow it.
pub const SESSION_COOKIE: &str = "__Host-roomd_session";
/// Header carrying the session's CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// Set by handlers of public routes (login, claim) to say whom an attempt was for.
#[derive(Debug, Clone)]
pub struct AuditActor(pub String);

/// Extra words for the audit log from a handler (e.g. which user was created); never secrets.
#[derive(Debug, Clone)]
pub struct AuditDetail(pub String);

/// The middleware wrapped around every route: authenticates the caller, checks the route's
/// [`Access`], puts the [`Principal`] into the request's extensions for handlers, and audits
/// state-changing requests (refusing them with 503 if the audit log cannot take a record).
pub async fn access(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<ApiState>>().cloned() else {
        return Err(ApiError::Internal("API state missing".into()).into());
    };
    let method = req.method().clone();
    let path = req.path().to_owned();
    let source = source_of(&req);
    let route = req
        .match_pattern()
        .and_then(|p| routes::find(method.as_str(), &p));

    // Pages of the web UI carry no data and are only read: no credentials to check (a stale
    // session cookie must not keep the login page from loading), nothing to audit.
    if route.is_some_and(|r| r.is_page()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }

    // A principal may be known even when the request is refused (e.g. a session without its
    // CSRF token): the audit log then names who tried.
    // A guest's bearer token is no API credential; the guest handlers check it themselves.
    let guest_route = route.is_some_and(|r| r.access == Access::Guest);
    let public = route.is_some_and(|r| r.access == Access::Public);
    let (authenticated, known) = match authenticate(&req, &state) {
        _ if guest_route => (Ok(None), None),
        Ok(p) => (Ok(p.clone()), p),
        // A browser keeps its cookie after the session ended (idle, restart): on a public route
        // (logging in again, pairing) it is ignored rather than refused, as the browser cannot
        // delete an HttpOnly cookie itself. Bad bearer tokens are still refused everywhere.
        Err((_, _)) if public && !has_bearer(&req) => (Ok(None), None),
        Err((e, p)) => (Err(e), p),
    };
    let decision = authenticated.and_then(|principal| match route.map(|r| r.access) {
        // Unknown routes fall through to the router's 404/405 answers.
        None | Some(Access::Public) | Some(Access::Guest) => Ok(principal),
        Some(Access::Requires(permission)) => match principal {
            None => Err(ApiError::Unauthorized(
                "authentication required: send a Bearer token or log in with POST /api/v1/session"
                    .into(),
            )),
            Some(p) if !allows(p.role, permission) => Err(ApiError::Forbidden(format!(
                "role {} may not {} {}",
                p.role, method, path
            ))),
            Some(p) => Ok(Some(p)),
        },
    });

    // A change whose audit record could not be written is refused before it is made.
    let decision = match decision {
        Ok(principal) if is_state_changing(&method) && route.is_some() => {
            audit_ready(&state).await.map(|()| principal)
        }
        other => other,
    };

    let (response, principal) = match decision {
        Ok(principal) => {
            if let Some(p) = &principal {
                req.extensions_mut().insert(p.clone());
            }
            let (http_req, payload) = req.into_parts();
            let res = next
                .call(ServiceRequest::from_parts(http_req, payload))
                .await?;
            (res.map_into_left_body(), principal)
        }
        Err(e) => (
            req.into_response(e.error_response()).map_into_right_body(),
            known,
        ),
    };

    if is_state_changing(&method) {
        let record = audit_record(&response, principal.as_ref(), source, &method, &path);
        let audit = state.audit.clone();
        if principal.is_none() && matches!(record.status, 404 | 405) {
            // Scanners and typos: counted, and written once per interval (see audit/noise.rs).
            audit.count_noise(record);
            return Ok(response);
        }
        let written = web::block(move || audit.append(record)).await;
        match written {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!("audit log write failed: {e}"),
            Err(e) => tracing::error!("audit log task failed: {e}"),
        }
    }
    Ok(response)
}

/// Whether the audit log can take the record of the change about to be made; if not, the
/// change is refused (503) and nothing is changed. The caller learns why, without the path.
async fn audit_ready(state: &ApiState) -> Result<(), ApiError> {
    let audit = state.audit.clone();
    let checked = web::block(move || audit.check_writable())
        .await
        .map_err(|e| e.to_string())
        .and_then(|checked| checked.map_err(|e| e.to_string()));
    checked.map_err(|e| {
        tracing::error!("refusing a change that cannot be audited: {e}");
        ApiError::Unavailable(
            "the audit log cannot record this change (its disk is full or read-only), so the \
             change was refused and nothing was changed; free space in the state directory"
                .into(),
        )
    })
}

/// The principal behind the request's credentials, if any. Credentials that are present but
/// wrong are an error: a client should learn that its token was revoked rather than be treated
/// as anonymous. A refusal carries the principal when one was identified, for the audit log.
fn authenticate(
    req: &ServiceRequest,
    state: &ApiState,
) -> Result<Option<Principal>, (ApiError, Option<Principal>)> {
    let refuse = |e: ApiError| (e, None);
    if let Some(secret) = websocket_token(req.request()) {
        return state
            .accounts
            .verify_token(&secret)
            .map(Some)
            .ok_or_else(|| {
                refuse(ApiError::Unauthorized(
                    "the API token is invalid or has been revoked".into(),
                ))
            });
    }
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| {
            refuse(ApiError::Unauthorized(
                "Authorization header is not valid text".into(),
            ))
        })?;
        let (scheme, secret) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(refuse(ApiError::Unauthorized(format!(
                "Authorization scheme {:?} is not supported; use Bearer",
                scheme.chars().take(16).collect::<String>()
            ))));
        }
        return state
            .accounts
            .verify_token(secret.trim())
            .map(Some)
            .ok_or_else(|| {
                refuse(ApiError::Unauthorized(
                    "the API token is invalid or has been revoked".into(),
                ))
            });
    }
    let Some(cookie) = req.cookie(SESSION_COOKIE) else {
        return certificate_caller(req, state);
    };
    let Some(session) = state.accounts.session(cookie.value()) else {
        return Err(refuse(ApiError::Unauthorized(
            "the session has expired or is invalid; log in again".into(),
        )));
    };
    if is_state_changing(req.method()) {
        let token = req
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !session.csrf_matches(token) {
            return Err((
                ApiError::Forbidden(format!(
                    "missing or wrong {CSRF_HEADER} header for this session"
                )),
                Some(session.principal),
            ));
        }
    }
    Ok(Some(session.principal))
}

/// The caller behind a client certificate rustls verified against `api.client_ca`, if any.
/// A certificate left out of `api.client_fingerprints` is refused (revoked). A browser sends
/// its certificate to any site that makes it send a request, as it sends a cookie: so the
/// certificate's state-changing requests get the same CSRF checks a session gets, by origin
/// instead of a token (see [`certificate_csrf_check`]).
fn certificate_caller(
    req: &ServiceRequest,
    state: &ApiState,
) -> Result<Option<Principal>, (ApiError, Option<Principal>)> {
    let Some(principal) = certificate_principal(req, state) else {
        return Ok(None);
    };
    let PrincipalKind::Certificate { sha256 } = &principal.kind else {
        return Ok(None);
    };
    let allowed = &state.room.config().api.client_fingerprints;
    if !allowed.is_empty() && !allowed.contains(sha256) {
        return Err((
            ApiError::Unauthorized(format!(
                "the client certificate (SHA-256 {sha256}) is not in api.client_fingerprints: \
                 it has been revoked"
            )),
            None,
        ));
    }
    if is_state_changing(req.method()) {
        certificate_csrf_check(req).map_err(|e| (e, Some(principal.clone())))?;
    }
    Ok(Some(principal))
}

/// A state-changing request authenticated by a client certificate must come from this origin
/// (`Origin`, or the browser's `Sec-Fetch-Site`; tools send neither) and carry a JSON body type,
/// which a cross-site form cannot send without a CORS preflight roomd never grants.
fn certificate_csrf_check(req: &ServiceRequest) -> Result<(), ApiError> {
    let header_text = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .map(|v| v.to_str().unwrap_or("(not text)").to_owned())
    };
    if let Some(site) = header_text(header::HeaderName::from_static("sec-fetch-site"))
        && !matches!(site.as_str(), "same-origin" | "none")
    {
        return Err(ApiError::Forbidden(format!(
            "a client-certificate request from another site (Sec-Fetch-Site: {}) is refused",
            site.chars().take(32).collect::<String>()
        )));
    }
    if let Some(origin) = header_text(header::ORIGIN) {
        let own = format!("https://{}", req.connection_info().host());
        if !origin.eq_ignore_ascii_case(&own) {
            return Err(ApiError::Forbidden(format!(
                "a client-certificate request from origin {:?} is refused; only {own} may send one",
                origin.chars().take(100).collect::<String>()
            )));
        }
    }
    if matches!(*req.method(), Method::POST | Method::PUT | Method::PATCH) {
        let essence = header_text(header::CONTENT_TYPE).unwrap_or_default();
        let essence = essence.split(';').next().unwrap_or("").trim().to_owned();
        let json = essence.eq_ignore_ascii_case("application/json")
            || essence.eq_ignore_ascii_case("application/merge-patch+json");
        if !json {
            return Err(ApiError::UnsupportedMediaType(format!(
                "a client-certificate {} must be sent as application/json (got {:?})",
                req.method(),
                essence.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(())
}

fn certificate_principal(req: &ServiceRequest, state: &ApiState) -> Option<Principal> {
    let role = state.client_role?;
    let ClientCertificate(der) = req.conn_data::<ClientCertificate>()?;
    let sha256: String = Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let name = x509_parser::parse_x509_certificate(der.as_ref())
        .ok()
        .and_then(|(_, cert)| {
            cert.subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok().map(str::to_owned))
        })
        .unwrap_or_else(|| format!("certificate {}", &sha256[..16]));
    Some(Principal {
        name,
        role,
        kind: PrincipalKind::Certificate { sha256 },
    })
}

/// Browsers cannot set `Authorization` on a WebSocket, so a token holder (the paired touch
/// panel) offers it as a subprotocol `roomd.bearer.<token>` next to [`WEBSOCKET_PROTOCOL`];
/// only on WebSocket upgrades.
pub const WEBSOCKET_TOKEN_PROTOCOL: &str = "roomd.bearer.";
/// The subprotocol the events socket answers with when a client offers protocols.
pub const WEBSOCKET_PROTOCOL: &str = "roomd.v1";

/// Whether the request asks to become a WebSocket (`Upgrade: websocket`).
pub fn is_websocket_upgrade(req: &actix_web::HttpRequest) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The API token a WebSocket upgrade offers as a `roomd.bearer.<token>` subprotocol; `None` on
/// other requests or without one.
pub fn websocket_token(req: &actix_web::HttpRequest) -> Option<String> {
    if !is_websocket_upgrade(req) {
        return None;
    }
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(WEBSOCKET_TOKEN_PROTOCOL))
        .map(str::to_owned)
}

fn has_bearer(req: &ServiceRequest) -> bool {
    req.headers().contains_key(header::AUTHORIZATION) || websocket_token(req.request()).is_some()
}

fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn source_of(req: &ServiceRequest) -> IpAddr {
    req.peer_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED))
}

fn audit_record<B>(
    response: &ServiceResponse<B>,
    principal: Option<&Principal>,
    source: IpAddr,
    method: &Method,
    path: &str,
) -> NewAuditRecord {
    let extensions = response.request().extensions();
    let actor = match (principal, extensions.get::<AuditActor>()) {
        (Some(p), _) => p.audit_name(),
        (None, Some(AuditActor(name))) => name.clone(),
        (None, None) => "anonymous".to_owned(),
    };
    NewAuditRecord {
        actor,
        role: principal.map(|p| p.role),
        source,
        method: method.to_string(),
        path: path.chars().take(256).collect(),
        status: response.status().as_u16(),
        detail: extensions.get::<AuditDetail>().map(|d| d.0.clone()),
    }
}
