//! A peer's statistics: what webrtcbin reports per RTP stream (bytes, losses, jitter, round
//! trip), turned into rates between two reads, plus what only the peer knows (frames it sent
//! and decoded, their size and rate), and whether each stream is really protected: read from
//! the DTLS and SRTP elements inside webrtcbin, never assumed.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_webrtc as gst_webrtc;
use gstreamer_webrtc::WebRTCStatsType as Type;
use serde::Serialize;

use crate::MediaKind;

/// One direction of one kind of media, as in `status.meeting.streams` (less the participant).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StreamStats {
    /// "send" or "receive"
    pub direction: &'static str,
    /// "audio" or "video"
    pub kind: &'static str,
    /// Rate since the previous reading, kbit/s (0 on the first reading).
    pub bitrate_kbps: f64,
    /// Packets lost in total: counted by us when receiving, reported by the far end when
    /// sending.
    pub packets_lost: i64,
    /// Lost packets as a percentage of lost plus delivered, over the stream's life.
    pub loss_percent: f64,
    /// Interarrival jitter, ms (when sending, as the far end reports it).
    pub jitter_ms: f64,
    /// Round-trip time, ms, from the far end's receiver reports; 0 for received streams.
    pub rtt_ms: f64,
    /// Frames per second since the previous reading (for sent audio, encoded packets; 0 for
    /// received audio).
    pub frame_rate: f64,
    /// Video frame width, pixels; 0 for audio.
    pub width: u32,
    /// Video frame height, pixels; 0 for audio.
    pub height: u32,
    /// Sent: frames handed to the payloader; received: frames out of the decoder.
    pub frames: u64,
    /// The stream goes through an SRTP session keyed by a connected DTLS handshake (see
    /// `Protection`).
    pub encrypted: bool,
    /// Received audio: lost voice frames rebuilt from the in-band FEC of the next packet.
    pub fec_recovered: u64,
    /// Received audio: lost voice frames the decoder concealed (no FEC to rebuild them from).
    pub concealed: u64,
    /// Sent audio: the packet loss (percent) the room's Opus encoder expects and sizes its
    /// in-band FEC to, following the far ends' RTCP reports.
    pub expected_loss_percent: u32,
}

/// A peer's statistics at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PeerStats {
    /// "dtls-srtp" while the peer's DTLS transport is connected, its SRTP keys are set and every
    /// stream it lists is encrypted; "none" otherwise (not yet keyed, closed, failed).
    pub encryption: &'static str,
    /// webrtcbin's connection state: new, connecting, connected, disconnected, failed, closed
    pub connection_state: String,
    /// ICE: new, checking, connected, completed, failed, disconnected, closed
    pub ice_state: String,
    /// DTLS: new, connecting, connected, closed, failed
    pub dtls_state: String,
    /// One entry per RTP stream, sorted by direction, then kind.
    pub streams: Vec<StreamStats>,
    /// The kinds ("audio", "video") the far end may send on this peer as negotiated: a
    /// transceiver whose current direction receives. A removed or inactive m-line is none.
    pub receiving: Vec<&'static str>,
    /// The far end's voice was decoded in the last second (its level was read). This holds when
    /// `streams` lose it: GStreamer 1.22's webrtcbin no longer lists an inbound stream whose
    /// sender stopped a while and started again (a guest who muted and unmuted; measured).
    pub voice_arriving: bool,
}

/// What the peer counts itself, and the previous reading for rates.
#[derive(Default)]
pub(super) struct Counters {
    frames: HashMap<(&'static str, &'static str), FrameCount>,
    bytes: HashMap<(&'static str, u32), (u64, Instant)>,
    /// Each stream's kind once its RTP source knew its clock rate (see `kind_of`).
    kinds: HashMap<(&'static str, u32), &'static str>,
}

#[derive(Default)]
struct FrameCount {
    frames: u64,
    width: u32,
    height: u32,
    last: Option<(u64, Instant)>,
}

impl Counters {
    /// The kind of the stream `s` (an inbound or outbound RTP entry) sent or received
    /// (`direction`). GStreamer 1.22 fills `kind` and `codec-id` from the first stream for every
    /// stream; the RTP source's clock rate is right (90 kHz is video, Opus runs at 48 kHz). A
    /// source that went quiet for a while (a guest who muted by stopping its sender) comes back
    /// as a new RTP source without a clock rate until its caps are known again: the kind it had
    /// is kept, not guessed.
    fn kind_of(&mut self, direction: &'static str, s: &gst::Structure) -> &'static str {
        let ssrc = s.get::<u32>("ssrc").unwrap_or(0);
        let measured = match s
            .get::<gst::Structure>("gst-rtpsource-stats")
            .ok()
            .and_then(|r| r.get::<i32>("clock-rate").ok())
        {
            Some(90_000) => Some("video"),
            Some(rate) if rate > 0 => Some("audio"),
            _ => None,
        };
        if let Some(kind) = measured {
            self.kinds.insert((direction, ssrc), kind);
            return kind;
        }
        match self.kinds.get(&(direction, ssrc)) {
            Some(kind) => kind,
            None if s.get::<&str>("kind").ok() == Some("audio") => "audio",
            None => "video",
        }
    }

    pub(super) fn sent_frame(&mut self, kind: MediaKind, caps: Option<&gst::Caps>) {
        self.count(("send", kind_name(kind)), caps);
    }

    pub(super) fn received_frame(&mut self, caps: Option<&gst::CapsRef>) {
        self.count(("receive", "video"), caps.map(|c| c.to_owned()).as_ref());
    }

    fn count(&mut self, key: (&'static str, &'static str), caps: Option<&gst::Caps>) {
        let entry = self.frames.entry(key).or_default();
        entry.frames += 1;
        if let Some(s) = caps.and_then(|c| c.structure(0)) {
            if let Ok(w) = s.get::<i32>("width") {
                entry.width = w.max(0) as u32;
            }
            if let Ok(h) = s.get::<i32>("height") {
                entry.height = h.max(0) as u32;
            }
        }
    }

    /// Frames, size and frames per second since the previous reading.
    fn frames(&mut self, key: (&'static str, &'static str), now: Instant) -> (u64, u32, u32, f64) {
        let Some(entry) = self.frames.get_mut(&key) else {
            return (0, 0, 0, 0.0);
        };
        let rate = match entry.last {
            Some((frames, at)) if now > at => {
                (entry.frames - frames) as f64 / now.duration_since(at).as_secs_f64()
            }
            _ => 0.0,
        };
        entry.last = Some((entry.frames, now));
        (entry.frames, entry.width, entry.height, rate)
    }

    /// Kilobits per second of stream `ssrc` since the previous reading.
    fn bitrate(&mut self, direction: &'static str, ssrc: u32, bytes: u64, now: Instant) -> f64 {
        let previous = self.bytes.insert((direction, ssrc), (bytes, now));
        match previous {
            Some((before, at)) if now > at && bytes >= before => {
                (bytes - before) as f64 * 8.0 / 1000.0 / now.duration_since(at).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

fn kind_name(kind: MediaKind) -> &'static str {
    super::sdp::kind_name(kind)
}

/// Reads webrtcbin's `get-stats` report.
pub(super) fn read(
    report: &gst::StructureRef,
    counters: &mut Counters,
    connection: gst_webrtc::WebRTCPeerConnectionState,
    ice: gst_webrtc::WebRTCICEConnectionState,
    dtls: Option<gst_webrtc::WebRTCDTLSTransportState>,
    protection: &Protection,
    receiving: Vec<&'static str>,
) -> PeerStats {
    let now = Instant::now();
    let entries: Vec<gst::Structure> = report
        .iter()
        .filter_map(|(_, value)| value.get::<gst::Structure>().ok())
        .collect();
    let of_type = |wanted: Type| {
        entries
            .iter()
            .filter(move |s| s.get::<Type>("type").ok() == Some(wanted))
    };
    let by_id = |id: &str| {
        entries
            .iter()
            .find(|s| s.get::<&str>("id").ok() == Some(id))
    };
    let source = |s: &gst::Structure| s.get::<gst::Structure>("gst-rtpsource-stats").ok();
    let mut streams = Vec::new();
    for inbound in of_type(Type::InboundRtp) {
        let ssrc = inbound.get::<u32>("ssrc").unwrap_or(0);
        let kind = counters.kind_of("receive", inbound);
        let bytes = inbound.get::<u64>("bytes-received").unwrap_or(0);
        let received = inbound.get::<u64>("packets-received").unwrap_or(0);
        let lost = inbound.get::<i64>("packets-lost").unwrap_or(0);
        let (frames, width, height, frame_rate) = if kind == "video" {
            counters.frames(("receive", "video"), now)
        } else {
            (0, 0, 0, 0.0)
        };
        streams.push(StreamStats {
            direction: "receive",
            kind,
            bitrate_kbps: counters.bitrate("receive", ssrc, bytes, now),
            packets_lost: lost,
            loss_percent: percent(lost, received),
            jitter_ms: inbound.get::<f64>("jitter").unwrap_or(0.0) * 1000.0,
            rtt_ms: 0.0,
            frame_rate,
            width,
            height,
            frames,
            encrypted: protection.receives_encrypted(ssrc),
            ..StreamStats::default()
        });
    }
    // webrtcbin lists an outbound entry for its RTCP-only local sources too: not a stream.
    let sending =
        |s: &&gst::Structure| source(s).is_none_or(|r| r.get::<bool>("is-sender").unwrap_or(true));
    for outbound in of_type(Type::OutboundRtp).filter(sending) {
        let ssrc = outbound.get::<u32>("ssrc").unwrap_or(0);
        let kind = counters.kind_of("send", outbound);
        let bytes = outbound.get::<u64>("bytes-sent").unwrap_or(0);
        let sent = outbound.get::<u64>("packets-sent").unwrap_or(0);
        // What the far end reported back in its receiver reports.
        let remote = outbound.get::<&str>("remote-id").ok().and_then(by_id);
        let lost = remote
            .and_then(|r| r.get::<i64>("packets-lost").ok())
            .unwrap_or(0);
        let (frames, width, height, frame_rate) = counters.frames(("send", kind), now);
        streams.push(StreamStats {
            direction: "send",
            kind,
            bitrate_kbps: counters.bitrate("send", ssrc, bytes, now),
            packets_lost: lost,
            loss_percent: percent(lost, sent),
            jitter_ms: remote
                .and_then(|r| r.get::<f64>("jitter").ok())
                .unwrap_or(0.0)
                * 1000.0,
            rtt_ms: remote
                .and_then(|r| r.get::<f64>("round-trip-time").ok())
                .unwrap_or(0.0)
                * 1000.0,
            frame_rate,
            width: if kind == "video" { width } else { 0 },
            height: if kind == "video" { height } else { 0 },
            frames: if kind == "video" { frames } else { 0 },
            encrypted: protection.sends_encrypted(ssrc),
            ..StreamStats::default()
        });
    }
    streams.sort_by_key(|s| (s.direction, s.kind));
    let dtls_connected = dtls == Some(gst_webrtc::WebRTCDTLSTransportState::Connected);
    let encrypted = dtls_connected && protection.keyed() && streams.iter().all(|s| s.encrypted);
    PeerStats {
        encryption: if encrypted { "dtls-srtp" } else { "none" },
        connection_state: enum_name(connection),
        ice_state: enum_name(ice),
        dtls_state: dtls.map(enum_name).unwrap_or_else(|| "new".into()),
        streams,
        receiving,
        voice_arriving: false,
    }
}

fn percent(lost: i64, delivered: u64) -> f64 {
    let total = lost.max(0) as f64 + delivered as f64;
    if total == 0.0 {
        0.0
    } else {
        lost.max(0) as f64 * 100.0 / total
    }
}

/// The GLib nick of an enum value ("connected"), as status shows it.
fn enum_name<E: gst::glib::value::ToValue>(value: E) -> String {
    let value = value.to_value();
    gst::glib::EnumValue::from_value(&value)
        .map(|(_, v)| v.nick().to_owned())
        .unwrap_or_default()
}

/// The kinds of media `webrtcbin`'s negotiated transceivers receive (see
/// [`PeerStats::receiving`]).
pub(super) fn receiving_kinds(webrtcbin: &gst::Element) -> Vec<&'static str> {
    use gst_webrtc::WebRTCRTPTransceiverDirection as Direction;
    let mut kinds = Vec::new();
    for index in 0.. {
        let Some(transceiver) = webrtcbin
            .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>("get-transceiver", &[&index])
        else {
            break;
        };
        let receives = matches!(
            transceiver.property::<Direction>("current-direction"),
            Direction::Recvonly | Direction::Sendrecv
        );
        let kind = match transceiver.property::<gst_webrtc::WebRTCKind>("kind") {
            gst_webrtc::WebRTCKind::Audio => "audio",
            gst_webrtc::WebRTCKind::Video => "video",
            _ => continue,
        };
        if receives && !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

/// What the SRTP sessions inside a webrtcbin protect, read from its elements: per DTLS
/// transport, whether the handshake is connected, whether it keyed SRTP (a key and a cipher and
/// authentication other than `null`), and which SSRCs went through that SRTP session.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Protection {
    send: Vec<Session>,
    receive: Vec<Session>,
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Session {
    connected: bool,
    keyed: bool,
    ssrcs: HashSet<u32>,
}

impl Session {
    fn protects(&self, ssrc: u32) -> bool {
        self.connected && self.keyed && self.ssrcs.contains(&ssrc)
    }
}

/// `GstDtlsConnectionState` "connected" (the enum is the dtls plugin's, not in the bindings).
const DTLS_CONNECTED: &str = "connected";
/// `GstSrtpCipherType` and `GstSrtpAuthType` 0 are `null`: no protection.
const SRTP_NULL: &str = "null";

impl Protection {
    /// Reads every `dtlssrtpenc` / `dtlssrtpdec` inside `webrtcbin` (one per transport).
    pub(super) fn of(webrtcbin: &gst::Element) -> Protection {
        let mut protection = Protection::default();
        let Some(bin) = webrtcbin.downcast_ref::<gst::Bin>() else {
            return protection;
        };
        for element in bin.iterate_recurse().into_iter().flatten() {
            let factory = element.factory().map(|f| f.name().to_string());
            match factory.as_deref() {
                Some("srtpenc") => {
                    let keyed = element.property::<Option<gst::Buffer>>("key").is_some()
                        && enum_name_of(&element, "rtp-cipher") != SRTP_NULL
                        && enum_name_of(&element, "rtp-auth") != SRTP_NULL;
                    protection.send.push(Session {
                        connected: parent_connected(&element),
                        keyed,
                        ssrcs: srtp_ssrcs(&element),
                    });
                }
                Some("srtpdec") => {
                    // The keys come from the DTLS decoder next to it, once its handshake chose a
                    // cipher and an authentication (0 means none was chosen).
                    let dtls = element.parent().and_then(|p| {
                        p.downcast::<gst::Bin>()
                            .ok()?
                            .iterate_elements()
                            .into_iter()
                            .flatten()
                            .find(|e| e.factory().is_some_and(|f| f.name() == "dtlsdec"))
                    });
                    let keyed = dtls.is_some_and(|d| {
                        d.property::<u32>("srtp-cipher") != 0 && d.property::<u32>("srtp-auth") != 0
                    });
                    protection.receive.push(Session {
                        connected: parent_connected(&element),
                        keyed,
                        ssrcs: srtp_ssrcs(&element),
                    });
                }
                _ => {}
            }
        }
        protection
    }

    /// Whether some transport finished its handshake and keyed SRTP.
    pub(super) fn keyed(&self) -> bool {
        self.send
            .iter()
            .chain(&self.receive)
            .any(|s| s.connected && s.keyed)
    }

    fn sends_encrypted(&self, ssrc: u32) -> bool {
        self.send.iter().any(|s| s.protects(ssrc))
    }

    fn receives_encrypted(&self, ssrc: u32) -> bool {
        self.receive.iter().any(|s| s.protects(ssrc))
    }
}

/// Whether the `dtlssrtpenc` / `dtlssrtpdec` holding `element` has a connected handshake.
fn parent_connected(element: &gst::Element) -> bool {
    element
        .parent()
        .and_then(|p| p.downcast::<gst::Element>().ok())
        .is_some_and(|p| {
            p.find_property("connection-state").is_some()
                && enum_name_of(&p, "connection-state") == DTLS_CONNECTED
        })
}

/// The SSRCs an `srtpenc` / `srtpdec` has SRTP streams for (its `stats` property).
fn srtp_ssrcs(element: &gst::Element) -> HashSet<u32> {
    let stats = element.property::<Option<gst::Structure>>("stats");
    let Some(stats) = stats else {
        return HashSet::new();
    };
    let Ok(streams) = stats.get::<gst::Array>("streams") else {
        return HashSet::new();
    };
    streams
        .iter()
        .filter_map(|v| v.get::<gst::Structure>().ok())
        .filter_map(|s| s.get::<u32>("ssrc").ok())
        .collect()
}

/// The nick of enum property `name` of `element` ("" when it has none).
fn enum_name_of(element: &gst::Element, name: &str) -> String {
    let value = element.property_value(name);
    gst::glib::EnumValue::from_value(&value)
        .map(|(_, v)| v.nick().to_owned())
        .unwrap_or_default()
}
