//! Firmware updates through the API (docs/api.md, "Firmware updates") against a real RAUC 1.8
//! service on a private D-Bus, with file slots and bundles signed by a CA made for the test
//! (`roomd_tests::rauc`). Every refusal is checked to leave the slot file as it was.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use roomd_tests::rauc::{FileServer, RAUC_COMPATIBLE, Rauc, Signer};
use roomd_tests::{HarnessError, Roomd, TestCa};

const WAIT: Duration = Duration::from_secs(60);

/// roomd as a firmware image `version` with security floor `floor`, talking to `rauc`.
fn roomd_on(rauc: &Rauc, version: &str, floor: &str, extra: &str) -> Result<Roomd, HarnessError> {
    let os_release = rauc.os_release("os-release", Some(version), Some(floor));
    Roomd::start_claimed(&format!(
        "[update]\nrauc_bus = \"{}\"\nos_release = \"{}\"\n{extra}",
        rauc.bus_address(),
        os_release.display()
    ))
}

fn update_status(roomd: &Roomd) -> Result<Value, HarnessError> {
    roomd
        .get("/api/v1/status/update")
        .bearer(&roomd.admin_token()?)
        .send()?
        .expect_status(200, "GET /api/v1/status/update")?
        .json()
}

/// Polls `status.update` until `condition` holds (the state is what is waited for, not a time).
fn wait_update(
    roomd: &Roomd,
    what: &str,
    condition: impl Fn(&Value) -> bool,
) -> Result<Value, HarnessError> {
    let deadline = Instant::now() + WAIT;
    loop {
        let status = update_status(roomd)?;
        if condition(&status) {
            return Ok(status);
        }
        if Instant::now() > deadline {
            return Err(HarnessError::Timeout {
                what: format!(
                    "status.update: {what}; last seen {status}; roomd: {}",
                    roomd.stderr_text()
                ),
                timeout: WAIT,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn upload(roomd: &Roomd, bytes: Vec<u8>) -> Result<roomd_tests::ApiResponse, HarnessError> {
    roomd
        .request("POST", "/api/v1/update")
        .bearer(&roomd.admin_token()?)
        .header("Content-Type", "application/octet-stream")
        .body(bytes)
        .send()
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Staged bundles left in `<state_dir>/update/` (there must be none after an install or refusal).
fn staged(roomd: &Roomd) -> Vec<String> {
    std::fs::read_dir(roomd.state_dir().join("update"))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("bundle-"))
                .collect()
        })
        .unwrap_or_default()
}

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

#[test]
fn a_signed_bundle_installs_into_the_other_slot_and_waits_for_a_reboot() -> Result<(), HarnessError>
{
    let rauc = Rauc::start()?;
    let roomd = roomd_on(&rauc, "1.0", "1.0", "")?;
    let status = wait_update(&roomd, "available", |u| u["available"] == true)?;
    assert_eq!(status["image_version"], "1.0");
    assert_eq!(status["booted_slot"], "A");
    assert_eq!(status["security_floor"], "1.0");
    assert_eq!(status["rolled_back"], Value::Null);

    let mut events = roomd.websocket_with_token(&roomd.admin_token()?)?;
    events.send_json(&json!({"type": "subscribe", "events": ["update.*"]}))?;

    let new_image = image(7, 300_000);
    let bundle = rauc.bundle("good", "1.1", RAUC_COMPATIBLE, Signer::Trusted, &new_image)?;
    let answer = upload(&roomd, read(&bundle))?.expect_status(202, "POST /api/v1/update")?;
    let accepted = answer.json()?;
    assert_eq!(accepted["version"], "1.1", "{accepted}");
    assert!(
        ["installing", "installed"].contains(&accepted["state"].as_str().unwrap_or("")),
        "{accepted}"
    );

    let done = wait_update(&roomd, "installed", |u| u["state"] != "installing")?;
    assert_eq!(done["state"], "installed", "{done}");
    assert_eq!(done["version"], "1.1");
    assert_eq!(done["needs_reboot"], true);
    // The other slot holds the new image; the running one is as it was.
    assert_eq!(&rauc.slot("B")[..new_image.len()], &new_image[..]);
    assert!(rauc.slot("A").iter().all(|&b| b == 0));
    assert_eq!(rauc.primary(), "B", "RAUC made the new slot primary");
    assert!(
        staged(&roomd).is_empty(),
        "staged files left: {:?}",
        staged(&roomd)
    );

    let (installed, before) = events.wait_for("update.installed", WAIT, |m| {
        m["name"] == "update.installed"
    })?;
    assert_eq!(installed["data"]["version"], "1.1");
    assert!(
        before
            .iter()
            .any(|m| m["name"] == "update.state" && m["data"]["state"] == "installing"),
        "{before:?}"
    );

    // Only an admin may reboot into it (the reboot itself is not run here: logind would reboot
    // the machine running the test).
    let integrator = roomd.token_for("integrator")?;
    let refused = roomd
        .request("POST", "/api/v1/commands/update.reboot")
        .bearer(&integrator)
        .json(&json!({}))
        .send()?
        .expect_status(403, "update.reboot as integrator")?;
    assert!(
        refused
            .error_message()
            .unwrap_or_default()
            .contains("FirmwareUpdate"),
        "{}",
        refused.text()
    );
    Ok(())
}

#[test]
fn refused_bundles_leave_the_slots_untouched() -> Result<(), HarnessError> {
    let rauc = Rauc::start()?;
    let roomd = roomd_on(&rauc, "2.0", "2.0", "max_bundle_mib = 1\n")?;
    wait_update(&roomd, "available", |u| u["available"] == true)?;
    let payload = image(3, 200_000);

    let refuse = |bytes: Vec<u8>, status: u16, expect: &[&str]| -> Result<(), HarnessError> {
        let answer = upload(&roomd, bytes)?;
        let message = answer.error_message().unwrap_or_default();
        assert_eq!(answer.status, status, "{expect:?}: {}", answer.text());
        for part in expect {
            assert!(message.contains(part), "{part:?} not in {message:?}");
        }
        let status = wait_update(&roomd, "failed", |u| u["state"] == "failed")?;
        assert!(
            !status["error"].as_str().unwrap_or("").is_empty(),
            "{status}"
        );
        assert!(rauc.slot("A").iter().all(|&b| b == 0), "slot A changed");
        assert!(rauc.slot("B").iter().all(|&b| b == 0), "slot B changed");
        assert_eq!(rauc.primary(), "A");
        assert!(
            staged(&roomd).is_empty(),
            "staged files left: {:?}",
            staged(&roomd)
        );
        Ok(())
    };

    let stranger = rauc.bundle(
        "stranger",
        "2.1",
        RAUC_COMPATIBLE,
        Signer::Stranger,
        &payload,
    )?;
    refuse(read(&stranger), 422, &["signature"])?;

    let good = read(&rauc.bundle("good", "2.1", RAUC_COMPATIBLE, Signer::Trusted, &payload)?);
    refuse(
        good[..good.len() / 2].to_vec(),
        422,
        &["not a complete RAUC bundle", "truncated"],
    )?;
    refuse(
        b"not a bundle at all".repeat(400),
        422,
        &["not a complete RAUC bundle"],
    )?;
    // A bundle whose signed content was changed after signing.
    let mut flipped = good.clone();
    flipped[5000] ^= 0x01;
    refuse(flipped, 422, &["signature"])?;

    let other = rauc.bundle("other", "2.1", "roomd-other", Signer::Trusted, &payload)?;
    refuse(read(&other), 422, &["roomd-other", RAUC_COMPATIBLE])?;

    let older = rauc.bundle("older", "1.9", RAUC_COMPATIBLE, Signer::Trusted, &payload)?;
    refuse(read(&older), 422, &["1.9", "2.0", "security floor"])?;

    // Over update.max_bundle_mib (1 MiB) without Content-Length: counted while it arrives and
    // cut off at the limit.
    let chunked = roomd
        .request("POST", "/api/v1/update")
        .bearer(&roomd.admin_token()?)
        .header("Content-Type", "application/octet-stream")
        .body_chunked(image(5, 2 * 1024 * 1024))
        .send();
    if let Ok(answer) = chunked {
        // The server may close before the client has sent everything; when an answer comes,
        // it is the size refusal.
        assert_eq!(answer.status, 413, "{}", answer.text());
    }
    let status = wait_update(&roomd, "failed on size", |u| {
        u["error"]
            .as_str()
            .is_some_and(|e| e.contains("update.max_bundle_mib"))
    })?;
    assert_eq!(status["state"], "failed");
    assert!(rauc.slot("B").iter().all(|&b| b == 0));
    assert!(
        staged(&roomd).is_empty(),
        "staged files left: {:?}",
        staged(&roomd)
    );

    // The same announced in Content-Length: refused before it is read.
    refuse(vec![0u8; 2 * 1024 * 1024], 413, &["update.max_bundle_mib"])?;

    let wrong_type = roomd
        .request("POST", "/api/v1/update")
        .bearer(&roomd.admin_token()?)
        .header("Content-Type", "text/plain")
        .body(b"hello".to_vec())
        .send()?;
    assert_eq!(wrong_type.status, 415, "{}", wrong_type.text());

    // Nothing installed: no reboot.
    let no_reboot = roomd
        .request("POST", "/api/v1/commands/update.reboot")
        .bearer(&roomd.admin_token()?)
        .json(&json!({}))
        .send()?
        .expect_status(422, "update.reboot with nothing installed")?;
    assert!(
        no_reboot
            .error_message()
            .unwrap_or_default()
            .contains("no installed update"),
        "{}",
        no_reboot.text()
    );

    // The floor the image set is kept where a rollback cannot lower it.
    let floor = std::fs::read_to_string(roomd.state_dir().join("update/floor")).unwrap_or_default();
    assert_eq!(floor.trim(), "2.0");

    // And after all that, a good bundle still installs.
    upload(&roomd, good)?.expect_status(202, "a good bundle after refusals")?;
    let done = wait_update(&roomd, "installed", |u| u["state"] != "installing")?;
    assert_eq!(done["state"], "installed", "{done}");
    Ok(())
}

#[test]
fn a_system_that_is_not_a_firmware_image_refuses_updates_and_says_why() -> Result<(), HarnessError>
{
    let rauc = Rauc::start()?;
    let os_release = rauc.os_release("plain-os-release", None, None);
    let roomd = Roomd::start_claimed(&format!(
        "[update]\nrauc_bus = \"{}\"\nos_release = \"{}\"\n",
        rauc.bus_address(),
        os_release.display()
    ))?;
    let status = wait_update(&roomd, "checked", |u| {
        u["unavailable_reason"] != "not checked yet"
    })?;
    assert_eq!(status["available"], false);
    let reason = status["unavailable_reason"].as_str().unwrap_or("");
    assert!(
        reason.contains("not a roomd firmware image") && reason.contains("IMAGE_VERSION"),
        "{reason}"
    );
    let bundle = rauc.bundle(
        "good",
        "1.1",
        RAUC_COMPATIBLE,
        Signer::Trusted,
        &image(1, 100_000),
    )?;
    let answer = upload(&roomd, read(&bundle))?;
    assert_eq!(answer.status, 409, "{}", answer.text());
    assert!(
        answer
            .error_message()
            .unwrap_or_default()
            .contains("not a roomd firmware image"),
        "{}",
        answer.text()
    );
    assert!(rauc.slot("B").iter().all(|&b| b == 0));
    Ok(())
}

#[test]
fn a_bundle_downloads_from_an_allowed_https_server_only() -> Result<(), HarnessError> {
    let rauc = Rauc::start()?;
    let ca = TestCa::new("update server CA")?;
    let ca_file = rauc.dir().join("server-ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).expect("write the CA file");
    let new_image = image(9, 250_000);
    let bundle = rauc.bundle("good", "1.1", RAUC_COMPATIBLE, Signer::Trusted, &new_image)?;
    let server = FileServer::start(&ca.issue_server(&["127.0.0.1".to_owned()])?, read(&bundle))?;

    // Not in meeting.allowed_servers: refused before any connection.
    let closed = roomd_on(
        &rauc,
        "1.0",
        "1.0",
        "[meeting]\nallowed_servers = [\"updates.example.org\"]\n",
    )?;
    wait_update(&closed, "available", |u| u["available"] == true)?;
    let refused = closed
        .request("POST", "/api/v1/update")
        .bearer(&closed.admin_token()?)
        .json(&json!({"url": server.url("/bundle.raucb")}))
        .send()?
        .expect_status(403, "download from an unlisted server")?;
    assert!(
        refused
            .error_message()
            .unwrap_or_default()
            .contains("meeting.allowed_servers"),
        "{}",
        refused.text()
    );
    assert!(rauc.slot("B").iter().all(|&b| b == 0));
    drop(closed);

    let open = roomd_on(
        &rauc,
        "1.0",
        "1.0",
        &format!(
            "[meeting]\nallowed_servers = [\"127.0.0.1\"]\nca_file = \"{}\"\n",
            ca_file.display()
        ),
    )?;
    wait_update(&open, "available", |u| u["available"] == true)?;
    open.request("POST", "/api/v1/update")
        .bearer(&open.admin_token()?)
        .json(&json!({"url": server.url("/bundle.raucb")}))
        .send()?
        .expect_status(202, "download from the allowed server")?;
    let done = wait_update(&open, "installed", |u| u["state"] != "installing")?;
    assert_eq!(done["state"], "installed", "{done}");
    assert_eq!(done["progress"]["total_bytes"], read(&bundle).len());
    assert_eq!(&rauc.slot("B")[..new_image.len()], &new_image[..]);
    Ok(())
}

#[test]
fn the_booted_slot_is_marked_good_once_the_room_is_healthy() -> Result<(), HarnessError> {
    // The boot loader tried slot A and has not blessed it yet.
    let rauc = Rauc::start_with(|dir| {
        let _ = std::fs::write(dir.join("state/state.A"), "bad\n");
    })?;
    assert_eq!(rauc.boot_state("A"), "bad");
    let roomd = roomd_on(&rauc, "1.0", "1.0", "")?;
    let status = wait_update(&roomd, "marked good", |u| u["marked_good"] == true)?;
    assert_eq!(status["booted_slot"], "A");
    assert_eq!(rauc.boot_state("A"), "good");
    let slots = rauc.slot_status()?;
    assert!(
        slots.contains("\"rootfs.0\" ") && !slots.contains("\"boot-status\" s \"bad\""),
        "{slots}"
    );
    Ok(())
}

#[test]
fn a_fallback_to_the_older_slot_is_reported_as_a_rollback() -> Result<(), HarnessError> {
    // Version 1.1 was installed into B, which never became good: the loader is back on A.
    let rauc = Rauc::start_with(|dir| {
        let _ = std::fs::write(dir.join("state/state.B"), "bad\n");
        let _ = std::fs::write(
            dir.join("data/central.raucs"),
            "[slot.rootfs.1]\nbundle.compatible=roomd-test\nbundle.version=1.1\nstatus=ok\n\
             installed.timestamp=2026-12-01T10:00:00Z\ninstalled.count=1\n",
        );
    })?;
    let roomd = roomd_on(&rauc, "1.0", "1.0", "")?;
    let status = wait_update(&roomd, "checked", |u| u["available"] == true)?;
    assert_eq!(
        status["rolled_back"],
        json!({"from": "1.1", "to": "1.0"}),
        "{status}"
    );
    Ok(())
}
