//! Guests of a meeting the room hosts, on the shipped guest page (`tests/browser/guest-page.mjs`,
//! [`crate::BrowserPeer::guest_pages`]): reading what each page shows, and admitting them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{HarnessError, Roomd, meeting};

/// What guest `name` sees in a `guests` line of the driver.
pub fn view<'a>(line: &'a Value, name: &str) -> Option<&'a Value> {
    line["guests"]
        .as_array()?
        .iter()
        .find(|g| g["name"] == name)
}

/// The other guest called `name` as `view` shows them.
pub fn other<'a>(view: &'a Value, name: &str) -> Option<&'a Value> {
    view["others"]
        .as_array()?
        .iter()
        .find(|o| o["name"] == name)
}

/// The frames a tile (`room`, or one of `others`) has shown.
pub fn frames(tile: &Value) -> u64 {
    tile["frames"].as_u64().unwrap_or(0)
}

/// Admits the guest called `name` once it waits in `host`'s lobby (at most `timeout`).
pub fn admit(host: &Roomd, name: &str, timeout: Duration) -> Result<(), HarnessError> {
    let id = in_the_lobby(host, name, timeout)?;
    host.command("meeting.admit", &json!({ "participant": id }))?;
    Ok(())
}

/// The participant id of the guest called `name` once it waits in `host`'s lobby.
pub fn in_the_lobby(host: &Roomd, name: &str, timeout: Duration) -> Result<String, HarnessError> {
    let meeting = meeting::wait_for(host, &format!("{name} in the lobby"), timeout, |m| {
        meeting::participant(m, name).is_some_and(|p| p["state"] == "lobby")
    })?;
    Ok(meeting::participant(&meeting, name)
        .and_then(|p| p["id"].as_str())
        .unwrap_or_default()
        .to_owned())
}
