//! The media engine: an adapter around the room core that turns its status into GStreamer
//! pipelines (camera, microphone, encoders, the room display) and reports back what it learns
//! (encoder in use, microphone levels, failures and rebuilds). It owns no room state.

pub mod audio;
pub mod bitrate_limit;
pub mod content;
pub mod display;
pub mod encoder_choice;
pub mod engine;
pub mod expected_loss;
pub mod frame_watch;
pub mod layout;
pub mod pipeline_turns;
pub mod privacy;
pub mod ptz;
pub mod remote;
pub mod simulated_camera;
pub mod sip;
pub mod taps;
pub mod timecode;
pub mod video;
pub mod view;
pub mod webrtc;

pub use encoder_choice::Codec;
pub use engine::{DisplaySnapshots, EngineHandles, EngineSetup, start};
pub use remote::{RemoteAudioSlot, RemoteVideoSlot, remote_audio_caps};
pub use taps::{BitrateAsker, Feed, LossReporter, MediaKind, MediaTaps, TapSubscription};

/// Why a pipeline could not be built or started, or the display not read.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// A pipeline cannot be built: a missing element or pad, or a bad description (the payload says
    /// which).
    #[error("cannot build the {0}")]
    Build(String),
    /// A pipeline refused to go to PLAYING (the payload names it).
    #[error("the {0} does not start")]
    Start(String),
    /// No usable video encoder.
    #[error(transparent)]
    Encoder(#[from] encoder_choice::EncoderError),
    /// The room display pipeline is not running, so there is nothing to snapshot.
    #[error("the room display is not running")]
    NoDisplay,
    /// The display frame cannot be encoded as an image.
    #[error("cannot encode the display snapshot: {0}")]
    Snapshot(String),
}

#[cfg(test)]
mod fake_encoders;
#[cfg(test)]
pub(crate) mod tests;
