//! The WebRTC peer layer: one [`Peer`] per remote party (a Janus publisher or subscriber
//! handle, a WHIP or WHEP resource, a guest's browser), each a `webrtcbin` in its own
//! `gst::Pipeline`, so that a failing peer never takes the room display down.
//!
//! Signalling is not done here: a peer takes and gives complete SDP (ICE gathering finishes
//! before an offer or answer is returned; no trickle). Media is always DTLS-SRTP; ICE uses only
//! the STUN/TURN servers given, never a public default.
//!
//! Media: a sending peer subscribes to the room's encoded camera and microphone
//! ([`crate::MediaTaps`]; the room encodes once for every peer), or, as a content peer
//! (`video_feed: Feed::Content`, no audio), to the room's encoded shared content. A receiving peer decodes
//! what arrives (H.264 or VP8, Opus) into a [`crate::RemoteVideoSlot`] on the display and a
//! [`crate::RemoteAudioSlot`] in the speaker mix.
//!
//! ```text
//! let mut peer = Peer::new(&taps, PeerOptions { label: "Alice".into(), ..PeerOptions::default() })?;
//! let events = peer.take_events();              // Connected, RemoteTrack, FirstRemoteFrame, ...
//! let offer = peer.create_offer().await?;       // we offer (Janus publish, WHIP client)
//! peer.accept_answer(&answer).await?;
//! // or: let answer = peer.answer_offer(&offer).await?;  (WHIP/WHEP server, Janus subscriber)
//! let stats = peer.stats().await?;              // per stream, once a second for status
//! peer.close();                                 // also on drop
//! ```

mod frames;
mod opus_fec;
mod peer;
mod relay;
mod rtcp_loss;
pub mod sdp;
mod stats;
mod window_share;

pub use frames::FrameCounters;
pub use peer::{DATA_CHANNEL_LABEL, MAX_DATA_MESSAGE_BYTES, Peer};
pub use relay::Relay;
pub use stats::{PeerStats, StreamStats};

use crate::{Feed, MediaKind};

/// ICE servers for a peer. Nothing by default: host candidates only, no public service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceServers {
    /// `stun://host:port`
    pub stun: Option<String>,
    /// `turn://user:password@host:port` (the password never appears in logs or errors)
    pub turn: Option<String>,
}

/// How a peer behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerOptions {
    /// The remote party's name, shown under their picture.
    pub label: String,
    /// STUN and TURN servers for ICE.
    pub ice: IceServers,
    /// Refuse remote descriptions whose media is not DTLS-SRTP (`UDP/TLS/RTP/SAVPF` with a
    /// fingerprint).
    pub require_encryption: bool,
    /// Send video: the feed [`PeerOptions::video_feed`] names.
    pub send_video: bool,
    /// Which of the room's pictures a sending peer sends: the camera, or the shared content
    /// (a content peer sends video only: give it `send_audio: false`).
    pub video_feed: Feed,
    /// Send the room's microphones.
    pub send_audio: bool,
    /// Show and play what the remote sends.
    pub receive: bool,
    /// End-to-end encryption: every sent frame is encrypted (`roomdframeencrypt`) before it is
    /// packetised and every received frame decrypted (`roomdframedecrypt`) after it is
    /// depacketised, with the keys given by [`Peer::set_sender_key`] and
    /// [`Peer::insert_receiver_key`]; frames without a key are dropped, never sent or shown in
    /// the clear. An offer also opens a data channel ([`DATA_CHANNEL_LABEL`]) for the key
    /// messages.
    pub end_to_end: bool,
    /// Offer what the far end sends to other peers' relay slots ([`Peer::relay`]); its video is
    /// then taken in the codec the room sends, when the far end offers it.
    pub relay: bool,
    /// The far end's media lines after its first audio and first video are relay slots, up to
    /// [`MAX_RELAY_SLOTS`] pairs, each sending what [`Peer::show_in_slot`] puts there, and the
    /// video line after them gets the room's shared content ([`Feed::Content`], frames only
    /// while it is shared); the far end's data channel is taken (for the list of who is in
    /// which slot).
    pub relay_slots: bool,
}

/// Relay slots a peer takes at most: the other guests of a hosted meeting it can see at once.
pub const MAX_RELAY_SLOTS: usize = 8;

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            label: String::new(),
            ice: IceServers::default(),
            require_encryption: true,
            send_video: true,
            video_feed: Feed::Camera,
            send_audio: true,
            receive: true,
            end_to_end: false,
            relay: false,
            relay_slots: false,
        }
    }
}

/// What a peer reports as it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerEvent {
    /// ICE and DTLS are up: media flows.
    Connected,
    /// Connectivity was lost; ICE may still recover it.
    Disconnected,
    /// The peer cannot go on (ICE or DTLS failed, or its pipeline stopped).
    Failed(String),
    /// The remote started sending `kind`.
    RemoteTrack {
        /// Audio or video.
        kind: MediaKind,
    },
    /// The first remote picture reached the room display.
    FirstRemoteFrame,
    /// The remote started or stopped talking.
    Talking(bool),
    /// The data channel is open: [`Peer::send_data`] reaches the far end.
    DataChannelOpen,
    /// A message on the data channel (at most [`MAX_DATA_MESSAGE_BYTES`]; larger ones and
    /// floods are dropped where they arrive).
    Data(Vec<u8>),
}

/// Why a peer could not be set up or negotiated.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The remote description does not parse as SDP.
    #[error("the remote SDP is malformed: {0}")]
    MalformedSdp(String),
    /// The remote description has no media line the room can send or receive.
    #[error("the remote SDP has no usable media: {0}")]
    NoUsableMedia(String),
    /// A media line is not DTLS-SRTP (`UDP/TLS/RTP/SAVPF` with a fingerprint) while the peer
    /// requires encryption.
    #[error("the remote SDP is not encrypted as required (DTLS-SRTP): {0}")]
    Unencrypted(String),
    /// The remote offers no codec the room can send or receive for a kind of media (the payload
    /// says which).
    #[error("no codec in common with the remote for {0}")]
    NoCommonCodec(String),
    /// The negotiation step does not fit the signalling state (e.g. an answer with no offer sent).
    #[error("{action} is not possible now: {state}")]
    WrongState {
        /// The step asked for.
        action: &'static str,
        /// The signalling state it met.
        state: &'static str,
    },
    /// A STUN or TURN URL is not of the accepted form (a TURN URL is never shown).
    #[error("invalid ICE server {0}: expected stun://host:port or turn://user:pass@host:port")]
    IceServer(String),
    /// The room's media engine failed to serve the peer.
    #[error("the room's media engine cannot serve the peer: {0}")]
    Media(#[from] crate::MediaError),
    /// An element of the peer's pipeline cannot be made or set up.
    #[error("cannot build the peer's pipeline: {0}")]
    Build(String),
    /// webrtcbin failed a negotiation step.
    #[error("webrtcbin refused to {action}: {reason}")]
    Negotiation {
        /// The step, e.g. `create an answer`.
        action: &'static str,
        /// webrtcbin's reason.
        reason: String,
    },
    /// ICE candidate gathering did not finish in time (the payload is the limit, seconds).
    #[error("ICE gathering did not complete within {0} s")]
    GatheringTimeout(u64),
    /// The peer has been closed.
    #[error("the peer is closed")]
    Closed,
    /// An end-to-end key could not be handed to the frame elements.
    #[error("end-to-end encryption: {0}")]
    EndToEnd(#[from] roomd_e2ee::E2eeError),
    /// The data channel is not open (yet), or the peer has none.
    #[error("the data channel is not open")]
    DataChannelNotOpen,
    /// A message longer than [`MAX_DATA_MESSAGE_BYTES`].
    #[error("a data channel message of {0} bytes is too large")]
    DataTooLarge(usize),
    /// webrtcbin refused to send on the data channel.
    #[error("cannot send on the data channel")]
    DataChannel(#[source] gstreamer::glib::Error),
}

// The SIP media's tests run their calls on the rooms these tests build.
#[cfg(test)]
pub(crate) mod tests;
