//! roomctl against a live roomd: reading status and config, changing config, running commands,
//! and reporting refusals with the server's message and exit code 1.

use roomd_tests::{HarnessError, RoomctlOutput, Roomd, run_roomctl};
use serde_json::{Value, json};

/// Runs roomctl with `token` and checks that the token shows nowhere in its output.
fn ctl(roomd: &Roomd, token: &str, args: &[&str]) -> Result<RoomctlOutput, HarnessError> {
    let output = roomd.roomctl(Some(token), args)?;
    assert!(
        !output.stdout.contains(token) && !output.stderr.contains(token),
        "roomctl {args:?} printed the token"
    );
    Ok(output)
}

fn stdout_json(output: &RoomctlOutput, what: &str) -> Value {
    assert_eq!(
        output.code,
        Some(0),
        "{what}: exit {:?}, stderr: {}",
        output.code,
        output.stderr
    );
    serde_json::from_str(&output.stdout)
        .unwrap_or_else(|e| panic!("{what}: stdout is not JSON ({e}): {}", output.stdout))
}

#[test]
fn roomctl_reads_and_changes_a_live_roomd() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let token = roomd.token_for("integrator")?;

    let status = stdout_json(&ctl(&roomd, &token, &["status"])?, "status");
    assert!(status["audio"].is_object(), "status: {status}");
    let volume = stdout_json(
        &ctl(&roomd, &token, &["status", "audio/volume"])?,
        "status audio/volume",
    );
    assert_eq!(Some(&volume), status.pointer("/audio/volume"));

    let config = stdout_json(&ctl(&roomd, &token, &["config", "get"])?, "config get");
    assert!(config["api"].is_object(), "config: {config}");
    let set = ctl(
        &roomd,
        &token,
        &["config", "set", "audio.default_volume", "35"],
    )?;
    assert_eq!(stdout_json(&set, "config set"), json!(35));
    let value = stdout_json(
        &ctl(&roomd, &token, &["config", "get", "audio.default_volume"])?,
        "config get audio.default_volume",
    );
    assert_eq!(value, json!(35), "config set did not stick");
    // A value that is not JSON is sent as a string.
    let layout = ctl(
        &roomd,
        &token,
        &["config", "set", "video.default_layout", "grid"],
    )?;
    assert_eq!(stdout_json(&layout, "config set layout"), json!("grid"));

    let result = ctl(
        &roomd,
        &token,
        &["command", "audio.volume.set", r#"{"level":20}"#],
    )?;
    stdout_json(&result, "command audio.volume.set");
    let level = roomd
        .get("/api/v1/status/audio/volume")
        .bearer(&token)
        .send()?
        .json()?;
    assert_eq!(level, json!(20), "the command did not reach roomd");
    let mute = ctl(&roomd, &token, &["command", "audio.microphones.mute"])?;
    assert_eq!(
        mute.code,
        Some(0),
        "command without arguments: {}",
        mute.stderr
    );
    let muted = roomd
        .get("/api/v1/status/audio/microphones/muted")
        .bearer(&token)
        .send()?
        .json()?;
    assert_eq!(muted, json!(true));

    Ok(())
}

#[test]
fn roomctl_reports_refusals_with_the_servers_message() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let token = roomd.token_for("integrator")?;
    let file_before = std::fs::read(roomd.config_path()).map_err(|e| HarnessError::Io {
        what: "cannot read the config".to_owned(),
        source: e,
    })?;

    let refused = ctl(
        &roomd,
        &token,
        &["config", "set", "audio.default_volume", "150"],
    )?;
    assert_eq!(refused.code, Some(1), "out-of-range value: {refused:?}");
    let server = roomd
        .request("PATCH", "/api/v1/config")
        .bearer(&token)
        .json(&json!({"audio": {"default_volume": 150}}))
        .send()?;
    let message = server.error_message().unwrap_or_default();
    assert!(
        !message.is_empty(),
        "roomd gave no message: {}",
        server.text()
    );
    assert!(
        refused.stderr.contains(&message),
        "roomctl's stderr lacks the server's message {message:?}: {}",
        refused.stderr
    );
    assert!(
        refused.stdout.is_empty(),
        "output on stdout for a refusal: {}",
        refused.stdout
    );
    let file_after = std::fs::read(roomd.config_path()).map_err(|e| HarnessError::Io {
        what: "cannot read the config".to_owned(),
        source: e,
    })?;
    assert_eq!(file_before, file_after);

    let unknown = ctl(&roomd, &token, &["command", "audio.explode", "{}"])?;
    assert_eq!(unknown.code, Some(1), "unknown command: {unknown:?}");
    assert!(
        unknown.stderr.contains("audio.explode"),
        "stderr: {}",
        unknown.stderr
    );

    let bad_token = ctl(&roomd, "0123456789abcdef", &["status"])?;
    assert_eq!(bad_token.code, Some(1), "bad token: {bad_token:?}");
    assert!(
        bad_token.stderr.contains("401"),
        "stderr: {}",
        bad_token.stderr
    );

    let user = roomd.token_for("user")?;
    let forbidden = ctl(&roomd, &user, &["config", "get"])?;
    assert_eq!(
        forbidden.code,
        Some(1),
        "user reading config: {forbidden:?}"
    );

    let not_json = ctl(&roomd, &token, &["command", "audio.volume.set", "{level:"])?;
    assert_eq!(
        not_json.code,
        Some(2),
        "arguments that are not JSON: {not_json:?}"
    );
    let usage = ctl(&roomd, &token, &["frobnicate"])?;
    assert_eq!(usage.code, Some(2), "unknown subcommand: {usage:?}");
    Ok(())
}

#[test]
fn roomctl_verifies_the_certificate() -> Result<(), HarnessError> {
    let roomd = Roomd::start_claimed("")?;
    let token = roomd.token_for("user")?;
    let url = roomd.base_url();
    // Without --cacert only public roots are trusted, so the self-signed device is refused.
    let untrusted = run_roomctl(
        &[("ROOMCTL_URL", &url), ("ROOMCTL_TOKEN", &token)],
        &["status"],
    )?;
    assert_eq!(
        untrusted.code,
        Some(1),
        "roomctl trusted an unknown certificate: {untrusted:?}"
    );
    assert!(
        !untrusted.stderr.contains(&token),
        "roomctl printed the token"
    );
    // Options work as well as the environment.
    let cert = roomd.cert_path().display().to_string();
    let trusted = run_roomctl(
        &[("ROOMCTL_TOKEN", &token)],
        &["--url", &url, "--cacert", &cert, "status", "audio.volume"],
    )?;
    assert_eq!(trusted.code, Some(0), "with --cacert: {trusted:?}");
    // Plain HTTP is refused by the client itself.
    let plain = run_roomctl(
        &[("ROOMCTL_TOKEN", &token)],
        &[
            "--url",
            &url.replace("https://", "http://"),
            "--cacert",
            &cert,
            "status",
        ],
    )?;
    assert_ne!(plain.code, Some(0), "roomctl spoke plain HTTP: {plain:?}");
    Ok(())
}
