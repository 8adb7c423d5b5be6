//! One WebRTC peer: a `webrtcbin` in its own pipeline, fed from the room's encoded media and
//! feeding far-end slots. See the module documentation in `mod.rs` for the shape of the API.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_webrtc as gst_webrtc;
use gstreamer_webrtc::WebRTCRTPTransceiverDirection as TransceiverDirection;
use tokio::sync::mpsc;

use super::frames::{FrameCounters, Frames};
use super::opus_fec::VoiceRepair;
use super::relay::{Relay, RelaySubscription};
use super::sdp::{self, Format, RemoteMedia};
use super::stats::{self, Counters, PeerStats};
use super::window_share::{ContentLine, WindowShare};
use super::{PeerError, PeerEvent, PeerOptions};
use crate::{Codec, Feed, LossReporter, MediaKind, MediaTaps, RemoteVideoSlot, TapSubscription};
use roomd_base::sync::lock;

/// How long ICE gathering may take (host candidates take milliseconds; a STUN/TURN server that
/// does not answer is given up by libnice well before this).
const GATHERING_TIMEOUT: Duration = Duration::from_secs(10);
/// The jitter buffer's depth: conferencing favours latency over smoothness.
const JITTER_LATENCY_MS: u32 = 100;
/// Payload types the room uses in its own offers (any dynamic numbers would do).
const OFFER_PT_VIDEO: u32 = 96;
const OFFER_PT_AUDIO: u32 = 111;
/// Voice activity: above this level a remote is talking; below the lower one for
/// [`SILENCE_HOLD`] they stopped (the gap avoids flapping between words).
const TALKING_ON_DB: f64 = -45.0;
const TALKING_OFF_DB: f64 = -55.0;
const SILENCE_HOLD: Duration = Duration::from_millis(800);
/// The far end's voice arrives while its level was read this recently (every 200 ms).
const VOICE_ARRIVING_WITHIN: Duration = Duration::from_secs(1);
/// How often the room sends RTCP reports at least (see `Peer::report_promptly`).
const RTCP_INTERVAL: Duration = Duration::from_secs(1);
/// RTP sessions looked for in webrtcbin's rtpbin: one per media line when not bundled, and
/// the room negotiates at most a few media lines.
const MAX_SESSIONS: u32 = 8;
/// The label of the data channel an end-to-end peer opens for key messages.
pub const DATA_CHANNEL_LABEL: &str = "roomd-e2ee";
/// Largest data channel message taken or sent, in bytes (a key message with a certificate chain
/// is a few kilobytes).
pub const MAX_DATA_MESSAGE_BYTES: usize = 64 * 1024;
/// Data channel messages taken per second at most; more are dropped (a flooding far end).
const MAX_DATA_MESSAGES_PER_SECOND: u32 = 100;
/// Media lines a remote description may have: the room's own audio and video, a relay slot
/// pair per other guest of a hosted meeting ([`super::MAX_RELAY_SLOTS`]), and content.
const MAX_MEDIA_LINES: usize = 2 * (1 + super::MAX_RELAY_SLOTS) + 2;

/// Where the offer/answer exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signalling {
    New,
    OfferSent,
    Stable,
}

impl Signalling {
    fn name(self) -> &'static str {
        match self {
            Signalling::New => "no offer or answer yet",
            Signalling::OfferSent => "an offer was sent and awaits its answer",
            Signalling::Stable => "the session is already negotiated",
        }
    }
}

/// A WebRTC peer. Dropping it (or [`close`](Peer::close)) stops its pipeline and releases its
/// subscriptions and display slots.
pub struct Peer {
    pipeline: gst::Pipeline,
    webrtcbin: gst::Element,
    shared: Arc<Shared>,
    options: PeerOptions,
    signalling: Mutex<Signalling>,
    events: Mutex<Option<mpsc::UnboundedReceiver<PeerEvent>>>,
}

/// What the pipeline's callbacks share with the peer (they hold it weakly).
struct Shared {
    taps: MediaTaps,
    events: mpsc::UnboundedSender<PeerEvent>,
    label: Mutex<String>,
    /// The identity line under the name on the remote's pictures (see [`Peer::set_identity`]).
    identity: Mutex<String>,
    receive: bool,
    subscriptions: Mutex<Vec<TapSubscription>>,
    video_slots: Mutex<Vec<Arc<RemoteVideoSlot>>>,
    audio_slots: Mutex<Vec<Arc<crate::RemoteAudioSlot>>>,
    counters: Mutex<Counters>,
    talking: Mutex<Talking>,
    connected: AtomicBool,
    /// The far end's voice decoders (one per received audio stream) and their repair counts.
    voice_repairs: Mutex<Vec<VoiceRepair>>,
    /// The SSRC of the room's voice sent here, and where the far end's reported loss of it goes.
    voice_loss: Mutex<Option<(u32, LossReporter)>>,
    /// End-to-end encryption of frames (`PeerOptions::end_to_end`).
    end_to_end: bool,
    frames: Frames,
    /// The data channel for key messages, once there is one.
    data_channel: Mutex<Option<gst_webrtc::WebRTCDataChannel>>,
    /// Messages taken in the current second, and when it began.
    data_budget: Mutex<(Instant, u32)>,
    /// What the far end sends, offered to other peers (`PeerOptions::relay`).
    relay: Option<Relay>,
    /// The relay slot lines' senders (`PeerOptions::relay_slots`).
    slots: Mutex<Vec<SlotSender>>,
    /// The far end's shared window, on its second video line (`PeerOptions::relay`).
    window: Option<Arc<WindowShare>>,
    /// The content line's sender (`PeerOptions::relay_slots`).
    content_line: Mutex<Option<ContentLine>>,
}

/// Where a sending media line's frames come from.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// One of the room's own encoded feeds.
    Feed(Feed),
    /// The relay slot with this number (from 0): another far end's frames, as
    /// [`Peer::show_in_slot`] sets.
    Slot(usize),
}

/// The sender of one relay slot line: shows one relay at a time.
struct SlotSender {
    index: usize,
    kind: MediaKind,
    appsrc: gst_app::AppSrc,
    /// The frames it can packetise (`video/x-h264`, `video/x-vp8`, `audio/x-opus`).
    media_type: &'static str,
    /// The relay shown, shared with the probe that passes keyframe requests on to it.
    shown: Arc<Mutex<Option<(Relay, RelaySubscription)>>>,
}

#[derive(Default)]
struct Talking {
    now: bool,
    quiet_since: Option<Instant>,
    /// The last level reading: a voice that stops arriving (a muted track) posts none.
    heard: Option<Instant>,
}

impl Shared {
    fn emit(&self, event: PeerEvent) {
        // Nobody listening is fine: events are informative.
        let _ = self.events.send(event);
    }
}

impl Peer {
    /// A new peer; nothing is sent or received until an offer/answer exchange.
    pub fn new(taps: &MediaTaps, options: PeerOptions) -> Result<Peer, PeerError> {
        check_ice_servers(&options)?;
        let pipeline = gst::Pipeline::new();
        let webrtcbin = make("webrtcbin")?;
        webrtcbin.set_property_from_str("bundle-policy", "max-bundle");
        webrtcbin.set_property("latency", JITTER_LATENCY_MS);
        if let Some(stun) = &options.ice.stun {
            webrtcbin.set_property("stun-server", stun);
        }
        if let Some(turn) = &options.ice.turn {
            webrtcbin.set_property("turn-server", turn);
        }
        without_upnp(&webrtcbin);
        pipeline
            .add(&webrtcbin)
            .map_err(|e| PeerError::Build(e.to_string()))?;
        let (sender, receiver) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            taps: taps.clone(),
            events: sender,
            label: Mutex::new(options.label.clone()),
            identity: Mutex::new(String::new()),
            receive: options.receive,
            subscriptions: Mutex::new(Vec::new()),
            video_slots: Mutex::new(Vec::new()),
            audio_slots: Mutex::new(Vec::new()),
            counters: Mutex::new(Counters::default()),
            talking: Mutex::new(Talking::default()),
            connected: AtomicBool::new(false),
            voice_repairs: Mutex::new(Vec::new()),
            voice_loss: Mutex::new(None),
            end_to_end: options.end_to_end,
            frames: Frames::default(),
            data_channel: Mutex::new(None),
            data_budget: Mutex::new((Instant::now(), 0)),
            relay: options.relay.then(Relay::new),
            slots: Mutex::new(Vec::new()),
            window: options.relay.then(|| Arc::new(WindowShare::new())),
            content_line: Mutex::new(None),
        });
        // The far end opens the channel: an end-to-end peer's keys, a hosted meeting guest's
        // participant list (for its relay slots).
        if options.end_to_end || options.relay_slots {
            let weak = Arc::downgrade(&shared);
            webrtcbin.connect("on-data-channel", false, move |values| {
                if let (Some(shared), Some(channel)) = (
                    weak.upgrade(),
                    values
                        .get(1)
                        .and_then(|v| v.get::<gst_webrtc::WebRTCDataChannel>().ok()),
                ) {
                    adopt_channel(&shared, channel);
                }
                None
            });
        }
        watch_connection(&webrtcbin, Arc::downgrade(&shared));
        watch_bus(&pipeline, Arc::downgrade(&shared));
        let weak = Arc::downgrade(&shared);
        let bin = pipeline.downgrade();
        webrtcbin.connect_pad_added(move |_, pad| {
            if pad.direction() != gst::PadDirection::Src {
                return;
            }
            if let (Some(shared), Some(pipeline)) = (weak.upgrade(), bin.upgrade())
                && let Err(e) = on_remote_stream(&shared, &pipeline, pad)
            {
                shared.emit(PeerEvent::Failed(e.to_string()));
            }
        });
        Ok(Peer {
            pipeline,
            webrtcbin,
            shared,
            options,
            signalling: Mutex::new(Signalling::New),
            events: Mutex::new(Some(receiver)),
        })
    }

    /// The peer's events; `None` after the first call.
    pub fn take_events(&self) -> Option<mpsc::UnboundedReceiver<PeerEvent>> {
        lock(&self.events).take()
    }

    /// Encrypts every sent frame with this key from now on (end-to-end peers).
    pub fn set_sender_key(
        &self,
        key_id: u64,
        secret: &roomd_e2ee::KeySecret,
    ) -> Result<(), PeerError> {
        self.shared.frames.set_sender_key(key_id, secret)?;
        self.keyframe_for_new_frames();
        Ok(())
    }

    /// Sends nothing (`true`: every frame is dropped before the payloader) or sends again under
    /// the current sender key (`false`), e.g. while a policy wants keys with everybody first.
    pub fn hold_sending(&self, held: bool) -> Result<(), PeerError> {
        self.shared.frames.hold(held)?;
        if !held {
            self.keyframe_for_new_frames();
        }
        Ok(())
    }

    /// Frames under a new key (or sent again after a hold) open only from now on, and a
    /// picture decodes only from a keyframe: the encoder makes one at once instead of the
    /// receivers waiting up to a keyframe interval (seconds) with nothing to show.
    fn keyframe_for_new_frames(&self) {
        if self.options.send_video {
            self.shared
                .taps
                .request_keyframe_of(self.options.video_feed);
        }
    }

    /// Opens received frames under this key from now on (end-to-end peers).
    pub fn insert_receiver_key(
        &self,
        key_id: u64,
        secret: &roomd_e2ee::KeySecret,
    ) -> Result<(), PeerError> {
        Ok(self.shared.frames.insert_receiver_key(key_id, secret)?)
    }

    /// Drops received frames under this key from now on.
    pub fn remove_receiver_key(&self, key_id: u64) {
        self.shared.frames.remove_receiver_key(key_id);
    }

    /// What the frame elements protected, opened and dropped so far.
    pub fn frame_counters(&self) -> FrameCounters {
        self.shared.frames.counters()
    }

    /// What the far end sends, for other peers' relay slots (`PeerOptions::relay`).
    pub fn relay(&self) -> Option<&Relay> {
        self.shared.relay.as_ref()
    }

    /// How many relay slots the far end's offer has (pairs of audio and video lines after the
    /// first of each; `PeerOptions::relay_slots`).
    pub fn relay_slot_count(&self) -> usize {
        lock(&self.shared.slots)
            .iter()
            .map(|slot| slot.index + 1)
            .max()
            .unwrap_or(0)
    }

    /// Sends `relay`'s audio and video on slot `index` from now on (`None`: nothing). Frames the
    /// slot's negotiated codec cannot carry are not sent.
    pub fn show_in_slot(&self, index: usize, relay: Option<&Relay>) {
        for slot in lock(&self.shared.slots)
            .iter()
            .filter(|slot| slot.index == index)
        {
            let mut shown = lock(&slot.shown);
            if shown.as_ref().map(|(r, _)| r.id()) == relay.map(Relay::id) {
                continue;
            }
            // The old subscription ends before the new one starts: one source at a time.
            *shown = None;
            if let Some(relay) = relay {
                let subscription = relay.subscribe(slot.kind, &slot.appsrc, slot.media_type);
                *shown = Some((relay.clone(), subscription));
            }
        }
    }

    /// The far end's shared window, for other peers' content lines (`PeerOptions::relay`).
    pub fn window_relay(&self) -> Option<&Relay> {
        self.shared.window.as_ref().map(|w| &w.relay)
    }

    /// Lets the far end share a window (shown on the room display and offered to others), or
    /// not: what it sends on its window line is then dropped on arrival. A share that stopped
    /// arriving leaves the display too. Call it again as time passes (each second).
    pub fn allow_window(&self, allowed: bool) {
        if let Some(window) = &self.shared.window {
            window.allow(allowed);
        }
    }

    /// The far end shares a window now: allowed, and its frames arrive.
    pub fn window_arriving(&self) -> bool {
        self.shared.window.as_ref().is_some_and(|w| w.arriving())
    }

    /// Frames of the far end's window that reached the room display (0 when none is shown).
    pub fn window_frames_shown(&self) -> u64 {
        self.shared.window.as_ref().map_or(0, |w| w.frames_shown())
    }

    /// Sends `window` (another far end's shared window) on the content line from now on, or
    /// the room's own content (`None`); `PeerOptions::relay_slots` peers.
    pub fn show_window(&self, window: Option<&Relay>) {
        if let Some(line) = lock(&self.shared.content_line).as_mut() {
            line.show(&self.shared.taps, window);
        }
    }

    /// Sends `message` on the data channel (text: key messages are JSON).
    pub fn send_data(&self, message: &str) -> Result<(), PeerError> {
        if message.len() > MAX_DATA_MESSAGE_BYTES {
            return Err(PeerError::DataTooLarge(message.len()));
        }
        let channel = lock(&self.shared.data_channel)
            .clone()
            .filter(|c| c.ready_state() == gst_webrtc::WebRTCDataChannelState::Open)
            .ok_or(PeerError::DataChannelNotOpen)?;
        channel
            .send_string_full(Some(message))
            .map_err(PeerError::DataChannel)
    }

    /// Opens our data channel for key messages (before the offer, so that it has its line).
    fn open_data_channel(&self) -> Result<(), PeerError> {
        let init = gst::Structure::builder("config")
            .field("ordered", true)
            .build();
        let channel = self
            .webrtcbin
            .emit_by_name::<Option<gst_webrtc::WebRTCDataChannel>>(
                "create-data-channel",
                &[&DATA_CHANNEL_LABEL, &init],
            )
            .ok_or_else(|| PeerError::Build("webrtcbin made no data channel".into()))?;
        adopt_channel(&self.shared, channel);
        Ok(())
    }

    /// Renames the remote party (their picture's label follows).
    pub fn set_label(&self, label: &str) {
        *lock(&self.shared.label) = label.to_owned();
        for slot in lock(&self.shared.video_slots).iter() {
            slot.set_label(label);
        }
    }

    /// Sets the line under the remote party's name on their pictures: what is known of their
    /// end-to-end encryption and identity (empty: nothing).
    pub fn set_identity(&self, identity: &str) {
        *lock(&self.shared.identity) = identity.to_owned();
        for slot in lock(&self.shared.video_slots).iter() {
            slot.set_identity(identity);
        }
    }

    /// A complete SDP offer (all ICE candidates included) for what the options ask.
    pub async fn create_offer(&self) -> Result<String, PeerError> {
        self.expect_state("create an offer", Signalling::New)?;
        let video_codec = self.shared.taps.video_codec();
        if self.options.send_video {
            let codec = video_codec.ok_or_else(|| {
                PeerError::NoCommonCodec("video: the room has no camera encoder".into())
            })?;
            if self.options.video_feed == Feed::Content && !self.shared.taps.has_content() {
                return Err(PeerError::NoCommonCodec(
                    "video: the room has no content input to send".into(),
                ));
            }
            let caps = offer_caps(MediaKind::Video, Some(codec));
            self.add_sender(
                MediaKind::Video,
                &caps,
                self.options.receive,
                Source::Feed(self.options.video_feed),
            )?;
        } else if self.options.receive {
            self.add_receiver(&receive_offer_caps(MediaKind::Video))?;
        }
        if self.options.send_audio {
            let caps = offer_caps(MediaKind::Audio, None);
            self.add_sender(
                MediaKind::Audio,
                &caps,
                self.options.receive,
                Source::Feed(Feed::Microphone),
            )?;
        } else if self.options.receive {
            self.add_receiver(&receive_offer_caps(MediaKind::Audio))?;
        }
        self.start()?;
        if self.options.end_to_end {
            // webrtcbin makes data channels only once it runs.
            self.open_data_channel()?;
        }
        let offer = self
            .promise("create an offer", |promise| {
                self.webrtcbin
                    .emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, promise]);
            })
            .await?;
        let offer = offer
            .ok_or_else(|| negotiation("create an offer", "empty reply"))?
            .value("offer")
            .ok()
            .and_then(|v| v.get::<gst_webrtc::WebRTCSessionDescription>().ok())
            .ok_or_else(|| negotiation("create an offer", "no offer in the reply"))?;
        self.set_description("set-local-description", &offer)
            .await?;
        self.watch_voice_loss();
        self.report_promptly();
        let sdp = self.gathered_local_description().await?;
        *lock(&self.signalling) = Signalling::OfferSent;
        Ok(sdp)
    }

    /// Applies the remote's answer to our offer.
    pub async fn accept_answer(&self, answer_sdp: &str) -> Result<(), PeerError> {
        self.expect_state("accept an answer", Signalling::OfferSent)?;
        let message = sdp::parse(answer_sdp)?;
        sdp::media_lines(&message, self.options.require_encryption)?;
        let answer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Answer, message);
        self.set_description("set-remote-description", &answer)
            .await?;
        *lock(&self.signalling) = Signalling::Stable;
        Ok(())
    }

    /// A complete SDP answer to the remote's offer: the room sends what the offer lets it
    /// (with the offer's payload types) and receives what the offer sends.
    pub async fn answer_offer(&self, offer_sdp: &str) -> Result<String, PeerError> {
        self.expect_state("answer an offer", Signalling::New)?;
        let message = sdp::parse(offer_sdp)?;
        let lines = sdp::media_lines(&message, self.options.require_encryption)?;
        if lines.len() > MAX_MEDIA_LINES {
            return Err(PeerError::NoUsableMedia(format!(
                "it has {} media lines; at most {MAX_MEDIA_LINES} are taken",
                lines.len()
            )));
        }
        let mut used = 0;
        let (mut audio_lines, mut video_lines) = (0, 0);
        for line in &lines {
            let of_kind = match line.kind {
                MediaKind::Audio => &mut audio_lines,
                MediaKind::Video => &mut video_lines,
            };
            if self.plan_line(line, *of_kind)? {
                used += 1;
            }
            *of_kind += 1;
        }
        if used == 0 {
            return Err(PeerError::NoUsableMedia(
                "nothing in it that the room may send or receive".into(),
            ));
        }
        self.start()?;
        tracing::trace!("answer: pipeline started");
        let offer =
            gst_webrtc::WebRTCSessionDescription::new(gst_webrtc::WebRTCSDPType::Offer, message);
        self.set_description("set-remote-description", &offer)
            .await?;
        tracing::trace!("answer: remote description set");
        let answer = self
            .promise("create an answer", |promise| {
                self.webrtcbin
                    .emit_by_name::<()>("create-answer", &[&None::<gst::Structure>, promise]);
            })
            .await?;
        let answer = answer
            .ok_or_else(|| negotiation("create an answer", "empty reply"))?
            .value("answer")
            .ok()
            .and_then(|v| v.get::<gst_webrtc::WebRTCSessionDescription>().ok())
            .ok_or_else(|| negotiation("create an answer", "no answer in the reply"))?;
        let mut answer_sdp = answer.sdp().to_owned();
        sdp::answer_as_dtls_server(offer.sdp(), &mut answer_sdp);
        let answer = gst_webrtc::WebRTCSessionDescription::new(
            gst_webrtc::WebRTCSDPType::Answer,
            answer_sdp,
        );
        self.set_description("set-local-description", &answer)
            .await?;
        tracing::trace!("answer: local description set");
        if self.options.end_to_end && sdp::has_data_channel(offer.sdp()) {
            // The answerer opens a channel too: an SFU (Janus) relays its publishers' messages
            // to a subscriber only once the subscriber has opened one.
            self.open_data_channel()?;
        }
        self.watch_voice_loss();
        self.report_promptly();
        let sdp = self.gathered_local_description().await?;
        *lock(&self.signalling) = Signalling::Stable;
        Ok(sdp)
    }

    /// Per-stream statistics, and the connection's security and state.
    pub async fn stats(&self) -> Result<PeerStats, PeerError> {
        voice_gone(&self.shared);
        let report = self
            .promise("get statistics", |promise| {
                self.webrtcbin
                    .emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, promise]);
            })
            .await?
            .ok_or_else(|| negotiation("get statistics", "empty reply"))?;
        let connection = self
            .webrtcbin
            .property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
        let ice = self
            .webrtcbin
            .property::<gst_webrtc::WebRTCICEConnectionState>("ice-connection-state");
        let mut counters = lock(&self.shared.counters);
        let mut stats = stats::read(
            &report,
            &mut counters,
            connection,
            ice,
            self.dtls_state(),
            &stats::Protection::of(&self.webrtcbin),
            stats::receiving_kinds(&self.webrtcbin),
        );
        self.add_voice_protection(&mut stats);
        stats.voice_arriving = lock(&self.shared.talking)
            .heard
            .is_some_and(|at| at.elapsed() < VOICE_ARRIVING_WITHIN);
        Ok(stats)
    }

    /// The Opus protection figures: how the far end's lost voice frames were repaired, and the
    /// loss the room's encoder expects for the voice it sends.
    fn add_voice_protection(&self, stats: &mut PeerStats) {
        let repairs = lock(&self.shared.voice_repairs)
            .iter()
            .map(VoiceRepair::repairs)
            .fold((0, 0), |(f, c), r| (f + r.fec_recovered, c + r.concealed));
        let expected = self.shared.taps.expected_audio_loss().unwrap_or(0);
        for stream in stats.streams.iter_mut().filter(|s| s.kind == "audio") {
            if stream.direction == "receive" {
                (stream.fec_recovered, stream.concealed) = repairs;
            } else {
                stream.expected_loss_percent = expected;
            }
        }
    }

    /// The RTP sessions of webrtcbin's rtpbin (with max-bundle, session 0 carries every
    /// stream; without bundling there is one per media line).
    fn rtp_sessions(&self) -> Vec<gst::glib::Object> {
        let Some(rtpbin) = self
            .webrtcbin
            .downcast_ref::<gst::Bin>()
            .and_then(|bin| bin.by_name("rtpbin"))
        else {
            tracing::warn!("webrtcbin has no rtpbin: RTCP reports are not read or hastened");
            return Vec::new();
        };
        (0u32..MAX_SESSIONS)
            .filter_map(|id| {
                rtpbin.emit_by_name::<Option<gst::glib::Object>>("get-internal-session", &[&id])
            })
            .collect()
    }

    /// The far end's senders learn the loss on their way to the room within about a second
    /// (rtpsession's default is one report in 5 s or more; ours are a hundred bytes).
    fn report_promptly(&self) {
        for session in self.rtp_sessions() {
            session.set_property("rtcp-min-interval", RTCP_INTERVAL.as_nanos() as u64);
        }
    }

    /// Feeds the loss the far end reports for the room's voice (its RTCP sender and receiver
    /// reports, read as they arrive) to the room's Opus encoder.
    fn watch_voice_loss(&self) {
        let Some((ssrc, reporter)) = lock(&self.shared.voice_loss).clone() else {
            return;
        };
        let sessions = self.rtp_sessions();
        if sessions.is_empty() {
            tracing::warn!("no RTP session to read the far end's reports from");
        }
        for session in sessions {
            let reporter = reporter.clone();
            session.connect("on-receiving-rtcp", false, move |values| {
                if let Some(buffer) = values.get(1).and_then(|v| v.get::<gst::Buffer>().ok())
                    && let Ok(map) = buffer.map_readable()
                    && let Some(percent) = super::rtcp_loss::reported_loss(&map, ssrc)
                {
                    reporter.report(percent);
                }
                None
            });
        }
    }

    /// The DTLS state of the transport media flows on (with bundling, one transceiver's
    /// transport carries all; the others may have none or an unused one).
    fn dtls_state(&self) -> Option<gst_webrtc::WebRTCDTLSTransportState> {
        use gst_webrtc::WebRTCDTLSTransportState as State;
        let mut best = None;
        for index in 0.. {
            let Some(transceiver) = self
                .webrtcbin
                .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>(
                    "get-transceiver",
                    &[&index],
                )
            else {
                break;
            };
            let state = transceiver
                .property::<Option<gst_webrtc::WebRTCRTPReceiver>>("receiver")
                .and_then(|r| r.property::<Option<gst_webrtc::WebRTCDTLSTransport>>("transport"))
                .map(|t| t.property::<State>("state"));
            match state {
                Some(State::Connected) => return state,
                Some(_) if best.is_none() => best = state,
                _ => {}
            }
        }
        best
    }

    /// Stops the peer now (the same happens on drop).
    pub fn close(self) {}

    // --- Negotiation helpers ------------------------------------------------------------

    fn expect_state(&self, action: &'static str, wanted: Signalling) -> Result<(), PeerError> {
        let now = *lock(&self.signalling);
        if now == wanted {
            Ok(())
        } else {
            Err(PeerError::WrongState {
                action,
                state: now.name(),
            })
        }
    }

    /// Prepares the transceiver for one offered media line, the `earlier`-th of its kind (from
    /// 0); false when the room neither sends nor receives on it.
    fn plan_line(&self, line: &RemoteMedia, earlier: usize) -> Result<bool, PeerError> {
        // A guest's second video line is their shared window; nothing more is taken.
        if let Some(window) = &self.shared.window
            && line.kind == MediaKind::Video
            && earlier > 0
        {
            if earlier > 1 || !line.direction.remote_sends() {
                return Ok(false);
            }
            window.set_line(line.index);
        }
        // A guest's lines after its first audio and video are relay slots (other guests), and
        // the video line after them the room's shared content.
        let source = match earlier.checked_sub(1) {
            Some(slot) if self.options.relay_slots => {
                if !line.direction.remote_receives() {
                    return Ok(false);
                }
                match slot.cmp(&super::MAX_RELAY_SLOTS) {
                    std::cmp::Ordering::Less => Source::Slot(slot),
                    std::cmp::Ordering::Equal if line.kind == MediaKind::Video => {
                        Source::Feed(Feed::Content)
                    }
                    _ => return Ok(false),
                }
            }
            _ => Source::Feed(match line.kind {
                MediaKind::Video => self.options.video_feed,
                MediaKind::Audio => Feed::Microphone,
            }),
        };
        let wants_to_send = match (source, line.kind) {
            (Source::Slot(_) | Source::Feed(Feed::Content), _) => true,
            (Source::Feed(_), MediaKind::Video) => self.options.send_video,
            (Source::Feed(_), MediaKind::Audio) => self.options.send_audio,
        };
        let send = wants_to_send && line.direction.remote_receives();
        let receive = self.options.receive
            && line.direction.remote_sends()
            && matches!(source, Source::Feed(_));
        let kind = sdp::kind_name(line.kind);
        if send {
            let format = sdp::sendable(line, self.shared.taps.video_codec());
            match format {
                Some(format) => {
                    self.add_sender(line.kind, &with_feedback(&format), receive, source)?;
                    return Ok(true);
                }
                None if !receive => {
                    return Err(PeerError::NoCommonCodec(format!(
                        "{kind} on media line {}: the offer has none the room encodes",
                        line.index
                    )));
                }
                None => {}
            }
        }
        if receive {
            let mut formats = sdp::receivable(line);
            if self.shared.relay.is_some()
                && let Some(format) = sdp::sendable(line, self.shared.taps.video_codec())
            {
                // What is relayed is sent on as it came: in the codec the room sends, which
                // every other guest's slots take. A far end without it is still shown here.
                formats = vec![format];
            }
            if formats.is_empty() {
                return Err(PeerError::NoCommonCodec(format!(
                    "{kind} on media line {}: the offer has none the room decodes",
                    line.index
                )));
            }
            let mut caps = gst::Caps::new_empty();
            for format in &formats {
                caps.get_mut()
                    .map(|c| c.append(with_feedback(format)))
                    .ok_or_else(|| PeerError::Build("caps in use".into()))?;
            }
            self.add_receiver(&caps)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// appsrc (the room's encoded `kind`, or a relay slot's) → payloader → webrtcbin, with
    /// `caps` as the transceiver's codec (payload type included).
    fn add_sender(
        &self,
        kind: MediaKind,
        caps: &gst::Caps,
        receive: bool,
        source: Source,
    ) -> Result<(), PeerError> {
        let structure = caps
            .structure(0)
            .ok_or_else(|| PeerError::Build("empty codec caps".into()))?;
        let pt = structure
            .get::<i32>("payload")
            .map_err(|_| PeerError::Build("codec caps without payload type".into()))?;
        let encoding = structure
            .get::<&str>("encoding-name")
            .map_err(|_| PeerError::Build("codec caps without encoding name".into()))?
            .to_ascii_uppercase();
        let appsrc = gst_app::AppSrc::builder()
            .is_live(true)
            .format(gst::Format::Time)
            // The room's feeds come unstamped; a relay stamps each frame on this pipeline's
            // running time itself.
            .do_timestamp(matches!(source, Source::Feed(_)))
            // A stalled network drops the oldest frames rather than growing without bound.
            .max_bytes(2_000_000)
            .leaky_type(gst_app::AppLeakyType::Downstream)
            .build();
        let payloader = match encoding.as_str() {
            "H264" => {
                let pay = make("rtph264pay")?;
                pay.set_property("config-interval", -1i32);
                pay.set_property_from_str("aggregate-mode", "zero-latency");
                pay
            }
            // rtpvp8pay parses the frame and fails on an encrypted one: roomd's own payloader
            // writes the same descriptor (15-bit picture ids) without looking inside.
            "VP8" if self.options.end_to_end => {
                gst::glib::Object::new::<roomd_e2ee::element::Vp8Pay>().upcast()
            }
            "VP8" => {
                let pay = make("rtpvp8pay")?;
                pay.set_property_from_str("picture-id-mode", "15-bit");
                pay
            }
            "OPUS" => {
                let pay = make("rtpopuspay")?;
                // The encoder's DTX frames (1-2 bytes of silence) are not sent at all.
                pay.set_property("dtx", true);
                pay
            }
            other => return Err(PeerError::NoCommonCodec(format!("cannot send {other}"))),
        };
        payloader.set_property("pt", pt as u32);
        // webrtcbin 1.22 writes `a=ssrc` only from caps that name the SSRC; without it, an SFU
        // such as Janus cannot tell our video from our audio in the bundle until the first
        // packet, and drops it. Choose it here so that the SDP and the packets agree.
        let ssrc = random_ssrc();
        payloader.set_property("ssrc", ssrc);
        let mut caps = caps.clone();
        if let Some(s) = caps.make_mut().structure_mut(0) {
            s.set("ssrc", ssrc);
        }
        let caps = &caps;
        let filter = make("capsfilter")?;
        let mut filter_caps = rtp_filter_caps(structure);
        if let Some(s) = filter_caps.make_mut().structure_mut(0) {
            s.set("ssrc", ssrc);
        }
        filter.set_property("caps", filter_caps);
        let mut elements: Vec<gst::Element> = vec![appsrc.clone().upcast()];
        if self.options.end_to_end {
            // Between the encoder (behind the appsrc) and the payloader: whole frames.
            elements.push(self.shared.frames.encrypter(kind)?.upcast());
        }
        elements.extend([payloader.clone(), filter.clone()]);
        self.pipeline
            .add_many(&elements)
            .map_err(|e| PeerError::Build(e.to_string()))?;
        gst::Element::link_many(&elements).map_err(|e| PeerError::Build(e.to_string()))?;
        let sink = self
            .webrtcbin
            .request_pad_simple("sink_%u")
            .ok_or_else(|| PeerError::Build("webrtcbin gives no sink pad".into()))?;
        let src = filter
            .static_pad("src")
            .ok_or_else(|| PeerError::Build("capsfilter without src pad".into()))?;
        src.link(&sink)
            .map_err(|e| PeerError::Build(format!("cannot link to webrtcbin: {e:?}")))?;
        let transceiver = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
        transceiver.set_property(
            "direction",
            if receive {
                TransceiverDirection::Sendrecv
            } else {
                TransceiverDirection::Sendonly
            },
        );
        transceiver.set_property("codec-preferences", caps);

        // A receiver's PLI or FIR arrives as an upstream force-key-unit event: the room's
        // encoder of the feed sent here makes the keyframe, or the relayed far end does.
        let shown = Arc::new(Mutex::new(None::<(Relay, RelaySubscription)>));
        if let Some(src) = appsrc.static_pad("src") {
            let taps = self.shared.taps.clone();
            let relayed = Arc::downgrade(&shown);
            src.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                if let Some(event) = info.event()
                    && gstreamer_video::UpstreamForceKeyUnitEvent::parse(event).is_ok()
                {
                    // A relayed far end (a slot, or a window on the content line) makes the
                    // keyframe; else the room's encoder of the feed.
                    let relay = relayed
                        .upgrade()
                        .and_then(|shown| lock(&shown).as_ref().map(|(r, _)| r.clone()));
                    match (relay, source) {
                        (Some(relay), _) => relay.request_keyframe(),
                        (None, Source::Feed(feed)) => {
                            taps.request_keyframe_of(feed);
                        }
                        (None, Source::Slot(_)) => {}
                    }
                }
                gst::PadProbeReturn::Ok
            });
            let weak = Arc::downgrade(&self.shared);
            src.add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
                if let Some(shared) = weak.upgrade() {
                    lock(&shared.counters).sent_frame(kind, pad.current_caps().as_ref());
                }
                gst::PadProbeReturn::Ok
            });
        }
        let media_type = match encoding.as_str() {
            "H264" => "video/x-h264",
            "VP8" => "video/x-vp8",
            _ => "audio/x-opus",
        };
        match source {
            Source::Feed(Feed::Content) if self.options.relay_slots => {
                // A guest's content line: the room's content, or another guest's window.
                let feed = self.shared.taps.subscribe_feed(Feed::Content, &appsrc);
                *lock(&self.shared.content_line) = Some(ContentLine {
                    appsrc,
                    media_type,
                    feed: Some(feed),
                    shown,
                });
            }
            Source::Feed(feed) => {
                let subscription = self.shared.taps.subscribe_feed(feed, &appsrc);
                if kind == MediaKind::Audio {
                    *lock(&self.shared.voice_loss) = Some((ssrc, subscription.loss_reporter()));
                }
                lock(&self.shared.subscriptions).push(subscription);
            }
            Source::Slot(index) => {
                lock(&self.shared.slots).push(SlotSender {
                    index,
                    kind,
                    appsrc,
                    media_type,
                    shown,
                });
            }
        }
        Ok(())
    }

    fn add_receiver(&self, caps: &gst::Caps) -> Result<(), PeerError> {
        self.webrtcbin
            .emit_by_name::<Option<gst_webrtc::WebRTCRTPTransceiver>>(
                "add-transceiver",
                &[&TransceiverDirection::Recvonly, caps],
            )
            .ok_or_else(|| PeerError::Build("webrtcbin refused a receiving transceiver".into()))?;
        Ok(())
    }

    fn start(&self) -> Result<(), PeerError> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(|_| PeerError::Build("the peer's pipeline does not start".into()))
    }

    /// Emits a promise-taking signal through `emit` and waits for the reply; webrtcbin
    /// reports failures as an `error` field in the reply.
    async fn promise(
        &self,
        action: &'static str,
        emit: impl FnOnce(&gst::Promise),
    ) -> Result<Option<gst::Structure>, PeerError> {
        let (promise, future) = gst::Promise::new_future();
        emit(&promise);
        // webrtcbin answers set-*-description with no structure at all when it succeeds.
        let Some(reply) = future
            .await
            .map_err(|e| negotiation(action, &format!("{e:?}")))?
        else {
            return Ok(None);
        };
        if let Ok(error) = reply.get::<gst::glib::Error>("error") {
            return Err(negotiation(action, error.message()));
        }
        Ok(Some(reply.to_owned()))
    }

    async fn set_description(
        &self,
        signal: &'static str,
        description: &gst_webrtc::WebRTCSessionDescription,
    ) -> Result<(), PeerError> {
        self.promise(signal, |promise| {
            self.webrtcbin
                .emit_by_name::<()>(signal, &[description, promise]);
        })
        .await
        .map(|_| ())
    }

    /// The local description once every ICE candidate is in it.
    async fn gathered_local_description(&self) -> Result<String, PeerError> {
        // Woken by webrtcbin's notify::ice-gathering-state (from its own thread); the state is
        // read again after connecting, so a change just before cannot be missed.
        let (changed_tx, mut changed) = tokio::sync::watch::channel(());
        let handler = self
            .webrtcbin
            .connect_notify(Some("ice-gathering-state"), move |_, _| {
                changed_tx.send_replace(());
            });
        let complete = || {
            self.webrtcbin
                .property::<gst_webrtc::WebRTCICEGatheringState>("ice-gathering-state")
                == gst_webrtc::WebRTCICEGatheringState::Complete
        };
        let gathered = tokio::time::timeout(GATHERING_TIMEOUT, async {
            while !complete() {
                if changed.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        self.webrtcbin.disconnect(handler);
        if gathered.is_err() {
            return Err(PeerError::GatheringTimeout(GATHERING_TIMEOUT.as_secs()));
        }
        let description = self
            .webrtcbin
            .property::<Option<gst_webrtc::WebRTCSessionDescription>>("local-description")
            .ok_or_else(|| negotiation("read the local description", "there is none"))?;
        description
            .sdp()
            .as_text()
            .map_err(|e| negotiation("write the local description", &e.to_string()))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
        if let Some(bus) = self.pipeline.bus() {
            bus.unset_sync_handler();
        }
        lock(&self.shared.subscriptions).clear();
        lock(&self.shared.slots).clear();
        lock(&self.shared.video_slots).clear();
        lock(&self.shared.audio_slots).clear();
    }
}

/// Turns off UPnP port mapping in webrtcbin's libnice agent. Why: Debian's libnice is built with
/// UPnP IGD support, on by default; the agent then asks the network for a UPnP gateway and holds
/// "gathering complete" back until one answers or its `upnp-timeout` (200 ms) runs out. The room
/// sends its description only once gathering is complete, so every join waited 200 ms (measured:
/// 212 ms from the local description to the gathered one, most of a 390 ms join). A room should
/// not open ports on a gateway unasked either; STUN and TURN (configured) are how it gets
/// through NAT. The agent is reached through webrtcbin's `ice-agent` (libnice in GStreamer 1.22);
/// another ICE implementation without these properties is left as it is.
fn without_upnp(webrtcbin: &gst::Element) {
    let ice = webrtcbin.property::<gst::glib::Object>("ice-agent");
    if ice.find_property("agent").is_none() {
        return;
    }
    let agent = ice.property::<gst::glib::Object>("agent");
    if agent.find_property("upnp").is_some() {
        agent.set_property("upnp", false);
    }
}

fn make(factory: &str) -> Result<gst::Element, PeerError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| PeerError::Build(format!("{factory}: {e}")))
}

fn negotiation(action: &'static str, reason: &str) -> PeerError {
    PeerError::Negotiation {
        action,
        reason: reason.to_owned(),
    }
}

fn check_ice_servers(options: &PeerOptions) -> Result<(), PeerError> {
    if let Some(stun) = &options.ice.stun
        && (!stun.starts_with("stun://") || stun.len() <= "stun://".len())
    {
        return Err(PeerError::IceServer(stun.clone()));
    }
    if let Some(turn) = &options.ice.turn
        && (!(turn.starts_with("turn://") || turn.starts_with("turns://")) || !turn.contains('@'))
    {
        // The TURN URL carries a password: name the problem, not the URL.
        return Err(PeerError::IceServer("(turn server, not shown)".into()));
    }
    Ok(())
}

/// The room's codec for `kind` in its own offers.
fn offer_caps(kind: MediaKind, video: Option<Codec>) -> gst::Caps {
    let structure = match (kind, video) {
        (MediaKind::Audio, _) => opus_structure(OFFER_PT_AUDIO),
        (MediaKind::Video, Some(Codec::Vp8)) => vp8_structure(OFFER_PT_VIDEO),
        (MediaKind::Video, _) => h264_structure(OFFER_PT_VIDEO),
    };
    gst::Caps::builder_full().structure(structure).build()
}

/// What a receive-only offer accepts: H.264 and VP8, or Opus.
fn receive_offer_caps(kind: MediaKind) -> gst::Caps {
    match kind {
        MediaKind::Audio => gst::Caps::builder_full()
            .structure(opus_structure(OFFER_PT_AUDIO))
            .build(),
        MediaKind::Video => gst::Caps::builder_full()
            .structure(h264_structure(OFFER_PT_VIDEO))
            .structure(vp8_structure(OFFER_PT_VIDEO + 1))
            .build(),
    }
}

fn h264_structure(pt: u32) -> gst::Structure {
    feedback(
        gst::Structure::builder("application/x-rtp")
            .field("media", "video")
            .field("encoding-name", "H264")
            .field("payload", pt as i32)
            .field("clock-rate", 90_000i32)
            .field("packetization-mode", "1")
            .field("profile-level-id", "42e01f")
            .field("level-asymmetry-allowed", "1")
            .build(),
    )
}

fn vp8_structure(pt: u32) -> gst::Structure {
    feedback(
        gst::Structure::builder("application/x-rtp")
            .field("media", "video")
            .field("encoding-name", "VP8")
            .field("payload", pt as i32)
            .field("clock-rate", 90_000i32)
            .build(),
    )
}

fn opus_structure(pt: u32) -> gst::Structure {
    gst::Structure::builder("application/x-rtp")
        .field("media", "audio")
        .field("encoding-name", "OPUS")
        .field("payload", pt as i32)
        .field("clock-rate", 48_000i32)
        .field("encoding-params", "2")
        .field("minptime", "10")
        .field("useinbandfec", "1")
        .field("usedtx", "1")
        .build()
}

/// Video asks for retransmission and keyframes (NACK, PLI, FIR): a lost packet is repaired
/// or answered with a keyframe instead of a frozen picture.
fn feedback(mut structure: gst::Structure) -> gst::Structure {
    if structure.get::<&str>("media").ok() == Some("video") {
        structure.set("rtcp-fb-nack", true);
        structure.set("rtcp-fb-nack-pli", true);
        structure.set("rtcp-fb-ccm-fir", true);
    }
    structure
}

/// An offered format as a codec preference, with the room's feedback wishes added.
fn with_feedback(format: &Format) -> gst::Caps {
    let mut caps = format.caps.copy();
    if let Some(caps) = caps.get_mut()
        && let Some(structure) = caps.structure_mut(0)
    {
        // The SDP's "application/x-unknown" name is RTP caps for webrtcbin.
        structure.set_name("application/x-rtp");
        // webrtcbin 1.22 negotiates no transport-wide congestion control header extension and
        // sends no REMB: do not promise the feedback.
        structure.remove_field("rtcp-fb-transport-cc");
        structure.remove_field("rtcp-fb-goog-remb");
        if format.encoding == "H264" {
            // Answer with the offer's own H.264 parameters, not GStreamer's profile name.
            structure.remove_field("profile");
            for (key, value) in &format.fmtp {
                structure.set(key.as_str(), value.as_str());
            }
        }
        if structure.get::<&str>("media").ok() == Some("video") {
            structure.set("rtcp-fb-nack", true);
            structure.set("rtcp-fb-nack-pli", true);
            structure.set("rtcp-fb-ccm-fir", true);
        }
        if format.encoding == "OPUS" {
            // The room's decoder uses in-band FEC and copes with DTX: ask for both.
            structure.set("useinbandfec", "1");
            structure.set("usedtx", "1");
        }
    }
    caps
}

/// What the payloader must put out: the codec's name, clock rate and payload type (without the
/// SDP's feedback and fmtp fields, which the payloader does not produce).
/// A random SSRC for one outgoing stream (RFC 3550 wants them random).
fn random_ssrc() -> u32 {
    let mut bytes = [0u8; 4];
    roomd_base::random::fill(&mut bytes);
    u32::from_le_bytes(bytes)
}

fn rtp_filter_caps(structure: &gst::StructureRef) -> gst::Caps {
    let mut filtered = gst::Structure::new_empty("application/x-rtp");
    for field in ["media", "encoding-name", "payload", "clock-rate"] {
        if let Ok(value) = structure.value(field) {
            filtered.set_value(field, value.clone());
        }
    }
    gst::Caps::builder_full().structure(filtered).build()
}

// --- Receiving ----------------------------------------------------------------------------

/// A remote stream arrived on webrtcbin's `pad`: depayload, decode and show or play it.
fn on_remote_stream(
    shared: &Arc<Shared>,
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
) -> Result<(), PeerError> {
    let caps = pad
        .current_caps()
        .ok_or_else(|| PeerError::Build("remote stream without caps".into()))?;
    let structure = caps
        .structure(0)
        .ok_or_else(|| PeerError::Build("remote stream with empty caps".into()))?;
    let media = structure.get::<&str>("media").unwrap_or("");
    let encoding = structure
        .get::<&str>("encoding-name")
        .unwrap_or("")
        .to_ascii_uppercase();
    let sink_pad = |element: &gst::Element| {
        element
            .static_pad("sink")
            .ok_or_else(|| PeerError::Build("element without sink pad".into()))
    };
    if !shared.receive {
        // Nothing is shown or played; the stream is drained so webrtcbin is not blocked.
        let sink = make("fakesink")?;
        pipeline
            .add(&sink)
            .map_err(|e| PeerError::Build(e.to_string()))?;
        pad.link(&sink_pad(&sink)?)
            .map_err(|e| PeerError::Build(format!("{e:?}")))?;
        let _ = sink.sync_state_with_parent();
        return Ok(());
    }
    if let Some(window) = shared.window.as_ref().filter(|w| w.carried_by(pad)) {
        return on_window(shared, window, pipeline, pad, &encoding);
    }
    // Where the chain carries frames as a relay offers them (see `Relay::attach`).
    let mut relay_at = 0;
    let (kind, chain) = match (media, encoding.as_str()) {
        ("video", "H264") => {
            let depay = make("rtph264depay")?;
            depay.set_property("request-keyframe", true);
            depay.set_property("wait-for-keyframe", true);
            let chain = if shared.end_to_end {
                vec![
                    depay,
                    access_units()?,
                    shared.frames.decrypter(MediaKind::Video)?.upcast(),
                    make("h264parse")?,
                    shared.taps.h264_decoder()?,
                ]
            } else if shared.relay.is_some() {
                relay_at = 2;
                vec![
                    depay,
                    make("h264parse")?,
                    access_units()?,
                    shared.taps.h264_decoder()?,
                ]
            } else {
                vec![depay, make("h264parse")?, shared.taps.h264_decoder()?]
            };
            (MediaKind::Video, chain)
        }
        ("video", "VP8") => {
            let depay = make("rtpvp8depay")?;
            depay.set_property("request-keyframe", true);
            depay.set_property("wait-for-keyframe", true);
            let mut chain = vec![depay];
            if shared.end_to_end {
                chain.push(shared.frames.decrypter(MediaKind::Video)?.upcast());
            }
            chain.push(make("vp8dec")?);
            (MediaKind::Video, chain)
        }
        ("audio", "OPUS") => {
            let decoder =
                VoiceRepair::decoder().map_err(|e| PeerError::Build(format!("opusdec: {e}")))?;
            let opusdec = decoder.element().clone();
            lock(&shared.voice_repairs).push(decoder);
            let mut chain = vec![make("rtpopusdepay")?];
            if shared.end_to_end {
                chain.push(shared.frames.decrypter(MediaKind::Audio)?.upcast());
            }
            chain.push(opusdec);
            (MediaKind::Audio, chain)
        }
        _ => {
            return Err(PeerError::NoCommonCodec(format!(
                "cannot decode {media} {encoding}"
            )));
        }
    };
    if let Some(relay) = &shared.relay {
        // Offered to others as it arrives, depacketised: before any decoding. Keyframe
        // requests go in at the depayloader, on their way to the far end.
        relay.attach(kind, &chain[relay_at], &chain[0]);
    }
    let mut elements = chain;
    let appsink = gst_app::AppSink::builder().sync(false).build();
    match kind {
        MediaKind::Video => {
            elements.push(make("videoconvert")?);
            let slot = Arc::new(shared.taps.add_remote_video(&lock(&shared.label))?);
            forward_first_frame(&slot, Arc::downgrade(shared));
            let weak = Arc::downgrade(shared);
            let shown = slot.clone();
            appsink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        if let Some(shared) = weak.upgrade() {
                            lock(&shared.counters).received_frame(sample.caps());
                        }
                        shown.push(&sample);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            // The voice may have started before the picture arrived.
            slot.set_talking(lock(&shared.talking).now);
            // Set once listed, so that a Peer::set_identity meanwhile is not missed.
            lock(&shared.video_slots).push(slot.clone());
            slot.set_identity(&lock(&shared.identity));
        }
        MediaKind::Audio => {
            elements.push(make("audioconvert")?);
            elements.push(make("audioresample")?);
            let filter = make("capsfilter")?;
            filter.set_property("caps", crate::remote_audio_caps());
            elements.push(filter);
            let level = make("level")?;
            level.set_property("interval", crate::audio::LEVEL_INTERVAL_NS);
            level.set_property("post-messages", true);
            elements.push(level);
            let slot = Arc::new(shared.taps.add_remote_audio()?);
            let played = slot.clone();
            appsink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        played.push(&sample);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            lock(&shared.audio_slots).push(slot);
        }
    }
    elements.push(appsink.upcast());
    attach_chain(pipeline, pad, &elements, "the remote stream")?;
    shared.emit(PeerEvent::RemoteTrack { kind });
    Ok(())
}

/// Whole H.264 access units with start codes: as the decrypter takes them (before h264parse
/// reads the slice headers it opens), and as a relay's receivers packetise them again
/// (rtph264pay takes parameter sets in band, and wants the profile in the caps, which h264parse
/// writes).
fn access_units() -> Result<gst::Element, PeerError> {
    let filter = make("capsfilter")?;
    filter.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build(),
    );
    Ok(filter)
}

/// The far end's shared window arrived on webrtcbin's `pad`: gated (dropped unless allowed),
/// depacketised, offered to other peers, decoded and shown on the room display. Its frames are
/// not the far end's camera: they count in neither its statistics nor its first frame.
fn on_window(
    shared: &Arc<Shared>,
    window: &Arc<WindowShare>,
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    encoding: &str,
) -> Result<(), PeerError> {
    window.gate(pad);
    let depay = make(match encoding {
        "H264" => "rtph264depay",
        "VP8" => "rtpvp8depay",
        other => {
            return Err(PeerError::NoCommonCodec(format!(
                "cannot decode a shared window in {other}"
            )));
        }
    })?;
    depay.set_property("request-keyframe", true);
    depay.set_property("wait-for-keyframe", true);
    let (mut elements, relay_at) = if encoding == "H264" {
        (
            vec![
                depay,
                make("h264parse")?,
                access_units()?,
                shared.taps.h264_decoder()?,
            ],
            2,
        )
    } else {
        (vec![depay, make("vp8dec")?], 0)
    };
    window
        .relay
        .attach(MediaKind::Video, &elements[relay_at], &elements[0]);
    elements.push(make("videoconvert")?);
    let appsink = gst_app::AppSink::builder().sync(false).build();
    let label = format!("{} (window)", lock(&shared.label));
    let shown = Arc::downgrade(window);
    let taps = shared.taps.clone();
    appsink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(window) = shown.upgrade() {
                    window.show(&taps, &label, &sample);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    elements.push(appsink.upcast());
    attach_chain(pipeline, pad, &elements, "the shared window")
}

/// Adds `elements` to `pipeline`, links them in order, starts them, and feeds them from
/// webrtcbin's source `pad`; `what` names the stream in an error.
fn attach_chain(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    elements: &[gst::Element],
    what: &str,
) -> Result<(), PeerError> {
    pipeline
        .add_many(elements)
        .map_err(|e| PeerError::Build(e.to_string()))?;
    gst::Element::link_many(elements).map_err(|e| PeerError::Build(e.to_string()))?;
    for element in elements.iter().rev() {
        let _ = element.sync_state_with_parent();
    }
    let sink = elements
        .first()
        .and_then(|first| first.static_pad("sink"))
        .ok_or_else(|| PeerError::Build("element without sink pad".into()))?;
    pad.link(&sink)
        .map_err(|e| PeerError::Build(format!("cannot link {what}: {e:?}")))?;
    Ok(())
}

/// Keeps `channel` as the peer's data channel and turns what arrives on it into events: at most
/// [`MAX_DATA_MESSAGE_BYTES`] a message and [`MAX_DATA_MESSAGES_PER_SECOND`], the rest dropped.
fn adopt_channel(shared: &Arc<Shared>, channel: gst_webrtc::WebRTCDataChannel) {
    // Any label: an SFU relaying ours may name its channel as it likes. What arrives is only
    // ever parsed as a bounded key message.
    let weak = Arc::downgrade(shared);
    channel.connect_on_open(move |_| {
        if let Some(shared) = weak.upgrade() {
            shared.emit(PeerEvent::DataChannelOpen);
        }
    });
    let weak = Arc::downgrade(shared);
    channel.connect_on_message_string(move |_, text| {
        if let (Some(shared), Some(text)) = (weak.upgrade(), text) {
            take_data(&shared, text.as_bytes());
        }
    });
    let weak = Arc::downgrade(shared);
    channel.connect_on_message_data(move |_, data| {
        if let (Some(shared), Some(data)) = (weak.upgrade(), data) {
            take_data(&shared, data);
        }
    });
    let open = channel.ready_state() == gst_webrtc::WebRTCDataChannelState::Open;
    *lock(&shared.data_channel) = Some(channel);
    if open {
        shared.emit(PeerEvent::DataChannelOpen);
    }
}

fn take_data(shared: &Shared, data: &[u8]) {
    if data.len() > MAX_DATA_MESSAGE_BYTES {
        tracing::debug!("dropped a data channel message of {} bytes", data.len());
        return;
    }
    {
        let mut budget = lock(&shared.data_budget);
        if budget.0.elapsed() >= Duration::from_secs(1) {
            *budget = (Instant::now(), 0);
        }
        if budget.1 >= MAX_DATA_MESSAGES_PER_SECOND {
            return;
        }
        budget.1 += 1;
    }
    shared.emit(PeerEvent::Data(data.to_vec()));
}

/// Turns the slot's first-frame signal into a [`PeerEvent::FirstRemoteFrame`].
fn forward_first_frame(slot: &RemoteVideoSlot, shared: Weak<Shared>) {
    let shown = slot.first_frame();
    // A small thread rather than a task: pad-added runs on a GStreamer thread, possibly
    // outside any tokio runtime. It ends when the frame arrives or the slot is dropped.
    std::thread::spawn(move || {
        if shown.blocking_recv().is_ok()
            && let Some(shared) = shared.upgrade()
        {
            shared.emit(PeerEvent::FirstRemoteFrame);
        }
    });
}

// --- Watching -----------------------------------------------------------------------------

fn watch_connection(webrtcbin: &gst::Element, shared: Weak<Shared>) {
    webrtcbin.connect_notify(Some("connection-state"), move |bin, _| {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let state = bin.property::<gst_webrtc::WebRTCPeerConnectionState>("connection-state");
        use gst_webrtc::WebRTCPeerConnectionState as State;
        match state {
            State::Connected if !shared.connected.swap(true, Ordering::SeqCst) => {
                shared.emit(PeerEvent::Connected);
            }
            State::Disconnected if shared.connected.swap(false, Ordering::SeqCst) => {
                shared.emit(PeerEvent::Disconnected);
            }
            State::Failed => {
                shared.connected.store(false, Ordering::SeqCst);
                shared.emit(PeerEvent::Failed("ICE or DTLS failed".into()));
            }
            _ => {}
        }
    });
}

/// The pipeline's messages, handled where they are posted: the received voice's level
/// (talking) and errors (the peer fails, the room goes on).
fn watch_bus(pipeline: &gst::Pipeline, shared: Weak<Shared>) {
    let Some(bus) = pipeline.bus() else {
        return;
    };
    bus.set_sync_handler(move |_, message| {
        if let Some(shared) = shared.upgrade() {
            if let Some(rms_db) = crate::audio::rms_db(message) {
                talking(&shared, rms_db);
            } else if let gst::MessageView::Error(e) = message.view() {
                let source = e.src().map(|s| s.name().to_string()).unwrap_or_default();
                shared.emit(PeerEvent::Failed(format!("{source}: {}", e.error())));
            }
        }
        gst::BusSyncReply::Drop
    });
}

fn talking(shared: &Shared, rms_db: f64) {
    let change = {
        let mut talking = lock(&shared.talking);
        let now = Instant::now();
        talking.heard = Some(now);
        if rms_db > TALKING_ON_DB {
            talking.quiet_since = None;
            (!talking.now).then(|| {
                talking.now = true;
                true
            })
        } else if rms_db < TALKING_OFF_DB && talking.now {
            let since = *talking.quiet_since.get_or_insert(now);
            (now.duration_since(since) >= SILENCE_HOLD).then(|| {
                talking.now = false;
                talking.quiet_since = None;
                false
            })
        } else {
            None
        }
    };
    if let Some(now) = change {
        announce_talking(shared, now);
    }
}

/// A talker whose voice stopped arriving altogether (no level reading for the hold time) is
/// not talking any more: without sound there are no level messages to say so.
fn voice_gone(shared: &Shared) {
    let gone = {
        let mut talking = lock(&shared.talking);
        let gone = talking.now && talking.heard.is_none_or(|at| at.elapsed() >= SILENCE_HOLD);
        if gone {
            talking.now = false;
            talking.quiet_since = None;
        }
        gone
    };
    if gone {
        announce_talking(shared, false);
    }
}

fn announce_talking(shared: &Shared, now: bool) {
    // The display's speaker layout follows who talks.
    for slot in lock(&shared.video_slots).iter() {
        slot.set_talking(now);
    }
    shared.emit(PeerEvent::Talking(now));
}

#[cfg(test)]
mod upnp_tests {
    use gstreamer as gst;
    use gstreamer::prelude::*;

    #[test]
    fn the_ice_agent_asks_no_gateway_for_port_mappings() {
        gst::init().expect("gstreamer");
        let webrtcbin = super::make("webrtcbin").expect("webrtcbin");
        super::without_upnp(&webrtcbin);
        let agent = webrtcbin
            .property::<gst::glib::Object>("ice-agent")
            .property::<gst::glib::Object>("agent");
        assert!(!agent.property::<bool>("upnp"));
    }
}
