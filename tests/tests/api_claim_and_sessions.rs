//! First boot (claim), cookie sessions with CSRF protection, and the login lockout, against a
//! live roomd.

use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use roomd_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, ApiResponse, HarnessError, Roomd, Session};
use serde_json::{Value, json};

/// The alphabet of codes people type (daemon/base/src/random.rs): no 0/O, 1/I/L, 2/Z, 5/S, 8/B.
const UNAMBIGUOUS_ALPHABET: &str = "ACDEFGHJKMNPQRTUVWXY34679";
/// A second loopback address: Linux routes all of 127.0.0.0/8 to `lo`.
const OTHER_SOURCE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn assert_error(response: &ApiResponse, status: u16, code: &str, what: &str) {
    assert_eq!(
        response.status,
        status,
        "{what}: expected {status}, got {}: {}",
        response.status,
        response.text()
    );
    assert_eq!(
        response.error_code().as_deref(),
        Some(code),
        "{what}: error body {}",
        response.text()
    );
    let message = response.error_message().unwrap_or_default();
    assert!(
        !message.trim().is_empty(),
        "{what}: error without a message"
    );
}

fn claim(
    roomd: &Roomd,
    code: &str,
    username: &str,
    password: &str,
) -> Result<ApiResponse, HarnessError> {
    roomd
        .request("POST", "/api/v1/claim")
        .json(&json!({ "code": code, "username": username, "password": password }))
        .send()
}

fn login_attempt(
    roomd: &Roomd,
    username: &str,
    password: &str,
    source: Option<Ipv4Addr>,
) -> Result<ApiResponse, HarnessError> {
    let mut request = roomd
        .request("POST", "/api/v1/session")
        .json(&json!({ "username": username, "password": password }));
    if let Some(source) = source {
        request = request.from_source(source);
    }
    request.send()
}

/// Seconds from a 429's `Retry-After`; fails the test if it is missing or not a number.
fn retry_after_seconds(response: &ApiResponse, what: &str) -> u64 {
    let value = response
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: 429 without Retry-After: {:?}", response.headers));
    value
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{what}: Retry-After {value:?} is not a number of seconds"))
}

#[test]
fn an_unclaimed_device_shows_a_claim_code_and_nothing_else() -> Result<(), HarnessError> {
    let roomd = Roomd::start("")?;
    let path = roomd.state_dir().join("claim-code");
    let mode = std::fs::metadata(&path)
        .map_err(|e| HarnessError::Io {
            what: format!("no claim code file {}", path.display()),
            source: e,
        })?
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o600,
        "claim-code has mode {:o}",
        mode & 0o777
    );
    let code = roomd.claim_code()?;
    assert!(
        code.len() >= 10,
        "claim code {code:?} is shorter than 10 characters"
    );
    assert!(
        code.chars().all(|c| UNAMBIGUOUS_ALPHABET.contains(c)),
        "claim code {code:?} has characters outside {UNAMBIGUOUS_ALPHABET}"
    );
    let state_mode = std::fs::metadata(roomd.state_dir())
        .map_err(|e| HarnessError::Io {
            what: "no state dir".to_owned(),
            source: e,
        })?
        .permissions()
        .mode();
    assert_eq!(
        state_mode & 0o777,
        0o700,
        "state dir mode {:o}",
        state_mode & 0o777
    );
    // Deny by default holds before the claim too.
    assert_eq!(roomd.get("/api/v1/status").send()?.status, 401);
    assert_eq!(roomd.get("/api/v1/health").send()?.status, 200);
    Ok(())
}

#[test]
fn claiming_creates_the_admin_exactly_once() -> Result<(), HarnessError> {
    let roomd = Roomd::start("")?;
    let code = roomd.claim_code()?;
    let wrong_code: String = code.chars().rev().collect::<String>() + "A";
    let wrong = claim(&roomd, &wrong_code, "boss", "a very long password")?;
    assert_error(&wrong, 403, "forbidden", "claim with a wrong code");

    let short = claim(&roomd, &code, "boss", "short pw 11")?;
    assert!(
        [400, 422].contains(&short.status),
        "an 11-character password: expected 400/422, got {}: {}",
        short.status,
        short.text()
    );
    let message = short.error_message().unwrap_or_default();
    assert!(
        message.contains("password") && message.contains("12"),
        "the refusal of a short password should name the rule (password, 12): {message:?}"
    );
    assert!(
        roomd.state_dir().join("claim-code").exists(),
        "a refused claim used up the code"
    );

    let created = claim(&roomd, &code, "boss", "a very long password")?;
    assert_eq!(created.status, 201, "claim: {}", created.text());
    let body = created.json()?;
    assert_eq!(body["username"], "boss");
    assert_eq!(body["role"], "admin");
    assert!(
        !body.to_string().contains("a very long password"),
        "the claim answer echoes the password"
    );
    assert!(
        !roomd.state_dir().join("claim-code").exists(),
        "the claim code file is still there after the claim"
    );
    let again = claim(&roomd, &code, "boss2", "another long password")?;
    assert_error(&again, 409, "conflict", "second claim");

    let session = roomd.login("boss", "a very long password")?;
    assert_eq!(session.role, "admin");
    Ok(())
}

#[test]
fn cookie_sessions_are_locked_down_and_need_csrf_tokens() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let login = login_attempt(&roomd, ADMIN_USERNAME, ADMIN_PASSWORD, None)?;
    assert_eq!(login.status, 200, "login: {}", login.text());
    let body = login.json()?;
    assert_eq!(body["username"], ADMIN_USERNAME);
    assert_eq!(body["role"], "admin");
    assert!(
        body["expires_idle_seconds"].as_u64().is_some_and(|s| s > 0),
        "expires_idle_seconds missing: {body}"
    );
    let session = Session::from_login_response(&login)?;
    let attributes: Vec<String> = session
        .cookie_attributes()
        .iter()
        .map(|a| a.to_ascii_lowercase())
        .collect();
    for wanted in ["httponly", "secure", "samesite=strict", "path=/"] {
        assert!(
            attributes.iter().any(|a| a == wanted),
            "session cookie lacks {wanted}: {}",
            session.set_cookie
        );
    }
    assert!(
        session.csrf_token.len() >= 16,
        "CSRF token {:?} is too short to be unguessable",
        session.csrf_token
    );

    let whoami = roomd
        .get("/api/v1/session")
        .cookie(&session)
        .send()?
        .expect_status(200, "GET /api/v1/session with the cookie")?
        .json()?;
    assert_eq!(whoami["kind"], "session");
    assert_eq!(whoami["username"], ADMIN_USERNAME);
    let token = roomd.admin_token()?;
    let by_token = roomd
        .get("/api/v1/session")
        .bearer(&token)
        .send()?
        .expect_status(200, "GET /api/v1/session with a token")?
        .json()?;
    assert_eq!(by_token["kind"], "token");

    let volume = json!({ "level": 33 });
    let no_csrf = roomd
        .request("POST", "/api/v1/commands/audio.volume.set")
        .cookie(&session)
        .json(&volume)
        .send()?;
    assert_error(
        &no_csrf,
        403,
        "forbidden",
        "state change with the cookie and no CSRF token",
    );
    let wrong_csrf = roomd
        .request("POST", "/api/v1/commands/audio.volume.set")
        .cookie(&session)
        .header("X-CSRF-Token", "0123456789abcdef0123456789abcdef")
        .json(&volume)
        .send()?;
    assert_error(
        &wrong_csrf,
        403,
        "forbidden",
        "state change with a wrong CSRF token",
    );
    let level = roomd
        .get("/api/v1/status/audio/volume")
        .bearer(&token)
        .send()?
        .json()?;
    assert_ne!(
        level,
        json!(33),
        "a request refused for CSRF still changed the volume"
    );
    roomd
        .request("POST", "/api/v1/commands/audio.volume.set")
        .session(&session)
        .json(&volume)
        .send()?
        .expect_status(200, "state change with cookie and CSRF token")?;
    let level = roomd
        .get("/api/v1/status/audio/volume")
        .bearer(&token)
        .send()?
        .json()?;
    assert_eq!(level, json!(33));

    let logout_without_csrf = roomd
        .request("DELETE", "/api/v1/session")
        .cookie(&session)
        .send()?;
    assert_error(
        &logout_without_csrf,
        403,
        "forbidden",
        "logout without CSRF token",
    );
    roomd
        .request("DELETE", "/api/v1/session")
        .session(&session)
        .send()?
        .expect_status(204, "logout")?;
    let after = roomd.get("/api/v1/session").cookie(&session).send()?;
    assert_error(&after, 401, "unauthorized", "the cookie after logout");
    Ok(())
}

#[test]
fn wrong_passwords_get_401_and_sessions_end_when_roomd_restarts() -> Result<(), HarnessError> {
    let mut roomd = Roomd::start_claimed("")?;
    let wrong = login_attempt(&roomd, ADMIN_USERNAME, "not the password at all", None)?;
    assert_error(&wrong, 401, "unauthorized", "a wrong password");
    let nobody = login_attempt(&roomd, "nobody", "not the password at all", None)?;
    assert_error(&nobody, 401, "unauthorized", "an unknown user");
    assert_eq!(
        wrong.error_message(),
        nobody.error_message(),
        "the answers for a wrong password and an unknown user differ, which tells names apart"
    );
    let session = roomd.login(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    roomd
        .get("/api/v1/status")
        .cookie(&session)
        .send()?
        .expect_status(200, "status with the cookie")?;
    let status = roomd.restart()?;
    assert!(status.success(), "roomd exited with {status} on SIGTERM");
    let after = roomd.get("/api/v1/status").cookie(&session).send()?;
    assert_error(
        &after,
        401,
        "unauthorized",
        "a session cookie from before the restart",
    );
    // Tokens are stored and survive the restart.
    roomd
        .get("/api/v1/status")
        .bearer(&roomd.admin_token()?)
        .send()?
        .expect_status(200, "a token after the restart")?;
    Ok(())
}

#[test]
fn repeated_wrong_passwords_lock_one_user_from_one_source() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    roomd.create_user("bystander", "bystander password", "user")?;
    for attempt in 1..=5 {
        let wrong = login_attempt(&roomd, ADMIN_USERNAME, "guessing the password", None)?;
        assert_error(
            &wrong,
            401,
            "unauthorized",
            &format!("wrong password #{attempt}"),
        );
    }
    let locked = login_attempt(&roomd, ADMIN_USERNAME, ADMIN_PASSWORD, None)?;
    assert_error(
        &locked,
        429,
        "too_many_requests",
        "the right password after 5 failures",
    );
    let wait = retry_after_seconds(&locked, "locked login");
    assert!(
        (1..=900).contains(&wait),
        "Retry-After {wait} is outside 1..=900"
    );

    // The lockout is per user and source: other users and other sources are not punished.
    let other_user = login_attempt(&roomd, "bystander", "bystander password", None)?;
    assert_eq!(
        other_user.status,
        200,
        "another user was locked too: {}",
        other_user.text()
    );
    let other_source = login_attempt(&roomd, ADMIN_USERNAME, ADMIN_PASSWORD, Some(OTHER_SOURCE))?;
    assert_eq!(
        other_source.status,
        200,
        "the same user from {OTHER_SOURCE} was locked too: {}",
        other_source.text()
    );

    // The delay ends: after Retry-After the right password works again.
    assert!(
        wait <= 5,
        "a first delay of {wait} s is longer than the documented 1 s start"
    );
    std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(300));
    let later = login_attempt(&roomd, ADMIN_USERNAME, ADMIN_PASSWORD, None)?;
    assert_eq!(
        later.status,
        200,
        "still locked after Retry-After: {}",
        later.text()
    );
    Ok(())
}

#[test]
fn repeated_wrong_claim_codes_lock_the_source() -> Result<(), HarnessError> {
    let roomd = Roomd::start("")?;
    let code = roomd.claim_code()?;
    for attempt in 1..=5 {
        let wrong = claim(&roomd, "ACDEFGHJKMNP", "boss", "a very long password")?;
        assert_error(
            &wrong,
            403,
            "forbidden",
            &format!("wrong claim code #{attempt}"),
        );
    }
    let locked = claim(&roomd, &code, "boss", "a very long password")?;
    assert_error(
        &locked,
        429,
        "too_many_requests",
        "the right code after 5 wrong ones",
    );
    retry_after_seconds(&locked, "locked claim");
    let other_source = roomd
        .request("POST", "/api/v1/claim")
        .json(&json!({ "code": code, "username": "boss", "password": "a very long password" }))
        .from_source(OTHER_SOURCE)
        .send()?;
    assert_eq!(
        other_source.status,
        201,
        "a claim from {OTHER_SOURCE} was locked too: {}",
        other_source.text()
    );
    let body: Value = other_source.json()?;
    assert_eq!(body["role"], "admin");
    Ok(())
}

/// A claimed device whose users file is lost (deleted, or emptied) must not come up unclaimed:
/// anyone on the network could then claim it again with the new code on the display. roomd
/// refuses to start and names the files that show the earlier claim.
#[test]
fn a_claimed_state_dir_without_users_is_never_reopened_for_claiming() -> Result<(), HarnessError> {
    let mut roomd = Roomd::start_claimed("")?;
    let users = roomd.state_dir().join("users.json");
    for (what, lose) in [
        (
            "users.json deleted",
            Box::new(|| std::fs::remove_file(&users)) as Box<dyn Fn() -> std::io::Result<()>>,
        ),
        (
            "users.json emptied",
            Box::new(|| std::fs::write(&users, "{\"version\": 1, \"users\": []}")),
        ),
    ] {
        roomd.stop_sigterm()?;
        std::fs::copy(&users, roomd.dir().join("users.json.bak")).expect("back up users.json");
        lose().expect(what);
        let marker = roomd.state_dir().join("claimed").display().to_string();
        match roomd.start_again() {
            Err(HarnessError::ExitedEarly { stderr, .. }) => assert!(
                stderr.contains("was claimed before") && stderr.contains(&marker),
                "{what}: the refusal does not name the evidence: {stderr}"
            ),
            Ok(()) => panic!("{what}: roomd came up unclaimed over a claimed state directory"),
            Err(other) => panic!("{what}: unexpected failure: {other}"),
        }
        assert!(
            !roomd.state_dir().join("claim-code").exists(),
            "{what}: a claim code was made"
        );
        std::fs::copy(roomd.dir().join("users.json.bak"), &users).expect("restore users.json");
        // Restored, the device starts claimed, with its admin.
        roomd.start_again()?;
        roomd
            .get("/api/v1/status")
            .bearer(&roomd.admin_token()?)
            .send()?
            .expect_status(200, "status after restoring users.json")?;
    }
    Ok(())
}
