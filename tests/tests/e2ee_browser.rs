//! The browser's SFrame (webui/src/e2ee/sframe.ts, what the guest pages run) against roomd's
//! (`roomd-e2ee`), in Debian's Chromium: RFC 9605's own test vectors, frames of every codec
//! protected by roomd and opened in the browser, and protected in the browser and opened by roomd.

use std::path::PathBuf;
use std::time::Duration;

use roomd_e2ee::frame::{open, protect};
use roomd_e2ee::{Codec, KeySecret, ReceiverKeys, SenderKey};
use roomd_tests::{BrowserPeer, HarnessError};
use serde_json::{Value, json};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex from the driver"))
        .collect()
}

fn codec(name: &str) -> Codec {
    match name {
        "opus" => Codec::Opus,
        "vp8" => Codec::Vp8,
        _ => Codec::H264,
    }
}

/// Sample frames: an Opus frame, a VP8 key and delta frame, an H.264 access unit with SPS, PPS
/// and an IDR slice holding H.264's own escapes (`00 00 03`), all with four-byte start codes as
/// encoders write them.
fn frames() -> Vec<(&'static str, Vec<u8>)> {
    let mut idr = vec![0x65, 0x88, 0x84];
    idr.extend((0..300u32).map(|i| [0u8, 0, 3, 1, 0xff][(i % 5) as usize]));
    idr.push(0x42);
    let mut au = Vec::new();
    for unit in [
        &[0x67, 0x42, 0xc0, 0x1f, 0xda][..],
        &[0x68, 0xce, 0x3c, 0x80],
        &idr,
    ] {
        au.extend_from_slice(&[0, 0, 0, 1]);
        au.extend_from_slice(unit);
    }
    vec![
        ("opus", (0..80u8).map(|b| b.wrapping_mul(7)).collect()),
        ("vp8", (0..120u8).map(|b| b.wrapping_mul(2)).collect()),
        ("vp8", (1..121u8).collect()),
        ("h264", au),
    ]
}

/// `webui/src/e2ee/sframe.ts` bundled for a page.
fn bundle(dir: &std::path::Path) -> PathBuf {
    let out = dir.join("sframe.iife.js");
    roomd_tests::e2ee::bundle_webui_module("sframe", Some("roomdSframe"), &out);
    out
}

#[test]
fn the_browser_and_roomd_speak_the_same_sframe() -> Result<(), HarnessError> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let bundle = bundle(dir.path());
    let room_secret = [9u8; 32];
    let browser_secret = [10u8; 32];
    let mut room = SenderKey::new(3, &KeySecret::new(room_secret)).expect("room key");
    let frames = frames();
    let fixtures = json!({
        "vectors": serde_json::from_str::<Value>(include_str!("../../daemon/e2ee/tests/rfc9605-sframe.json"))
            .expect("vectors")["sframe"],
        "room_kid": 3,
        "room_secret": hex(&room_secret),
        "browser_kid": 4,
        "browser_secret": hex(&browser_secret),
        "frames": frames.iter().map(|(codec_name, plain)| json!({
            "codec": codec_name,
            "plain": hex(plain),
            "protected": hex(&protect(codec(codec_name), &mut room, plain).expect("roomd protects")),
        })).collect::<Vec<_>>(),
    });
    let fixtures_path = dir.path().join("fixtures.json");
    std::fs::write(&fixtures_path, fixtures.to_string()).expect("write the fixtures");
    let driver = BrowserPeer::start(
        "sframe-check.mjs",
        &[
            "--bundle".into(),
            bundle.display().to_string(),
            "--fixtures".into(),
            fixtures_path.display().to_string(),
        ],
    )?;
    let result = driver.wait_for("the SFrame results", Duration::from_secs(60), |line| {
        line["event"] == "sframe" || line["event"] == "error"
    })?;
    assert_eq!(result["event"], "sframe", "{result}");

    // RFC 9605's vectors: the browser seals to the published ciphertext and opens it.
    let vectors: Vec<Value> =
        serde_json::from_str::<Value>(include_str!("../../daemon/e2ee/tests/rfc9605-sframe.json"))
            .expect("vectors")["sframe"]
            .as_array()
            .cloned()
            .unwrap_or_default();
    let checked = result["vectors"].as_array().cloned().unwrap_or_default();
    assert_eq!(checked.len(), 2, "both AES-GCM vectors ran: {result}");
    for got in &checked {
        let want = vectors
            .iter()
            .find(|v| v["cipher_suite"] == got["suite"])
            .expect("the vector");
        assert_eq!(got["sealed"], want["ct"], "suite {} sealed", got["suite"]);
        assert_eq!(got["opened"], want["pt"], "suite {} opened", got["suite"]);
    }

    // roomd → browser.
    let opened = result["opened"].as_array().cloned().unwrap_or_default();
    assert_eq!(opened.len(), frames.len());
    for ((name, plain), got) in frames.iter().zip(&opened) {
        assert_eq!(
            got["plain"],
            hex(plain),
            "the browser opened roomd's {name} frame: {got}"
        );
    }

    // browser → roomd; the browser's frames are not roomd's own.
    let mut keys = ReceiverKeys::default();
    keys.insert(4, &KeySecret::new(browser_secret))
        .expect("browser key");
    let protected = result["protected"].as_array().cloned().unwrap_or_default();
    assert_eq!(protected.len(), frames.len());
    for ((name, plain), got) in frames.iter().zip(&protected) {
        let data = unhex(got["protected"].as_str().unwrap_or_default());
        assert_ne!(&data, plain, "the browser sent a {name} frame in the clear");
        assert_eq!(
            &open(codec(name), &keys, &data).expect("roomd opens the browser's frame"),
            plain,
            "{name}"
        );
    }
    Ok(())
}
