//! The fleet channel at scale: 1,000 simulated rooms, each running roomd-fleet's real client
//! (`roomd-fleet-sim`: TLS with its own client certificate, MQTT 5 session, last will, the
//! jittered reconnect backoff, re-announcing on every CONNACK), against one Mosquitto on
//! loopback with the ACL of docs/fleet.md. The broker is killed and started again; every room
//! must be back within a stated bound, spread out rather than in one burst.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use roomd_tests::mosquitto::{FLEET_CA_CN, FleetCa, Mosquitto};
use roomd_tests::{HarnessError, roomd_bin};
use serde_json::Value;

const ROOMS: usize = 1000;
/// Reconnect backoff of the simulated rooms: the product's default minimum, a shorter maximum
/// so that the test's bound stays short.
const BACKOFF_MIN_MS: u64 = 1000;
const BACKOFF_MAX_MS: u64 = 8000;
/// Every room is back within this long after it lost the broker (the broker is down for about
/// 0.1 s; the worst case is a few backoff steps plus a thousand TLS handshakes on two cores).
const ALL_BACK_WITHIN_MS: u64 = 20_000;

/// The simulator ends with the test, also when an assertion fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sim_bin() -> Result<PathBuf, HarnessError> {
    if let Some(path) = std::env::var_os("ROOMD_FLEET_SIM_BIN") {
        return Ok(PathBuf::from(path));
    }
    Ok(roomd_bin()?.with_file_name("roomd-fleet-sim"))
}

#[test]
fn a_thousand_rooms_come_back_after_a_broker_restart_without_a_storm() -> Result<(), HarnessError> {
    let ca = FleetCa::new()?;
    let mut broker = Mosquitto::start(&ca, "")?;
    let admin = broker.client(&ca, "fleet-admin")?;
    let key = broker.dir().join("client-ca.key");
    std::fs::write(&key, ca.key_pem()).expect("write the CA key");
    let ca_cert = broker.dir().join("client-ca.pem");
    std::fs::write(&ca_cert, ca.cert_pem()).expect("write the CA certificate");
    let sim = sim_bin()?;
    let mut child = KillOnDrop(
        Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 16384 && exec \"$0\" \"$@\"")
            .arg(&sim)
            .arg("127.0.0.1")
            .arg(broker.port().to_string())
            .arg(broker.ca_file())
            .arg(&ca_cert)
            .arg(&key)
            .arg(FLEET_CA_CN)
            .arg(ROOMS.to_string())
            .arg(BACKOFF_MIN_MS.to_string())
            .arg(BACKOFF_MAX_MS.to_string())
            .arg("120")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", sim.display())),
    );
    let mut lines = BufReader::new(child.0.stdout.take().expect("piped")).lines();
    let ready = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(
        ready.starts_with("ready "),
        "the rooms did not all connect: {ready:?}; {}",
        broker.log()
    );
    let ready_ms: u64 = ready[6..].parse().unwrap_or_default();
    println!("{ROOMS} rooms connected {ready_ms} ms after start");

    // The broker sees every room's retained presence.
    let online = admin.receive("roomd/+/presence", ROOMS, Duration::from_secs(20), "%p")?;
    assert_eq!(online.iter().filter(|p| *p == "online").count(), ROOMS);

    // Killed (no persistence: sessions and retained messages are gone) and started again.
    let restarted = Instant::now();
    broker.restart()?;
    println!("broker back after {} ms", restarted.elapsed().as_millis());
    let summary = lines.next().and_then(Result::ok).unwrap_or_default();
    let summary: Value =
        serde_json::from_str(&summary).unwrap_or_else(|e| panic!("{summary:?}: {e}"));
    println!("{summary}");
    assert_eq!(summary["lost"], ROOMS, "{summary}");
    assert_eq!(summary["back"], ROOMS, "every room is back: {summary}");
    let max = summary["back_max_ms"].as_u64().unwrap_or(u64::MAX);
    assert!(
        max <= ALL_BACK_WITHIN_MS,
        "all back within {ALL_BACK_WITHIN_MS} ms: {summary}"
    );
    // No storm: the returns are spread over the backoff window, not in one 100 ms burst.
    let peak = summary["peak_per_100ms"].as_u64().unwrap_or(u64::MAX);
    assert!(
        peak <= (ROOMS as u64) / 4,
        "at most a quarter in any 100 ms: {summary}"
    );
    let spread =
        summary["back_p90_ms"].as_u64().unwrap_or(0) - summary["back_p10_ms"].as_u64().unwrap_or(0);
    assert!(
        spread >= 300,
        "p10..p90 spread over at least 300 ms: {summary}"
    );
    // And the broker has every room's presence again (it lost the retained ones).
    let online = admin.receive("roomd/+/presence", ROOMS, Duration::from_secs(20), "%p")?;
    assert_eq!(online.iter().filter(|p| *p == "online").count(), ROOMS);
    // Closing its standard input ends the simulator.
    drop(child.0.stdin.take());
    let _ = child.0.wait();
    Ok(())
}
