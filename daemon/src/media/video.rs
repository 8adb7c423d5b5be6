//! The video branch: camera → (privacy) → gate → encoder → the meetings' tap, and the room
//! display: a compositor that arranges the far end, the shared content and the self-view, with
//! indicator text and the standby screen, rendered to the profile's display and to an
//! in-memory sink that serves snapshots.
//!
//! Claim and pairing codes are drawn after the split, on the way to the screen only: whoever
//! may read `/display/snapshot` (the `user` role) must not learn the code that makes a
//! `room-control` token. With a virtual display the screen is an in-memory sink (`screen`).
//!
//! The gate keeps the encoder idle outside meetings: no encoded copy of the room exists unless
//! the room is joining, waiting in a lobby or in a meeting.

use std::path::Path;
use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::MediaError;
use super::content::{self, ContentBranch};
use super::encoder_choice::{self, EncoderSettings};
use super::frame_watch::FrameWatch;
use super::layout::{self, Rect};
use super::privacy::{self, Blanking};
use super::ptz::Ptz;
use super::simulated_camera;
use super::taps::lock;
use super::timecode;
use super::view::RoomView;
use crate::hardware::profile::{Camera, Display, DisplaySink, VideoInput, VideoSource};

/// What the video branch is built from.
#[derive(Debug, Clone)]
pub struct VideoSetup {
    pub camera: Camera,
    pub content: Option<VideoInput>,
    pub display: Display,
    pub encoder: String,
    pub settings: EncoderSettings,
}

pub struct VideoBranch {
    pub pipeline: gst::Pipeline,
    pub encoder: gst::Element,
    pub keyframes: encoder_choice::KeyframeRequests,
    /// The encoded camera (H.264 byte-stream in access units, or VP8) for the meetings' tap.
    pub encoded: gst_app::AppSink,
    pub codec: encoder_choice::Codec,
    pub snapshot: gst_app::AppSink,
    /// The camera's and the display's frames, for the engine to notice a silent stall.
    pub watches: Vec<FrameWatch>,
    pub mixer: DisplayMixer,
    camera_blank: Blanking,
    ptz: Ptz,
    ptz_crop: gst::Element,
    /// The shared content input and its encoder, when the room has one.
    pub content: Option<ContentBranch>,
    encode_gate: gst::Element,
    /// Whether the room is in a meeting: the gate opens only once the pipeline plays.
    in_meeting: std::sync::atomic::AtomicBool,
    indicators: gst::Element,
    centre: gst::Element,
    /// Claim and pairing codes, on the screen's branch only.
    codes: gst::Element,
}

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
    /// The self-view's size, scaled before the compositor (see [`Tile`]).
    selfview_size: gst::Element,
    content_pad: Option<gst::Pad>,
    display: Display,
    state: Mutex<MixerState>,
}

struct MixerState {
    view: RoomView,
    /// Remote pictures in the order they joined, by slot id.
    remotes: Vec<(u64, Tile)>,
    /// Who talks: the speaker layout shows them large.
    speaker: layout::ActiveSpeaker,
}

/// A picture on the display: its compositor pad, and the capsfilter before it that sets the
/// size its branch scales it to. Why not let the compositor scale: measured on a 720p far-end
/// picture shown as a 256x144 thumbnail, the compositor's scaling cost 0.48 CPU-s per 600
/// frames, `videoscale` before it 0.24; and what is drawn over a picture (its label) is then
/// drawn on the small frame. The pad keeps the same size, so a frame still at the old size
/// while the branch renegotiates is scaled by the compositor into the same place.
pub struct Tile {
    pub pad: gst::Pad,
    pub size: gst::Element,
}

impl DisplayMixer {
    pub fn pipeline(&self) -> &gst::Pipeline {
        &self.inner.pipeline
    }

    pub fn compositor(&self) -> &gst::Element {
        &self.inner.compositor
    }

    /// Adds remote picture `id` (its compositor pad and size filter) and re-arranges the
    /// display.
    pub fn add_remote(&self, id: u64, tile: Tile) {
        lock(&self.inner.state).remotes.push((id, tile));
        self.arrange();
    }

    /// Takes remote picture `id` off the layout; returns its pad for the caller to release.
    pub fn remove_remote(&self, id: u64) -> Option<gst::Pad> {
        let pad = {
            let mut state = lock(&self.inner.state);
            let at = state.remotes.iter().position(|(i, _)| *i == id)?;
            state.speaker.remove(id);
            state.remotes.remove(at).1.pad
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
            .map(|(_, Tile { pad, .. })| {
                (pad.property::<f64>("alpha") > 0.0).then(|| Rect {
                    x: pad.property::<i32>("xpos"),
                    y: pad.property::<i32>("ypos"),
                    width: pad.property::<i32>("width"),
                    height: pad.property::<i32>("height"),
                })
            })
            .collect()
    }

    fn set_view(&self, view: &RoomView) {
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
        resize(&self.inner.selfview_size, scene.selfview);
        if let Some(pad) = &self.inner.content_pad {
            place(pad, scene.content);
        }
        for (i, ((_, tile), rect)) in state.remotes.iter().zip(scene.remotes).enumerate() {
            tile.pad.set_property("zorder", ZORDER_REMOTE + i as u32);
            place(&tile.pad, rect);
            resize(&tile.size, rect);
        }
    }
}

/// Compositor pad order: self-view on top of content on top of the far end.
const ZORDER_REMOTE: u32 = 1;
const ZORDER_CONTENT: u32 = 10;
const ZORDER_SELFVIEW: u32 = 20;

impl VideoBranch {
    pub fn build(setup: &VideoSetup) -> Result<VideoBranch, MediaError> {
        let d = &setup.display;
        let mut description = format!(
            "{camera} ! capsfilter caps={camera_caps} ! videocrop name=ptz_crop ! videoscale \
               ! capsfilter name=camera_out caps={camera_caps} ! tee name=camera_tee \
             camera_tee. ! queue leaky=downstream max-size-buffers=2 max-size-time=0 max-size-bytes=0 \
               ! valve name=encode_gate drop=true drop-mode=forward-sticky-events \
               ! videoconvert name=encoder_convert \
             appsink name=encoded sync=false async=false max-buffers=30 drop=true \
             camera_tee. ! queue leaky=downstream max-size-buffers=2 max-size-time=0 max-size-bytes=0 \
               ! videoscale ! capsfilter name=selfview_size ! mix.sink_0 \
             compositor name=mix background=black ignore-inactive-pads=true \
               ! video/x-raw,width={w},height={h},framerate={f}/1 \
               ! textoverlay name=indicators valignment=top halignment=left \
                 font-desc=\"Sans 11\" shaded-background=true text=\" \" \
               ! textoverlay name=centre valignment=center halignment=center \
                 font-desc=\"Sans 22\" line-alignment=center text=\" \" \
               ! tee name=display_tee \
             display_tee. ! queue leaky=downstream max-size-buffers=1 \
               ! appsink name=snapshot sync=false drop=true max-buffers=1 enable-last-sample=true ",
            camera = camera_source(setup.camera.source, "camera_src"),
            camera_caps = i420_caps(
                setup.camera.width,
                setup.camera.height,
                setup.camera.framerate
            ),
            w = d.width,
            h = d.height,
            f = d.framerate,
        );
        if let Some(content) = &setup.content {
            description.push_str(&content::description(content, "mix.sink_1"));
        }
        description.push_str(
            "display_tee. ! queue leaky=downstream max-size-buffers=2 \
               ! textoverlay name=codes valignment=center halignment=center \
                 font-desc=\"Sans 22\" line-alignment=center silent=true text=\" \" ",
        );
        description.push_str(match d.sink {
            DisplaySink::Virtual => {
                "! appsink name=screen sync=false drop=true max-buffers=1 enable-last-sample=true "
            }
            DisplaySink::Kms => "! videoconvert ! kmssink sync=false ",
            DisplaySink::Wayland => "! videoconvert ! waylandsink sync=false ",
        });

        let pipeline = gst::parse::launch(&description)
            .map_err(|e| MediaError::Build(format!("video pipeline: {e}")))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| MediaError::Build("video pipeline: not a pipeline".into()))?;
        let element = |name: &str| {
            pipeline
                .by_name(name)
                .ok_or_else(|| MediaError::Build(format!("video pipeline lacks {name}")))
        };
        set_device(&element("camera_src")?, setup.camera.device.as_deref());
        if matches!(
            setup.camera.source,
            VideoSource::TestPattern | VideoSource::TestPatternTimecode
        ) {
            let motion = element("camera_src_motion")?
                .static_pad("src")
                .ok_or_else(|| MediaError::Build("camera_src_motion has no src pad".into()))?;
            simulated_camera::animate(&motion);
        }
        let content = match &setup.content {
            Some(input) => {
                set_device(&element("content_src")?, input.device.as_deref());
                let settings = EncoderSettings {
                    framerate: input.framerate,
                    ..setup.settings
                };
                Some(ContentBranch::build(&pipeline, &setup.encoder, settings)?)
            }
            None => None,
        };

        let encoder = encoder_choice::make(&setup.encoder, setup.settings)
            .map_err(|e| MediaError::Build(format!("encoder {}: {e}", setup.encoder)))?;
        pipeline
            .add(&encoder)
            .map_err(|e| MediaError::Build(format!("encoder: {e}")))?;
        let codec = encoder_choice::codec_of(&setup.encoder);
        gst::Element::link(&element("encoder_convert")?, &encoder)
            .map_err(|e| MediaError::Build(format!("encoder {}: {e}", setup.encoder)))?;
        link_encoder_output(&pipeline, &encoder, &element("encoded")?, codec)
            .map_err(|e| MediaError::Build(format!("encoder {}: {e}", setup.encoder)))?;
        let encoded = element("encoded")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| MediaError::Build("encoded is not an appsink".into()))?;

        let camera_blank = Blanking::new();
        let camera_out = element("camera_out")?
            .static_pad("src")
            .ok_or_else(|| MediaError::Build("camera_out has no src pad".into()))?;
        // Before the privacy probe, so that a blanked camera shows no stamp either.
        if setup.camera.source == VideoSource::TestPatternTimecode {
            timecode::stamp_frames(&camera_out);
        }
        privacy::blank_video(&camera_out, camera_blank.clone());
        let display_in = element("display_tee")?
            .static_pad("sink")
            .ok_or_else(|| MediaError::Build("display_tee has no sink pad".into()))?;
        let watches = vec![
            FrameWatch::on(&camera_out, "camera frames"),
            FrameWatch::on(&display_in, "display frames"),
        ];

        let mix = element("mix")?;
        let pad = |index: usize| {
            mix.static_pad(&format!("sink_{index}"))
                .ok_or_else(|| MediaError::Build(format!("compositor lacks sink_{index}")))
        };
        let selfview_pad = pad(0)?;
        scale_for_display(&selfview_pad);
        selfview_pad.set_property("zorder", ZORDER_SELFVIEW);
        let content_pad = match setup.content {
            Some(_) => {
                let p = pad(1)?;
                p.set_property("zorder", ZORDER_CONTENT);
                scale_for_display(&p);
                Some(p)
            }
            None => None,
        };
        let snapshot = element("snapshot")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| MediaError::Build("snapshot is not an appsink".into()))?;

        let mixer = DisplayMixer {
            inner: Arc::new(MixerInner {
                pipeline: pipeline.clone(),
                compositor: mix.clone(),
                selfview_pad,
                selfview_size: element("selfview_size")?,
                content_pad,
                display: setup.display.clone(),
                state: Mutex::new(MixerState {
                    view: RoomView::private(),
                    remotes: Vec::new(),
                    speaker: layout::ActiveSpeaker::default(),
                }),
            }),
        };
        let branch = VideoBranch {
            keyframes: encoder_choice::KeyframeRequests::install(&encoder),
            encoder,
            encoded,
            codec,
            snapshot,
            watches,
            mixer,
            camera_blank,
            ptz: Ptz::for_camera(&setup.camera),
            ptz_crop: element("ptz_crop")?,
            content,
            encode_gate: element("encode_gate")?,
            in_meeting: std::sync::atomic::AtomicBool::new(false),
            indicators: element("indicators")?,
            centre: element("centre")?,
            codes: element("codes")?,
            pipeline,
        };
        // Until the first status arrives, nothing is shown or sent.
        branch.apply(&RoomView::private(), None);
        Ok(branch)
    }

    pub fn start(&self) -> Result<(), MediaError> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| MediaError::Start("video pipeline".into()))?;
        // The gate opens once the pipeline plays, so the encoder starts on a settled pipeline.
        let (settled, _, _) = self.pipeline.state(gst::ClockTime::from_seconds(3));
        settled.map_err(|_| MediaError::Start("video pipeline".into()))?;
        self.open_gate(self.in_meeting.load(std::sync::atomic::Ordering::SeqCst));
        if let Some(content) = &self.content {
            content.started();
        }
        Ok(())
    }

    /// Lets frames into the encoder (in a meeting) or not.
    fn open_gate(&self, open: bool) {
        let was_gated = self.encode_gate.property::<bool>("drop");
        self.encode_gate.set_property("drop", !open);
        if was_gated && open {
            // Receivers start with a keyframe, not with a frame referring to the gap.
            self.keyframes.request();
        }
    }

    pub fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }

    /// Makes the pipeline show and send what the room's status says.
    pub fn apply(&self, view: &RoomView, claim_code: Option<&str>) {
        self.camera_blank.set(!view.camera_on);
        self.ptz.apply(view.camera_position, &self.ptz_crop);
        self.in_meeting
            .store(view.in_meeting, std::sync::atomic::Ordering::SeqCst);
        let playing = self.pipeline.current_state() == gst::State::Playing;
        if playing {
            self.open_gate(view.in_meeting);
        }
        if let Some(content) = &self.content {
            content.apply(
                view.content_active && view.claimed,
                view.in_meeting,
                playing,
            );
        }
        self.mixer.set_view(view);
        let indicators = if view.standby || !view.claimed {
            " ".to_owned()
        } else {
            layout::indicators(view)
        };
        self.indicators.set_property("text", indicators);
        let centre = layout::centre_message(view, claim_code);
        self.centre.set_property(
            "text",
            if centre.is_empty() {
                " ".into()
            } else {
                centre
            },
        );
        let codes = layout::code_message(view, claim_code);
        self.codes.set_property("silent", codes.is_none());
        self.codes
            .set_property("text", codes.unwrap_or_else(|| " ".into()));
    }

    /// The pad frames enter the encoder through (tests inspect what reaches it).
    pub fn encoder_input(&self) -> Option<gst::Pad> {
        self.encoder.static_pad("sink")
    }
}

/// Links `encoder` to the meetings' `sink`. H.264 goes through [`h264_for_browsers`]; an encoder
/// that cannot give constrained baseline (some hardware) is linked without the profile, and
/// one whose output h264parse refuses is linked as is, with a warning: the room keeps its
/// display and local media, and meetings see what the encoder makes.
pub(super) fn link_encoder_output(
    pipeline: &gst::Pipeline,
    encoder: &gst::Element,
    sink: &gst::Element,
    codec: encoder_choice::Codec,
) -> Result<(), String> {
    if codec == encoder_choice::Codec::H264 {
        for with_profile in [true, false] {
            let between = h264_for_browsers(with_profile)?;
            pipeline.add_many(&between).map_err(|e| e.to_string())?;
            let mut chain = vec![encoder.clone()];
            chain.extend(between.iter().cloned());
            chain.push(sink.clone());
            if gst::Element::link_many(&chain).is_ok() {
                return Ok(());
            }
            for pair in chain.windows(2) {
                pair[0].unlink(&pair[1]);
            }
            let _ = pipeline.remove_many(&between);
            tracing::warn!(
                "encoder output refuses {}",
                if with_profile {
                    "constrained baseline"
                } else {
                    "h264parse"
                }
            );
        }
    }
    encoder.link(sink).map_err(|e| e.to_string())
}

/// What follows an H.264 encoder so that browsers take its output: constrained baseline (what
/// every WebRTC H.264 decoder supports), SPS/PPS before every keyframe (a peer that joins late or
/// lost packets can start at any keyframe), byte-stream in whole access units (what the RTP
/// payloader and the peers' `appsrc` expect).
fn h264_for_browsers(with_profile: bool) -> Result<Vec<gst::Element>, String> {
    let make = |factory: &str| {
        gst::ElementFactory::make(factory)
            .build()
            .map_err(|e| format!("{factory}: {e}"))
    };
    let profile = make("capsfilter")?;
    profile.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("profile", "constrained-baseline")
            .build(),
    );
    let parse = make("h264parse")?;
    parse.set_property("config-interval", -1i32);
    let format = make("capsfilter")?;
    format.set_property(
        "caps",
        gst::Caps::builder("video/x-h264")
            .field("stream-format", "byte-stream")
            .field("alignment", "au")
            .build(),
    );
    Ok(if with_profile {
        vec![profile, parse, format]
    } else {
        vec![parse, format]
    })
}

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

/// The scaler before a tile makes its pictures `rect`'s size; a hidden tile keeps its size.
/// Only a new size is set: each change renegotiates the branch.
pub(super) fn resize(size: &gst::Element, rect: Option<Rect>) {
    let Some(r) = rect else {
        return;
    };
    let caps = gst::Caps::builder("video/x-raw")
        .field("width", r.width.max(2))
        .field("height", r.height.max(2))
        .build();
    if size.property::<Option<gst::Caps>>("caps").as_ref() != Some(&caps) {
        size.set_property("caps", caps);
    }
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

fn i420_caps(width: u32, height: u32, framerate: u32) -> String {
    format!("video/x-raw,format=I420,width={width},height={height},framerate={framerate}/1")
}

/// The camera, ending in raw video that the following capsfilter can fix. The simulated
/// camera shows a test card with a moving square and a running clock (see
/// [`simulated_camera`]); the content input is built in [`super::content`].
fn camera_source(source: VideoSource, name: &str) -> String {
    match source {
        VideoSource::TestPattern | VideoSource::TestPatternTimecode => {
            simulated_camera::description(name)
        }
        VideoSource::V4l2 => {
            format!("v4l2src name={name} ! decodebin ! videoconvert ! videoscale ! videorate")
        }
    }
}

fn set_device(source: &gst::Element, device: Option<&Path>) {
    if let Some(device) = device
        && source.find_property("device").is_some()
    {
        source.set_property("device", device.to_string_lossy().as_ref());
    }
}
