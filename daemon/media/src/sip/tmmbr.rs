//! The far end's say in how fast the room sends its camera: the bandwidth of its SDP
//! (`b=TIAS`/`b=AS`, for the whole call) and its TMMBR requests (RFC 5104 §4.2.1, "Temporary
//! Maximum Media Stream Bit Rate Request", sent in RTCP while the call runs: its congestion
//! control, a link that got slower, a picture it shows smaller). The camera encoder is held at
//! the lower of the two; a later TMMBR replaces the earlier one, so a far end raises its limit
//! again by asking for more. The room's one camera encoder serves every far end, so the
//! lowest ask of all meetings wins (`bitrate_limit`).
//!
//! rtpsession reports TMMBR through its `on-feedback-rtcp` signal and does nothing else with
//! it; the room answers no TMMBN (the notification of RFC 5104 §4.2.2), which GStreamer 1.22
//! cannot add to its RTCP without raw packet surgery: peers repeat their request instead.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

use roomd_base::sync::lock;

use crate::MediaError;
use crate::taps::BitrateAsker;

/// RTCP transport-layer feedback (RTPFB, RFC 4585 §6.1).
const RTPFB: u32 = 205;
/// The RTPFB message type of TMMBR.
const FMT_TMMBR: u32 = 3;
/// One FCI entry: SSRC (32 bits), exponent (6), mantissa (17), measured overhead (9).
const ENTRY_LEN: usize = 8;
/// The room's RTP packets of video are at most this large (`rtpbasepayload`'s default MTU,
/// which the SIP payloaders keep): the far end's per-packet overhead is taken off each such
/// packet to find the encoder's share of the bit rate it allows.
const PACKET_BYTES: u64 = 1400;

/// One request of a TMMBR message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Request {
    /// The media sender the request is for.
    pub(super) ssrc: u32,
    /// The most it may send, bit/s, packet overhead included.
    pub(super) total_bps: u64,
    /// The overhead the far end measured per packet (IP, UDP, RTP, SRTP), bytes.
    pub(super) overhead_bytes: u16,
}

impl Request {
    /// The encoder's share of `total_bps`, kbit/s: what remains once each packet's overhead is
    /// paid.
    pub(super) fn media_kbps(&self) -> u32 {
        let overhead = u64::from(self.overhead_bytes).min(PACKET_BYTES);
        let media_bps = u128::from(self.total_bps) * u128::from(PACKET_BYTES - overhead)
            / u128::from(PACKET_BYTES);
        u32::try_from(media_bps / 1000).unwrap_or(u32::MAX)
    }
}

/// The requests in a TMMBR message's FCI; a trailing partial entry is ignored.
pub(super) fn parse(fci: &[u8]) -> Vec<Request> {
    fci.chunks_exact(ENTRY_LEN)
        .map(|entry| {
            let ssrc = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let word = u32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]]);
            let exponent = word >> 26;
            let mantissa = u64::from((word >> 9) & 0x1_ffff);
            // A 17-bit mantissa shifted by up to 63 overflows; such a far end asks for no limit.
            let total_bps = mantissa.checked_shl(exponent).unwrap_or(u64::MAX);
            let total_bps = if total_bps >> exponent == mantissa {
                total_bps
            } else {
                u64::MAX
            };
            Request {
                ssrc,
                total_bps,
                overhead_bytes: (word & 0x1ff) as u16,
            }
        })
        .collect()
}

/// The far end's limits on the room's camera stream in one call, and the camera encoder's
/// ask that follows them.
pub(super) struct CameraLimit {
    /// From the SDP, kbit/s.
    sdp_kbps: Option<u32>,
    /// From the last TMMBR, kbit/s of media.
    tmmbr_kbps: Mutex<Option<u32>>,
    asker: BitrateAsker,
}

impl CameraLimit {
    /// Asks the camera encoder for the SDP's limit at once.
    pub(super) fn new(sdp_kbps: Option<u32>, asker: BitrateAsker) -> Arc<CameraLimit> {
        let limit = Arc::new(CameraLimit {
            sdp_kbps,
            tmmbr_kbps: Mutex::new(None),
            asker,
        });
        limit.asker.ask(sdp_kbps);
        limit
    }

    /// What the far end takes now, kbit/s: the lower of its SDP's and its last TMMBR's.
    pub(super) fn kbps(&self) -> Option<u32> {
        let tmmbr = *lock(&self.tmmbr_kbps);
        match (self.sdp_kbps, tmmbr) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn requested(&self, kbps: u32) {
        let before = lock(&self.tmmbr_kbps).replace(kbps);
        if before != Some(kbps) {
            tracing::info!("SIP call: the far end asks for at most {kbps} kbit/s of video (TMMBR)");
        }
        self.asker.ask(self.kbps());
    }

    /// Follows the TMMBR requests that arrive in RTP session `session` of `rtpbin` (the
    /// camera's stream) for a sender of the room's in that session.
    pub(super) fn follow_tmmbr(
        self: &Arc<Self>,
        rtpbin: &gst::Element,
        session: u32,
    ) -> Result<(), MediaError> {
        let Some(rtp_session) =
            rtpbin.emit_by_name::<Option<glib::Object>>("get-internal-session", &[&session])
        else {
            return Err(MediaError::Build(format!(
                "SIP media: rtpbin has no RTP session {session} to hear TMMBR in"
            )));
        };
        let limit = Arc::downgrade(self);
        rtp_session.connect("on-feedback-rtcp", false, move |values| {
            let (Some(limit), Ok(session)) = (limit.upgrade(), values[0].get::<glib::Object>())
            else {
                return None;
            };
            let kind = values.get(1).and_then(|v| v.get::<u32>().ok());
            let format = values.get(2).and_then(|v| v.get::<u32>().ok());
            if kind != Some(RTPFB) || format != Some(FMT_TMMBR) {
                return None;
            }
            let fci = values
                .get(5)
                .and_then(|v| v.get::<Option<gst::Buffer>>().ok())
                .flatten()?;
            let Ok(fci) = fci.map_readable() else {
                return None;
            };
            let own = own_senders(&session);
            // One TMMBR may hold requests for several senders; the room's is the one naming
            // its SSRC (a far end may leave the packet's own media SSRC 0, as Linphone does).
            match parse(&fci).into_iter().find(|r| own.contains(&r.ssrc)) {
                Some(request) => limit.requested(request.media_kbps()),
                None => tracing::debug!("SIP call: a TMMBR for a sender not the room's"),
            }
            None
        });
        Ok(())
    }
}

/// The SSRCs the room sends with in `session` (an rtpbin's RTPSession).
fn own_senders(session: &glib::Object) -> Vec<u32> {
    let stats = session.property::<gst::Structure>("stats");
    let Ok(sources) = stats.get::<glib::ValueArray>("source-stats") else {
        return Vec::new();
    };
    sources
        .iter()
        .filter_map(|v| v.get::<gst::Structure>().ok())
        .filter(|s| s.get::<bool>("internal").unwrap_or(false))
        .filter_map(|s| s.get::<u32>("ssrc").ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ssrc: u32, exponent: u32, mantissa: u32, overhead: u32) -> Vec<u8> {
        let mut bytes = ssrc.to_be_bytes().to_vec();
        bytes.extend((exponent << 26 | mantissa << 9 | overhead).to_be_bytes());
        bytes
    }

    #[test]
    fn requests_read_as_rfc_5104_writes_them() {
        // 300 000 bit/s = 75 000 × 2^2, 40 bytes overhead.
        let mut fci = entry(0x1234_5678, 2, 75_000, 40);
        fci.extend(entry(7, 0, 0x1_ffff, 0x1ff));
        fci.extend([1, 2, 3]);
        let requests = parse(&fci);
        assert_eq!(
            requests,
            vec![
                Request {
                    ssrc: 0x1234_5678,
                    total_bps: 300_000,
                    overhead_bytes: 40
                },
                Request {
                    ssrc: 7,
                    total_bps: 0x1_ffff,
                    overhead_bytes: 0x1ff
                }
            ]
        );
        // 40 of every 1400 bytes are overhead.
        assert_eq!(requests[0].media_kbps(), 291);
        // The largest overhead (511 bytes) of 131 071 bit/s.
        assert_eq!(requests[1].media_kbps(), 83);
        assert!(parse(&[0; 7]).is_empty());
    }

    #[test]
    fn a_huge_exponent_means_no_limit_rather_than_an_overflow() {
        let requests = parse(&entry(1, 63, 0x1_ffff, 0));
        assert_eq!(requests[0].total_bps, u64::MAX);
        assert_eq!(requests[0].media_kbps(), u32::MAX);
        let requests = parse(&entry(1, 63, 0, 0));
        assert_eq!(requests[0].total_bps, 0);
    }
}
