//! Far-end voice repair: `opusdec` with in-band FEC and concealment, and a count of how each
//! lost frame was repaired.
//!
//! How GStreamer 1.22 repairs a loss: the jitter buffer reports the missing packet, the
//! depayloader turns it into a GAP event, the decoder (`plc=true`) decodes an empty buffer for
//! it. With `use-inband-fec=true` opusdec decodes one packet late, so that for a missing packet
//! it can decode the FEC copy carried by the next one (`opus_decode(..., decode_fec=1)`); when
//! that packet has no FEC (or is missing too) libopus conceals. opusdec's `stats` count every
//! missing packet (`num-gap`) but not which way it was repaired: this module counts the FEC
//! repairs by the same rule opusdec follows, a gap directly followed by a packet whose first
//! frame carries LBRR (the FEC data, RFC 6716 4.2.4).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;

/// One far-end voice's decoder and its repair counts.
#[derive(Clone)]
pub(super) struct VoiceRepair {
    decoder: gst::Element,
    fec_recovered: Arc<AtomicU64>,
}

/// How many lost frames of a far-end voice were rebuilt from FEC or concealed, so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Repairs {
    pub fec_recovered: u64,
    pub concealed: u64,
}

impl VoiceRepair {
    /// An `opusdec` that uses in-band FEC and conceals what FEC cannot rebuild.
    pub(super) fn decoder() -> Result<VoiceRepair, gst::glib::BoolError> {
        let decoder = gst::ElementFactory::make("opusdec")
            .property("use-inband-fec", true)
            .property("plc", true)
            .build()?;
        let fec_recovered = Arc::new(AtomicU64::new(0));
        if let Some(sink) = decoder.static_pad("sink") {
            let after_gap = AtomicBool::new(false);
            let counter = fec_recovered.clone();
            sink.add_probe(
                gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM,
                move |pad, info| {
                    match &info.data {
                        Some(gst::PadProbeData::Event(event))
                            if event.type_() == gst::EventType::Gap =>
                        {
                            after_gap.store(true, Ordering::Relaxed);
                        }
                        Some(gst::PadProbeData::Buffer(buffer)) if buffer.size() > 0 => {
                            let fec = buffer.map_readable().is_ok_and(|m| has_fec(&m));
                            // Counted only while the decoder really decodes FEC (it is read
                            // back from opusdec, not assumed from how it was built).
                            if after_gap.swap(false, Ordering::Relaxed)
                                && fec
                                && pad
                                    .parent_element()
                                    .is_some_and(|d| d.property::<bool>("use-inband-fec"))
                            {
                                counter.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        _ => {}
                    }
                    gst::PadProbeReturn::Ok
                },
            );
        }
        Ok(VoiceRepair {
            decoder,
            fec_recovered,
        })
    }

    pub(super) fn element(&self) -> &gst::Element {
        &self.decoder
    }

    /// The repairs so far: every gap opusdec counted, split into FEC and concealment.
    pub(super) fn repairs(&self) -> Repairs {
        let gaps = self
            .decoder
            .property::<Option<gst::Structure>>("stats")
            .and_then(|s| s.get::<u64>("num-gap").ok())
            .unwrap_or(0);
        let fec_recovered = self.fec_recovered.load(Ordering::Relaxed);
        Repairs {
            fec_recovered,
            concealed: gaps.saturating_sub(fec_recovered),
        }
    }
}

/// Whether an Opus packet carries FEC (LBRR) data for the frame before it: only SILK and
/// hybrid packets can, flagged right after the VAD flags at the start of the first frame (the
/// check libopus 1.5 offers as `opus_packet_has_lbrr`; Debian 12 has libopus 1.3).
pub(super) fn has_fec(packet: &[u8]) -> bool {
    let Some(&toc) = packet.first() else {
        return false;
    };
    let config = toc >> 3;
    // Configurations 16..=31 are CELT only.
    if config >= 16 {
        return false;
    }
    // SILK frames of 40 and 60 ms carry two or three 20 ms SILK frames, each with a VAD flag.
    let silk_frames = if config < 12 {
        match config % 4 {
            2 => 2,
            3 => 3,
            _ => 1,
        }
    } else {
        1
    };
    let stereo = toc & 0x4 != 0;
    let Some(&first) = first_frame(packet).and_then(|f| f.first()) else {
        return false;
    };
    let mid = (first >> (7 - silk_frames)) & 1 == 1;
    let side = stereo && (first >> (6 - 2 * silk_frames)) & 1 == 1;
    mid || side
}

/// The bytes of the packet's first frame (RFC 6716 3.2), if the framing is sound.
fn first_frame(packet: &[u8]) -> Option<&[u8]> {
    let toc = *packet.first()?;
    match toc & 0x3 {
        // One frame, or two of equal size.
        0 | 1 => packet.get(1..),
        // Two frames, the first's length coded in one or two bytes.
        2 => {
            let (length, at) = frame_length(packet, 1)?;
            packet.get(at..at + length)
        }
        // A counted number of frames, with optional padding and sizes when VBR.
        _ => {
            let flags = *packet.get(1)?;
            let vbr = flags & 0x80 != 0;
            let padded = flags & 0x40 != 0;
            let mut at = 2;
            if padded {
                loop {
                    let byte = *packet.get(at)?;
                    at += 1;
                    if byte != 255 {
                        break;
                    }
                }
            }
            if vbr {
                let (length, data) = frame_length(packet, at)?;
                // The other frames' lengths follow the first's; the first frame's data starts
                // after all of them.
                let count = usize::from(flags & 0x3f);
                let mut data_at = data;
                for _ in 1..count.saturating_sub(1) {
                    data_at = frame_length(packet, data_at)?.1;
                }
                packet.get(data_at..data_at + length)
            } else {
                packet.get(at..)
            }
        }
    }
}

/// A frame length at `at` (one byte below 252, else two) and where what follows starts.
fn frame_length(packet: &[u8], at: usize) -> Option<(usize, usize)> {
    let first = usize::from(*packet.get(at)?);
    if first < 252 {
        Some((first, at + 1))
    } else {
        let second = usize::from(*packet.get(at + 1)?);
        Some((first + 4 * second, at + 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lbrr_is_read_after_the_vad_flags() {
        // SILK wideband 20 ms (config 9), mono, one frame: VAD bit 7, LBRR bit 6.
        let toc = 9 << 3;
        assert!(has_fec(&[toc, 0b0100_0000, 1, 2]));
        assert!(!has_fec(&[toc, 0b1000_0000, 1, 2]));
        // SILK 60 ms (config 11): three VAD flags, then LBRR at bit 4.
        let toc = 11 << 3;
        assert!(has_fec(&[toc, 0b0001_0000]));
        assert!(!has_fec(&[toc, 0b1110_1111]));
        // Hybrid fullband 20 ms (config 15), stereo: mid VAD and LBRR, then the side's.
        let toc = (15 << 3) | 0x4;
        assert!(has_fec(&[toc, 0b0001_0000]));
        assert!(!has_fec(&[toc, 0b1010_1111]));
        // CELT only never carries LBRR.
        assert!(!has_fec(&[31 << 3, 0xff, 0xff]));
    }

    #[test]
    fn framing_codes_and_bad_packets() {
        let silk = 9 << 3;
        // Code 2: first frame of 2 bytes.
        assert!(has_fec(&[silk | 2, 2, 0b0100_0000, 0, 0]));
        // Code 3, CBR, padded by one byte.
        assert!(has_fec(&[silk | 3, 0x40 | 2, 1, 0b0100_0000, 0]));
        // Code 3, VBR, three frames: lengths 1 and 1 listed, data after them.
        assert!(has_fec(&[silk | 3, 0x80 | 3, 1, 1, 0b0100_0000, 0, 0]));
        for bad in [
            &[][..],
            &[silk],
            &[silk | 2, 9, 0],
            &[silk | 3],
            &[silk | 3, 0xc0 | 2, 255],
        ] {
            assert!(!has_fec(bad), "{bad:?}");
        }
    }
}

/// The room's own voice path (simulated microphone, echo canceller, noise suppressor, Opus)
/// carries FEC in its packets once its encoder expects loss, and none on a clean path.
#[cfg(test)]
mod room_voice {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::tests::simulated_audio_branch;
    use crate::view::RoomView;

    /// Packets encoded in `span` and how many of them carry FEC.
    fn encode(loss_percent: i32, span: Duration) -> (u32, u32) {
        let branch = simulated_audio_branch();
        let mut view = RoomView::private();
        view.in_meeting = true;
        view.muted = false;
        branch.apply(&view);
        branch
            .encoder
            .set_property("packet-loss-percentage", loss_percent);
        branch.start().unwrap();
        let (mut packets, mut fec) = (0, 0);
        let deadline = Instant::now() + span;
        while Instant::now() < deadline {
            let Some(sample) = branch
                .encoded
                .try_pull_sample(gst::ClockTime::from_mseconds(100))
            else {
                continue;
            };
            let buffer = sample.buffer().unwrap().map_readable().unwrap();
            packets += 1;
            if has_fec(&buffer) {
                fec += 1;
            }
        }
        branch.stop();
        (packets, fec)
    }

    #[test]
    fn the_rooms_voice_carries_fec_when_loss_is_expected() {
        // A live pipeline: it takes its turn with the others (see one_pipeline_test_at_a_time).
        let _serial = crate::tests::one_pipeline_test_at_a_time();
        let (packets, fec) = encode(0, Duration::from_secs(3));
        eprintln!("no loss expected: {fec} of {packets} packets carry FEC");
        assert!(packets > 50, "{packets} packets in 3 s");
        assert_eq!(fec, 0);
        let (packets, fec) = encode(20, Duration::from_secs(3));
        eprintln!("20 % loss expected: {fec} of {packets} packets carry FEC");
        assert!(fec * 4 > packets, "{fec} of {packets} packets carry FEC");
    }
}
