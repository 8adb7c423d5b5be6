//! RTCP figures of a call's streams, read from rtpbin's RTP sessions (one per stream): what the
//! room measured of the far end's stream (packets lost, interarrival jitter), and what the far
//! end's receiver reports say of the room's (lost, jitter, and the round trip rtpsession
//! computes from their LSR and DLSR; GStreamer 1.22 keeps them with the far end's source, as
//! `rb-*` fields naming our SSRC). Nothing here is estimated: a figure RTCP has not given yet
//! stays 0.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

/// One direction of one stream as RTCP tells it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RtcpFigures {
    /// Packets lost (received: as the room counted; sent: as the far end reported); may be
    /// negative when duplicates arrive.
    pub packets_lost: i64,
    /// Packets received (received) or sent (sent).
    pub packets: u64,
    /// Interarrival jitter, milliseconds.
    pub jitter_ms: f64,
    /// Round trip, milliseconds (sent only; 0 until a receiver report with LSR/DLSR came).
    pub rtt_ms: f64,
}

impl RtcpFigures {
    /// `packets_lost` in percent of the packets, delivered and lost.
    pub fn loss_percent(&self) -> f64 {
        let total = self.packets as f64 + self.packets_lost.max(0) as f64;
        if total > 0.0 {
            self.packets_lost.max(0) as f64 * 100.0 / total
        } else {
            0.0
        }
    }
}

/// The room's stream (`sent`) and the far end's (`received`) of RTP session `session`, whose
/// RTP clock runs at `clock_rate` Hz.
pub(super) fn figures(
    rtpbin: &gst::Element,
    session: u32,
    clock_rate: u32,
) -> (RtcpFigures, RtcpFigures) {
    let (mut sent, mut received) = (RtcpFigures::default(), RtcpFigures::default());
    let Some(session) =
        rtpbin.emit_by_name::<Option<glib::Object>>("get-internal-session", &[&session])
    else {
        return (sent, received);
    };
    let stats = session.property::<gst::Structure>("stats");
    let Ok(sources) = stats.get::<glib::ValueArray>("source-stats") else {
        return (sent, received);
    };
    let ms = |units: u32| f64::from(units) * 1000.0 / f64::from(clock_rate.max(1));
    let sources: Vec<gst::Structure> = sources
        .iter()
        .filter_map(|v| v.get::<gst::Structure>().ok())
        .collect();
    let flag = |source: &gst::Structure, name: &str| source.get::<bool>(name).unwrap_or(false);
    // The room's sender in this session.
    let own = sources
        .iter()
        .find(|s| flag(s, "internal") && flag(s, "is-sender"))
        .and_then(|s| {
            sent.packets = s.get::<u64>("packets-sent").unwrap_or(0);
            s.get::<u32>("ssrc").ok()
        });
    for source in sources.iter().filter(|s| !flag(s, "internal")) {
        // What the far end received of ours: the last report block it sent about our SSRC,
        // which rtpsession keeps with the far end's source.
        if flag(source, "have-rb") && own.is_some() && source.get::<u32>("rb-ssrc").ok() == own {
            sent.packets_lost = i64::from(source.get::<i32>("rb-packetslost").unwrap_or(0));
            sent.jitter_ms = ms(source.get::<u32>("rb-jitter").unwrap_or(0));
            // NTP short format: 1/65536 s.
            sent.rtt_ms =
                f64::from(source.get::<u32>("rb-round-trip").unwrap_or(0)) * 1000.0 / 65536.0;
        }
        if flag(source, "is-sender") {
            received.packets += source.get::<u64>("packets-received").unwrap_or(0);
            received.packets_lost += i64::from(source.get::<i32>("packets-lost").unwrap_or(0));
            received.jitter_ms = received
                .jitter_ms
                .max(ms(source.get::<u32>("jitter").unwrap_or(0)));
        }
    }
    (sent, received)
}
