//! The guest side of a hosted meeting: arrive, wait in the lobby, send and receive media by
//! WHIP and WHEP, leave. Guests have no account; their bearer token is the guest token the
//! room core issued on arrival, and every call has the core check it.

use actix_web::http::header;
use actix_web::web::{self, Path};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::ApiState;
use crate::access::{AuditActor, AuditDetail};
use crate::accounts::Secret;
use crate::body::{self, LimitedBody};
use crate::error::ApiError;
use roomd_core::{ModeratorAction, is_meeting_id};
use roomd_meetings::{GuestDirection, MeetingError};

/// Media sections a guest's WHIP offer may have: audio and video, and room for a second of
/// each (content). Browsers offer two.
const MAX_WHIP_MEDIA_SECTIONS: usize = 4;
/// Media sections a guest's WHEP offer may have: the room's audio and video, a pair for each
/// relay slot (the other guests, forwarded), the room's shared content, and a data channel (who
/// is in which slot).
const MAX_WHEP_MEDIA_SECTIONS: usize = 2 * (1 + roomd_media::webrtc::MAX_RELAY_SLOTS) + 2;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Arrival {
    name: String,
    #[serde(default)]
    pin: Option<String>,
}

/// `POST /api/v1/join/{meeting_id}/guests`: a guest arrives and waits in the lobby.
pub(crate) async fn arrive(
    req: HttpRequest,
    state: web::Data<ApiState>,
    meeting_id: Path<String>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let meeting_id = checked_meeting_id(&meeting_id)?;
    let arrival: Arrival = body::parse(&req, &body)?;
    req.extensions_mut()
        .insert(AuditActor(format!("guest of meeting {meeting_id}")));
    let ticket = state
        .room
        .guest_arrive(
            meeting_id,
            arrival.name,
            arrival.pin.map(Secret::new),
            crate::peer_ip(&req),
        )
        .await?;
    Ok(HttpResponse::Created().json(json!({
        "guest_id": ticket.guest_id,
        "token": ticket.token.expose(),
        "state": ticket.state,
    })))
}

/// `GET /api/v1/join/{meeting_id}/guests/{guest_id}`: lobby, admitted, removed or ended.
pub(crate) async fn state(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (meeting_id, guest_id) = checked_guest_path(&path)?;
    let token = guest_token(&req)?;
    let guest_state = state.room.guest_state(meeting_id, guest_id, token).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "state": guest_state })))
}

/// `DELETE /api/v1/join/{meeting_id}/guests/{guest_id}`: the guest leaves.
pub(crate) async fn leave(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (meeting_id, guest_id) = checked_guest_path(&path)?;
    let token = guest_token(&req)?;
    state
        .room
        .guest_leave(meeting_id, guest_id.clone(), token)
        .await?;
    state.meetings.disconnect_guest(guest_id, None).await;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST …/{guest_id}/moderation`: a moderator among the guests admits, removes, asks to mute,
/// locks, hands over the presenter role or ends the meeting (docs/meetings.md, "Roles"). The
/// core checks the token and the role; the audit log names the guest and the action.
pub(crate) async fn moderate(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: Path<(String, String)>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let (meeting_id, guest_id) = checked_guest_path(&path)?;
    let token = guest_token(&req)?;
    req.extensions_mut().insert(AuditActor(format!(
        "guest {guest_id} of meeting {meeting_id}"
    )));
    // Who asks is known before what they ask is read: a stranger learns nothing of the body's
    // rules (404 or 403, as for every guest route).
    state
        .room
        .guest_state(meeting_id.clone(), guest_id.clone(), token.clone())
        .await?;
    let action: ModeratorAction = body::parse(&req, &body)?;
    req.extensions_mut().insert(AuditDetail(action.describe()));
    state
        .room
        .guest_moderate(meeting_id, guest_id, token, action)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST …/{guest_id}/whip` (the guest's camera and microphone to the room) or `…/whep` (the
/// room's picture and sound to the guest): an SDP offer in, the SDP answer out (RFC 9725).
pub(crate) async fn connect_media(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: Path<(String, String, String)>,
    body: LimitedBody,
) -> Result<HttpResponse, ApiError> {
    let (meeting_id, guest_id, direction) = path.into_inner();
    let (meeting_id, guest_id) = checked_guest_path(&(meeting_id, guest_id))?;
    let direction = checked_direction(&direction)?;
    let token = guest_token(&req)?;
    let offer = sdp_body(&req, &body, direction)?;
    let guest = state
        .room
        .guest_admitted(meeting_id.clone(), guest_id.clone(), token)
        .await?;
    let answer = state
        .meetings
        .connect_guest(guest, direction, offer)
        .await
        .map_err(media_error)?;
    let location = format!(
        "/api/v1/join/{meeting_id}/guests/{guest_id}/{}",
        direction.as_str()
    );
    Ok(HttpResponse::Created()
        .content_type("application/sdp")
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(answer))
}

/// `DELETE …/{guest_id}/whip` or `…/whep`: ends that WHIP or WHEP session.
pub(crate) async fn disconnect_media(
    req: HttpRequest,
    state: web::Data<ApiState>,
    path: Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (meeting_id, guest_id, direction) = path.into_inner();
    let (meeting_id, guest_id) = checked_guest_path(&(meeting_id, guest_id))?;
    let direction = checked_direction(&direction)?;
    let token = guest_token(&req)?;
    // Any state will do (a removed guest may still hang up); the token must match.
    state
        .room
        .guest_state(meeting_id, guest_id.clone(), token)
        .await?;
    state
        .meetings
        .disconnect_guest(guest_id, Some(direction))
        .await;
    Ok(HttpResponse::Ok().finish())
}

fn checked_meeting_id(id: &str) -> Result<String, ApiError> {
    if is_meeting_id(id) {
        Ok(id.to_owned())
    } else {
        Err(ApiError::NotFound(
            "no such meeting here (or it has ended)".into(),
        ))
    }
}

fn checked_guest_path(path: &(String, String)) -> Result<(String, String), ApiError> {
    let meeting_id = checked_meeting_id(&path.0)?;
    let guest_id = &path.1;
    if guest_id.len() > 32
        || !guest_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ApiError::NotFound("no such guest in this meeting".into()));
    }
    Ok((meeting_id, guest_id.clone()))
}

fn checked_direction(direction: &str) -> Result<GuestDirection, ApiError> {
    match direction {
        "whip" => Ok(GuestDirection::Whip),
        "whep" => Ok(GuestDirection::Whep),
        _ => Err(ApiError::NotFound(
            "use …/whip to send media to the room or …/whep to receive the room's media".into(),
        )),
    }
}

fn guest_token(req: &HttpRequest) -> Result<Secret, ApiError> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| Secret::new(t.trim().to_owned()))
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "send the guest token from POST /api/v1/join/{meeting_id}/guests as \
                 Authorization: Bearer"
                    .into(),
            )
        })
}

/// The body of a WHIP/WHEP request: an SDP offer.
fn sdp_body(
    req: &HttpRequest,
    body: &LimitedBody,
    direction: GuestDirection,
) -> Result<String, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .eq_ignore_ascii_case("application/sdp")
    {
        return Err(ApiError::UnsupportedMediaType(
            "send the SDP offer as application/sdp".into(),
        ));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::BadRequest("the SDP offer is not valid UTF-8".into()))?;
    if !text.starts_with("v=0") {
        return Err(ApiError::BadRequest(
            "the body is not an SDP offer (it must start with v=0)".into(),
        ));
    }
    // Each media section becomes transceivers, decoders or encoders in the room's pipeline.
    let media = text.lines().filter(|l| l.starts_with("m=")).count();
    let most = match direction {
        GuestDirection::Whip => MAX_WHIP_MEDIA_SECTIONS,
        GuestDirection::Whep => MAX_WHEP_MEDIA_SECTIONS,
    };
    if media > most {
        return Err(ApiError::BadRequest(format!(
            "the SDP offer has {media} media sections (m= lines); a guest may offer at most \
             {most} by {}",
            direction.as_str().to_uppercase()
        )));
    }
    Ok(text.to_owned())
}

fn media_error(e: MeetingError) -> ApiError {
    match e {
        MeetingError::Refused(message) => ApiError::Unprocessable {
            field: None,
            message,
        },
        MeetingError::NotHosting => ApiError::NotFound(e.to_string()),
        other => ApiError::Unavailable(other.to_string()),
    }
}
