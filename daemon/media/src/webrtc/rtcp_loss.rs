//! The loss a far end reports for one of our streams: the "fraction lost" of the report block
//! about our SSRC in its RTCP sender or receiver reports (RFC 3550 6.4). It feeds the Opus
//! encoder's expected loss ([`crate::expected_loss`]).
//!
//! Read from the compound packet itself because rtpsession keeps one report block per remote
//! source: with audio and video bundled, the video block of the same report overwrites the
//! audio one in its statistics (and so in webrtcbin's `remote-inbound-rtp`). gstreamer-rtp's
//! RTCP reader would be a new dependency for these few bounded lines.

const SENDER_REPORT: u8 = 200;
const RECEIVER_REPORT: u8 = 201;
const HEADER: usize = 8;
const SENDER_INFO: usize = 20;
const REPORT_BLOCK: usize = 24;

/// The loss in percent reported for `ssrc` in the compound RTCP packet `compound` (the last
/// report block about it when there are several); `None` when no block is about it.
pub(super) fn reported_loss(compound: &[u8], ssrc: u32) -> Option<f64> {
    let mut found = None;
    let mut rest = compound;
    while rest.len() >= HEADER {
        let version = rest[0] >> 6;
        let count = usize::from(rest[0] & 0x1f);
        let kind = rest[1];
        let length = (usize::from(u16::from_be_bytes([rest[2], rest[3]])) + 1) * 4;
        if version != 2 || length > rest.len() {
            break;
        }
        let packet = &rest[..length];
        let blocks_at = match kind {
            SENDER_REPORT => Some(HEADER + SENDER_INFO),
            RECEIVER_REPORT => Some(HEADER),
            _ => None,
        };
        if let Some(start) = blocks_at {
            for index in 0..count {
                let at = start + index * REPORT_BLOCK;
                let Some(block) = packet.get(at..at + REPORT_BLOCK) else {
                    break;
                };
                if u32::from_be_bytes([block[0], block[1], block[2], block[3]]) == ssrc {
                    found = Some(f64::from(block[4]) * 100.0 / 256.0);
                }
            }
        }
        rest = &rest[length..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(ssrc: u32, fraction: u8) -> Vec<u8> {
        let mut b = ssrc.to_be_bytes().to_vec();
        b.push(fraction);
        b.extend_from_slice(&[0, 0, 7]); // cumulative lost
        b.extend_from_slice(&[0; 16]);
        b
    }

    fn packet(kind: u8, blocks: &[Vec<u8>]) -> Vec<u8> {
        let mut body = 0x1234_5678u32.to_be_bytes().to_vec();
        if kind == SENDER_REPORT {
            body.extend_from_slice(&[0; SENDER_INFO]);
        }
        for b in blocks {
            body.extend_from_slice(b);
        }
        let words = (body.len() + 4) / 4 - 1;
        let mut p = vec![0x80 | blocks.len() as u8, kind];
        p.extend_from_slice(&(words as u16).to_be_bytes());
        p.extend_from_slice(&body);
        p
    }

    #[test]
    fn finds_the_block_about_the_stream_in_a_compound_packet() {
        let audio = 0xaaaa_0001;
        let video = 0xbbbb_0002;
        // A sender report about video, then a receiver report about both, then an SDES.
        let mut compound = packet(SENDER_REPORT, &[block(video, 10)]);
        compound.extend(packet(
            RECEIVER_REPORT,
            &[block(audio, 64), block(video, 0)],
        ));
        compound.extend_from_slice(&[0x81, 202, 0, 1, 0, 0, 0, 0]);
        assert_eq!(reported_loss(&compound, audio), Some(25.0));
        assert_eq!(reported_loss(&compound, video), Some(0.0));
        assert_eq!(reported_loss(&compound, 0x0bad_0bad), None);
    }

    #[test]
    fn truncated_or_foreign_packets_give_nothing() {
        let audio = 0xaaaa_0001;
        let whole = packet(RECEIVER_REPORT, &[block(audio, 128)]);
        for cut in 0..whole.len() {
            assert_eq!(reported_loss(&whole[..cut], audio), None, "cut at {cut}");
        }
        let mut lying = whole.clone();
        lying[0] = 0x80 | 5; // claims five blocks, has one
        assert_eq!(reported_loss(&lying, audio), Some(50.0));
        let mut version_one = whole;
        version_one[0] = 0x40 | 1;
        assert_eq!(reported_loss(&version_one, audio), None);
    }
}
