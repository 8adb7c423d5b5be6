//! Configuration changes reach the file, status reflects commands, the events WebSocket delivers
//! both, and the audit log records who changed what.

use std::process::Command;
use std::time::Duration;

use roomd_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, HarnessError, Roomd, Swtpm, roomd_bin};
use serde_json::{Value, json};

const WS_WAIT: Duration = Duration::from_secs(5);

fn read_config_file(roomd: &Roomd) -> String {
    std::fs::read_to_string(roomd.config_path())
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", roomd.config_path().display()))
}

#[test]
fn config_patches_persist_and_bad_ones_change_nothing() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let admin = roomd.admin_token()?;
    let integrator = roomd.token_for("integrator")?;

    let before = roomd
        .get("/api/v1/config")
        .bearer(&admin)
        .send()?
        .expect_status(200, "GET config")?
        .json()?;
    assert!(
        before["audio"]["default_volume"].is_u64(),
        "config: {before}"
    );

    let changed = roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&integrator)
        .json(&json!({"audio": {"default_volume": 35}, "video": {"default_layout": "grid"}}))
        .send()?
        .expect_status(200, "PATCH config as integrator")?
        .json()?;
    assert_eq!(changed["audio"]["default_volume"], 35, "answer: {changed}");
    assert_eq!(changed["video"]["default_layout"], "grid");
    // Keys the patch did not name keep their values.
    assert_eq!(changed["standby"], before["standby"]);

    let text = read_config_file(&roomd);
    let file: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("the saved config is not TOML ({e}):\n{text}"));
    assert_eq!(
        file.get("audio")
            .and_then(|a| a.get("default_volume"))
            .and_then(|v| v.as_integer()),
        Some(35),
        "the saved config:\n{text}"
    );
    assert_eq!(
        file.get("video")
            .and_then(|a| a.get("default_layout"))
            .and_then(|v| v.as_str()),
        Some("grid")
    );
    let check = Command::new(roomd_bin()?)
        .arg("check-config")
        .arg(roomd.config_path())
        .output()
        .map_err(|e| HarnessError::Io {
            what: "cannot run roomd check-config".to_owned(),
            source: e,
        })?;
    assert!(
        check.status.success(),
        "roomd check-config refuses the file roomd saved: {}\n{text}",
        String::from_utf8_lossy(&check.stderr)
    );

    let saved = read_config_file(&roomd);
    let refused = roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&admin)
        .json(&json!({"audio": {"default_volume": 150}, "video": {"default_layout": "single"}}))
        .send()?;
    assert_eq!(
        refused.status,
        422,
        "out-of-range patch: {}",
        refused.text()
    );
    let body = refused.json()?;
    assert_eq!(body["error"], "invalid_config");
    assert_eq!(body["field"], "audio.default_volume", "body: {body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("audio.default_volume"),
        "the message does not name the key: {body}"
    );
    assert_eq!(
        read_config_file(&roomd),
        saved,
        "a refused patch changed the file"
    );
    let after = roomd.get("/api/v1/config").bearer(&admin).send()?.json()?;
    assert_eq!(
        after["video"]["default_layout"], "grid",
        "a refused patch was half applied"
    );

    let user = roomd.token_for("user")?;
    let forbidden = roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&user)
        .json(&json!({"audio": {"default_volume": 10}}))
        .send()?;
    assert_eq!(
        forbidden.status,
        403,
        "user may not change config: {}",
        forbidden.text()
    );
    Ok(())
}

#[test]
fn status_tree_follows_commands() -> Result<(), HarnessError> {
    let mut roomd = Roomd::start("")?;
    let claim_code = roomd.claim_code()?;
    roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    let token = roomd.token_for("room-control")?;
    let tree = roomd
        .get("/api/v1/status")
        .bearer(&token)
        .send()?
        .expect_status(200, "GET status")?
        .json()?;
    for section in ["system", "audio", "video", "standby", "meeting", "identity"] {
        assert!(
            tree.get(section).is_some_and(Value::is_object),
            "no {section} in {tree}"
        );
    }
    assert!(
        !tree.to_string().contains(&claim_code),
        "the status tree mentions the claim code: {tree}"
    );

    roomd
        .request("POST", "/api/v1/commands/audio.volume.set")
        .bearer(&token)
        .json(&json!({"level": 30}))
        .send()?
        .expect_status(200, "audio.volume.set 30")?;
    for path in ["audio/volume", "audio.volume"] {
        let level = roomd
            .get(&format!("/api/v1/status/{path}"))
            .bearer(&token)
            .send()?
            .expect_status(200, path)?
            .json()?;
        assert_eq!(level, json!(30), "GET /api/v1/status/{path}");
    }
    roomd
        .request("POST", "/api/v1/commands/video.layout.set")
        .bearer(&token)
        .json(&json!({"layout": "presentation"}))
        .send()?
        .expect_status(200, "video.layout.set")?;
    let layout = roomd
        .get("/api/v1/status/video/layout")
        .bearer(&token)
        .send()?
        .json()?;
    assert_eq!(layout, json!("presentation"));
    roomd
        .request("POST", "/api/v1/commands/standby.activate")
        .bearer(&token)
        .json(&json!({}))
        .send()?
        .expect_status(200, "standby.activate")?;
    let standby = roomd
        .get("/api/v1/status/standby/state")
        .bearer(&token)
        .send()?
        .json()?;
    assert_eq!(standby, json!("on"));
    Ok(())
}

#[test]
fn events_socket_delivers_status_changes_and_events() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let token = roomd.token_for("user")?;
    let mut socket = roomd.websocket_with_token(&token)?;
    socket.send_json(&json!({"type": "subscribe", "status": ["audio"], "events": ["*"]}))?;
    let (initial, _) = socket.wait_for("the current value of audio", WS_WAIT, |m| {
        m["type"] == "status" && m["path"] == "audio"
    })?;
    assert!(
        initial["value"]["volume"].is_u64(),
        "initial audio status: {initial}"
    );

    roomd.command("audio.volume.set", &json!({"level": 55}))?;
    socket.wait_for("audio.volume = 55", WS_WAIT, |m| {
        m["type"] == "status" && m["path"] == "audio.volume" && m["value"] == 55
    })?;
    roomd.command("audio.microphones.mute", &json!({}))?;
    let (event, _) = socket.wait_for("event audio.microphones.muted", WS_WAIT, |m| {
        m["type"] == "event" && m["name"] == "audio.microphones.muted"
    })?;
    assert!(event["seq"].is_u64(), "event without seq: {event}");
    assert!(event["time"].is_string(), "event without time: {event}");
    // A status outside the subscribed prefixes is not sent.
    roomd.command("video.layout.set", &json!({"layout": "single"}))?;
    let (layout_event, skipped) = socket.wait_for("event video.layout.changed", WS_WAIT, |m| {
        m["type"] == "event" && m["name"].as_str().is_some_and(|n| n.starts_with("video."))
    })?;
    let leaked: Vec<&Value> = skipped
        .iter()
        .filter(|m| {
            m["type"] == "status" && m["path"].as_str().is_some_and(|p| p.starts_with("video"))
        })
        .collect();
    assert!(
        leaked.is_empty(),
        "unsubscribed status sent: {leaked:?} (event {layout_event})"
    );

    // A malformed message gets an error and the socket stays usable.
    socket.send_text("this is not json")?;
    socket.wait_for("an error message", WS_WAIT, |m| m["type"] == "error")?;
    socket
        .send_json(&json!({"type": "subscribe", "status": ["nope-like-nothing"], "events": 5}))?;
    socket.wait_for("an error for a bad subscription", WS_WAIT, |m| {
        m["type"] == "error"
    })?;
    socket.send_json(&json!({"type": "subscribe", "status": ["video.layout"], "events": []}))?;
    let (layout, _) = socket.wait_for("video.layout after re-subscribing", WS_WAIT, |m| {
        m["type"] == "status" && m["path"] == "video.layout"
    })?;
    assert_eq!(layout["value"], "single");
    socket.close()?;

    match roomd.websocket(&[]) {
        Err(HarnessError::WebSocketRefused { status, .. }) => {
            assert_eq!(status, 401, "WebSocket without credentials")
        }
        Ok(_) => panic!("the events socket opened without credentials"),
        Err(other) => return Err(other),
    }
    match roomd.websocket(&[("Authorization", "Bearer not-a-token")]) {
        Err(HarnessError::WebSocketRefused { status, .. }) => assert_eq!(status, 401),
        Ok(_) => panic!("the events socket opened with a bogus token"),
        Err(other) => return Err(other),
    }
    // Browsers: a foreign Origin is refused even with a valid cookie.
    let (username, password) = roomd.admin_credentials()?;
    let session = roomd.login(&username, &password)?;
    match roomd.websocket(&[
        ("Cookie", session.cookie.as_str()),
        ("Origin", "https://evil.example"),
    ]) {
        Err(HarnessError::WebSocketRefused { status, .. }) => {
            assert_eq!(status, 403, "WebSocket from a foreign Origin")
        }
        Ok(_) => panic!("the events socket opened for a foreign Origin"),
        Err(other) => return Err(other),
    }
    let own_origin = format!("https://127.0.0.1:{}", roomd.port());
    let socket = roomd.websocket(&[
        ("Cookie", session.cookie.as_str()),
        ("Origin", own_origin.as_str()),
    ])?;
    socket.close()?;
    Ok(())
}

#[test]
fn audit_log_records_state_changes_for_the_audit_role_only() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let (username, password) = roomd.admin_credentials()?;
    let session = roomd.login(&username, &password)?;
    roomd
        .request("PATCH", "/api/v1/config")
        .session(&session)
        .json(&json!({"audio": {"default_volume": 44}}))
        .send()?
        .expect_status(200, "PATCH config with a session")?;
    let created = roomd.create_token("volume-knob", "user")?;
    let user_token = created["token"].as_str().unwrap_or_default().to_owned();
    roomd
        .request("POST", "/api/v1/commands/audio.volume.set")
        .bearer(&user_token)
        .json(&json!({"level": 12}))
        .send()?
        .expect_status(200, "audio.volume.set as user")?;
    let refused = roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&user_token)
        .json(&json!({"audio": {"default_volume": 1}}))
        .send()?;
    assert_eq!(refused.status, 403);

    let auditor = roomd.token_for("audit")?;
    let entries = roomd
        .get("/api/v1/audit")
        .bearer(&auditor)
        .send()?
        .expect_status(200, "GET audit as audit")?
        .json()?;
    let entries = entries
        .as_array()
        .cloned()
        .unwrap_or_else(|| panic!("audit is not a list: {entries}"));
    let find = |method: &str, path: &str, status: u64| {
        entries
            .iter()
            .find(|e| e["method"] == method && e["path"] == path && e["status"] == status)
            .cloned()
    };
    let patch = find("PATCH", "/api/v1/config", 200)
        .unwrap_or_else(|| panic!("no audit entry for the config change: {entries:#?}"));
    assert_eq!(
        patch["actor"], ADMIN_USERNAME,
        "config change entry: {patch}"
    );
    assert_eq!(patch["role"], "admin");
    assert!(
        patch["source"]
            .as_str()
            .is_some_and(|s| s.contains("127.0.0.1")),
        "source of the config change: {patch}"
    );
    let command = find("POST", "/api/v1/commands/audio.volume.set", 200)
        .unwrap_or_else(|| panic!("no audit entry for the command: {entries:#?}"));
    assert_eq!(command["role"], "user", "command entry: {command}");
    assert!(
        command["actor"].as_str().is_some_and(|a| !a.is_empty()),
        "command entry without actor: {command}"
    );
    find("PATCH", "/api/v1/config", 403)
        .unwrap_or_else(|| panic!("no audit entry for the refused change: {entries:#?}"));
    let seqs: Vec<u64> = entries.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] > w[1]),
        "audit is not newest first: {seqs:?}"
    );
    assert!(
        !entries.iter().any(|e| e.to_string().contains(&user_token)),
        "the audit log contains a token secret"
    );
    assert!(
        !entries.iter().any(|e| e.to_string().contains(&password)),
        "the audit log contains a password"
    );

    let limited = roomd
        .get("/api/v1/audit?limit=2")
        .bearer(&auditor)
        .send()?
        .json()?;
    assert_eq!(
        limited.as_array().map(Vec::len),
        Some(2),
        "limit=2: {limited}"
    );
    if let Some(newest) = seqs.first() {
        let older = roomd
            .get(&format!("/api/v1/audit?before={newest}"))
            .bearer(&auditor)
            .send()?
            .json()?;
        assert!(
            older
                .as_array()
                .is_some_and(|a| a.iter().all(|e| e["seq"].as_u64() < Some(*newest))),
            "before={newest}: {older}"
        );
    }

    let user = roomd.get("/api/v1/audit").bearer(&user_token).send()?;
    assert_eq!(user.status, 403, "audit as user: {}", user.text());
    Ok(())
}

/// Where accounts live and how hard guessing is decide who gets in: `system.state_dir` is set in
/// the file only, and the lockout keys and listen addresses only by an admin.
#[test]
fn trust_deciding_keys_are_file_only_or_admin_only() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let admin = roomd.admin_token()?;
    let integrator = roomd.token_for("integrator")?;
    let elsewhere = roomd.dir().join("other-state").display().to_string();
    for token in [&admin, &integrator] {
        let refused = roomd
            .request("PATCH", "/api/v1/config")
            .bearer(token)
            .json(&json!({"system": {"state_dir": elsewhere}}))
            .send()?;
        assert_eq!(refused.status, 422, "state_dir: {}", refused.text());
        assert_eq!(refused.json()?["field"], "system.state_dir");
    }
    for patch in [
        json!({"accounts": {"lockout_threshold": 20}}),
        json!({"accounts": {"lockout_max_seconds": 60}}),
        json!({"api": {"listen": ["0.0.0.0:8443"]}}),
        // An integrator cannot shorten the audit trail of what they did.
        json!({"logging": {"audit_retention_days": 1}}),
        json!({"logging": {"audit_max_files": 1}}),
        json!({"logging": {"audit_max_file_bytes": 65536}}),
    ] {
        let refused = roomd
            .request("PATCH", "/api/v1/config")
            .bearer(&integrator)
            .json(&patch)
            .send()?;
        assert_eq!(
            refused.status,
            403,
            "integrator {patch}: {}",
            refused.text()
        );
    }
    let text = read_config_file(&roomd);
    assert!(!text.contains("other-state"), "{text}");
    assert!(!text.contains("lockout_threshold = 20"), "{text}");
    roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&admin)
        .json(&json!({"accounts": {"lockout_threshold": 7}}))
        .send()?
        .expect_status(200, "an admin changes the lockout threshold")?;
    assert!(
        read_config_file(&roomd).contains("lockout_threshold = 7"),
        "{}",
        read_config_file(&roomd)
    );
    Ok(())
}

/// Query strings carry access tokens (`?apisecret=`, `?token=`): the meeting target in status
/// shows each server URL without its query, whatever the kind of meeting.
#[test]
fn status_never_shows_a_meeting_servers_query_string() -> Result<(), HarnessError> {
    // Listed, so that the meeting goes on trying (the name never resolves) instead of being
    // refused before any connection, which would end it without a target.
    let roomd = Roomd::start_claimed("[meeting]\nallowed_servers = [\"*.invalid\"]\n")?;
    let admin = roomd.admin_token()?;
    for target in [
        json!({"kind": "janus", "server": "https://janus.invalid/janus?apisecret=QuerySecret1",
               "room": 1234}),
        json!({"kind": "whip", "url": "https://whip.invalid/whip?token=QuerySecret1"}),
    ] {
        roomd.command("meeting.join", &json!({ "target": target }))?;
        let status = roomd
            .get("/api/v1/status")
            .bearer(&admin)
            .send()?
            .expect_status(200, "GET status")?
            .json()?;
        let shown = status["meeting"]["target"].to_string();
        assert!(shown.contains(".invalid/"), "no target in status: {status}");
        assert!(!status.to_string().contains("QuerySecret1"), "{shown}");
        roomd.command("meeting.leave", &json!({}))?;
    }
    Ok(())
}

/// The TURN password lives in the secret store, whose key the TPM seals under PCR 7: set
/// through the API or written into the file, it leaves the configuration, which says "set"
/// wherever it is shown or saved. Once PCR 7 reads differently (another boot chain), the TPM no
/// longer opens the store and roomd says so instead of starting.
#[test]
fn the_turn_password_lives_sealed_in_the_tpm_and_is_never_shown() -> Result<(), HarnessError> {
    const PASSWORD: &str = "Turn-Secret-4711";
    const FILE_PASSWORD: &str = "File-Secret-0815";
    let tpm = Swtpm::start()?;
    let mut roomd = Roomd::start_claimed(&format!(
        "{}[meeting]\nturn_server = \"turn://roomuser@turn.invalid:3478\"\n",
        tpm.identity_toml()
    ))?;
    let integrator = roomd.token_for("integrator")?;
    let answer = roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&integrator)
        .json(&json!({"meeting": {"turn_password": PASSWORD}}))
        .send()?
        .expect_status(200, "setting the TURN password")?
        .json()?;
    assert_eq!(answer["meeting"]["turn_password"], "set", "{answer}");
    assert!(!answer.to_string().contains(PASSWORD), "{answer}");

    let shows_nothing = |roomd: &Roomd, secret: &str| -> Result<(), HarnessError> {
        let admin = roomd.admin_token()?;
        for token in [admin.clone(), roomd.token_for("audit")?] {
            let config = roomd
                .get("/api/v1/config")
                .bearer(&token)
                .send()?
                .expect_status(200, "GET config")?
                .json()?;
            assert_eq!(config["meeting"]["turn_password"], "set", "{config}");
            assert!(!config.to_string().contains(secret), "{config}");
        }
        for path in ["/api/v1/status", "/api/v1/logs?limit=1000"] {
            let text = roomd.get(path).bearer(&admin).send()?.text();
            assert!(!text.contains(secret), "{path}: {text}");
        }
        let file = read_config_file(roomd);
        assert!(!file.contains(secret), "{file}");
        assert!(file.contains("turn_password = \"set\""), "{file}");
        let secrets = roomd.state_dir().join("secrets");
        let sealed = std::fs::read(secrets.join("turn-password.secret")).expect("stored secret");
        assert!(
            !sealed.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the secret is stored in plain text"
        );
        assert!(secrets.join("dek.sealed").exists(), "the key is not sealed");
        assert!(!secrets.join("dek.key").exists(), "a plain key file exists");
        Ok(())
    };
    shows_nothing(&roomd, PASSWORD)?;

    // A password in the URL would be saved and shown: refused, without echoing it.
    let refused = roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&integrator)
        .json(
            &json!({"meeting": {"turn_server": "turn://roomuser:Url-Secret-1@turn.invalid:3478"}}),
        )
        .send()?;
    assert_eq!(refused.status, 422, "{}", refused.text());
    assert!(
        !refused.text().contains("Url-Secret-1"),
        "{}",
        refused.text()
    );

    // Written into the file by whoever administers the device, it is moved at the next start.
    roomd.stop_sigterm()?;
    let file = read_config_file(&roomd).replace(
        "turn_password = \"set\"",
        &format!("turn_password = \"{FILE_PASSWORD}\""),
    );
    std::fs::write(roomd.config_path(), file).expect("write the config file");
    roomd.start_again()?;
    shows_nothing(&roomd, FILE_PASSWORD)?;

    // Another boot chain: PCR 7 changes, and the TPM keeps the store shut.
    roomd.stop_sigterm()?;
    let extended = Command::new("tpm2_pcrextend")
        .args(["-T", &tpm.tcti(), &format!("7:sha256={}", "ab".repeat(32))])
        .output()
        .expect("tpm2_pcrextend (Debian package tpm2-tools) runs");
    assert!(
        extended.status.success(),
        "tpm2_pcrextend: {}",
        String::from_utf8_lossy(&extended.stderr)
    );
    match roomd.start_again() {
        Err(HarnessError::ExitedEarly { stderr, .. }) => assert!(
            stderr.contains("dek.sealed") && stderr.contains("PCR 7"),
            "the refusal does not say what happened: {stderr}"
        ),
        Ok(()) => panic!("the secret store opened after PCR 7 changed"),
        Err(other) => panic!("unexpected failure: {other}"),
    }
    Ok(())
}
