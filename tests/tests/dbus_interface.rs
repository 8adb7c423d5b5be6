//! roomd's D-Bus interface `org.roomd.Room1` on a private `dbus-daemon` whose policy includes
//! the repository's `systemd/org.roomd.conf`: roomd runs as its own user `roomd` (the only one
//! the policy lets own `org.roomd`), callers run as root, as a member of `roomd-control` and as
//! `nobody`, through `busctl` and `gdbus` as an integrator would call it.
//!
//! Needs root (users from systemd/sysusers.d/roomd.conf are created on this machine), `dbus`
//! (dbus-daemon), `systemd` (busctl, systemd-sysusers), `libglib2.0-bin` (gdbus).

use std::process::Output;
use std::time::{Duration, Instant};

use roomd_tests::dbus::{PANEL_USER, PrivateBus, as_user, ensure_accounts};
use roomd_tests::{HarnessError, Roomd};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn start_on(bus: &PrivateBus) -> Result<Roomd, HarnessError> {
    ensure_accounts()?;
    let mut roomd = Roomd::builder()
        .config(&format!("[dbus]\nbus = \"{}\"\n", bus.address()))
        .run_as("roomd")
        .start()?;
    roomd.claim(roomd_tests::ADMIN_USERNAME, roomd_tests::ADMIN_PASSWORD)?;
    wait_for_dbus_state(&roomd, "serving")?;
    Ok(roomd)
}

/// `status.system.dbus` once its state is `state`.
fn wait_for_dbus_state(roomd: &Roomd, state: &str) -> Result<Value, HarnessError> {
    let token = roomd.admin_token()?;
    let deadline = Instant::now() + WAIT;
    loop {
        let status = roomd
            .get("/api/v1/status/system/dbus")
            .bearer(&token)
            .send()?
            .expect_status(200, "GET status.system.dbus")?
            .json()?;
        if status["state"] == state {
            return Ok(status);
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Config {
                message: format!(
                    "status.system.dbus never became {state}: {status}\n{}",
                    roomd.stderr_text()
                ),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

fn assert_ok(output: &Output, what: &str) {
    assert!(output.status.success(), "{what}: {}", stderr(output));
}

/// Calls `Run` with gdbus, which prints a refusal's error name with its message
/// (`GDBus.Error:<name>: <message>`); busctl prints only the message.
fn gdbus_run(bus: &PrivateBus, user: &str, name: &str, args: &str) -> Output {
    as_user(user, "gdbus")
        .args(["call", "--address", bus.address(), "--dest", "org.roomd"])
        .args([
            "--object-path",
            "/org/roomd/Room",
            "--method",
            "org.roomd.Room1.Run",
        ])
        .arg(name)
        .arg(args)
        .output()
        .expect("gdbus runs")
}

fn audio(bus: &PrivateBus) -> Value {
    let text = bus
        .property("root", "Audio")
        .expect("Audio is readable by root");
    serde_json::from_str(text.as_str().expect("Audio is a string")).expect("Audio is JSON")
}

#[test]
fn root_runs_commands_and_sees_status_changes_and_events() -> Result<(), HarnessError> {
    let bus = PrivateBus::start()?;
    let roomd = start_on(&bus)?;
    let signals = bus.watch_signals("root")?;

    let output = bus.run_command("root", "audio.volume.set", r#"{"level": 33}"#)?;
    assert_ok(&output, "root sets the volume");
    assert_eq!(audio(&bus)["volume"], 33);
    // The event, with its data and sequence number, and the Audio property's change.
    let event = signals.wait_for("Event audio.volume.changed", |l| {
        l.contains("org.roomd.Room1.Event ('audio.volume.changed'")
    })?;
    assert!(event.contains(r#"'{"level":33}'"#), "{event}");
    assert!(event.contains("uint64"), "{event}");
    // The microphone level changes Audio all the time: wait for the change that carries the
    // new volume, not the first change of Audio.
    let changed = signals.wait_for("PropertiesChanged of Audio with volume 33", |l| {
        l.contains("PropertiesChanged ('org.roomd.Room1'")
            && l.contains("'Audio'")
            && (l.contains(r#"\"volume\":33"#) || l.contains(r#""volume":33"#))
    })?;
    assert!(
        changed.contains(r#"\"volume\":33"#) || changed.contains(r#""volume":33"#),
        "{changed}"
    );

    // Errors are org.roomd.Error.<Kind> with the API's words.
    let refused = gdbus_run(&bus, "root", "audio.volume.set", r#"{"level": 101}"#);
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(
        message.contains("org.roomd.Error.InvalidCommand")
            && message.contains("audio.volume.set: level: 101 is out of range 0..=100"),
        "{message}"
    );
    let unknown = gdbus_run(&bus, "root", "system.selfdestruct", "{}");
    let message = stderr(&unknown);
    assert!(
        message.contains("org.roomd.Error.NotFound") && message.contains("unknown command"),
        "{message}"
    );
    let not_json = gdbus_run(&bus, "root", "audio.volume.set", "{level");
    assert!(
        stderr(&not_json).contains("org.roomd.Error.BadRequest"),
        "{}",
        stderr(&not_json)
    );
    assert_eq!(audio(&bus)["volume"], 33, "refused commands change nothing");

    // Arguments are bounded as an API body is (api.max_body_bytes, 64 KiB by default).
    let huge = format!(r#"{{"level": 1, "pad": "{}"}}"#, "x".repeat(70_000));
    let too_large = gdbus_run(&bus, "root", "audio.volume.set", &huge);
    assert!(
        stderr(&too_large).contains("org.roomd.Error.PayloadTooLarge"),
        "{}",
        stderr(&too_large)
    );

    // Written to the audit log as the API's commands are, the caller as dbus:uid=0.
    let token = roomd.admin_token()?;
    let audit = roomd
        .get("/api/v1/audit?limit=50")
        .bearer(&token)
        .send()?
        .expect_status(200, "GET audit")?
        .json()?;
    let records = audit.as_array().cloned().unwrap_or_default();
    let ours: Vec<&Value> = records
        .iter()
        .filter(|r| r["actor"] == "dbus:uid=0")
        .collect();
    assert!(
        ours.iter().any(|r| r["status"] == 200
            && r["role"] == "admin"
            && r["detail"] == "command audio.volume.set"),
        "{audit}"
    );
    assert!(ours.iter().any(|r| r["status"] == 422), "{audit}");
    Ok(())
}

#[test]
fn every_command_and_event_of_the_model_is_reachable() -> Result<(), HarnessError> {
    let bus = PrivateBus::start()?;
    let _roomd = start_on(&bus)?;
    let commands = bus.property("root", "Commands")?;
    let model: Vec<&str> = roomd_core::COMMANDS.iter().map(|c| c.name).collect();
    assert_eq!(commands, json!(model));
    let events = bus.property("root", "EventNames")?;
    assert_eq!(events, json!(roomd_core::RoomEvent::NAMES));
    // Each command reaches its own parser: an argument no command has is refused by name,
    // where an unknown command would be NotFound; nothing is run.
    for name in model {
        let output = gdbus_run(&bus, "root", name, r#"{"no_such_argument": 1}"#);
        let message = stderr(&output);
        assert!(
            message.contains("org.roomd.Error.InvalidCommand")
                && message.contains(&format!(
                    "{name}: no_such_argument: unknown field `no_such_argument`"
                )),
            "{name}: {message}"
        );
    }
    // Every status section is a property.
    for property in [
        "System", "Meeting", "Audio", "Video", "Standby", "Identity", "Update",
    ] {
        let text = bus.property("root", property)?;
        let value: Value = serde_json::from_str(text.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{property} is not JSON: {e}"));
        assert!(value.is_object(), "{property}: {value}");
    }
    Ok(())
}

#[test]
fn the_bus_refuses_a_user_outside_the_groups() -> Result<(), HarnessError> {
    let bus = PrivateBus::start()?;
    let _roomd = start_on(&bus)?;
    let before = audio(&bus)["volume"].clone();
    let output = bus.run_command("nobody", "audio.volume.set", r#"{"level": 7}"#)?;
    assert!(!output.status.success(), "nobody may not call roomd");
    assert!(
        stderr(&output).contains("Access denied") || stderr(&output).contains("AccessDenied"),
        "{}",
        stderr(&output)
    );
    let read = bus.busctl(
        "nobody",
        &[
            "get-property",
            "org.roomd",
            "/org/roomd/Room",
            "org.roomd.Room1",
            "Audio",
        ],
    )?;
    assert!(!read.status.success(), "nobody may not read roomd's status");
    assert_eq!(audio(&bus)["volume"], before, "nothing changed");

    // Nor receive its signals (events name meeting participants): the bus delivers a signal
    // to every subscriber as it routes it, so by the time root's monitor has printed it and
    // a later call has been answered, nobody's would have it too, were it allowed.
    let outsider = bus.watch_signals("nobody")?;
    let member = bus.watch_signals("root")?;
    let output = bus.run_command("root", "audio.volume.set", r#"{"level": 12}"#)?;
    assert_ok(&output, "root sets the volume");
    member.wait_for("root's Event", |l| l.contains("audio.volume.changed"))?;
    assert_eq!(audio(&bus)["volume"], 12);
    assert!(
        !outsider
            .lines()
            .iter()
            .any(|l| l.contains("org.roomd.Room1")),
        "nobody received roomd's signals: {:?}",
        outsider.lines()
    );
    Ok(())
}

#[test]
fn room_control_members_run_room_commands_but_not_firmware_updates() -> Result<(), HarnessError> {
    let bus = PrivateBus::start()?;
    let _roomd = start_on(&bus)?;
    let output = bus.run_command(PANEL_USER, "audio.volume.set", r#"{"level": 44}"#)?;
    assert_ok(&output, "a roomd-control member sets the volume");
    assert_eq!(audio(&bus)["volume"], 44);

    let reboot = gdbus_run(&bus, PANEL_USER, "update.reboot", "{}");
    let message = stderr(&reboot);
    assert!(
        message.contains("org.roomd.Error.Forbidden") && message.contains("FirmwareUpdate"),
        "{message}"
    );
    // Rebooting or powering off the box is the admin's too.
    for name in ["system.reboot", "system.power_off"] {
        let refused = gdbus_run(&bus, PANEL_USER, name, "{}");
        let message = stderr(&refused);
        assert!(
            message.contains("org.roomd.Error.Forbidden") && message.contains("SystemPower"),
            "{name}: {message}"
        );
    }
    // Root passes the role check; the core then refuses, as nothing is installed.
    let reboot = gdbus_run(&bus, "root", "update.reboot", "{}");
    let message = stderr(&reboot);
    assert!(
        !message.contains("Forbidden") && message.contains("org.roomd.Error."),
        "{message}"
    );
    Ok(())
}

#[test]
fn roomd_runs_on_when_the_bus_is_absent_or_the_name_is_refused() -> Result<(), HarnessError> {
    ensure_accounts()?;
    // No bus at that address.
    let absent = "unix:path=/nonexistent/roomd-test/bus";
    let mut roomd = Roomd::start(&format!("[dbus]\nbus = \"{absent}\"\n"))?;
    roomd.claim(roomd_tests::ADMIN_USERNAME, roomd_tests::ADMIN_PASSWORD)?;
    let status = wait_for_dbus_state(&roomd, "failed")?;
    assert!(
        status["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot connect"),
        "{status}"
    );
    assert!(roomd.is_running());

    // roomd as root is not the user the policy lets own org.roomd.
    let bus = PrivateBus::start()?;
    let mut as_root = Roomd::start(&format!("[dbus]\nbus = \"{}\"\n", bus.address()))?;
    as_root.claim(roomd_tests::ADMIN_USERNAME, roomd_tests::ADMIN_PASSWORD)?;
    let status = wait_for_dbus_state(&as_root, "failed")?;
    assert!(
        status["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot own org.roomd"),
        "{status}"
    );
    assert!(as_root.is_running());

    // The name already owned by a first roomd: the second one says so and runs on.
    let _first = start_on(&bus)?;
    let mut second = Roomd::builder()
        .config(&format!("[dbus]\nbus = \"{}\"\n", bus.address()))
        .run_as("roomd")
        .start()?;
    second.claim(roomd_tests::ADMIN_USERNAME, roomd_tests::ADMIN_PASSWORD)?;
    let status = wait_for_dbus_state(&second, "failed")?;
    assert!(
        status["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("already owned"),
        "{status}"
    );
    assert!(second.is_running());
    Ok(())
}
