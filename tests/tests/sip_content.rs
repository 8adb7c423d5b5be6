//! Content in SIP calls (issue 14, point 5): two rooms, each registered at Kamailio over TLS,
//! call each other; each shares its content input as the second video stream under BFCP floor
//! control. The calling room offers to serve the floor or join (`c-s` with its IDs), the called
//! room joins the caller's conference (`c-only`): both roles of `roomd-bfcp` run in one call.
//! What each room shows (`status.meeting.content_floor`, the content streams' frames) is read
//! from the rooms themselves while the floor changes hands, and room B's touch panel (Chromium)
//! says who presents as it happens. The BFCP codec and both roles are
//! tested against libre, an independent implementation, in `bfcp_floor.rs`.

use std::time::Duration;

use roomd_tests::meeting;
use roomd_tests::sip::Kamailio;
use roomd_tests::{BrowserPeer, HarnessError, Roomd, TestCa, TestNetwork, wait_for};
use serde_json::{Value, json};

const CALLER: &str = "room-a";
const CALLER_PASSWORD: &str = "digest-pw-a71c0e";
const CALLEE: &str = "room-b";
const CALLEE_PASSWORD: &str = "digest-pw-b52d9f";
const WAIT: Duration = Duration::from_secs(30);

/// A roomd registered at `kamailio` as `user`, with `sip_lines` in its `[sip]`; the scratch
/// folder holds the CA file while it runs.
fn registered_room(
    kamailio: &Kamailio,
    ca: &TestCa,
    user: &str,
    password: &str,
    sip_lines: &str,
) -> Result<(Roomd, tempfile::TempDir), HarnessError> {
    let scratch = tempfile::tempdir().expect("tempdir");
    let ca_path = scratch.path().join("sip-ca.pem");
    std::fs::write(&ca_path, ca.cert_pem()).expect("write the SIP CA");
    let roomd = Roomd::start_claimed(&format!(
        "[sip]\nuser = \"{user}\"\nregister_interval_s = 60\nca_file = \"{}\"\n\
         registrar = \"{}\"\npassword = \"{password}\"\ndisplay_name = \"{user}\"\n{sip_lines}",
        ca_path.display(),
        kamailio.sips_uri()
    ))?;
    let token = roomd.admin_token()?;
    wait_for("registered", Duration::from_secs(20), || {
        let status = roomd.get("/api/v1/status").bearer(&token).send()?.json()?;
        Ok((status["sip"]["registration"]["state"] == "registered").then_some(()))
    })
    .map_err(|e| HarnessError::Config {
        message: format!("{e}; roomd:\n{}", roomd.stderr_text()),
    })?;
    Ok((roomd, scratch))
}

/// Content frames of `roomd`'s call in `direction`.
fn content_frames(meeting: &Value, direction: &str) -> u64 {
    meeting::stream_frames(meeting, direction, "content")
        .iter()
        .sum()
}

/// Waits until `roomd`'s content floor is `floor` and its content frames in `direction` grow
/// (by more than 10: a picture moving, not one frame that slipped through).
fn wait_for_floor_and_content(
    roomd: &Roomd,
    name: &str,
    floor: &str,
    direction: &str,
) -> Result<Value, HarnessError> {
    let start = meeting::wait_for(
        roomd,
        &format!("{name}: content_floor {floor}"),
        WAIT,
        |m| m["content_floor"] == floor,
    )
    .map_err(|e| with_log(e, roomd))?;
    let before = content_frames(&start, direction);
    meeting::wait_for(
        roomd,
        &format!("{name}: content frames {direction} growing"),
        WAIT,
        |m| m["content_floor"] == floor && content_frames(m, direction) > before + 10,
    )
    .map_err(|e| with_log(e, roomd))
}

fn with_log(error: HarnessError, roomd: &Roomd) -> HarnessError {
    HarnessError::Config {
        message: format!("{error}\nroomd:\n{}", roomd.stderr_text()),
    }
}

/// The content frames `roomd` sends stay put for 3 s: nothing of its content leaves the room.
fn sends_no_content(roomd: &Roomd, name: &str) -> Result<(), HarnessError> {
    // What was under way when the floor changed hands may still be counted.
    std::thread::sleep(Duration::from_secs(1));
    let before = content_frames(&meeting::status(roomd)?, "send");
    std::thread::sleep(Duration::from_secs(3));
    let after = content_frames(&meeting::status(roomd)?, "send");
    assert_eq!(
        before, after,
        "{name} sent content without holding the floor"
    );
    Ok(())
}

#[test]
fn two_rooms_take_the_content_floor_in_turn_and_each_shows_the_others_content()
-> Result<(), HarnessError> {
    let net = TestNetwork::create()?;
    let ca = TestCa::new("roomd SIP content test CA")?;
    let kamailio = Kamailio::start(
        &net,
        &ca,
        &[(CALLER, CALLER_PASSWORD), (CALLEE, CALLEE_PASSWORD)],
    )?;
    let (room_b, _b) = registered_room(&kamailio, &ca, CALLEE, CALLEE_PASSWORD, "")?;
    let (room_a, _a) = registered_room(&kamailio, &ca, CALLER, CALLER_PASSWORD, "")?;

    room_a.command(
        "meeting.join",
        &json!({ "target": { "kind": "sip", "uri": format!("sips:{CALLEE}@{}", kamailio.address()) } }),
    )?;
    let token = room_b.admin_token()?;
    let panel = BrowserPeer::panel(&room_b.base_url(), &token)?;
    let panel_shows = |after: usize, floor: &str| {
        panel.wait_for_after(
            after,
            &format!("room B's panel: content_floor {floor:?}"),
            WAIT,
            |l| l["event"] == "panel" && l["content_floor"] == floor,
        )
    };
    wait_for("room B rings", Duration::from_secs(20), || {
        let status = room_b.get("/api/v1/status").bearer(&token).send()?.json()?;
        Ok((!status["sip"]["incoming"].is_null()).then_some(()))
    })
    .map_err(|e| with_log(e, &room_b))?;
    room_b.command("meeting.answer", &json!({}))?;
    for (room, name) in [(&room_a, "room A"), (&room_b, "room B")] {
        let connected = meeting::wait_for(room, &format!("{name} connected"), WAIT, |m| {
            m["state"] == "connected" && m["encrypted"] == true && m["content_floor"] == "free"
        })
        .map_err(|e| with_log(e, room))?;
        // Both content streams are agreed, encrypted like the rest of the call.
        let kinds: Vec<&Value> = connected["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| s["kind"] == "content")
            .collect();
        assert_eq!(kinds.len(), 2, "{name}: {connected}");
        assert!(
            kinds.iter().all(|s| s["encrypted"] == true),
            "{name}: {connected}"
        );
    }
    // Nobody shares: no content either way.
    sends_no_content(&room_a, "room A")?;
    sends_no_content(&room_b, "room B")?;

    // Room A shares: it takes the floor (it serves it), its content reaches room B.
    let before = panel.line_count();
    room_a.command("video.content.start", &json!({}))?;
    wait_for_floor_and_content(&room_a, "room A", "room", "send")?;
    wait_for_floor_and_content(&room_b, "room B", "far-end", "receive")?;
    panel_shows(before, "far-end")?;

    // Room B shares as well: it asks room A's floor control server for the floor, and the last
    // one to present takes it. Room A stops sending at once and shows B's content.
    let before = panel.line_count();
    room_b.command("video.content.start", &json!({}))?;
    wait_for_floor_and_content(&room_b, "room B", "room", "send")?;
    panel_shows(before, "room")?;
    wait_for_floor_and_content(&room_a, "room A", "far-end", "receive")?;
    sends_no_content(&room_a, "room A")?;

    // Room B stops sharing: it gives the floor back; nobody holds it, nothing is sent.
    let before = panel.line_count();
    room_b.command("video.content.stop", &json!({}))?;
    for (room, name) in [(&room_a, "room A"), (&room_b, "room B")] {
        meeting::wait_for(room, &format!("{name}: content_floor free"), WAIT, |m| {
            m["content_floor"] == "free"
        })
        .map_err(|e| with_log(e, room))?;
    }
    sends_no_content(&room_b, "room B")?;
    panel_shows(before, "")?;

    room_a.command("meeting.leave", &json!({}))?;
    meeting::wait_for(&room_b, "room B idle after room A hung up", WAIT, |m| {
        m["state"] == "idle" && m["content_floor"] == "none"
    })
    .map_err(|e| with_log(e, &room_b))?;
    Ok(())
}
