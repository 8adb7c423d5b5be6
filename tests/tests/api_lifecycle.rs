//! Process life cycle: readiness and watchdog over the systemd notify protocol, graceful
//! SIGTERM, and refusal of bad configuration files with messages that point at the problem.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use roomd_tests::{HarnessError, Roomd, roomd_bin};

fn run_roomd(args: &[&std::ffi::OsStr]) -> Output {
    let binary = roomd_bin().unwrap_or_else(|e| panic!("{e}"));
    Command::new(&binary)
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", binary.display()))
}

/// A config file in `dir` whose line 6 has `default_volume = <value>`.
fn config_with_volume(dir: &Path, value: &str) -> std::path::PathBuf {
    let path = dir.join("bad.toml");
    let state = dir.join("state");
    let text = format!(
        "[system]\nstate_dir = \"{}\"\nhardware_profile = \"simulated\"\n\n[audio]\ndefault_volume = {value}\n",
        state.display()
    );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    path
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temp dir: {e}"))
}

#[test]
fn ready_is_notified_and_sigterm_stops_promptly() -> Result<(), HarnessError> {
    let mut roomd = Roomd::start("")?;
    assert!(
        roomd
            .notify_messages()
            .iter()
            .any(|m| m.lines().any(|l| l == "READY=1")),
        "no READY=1 among {:?}",
        roomd.notify_messages()
    );
    // READY=1 promises a listening API.
    roomd
        .get("/api/v1/health")
        .send()?
        .expect_status(200, "health right after READY=1")?;
    let port = roomd.port();
    let asked = Instant::now();
    let status = roomd.stop_sigterm()?;
    let took = asked.elapsed();
    assert_eq!(
        status.code(),
        Some(0),
        "exit after SIGTERM: {status}\n{}",
        roomd.stderr_text()
    );
    assert!(took < Duration::from_secs(3), "SIGTERM took {took:?}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "port {port} still accepts connections after exit"
    );
    assert!(
        !roomd.stderr_text().contains("panicked"),
        "{}",
        roomd.stderr_text()
    );
    Ok(())
}

#[test]
fn watchdog_pings_arrive_when_systemd_asks_for_them() -> Result<(), HarnessError> {
    let mut roomd = Roomd::builder().env("WATCHDOG_USEC", "2000000").start()?;
    // systemd expects a ping at least every WATCHDOG_USEC; two in a row prove they repeat.
    roomd.wait_for_notify("WATCHDOG=1", Duration::from_millis(2500))?;
    roomd.wait_for_notify("WATCHDOG=1", Duration::from_millis(2500))?;
    Ok(())
}

#[test]
fn no_watchdog_pings_without_watchdog_usec() -> Result<(), HarnessError> {
    let mut roomd = Roomd::start("")?;
    let waited = roomd.wait_for_notify("WATCHDOG=1", Duration::from_millis(1500));
    assert!(
        waited.is_err(),
        "WATCHDOG=1 sent although systemd did not ask for it"
    );
    Ok(())
}

#[test]
fn check_config_accepts_a_good_file() {
    let dir = temp_dir();
    let path = config_with_volume(dir.path(), "40");
    let output = run_roomd(&["check-config".as_ref(), path.as_os_str()]);
    assert!(
        output.status.success(),
        "check-config refuses a good file: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn check_config_points_at_the_bad_key() {
    let dir = temp_dir();
    for (value, what) in [("\"loud\"", "wrong type"), ("150", "out of range")] {
        let path = config_with_volume(dir.path(), value);
        let output = run_roomd(&["check-config".as_ref(), path.as_os_str()]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let all = format!("{stderr}{}", String::from_utf8_lossy(&output.stdout));
        assert!(
            !output.status.success(),
            "check-config accepts a {what} value"
        );
        let position = format!("{}:6:", path.display());
        assert!(
            all.contains(&position),
            "{what}: no {position}<column> in: {all}"
        );
        let after = &all[all.find(&position).unwrap_or(0) + position.len()..];
        assert!(
            after.starts_with(|c: char| c.is_ascii_digit()),
            "{what}: no column after {position} in: {all}"
        );
        assert!(
            all.contains("audio.default_volume"),
            "{what}: the key is not named: {all}"
        );
        assert!(
            !all.contains("panicked"),
            "{what}: check-config panicked: {all}"
        );
    }
    let path = dir.path().join("syntax.toml");
    std::fs::write(&path, "[system\nstate_dir = 1\n").unwrap_or_else(|e| panic!("{e}"));
    let output = run_roomd(&["check-config".as_ref(), path.as_os_str()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "check-config accepts broken TOML");
    assert!(
        stderr.contains(&format!("{}:1:", path.display())),
        "no position of the syntax error: {stderr}"
    );
    let missing = dir.path().join("missing.toml");
    let output = run_roomd(&["check-config".as_ref(), missing.as_os_str()]);
    assert!(
        !output.status.success(),
        "check-config accepts a missing file"
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&missing.display().to_string()),
        "the missing file is not named"
    );
}

#[test]
fn roomd_refuses_to_start_with_a_bad_config() {
    let dir = temp_dir();
    let path = config_with_volume(dir.path(), "150");
    let started = Instant::now();
    let output = run_roomd(&["--config".as_ref(), path.as_os_str()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "roomd started with a bad config");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refusing took {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&format!("{}:6:", path.display())),
        "no file:line in: {stderr}"
    );
    assert!(
        stderr.contains("audio.default_volume"),
        "the key is not named: {stderr}"
    );
    assert!(
        !stderr.contains("panicked"),
        "roomd panicked on a bad config: {stderr}"
    );
    assert!(
        !dir.path().join("state").join("claim-code").exists(),
        "roomd created state although its config is bad"
    );
}
