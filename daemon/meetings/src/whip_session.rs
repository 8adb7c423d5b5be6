//! A meeting on a WHIP/WHEP server: the room publishes by WHIP and/or plays a WHEP resource.
//! If the server or the network goes away, the room tells the UI (`reconnecting`) and sets the
//! sessions up again with backoff; answers that cannot be right (bad SDP, refused token, no such
//! endpoint) end the meeting with the reason.

use std::time::Duration;

use super::backoff::Backoff;
use super::https::HttpsClient;
use super::roster::{Roster, SELF_ID, TaggedEvent};
use super::session::{Attempt, Rejoin, SessionContext, blocking, https_client};
use super::whip::{self, Protocol, WhipSession};
use roomd_core::{MeetingState, MeetingTarget};
use roomd_media::webrtc::{Peer, PeerEvent};

/// The id under which a WHEP server's stream is shown.
const SERVER_ID: &str = "server";

struct Endpoints {
    publish: Option<url::Url>,
    playback: Option<url::Url>,
    token: Option<String>,
}

pub(crate) async fn run(mut ctx: SessionContext) {
    let endpoints = match ctx.plan.borrow().target.clone() {
        MeetingTarget::Whip {
            url,
            token,
            whep_url,
        } => Endpoints {
            publish: Some(url),
            playback: whep_url,
            token: token.map(|t| t.expose().to_owned()),
        },
        MeetingTarget::Whep { url, token } => Endpoints {
            publish: None,
            playback: Some(url),
            token: token.map(|t| t.expose().to_owned()),
        },
        _ => return,
    };
    let Some(http) = https_client(&ctx).await else {
        return;
    };
    let mut rejoin = Rejoin::new("WHIP/WHEP meeting", &ctx);
    loop {
        let outcome = attempt(&mut ctx, &http, &endpoints, rejoin.backoff()).await;
        if !rejoin.again(&ctx, outcome).await {
            break;
        }
    }
}

/// One stay: connect, follow until the room leaves (`Ok`) or the connection is lost.
async fn attempt(
    ctx: &mut SessionContext,
    http: &HttpsClient,
    endpoints: &Endpoints,
    backoff: &mut Backoff,
) -> Result<(), Attempt> {
    let (mut roster, mut events) = Roster::new(ctx.room.clone(), ctx.generation());
    let sessions = match connect(ctx, http, endpoints, &mut roster).await {
        Ok(sessions) => sessions,
        Err(e) => {
            roster.clear().await;
            return Err(e);
        }
    };
    backoff.reset();
    ctx.report_state(MeetingState::Connected, "").await;
    let lost = follow(ctx, &mut roster, &mut events).await;
    roster.clear().await;
    hang_up(http, sessions).await;
    match lost {
        Some(reason) => Err(Attempt::Transient(reason.into())),
        None => Ok(()), // asked to leave
    }
}

async fn connect(
    ctx: &SessionContext,
    http: &HttpsClient,
    endpoints: &Endpoints,
    roster: &mut Roster,
) -> Result<Vec<WhipSession>, Attempt> {
    let mut sessions = Vec::new();
    if let Some(url) = &endpoints.publish {
        let peer =
            Peer::new(&ctx.taps, ctx.peer_options("WHIP", true, false)).map_err(Attempt::fatal)?;
        let session = negotiate(http, &peer, Protocol::Whip, url, endpoints.token.clone()).await?;
        sessions.push(session);
        roster.add_peer(SELF_ID, "", "whip", peer).await;
    }
    if let Some(url) = &endpoints.playback {
        let name = url.host_str().unwrap_or("WHEP").to_owned();
        let peer =
            Peer::new(&ctx.taps, ctx.peer_options(&name, false, true)).map_err(Attempt::fatal)?;
        match negotiate(http, &peer, Protocol::Whep, url, endpoints.token.clone()).await {
            Ok(session) => sessions.push(session),
            Err(e) => {
                hang_up(http, sessions).await;
                return Err(e);
            }
        }
        roster.add_peer(SERVER_ID, &name, "whep", peer).await;
    }
    Ok(sessions)
}

/// Offer, POST, answer: one WHIP or WHEP session for `peer`.
pub(crate) async fn negotiate(
    http: &HttpsClient,
    peer: &Peer,
    protocol: Protocol,
    url: &url::Url,
    token: Option<String>,
) -> Result<WhipSession, Attempt> {
    let offer = peer.create_offer().await.map_err(Attempt::fatal)?;
    let http = http.clone();
    let endpoint = url.to_string();
    let session =
        blocking(move || whip::offer(&http, protocol, &endpoint, token.as_deref(), &offer))
            .await?
            .map_err(whip_attempt)?;
    peer.accept_answer(&session.answer)
        .await
        .map_err(Attempt::fatal)?;
    Ok(session)
}

/// Follows the peers until one fails (`Some(reason)`) or the session must stop (`None`).
async fn follow(
    ctx: &mut SessionContext,
    roster: &mut Roster,
    events: &mut tokio::sync::mpsc::UnboundedReceiver<TaggedEvent>,
) -> Option<String> {
    let mut stop = ctx.stop.clone();
    let mut stats = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = SessionContext::stopped(&mut stop) => return None,
            Some((id, event)) = events.recv() => {
                roster.on_event(&id, &event).await;
                if let PeerEvent::Failed(reason) = event {
                    return Some(format!("the connection to the server failed: {reason}"));
                }
            }
            _ = stats.tick() => roster.report_stats().await,
        }
    }
}

pub(crate) async fn hang_up(http: &HttpsClient, sessions: Vec<WhipSession>) {
    for session in sessions {
        let http = http.clone();
        // Best effort: the server may be the thing that went away.
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || session.delete(&http)).await {
            tracing::debug!("ending a WHIP/WHEP session: {e}");
        }
    }
}

/// Whether trying again can help: the network or server being away can pass; a refused token
/// or an answer that breaks the protocol will not.
pub(crate) fn whip_attempt(e: whip::WhipError) -> Attempt {
    match e {
        whip::WhipError::Http(http) => super::session::http_attempt(http),
        whip::WhipError::Status { status, .. } if status >= 500 => Attempt::Transient(e.into()),
        other => Attempt::Fatal(other.into()),
    }
}
