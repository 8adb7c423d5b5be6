//! The room display's mixer: where each picture goes (placement from `layout`), in which order,
//! and how it is scaled. A leaf of the media engine: it knows the compositor and the room's view,
//! nothing of taps, remote slots or encoders.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use super::layout::{self, Rect};
use super::view::RoomView;
use roomd_base::sync::lock;
use roomd_hardware::profile::Display;

/// The display's compositor as far-end pictures come and go: it knows the room's current view
/// and the remote pads, and arranges them whenever either changes.
#[derive(Clone)]
pub struct DisplayMixer {
    inner: Arc<MixerInner>,
}

struct MixerInner {
    pipeline: gst::Pipeline,
    compositor: gst::Element,
    selfview_pad: gst::Pad,
    content_pad: Option<gst::Pad>,
    display: Display,
    state: Mutex<MixerState>,
}

struct MixerState {
    view: RoomView,
    /// Remote pictures in the order they joined, by slot id.
    remotes: Vec<(u64, gst::Pad)>,
    /// Who talks: the speaker layout shows them large.
    speaker: layout::ActiveSpeaker,
}

impl DisplayMixer {
    /// The mixer of a display pipeline's `compositor`, with the self-view's and the content's
    /// pads (set up here: stacking order and scaling), nothing placed until a view is set.
    pub(super) fn new(
        pipeline: gst::Pipeline,
        compositor: gst::Element,
        selfview_pad: gst::Pad,
        content_pad: Option<gst::Pad>,
        display: Display,
    ) -> DisplayMixer {
        scale_for_display(&selfview_pad);
        selfview_pad.set_property("zorder", ZORDER_SELFVIEW);
        if let Some(pad) = &content_pad {
            pad.set_property("zorder", ZORDER_CONTENT);
            scale_for_display(pad);
        }
        DisplayMixer {
            inner: Arc::new(MixerInner {
                pipeline,
                compositor,
                selfview_pad,
                content_pad,
                display,
                state: Mutex::new(MixerState {
                    view: RoomView::private(),
                    remotes: Vec::new(),
                    speaker: layout::ActiveSpeaker::default(),
                }),
            }),
        }
    }

    /// The video pipeline the compositor is in.
    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.inner.pipeline
    }

    /// The `compositor` element, to request far-end sink pads from.
    pub fn compositor(&self) -> &gst::Element {
        &self.inner.compositor
    }

    /// Adds the compositor pad of remote picture `id` and re-arranges the display.
    pub fn add_remote(&self, id: u64, pad: gst::Pad) {
        lock(&self.inner.state).remotes.push((id, pad));
        self.arrange();
    }

    /// Takes remote picture `id` off the layout; returns its pad for the caller to release.
    pub fn remove_remote(&self, id: u64) -> Option<gst::Pad> {
        let pad = {
            let mut state = lock(&self.inner.state);
            let at = state.remotes.iter().position(|(i, _)| *i == id)?;
            state.speaker.remove(id);
            state.remotes.remove(at).1
        };
        self.arrange();
        Some(pad)
    }

    /// Remote picture `id`'s participant started or stopped talking: the speaker layout
    /// follows.
    pub fn set_talking(&self, id: u64, talking: bool) {
        let changed = {
            let mut state = lock(&self.inner.state);
            let before = state.speaker.current();
            state.speaker.set_talking(id, talking);
            state.speaker.current() != before
        };
        if changed {
            self.arrange();
        }
    }

    /// Where each remote picture is on the display now (in the order they joined), read back
    /// from the compositor's pads; `None` for a hidden one.
    pub fn remote_placements(&self) -> Vec<Option<Rect>> {
        lock(&self.inner.state)
            .remotes
            .iter()
            .map(|(_, pad)| {
                (pad.property::<f64>("alpha") > 0.0).then(|| Rect {
                    x: pad.property::<i32>("xpos"),
                    y: pad.property::<i32>("ypos"),
                    width: pad.property::<i32>("width"),
                    height: pad.property::<i32>("height"),
                })
            })
            .collect()
    }

    /// The room's view changed: the display follows.
    pub(super) fn set_view(&self, view: &RoomView) {
        lock(&self.inner.state).view = view.clone();
        self.arrange();
    }

    fn arrange(&self) {
        let state = lock(&self.inner.state);
        let display = &self.inner.display;
        let speaker = state
            .speaker
            .current()
            .and_then(|id| state.remotes.iter().position(|(i, _)| *i == id));
        let scene = layout::arrange(
            &state.view,
            state.remotes.len(),
            speaker,
            display.width as i32,
            display.height as i32,
        );
        place(&self.inner.selfview_pad, scene.selfview);
        if let Some(pad) = &self.inner.content_pad {
            place(pad, scene.content);
        }
        for (i, ((_, pad), rect)) in state.remotes.iter().zip(scene.remotes).enumerate() {
            pad.set_property("zorder", ZORDER_REMOTE + i as u32);
            place(pad, rect);
        }
    }
}

/// Compositor pad order: self-view on top of content on top of the far end.
const ZORDER_REMOTE: u32 = 1;
const ZORDER_CONTENT: u32 = 10;
const ZORDER_SELFVIEW: u32 = 20;

/// Makes the compositor only scale `pad`'s pictures, with a linear filter, into the display's
/// colours as they are. Why: on a software display this conversion was the room's largest CPU
/// cost in a meeting (a fifth of a core for two far-end pictures and the self-view). Browsers'
/// H.264 says BT.601 while the display is BT.709, so every pixel went through a colour matrix
/// on GStreamer's slow path; the difference between the two is a slight shift of hue that
/// nobody notices in a meeting, and the pictures are scaled anyway. Linear rather than cubic
/// for the same reason: cubic reads 4 taps per scaling step, linear 2, and looks the same at
/// meeting bitrates.
pub(super) fn scale_for_display(pad: &gst::Pad) {
    let mut config = gst_video::VideoConverterConfig::new();
    config.set_resampler_method(gst_video::VideoResamplerMethod::Linear);
    config.set_chroma_resampler_method(gst_video::VideoResamplerMethod::Linear);
    config.set_matrix_mode(gst_video::VideoMatrixMode::None);
    config.set_gamma_mode(gst_video::VideoGammaMode::None);
    config.set_primaries_mode(gst_video::VideoPrimariesMode::None);
    config.set_chroma_mode(gst_video::VideoChromaMode::None);
    pad.set_property("converter-config", gst::Structure::from(config));
}

fn place(pad: &gst::Pad, rect: Option<Rect>) {
    match rect {
        Some(r) => {
            pad.set_property("xpos", r.x);
            pad.set_property("ypos", r.y);
            pad.set_property("width", r.width);
            pad.set_property("height", r.height);
            pad.set_property("alpha", 1.0f64);
        }
        None => pad.set_property("alpha", 0.0f64),
    }
}
