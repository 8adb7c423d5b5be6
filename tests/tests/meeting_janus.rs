//! roomd in a Janus VideoRoom with a real Chromium participant (docs/meetings.md, target
//! `janus`): media flows both ways over the test network, HTTPS to Janus is verified against
//! the test CA (`meeting.ca_file`), the PIN stays secret, and when Janus goes away mid-meeting
//! roomd shows `reconnecting` and gets back to `connected` by itself once Janus is back. Content
//! the room shares reaches the others as a second feed, "<display name> (content)".
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

/// Chromium as "Alice", publishing in the room before roomd arrives.
fn alice_publishing(janus: &Janus) -> Result<BrowserPeer, HarnessError> {
    let chromium = BrowserPeer::janus_participant(janus, "Alice")?;
    chromium.wait_for("joined the room", JOIN_TIMEOUT, |l| {
        l["event"] == "published"
    })?;
    Ok(chromium)
}

fn leave(roomd: &Roomd) -> Result<(), HarnessError> {
    roomd.command("meeting.leave", &json!({}))?;
    meeting::wait_for(roomd, "idle after leaving", JOIN_TIMEOUT, |m| {
        m["state"] == "idle"
    })?;
    Ok(())
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
    let chromium = alice_publishing(&janus)?;
    let roomd = roomd_trusting(&janus)?;

    roomd.command("meeting.join", &json!({ "target": janus_target(&janus) }))?;
    let connected = meeting::wait_for(&roomd, "connected", JOIN_TIMEOUT, |m| {
        m["state"] == "connected"
    })?;
    assert_eq!(connected["target"]["kind"], "janus", "{connected}");
    assert_eq!(connected["target"]["room"], ROOM, "{connected}");
    // Measured on the transports once their DTLS handshakes keyed SRTP, not at once.
    meeting::wait_for(&roomd, "every stream encrypted", MEDIA_TIMEOUT, |m| {
        m["encrypted"] == true
    })?;

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

    leave(&roomd)?;
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

/// Frames Chromium decoded from its connection `peer` in its newest stats line (0 before any).
fn decoded_from(chromium: &BrowserPeer, peer: &str) -> u64 {
    chromium
        .latest_stats()
        .and_then(|stats| browser::inbound_video_frames_of(&stats, peer))
        .unwrap_or(0)
}

/// roomd shares content in the meeting: Chromium decodes a second roomd feed named "Board room
/// (content)", which roomd neither lists as a participant nor receives itself; the feed leaves
/// when sharing stops (the camera keeps flowing) and when the room leaves, and comes at once when
/// the room joins while sharing.
#[test]
fn shared_content_reaches_janus_participants_as_a_second_feed() -> Result<(), HarnessError> {
    let started = Instant::now();
    let net = TestNetwork::create()?;
    let janus = Janus::builder(&net).room(ROOM).pin(PIN).start()?;
    let chromium = alice_publishing(&janus)?;
    let roomd = roomd_trusting(&janus)?;
    roomd.command("meeting.join", &json!({ "target": janus_target(&janus) }))?;
    meeting::wait_for(&roomd, "connected", JOIN_TIMEOUT, |m| {
        m["state"] == "connected"
    })?;
    let camera = chromium.wait_for("roomd's camera feed", JOIN_TIMEOUT, |l| {
        l["event"] == "subscribed" && l["display"] == "Board room"
    })?;
    let camera_peer = format!("feed-{}", camera["feed"]);
    chromium.wait_for("roomd's camera decoded", MEDIA_TIMEOUT, |l| {
        l["event"] == "stats"
            && browser::inbound_video_frames_of(l, &camera_peer).is_some_and(|f| f > FRAMES)
    })?;

    // Sharing starts: a second roomd feed, named after the room, that Chromium decodes.
    let mark = chromium.line_count();
    roomd.command("video.content.start", &json!({}))?;
    let content_feed = content_feed_after(&chromium, mark)?;
    assert_ne!(
        content_feed, camera["feed"],
        "the content is a feed of its own"
    );
    let content_peer = format!("feed-{content_feed}");
    chromium.wait_for_after(mark, "roomd's content decoded", MEDIA_TIMEOUT, |l| {
        l["event"] == "stats"
            && browser::inbound_video_frames_of(l, &content_peer).is_some_and(|f| f > FRAMES)
    })?;
    eprintln!("content decoded by Chromium after {:?}", started.elapsed());

    // roomd sends the content as a stream of its own, and neither lists nor receives itself.
    let sending = meeting::wait_for(&roomd, "content sent", MEDIA_TIMEOUT, |m| {
        meeting::streams(m, "send", "video")
            .any(|s| s["participant"] == "content" && s["frames"].as_u64() > Some(FRAMES))
    })?;
    let names: Vec<&Value> = sending["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| &p["name"])
        .collect();
    assert_eq!(names, vec!["Alice"], "{sending}");
    // Had roomd subscribed to its own content feed, it would be participant j-<feed> (with
    // streams); the room's own content is reported only as `content`, and as a sender.
    let own_feed = format!("j-{content_feed}");
    assert!(
        !sending.to_string().contains(&own_feed),
        "roomd receives its own content feed: {sending}"
    );
    assert!(
        meeting::streams(&sending, "receive", "video")
            .filter(|s| s["participant"] == "content")
            .all(|s| s["frames"] == 0),
        "roomd decodes video on its content connection: {sending}"
    );
    assert_eq!(sending["state"], "connected", "{sending}");
    assert_eq!(sending["error"], "", "{sending}");

    // Sharing stops: the content feed leaves, the camera keeps flowing.
    let mark = chromium.line_count();
    roomd.command("video.content.stop", &json!({}))?;
    chromium.wait_for_after(mark, "roomd's content feed left", MEDIA_TIMEOUT, |l| {
        l["event"] == "unsubscribed" && l["feed"] == content_feed
    })?;
    let after = chromium.line_count();
    let camera_frames = decoded_from(&chromium, &camera_peer);
    chromium.wait_for_after(after, "roomd's camera still decoded", MEDIA_TIMEOUT, |l| {
        l["event"] == "stats"
            && browser::inbound_video_frames_of(l, &content_peer).is_none()
            && browser::inbound_video_frames_of(l, &camera_peer)
                .is_some_and(|f| f > camera_frames + FRAMES)
    })?;
    let stopped = meeting::wait_for(&roomd, "content no longer sent", MEDIA_TIMEOUT, |m| {
        m["state"] == "connected"
            && !meeting::streams(m, "send", "video").any(|s| s["participant"] == "content")
    })?;
    assert!(
        meeting::participant(&stopped, "Alice").is_some(),
        "{stopped}"
    );

    // Leaving while sharing takes the content feed along; joining while sharing brings it
    // (under a new id) at once.
    let mark = chromium.line_count();
    roomd.command("video.content.start", &json!({}))?;
    let again = content_feed_after(&chromium, mark)?;
    assert_ne!(again, content_feed, "a new share is a new feed");
    roomd.command("meeting.leave", &json!({}))?;
    chromium.wait_for_after(
        mark,
        "the content feed left with the room",
        MEDIA_TIMEOUT,
        |l| l["event"] == "unsubscribed" && l["feed"] == again,
    )?;
    meeting::wait_for(&roomd, "idle after leaving", JOIN_TIMEOUT, |m| {
        m["state"] == "idle"
    })?;
    let mark = chromium.line_count();
    roomd.command("meeting.join", &json!({ "target": janus_target(&janus) }))?;
    let rejoined = content_feed_after(&chromium, mark)?;
    let rejoined_peer = format!("feed-{rejoined}");
    chromium
        .wait_for_after(
            mark,
            "content decoded after joining while shared",
            MEDIA_TIMEOUT,
            |l| {
                l["event"] == "stats"
                    && browser::inbound_video_frames_of(l, &rejoined_peer)
                        .is_some_and(|f| f > FRAMES)
            },
        )
        .inspect_err(|_| {
            // Seen once in a full run (no RTP at all on the new content feed): whether the
            // room's content stream was sending tells an encoder that stopped from a publisher
            // that does not send.
            let status = meeting::status(&roomd).map(|m| m.to_string());
            eprintln!("--- roomd's status.meeting: {status:?}");
            eprintln!("--- roomd's log:\n{}", roomd.stderr_text());
        })?;

    leave(&roomd)?;
    eprintln!("whole test {:?}", started.elapsed());
    Ok(())
}

/// The feed id of roomd's content that Chromium subscribes to in a line from number `after` on.
fn content_feed_after(chromium: &BrowserPeer, after: usize) -> Result<Value, HarnessError> {
    let subscribed = chromium.wait_for_after(after, "roomd's content feed", JOIN_TIMEOUT, |l| {
        l["event"] == "subscribed" && l["display"] == "Board room (content)"
    })?;
    Ok(subscribed["feed"].clone())
}
