//! `roomdframeencrypt` (between encoder and payloader), `roomdframedecrypt` (between
//! depayloader and decoder) and `roomdrtpvp8pay` (a VP8 payloader that does not parse the
//! encrypted frame, see [`Vp8Pay`]): [`crate::frame::protect`] and [`crate::frame::open`] on every buffer.
//!
//! The codec comes from the caps. Keys are handed over with [`FrameEncrypt::set_key`] and
//! [`FrameDecrypt::insert_key`]: Rust calls, never GObject properties. A frame that cannot be
//! protected (no key yet) or opened (no key for its key id, wrong key, tampered, not encrypted at
//! all) is dropped and counted; nothing is ever passed on in the clear. The counters are read-only
//! properties, for the indicators.

mod decrypt;
mod encrypt;
mod vp8_pay;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

pub use decrypt::FrameDecrypt;
pub use encrypt::FrameEncrypt;
pub use vp8_pay::Vp8Pay;

/// The caps both elements take and give: the encoded forms roomd sends and receives.
pub(crate) fn frame_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-opus")
        .build()
        .iter()
        .map(|s| s.to_owned())
        .chain([
            gst::Structure::builder("video/x-vp8").build(),
            gst::Structure::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        ])
        .collect()
}

/// The always-present `sink` and `src` pads of both elements, with [`frame_caps`].
pub(crate) fn frame_pad_templates() -> Vec<gst::PadTemplate> {
    let caps = frame_caps();
    [
        ("src", gst::PadDirection::Src),
        ("sink", gst::PadDirection::Sink),
    ]
    .into_iter()
    .filter_map(|(name, direction)| {
        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps).ok()
    })
    .collect()
}

/// The protected codec of negotiated caps.
pub(crate) fn codec_of(caps: &gst::Caps) -> Option<crate::Codec> {
    caps.structure(0)
        .and_then(|s| crate::Codec::from_caps_name(s.name()))
}

/// Registers both elements (for pipelines described by name, e.g. in tests); idempotent.
pub fn register() -> Result<(), glib::BoolError> {
    gst::Element::register(
        None,
        "roomdframeencrypt",
        gst::Rank::NONE,
        FrameEncrypt::static_type(),
    )?;
    gst::Element::register(
        None,
        "roomdframedecrypt",
        gst::Rank::NONE,
        FrameDecrypt::static_type(),
    )?;
    gst::Element::register(
        None,
        "roomdrtpvp8pay",
        gst::Rank::NONE,
        Vp8Pay::static_type(),
    )
}
