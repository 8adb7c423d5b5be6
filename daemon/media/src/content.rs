//! The shared content input (a laptop on the HDMI capture; on simulated hardware a test card):
//! source → valve → tee → the room display, and → gate → its own encoder → the meetings' content
//! tap, which Janus meetings publish as a second feed.
//!
//! The valve sits directly after the source, so that nothing downstream (overlay, conversion,
//! scaling, the display's pad) runs while nothing is shared. The gate keeps the content encoder
//! idle unless content is shared in a meeting: no encoded copy of the content exists otherwise.

use std::sync::Mutex;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::MediaError;
use super::encoder_choice::{self, EncoderSettings, KeyframeRequests};
use super::video::link_encoder_output;
use roomd_base::sync::lock;
use roomd_hardware::profile::{VideoInput, VideoSource};

/// Names of the elements the description below creates.
const VALVE: &str = "content_valve";
const GATE: &str = "content_gate";
const CONVERT: &str = "content_encoder_convert";
const ENCODED: &str = "content_encoded";
/// The content encoder's element name (the camera's is `encoder`; names are unique per bin).
const ENCODER: &str = "content_encoder";

/// The content part of the video pipeline's description: `source` (named `content_src`) through
/// the valve into a tee whose display branch ends in `display_pad` (e.g. `mix.sink_1`).
pub fn description(input: &VideoInput, display_pad: &str) -> String {
    let caps = format!(
        "video/x-raw,format=I420,width={},height={},framerate={}/1",
        input.width, input.height, input.framerate
    );
    // Until the valve the source only makes frames; everything after it is idle while closed.
    let source = match input.source {
        VideoSource::TestPattern | VideoSource::TestPatternTimecode => format!(
            "videotestsrc name=content_src is-live=true pattern=bar ! valve name={VALVE} drop=true \
             ! timeoverlay halignment=center valignment=bottom font-desc=\"Sans 16\" \
               text=\"Shared content\" shaded-background=true"
        ),
        VideoSource::V4l2 => format!(
            "v4l2src name=content_src ! valve name={VALVE} drop=true \
             ! decodebin ! videoconvert ! videoscale ! videorate"
        ),
    };
    format!(
        "{source} ! capsfilter caps={caps} ! tee name=content_tee \
         content_tee. ! queue leaky=downstream max-size-buffers=2 ! {display_pad} \
         content_tee. ! queue leaky=downstream max-size-buffers=2 max-size-time=0 max-size-bytes=0 \
           ! valve name={GATE} drop=true drop-mode=forward-sticky-events \
           ! videoconvert name={CONVERT} \
         appsink name={ENCODED} sync=false async=false max-buffers=30 drop=true "
    )
}

/// The content's valve, encoder gate and encoder in a built video pipeline.
pub struct ContentBranch {
    valve: gst::Element,
    gate: gst::Element,
    /// Keyframe requests for the content's encoder.
    pub keyframes: KeyframeRequests,
    /// The encoded content (same codec and output format as the camera) for the content tap.
    pub encoded: gst_app::AppSink,
    /// The room's last wishes (shared, in a meeting): the gate opens only once the pipeline
    /// plays, so that the encoder starts on a settled pipeline, as the camera's does.
    wishes: Mutex<(bool, bool)>,
}

impl ContentBranch {
    /// Adds the content encoder (`encoder`, the same element the camera uses) to `pipeline`,
    /// built from [`description`], and links it between the gate and the appsink.
    pub fn build(
        pipeline: &gst::Pipeline,
        encoder: &str,
        settings: EncoderSettings,
    ) -> Result<ContentBranch, MediaError> {
        let element = |name: &str| {
            pipeline
                .by_name(name)
                .ok_or_else(|| MediaError::Build(format!("video pipeline lacks {name}")))
        };
        let failed = |e: String| MediaError::Build(format!("content encoder {encoder}: {e}"));
        let encoding = encoder_choice::make(encoder, settings).map_err(failed)?;
        encoding.set_property("name", ENCODER);
        pipeline.add(&encoding).map_err(|e| failed(e.to_string()))?;
        gst::Element::link(&element(CONVERT)?, &encoding).map_err(|e| failed(e.to_string()))?;
        let codec = encoder_choice::codec_of(encoder);
        link_encoder_output(pipeline, &encoding, &element(ENCODED)?, codec).map_err(failed)?;
        let encoded = element(ENCODED)?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| MediaError::Build(format!("{ENCODED} is not an appsink")))?;
        Ok(ContentBranch {
            valve: element(VALVE)?,
            gate: element(GATE)?,
            keyframes: KeyframeRequests::install(&encoding),
            encoded,
            wishes: Mutex::new((false, false)),
        })
    }

    /// Opens the valve while content is `shared`, and the encoder's gate while it is shared
    /// `in_meeting`, once the pipeline plays (`playing`).
    pub fn apply(&self, shared: bool, in_meeting: bool, playing: bool) {
        *lock(&self.wishes) = (shared, in_meeting);
        self.valve.set_property("drop", !shared);
        if playing {
            self.open_gate(shared && in_meeting);
        }
    }

    /// The pipeline plays now: the gate follows the last wishes.
    pub fn started(&self) {
        let (shared, in_meeting) = *lock(&self.wishes);
        self.open_gate(shared && in_meeting);
    }

    fn open_gate(&self, open: bool) {
        let was_gated = self.gate.property::<bool>("drop");
        self.gate.set_property("drop", !open);
        if was_gated && open {
            // Receivers start with a keyframe, not with a frame referring to the gap.
            self.keyframes.request();
        }
    }

    /// Whether the content encoder gets frames now.
    pub fn encoding(&self) -> bool {
        !self.gate.property::<bool>("drop")
    }
}
