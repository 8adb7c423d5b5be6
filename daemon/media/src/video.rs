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

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::MediaError;
use super::content::{self, ContentBranch};
use super::display::DisplayMixer;
use super::encoder_choice::{self, EncoderSettings};
use super::frame_watch::FrameWatch;
use super::layout;
use super::privacy::{self, Blanking};
use super::ptz::Ptz;
use super::simulated_camera;
use super::timecode;
use super::view::RoomView;
use roomd_hardware::profile::{Camera, Display, DisplaySink, VideoInput, VideoSource};

/// What the video branch is built from.
#[derive(Debug, Clone)]
pub struct VideoSetup {
    /// The camera to capture.
    pub camera: Camera,
    /// The shared-content input, if the room has one.
    pub content: Option<VideoInput>,
    /// The room display: its size, frame rate and sink.
    pub display: Display,
    /// The encoder element's factory name, as [`encoder_choice::choose`] found it.
    pub encoder: String,
    /// Bitrate and frame rate for the encoders (camera and content).
    pub settings: EncoderSettings,
}

/// The video pipeline: camera to the encoded tap, and the composed room display. Stopped when
/// dropped.
pub struct VideoBranch {
    /// The whole pipeline.
    pub pipeline: gst::Pipeline,
    /// The camera's encoder element (named `encoder`).
    pub encoder: gst::Element,
    /// Keyframe requests for the camera's encoder.
    pub keyframes: encoder_choice::KeyframeRequests,
    /// The encoded camera (H.264 byte-stream in access units, or VP8) for the meetings' tap.
    pub encoded: gst_app::AppSink,
    /// What `encoded` carries.
    pub codec: encoder_choice::Codec,
    /// The composed display's last frame (without claim or pairing codes), for snapshots.
    pub snapshot: gst_app::AppSink,
    /// The camera's and the display's frames, for the engine to notice a silent stall.
    pub watches: Vec<FrameWatch>,
    /// The display's compositor, for far-end pictures to join and leave.
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

/// A branch dropped while playing (a failed test, an engine torn down mid-start) would leave
/// GStreamer disposing elements in PLAYING, which can crash the process: stop it first.
impl Drop for VideoBranch {
    fn drop(&mut self) {
        self.stop();
    }
}

impl VideoBranch {
    /// Builds the pipeline (not yet playing), private: camera blanked, encoding gated off,
    /// nothing shown. Fails when an element or pad is missing or the encoder cannot be made.
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
               ! mix.sink_0 \
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
        let content_pad = match setup.content {
            Some(_) => Some(pad(1)?),
            None => None,
        };
        let snapshot = element("snapshot")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| MediaError::Build("snapshot is not an appsink".into()))?;

        let mixer = DisplayMixer::new(
            pipeline.clone(),
            mix.clone(),
            selfview_pad,
            content_pad,
            setup.display.clone(),
        );
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

    /// Sets the pipeline playing and waits up to 3 s for it to settle, then opens the encoder
    /// gate if the room is in a meeting. Fails if the pipeline refuses or does not settle.
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

    /// Stops the pipeline (state NULL), releasing the camera and display.
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
