//! Limits on browser sessions, against a live roomd: the cookie is `__Host-` prefixed, a user
//! holds a bounded number of sessions, and an open events WebSocket does not keep its session
//! alive (only requests the user makes do). The absolute lifetime (12 h) is a unit test
//! (daemon/api/src/accounts/sessions.rs) with a manual clock.

use std::time::{Duration, Instant};

use roomd_tests::{HarnessError, Roomd, SESSION_COOKIE};

const PASSWORD: &str = "a long enough password";

#[test]
fn the_session_cookie_is_host_prefixed_secure_and_bound_to_the_origin() -> Result<(), HarnessError>
{
    let roomd = Roomd::start_claimed("")?;
    roomd.create_user("carol", PASSWORD, "user")?;
    let session = roomd.login("carol", PASSWORD)?;
    assert_eq!(SESSION_COOKIE, "__Host-roomd_session");
    assert!(
        session.set_cookie.starts_with("__Host-roomd_session="),
        "{}",
        session.set_cookie
    );
    let attributes: Vec<String> = session
        .cookie_attributes()
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    for wanted in ["secure", "path=/", "httponly", "samesite=strict"] {
        assert!(
            attributes.iter().any(|a| a == wanted),
            "cookie lacks {wanted}: {}",
            session.set_cookie
        );
    }
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain")),
        "a __Host- cookie must not name a domain: {}",
        session.set_cookie
    );
    roomd
        .get("/api/v1/session")
        .cookie(&session)
        .send()?
        .expect_status(200, "the cookie is accepted")?;
    // The old name is no credential.
    let old_name = session
        .cookie
        .replacen("__Host-roomd_session=", "roomd_session=", 1);
    roomd
        .get("/api/v1/session")
        .header("Cookie", &old_name)
        .send()?
        .expect_status(401, "the cookie under its old name")?;
    Ok(())
}

#[test]
fn a_user_holds_at_most_ten_sessions_and_the_least_recently_used_ends() -> Result<(), HarnessError>
{
    let roomd = Roomd::start_claimed("")?;
    roomd.create_user("dave", PASSWORD, "user")?;
    roomd.create_user("erin", PASSWORD, "user")?;
    let erin = roomd.login("erin", PASSWORD)?;
    let mut sessions = Vec::new();
    for _ in 0..10 {
        sessions.push(roomd.login("dave", PASSWORD)?);
    }
    // The first is used now, so the second is the least recently used when the 11th comes.
    roomd
        .get("/api/v1/session")
        .cookie(&sessions[0])
        .send()?
        .expect_status(200, "the first session")?;
    sessions.push(roomd.login("dave", PASSWORD)?);
    roomd
        .get("/api/v1/session")
        .cookie(&sessions[1])
        .send()?
        .expect_status(401, "the least recently used of 11 sessions")?;
    for (n, session) in sessions.iter().enumerate().filter(|(n, _)| *n != 1) {
        roomd
            .get("/api/v1/session")
            .cookie(session)
            .send()?
            .expect_status(200, &format!("dave's session #{n}"))?;
    }
    roomd
        .get("/api/v1/session")
        .cookie(&erin)
        .send()?
        .expect_status(200, "another user's session")?;
    Ok(())
}

#[test]
fn an_open_websocket_does_not_keep_its_session_alive() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("[api]\nsession_idle_minutes = 1\n")?;
    roomd.create_user("frank", PASSWORD, "user")?;
    let session = roomd.login("frank", PASSWORD)?;
    let opened = Instant::now();
    let mut socket = roomd.websocket(&[("Cookie", session.cookie.as_str())])?;
    // The socket re-checks its session every 10 s; the session has 60 s of idle time. Nothing
    // but the socket is open, so within 60 + 10 s (+ slack) the session ends and the socket
    // is told so and closed.
    let deadline = opened + Duration::from_secs(90);
    let mut ended = None;
    while Instant::now() < deadline {
        match socket.next_json(Duration::from_secs(1)) {
            Ok(Some(message)) if message["type"] == "error" => {
                ended = Some((opened.elapsed(), message));
                break;
            }
            Ok(_) => {}
            Err(closed) => {
                ended = Some((opened.elapsed(), serde_json::json!(closed.to_string())));
                break;
            }
        }
    }
    let (after, message) =
        ended.expect("the socket stayed open for 90 s: it kept its session alive");
    eprintln!("socket ended after {after:?}: {message}");
    assert!(
        after >= Duration::from_secs(55),
        "ended too early ({after:?}), before the idle time: {message}"
    );
    roomd
        .get("/api/v1/session")
        .cookie(&session)
        .send()?
        .expect_status(401, "the session after 60 s with only a WebSocket open")?;
    Ok(())
}
