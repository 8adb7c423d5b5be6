//! Factory reset (docs/factory-reset.md): `system.factory_reset` and the `factory-reset` marker
//! erase accounts, configuration and data, keep the device key (a persistent object in a real
//! swtpm, or the software key file) and the security floor, and bring the box back unclaimed.

use std::path::Path;
use std::time::Duration;

use roomd_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, HarnessError, Roomd, Session, Swtpm};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

/// Persistent handle of the device key (docs/identity.md).
const DEVICE_KEY_HANDLE: &str = "0x81010010";

/// A restart in place wipes, opens the TPM, hashes a password and starts the media engine.
const RESTART_TIMEOUT: Duration = Duration::from_secs(60);

const FLOOR: &str = "2026.12\n";

fn spki_of_certificate(path: &Path) -> Vec<u8> {
    let der = CertificateDer::from_pem_file(path).expect("a PEM certificate");
    let (_, parsed) = x509_parser::parse_x509_certificate(der.as_ref()).expect("X.509");
    parsed.public_key().raw.to_vec()
}

fn config_of(roomd: &Roomd, token: &str) -> Result<Value, HarnessError> {
    roomd
        .get("/api/v1/config")
        .bearer(token)
        .send()?
        .expect_status(200, "GET /api/v1/config")?
        .json()
}

fn status_with_token(roomd: &Roomd, token: &str) -> Result<u16, HarnessError> {
    Ok(roomd.get("/api/v1/status").bearer(token).send()?.status)
}

fn status_with_session(roomd: &Roomd, session: &Session) -> Result<u16, HarnessError> {
    Ok(roomd.get("/api/v1/status").session(session).send()?.status)
}

fn factory_reset(roomd: &Roomd, token: &str, arguments: &Value) -> Result<u16, HarnessError> {
    Ok(roomd
        .request("POST", "/api/v1/commands/system.factory_reset")
        .bearer(token)
        .json(arguments)
        .send()?
        .status)
}

/// The messages of roomd's recent log, as an admin sees them.
fn log_messages(roomd: &Roomd, token: &str) -> Result<Vec<String>, HarnessError> {
    let records = roomd
        .get("/api/v1/logs?limit=1000")
        .bearer(token)
        .send()?
        .expect_status(200, "GET /api/v1/logs")?
        .json()?;
    Ok(records
        .as_array()
        .map(|records| {
            records
                .iter()
                .filter_map(|r| r["message"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

fn claim_status(roomd: &Roomd, code: &str) -> Result<u16, HarnessError> {
    Ok(roomd
        .request("POST", "/api/v1/claim")
        .json(
            &json!({"code": code, "username": "newowner", "password": "a new owner's passphrase"}),
        )
        .send()?
        .status)
}

#[test]
fn factory_reset_erases_the_owner_and_keeps_the_tpm_key_and_the_floor() -> Result<(), HarnessError>
{
    let tpm = Swtpm::start()?;
    let mut roomd = Roomd::start(&tpm.identity_toml())?;
    let first_code = roomd.claim_code()?;
    roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    let admin = roomd.admin_token()?;
    let defaults = config_of(&roomd, &admin)?;

    // The owner's traces: a user with a session, a token, configuration (with a secret), a
    // floor the update worker would have raised.
    roomd.create_user("bob", "bob's long passphrase", "user")?;
    let bob = roomd.login("bob", "bob's long passphrase")?;
    let integrator = roomd.token_for("integrator")?;
    roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&admin)
        .json(&json!({
            "system": {"name": "Board room"},
            "audio": {"default_volume": 17},
            "meeting": {
                "stun_server": "stun://stun.example.org:3478",
                "turn_server": "turns://room@turn.example.org:5349",
                "turn_password": "turn secret"
            }
        }))
        .send()?
        .expect_status(200, "changing the configuration")?;
    let changed = config_of(&roomd, &admin)?;
    assert_eq!(changed["meeting"]["turn_password"], "set");
    std::fs::create_dir_all(roomd.state_dir().join("update")).expect("cannot create update/");
    std::fs::write(roomd.state_dir().join("update/floor"), FLOOR)
        .expect("cannot write update/floor");
    let key_before = spki_of_certificate(&roomd.cert_path());
    let pid = roomd.pid();

    let answer = roomd
        .request("POST", "/api/v1/commands/system.factory_reset")
        .bearer(&admin)
        .json(&json!({"confirm": "yes"}))
        .send()?
        .expect_status(202, "system.factory_reset as admin")?
        .json()?;
    assert_eq!(answer["result"], "restarting");
    roomd.wait_for_restart_in_place(RESTART_TIMEOUT)?;

    // The same process, running: systemd and the harness keep following it.
    assert_eq!(
        roomd.pid(),
        pid,
        "roomd re-executed itself in the same process"
    );
    assert!(roomd.is_running());
    assert!(
        !roomd.state_dir().join("factory-reset").exists(),
        "the marker is removed after the wipe"
    );

    // Unclaimed again, with a new claim code; everything the owner had is refused.
    let code = roomd.claim_code()?;
    assert_ne!(code, first_code, "a new claim code");
    assert_eq!(status_with_token(&roomd, &admin)?, 401, "old admin token");
    assert_eq!(status_with_token(&roomd, &integrator)?, 401, "old token");
    assert_eq!(status_with_session(&roomd, &bob)?, 401, "old session");
    assert_eq!(
        claim_status(&roomd, &first_code)?,
        403,
        "the old claim code"
    );
    roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    let new_admin = roomd.admin_token()?;
    let session = roomd
        .request("POST", "/api/v1/session")
        .json(&json!({"username": "bob", "password": "bob's long passphrase"}))
        .send()?;
    assert_eq!(session.status, 401, "bob's account is gone");

    // The configuration is the factory's, except what describes the machine.
    let config = config_of(&roomd, &new_admin)?;
    assert_eq!(config["system"]["name"], defaults["system"]["name"]);
    assert_eq!(
        config["audio"]["default_volume"],
        defaults["audio"]["default_volume"]
    );
    assert_eq!(config["meeting"]["stun_server"], "");
    assert_eq!(config["meeting"]["turn_server"], "");
    assert_eq!(config["meeting"]["turn_password"], "");
    for (section, key) in [
        ("system", "state_dir"),
        ("system", "hardware_profile"),
        ("identity", "backend"),
        ("identity", "tcti"),
        ("api", "listen"),
        ("update", "rauc_bus"),
        ("update", "os_release"),
    ] {
        assert_eq!(
            config[section][key], changed[section][key],
            "{section}.{key} describes the machine and stays"
        );
    }
    // roomd's settings other than the harness's machine settings went back to the defaults
    // (the harness's meeting.allowed_servers among them).
    let file =
        std::fs::read_to_string(roomd.config_path()).expect("cannot read the configuration file");
    assert!(!file.contains("10.77.0.0/16"), "{file}");
    assert!(!file.contains("Board room"), "{file}");

    // The same key (a new certificate over it), and the floor.
    assert_eq!(
        spki_of_certificate(&roomd.cert_path()),
        key_before,
        "the device certificate is over the same key"
    );
    let floor =
        std::fs::read_to_string(roomd.state_dir().join("update/floor")).expect("the floor is gone");
    assert_eq!(floor, FLOOR);

    // The audit trail of the previous owner is gone; the reset itself is in the log.
    let audit = roomd
        .get("/api/v1/audit")
        .bearer(&new_admin)
        .send()?
        .expect_status(200, "GET /api/v1/audit")?
        .json()?;
    let records = audit.as_array().expect("GET /api/v1/audit is a list");
    let from_before = |r: &Value| {
        let path = r["path"].as_str().unwrap_or_default();
        path.starts_with("/api/v1/users")
            || path == "/api/v1/config"
            || path.ends_with("system.factory_reset")
    };
    assert!(
        !records.iter().any(from_before),
        "the old audit log is erased: {audit:#}"
    );
    let messages = log_messages(&roomd, &new_admin)?;
    assert!(
        messages.iter().any(|m| m.contains("factory reset: ran on")
            && m.contains("system.factory_reset by token harness-admin (token:")),
        "the log says a factory reset ran and who asked: {messages:#?}"
    );

    // The key is still the TPM's persistent object (roomd never evicted it).
    roomd.stop_sigterm()?;
    assert_eq!(tpm.public_key_der(DEVICE_KEY_HANDLE), key_before);
    Ok(())
}

#[test]
fn a_marker_written_while_roomd_is_stopped_is_honoured_at_the_next_start()
-> Result<(), HarnessError> {
    // Software key: the file that must survive.
    let mut roomd = Roomd::start_claimed("")?;
    let admin = roomd.admin_token()?;
    roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&admin)
        .json(&json!({"audio": {"default_volume": 17}}))
        .send()?
        .expect_status(200, "changing the volume")?;
    let key_file = roomd.state_dir().join("tls/key.pem");
    let key = std::fs::read(&key_file).expect("no software key");
    roomd.stop_sigterm()?;

    // What the image's hardware path does: any content, written while roomd is stopped.
    std::fs::write(roomd.state_dir().join("factory-reset"), "usb stick\n")
        .expect("cannot write the marker");
    roomd.start_again()?;
    roomd.start_over_as_new_device()?;

    assert!(!roomd.state_dir().join("factory-reset").exists());
    assert!(!roomd.state_dir().join("users.json").exists());
    assert!(!roomd.state_dir().join("claimed").exists());
    assert_eq!(status_with_token(&roomd, &admin)?, 401, "old admin token");
    assert_eq!(
        std::fs::read(&key_file).expect("the key is gone"),
        key,
        "the software key file stays"
    );
    roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    let new_admin = roomd.admin_token()?;
    let config = config_of(&roomd, &new_admin)?;
    assert_ne!(config["audio"]["default_volume"], 17);
    assert_eq!(config["identity"]["backend"], "software");
    let messages = log_messages(&roomd, &new_admin)?;
    assert!(
        messages
            .iter()
            .any(|m| m.contains("factory reset: ran on") && m.contains("marker found at start")),
        "the log says the marker was found at start: {messages:#?}"
    );
    Ok(())
}

#[test]
fn only_an_admin_resets_and_only_when_confirming() -> Result<(), HarnessError> {
    let mut roomd = Roomd::start_claimed("")?;
    let pid = roomd.pid();
    let marker = roomd.state_dir().join("factory-reset");
    for role in ["integrator", "user", "room-control", "audit"] {
        let token = roomd.token_for(role)?;
        let refused = roomd
            .request("POST", "/api/v1/commands/system.factory_reset")
            .bearer(&token)
            .json(&json!({"confirm": "yes"}))
            .send()?;
        assert_eq!(refused.status, 403, "system.factory_reset as {role}");
        assert!(!marker.exists(), "no marker after the refusal of {role}");
    }
    let admin = roomd.admin_token()?;
    for arguments in [
        json!({}),
        json!({"confirm": "no"}),
        json!({"confirm": true}),
    ] {
        assert_eq!(
            factory_reset(&roomd, &admin, &arguments)?,
            422,
            "system.factory_reset with {arguments}"
        );
        assert!(!marker.exists(), "no marker after {arguments}");
    }
    assert_eq!(roomd.pid(), pid);
    assert!(roomd.is_running());
    assert_eq!(
        status_with_token(&roomd, &admin)?,
        200,
        "still the same owner"
    );
    Ok(())
}
