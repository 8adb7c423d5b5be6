//! roomd in a Janus VideoRoom with a real Chromium participant (docs/meetings.md, target
//! `janus`): media flows both ways over the test network, HTTPS to Janus is verified against
//! the test CA (`meeting.ca_file`), the PIN stays secret, and when Janus goes away mid-meeting
//! roomd shows `reconnecting` and gets back to `connected` by itself once Janus is back.
//!
//! Layout: Janus inside the test namespace (10.77.<n>.2), roomd and Chromium on the host (their
//! ICE candidates include 10.77.<n>.1).

use std::time::{Duration, Instant};

use roomd_tests::{BrowserPeer, HarnessError, Janus, Roomd, TestNetwork, browser, meeting};
use serde_json::{Value, json};

const ROOM: u64 = 7001;
const PIN: &str = "8642";
const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);
/// roomd must notice that Janus is gone: its long poll fails at once, ICE within seconds.
const NOTICE_TIMEOUT: Duration = Duration::from_secs(30);
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// About one second of video at 30 fps.
const FRAMES: u64 = 30;

fn janus_target(janus: &Janus) -> Value {
    json!({
        "kind": "janus",
        "server": janus.https_url(),
        "room": ROOM,
        "pin": PIN,
        "display_name": "Board room",
    })
}

fn roomd_trusting(janus: &Janus) -> Result<Roomd, HarnessError> {
    Roomd::start_claimed(&format!(
        "[system]\nname = \"Board room\"\n[meeting]\nca_file = \"{}\"\n",
        janus.ca_path().display()
    ))
}

/// Chromium decodes video from a remote feed (roomd's is the only other one) in a stats line
/// from line number `after` on.
fn chromium_decodes_roomd(chromium: &BrowserPeer, after: usize) -> Result<Value, HarnessError> {
    chromium.wait_for_after(after, "video decoded from roomd", MEDIA_TIMEOUT, |line| {
        line["event"] == "stats"
            && browser::inbound_video_frames(line)
                .iter()
                .any(|f| *f > FRAMES)
    })
}

#[test]
fn roomd_meets_chromium_in_janus_and_survives_a_janus_restart() -> Result<(), HarnessError> {
    let started = Instant::now();
    let net = TestNetwork::create()?;
    let mut janus = Janus::builder(&net).room(ROOM).pin(PIN).start()?;
    let chromium = BrowserPeer::janus_participant(&janus, "Alice")?;
    chromium.wait_for("joined the room", JOIN_TIMEOUT, |l| {
        l["event"] == "published"
    })?;
    let roomd = roomd_trusting(&janus)?;

    roomd.command("meeting.join", &json!({ "target": janus_target(&janus) }))?;
    let connected = meeting::wait_for(&roomd, "connected", JOIN_TIMEOUT, |m| {
        m["state"] == "connected"
    })?;
    assert_eq!(connected["target"]["kind"], "janus", "{connected}");
    assert_eq!(connected["target"]["room"], ROOM, "{connected}");
    assert_eq!(connected["encrypted"], true, "{connected}");

    chromium_decodes_roomd(&chromium, 0)?;
    let receiving = meeting::wait_for_received_video(&roomd, None, FRAMES, MEDIA_TIMEOUT)?;
    let alice = meeting::participant(&receiving, "Alice")
        .unwrap_or_else(|| panic!("Alice is not among the participants: {receiving}"));
    assert_eq!(alice["encryption"], "dtls-srtp", "{alice}");
    assert!(
        !receiving.to_string().contains(PIN),
        "the PIN appears in status.meeting: {receiving}"
    );
    eprintln!("media both ways after {:?}", started.elapsed());

    // Janus goes away mid-meeting (killed: every session and PeerConnection with it).
    let token = roomd.token_for("user")?;
    let mut events = roomd.websocket_with_token(&token)?;
    events.send_json(&json!({"type": "subscribe", "status": ["meeting"], "events": ["*"]}))?;
    janus.stop();
    let lost_at = Instant::now();
    events.wait_for("meeting state reconnecting", NOTICE_TIMEOUT, |m| {
        meeting::state_in_event(m) == Some("reconnecting")
    })?;
    eprintln!("reconnecting {:?} after Janus stopped", lost_at.elapsed());
    let mark = chromium.line_count();
    janus.start_again()?;
    let back_at = Instant::now();
    events.wait_for("meeting state connected again", RECONNECT_TIMEOUT, |m| {
        meeting::state_in_event(m) == Some("connected")
    })?;
    eprintln!("connected {:?} after Janus was back", back_at.elapsed());
    // Chromium joins again by itself too: fresh media both ways in the new sessions (only the
    // new connections are in stats lines after its rejoin).
    let rejoined = chromium.wait_for_line_number(mark, "joined again", JOIN_TIMEOUT, |l| {
        l["event"] == "published"
    })?;
    chromium_decodes_roomd(&chromium, rejoined + 1)?;
    meeting::wait_for_received_video(&roomd, None, FRAMES, MEDIA_TIMEOUT)?;

    roomd.command("meeting.leave", &json!({}))?;
    meeting::wait_for(&roomd, "idle after leaving", JOIN_TIMEOUT, |m| {
        m["state"] == "idle"
    })?;
    eprintln!("whole test {:?}", started.elapsed());
    Ok(())
}

#[test]
fn a_wrong_janus_pin_fails_with_a_reason_and_no_secret() -> Result<(), HarnessError> {
    let net = TestNetwork::create()?;
    let janus = Janus::builder(&net).room(ROOM).pin(PIN).start()?;
    let roomd = roomd_trusting(&janus)?;
    let mut target = janus_target(&janus);
    target["pin"] = json!("1111");
    roomd.command("meeting.join", &json!({ "target": target }))?;
    let failed = meeting::wait_for(&roomd, "failed", JOIN_TIMEOUT, |m| m["state"] == "failed")?;
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(!error.is_empty(), "no error in {failed}");
    assert!(
        !failed.to_string().contains("1111"),
        "the PIN leaks: {failed}"
    );
    Ok(())
}

#[test]
fn janus_with_a_certificate_roomd_does_not_trust_is_refused() -> Result<(), HarnessError> {
    let net = TestNetwork::create()?;
    let janus = Janus::builder(&net).room(ROOM).pin(PIN).start()?;
    // No meeting.ca_file: Janus's test CA is unknown to roomd.
    let roomd = Roomd::start_claimed("")?;
    roomd.command("meeting.join", &json!({ "target": janus_target(&janus) }))?;
    let failed = meeting::wait_for(&roomd, "failed", JOIN_TIMEOUT, |m| m["state"] == "failed")?;
    let error = failed["error"].as_str().unwrap_or_default().to_lowercase();
    assert!(
        error.contains("certificate") || error.contains("tls"),
        "the error should say the certificate is not trusted: {failed}"
    );
    Ok(())
}
