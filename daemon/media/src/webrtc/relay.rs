//! Forwarding: what one far end sends, offered as it arrives to other peers, which send it on
//! to their own far ends. Frames are depacketised once and packetised again per receiver; they
//! are never decoded or encoded for it (a hosted meeting's guests see and hear each other this
//! way, docs/meetings.md "Hosted meetings: everyone sees everyone").
//!
//! A [`Relay`] belongs to the peer that receives (its far end is the source); a peer with relay
//! slots ([`super::PeerOptions::relay_slots`]) shows a relay in a slot with
//! [`super::Peer::show_in_slot`]. A receiver's keyframe request (PLI/FIR) goes back to the
//! source as a PLI of its own, at most one per [`KEYFRAME_REQUEST_GAP`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::MediaKind;
use roomd_base::sync::lock;

/// Keyframe requests sent to a source at most this often: every receiver that joins or loses a
/// packet asks, and a sender that makes a keyframe per request would send little else.
const KEYFRAME_REQUEST_GAP: Duration = Duration::from_millis(500);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A far end's encoded audio and video, offered to other peers. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    id: u64,
    video: Stream,
    audio: Stream,
}

/// One kind of a source's media: its subscribers, its caps, and where keyframes are asked for.
#[derive(Default)]
struct Stream {
    subscribers: Mutex<Vec<Subscriber>>,
    /// The source's last caps, and what subscribers are given for them (see [`relayed_caps`]).
    caps: Mutex<Option<(gst::Caps, gst::Caps)>>,
    /// The depayloader's sink pad: an upstream force-key-unit event pushed from it reaches the
    /// source's RTP session, which sends a PLI.
    source_pad: Mutex<Option<gst::glib::WeakRef<gst::Pad>>>,
    last_keyframe_request: Mutex<Option<Instant>>,
}

struct Subscriber {
    id: u64,
    appsrc: gst_app::AppSrc,
    /// The frames its payloader takes (caps name): others (a source in another codec) are
    /// not pushed, rather than failing its pipeline.
    accepts: &'static str,
    /// Added to the source's timestamps to put them on the subscriber's running time: set at
    /// the first frame, so that frames keep the spacing they were sent with (an RTP timestamp
    /// per arrival time would jitter, and the far end's audio with it).
    offset: Option<i128>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("id", &self.inner.id).finish()
    }
}

impl Relay {
    pub(crate) fn new() -> Relay {
        Relay {
            inner: Arc::new(Inner {
                id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
                video: Stream::default(),
                audio: Stream::default(),
            }),
        }
    }

    /// Tells relays apart: a far end that connects again brings a new relay.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The caps of the last frame of `kind` relayed (`video/x-vp8`, `video/x-h264, …`,
    /// `audio/x-opus`); `None` before the first.
    pub fn caps(&self, kind: MediaKind) -> Option<gst::Caps> {
        lock(&self.inner.stream(kind).caps)
            .as_ref()
            .map(|(_, relayed)| relayed.clone())
    }

    /// Offers every frame leaving `frames` (the source's `kind`, depacketised, before any
    /// decoding) to the subscribers, and takes keyframe requests in at `depayloader`'s sink pad.
    pub(crate) fn attach(
        &self,
        kind: MediaKind,
        frames: &gst::Element,
        depayloader: &gst::Element,
    ) {
        let stream = self.inner.stream(kind);
        if let Some(sink) = depayloader.static_pad("sink") {
            *lock(&stream.source_pad) = Some(sink.downgrade());
        }
        let Some(src) = frames.static_pad("src") else {
            return;
        };
        let relay = Arc::downgrade(&self.inner);
        src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let (Some(inner), Some(buffer)) = (relay.upgrade(), info.buffer()) {
                let caps = pad.current_caps();
                inner.stream(kind).fan_out(buffer, caps.as_ref());
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// Sends the source a keyframe request (PLI), unless one went less than
    /// [`KEYFRAME_REQUEST_GAP`] ago.
    pub fn request_keyframe(&self) {
        let stream = &self.inner.video;
        {
            let mut last = lock(&stream.last_keyframe_request);
            if last.is_some_and(|at| at.elapsed() < KEYFRAME_REQUEST_GAP) {
                return;
            }
            *last = Some(Instant::now());
        }
        let pad = lock(&stream.source_pad)
            .as_ref()
            .and_then(|weak| weak.upgrade());
        if let Some(pad) = pad {
            let event = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            pad.push_event(event);
        }
    }

    /// Feeds `appsrc` (a live source without `do-timestamp`) every frame of `kind` whose caps
    /// are named `accepts` until the subscription is dropped. A new video subscriber asks the
    /// source for a keyframe.
    pub(crate) fn subscribe(
        &self,
        kind: MediaKind,
        appsrc: &gst_app::AppSrc,
        accepts: &'static str,
    ) -> RelaySubscription {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        lock(&self.inner.stream(kind).subscribers).push(Subscriber {
            id,
            appsrc: appsrc.clone(),
            accepts,
            offset: None,
        });
        if kind == MediaKind::Video {
            self.request_keyframe();
        }
        RelaySubscription {
            relay: Arc::downgrade(&self.inner),
            kind,
            id,
        }
    }
}

impl Inner {
    fn stream(&self, kind: MediaKind) -> &Stream {
        match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        }
    }
}

impl Stream {
    fn fan_out(&self, buffer: &gst::BufferRef, caps: Option<&gst::Caps>) {
        let caps = caps.map(|caps| {
            let mut known = lock(&self.caps);
            match known.as_ref() {
                Some((source, relayed)) if source == caps => relayed.clone(),
                _ => {
                    let relayed = relayed_caps(caps);
                    *known = Some((caps.clone(), relayed.clone()));
                    relayed
                }
            }
        });
        let caps = caps.as_ref();
        let Some(pts) = buffer.pts() else {
            return;
        };
        let name = caps.and_then(|c| c.structure(0)).map(|s| s.name().as_str());
        let mut subscribers = lock(&self.subscribers);
        for subscriber in subscribers.iter_mut() {
            if name != Some(subscriber.accepts) {
                continue;
            }
            let Some(now) = subscriber.appsrc.current_running_time() else {
                // Its pipeline is not playing yet: nothing to stamp the frame against.
                continue;
            };
            let offset = *subscriber
                .offset
                .get_or_insert(i128::from(now.nseconds()) - i128::from(pts.nseconds()));
            let stamped = i128::from(pts.nseconds()) + offset;
            let Ok(stamped) = u64::try_from(stamped) else {
                continue;
            };
            let mut copy = buffer.copy();
            {
                let copy = copy.make_mut();
                copy.set_pts(gst::ClockTime::from_nseconds(stamped));
                copy.set_dts(gst::ClockTime::NONE);
            }
            let mut sample = gst::Sample::builder().buffer(&copy);
            if let Some(caps) = caps {
                sample = sample.caps(caps);
            }
            // A subscriber whose pipeline stopped refuses frames; it unsubscribes when dropped.
            let _ = subscriber.appsrc.push_sample(&sample.build());
        }
    }
}

/// The caps subscribers are given: what their payloader needs and nothing that changes with the
/// picture. A browser changes its resolution as its CPU and network allow, and its H.264 level
/// with it; rtph264pay takes only levels up to the one its receiver negotiated, and refused the
/// stream when the level rose (measured: "not-negotiated", the picture stopped). So the level
/// given is the lowest, which every receiver takes: rtph264pay only checks it, and a browser's
/// decoder reads the real one from the parameter sets, which travel in band.
fn relayed_caps(caps: &gst::Caps) -> gst::Caps {
    let Some(structure) = caps.structure(0) else {
        return caps.clone();
    };
    let keep: &[&str] = match structure.name().as_str() {
        "video/x-h264" => &["stream-format", "alignment", "profile"],
        "video/x-vp8" => &[],
        _ => return caps.clone(),
    };
    let mut relayed = gst::Structure::new_empty(structure.name().as_str());
    for &field in keep {
        if let Ok(value) = structure.value(field) {
            relayed.set_value(field, value.clone());
        }
    }
    if relayed.name().as_str() == "video/x-h264" {
        relayed.set("level", "1");
    }
    gst::Caps::builder_full().structure(relayed).build()
}

/// A peer's subscription to a relay; dropping it unsubscribes.
pub(crate) struct RelaySubscription {
    relay: Weak<Inner>,
    kind: MediaKind,
    id: u64,
}

impl Drop for RelaySubscription {
    fn drop(&mut self) {
        if let Some(inner) = self.relay.upgrade() {
            lock(&inner.stream(self.kind).subscribers).retain(|s| s.id != self.id);
        }
    }
}
