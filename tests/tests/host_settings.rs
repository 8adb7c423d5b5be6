//! `[host]` on a machine without systemd's services (this one: no system bus): roomd starts,
//! says in `status.host` that the services are out of reach, writes its networkd file into the
//! folder it is pointed at, refuses bad values naming the key, and keeps reboots for admins.
//! The services themselves are tested inside the firmware image (tests/tests/image_boot.rs).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use roomd_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, HarnessError, Roomd};
use serde_json::{Value, json};

const HOST_TOML: &str = r#"
[host]
hostname = "room-4-12"
timezone = "Europe/Berlin"
ntp = true
ntp_servers = ["192.0.2.123", "ntp.example.org"]
nightly_reboot = "03:30"

[host.network]
mode = "static"
addresses = ["192.0.2.10/24", "2001:db8::10/64"]
gateways = ["192.0.2.1"]
dns = ["192.0.2.53"]
"#;

const NETWORK_FILE: &str =
    "# Written by roomd from [host] in its configuration (docs/host-settings.md);
# change it there: roomd rewrites or removes this file.
[Match]
Name=en* eth*

[Network]
Address=192.0.2.10/24
Address=2001:db8::10/64
Gateway=192.0.2.1
DNS=192.0.2.53
NTP=192.0.2.123 ntp.example.org
";

const WAIT: Duration = Duration::from_secs(20);

/// Polls `status.host` until `done` holds for it.
fn host_status_until(
    roomd: &Roomd,
    token: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Result<Value, HarnessError> {
    let start = Instant::now();
    loop {
        let host = roomd
            .get("/api/v1/status/host")
            .bearer(token)
            .send()?
            .expect_status(200, "GET status/host")?
            .json()?;
        if done(&host) {
            return Ok(host);
        }
        assert!(
            start.elapsed() < WAIT,
            "status.host never showed {what}: {host}\n{}",
            roomd.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn wait_for_file(path: &Path, present: bool) {
    let start = Instant::now();
    while path.exists() != present {
        assert!(
            start.elapsed() < WAIT,
            "{} is {}",
            path.display(),
            if present { "missing" } else { "still there" }
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn host_settings_without_system_services() -> Result<(), HarnessError> {
    let network_dir = tempfile::tempdir().expect("a temporary folder");
    // A bus address that leads nowhere: the same answer on every machine, with or without a
    // system bus of its own.
    let no_bus = format!("unix:path={}/no-system-bus", network_dir.path().display());
    let mut roomd = Roomd::builder()
        .config(HOST_TOML)
        .env(
            "ROOMD_NETWORK_DIR",
            &network_dir.path().display().to_string(),
        )
        .env("DBUS_SYSTEM_BUS_ADDRESS", &no_bus)
        .start()?;
    roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    let admin = roomd.admin_token()?;

    // Out of reach, and said so; every D-Bus setting failed, naming its key.
    let host = host_status_until(&roomd, &admin, "the bus out of reach", |h| {
        h["unavailable_reason"]
            .as_str()
            .is_some_and(|r| r.contains("D-Bus"))
            && h["error"].as_str().is_some_and(|e| !e.is_empty())
    })?;
    assert_eq!(host["available"], false, "{host}");
    assert_eq!(host["nightly_reboot_at"], Value::Null, "{host}");
    assert!(host["addresses"].is_array(), "{host}");
    let error = host["error"].as_str().unwrap_or_default();
    for key in [
        "host.hostname",
        "host.timezone",
        "host.ntp",
        "host.nightly_reboot",
    ] {
        assert!(
            error.contains(key),
            "status.host.error lacks {key}: {error}"
        );
    }

    // The networkd file is there, whole, readable by networkd (0644 despite roomd's umask).
    let file = network_dir.path().join("10-roomd.network");
    wait_for_file(&file, true);
    let text = std::fs::read_to_string(&file).expect("the networkd file");
    assert_eq!(text, NETWORK_FILE);
    let mode = std::fs::metadata(&file)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644, "mode of {}", file.display());
    let files: Vec<_> = std::fs::read_dir(network_dir.path())
        .expect("the folder")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        files.len(),
        1,
        "only roomd's file, no temporaries: {files:?}"
    );

    // A bad value is refused naming its key; nothing changes.
    let refused = roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&admin)
        .json(&json!({"host": {"hostname": "Room 4.12"}}))
        .send()?
        .expect_status(422, "PATCH a bad hostname")?
        .json()?;
    assert_eq!(refused["field"], "host.hostname", "{refused}");
    let refused = roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&admin)
        .json(&json!({"host": {"network": {"mode": "dhcp"}}}))
        .send()?
        .expect_status(422, "PATCH dhcp with static addresses")?
        .json()?;
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("host.network.addresses")),
        "{refused}"
    );
    // The network is the admin's: an integrator may not move the box to another address.
    let integrator = roomd.token_for("integrator")?;
    roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&integrator)
        .json(&json!({"host": {"network": {"dns": ["192.0.2.54"]}}}))
        .send()?
        .expect_status(403, "PATCH host.network as integrator")?;

    // DHCP without addresses rewrites the file; removing the section and the servers removes it.
    roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&admin)
        .json(&json!({"host": {"ntp_servers": null,
                               "network": {"mode": "dhcp", "addresses": null, "gateways": null}}}))
        .send()?
        .expect_status(200, "PATCH dhcp")?;
    let start = Instant::now();
    while std::fs::read_to_string(&file).unwrap_or_default() != NETWORK_FILE_DHCP {
        assert!(
            start.elapsed() < WAIT,
            "{} never became the DHCP file",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&admin)
        .json(&json!({"host": {"network": null}}))
        .send()?
        .expect_status(200, "PATCH the network away")?;
    wait_for_file(&file, false);

    // Reboot and power-off: admin only.
    for (role, name) in [
        ("room-control", "system.reboot"),
        ("integrator", "system.power_off"),
    ] {
        let token = roomd.token_for(role)?;
        roomd
            .request("POST", &format!("/api/v1/commands/{name}"))
            .bearer(&token)
            .json(&json!({}))
            .send()?
            .expect_status(403, &format!("{name} as {role}"))?;
    }
    // An admin's reboot is asked for; logind is out of reach here, and status says so.
    roomd.command("system.reboot", &json!({}))?;
    host_status_until(&roomd, &admin, "the failed reboot", |h| {
        h["error"]
            .as_str()
            .is_some_and(|e| e.contains("system.reboot"))
    })?;

    assert!(
        roomd.is_running(),
        "roomd stopped:\n{}",
        roomd.stderr_text()
    );
    let log = roomd.stderr_text();
    assert!(!log.contains("panicked"), "{log}");
    Ok(())
}

const NETWORK_FILE_DHCP: &str =
    "# Written by roomd from [host] in its configuration (docs/host-settings.md);
# change it there: roomd rewrites or removes this file.
[Match]
Name=en* eth*

[Network]
DHCP=yes
DNS=192.0.2.53
";
