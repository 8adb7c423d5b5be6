//! `make bench`, SIP part (issue 14): roomd against two baresip 1.0 (Debian) in one run, all
//! through a Kamailio registrar on the test network (as tests/tests/sip_calls.rs), media
//! SDES-SRTP, H.264 at 1280x720 and 30 fps both ways (roomd `simulated-720p`, baresip
//! `fakevideo` at 1280x720).
//!
//! 1. Call setup time: from the call's start (roomd's `meeting.join`; baresip's `dial`) to the
//!    first far-end frame the caller decoded (roomd: its `meeting.first_remote_frame` event on
//!    the events WebSocket, and its own `since_join_ms`; baresip: its log says `video: receiving
//!    with resolution`, read every 10 ms). Median of CALLS calls each, roomd calling baresip
//!    "alice" and, as the reference, baresip "bob" calling the same alice. Printed as
//!    roomd / baresip.
//! 2. CPU per minute of a call: roomd's process over MEASURE of its call with alice, and bob's
//!    over MEASURE of his call with alice, each after WARM_UP. Printed as roomd / baresip. The
//!    calls are checked to be alike: each caller decodes alice's 1280x720 picture, alice
//!    decodes each caller's at 1280x720.
//!
//! For information (no target in the issue): exits 1 only when a part cannot be measured.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use roomd_tests::sip::{Baresip, Kamailio, MediaEncryption, PeerAudio, PeerVideo};
use roomd_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, Roomd, TestCa, TestNetwork, cpu, meeting};
use serde_json::json;

const CALLS: usize = 5;
const WARM_UP: Duration = Duration::from_secs(10);
const MEASURE: Duration = Duration::from_secs(30);
const ROOM_USER: &str = "room412";
const ROOM_PASSWORD: &str = "room-secret-4-12";
const PEERS: [(&str, &str); 2] = [("alice", "alice-secret"), ("bob", "bob-secret")];
const DECODED: &str = "video: receiving with resolution";

fn main() -> anyhow::Result<()> {
    println!("roomd SIP benchmark (Kamailio, baresip, SDES-SRTP, H.264 720p30, test network)");
    println!("load average before: {}", cpu::load_average());
    let net = TestNetwork::create().context("creating the test network (run as root)")?;
    let ca = TestCa::new("roomd SIP bench CA")?;
    let users = [(ROOM_USER, ROOM_PASSWORD), PEERS[0], PEERS[1]];
    let kamailio = Kamailio::start(&net, &ca, &users).context("starting Kamailio")?;
    let peer = |(user, password): (&str, &str)| {
        Baresip::start_with_video(
            &net,
            &kamailio,
            user,
            password,
            MediaEncryption::SrtpMandatory,
            PeerAudio::OpusAndG711,
            PeerVideo::H264Hd,
        )
        .with_context(|| format!("starting baresip {user}"))
    };
    let (alice, bob) = (peer(PEERS[0])?, peer(PEERS[1])?);
    let scratch = tempfile::tempdir()?;
    let ca_path = scratch.path().join("sip-ca.pem");
    std::fs::write(&ca_path, ca.cert_pem())?;
    let mut roomd = Roomd::builder()
        .config(&format!(
            "[system]\nname = \"Board room\"\nhardware_profile = \"simulated-720p\"\n\
             [sip]\nregistrar = \"{}\"\nuser = \"{ROOM_USER}\"\npassword = \"{ROOM_PASSWORD}\"\n\
             ca_file = \"{}\"\nregister_interval_s = 60\n",
            kamailio.sips_uri(),
            ca_path.display()
        ))
        .start()
        .context("starting roomd (simulated-720p)")?;
    roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    wait(Duration::from_secs(20), "roomd registered", || {
        let status: serde_json::Value = roomd
            .get("/api/v1/status")
            .bearer(&roomd.admin_token()?)
            .send()?
            .json()?;
        Ok(status["sip"]["registration"]["state"] == "registered")
    })?;
    let alice_uri = alice.uri(&kamailio);
    let alice_aor = format!("sip:{}@{}", PEERS[0].0, kamailio.address());

    println!();
    println!("== call setup time (call start to the first far-end frame decoded)");
    let mut room_ms = Vec::new();
    let mut room_own_ms = Vec::new();
    let token = roomd.admin_token()?;
    let mut events = roomd.websocket_with_token(&token)?;
    events.send_json(&json!({"type": "subscribe", "status": [], "events": ["*"]}))?;
    for _ in 0..CALLS {
        let started = Instant::now();
        roomd.command(
            "meeting.join",
            &json!({"target": {"kind": "sip", "uri": alice_uri}}),
        )?;
        let (event, _) = events
            .wait_for("meeting.first_remote_frame", Duration::from_secs(30), |m| {
                m["type"] == "event" && m["name"] == "meeting.first_remote_frame"
            })
            .with_context(|| format!("alice's log ends:\n{}", tail(&alice.log_text())))?;
        room_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        room_own_ms.push(event["data"]["since_join_ms"].as_f64().unwrap_or(f64::NAN));
        roomd.command("meeting.leave", &json!({}))?;
        wait(Duration::from_secs(20), "roomd idle", || {
            Ok(meeting::status(&roomd)?["state"] == "idle")
        })?;
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut bob_ms = Vec::new();
    for _ in 0..CALLS {
        let decoded_before = bob.log_text().matches(DECODED).count();
        let started = Instant::now();
        bob.command(&net, "dial", &alice_aor)?;
        wait(Duration::from_secs(30), "bob decoding alice", || {
            Ok(bob.log_text().matches(DECODED).count() > decoded_before)
        })?;
        bob_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        hang_up(&net, &bob)?;
    }
    let (room_median, bob_median) = (median(&mut room_ms), median(&mut bob_ms));
    println!("roomd -> alice: {room_ms:.0?} ms, median {room_median:.0} ms");
    println!(
        "  (roomd's own since_join_ms: {room_own_ms:.0?}, median {:.0} ms)",
        median(&mut room_own_ms)
    );
    println!("bob   -> alice: {bob_ms:.0?} ms, median {bob_median:.0} ms");
    println!(
        "call setup, roomd / baresip: {:.2}",
        room_median / bob_median
    );

    println!();
    println!("== CPU per minute of a 720p30 call");
    let roomd_pid = roomd.pid().context("roomd has no pid")?;
    let alice_offset = alice.log_len();
    roomd.command(
        "meeting.join",
        &json!({"target": {"kind": "sip", "uri": alice_uri}}),
    )?;
    wait_for_far_end_video(&roomd, &alice)?;
    std::thread::sleep(WARM_UP);
    let room_cpu = cpu_per_minute(roomd_pid)?;
    let status = meeting::status(&roomd)?;
    let received = status["streams"]
        .as_array()
        .and_then(|s| {
            s.iter()
                .find(|s| s["direction"] == "receive" && s["kind"] == "video")
        })
        .cloned()
        .unwrap_or_default();
    println!("roomd's view of alice's video: {received}");
    check_alike(
        &alice.log_text()[alice_offset.min(alice.log_len())..],
        "alice, from roomd",
    )?;
    roomd.command("meeting.leave", &json!({}))?;
    wait(Duration::from_secs(20), "roomd idle", || {
        Ok(meeting::status(&roomd)?["state"] == "idle")
    })?;

    let bob_pid = bob.pid().context("bob has no pid")?;
    let (alice_offset, bob_offset) = (alice.log_len(), bob.log_len());
    let decoded_before = bob.log_text().matches(DECODED).count();
    bob.command(&net, "dial", &alice_aor)?;
    wait(Duration::from_secs(30), "bob decoding alice", || {
        Ok(bob.log_text().matches(DECODED).count() > decoded_before)
    })?;
    std::thread::sleep(WARM_UP);
    let bob_cpu = cpu_per_minute(bob_pid)?;
    check_alike(
        &bob.log_text()[bob_offset.min(bob.log_len())..],
        "bob, from alice",
    )?;
    check_alike(
        &alice.log_text()[alice_offset.min(alice.log_len())..],
        "alice, from bob",
    )?;
    hang_up(&net, &bob)?;
    println!("roomd: {room_cpu:.1} CPU-s/min; baresip (bob): {bob_cpu:.1} CPU-s/min");
    println!("CPU per minute, roomd / baresip: {:.2}", room_cpu / bob_cpu);
    println!();
    println!("load average after: {}", cpu::load_average());
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Waits until roomd decodes a frame of the far end's video, saying why not.
fn wait_for_far_end_video(roomd: &Roomd, far_end: &Baresip) -> anyhow::Result<()> {
    wait(
        Duration::from_secs(30),
        "roomd decoding the far end",
        || {
            let status = meeting::status(roomd)?;
            Ok(meeting::stream_frames(&status, "receive", "video")
                .iter()
                .sum::<u64>()
                > 0)
        },
    )
    .with_context(|| {
        format!(
            "roomd's meeting: {}\nthe far end's log ends:\n{}",
            meeting::status(roomd).unwrap_or_default(),
            tail(&far_end.log_text())
        )
    })
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().rev().take(30).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// CPU seconds of `pid` over [`MEASURE`], per minute.
fn cpu_per_minute(pid: u32) -> anyhow::Result<f64> {
    let before = cpu::process_seconds(pid)?;
    std::thread::sleep(MEASURE);
    let after = cpu::process_seconds(pid)?;
    Ok((after - before) * 60.0 / MEASURE.as_secs_f64())
}

/// The call decoded 1280x720 at this end (its log since the call started).
fn check_alike(log: &str, what: &str) -> anyhow::Result<()> {
    if !log.contains(&format!("{DECODED} 1280 x 720")) {
        bail!("{what}: no 1280x720 picture decoded; the calls are not alike:\n{log}");
    }
    Ok(())
}

fn hang_up(net: &TestNetwork, baresip: &Baresip) -> anyhow::Result<()> {
    let closed = baresip.log_text().matches("terminate call").count();
    baresip.command(net, "hangup", "")?;
    wait(Duration::from_secs(20), "the baresip call closed", || {
        Ok(baresip.log_text().matches("terminate call").count() > closed)
    })
    .with_context(|| {
        let log = baresip.log_text();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        format!(
            "baresip's log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        )
    })?;
    std::thread::sleep(Duration::from_secs(1));
    Ok(())
}

fn wait(
    limit: Duration,
    what: &str,
    mut done: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if done()? {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    bail!("timed out after {limit:?} waiting for {what}")
}
