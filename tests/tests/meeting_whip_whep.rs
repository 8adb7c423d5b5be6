//! Target `whip` (docs/meetings.md): the room publishes by WHIP (RFC 9725) and plays a WHEP
//! resource, against a standards WHIP/WHEP server. The only one available offline is roomd's
//! own guest API, which has RFC 9725 semantics (POST application/sdp → 201 + Location, DELETE to
//! end): room B hosts a meeting, the test arrives as a guest and admits itself, and room A
//! joins with that guest's WHIP and WHEP URLs and guest token.
//!
//! Layout as in meeting_direct.rs: B runs in the test namespace (10.77.<n>.2), A on the host
//! (API on 127.0.0.1, ICE from 10.77.<n>.1), trusting B's self-signed certificate.

use std::time::{Duration, Instant};

use roomd_tests::{HarnessError, Roomd, TestNetwork, meeting};
use serde_json::{Value, json};

const PIN: &str = "975310";
const GUEST_NAME: &str = "Room A by WHIP";
const STATE_TIMEOUT: Duration = Duration::from_secs(20);
const MEDIA_TIMEOUT: Duration = Duration::from_secs(20);
/// About one second of video at 30 fps.
const FRAMES: u64 = 30;

/// Room B, hosting a meeting with PIN in the namespace; returns it with the meeting id.
fn hosting(net: &TestNetwork) -> Result<(Roomd, String), HarnessError> {
    let mut host = Roomd::builder()
        .config("[system]\nname = \"Room B\"\n")
        .in_network(net)
        .start()?;
    host.claim(roomd_tests::ADMIN_USERNAME, roomd_tests::ADMIN_PASSWORD)?;
    let hosted = meeting::host(&host, Some(PIN), STATE_TIMEOUT)?;
    let id = hosted["id"].as_str().unwrap_or_default().to_owned();
    Ok((host, id))
}

/// A guest of B's meeting, arrived through the guest API and admitted on B.
struct Guest {
    id: String,
    token: String,
    /// `<B>/api/v1/join/<meeting>/guests/<guest>`.
    url: String,
}

fn admitted_guest(host: &Roomd, meeting_id: &str) -> Result<Guest, HarnessError> {
    let arrived: Value = host
        .request("POST", &format!("/api/v1/join/{meeting_id}/guests"))
        .json(&json!({ "name": GUEST_NAME, "pin": PIN }))
        .send()?
        .expect_status(201, "the test arriving as a guest")?
        .json()?;
    assert_eq!(arrived["state"], "lobby", "{arrived}");
    let id = arrived["guest_id"].as_str().unwrap_or_default().to_owned();
    let token = arrived["token"].as_str().unwrap_or_default().to_owned();
    assert!(!id.is_empty() && !token.is_empty(), "{arrived}");
    host.command("meeting.admit", &json!({ "participant": id }))?;
    let url = format!("{}/api/v1/join/{meeting_id}/guests/{id}", host.base_url());
    Ok(Guest { id, token, url })
}

/// Room A on the host side, trusting B's certificate for meeting signalling.
fn room_a(host: &Roomd) -> Result<Roomd, HarnessError> {
    Roomd::start_claimed(&format!(
        "[system]\nname = \"Room A\"\n[meeting]\nca_file = \"{}\"\n",
        host.cert_path().display()
    ))
}

fn whip_target(guest: &Guest, token: &str) -> Value {
    json!({ "kind": "whip", "url": format!("{}/whip", guest.url), "token": token,
            "whep_url": format!("{}/whep", guest.url) })
}

fn streams_of(meeting: &Value, participant: &str) -> usize {
    meeting["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["participant"] == participant)
        .count()
}

#[test]
fn a_room_publishes_by_whip_and_plays_by_whep() -> Result<(), HarnessError> {
    let started = Instant::now();
    let net = TestNetwork::create()?;
    let (host, meeting_id) = hosting(&net)?;
    let guest = admitted_guest(&host, &meeting_id)?;
    let room = room_a(&host)?;
    let mut events = room.websocket_with_token(&room.admin_token()?)?;
    events.send_json(&json!({"type": "subscribe", "status": ["meeting"], "events": ["*"]}))?;

    room.command(
        "meeting.join",
        &json!({ "target": whip_target(&guest, &guest.token) }),
    )?;
    let connected = meeting::wait_for(&room, "A connected", STATE_TIMEOUT, |m| {
        m["state"] == "connected"
    })?;
    assert_eq!(connected["target"]["kind"], "whip", "{connected}");
    assert_eq!(connected["target"]["token_set"], true, "{connected}");
    // B's picture reaches A by WHEP, A's reaches B by WHIP.
    let a_side = meeting::wait_for_received_video(&room, None, FRAMES, MEDIA_TIMEOUT)?;
    let b_side = meeting::wait_for_received_video(&host, Some(&guest.id), FRAMES, MEDIA_TIMEOUT)?;
    eprintln!("media both ways after {:?}", started.elapsed());
    assert_eq!(a_side["encrypted"], true, "{a_side}");
    assert_eq!(b_side["encrypted"], true, "{b_side}");
    let on_b = meeting::participant(&b_side, GUEST_NAME)
        .unwrap_or_else(|| panic!("A is not a participant on B: {b_side}"));
    assert_eq!(on_b["state"], "connected", "{on_b}");
    assert_eq!(on_b["encryption"], "dtls-srtp", "{on_b}");
    // Both directions are separate sessions on B: A sends (B receives) and A receives (B sends).
    assert!(
        meeting::streams(&b_side, "send", "video").any(|s| s["participant"] == guest.id.as_str()),
        "B sends no video to A: {b_side}"
    );

    room.command("meeting.leave", &json!({}))?;
    meeting::wait_for(&room, "A idle after leaving", STATE_TIMEOUT, |m| {
        m["state"] == "idle"
    })?;
    // A ended its WHIP and WHEP sessions (DELETE of both resources): B has no stream of A left,
    // and B's own meeting goes on.
    let ended = meeting::wait_for(&host, "A's streams gone from B", STATE_TIMEOUT, |m| {
        streams_of(m, &guest.id) == 0
    })?;
    assert_eq!(ended["state"], "connected", "B's meeting goes on: {ended}");
    // B's audit log shows both DELETEs of A's session resources, accepted.
    let audit = host
        .get("/api/v1/audit?limit=1000")
        .bearer(&host.admin_token()?)
        .send()?
        .expect_status(200, "GET /api/v1/audit on B")?
        .json()?;
    for direction in ["whip", "whep"] {
        let resource = format!("/api/v1/join/{meeting_id}/guests/{}/{direction}", guest.id);
        let deleted = audit.as_array().into_iter().flatten().any(|e| {
            e["method"] == "DELETE" && e["path"] == resource.as_str() && e["status"] == 200
        });
        assert!(deleted, "no DELETE {resource} in B's audit log: {audit}");
    }

    // The guest token never shows in A's status, events or call history.
    let status = room
        .get("/api/v1/status")
        .bearer(&room.admin_token()?)
        .send()?
        .expect_status(200, "GET /api/v1/status on A")?;
    assert!(!status.text().contains(&guest.token), "{}", status.text());
    let calls = room
        .get("/api/v1/calls")
        .bearer(&room.admin_token()?)
        .send()?
        .expect_status(200, "GET /api/v1/calls on A")?;
    assert!(!calls.text().contains(&guest.token), "{}", calls.text());
    let calls = calls.json()?;
    assert_eq!(calls[0]["kind"], "whip", "{calls}");
    assert_eq!(calls[0]["outcome"], "ended", "{calls}");
    let mut seen = 0;
    while let Some(message) = events.next_json(Duration::from_millis(200))? {
        seen += 1;
        assert!(
            !message.to_string().contains(&guest.token),
            "the guest token in an event: {message}"
        );
    }
    assert!(seen > 3, "too few events to mean anything: {seen}");
    assert!(
        !room.stderr_text().contains(&guest.token),
        "the guest token in A's log"
    );
    eprintln!("done after {:?}", started.elapsed());
    Ok(())
}

#[test]
fn a_refused_token_fails_the_meeting_saying_so() -> Result<(), HarnessError> {
    let net = TestNetwork::create()?;
    let (host, meeting_id) = hosting(&net)?;
    let guest = admitted_guest(&host, &meeting_id)?;
    let room = room_a(&host)?;
    let wrong = "not-the-guest-token-1234";
    room.command(
        "meeting.join",
        &json!({ "target": whip_target(&guest, wrong) }),
    )?;
    let failed = meeting::wait_for(&room, "A failed", STATE_TIMEOUT, |m| {
        m["state"] != "joining"
    })?;
    assert_eq!(failed["state"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains("refused the token"), "{failed}");
    assert!(!failed.to_string().contains(wrong), "{failed}");
    // B never let the forged token in: no media of the guest there.
    let b = meeting::status(&host)?;
    assert_eq!(streams_of(&b, &guest.id), 0, "{b}");
    Ok(())
}
