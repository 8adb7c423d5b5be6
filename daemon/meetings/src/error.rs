use roomd_media::webrtc::PeerError;

/// What can go wrong in a meeting, as the engine reports it to status and log.
#[derive(Debug, thiserror::Error)]
pub enum MeetingError {
    /// The request is understood but cannot be carried out (e.g. an offer the policy refuses).
    #[error("{0}")]
    Refused(String),
    /// A guest's offer arrived while no hosted meeting runs, or for a meeting that has since
    /// ended.
    #[error("this room is not hosting a meeting")]
    NotHosting,
    /// The meeting engine's task is gone (roomd is shutting down).
    #[error("the meeting engine has stopped")]
    Stopped,
    /// The guest's WebRTC peer could not be set up or negotiated.
    #[error(transparent)]
    Peer(#[from] PeerError),
}
