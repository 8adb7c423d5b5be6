//! The daemon's recent log over the API (`GET /api/v1/logs`), against a live roomd: a failed
//! login shows up as a warn record, the level filter and limit hold, bad parameters are refused
//! by name, and only the roles the contract lists may read it.

use roomd_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, HarnessError, Roomd};
use serde_json::{Value, json};

fn records(roomd: &Roomd, query: &str, token: &str) -> Result<Vec<Value>, HarnessError> {
    let path = format!("/api/v1/logs{query}");
    let answer = roomd
        .get(&path)
        .bearer(token)
        .send()?
        .expect_status(200, &format!("GET {path}"))?
        .json()?;
    Ok(answer.as_array().cloned().unwrap_or_else(|| {
        panic!("GET {path} is not a list: {answer}");
    }))
}

/// The username of a failed login is whatever someone typed, often a password in the wrong box:
/// an admin reads it, audit sees that a login failed, and from where, but not the name.
#[test]
fn a_failed_login_is_a_warn_record_that_audit_may_read() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    roomd
        .request("POST", "/api/v1/session")
        .json(&json!({ "username": ADMIN_USERNAME, "password": "not the password at all" }))
        .send()?
        .expect_status(401, "a login with a wrong password")?;
    let typed_password = "Typed-My-Password-Here";
    roomd
        .request("POST", "/api/v1/session")
        .json(&json!({ "username": typed_password, "password": "not the password at all" }))
        .send()?
        .expect_status(401, "a login with a password typed as the username")?;

    let audit = roomd.token_for("audit")?;
    let audit_view = records(&roomd, "?limit=1000", &audit)?;
    let audit_text = serde_json::to_string(&audit_view).unwrap_or_default();
    assert!(
        !audit_text.contains(typed_password),
        "audit reads a failed login's username: {audit_view:?}"
    );
    assert!(
        audit_view.iter().any(|r| r["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed login") && m.contains("username=(hidden)"))),
        "audit does not see that a login failed: {audit_view:?}"
    );

    let admin = roomd.admin_token()?;
    let warnings = records(&roomd, "?level=warn", &admin)?;
    assert!(
        warnings
            .iter()
            .all(|r| r["level"] == "warn" || r["level"] == "error"),
        "level=warn returned less severe records: {warnings:?}"
    );
    let failed = warnings
        .iter()
        .find(|r| {
            r["message"]
                .as_str()
                .is_some_and(|m| m.contains("failed login") && m.contains(ADMIN_USERNAME))
        })
        .unwrap_or_else(|| {
            panic!(
                "no warn record of the failed login in {warnings:?}\n--- roomd stderr ---\n{}",
                roomd.stderr_text()
            )
        });
    assert!(
        failed["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("roomd")),
        "{failed}"
    );
    let time = failed["time"].as_str().unwrap_or_default();
    assert!(
        time.len() >= 20 && time.contains('T') && time.ends_with('Z'),
        "time {time:?} is not RFC 3339 UTC"
    );
    // The password never reaches the log.
    let everything = records(&roomd, "?limit=1000", &audit)?;
    assert!(
        !serde_json::to_string(&everything)
            .unwrap_or_default()
            .contains("not the password at all"),
        "a password is in the log"
    );

    // Newest first, and the default includes the info records of the start.
    let seqs: Vec<u64> = everything
        .iter()
        .filter_map(|r| r["seq"].as_u64())
        .collect();
    assert_eq!(seqs.len(), everything.len(), "every record has a seq");
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "not newest first: {seqs:?}"
    );
    assert!(
        everything.iter().any(|r| r["level"] == "info"),
        "no info records without a level filter: {everything:?}"
    );
    let one = records(&roomd, "?limit=1", &audit)?;
    assert_eq!(one.len(), 1);
    assert!(one[0]["seq"].as_u64() >= seqs.first().copied());
    Ok(())
}

/// The claim code belongs to whoever has the console (and the claim-code file): the API's log,
/// which integrators and audit read, never holds it.
#[test]
fn the_claim_code_reaches_the_console_but_never_the_served_log() -> Result<(), HarnessError> {
    let mut roomd = Roomd::start("")?;
    let code = roomd.claim_code()?;
    assert!(
        roomd.stderr_text().contains(&code),
        "the console does not show the claim code"
    );
    roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    for role in ["admin", "integrator", "audit"] {
        let token = roomd.token_for(role)?;
        let everything = records(&roomd, "?limit=1000", &token)?;
        assert!(
            everything.iter().any(|r| r["level"] == "info"),
            "{role}: the log is empty, which proves nothing: {everything:?}"
        );
        let text = serde_json::to_string(&everything).unwrap_or_default();
        assert!(!text.contains(&code), "{role} reads the claim code: {text}");
    }
    Ok(())
}

#[test]
fn roles_and_parameters_are_checked() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    for role in ["admin", "integrator", "audit"] {
        let token = roomd.token_for(role)?;
        records(&roomd, "", &token)?;
    }
    for role in ["user", "room-control"] {
        let token = roomd.token_for(role)?;
        roomd
            .get("/api/v1/logs")
            .bearer(&token)
            .send()?
            .expect_status(403, &format!("GET /api/v1/logs as {role}"))?;
    }
    roomd
        .get("/api/v1/logs")
        .send()?
        .expect_status(401, "GET /api/v1/logs without credentials")?;

    let audit = roomd.token_for("audit")?;
    for (query, named) in [
        ("?since=5", "since"),
        ("?level=loud", "level"),
        ("?level=WARN", "level"),
        ("?limit=0", "limit"),
        ("?limit=1001", "limit"),
        ("?limit=ten", "limit"),
    ] {
        let answer = roomd
            .get(&format!("/api/v1/logs{query}"))
            .bearer(&audit)
            .send()?
            .expect_status(400, &format!("GET /api/v1/logs{query}"))?;
        let message = answer.error_message().unwrap_or_default();
        assert!(
            message.contains(named),
            "{query}: the refusal {message:?} does not name {named:?}"
        );
    }
    Ok(())
}
