//! The events WebSocket: subscribers choose status paths and event names, then receive each
//! change as it is published by the room core.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{AggregatedMessage, Session};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::ApiState;
use super::access::{SESSION_COOKIE, WEBSOCKET_PROTOCOL, is_websocket_upgrade, websocket_token};
use super::error::ApiError;
use crate::accounts::Accounts;
use roomd_base::net_source::{Full, OpenPerSource, SourcePlace};
use roomd_core::{Notification, RoomHandle, status_at};

/// Client messages larger than this are refused; subscriptions are small.
const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Event sockets open at once, and from one source address (IPv6 by /64): each holds a task,
/// a broadcast receiver and a TLS connection. A panel and a few admin pages need a handful.
pub(crate) const MAX_SOCKETS: usize = 64;
pub(crate) const MAX_SOCKETS_PER_SOURCE: usize = 8;

/// The open sockets per source.
static OPEN_SOCKETS: OpenPerSource = OpenPerSource::new();

/// A place for a new socket from `address`; given back when the returned place is dropped.
fn take_socket_place(address: IpAddr) -> Result<SourcePlace, ApiError> {
    OPEN_SOCKETS
        .take(address, MAX_SOCKETS_PER_SOURCE, Some(MAX_SOCKETS))
        .map_err(|full| match full {
            Full::Total => ApiError::Unavailable(format!(
                "{MAX_SOCKETS} event sockets are open, the most the room serves; close one"
            )),
            Full::Source => ApiError::Unavailable(format!(
                "{MAX_SOCKETS_PER_SOURCE} event sockets are open from this address, the most one \
                 address may hold; close one"
            )),
        })
}

/// How often an open socket re-checks that its token or session is still valid, so that a
/// revoked token or an ended session stops receiving room state.
const RECHECK_CREDENTIALS: Duration = Duration::from_secs(10);

/// The credential the socket was opened with.
enum Credential {
    Token(String),
    Session(String),
}

impl Credential {
    fn of(req: &HttpRequest) -> Option<Credential> {
        if let Some(secret) = websocket_token(req) {
            return Some(Credential::Token(secret));
        }
        if let Some(value) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        {
            let secret = value.split_once(' ').map(|(_, s)| s.trim()).unwrap_or("");
            return Some(Credential::Token(secret.to_owned()));
        }
        req.cookie(SESSION_COOKIE)
            .map(|c| Credential::Session(c.value().to_owned()))
    }

    fn still_valid(&self, accounts: &Accounts) -> bool {
        match self {
            Credential::Token(secret) => accounts.verify_token(secret).is_some(),
            // Not `session()`: that would count the check as use and keep the session alive
            // for as long as the socket stays open.
            Credential::Session(cookie) => accounts.session_is_live(cookie),
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum ClientMessage {
    Subscribe {
        #[serde(default)]
        status: Vec<String>,
        #[serde(default)]
        events: Vec<String>,
    },
}

#[derive(Default)]
struct Subscription {
    /// Dot-separated status paths; empty string = the whole tree.
    status: Vec<String>,
    events: Vec<String>,
}

pub(crate) async fn events(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ApiState>,
) -> Result<HttpResponse, actix_web::Error> {
    check_origin(&req)?;
    // The access middleware has authenticated the request, so a credential is present.
    let credential = Credential::of(&req)
        .ok_or_else(|| ApiError::Unauthorized("authentication required".into()))?;
    if !is_websocket_upgrade(&req) {
        return Err(ApiError::UpgradeRequired(
            "GET /api/v1/events is a WebSocket: send Upgrade: websocket (see docs/api.md)".into(),
        )
        .into());
    }
    let place = take_socket_place(super::peer_ip(&req))?;
    // actix-ws answers a broken handshake with an empty 400; the API answers in JSON.
    let (mut response, session, stream) = actix_ws::handle(&req, payload)
        .map_err(|e| ApiError::BadRequest(format!("WebSocket handshake refused: {e}")))?;
    // A browser that offered subprotocols (the panel's token) drops a socket that does not
    // pick one.
    if req.headers().contains_key(header::SEC_WEBSOCKET_PROTOCOL) {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            header::HeaderValue::from_static(WEBSOCKET_PROTOCOL),
        );
    }
    let stream = stream
        .max_frame_size(MAX_MESSAGE_BYTES)
        .aggregate_continuations()
        .max_continuation_size(MAX_MESSAGE_BYTES);
    let room = state.room.clone();
    let accounts = state.accounts.clone();
    actix_web::rt::spawn(async move {
        serve(room, accounts, credential, session, stream).await;
        drop(place);
    });
    Ok(response)
}

/// Browsers send `Origin`; a page from another site must not ride on the room's cookie.
fn check_origin(req: &HttpRequest) -> Result<(), ApiError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(()); // not a browser
    };
    let host = req.connection_info().host().to_owned();
    match origin.to_str() {
        Ok(o) if o.eq_ignore_ascii_case(&format!("https://{host}")) => Ok(()),
        _ => Err(ApiError::Forbidden(format!(
            "WebSocket origin is not https://{host}"
        ))),
    }
}

async fn serve(
    room: RoomHandle,
    accounts: Arc<Accounts>,
    credential: Credential,
    mut session: Session,
    mut stream: actix_ws::AggregatedMessageStream,
) {
    let mut notifications = room.subscribe();
    let mut subscription = Subscription::default();
    let mut recheck = tokio::time::interval(RECHECK_CREDENTIALS);
    loop {
        let outcome = tokio::select! {
            _ = recheck.tick() => {
                credential.still_valid(&accounts) || {
                    let _ = send(&mut session, json!({"type": "error", "message": "the token was revoked or the session ended; closing"})).await;
                    false
                }
            },
            message = stream.next() => match message {
                Some(Ok(AggregatedMessage::Text(text))) => on_client_text(&room, &mut session, &mut subscription, &text).await,
                Some(Ok(AggregatedMessage::Binary(_))) => send(&mut session, json!({"type": "error", "message": "binary messages are not supported; send JSON text"})).await,
                Some(Ok(AggregatedMessage::Ping(bytes))) => session.pong(&bytes).await.is_ok(),
                Some(Ok(AggregatedMessage::Pong(_))) => true,
                Some(Ok(AggregatedMessage::Close(_))) | None => false,
                Some(Err(e)) => {
                    let _ = send(&mut session, json!({"type": "error", "message": format!("protocol error: {e}")})).await;
                    false
                }
            },
            notification = notifications.recv() => match notification {
                Ok(n) => forward(&room, &mut session, &subscription, n).await,
                Err(RecvError::Lagged(missed)) => send(&mut session, json!({
                    "type": "error",
                    "message": format!("this connection fell behind and missed {missed} messages; subscribe again to refresh"),
                })).await,
                Err(RecvError::Closed) => false,
            },
        };
        if !outcome {
            break;
        }
    }
    let _ = session.close(None).await;
}

/// Handles one client message; returns false when the connection is gone.
async fn on_client_text(
    room: &RoomHandle,
    session: &mut Session,
    subscription: &mut Subscription,
    text: &str,
) -> bool {
    match serde_json::from_str::<ClientMessage>(text) {
        Ok(ClientMessage::Subscribe { status, events }) => {
            *subscription = Subscription {
                status: status.iter().map(|p| normalise(p)).collect(),
                events,
            };
            let tree = room.status();
            for path in &subscription.status {
                let value = status_at(&tree.tree, path).cloned().unwrap_or(Value::Null);
                if !send(
                    session,
                    json!({"type": "status", "path": path, "value": value}),
                )
                .await
                {
                    return false;
                }
            }
            true
        }
        Err(e) => {
            send(
                session,
                json!({"type": "error", "message": format!("invalid message: {e}")}),
            )
            .await
        }
    }
}

async fn forward(
    room: &RoomHandle,
    session: &mut Session,
    subscription: &Subscription,
    notification: Notification,
) -> bool {
    match notification {
        Notification::StatusChanged { path, value } => {
            for prefix in &subscription.status {
                let message = if is_under(&path, prefix) {
                    json!({"type": "status", "path": path, "value": value})
                } else if is_under(prefix, &path) {
                    // A whole subtree above the subscribed path changed: send the part asked for.
                    json!({"type": "status", "path": prefix, "value": status_at(&room.status().tree, prefix).cloned().unwrap_or(Value::Null)})
                } else {
                    continue;
                };
                return send(session, message).await;
            }
            true
        }
        Notification::Event(event) => {
            if subscription
                .events
                .iter()
                .any(|p| event_matches(p, event.name()))
            {
                let mut message = json!(event);
                message["type"] = json!("event");
                return send(session, message).await;
            }
            true
        }
    }
}

async fn send(session: &mut Session, message: Value) -> bool {
    session.text(message.to_string()).await.is_ok()
}

fn normalise(path: &str) -> String {
    let path = path.replace('/', ".");
    let path = path.trim_matches('.');
    if path == "*" {
        String::new()
    } else {
        path.to_owned()
    }
}

/// `audio.volume` is under `audio`, and everything is under the empty path.
fn is_under(path: &str, prefix: &str) -> bool {
    prefix.is_empty()
        || path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

fn event_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_prefixes() {
        assert!(is_under("audio.volume", "audio"));
        assert!(is_under("audio", "audio"));
        assert!(!is_under("audiox.volume", "audio"));
        assert!(is_under("anything", ""));
        assert_eq!(normalise("audio/volume"), "audio.volume");
        assert_eq!(normalise("*"), "");
    }

    #[test]
    fn event_patterns() {
        assert!(event_matches("*", "standby.activated"));
        assert!(event_matches("standby.*", "standby.activated"));
        assert!(!event_matches("standby.*", "audio.volume.changed"));
        assert!(event_matches(
            "audio.volume.changed",
            "audio.volume.changed"
        ));
    }
}
