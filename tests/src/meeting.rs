//! Reading roomd's `status.meeting` (docs/meetings.md) in tests: the whole tree, waiting for a
//! condition on it, and the figures tests assert on (frames received per stream, participants).
//!
//! ```no_run
//! # let roomd = roomd_tests::Roomd::start_claimed("")?;
//! use std::time::Duration;
//! use roomd_tests::meeting;
//! meeting::wait_for(&roomd, "connected", Duration::from_secs(20), |m| m["state"] == "connected")?;
//! # Ok::<(), roomd_tests::HarnessError>(())
//! ```

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::netns::TestNetwork;
use crate::roomd::Roomd;
use crate::{ADMIN_PASSWORD, ADMIN_USERNAME, HarnessError};

const POLL: Duration = Duration::from_millis(100);

/// `GET /api/v1/status/meeting` as the harness admin.
pub fn status(roomd: &Roomd) -> Result<Value, HarnessError> {
    roomd
        .get("/api/v1/status/meeting")
        .bearer(&roomd.admin_token()?)
        .send()?
        .expect_status(200, "GET /api/v1/status/meeting")?
        .json()
}

/// Polls `status.meeting` until `condition` holds; returns that status. On timeout the error
/// shows the last status seen.
pub fn wait_for(
    roomd: &Roomd,
    what: &str,
    timeout: Duration,
    condition: impl Fn(&Value) -> bool,
) -> Result<Value, HarnessError> {
    let deadline = Instant::now() + timeout;
    loop {
        let meeting = status(roomd)?;
        if condition(&meeting) {
            return Ok(meeting);
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Timeout {
                what: format!("status.meeting: {what}; last seen: {meeting}"),
                timeout,
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Has `roomd` host a meeting (with `pin`, if any) and waits until it has an id; returns that
/// status.
pub fn host(roomd: &Roomd, pin: Option<&str>, timeout: Duration) -> Result<Value, HarnessError> {
    roomd.command(
        "meeting.join",
        &json!({ "target": { "kind": "hosted", "pin": pin } }),
    )?;
    wait_for(roomd, "a hosted meeting id", timeout, |m| {
        m["id"].as_str().is_some_and(|id| !id.is_empty())
    })
}

/// A claimed roomd named "Host room" in `network`, hosting a meeting with `pin`; returns it with
/// the meeting's status once the meeting has an id.
pub fn host_room_in(
    network: &TestNetwork,
    pin: &str,
    timeout: Duration,
) -> Result<(Roomd, Value), HarnessError> {
    let mut host = Roomd::builder()
        .config("[system]\nname = \"Host room\"\n")
        .in_network(network)
        .start()?;
    host.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    let hosted = self::host(&host, Some(pin), timeout)?;
    Ok((host, hosted))
}

/// The meeting state in a message of the events WebSocket, whether it reports the whole
/// `meeting` tree or only `meeting.state` (None for anything else).
pub fn state_in_event(message: &Value) -> Option<&str> {
    if message["type"] != "status" {
        return None;
    }
    match message["path"].as_str()? {
        "meeting" => message["value"]["state"].as_str(),
        "meeting.state" => message["value"].as_str(),
        _ => None,
    }
}

/// Frames counted per stream of `status.meeting.streams` with this direction (`send` or
/// `receive`) and kind (`audio` or `video`).
pub fn stream_frames(meeting: &Value, direction: &str, kind: &str) -> Vec<u64> {
    streams(meeting, direction, kind)
        .map(|stream| stream["frames"].as_u64().unwrap_or(0))
        .collect()
}

/// Waits until the video frames `roomd` received (from `participant`, or from everyone) have
/// grown by more than `frames` since the call: media flows now, not only earlier.
pub fn wait_for_received_video(
    roomd: &Roomd,
    participant: Option<&str>,
    frames: u64,
    timeout: Duration,
) -> Result<Value, HarnessError> {
    let total = |m: &Value| {
        streams(m, "receive", "video")
            .filter(|s| participant.is_none_or(|p| s["participant"] == p))
            .map(|s| s["frames"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let start = total(&status(roomd)?);
    wait_for(roomd, "received video frames growing", timeout, |m| {
        total(m) > start + frames
    })
}

/// The streams of `status.meeting.streams` with this direction and kind.
pub fn streams<'a>(
    meeting: &'a Value,
    direction: &'a str,
    kind: &'a str,
) -> impl Iterator<Item = &'a Value> {
    meeting["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |s| s["direction"] == direction && s["kind"] == kind)
}

/// The participant called `name` in `status.meeting.participants`.
pub fn participant<'a>(meeting: &'a Value, name: &str) -> Option<&'a Value> {
    meeting["participants"]
        .as_array()?
        .iter()
        .find(|p| p["name"] == name)
}
