//! The video branch: camera → (privacy) → encoder, and the room display: a compositor that
//! arranges the far end, the shared content and the self-view, with indicator text, the standby
//! screen and the claim code, rendered to the profile's display and to an in-memory sink that
//! serves snapshots.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::MediaError;
use super::encoder_choice::{self, EncoderSettings};
use super::layout::{self, Rect};
use super::privacy::{self, Blanking};
use super::ptz::Ptz;
use super::view::RoomView;
use crate::hardware::profile::{Camera, Display, DisplaySink, VideoInput, VideoSource};

/// What the video branch is built from.
#[derive(Debug, Clone)]
pub struct VideoSetup {
    pub camera: Camera,
    pub content: Option<VideoInput>,
    pub display: Display,
    /// Simulated far-end participants (the meetings feature will feed real ones).
    pub simulated_remotes: usize,
    pub encoder: String,
    pub settings: EncoderSettings,
}

pub struct VideoBranch {
    pub pipeline: gst::Pipeline,
    pub encoder: gst::Element,
    pub snapshot: gst_app::AppSink,
    camera_blank: Blanking,
    ptz: Ptz,
    ptz_crop: gst::Element,
    content_valve: gst::Element,
    selfview_pad: gst::Pad,
    content_pad: Option<gst::Pad>,
    remote_pads: Vec<gst::Pad>,
    indicators: gst::Element,
    centre: gst::Element,
    display: Display,
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
               ! videoconvert name=encoder_convert \
             fakesink name=encoded sync=false async=false \
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
            camera = video_source(setup.camera.source, "camera_src", true),
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
            description.push_str(&format!(
                "{source} ! capsfilter caps={caps} ! valve name=content_valve drop=true \
                 ! queue leaky=downstream max-size-buffers=2 ! mix.sink_1 ",
                source = video_source(content.source, "content_src", false),
                caps = i420_caps(content.width, content.height, content.framerate),
            ));
        } else {
            description.push_str("valve name=content_valve drop=true ");
        }
        for i in 0..setup.simulated_remotes {
            // Small pictures scaled up by the compositor keep the simulation cheap.
            description.push_str(&format!(
                "videotestsrc is-live=true pattern={pattern} \
                 ! video/x-raw,width=320,height=180,framerate={f}/1 \
                 ! textoverlay text=\"Remote {n}\" valignment=bottom halignment=left \
                   font-desc=\"Sans 14\" shaded-background=true \
                 ! queue leaky=downstream max-size-buffers=2 ! mix.sink_{pad} ",
                pattern = ["smpte75", "colors", "pinwheel", "gradient"][i % 4],
                f = d.framerate,
                n = i + 1,
                pad = i + 2,
            ));
        }
        match d.sink {
            DisplaySink::Virtual => {}
            DisplaySink::Kms => description.push_str(
                "display_tee. ! queue leaky=downstream max-size-buffers=2 ! videoconvert \
                 ! kmssink sync=false ",
            ),
            DisplaySink::Wayland => description.push_str(
                "display_tee. ! queue leaky=downstream max-size-buffers=2 ! videoconvert \
                 ! waylandsink sync=false ",
            ),
        }

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
        if let Some(content) = &setup.content {
            set_device(&element("content_src")?, content.device.as_deref());
        }

        let encoder = encoder_choice::make(&setup.encoder, setup.settings)
            .map_err(|e| MediaError::Build(format!("encoder {}: {e}", setup.encoder)))?;
        pipeline
            .add(&encoder)
            .map_err(|e| MediaError::Build(format!("encoder: {e}")))?;
        gst::Element::link_many([&element("encoder_convert")?, &encoder, &element("encoded")?])
            .map_err(|e| MediaError::Build(format!("encoder {}: {e}", setup.encoder)))?;

        let camera_blank = Blanking::new();
        let camera_out = element("camera_out")?
            .static_pad("src")
            .ok_or_else(|| MediaError::Build("camera_out has no src pad".into()))?;
        privacy::blank_video(&camera_out, camera_blank.clone());

        let mix = element("mix")?;
        let pad = |index: usize| {
            mix.static_pad(&format!("sink_{index}"))
                .ok_or_else(|| MediaError::Build(format!("compositor lacks sink_{index}")))
        };
        let selfview_pad = pad(0)?;
        selfview_pad.set_property("zorder", ZORDER_SELFVIEW);
        let content_pad = match setup.content {
            Some(_) => {
                let p = pad(1)?;
                p.set_property("zorder", ZORDER_CONTENT);
                Some(p)
            }
            None => None,
        };
        let mut remote_pads = Vec::new();
        for i in 0..setup.simulated_remotes {
            let p = pad(i + 2)?;
            p.set_property("zorder", ZORDER_REMOTE + i as u32);
            remote_pads.push(p);
        }
        let snapshot = element("snapshot")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| MediaError::Build("snapshot is not an appsink".into()))?;

        let branch = VideoBranch {
            encoder,
            snapshot,
            camera_blank,
            ptz: Ptz::for_camera(&setup.camera),
            ptz_crop: element("ptz_crop")?,
            content_valve: element("content_valve")?,
            selfview_pad,
            content_pad,
            remote_pads,
            indicators: element("indicators")?,
            centre: element("centre")?,
            display: setup.display.clone(),
            pipeline,
        };
        // Until the first status arrives, nothing is shown or sent.
        branch.apply(&RoomView::private(), None);
        Ok(branch)
    }

    pub fn start(&self) -> Result<(), MediaError> {
        self.pipeline
            .set_state(gst::State::Playing)
            .map(|_| ())
            .map_err(|_| MediaError::Start("video pipeline".into()))
    }

    pub fn stop(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }

    /// Makes the pipeline show and send what the room's status says.
    pub fn apply(&self, view: &RoomView, claim_code: Option<&str>) {
        self.camera_blank.set(!view.camera_on);
        self.ptz.apply(view.camera_position, &self.ptz_crop);
        self.content_valve
            .set_property("drop", !(view.content_active && view.claimed));
        let scene = layout::arrange(
            view,
            self.remote_pads.len(),
            self.display.width as i32,
            self.display.height as i32,
        );
        place(&self.selfview_pad, scene.selfview);
        if let Some(pad) = &self.content_pad {
            place(pad, scene.content);
        }
        for (pad, rect) in self.remote_pads.iter().zip(scene.remotes) {
            place(pad, rect);
        }
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
    }

    /// The pad frames enter the encoder through (tests inspect what reaches it).
    pub fn encoder_input(&self) -> Option<gst::Pad> {
        self.encoder.static_pad("sink")
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

/// A video source ending in raw video that the following capsfilter can fix. The simulated
/// camera shows a moving ball with a running clock; the simulated content a test card with the
/// stream time.
fn video_source(source: VideoSource, name: &str, camera: bool) -> String {
    match (source, camera) {
        (VideoSource::TestPattern, true) => format!(
            "videotestsrc name={name} is-live=true pattern=ball motion=wavy \
             ! clockoverlay time-format=\"%H:%M:%S\" halignment=right valignment=bottom \
               font-desc=\"Sans 16\" shaded-background=true"
        ),
        (VideoSource::TestPattern, false) => format!(
            "videotestsrc name={name} is-live=true pattern=bar \
             ! timeoverlay halignment=center valignment=bottom font-desc=\"Sans 16\" \
               text=\"Shared content\" shaded-background=true"
        ),
        (VideoSource::V4l2, _) => {
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
