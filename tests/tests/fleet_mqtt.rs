//! The fleet channel against a real Mosquitto 2 with TLS, client certificates and the ACL of
//! docs/fleet.md, and a real roomd whose device key is in swtpm: presence with a last will,
//! retained status, commands and configuration patches answered on the MQTT 5 response topic,
//! the fleet role's limits, and the ACL keeping rooms to their own topics.
//!
//! The broker trusts the test CA (for the fleet manager's and a second room's certificates) and
//! the room's self-signed device certificate as a trust anchor: its CN (`system.name`) is the
//! room id and the broker's user name.

use std::io::Read;
use std::process::Child;
use std::time::Duration;

use roomd_tests::mosquitto::{FleetCa, Mosquitto, MqttClient, lines};
use roomd_tests::{HarnessError, Roomd, Swtpm, wait_for};
use serde_json::{Value, json};

const ROOM: &str = "room-a";

fn retained(client: &MqttClient, topic: &str) -> Result<Option<String>, HarnessError> {
    Ok(client
        .receive(topic, 1, Duration::from_secs(2), "%p")?
        .into_iter()
        .next())
}

/// Sends `request` to the room with a response topic and correlation data; returns the reply
/// and the correlation data it came back with.
fn ask(
    client: &MqttClient,
    request: &Value,
    correlation: &str,
) -> Result<(Value, String), HarnessError> {
    let replies = format!("roomd/{ROOM}/replies/fleet-admin");
    let mut sub: Child = client
        .sub_command(&replies, 1, Duration::from_secs(15), "%D|%p")
        .spawn()
        .map_err(|e| HarnessError::Config {
            message: format!("cannot run mosquitto_sub: {e}"),
        })?;
    // Give the subscription time to be in place before the request goes out.
    std::thread::sleep(Duration::from_millis(500));
    let sent = client.publish(
        &format!("roomd/{ROOM}/commands"),
        &request.to_string(),
        false,
        &[
            ("response-topic", &replies),
            ("correlation-data", correlation),
        ],
    )?;
    assert!(sent.status.success(), "mosquitto_pub: {sent:?}");
    let status = sub.wait().expect("mosquitto_sub ends");
    let mut out = String::new();
    sub.stdout
        .take()
        .expect("piped")
        .read_to_string(&mut out)
        .expect("read mosquitto_sub");
    let line = out.lines().next().unwrap_or_default().to_owned();
    let Some((corr, payload)) = line.split_once('|') else {
        panic!("no reply to {request} within 15 s ({status}): {out:?}");
    };
    let reply: Value = serde_json::from_str(payload).expect("the reply is JSON");
    Ok((reply, corr.to_owned()))
}

fn audio_volume(roomd: &Roomd, token: &str) -> Result<u64, HarnessError> {
    let status = roomd.get("/api/v1/status").bearer(token).send()?.json()?;
    Ok(status["audio"]["volume"].as_u64().unwrap_or_default())
}

#[test]
fn a_room_with_its_tpm_key_reports_takes_commands_and_leaves_a_last_will()
-> Result<(), HarnessError> {
    let ca = FleetCa::new()?;
    let mut broker = Mosquitto::start(&ca, "")?;
    let admin = broker.client(&ca, "fleet-admin")?;
    let tpm = Swtpm::start()?;
    let config = format!(
        "{}\n[system]\nname = \"{ROOM}\"\n\n[fleet]\nbroker = \"{}\"\nca_file = \"{}\"\n\
         role = \"integrator\"\nbackoff_min_ms = 200\nbackoff_max_ms = 1000\n\
         status_interval_ms = 200\n",
        tpm.identity_toml(),
        broker.url(),
        broker.ca_file().display()
    );
    let roomd = Roomd::start_claimed(&config)?;
    let token = roomd.admin_token()?;

    // Until the broker trusts the device certificate, the room is refused and says so.
    let status = wait_for(
        "status.fleet with an error",
        Duration::from_secs(15),
        || {
            let status = roomd.get("/api/v1/status").bearer(&token).send()?.json()?;
            Ok((!status["fleet"]["last_error"]
                .as_str()
                .unwrap_or_default()
                .is_empty())
            .then_some(status))
        },
    )?;
    assert_eq!(status["fleet"]["connected"], false, "{}", status["fleet"]);
    assert_eq!(
        status["fleet"]["room_id"], ROOM,
        "the CN of the device certificate"
    );

    // The broker trusts the room's self-signed device certificate from its next start.
    let device_cert = std::fs::read_to_string(roomd.cert_path()).expect("device certificate");
    broker.trust(&ca, &device_cert)?;
    broker.restart()?;
    let presence = format!("roomd/{ROOM}/presence");
    wait_for("presence online", Duration::from_secs(20), || {
        Ok((retained(&admin, &presence)?.as_deref() == Some("online")).then_some(()))
    })?;
    let status = wait_for(
        "retained status with fleet.connected",
        Duration::from_secs(10),
        || {
            let Some(text) = retained(&admin, &format!("roomd/{ROOM}/status"))? else {
                return Ok(None);
            };
            let status: Value = serde_json::from_str(&text).expect("status is JSON");
            Ok((status["fleet"]["connected"] == true).then_some(status))
        },
    )?;
    assert_eq!(status["system"]["name"], ROOM);
    assert_eq!(
        status["identity"]["backend"], "tpm",
        "{}",
        status["identity"]
    );

    // A command, answered with the correlation data; the room's volume changes.
    let before = audio_volume(&roomd, &token)?;
    let level = if before == 37 { 38 } else { 37 };
    let (reply, correlation) = ask(
        &admin,
        &json!({"command": "audio.volume.set", "args": {"level": level}}),
        "req-1",
    )?;
    assert_eq!(reply, json!({"ok": true}));
    assert_eq!(correlation, "req-1");
    assert_eq!(audio_volume(&roomd, &token)?, level);

    // A configuration patch likewise.
    let (reply, _) = ask(
        &admin,
        &json!({"config_patch": {"audio": {"default_volume": 33}}}),
        "req-2",
    )?;
    assert_eq!(reply, json!({"ok": true}));
    let config = roomd.get("/api/v1/config").bearer(&token).send()?.json()?;
    assert_eq!(config["audio"]["default_volume"], 33);

    // Hostile requests get a reason, and the room goes on answering.
    let (reply, _) = ask(&admin, &json!(["not", "a", "request"]), "req-bad")?;
    assert_eq!(reply["status"], 400, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap_or_default()
            .contains("config_patch"),
        "the refusal does not say what a request is: {reply}"
    );
    let padding = "x".repeat(65_536);
    let (reply, _) = ask(
        &admin,
        &json!({"command": "audio.volume.set", "args": {"level": 30, "pad": padding}}),
        "req-big",
    )?;
    assert_eq!(reply["status"], 413, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap_or_default()
            .contains("fleet.max_payload_bytes"),
        "the refusal does not name the limit: {reply}"
    );
    assert_eq!(
        audio_volume(&roomd, &token)?,
        level,
        "a refused request changed the room"
    );

    // roomctl fleet, with the fleet manager's certificate: the room is listed, a dry run sends
    // nothing, a command goes to the room and its reply comes back per room.
    let fleet = |args: &[&str]| -> (bool, Value) {
        // Bounded: roomctl is ended after 30 s.
        let out = std::process::Command::new("timeout")
            .arg("30")
            .arg(roomd_tests::roomctl_bin().expect("roomctl"))
            .arg("fleet")
            .args(["--broker", &broker.url()])
            .arg("--ca")
            .arg(&admin.ca)
            .arg("--cert")
            .arg(&admin.cert)
            .arg("--key")
            .arg(&admin.key)
            .args(args)
            .env_remove("ROOMCTL_TOKEN")
            .output()
            .expect("run roomctl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let json = serde_json::from_str(&text).unwrap_or_else(|e| {
            panic!(
                "roomctl fleet {args:?}: {e}: {text} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.success(), json)
    };
    let (ok, listed) = fleet(&["list"]);
    assert!(ok, "{listed}");
    let room = listed
        .as_array()
        .and_then(|rooms| rooms.iter().find(|r| r["room"] == ROOM))
        .cloned()
        .unwrap_or_else(|| panic!("{ROOM} is not listed: {listed}"));
    assert_eq!(room["presence"], "online", "{room}");
    assert_eq!(room["name"], ROOM, "{room}");
    let (ok, dry) = fleet(&[
        "command",
        "audio.volume.set",
        r#"{"level": 12}"#,
        "--dry-run",
    ]);
    assert!(ok, "{dry}");
    assert_eq!(dry["rooms"], json!([ROOM]), "{dry}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        audio_volume(&roomd, &token)?,
        level,
        "a dry run changes nothing"
    );
    let (ok, results) = fleet(&[
        "command",
        "audio.volume.set",
        r#"{"level": 12}"#,
        "--rooms",
        ROOM,
    ]);
    assert!(ok, "{results}");
    assert_eq!(results[ROOM], json!({"ok": true}), "{results}");
    assert_eq!(audio_volume(&roomd, &token)?, 12);
    let (ok, results) = fleet(&["command", "system.reboot"]);
    assert!(!ok, "a refusal makes roomctl fail: {results}");
    assert_eq!(results[ROOM]["status"], 403, "{results}");
    let (ok, results) = fleet(&[
        "config-patch",
        r#"{"audio": {"default_volume": 44}}"#,
        "--rooms",
        ROOM,
    ]);
    assert!(ok, "{results}");
    let level = 12;

    // What the fleet role (integrator) may not do is refused with the reason.
    let (reply, _) = ask(
        &admin,
        &json!({"command": "system.reboot", "args": {}}),
        "req-3",
    )?;
    assert_eq!(reply["status"], 403, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap_or_default()
            .contains("SystemPower"),
        "{reply}"
    );
    let (reply, _) = ask(
        &admin,
        &json!({"config_patch": {"fleet": {"role": "admin"}}}),
        "req-4",
    )?;
    assert_eq!(reply["status"], 422, "file-only key: {reply}");
    let (reply, _) = ask(
        &admin,
        &json!({"command": "audio.volume.set", "args": {"level": 101}}),
        "req-5",
    )?;
    assert_eq!(reply["status"], 422, "the API's own check: {reply}");

    // Every fleet request is in the audit log, with the fleet role.
    let audit = roomd.get("/api/v1/audit").bearer(&token).send()?.json()?;
    let records = audit.as_array().cloned().unwrap_or_default();
    let records: Vec<&Value> = records.iter().filter(|r| r["method"] == "MQTT").collect();
    // Two requests and two refused hostile ones before roomctl, three through it, three after.
    assert_eq!(records.len(), 10, "{audit}");
    assert!(
        records
            .iter()
            .any(|r| r["status"] == 413 && r["detail"] == "too large"),
        "{records:?}"
    );
    assert!(
        records.iter().all(|r| r["role"] == "integrator"),
        "{records:?}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["status"] == 403 && r["detail"] == "command system.reboot"),
        "{records:?}"
    );

    // Another room's certificate cannot write this room's topics (the ACL).
    let other = broker.client(&ca, "room-b")?;
    other.publish(&presence, "hijacked", true, &[])?;
    other.publish(
        &format!("roomd/{ROOM}/commands"),
        &json!({"command": "audio.volume.set", "args": {"level": 5}}).to_string(),
        false,
        &[],
    )?;
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(retained(&admin, &presence)?.as_deref(), Some("online"));
    assert_eq!(audio_volume(&roomd, &token)?, level);
    // Its own topics it may write.
    other.publish("roomd/room-b/presence", "online", true, &[])?;
    assert_eq!(
        retained(&admin, "roomd/room-b/presence")?.as_deref(),
        Some("online")
    );

    // Killed, the room is reported offline by its last will.
    let watch = admin
        .sub_command(&presence, 2, Duration::from_secs(15), "%p")
        .spawn()
        .expect("mosquitto_sub");
    std::thread::sleep(Duration::from_millis(500));
    let pid = roomd.pid().expect("roomd runs");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill roomd");
    let out = watch.wait_with_output().expect("mosquitto_sub");
    assert_eq!(
        lines(&out),
        ["online", "offline"],
        "broker log: {}",
        broker.log()
    );
    assert_eq!(retained(&admin, &presence)?.as_deref(), Some("offline"));
    drop(broker);
    Ok(())
}

/// A room whose self-signed device certificate the broker trusts, connected and announced.
fn room_online(
    ca: &FleetCa,
    broker: &mut Mosquitto,
    admin: &MqttClient,
    tpm: &Swtpm,
    fleet_extra: &str,
) -> Result<Roomd, HarnessError> {
    let config = format!(
        "{}\n[system]\nname = \"{ROOM}\"\n\n[fleet]\nbroker = \"{}\"\nca_file = \"{}\"\n\
         role = \"integrator\"\nbackoff_min_ms = 200\nbackoff_max_ms = 1000\n\
         status_interval_ms = 200\n{fleet_extra}",
        tpm.identity_toml(),
        broker.url(),
        broker.ca_file().display()
    );
    let roomd = Roomd::start_claimed(&config)?;
    let device_cert = std::fs::read_to_string(roomd.cert_path()).expect("device certificate");
    broker.trust(ca, &device_cert)?;
    broker.restart()?;
    let presence = format!("roomd/{ROOM}/presence");
    wait_for("presence online", Duration::from_secs(20), || {
        Ok((retained(admin, &presence)?.as_deref() == Some("online")).then_some(()))
    })?;
    Ok(roomd)
}

#[test]
fn requests_over_the_rate_limit_get_429_and_change_nothing() -> Result<(), HarnessError> {
    let ca = FleetCa::new()?;
    let mut broker = Mosquitto::start(&ca, "")?;
    let admin = broker.client(&ca, "fleet-admin")?;
    let tpm = Swtpm::start()?;
    let roomd = room_online(&ca, &mut broker, &admin, &tpm, "commands_per_minute = 3\n")?;
    let token = roomd.admin_token()?;

    // Four requests in a burst, one reply subscription collecting all four answers.
    let replies = format!("roomd/{ROOM}/replies/fleet-admin");
    let sub = admin
        .sub_command(&replies, 4, Duration::from_secs(20), "%D|%p")
        .spawn()
        .expect("mosquitto_sub");
    std::thread::sleep(Duration::from_millis(500));
    // Every request is sent before anything can return early: the subscriber is always waited for.
    let sent: Vec<Result<std::process::Output, HarnessError>> = [20, 21, 22, 23]
        .into_iter()
        .enumerate()
        .map(|(i, level)| {
            let correlation = format!("burst-{i}");
            admin.publish(
                &format!("roomd/{ROOM}/commands"),
                &json!({"command": "audio.volume.set", "args": {"level": level}}).to_string(),
                false,
                &[
                    ("response-topic", &replies),
                    ("correlation-data", &correlation),
                ],
            )
        })
        .collect();
    let out = sub.wait_with_output().expect("mosquitto_sub");
    for sent in sent {
        let sent = sent?;
        assert!(sent.status.success(), "mosquitto_pub: {sent:?}");
    }
    let mut answers: Vec<(String, Value)> = lines(&out)
        .iter()
        .filter_map(|line| line.split_once('|'))
        .map(|(corr, payload)| {
            let reply = serde_json::from_str(payload).expect("the reply is JSON");
            (corr.to_owned(), reply)
        })
        .collect();
    answers.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(answers.len(), 4, "four replies: {answers:?}");
    for (corr, reply) in &answers[..3] {
        assert_eq!(reply, &json!({"ok": true}), "{corr}");
    }
    let (_, refused) = &answers[3];
    assert_eq!(refused["status"], 429, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap_or_default()
            .contains("fleet.commands_per_minute"),
        "the refusal does not name the limit: {refused}"
    );
    assert_eq!(
        audio_volume(&roomd, &token)?,
        22,
        "the refused request changed the room"
    );
    let audit = roomd.get("/api/v1/audit").bearer(&token).send()?.json()?;
    let limited = audit
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter(|r| r["method"] == "MQTT" && r["status"] == 429)
                .count()
        })
        .unwrap_or_default();
    assert_eq!(limited, 1, "the refusal is audited: {audit}");
    Ok(())
}
