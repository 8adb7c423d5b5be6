//! Meetings roomd hosts itself (docs/meetings.md, target `hosted` and the guest API): a Chromium
//! guest asks to join, waits in the lobby, is admitted with `meeting.admit`, and media flows both
//! ways; and two rooms in a direct call, one hosting, the other joining with target `direct`.
//!
//! Layout: the hosting roomd runs inside the test namespace (10.77.<n>.2); the guest (Chromium,
//! or the calling roomd) runs on the host and reaches it through the veth. Certificates are
//! verified: the guest and the caller trust the host's self-signed certificate file.

use std::time::{Duration, Instant};

use roomd_tests::{BrowserPeer, HarnessError, Roomd, TestNetwork, browser, meeting};
use serde_json::{Value, json};

const PIN: &str = "135790";
const STATE_TIMEOUT: Duration = Duration::from_secs(20);
const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);
/// About one second of video at 30 fps.
const FRAMES: u64 = 30;

/// A claimed roomd in the namespace, hosting a meeting with PIN; returns it with the meeting id.
fn hosting(net: &TestNetwork) -> Result<(Roomd, String), HarnessError> {
    let (host, hosted) = meeting::host_room_in(net, PIN, STATE_TIMEOUT)?;
    let id = hosted["id"].as_str().unwrap_or_default().to_owned();
    let join_url = hosted["join_url"].as_str().unwrap_or_default();
    assert!(
        join_url.ends_with(&format!("/join/{id}")),
        "join_url {join_url:?} does not end in /join/{id}"
    );
    assert!(
        !hosted.to_string().contains(PIN),
        "the PIN appears in status.meeting: {hosted}"
    );
    Ok((host, id))
}

/// The join address on the address the test reaches the host at.
fn join_url(host: &Roomd, id: &str) -> String {
    format!("{}/join/{id}", host.base_url())
}

/// The id of the participant called `name` once `condition` holds for it.
fn participant_id(
    host: &Roomd,
    name: &str,
    condition: impl Fn(&Value) -> bool,
) -> Result<String, HarnessError> {
    let meeting = meeting::wait_for(host, &format!("participant {name}"), STATE_TIMEOUT, |m| {
        meeting::participant(m, name).is_some_and(&condition)
    })?;
    Ok(meeting::participant(&meeting, name)
        .and_then(|p| p["id"].as_str())
        .unwrap_or_default()
        .to_owned())
}

#[test]
fn chromium_guest_waits_in_the_lobby_is_admitted_and_meets_the_room() -> Result<(), HarnessError> {
    let started = Instant::now();
    let net = TestNetwork::create()?;
    let (host, id) = hosting(&net)?;
    let guests = format!("/api/v1/join/{id}/guests");

    // Refusals first, through the API itself: wrong PIN, unknown meeting, media before admission.
    let wrong = host
        .request("POST", &guests)
        .json(&json!({ "name": "Mallory", "pin": "000000" }))
        .send()?;
    assert_eq!(wrong.status, 403, "wrong PIN: {}", wrong.text());
    let unknown = host
        .request("POST", "/api/v1/join/no-such-meeting/guests")
        .json(&json!({ "name": "Mallory", "pin": PIN }))
        .send()?;
    assert_eq!(unknown.status, 404, "unknown meeting: {}", unknown.text());
    let early: Value = host
        .request("POST", &guests)
        .json(&json!({ "name": "Early", "pin": PIN }))
        .send()?
        .expect_status(201, "a guest asking to join")?
        .json()?;
    assert_eq!(early["state"], "lobby", "{early}");
    let early_token = early["token"].as_str().unwrap_or_default();
    let early_id = early["guest_id"].as_str().unwrap_or_default();
    let not_yet = host
        .request("POST", &format!("{guests}/{early_id}/whip"))
        .bearer(early_token)
        .header("Content-Type", "application/sdp")
        .body(b"v=0\r\n".to_vec())
        .send()?;
    assert!(
        (400..500).contains(&not_yet.status),
        "WHIP from the lobby must be refused, got {}: {}",
        not_yet.status,
        not_yet.text()
    );

    // The real guest: Chromium, verifying the host's certificate.
    let guest =
        BrowserPeer::direct_guest(&join_url(&host, &id), "Alice", Some(PIN), &host.cert_path())?;
    guest.wait_for("in the lobby", STATE_TIMEOUT, |l| {
        l["event"] == "requested" && l["state"] == "lobby"
    })?;
    let alice = participant_id(&host, "Alice", |p| p["state"] == "lobby")?;
    host.command("meeting.admit", &json!({ "participant": alice }))?;
    guest.wait_for("admitted", STATE_TIMEOUT, |l| {
        l["event"] == "state" && l["state"] == "admitted"
    })?;
    guest.wait_for("WHIP and WHEP answered", STATE_TIMEOUT, |l| {
        l["event"] == "playing"
    })?;
    guest.wait_for("video both ways", MEDIA_TIMEOUT, |l| {
        l["event"] == "stats"
            && browser::inbound_video_frames(l).iter().any(|f| *f > FRAMES)
            && browser::inbound_audio_packets(l).iter().any(|p| *p > 0)
            && browser::outbound_video_frames(l)
                .iter()
                .any(|f| *f > FRAMES)
    })?;
    let receiving = meeting::wait_for_received_video(&host, None, FRAMES, MEDIA_TIMEOUT)?;
    let alice_status = meeting::participant(&receiving, "Alice")
        .unwrap_or_else(|| panic!("Alice is gone: {receiving}"));
    assert_eq!(alice_status["state"], "connected", "{alice_status}");
    assert_eq!(alice_status["encryption"], "dtls-srtp", "{alice_status}");
    eprintln!(
        "guest admitted, media both ways after {:?}",
        started.elapsed()
    );

    host.command("meeting.remove", &json!({ "participant": alice }))?;
    guest.wait_for("removed", STATE_TIMEOUT, |l| {
        l["event"] == "state" && l["state"] == "removed"
    })?;
    host.command("meeting.leave", &json!({}))?;
    meeting::wait_for(&host, "idle after ending the meeting", STATE_TIMEOUT, |m| {
        m["state"] == "idle"
    })?;
    Ok(())
}

#[test]
fn two_rooms_in_a_direct_call() -> Result<(), HarnessError> {
    let started = Instant::now();
    let net = TestNetwork::create()?;
    let (host, id) = hosting(&net)?;
    // The caller on the host side: API on 127.0.0.1, ICE from 10.77.<n>.1; it trusts the host's
    // self-signed certificate as an extra CA.
    let caller = Roomd::start_claimed(&format!(
        "[system]\nname = \"Caller room\"\n[meeting]\nca_file = \"{}\"\n",
        host.cert_path().display()
    ))?;
    caller.command(
        "meeting.join",
        &json!({ "target": {
            "kind": "direct",
            "address": join_url(&host, &id),
            "pin": PIN,
            "display_name": "Caller room",
        } }),
    )?;
    meeting::wait_for(&caller, "the caller in the lobby", STATE_TIMEOUT, |m| {
        m["state"] == "lobby"
    })?;
    let caller_id = participant_id(&host, "Caller room", |p| p["state"] == "lobby")?;
    host.command("meeting.admit", &json!({ "participant": caller_id }))?;
    let connected = meeting::wait_for(&caller, "the caller connected", STATE_TIMEOUT, |m| {
        m["state"] == "connected"
    })?;
    assert_eq!(connected["target"]["kind"], "direct", "{connected}");
    // Measured on the transports once their DTLS handshakes keyed SRTP, not at once.
    meeting::wait_for(&caller, "every stream encrypted", MEDIA_TIMEOUT, |m| {
        m["encrypted"] == true
    })?;
    assert!(
        !connected.to_string().contains(PIN),
        "the PIN appears in the caller's status: {connected}"
    );
    meeting::wait_for_received_video(&host, None, FRAMES, MEDIA_TIMEOUT)?;
    meeting::wait_for_received_video(&caller, None, FRAMES, MEDIA_TIMEOUT)?;
    eprintln!("two rooms in a call after {:?}", started.elapsed());

    caller.command("meeting.leave", &json!({}))?;
    meeting::wait_for(&host, "the caller gone from the host", STATE_TIMEOUT, |m| {
        meeting::participant(m, "Caller room").is_none()
    })?;
    Ok(())
}
