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
    let id = asked["request_id"]
        .as_str()
        .expect("a request id")
        .to_owned();
    let code = std::fs::read_to_string(roomd.state_dir().join("pairing-code"))
        .expect("the code for the console")
        .trim()
        .to_owned();
    assert_eq!(code.len(), 6, "{code}");
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

    let wrong = if code == "000000" { "111111" } else { "000000" };
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
