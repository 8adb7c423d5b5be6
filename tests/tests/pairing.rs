//! Touch panel pairing through the API of a real roomd: the code is never in a response, only
//! on the room display and in `<state>/pairing-code`; the token it buys has the room-control
//! role only; requests are rate-limited per address; wrong codes are refused; both steps are
//! audited.

use std::net::Ipv4Addr;

use roomd_tests::{HarnessError, Roomd};
use serde_json::{Value, json};

fn request(roomd: &Roomd, source: Ipv4Addr) -> Result<Value, HarnessError> {
    roomd
        .request("POST", "/api/v1/pairing")
        .from_source(source)
        .json(&json!({"name": "Table"}))
        .send()?
        .expect_status(201, "requesting pairing")?
        .json()
}

#[test]
fn a_panel_pairs_with_the_code_from_the_display() -> Result<(), HarnessError> {
    let unclaimed = Roomd::start("")?;
    let refused = unclaimed
        .request("POST", "/api/v1/pairing")
        .json(&json!({"name": "Table"}))
        .send()?
        .expect_status(409, "pairing an unclaimed room")?;
    assert!(
        refused
            .error_message()
            .unwrap_or_default()
            .contains("claim")
    );
    drop(unclaimed);

    let roomd = Roomd::start_claimed("")?;
    let panel = Ipv4Addr::new(127, 0, 0, 2);
    let asked = request(&roomd, panel)?;
    let id = request_id(&asked);
    let code = console_code(&roomd);
    assert_eq!(code.len(), 8, "{code}");
    assert!(
        !asked.to_string().contains(&code),
        "the answer holds the code"
    );
    let status = roomd
        .get("/api/v1/status")
        .bearer(&roomd.admin_token()?)
        .send()?
        .text();
    assert!(!status.contains(&code), "the status holds the code");

    // One request per address every 10 s; another address may ask (and replaces the request).
    roomd
        .request("POST", "/api/v1/pairing")
        .from_source(panel)
        .json(&json!({"name": "Table"}))
        .send()?
        .expect_status(429, "asking again at once")?;

    let wrong = if code == "00000000" {
        "11111111"
    } else {
        "00000000"
    };
    let refused = roomd
        .request("POST", &format!("/api/v1/pairing/{id}"))
        .from_source(panel)
        .json(&json!({"code": wrong}))
        .send()?
        .expect_status(403, "a wrong code")?;
    assert!(
        refused
            .error_message()
            .unwrap_or_default()
            .contains("4 attempts left")
    );

    let paired = roomd
        .request("POST", &format!("/api/v1/pairing/{id}"))
        .from_source(panel)
        .json(&json!({"code": code}))
        .send()?
        .expect_status(201, "the right code")?
        .json()?;
    assert_eq!(paired["role"], "room-control", "{paired}");
    assert_eq!(paired["created_by"], "pairing", "{paired}");
    let token = paired["token"].as_str().expect("a token");
    let whoami = roomd
        .get("/api/v1/session")
        .bearer(token)
        .send()?
        .expect_status(200, "the panel's token")?
        .json()?;
    assert_eq!(whoami["role"], "room-control");
    roomd
        .get("/api/v1/config")
        .bearer(token)
        .send()?
        .expect_status(403, "the panel reading the configuration")?;
    assert!(
        !roomd.state_dir().join("pairing-code").exists(),
        "a used code is deleted"
    );
    roomd
        .request("POST", &format!("/api/v1/pairing/{id}"))
        .from_source(panel)
        .json(&json!({"code": code}))
        .send()?
        .expect_status(404, "a used request")?;

    // The events WebSocket takes the token as a subprotocol (browsers cannot set Authorization).
    let protocol = format!("roomd.v1, roomd.bearer.{token}");
    roomd.websocket(&[("Sec-WebSocket-Protocol", protocol.as_str())])?;

    let audit = roomd
        .get("/api/v1/audit?limit=20")
        .bearer(&roomd.admin_token()?)
        .send()?
        .expect_status(200, "the audit log")?
        .text();
    assert!(
        audit.contains("pairing requested by panel Table"),
        "{audit}"
    );
    assert!(audit.contains("paired panel Table: token"), "{audit}");
    assert!(!audit.contains(&code), "the audit log holds the code");
    Ok(())
}

/// Pairs a panel from `source`: the token's secret and id.
fn pair(roomd: &Roomd, source: Ipv4Addr) -> Result<(String, String), HarnessError> {
    let asked = request(roomd, source)?;
    let id = request_id(&asked);
    let code = console_code(roomd);
    let paired = roomd
        .request("POST", &format!("/api/v1/pairing/{id}"))
        .from_source(source)
        .json(&json!({"code": code}))
        .send()?
        .expect_status(201, "the right code")?
        .json()?;
    Ok((
        paired["token"].as_str().expect("a token").to_owned(),
        paired["id"].as_str().expect("a token id").to_owned(),
    ))
}

/// The id of the pairing request answered by `asked`.
fn request_id(asked: &Value) -> String {
    asked["request_id"]
        .as_str()
        .expect("a request id")
        .to_owned()
}

fn console_code(roomd: &Roomd) -> String {
    std::fs::read_to_string(roomd.state_dir().join("pairing-code"))
        .expect("the code for the console")
        .trim()
        .to_owned()
}

#[test]
fn pairing_requests_and_wrong_codes_are_limited_room_wide() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    // Two requests each die of 5 wrong codes, every guess from an address of its own (no
    // address comes near its own lockout): 10 wrong codes room-wide.
    let mut guesser = 0u8;
    for n in 1..=2 {
        let asked = request(&roomd, Ipv4Addr::new(127, 3, 0, n))?;
        let id = request_id(&asked);
        let code = console_code(&roomd);
        let wrong = if code == "00000000" {
            "11111111"
        } else {
            "00000000"
        };
        for _ in 0..5 {
            guesser += 1;
            roomd
                .request("POST", &format!("/api/v1/pairing/{id}"))
                .from_source(Ipv4Addr::new(127, 4, 0, guesser))
                .json(&json!({"code": wrong}))
                .send()?
                .expect_status(403, "a wrong code")?;
        }
    }
    // The room's budget of wrong codes is spent: not even the right code is checked now.
    let asked = request(&roomd, Ipv4Addr::new(127, 3, 0, 3))?;
    let id = request_id(&asked);
    let refused = roomd
        .request("POST", &format!("/api/v1/pairing/{id}"))
        .from_source(Ipv4Addr::new(127, 3, 0, 3))
        .json(&json!({"code": console_code(&roomd)}))
        .send()?
        .expect_status(429, "the right code after 10 wrong ones room-wide")?;
    let wait: u64 = refused
        .header("retry-after")
        .and_then(|v| v.trim().parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=360).contains(&wait), "Retry-After {wait}");

    // Three requests were made room-wide; a fourth, from yet another address, must wait.
    let refused = roomd
        .request("POST", "/api/v1/pairing")
        .from_source(Ipv4Addr::new(127, 3, 0, 4))
        .json(&json!({"name": "Table"}))
        .send()?
        .expect_status(429, "a fourth request from a fourth address")?;
    assert!(
        refused.header("retry-after").is_some(),
        "{:?}",
        refused.headers
    );
    Ok(())
}

#[test]
fn panel_tokens_expire_unless_used() -> Result<(), HarnessError> {
    let mut roomd = Roomd::start_claimed("")?;
    let (idle, idle_id) = pair(&roomd, Ipv4Addr::new(127, 5, 0, 1))?;
    let (busy, busy_id) = pair(&roomd, Ipv4Addr::new(127, 5, 0, 2))?;
    let admin_token = roomd.admin_token()?;

    // Pretend, in the state file, that one panel was last used 15 days ago and the other 13.
    roomd.stop_sigterm()?;
    let path = roomd.state_dir().join("tokens.json");
    let mut tokens: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("tokens.json"))
            .expect("tokens.json is JSON");
    let days_ago = |days: i64| {
        let when = time::OffsetDateTime::now_utc() - time::Duration::days(days);
        when.format(&time::format_description::well_known::Rfc3339)
            .expect("a timestamp")
    };
    for token in tokens["tokens"].as_array_mut().expect("a token list") {
        if token["id"] == idle_id.as_str() {
            token["last_used"] = json!(days_ago(15));
        } else if token["id"] == busy_id.as_str() {
            token["last_used"] = json!(days_ago(13));
        }
    }
    std::fs::write(&path, tokens.to_string()).expect("writing tokens.json");
    roomd.start_again()?;

    roomd
        .get("/api/v1/session")
        .bearer(&idle)
        .send()?
        .expect_status(401, "a panel token unused for 15 days")?;
    roomd
        .get("/api/v1/session")
        .bearer(&busy)
        .send()?
        .expect_status(200, "a panel token last used 13 days ago")?;
    roomd
        .get("/api/v1/session")
        .bearer(&admin_token)
        .send()?
        .expect_status(200, "an admin's token, however old")?;
    // The use was written down: the busy panel has 14 days again, across restarts.
    let text = std::fs::read_to_string(&path).expect("tokens.json");
    let tokens: Value = serde_json::from_str(&text).expect("JSON");
    let busy_entry = tokens["tokens"]
        .as_array()
        .and_then(|list| list.iter().find(|t| t["id"] == busy_id.as_str()))
        .expect("the busy panel's token");
    let recorded = busy_entry["last_used"].as_str().expect("last_used");
    let recorded =
        time::OffsetDateTime::parse(recorded, &time::format_description::well_known::Rfc3339)
            .expect("RFC 3339");
    assert!(
        time::OffsetDateTime::now_utc() - recorded < time::Duration::minutes(5),
        "last use not recorded: {busy_entry}"
    );
    assert!(!text.contains(&busy), "the file holds a secret");
    Ok(())
}

#[test]
fn the_pairing_code_is_not_in_the_display_snapshot() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    // The `user` role may look at the display; it must not learn the code that buys a
    // room-control token.
    let user = roomd.token_for("user")?;
    // Standby: a still picture, so that equal frames mean equal content.
    roomd.command("standby.activate", &json!({}))?;
    let snapshot = || -> Result<Vec<u8>, HarnessError> {
        std::thread::sleep(std::time::Duration::from_millis(800));
        Ok(roomd
            .get("/api/v1/display/snapshot")
            .bearer(&user)
            .send()?
            .expect_status(200, "a snapshot as user")?
            .body)
    };
    let (still, again) = (snapshot()?, snapshot()?);
    assert!(still == again, "the standby display is not still");

    request(&roomd, Ipv4Addr::new(127, 6, 0, 1))?;
    let first_code = console_code(&roomd);
    let with_first = snapshot()?;
    request(&roomd, Ipv4Addr::new(127, 6, 0, 2))?;
    let second_code = console_code(&roomd);
    assert_ne!(first_code, second_code, "a new request draws a new code");
    let with_second = snapshot()?;
    assert!(
        with_first == with_second,
        "the snapshot changes with the pairing code, so it shows the code"
    );
    Ok(())
}
