//! Signalling that goes wrong (docs/meetings.md; `daemon/meetings/src/session.rs` decides which
//! trouble passes): a server that answers nonsense ends the meeting as `failed` with the reason;
//! a server that never answers is transport trouble, so the room says `reconnecting` and tries
//! again with backoff. Either way secrets stay out of the error, the API keeps answering, and the
//! room can leave and join another meeting. Then the API's own refusals: bad `meeting.join`
//! targets and the guest API's answers to wrong PINs, tokens, lobbies and bodies.
//!
//! The hostile servers are plain HTTP on 127.0.0.1 (roomd accepts http:// only for loopback).

use std::time::{Duration, Instant};

use roomd_tests::{HarnessError, HostileAnswer, HostileRequest, HostileServer, Roomd, meeting};
use serde_json::{Value, json};

const STATE_TIMEOUT: Duration = Duration::from_secs(15);
/// roomd waits 20 s for an answer (`RESPONSE_TIMEOUT` in daemon/meetings/src/https.rs).
const HANG_TIMEOUT: Duration = Duration::from_secs(30);
const JANUS_PIN: &str = "hostile-pin-4711";
const WHIP_TOKEN: &str = "hostile-token-0815";
const HOSTED_PIN: &str = "246813";

/// A well-formed SDP answer, so that only what the case breaks is wrong.
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

/// The `transaction` of a Janus request body (the hostile server echoes it when it means to).
fn transaction(request: &HostileRequest) -> String {
    serde_json::from_str::<Value>(&request.body)
        .ok()
        .and_then(|v| v["transaction"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn janus_target(server: &HostileServer) -> Value {
    json!({ "kind": "janus", "server": server.url("/janus"), "room": 1234, "pin": JANUS_PIN })
}

fn whip_target(server: &HostileServer) -> Value {
    json!({ "kind": "whip", "url": server.url("/whip"), "token": WHIP_TOKEN })
}

/// Joins `target`, waits for `state`, and checks what every case must hold: the error names the
/// problem (`expected` in it), no secret in status, the API still answers. Returns the status.
fn join_and_expect(
    roomd: &Roomd,
    target: Value,
    state: &str,
    expected: &str,
    timeout: Duration,
) -> Result<Value, HarnessError> {
    roomd.command("meeting.join", &json!({ "target": target }))?;
    let seen = meeting::wait_for(roomd, &format!("meeting {state}"), timeout, |m| {
        m["state"] == state
    })?;
    let error = seen["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(expected),
        "status.meeting.error does not say {expected:?}: {seen}"
    );
    for secret in [JANUS_PIN, WHIP_TOKEN] {
        assert!(
            !seen.to_string().contains(secret),
            "a secret appears in status.meeting: {seen}"
        );
    }
    health_answers(roomd)?;
    Ok(seen)
}

fn health_answers(roomd: &Roomd) -> Result<(), HarnessError> {
    roomd
        .get("/api/v1/health")
        .send()?
        .expect_status(200, "GET /api/v1/health during bad signalling")?;
    Ok(())
}

/// `meeting.leave` clears the meeting (a failure too) and the room is idle again.
fn leave(roomd: &Roomd) -> Result<(), HarnessError> {
    roomd.command("meeting.leave", &json!({}))?;
    meeting::wait_for(roomd, "idle after meeting.leave", STATE_TIMEOUT, |m| {
        m["state"] == "idle" && m["error"] == ""
    })?;
    Ok(())
}

#[test]
fn malformed_signalling_fails_the_meeting_with_the_reason() -> Result<(), HarnessError> {
    let started = Instant::now();
    let roomd = Roomd::start_claimed("[system]\nname = \"Hostile test room\"\n")?;

    // (a) Janus `create` answered with something that is not JSON.
    let server = HostileServer::start(|_| {
        HostileAnswer::reply(200, "text/html", "<html>gateway says hello</html>")
    })?;
    join_and_expect(
        &roomd,
        janus_target(&server),
        "failed",
        "not JSON",
        STATE_TIMEOUT,
    )?;
    assert_eq!(server.requests().len(), 1, "{:?}", server.requests());
    leave(&roomd)?;

    // (b) JSON, but the wrong `janus` kind for the transaction we sent.
    let server = HostileServer::start(|request| {
        let body = json!({ "janus": "ack", "transaction": transaction(request) });
        HostileAnswer::reply(200, "application/json", &body.to_string())
    })?;
    join_and_expect(
        &roomd,
        janus_target(&server),
        "failed",
        "where Janus answers \"success\"",
        STATE_TIMEOUT,
    )?;
    leave(&roomd)?;

    // (b) A well-formed success with no transaction: it cannot be the answer to our request.
    let server = HostileServer::start(|_| {
        let body = json!({ "janus": "success", "data": { "id": 1 } });
        HostileAnswer::reply(200, "application/json", &body.to_string())
    })?;
    join_and_expect(
        &roomd,
        janus_target(&server),
        "failed",
        "transaction",
        STATE_TIMEOUT,
    )?;
    leave(&roomd)?;

    // (c) WHIP: 201 Created with a Location, but the body is not SDP.
    let server = HostileServer::start(|_| {
        HostileAnswer::reply(201, "text/plain", "welcome").with_header("Location", "/whip/1")
    })?;
    join_and_expect(
        &roomd,
        whip_target(&server),
        "failed",
        "instead of application/sdp",
        STATE_TIMEOUT,
    )?;
    // The token did go to the server (so its absence from status above means something).
    let sent = server.requests();
    let authorization = sent.first().and_then(|r| r.header("authorization"));
    assert_eq!(
        authorization,
        Some(format!("Bearer {WHIP_TOKEN}").as_str()),
        "{sent:?}"
    );
    assert!(
        sent.first().is_some_and(|r| r.body.starts_with("v=0")),
        "roomd's WHIP offer is not SDP: {sent:?}"
    );
    leave(&roomd)?;

    // (c) WHIP: 201 Created with an SDP answer but no Location (the session cannot be ended).
    let server = HostileServer::start(|_| HostileAnswer::reply(201, "application/sdp", SDP))?;
    join_and_expect(
        &roomd,
        whip_target(&server),
        "failed",
        "no Location",
        STATE_TIMEOUT,
    )?;
    leave(&roomd)?;

    // After all that the room still hosts a meeting.
    roomd.command(
        "meeting.join",
        &json!({ "target": { "kind": "hosted", "pin": HOSTED_PIN } }),
    )?;
    meeting::wait_for(&roomd, "hosting after the failures", STATE_TIMEOUT, |m| {
        m["state"] == "connected" && m["target"]["kind"] == "hosted" && m["error"] == ""
    })?;
    leave(&roomd)?;
    eprintln!("five malformed servers handled in {:?}", started.elapsed());
    Ok(())
}

#[test]
fn a_server_that_never_answers_means_reconnecting() -> Result<(), HarnessError> {
    let started = Instant::now();
    let roomd = Roomd::start_claimed("")?;
    let server = HostileServer::start(|_| HostileAnswer::Hang)?;
    roomd.command("meeting.join", &json!({ "target": janus_target(&server) }))?;
    // While roomd waits for the answer, the API answers and the meeting is still joining.
    std::thread::sleep(Duration::from_secs(2));
    health_answers(&roomd)?;
    let waiting = meeting::status(&roomd)?;
    assert_eq!(waiting["state"], "joining", "{waiting}");
    join_and_expect_reconnecting(&roomd)?;
    eprintln!("reconnecting after {:?}", started.elapsed());
    leave(&roomd)?;
    roomd.command(
        "meeting.join",
        &json!({ "target": { "kind": "hosted", "pin": HOSTED_PIN } }),
    )?;
    meeting::wait_for(&roomd, "hosting after the hang", STATE_TIMEOUT, |m| {
        m["state"] == "connected" && m["target"]["kind"] == "hosted"
    })?;
    Ok(())
}

/// The hang ends in `reconnecting` (transport trouble, documented in janus_session.rs), never
/// `failed`, with an error saying the server did not answer.
fn join_and_expect_reconnecting(roomd: &Roomd) -> Result<(), HarnessError> {
    let seen = meeting::wait_for(roomd, "reconnecting", HANG_TIMEOUT, |m| {
        m["state"] != "joining"
    })?;
    assert_eq!(seen["state"], "reconnecting", "{seen}");
    let error = seen["error"].as_str().unwrap_or_default();
    assert!(error.contains("did not answer in time"), "{seen}");
    assert!(!seen.to_string().contains(JANUS_PIN), "{seen}");
    health_answers(roomd)
}

/// `meeting.join` with `target`: 422 whose message names `field`.
fn refused_join(roomd: &Roomd, target: Value, field: &str) -> Result<(), HarnessError> {
    let answer = roomd
        .request("POST", "/api/v1/commands/meeting.join")
        .bearer(&roomd.admin_token()?)
        .json(&json!({ "target": target }))
        .send()?;
    assert_eq!(answer.status, 422, "{target}: {}", answer.text());
    let message = answer.error_message().unwrap_or_default();
    assert!(
        message.contains(field),
        "the refusal of {target} does not name {field:?}: {}",
        answer.text()
    );
    Ok(())
}

#[test]
fn meeting_join_refuses_bad_targets_naming_the_field() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    refused_join(
        &roomd,
        json!({ "kind": "zoom", "url": "https://x" }),
        "kind: unknown variant",
    )?;
    refused_join(
        &roomd,
        json!({ "kind": "whip", "url": "http://192.0.2.10/whip" }),
        "url: http is unencrypted",
    )?;
    refused_join(
        &roomd,
        json!({ "kind": "janus", "server": "https://janus.example/janus" }),
        "`room`",
    )?;
    refused_join(&roomd, json!({ "kind": "hosted", "pin": "12ab" }), "pin:")?;
    refused_join(
        &roomd,
        json!({ "kind": "direct", "address": "https://room.example/join/x1", "pin": "1" }),
        "address:",
    )?;
    // Nothing was joined by any of them.
    let idle = meeting::status(&roomd)?;
    assert_eq!(idle["state"], "idle", "{idle}");
    Ok(())
}

#[test]
fn the_guest_api_refuses_what_it_must() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let hosted = meeting::host(&roomd, Some(HOSTED_PIN), STATE_TIMEOUT)?;
    let id = hosted["id"].as_str().unwrap_or_default().to_owned();
    let guests = format!("/api/v1/join/{id}/guests");

    let wrong_pin = roomd
        .request("POST", &guests)
        .json(&json!({ "name": "Mallory", "pin": "000000" }))
        .send()?;
    assert_eq!(wrong_pin.status, 403, "wrong PIN: {}", wrong_pin.text());
    let unknown = roomd
        .request("POST", "/api/v1/join/nosuchmeeting/guests")
        .json(&json!({ "name": "Mallory", "pin": HOSTED_PIN }))
        .send()?;
    assert_eq!(unknown.status, 404, "unknown meeting: {}", unknown.text());

    let arrived: Value = roomd
        .request("POST", &guests)
        .json(&json!({ "name": "Bob", "pin": HOSTED_PIN }))
        .send()?
        .expect_status(201, "a guest with the right PIN")?
        .json()?;
    let token = arrived["token"].as_str().unwrap_or_default().to_owned();
    let guest = arrived["guest_id"].as_str().unwrap_or_default().to_owned();
    let guest_path = format!("{guests}/{guest}");
    let whip_path = format!("{guest_path}/whip");

    let no_token = roomd.get(&guest_path).send()?;
    assert_eq!(no_token.status, 401, "no guest token: {}", no_token.text());
    let forged = roomd.get(&guest_path).bearer("forged-guest-token").send()?;
    assert_eq!(forged.status, 403, "forged guest token: {}", forged.text());
    let own = roomd.get(&guest_path).bearer(&token).send()?;
    assert_eq!(own.status, 200, "the guest's own token: {}", own.text());
    assert_eq!(own.json()?["state"], "lobby", "{}", own.text());

    let send_sdp = |path: &str, content_type: &str, body: &str| {
        roomd
            .request("POST", path)
            .bearer(&token)
            .header("Content-Type", content_type)
            .body(body.as_bytes().to_vec())
            .send()
    };
    let early = send_sdp(&whip_path, "application/sdp", SDP)?;
    assert_eq!(early.status, 403, "WHIP from the lobby: {}", early.text());
    assert!(early.text().contains("lobby"), "{}", early.text());
    let forged_whip = roomd
        .request("POST", &whip_path)
        .bearer("forged-guest-token")
        .header("Content-Type", "application/sdp")
        .body(SDP.as_bytes().to_vec())
        .send()?;
    assert_eq!(forged_whip.status, 403, "{}", forged_whip.text());

    roomd.command("meeting.admit", &json!({ "participant": guest }))?;
    let wrong_type = send_sdp(&whip_path, "text/plain", SDP)?;
    assert_eq!(
        wrong_type.status,
        415,
        "text/plain offer: {}",
        wrong_type.text()
    );
    let not_sdp = send_sdp(&whip_path, "application/sdp", "hello, room")?;
    assert_eq!(not_sdp.status, 400, "non-SDP offer: {}", not_sdp.text());
    let nowhere = send_sdp(&format!("{guest_path}/sideways"), "application/sdp", SDP)?;
    assert_eq!(nowhere.status, 404, "unknown direction: {}", nowhere.text());

    // The guest's token never shows in the room's status.
    let status = meeting::status(&roomd)?;
    assert!(!status.to_string().contains(&token), "{status}");
    assert!(!status.to_string().contains(HOSTED_PIN), "{status}");
    Ok(())
}
