//! A direct call: the room joins another room's hosted meeting as its guest, through the same
//! public guest API a browser uses (arrive, wait in the lobby, WHIP + WHEP). The other room is
//! verified like any meeting server: its certificate must chain to the system's roots or
//! `meeting.ca_file`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::backoff::Backoff;
use super::https::{Body, HttpsClient, Method};
use super::roster::{Roster, SELF_ID};
use super::session::{Attempt, Rejoin, SessionContext, blocking, http_attempt, https_client};
use super::whip::Protocol;
use super::whip_session::{hang_up, negotiate};
use roomd_core::{MeetingReport, MeetingState, MeetingTarget};
use roomd_media::webrtc::{Peer, PeerEvent};

/// How often the lobby and then the meeting are checked for our admission or removal.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// The id under which the other room is shown.
const HOST_ID: &str = "host";

#[derive(Deserialize)]
struct Ticket {
    guest_id: String,
    token: String,
}

#[derive(Deserialize)]
struct GuestState {
    state: String,
}

/// Where we are as a guest of the other room.
struct Guest {
    base: Url,
    token: String,
}

enum Place {
    Lobby,
    Admitted,
    /// Removed by the host or the meeting ended: the call is over.
    Over(String),
}

pub(crate) async fn run(mut ctx: SessionContext) {
    let (room, meeting_id, pin) = match ctx.plan.borrow().target.clone() {
        MeetingTarget::Direct {
            room,
            meeting_id,
            pin,
            ..
        } => (room, meeting_id, pin.map(|p| p.expose().to_owned())),
        _ => return,
    };
    let name = ctx.plan.borrow().display_name.clone();
    let host_name = room.host_str().unwrap_or("room").to_owned();
    let Some(http) = https_client(&ctx).await else {
        return;
    };
    let callee = Callee {
        http: http.clone(),
        room,
        meeting_id,
        name,
        pin,
        host_name,
    };
    let mut guest: Option<Guest> = None;
    let mut rejoin = Rejoin::new("direct call", &ctx);
    loop {
        let outcome = call(&mut ctx, &callee, &mut guest, rejoin.backoff()).await;
        if !rejoin.again(&ctx, outcome).await {
            break;
        }
    }
    // Leaving: tell the other room, best effort.
    if let Some(guest) = guest {
        let http = http.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let auth = format!("Bearer {}", guest.token);
            http.request(
                Method::Delete,
                &guest.base,
                &[("authorization", &auth)],
                None,
                None,
            )
        })
        .await;
    }
}

/// The other room's meeting, and how this room introduces itself there.
struct Callee {
    http: HttpsClient,
    room: Url,
    meeting_id: String,
    /// This room's name in the other room's lobby.
    name: String,
    pin: Option<String>,
    /// How the other room is shown here.
    host_name: String,
}

/// One attempt: arrive (or keep our place), wait to be admitted, connect media, and follow the
/// call. `Ok` when the call is over (left, removed, ended), `Err` when it broke.
async fn call(
    ctx: &mut SessionContext,
    callee: &Callee,
    guest: &mut Option<Guest>,
    backoff: &mut Backoff,
) -> Result<(), Attempt> {
    let Callee {
        http,
        room,
        meeting_id,
        name,
        pin,
        host_name,
    } = callee;
    let host_name = host_name.as_str();
    // After a network failure our place may still be valid; ask before arriving again.
    let place = match guest.as_ref() {
        Some(g) => match state(http, g).await {
            Ok(place) => Some(place),
            Err(Attempt::Fatal(_)) => None,
            Err(e) => return Err(e),
        },
        None => None,
    };
    if place.is_none() {
        *guest = Some(arrive(http, room, meeting_id, name, pin.clone()).await?);
    }
    let Some(me) = guest.as_ref() else {
        return Err(Attempt::fatal("no guest place"));
    };
    let mut announced_lobby = false;
    loop {
        match state(http, me).await? {
            Place::Admitted => break,
            Place::Lobby => {
                if !announced_lobby {
                    ctx.report_state(MeetingState::Lobby, "").await;
                    announced_lobby = true;
                }
            }
            Place::Over(reason) => return ended(ctx, reason).await,
        }
        let mut stop = ctx.stop.clone();
        tokio::select! {
            _ = SessionContext::stopped(&mut stop) => return Ok(()), // left from the lobby
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }

    let (mut roster, mut events) = Roster::new(ctx.room.clone(), ctx.generation());
    let mut sessions = Vec::new();
    let connected = async {
        let whip = Peer::new(&ctx.taps, ctx.peer_options("direct", true, false))
            .map_err(Attempt::fatal)?;
        let url = me
            .base
            .join(&format!("{}/whip", last_segment(&me.base)))
            .map_err(Attempt::fatal)?;
        sessions.push(negotiate(http, &whip, Protocol::Whip, &url, Some(me.token.clone())).await?);
        roster.add_peer(SELF_ID, "", "whip", whip).await;
        let whep = Peer::new(&ctx.taps, ctx.peer_options(host_name, false, true))
            .map_err(Attempt::fatal)?;
        let url = me
            .base
            .join(&format!("{}/whep", last_segment(&me.base)))
            .map_err(Attempt::fatal)?;
        sessions.push(negotiate(http, &whep, Protocol::Whep, &url, Some(me.token.clone())).await?);
        roster.add_peer(HOST_ID, host_name, "whep", whep).await;
        Ok::<(), Attempt>(())
    }
    .await;
    if let Err(e) = connected {
        roster.clear().await;
        hang_up(http, sessions).await;
        return Err(e);
    }
    backoff.reset();
    ctx.report_state(MeetingState::Connected, "").await;

    let mut poll = tokio::time::interval(POLL_INTERVAL);
    let mut stats = tokio::time::interval(Duration::from_secs(1));
    let mut stop = ctx.stop.clone();
    let outcome = loop {
        tokio::select! {
            _ = SessionContext::stopped(&mut stop) => break Ok(()),
            Some((id, event)) = events.recv() => {
                roster.on_event(&id, &event).await;
                if let PeerEvent::Failed(reason) = event {
                    break Err(Attempt::Transient(format!("the connection to {host_name} failed: {reason}").into()));
                }
            }
            _ = stats.tick() => roster.report_stats().await,
            _ = poll.tick() => match state(http, me).await {
                Ok(Place::Over(reason)) => {
                    roster.clear().await;
                    hang_up(http, std::mem::take(&mut sessions)).await;
                    return ended(ctx, reason).await;
                }
                Ok(_) => {}
                Err(Attempt::Transient(_)) => {} // media decides whether the call is lost
                Err(e) => break Err(e),
            },
        }
    };
    roster.clear().await;
    hang_up(http, sessions).await;
    outcome
}

async fn ended(ctx: &SessionContext, reason: String) -> Result<(), Attempt> {
    let report = MeetingReport::Ended {
        generation: ctx.generation(),
        reason,
    };
    let _ = ctx.room.meeting_report(report).await;
    Ok(())
}

fn last_segment(url: &Url) -> String {
    url.path_segments()
        .and_then(|mut s| s.next_back().map(str::to_owned))
        .unwrap_or_default()
}

async fn arrive(
    http: &HttpsClient,
    room: &Url,
    meeting_id: &str,
    name: &str,
    pin: Option<String>,
) -> Result<Guest, Attempt> {
    let url = room
        .join(&format!("api/v1/join/{meeting_id}/guests"))
        .map_err(Attempt::fatal)?;
    let body = json!({ "name": name, "pin": pin }).to_string();
    let http = http.clone();
    let reply = blocking(move || {
        let body = Body {
            content_type: "application/json",
            data: body.as_bytes(),
        };
        http.request(Method::Post, &url, &[], Some(body), None)
            .map(|reply| (url, reply))
    })
    .await?
    .map_err(http_attempt)?;
    let (url, reply) = reply;
    match reply.status {
        201 => {}
        403 => return Err(Attempt::Fatal("the other room refused the PIN".into())),
        404 => {
            return Err(Attempt::Fatal(
                "the other room hosts no such meeting (or it has ended)".into(),
            ));
        }
        429 => {
            return Err(Attempt::Transient(
                "the other room asks to wait after wrong PINs".into(),
            ));
        }
        _ => return Err(http_attempt(reply.status_error())),
    }
    let ticket: Ticket = serde_json::from_str(&reply.body).map_err(|e| {
        Attempt::Fatal(
            format!(
                "the other room's answer to joining is malformed ({})",
                where_in_json(&e)
            )
            .into(),
        )
    })?;
    if !ticket
        .guest_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(Attempt::Fatal(
            "the other room sent a malformed guest id".into(),
        ));
    }
    let base = Url::parse(&format!(
        "{}/{}",
        url.as_str().trim_end_matches('/'),
        ticket.guest_id
    ))
    .map_err(Attempt::fatal)?;
    Ok(Guest {
        base,
        token: ticket.token,
    })
}

async fn state(http: &HttpsClient, guest: &Guest) -> Result<Place, Attempt> {
    let http = http.clone();
    let url = guest.base.clone();
    let auth = format!("Bearer {}", guest.token);
    let reply =
        blocking(move || http.request(Method::Get, &url, &[("authorization", &auth)], None, None))
            .await?
            .map_err(http_attempt)?;
    if reply.status == 404 {
        return Ok(Place::Over("the other room ended the meeting".into()));
    }
    let reply = reply.success().map_err(http_attempt)?;
    let state: GuestState = serde_json::from_str(&reply.body).map_err(|e| {
        Attempt::Fatal(
            format!(
                "the other room's lobby answer is malformed ({})",
                where_in_json(&e)
            )
            .into(),
        )
    })?;
    Ok(match state.state.as_str() {
        "lobby" => Place::Lobby,
        "admitted" => Place::Admitted,
        "removed" => Place::Over("the other room removed this room from the meeting".into()),
        "ended" => Place::Over("the other room ended the meeting".into()),
        _ => {
            return Err(Attempt::Fatal(
                "the other room sent an unknown lobby state".into(),
            ));
        }
    })
}

/// Where a JSON answer went wrong, without quoting it: serde's messages may contain the
/// values the other side sent, and errors reach status, which every role reads.
fn where_in_json(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => "unexpected fields or types",
        serde_json::error::Category::Eof => "cut short",
    };
    format!("{kind} at line {} column {}", e.line(), e.column())
}
