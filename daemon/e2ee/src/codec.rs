//! Which codecs are protected and what of each frame stays in the clear.
//!
//! | Codec | In the clear | Why |
//! |---|---|---|
//! | Opus | the first byte (TOC: mode, bandwidth, frame count) | packetisers and SFUs may look at it; it says nothing about what was said |
//! | VP8 | 10 bytes of a key frame (frame tag, start code, width and height), 3 of a delta frame (frame tag) | the RTP payload descriptor and SFUs need to know key frames; deployed SFrame systems keep the same |
//! | H.264 | every NAL unit header (1 byte), and SPS, PPS, access unit delimiters and end-of-sequence/stream units whole | `rtph264pay` and SFUs find NAL units by start code and key frames by NAL type; SPS/PPS carry the profile and picture size the decoder is set up with |
//!
//! Everything else (all slice data, SEI) is encrypted. The clear bytes are SFrame metadata: they
//! are authenticated with the frame, so changing them makes the frame fail to open.

use std::fmt;

/// A codec whose frames roomd protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Opus audio frames.
    Opus,
    /// VP8 video frames.
    Vp8,
    /// H.264 access units in Annex B byte-stream form.
    H264,
}

impl Codec {
    /// The codec of GStreamer caps with this structure name.
    pub fn from_caps_name(name: &str) -> Option<Codec> {
        match name {
            "audio/x-opus" => Some(Codec::Opus),
            "video/x-vp8" => Some(Codec::Vp8),
            "video/x-h264" => Some(Codec::H264),
            _ => None,
        }
    }

    /// How many leading bytes of `frame` stay in the clear (Opus and VP8; H.264 works per NAL
    /// unit, see [`crate::frame`]).
    pub(crate) fn clear_prefix(self, frame: &[u8]) -> usize {
        match self {
            Codec::Opus => 1,
            // Bit 0 of the frame tag is 0 for a key frame (RFC 6386, section 9.1).
            Codec::Vp8 => match frame.first() {
                Some(tag) if tag & 1 == 0 => 10,
                _ => 3,
            },
            Codec::H264 => 0,
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::Opus => "Opus",
            Codec::Vp8 => "VP8",
            Codec::H264 => "H.264",
        })
    }
}
