use crate::webrtc::PeerError;

/// What can go wrong in a meeting, as the engine reports it to status and log.
#[derive(Debug, thiserror::Error)]
pub enum MeetingError {
    /// The request is understood but cannot be carried out (e.g. an offer the policy refuses).
    #[error("{0}")]
    Refused(String),
    #[error("this room is not hosting a meeting")]
    NotHosting,
    #[error("the meeting engine has stopped")]
    Stopped,
    #[error(transparent)]
    Peer(#[from] PeerError),
}
