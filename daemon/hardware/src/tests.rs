use std::fs;
use std::path::Path;

use super::probe::SOFTWARE_ENCODERS;
use super::profile::{BUILTIN, VideoSource};
use super::*;

const GOOD: &str = r#"description = "test"

[[cameras]]
id = "main"
source = "test-pattern"
width = 320
height = 180
framerate = 15
ptz = "digital"
"#;

fn parse(source: &str) -> Result<Profile, ProfileError> {
    Profile::parse(source, Path::new("hw/test.toml"))
}

#[test]
fn every_shipped_profile_parses() {
    for (name, _) in BUILTIN {
        Profile::builtin(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let err = Profile::builtin("toaster").unwrap_err();
    assert!(
        err.to_string().contains("simulated, simulated-720p"),
        "{err}"
    );
}

#[test]
fn unknown_keys_name_file_line_column_and_key() {
    let source = GOOD.replace("ptz = \"digital\"", "ptz = \"digital\"\nzoom_speed = 3");
    let err = parse(&source).unwrap_err().to_string();
    assert!(
        err.starts_with("hw/test.toml:10:1: cameras.1.zoom_speed: unknown field `zoom_speed`"),
        "{err}"
    );
    let err = parse("description = \"x\"\n[speaker]\nid = \"a\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("hw/test.toml:2:2: speaker: unknown field"),
        "{err}"
    );
}

#[test]
fn bad_values_name_their_key() {
    let err = parse(&GOOD.replace("source = \"test-pattern\"", "source = \"webcam\""))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("hw/test.toml:5:10: cameras.1.source: unknown variant `webcam`"),
        "{err}"
    );
    let err = parse(&GOOD.replace("width = 320", "width = 321"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "hw/test.toml:6:1: cameras.1.width: 321 is not an even number in 64..=7680"
    );
    let err = parse(&GOOD.replace("source = \"test-pattern\"", "source = \"v4l2\""))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cameras.1.device: a v4l2 camera needs a device"),
        "{err}"
    );
    let twice = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[cameras]]").unwrap()..]);
    let err = parse(&twice).unwrap_err().to_string();
    assert!(
        err.contains("cameras.2.id: \"main\" is used twice in cameras"),
        "{err}"
    );
    let err = parse(&format!(
        "{GOOD}\n[encoders]\nh264 = [\"x264enc ! fakesink\"]\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("encoders.h264: \"x264enc ! fakesink\" is not a GStreamer element name"),
        "{err}"
    );
    let err = parse("description = \"x\"\n[[cameras]\n")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("hw/test.toml:2:"), "{err}");
    assert!(err.contains("TOML syntax error"), "{err}");
}

#[test]
fn simulated_profile_probes_present_everywhere() {
    let profile = Profile::builtin("simulated").unwrap();
    let status = probe("simulated", &profile, &SystemPaths::default(), &|name| {
        name == "x264enc"
    });
    assert_eq!(status.missing, 0, "{status:?}");
    let kinds: Vec<&str> = status.devices.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        [
            "camera",
            "content-input",
            "microphone",
            "speaker",
            "display"
        ]
    );
    let elements: Vec<(&str, bool)> = status
        .elements
        .iter()
        .map(|e| (e.name.as_str(), e.available))
        .collect();
    assert_eq!(
        elements,
        [("x264enc", true), ("openh264enc", false), ("vp8enc", false)]
    );
}

/// A profile naming devices this box lacks still probes: every entry is reported with the reason.
#[test]
fn missing_devices_are_reported_not_fatal() {
    let root = tempfile::tempdir().unwrap();
    let asound = root.path().join("asound");
    let drm = root.path().join("drm");
    fs::create_dir_all(asound.join("Speakerphone")).unwrap();
    fs::create_dir_all(drm.join("card0-HDMI-A-1")).unwrap();
    fs::write(drm.join("card0-HDMI-A-1/status"), "disconnected\n").unwrap();
    let paths = SystemPaths {
        asound,
        drm: drm.clone(),
    };
    let profile = Profile::builtin("intel-vaapi").unwrap();
    let status = probe("intel-vaapi", &profile, &paths, &|name| {
        SOFTWARE_ENCODERS.contains(&name)
    });

    let find = |kind: &str| status.devices.iter().find(|d| d.kind == kind).unwrap();
    assert!(find("microphone").present, "{status:?}");
    assert!(find("speaker").present);
    let display = find("display");
    assert!(!display.present);
    assert!(
        display.detail.contains("card0-HDMI-A-1: disconnected"),
        "{display:?}"
    );
    let camera = find("camera");
    if !Path::new("/dev/video0").exists() {
        assert!(!camera.present);
        assert!(camera.detail.contains("/dev/video0"), "{camera:?}");
    }
    assert!(status.missing >= 1);
    let vah264enc = status
        .elements
        .iter()
        .find(|e| e.name == "vah264enc")
        .unwrap();
    assert!(!vah264enc.available);

    fs::write(drm.join("card0-HDMI-A-1/status"), "connected\n").unwrap();
    let status = probe("intel-vaapi", &profile, &paths, &|_| false);
    assert!(
        status
            .devices
            .iter()
            .find(|d| d.kind == "display")
            .unwrap()
            .present
    );
}

#[test]
fn a_timecode_pattern_is_for_cameras_only() {
    let camera = parse(&GOOD.replace("\"test-pattern\"", "\"test-pattern-timecode\""))
        .expect("a camera may stamp a timecode");
    assert_eq!(camera.cameras[0].source, VideoSource::TestPatternTimecode);
    let content = format!(
        "{GOOD}\n[[content_inputs]]\nid = \"hdmi-in\"\nsource = \"test-pattern-timecode\"\n\
         width = 320\nheight = 180\nframerate = 15\n"
    );
    let err = parse(&content).unwrap_err().to_string();
    assert!(
        err.contains("content_inputs.1.source") && err.contains("cameras only"),
        "{err}"
    );
}
