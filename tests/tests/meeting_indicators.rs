//! What status says about a meeting is measured (issue 11, points 1 and 2): `encrypted` and each
//! participant's `encryption` follow the real DTLS/SRTP state of their transports, and each
//! participant's `audio` / `video` follow what the far end really sends.
//!
//! A roomd in the test namespace hosts a meeting. Chromium joins as guest Alice (media both
//! ways, every stream keyed); then guest Mallory is admitted with a WHIP offer whose candidates
//! nobody can reach, so her streams are negotiated but never keyed: the meeting is not encrypted
//! until she leaves. Alice then stops sending her microphone (no track, no packets) and status
//! shows her audio off (and her not talking) while her video stays on, and on again when she
//! resumes; publishing again with her camera only (no audio media line) makes her audio none.

use std::time::Duration;

use roomd_tests::{BrowserPeer, HarnessError, TestNetwork, meeting};
use serde_json::{Value, json};

const PIN: &str = "246802";
const STATE_TIMEOUT: Duration = Duration::from_secs(20);
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
/// An offer from Chromium whose ICE candidates are mDNS names nothing resolves: roomd answers it,
/// but no connectivity check, DTLS handshake or SRTP key ever follows.
const UNREACHABLE_OFFER: &str =
    include_str!("../../daemon/media/src/webrtc/testdata/chromium-sendonly.sdp");

fn participant<'a>(meeting: &'a Value, name: &str) -> &'a Value {
    meeting::participant(meeting, name).unwrap_or(&Value::Null)
}

#[test]
fn encryption_and_media_states_follow_the_transports_and_the_far_end() -> Result<(), HarnessError> {
    let net = TestNetwork::create()?;
    let (host, hosted) = meeting::host_room_in(&net, PIN, STATE_TIMEOUT)?;
    let id = hosted["id"].as_str().unwrap_or_default().to_owned();
    // Nobody there: no stream, nothing is encrypted (a literal `true` said otherwise).
    std::thread::sleep(Duration::from_millis(1500));
    let empty = meeting::status(&host)?;
    assert_eq!(empty["encrypted"], false, "no streams yet: {empty}");

    // Alice: Chromium, media both ways, every stream keyed.
    let guests = format!("/api/v1/join/{id}/guests");
    let alice = BrowserPeer::direct_guest(
        &format!("{}/join/{id}", host.base_url()),
        "Alice",
        Some(PIN),
        &host.cert_path(),
    )?;
    alice.wait_for("in the lobby", STATE_TIMEOUT, |l| l["event"] == "requested")?;
    let lobby = meeting::wait_for(&host, "Alice in the lobby", STATE_TIMEOUT, |m| {
        participant(m, "Alice")["state"] == "lobby"
    })?;
    assert_eq!(
        participant(&lobby, "Alice")["encryption"],
        "none",
        "no media in the lobby: {lobby}"
    );
    let alice_id = participant(&lobby, "Alice")["id"].clone();
    host.command("meeting.admit", &json!({ "participant": alice_id }))?;
    let receives_from_alice = |m: &Value, kind: &str| {
        m["streams"].as_array().is_some_and(|streams| {
            streams.iter().any(|s| {
                s["participant"] == alice_id && s["direction"] == "receive" && s["kind"] == kind
            })
        })
    };
    let keyed = meeting::wait_for(&host, "Alice connected and encrypted", MEDIA_TIMEOUT, |m| {
        let a = participant(m, "Alice");
        m["encrypted"] == true
            && a["encryption"] == "dtls-srtp"
            && a["audio"] == "on"
            && a["video"] == "on"
            && receives_from_alice(m, "audio")
            && receives_from_alice(m, "video")
    })?;
    let streams = keyed["streams"].as_array().cloned().unwrap_or_default();
    assert!(
        streams.iter().all(|s| s["encrypted"] == true),
        "every stream keyed: {keyed}"
    );
    assert!(
        participant(&keyed, "Alice").get("verified").is_none(),
        "no verified field until something verifies: {keyed}"
    );

    // Mallory: admitted, her WHIP offer answered, but her transport never connects.
    let mallory: Value = host
        .request("POST", &guests)
        .json(&json!({ "name": "Mallory", "pin": PIN }))
        .send()?
        .expect_status(201, "Mallory asks to join")?
        .json()?;
    let mallory_id = mallory["guest_id"].as_str().unwrap_or_default().to_owned();
    let mallory_token = mallory["token"].as_str().unwrap_or_default().to_owned();
    host.command("meeting.admit", &json!({ "participant": mallory_id }))?;
    host.request("POST", &format!("{guests}/{mallory_id}/whip"))
        .bearer(&mallory_token)
        .header("Content-Type", "application/sdp")
        .body(UNREACHABLE_OFFER.as_bytes().to_vec())
        .send()?
        .expect_status(201, "Mallory's WHIP offer")?;
    let unkeyed = meeting::wait_for(&host, "a stream not keyed", STATE_TIMEOUT, |m| {
        m["encrypted"] == false && participant(m, "Mallory")["encryption"] == "none"
    })?;
    assert_eq!(
        participant(&unkeyed, "Alice")["encryption"],
        "dtls-srtp",
        "Alice's own streams stay encrypted: {unkeyed}"
    );
    host.request("DELETE", &format!("{guests}/{mallory_id}"))
        .bearer(&mallory_token)
        .send()?
        .expect_status(204, "Mallory leaves")?;
    meeting::wait_for(
        &host,
        "encrypted again without Mallory",
        STATE_TIMEOUT,
        |m| m["encrypted"] == true && meeting::participant(m, "Mallory").is_none(),
    )?;

    // Alice stops sending her microphone: her audio is off, her video stays on, and she is no
    // longer talking (her voice's level stops with it: no level reading says so).
    meeting::wait_for(
        &host,
        "Alice talking (Chromium's beep)",
        MEDIA_TIMEOUT,
        |m| participant(m, "Alice")["talking"] == true,
    )?;
    alice.command(&json!({ "send": "audio", "on": false }))?;
    alice.wait_for("audio stopped", STATE_TIMEOUT, |l| {
        l["event"] == "sending" && l["kind"] == "audio" && l["on"] == false
    })?;
    meeting::wait_for(&host, "Alice's audio off", MEDIA_TIMEOUT, |m| {
        let a = participant(m, "Alice");
        a["audio"] == "off" && a["video"] == "on" && a["talking"] == false
    })?;
    alice.command(&json!({ "send": "audio", "on": true }))?;
    meeting::wait_for(&host, "Alice's audio on again", MEDIA_TIMEOUT, |m| {
        participant(m, "Alice")["audio"] == "on"
    })?;

    // Alice publishes again with her camera only: her new connection has no audio media line,
    // so she sends no audio at all (none), not a muted one (off).
    alice.command(&json!({ "publish": ["video"] }))?;
    alice.wait_for("published video only", STATE_TIMEOUT, |l| {
        l["event"] == "published" && l["kinds"] == json!(["video"])
    })?;
    meeting::wait_for(&host, "Alice without an audio line", MEDIA_TIMEOUT, |m| {
        let a = participant(m, "Alice");
        a["audio"] == "none" && a["video"] == "on" && a["encryption"] == "dtls-srtp"
    })?;
    host.command("meeting.leave", &json!({}))?;
    Ok(())
}
