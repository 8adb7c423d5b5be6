//! Far-end pictures and voices in the room: a slot per remote stream, fed with decoded samples
//! from a peer's own pipeline. A video slot is an `appsrc` in the display pipeline with a name
//! label, on its own compositor pad that the layout arranges; an audio slot is an `appsrc` on its
//! own `audiomixer` pad before the speaker volume and the echo canceller's probe.
//!
//! Slots outlive a rebuilt branch: the engine re-attaches every live slot to the new pipeline.
//! Dropping a slot releases its pad and re-arranges the display.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use tokio::sync::oneshot;

use super::MediaError;
use super::display::DisplayMixer;
use super::taps::Inner;
use roomd_base::sync::lock;

/// What a remote audio slot takes: the speaker mix's own format.
pub fn remote_audio_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("rate", 48_000i32)
        .field("channels", 1i32)
        .field("layout", "interleaved")
        .build()
}

/// The speaker path's mixer, handed to the taps by the audio branch.
#[derive(Clone)]
pub struct SpeakerMixer {
    pipeline: gst::Pipeline,
    mixer: gst::Element,
}

impl SpeakerMixer {
    /// The `audiomixer` `mixer` inside `pipeline`, which far-end voices are linked into.
    pub fn new(pipeline: gst::Pipeline, mixer: gst::Element) -> Self {
        SpeakerMixer { pipeline, mixer }
    }
}

// --- Video ---------------------------------------------------------------------------------

pub(super) struct VideoSlotShared {
    id: u64,
    label: Mutex<String>,
    /// A second line under the name: what is known of the participant's identity and
    /// end-to-end encryption (empty: none).
    identity: Mutex<String>,
    attached: Mutex<Option<VideoAttachment>>,
    first_frame: Mutex<FirstFrame>,
    frames: AtomicU64,
}

/// Whether the slot's first frame has reached the display, and who waits for it.
enum FirstFrame {
    Waiting(Vec<oneshot::Sender<Instant>>),
    Shown(Instant),
}

struct VideoAttachment {
    mixer: DisplayMixer,
    appsrc: gst_app::AppSrc,
    label: gst::Element,
    elements: Vec<gst::Element>,
}

/// A far-end picture on the room display. Push decoded raw video into it.
pub struct RemoteVideoSlot {
    shared: Arc<VideoSlotShared>,
    taps: Weak<Inner>,
}

impl RemoteVideoSlot {
    /// Shows `sample` (raw video of any size and format; a change of caps is fine). False when
    /// the display is not running (being rebuilt, or the room has none).
    pub fn push(&self, sample: &gst::Sample) -> bool {
        let Some(buffer) = sample.buffer() else {
            return false;
        };
        let copy = unstamped(buffer);
        let caps = sample.caps_owned();
        let mut builder = gst::Sample::builder().buffer(&copy);
        if let Some(caps) = &caps {
            builder = builder.caps(caps);
        }
        let attached = lock(&self.shared.attached);
        match attached.as_ref() {
            Some(a) => a.appsrc.push_sample(&builder.build()).is_ok(),
            None => false,
        }
    }

    /// Renames the picture (a participant changed their display name).
    pub fn set_label(&self, label: &str) {
        *lock(&self.shared.label) = label.to_owned();
        self.redraw_label();
    }

    /// Sets the line drawn under the name: what status says of the participant's end-to-end
    /// encryption and identity (see `roomd_meetings`), or nothing (empty).
    pub fn set_identity(&self, identity: &str) {
        *lock(&self.shared.identity) = identity.to_owned();
        self.redraw_label();
    }

    fn redraw_label(&self) {
        if let Some(a) = lock(&self.shared.attached).as_ref() {
            a.label.set_property("text", overlay_text(&self.shared));
        }
    }

    /// The picture's participant started or stopped talking (the speaker layout follows).
    pub fn set_talking(&self, talking: bool) {
        if let Some(a) = lock(&self.shared.attached).as_ref() {
            a.mixer.set_talking(self.shared.id, talking);
        }
    }

    /// Resolves with the moment the slot's first frame reached the display's compositor (at
    /// once if it already has). Each call gets its own receiver.
    pub fn first_frame(&self) -> oneshot::Receiver<Instant> {
        let (sender, receiver) = oneshot::channel();
        match &mut *lock(&self.shared.first_frame) {
            FirstFrame::Waiting(waiting) => waiting.push(sender),
            FirstFrame::Shown(at) => {
                let _ = sender.send(*at);
            }
        }
        receiver
    }

    /// Frames that reached the display's compositor so far.
    pub fn frames(&self) -> u64 {
        self.shared.frames.load(Ordering::Relaxed)
    }
}

impl Drop for RemoteVideoSlot {
    fn drop(&mut self) {
        if let Some(inner) = self.taps.upgrade() {
            lock(&inner.remotes.video)
                .retain(|s| s.upgrade().is_some_and(|s| s.id != self.shared.id));
        }
        if let Some(attachment) = lock(&self.shared.attached).take() {
            detach_video(self.shared.id, attachment);
        }
    }
}

pub(super) fn add_video(inner: &Arc<Inner>, label: &str) -> Result<RemoteVideoSlot, MediaError> {
    let shared = Arc::new(VideoSlotShared {
        id: inner.next_id(),
        label: Mutex::new(label.to_owned()),
        identity: Mutex::new(String::new()),
        attached: Mutex::new(None),
        first_frame: Mutex::new(FirstFrame::Waiting(Vec::new())),
        frames: AtomicU64::new(0),
    });
    let mixer = lock(&inner.remotes.display)
        .clone()
        .ok_or(MediaError::NoDisplay)?;
    *lock(&shared.attached) = Some(attach_video(&mixer, &shared)?);
    lock(&inner.remotes.video).push(Arc::downgrade(&shared));
    Ok(RemoteVideoSlot {
        shared,
        taps: Arc::downgrade(inner),
    })
}

fn attach_video(
    mixer: &DisplayMixer,
    shared: &Arc<VideoSlotShared>,
) -> Result<VideoAttachment, MediaError> {
    let appsrc = gst_app::AppSrc::builder()
        .is_live(true)
        .format(gst::Format::Time)
        .do_timestamp(true)
        // A display shows the newest picture: a stalled compositor must not queue up frames.
        .max_buffers(2)
        .leaky_type(gst_app::AppLeakyType::Downstream)
        .build();
    let convert = make("videoconvert")?;
    convert.set_property("name", format!("remote_convert_{}", shared.id));
    let label = make("textoverlay")?;
    label.set_property("name", format!("remote_label_{}", shared.id));
    label.set_property_from_str("valignment", "bottom");
    label.set_property_from_str("halignment", "left");
    label.set_property("font-desc", "Sans 14");
    label.set_property("shaded-background", true);
    label.set_property("text", overlay_text(shared));
    let queue = make("queue")?;
    queue.set_property("name", format!("remote_queue_{}", shared.id));
    queue.set_property_from_str("leaky", "downstream");
    queue.set_property("max-size-buffers", 2u32);
    let elements = vec![
        appsrc.clone().upcast::<gst::Element>(),
        convert,
        label.clone(),
        queue,
    ];
    let pipeline = mixer.pipeline();
    let fail = |what: &str| MediaError::Build(format!("remote picture: {what}"));
    pipeline
        .add_many(&elements)
        .map_err(|e| fail(&e.to_string()))?;
    let cleanup = |elements: &[gst::Element]| {
        for e in elements {
            let _ = e.set_state(gst::State::Null);
            let _ = pipeline.remove(e);
        }
    };
    if let Err(e) = gst::Element::link_many(&elements) {
        cleanup(&elements);
        return Err(fail(&e.to_string()));
    }
    let Some(pad) = mixer.compositor().request_pad_simple("sink_%u") else {
        cleanup(&elements);
        return Err(fail("the compositor gives no pad"));
    };
    let Some(queue_src) = elements.last().and_then(|queue| queue.static_pad("src")) else {
        cleanup(&elements);
        return Err(fail("queue without src pad"));
    };
    if let Err(e) = queue_src.link(&pad) {
        cleanup(&elements);
        mixer.compositor().release_request_pad(&pad);
        return Err(fail(&e.to_string()));
    }
    // Hidden until the layout places it, so a half-set-up picture never flashes full screen.
    pad.set_property("alpha", 0.0f64);
    super::display::scale_for_display(&pad);
    let counted = Arc::downgrade(shared);
    queue_src.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        if let Some(shared) = counted.upgrade() {
            shared.frames.fetch_add(1, Ordering::Relaxed);
            let mut first = lock(&shared.first_frame);
            if let FirstFrame::Waiting(waiting) = &mut *first {
                let now = Instant::now();
                for sender in waiting.drain(..) {
                    let _ = sender.send(now);
                }
                *first = FirstFrame::Shown(now);
            }
        }
        gst::PadProbeReturn::Ok
    });
    for e in elements.iter().rev() {
        let _ = e.sync_state_with_parent();
    }
    mixer.add_remote(shared.id, pad);
    Ok(VideoAttachment {
        mixer: mixer.clone(),
        appsrc,
        label,
        elements,
    })
}

fn detach_video(id: u64, attachment: VideoAttachment) {
    let pipeline = attachment.mixer.pipeline();
    for e in &attachment.elements {
        let _ = e.set_state(gst::State::Null);
        let _ = pipeline.remove(e);
    }
    if let Some(pad) = attachment.mixer.remove_remote(id) {
        attachment.mixer.compositor().release_request_pad(&pad);
    }
}

/// The name, and the identity line under it when there is one. textoverlay draws nothing for
/// an empty text but keeps its last one: a space clears it. Both are text, not markup, and each
/// is cut on its own ([`super::layout::label_text`]), so a long name never hides the identity.
fn overlay_text(shared: &VideoSlotShared) -> String {
    let label = lock(&shared.label).clone();
    let identity = lock(&shared.identity).clone();
    match (label.is_empty(), identity.is_empty()) {
        (true, true) => " ".to_owned(),
        (_, true) => super::layout::label_text(&label),
        (_, false) => format!(
            "{}\n{}",
            super::layout::label_text(&label),
            super::layout::label_text(&identity)
        ),
    }
}

// --- Audio ---------------------------------------------------------------------------------

pub(super) struct AudioSlotShared {
    id: u64,
    attached: Mutex<Option<AudioAttachment>>,
}

struct AudioAttachment {
    speaker: SpeakerMixer,
    appsrc: gst_app::AppSrc,
    elements: Vec<gst::Element>,
    pad: gst::Pad,
}

/// A far-end voice in the speaker mix. Push decoded audio in [`remote_audio_caps`].
pub struct RemoteAudioSlot {
    shared: Arc<AudioSlotShared>,
    taps: Weak<Inner>,
}

impl RemoteAudioSlot {
    /// Plays `sample` (S16LE, 48 kHz, mono). False when the speaker path is not running.
    pub fn push(&self, sample: &gst::Sample) -> bool {
        let Some(buffer) = sample.buffer() else {
            return false;
        };
        let copy = unstamped(buffer);
        match lock(&self.shared.attached).as_ref() {
            Some(a) => a.appsrc.push_buffer(copy).is_ok(),
            None => false,
        }
    }

    /// The format [`push`](Self::push) takes.
    pub fn caps(&self) -> gst::Caps {
        remote_audio_caps()
    }
}

impl Drop for RemoteAudioSlot {
    fn drop(&mut self) {
        if let Some(inner) = self.taps.upgrade() {
            lock(&inner.remotes.audio)
                .retain(|s| s.upgrade().is_some_and(|s| s.id != self.shared.id));
        }
        if let Some(attachment) = lock(&self.shared.attached).take() {
            detach_audio(attachment);
        }
    }
}

pub(super) fn add_audio(inner: &Arc<Inner>) -> Result<RemoteAudioSlot, MediaError> {
    let shared = Arc::new(AudioSlotShared {
        id: inner.next_id(),
        attached: Mutex::new(None),
    });
    let speaker = lock(&inner.remotes.speaker)
        .clone()
        .ok_or_else(|| MediaError::Build("the speaker path is not running".into()))?;
    *lock(&shared.attached) = Some(attach_audio(&speaker)?);
    lock(&inner.remotes.audio).push(Arc::downgrade(&shared));
    Ok(RemoteAudioSlot {
        shared,
        taps: Arc::downgrade(inner),
    })
}

/// The far ends' pictures and voices, and where they go now: the running display's mixer and
/// the running speaker mix. Slots register here when made and leave when dropped; when the
/// engine replaces a branch, every live slot moves to the new one from here.
#[derive(Default)]
pub(super) struct RemoteSlots {
    display: Mutex<Option<DisplayMixer>>,
    speaker: Mutex<Option<SpeakerMixer>>,
    video: Mutex<Vec<Weak<VideoSlotShared>>>,
    audio: Mutex<Vec<Weak<AudioSlotShared>>>,
}

impl RemoteSlots {
    /// A (new) display runs: every live picture goes on it.
    pub(super) fn show_on(&self, mixer: DisplayMixer) {
        *lock(&self.display) = Some(mixer.clone());
        let slots: Vec<_> = lock(&self.video).iter().filter_map(Weak::upgrade).collect();
        for slot in slots {
            match attach_video(&mixer, &slot) {
                Ok(attachment) => *lock(&slot.attached) = Some(attachment),
                Err(e) => tracing::warn!("remote picture lost with the rebuilt display: {e}"),
            }
        }
    }

    /// The display pipeline is gone, and its elements with it.
    pub(super) fn display_gone(&self) {
        *lock(&self.display) = None;
        for slot in lock(&self.video).iter().filter_map(Weak::upgrade) {
            lock(&slot.attached).take();
        }
    }

    /// A (new) speaker mix runs: every live voice plays on it.
    pub(super) fn play_on(&self, speaker: SpeakerMixer) {
        *lock(&self.speaker) = Some(speaker.clone());
        for slot in lock(&self.audio).iter().filter_map(Weak::upgrade) {
            match attach_audio(&speaker) {
                Ok(attachment) => *lock(&slot.attached) = Some(attachment),
                Err(e) => tracing::warn!("remote voice lost with the rebuilt speaker path: {e}"),
            }
        }
    }

    /// The speaker mix is gone, and its elements with it.
    pub(super) fn speaker_gone(&self) {
        *lock(&self.speaker) = None;
        for slot in lock(&self.audio).iter().filter_map(Weak::upgrade) {
            lock(&slot.attached).take();
        }
    }

    /// Pictures currently on the display.
    pub(super) fn video_count(&self) -> usize {
        lock(&self.video)
            .iter()
            .filter(|s| s.strong_count() > 0)
            .count()
    }
}

fn attach_audio(speaker: &SpeakerMixer) -> Result<AudioAttachment, MediaError> {
    let appsrc = gst_app::AppSrc::builder()
        .is_live(true)
        .format(gst::Format::Time)
        .do_timestamp(true)
        .caps(&remote_audio_caps())
        // About half a second of sound at most: a voice that falls behind is cut, not delayed.
        .max_bytes(48_000)
        .leaky_type(gst_app::AppLeakyType::Downstream)
        .build();
    let queue = make("queue")?;
    let elements = vec![appsrc.clone().upcast::<gst::Element>(), queue.clone()];
    let fail = |what: &str| MediaError::Build(format!("remote voice: {what}"));
    speaker
        .pipeline
        .add_many(&elements)
        .map_err(|e| fail(&e.to_string()))?;
    let cleanup = || {
        for e in &elements {
            let _ = e.set_state(gst::State::Null);
            let _ = speaker.pipeline.remove(e);
        }
    };
    if let Err(e) = gst::Element::link_many(&elements) {
        cleanup();
        return Err(fail(&e.to_string()));
    }
    let Some(pad) = speaker.mixer.request_pad_simple("sink_%u") else {
        cleanup();
        return Err(fail("the mixer gives no pad"));
    };
    let linked = queue
        .static_pad("src")
        .ok_or(gst::PadLinkError::Noformat)
        .and_then(|src| src.link(&pad));
    if let Err(e) = linked {
        cleanup();
        speaker.mixer.release_request_pad(&pad);
        return Err(fail(&format!("{e:?}")));
    }
    for e in elements.iter().rev() {
        let _ = e.sync_state_with_parent();
    }
    Ok(AudioAttachment {
        speaker: speaker.clone(),
        appsrc,
        elements,
        pad,
    })
}

fn detach_audio(attachment: AudioAttachment) {
    for e in &attachment.elements {
        let _ = e.set_state(gst::State::Null);
        let _ = attachment.speaker.pipeline.remove(e);
    }
    attachment
        .speaker
        .mixer
        .release_request_pad(&attachment.pad);
}

fn make(factory: &str) -> Result<gst::Element, MediaError> {
    gst::ElementFactory::make(factory)
        .build()
        .map_err(|e| MediaError::Build(format!("{factory}: {e}")))
}

/// A copy of a far-end `buffer` without timestamps: the room's appsrc (do-timestamp) stamps it
/// anew, as the peer's clock means nothing in the room's pipelines.
fn unstamped(buffer: &gst::BufferRef) -> gst::Buffer {
    let mut copy = buffer.copy();
    {
        let copy = copy.make_mut();
        copy.set_pts(gst::ClockTime::NONE);
        copy.set_dts(gst::ClockTime::NONE);
    }
    copy
}
