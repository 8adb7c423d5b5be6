//! Which video encoder a room uses: hardware first, software as the fallback.
//!
//! Candidates are tried in order: the elements the hardware profile names (rank-NONE elements
//! such as `vah264enc` are only ever used this way), then the hardware encoders GStreamer knows
//! that are registered on this box, then `x264enc`, `openh264enc` and `vp8enc`. A candidate is
//! chosen only once it has encoded a frame: a hardware element that registers but fails to start
//! (no device, wrong driver) costs a fallback, not the room's video.

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;

/// Hardware H.264 encoders tried after the profile's own list, when registered.
pub const KNOWN_HARDWARE: [&str; 5] = [
    "v4l2h264enc",
    "vah264enc",
    "vaapih264enc",
    "qsvh264enc",
    "nvv4l2h264enc",
];

/// The software fallback, best first.
pub const SOFTWARE: [&str; 3] = ["x264enc", "openh264enc", "vp8enc"];

/// How long a candidate may take to encode its first frame.
const START_TIMEOUT: Duration = Duration::from_secs(3);

/// Why no video encoder is available.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// Every candidate failed to encode a test frame (or there was none).
    #[error("no video encoder could be started; tried: {}", tried.join("; "))]
    NoneStarted {
        /// One `name: reason` per candidate, in the order tried.
        tried: Vec<String>,
    },
}

/// The video codec an encoder produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// H.264 (every encoder but `vp8enc`).
    H264,
    /// VP8 (`vp8enc`).
    Vp8,
}

/// Real-time settings every encoder gets (as far as it has the property).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderSettings {
    /// Constant target bitrate, kbit/s.
    pub bitrate_kbps: u32,
    /// Frames per second; sets the keyframe interval (every 10 s unasked).
    pub framerate: u32,
}

/// The encoder that won, and why the ones before it lost.
#[derive(Debug, Clone, PartialEq)]
pub struct Chosen {
    /// The element's factory name, e.g. `vah264enc`.
    pub name: String,
    /// What it encodes to.
    pub codec: Codec,
    /// Whether it is other than the software fallbacks ([`SOFTWARE`]).
    pub hardware: bool,
    /// One `name: reason` per candidate tried before it.
    pub rejected: Vec<String>,
}

/// Candidate element names in the order they are tried: `profile` first, then every known
/// hardware encoder registered here, then the software encoders registered here; those of the
/// `wanted` codec (`video.codec`) before all others, which stay as fallbacks.
pub fn candidates(profile: &[String], wanted: Codec) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let registered = |name: &str| gst::ElementFactory::find(name).is_some();
    let known = KNOWN_HARDWARE.iter().chain(SOFTWARE.iter()).copied();
    for name in profile.iter().map(String::as_str).chain(known) {
        if registered(name) && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    // A stable sort: within each codec the order above stays.
    names.sort_by_key(|name| codec_of(name) != wanted);
    names
}

/// Tries `candidates` in order and returns the first that encodes a test frame.
pub fn choose(candidates: &[String], settings: EncoderSettings) -> Result<Chosen, EncoderError> {
    let mut rejected = Vec::new();
    for name in candidates {
        match start_test(name, settings) {
            Ok(()) => {
                return Ok(Chosen {
                    name: name.clone(),
                    codec: codec_of(name),
                    hardware: !SOFTWARE.contains(&name.as_str()),
                    rejected,
                });
            }
            Err(reason) => {
                tracing::warn!("video encoder {name} cannot be used: {reason}");
                rejected.push(format!("{name}: {reason}"));
            }
        }
    }
    Err(EncoderError::NoneStarted { tried: rejected })
}

/// The codec encoder element `name` produces: VP8 for `vp8*`, otherwise H.264.
pub fn codec_of(name: &str) -> Codec {
    if name.starts_with("vp8") {
        Codec::Vp8
    } else {
        Codec::H264
    }
}

/// A new encoder element `name` with real-time settings: constant bitrate, no B-frames, a long
/// keyframe interval (receivers ask for keyframes with PLI/FIR; see [`KeyframeRequests`]).
pub fn make(name: &str, settings: EncoderSettings) -> Result<gst::Element, String> {
    // One name for whatever encoder was chosen, so that logs and tracers find it.
    let encoder = gst::ElementFactory::make(name)
        .name("encoder")
        .build()
        .map_err(|e| format!("cannot create: {e}"))?;
    let bps = u64::from(settings.bitrate_kbps) * 1000;
    // A keyframe every 10 s at most unasked: late joiners and losses are served on request.
    let gop = (settings.framerate * 10).to_string();
    let properties: &[(&str, &str)] = match name {
        "x264enc" => &[
            ("tune", "zerolatency"),
            ("speed-preset", "ultrafast"),
            ("pass", "cbr"),
            ("bframes", "0"),
            ("b-adapt", "false"),
            ("key-int-max", &gop),
        ],
        "openh264enc" => &[
            ("usage-type", "camera"),
            ("rate-control", "bitrate"),
            ("complexity", "low"),
            ("gop-size", &gop),
        ],
        "vp8enc" => &[
            ("deadline", "1"),
            ("cpu-used", "-16"),
            ("end-usage", "cbr"),
            ("lag-in-frames", "0"),
            ("keyframe-max-dist", &gop),
        ],
        "vah264enc" | "qsvh264enc" => &[
            ("rate-control", "cbr"),
            ("b-frames", "0"),
            ("key-int-max", &gop),
        ],
        "vaapih264enc" => &[
            ("rate-control", "cbr"),
            ("max-bframes", "0"),
            ("keyframe-period", &gop),
        ],
        "nvv4l2h264enc" => &[
            ("control-rate", "1"),
            ("num-B-Frames", "0"),
            ("iframeinterval", &gop),
        ],
        // V4L2 M2M encoders take their settings as controls; H.264 there has no B-frames.
        "v4l2h264enc" => &[],
        _ => &[],
    };
    for (property, value) in properties {
        // Elements differ between GStreamer versions and vendors: set what exists.
        if encoder.find_property(property).is_some() {
            encoder.set_property_from_str(property, value);
        }
    }
    // The rate through the one place that knows each encoder's property and unit (also used
    // while it runs, see `bitrate_limit`).
    set_bitrate(&encoder, name, settings.bitrate_kbps);
    if name == "v4l2h264enc" && encoder.find_property("extra-controls").is_some() {
        let controls =
            format!("controls,video_bitrate={bps},video_bitrate_mode=1,h264_i_frame_period={gop}");
        if let Ok(structure) = controls.parse::<gst::Structure>() {
            encoder.set_property("extra-controls", structure);
        }
    }
    Ok(encoder)
}

/// The property of encoder `name` that holds its target bitrate, and its unit in bit/s; `None`
/// when it cannot be changed while running here (V4L2 M2M takes its rate as a control at start).
fn bitrate_property(name: &str) -> Option<(&'static str, u64)> {
    match name {
        "x264enc" | "vah264enc" | "qsvh264enc" | "vaapih264enc" => Some(("bitrate", 1000)),
        "openh264enc" | "nvv4l2h264enc" => Some(("bitrate", 1)),
        "vp8enc" => Some(("target-bitrate", 1)),
        _ => None,
    }
}

/// Sets a running encoder's target bitrate to `kbps`; false when encoder `name` cannot change
/// it while running here.
pub fn set_bitrate(encoder: &gst::Element, name: &str, kbps: u32) -> bool {
    let Some((property, unit)) = bitrate_property(name) else {
        return false;
    };
    if encoder.find_property(property).is_none() {
        return false;
    }
    let value = u64::from(kbps) * 1000 / unit;
    encoder.set_property_from_str(property, &value.to_string());
    true
}

/// A running encoder's target bitrate as it reports it, kbit/s.
pub fn bitrate_kbps(encoder: &gst::Element, name: &str) -> Option<u32> {
    let (property, unit) = bitrate_property(name)?;
    let value = encoder.find_property(property)?;
    let raw = encoder.property_value(value.name());
    let raw = raw
        .get::<u32>()
        .map(u64::from)
        .or_else(|_| raw.get::<i32>().map(|v| v.max(0) as u64))
        .or_else(|_| raw.get::<u64>())
        .ok()?;
    u32::try_from(raw * unit / 1000).ok()
}

/// Keyframe requests for a running encoder. A request is a flag; the encoder's own streaming
/// thread turns it into a force-key-unit event before the next frame. Sending the event from
/// another thread instead (an upstream event on the encoder's src pad while it encodes) stalled
/// x264enc for good on GStreamer 1.22.
#[derive(Clone, Debug, Default)]
pub struct KeyframeRequests(std::sync::Arc<std::sync::atomic::AtomicBool>);

impl KeyframeRequests {
    /// Requests for `encoder`, served at its sink pad.
    pub fn install(encoder: &gst::Element) -> KeyframeRequests {
        let requests = KeyframeRequests::default();
        if let Some(sink) = encoder.static_pad("sink") {
            let wanted = requests.0.clone();
            sink.add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
                if wanted.swap(false, std::sync::atomic::Ordering::SeqCst) {
                    let event = gstreamer_video::DownstreamForceKeyUnitEvent::builder()
                        .all_headers(true)
                        .build();
                    pad.send_event(event);
                }
                gst::PadProbeReturn::Ok
            });
        }
        requests
    }

    /// The next frame is encoded as a keyframe (what a PLI or FIR from a receiver turns into).
    pub fn request(&self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The H.264 decoder for a far-end picture: the first of `preferred` (the hardware profile's
/// `[decoders] h264`) registered here, else `avdec_h264` on one thread. Hardware decoders
/// register only when their device probes fine. Why one thread for libav: its frame threads
/// each hold a frame back (a frame of delay per thread before the first picture and all along)
/// and cost more in all than one thread does; measured with a 720p30 stream at 700 kbit/s,
/// 0.25 CPU-s per 600 frames on one thread against 0.36 on the default (one per core).
pub fn h264_decoder(preferred: &[String]) -> Result<gst::Element, String> {
    let make = |name: &str| {
        gst::ElementFactory::make(name)
            .build()
            .map_err(|e| format!("cannot create {name}: {e}"))
    };
    for name in preferred {
        if gst::ElementFactory::find(name).is_some() {
            match make(name) {
                Ok(decoder) => return Ok(decoder),
                Err(e) => tracing::warn!("H.264 decoder {name} cannot be used: {e}"),
            }
        }
    }
    let decoder = make("avdec_h264")?;
    decoder.set_property("max-threads", 1i32);
    Ok(decoder)
}

/// Encodes one small frame through `name` and waits for it to come out.
fn start_test(name: &str, settings: EncoderSettings) -> Result<(), String> {
    let encoder = make(name, settings)?;
    let pipeline = gst::Pipeline::new();
    let make = |factory: &str| {
        gst::ElementFactory::make(factory)
            .build()
            .map_err(|e| format!("cannot create {factory}: {e}"))
    };
    let source = make("videotestsrc")?;
    source.set_property("num-buffers", 2i32);
    let caps = make("capsfilter")?;
    caps.set_property(
        "caps",
        gst::Caps::builder("video/x-raw")
            .field("width", 320i32)
            .field("height", 180i32)
            .field("framerate", gst::Fraction::new(15, 1))
            .build(),
    );
    let convert = make("videoconvert")?;
    let sink = make("fakesink")?;
    let elements = [&source, &caps, &convert, &encoder, &sink];
    pipeline
        .add_many(elements)
        .map_err(|e| format!("cannot build the test pipeline: {e}"))?;
    gst::Element::link_many(elements).map_err(|e| format!("cannot link: {e}"))?;
    let result = run_to_eos(&pipeline);
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn run_to_eos(pipeline: &gst::Pipeline) -> Result<(), String> {
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|_| "refused to start".to_owned())?;
    let bus = pipeline.bus().ok_or("the test pipeline has no bus")?;
    let timeout = gst::ClockTime::from_nseconds(START_TIMEOUT.as_nanos() as u64);
    match bus.timed_pop_filtered(timeout, &[gst::MessageType::Eos, gst::MessageType::Error]) {
        Some(message) => match message.view() {
            gst::MessageView::Eos(_) => Ok(()),
            gst::MessageView::Error(e) => Err(e.error().to_string()),
            _ => Err("unexpected message".to_owned()),
        },
        None => Err(format!(
            "no frame encoded within {} s",
            START_TIMEOUT.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use gstreamer::prelude::*;

    #[test]
    fn far_end_pictures_are_decoded_by_the_profiles_decoder_when_present_else_by_libav_on_one_thread()
     {
        gstreamer::init().expect("gstreamer");
        let absent = vec!["nosuchh264dec".to_owned()];
        let fallback = super::h264_decoder(&absent).expect("a decoder");
        assert_eq!(
            fallback.factory().map(|f| f.name().to_string()).as_deref(),
            Some("avdec_h264")
        );
        assert_eq!(fallback.property::<i32>("max-threads"), 1);
        // Any registered element named first is taken as is (here a software one standing
        // in for a hardware decoder, which registers only where its device exists).
        let named = vec!["nosuchh264dec".to_owned(), "openh264dec".to_owned()];
        if gstreamer::ElementFactory::find("openh264dec").is_some() {
            let chosen = super::h264_decoder(&named).expect("a decoder");
            assert_eq!(
                chosen.factory().map(|f| f.name().to_string()).as_deref(),
                Some("openh264dec")
            );
        }
    }
}
