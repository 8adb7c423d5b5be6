//! Who each guest of a hosted meeting sees: the room forwards every guest's audio and video
//! (as they sent it, never decoded for it) to the other guests, each in one of the relay slots
//! of their WHEP connection, and tells each guest over that connection's data channel who is in
//! which slot (docs/meetings.md, "Everyone sees everyone").
//!
//! A guest keeps its slot while it stays; a guest who leaves frees it; one who comes takes the
//! first free slot. Everything is derived from the roster again at each change, so there is no
//! second account of who is there to keep in step.

use std::collections::HashMap;

use serde::Serialize;

use super::engine::GuestDirection;
use super::hosted_documents::DocumentPolicy;
use super::roster::Roster;
use roomd_core::{
    CameraState, ContentState, LobbyGuest, MediaState, MeetingPlan, Moderation, Participant,
    RoomStatus, SharedWindow,
};
use roomd_media::webrtc::{Peer, Relay};

/// What a guest is told about the others, on its WHEP data channel: the room's own microphone
/// and camera, `slots[i]`: who relay slot `i` shows (`null`: nobody), the guest's own roles,
/// whether the meeting is locked, and, for a moderator, who waits in the lobby.
#[derive(Debug, Serialize, PartialEq)]
#[serde(tag = "type", rename = "participants")]
struct SlotList<'a> {
    room: RoomMedia,
    slots: Vec<Option<SlotEntry<'a>>>,
    you: Roles,
    locked: bool,
    /// The guest whose window the content line carries now (`null`: the room's own content,
    /// if it shares).
    window_from: Option<&'a str>,
    /// The largest document a guest may offer, in bytes; `null`: documents are switched off.
    documents_max_bytes: Option<u64>,
    /// Empty for a guest who is no moderator.
    lobby: &'a [LobbyGuest],
}

/// A participant's roles (docs/meetings.md, "Roles").
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
struct Roles {
    moderator: bool,
    presenter: bool,
}

impl Roles {
    fn of(id: &str, moderation: &Moderation) -> Roles {
        Roles {
            moderator: moderation.moderators.iter().any(|m| m == id),
            presenter: moderation.presenter.as_deref() == Some(id),
        }
    }
}

/// The room's own microphone and camera, and whether it shares content (on the WHEP line after
/// the relay slots), as its status says.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub(crate) struct RoomMedia {
    pub(crate) muted: bool,
    pub(crate) camera: CameraState,
    pub(crate) content: ContentState,
}

impl RoomMedia {
    pub(crate) fn of(status: &RoomStatus) -> RoomMedia {
        RoomMedia {
            muted: status.audio.microphones.muted,
            camera: status.video.camera.state,
            content: status.video.content.state,
        }
    }
}

#[derive(Debug, Serialize, PartialEq)]
struct SlotEntry<'a> {
    /// What a moderator's requests name them by.
    id: &'a str,
    name: &'a str,
    #[serde(flatten)]
    roles: Roles,
    talking: bool,
    hand_raised: bool,
    audio: MediaState,
    video: MediaState,
    /// Their own link to the room: `dtls-srtp` once its handshake is done, `none` before.
    /// What reaches this guest of them is encrypted hop by hop, the room decrypting between.
    encryption: &'a str,
}

#[derive(Default)]
pub(crate) struct Forwarding {
    /// Per receiving guest: the guest each of its slots shows.
    slots: HashMap<String, Vec<Option<String>>>,
    /// The list each guest was last sent: an unchanged list is not sent again.
    sent: HashMap<String, String>,
    /// Sending guests in the order they started sending: newcomers take free slots in it.
    arrival: Vec<String>,
}

impl Forwarding {
    /// Brings every guest's slots, content line and list up to date with the roster, the
    /// room's media and the meeting's roles and lobby; returns the window shared now, as the
    /// room display shows it.
    pub(crate) fn refresh(
        &mut self,
        roster: &Roster,
        room: RoomMedia,
        plan: &MeetingPlan,
        documents: DocumentPolicy,
    ) -> Option<SharedWindow> {
        let moderation = &plan.moderation;
        // Only the presenter's window is let in; it is shown while its frames arrive.
        let mut window: Option<(Participant, &Relay, u64)> = None;
        for (sender, peer) in roster.with_peer(GuestDirection::Whip.as_str()) {
            let presenter = moderation.presenter.as_deref() == Some(sender.id.as_str());
            peer.allow_window(presenter);
            if presenter
                && peer.window_arriving()
                && let Some(relay) = peer.window_relay()
            {
                window = Some((sender, relay, peer.window_frames_shown()));
            }
        }
        let mut sources: Vec<(Participant, &Relay)> = roster
            .with_peer(GuestDirection::Whip.as_str())
            .filter_map(|(participant, peer)| Some((participant, peer.relay()?)))
            .collect();
        self.arrival
            .retain(|id| sources.iter().any(|(p, _)| &p.id == id));
        for (p, _) in &sources {
            if !self.arrival.contains(&p.id) {
                self.arrival.push(p.id.clone());
            }
        }
        let arrival = &self.arrival;
        sources.sort_by_key(|(p, _)| arrival.iter().position(|id| id == &p.id));
        let receivers: Vec<(Participant, &Peer)> =
            roster.with_peer(GuestDirection::Whep.as_str()).collect();
        self.slots
            .retain(|id, _| receivers.iter().any(|(r, _)| &r.id == id));
        self.sent
            .retain(|id, _| receivers.iter().any(|(r, _)| &r.id == id));
        for (receiver, peer) in &receivers {
            let slots = self.slots.entry(receiver.id.clone()).or_default();
            let sources_here: Vec<&(Participant, &Relay)> = sources
                .iter()
                .filter(|(p, _)| p.id != receiver.id)
                .collect();
            let ids: Vec<&str> = sources_here.iter().map(|(p, _)| p.id.as_str()).collect();
            assign(slots, peer.relay_slot_count(), &ids);
            let source = |id: &Option<String>| {
                id.as_ref()
                    .and_then(|id| sources_here.iter().find(|(p, _)| &p.id == id))
            };
            for (index, id) in slots.iter().enumerate() {
                peer.show_in_slot(index, source(id).map(|(_, relay)| *relay));
            }
            // The presenter sees their own window on their page, not back from the room.
            let window_here = window.as_ref().filter(|(p, _, _)| p.id != receiver.id);
            peer.show_window(window_here.map(|(_, relay, _)| *relay));
            let you = Roles::of(&receiver.id, moderation);
            let list = SlotList {
                room,
                you,
                locked: moderation.locked,
                window_from: window_here.map(|(p, _, _)| p.name.as_str()),
                documents_max_bytes: documents.max_bytes,
                lobby: if you.moderator { &plan.lobby } else { &[] },
                slots: slots
                    .iter()
                    .map(|id| {
                        source(id).map(|(p, _)| SlotEntry {
                            id: &p.id,
                            name: &p.name,
                            roles: Roles::of(&p.id, moderation),
                            talking: p.talking,
                            hand_raised: p.hand_raised,
                            audio: p.audio,
                            video: p.video,
                            encryption: &p.encryption,
                        })
                    })
                    .collect(),
            };
            let Ok(message) = serde_json::to_string(&list) else {
                continue;
            };
            if self.sent.get(&receiver.id) == Some(&message) {
                continue;
            }
            // Not open yet: sent at a later refresh (each event and every second).
            if peer.send_data(&message).is_ok() {
                self.sent.insert(receiver.id.clone(), message);
            }
        }
        window.map(|(p, _, frames)| SharedWindow {
            participant: p.id,
            name: p.name,
            frames,
        })
    }
}

/// Keeps who stays in their slot, frees the slots of who left, and gives newcomers (`sources`,
/// in arrival order) the first free ones; `count` slots in all (what the receiver's offer has
/// room for).
fn assign(slots: &mut Vec<Option<String>>, count: usize, sources: &[&str]) {
    slots.resize(count, None);
    for slot in slots.iter_mut() {
        if slot
            .as_ref()
            .is_some_and(|id| !sources.contains(&id.as_str()))
        {
            *slot = None;
        }
    }
    for source in sources {
        if slots.iter().flatten().any(|id| id == source) {
            continue;
        }
        match slots.iter_mut().find(|slot| slot.is_none()) {
            Some(free) => *free = Some((*source).to_owned()),
            // More guests than slots: the later ones are seen once a slot frees.
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::assign;

    fn shown(slots: &[Option<String>]) -> Vec<&str> {
        slots.iter().map(|s| s.as_deref().unwrap_or("-")).collect()
    }

    #[test]
    fn guests_keep_their_slots_and_newcomers_take_the_free_ones() {
        let mut slots = Vec::new();
        assign(&mut slots, 3, &["a", "b"]);
        assert_eq!(shown(&slots), ["a", "b", "-"]);
        // a leaves: b stays where it is, c takes the first free slot.
        assign(&mut slots, 3, &["b", "c"]);
        assert_eq!(shown(&slots), ["c", "b", "-"]);
        assign(&mut slots, 3, &["b", "c", "d", "e"]);
        assert_eq!(shown(&slots), ["c", "b", "d"], "e waits for a free slot");
        assign(&mut slots, 3, &["c", "d", "e"]);
        assert_eq!(shown(&slots), ["c", "e", "d"]);
    }

    #[test]
    fn a_receiver_without_slots_shows_nobody() {
        let mut slots = vec![Some("a".to_owned())];
        assign(&mut slots, 0, &["a"]);
        assert!(slots.is_empty());
    }
}
