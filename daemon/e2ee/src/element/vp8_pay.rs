//! `roomdrtpvp8pay`: a VP8 RTP payloader (RFC 7741) that does not read the frame.
//!
//! GStreamer's `rtpvp8pay` parses the VP8 bitstream (frame tag, then bool-decoded fields of the
//! first partition) to fill its payload descriptor, and fails with "Failed to parse VP8 frame" on
//! an encrypted frame, whose partitions are ciphertext. libwebrtc's packetiser, which browsers
//! use, reads nothing of the frame: it takes key frame and picture id as metadata. This element
//! does the same: each frame is cut at the MTU, every packet carries the descriptor
//! `X=1, S=1 on the first packet, PID=0, I=1` with a 15-bit picture id, and the RTP marker bit
//! ends the frame. Receivers (`rtpvp8depay`, browsers, Janus) need nothing more.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer_rtp as gst_rtp;

glib::wrapper! {
    /// Payloads VP8 frames into RTP without parsing them (for end-to-end encrypted frames).
    pub struct Vp8Pay(ObjectSubclass<imp::Vp8Pay>)
        @extends gst_rtp::RTPBasePayload, gst::Element, gst::Object;
}

/// Length of the payload descriptor in every packet.
pub(crate) const DESCRIPTOR_LEN: usize = 4;

/// The RFC 7741 payload descriptor: extension byte present, start of partition 0 on the first
/// packet of a frame, picture id (15 bits) present.
pub(crate) fn descriptor(first_packet: bool, picture_id: u16) -> [u8; DESCRIPTOR_LEN] {
    let start = if first_packet { 0x10 } else { 0 };
    [
        0x80 | start,
        0x80,
        0x80 | ((picture_id >> 8) as u8 & 0x7f),
        (picture_id & 0xff) as u8,
    ]
}

/// The byte ranges of a frame of `len` bytes in packets of at most `max` payload bytes.
pub(crate) fn fragments(len: usize, max: usize) -> Vec<std::ops::Range<usize>> {
    let max = max.max(1);
    (0..len.div_ceil(max))
        .map(|i| i * max..((i + 1) * max).min(len))
        .collect()
}

mod imp {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicU16, Ordering};

    use gstreamer as gst;
    use gstreamer::glib;
    use gstreamer::subclass::prelude::*;
    use gstreamer_rtp as gst_rtp;
    use gstreamer_rtp::prelude::*;
    use gstreamer_rtp::subclass::prelude::*;

    use super::{DESCRIPTOR_LEN, descriptor, fragments};

    #[derive(Default)]
    pub struct Vp8Pay {
        picture_id: AtomicU16,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Vp8Pay {
        const NAME: &'static str = "RoomdRtpVp8Pay";
        type Type = super::Vp8Pay;
        type ParentType = gst_rtp::RTPBasePayload;
    }

    impl ObjectImpl for Vp8Pay {
        fn constructed(&self) {
            self.parent_constructed();
            // A random start, as RFC 7741 recommends for the picture id.
            let mut seed = [0u8; 2];
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0);
            seed.copy_from_slice(&now.to_le_bytes()[..2]);
            self.picture_id
                .store(u16::from_le_bytes(seed) & 0x7fff, Ordering::Relaxed);
        }
    }

    impl GstObjectImpl for Vp8Pay {}

    impl ElementImpl for Vp8Pay {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "roomd RTP VP8 payloader",
                    "Codec/Payloader/Network/RTP",
                    "Payloads VP8 frames (RFC 7741) without parsing them, for encrypted frames",
                    "roomd",
                )
            });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let sink = gst::Caps::builder("video/x-vp8").build();
                let src = gst::Caps::builder("application/x-rtp")
                    .field("media", "video")
                    .field("clock-rate", 90000i32)
                    .field("encoding-name", "VP8")
                    .build();
                [
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &sink,
                    ),
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &src,
                    ),
                ]
                .into_iter()
                .flatten()
                .collect()
            });
            TEMPLATES.as_ref()
        }
    }

    impl RTPBasePayloadImpl for Vp8Pay {
        fn set_caps(&self, _caps: &gst::Caps) -> Result<(), gst::LoggableError> {
            let obj = self.obj();
            obj.set_options("video", true, "VP8", 90000);
            obj.set_outcaps(None)
                .map_err(|e| gst::loggable_error!(gst::CAT_RUST, "cannot set the RTP caps: {e}"))
        }

        fn handle_buffer(&self, buffer: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
            let obj = self.obj();
            let max_payload = gst_rtp::calc_payload_len(obj.mtu(), 0, 0) as usize;
            let max_data = max_payload.saturating_sub(DESCRIPTOR_LEN).max(1);
            let picture_id = self.picture_id.fetch_add(1, Ordering::Relaxed) & 0x7fff;
            let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
            let frame = map.as_slice();
            let pieces = fragments(frame.len(), max_data);
            let mut list = gst::BufferList::new_sized(pieces.len());
            let last = pieces.len().saturating_sub(1);
            for (i, range) in pieces.into_iter().enumerate() {
                let len = DESCRIPTOR_LEN + range.len();
                let mut packet = gst::Buffer::new_rtp_with_sizes(len as u32, 0, 0)
                    .map_err(|_| gst::FlowError::Error)?;
                {
                    let packet = packet.get_mut().ok_or(gst::FlowError::Error)?;
                    packet.set_pts(buffer.pts());
                    packet.set_dts(buffer.dts());
                    let mut rtp = gst_rtp::RTPBuffer::from_buffer_writable(packet)
                        .map_err(|_| gst::FlowError::Error)?;
                    rtp.set_marker(i == last);
                    let payload = rtp.payload_mut().map_err(|_| gst::FlowError::Error)?;
                    payload[..DESCRIPTOR_LEN].copy_from_slice(&descriptor(i == 0, picture_id));
                    payload[DESCRIPTOR_LEN..].copy_from_slice(&frame[range]);
                }
                if let Some(list) = list.get_mut() {
                    list.add(packet);
                }
            }
            drop(map);
            obj.push_list(list)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_descriptor_marks_the_first_packet_and_carries_15_bits_of_picture_id() {
        assert_eq!(descriptor(true, 0x1234), [0x90, 0x80, 0x92, 0x34]);
        assert_eq!(descriptor(false, 0x7fff), [0x80, 0x80, 0xff, 0xff]);
    }

    #[test]
    fn a_frame_is_cut_into_packets_that_cover_it_exactly() {
        assert_eq!(fragments(10, 4), vec![0..4, 4..8, 8..10]);
        assert_eq!(fragments(8, 4), vec![0..4, 4..8]);
        assert_eq!(fragments(0, 4), Vec::<std::ops::Range<usize>>::new());
    }
}
