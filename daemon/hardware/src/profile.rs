//! Hardware profiles: `hw/<name>.toml` describes the devices of one kind of room system.
//!
//! The profiles shipped in `hw/` are compiled into roomd, so a device cannot run with a profile
//! that differs from the one it was built and tested with. Unknown keys are errors, and every
//! error names the file, line, column and key, like the configuration's.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use roomd_model::config::{line_and_column, toml_error_position};

/// Every profile shipped with roomd, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("simulated", include_str!("../../../hw/simulated.toml")),
    (
        "simulated-720p",
        include_str!("../../../hw/simulated-720p.toml"),
    ),
    (
        "simulated-1080p",
        include_str!("../../../hw/simulated-1080p.toml"),
    ),
    ("intel-vaapi", include_str!("../../../hw/intel-vaapi.toml")),
    ("rpi-v4l2m2m", include_str!("../../../hw/rpi-v4l2m2m.toml")),
    (
        "simulated-timecode",
        include_str!("../../../hw/simulated-timecode.toml"),
    ),
];

/// Why a profile could not be loaded; the message names the file, position and key like a
/// configuration error's.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ProfileError {
    /// No profile of this name is shipped (see [`BUILTIN`]).
    #[error(
        "unknown hardware profile {name:?} (system.hardware_profile); shipped profiles: {}",
        builtin_names()
    )]
    Unknown {
        /// The name asked for (`system.hardware_profile`).
        name: String,
    },
    /// The profile is not valid TOML.
    #[error("{path}:{line}:{column}: TOML syntax error: {message}", path = path.display())]
    Syntax {
        /// The profile, as `hw/<name>.toml` or the path given to [`Profile::parse`].
        path: PathBuf,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// The parser's description of the fault.
        message: String,
    },
    /// The profile is TOML but a key is unknown, a value not allowed, or a rule across keys
    /// broken (a duplicate id, a missing device).
    #[error("{path}:{line}:{column}: {key}: {message}", path = path.display())]
    Invalid {
        /// The profile, as `hw/<name>.toml` or the path given to [`Profile::parse`].
        path: PathBuf,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Dotted key at fault, entries of a list numbered from 1 (`cameras.1.width`);
        /// `(top level)` for the document itself.
        key: String,
        /// What is wrong, without the key.
        message: String,
    },
}

fn builtin_names() -> String {
    BUILTIN
        .iter()
        .map(|(name, _)| *name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The devices of one kind of room system, as `hw/<name>.toml` describes them; checked on
/// load. The media engine drives the first entry of each list.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// One line for people.
    pub description: String,
    /// `[[cameras]]`.
    #[serde(default)]
    pub cameras: Vec<Camera>,
    /// `[[microphones]]`.
    #[serde(default)]
    pub microphones: Vec<Microphone>,
    /// `[[speakers]]`.
    #[serde(default)]
    pub speakers: Vec<Speaker>,
    /// `[[displays]]`.
    #[serde(default)]
    pub displays: Vec<Display>,
    /// `[[content_inputs]]`: sources of shared content.
    #[serde(default)]
    pub content_inputs: Vec<VideoInput>,
    /// `[encoders]`: H.264 encoders to try first.
    #[serde(default)]
    pub encoders: CodecElements,
    /// `[decoders]`: H.264 decoders to try first.
    #[serde(default)]
    pub decoders: CodecElements,
    /// `[controls]`: mute button and LED.
    #[serde(default)]
    pub controls: Controls,
}

/// Where a camera's or content input's picture comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VideoSource {
    /// Moving test pattern with a running clock (simulation).
    TestPattern,
    /// The camera's test pattern with the wall clock stamped into every frame as a row of
    /// black and white blocks (media/timecode.rs): for latency benchmarks, cameras only.
    TestPatternTimecode,
    /// A Video4Linux2 capture device.
    V4l2,
}

/// How a camera pans, tilts and zooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PtzKind {
    /// Pan, tilt and zoom through the camera's V4L2 controls.
    V4l2,
    /// Crop and scale of the captured picture.
    Digital,
}

/// A camera: `[[cameras]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Camera {
    /// 1 to 32 lowercase letters, digits and `-`; unique within its list.
    pub id: String,
    /// Where the picture comes from.
    pub source: VideoSource,
    /// Capture device, e.g. `/dev/video0`; required for `v4l2`.
    pub device: Option<PathBuf>,
    /// Width in pixels: even, 64..=7680.
    pub width: u32,
    /// Height in pixels: even, 64..=4320.
    pub height: u32,
    /// Frames per second, 1..=60.
    pub framerate: u32,
    /// How pan, tilt and zoom are done.
    pub ptz: PtzKind,
}

/// A second video source such as an HDMI capture input.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VideoInput {
    /// 1 to 32 lowercase letters, digits and `-`; unique within its list.
    pub id: String,
    /// Where the picture comes from; not `test-pattern-timecode`.
    pub source: VideoSource,
    /// Capture device, e.g. `/dev/video2`; required for `v4l2`.
    pub device: Option<PathBuf>,
    /// Width in pixels: even, 64..=7680.
    pub width: u32,
    /// Height in pixels: even, 64..=4320.
    pub height: u32,
    /// Frames per second, 1..=60.
    pub framerate: u32,
}

/// Where a microphone's sound comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AudioSource {
    /// An audible test signal (simulation).
    TestTone,
    /// An ALSA capture device.
    Alsa,
}

/// A microphone: `[[microphones]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Microphone {
    /// 1 to 32 lowercase letters, digits and `-`; unique within its list.
    pub id: String,
    /// Where the sound comes from.
    pub source: AudioSource,
    /// ALSA device name, e.g. `hw:CARD=Speakerphone,DEV=0`; required for `alsa`.
    pub device: Option<String>,
}

/// Where a speaker's sound goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AudioSink {
    /// Played nowhere (simulation); the audio chain still runs up to the sink.
    Virtual,
    /// An ALSA playback device.
    Alsa,
}

/// A loudspeaker: `[[speakers]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Speaker {
    /// 1 to 32 lowercase letters, digits and `-`; unique within its list.
    pub id: String,
    /// Where the sound goes.
    pub sink: AudioSink,
    /// ALSA device name, e.g. `hw:CARD=Speakerphone,DEV=0`; required for `alsa`.
    pub device: Option<String>,
}

/// How a display is driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DisplaySink {
    /// Rendered to memory only; the snapshot route shows it (simulation).
    Virtual,
    /// Directly through the kernel's DRM/KMS, on the connector given.
    Kms,
    /// As a window of a Wayland compositor.
    Wayland,
}

/// A room display: `[[displays]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Display {
    /// 1 to 32 lowercase letters, digits and `-`; unique within its list.
    pub id: String,
    /// How it is driven.
    pub sink: DisplaySink,
    /// DRM connector name as in /sys/class/drm (`card0-HDMI-A-1` → `HDMI-A-1`), for `kms`.
    pub connector: Option<String>,
    /// Width in pixels: even, 64..=7680.
    pub width: u32,
    /// Height in pixels: even, 64..=4320.
    pub height: u32,
    /// Frames per second, 1..=60.
    pub framerate: u32,
}

/// GStreamer element names to try first, in order, before the software fallback.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodecElements {
    /// H.264 element factory names (e.g. `vah264enc`); empty: the fallback only.
    #[serde(default)]
    pub h264: Vec<String>,
}

/// Hardware controls besides the A/V devices: `[controls]`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Controls {
    /// Input device of a hardware mute button.
    pub mute_button: Option<PathBuf>,
    /// sysfs LED brightness file of a mute indicator.
    pub mute_led: Option<PathBuf>,
}

impl Profile {
    /// The shipped profile `name`.
    pub fn builtin(name: &str) -> Result<Profile, ProfileError> {
        let (_, source) = BUILTIN
            .iter()
            .find(|(builtin, _)| *builtin == name)
            .ok_or_else(|| ProfileError::Unknown {
                name: name.to_owned(),
            })?;
        Profile::parse(source, &Path::new("hw").join(format!("{name}.toml")))
    }

    /// Parses and checks a profile; `origin` names it in error messages.
    pub fn parse(source: &str, origin: &Path) -> Result<Profile, ProfileError> {
        let deserializer =
            toml::de::Deserializer::parse(source).map_err(|e| syntax_error(origin, source, &e))?;
        let profile: Profile = serde_path_to_error::deserialize(deserializer)
            .map_err(|e| invalid_file(origin, source, &e))?;
        profile.check().map_err(|(keys, message)| {
            let span = key_span(source, &keys).unwrap_or(0..0);
            let (line, column) = line_and_column(source, span.start);
            ProfileError::Invalid {
                path: origin.to_owned(),
                line,
                column,
                key: keys.join("."),
                message,
            }
        })?;
        Ok(profile)
    }

    /// Rules that span fields: sizes in range, devices named where the source needs one, ids
    /// unique. Returns the key path at fault and the problem.
    fn check(&self) -> Result<(), (Vec<String>, String)> {
        let at = |list: &str, index: usize, key: &str| {
            vec![list.to_owned(), format!("{}", index + 1), key.to_owned()]
        };
        let needs = |missing: bool, list: &str, i: usize, key: &str, what: &str| {
            if missing {
                Err((at(list, i, key), format!("{what} needs a {key}")))
            } else {
                Ok(())
            }
        };
        let mut ids: Vec<(&str, &str)> = Vec::new();
        for (i, c) in self.cameras.iter().enumerate() {
            check_video("cameras", i, c.width, c.height, c.framerate)?;
            needs(
                c.source == VideoSource::V4l2 && c.device.is_none(),
                "cameras",
                i,
                "device",
                "a v4l2 camera",
            )?;
            check_id(&mut ids, "cameras", i, &c.id)?;
        }
        for (i, c) in self.content_inputs.iter().enumerate() {
            check_video("content_inputs", i, c.width, c.height, c.framerate)?;
            if c.source == VideoSource::TestPatternTimecode {
                return Err((
                    at("content_inputs", i, "source"),
                    "test-pattern-timecode is for cameras only".to_owned(),
                ));
            }
            needs(
                c.source == VideoSource::V4l2 && c.device.is_none(),
                "content_inputs",
                i,
                "device",
                "a v4l2 content input",
            )?;
            check_id(&mut ids, "content_inputs", i, &c.id)?;
        }
        for (i, m) in self.microphones.iter().enumerate() {
            needs(
                m.source == AudioSource::Alsa && m.device.is_none(),
                "microphones",
                i,
                "device",
                "an alsa microphone",
            )?;
            check_id(&mut ids, "microphones", i, &m.id)?;
        }
        for (i, s) in self.speakers.iter().enumerate() {
            needs(
                s.sink == AudioSink::Alsa && s.device.is_none(),
                "speakers",
                i,
                "device",
                "an alsa speaker",
            )?;
            check_id(&mut ids, "speakers", i, &s.id)?;
        }
        for (i, d) in self.displays.iter().enumerate() {
            check_video("displays", i, d.width, d.height, d.framerate)?;
            needs(
                d.sink == DisplaySink::Kms && d.connector.is_none(),
                "displays",
                i,
                "connector",
                "a kms display",
            )?;
            check_id(&mut ids, "displays", i, &d.id)?;
        }
        for (list, names) in [("encoders", &self.encoders), ("decoders", &self.decoders)] {
            if let Some(bad) = names.h264.iter().find(|n| !is_element_name(n)) {
                return Err((
                    vec![list.to_owned(), "h264".to_owned()],
                    format!("{bad:?} is not a GStreamer element name"),
                ));
            }
        }
        Ok(())
    }
}

fn check_video(
    list: &str,
    index: usize,
    width: u32,
    height: u32,
    framerate: u32,
) -> Result<(), (Vec<String>, String)> {
    let at = |key: &str| vec![list.to_owned(), format!("{}", index + 1), key.to_owned()];
    // Even sizes: every video format roomd uses (I420, NV12) subsamples chroma by two.
    if !(64..=7680).contains(&width) || !width.is_multiple_of(2) {
        return Err((
            at("width"),
            format!("{width} is not an even number in 64..=7680"),
        ));
    }
    if !(64..=4320).contains(&height) || !height.is_multiple_of(2) {
        return Err((
            at("height"),
            format!("{height} is not an even number in 64..=4320"),
        ));
    }
    if !(1..=60).contains(&framerate) {
        return Err((
            at("framerate"),
            format!("{framerate} is out of range 1..=60"),
        ));
    }
    Ok(())
}

fn check_id<'a>(
    ids: &mut Vec<(&'a str, &'a str)>,
    list: &'a str,
    index: usize,
    id: &'a str,
) -> Result<(), (Vec<String>, String)> {
    let at = vec![list.to_owned(), format!("{}", index + 1), "id".to_owned()];
    let valid = !id.is_empty()
        && id.len() <= 32
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err((
            at,
            format!("{id:?}: ids are 1 to 32 lowercase letters, digits and -"),
        ));
    }
    if let Some((other, _)) = ids.iter().find(|(l, i)| *l == list && *i == id) {
        return Err((at, format!("{id:?} is used twice in {other}")));
    }
    ids.push((list, id));
    Ok(())
}

/// GStreamer element factory names are lowercase letters, digits, `-` and `_`.
fn is_element_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn syntax_error(origin: &Path, source: &str, error: &toml::de::Error) -> ProfileError {
    let (line, column) = toml_error_position(source, error);
    ProfileError::Syntax {
        path: origin.to_owned(),
        line,
        column,
        message: error.message().to_owned(),
    }
}

fn invalid_file(
    origin: &Path,
    source: &str,
    error: &serde_path_to_error::Error<toml::de::Error>,
) -> ProfileError {
    use serde_path_to_error::Segment;
    let keys: Vec<String> = error
        .path()
        .iter()
        .filter_map(|segment| match segment {
            Segment::Map { key } => Some(key.clone()),
            Segment::Seq { index } => Some(format!("{}", index + 1)),
            _ => None,
        })
        .collect();
    let span = error
        .inner()
        .span()
        .or_else(|| key_span(source, &keys))
        .unwrap_or(0..0);
    let (line, column) = line_and_column(source, span.start);
    ProfileError::Invalid {
        path: origin.to_owned(),
        line,
        column,
        key: if keys.is_empty() {
            "(top level)".to_owned()
        } else {
            keys.join(".")
        },
        message: error.inner().message().to_owned(),
    }
}

/// Span of the deepest of `keys` found in `source`; a number selects an entry (1-based) of an
/// array of tables such as `[[cameras]]`.
fn key_span(source: &str, keys: &[String]) -> Option<std::ops::Range<usize>> {
    let root = toml::de::DeTable::parse(source).ok()?;
    let mut table = root.get_ref();
    let mut span = None;
    let mut keys = keys.iter();
    while let Some(key) = keys.next() {
        let (name, value) = table.iter().find(|(name, _)| name.get_ref() == key)?;
        span = Some(name.span());
        let mut value = value;
        if let Some(entries) = value.get_ref().as_array() {
            let Some(index) = keys.next().and_then(|k| k.parse::<usize>().ok()) else {
                break;
            };
            match entries.get(index.checked_sub(1)?) {
                Some(entry) => {
                    span = Some(entry.span());
                    value = entry;
                }
                None => break,
            }
        }
        match value.get_ref().as_table() {
            Some(inner) => table = inner,
            None => break,
        }
    }
    span
}
