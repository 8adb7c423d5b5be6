//! The room's shared content in a Janus VideoRoom: while `video.content.state` is `active`, the
//! room joins the room a second time, as publisher "`<display name> (content)`", on a handle of its
//! own, and publishes the content (video only) on it. Other participants see a second feed; the
//! room itself never subscribes to it (its publisher ids are its own choice, so it knows them
//! before Janus announces the feed).
//!
//! A content share that fails is logged and dropped; the camera meeting goes on.

use std::collections::HashSet;
use std::sync::Arc;

use super::janus::{JanusError, JanusSession, Publisher, VideoRoomHandle};
use super::roster::{CONTENT_ID, Roster};
use super::session::{Failure, SessionContext, blocking};
use roomd_core::{ContentState, RoomStatus};
use roomd_media::Feed;
use roomd_media::webrtc::{Peer, PeerOptions};

/// Janus hands ids to JavaScript clients, which read integers exactly only below 2^53 (Janus
/// keeps its own random ids below that too).
const MAX_FEED_ID: u64 = (1 << 53) - 1;

/// The publisher ids the room has used for its content in this meeting. Kept across rejoins: a
/// feed of an earlier Janus session can linger until Janus times it out.
#[derive(Debug, Default)]
pub(crate) struct OwnFeeds(HashSet<u64>);

impl OwnFeeds {
    /// A fresh random id for a content publisher, remembered as ours.
    fn new_id(&mut self) -> u64 {
        loop {
            let mut bytes = [0u8; 8];
            roomd_base::random::fill(&mut bytes);
            let id = u64::from_le_bytes(bytes) & MAX_FEED_ID;
            if id != 0 && self.0.insert(id) {
                return id;
            }
        }
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.0.contains(&id)
    }

    /// `publishers` without the room's own content feeds: the ones to subscribe to.
    pub(crate) fn others(&self, publishers: Vec<Publisher>) -> Vec<Publisher> {
        publishers
            .into_iter()
            .filter(|p| !self.contains(p.id))
            .collect()
    }
}

/// The name other participants see for the room's content.
pub(crate) fn display_name(room_name: &str) -> String {
    format!("{room_name} (content)")
}

/// Whether the room's status says content is being shared.
pub(crate) fn shared(status: &RoomStatus) -> bool {
    status.video.content.state == ContentState::Active
}

/// A content share in progress: its publisher handle (its peer is in the roster under
/// [`CONTENT_ID`]).
pub(crate) struct ContentShare {
    handle: VideoRoomHandle,
    feed: u64,
}

impl ContentShare {
    /// Joins `room` as the content publisher and publishes the room's content. On failure,
    /// whatever was set up is taken down again and the reason returned.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn start(
        ctx: &SessionContext,
        session: &Arc<JanusSession>,
        room: u64,
        pin: Option<String>,
        room_name: &str,
        own: &mut OwnFeeds,
        roster: &mut Roster,
        end_to_end: bool,
    ) -> Result<ContentShare, Failure> {
        let feed = own.new_id();
        let (s, name) = (session.clone(), display_name(room_name));
        let joined = blocking(move || {
            let mut handle = VideoRoomHandle::attach(&s)?;
            match handle.join_publisher_as(room, pin.as_deref(), &name, Some(feed)) {
                Ok(_) => Ok(handle),
                Err(e) => {
                    let _ = handle.detach();
                    Err::<_, JanusError>(e)
                }
            }
        })
        .await
        .map_err(attempt_reason)?
        .map_err(|e| Failure::Said(format!("cannot join as the content publisher: {e}")))?;
        let share = ContentShare {
            handle: joined,
            feed,
        };
        match share.publish(ctx, end_to_end).await {
            Ok(peer) => {
                roster.add_peer(CONTENT_ID, "", "content", peer).await;
                tracing::info!("sharing content in the Janus room as feed {feed}");
                Ok(share)
            }
            Err(reason) => {
                share.stop(roster).await;
                Err(reason)
            }
        }
    }

    async fn publish(&self, ctx: &SessionContext, end_to_end: bool) -> Result<Peer, Failure> {
        let options = PeerOptions {
            video_feed: Feed::Content,
            send_audio: false,
            // Encrypted end to end as the camera (`roomd_e2ee::content_key_id`): until its key
            // is set, it sends nothing.
            end_to_end,
            ..ctx.peer_options("Janus (content)", true, false)
        };
        let peer = Peer::new(&ctx.taps, options)?;
        let offer = peer.create_offer().await?;
        let handle = self.handle.clone();
        let answer = blocking(move || handle.publish(&offer))
            .await
            .map_err(attempt_reason)?
            .map_err(|e| Failure::Said(format!("Janus refused the content: {e}")))?;
        peer.accept_answer(&answer).await?;
        Ok(peer)
    }

    /// The content publisher's id in the room.
    pub(crate) fn feed(&self) -> u64 {
        self.feed
    }

    /// The server's id of the content publisher's handle (events name it).
    pub(crate) fn handle_id(&self) -> u64 {
        self.handle.id()
    }

    /// Stops publishing: the peer closes, the handle leaves the room (others see the feed
    /// leave) and is detached. Best effort: Janus may be what went away.
    pub(crate) async fn stop(self, roster: &mut Roster) {
        roster.remove(CONTENT_ID).await;
        let (handle, feed) = (self.handle, self.feed);
        let _ = blocking(move || {
            let _ = handle.leave();
            let _ = handle.detach();
        })
        .await;
        tracing::info!("stopped sharing content (feed {feed})");
    }
}

fn attempt_reason(attempt: super::session::Attempt) -> Failure {
    attempt.into_failure()
}

#[cfg(test)]
mod tests {

    use super::*;

    fn publisher(id: u64, display: &str) -> Publisher {
        Publisher {
            id,
            display: Some(display.to_owned()),
            streams: Vec::new(),
        }
    }

    #[test]
    fn the_room_never_subscribes_to_its_own_content() {
        let mut own = OwnFeeds::default();
        let first = own.new_id();
        let second = own.new_id();
        assert_ne!(first, second);
        for id in [first, second] {
            assert!(id > 0 && id <= MAX_FEED_ID, "{id}");
        }
        let listed = vec![
            publisher(7, "Alice"),
            publisher(first, "Board room (content)"),
            publisher(8, "Bob"),
            publisher(second, "Board room (content)"),
        ];
        let ids: Vec<u64> = own.others(listed).iter().map(|p| p.id).collect();
        assert_eq!(ids, vec![7, 8]);
    }

    #[test]
    fn content_is_named_after_the_room_and_follows_the_status() {
        assert_eq!(display_name("Board room"), "Board room (content)");
        let identity = roomd_core::IdentityStatus {
            backend: "software",
            key_sha256: String::new(),
            certificate_sha256: String::new(),
            warning: None,
        };
        let config = roomd_model::config::Config::default();
        let mut status = RoomStatus::at_start(&config, true, identity);
        assert!(!shared(&status));
        status.video.content.state = ContentState::Active;
        assert!(shared(&status));
    }
}
