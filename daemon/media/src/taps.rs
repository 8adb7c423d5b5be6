//! Where meetings meet the media engine. The room encodes its camera and microphone once (and
//! its shared content, apart, while shared in a meeting); every peer of a meeting subscribes to
//! those encoded samples (its own `appsrc` is fed a copy of each).
//! Far-end pictures and sound come back the other way, as slots on the room display and in the
//! speaker mix (see [`super::remote`]).
//!
//! `MediaTaps` is cheap to clone and outlives the engine's pipelines: when a branch is rebuilt
//! (camera unplugged), the engine hands the new encoder and mixers over and subscriptions and
//! slots carry on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use gstreamer as gst;
use gstreamer_app as gst_app;

use super::MediaError;
use super::bitrate_limit::BitrateLimit;
use super::display::DisplayMixer;
use super::encoder_choice::{Codec, KeyframeRequests};
use super::expected_loss::ExpectedLoss;
use super::remote::{self, RemoteAudioSlot, RemoteVideoSlot};
use roomd_base::sync::lock;

/// The two kinds of media a room sends and receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// Sound.
    Audio,
    /// Pictures.
    Video,
}

/// The encoded streams a room can send: its microphones, its camera and its shared content
/// (video, encoded apart from the camera, only while shared in a meeting).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// The microphones, Opus-encoded.
    Microphone,
    /// The camera, with the chosen video encoder.
    Camera,
    /// Shared content, same codec as the camera.
    Content,
}

impl Feed {
    /// What kind of media the feed is.
    pub fn kind(self) -> MediaKind {
        match self {
            Feed::Microphone => MediaKind::Audio,
            Feed::Camera | Feed::Content => MediaKind::Video,
        }
    }

    /// The feed carrying `kind` of the room's people (camera or microphones).
    pub fn of_people(kind: MediaKind) -> Feed {
        match kind {
            MediaKind::Audio => Feed::Microphone,
            MediaKind::Video => Feed::Camera,
        }
    }
}

/// The engine's outgoing media and far-end slots, shared with the meetings feature.
#[derive(Clone, Default)]
pub struct MediaTaps {
    inner: Arc<Inner>,
}

#[derive(Default)]
pub(super) struct Inner {
    video: Tap,
    audio: Tap,
    content: Tap,
    /// The camera encoder's codec once the video branch has started; a watch, so that a
    /// meeting joined in the first moments can wait for it.
    video_codec: tokio::sync::watch::Sender<Option<Codec>>,
    keyframes: Mutex<Option<KeyframeRequests>>,
    /// The content encoder's own: a receiver of the content asks it, not the camera's.
    content_keyframes: Mutex<Option<KeyframeRequests>>,
    /// The far ends' pictures and voices, and the display and speaker they go to.
    pub(super) remotes: remote::RemoteSlots,
    /// The loss the far ends report for the room's voice, for its Opus encoder's FEC.
    expected_loss: ExpectedLoss,
    /// What the far ends take of the room's camera, for its encoder's bitrate.
    bitrate_limit: BitrateLimit,
    /// The hardware profile's H.264 decoders, tried before the software one.
    h264_decoders: Mutex<Vec<String>>,
    next_id: AtomicU64,
}

/// The camera encoder of a new video branch.
pub(crate) struct CameraEncoder<'a> {
    pub(crate) codec: Codec,
    pub(crate) element: &'a gst::Element,
    /// Its factory name (`x264enc`…).
    pub(crate) name: &'a str,
    /// The bitrate it was made with, kbit/s.
    pub(crate) kbps: u32,
}

/// One encoded stream and the `appsrc`s it is copied to.
#[derive(Default)]
struct Tap {
    subscribers: Mutex<Vec<(u64, gst_app::AppSrc)>>,
    caps: Mutex<Option<gst::Caps>>,
}

/// A peer's subscription to an encoded stream; dropping it unsubscribes.
pub struct TapSubscription {
    taps: Weak<Inner>,
    feed: Feed,
    id: u64,
}

impl Drop for TapSubscription {
    fn drop(&mut self) {
        if let Some(inner) = self.taps.upgrade() {
            lock(&inner.tap(self.feed).subscribers).retain(|(id, _)| *id != self.id);
            match self.feed {
                Feed::Microphone => inner.expected_loss.forget(self.id),
                Feed::Camera => inner.bitrate_limit.ask(self.id, None),
                Feed::Content => {}
            }
        }
    }
}

impl TapSubscription {
    /// Where the far end fed by this subscription to the camera says how much it takes (its
    /// SDP's bandwidth, its TMMBR requests); the room's one camera encoder follows the lowest
    /// such limit (see [`super::bitrate_limit`]) until the subscription is dropped. Asks
    /// through a subscription to another feed change nothing.
    pub fn bitrate_asker(&self) -> BitrateAsker {
        BitrateAsker {
            taps: if self.feed == Feed::Camera {
                self.taps.clone()
            } else {
                Weak::new()
            },
            id: self.id,
        }
    }

    /// Where the far end fed by this subscription reports the loss it sees (RTCP receiver
    /// reports); it counts until the subscription is dropped.
    pub fn loss_reporter(&self) -> LossReporter {
        LossReporter {
            taps: self.taps.clone(),
            id: self.id,
        }
    }
}

/// Asks the room's camera encoder for at most a bit rate on behalf of one far end (see
/// [`TapSubscription::bitrate_asker`]). Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct BitrateAsker {
    taps: Weak<Inner>,
    id: u64,
}

impl BitrateAsker {
    /// The far end takes at most `kbps` now; `None`: no limit of its own.
    pub fn ask(&self, kbps: Option<u32>) {
        if let Some(inner) = self.taps.upgrade() {
            inner.bitrate_limit.ask(self.id, kbps);
        }
    }
}

/// Reports one far end's loss of the room's voice to the room's Opus encoder (see
/// [`super::expected_loss`]). Cheap to clone; usable from any thread.
#[derive(Clone)]
pub struct LossReporter {
    taps: Weak<Inner>,
    id: u64,
}

impl LossReporter {
    /// `percent` of the packets sent since the far end's previous report were lost.
    pub fn report(&self, percent: f64) {
        if let Some(inner) = self.taps.upgrade() {
            inner.expected_loss.report(self.id, percent);
        }
    }
}

impl Inner {
    fn tap(&self, feed: Feed) -> &Tap {
        match feed {
            Feed::Microphone => &self.audio,
            Feed::Camera => &self.video,
            Feed::Content => &self.content,
        }
    }

    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

impl MediaTaps {
    /// Feeds every encoded sample of `kind` to `appsrc` (a live source in the peer's own
    /// pipeline) until the returned subscription is dropped. Samples arrive with the caps of the
    /// stream and without timestamps: give the `appsrc` `do-timestamp=true`, so that they are
    /// stamped on the peer pipeline's clock. A new video subscriber gets a keyframe at once.
    pub fn subscribe(&self, kind: MediaKind, appsrc: &gst_app::AppSrc) -> TapSubscription {
        self.subscribe_feed(Feed::of_people(kind), appsrc)
    }

    /// As [`MediaTaps::subscribe`], for any of the room's feeds (e.g. the shared content).
    pub fn subscribe_feed(&self, feed: Feed, appsrc: &gst_app::AppSrc) -> TapSubscription {
        let id = self.inner.next_id();
        lock(&self.inner.tap(feed).subscribers).push((id, appsrc.clone()));
        if feed.kind() == MediaKind::Video {
            self.request_keyframe_of(feed);
        }
        TapSubscription {
            taps: Arc::downgrade(&self.inner),
            feed,
            id,
        }
    }

    /// Asks the camera's encoder for a keyframe (a receiver sent PLI/FIR, or a peer joined).
    /// False when no encoder runs.
    pub fn request_keyframe(&self) -> bool {
        self.request_keyframe_of(Feed::Camera)
    }

    /// Asks the encoder of `feed` (camera or content) for a keyframe. False when it has none
    /// running.
    pub fn request_keyframe_of(&self, feed: Feed) -> bool {
        let keyframes = match feed {
            Feed::Camera => &self.inner.keyframes,
            Feed::Content => &self.inner.content_keyframes,
            Feed::Microphone => return false,
        };
        match lock(keyframes).as_ref() {
            Some(keyframes) => {
                keyframes.request();
                true
            }
            None => false,
        }
    }

    /// The caps of the last encoded sample of `kind` (`video/x-h264, stream-format=byte-stream,
    /// alignment=au, profile=constrained-baseline` or `video/x-vp8`; `audio/x-opus`), once the
    /// room has encoded something.
    pub fn caps(&self, kind: MediaKind) -> Option<gst::Caps> {
        self.feed_caps(Feed::of_people(kind))
    }

    /// The caps of the last encoded sample of `feed`.
    pub fn feed_caps(&self, feed: Feed) -> Option<gst::Caps> {
        lock(&self.inner.tap(feed).caps).clone()
    }

    /// Whether the room has a content input whose encoder can feed [`Feed::Content`].
    pub fn has_content(&self) -> bool {
        lock(&self.inner.content_keyframes).is_some()
    }

    /// The codec the camera is encoded with; `None` while the room has no video branch.
    pub fn video_codec(&self) -> Option<Codec> {
        *self.inner.video_codec.borrow()
    }

    /// Waits until the camera's encoder is known, at most `limit`; whether it is. A meeting
    /// joined in the first moments after start (or while the video branch is being built again)
    /// waits for it rather than failing with "no camera encoder".
    pub async fn wait_for_video(&self, limit: std::time::Duration) -> bool {
        let mut codec = self.inner.video_codec.subscribe();
        tokio::time::timeout(limit, codec.wait_for(Option::is_some))
            .await
            .is_ok_and(|known| known.is_ok())
    }

    /// A new picture on the room display for a far-end participant, labelled `label`. It shows
    /// what is pushed into it; dropping it removes the picture and re-arranges the display.
    pub fn add_remote_video(&self, label: &str) -> Result<RemoteVideoSlot, MediaError> {
        remote::add_video(&self.inner, label)
    }

    /// The H.264 decoders the hardware profile names (`[decoders] h264`), best first.
    pub fn set_h264_decoders(&self, names: Vec<String>) {
        *lock(&self.inner.h264_decoders) = names;
    }

    /// A new decoder for a far-end H.264 picture (see [`super::encoder_choice::h264_decoder`]).
    pub fn h264_decoder(&self) -> Result<gst::Element, MediaError> {
        let preferred = lock(&self.inner.h264_decoders).clone();
        super::encoder_choice::h264_decoder(&preferred).map_err(MediaError::Build)
    }

    /// A new far-end voice in the speaker mix (before the volume and the echo canceller's
    /// probe). Dropping it removes it from the mix.
    pub fn add_remote_audio(&self) -> Result<RemoteAudioSlot, MediaError> {
        remote::add_audio(&self.inner)
    }

    /// The packet loss in percent the room's Opus encoder expects now (and sizes its in-band
    /// FEC to), read from the running encoder; `None` while the room has no audio branch.
    pub fn expected_audio_loss(&self) -> Option<u32> {
        self.inner.expected_loss.current()
    }

    /// Number of remote pictures currently on the display (for tests and status).
    pub fn remote_video_count(&self) -> usize {
        self.inner.remotes.video_count()
    }

    // --- The engine's side -------------------------------------------------------------

    /// Connects the encoded camera (`sink` after the encoder) of a new video branch.
    pub(crate) fn attach_video(
        &self,
        encoder: &CameraEncoder<'_>,
        keyframes: &KeyframeRequests,
        sink: &gst_app::AppSink,
        display: DisplayMixer,
    ) {
        self.inner.video_codec.send_replace(Some(encoder.codec));
        self.inner
            .bitrate_limit
            .attach(encoder.element, encoder.name, encoder.kbps);
        *lock(&self.inner.keyframes) = Some(keyframes.clone());
        connect(&self.inner, Feed::Camera, sink);
        self.inner.remotes.show_on(display);
    }

    /// Connects the encoded content (`sink` after the content encoder) of a new video branch.
    pub(crate) fn attach_content(&self, keyframes: &KeyframeRequests, sink: &gst_app::AppSink) {
        *lock(&self.inner.content_keyframes) = Some(keyframes.clone());
        connect(&self.inner, Feed::Content, sink);
    }

    /// Connects the encoded microphone (`sink` after the Opus `encoder`) and the speaker mix of
    /// a new audio branch.
    pub(crate) fn attach_audio(
        &self,
        sink: &gst_app::AppSink,
        encoder: &gst::Element,
        speaker: remote::SpeakerMixer,
    ) {
        self.inner.expected_loss.attach(encoder);
        connect(&self.inner, Feed::Microphone, sink);
        self.inner.remotes.play_on(speaker);
    }

    /// The camera encoder's bitrate now, kbit/s (lowered while a far end takes less).
    pub fn camera_bitrate_kbps(&self) -> Option<u32> {
        self.inner.bitrate_limit.current_kbps()
    }

    /// Follows the camera encoder's bitrate.
    pub fn camera_bitrate_watch(&self) -> tokio::sync::watch::Receiver<Option<u32>> {
        self.inner.bitrate_limit.watch()
    }

    /// The video branch is gone (failed, being rebuilt, or the engine stops).
    pub(super) fn detach_video(&self) {
        self.inner.bitrate_limit.detach();
        *lock(&self.inner.keyframes) = None;
        *lock(&self.inner.content_keyframes) = None;
        self.inner.remotes.display_gone();
    }

    pub(super) fn detach_audio(&self) {
        self.inner.expected_loss.detach();
        self.inner.remotes.speaker_gone();
    }
}

/// Copies every sample arriving in `sink` to the subscribers of `feed`.
fn connect(inner: &Arc<Inner>, feed: Feed, sink: &gst_app::AppSink) {
    let taps = Arc::downgrade(inner);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if let Some(inner) = taps.upgrade() {
                    fan_out(inner.tap(feed), &sample);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

fn fan_out(tap: &Tap, sample: &gst::Sample) {
    let Some(buffer) = sample.buffer() else {
        return;
    };
    if let Some(caps) = sample.caps() {
        let mut known = lock(&tap.caps);
        if known.as_ref() != Some(&caps.to_owned()) {
            *known = Some(caps.to_owned());
        }
    }
    // The encoder's timestamps are on the room pipeline's clock; each peer stamps anew.
    let mut copy = buffer.copy();
    {
        let copy = copy.make_mut();
        copy.set_pts(gst::ClockTime::NONE);
        copy.set_dts(gst::ClockTime::NONE);
    }
    let caps = sample.caps_owned();
    let mut builder = gst::Sample::builder().buffer(&copy);
    if let Some(caps) = &caps {
        builder = builder.caps(caps);
    }
    let copied = builder.build();
    // A peer whose pipeline stopped refuses samples: it unsubscribes when it is dropped.
    for (_, appsrc) in lock(&tap.subscribers).iter() {
        let _ = appsrc.push_sample(&copied);
    }
}
