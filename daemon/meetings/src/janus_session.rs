//! A meeting in a Janus VideoRoom: the room publishes its camera and microphone on one handle
//! and subscribes to every other publisher on a handle each, following joins and leaves. If
//! Janus or the network goes away, the room says `reconnecting` and joins again with backoff;
//! signalling that cannot be right (malformed answers, a refused PIN, no such room) ends the
//! meeting with the reason. While the room shares content, it publishes it as a second feed
//! (see [`super::janus_content`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::backoff::Backoff;
use super::e2ee_identity::{MeetingIdentity, trusted_cas};
use super::e2ee_janus::{ANNOUNCE_INTERVAL, JanusE2ee, apply};
use super::https::HttpsClient;
use super::janus::{
    FeedRef, JanusError, JanusEvent, JanusEvents, JanusSession, Publisher, VideoRoomHandle,
};
use super::janus_content::{self, ContentShare, OwnFeeds};
use super::roster::{CONTENT_ID, Roster, SELF_ID, TaggedEvent};
use super::session::{Attempt, Rejoin, SessionContext, blocking, http_attempt, https_client};
use roomd_core::{MeetingState, MeetingTarget};
use roomd_media::webrtc::{Peer, PeerEvent, PeerOptions};
use rustls::pki_types::CertificateDer;

/// What the session needs to (re)join.
#[derive(Clone)]
struct Room {
    server: String,
    room: u64,
    pin: Option<String>,
    display_name: String,
    /// End-to-end encryption (`meeting.e2ee`): who signs for the room, whom it trusts.
    e2ee: Option<E2eeSetup>,
}

#[derive(Clone)]
struct E2eeSetup {
    identity: MeetingIdentity,
    trusted: Vec<CertificateDer<'static>>,
    require: bool,
    /// `meeting.e2ee_rekey_s`: how long a sender key lives.
    rekey: Duration,
}

/// The end-to-end setup under the configuration, or why the meeting cannot start.
fn e2ee_setup(ctx: &SessionContext) -> Result<Option<E2eeSetup>, String> {
    let meeting = ctx.room.config().meeting.clone();
    if !meeting.e2ee {
        return Ok(None);
    }
    let identity = ctx.identity.clone().ok_or_else(|| {
        "meeting.e2ee is on but the device identity is not available to sign for the room"
            .to_owned()
    })?;
    let trusted = trusted_cas(&meeting.e2ee_ca_file).map_err(|e| e.to_string())?;
    Ok(Some(E2eeSetup {
        identity,
        trusted,
        require: meeting.require_e2ee,
        rekey: Duration::from_secs(u64::from(meeting.e2ee_rekey_s)),
    }))
}

pub(crate) async fn run(mut ctx: SessionContext) {
    let e2ee = match e2ee_setup(&ctx) {
        Ok(setup) => setup,
        Err(reason) => {
            ctx.fail(reason).await;
            return;
        }
    };
    let room = match ctx.plan.borrow().target.clone() {
        MeetingTarget::Janus {
            server, room, pin, ..
        } => Room {
            server: server.to_string(),
            room,
            pin: pin.map(|p| p.expose().to_owned()),
            display_name: ctx.plan.borrow().display_name.clone(),
            e2ee,
        },
        _ => return,
    };
    let Some(http) = https_client(&ctx).await else {
        return;
    };
    let mut rejoin = Rejoin::new("Janus meeting", &ctx);
    let mut own = OwnFeeds::default();
    loop {
        let outcome = join(&mut ctx, &http, &room, &mut own, rejoin.backoff()).await;
        if !rejoin.again(&ctx, outcome).await {
            break;
        }
    }
}

/// One stay in the room: `Ok` when the room left on purpose.
async fn join(
    ctx: &mut SessionContext,
    http: &HttpsClient,
    room: &Room,
    own: &mut OwnFeeds,
    backoff: &mut Backoff,
) -> Result<(), Attempt> {
    let (http_c, server) = (http.clone(), room.server.clone());
    let (session, mut events) = blocking(move || JanusSession::create(&http_c, &server))
        .await?
        .map_err(janus_attempt)?;
    // Each step of a join is logged at debug level: `bench-meeting join` prints the timeline.
    tracing::debug!("Janus session created");
    let (mut roster, mut peer_events) = Roster::new(ctx.room.clone(), ctx.generation());
    let mut feeds = HashMap::new();
    let result = in_room(
        ctx,
        &session,
        room,
        &mut events,
        &mut roster,
        &mut peer_events,
        &mut feeds,
        own,
        backoff,
    )
    .await;
    roster.clear().await;
    // Leave politely (best effort: Janus may be what went away); destroying the session
    // detaches every handle on the server.
    let _ = blocking(move || session.destroy()).await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn in_room(
    ctx: &mut SessionContext,
    session: &Arc<JanusSession>,
    room: &Room,
    events: &mut JanusEvents,
    roster: &mut Roster,
    peer_events: &mut tokio::sync::mpsc::UnboundedReceiver<TaggedEvent>,
    feeds: &mut HashMap<u64, VideoRoomHandle>,
    own: &mut OwnFeeds,
    backoff: &mut Backoff,
) -> Result<(), Attempt> {
    let (s, r) = (session.clone(), room.clone());
    let (publisher, joined) = blocking(move || {
        let mut handle = VideoRoomHandle::attach(&s)?;
        let joined = handle.join_publisher(r.room, r.pin.as_deref(), &r.display_name)?;
        Ok::<_, JanusError>((handle, joined))
    })
    .await?
    .map_err(janus_attempt)?;
    tracing::debug!("joined the Janus room as a publisher");
    // Publishing and receiving the others are independent round trips to Janus: done together,
    // the first remote picture comes one publish round trip sooner.
    let context = &*ctx;
    let publish = async {
        let options = PeerOptions {
            end_to_end: room.e2ee.is_some(),
            ..context.peer_options("Janus", true, false)
        };
        let peer = Peer::new(&context.taps, options).map_err(Attempt::fatal)?;
        let offer = peer.create_offer().await.map_err(Attempt::fatal)?;
        let (publisher, answer) = blocking(move || {
            let answer = publisher.publish(&offer);
            (publisher, answer)
        })
        .await?;
        let answer = answer.map_err(janus_attempt)?;
        peer.accept_answer(&answer).await.map_err(Attempt::fatal)?;
        Ok::<_, Attempt>((publisher, peer))
    };
    let receive = async {
        // A content feed of ours from an earlier session may linger: never receive it.
        for publisher in own.others(joined.publishers) {
            subscribe(
                context,
                session,
                room,
                joined.private_id,
                publisher,
                roster,
                feeds,
            )
            .await?;
        }
        Ok::<_, Attempt>(())
    };
    let (published, received) = tokio::join!(publish, receive);
    let (publisher, peer) = published?;
    received?;
    roster.add_peer(SELF_ID, "", "publisher", peer).await;
    let mut e2ee = match &room.e2ee {
        Some(setup) => {
            let (agreement, effects) = JanusE2ee::start(
                &setup.identity,
                room.room,
                joined.id,
                setup.trusted.clone(),
                setup.require,
            )
            .await
            .map_err(Attempt::fatal)?;
            apply(effects, roster.peer(SELF_ID, "publisher"), None);
            Some(agreement)
        }
        None => None,
    };
    report_e2ee(&mut e2ee, roster, feeds).await;
    ctx.report_state(MeetingState::Connected, "").await;
    backoff.reset();

    let mut status = ctx.room.watch_status();
    let mut content_wanted = janus_content::shared(&ctx.room.status().status);
    let mut content = None;
    if content_wanted {
        content = share_content(ctx, session, room, own, roster, &mut e2ee).await;
        report_e2ee(&mut e2ee, roster, feeds).await;
    }

    let mut stats = tokio::time::interval(Duration::from_secs(1));
    let mut announce = tokio::time::interval(ANNOUNCE_INTERVAL);
    // A new sender key every `meeting.e2ee_rekey_s` (the first one after that long).
    let rekey_every = room
        .e2ee
        .as_ref()
        .map_or(Duration::from_secs(3600), |e| e.rekey);
    let mut rekey =
        tokio::time::interval_at(tokio::time::Instant::now() + rekey_every, rekey_every);
    let mut stop = ctx.stop.clone();
    let outcome = loop {
        tokio::select! {
            _ = SessionContext::stopped(&mut stop) => break Ok(()),
            event = events.recv() => match event {
                None => break Err(Attempt::Transient("the Janus event stream ended".into())),
                Some(Err(JanusError::StreamEnded { reason })) => {
                    break Err(Attempt::Transient(format!("lost the connection to Janus: {reason}").into()));
                }
                Some(Err(JanusError::SessionTimedOut)) => {
                    break Err(Attempt::Transient("the Janus session timed out".into()));
                }
                Some(Err(e)) => break Err(Attempt::Fatal(format!("Janus sent malformed signalling: {e}").into())),
                // The content publisher's handle hears the room too: its camera handle is the
                // one the room follows.
                Some(Ok(event)) if event.handle().is_some()
                    && event.handle() == content.as_ref().map(ContentShare::handle_id) => {
                    if let JanusEvent::Hangup { reason, .. } = event {
                        tracing::warn!("Janus hung up on the content share: {reason}; the meeting goes on without it");
                        if let Some(share) = content.take() {
                            stop_content(share, roster, &mut e2ee).await;
                        }
                    }
                }
                Some(Ok(event)) => match event {
                    JanusEvent::PublishersJoined { publishers, .. } => {
                        let mut joined_now = false;
                        for publisher in own.others(publishers) {
                            if !feeds.contains_key(&publisher.id) {
                                subscribe(ctx, session, room, joined.private_id, publisher, roster, feeds).await?;
                                joined_now = true;
                            }
                        }
                        // A new participant: announce (and repeat until keyed with it).
                        if joined_now && let Some(agreement) = e2ee.as_mut() {
                            apply(agreement.announce(), roster.peer(SELF_ID, "publisher"), None);
                            report_e2ee(&mut e2ee, roster, feeds).await;
                        }
                    }
                    JanusEvent::PublisherLeft { id, .. }
                    | JanusEvent::PublisherUnpublished { id, .. }
                    | JanusEvent::PublisherKicked { id, .. } => {
                        if let Some(agreement) = e2ee.as_mut() {
                            let effects = agreement.leave(id);
                            apply(effects, roster.peer(SELF_ID, "publisher"), roster.peer(&participant_id(id), "subscriber"));
                        }
                        unsubscribe(id, roster, feeds).await;
                        report_e2ee(&mut e2ee, roster, feeds).await;
                    }
                    JanusEvent::Hangup { handle, reason } if handle == publisher.id() => {
                        break Err(Attempt::Transient(format!("Janus hung up on the room: {reason}").into()));
                    }
                    JanusEvent::RoomDestroyed { .. } => {
                        break Err(Attempt::Fatal("the Janus room was destroyed".into()));
                    }
                    JanusEvent::SessionTimeout => {
                        break Err(Attempt::Transient("the Janus session timed out".into()));
                    }
                    JanusEvent::Error { code, reason, .. } => {
                        tracing::warn!("Janus error event {code}: {reason}");
                    }
                    other => tracing::debug!("Janus event: {other:?}"),
                },
            },
            Some((id, event)) = peer_events.recv() => {
                if let Some(agreement) = e2ee.as_mut() {
                    match &event {
                        PeerEvent::Data(bytes) => {
                            if let Some(feed) = feed_of(&id) {
                                let effects = agreement.on_data(feed, bytes);
                                apply(effects, roster.peer(SELF_ID, "publisher"), roster.peer(&id, "subscriber"));
                                report_e2ee(&mut e2ee, roster, feeds).await;
                            }
                        }
                        // Whoever can hear us now learns who we are (and answers with its key).
                        PeerEvent::DataChannelOpen => {
                            tracing::debug!("data channel open on {id}");
                            apply(agreement.announce(), roster.peer(SELF_ID, "publisher"), None);
                        }
                        _ => {}
                    }
                }
                roster.on_event(&id, &event).await;
                if let PeerEvent::Failed(reason) = &event {
                    if id == SELF_ID {
                        break Err(Attempt::Transient(format!("the media connection to Janus failed: {reason}").into()));
                    }
                    if id == CONTENT_ID && let Some(share) = content.take() {
                        tracing::warn!("the content share's connection to Janus failed: {reason}; the meeting goes on without it");
                        stop_content(share, roster, &mut e2ee).await;
                    }
                }
            }
            changed = ctx.plan.changed() => {
                if changed.is_err() {
                    break Ok(());
                }
                let (removed, confirmed) = {
                    let plan = ctx.plan.borrow_and_update();
                    (plan.removed.clone(), plan.sas_confirmed.clone())
                };
                let gone: Vec<u64> = feeds.keys().copied().filter(|f| removed.contains(&participant_id(*f))).collect();
                for feed in gone {
                    unsubscribe(feed, roster, feeds).await;
                }
                if let Some(agreement) = e2ee.as_mut() {
                    for confirmation in &confirmed {
                        if let Some(feed) = feed_of(&confirmation.participant) {
                            let effects = agreement.confirm_sas(feed, &confirmation.by);
                            apply(effects, roster.peer(SELF_ID, "publisher"), None);
                        }
                    }
                    report_e2ee(&mut e2ee, roster, feeds).await;
                }
            }
            Ok(()) = status.changed() => {
                // Only a change of the sharing state matters (the status changes every second).
                let wanted = janus_content::shared(&status.borrow_and_update().status);
                if wanted != content_wanted {
                    content_wanted = wanted;
                    if let Some(share) = content.take() {
                        stop_content(share, roster, &mut e2ee).await;
                    }
                    if wanted {
                        content = share_content(ctx, session, room, own, roster, &mut e2ee).await;
                        report_e2ee(&mut e2ee, roster, feeds).await;
                    }
                }
            }
            _ = stats.tick() => {
                roster.report_stats().await;
                // Whether each participant's frames open: a key that arrived but does not
                // open them shows as `refused` (reported only when it changes).
                if let Some(agreement) = e2ee.as_mut() {
                    for feed in feeds.keys() {
                        if let Some(peer) = roster.peer(&participant_id(*feed), "subscriber") {
                            agreement.observe_frames(*feed, peer.frame_counters());
                        }
                    }
                    report_e2ee(&mut e2ee, roster, feeds).await;
                }
            }
            _ = rekey.tick(), if e2ee.is_some() => {
                if let Some(agreement) = e2ee.as_mut() {
                    let effects = agreement.rekey();
                    apply(effects, roster.peer(SELF_ID, "publisher"), None);
                }
                report_e2ee(&mut e2ee, roster, feeds).await;
            }
            _ = announce.tick(), if e2ee.is_some() => {
                report_e2ee(&mut e2ee, roster, feeds).await;
                if let Some(repeat) = e2ee.as_mut().and_then(JanusE2ee::repeat_announce) {
                    apply(repeat, roster.peer(SELF_ID, "publisher"), None);
                }
            }
        }
    };
    if let Some(share) = content.take() {
        share.stop(roster).await;
    }
    let _ = blocking(move || publisher.leave()).await;
    outcome
}

/// Starts publishing the room's content; a failure is logged and the meeting goes on without it
/// (until sharing stops and starts again).
/// Shares the room's content from a second publisher; in an end-to-end encrypted meeting its
/// frames are encrypted as the camera's (docs/security.md), and the others learn which feed it
/// is with our next announce.
async fn share_content(
    ctx: &SessionContext,
    session: &Arc<JanusSession>,
    room: &Room,
    own: &mut OwnFeeds,
    roster: &mut Roster,
    e2ee: &mut Option<JanusE2ee>,
) -> Option<ContentShare> {
    let started = ContentShare::start(
        ctx,
        session,
        room.room,
        room.pin.clone(),
        &room.display_name,
        own,
        roster,
        e2ee.is_some(),
    )
    .await;
    match started {
        Ok(share) => {
            if let Some(agreement) = e2ee.as_mut() {
                agreement.set_content(Some(share.feed()));
                agreement.sync_content(roster.peer(CONTENT_ID, "content"), |_| None);
                apply(
                    agreement.announce(),
                    roster.peer(SELF_ID, "publisher"),
                    None,
                );
            }
            Some(share)
        }
        Err(reason) => {
            tracing::warn!(
                "cannot share content in the Janus room: {reason}; the meeting goes on without it"
            );
            None
        }
    }
}

/// Stops sharing content (and declaring it).
async fn stop_content(share: ContentShare, roster: &mut Roster, e2ee: &mut Option<JanusE2ee>) {
    if let Some(agreement) = e2ee.as_mut() {
        agreement.set_content(None);
    }
    share.stop(roster).await;
}

/// Characters of a display name another participant chose that roomd keeps (as for guests).
pub(crate) const MAX_NAME_CHARS: usize = 64;

/// A name from the server as status and the display may show it: no control characters, at
/// most [`MAX_NAME_CHARS`] characters.
fn bounded_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_NAME_CHARS)
        .collect()
}

/// Feeds received at most from one Janus room (a 3×3 grid); publishers beyond are ignored.
pub(crate) const MAX_SUBSCRIPTIONS: usize = 9;

/// Receives one publisher on a handle of its own. A feed that cannot be received is logged
/// and skipped (the meeting goes on); a server that went away ends the attempt.
async fn subscribe(
    ctx: &SessionContext,
    session: &Arc<JanusSession>,
    room: &Room,
    private_id: Option<u64>,
    publisher: Publisher,
    roster: &mut Roster,
    feeds: &mut HashMap<u64, VideoRoomHandle>,
) -> Result<(), Attempt> {
    let id = participant_id(publisher.id);
    if ctx.plan.borrow().removed.contains(&id) {
        return Ok(());
    }
    // Each feed costs a peer, decoders and a tile on the display; a room with more
    // publishers than the layout can show must not make the device fall over.
    if feeds.len() >= MAX_SUBSCRIPTIONS {
        tracing::warn!(
            "not receiving Janus feed {}: already receiving {MAX_SUBSCRIPTIONS} feeds, the most \
             one room shows",
            publisher.id
        );
        return Ok(());
    }
    let name = publisher
        .display
        .as_deref()
        .map(bounded_name)
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| format!("Participant {}", publisher.id));
    let (s, r, feed) = (session.clone(), room.clone(), publisher.id);
    let subscribed = blocking(move || {
        let mut handle = VideoRoomHandle::attach(&s)?;
        let offer = handle.join_subscriber(
            r.room,
            r.pin.as_deref(),
            &[FeedRef { feed, mid: None }],
            private_id,
        )?;
        Ok::<_, JanusError>((handle, offer))
    })
    .await?;
    let (handle, offer) = match subscribed {
        Ok(ok) => ok,
        Err(e) => return skip_or_end(&name, janus_attempt(e)),
    };
    tracing::debug!(
        "Janus offered feed {feed}: {:?}",
        offer.streams.iter().map(|s| s.kind).collect::<Vec<_>>()
    );
    let options = PeerOptions {
        end_to_end: room.e2ee.is_some(),
        ..ctx.peer_options(&name, false, true)
    };
    let peer = match Peer::new(&ctx.taps, options) {
        Ok(peer) => peer,
        Err(e) => return skip_or_end(&name, Attempt::fatal(e)),
    };
    tracing::debug!("receiving peer for feed {feed} built");
    let answer = match peer.answer_offer(&offer.sdp).await {
        Ok(answer) => answer,
        Err(e) => return skip_or_end(&name, Attempt::fatal(e)),
    };
    tracing::debug!("answer for feed {feed} ready (ICE gathered)");
    let (handle, started) = blocking(move || {
        let started = handle.start(&answer);
        (handle, started)
    })
    .await?;
    if let Err(e) = started {
        return skip_or_end(&name, janus_attempt(e));
    }
    roster.add_peer(&id, &name, "subscriber", peer).await;
    feeds.insert(publisher.id, handle);
    Ok(())
}

fn skip_or_end(name: &str, attempt: Attempt) -> Result<(), Attempt> {
    match attempt {
        Attempt::Transient(reason) => Err(Attempt::Transient(reason)),
        Attempt::Fatal(reason) => {
            tracing::warn!("cannot receive {name} from Janus: {reason}");
            Ok(())
        }
    }
}

async fn unsubscribe(feed: u64, roster: &mut Roster, feeds: &mut HashMap<u64, VideoRoomHandle>) {
    roster.remove(&participant_id(feed)).await;
    if let Some(handle) = feeds.remove(&feed) {
        let _ = blocking(move || handle.detach()).await;
    }
}

fn participant_id(feed: u64) -> String {
    format!("j-{feed}")
}

/// The Janus feed of a participant id made by [`participant_id`].
fn feed_of(participant: &str) -> Option<u64> {
    participant.strip_prefix("j-")?.parse().ok()
}

/// Tells the core where the end-to-end key agreement stands with the feeds received, when it
/// changed.
async fn report_e2ee(
    e2ee: &mut Option<JanusE2ee>,
    roster: &Roster,
    feeds: &HashMap<u64, VideoRoomHandle>,
) {
    let Some(agreement) = e2ee else {
        return;
    };
    let mut received: Vec<(u64, String)> = feeds.keys().map(|&f| (f, participant_id(f))).collect();
    received.sort_unstable();
    agreement.sync_content(roster.peer(CONTENT_ID, "content"), |feed| {
        roster.peer(&participant_id(feed), "subscriber")
    });
    let hold = agreement.must_hold(&received);
    for peer in [
        roster.peer(SELF_ID, "publisher"),
        roster.peer(CONTENT_ID, "content"),
    ]
    .into_iter()
    .flatten()
    {
        if let Err(e) = peer.hold_sending(hold) {
            tracing::warn!("end-to-end encryption: {e}");
        }
    }
    if let Some(status) = agreement.changed_status(&received) {
        roster.report_e2ee(status).await;
    }
}

/// Network trouble passes; what Janus says about the room and PIN does not.
fn janus_attempt(e: JanusError) -> Attempt {
    match e {
        JanusError::Http(http) => http_attempt(http),
        JanusError::Status { status, .. } if status >= 500 => Attempt::Transient(e.into()),
        JanusError::StreamEnded { .. }
        | JanusError::SessionTimedOut
        | JanusError::SessionNotFound
        | JanusError::NoAnswer { .. } => Attempt::Transient(e.into()),
        other => Attempt::Fatal(other.into()),
    }
}
