//! The call history (`GET /api/v1/calls`, `daemon/core/src/call_history/mod.rs`): every meeting the
//! room took part in, newest first, with kind, outcome, duration and participant names, never a
//! PIN; readable with the audit role, not without credentials; entries older than
//! `meeting.history_retention_days` are deleted from the file, not only hidden.

use std::time::Duration;

use roomd_tests::{HarnessError, HostileAnswer, HostileServer, Roomd, meeting};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const STATE_TIMEOUT: Duration = Duration::from_secs(15);
const HOSTED_PIN: &str = "8642097531";
const JANUS_PIN: &str = "history-janus-pin";
const GUEST: &str = "Alice Archive";

fn calls(roomd: &Roomd, token: &str) -> Result<Value, HarnessError> {
    roomd
        .get("/api/v1/calls")
        .bearer(token)
        .send()?
        .expect_status(200, "GET /api/v1/calls")?
        .json()
}

/// A hosted meeting with one guest, who arrives and is admitted (no media needed), held for
/// a little over a second and ended.
fn hosted_meeting_with_a_guest(roomd: &Roomd) -> Result<(), HarnessError> {
    roomd.command(
        "meeting.join",
        &json!({ "target": { "kind": "hosted", "pin": HOSTED_PIN } }),
    )?;
    let hosted = meeting::wait_for(roomd, "a meeting id", STATE_TIMEOUT, |m| {
        m["id"].as_str().is_some_and(|id| !id.is_empty())
    })?;
    let id = hosted["id"].as_str().unwrap_or_default().to_owned();
    let arrived: Value = roomd
        .request("POST", &format!("/api/v1/join/{id}/guests"))
        .json(&json!({ "name": GUEST, "pin": HOSTED_PIN }))
        .send()?
        .expect_status(201, "the guest arriving")?
        .json()?;
    let guest = arrived["guest_id"].as_str().unwrap_or_default().to_owned();
    roomd.command("meeting.admit", &json!({ "participant": guest }))?;
    // Long enough for a duration of at least one second.
    std::thread::sleep(Duration::from_millis(1200));
    roomd.command("meeting.leave", &json!({}))?;
    meeting::wait_for(roomd, "idle", STATE_TIMEOUT, |m| m["state"] == "idle")?;

    Ok(())
}

#[test]
fn calls_are_listed_newest_first_without_secrets() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;

    hosted_meeting_with_a_guest(&roomd)?;

    // A Janus meeting whose server is unreachable (a port nobody listens on): the room keeps
    // trying, and is then told to leave.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|source| HarnessError::Io {
            what: "cannot find a closed port".into(),
            source,
        })?
        .port();
    roomd.command(
        "meeting.join",
        &json!({ "target": { "kind": "janus", "room": 77,
                 "server": format!("http://127.0.0.1:{closed_port}/janus"), "pin": JANUS_PIN } }),
    )?;
    meeting::wait_for(&roomd, "reconnecting", STATE_TIMEOUT, |m| {
        m["state"] == "reconnecting"
    })?;
    roomd.command("meeting.leave", &json!({}))?;
    meeting::wait_for(&roomd, "idle", STATE_TIMEOUT, |m| m["state"] == "idle")?;

    // A Janus server that answers nonsense: the meeting fails by itself.
    let server =
        HostileServer::start(|_| HostileAnswer::reply(200, "text/plain", "no Janus here"))?;
    roomd.command(
        "meeting.join",
        &json!({ "target": { "kind": "janus", "room": 78, "server": server.url("/janus"),
                 "pin": JANUS_PIN } }),
    )?;
    meeting::wait_for(&roomd, "failed", STATE_TIMEOUT, |m| m["state"] == "failed")?;
    roomd.command("meeting.leave", &json!({}))?;

    let audit = roomd.token_for("audit")?;
    let list = calls(&roomd, &audit)?;
    let text = list.to_string();
    for secret in [HOSTED_PIN, JANUS_PIN] {
        assert!(!text.contains(secret), "a PIN in the call history: {list}");
    }
    let entries = list.as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 3, "{list}");
    let (failed, left, hosted) = (&entries[0], &entries[1], &entries[2]);

    assert_eq!(failed["kind"], "janus", "newest first: {list}");
    assert_eq!(failed["target"]["room"], 78, "{failed}");
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("not JSON")),
        "{failed}"
    );

    assert_eq!(left["kind"], "janus", "{list}");
    assert_eq!(left["target"]["room"], 77, "{left}");
    assert_eq!(left["target"]["pin_set"], true, "{left}");
    assert_eq!(left["outcome"], "ended", "left on purpose: {left}");

    assert_eq!(hosted["kind"], "hosted", "oldest last: {list}");
    assert_eq!(hosted["outcome"], "ended", "{hosted}");
    assert!(
        hosted["duration_seconds"].as_u64().is_some_and(|d| d >= 1),
        "{hosted}"
    );
    assert!(hosted["participants"].is_array(), "{hosted}");
    for entry in &entries {
        let started = OffsetDateTime::parse(entry["started_at"].as_str().unwrap_or(""), &Rfc3339);
        let ended = OffsetDateTime::parse(entry["ended_at"].as_str().unwrap_or(""), &Rfc3339);
        assert!(
            matches!((started, ended), (Ok(s), Ok(e)) if s <= e),
            "start and end are RFC 3339, in order: {entry}"
        );
    }

    let anonymous = roomd.get("/api/v1/calls").send()?;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    Ok(())
}

/// The call history names the participants "seen during the meeting"; a guest admitted from
/// the lobby took part even if it never sent media.
#[test]
fn an_admitted_guest_is_named_in_the_call_history() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    hosted_meeting_with_a_guest(&roomd)?;
    let list = calls(&roomd, &roomd.admin_token()?)?;
    let names: Vec<&str> = list[0]["participants"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        names,
        [GUEST],
        "the admitted guest is a participant: {list}"
    );
    Ok(())
}

/// One entry in the file's format (`CallRecord`), ended `days_ago` days before now.
fn record(id: &str, days_ago: i64) -> Result<Value, HarnessError> {
    let at = |t: OffsetDateTime| {
        t.format(&Rfc3339).map_err(|e| HarnessError::Config {
            message: format!("cannot format a time: {e}"),
        })
    };
    let ended = OffsetDateTime::now_utc() - time::Duration::days(days_ago);
    Ok(json!({
        "id": id, "kind": "hosted", "target": { "kind": "hosted", "pin_set": false },
        "started_at": at(ended - time::Duration::minutes(30))?, "ended_at": at(ended)?,
        "duration_seconds": 1800, "outcome": "ended", "error": "",
        "participants": ["Old Guest"],
    }))
}

#[test]
fn calls_older_than_the_retention_are_deleted() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("[meeting]\nhistory_retention_days = 1\n")?;
    let file = roomd.state_dir().join("call-history.json");
    // Oldest first, as roomd keeps the file.
    let seeded = json!([
        record("call-three-days-ago", 3)?,
        record("call-an-hour-ago", 0)?
    ]);
    std::fs::write(&file, seeded.to_string()).map_err(|source| HarnessError::Io {
        what: format!("cannot write {}", file.display()),
        source,
    })?;

    let list = calls(&roomd, &roomd.token_for("audit")?)?;
    let ids: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, ["call-an-hour-ago"], "{list}");
    let on_disk = std::fs::read_to_string(&file).map_err(|source| HarnessError::Io {
        what: format!("cannot read {}", file.display()),
        source,
    })?;
    assert!(!on_disk.contains("call-three-days-ago"), "{on_disk}");
    assert!(on_disk.contains("call-an-hour-ago"), "{on_disk}");
    Ok(())
}
