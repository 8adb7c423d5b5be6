//! The media of a SIP call (issue 14): plain RTP sessions in an `rtpbin`, each protected by
//! SRTP keyed by SDES or DTLS, whichever the far end offered (`transport`; no WebRTC: webrtcbin
//! cannot do SDES). The room's encoded camera and microphone go out from the taps as every
//! meeting's do; the far end's picture and voice are decoded into the display and the speaker
//! mix. A call may carry a second video stream for shared content (`a=content:slides`): the
//! room's content goes out in it only while the room holds the floor (BFCP, decided by the
//! caller through [`SipMedia::set_content_sending`]), and the far end's content is shown as a
//! picture of its own. One pipeline per call, dropped with it.

mod dtls;
mod dtmf;
mod ports;
mod rtcp_stats;
#[cfg(test)]
mod tests;
mod tmmbr;
mod transport;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use dtls::DtlsState;
pub use dtls::{
    DtlsCertificate, DtlsProgress, FINGERPRINT_LEN, fingerprint_text, room_certificate,
};
use dtmf::{dtmf_number, dtmf_player};
pub use ports::SipPorts;
pub use rtcp_stats::RtcpFigures;
use tmmbr::CameraLimit;
pub use transport::Protection;
use transport::SessionPads;

use crate::taps::Feed;
use crate::{MediaError, MediaKind, MediaTaps, RemoteAudioSlot, RemoteVideoSlot, TapSubscription};

/// SRTP master key and salt length of `AES_CM_128_HMAC_SHA1_80`.
pub const SRTP_KEY_LEN: usize = 30;

/// One agreed RTP stream of a call.
#[derive(Debug, Clone)]
pub struct SipStream {
    /// What the stream carries: the room's microphones (the audio stream), its camera (the
    /// main video stream) or its shared content (the content video stream); the far end's
    /// side of the stream is the same kind of thing.
    pub feed: Feed,
    /// `OPUS`, `G722`, `PCMU`, `PCMA`, `H264` or `VP8`; video (camera or content) is sent only
    /// in the codec the camera is encoded with.
    pub encoding: String,
    /// The agreed payload type.
    pub payload_type: u8,
    /// Where the far end receives RTP.
    pub remote_rtp: SocketAddr,
    /// Where the far end receives RTCP.
    pub remote_rtcp: SocketAddr,
    /// How its RTP and RTCP are protected.
    pub protection: Protection,
    /// The most the far end takes, kbit/s (its SDP's bandwidth): for the camera's stream, the
    /// camera's encoder is held at or below it while the call lasts, and below what the far
    /// end's TMMBR requests ask for (the content's encoder is not held).
    pub max_kbps: Option<u32>,
    /// Audio: the payload type of RFC 4733 events (8 kHz) the far end takes, if it does.
    pub telephone_event: Option<u8>,
}

/// Frames and RTP bytes through one direction of one stream.
#[derive(Debug, Default)]
pub struct Counter {
    frames: AtomicU64,
    bytes: AtomicU64,
}

impl Counter {
    /// Frames so far (encoded frames sent, decoded frames received).
    pub fn get(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// RTP bytes so far (headers and payload, before SRTP or after it).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn add(&self) {
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    fn add_bytes(&self, bytes: usize) {
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
}

/// Per-stream frame and RTP byte counts of a call, for `status.meeting.streams`.
#[derive(Debug)]
pub struct SipCounters {
    /// Turns true with the first far-end camera frame decoded.
    first_video: tokio::sync::watch::Sender<bool>,
    /// Turns true with the first far-end content frame decoded.
    first_content: tokio::sync::watch::Sender<bool>,
    /// Camera frames the room sent.
    pub video_sent: Counter,
    /// Far-end camera frames the room decoded.
    pub video_received: Counter,
    /// Content frames the room sent (only those let through while it held the floor).
    pub content_sent: Counter,
    /// Far-end content frames the room decoded.
    pub content_received: Counter,
    /// Audio frames the room sent.
    pub audio_sent: Counter,
    /// Audio frames the room decoded.
    pub audio_received: Counter,
}

impl Default for SipCounters {
    fn default() -> Self {
        SipCounters {
            first_video: tokio::sync::watch::channel(false).0,
            first_content: tokio::sync::watch::channel(false).0,
            video_sent: Counter::default(),
            video_received: Counter::default(),
            content_sent: Counter::default(),
            content_received: Counter::default(),
            audio_sent: Counter::default(),
            audio_received: Counter::default(),
        }
    }
}

impl SipCounters {
    fn of(&self, feed: Feed, sent: bool) -> &Counter {
        match (feed, sent) {
            (Feed::Camera, true) => &self.video_sent,
            (Feed::Camera, false) => &self.video_received,
            (Feed::Content, true) => &self.content_sent,
            (Feed::Content, false) => &self.content_received,
            (Feed::Microphone, true) => &self.audio_sent,
            (Feed::Microphone, false) => &self.audio_received,
        }
    }

    /// The watch that turns true with the first far-end frame of `feed` (pictures only).
    fn first_frame(&self, feed: Feed) -> Option<&tokio::sync::watch::Sender<bool>> {
        match feed {
            Feed::Camera => Some(&self.first_video),
            Feed::Content => Some(&self.first_content),
            Feed::Microphone => None,
        }
    }
}

/// Counts the RTP bytes through `pad` into `counters`' `feed`, `sent` or received.
fn count_rtp_bytes(pad: &gst::Pad, counters: &Arc<SipCounters>, feed: Feed, sent: bool) {
    let counters = counters.clone();
    pad.add_probe(
        gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
        move |_, info| {
            let bytes = match &info.data {
                Some(gst::PadProbeData::Buffer(buffer)) => buffer.size(),
                Some(gst::PadProbeData::BufferList(list)) => list.iter().map(|b| b.size()).sum(),
                _ => 0,
            };
            counters.of(feed, sent).add_bytes(bytes);
            gst::PadProbeReturn::Ok
        },
    );
}

/// A running call's media; stops when dropped.
pub struct SipMedia {
    pipeline: gst::Pipeline,
    /// Where the tones of the audio stream's RFC 4733 event source are queued, when the far
    /// end takes events.
    dtmf: Option<std::sync::mpsc::SyncSender<Vec<i32>>>,
    counters: Arc<SipCounters>,
    /// Every stream runs SRTP (SDES or DTLS); DTLS ones count once their handshake is checked.
    protected: bool,
    dtls: Arc<DtlsState>,
    /// The room's content going out, when the call has a content stream and the room a
    /// content input.
    content: Option<ContentSender>,
    /// Whether the call was asked once already to send content it cannot send (logged once).
    content_unsendable_told: AtomicBool,
    /// What the far end takes of the room's camera (SDP and TMMBR), when it receives it.
    camera_limit: Option<Arc<CameraLimit>>,
    /// Its RTP sessions, for their RTCP figures: each stream's feed, session and RTP clock.
    rtpbin: gst::Element,
    sessions: Vec<(Feed, u32, u32)>,
    _subscriptions: Vec<TapSubscription>,
    _slots: Arc<std::sync::Mutex<Slots>>,
}

/// The room's content between its tap and its payloader: a valve, open only while the room
/// holds the floor.
struct ContentSender {
    valve: gst::Element,
    /// Set as the valve opens: delta frames are held back until the next keyframe, so that
    /// the far end's decoder starts on a whole picture rather than on references it never got.
    awaiting_keyframe: Arc<AtomicBool>,
    taps: MediaTaps,
}

impl ContentSender {
    /// Opens or closes the valve; opening asks the content encoder for a keyframe.
    fn set_sending(&self, on: bool) {
        let sending = !self.valve.property::<bool>("drop");
        if sending == on {
            return;
        }
        if on {
            self.awaiting_keyframe.store(true, Ordering::Release);
            self.valve.set_property("drop", false);
            if !self.taps.request_keyframe_of(Feed::Content) {
                tracing::debug!("SIP call: no content encoder runs to ask for a keyframe");
            }
        } else {
            self.valve.set_property("drop", true);
        }
        tracing::info!(
            "SIP call: the room's content {}",
            if on { "goes out" } else { "is held back" }
        );
    }
}

#[derive(Default)]
struct Slots {
    video: Vec<Arc<RemoteVideoSlot>>,
    audio: Vec<Arc<RemoteAudioSlot>>,
}

impl Drop for SipMedia {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// `audio`, `video` or `content`: a stream's name in logs and element names.
fn stream_name(feed: Feed) -> &'static str {
    match feed {
        Feed::Microphone => "audio",
        Feed::Camera => "video",
        Feed::Content => "content",
    }
}

fn make(factory: &str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|_| MediaError::Build(format!("SIP media: no {factory} element")))
}

fn build_error(what: impl std::fmt::Display) -> MediaError {
    MediaError::Build(format!("SIP media: {what}"))
}

impl SipMedia {
    /// Starts the call's media on `ports` (the ones its SDP named) for `streams`, the far end
    /// shown as `label`.
    pub fn start(
        taps: &MediaTaps,
        ports: SipPorts,
        label: &str,
        streams: &[SipStream],
    ) -> Result<SipMedia, MediaError> {
        let pipeline = gst::Pipeline::with_name("sip-call");
        let rtpbin = make("rtpbin")?;
        // Feedback (PLI, FIR) goes out at once rather than with the next regular RTCP report
        // (RFC 4585's early feedback; every SIP peer seen takes it whatever its SDP profile).
        rtpbin.set_property_from_str("rtp-profile", "avpf");
        pipeline.add(&rtpbin).map_err(build_error)?;
        let counters = Arc::new(SipCounters::default());
        let slots = Arc::new(std::sync::Mutex::new(Slots::default()));
        let mut subscriptions = Vec::new();
        let protected = !streams.is_empty() && streams.iter().all(|s| s.protection.encrypted());
        let dtls = Arc::new(DtlsState::default());
        let mut sessions = std::collections::HashMap::new();
        let mut dtmf = None;
        let mut content = None;
        let mut camera_limit = None;
        for (session, stream) in streams.iter().enumerate() {
            let session = session as u32;
            sessions.insert(session, stream.clone());
            let mut rtp_out = None;
            if let Some(sender) = add_sender(&pipeline, &rtpbin, taps, session, stream, &counters)?
            {
                subscriptions.push(sender.subscription);
                if let (None, Some(source)) = (&dtmf, sender.events) {
                    dtmf = Some(dtmf_player(&source)?);
                }
                if let (None, Some(floor)) = (&content, sender.content) {
                    content = Some(floor);
                }
                if let (None, Some(limit)) = (&camera_limit, sender.camera_limit) {
                    camera_limit = Some((session, limit));
                }
                let pad = static_pad(&rtpbin, &format!("send_rtp_src_{session}"))?;
                count_rtp_bytes(&pad, &counters, stream.feed, true);
                rtp_out = Some(pad);
            }
            let pads = SessionPads {
                session,
                rtp_out,
                rtcp_out: request_pad(&rtpbin, &format!("send_rtcp_src_{session}"))?,
                rtp_in: request_pad(&rtpbin, &format!("recv_rtp_sink_{session}"))?,
                rtcp_in: request_pad(&rtpbin, &format!("recv_rtcp_sink_{session}"))?,
            };
            // A keyframe asked for in this stream is one of the encoder feeding it: the
            // camera's for the main video, the content's for the content stream.
            let keyframe: Option<Arc<dyn Fn() + Send + Sync>> = match stream.feed {
                feed @ (Feed::Camera | Feed::Content) => {
                    let taps = taps.clone();
                    Some(Arc::new(move || {
                        taps.request_keyframe_of(feed);
                    }))
                }
                Feed::Microphone => None,
            };
            transport::connect(
                &pipeline,
                pads,
                stream,
                ports.pair(stream.feed),
                ports.local_ip,
                &dtls,
                keyframe,
            )?;
        }
        if let Some((session, limit)) = &camera_limit {
            limit.follow_tmmbr(&rtpbin, *session)?;
        }
        // What the far end's payload types are (DTLS-SRTP's decoder gives bare RTP caps).
        let pt_map: std::collections::HashMap<u32, (u8, gst::Caps)> = sessions
            .iter()
            .map(|(session, stream)| {
                (
                    *session,
                    (
                        stream.payload_type,
                        transport::rtp_caps("application/x-rtp", stream),
                    ),
                )
            })
            .collect();
        rtpbin.connect("request-pt-map", false, move |values| {
            let session = values.get(1)?.get::<u32>().ok()?;
            let payload_type = values.get(2)?.get::<u32>().ok()?;
            let (agreed, caps) = pt_map.get(&session)?;
            (u32::from(*agreed) == payload_type).then(|| caps.to_value())
        });
        // A far-end stream appeared: depayload, decode, show or play it.
        let weak_pipeline = pipeline.downgrade();
        let taps_for_pads = taps.clone();
        let label = label.to_owned();
        let counters_for_pads = counters.clone();
        let slots_for_pads = slots.clone();
        rtpbin.connect_pad_added(move |_, pad| {
            let name = pad.name();
            let Some(rest) = name.strip_prefix("recv_rtp_src_") else {
                return;
            };
            let Some(session) = rest.split('_').next().and_then(|s| s.parse::<u32>().ok()) else {
                return;
            };
            let (Some(pipeline), Some(stream)) = (weak_pipeline.upgrade(), sessions.get(&session))
            else {
                return;
            };
            if let Err(e) = on_remote_stream(
                &pipeline,
                pad,
                stream,
                &taps_for_pads,
                &label,
                &counters_for_pads,
                &slots_for_pads,
            ) {
                tracing::warn!(
                    "SIP call: cannot play the far end's {}: {e}",
                    stream_name(stream.feed)
                );
            }
        });
        // Errors of the call's elements (a stream that cannot be negotiated or decoded) go to
        // the log: the call goes on with what still works.
        if let Some(bus) = pipeline.bus() {
            bus.set_sync_handler(|_, message| {
                if let gst::MessageView::Error(error) = message.view() {
                    tracing::warn!(
                        "SIP call media: {}: {}",
                        error
                            .src()
                            .map(|s| s.path_string().to_string())
                            .unwrap_or_default(),
                        error.error()
                    );
                }
                gst::BusSyncReply::Drop
            });
        }
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| MediaError::Start("SIP call's media".to_owned()))?;
        let rtcp_sessions = streams
            .iter()
            .enumerate()
            .map(|(session, stream)| (stream.feed, session as u32, transport::clock_rate(stream)))
            .collect();
        Ok(SipMedia {
            pipeline,
            dtmf,
            counters,
            protected,
            dtls,
            content,
            content_unsendable_told: AtomicBool::new(false),
            camera_limit: camera_limit.map(|(_, limit)| limit),
            rtpbin,
            sessions: rtcp_sessions,
            _subscriptions: subscriptions,
            _slots: slots,
        })
    }

    /// Frame counts so far.
    pub fn counters(&self) -> &SipCounters {
        &self.counters
    }

    /// The most the far end takes of the room's camera now, kbit/s: the lower of its SDP's
    /// bandwidth and its last TMMBR request; `None` when it set neither or takes no video.
    pub fn camera_limit_kbps(&self) -> Option<u32> {
        self.camera_limit.as_ref().and_then(|limit| limit.kbps())
    }

    /// Turns true when the first far-end camera frame is decoded (it goes to the display).
    pub fn first_video_frame(&self) -> tokio::sync::watch::Receiver<bool> {
        self.counters.first_video.subscribe()
    }

    /// What RTCP says of the stream of `feed`: the room's (sent) and the far end's
    /// (received); `None` when the call has no such stream.
    pub fn rtcp(&self, feed: Feed) -> Option<(RtcpFigures, RtcpFigures)> {
        let &(_, session, clock_rate) = self.sessions.iter().find(|(f, _, _)| *f == feed)?;
        Some(rtcp_stats::figures(&self.rtpbin, session, clock_rate))
    }

    /// Turns true when the first far-end content frame is decoded (it goes to the display).
    pub fn first_content_frame(&self) -> tokio::sync::watch::Receiver<bool> {
        self.counters.first_content.subscribe()
    }

    /// Lets the room's content out in the call's content stream (`on`, while the room holds
    /// the floor) or holds it back; opening asks the content encoder for a keyframe. Nothing
    /// happens when the call has no content stream or the room no content input.
    pub fn set_content_sending(&self, on: bool) {
        match &self.content {
            Some(sender) => sender.set_sending(on),
            None => {
                if !self.content_unsendable_told.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "SIP call: the room sends no content in this call (no content stream, \
                         or no content input to send in it)"
                    );
                }
            }
        }
    }

    /// Whether every stream runs through SRTP in both directions, keyed (a DTLS stream once
    /// its handshake is done and the far end's certificate checked).
    pub fn encrypted(&self) -> bool {
        self.protected && self.dtls.progress().verified()
    }

    /// The DTLS-SRTP handshakes of the call as they progress (none pending without DTLS); a
    /// failure (the far end's certificate is not the one its SDP names) ends the call.
    pub fn dtls_progress(&self) -> tokio::sync::watch::Receiver<DtlsProgress> {
        self.dtls.watch()
    }

    /// Queues `digits` (`0-9*#A-D`) as RFC 4733 events in the audio stream, each 200 ms with
    /// 100 ms between; false when the far end takes no events or too many wait already.
    pub fn send_dtmf(&self, digits: &str) -> bool {
        let Some(tones) = &self.dtmf else {
            return false;
        };
        let numbers: Vec<i32> = digits.bytes().filter_map(dtmf_number).collect();
        match tones.try_send(numbers) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("SIP call: DTMF tones dropped: {e}");
                false
            }
        }
    }
}

fn link_pads(src: &gst::Pad, sink: &gst::Pad) -> Result<(), MediaError> {
    src.link(sink).map(|_| ()).map_err(|e| {
        build_error(format!(
            "cannot link {} to {}: {e:?}",
            src.name(),
            sink.name()
        ))
    })
}

fn request_pad(element: &gst::Element, name: &str) -> Result<gst::Pad, MediaError> {
    element
        .request_pad_simple(name)
        .ok_or_else(|| build_error(format!("no {name} pad")))
}

fn static_pad(element: &gst::Element, name: &str) -> Result<gst::Pad, MediaError> {
    element
        .static_pad(name)
        .ok_or_else(|| build_error(format!("no {name} pad")))
}

/// What `add_sender` built for one stream.
struct Sender {
    subscription: TapSubscription,
    /// The RFC 4733 event source (audio, when the far end takes events).
    events: Option<gst::Element>,
    /// The floor's valve (content).
    content: Option<ContentSender>,
    /// The far end's limits on the camera (the main video stream).
    camera_limit: Option<Arc<CameraLimit>>,
}

/// appsrc (the room's encoded feed) → payloader → rtpbin; `transport` takes it from there.
/// Content passes a valve, closed at first, before its payloader.
fn add_sender(
    pipeline: &gst::Pipeline,
    rtpbin: &gst::Element,
    taps: &MediaTaps,
    session: u32,
    stream: &SipStream,
    counters: &Arc<SipCounters>,
) -> Result<Option<Sender>, MediaError> {
    let feed = stream.feed;
    if feed == Feed::Content && !taps.has_content() {
        tracing::info!("SIP call: the room has no content input; the content stream only receives");
        return Ok(None);
    }
    let what = stream_name(feed);
    let payloader = match (feed, stream.encoding.as_str()) {
        (Feed::Camera | Feed::Content, "H264") => {
            if taps.video_codec() != Some(crate::Codec::H264) {
                tracing::warn!("SIP call: the camera is not encoded as H.264; sending no {what}");
                return Ok(None);
            }
            let pay = make("rtph264pay")?;
            pay.set_property("config-interval", -1i32);
            pay.set_property_from_str("aggregate-mode", "zero-latency");
            pay
        }
        (Feed::Camera | Feed::Content, "VP8") => {
            if taps.video_codec() != Some(crate::Codec::Vp8) {
                tracing::warn!("SIP call: the camera is not encoded as VP8; sending no {what}");
                return Ok(None);
            }
            let pay = make("rtpvp8pay")?;
            pay.set_property_from_str("picture-id-mode", "15-bit");
            pay
        }
        (Feed::Microphone, "OPUS") => make("rtpopuspay")?,
        (Feed::Microphone, "G722") => make("rtpg722pay")?,
        (Feed::Microphone, "PCMU") => make("rtppcmupay")?,
        (Feed::Microphone, "PCMA") => make("rtppcmapay")?,
        (_, encoding) => {
            tracing::warn!("SIP call: cannot send {what} as {encoding}");
            return Ok(None);
        }
    };
    payloader.set_property("pt", u32::from(stream.payload_type));
    let appsrc = gst_app::AppSrc::builder()
        .is_live(true)
        .format(gst::Format::Time)
        .do_timestamp(true)
        .max_bytes(2_000_000)
        .leaky_type(gst_app::AppLeakyType::Downstream)
        .build();
    // G.711 and G.722: the microphone's tap carries Opus; decode it and encode mono G.711 at
    // 8 kHz or G.722 at 16 kHz (the room's voice is encoded once for every meeting; this is the
    // SIP call's own transcode).
    let transcode = match stream.encoding.as_str() {
        encoding @ ("PCMU" | "PCMA" | "G722") => {
            let filter = make("capsfilter")?;
            filter.set_property(
                "caps",
                gst::Caps::builder("audio/x-raw")
                    .field("rate", if encoding == "G722" { 16000i32 } else { 8000 })
                    .field("channels", 1i32)
                    .build(),
            );
            let encoder = make(match encoding {
                "PCMU" => "mulawenc",
                "PCMA" => "alawenc",
                _ => "avenc_g722",
            })?;
            vec![
                make("opusdec")?,
                make("audioconvert")?,
                make("audioresample")?,
                filter,
                encoder,
            ]
        }
        _ => Vec::new(),
    };
    // The floor's valve sits before the payloader, so that the payloader numbers only what
    // goes out (no sequence gap the far end would take for loss), and lets the caps and
    // segment through while closed, so that the stream is negotiated before the first floor
    // and a buffer can go out the moment the valve opens.
    let valve = match feed {
        Feed::Content => {
            let valve = make("valve")?;
            valve.set_property_from_str("drop-mode", "forward-sticky-events");
            valve.set_property("drop", true);
            Some(valve)
        }
        Feed::Camera | Feed::Microphone => None,
    };
    pipeline
        .add_many([appsrc.upcast_ref::<gst::Element>(), &payloader])
        .map_err(build_error)?;
    let mut chain: Vec<&gst::Element> = vec![appsrc.upcast_ref()];
    pipeline.add_many(&transcode).map_err(build_error)?;
    chain.extend(transcode.iter());
    if let Some(valve) = &valve {
        pipeline.add(valve).map_err(build_error)?;
        chain.push(valve);
    }
    chain.push(&payloader);
    gst::Element::link_many(chain).map_err(build_error)?;
    let rtp_in = request_pad(rtpbin, &format!("send_rtp_sink_{session}"))?;
    // DTMF: RFC 4733 events share the voice's SSRC through rtpdtmfmux, which drops the voice
    // while a tone is sent.
    let dtmf = match (feed, stream.telephone_event) {
        (Feed::Microphone, Some(pt)) => {
            let mux = make("rtpdtmfmux")?;
            let source = make("rtpdtmfsrc")?;
            source.set_property("pt", u32::from(pt));
            // Only a default: rtpdtmfmux hands the source the voice's caps, so the events are
            // stamped at the voice's clock (48 kHz with Opus) in the voice's timeline, which keeps
            // the one SSRC's timestamps consistent; baresip 1.0 does the same when it sends.
            source.set_property("clock-rate", 8000u32);
            pipeline.add_many([&mux, &source]).map_err(build_error)?;
            link_pads(
                &static_pad(&payloader, "src")?,
                &request_pad(&mux, "sink_%u")?,
            )?;
            link_pads(
                &static_pad(&source, "src")?,
                &request_pad(&mux, "priority_sink_%u")?,
            )?;
            link_pads(&static_pad(&mux, "src")?, &rtp_in)?;
            Some(source)
        }
        _ => {
            link_pads(&static_pad(&payloader, "src")?, &rtp_in)?;
            None
        }
    };
    let src = static_pad(appsrc.upcast_ref(), "src")?;
    let taps_for_keyframes = taps.clone();
    src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        if let Some(event) = info.event()
            && gstreamer_video::UpstreamForceKeyUnitEvent::parse(event).is_ok()
        {
            taps_for_keyframes.request_keyframe_of(feed);
        }
        gst::PadProbeReturn::Ok
    });
    let content = match &valve {
        Some(valve) => {
            let awaiting_keyframe = Arc::new(AtomicBool::new(false));
            let out = static_pad(valve, "src")?;
            hold_until_keyframe(&out, awaiting_keyframe.clone());
            // Counted after the valve and the hold: what goes out, not what the room encodes.
            count_frames(&out, counters, feed);
            Some(ContentSender {
                valve: valve.clone(),
                awaiting_keyframe,
                taps: taps.clone(),
            })
        }
        None => {
            count_frames(&src, counters, feed);
            None
        }
    };
    let subscription = taps.subscribe_feed(feed, &appsrc);
    let camera_limit = (feed == Feed::Camera)
        .then(|| CameraLimit::new(stream.max_kbps, subscription.bitrate_asker()));
    if feed == Feed::Camera {
        taps.request_keyframe_of(feed);
    }
    Ok(Some(Sender {
        subscription,
        events: dtmf,
        content,
        camera_limit,
    }))
}

/// Counts the buffers (encoded frames) through `pad` as `feed`'s sent frames.
fn count_frames(pad: &gst::Pad, counters: &Arc<SipCounters>, feed: Feed) {
    let counters = counters.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        counters.of(feed, true).add();
        gst::PadProbeReturn::Ok
    });
}

/// Drops the delta frames through `pad` while `awaiting` is set, until a keyframe passes (it
/// clears `awaiting`).
fn hold_until_keyframe(pad: &gst::Pad, awaiting: Arc<AtomicBool>) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if !awaiting.load(Ordering::Acquire) {
            return gst::PadProbeReturn::Ok;
        }
        match info.buffer() {
            Some(buffer) if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) => {
                gst::PadProbeReturn::Drop
            }
            _ => {
                awaiting.store(false, Ordering::Release);
                gst::PadProbeReturn::Ok
            }
        }
    });
}

/// The far end's RTP of `stream` arrived on rtpbin's `pad` (one per far-end SSRC): its decoded
/// frames go to the display or the speaker mix through an appsink named
/// `far_end_{stream}_{pad}` (`far_end_content_recv_rtp_src_1_…`).
fn on_remote_stream(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    stream: &SipStream,
    taps: &MediaTaps,
    label: &str,
    counters: &Arc<SipCounters>,
    slots: &Arc<std::sync::Mutex<Slots>>,
) -> Result<(), MediaError> {
    let kind = stream.feed.kind();
    let mut elements = match (kind, stream.encoding.as_str()) {
        (MediaKind::Video, "H264") => {
            let depay = make("rtph264depay")?;
            depay.set_property("request-keyframe", true);
            depay.set_property("wait-for-keyframe", true);
            vec![
                depay,
                make("h264parse")?,
                taps.h264_decoder()?,
                make("videoconvert")?,
            ]
        }
        (MediaKind::Video, "VP8") => {
            let depay = make("rtpvp8depay")?;
            depay.set_property("request-keyframe", true);
            depay.set_property("wait-for-keyframe", true);
            vec![depay, make("vp8dec")?, make("videoconvert")?]
        }
        (MediaKind::Audio, "OPUS") => vec![
            make("rtpopusdepay")?,
            make("opusdec")?,
            make("audioconvert")?,
            make("audioresample")?,
        ],
        (MediaKind::Audio, "G722") => vec![
            make("rtpg722depay")?,
            make("avdec_g722")?,
            make("audioconvert")?,
            make("audioresample")?,
        ],
        (MediaKind::Audio, "PCMU") => vec![
            make("rtppcmudepay")?,
            make("mulawdec")?,
            make("audioconvert")?,
            make("audioresample")?,
        ],
        (MediaKind::Audio, "PCMA") => vec![
            make("rtppcmadepay")?,
            make("alawdec")?,
            make("audioconvert")?,
            make("audioresample")?,
        ],
        (kind, encoding) => {
            return Err(build_error(format!("cannot play {kind:?} as {encoding}")));
        }
    };
    let appsink = gst_app::AppSink::builder()
        .name(format!(
            "far_end_{}_{}",
            stream_name(stream.feed),
            pad.name()
        ))
        .sync(false)
        .build();
    let Ok(mut slots) = slots.lock() else {
        return Err(build_error("slots poisoned"));
    };
    let feed = stream.feed;
    match kind {
        MediaKind::Video => {
            // The far end's content is a picture of its own beside its camera's; the display's
            // layout places both.
            let slot = Arc::new(match feed {
                Feed::Content => taps.add_remote_video(&format!("{label} (content)"))?,
                Feed::Camera | Feed::Microphone => taps.add_remote_video(label)?,
            });
            let shown = slot.clone();
            let counters = counters.clone();
            appsink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        counters.of(feed, false).add();
                        shown.push(&sample);
                        if let Some(first) = counters.first_frame(feed) {
                            first.send_if_modified(|first| !std::mem::replace(first, true));
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            slots.video.push(slot);
        }
        MediaKind::Audio => {
            let filter = make("capsfilter")?;
            filter.set_property("caps", crate::remote_audio_caps());
            elements.push(filter);
            let slot = Arc::new(taps.add_remote_audio()?);
            let played = slot.clone();
            let counters = counters.clone();
            appsink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        counters.audio_received.add();
                        played.push(&sample);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            slots.audio.push(slot);
        }
    }
    elements.push(appsink.upcast());
    pipeline.add_many(&elements).map_err(build_error)?;
    gst::Element::link_many(&elements).map_err(build_error)?;
    for element in elements.iter().rev() {
        let _ = element.sync_state_with_parent();
    }
    count_rtp_bytes(pad, counters, feed, false);
    let depayloader = static_pad(&elements[0], "sink")?;
    link_pads(pad, &depayloader)?;
    if kind == MediaKind::Video {
        // The far end's first keyframe may have gone by before this stream was set up (it
        // starts sending with its answer): ask for one now (rtpbin sends it as RTCP PLI or FIR)
        // rather than wait for its next periodic one.
        let event = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
            .all_headers(true)
            .build();
        if !depayloader.push_event(event) {
            tracing::debug!("SIP call: the far end's keyframe request found no taker");
        }
    }
    Ok(())
}
