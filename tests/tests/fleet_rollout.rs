//! `roomctl fleet` over a real Mosquitto against three real rooms (roomd with its device key in
//! swtpm, each with its own RAUC service and file slots; `roomd_tests::fleet_rooms`): the
//! inventory in JSON and CSV with `--match`, a rolling update in waves from a real HTTPS file
//! server with a signed bundle, and a failing first wave that stops the rollout before the
//! second wave's rooms hear of it.

use std::time::{Duration, Instant};

use serde_json::Value;

use roomd_tests::fleet_rooms::{Fleet, FleetRoom, RoomSpec};
use roomd_tests::rauc::{FileServer, RAUC_COMPATIBLE, Signer};
use roomd_tests::trickle::TrickleServer;
use roomd_tests::{HarnessError, RoomctlOutput, TestCa};

/// Every roomctl run is ended after this.
const ROOMCTL: Duration = Duration::from_secs(120);

/// Bytes that do not compress (xorshift), so that a bundle is about as large as its image.
fn image(seed: u8, len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ u64::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The CA of the update server, written where every room's `meeting.ca_file` points.
fn server_ca() -> Result<(TestCa, tempfile::TempDir, std::path::PathBuf), HarnessError> {
    let ca = TestCa::new("update server CA")?;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = dir.path().join("server-ca.pem");
    std::fs::write(&file, ca.cert_pem()).expect("write the CA file");
    Ok((ca, dir, file))
}

/// A bundle of `version` signed with the first room's trusted key, served over HTTPS.
fn serve_bundle(
    fleet: &Fleet,
    ca: &TestCa,
    version: &str,
) -> Result<(FileServer, std::path::PathBuf), HarnessError> {
    let rauc = &fleet.rooms[0].rauc;
    let bundle = rauc.bundle(
        "rollout",
        version,
        RAUC_COMPATIBLE,
        Signer::Trusted,
        &image(4, 200_000),
    )?;
    let bytes = std::fs::read(&bundle).expect("read the bundle");
    let server = FileServer::start(&ca.issue_server(&["127.0.0.1".to_owned()])?, bytes)?;
    Ok((server, bundle))
}

fn update_status(room: &FleetRoom) -> Result<Value, HarnessError> {
    room.roomd
        .get("/api/v1/status/update")
        .bearer(&room.roomd.admin_token()?)
        .send()?
        .expect_status(200, "GET /api/v1/status/update")?
        .json()
}

/// The room's audit records of fleet requests (method MQTT).
fn fleet_audit(room: &FleetRoom) -> Result<Vec<Value>, HarnessError> {
    let audit = room
        .roomd
        .get("/api/v1/audit")
        .bearer(&room.roomd.admin_token()?)
        .send()?
        .json()?;
    Ok(audit
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r["method"] == "MQTT")
        .collect())
}

fn json_of(out: &RoomctlOutput) -> Value {
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("roomctl printed no JSON ({e}): {out:?}"))
}

/// A strict RFC 4180 reader: records end in CRLF, quoted fields may hold commas, quotes (doubled)
/// and line breaks; anything else is a failure.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted_field = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if field.is_empty() && !quoted_field => {
                quoted_field = true;
                loop {
                    match chars.next().expect("unterminated quoted field") {
                        '"' if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        '"' => break,
                        other => field.push(other),
                    }
                }
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                quoted_field = false;
            }
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF in {text:?}");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                quoted_field = false;
            }
            '"' => panic!("a quote inside an unquoted field in {text:?}"),
            '\n' => panic!("LF without CR in {text:?}"),
            other => {
                assert!(!quoted_field, "text after a closing quote in {text:?}");
                field.push(other);
            }
        }
    }
    assert!(
        field.is_empty() && record.is_empty(),
        "the last record does not end in CRLF: {text:?}"
    );
    records
}

/// Polls the local `status.update` of `room` until `condition` (bounded).
fn wait_update(
    room: &FleetRoom,
    what: &str,
    condition: impl Fn(&Value) -> bool,
) -> Result<Value, HarnessError> {
    let timeout = Duration::from_secs(30);
    let deadline = Instant::now() + timeout;
    loop {
        let status = update_status(room)?;
        if condition(&status) {
            return Ok(status);
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Timeout {
                what: format!("{}: {what}; last {status}", room.id),
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_inventory_lists_and_a_rollout_in_waves_installs_on_every_room() -> Result<(), HarnessError> {
    let (server_ca, _dir, ca_file) = server_ca()?;
    let specs = ["room-1", "room-2", "room-3"].map(|id| RoomSpec::admin(id, "1.0", "1.0"));
    let fleet = Fleet::start(&specs, &ca_file)?;
    for room in &fleet.rooms {
        wait_update(room, "available", |u| u["available"] == true)?;
    }

    // The inventory as JSON: every room, its version, online, healthy, seen now.
    let out = fleet.roomctl(&["list", "--format", "json"], ROOMCTL)?;
    assert_eq!(out.code, Some(0), "{out:?}");
    let listed = json_of(&out);
    let ids: Vec<&str> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|r| r["room"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(ids, ["room-1", "room-2", "room-3"], "{listed}");
    for room in listed.as_array().expect("a list") {
        assert_eq!(room["name"], room["room"], "{room}");
        assert_eq!(room["version"], "1.0", "{room}");
        assert_eq!(room["online"], true, "{room}");
        assert_eq!(room["in_meeting"], false, "{room}");
        assert_eq!(room["health"], "ok", "{room}");
        assert!(
            room["last_seen"].as_str().is_some_and(|t| t.len() >= 20),
            "{room}"
        );
    }

    // The same as CSV, read back strictly.
    let out = fleet.roomctl(&["list", "--format", "csv"], ROOMCTL)?;
    assert_eq!(out.code, Some(0), "{out:?}");
    let records = parse_csv(&out.stdout);
    assert_eq!(
        records[0],
        [
            "room",
            "name",
            "version",
            "health",
            "in_meeting",
            "online",
            "last_seen"
        ],
        "{records:?}"
    );
    assert_eq!(records.len(), 4, "{records:?}");
    for (record, id) in records[1..].iter().zip(["room-1", "room-2", "room-3"]) {
        assert_eq!(
            record[..6],
            [id, id, "1.0", "ok", "false", "true"],
            "{record:?}"
        );
    }

    // --match narrows it; the table format is there too.
    let out = fleet.roomctl(
        &[
            "list",
            "--format",
            "json",
            "--match",
            "room~=*-2",
            "--match",
            "version=1.0",
        ],
        ROOMCTL,
    )?;
    let only: Vec<Value> = json_of(&out).as_array().cloned().unwrap_or_default();
    assert_eq!(only.len(), 1, "{only:?}");
    assert_eq!(only[0]["room"], "room-2");
    let out = fleet.roomctl(
        &["list", "--format", "csv", "--match", "version=0.9"],
        ROOMCTL,
    )?;
    assert_eq!(parse_csv(&out.stdout).len(), 1, "only the header: {out:?}");
    let out = fleet.roomctl(
        &["list", "--format", "table", "--match", "room!=room-1"],
        ROOMCTL,
    )?;
    assert!(
        out.stdout.starts_with("room") && out.stdout.lines().count() == 3,
        "{out:?}"
    );
    let out = fleet.roomctl(&["list", "--match", "colour=blue"], ROOMCTL)?;
    assert_eq!(
        out.code,
        Some(2),
        "an unknown field is a usage error: {out:?}"
    );

    let (server, bundle) = serve_bundle(&fleet, &server_ca, "1.1")?;
    let url = server.url("/roomd-1.1.raucb");

    // A dry run prints the waves and sends nothing.
    let out = fleet.roomctl(
        &[
            "update",
            "--url",
            &url,
            "--waves",
            "1,100%",
            "--dry-run",
            "--format",
            "json",
        ],
        ROOMCTL,
    )?;
    assert_eq!(out.code, Some(0), "{out:?}");
    let plan = json_of(&out);
    assert_eq!(
        plan["waves"],
        serde_json::json!([["room-1"], ["room-2", "room-3"]]),
        "{plan}"
    );
    std::thread::sleep(Duration::from_millis(500));
    for room in &fleet.rooms {
        assert_eq!(update_status(room)?["state"], "idle", "{}", room.id);
        assert!(fleet_audit(room)?.is_empty(), "{}", room.id);
    }

    // The rollout: wave 1 is room-1, wave 2 the others; every room installs.
    let out = fleet.roomctl(
        &[
            "update", "--url", &url, "--waves", "1,100%", "--format", "json",
        ],
        ROOMCTL,
    )?;
    assert_eq!(out.code, Some(0), "{out:?}");
    let result = json_of(&out);
    assert_eq!(result["healthy"], true, "{result}");
    let rooms = result["rooms"].as_array().cloned().unwrap_or_default();
    assert_eq!(rooms.len(), 3, "{result}");
    for (room, wave) in rooms.iter().zip([1, 2, 2]) {
        assert_eq!(room["result"], "installed", "{room}");
        assert_eq!(room["wave"], wave, "{room}");
        assert_eq!(room["version"], "1.1", "{room}");
        assert_eq!(room["health"], "ok", "{room}");
    }
    for room in &fleet.rooms {
        let status = update_status(room)?;
        assert_eq!(status["state"], "installed", "{}: {status}", room.id);
        assert_eq!(status["version"], "1.1", "{}: {status}", room.id);
        assert_eq!(status["needs_reboot"], true, "{}: {status}", room.id);
        // The request is in the room's audit log with the fleet role, as the API's would be.
        let audit = fleet_audit(room)?;
        assert_eq!(audit.len(), 1, "{}: {audit:?}", room.id);
        assert_eq!(audit[0]["role"], "admin");
        assert_eq!(audit[0]["status"], 200);
        assert!(
            audit[0]["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with("update download from https://127.0.0.1:")),
            "{audit:?}"
        );
    }

    // Straight on the commands topic: while one update downloads (slowly, over 4 s) and
    // installs, the room goes on answering (a volume command), and a second update gets 409.
    let slow = TrickleServer::start(
        &server_ca.issue_server(&["127.0.0.1".to_owned()])?,
        std::fs::read(&bundle).expect("read the bundle"),
        Duration::from_secs(4),
    )?;
    let room = fleet.room("room-2");
    let replies = "roomd/room-2/replies/fleet-admin";
    let sub = fleet
        .admin
        .sub_command(replies, 3, Duration::from_secs(60), "%D|%p")
        .spawn()
        .expect("mosquitto_sub");
    std::thread::sleep(Duration::from_millis(500));
    let first = serde_json::json!({"update": {"url": slow.url("/slow.raucb")}}).to_string();
    let second = serde_json::json!({"update": {"url": url}}).to_string();
    for (correlation, request) in [
        ("first", first.as_str()),
        ("second", second.as_str()),
        (
            "volume",
            r#"{"command": "audio.volume.set", "args": {"level": 21}}"#,
        ),
    ] {
        let sent = fleet
            .admin
            .publish(
                "roomd/room-2/commands",
                request,
                false,
                &[
                    ("response-topic", replies),
                    ("correlation-data", correlation),
                ],
            )
            .expect("mosquitto_pub");
        assert!(sent.status.success(), "mosquitto_pub: {sent:?}");
    }
    let out = sub.wait_with_output().expect("mosquitto_sub");
    let got: Vec<(String, Value)> = roomd_tests::mosquitto::lines(&out)
        .iter()
        .filter_map(|line| line.split_once('|'))
        .map(|(c, p)| (c.to_owned(), serde_json::from_str(p).expect("a JSON reply")))
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[2].0, "first", "the update answers last: {got:?}");
    assert_eq!(got[2].1["ok"], true, "{got:?}");
    assert_eq!(got[2].1["status"]["state"], "installed", "{got:?}");
    let second = &got.iter().find(|(c, _)| c == "second").expect("second").1;
    assert_eq!(second["status"], 409, "one update at a time: {got:?}");
    let volume = &got.iter().find(|(c, _)| c == "volume").expect("volume").1;
    assert_eq!(volume["ok"], true, "{got:?}");
    assert_eq!(update_status(room)?["state"], "installed");
    Ok(())
}

#[test]
fn a_failing_wave_stops_the_rollout_before_the_next_wave() -> Result<(), HarnessError> {
    let (server_ca, _dir, ca_file) = server_ca()?;
    // room-1 runs 2.0 with floor 2.0: the 1.1 bundle is below it. room-4's fleet role may not
    // update firmware.
    let specs = [
        RoomSpec::admin("room-1", "2.0", "2.0"),
        RoomSpec::admin("room-2", "1.0", "1.0"),
        RoomSpec::admin("room-3", "1.0", "1.0"),
        RoomSpec {
            role: "integrator",
            ..RoomSpec::admin("room-4", "1.0", "1.0")
        },
    ];
    let fleet = Fleet::start(&specs, &ca_file)?;
    for room in &fleet.rooms {
        wait_update(room, "available", |u| u["available"] == true)?;
    }
    let (server, _) = serve_bundle(&fleet, &server_ca, "1.1")?;
    let url = server.url("/roomd-1.1.raucb");
    // room-3 hosts a meeting: the rollout leaves it alone (no --include-in-meeting).
    fleet.room("room-3").roomd.command(
        "meeting.join",
        &serde_json::json!({"target": {"kind": "hosted"}}),
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = fleet.roomctl(
            &["list", "--format", "json", "--match", "in_meeting=true"],
            ROOMCTL,
        )?;
        let listed = json_of(&out);
        if listed
            .as_array()
            .is_some_and(|l| l.len() == 1 && l[0]["room"] == "room-3")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "room-3 never listed in a meeting: {listed}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    let out = fleet.roomctl(
        &[
            "update",
            "--url",
            &url,
            "--waves",
            "1,100%",
            "--dry-run",
            "--format",
            "json",
        ],
        ROOMCTL,
    )?;
    let plan = json_of(&out);
    assert_eq!(
        plan["waves"],
        serde_json::json!([["room-1"], ["room-2", "room-4"]]),
        "{plan}"
    );

    let out = fleet.roomctl(
        &[
            "update", "--url", &url, "--waves", "1,100%", "--format", "json",
        ],
        ROOMCTL,
    )?;
    assert_eq!(
        out.code,
        Some(1),
        "an unhealthy wave fails roomctl: {out:?}"
    );
    assert!(
        out.stderr.contains("room-1") && out.stderr.contains("security floor"),
        "roomctl names the room and the reason: {}",
        out.stderr
    );
    let result = json_of(&out);
    assert_eq!(result["healthy"], false, "{result}");
    assert_eq!(result["stopped_after_wave"], 1, "{result}");
    let by_room = |id: &str| -> Value {
        result["rooms"]
            .as_array()
            .and_then(|rooms| rooms.iter().find(|r| r["room"] == id))
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {result}"))
    };
    let first = by_room("room-1");
    assert_eq!(first["result"], "failed", "{first}");
    let detail = first["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("1.1") && detail.contains("security floor") && detail.contains("422"),
        "{first}"
    );
    for id in ["room-2", "room-4"] {
        let later = by_room(id);
        assert_eq!(later["result"], "not-started", "{later}");
        assert_eq!(later["wave"], 2, "{later}");
    }
    let skipped = by_room("room-3");
    assert_eq!(skipped["result"], "skipped", "{skipped}");
    assert!(
        skipped["detail"]
            .as_str()
            .is_some_and(|d| d.contains("in a meeting")),
        "{skipped}"
    );

    // The table (the default) says the same per room.
    let out = fleet.roomctl(&["update", "--url", &url, "--waves", "1,100%"], ROOMCTL)?;
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = |id: &str| -> String {
        out.stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} not in {}", out.stdout))
            .to_owned()
    };
    assert!(line("room-1").contains("failed") && line("room-1").contains("security floor"));
    assert!(line("room-2").contains("not-started"), "{}", out.stdout);
    assert!(line("room-3").contains("skipped"), "{}", out.stdout);

    // room-1 refused (status.update failed, slots untouched); the second wave heard nothing.
    let refused = wait_update(fleet.room("room-1"), "failed", |u| u["state"] == "failed")?;
    assert!(
        refused["error"]
            .as_str()
            .is_some_and(|e| e.contains("security floor")),
        "{refused}"
    );
    assert!(fleet.room("room-1").rauc.slot("B").iter().all(|&b| b == 0));
    let audit = fleet_audit(fleet.room("room-1"))?;
    assert_eq!(audit.len(), 2, "two rollouts: {audit:?}");
    assert!(audit.iter().all(|r| r["status"] == 422), "{audit:?}");
    for id in ["room-2", "room-3", "room-4"] {
        let room = fleet.room(id);
        let status = update_status(room)?;
        assert_eq!(status["state"], "idle", "{id}: {status}");
        assert_eq!(status["version"], "", "{id}: {status}");
        assert!(fleet_audit(room)?.is_empty(), "{id} got a request");
        assert!(room.rauc.slot("B").iter().all(|&b| b == 0), "{id}");
    }

    // The fleet role needs FirmwareUpdate, as the API's caller does: refused, audited, nothing
    // downloaded.
    let out = fleet.roomctl(&["update", "--url", &url, "--room", "room-4"], ROOMCTL)?;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("room-4") && out.stderr.contains("FirmwareUpdate"),
        "{}",
        out.stderr
    );
    let room = fleet.room("room-4");
    assert_eq!(update_status(room)?["state"], "idle");
    let audit = fleet_audit(room)?;
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(audit[0]["status"], 403, "{audit:?}");
    assert_eq!(audit[0]["role"], "integrator", "{audit:?}");
    Ok(())
}
