//! `fleet update`: a firmware update rolled out in waves. Each wave gets the fleet request
//! `{"update": {"url": …}}` (the room downloads, verifies and installs, and answers once RAUC is
//! done), optionally `update.reboot` and the wait until the room is back on the new version with
//! its slot marked good; then the wave's health is checked. The first unhealthy wave stops the
//! rollout: later waves get nothing.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde_json::{Value, json};

use super::format::{self, Format, cell};
use super::inventory::{Room, Seen};
use super::{
    Broker, Selection, Session, collect, connect, inventory, now_rfc3339, reply_of, take_state,
};

/// One entry of `--waves`: a number of rooms, or a share of the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Rooms(usize),
    Percent(u32),
}

/// `--waves 1,10%,100%`: how far each wave brings the rollout, counted from the start (so
/// `1,10%,100%` is one room, then up to a tenth of the rooms, then the rest). Rooms past the
/// last entry form one last wave: every selected room is updated unless a wave fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Waves(Vec<Step>);

/// At most this many waves (a bound on input; more would be a typo).
const MAX_WAVES: usize = 100;

impl FromStr for Waves {
    type Err = String;

    fn from_str(text: &str) -> Result<Waves, String> {
        let mut steps = Vec::new();
        for part in text.split(',').map(str::trim) {
            let step = if let Some(p) = part.strip_suffix('%') {
                match p.parse::<u32>() {
                    Ok(p @ 1..=100) => Step::Percent(p),
                    _ => return Err(format!("{part:?}: a share is 1% to 100%")),
                }
            } else {
                match part.parse::<usize>() {
                    Ok(n @ 1..) => Step::Rooms(n),
                    _ => {
                        return Err(format!(
                            "{part:?}: each wave is a number of rooms (1 or more) or a share (10%)"
                        ));
                    }
                }
            };
            steps.push(step);
        }
        if steps.len() > MAX_WAVES {
            return Err(format!("at most {MAX_WAVES} waves"));
        }
        Ok(Waves(steps))
    }
}

impl Waves {
    /// The waves for `n` rooms: the number of rooms in each, none empty, adding up to `n`.
    fn sizes(&self, n: usize) -> Vec<usize> {
        let mut sizes = Vec::new();
        let mut done = 0usize;
        for step in &self.0 {
            let upto = match *step {
                Step::Rooms(k) => k,
                Step::Percent(p) => (n * p as usize).div_ceil(100),
            }
            .min(n);
            if upto > done {
                sizes.push(upto - done);
                done = upto;
            }
        }
        if done < n {
            sizes.push(n - done);
        }
        sizes
    }
}

/// What `fleet update` is asked to do.
pub(crate) struct UpdatePlan {
    pub(crate) url: String,
    pub(crate) waves: Waves,
    pub(crate) reboot: bool,
    pub(crate) wave_timeout: Duration,
    pub(crate) dry_run: bool,
    pub(crate) include_in_meeting: bool,
    pub(crate) format: Format,
}

/// One room's outcome.
struct Outcome {
    wave: Option<usize>,
    /// `installed`, `rebooted`, `failed`, `unhealthy`, `skipped`, `not-started`, `planned`.
    result: &'static str,
    version: String,
    health: String,
    detail: String,
}

impl Outcome {
    fn ok(&self) -> bool {
        matches!(self.result, "installed" | "rebooted")
    }
}

/// Runs (or with `dry_run` plans) the rollout. Returns what to print and whether every wave
/// was healthy.
pub(crate) fn update(
    broker: &Broker,
    selection: &Selection,
    plan: &UpdatePlan,
) -> anyhow::Result<(String, bool)> {
    let session = connect(broker)?;
    let mut seen = collect(&session, selection.quiet)?;
    // Named rooms are taken whatever their presence (an offline one is skipped, and says so);
    // without names, the online rooms.
    let rooms = inventory(seen.clone(), selection, selection.rooms.is_empty());
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut targets: Vec<String> = Vec::new();
    for room in &rooms {
        let skip = if !room.online {
            Some("offline".to_owned())
        } else if room.in_meeting && !plan.include_in_meeting {
            Some("in a meeting (--include-in-meeting updates it anyway)".to_owned())
        } else {
            None
        };
        match skip {
            Some(detail) => {
                outcomes.insert(room.id.clone(), outcome(None, "skipped", room, detail));
            }
            None => targets.push(room.id.clone()),
        }
    }
    let mut waves: Vec<Vec<String>> = Vec::new();
    let mut rest = targets.as_slice();
    for size in plan.waves.sizes(targets.len()) {
        let (wave, after) = rest.split_at(size);
        waves.push(wave.to_vec());
        rest = after;
    }
    if plan.dry_run {
        let _ = session.client.disconnect();
        for (i, wave) in waves.iter().enumerate() {
            for id in wave {
                let room = rooms.iter().find(|r| &r.id == id);
                let mut o = room.map_or_else(
                    || blank(Some(i + 1), "planned"),
                    |r| outcome(Some(i + 1), "planned", r, String::new()),
                );
                o.detail = "dry run: nothing sent".into();
                outcomes.insert(id.clone(), o);
            }
        }
        return Ok((report(plan, &outcomes, &waves, None, true), true));
    }
    if waves.is_empty() {
        bail!("no room to update: the selection is empty, or every room in it was skipped");
    }
    session.subscribe_replies()?;
    let mut stopped_after = None;
    for (i, wave) in waves.iter().enumerate() {
        let number = i + 1;
        eprintln!(
            "roomctl: wave {number} of {}: {}",
            waves.len(),
            wave.join(", ")
        );
        let results = run_wave(&session, &mut seen, wave, number, plan)?;
        let healthy = results.values().all(Outcome::ok);
        outcomes.extend(results);
        if !healthy {
            stopped_after = Some(number);
            for (j, later) in waves.iter().enumerate().skip(number) {
                for id in later {
                    let mut o = blank(Some(j + 1), "not-started");
                    o.detail = format!("the rollout stopped after wave {number}");
                    outcomes.insert(id.clone(), o);
                }
            }
            break;
        }
    }
    let _ = session.client.disconnect();
    let healthy = stopped_after.is_none();
    if let Some(number) = stopped_after {
        for (id, o) in &outcomes {
            if o.wave == Some(number) && !o.ok() {
                eprintln!(
                    "roomctl: wave {number} is unhealthy: {id}: {} ({})",
                    o.result, o.detail
                );
            }
        }
    }
    Ok((
        report(plan, &outcomes, &waves, stopped_after, healthy),
        healthy,
    ))
}

fn outcome(wave: Option<usize>, result: &'static str, room: &Room, detail: String) -> Outcome {
    Outcome {
        wave,
        result,
        version: room.version.clone(),
        health: room.health.to_owned(),
        detail,
    }
}

fn blank(wave: Option<usize>, result: &'static str) -> Outcome {
    Outcome {
        wave,
        result,
        version: String::new(),
        health: String::new(),
        detail: String::new(),
    }
}

/// One wave: the update to every room, every reply awaited (within the wave timeout), then
/// with `--reboot` the reboot and the wait for each room to come back on the new version with
/// its slot marked good; last the health of each.
fn run_wave(
    session: &Session,
    seen: &mut BTreeMap<String, Seen>,
    wave: &[String],
    number: usize,
    plan: &UpdatePlan,
) -> anyhow::Result<BTreeMap<String, Outcome>> {
    let request = json!({"update": {"url": plan.url}});
    for room in wave {
        session.request(room, &request)?;
    }
    let replies = await_replies(session, seen, wave, plan.wave_timeout);
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    let mut versions: BTreeMap<String, String> = BTreeMap::new();
    for room in wave {
        match replies.get(room) {
            Some(reply) if reply["ok"] == true => {
                let version = cell(&reply["status"]["version"]);
                versions.insert(room.clone(), version);
            }
            Some(reply) => {
                failures.insert(room.clone(), refusal(reply));
            }
            None => {
                failures.insert(
                    room.clone(),
                    format!("no reply within {} s", plan.wave_timeout.as_secs()),
                );
            }
        }
    }
    let installed: Vec<String> = versions.keys().cloned().collect();
    if plan.reboot && !installed.is_empty() {
        let request = json!({"command": "update.reboot", "args": {}});
        for room in &installed {
            session.request(room, &request)?;
        }
        // The reply may be lost with the reboot; a refusal is not.
        let replies = await_replies(session, seen, &installed, Duration::from_secs(10));
        for (room, reply) in &replies {
            if reply["ok"] != true {
                failures.insert(room.clone(), format!("update.reboot: {}", refusal(reply)));
            }
        }
        let back: Vec<String> = installed
            .iter()
            .filter(|r| !failures.contains_key(*r))
            .cloned()
            .collect();
        let missing = await_back(session, seen, &back, &versions, plan.wave_timeout);
        for room in missing {
            failures.insert(
                room.clone(),
                format!(
                    "not back online on version {} with its slot marked good within {} s",
                    versions.get(&room).map_or("?", String::as_str),
                    plan.wave_timeout.as_secs()
                ),
            );
        }
    }
    let now = now_rfc3339();
    let mut outcomes = BTreeMap::new();
    for id in wave {
        let room = Room::new(id, seen.get(id).cloned().unwrap_or_default(), &now);
        let o = match failures.remove(id) {
            Some(detail) => outcome(Some(number), "failed", &room, detail),
            None if room.health != "ok" => outcome(
                Some(number),
                "unhealthy",
                &room,
                format!("health is {} after the update", room.health),
            ),
            None => {
                let version = versions.get(id).cloned().unwrap_or_default();
                let mut o = outcome(
                    Some(number),
                    if plan.reboot { "rebooted" } else { "installed" },
                    &room,
                    if plan.reboot {
                        format!("running {version}, slot marked good")
                    } else {
                        format!("{version} installed, runs after update.reboot")
                    },
                );
                o.version = version;
                o
            }
        };
        outcomes.insert(id.clone(), o);
    }
    Ok(outcomes)
}

/// The error of a refused request, as the room said it.
fn refusal(reply: &Value) -> String {
    match reply["status"].as_u64() {
        Some(status) => format!("{} (status {status})", cell(&reply["error"])),
        None => cell(&reply["error"]),
    }
}

/// Replies of `rooms` to this session until all arrived or `timeout` passed; presence and
/// status arriving meanwhile go into `seen`.
fn await_replies(
    session: &Session,
    seen: &mut BTreeMap<String, Seen>,
    rooms: &[String],
    timeout: Duration,
) -> BTreeMap<String, Value> {
    let deadline = Instant::now() + timeout;
    let mut replies = BTreeMap::new();
    while replies.len() < rooms.len() {
        let Some(p) = session.next_publish(deadline) else {
            break;
        };
        if let Some((room, reply)) = reply_of(session, &p) {
            if rooms.contains(&room) {
                replies.insert(room, reply);
            }
        } else {
            take_state(seen, &p);
        }
    }
    replies
}

/// Waits until each of `rooms` is online with `status.update.image_version` at its new version
/// and `marked_good`; returns the rooms that were not, once `timeout` passed.
fn await_back(
    session: &Session,
    seen: &mut BTreeMap<String, Seen>,
    rooms: &[String],
    versions: &BTreeMap<String, String>,
    timeout: Duration,
) -> Vec<String> {
    let is_back = |seen: &BTreeMap<String, Seen>, room: &String| {
        seen.get(room).is_some_and(|s| {
            let update = &s.status["update"];
            s.presence == "online"
                && update["marked_good"] == true
                && versions
                    .get(room)
                    .is_some_and(|v| update["image_version"].as_str() == Some(v.as_str()))
        })
    };
    let deadline = Instant::now() + timeout;
    loop {
        let missing: Vec<String> = rooms
            .iter()
            .filter(|r| !is_back(seen, r))
            .cloned()
            .collect();
        if missing.is_empty() {
            return missing;
        }
        let Some(p) = session.next_publish(deadline) else {
            return missing;
        };
        if reply_of(session, &p).is_none() {
            take_state(seen, &p);
        }
    }
}

const COLUMNS: [&str; 6] = ["room", "wave", "result", "version", "health", "detail"];

fn report(
    plan: &UpdatePlan,
    outcomes: &BTreeMap<String, Outcome>,
    waves: &[Vec<String>],
    stopped_after: Option<usize>,
    healthy: bool,
) -> String {
    // Wave order, then the skipped rooms.
    let mut order: Vec<&String> = waves.iter().flatten().collect();
    order.extend(
        outcomes
            .keys()
            .filter(|id| !order.contains(id))
            .collect::<Vec<_>>(),
    );
    let json_of = |id: &String| {
        let o = &outcomes[id];
        json!({
            "room": id, "wave": o.wave, "result": o.result, "version": o.version,
            "health": o.health, "detail": o.detail,
        })
    };
    match plan.format {
        Format::Json => {
            let out = json!({
                "dry_run": plan.dry_run,
                "url": plan.url,
                "waves": waves,
                "healthy": healthy,
                "stopped_after_wave": stopped_after,
                "rooms": order.iter().map(|id| json_of(id)).collect::<Vec<_>>(),
            });
            serde_json::to_string_pretty(&out).unwrap_or_default() + "\n"
        }
        Format::Table | Format::Csv => {
            let rows: Vec<Vec<String>> = order
                .iter()
                .map(|id| {
                    let v = json_of(id);
                    COLUMNS.iter().map(|c| cell(&v[*c])).collect()
                })
                .collect();
            if plan.format == Format::Csv {
                format::csv(&COLUMNS, &rows)
            } else {
                format::table(&COLUMNS, &rows)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(waves: &str, n: usize) -> Vec<usize> {
        waves.parse::<Waves>().expect(waves).sizes(n)
    }

    #[test]
    fn waves_count_from_the_start() {
        assert_eq!(sizes("1,10%,100%", 100), [1, 9, 90]);
        assert_eq!(sizes("1,100%", 3), [1, 2]);
        assert_eq!(sizes("1,10%,100%", 3), [1, 2]);
        assert_eq!(sizes("100%", 5), [5]);
        // Past the last entry: one more wave.
        assert_eq!(sizes("2", 5), [2, 3]);
        assert_eq!(sizes("5,2", 3), [3]);
        assert_eq!(sizes("1,50%", 0), Vec::<usize>::new());
    }

    #[test]
    fn bad_waves_are_refused() {
        for bad in ["", "0", "0%", "101%", "x", "1,,2", "-1"] {
            assert!(bad.parse::<Waves>().is_err(), "{bad}");
        }
    }
}
