//! What is really there: each device a profile names is looked up on the box (V4L2 devices and
//! their capabilities, ALSA cards, DRM connectors) and each element it names in the GStreamer
//! registry. A missing entry is reported, never fatal: a room with a broken camera still has
//! sound, and the admin sees what is wrong in `status.system.hardware`.

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::profile::{AudioSink, AudioSource, DisplaySink, Profile, VideoSource};

/// Software H.264/VP8 encoders roomd falls back to; reported so that a box without them is
/// spotted at once.
pub const SOFTWARE_ENCODERS: [&str; 3] = ["x264enc", "openh264enc", "vp8enc"];

/// Where the probe looks; tests point it at a fake tree.
#[derive(Debug, Clone)]
pub struct SystemPaths {
    /// `/proc/asound`: one entry per ALSA card id.
    pub asound: PathBuf,
    /// `/sys/class/drm`: `card0-HDMI-A-1/status` and the like.
    pub drm: PathBuf,
}

impl Default for SystemPaths {
    fn default() -> Self {
        SystemPaths {
            asound: PathBuf::from("/proc/asound"),
            drm: PathBuf::from("/sys/class/drm"),
        }
    }
}

/// `status.system.hardware`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HardwareStatus {
    /// Name of the profile probed (`system.hardware_profile`).
    pub profile: String,
    /// Every device the profile names, cameras first, then content inputs, microphones,
    /// speakers and displays.
    pub devices: Vec<DeviceStatus>,
    /// GStreamer elements the profile or the fallback needs, and whether they are registered.
    pub elements: Vec<ElementStatus>,
    /// How many devices of the profile are missing or unusable.
    pub missing: usize,
}

/// One device of the profile and whether it was found usable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceStatus {
    /// `camera`, `microphone`, `speaker`, `display` or `content-input`.
    pub kind: &'static str,
    /// The device's `id` in the profile.
    pub id: String,
    /// Found and usable (a V4L2 device that captures, an ALSA card, a connected DRM connector,
    /// a Wayland compositor); simulated devices always are.
    pub present: bool,
    /// What was found (e.g. the V4L2 card name), or why the device is not usable.
    pub detail: String,
}

/// One GStreamer element and whether the registry has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElementStatus {
    /// Element factory name, e.g. `vah264enc`.
    pub name: String,
    /// Whether the GStreamer registry knows the element.
    pub available: bool,
}

/// Probes every device and element `profile` names. `element_exists` asks the GStreamer
/// registry (passed in so that the probe does not need GStreamer initialised in unit tests).
pub fn probe(
    name: &str,
    profile: &Profile,
    paths: &SystemPaths,
    element_exists: &dyn Fn(&str) -> bool,
) -> HardwareStatus {
    let mut devices = Vec::new();
    for c in &profile.cameras {
        devices.push(video_device("camera", &c.id, c.source, c.device.as_deref()));
    }
    for c in &profile.content_inputs {
        devices.push(video_device(
            "content-input",
            &c.id,
            c.source,
            c.device.as_deref(),
        ));
    }
    for m in &profile.microphones {
        let (present, detail) = match m.source {
            AudioSource::TestTone => (true, "simulated test tone".to_owned()),
            AudioSource::Alsa => alsa_device(paths, m.device.as_deref()),
        };
        devices.push(device("microphone", &m.id, present, detail));
    }
    for s in &profile.speakers {
        let (present, detail) = match s.sink {
            AudioSink::Virtual => (true, "virtual (not played)".to_owned()),
            AudioSink::Alsa => alsa_device(paths, s.device.as_deref()),
        };
        devices.push(device("speaker", &s.id, present, detail));
    }
    for d in &profile.displays {
        let (present, detail) = match d.sink {
            DisplaySink::Virtual => (true, "virtual display".to_owned()),
            DisplaySink::Wayland => match std::env::var_os("WAYLAND_DISPLAY") {
                Some(_) => (true, "Wayland compositor".to_owned()),
                None => (
                    false,
                    "no Wayland compositor (WAYLAND_DISPLAY unset)".to_owned(),
                ),
            },
            DisplaySink::Kms => drm_connector(paths, d.connector.as_deref().unwrap_or_default()),
        };
        devices.push(device("display", &d.id, present, detail));
    }

    let mut names: Vec<&str> = profile.encoders.h264.iter().map(String::as_str).collect();
    names.extend(profile.decoders.h264.iter().map(String::as_str));
    names.extend(SOFTWARE_ENCODERS);
    let mut elements: Vec<ElementStatus> = Vec::new();
    for n in names {
        if !elements.iter().any(|e| e.name == n) {
            elements.push(ElementStatus {
                name: n.to_owned(),
                available: element_exists(n),
            });
        }
    }

    let missing = devices.iter().filter(|d| !d.present).count();
    HardwareStatus {
        profile: name.to_owned(),
        devices,
        elements,
        missing,
    }
}

fn device(kind: &'static str, id: &str, present: bool, detail: String) -> DeviceStatus {
    DeviceStatus {
        kind,
        id: id.to_owned(),
        present,
        detail,
    }
}

fn video_device(
    kind: &'static str,
    id: &str,
    source: VideoSource,
    path: Option<&Path>,
) -> DeviceStatus {
    let (present, detail) = match (source, path) {
        (VideoSource::TestPattern, _) => (true, "simulated test pattern".to_owned()),
        (VideoSource::TestPatternTimecode, _) => {
            (true, "simulated test pattern with a timecode".to_owned())
        }
        (VideoSource::V4l2, None) => (false, "no device named".to_owned()),
        (VideoSource::V4l2, Some(path)) => match super::v4l2::query_capabilities(path) {
            Ok(caps) if caps.can_capture => (true, format!("{} ({})", caps.card, caps.driver)),
            Ok(caps) => (
                false,
                format!("{} ({}) cannot capture video", caps.card, caps.driver),
            ),
            Err(e) => (false, e.to_string()),
        },
    };
    device(kind, id, present, detail)
}

/// `hw:CARD=<id>,DEV=<n>` (or `plughw:`): the card id is an entry of /proc/asound.
fn alsa_device(paths: &SystemPaths, name: Option<&str>) -> (bool, String) {
    let Some(name) = name else {
        return (false, "no ALSA device named".to_owned());
    };
    let card = name
        .split_once(':')
        .map(|(_, rest)| rest)
        .unwrap_or(name)
        .split(',')
        .find_map(|part| part.strip_prefix("CARD="));
    let Some(card) = card else {
        return (false, format!("{name}: no CARD= in the ALSA device name"));
    };
    // Card ids are plain names; anything else must not become a path component.
    if card.is_empty() || !card.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return (false, format!("{name}: {card:?} is not an ALSA card id"));
    }
    if paths.asound.join(card).exists() {
        (true, format!("ALSA card {card}"))
    } else {
        (
            false,
            format!("ALSA card {card} not found in {}", paths.asound.display()),
        )
    }
}

/// A connector `HDMI-A-1` is `/sys/class/drm/card<N>-HDMI-A-1`; its `status` says whether a
/// display is plugged in.
fn drm_connector(paths: &SystemPaths, connector: &str) -> (bool, String) {
    let entries = match std::fs::read_dir(&paths.drm) {
        Ok(entries) => entries,
        Err(e) => return (false, format!("{}: {e}", paths.drm.display())),
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(entry_name) = file_name.to_str() else {
            continue;
        };
        let matches = entry_name
            .split_once('-')
            .is_some_and(|(card, rest)| card.starts_with("card") && rest == connector);
        if matches {
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let status = status.trim();
            return (
                status == "connected",
                format!("DRM connector {entry_name}: {status}"),
            );
        }
    }
    (
        false,
        format!(
            "DRM connector {connector} not found in {}",
            paths.drm.display()
        ),
    )
}
