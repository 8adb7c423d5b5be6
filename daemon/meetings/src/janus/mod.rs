//! The Janus VideoRoom over Janus' HTTP API (Janus 1.1).
//!
//! ```text
//! let (session, mut events) = JanusSession::create(&http, "https://janus.example:8089/janus")?;
//! let mut publisher = VideoRoomHandle::attach(&session)?;
//! let joined = publisher.join_publisher(1234, Some(pin), "Room 4")?;  // our id, who publishes
//! let answer = publisher.publish(&offer)?;                           // SDP offer -> answer
//! let mut feed = VideoRoomHandle::attach(&session)?;
//! let offer = feed.join_subscriber(1234, Some(pin), &[FeedRef { feed: id, mid: None }], joined.private_id)?;
//! feed.start(&our_answer)?;
//! // events: publishers joining and leaving, talking, webrtcup, media, hangup, slowlink, timeout
//! ```
//!
//! Calls block (the HTTP client does); events arrive on a tokio channel usable from async code.
//! PINs are sent to Janus only; no error message or `Debug` output contains them.

mod error;
mod event;
mod message;
mod session;
mod videoroom;

pub use error::JanusError;
pub use event::{JanusEvent, MediaKind, PublishedStream, Publisher};
pub use message::Jsep;
pub use session::{ANSWER_TIMEOUT, Candidate, JanusEvents, JanusSession};
pub use videoroom::{FeedRef, Joined, SubscribedStream, SubscriberOffer, VideoRoomHandle};

#[cfg(test)]
mod test_janus;
#[cfg(test)]
mod test_peer;
#[cfg(test)]
mod tests;
