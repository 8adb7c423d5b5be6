//! What can go wrong when a frame is protected or opened.

use crate::Codec;

/// Why a frame was not protected or not opened. A frame that fails is dropped, never passed on
/// in the clear.
#[derive(Debug, thiserror::Error)]
pub enum E2eeError {
    /// The frame is shorter than the clear header its codec needs.
    #[error("a {codec} frame of {len} bytes is shorter than its clear header ({needed} bytes)")]
    TooShort {
        /// The frame's codec.
        codec: Codec,
        /// Its length.
        len: usize,
        /// The clear header's length.
        needed: usize,
    },
    /// An H.264 access unit without a start code.
    #[error("the H.264 access unit has no start code (expected Annex B byte-stream)")]
    NoStartCode,
    /// A protected H.264 NAL unit does not end with the stop byte the sender appends.
    #[error("a protected H.264 NAL unit lacks its stop byte: not protected by roomd's rules")]
    NoStopByte,
    /// The sender has no key yet: frames are dropped rather than sent in the clear.
    #[error("no sender key is set")]
    NoSenderKey,
    /// The key's frame counter is used up; a new key is needed.
    #[error("the sender key's frame counter is exhausted; rekey")]
    CounterExhausted,
    /// SFrame refused the frame: no key for its key id, a wrong key, or a tampered frame.
    #[error("SFrame: {0}")]
    Sframe(#[source] sframe::error::SframeError),
    /// Key material of the wrong length.
    #[error("key material of {len} bytes (16 to 64 expected)")]
    KeyLength {
        /// Its length.
        len: usize,
    },
    /// A receiver holds as many keys as it may.
    #[error("more than {limit} receiver keys")]
    TooManyKeys {
        /// The limit.
        limit: usize,
    },
    /// More NAL units in one access unit than the limit allows.
    #[error("the frame has more than {limit} NAL units")]
    TooManyUnits {
        /// The limit.
        limit: usize,
    },
}

impl From<sframe::error::SframeError> for E2eeError {
    fn from(e: sframe::error::SframeError) -> E2eeError {
        E2eeError::Sframe(e)
    }
}
