//! Outbound control (docs/configuration.md, `meeting.allowed_servers`): roomd reaches only the
//! servers the file lists, checks every resolved address, keeps WHIP/WHEP `Location` on the
//! endpoint's origin, and never shows what a server wrote to the roles that read status.
//!
//! The servers are the hostile signalling servers on 127.0.0.1 (tests/src/hostile.rs); each
//! counts the TCP connections it gets, so "refused before any connection" is measured.

use std::time::Duration;

use roomd_tests::{HarnessError, HostileAnswer, HostileServer, Roomd, meeting};
use serde_json::{Value, json};

const STATE_TIMEOUT: Duration = Duration::from_secs(20);
/// What a hostile server writes in its bodies; it must never appear in status or logs.
const MARKER: &str = "CALL-0800-HOSTILE-TEXT";
const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n";

fn janus_target(url: &str) -> Value {
    json!({ "kind": "janus", "server": url, "room": 1234 })
}

/// Joins `target` and waits until the meeting is `state`; returns `status.meeting`.
fn join_until(roomd: &Roomd, target: Value, state: &str) -> Result<Value, HarnessError> {
    roomd.command("meeting.join", &json!({ "target": target }))?;
    meeting::wait_for(roomd, &format!("meeting {state}"), STATE_TIMEOUT, |m| {
        m["state"] == state
    })
}

fn leave(roomd: &Roomd) -> Result<(), HarnessError> {
    roomd.command("meeting.leave", &json!({}))?;
    meeting::wait_for(roomd, "idle", STATE_TIMEOUT, |m| m["state"] == "idle")?;
    Ok(())
}

#[test]
fn servers_outside_the_allowlist_are_refused_before_any_connection() -> Result<(), HarnessError> {
    let server = HostileServer::start(|_| HostileAnswer::reply(200, "application/json", "{}"))?;
    let port = server
        .url("")
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_owned();

    // Nothing listed (the default): nothing is reached, and the error names the key to set.
    let roomd = Roomd::start_claimed("[meeting]\nallowed_servers = []\n")?;
    let seen = join_until(&roomd, janus_target(&server.url("/janus")), "failed")?;
    let error = seen["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("meeting.allowed_servers") && error.contains("127.0.0.1"),
        "the error does not name the key and the host: {seen}"
    );
    leave(&roomd)?;
    drop(roomd);

    // A listed name that resolves to loopback (DNS pointing into the room's own machine or
    // network): refused on the resolved address, which is not listed.
    let roomd = Roomd::start_claimed("[meeting]\nallowed_servers = [\"localhost\"]\n")?;
    let seen = join_until(
        &roomd,
        janus_target(&format!("https://localhost:{port}/janus")),
        "failed",
    )?;
    let error = seen["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("resolves to 127.0.0.1") && error.contains("meeting.allowed_servers"),
        "{seen}"
    );
    leave(&roomd)?;

    // Another room by address, not listed either (a direct call to a room).
    let seen = join_until(
        &roomd,
        json!({ "kind": "direct", "address": format!("https://127.0.0.1:{port}/join/ACDEFGHJKM") }),
        "failed",
    )?;
    assert!(
        seen["error"]
            .as_str()
            .is_some_and(|e| e.contains("meeting.allowed_servers")),
        "{seen}"
    );
    leave(&roomd)?;

    assert_eq!(
        server.connections(),
        0,
        "a refused server was connected to: {:?}",
        server.requests()
    );
    Ok(())
}

#[test]
fn the_allowlist_cannot_be_changed_through_the_api() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let refused = roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&roomd.admin_token()?)
        .json(&json!({ "meeting": { "allowed_servers": ["*.example.org"] } }))
        .send()?
        .expect_status(422, "PATCH meeting.allowed_servers")?
        .text();
    assert!(
        refused.contains("meeting.allowed_servers") && refused.contains("configuration file"),
        "{refused}"
    );
    Ok(())
}

#[test]
fn a_whip_location_on_another_origin_is_refused() -> Result<(), HarnessError> {
    // Both servers are on listed 127.0.0.1: the Location check is the origin, not the list.
    let elsewhere = HostileServer::start(|_| HostileAnswer::reply(200, "text/plain", ""))?;
    let resource = elsewhere.url("/resource/1");
    let server = HostileServer::start(move |_| {
        HostileAnswer::reply(201, "application/sdp", SDP).with_header("Location", &resource)
    })?;
    let roomd = Roomd::start_claimed("")?;
    let target = json!({ "kind": "whip", "url": server.url("/whip"), "token": "t0ken" });
    let seen = join_until(&roomd, target, "failed")?;
    let error = seen["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Location") && error.contains("origin"),
        "{seen}"
    );
    leave(&roomd)?;
    assert_eq!(
        elsewhere.connections(),
        0,
        "roomd followed the Location to another origin: {:?}",
        elsewhere.requests()
    );
    Ok(())
}

#[test]
fn server_bodies_never_reach_status_or_logs() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let user = roomd.token_for("user")?;
    let integrator = roomd.token_for("integrator")?;
    let answers: Vec<(&str, HostileAnswer)> = vec![
        // A 4xx with a body: the meeting fails.
        ("failed", HostileAnswer::reply(403, "text/plain", MARKER)),
        // A Janus error whose reason is the server's text.
        (
            "failed",
            HostileAnswer::reply(
                200,
                "application/json",
                &json!({ "janus": "error", "error": { "code": 490, "reason": MARKER } })
                    .to_string(),
            ),
        ),
        // Not JSON at all.
        ("failed", HostileAnswer::reply(200, "text/html", MARKER)),
        // A 5xx: the room keeps trying (reconnecting) and shows why.
        (
            "reconnecting",
            HostileAnswer::reply(503, "text/plain", MARKER),
        ),
    ];
    for (state, answer) in answers {
        let server = HostileServer::start(move |_| answer.clone())?;
        let seen = join_until(&roomd, janus_target(&server.url("/janus")), state)?;
        assert!(
            seen["error"].as_str().is_some_and(|e| !e.is_empty()),
            "no error shown: {seen}"
        );
        assert_eq!(
            server.requests().len().min(1),
            1,
            "the server was not asked"
        );
        for (role, token) in [("user", &user), ("integrator", &integrator)] {
            let status = roomd
                .get("/api/v1/status")
                .bearer(token)
                .send()?
                .expect_status(200, "GET /api/v1/status")?
                .text();
            assert!(
                !status.contains(MARKER),
                "the server's body reached {role} in status: {status}"
            );
        }
        let logs = roomd
            .get("/api/v1/logs")
            .bearer(&integrator)
            .send()?
            .expect_status(200, "GET /api/v1/logs")?
            .text();
        assert!(
            !logs.contains(MARKER),
            "the server's body reached the integrator's logs"
        );
        leave(&roomd)?;
    }
    Ok(())
}
