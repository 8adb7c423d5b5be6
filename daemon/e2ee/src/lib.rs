//! End-to-end encryption of media: every encoded audio and video frame is encrypted with SFrame
//! (RFC 9605) before it is packetised, and decrypted after it is depacketised, so that the SFU
//! (Janus) and anything else on the path forwards frames it cannot read.
//!
//! What stays in the clear is the least that packetisers, SFUs and decoders need to find their way
//! ([`codec`] says exactly what, per codec); it is authenticated as SFrame metadata, so it cannot
//! be changed on the way either.
//!
//! - [`keys`]: a sender's key and frame counter, a receiver's keys by key id.
//! - [`frame`]: protects and opens one encoded frame of a given [`Codec`].
//! - [`exchange`]: signed announces, sender keys sealed to each participant, the short
//!   authentication string.
//! - [`session`]: one participant's key agreement in a meeting, as a state machine that turns
//!   messages and events into keys for the elements and messages to send.
//! - [`verify`]: whether a participant's certificate chains to a CA the customer trusts.
//! - [`element`]: the two GStreamer elements that do it in a pipeline, between encoder and
//!   payloader and between depayloader and decoder.
//!
//! Keys reach the elements only through Rust calls, never through GObject properties, so they
//! cannot show up in pipeline dumps or property listings.

pub mod codec;
pub mod element;
mod error;
pub mod exchange;
pub mod frame;
mod h264;
pub mod keys;
pub mod session;
pub mod verify;

pub use codec::Codec;
pub use error::E2eeError;
pub use keys::{
    AUDIO_KEY_ID_BIT, CONTENT_KEY_ID_BIT, KeySecret, ReceiverKeys, SenderKey, content_key_id,
    stream_key_id,
};
