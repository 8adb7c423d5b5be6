//! An open events WebSocket stops receiving room state once its credential is gone: a revoked
//! token or a logged-out session closes the socket.

use std::time::Duration;

use roomd_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, HarnessError, Roomd};
use serde_json::json;

/// roomd re-checks credentials every 10 s; allow for one full period plus slack.
const CLOSE_WITHIN: Duration = Duration::from_secs(15);

fn is_closing_notice(message: &serde_json::Value) -> bool {
    message["type"] == "error"
        && message["message"]
            .as_str()
            .is_some_and(|m| m.contains("revoked or the session ended"))
}

#[test]
fn revoking_a_token_closes_its_socket() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let created = roomd.create_token("panel", "room-control")?;
    let token = created["token"].as_str().expect("token secret").to_owned();
    let id = created["id"].as_str().expect("token id").to_owned();

    let mut socket = roomd.websocket_with_token(&token)?;
    socket.send_json(&json!({"type": "subscribe", "status": ["audio"], "events": ["*"]}))?;
    socket.wait_for("the initial audio status", Duration::from_secs(5), |m| {
        m["type"] == "status"
    })?;

    roomd
        .request("DELETE", &format!("/api/v1/tokens/{id}"))
        .bearer(&roomd.admin_token()?)
        .send()?
        .expect_status(204, "revoking the token")?;
    socket.wait_for("the closing notice", CLOSE_WITHIN, is_closing_notice)?;
    let after = socket.next_json(Duration::from_secs(2));
    assert!(after.is_err(), "the socket must be closed, got {after:?}");
    Ok(())
}

#[test]
fn logging_out_closes_the_sessions_socket() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let session = roomd.login(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    let mut socket = roomd.websocket(&[("Cookie", session.cookie.as_str())])?;
    socket.send_json(&json!({"type": "subscribe", "status": ["standby"]}))?;
    socket.wait_for("the initial standby status", Duration::from_secs(5), |m| {
        m["type"] == "status"
    })?;

    roomd
        .request("DELETE", "/api/v1/session")
        .session(&session)
        .send()?
        .expect_status(204, "logging out")?;
    socket.wait_for("the closing notice", CLOSE_WITHIN, is_closing_notice)?;
    Ok(())
}
