//! A meeting hosted by the room: guests' WHIP offers bring their camera and microphone to the
//! room display and speakers; their WHEP offers get the room's picture and sound, and the other
//! guests' in relay slots ([`super::hosted_forwarding`]). One encoder feeds every guest (the
//! media taps), whatever their number; guests' media is forwarded, never encoded again.

use std::time::{Duration, Instant};

use super::MeetingError;
use super::engine::GuestDirection;
use super::hosted_chat::Chat;
use super::hosted_documents::{DocumentPolicy, Documents};
use super::hosted_forwarding::{Forwarding, RoomMedia};
use super::hosted_messages::{self, GuestMessage, Incoming};
use super::hosted_mute_requests::MuteRequests;
use super::roster::Roster;
use super::session::{SessionCommand, SessionContext};
use roomd_core::{AdmittedGuest, MeetingReport, SharedWindow};
use roomd_media::webrtc::{Peer, PeerEvent, PeerOptions};

pub(crate) async fn run(mut ctx: SessionContext) {
    let (mut roster, mut events) = Roster::new(ctx.room.clone(), ctx.generation());
    let mut forwarding = Forwarding::default();
    let mut chat = Chat::default();
    let mut documents = Documents::default();
    let mut mute_requests = MuteRequests::default();
    // The shared window as last reported, and when: its frame count is reported once a
    // second, a change of who shares at once.
    let mut window_shown: Option<SharedWindow> = None;
    let mut window_reported = Instant::now();
    let mut stats = tokio::time::interval(Duration::from_secs(1));
    let mut stop = ctx.stop.clone();
    loop {
        // Whether what guests are told may have changed: everything but the data channel
        // messages that change nothing of it (chat lines, document chunks: up to 100 a second a
        // guest).
        let changed = tokio::select! {
            _ = SessionContext::stopped(&mut stop) => break,
            Some(command) = ctx.commands.recv() => { match command {
                SessionCommand::ConnectGuest { guest, direction, offer, reply } => {
                    let result = connect(&ctx, &mut roster, guest, direction, &offer).await;
                    if let Err(e) = &result {
                        tracing::warn!("guest media refused: {e}");
                    }
                    let _ = reply.send(result);
                }
                SessionCommand::DisconnectGuest { guest_id, direction: Some(direction) } => {
                    roster.close_peers(&guest_id, direction.as_str());
                }
                SessionCommand::DisconnectGuest { guest_id, direction: None } => {
                    roster.remove(&guest_id).await;
                }
            }; true }
            changed = ctx.plan.changed() => {
                if changed.is_err() {
                    break;
                }
                let plan = ctx.plan.borrow_and_update().clone();
                chat.send_the_rooms(&roster, &plan.chat);
                mute_requests.pass_on(&roster, &plan.mute_requests);
                let removed = plan.removed.clone();
                for id in &removed {
                    if roster.contains(id) {
                        roster.remove(id).await;
                    }
                }
                true
            }
            Some((id, event)) = events.recv() => {
                let changed = match &event {
                    PeerEvent::Data(bytes) => {
                        take_message(&ctx, &mut roster, &mut chat, &mut documents, &id, bytes).await
                    }
                    _ => true,
                };
                roster.on_event(&id, &event).await;
                changed
            }
            _ = stats.tick() => {
                roster.report_stats().await;
                documents.prune(&roster);
                true
            }
        };
        if !changed {
            continue;
        }
        // The room's own mute and camera reach guests within the stats tick (a second).
        let plan = ctx.plan.borrow().clone();
        let room_media = RoomMedia::of(&ctx.room.status().status);
        let policy = DocumentPolicy::of(&ctx.room.config().meeting);
        let window = forwarding.refresh(&roster, room_media, &plan, policy);
        let sharer = |w: &Option<SharedWindow>| w.as_ref().map(|w| w.participant.clone());
        let due = window != window_shown && window_reported.elapsed() >= Duration::from_secs(1);
        if sharer(&window) != sharer(&window_shown) || due {
            window_shown = window.clone();
            window_reported = Instant::now();
            let report = MeetingReport::SharedWindow {
                generation: ctx.generation(),
                window,
            };
            let _ = ctx.room.meeting_report(report).await;
        }
    }
    roster.clear().await;
}

/// A message from guest `id`'s page; true if it changed what guests are told of each other.
async fn take_message(
    ctx: &SessionContext,
    roster: &mut Roster,
    chat: &mut Chat,
    documents: &mut Documents,
    id: &str,
    bytes: &[u8],
) -> bool {
    match hosted_messages::parse(bytes) {
        Ok(Incoming::Guest(GuestMessage::Hand { raised })) => {
            roster.set_hand(id, raised).await;
            true
        }
        Ok(Incoming::Guest(GuestMessage::Chat { text })) => {
            chat.take_from_guest(roster, &ctx.room, ctx.generation(), id, text)
                .await;
            false
        }
        Ok(Incoming::Document(message)) => {
            let policy = DocumentPolicy::of(&ctx.room.config().meeting);
            documents.take(roster, policy, id, message);
            false
        }
        Err(e) => {
            tracing::debug!("guest {id}: {e}");
            false
        }
    }
}

async fn connect(
    ctx: &SessionContext,
    roster: &mut Roster,
    guest: AdmittedGuest,
    direction: GuestDirection,
    offer: &str,
) -> Result<String, MeetingError> {
    if ctx.plan.borrow().removed.contains(&guest.guest_id) {
        return Err(MeetingError::Refused(
            "you were removed from this meeting".into(),
        ));
    }
    // A new offer for the same direction replaces the earlier session (the guest reconnected).
    roster.close_peers(&guest.guest_id, direction.as_str());
    let sending_to_guest = direction == GuestDirection::Whep;
    let options = PeerOptions {
        relay: !sending_to_guest,
        relay_slots: sending_to_guest,
        ..ctx.peer_options(&guest.name, sending_to_guest, !sending_to_guest)
    };
    let peer = Peer::new(&ctx.taps, options)?;
    let answer = peer.answer_offer(offer).await?;
    roster
        .add_peer(&guest.guest_id, &guest.name, direction.as_str(), peer)
        .await;
    Ok(answer)
}
