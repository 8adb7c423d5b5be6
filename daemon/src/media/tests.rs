use super::encoder_choice::{self, Codec, EncoderSettings};
use super::fake_encoders;
use gstreamer::prelude::*;

const SETTINGS: EncoderSettings = EncoderSettings {
    bitrate_kbps: 500,
    framerate: 15,
};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn profile_elements_come_first_even_with_rank_none() {
    fake_encoders::register();
    let order = encoder_choice::candidates(&names(&["qsvh264enc", "no-such-enc"]));
    // The profile's element first, then the registered known hardware, then software.
    assert_eq!(order[0], "qsvh264enc");
    let position = |name: &str| order.iter().position(|n| n == name);
    assert!(position("v4l2h264enc") < position("x264enc"), "{order:?}");
    assert!(position("x264enc") < position("openh264enc"), "{order:?}");
    assert!(position("openh264enc") < position("vp8enc"), "{order:?}");
    assert_eq!(position("no-such-enc"), None);
}

#[test]
fn a_working_hardware_encoder_is_chosen() {
    fake_encoders::register();
    let chosen = encoder_choice::choose(&names(&["qsvh264enc", "x264enc"]), SETTINGS).unwrap();
    assert_eq!(chosen.name, "qsvh264enc");
    assert!(chosen.hardware);
    assert!(chosen.rejected.is_empty());
}

#[test]
fn a_hardware_encoder_that_fails_to_start_falls_back_to_software() {
    fake_encoders::register();
    let chosen = encoder_choice::choose(&names(&["vah264enc", "x264enc"]), SETTINGS).unwrap();
    assert_eq!(chosen.name, "x264enc");
    assert_eq!(chosen.codec, Codec::H264);
    assert!(!chosen.hardware);
    assert_eq!(chosen.rejected.len(), 1);
    assert!(
        chosen.rejected[0].starts_with("vah264enc: "),
        "{:?}",
        chosen.rejected
    );

    let err = encoder_choice::choose(&names(&["vah264enc"]), SETTINGS).unwrap_err();
    assert!(err.to_string().contains("vah264enc"), "{err}");
}

#[test]
fn software_encoders_get_real_time_settings() {
    fake_encoders::register();
    let x264 = encoder_choice::make("x264enc", SETTINGS).unwrap();
    assert_eq!(x264.property::<u32>("bframes"), 0);
    assert!(!x264.property::<bool>("b-adapt"));
    assert_eq!(x264.property::<u32>("bitrate"), 500);
    assert_eq!(x264.property::<u32>("key-int-max"), 150);
    let vp8 = encoder_choice::make("vp8enc", SETTINGS).unwrap();
    assert_eq!(vp8.property::<i32>("lag-in-frames"), 0);
    assert_eq!(vp8.property::<i32>("target-bitrate"), 500_000);
    let chosen = encoder_choice::choose(&names(&["vp8enc"]), SETTINGS).unwrap();
    assert_eq!(chosen.codec, Codec::Vp8);
}
