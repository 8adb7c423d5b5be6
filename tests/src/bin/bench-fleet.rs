//! `make bench` (fleet part): the fleet channel of issue 17 against one real Mosquitto with TLS,
//! client certificates and the ACL of docs/fleet.md.
//!
//! - Command round trip (fleet manager → broker → room → reply on the response topic), p50 and
//!   p99, to one real roomd (device key in swtpm) while it is the only room, and again while
//!   999 simulated rooms (`roomd-fleet-sim`: roomd-fleet's real client code) are connected to
//!   the same broker; the second is printed as a ratio of the first. Measured with an
//!   in-process MQTT 5 client, and once more through `roomctl fleet command` (a process per
//!   command: start, TLS, discovery), as an operator sees it.
//! - Broker restart with 1,000 rooms: when each room is back, and the largest burst.
//! - Idle cost of the fleet channel: CPU and memory of a room with `[fleet]` against the same
//!   room without it, measured side by side in the same run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{Client, Event, MqttOptions};
use rumqttc::{TlsConfiguration, Transport};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

use roomd_tests::mosquitto::{FLEET_CA_CN, FleetCa, Mosquitto, MqttClient};
use roomd_tests::{Roomd, Swtpm, cpu, roomctl_bin, roomd_bin};

const ROOM: &str = "bench-room";
/// Round trips measured per case.
const ROUND_TRIPS: usize = 300;
/// `roomctl fleet command` runs per case (each is a process with its own TLS connection).
const ROOMCTL_RUNS: usize = 10;
/// Simulated rooms beside the real one.
const SIMULATED: usize = 999;
/// How long the idle cost is measured.
const IDLE: Duration = Duration::from_secs(60);

fn main() -> anyhow::Result<()> {
    println!("roomd fleet benchmark");
    println!("binary: {}", roomd_bin()?.display());
    println!(
        "broker: mosquitto on loopback, TLS, client certificates, the ACL of docs/fleet.md; \
         room: device key in swtpm, fleet defaults but commands_per_minute = 6000"
    );
    println!();

    let ca = FleetCa::new()?;
    let mut broker = Mosquitto::start(&ca, "")?;
    let admin = broker.client(&ca, "fleet-admin")?;
    let tpm = Swtpm::start()?;
    let fleet_config = format!(
        "{}\n[system]\nname = \"{ROOM}\"\n\n[fleet]\nbroker = \"{}\"\nca_file = \"{}\"\n\
         role = \"integrator\"\ncommands_per_minute = 6000\n",
        tpm.identity_toml(),
        broker.url(),
        broker.ca_file().display()
    );
    let room = Roomd::start_claimed(&fleet_config)?;
    let plain_tpm = Swtpm::start()?;
    let plain = Roomd::start_claimed(&format!(
        "{}\n[system]\nname = \"plain-room\"\n",
        plain_tpm.identity_toml()
    ))?;
    let device_cert = std::fs::read_to_string(room.cert_path()).context("device certificate")?;
    broker.trust(&ca, &device_cert)?;
    broker.restart()?;

    let manager = Manager::connect(&admin, broker.port())?;
    manager.wait_online(ROOM, Duration::from_secs(60))?;

    // Idle first, while nothing else runs: the fleet channel's own cost.
    idle_cost(&room, &plain)?;
    drop(plain);

    println!();
    println!("| rooms on the broker | client | round trips | p50 (ms) | p99 (ms) | max (ms) |");
    println!("|---:|---|---:|---:|---:|---:|");
    let one = manager.round_trips(ROOM, ROUND_TRIPS)?;
    print_row(1, "in-process MQTT 5", &one);
    let roomctl_one = roomctl_runs(&broker, &admin, ROOMCTL_RUNS)?;
    print_row(1, "roomctl fleet command", &roomctl_one);

    let mut sim = Simulator::start(&broker, &ca, SIMULATED)?;
    let many = manager.round_trips(ROOM, ROUND_TRIPS)?;
    print_row(SIMULATED + 1, "in-process MQTT 5", &many);
    let roomctl_many = roomctl_runs(&broker, &admin, ROOMCTL_RUNS)?;
    print_row(SIMULATED + 1, "roomctl fleet command", &roomctl_many);
    println!();
    println!(
        "round trip with {} rooms / with 1 room (same run): p50 {:.2}, p99 {:.2}",
        SIMULATED + 1,
        percentile(&many, 50) / percentile(&one, 50),
        percentile(&many, 99) / percentile(&one, 99),
    );
    drop(manager);

    // Broker restart with every room connected.
    println!();
    let restarted = Instant::now();
    broker.restart()?;
    let broker_back_ms = restarted.elapsed().as_millis();
    // The broker lost its retained messages (no persistence): `online` comes only when the
    // room announces itself again.
    let manager = Manager::connect(&admin, broker.port())?;
    manager.wait_online(ROOM, Duration::from_secs(120))?;
    let real_back_ms = restarted.elapsed().as_millis();
    let summary = sim.summary()?;
    println!(
        "broker restart with {} rooms (broker down for {broker_back_ms} ms):",
        SIMULATED + 1
    );
    println!(
        "- simulated rooms back after the loss: p10 {} ms, p50 {} ms, p90 {} ms, all {} ms; \
         {} of {} back; at most {} in any 100 ms",
        summary["back_p10_ms"],
        summary["back_p50_ms"],
        summary["back_p90_ms"],
        summary["back_max_ms"],
        summary["back"],
        summary["rooms"],
        summary["peak_per_100ms"],
    );
    println!("- the real room announced itself online {real_back_ms} ms after the restart began");
    drop(sim);
    drop(room);
    Ok(())
}

fn print_row(rooms: usize, client: &str, samples: &[f64]) {
    println!(
        "| {rooms} | {client} | {} | {:.2} | {:.2} | {:.2} |",
        samples.len(),
        percentile(samples, 50),
        percentile(samples, 99),
        samples.iter().copied().fold(0.0, f64::max),
    );
}

/// The `p`th percentile of `samples` (milliseconds), nearest rank.
fn percentile(samples: &[f64], p: usize) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (sorted.len() * p).div_ceil(100).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// CPU seconds per minute and resident memory of a room with the fleet channel against one
/// without, over the same [`IDLE`] window.
fn idle_cost(fleet: &Roomd, plain: &Roomd) -> anyhow::Result<()> {
    let pids = [
        fleet
            .pid()
            .ok_or_else(|| anyhow!("the fleet room is not running"))?,
        plain
            .pid()
            .ok_or_else(|| anyhow!("the plain room is not running"))?,
    ];
    // Both have settled after start.
    std::thread::sleep(Duration::from_secs(5));
    let before = [
        cpu::process_seconds(pids[0])?,
        cpu::process_seconds(pids[1])?,
    ];
    std::thread::sleep(IDLE);
    let after = [
        cpu::process_seconds(pids[0])?,
        cpu::process_seconds(pids[1])?,
    ];
    let per_minute = |i: usize| (after[i] - before[i]) * 60.0 / IDLE.as_secs_f64();
    let rss = [rss_kib(pids[0])?, rss_kib(pids[1])?];
    println!(
        "idle, {} s, the same room with and without [fleet] (connected, default status interval):",
        IDLE.as_secs()
    );
    println!("| room | CPU s per minute | resident memory (MiB) |");
    println!("|---|---:|---:|");
    println!(
        "| with [fleet] | {:.3} | {:.1} |",
        per_minute(0),
        rss[0] as f64 / 1024.0
    );
    println!(
        "| without | {:.3} | {:.1} |",
        per_minute(1),
        rss[1] as f64 / 1024.0
    );
    println!(
        "fleet channel at idle: {:+.3} CPU s per minute, {:+.1} MiB (ratio with/without: CPU {:.2}, memory {:.2})",
        per_minute(0) - per_minute(1),
        (rss[0] as f64 - rss[1] as f64) / 1024.0,
        per_minute(0) / per_minute(1).max(f64::EPSILON),
        rss[0] as f64 / rss[1].max(1) as f64,
    );
    Ok(())
}

/// VmRSS of a process, KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS for process {pid}"))
}

/// Milliseconds of `runs` runs of `roomctl fleet command audio.volume.set … --rooms ROOM`.
fn roomctl_runs(broker: &Mosquitto, admin: &MqttClient, runs: usize) -> anyhow::Result<Vec<f64>> {
    let roomctl = roomctl_bin()?;
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        let level = 30 + (i % 2);
        let start = Instant::now();
        let out = Command::new("timeout")
            .arg("60")
            .arg(&roomctl)
            .arg("fleet")
            .args(["--broker", &broker.url()])
            .arg("--ca")
            .arg(&admin.ca)
            .arg("--cert")
            .arg(&admin.cert)
            .arg("--key")
            .arg(&admin.key)
            .args(["command", "audio.volume.set"])
            .arg(format!("{{\"level\": {level}}}"))
            .args(["--rooms", ROOM])
            .env_remove("ROOMCTL_TOKEN")
            .output()
            .context("run roomctl")?;
        let elapsed = start.elapsed();
        if !out.status.success() {
            bail!(
                "roomctl fleet command failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        samples.push(elapsed.as_secs_f64() * 1000.0);
    }
    Ok(samples)
}

/// The fleet manager's MQTT 5 connection; events come from a thread of their own.
struct Manager {
    client: Client,
    events: mpsc::Receiver<Event>,
    replies: String,
}

impl Manager {
    fn connect(admin: &MqttClient, port: u16) -> anyhow::Result<Manager> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&read(&admin.ca)?) {
            roots.add(cert?)?;
        }
        let chain =
            CertificateDer::pem_slice_iter(&read(&admin.cert)?).collect::<Result<Vec<_>, _>>()?;
        let key = PrivateKeyDer::from_pem_slice(&read(&admin.key)?)?;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
        let mut options = MqttOptions::new("fleet-admin-bench", "127.0.0.1", port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                Arc::new(tls),
            )));
        let (client, mut connection) = Client::new(options, 64);
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for event in connection.iter() {
                match event {
                    Ok(event) => {
                        if tx.send(event).is_err() {
                            return;
                        }
                    }
                    // The connection ends with the manager; errors show as missing replies.
                    Err(_) => return,
                }
            }
        });
        let manager = Manager {
            client,
            events,
            replies: format!("roomd/{ROOM}/replies/fleet-admin"),
        };
        manager.wait_for(Duration::from_secs(10), "the CONNACK", |p| {
            matches!(p, Packet::ConnAck(_)).then_some(())
        })?;
        manager
            .client
            .subscribe(&manager.replies, QoS::AtLeastOnce)?;
        manager.wait_for(Duration::from_secs(10), "the SUBACK", |p| {
            matches!(p, Packet::SubAck(_)).then_some(())
        })?;
        Ok(manager)
    }

    /// The first incoming packet `pick` accepts, within `timeout`.
    fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut pick: impl FnMut(&Packet) -> Option<T>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::Incoming(packet)) => {
                    if let Some(found) = pick(&packet) {
                        return Ok(found);
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(_) => bail!("no {what} within {timeout:?}"),
            }
        }
    }

    /// Waits for the room's presence `online` (retained or announced).
    fn wait_online(&self, room: &str, timeout: Duration) -> anyhow::Result<()> {
        let topic = format!("roomd/{room}/presence");
        self.client.subscribe(&topic, QoS::AtLeastOnce)?;
        self.wait_for(timeout, &format!("{room} online"), |p| match p {
            Packet::Publish(publish)
                if publish.topic.as_ref() == topic.as_bytes()
                    && publish.payload.as_ref() == b"online" =>
            {
                Some(())
            }
            _ => None,
        })?;
        self.client.unsubscribe(&topic)?;
        Ok(())
    }

    /// `count` commands one after the other, each waiting for its reply; milliseconds each.
    fn round_trips(&self, room: &str, count: usize) -> anyhow::Result<Vec<f64>> {
        let commands = format!("roomd/{room}/commands");
        let mut samples = Vec::with_capacity(count);
        for i in 0..count {
            let correlation = format!("rt-{i}");
            let properties = PublishProperties {
                response_topic: Some(self.replies.clone()),
                correlation_data: Some(correlation.clone().into_bytes().into()),
                ..PublishProperties::default()
            };
            let request = json!({"command": "audio.volume.set", "args": {"level": 20 + i % 2}});
            let start = Instant::now();
            self.client.publish_with_properties(
                commands.as_str(),
                QoS::AtLeastOnce,
                false,
                request.to_string(),
                properties,
            )?;
            let reply = self.wait_for(Duration::from_secs(10), "reply", |p| match p {
                Packet::Publish(publish)
                    if publish
                        .properties
                        .as_ref()
                        .and_then(|p| p.correlation_data.as_ref())
                        == Some(&correlation.clone().into_bytes().into()) =>
                {
                    serde_json::from_slice::<Value>(&publish.payload).ok()
                }
                _ => None,
            })?;
            samples.push(start.elapsed().as_secs_f64() * 1000.0);
            if reply != json!({"ok": true}) {
                bail!("the room refused round trip {i}: {reply}");
            }
        }
        Ok(samples)
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// `roomd-fleet-sim` with `rooms` rooms, connected; ended when dropped.
struct Simulator {
    child: Child,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
    _ca_files: tempfile::TempDir,
}

impl Simulator {
    fn start(broker: &Mosquitto, ca: &FleetCa, rooms: usize) -> anyhow::Result<Simulator> {
        let files = tempfile::tempdir()?;
        let key = files.path().join("client-ca.key");
        std::fs::write(&key, ca.key_pem())?;
        let cert = files.path().join("client-ca.pem");
        std::fs::write(&cert, ca.cert_pem())?;
        let sim: PathBuf = match std::env::var_os("ROOMD_FLEET_SIM_BIN") {
            Some(path) => path.into(),
            None => roomd_bin()?.with_file_name("roomd-fleet-sim"),
        };
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -n 16384 && exec \"$0\" \"$@\"")
            .arg(&sim)
            .arg("127.0.0.1")
            .arg(broker.port().to_string())
            .arg(broker.ca_file())
            .arg(&cert)
            .arg(&key)
            .arg(FLEET_CA_CN)
            .arg(rooms.to_string())
            // The product's default backoff.
            .arg("1000")
            .arg("60000")
            .arg("600")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", sim.display()))?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines.next().transpose()?.unwrap_or_default();
        let Some(ms) = ready.strip_prefix("ready ") else {
            bail!("the simulated rooms did not all connect: {ready:?}");
        };
        println!("{rooms} simulated rooms connected in {ms} ms");
        Ok(Simulator {
            child,
            lines,
            _ca_files: files,
        })
    }

    /// The simulator's summary of the rooms' loss and return (after a broker restart).
    fn summary(&mut self) -> anyhow::Result<Value> {
        let line = self.lines.next().transpose()?.unwrap_or_default();
        serde_json::from_str(&line).with_context(|| format!("simulator summary {line:?}"))
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
