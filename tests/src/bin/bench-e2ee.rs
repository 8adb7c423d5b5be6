//! `make bench`, end-to-end encryption part (issue 16): what SFrame costs in a Janus meeting of
//! roomd and Chromium participants (the test page with the guest pages' `webui/src/e2ee`), each
//! figure against the same meeting without end-to-end encryption measured in the same run.
//!
//! 1. CPU of a three-party meeting at 720p30: roomd (`simulated-720p`, its TPM in swtpm) and two
//!    Chromium participants (fake camera 1280x720 at 30 fps), once without and once with E2EE;
//!    roomd's CPU-s/min and one Chromium's (all processes under its driver) over the same
//!    window, and the ratios with / without. Both runs send VP8 (`video.codec = "vp8"`: what
//!    browsers receive encrypted, docs/security.md), so only the encryption differs. What each
//!    side received (frame rate and size) is printed for both runs: on a small machine both
//!    adapt, and the ratio is only as fair as the quality was equal.
//! 2. Added glass-to-glass latency: roomd's `simulated-timecode` camera stamps the wall clock
//!    into each frame, a Chromium reads it from each frame it shows (as bench-meeting does);
//!    median without and with E2EE, and the difference.
//! 3. Time to rekey after a leave: roomd and two Chromiums, all end-to-end encrypted; Bob's
//!    person leaves (the driver's `leave`: Janus's `leave`, as hanging up). From then to roomd's new sender key (`key_epoch` 1 in its status), and to
//!    Alice holding it (two of roomd's keys in her agreement's status); then she must go on
//!    opening roomd's frames.
//!
//! `bench-e2ee cpu` (or `latency`, `rekey`) runs only the parts named. Exits 1 if a part could
//! not be measured; there are no targets (the issue asks for the figures).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use roomd_tests::{
    ADMIN_PASSWORD, ADMIN_USERNAME, BrowserPeer, Janus, Roomd, Swtpm, TestNetwork, browser, cpu,
    e2ee, meeting,
};
use serde_json::{Value, json};

const ROOM: u64 = 7302;
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
const MEDIA_TIMEOUT: Duration = Duration::from_secs(60);
const WARM_UP: Duration = Duration::from_secs(10);
const MEASURE: Duration = Duration::from_secs(30);
const LATENCY_FRAMES: usize = 300;
const LATENCY_SETTLE: Duration = Duration::from_secs(3);
const FRAMES: u64 = 30;
const HD: (u32, u32, u32) = (1280, 720, 30);
const SMALL: (u32, u32, u32) = (640, 360, 30);
/// The Chromium participants' status lines this often in the rekey part.
const REKEY_STATS_MS: u32 = 100;

/// One line of the closing table: metric, value.
type Row = (String, String);

fn main() -> anyhow::Result<()> {
    println!("roomd end-to-end encryption benchmark (Janus VideoRoom, headless Chromium)");
    println!("load average before: {}", cpu::load_average());
    let net = TestNetwork::create().context("creating the test network (run as root)")?;
    let janus = Janus::builder(&net)
        .room(ROOM)
        .start()
        .context("starting Janus")?;
    let bundles = tempfile::tempdir()?;
    e2ee::browser_e2ee_bundles(bundles.path());
    let only: Vec<String> = std::env::args().skip(1).collect();
    let mut rows = Vec::new();
    let mut failed = false;
    for (key, part, run) in [
        (
            "cpu",
            "CPU of a three-party meeting, without and with E2EE",
            three_party_cpu as fn(&Janus, &std::path::Path) -> anyhow::Result<Vec<Row>>,
        ),
        ("latency", "added glass-to-glass latency", added_latency),
        ("rekey", "time to rekey after a leave", rekey_after_leave),
    ] {
        if !only.is_empty() && !only.iter().any(|o| o == key) {
            continue;
        }
        println!();
        println!("== {part}");
        match run(&janus, bundles.path()) {
            Ok(part_rows) => rows.extend(part_rows),
            Err(error) => {
                println!("{part} could not be measured: {error:#}");
                rows.push((part.to_owned(), "error".to_owned()));
                failed = true;
            }
        }
    }
    println!();
    println!("load average after: {}", cpu::load_average());
    println!();
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    for (metric, value) in &rows {
        println!("{metric:width$}  {value:>14}");
    }
    drop(janus);
    drop(net);
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

fn janus_target(janus: &Janus) -> Value {
    json!({
        "kind": "janus",
        "server": janus.https_url(),
        "room": janus.room(),
        "display_name": "Board room",
    })
}

/// A claimed roomd sending VP8 with its device key in `tpm`, end-to-end encrypting or not.
fn roomd_for(janus: &Janus, tpm: &Swtpm, profile: &str, e2ee: bool) -> anyhow::Result<Roomd> {
    let mut roomd = Roomd::builder()
        .config(&format!(
            "{}[system]\nname = \"Board room\"\nhardware_profile = \"{profile}\"\n\
             [video]\ncodec = \"vp8\"\n[meeting]\nca_file = \"{}\"\ne2ee = {e2ee}\n",
            tpm.identity_toml(),
            janus.ca_path().display()
        ))
        .start()
        .with_context(|| format!("starting roomd ({profile})"))?;
    roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    Ok(roomd)
}

/// A Chromium participant with a camera of this size, encrypting with the bundles in
/// `bundles` when given; `extra` more driver options.
fn chromium(
    janus: &Janus,
    name: &str,
    (width, height, fps): (u32, u32, u32),
    bundles: Option<&std::path::Path>,
    extra: &[&str],
) -> anyhow::Result<BrowserPeer> {
    let mut args: Vec<String> = vec![
        "--width".into(),
        width.to_string(),
        "--height".into(),
        height.to_string(),
        "--fps".into(),
        fps.to_string(),
    ];
    if let Some(dir) = bundles {
        args.extend(["--e2ee".into(), dir.display().to_string()]);
    }
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    let peer = BrowserPeer::janus_participant_with(janus, name, &args)?;
    peer.wait_for("published in the room", JOIN_TIMEOUT, |l| {
        l["event"] == "published"
    })?;
    Ok(peer)
}

fn join(roomd: &Roomd, janus: &Janus) -> anyhow::Result<()> {
    roomd.command("meeting.join", &json!({ "target": janus_target(janus) }))?;
    meeting::wait_for(roomd, "meeting connected", JOIN_TIMEOUT, |m| {
        m["state"] == "connected"
    })?;
    Ok(())
}

/// The participants leave the room, so that the next run meets nobody of this one (a driver
/// that is only stopped stays a publisher until Janus's session times out).
fn leave_room(peers: &[&BrowserPeer]) -> anyhow::Result<()> {
    for peer in peers {
        let mark = peer.line_count();
        peer.command(&json!({ "leave": true }))?;
        peer.wait_for_after(mark, "left the room", JOIN_TIMEOUT, |l| {
            l["event"] == "left"
        })?;
    }
    Ok(())
}

/// The feed (`feed-<id>`) on which `peer` receives roomd.
fn roomd_feed(peer: &BrowserPeer) -> anyhow::Result<String> {
    let line = peer.wait_for("subscribed to roomd", JOIN_TIMEOUT, |l| {
        l["event"] == "subscribed" && l["display"] == "Board room"
    })?;
    Ok(format!("feed-{}", line["feed"]))
}

// ---- 1. CPU ----

struct CpuRun {
    roomd: f64,
    chromium: f64,
    /// What roomd received (fps, width x height per stream) and Alice decoded of roomd.
    quality: String,
}

fn one_cpu_run(janus: &Janus, bundles: Option<&std::path::Path>) -> anyhow::Result<CpuRun> {
    let tpm = Swtpm::start()?;
    let alice = chromium(janus, "Alice", HD, bundles, &[])?;
    let bob = chromium(janus, "Bob", HD, bundles, &[])?;
    let roomd = roomd_for(janus, &tpm, "simulated-720p", bundles.is_some())?;
    join(&roomd, janus)?;
    meeting::wait_for(&roomd, "video from both Chromiums", MEDIA_TIMEOUT, |m| {
        let frames = meeting::stream_frames(m, "receive", "video");
        frames.len() >= 2 && frames.iter().all(|f| *f > FRAMES)
    })?;
    let feed = roomd_feed(&alice)?;
    alice.wait_for("roomd's video decoded", MEDIA_TIMEOUT, |l| {
        l["event"] == "stats"
            && browser::inbound_video_frames_of(l, &feed).is_some_and(|f| f > FRAMES)
    })?;
    std::thread::sleep(WARM_UP);
    let (roomd_pid, alice_driver) = (
        roomd.pid().context("roomd has no pid")?,
        alice.driver_pid()?,
    );
    let alice_decoded = |peer: &BrowserPeer| {
        peer.lines()
            .iter()
            .rev()
            .find(|l| l["event"] == "stats")
            .and_then(|l| browser::inbound_video_frames_of(l, &feed))
            .unwrap_or(0)
    };
    let status_before = meeting::status(&roomd)?;
    let decoded_before = alice_decoded(&alice);
    let roomd_before = cpu::process_seconds(roomd_pid)?;
    let alice_before = cpu::chromium_seconds(alice_driver)?;
    let started = Instant::now();
    std::thread::sleep(MEASURE);
    let roomd_after = cpu::process_seconds(roomd_pid)?;
    let alice_after = cpu::chromium_seconds(alice_driver)?;
    let seconds = started.elapsed().as_secs_f64();
    let status_after = meeting::status(&roomd)?;
    let decoded_after = alice_decoded(&alice);
    let per_minute = 60.0 / seconds;
    let received: Vec<String> = meeting::streams(&status_after, "receive", "video")
        .map(|after| {
            let before = meeting::streams(&status_before, "receive", "video")
                .find(|b| b["participant"] == after["participant"])
                .and_then(|b| b["frames"].as_u64())
                .unwrap_or(0);
            let frames = after["frames"].as_u64().unwrap_or(0).saturating_sub(before);
            format!(
                "{:.1} fps at {}x{}",
                frames as f64 / seconds,
                after["width"],
                after["height"]
            )
        })
        .collect();
    let quality = format!(
        "roomd received {}; Alice decoded roomd at {:.1} fps",
        received.join(" and "),
        decoded_after.saturating_sub(decoded_before) as f64 / seconds
    );
    if bundles.is_some() {
        let e2ee = &status_after["e2ee"];
        if e2ee["state"] != "established" {
            bail!("the meeting was not end-to-end encrypted with everybody: {e2ee}");
        }
    }
    roomd.command("meeting.leave", &json!({}))?;
    leave_room(&[&alice, &bob])?;
    drop((roomd, alice, bob));
    Ok(CpuRun {
        roomd: (roomd_after - roomd_before) * per_minute,
        chromium: (alice_after.chromium - alice_before.chromium) * per_minute,
        quality,
    })
}

fn three_party_cpu(janus: &Janus, bundles: &std::path::Path) -> anyhow::Result<Vec<Row>> {
    let plain = one_cpu_run(janus, None)?;
    println!(
        "without E2EE: roomd {:.1}, one Chromium {:.1} CPU-s/min; {}",
        plain.roomd, plain.chromium, plain.quality
    );
    let sealed = one_cpu_run(janus, Some(bundles))?;
    println!(
        "with E2EE:    roomd {:.1}, one Chromium {:.1} CPU-s/min; {}",
        sealed.roomd, sealed.chromium, sealed.quality
    );
    Ok(vec![
        (
            "720p30 3-party, roomd CPU-s/min without / with E2EE".into(),
            format!("{:.1} / {:.1}", plain.roomd, sealed.roomd),
        ),
        (
            "720p30 3-party, roomd ratio with / without E2EE".into(),
            format!("{:.3}", sealed.roomd / plain.roomd),
        ),
        (
            "720p30 3-party, one Chromium CPU-s/min without / with".into(),
            format!("{:.1} / {:.1}", plain.chromium, sealed.chromium),
        ),
        (
            "720p30 3-party, Chromium ratio with / without E2EE".into(),
            format!("{:.3}", sealed.chromium / plain.chromium),
        ),
    ])
}

// ---- 2. latency ----

fn latency_median(janus: &Janus, bundles: Option<&std::path::Path>) -> anyhow::Result<f64> {
    let tpm = Swtpm::start()?;
    let carol = chromium(janus, "Carol", SMALL, bundles, &["--timecode"])?;
    let roomd = roomd_for(janus, &tpm, "simulated-timecode", bundles.is_some())?;
    join(&roomd, janus)?;
    carol.wait_for("video decoded from roomd", MEDIA_TIMEOUT, |l| {
        l["event"] == "stats" && browser::inbound_video_frames(l).iter().any(|f| *f > FRAMES)
    })?;
    std::thread::sleep(LATENCY_SETTLE);
    let from = carol.line_count();
    let deadline = Instant::now() + MEDIA_TIMEOUT;
    let mut samples = Vec::new();
    while samples.len() < LATENCY_FRAMES {
        if Instant::now() > deadline {
            bail!("only {} frames with a readable timecode", samples.len());
        }
        std::thread::sleep(Duration::from_millis(500));
        samples = carol
            .lines()
            .iter()
            .skip(from)
            .filter(|l| l["event"] == "latency")
            .flat_map(|l| l["samples"].as_array().cloned().unwrap_or_default())
            .filter_map(|v| v.as_f64())
            .collect();
    }
    roomd.command("meeting.leave", &json!({}))?;
    leave_room(&[&carol])?;
    drop((roomd, carol));
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    println!(
        "{}: {} frames, median {median:.0} ms, p95 {:.0} ms",
        if bundles.is_some() {
            "with E2EE"
        } else {
            "without E2EE"
        },
        samples.len(),
        samples[samples.len() * 95 / 100]
    );
    Ok(median)
}

fn added_latency(janus: &Janus, bundles: &std::path::Path) -> anyhow::Result<Vec<Row>> {
    let plain = latency_median(janus, None)?;
    let sealed = latency_median(janus, Some(bundles))?;
    Ok(vec![
        (
            "glass-to-glass median without / with E2EE".into(),
            format!("{plain:.0} / {sealed:.0} ms"),
        ),
        (
            "glass-to-glass added by E2EE (median)".into(),
            format!("{:.0} ms", sealed - plain),
        ),
    ])
}

// ---- 3. rekey ----

/// Frames Alice opened and refused of roomd's video, from one of her `e2ee` lines.
fn alice_counts(line: &Value, feed: &str) -> (u64, u64) {
    let counts = &line["frames"][format!("{}-video", feed.trim_start_matches("feed-"))];
    (
        counts["opened"].as_u64().unwrap_or(0),
        counts["refused"].as_u64().unwrap_or(0),
    )
}

fn rekey_after_leave(janus: &Janus, bundles: &std::path::Path) -> anyhow::Result<Vec<Row>> {
    let tpm = Swtpm::start()?;
    let every = REKEY_STATS_MS.to_string();
    let alice = chromium(
        janus,
        "Alice",
        SMALL,
        Some(bundles),
        &["--stats-ms", &every],
    )?;
    let bob = chromium(janus, "Bob", SMALL, Some(bundles), &[])?;
    let roomd = roomd_for(janus, &tpm, "simulated", true)?;
    join(&roomd, janus)?;
    meeting::wait_for(&roomd, "keys with both", MEDIA_TIMEOUT, |m| {
        m["e2ee"]["state"] == "established"
            && m["e2ee"]["participants"]
                .as_array()
                .is_some_and(|p| p.len() == 2)
    })?;
    let feed = roomd_feed(&alice)?;
    alice.wait_for("roomd's frames opened", MEDIA_TIMEOUT, |l| {
        l["event"] == "e2ee" && alice_counts(l, &feed).0 > FRAMES
    })?;
    let left = Instant::now();
    bob.command(&json!({ "leave": true }))?;
    let mut rekeyed = None;
    while rekeyed.is_none() {
        if left.elapsed() > MEDIA_TIMEOUT {
            bail!("roomd made no new sender key within {MEDIA_TIMEOUT:?} of Bob leaving");
        }
        if meeting::status(&roomd)?["e2ee"]["key_epoch"].as_u64() >= Some(1) {
            rekeyed = Some(left.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let rekeyed = rekeyed.unwrap_or_default();
    // Alice holds roomd's new key: two of its keys (the new one and the one before).
    let feed_id = feed.trim_start_matches("feed-").to_owned();
    let keys_of_roomd = |line: &Value| {
        line["participants"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["participant"] == feed_id.as_str()))
            .and_then(|p| p["keys"].as_u64())
            .unwrap_or(0)
    };
    let mut seen = 0;
    let mut granted = None;
    while granted.is_none() {
        if left.elapsed() > MEDIA_TIMEOUT {
            bail!("Alice got no new key of roomd within {MEDIA_TIMEOUT:?}");
        }
        let lines = alice.lines();
        if lines
            .iter()
            .skip(seen)
            .any(|l| l["event"] == "e2ee" && keys_of_roomd(l) >= 2)
        {
            granted = Some(left.elapsed());
        }
        seen = lines.len();
        std::thread::sleep(Duration::from_millis(20));
    }
    let granted = granted.unwrap_or_default();
    // And she goes on opening roomd's frames (under the new key once roomd uses it).
    let (opened, _) = alice
        .lines()
        .iter()
        .rev()
        .find(|l| l["event"] == "e2ee")
        .map(|l| alice_counts(l, &feed))
        .unwrap_or_default();
    let mark = alice.line_count();
    alice.wait_for_after(
        mark,
        "roomd's frames opened after the rekey",
        MEDIA_TIMEOUT,
        |l| l["event"] == "e2ee" && alice_counts(l, &feed).0 > opened + FRAMES,
    )?;
    println!(
        "Bob left: roomd's new key after {:.0} ms, granted to Alice after {:.0} ms (her status \
         every {REKEY_STATS_MS} ms); she goes on opening roomd's frames",
        rekeyed.as_secs_f64() * 1e3,
        granted.as_secs_f64() * 1e3
    );
    roomd.command("meeting.leave", &json!({}))?;
    Ok(vec![
        (
            "leave → roomd's new sender key".into(),
            format!("{:.0} ms", rekeyed.as_secs_f64() * 1e3),
        ),
        (
            "leave → Alice holds roomd's new key".into(),
            format!("{:.0} ms", granted.as_secs_f64() * 1e3),
        ),
    ])
}
