//! `make bench`, meetings part (issue 4): roomd in a Janus VideoRoom with headless Chromium
//! participants on the test network (Janus in a network namespace, roomd and Chromium on the
//! host, as in tests/tests/meeting_janus.rs).
//!
//! 1. Join time: `meeting.join` with a Chromium already publishing in the room, to the first
//!    remote frame on roomd's display; roomd's own figure (`meeting.first_remote_frame`,
//!    `since_join_ms`) and the test's (command sent → that event on the events WebSocket).
//!    Median of JOINS joins (leave and rejoin). Target <= 500 ms. The last join's roomd debug log
//!    is printed as a timeline, to show where the time goes.
//! 2. CPU per minute of a three-party meeting at 720p30: roomd (`simulated-720p`) and two
//!    Chromium participants (fake camera 1280x720 at 30 fps); CPU seconds of roomd's process and
//!    of one Chromium (all processes under its driver, the driver itself excluded) over the same
//!    window. Target: roomd / Chromium <= 0.5.
//! 3. Glass-to-glass latency through Janus: roomd's `simulated-timecode` camera stamps the wall
//!    clock into each frame; a Chromium participant reads the stamp from each video frame it
//!    shows and subtracts it from Date.now() (same machine, same clock). Median and p95 over at
//!    least LATENCY_FRAMES frames. Target: median <= 150 ms (the ITU-T G.114 budget); p95 shown.
//!
//! Exits 1 if a target is missed or could not be measured.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use roomd_tests::{
    ADMIN_PASSWORD, ADMIN_USERNAME, BrowserPeer, EventSocket, Janus, Roomd, TestNetwork, browser,
    meeting,
};
use serde_json::{Value, json};

const ROOM: u64 = 7301;
const JOINS: usize = 7;
const JOIN_TARGET_MS: f64 = 500.0;
const RATIO_TARGET: f64 = 0.5;
const LATENCY_TARGET_MS: f64 = 150.0;
const LATENCY_FRAMES: usize = 300;
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);
/// Janus ends a session nobody polls after its session timeout (60 s by default).
const GONE_TIMEOUT: Duration = Duration::from_secs(90);
/// Media flows this long before the CPU window opens (encoders settle, bitrates ramp up).
const WARM_UP: Duration = Duration::from_secs(10);
const MEASURE: Duration = Duration::from_secs(45);
/// Frames shown this long after roomd joined are not counted (the first keyframe wait).
const LATENCY_SETTLE: Duration = Duration::from_secs(3);
/// About one second of video at 30 fps.
const FRAMES: u64 = 30;

/// One line of the closing table: metric, value, target, met (None: for information).
type Row = (String, String, String, Option<bool>);

fn main() -> anyhow::Result<()> {
    println!("roomd meeting benchmark (Janus VideoRoom, headless Chromium, test network)");
    println!("load average before: {}", load_average());
    let net = TestNetwork::create().context("creating the test network (run as root)")?;
    let janus = Janus::builder(&net)
        .room(ROOM)
        .start()
        .context("starting Janus")?;
    let mut rows = Vec::new();
    // `bench-meeting cpu` (or `join`, `latency`) runs only the parts named; none runs all.
    let only: Vec<String> = std::env::args().skip(1).collect();
    // Each part reports what it measured; a part that fails is a miss, the others still run.
    for (key, part, run) in [
        (
            "join",
            "join time",
            join_time as fn(&Janus) -> anyhow::Result<Vec<Row>>,
        ),
        ("cpu", "CPU of a three-party meeting", three_party_cpu),
        ("latency", "glass-to-glass latency", glass_to_glass),
    ] {
        if !only.is_empty() && !only.iter().any(|o| o == key) {
            continue;
        }
        println!();
        println!("== {part}");
        match run(&janus) {
            Ok(part_rows) => rows.extend(part_rows),
            Err(error) => {
                println!("{part} could not be measured: {error:#}");
                rows.push((
                    part.to_owned(),
                    "error".to_owned(),
                    String::new(),
                    Some(false),
                ));
            }
        }
    }
    println!();
    println!("load average after: {}", load_average());
    println!();
    print_table(&rows);
    if rows.iter().any(|r| r.3 == Some(false)) {
        std::process::exit(1);
    }
    Ok(())
}

fn print_table(rows: &[Row]) {
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!(
        "{:width$}  {:>12}  {:>10}  result",
        "metric", "value", "target"
    );
    for (metric, value, target, met) in rows {
        let result = match met {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "",
        };
        println!("{metric:width$}  {value:>12}  {target:>10}  {result}");
    }
}

fn janus_target(janus: &Janus) -> Value {
    json!({
        "kind": "janus",
        "server": janus.https_url(),
        "room": janus.room(),
        "display_name": "Board room",
    })
}

/// A claimed roomd with `profile` that trusts Janus's test CA; `rust_log` for its log filter.
fn roomd_for(janus: &Janus, profile: &str, rust_log: Option<&str>) -> anyhow::Result<Roomd> {
    let mut builder = Roomd::builder().config(&format!(
        "[system]\nname = \"Board room\"\nhardware_profile = \"{profile}\"\n\
         [meeting]\nca_file = \"{}\"\n",
        janus.ca_path().display()
    ));
    if let Some(filter) = rust_log {
        builder = builder.env("RUST_LOG", filter);
    }
    let mut roomd = builder
        .start()
        .with_context(|| format!("starting roomd ({profile})"))?;
    roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    Ok(roomd)
}

/// A Chromium participant (tests/browser/janus-participant.mjs) with a camera of this size.
fn chromium(
    janus: &Janus,
    name: &str,
    (width, height, fps): (u32, u32, u32),
    timecode: bool,
) -> anyhow::Result<BrowserPeer> {
    let mut args = vec![
        "--width".to_owned(),
        width.to_string(),
        "--height".to_owned(),
        height.to_string(),
        "--fps".to_owned(),
        fps.to_string(),
    ];
    if timecode {
        args.push("--timecode".to_owned());
    }
    let peer = BrowserPeer::janus_participant_with(janus, name, &args)?;
    let camera = peer.wait_for("its camera open", JOIN_TIMEOUT, |l| l["event"] == "camera")?;
    let opened = (
        camera["width"].as_u64(),
        camera["height"].as_u64(),
        camera["fps"].as_f64().map(|f| f.round() as u64),
    );
    if opened != (Some(width.into()), Some(height.into()), Some(fps.into())) {
        bail!("{name}'s camera opened as {camera}, not {width}x{height} at {fps} fps");
    }
    peer.wait_for("published in the room", JOIN_TIMEOUT, |l| {
        l["event"] == "published"
    })?;
    println!(
        "{name}: Chromium publishing a {}x{} camera at {} fps",
        camera["width"], camera["height"], camera["fps"]
    );
    Ok(peer)
}

fn events_of(roomd: &Roomd) -> anyhow::Result<EventSocket> {
    let mut events = roomd.websocket_with_token(&roomd.admin_token()?)?;
    events.send_json(&json!({"type": "subscribe", "status": ["meeting"], "events": ["*"]}))?;
    Ok(events)
}

fn leave(roomd: &Roomd, events: &mut EventSocket) -> anyhow::Result<()> {
    roomd.command("meeting.leave", &json!({}))?;
    events.wait_for("meeting idle after leaving", JOIN_TIMEOUT, |m| {
        meeting::state_in_event(m) == Some("idle")
    })?;
    Ok(())
}

// ---- 1. join time ----

fn join_time(janus: &Janus) -> anyhow::Result<Vec<Row>> {
    let alice = chromium(janus, "Alice", (1280, 720, 30), false)?;
    let roomd = roomd_for(
        janus,
        "simulated-720p",
        Some("roomd=debug,actix_web=warn,actix_server=warn"),
    )?;
    let mut events = events_of(&roomd)?;
    let (mut roomd_ms, mut test_ms) = (Vec::new(), Vec::new());
    let (mut first_log, mut last_log) = ((0, 0), (0, 0));
    for round in 1..=JOINS {
        let log_start = roomd.stderr_text().len();
        let sent = Instant::now();
        roomd.command("meeting.join", &json!({ "target": janus_target(janus) }))?;
        let (event, before) = events.wait_for("meeting.first_remote_frame", JOIN_TIMEOUT, |m| {
            m["type"] == "event" && m["name"] == "meeting.first_remote_frame"
        })?;
        let seen = sent.elapsed().as_secs_f64() * 1e3;
        let reported = event["data"]["since_join_ms"]
            .as_f64()
            .with_context(|| format!("no since_join_ms in {event}"))?;
        // roomd subscribes to the room's publishers one after the other: how many it took on
        // before the first picture (Alice only, unless a publisher was left behind).
        let participants = before
            .iter()
            .filter(|m| m["type"] == "event" && m["name"] == "meeting.participant.joined")
            .count();
        println!(
            "join {round}: roomd {reported:.0} ms, test {seen:.0} ms, {participants} \
             participants announced before the first frame"
        );
        roomd_ms.push(reported);
        test_ms.push(seen);
        // The first join's log is also kept: it meets a room with Alice only.
        std::thread::sleep(Duration::from_millis(200));
        let log = (log_start, roomd.stderr_text().len());
        if round == 1 {
            first_log = log;
        }
        last_log = log;
        let mark = alice.line_count();
        let left = Instant::now();
        leave(&roomd, &mut events)?;
        // Each join meets Alice alone: wait until Janus told her that roomd's publisher left
        // (how long that takes is printed: a publisher roomd leaves behind is one more feed
        // the next join subscribes to before Alice's).
        alice.wait_for_after(
            mark,
            "roomd's publisher gone from the room",
            GONE_TIMEOUT,
            |l| l["event"] == "unsubscribed",
        )?;
        println!(
            "  leave → Janus drops roomd's publisher (seen by Alice): {:.0} ms",
            left.elapsed().as_secs_f64() * 1e3
        );
    }
    let log = roomd.stderr_text();
    print_timeline("first", &log[first_log.0..first_log.1]);
    print_timeline("last", &log[last_log.0..last_log.1]);
    let (roomd_median, test_median) = (median(&roomd_ms), median(&test_ms));
    Ok(vec![
        (
            format!("join → first remote frame, roomd's figure (median of {JOINS})"),
            format!("{roomd_median:.0} ms"),
            format!("<= {JOIN_TARGET_MS:.0} ms"),
            Some(roomd_median <= JOIN_TARGET_MS),
        ),
        (
            format!("join → first remote frame, command to event (median of {JOINS})"),
            format!("{test_median:.0} ms"),
            format!("<= {JOIN_TARGET_MS:.0} ms"),
            Some(test_median <= JOIN_TARGET_MS),
        ),
    ])
}

/// roomd's log of one join, each line with its offset from the first: where the time goes.
fn print_timeline(which: &str, log: &str) {
    println!("roomd's log of the {which} join (ms since its first line):");
    let mut first = None;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let Some(at) = time_of_day(line) else {
            continue;
        };
        let start = *first.get_or_insert(at);
        let text: String = line.chars().take(220).collect();
        println!("  {:>7.1}  {text}", (at - start) * 1e3);
    }
}

/// Seconds since midnight of a log line that starts with an RFC 3339 timestamp.
fn time_of_day(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?;
    let clock = stamp.split_once('T')?.1.trim_end_matches('Z');
    let mut parts = clock.splitn(3, ':');
    let hours: f64 = parts.next()?.parse().ok()?;
    let minutes: f64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    Some(hours * 3600.0 + minutes * 60.0 + seconds)
}

// ---- 2. CPU of a three-party meeting ----

fn three_party_cpu(janus: &Janus) -> anyhow::Result<Vec<Row>> {
    const HD: (u32, u32, u32) = (1280, 720, 30);
    let alice = chromium(janus, "Alice", HD, false)?;
    let bob = chromium(janus, "Bob", HD, false)?;
    let roomd = roomd_for(janus, "simulated-720p", None)?;
    let mut events = events_of(&roomd)?;
    roomd.command("meeting.join", &json!({ "target": janus_target(janus) }))?;
    events.wait_for("meeting connected", JOIN_TIMEOUT, |m| {
        meeting::state_in_event(m) == Some("connected")
    })?;
    // Media flows every way: roomd receives both, each Chromium decodes two remote feeds.
    meeting::wait_for(&roomd, "video from both Chromiums", MEDIA_TIMEOUT, |m| {
        let frames = meeting::stream_frames(m, "receive", "video");
        frames.len() >= 2 && frames.iter().all(|f| *f > FRAMES)
    })?;
    for peer in [&alice, &bob] {
        peer.wait_for("two remote videos decoded", MEDIA_TIMEOUT, |l| {
            l["event"] == "stats"
                && browser::inbound_video_frames(l)
                    .iter()
                    .filter(|f| **f > FRAMES)
                    .count()
                    >= 2
        })?;
    }
    let roomd_pid = roomd.pid().context("roomd has no pid")?;
    let alice_driver = driver_pid(&alice)?;
    let bob_driver = driver_pid(&bob)?;
    std::thread::sleep(WARM_UP);

    let alice_before = tree_cpu_seconds(alice_driver)?;
    let bob_before = tree_cpu_seconds(bob_driver)?;
    let roomd_before = cpu_seconds(roomd_pid)?;
    let roomd_threads_before = thread_cpu(roomd_pid);
    let started = Instant::now();
    std::thread::sleep(MEASURE);
    let roomd_after = cpu_seconds(roomd_pid)?;
    let alice_after = tree_cpu_seconds(alice_driver)?;
    let bob_after = tree_cpu_seconds(bob_driver)?;
    let per_minute = 60.0 / started.elapsed().as_secs_f64();
    let roomd_cpu = (roomd_after - roomd_before) * per_minute;
    let alice_cpu = (alice_after.chromium - alice_before.chromium) * per_minute;
    let bob_cpu = (bob_after.chromium - bob_before.chromium) * per_minute;
    let alice_node = (alice_after.driver - alice_before.driver) * per_minute;
    println!(
        "over {:.0} s: roomd {roomd_cpu:.1}, Alice's Chromium {alice_cpu:.1} ({} processes), \
         Bob's Chromium {bob_cpu:.1}, Alice's node driver {alice_node:.1} CPU-s/min",
        MEASURE.as_secs_f64(),
        alice_after.processes
    );
    print_meeting_streams(&roomd, &alice, &bob)?;
    print_breakdown(
        "roomd's threads",
        &roomd_threads_before,
        &thread_cpu(roomd_pid),
        per_minute,
    );
    print_breakdown(
        "Alice's Chromium processes",
        &alice_before.by_kind,
        &alice_after.by_kind,
        per_minute,
    );
    leave(&roomd, &mut events)?;

    let ratio = roomd_cpu / alice_cpu;
    Ok(vec![
        (
            "720p30 3-party: roomd CPU-s/min".to_owned(),
            format!("{roomd_cpu:.1}"),
            String::new(),
            None,
        ),
        (
            "720p30 3-party: one Chromium CPU-s/min".to_owned(),
            format!("{alice_cpu:.1}"),
            String::new(),
            None,
        ),
        (
            "720p30 3-party: ratio roomd / Chromium".to_owned(),
            format!("{ratio:.3}"),
            format!("<= {RATIO_TARGET:.2}"),
            Some(ratio <= RATIO_TARGET),
        ),
    ])
}

/// What each side received during the CPU window, so the figures are known to be at 720p30.
fn print_meeting_streams(
    roomd: &Roomd,
    alice: &BrowserPeer,
    bob: &BrowserPeer,
) -> anyhow::Result<()> {
    let status = meeting::status(roomd)?;
    for stream in meeting::streams(&status, "receive", "video") {
        println!(
            "roomd receives video: {}x{} at {} fps, {} kbit/s",
            stream["width"], stream["height"], stream["frame_rate"], stream["bitrate_kbps"]
        );
    }
    for (name, peer) in [("Alice", alice), ("Bob", bob)] {
        let Some(stats) = peer.latest_stats() else {
            continue;
        };
        for peer_stats in stats["peers"].as_array().into_iter().flatten() {
            for entry in peer_stats["inbound"].as_array().into_iter().flatten() {
                if entry["kind"] == "video" {
                    println!(
                        "{name} receives video on {}: {}x{}, {} frames decoded",
                        peer_stats["peer"],
                        entry["frame_width"],
                        entry["frame_height"],
                        entry["frames_decoded"]
                    );
                }
            }
        }
    }
    Ok(())
}

fn driver_pid(peer: &BrowserPeer) -> anyhow::Result<u32> {
    let line = peer.wait_for("its pid", JOIN_TIMEOUT, |l| l["event"] == "pid")?;
    line["pid"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .with_context(|| format!("no pid in {line}"))
}

/// utime + stime of a process (all its threads), in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is gone"))?;
    let (_, fields) = stat_fields(&stat).context("malformed /proc/<pid>/stat")?;
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks as f64 / clock_ticks_per_second())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }.max(1) as f64
}

/// The parent pid and the fields after the command name (field 3 on) of a /proc stat line.
fn stat_fields(stat: &str) -> Option<(u32, Vec<&str>)> {
    // The command name (field 2) may hold spaces; count fields after its closing parenthesis.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    (fields.len() > 12).then_some((parent, fields))
}

/// CPU seconds per thread name of a process (GStreamer names its streaming threads after
/// elements and pads), to show where roomd's time goes.
fn thread_cpu(pid: u32) -> HashMap<String, f64> {
    let mut by_name = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let name = stat
            .split_once('(')
            .and_then(|(_, rest)| rest.rsplit_once(')'))
            .map(|(name, _)| name.to_owned())
            .unwrap_or_default();
        if let Some((_, fields)) = stat_fields(&stat) {
            let ticks =
                fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
            *by_name.entry(name).or_insert(0.0) += ticks as f64 / clock_ticks_per_second();
        }
    }
    by_name
}

/// The ten biggest shares of a CPU window, as CPU-s/min.
fn print_breakdown(
    what: &str,
    before: &HashMap<String, f64>,
    after: &HashMap<String, f64>,
    per_minute: f64,
) {
    let mut shares: Vec<(&String, f64)> = after
        .iter()
        .map(|(name, t)| {
            (
                name,
                (t - before.get(name).copied().unwrap_or(0.0)) * per_minute,
            )
        })
        .filter(|(_, t)| *t > 0.0)
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1));
    let list: Vec<String> = shares
        .iter()
        .take(10)
        .map(|(name, t)| format!("{name} {t:.1}"))
        .collect();
    println!("{what} (CPU-s/min): {}", list.join(", "));
}

/// A Chromium process's kind from its command line (`--type=renderer`, `gpu-process`, …, with
/// the utility's sub-type); the browser process has none.
fn process_kind(pid: u32) -> String {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    // Chromium rewrites its process title: the arguments may be one string with spaces.
    let args: Vec<&str> = cmdline
        .split(|b| *b == 0 || *b == b' ')
        .filter_map(|arg| std::str::from_utf8(arg).ok())
        .collect();
    let value = |switch: &str| args.iter().find_map(|arg| arg.strip_prefix(switch));
    match (value("--type="), value("--utility-sub-type=")) {
        (Some(kind), Some(sub)) => format!("{kind} ({sub})"),
        (Some(kind), None) => kind.to_owned(),
        (None, _) => "browser".to_owned(),
    }
}

struct TreeCpu {
    /// Every process below the driver: Chromium's browser, renderer, GPU and utility processes.
    chromium: f64,
    /// The node driver itself (signalling, stats polling): reported, not counted as Chromium.
    driver: f64,
    processes: usize,
    /// The same per kind of Chromium process.
    by_kind: HashMap<String, f64>,
}

/// CPU seconds of a driver's Chromium: all descendants of the node process `driver`.
fn tree_cpu_seconds(driver: u32) -> anyhow::Result<TreeCpu> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process may end while /proc is read: it no longer counts.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        if let Some((parent, _)) = stat_fields(&stat) {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut below = Vec::new();
    let mut todo = children.get(&driver).cloned().unwrap_or_default();
    while let Some(pid) = todo.pop() {
        below.push(pid);
        todo.extend(children.get(&pid).into_iter().flatten());
    }
    if below.is_empty() {
        bail!("the driver {driver} has no Chromium processes");
    }
    let mut by_kind: HashMap<String, f64> = HashMap::new();
    let mut chromium = 0.0;
    for pid in &below {
        if let Ok(seconds) = cpu_seconds(*pid) {
            chromium += seconds;
            *by_kind.entry(process_kind(*pid)).or_insert(0.0) += seconds;
        }
    }
    Ok(TreeCpu {
        chromium,
        by_kind,
        driver: cpu_seconds(driver)?,
        processes: below.len(),
    })
}

// ---- 3. glass-to-glass latency ----

fn glass_to_glass(janus: &Janus) -> anyhow::Result<Vec<Row>> {
    // Carol's own camera is small: only what she receives matters here.
    let carol = chromium(janus, "Carol", (640, 360, 30), true)?;
    let roomd = roomd_for(janus, "simulated-timecode", None)?;
    let mut events = events_of(&roomd)?;
    roomd.command("meeting.join", &json!({ "target": janus_target(janus) }))?;
    events.wait_for("meeting connected", JOIN_TIMEOUT, |m| {
        meeting::state_in_event(m) == Some("connected")
    })?;
    carol.wait_for("video decoded from roomd", MEDIA_TIMEOUT, |l| {
        l["event"] == "stats" && browser::inbound_video_frames(l).iter().any(|f| *f > FRAMES)
    })?;
    std::thread::sleep(LATENCY_SETTLE);
    let from = carol.line_count();
    let deadline = Instant::now() + MEDIA_TIMEOUT + MEDIA_TIMEOUT;
    let (mut samples, mut unreadable) = (Vec::new(), 0u64);
    while samples.len() < LATENCY_FRAMES {
        if Instant::now() > deadline {
            bail!(
                "only {} frames with a readable timecode ({unreadable} unreadable) in {:?}",
                samples.len(),
                MEDIA_TIMEOUT + MEDIA_TIMEOUT
            );
        }
        std::thread::sleep(Duration::from_millis(500));
        (samples, unreadable) = (Vec::new(), 0);
        for line in carol.lines().iter().skip(from) {
            if line["event"] != "latency" {
                continue;
            }
            unreadable += line["unreadable"].as_u64().unwrap_or(0);
            samples.extend(
                line["samples"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_f64),
            );
        }
    }
    leave(&roomd, &mut events)?;
    samples.sort_by(f64::total_cmp);
    let (p50, p95) = (quantile(&samples, 0.50), quantile(&samples, 0.95));
    println!(
        "{} frames read, {unreadable} unreadable; min {:.0} ms, max {:.0} ms",
        samples.len(),
        samples[0],
        samples[samples.len() - 1]
    );
    Ok(vec![
        (
            format!(
                "glass-to-glass through Janus, median ({} frames)",
                samples.len()
            ),
            format!("{p50:.0} ms"),
            format!("<= {LATENCY_TARGET_MS:.0} ms"),
            Some(p50 <= LATENCY_TARGET_MS),
        ),
        (
            "glass-to-glass through Janus, p95".to_owned(),
            format!("{p95:.0} ms"),
            String::new(),
            None,
        ),
    ])
}

// ---- figures ----

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile(&sorted, 0.5)
}

/// The value at quantile `q` of sorted, non-empty `values` (nearest rank).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Other work on the machine skews CPU and latency figures; the output says how busy it was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
}
