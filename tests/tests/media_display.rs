//! The media engine inside a real roomd on the simulated profile: the hardware probe and the
//! engine's state in the status tree, and the room display's snapshot route.

use std::time::{Duration, Instant};

use roomd_tests::{HarnessError, Roomd};
use serde_json::{Value, json};

fn status_at(roomd: &Roomd, token: &str, path: &str) -> Result<Value, HarnessError> {
    roomd
        .get(&format!("/api/v1/status/{path}"))
        .bearer(token)
        .send()?
        .expect_status(200, &format!("GET status {path}"))?
        .json()
}

/// Polls `path` until `done` holds for its value (the engine starts after READY).
fn wait_for_status(
    roomd: &Roomd,
    token: &str,
    path: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value, HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let value = status_at(roomd, token, path)?;
        if done(&value) {
            return Ok(value);
        }
        assert!(Instant::now() < deadline, "{path} stayed at {value}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert!(png.len() > 24, "PNG of {} bytes", png.len());
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    assert_eq!(&png[12..16], b"IHDR");
    let number = |at: usize| u32::from_be_bytes([png[at], png[at + 1], png[at + 2], png[at + 3]]);
    (number(16), number(20))
}

#[test]
fn hardware_and_media_engine_are_in_the_status() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let admin = roomd.admin_token()?;

    let hardware = status_at(&roomd, &admin, "system/hardware")?;
    assert_eq!(hardware["profile"], "simulated", "{hardware}");
    assert_eq!(hardware["missing"], 0, "{hardware}");
    let kinds: Vec<&str> = hardware["devices"]
        .as_array()
        .expect("devices is a list")
        .iter()
        .filter_map(|d| d["kind"].as_str())
        .collect();
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
    let x264 = hardware["elements"]
        .as_array()
        .expect("elements is a list")
        .iter()
        .find(|e| e["name"] == "x264enc")
        .cloned();
    assert_eq!(x264, Some(json!({"name": "x264enc", "available": true})));

    let media = wait_for_status(&roomd, &admin, "system/media", |m| m["state"] != "starting")?;
    assert_eq!(media["state"], "running", "{media}");
    assert_eq!(media["encoder"], "x264enc", "{media}");

    // The test tone reaches the level meter (5 Hz); muting silences it at the source.
    wait_for_status(&roomd, &admin, "audio/microphones/level", |l| {
        l.as_f64().is_some_and(|db| db > -60.0)
    })?;
    roomd.command("audio.microphones.mute", &json!({}))?;
    wait_for_status(&roomd, &admin, "audio/microphones/level", |l| {
        l.as_f64().is_some_and(|db| db <= -90.0)
    })?;
    Ok(())
}

#[test]
fn the_display_snapshot_is_a_png_for_those_who_may_see_the_room() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let admin = roomd.admin_token()?;
    // The engine starts after READY: the display runs once the media engine does (and again
    // after a rebuild, which a loaded machine may cause: 503 meanwhile, at most 15 s).
    let media = wait_for_status(&roomd, &admin, "system/media", |m| m["state"] != "starting")?;
    assert_eq!(media["state"], "running", "{media}");
    let deadline = Instant::now() + Duration::from_secs(15);
    let answer = loop {
        let answer = roomd
            .get("/api/v1/display/snapshot")
            .bearer(&admin)
            .send()?;
        if answer.status != 503 || Instant::now() > deadline {
            break answer.expect_status(200, "snapshot as admin")?;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(answer.header("content-type"), Some("image/png"));
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(png_size(&answer.body), (640, 360));

    let user = roomd.token_for("room-control")?;
    roomd
        .get("/api/v1/display/snapshot")
        .bearer(&user)
        .send()?
        .expect_status(200, "snapshot as room-control")?;
    let audit = roomd.token_for("audit")?;
    roomd
        .get("/api/v1/display/snapshot")
        .bearer(&audit)
        .send()?
        .expect_status(403, "snapshot as audit")?;
    roomd
        .get("/api/v1/display/snapshot")
        .send()?
        .expect_status(401, "snapshot without credentials")?;
    Ok(())
}

#[test]
fn camera_presets_are_saved_through_the_api_and_recalled() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let admin = roomd.admin_token()?;
    let panel = roomd.token_for("room-control")?;
    let run = |name: &str, args: Value| {
        roomd
            .request("POST", &format!("/api/v1/commands/{name}"))
            .bearer(&panel)
            .json(&args)
            .send()
    };
    run("video.camera.position.set", json!({"pan": 50, "zoom": 300}))?
        .expect_status(200, "move the camera")?;
    run("video.camera.preset.save", json!({"name": "door"}))?
        .expect_status(200, "save a preset")?;
    run("video.camera.position.set", json!({"pan": 0, "zoom": 100}))?
        .expect_status(200, "move back")?;
    run("video.camera.preset.recall", json!({"name": "door"}))?
        .expect_status(200, "recall the preset")?;
    assert_eq!(
        status_at(&roomd, &admin, "video/camera/position")?,
        json!({"pan": 50, "tilt": 0, "zoom": 300})
    );
    let config = roomd
        .get("/api/v1/config")
        .bearer(&admin)
        .send()?
        .expect_status(200, "GET config")?
        .json()?;
    assert_eq!(
        config["video"]["camera_presets"],
        json!([{"name": "door", "pan": 50, "tilt": 0, "zoom": 300}])
    );
    let refused = run("video.camera.preset.recall", json!({"name": "window"}))?
        .expect_status(422, "recall an unknown preset")?;
    assert!(
        refused.text().contains("saved presets: door"),
        "{}",
        refused.text()
    );
    run("video.camera.position.set", json!({"zoom": 401}))?
        .expect_status(422, "zoom out of range")?;
    Ok(())
}
