//! The chat of a hosted meeting (docs/meetings.md, "Chat"): what a guest writes on their page
//! goes, through the room, to every guest's page and to the room's status (the panel); what the
//! room writes (`meeting.chat.send`) goes to every guest's page. Everything travels on the guests'
//! WHEP data channels; nothing is written anywhere, and it is gone with the meeting.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::engine::GuestDirection;
use super::roster::Roster;
use roomd_core::{ChatMessage, MeetingReport, RoomHandle, chat_text_is_valid};

/// Messages a guest may write per [`RATE_WINDOW`]; more are dropped (a flooding page).
const RATE_MESSAGES: usize = 5;
const RATE_WINDOW: Duration = Duration::from_secs(10);

/// A chat message as the guests' pages get it.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename = "chat")]
struct ChatLine<'a> {
    from: &'a str,
    from_room: bool,
    text: &'a str,
}

#[derive(Default)]
pub(crate) struct Chat {
    /// When each guest's recent messages came.
    recent: HashMap<String, VecDeque<Instant>>,
    /// The last of the room's own messages sent to the guests (`ChatMessage::seq`).
    room_sent: u64,
}

impl Chat {
    /// Guest `id` wrote `text`: if it is a chat message and within their rate, every page gets
    /// it and the core shows it.
    pub(crate) async fn take_from_guest(
        &mut self,
        roster: &Roster,
        room: &RoomHandle,
        generation: u64,
        id: &str,
        text: String,
    ) {
        let Some(name) = roster.name(id) else {
            return;
        };
        if !chat_text_is_valid(&text) {
            tracing::debug!(
                "guest {id}: a chat message that is empty, too long or has control characters"
            );
            return;
        }
        let now = Instant::now();
        let recent = self.recent.entry(id.to_owned()).or_default();
        recent.retain(|at| now.duration_since(*at) < RATE_WINDOW);
        if recent.len() >= RATE_MESSAGES {
            tracing::debug!(
                "guest {id}: more than {RATE_MESSAGES} chat messages in {RATE_WINDOW:?}: dropped"
            );
            return;
        }
        recent.push_back(now);
        let name = name.to_owned();
        broadcast(
            roster,
            &ChatLine {
                from: &name,
                from_room: false,
                text: &text,
            },
        );
        let report = MeetingReport::Chat {
            generation,
            from: name,
            text,
        };
        let _ = room.meeting_report(report).await;
    }

    /// Sends the guests what the room wrote since the last call (`plan.chat`).
    pub(crate) fn send_the_rooms(&mut self, roster: &Roster, written: &[ChatMessage]) {
        let sent = self.room_sent;
        for message in written.iter().filter(|m| m.seq > sent) {
            let line = ChatLine {
                from: &message.from,
                from_room: true,
                text: &message.text,
            };
            broadcast(roster, &line);
            self.room_sent = message.seq;
        }
    }
}

/// Sends `line` to every guest's page. A page whose channel is not open yet misses it (as a
/// person who was not there yet); the room's status keeps the last messages for the panel.
fn broadcast(roster: &Roster, line: &ChatLine<'_>) {
    let Ok(message) = serde_json::to_string(line) else {
        return;
    };
    for (_, peer) in roster.with_peer(GuestDirection::Whep.as_str()) {
        let _ = peer.send_data(&message);
    }
}
