//! The peers of one meeting, grouped by participant: what the room core hears about them
//! (participants joining, connecting, talking, leaving; per-stream figures every second; the
//! first remote picture) is derived here, the same way for every kind of meeting.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use roomd_core::{
    MediaState, MeetingReport, Participant, ParticipantState, RoomHandle, StreamStats,
};
use roomd_media::MediaKind;
use roomd_media::webrtc::{Peer, PeerEvent};

/// The id under which the room's own outgoing streams are reported (not a participant).
pub(crate) const SELF_ID: &str = "self";
/// The id under which the room's shared content (a second outgoing feed) is reported; not a
/// participant either.
pub(crate) const CONTENT_ID: &str = "content";

/// A far-end stream that brought no packets for this long is `off` (its track is muted, or the
/// far end stopped sending it): two readings of the statistics without a byte, with margin.
const MEDIA_OFF_AFTER: Duration = Duration::from_millis(2500);

/// What the participant's encryption is shown as (docs/meetings.md).
const ENCRYPTED: &str = "dtls-srtp";
const UNENCRYPTED: &str = "none";

/// A peer event, with the participant it belongs to.
pub(crate) type TaggedEvent = (String, PeerEvent);

struct Member {
    name: String,
    /// Shown in `status.meeting.participants` (the room itself and servers are not).
    announced: bool,
    /// Each peer with a tag saying what it carries (e.g. `whip`, `whep`, `publisher`).
    peers: Vec<(&'static str, Peer)>,
    connected: bool,
    talking: bool,
    /// A hosted meeting's guest raised their hand on their page.
    hand_raised: bool,
    /// Per kind ("audio", "video") the far end sends: when its last packets arrived.
    received: HashMap<&'static str, Instant>,
    /// The kinds their peers' negotiated media lines let them send (from the last reading;
    /// `None` before it): a kind outside it is `none`, whatever arrived before.
    negotiated: Option<Vec<&'static str>>,
    /// Every stream of every peer is encrypted (measured at the last statistics reading).
    encrypted: bool,
    /// What the core was last told: media states change with time alone (no packets for a
    /// while), so each reading compares with this.
    shown: Option<Participant>,
}

pub(crate) struct Roster {
    room: RoomHandle,
    generation: u64,
    joined_at: Instant,
    members: HashMap<String, Member>,
    events_tx: mpsc::UnboundedSender<TaggedEvent>,
    first_frame_reported: bool,
}

impl Roster {
    /// A roster and the stream of its peers' events, which the session feeds back into
    /// [`Roster::on_event`].
    pub(crate) fn new(
        room: RoomHandle,
        generation: u64,
    ) -> (Roster, mpsc::UnboundedReceiver<TaggedEvent>) {
        let (events_tx, events) = mpsc::unbounded_channel();
        (
            Roster {
                room,
                generation,
                joined_at: Instant::now(),
                members: HashMap::new(),
                events_tx,
                first_frame_reported: false,
            },
            events,
        )
    }

    /// Adds `peer` to participant `id` (created, and announced unless it is [`SELF_ID`] or
    /// [`CONTENT_ID`]);
    /// `tag` names what the peer carries.
    pub(crate) async fn add_peer(&mut self, id: &str, name: &str, tag: &'static str, peer: Peer) {
        if let Some(mut events) = peer.take_events() {
            let tx = self.events_tx.clone();
            let participant = id.to_owned();
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if tx.send((participant.clone(), event)).is_err() {
                        break;
                    }
                }
            });
        }
        let announced = id != SELF_ID && id != CONTENT_ID;
        let member = self.members.entry(id.to_owned()).or_insert_with(|| Member {
            name: name.to_owned(),
            announced,
            peers: Vec::new(),
            connected: false,
            talking: false,
            hand_raised: false,
            received: HashMap::new(),
            negotiated: None,
            encrypted: false,
            shown: None,
        });
        member.peers.push((tag, peer));
        self.show(id).await;
    }

    /// Tells the core how participant `id` stands now (unless status does not list them).
    async fn show(&mut self, id: &str) {
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        if !member.announced {
            return;
        }
        let participant = participant(id, member);
        member.shown = Some(participant.clone());
        self.report(MeetingReport::Participant {
            generation: self.generation,
            participant,
        })
        .await;
    }

    /// The peer of participant `id` tagged `tag`, if it has one.
    pub(crate) fn peer(&self, id: &str, tag: &str) -> Option<&Peer> {
        self.members
            .get(id)?
            .peers
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, peer)| peer)
    }

    /// Each participant with a peer tagged `tag`, as status shows them, with that peer.
    pub(crate) fn with_peer<'a>(
        &'a self,
        tag: &'a str,
    ) -> impl Iterator<Item = (Participant, &'a Peer)> + 'a {
        self.members.iter().filter_map(move |(id, member)| {
            let (_, peer) = member.peers.iter().find(|(t, _)| *t == tag)?;
            Some((participant(id, member), peer))
        })
    }

    /// Tells the core where the meeting's end-to-end encryption stands.
    pub(crate) async fn report_e2ee(&self, e2ee: roomd_core::E2eeStatus) {
        // Each picture says under the name what status says of that participant.
        for participant in &e2ee.participants {
            if let Some(member) = self.members.get(&participant.id) {
                let line = identity_line(participant);
                for (_, peer) in &member.peers {
                    peer.set_identity(&line);
                }
            }
        }
        self.report(MeetingReport::E2ee {
            generation: self.generation,
            e2ee,
        })
        .await;
    }

    /// Participant `id` raised (or lowered) their hand; the core hears of it.
    pub(crate) async fn set_hand(&mut self, id: &str, raised: bool) {
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        if member.hand_raised == raised {
            return;
        }
        member.hand_raised = raised;
        self.show(id).await;
    }

    /// Sends `text` on the data channel of participant `id`'s peer tagged `tag`; false if
    /// there is no such peer or its channel is not open.
    pub(crate) fn send_data_to(&self, id: &str, tag: &str, text: &str) -> bool {
        self.members
            .get(id)
            .and_then(|member| member.peers.iter().find(|(t, _)| *t == tag))
            .is_some_and(|(_, peer)| peer.send_data(text).is_ok())
    }

    /// The name participant `id` goes by.
    pub(crate) fn name(&self, id: &str) -> Option<&str> {
        self.members.get(id).map(|m| m.name.as_str())
    }

    pub(crate) fn contains(&self, id: &str) -> bool {
        self.members.contains_key(id)
    }

    /// Closes every peer of participant `id` and reports them gone.
    pub(crate) async fn remove(&mut self, id: &str) {
        if let Some(member) = self.members.remove(id) {
            for (_, peer) in member.peers {
                peer.close();
            }
            if member.announced {
                self.report(MeetingReport::ParticipantLeft {
                    generation: self.generation,
                    id: id.to_owned(),
                })
                .await;
            }
        }
    }

    /// Closes the peers of participant `id` tagged `tag`, keeping the participant.
    pub(crate) fn close_peers(&mut self, id: &str, tag: &str) {
        if let Some(member) = self.members.get_mut(id) {
            let (closing, kept): (Vec<_>, Vec<_>) =
                member.peers.drain(..).partition(|(t, _)| *t == tag);
            member.peers = kept;
            for (_, peer) in closing {
                peer.close();
            }
        }
    }

    pub(crate) async fn clear(&mut self) {
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            self.remove(&id).await;
        }
    }

    /// Updates the participant a peer event is about and tells the core what changed.
    pub(crate) async fn on_event(&mut self, id: &str, event: &PeerEvent) {
        let Some(member) = self.members.get_mut(id) else {
            return;
        };
        let mut changed = true;
        match event {
            PeerEvent::Connected => member.connected = true,
            PeerEvent::Disconnected | PeerEvent::Failed(_) => member.connected = false,
            PeerEvent::RemoteTrack { kind } => {
                let kind = match kind {
                    MediaKind::Video => "video",
                    MediaKind::Audio => "audio",
                };
                member.received.insert(kind, Instant::now());
            }
            PeerEvent::Talking(talking) => member.talking = *talking,
            // Key messages are the meeting's business, not the participant list's.
            PeerEvent::DataChannelOpen | PeerEvent::Data(_) => changed = false,
            PeerEvent::FirstRemoteFrame => {
                changed = false;
                if !self.first_frame_reported {
                    self.first_frame_reported = true;
                    let since_join_ms = self.joined_at.elapsed().as_millis() as u64;
                    tracing::info!(
                        "first remote picture on the display {since_join_ms} ms after joining"
                    );
                    let report = MeetingReport::FirstRemoteFrame {
                        generation: self.generation,
                        participant: id.to_owned(),
                        since_join_ms,
                    };
                    self.report(report).await;
                }
            }
        }
        if changed {
            self.show(id).await;
        }
    }

    /// Gathers every peer's figures and reports them (called every second), with what they
    /// say about each participant: whether all their streams are encrypted, and which of their
    /// media still arrives. The meeting is encrypted only while it has streams and every one of
    /// them is.
    pub(crate) async fn report_stats(&mut self) {
        let mut streams = Vec::new();
        let mut peers = 0;
        let mut encrypted = true;
        let mut changed = Vec::new();
        let now = Instant::now();
        for (id, member) in &mut self.members {
            let mut member_encrypted = !member.peers.is_empty();
            let mut negotiated = Some(Vec::new());
            for (_, peer) in &member.peers {
                peers += 1;
                match peer.stats().await {
                    Ok(stats) => {
                        member_encrypted &= stats.encryption == ENCRYPTED;
                        if let Some(kinds) = negotiated.as_mut() {
                            kinds.extend(stats.receiving.iter().copied());
                        }
                        if stats.voice_arriving {
                            member.received.insert("audio", now);
                        }
                        for s in &stats.streams {
                            if s.direction == "receive" && s.bitrate_kbps > 0.0 {
                                member.received.insert(s.kind, now);
                            } else if s.direction == "receive" {
                                // Listed, so negotiated and once flowing: at least `off`.
                                member
                                    .received
                                    .entry(s.kind)
                                    .or_insert(now.checked_sub(MEDIA_OFF_AFTER).unwrap_or(now));
                            }
                        }
                        streams.extend(stats.streams.into_iter().map(|s| StreamStats {
                            participant: id.clone(),
                            direction: s.direction,
                            kind: s.kind,
                            bitrate_kbps: round2(s.bitrate_kbps),
                            packets_lost: s.packets_lost,
                            loss_percent: round2(s.loss_percent),
                            jitter_ms: round2(s.jitter_ms),
                            rtt_ms: round2(s.rtt_ms),
                            frame_rate: round2(s.frame_rate),
                            width: s.width,
                            height: s.height,
                            frames: s.frames,
                            encrypted: s.encrypted,
                            fec_recovered: s.fec_recovered,
                            concealed: s.concealed,
                            expected_loss_percent: s.expected_loss_percent,
                            max_kbps: None,
                        }));
                    }
                    Err(e) => {
                        // Unknown is not encrypted.
                        member_encrypted = false;
                        negotiated = None;
                        tracing::debug!("statistics of {id}: {e}");
                    }
                }
            }
            member.encrypted = member_encrypted;
            if let Some(kinds) = negotiated {
                // A media line gone (or a connection replaced without it) forgets its packets.
                member.received.retain(|kind, _| kinds.contains(kind));
                member.negotiated = Some(kinds);
            }
            encrypted &= member_encrypted || member.peers.is_empty();
            let now_shown = participant(id, member);
            if member.announced && member.shown.as_ref() != Some(&now_shown) {
                member.shown = Some(now_shown.clone());
                changed.push(now_shown);
            }
        }
        for participant in changed {
            self.report(MeetingReport::Participant {
                generation: self.generation,
                participant,
            })
            .await;
        }
        streams.sort_by(|a, b| {
            (&a.participant, a.direction, a.kind).cmp(&(&b.participant, b.direction, b.kind))
        });
        self.report(MeetingReport::Stats {
            generation: self.generation,
            streams,
            encrypted: encrypted && peers > 0,
        })
        .await;
    }

    async fn report(&self, report: MeetingReport) {
        let _ = self.room.meeting_report(report).await;
    }
}

fn participant(id: &str, m: &Member) -> Participant {
    Participant {
        id: id.to_owned(),
        name: m.name.clone(),
        state: if m.connected {
            ParticipantState::Connected
        } else {
            ParticipantState::Connecting
        },
        audio: media_state(m, "audio"),
        video: media_state(m, "video"),
        talking: m.talking,
        hand_raised: m.hand_raised,
        encryption: if m.encrypted { ENCRYPTED } else { UNENCRYPTED }.into(),
    }
}

/// `none` when the far end sends no `kind` (no such media line, or it was removed, or never a
/// packet), `on` while its packets arrive, `off` once they stopped for [`MEDIA_OFF_AFTER`] (a
/// muted track sends nothing).
fn media_state(m: &Member, kind: &str) -> MediaState {
    if m.negotiated.as_ref().is_some_and(|n| !n.contains(&kind)) {
        return MediaState::None;
    }
    match m.received.get(kind) {
        None => MediaState::None,
        Some(last) if last.elapsed() < MEDIA_OFF_AFTER => MediaState::On,
        Some(_) => MediaState::Off,
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The line under a participant's name on the room's display in an end-to-end encrypted
/// meeting: end-to-end or not, and verified (by certificate, with its name, or by the short
/// authentication string) or not. Only what status says: nothing is shown verified that is
/// not.
pub(crate) fn identity_line(participant: &roomd_core::E2eeParticipant) -> String {
    if !participant.e2ee {
        return "NOT END-TO-END ENCRYPTED".to_owned();
    }
    if participant.frames == roomd_core::E2eeFrames::Refused {
        return "E2EE  |  FRAMES DO NOT OPEN".to_owned();
    }
    match (participant.verified, participant.verified_by.as_str()) {
        (true, "certificate") => format!("E2EE  |  VERIFIED: {}", participant.certificate_name),
        (true, "sas") => "E2EE  |  VERIFIED BY CODE".to_owned(),
        _ => "E2EE  |  NOT VERIFIED".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use roomd_core::E2eeParticipant;

    use super::identity_line;

    fn participant(e2ee: bool, verified_by: &str) -> E2eeParticipant {
        E2eeParticipant {
            id: "j-1".into(),
            e2ee,
            verified: !verified_by.is_empty(),
            verified_by: verified_by.into(),
            certificate_name: if verified_by == "certificate" {
                "room-b.example.org".into()
            } else {
                String::new()
            },
            reason: String::new(),
            sas: "123 456".into(),
            sas_confirmed_by: String::new(),
            frames: roomd_core::E2eeFrames::Opening,
        }
    }

    #[test]
    fn the_display_line_says_what_status_says_and_no_more() {
        assert_eq!(
            identity_line(&participant(true, "certificate")),
            "E2EE  |  VERIFIED: room-b.example.org"
        );
        assert_eq!(
            identity_line(&participant(true, "sas")),
            "E2EE  |  VERIFIED BY CODE"
        );
        assert_eq!(
            identity_line(&participant(true, "")),
            "E2EE  |  NOT VERIFIED"
        );
        // Without end-to-end keys, a verified identity is not what matters on the screen.
        assert_eq!(
            identity_line(&participant(false, "certificate")),
            "NOT END-TO-END ENCRYPTED"
        );
        // A status that says verified without saying how shows nothing verified.
        let mut odd = participant(true, "");
        odd.verified = true;
        assert_eq!(identity_line(&odd), "E2EE  |  NOT VERIFIED");
        // Keys exchanged but the frames do not open: that is what the screen says, verified
        // or not.
        let mut refused = participant(true, "certificate");
        refused.frames = roomd_core::E2eeFrames::Refused;
        assert_eq!(identity_line(&refused), "E2EE  |  FRAMES DO NOT OPEN");
    }
}
