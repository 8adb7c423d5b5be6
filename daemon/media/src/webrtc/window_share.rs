//! A guest's shared window (docs/meetings.md, "Window share"): the second video line of a
//! hosted meeting guest's WHIP offer. What arrives on it is shown on the room display and
//! offered, as it came, to the other guests' content line; but only while the guest may share
//! (the presenter): otherwise it is dropped where it enters the peer, before anything decodes,
//! shows or forwards it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::relay::{Relay, RelaySubscription};
use crate::{Feed, MediaKind, MediaTaps, RemoteVideoSlot, TapSubscription};
use roomd_base::sync::lock;

/// A share whose frames stopped this long ago is no longer shown (the guest stopped sharing,
/// which a browser does by sending nothing).
const STOPPED_AFTER: Duration = Duration::from_millis(2500);

/// No media line has this index: the offer had no window line.
const NO_LINE: u32 = u32::MAX;

/// The receiving side, on a guest's WHIP peer.
pub(crate) struct WindowShare {
    /// The window's frames, depacketised, for the other guests' content lines.
    pub(crate) relay: Relay,
    /// The media line that carries it.
    line: AtomicU32,
    /// Whether the guest may share now (the presenter).
    allowed: AtomicBool,
    /// The picture on the room display, made at the first allowed frame.
    slot: Mutex<Option<Arc<RemoteVideoSlot>>>,
    last_frame: Mutex<Option<Instant>>,
}

impl WindowShare {
    pub(crate) fn new() -> WindowShare {
        WindowShare {
            relay: Relay::new(),
            line: AtomicU32::new(NO_LINE),
            allowed: AtomicBool::new(false),
            slot: Mutex::new(None),
            last_frame: Mutex::new(None),
        }
    }

    /// Media line `index` of the offer carries the window.
    pub(crate) fn set_line(&self, index: usize) {
        self.line
            .store(u32::try_from(index).unwrap_or(NO_LINE), Ordering::Relaxed);
    }

    /// Whether webrtcbin's source `pad` is the window's line.
    pub(crate) fn carried_by(&self, pad: &gst::Pad) -> bool {
        let line = self.line.load(Ordering::Relaxed);
        line != NO_LINE
            && pad.has_property("transceiver")
            && pad
                .property::<gstreamer_webrtc::WebRTCRTPTransceiver>("transceiver")
                .mlineindex()
                == line
    }

    /// Drops the window's packets at `pad` (webrtcbin's) unless the guest may share.
    pub(crate) fn gate(self: &Arc<Self>, pad: &gst::Pad) {
        let share = Arc::downgrade(self);
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, _| match share.upgrade() {
                Some(share) if share.allowed.load(Ordering::Relaxed) => gst::PadProbeReturn::Ok,
                _ => gst::PadProbeReturn::Drop,
            },
        );
    }

    /// Shows a decoded frame on the room display (the picture is made at the first one).
    pub(crate) fn show(&self, taps: &MediaTaps, label: &str, sample: &gst::Sample) {
        if !self.allowed.load(Ordering::Relaxed) {
            return;
        }
        *lock(&self.last_frame) = Some(Instant::now());
        let mut slot = lock(&self.slot);
        if slot.is_none() {
            match taps.add_remote_video(label) {
                Ok(made) => *slot = Some(Arc::new(made)),
                Err(e) => {
                    tracing::warn!("cannot show a shared window: {e}");
                    return;
                }
            }
        }
        if let Some(slot) = slot.as_ref() {
            slot.push(sample);
        }
    }

    /// Lets the guest share (or not); a share not allowed, or stopped, leaves the display.
    pub(crate) fn allow(&self, allowed: bool) {
        let was = self.allowed.swap(allowed, Ordering::Relaxed);
        if allowed && !was {
            // What the guest shares from now on starts with a whole picture.
            self.relay.request_keyframe();
        }
        if !allowed || !self.arriving() {
            lock(&self.slot).take();
        }
    }

    /// Frames of the window arrive (allowed, and the last less than 2.5 s ago).
    pub(crate) fn arriving(&self) -> bool {
        self.allowed.load(Ordering::Relaxed)
            && lock(&self.last_frame).is_some_and(|at| at.elapsed() < STOPPED_AFTER)
    }

    /// Frames of the window that reached the room display's compositor (0 when not shown).
    pub(crate) fn frames_shown(&self) -> u64 {
        lock(&self.slot).as_ref().map_or(0, |slot| slot.frames())
    }
}

/// The sending side, on a guest's WHEP peer: the content line carries the room's own content,
/// or another guest's window while one is shared.
pub(crate) struct ContentLine {
    pub(crate) appsrc: gst_app::AppSrc,
    /// The frames its payloader takes.
    pub(crate) media_type: &'static str,
    /// The room's content feed, while no window is shown here.
    pub(crate) feed: Option<TapSubscription>,
    /// The window shown, shared with the probe that passes keyframe requests on to it.
    pub(crate) shown: Arc<Mutex<Option<(Relay, RelaySubscription)>>>,
}

impl ContentLine {
    /// Sends `window` from now on, or the room's content (`None`).
    pub(crate) fn show(&mut self, taps: &MediaTaps, window: Option<&Relay>) {
        let mut shown = lock(&self.shown);
        if shown.as_ref().map(|(r, _)| r.id()) == window.map(Relay::id)
            && (window.is_some() || self.feed.is_some())
        {
            return;
        }
        // One source at a time: the old one ends before the new one starts.
        *shown = None;
        self.feed = None;
        match window {
            Some(relay) => {
                let subscription = relay.subscribe(MediaKind::Video, &self.appsrc, self.media_type);
                *shown = Some((relay.clone(), subscription));
            }
            None => self.feed = Some(taps.subscribe_feed(Feed::Content, &self.appsrc)),
        }
    }
}
