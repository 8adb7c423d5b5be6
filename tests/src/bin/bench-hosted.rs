//! `make bench`, hosted meetings (issue 15): what it costs the room that its guests see and
//! hear each other, as guests come.
//!
//! 1. Forwarding, as built: the room hosts and 2, 4 and 8 guests join on the shipped guest page
//!    (one headless Chromium, a context each, fake camera 1280x720 at 30 fps). Once each guest
//!    shows every other (or after a minute, noted), over 30 s: roomd's CPU-s/min and what it
//!    sends (kbit/s on its veth), each as a ratio to the 2-guest case; and what the guests were
//!    shown (frames per second and size of the other guests' tiles, mean and lowest), since on
//!    a small machine Chromium itself runs short of CPU first.
//! 2. Composing instead (the other way, docs/meetings.md): the work it would add to the room,
//!    as a bare `gst-launch-1.0` graph: the room's and N guests' 720p pictures scaled into one
//!    720p layout and encoded once with roomd's x264 settings, and N Opus mix-minus encodes.
//!    Its CPU-s/min less that of the same graph's sources alone.
//! 3. Join to first frame: from `meeting.admit` to the room's first frame on the guest's page
//!    (pages report every 50 ms), three times.
//!
//! `bench-hosted forwarding` (or `composing`, `join`) runs only the parts named. Exits 1 if a
//! part could not be measured; there are no targets (the issue asks for the figures).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use roomd_tests::hosted::{self, frames, other, view};
use roomd_tests::{
    BrowserPeer, GstLaunch, ROOMD_PAD_CONVERTER, Roomd, TestNetwork, cpu, meeting, roomd_encoder,
};
use serde_json::{Value, json};

const PIN: &str = "864209";
const STATE_TIMEOUT: Duration = Duration::from_secs(60);
const SETTLE_LIMIT: Duration = Duration::from_secs(60);
const WARM_UP: Duration = Duration::from_secs(5);
const MEASURE: Duration = Duration::from_secs(30);
const GUEST_COUNTS: [usize; 3] = [2, 4, 8];
const NAMES: [&str; 8] = [
    "Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi",
];
const JOIN_RUNS: usize = 3;
const COMPOSE_WARM_UP: Duration = Duration::from_secs(5);
const COMPOSE_MEASURE: Duration = Duration::from_secs(20);

/// One line of the closing table: metric, value.
type Row = (String, String);

fn main() -> anyhow::Result<()> {
    println!(
        "roomd hosted meeting benchmark (guests on the shipped guest page, headless Chromium)"
    );
    println!("load average before: {}", cpu::load_average());
    let only: Vec<String> = std::env::args().skip(1).collect();
    let mut rows = Vec::new();
    let mut failed = false;
    for (key, part, run) in [
        (
            "forwarding",
            "the room forwarding 2, 4 and 8 guests",
            forwarding as fn() -> anyhow::Result<Vec<Row>>,
        ),
        ("composing", "what composing would add instead", composing),
        ("join", "join to first frame", join_to_first_frame),
    ] {
        if !only.is_empty() && !only.iter().any(|o| o == key) {
            continue;
        }
        println!();
        println!("== {part}");
        match run() {
            Ok(part_rows) => rows.extend(part_rows),
            Err(error) => {
                println!("{part} could not be measured: {error:#}");
                rows.push((part.to_owned(), "error".to_owned()));
                failed = true;
            }
        }
    }
    println!();
    println!("| Metric | Value |");
    println!("|---|---|");
    for (metric, value) in &rows {
        println!("| {metric} | {value} |");
    }
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

/// A hosting roomd in `net` (simulated 720p camera), with the meeting's join address.
fn hosting(net: &TestNetwork) -> anyhow::Result<(Roomd, String)> {
    let (host, hosted) = meeting::host_room_in(net, PIN, STATE_TIMEOUT)?;
    let id = hosted["id"].as_str().unwrap_or_default();
    let join_url = format!("{}/join/{id}", host.base_url());
    Ok((host, join_url))
}

/// Bytes the namespace (roomd) sent through the veth so far.
fn sent_bytes(net: &TestNetwork) -> anyhow::Result<u64> {
    let path = format!(
        "/sys/class/net/{}/statistics/rx_bytes",
        net.host_interface()
    );
    Ok(std::fs::read_to_string(&path)
        .with_context(|| format!("reading {path}"))?
        .trim()
        .parse()?)
}

/// Every guest of `names` shows each other guest's picture moving (more than one second of
/// frames).
fn everyone_shown(line: &Value, names: &[&str]) -> bool {
    line["event"] == "guests"
        && names.iter().all(|name| {
            view(line, name).is_some_and(|seen| {
                names
                    .iter()
                    .filter(|o| *o != name)
                    .all(|o| other(seen, o).is_some_and(|tile| frames(tile) > 30))
            })
        })
}

/// Per other-guest tile over the window between two `guests` lines: frames per second, and
/// its size at the end.
fn tile_rates(before: &Value, after: &Value, seconds: f64, names: &[&str]) -> Vec<(f64, u64)> {
    let mut rates = Vec::new();
    for name in names {
        let (Some(was), Some(now)) = (view(before, name), view(after, name)) else {
            continue;
        };
        for o in names.iter().filter(|o| *o != name) {
            let Some(tile) = other(now, o) else {
                rates.push((0.0, 0));
                continue;
            };
            let shown = frames(tile).saturating_sub(other(was, o).map_or(0, frames));
            rates.push((shown as f64 / seconds, tile["height"].as_u64().unwrap_or(0)));
        }
    }
    rates
}

/// Each guest count measured apart: a count the machine cannot carry (the guests' pages run
/// out of CPU before the room does) is reported, and the next is measured.
fn forwarding() -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut reference: Option<(f64, f64)> = None;
    for count in GUEST_COUNTS {
        match forwarding_with(count, &mut reference) {
            Ok(count_rows) => rows.extend(count_rows),
            Err(error) => {
                let reason: String = format!("{error:#}").chars().take(300).collect();
                println!("{count} guests could not be measured: {reason}");
                rows.push((format!("{count} guests"), format!("not measured: {reason}")));
            }
        }
    }
    if reference.is_none() {
        bail!("no guest count could be measured");
    }
    Ok(rows)
}

/// Forwarding with `count` guests; `reference` is the first count's CPU and kbit/s.
fn forwarding_with(count: usize, reference: &mut Option<(f64, f64)>) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let net = TestNetwork::create().context("creating the test network (run as root)")?;
    let (host, join_url) = hosting(&net)?;
    let names = &NAMES[..count];
    let pages = BrowserPeer::guest_pages(&join_url, names, PIN, &host.cert_path())?;
    for name in names {
        hosted::admit(&host, name, STATE_TIMEOUT)?;
    }
    let settled = pages
        .wait_for("every guest shows every other", SETTLE_LIMIT, |l| {
            everyone_shown(l, names)
        })
        .is_ok();
    if !settled {
        println!("{count} guests: not every guest showed every other within a minute");
    }
    std::thread::sleep(WARM_UP);
    let pid = host.pid().context("roomd has no pid")?;
    let latest = |pages: &BrowserPeer| {
        pages
            .lines()
            .into_iter()
            .rev()
            .find(|l| l["event"] == "guests")
            .unwrap_or_default()
    };
    let (cpu_before, sent_before, shown_before) = (
        cpu::process_seconds(pid)?,
        sent_bytes(&net)?,
        latest(&pages),
    );
    let started = Instant::now();
    std::thread::sleep(MEASURE);
    let (cpu_after, sent_after, shown_after) = (
        cpu::process_seconds(pid)?,
        sent_bytes(&net)?,
        latest(&pages),
    );
    let seconds = started.elapsed().as_secs_f64();
    let cpu_per_minute = (cpu_after - cpu_before) * 60.0 / seconds;
    let sent_kbps = (sent_after - sent_before) as f64 * 8.0 / 1000.0 / seconds;
    let rates = tile_rates(&shown_before, &shown_after, seconds, names);
    let mean_fps = rates.iter().map(|r| r.0).sum::<f64>() / rates.len().max(1) as f64;
    let lowest_fps = rates.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    let heights: Vec<u64> = rates.iter().map(|r| r.1).collect();
    let (low_h, high_h) = (
        heights.iter().min().copied().unwrap_or(0),
        heights.iter().max().copied().unwrap_or(0),
    );
    let (cpu_ref, sent_ref) = *reference.get_or_insert((cpu_per_minute, sent_kbps));
    println!(
        "{count} guests (load average {}): roomd {cpu_per_minute:.1} CPU-s/min, sends \
         {sent_kbps:.0} kbit/s; other guests' tiles at {mean_fps:.1} fps mean, \
         {lowest_fps:.1} lowest, {low_h}-{high_h} lines",
        cpu::load_average()
    );
    rows.push((
        format!("{count} guests: roomd CPU-s/min (ratio to 2 guests)"),
        format!("{cpu_per_minute:.1} ({:.2})", cpu_per_minute / cpu_ref),
    ));
    rows.push((
        format!("{count} guests: roomd sends kbit/s (ratio to 2 guests)"),
        format!("{sent_kbps:.0} ({:.2})", sent_kbps / sent_ref),
    ));
    rows.push((
        format!("{count} guests: other guests shown, fps mean / lowest, lines"),
        format!(
            "{mean_fps:.1} / {lowest_fps:.1}, {low_h}-{high_h}{}",
            if settled { "" } else { " (not all shown)" }
        ),
    ));
    drop(pages);
    host.command("meeting.leave", &json!({}))?;
    Ok(rows)
}

/// The work composing would add for `guests`, as a launch description: `sources` only, or with
/// the layout, its one encode and the mix-minus encodes.
fn composing_graph(guests: usize, with_work: bool) -> String {
    let pictures = guests + 1;
    let columns = (pictures as f64).sqrt().ceil() as usize;
    let rows = pictures.div_ceil(columns);
    let (tile_w, tile_h) = (1280 / columns, 720 / rows);
    let encoder = roomd_encoder("x264enc", 1280, 720, 30).unwrap_or_default();
    let mut graph = String::new();
    if with_work {
        let mut mixer = "compositor name=layout background=black".to_owned();
        for n in 0..pictures {
            mixer.push_str(&format!(
                " sink_{n}::xpos={} sink_{n}::ypos={} sink_{n}::width={tile_w} \
                 sink_{n}::height={tile_h} sink_{n}::converter-config={ROOMD_PAD_CONVERTER}",
                (n % columns) * tile_w,
                (n / columns) * tile_h
            ));
        }
        graph.push_str(&format!(
            "{mixer} ! video/x-raw,width=1280,height=720,framerate=30/1 ! {encoder} ! fakesink sync=false "
        ));
        // Each guest hears everyone but themself: one mix and one Opus encode per guest.
        for g in 0..guests {
            graph.push_str(&format!(
                "audiomixer name=minus_{g} ! opusenc bitrate=32000 ! fakesink sync=false "
            ));
        }
    }
    for n in 0..pictures {
        graph.push_str(
            "videotestsrc is-live=true pattern=ball motion=wavy \
             ! video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! ",
        );
        graph.push_str(&if with_work {
            format!("layout.sink_{n} ")
        } else {
            "fakesink sync=false ".to_owned()
        });
        graph.push_str(&format!(
            "audiotestsrc is-live=true wave=ticks ! audio/x-raw,rate=48000,channels=1 ! tee name=voice_{n} "
        ));
        if with_work {
            // Voice n goes into every guest's mix but their own (guest g is picture g + 1).
            for g in (0..guests).filter(|g| g + 1 != n) {
                graph.push_str(&format!("voice_{n}. ! queue ! minus_{g}. "));
            }
        } else {
            graph.push_str(&format!("voice_{n}. ! fakesink sync=false "));
        }
    }
    graph
}

/// CPU-s/min of a gst-launch graph, after its warm-up.
fn graph_cpu(what: &str, description: &str) -> anyhow::Result<f64> {
    let mut graph = GstLaunch::start(what, description)?;
    std::thread::sleep(COMPOSE_WARM_UP);
    let pid = graph.pid();
    let before = cpu::process_seconds(pid)?;
    let started = Instant::now();
    std::thread::sleep(COMPOSE_MEASURE);
    let after = cpu::process_seconds(pid)?;
    graph.check_running()?;
    Ok((after - before) * 60.0 / started.elapsed().as_secs_f64())
}

fn composing() -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for count in GUEST_COUNTS {
        let sources = graph_cpu("the sources alone", &composing_graph(count, false))?;
        let full = graph_cpu("the composing graph", &composing_graph(count, true))?;
        let added = full - sources;
        println!(
            "{count} guests: composing graph {full:.1} CPU-s/min, its sources alone {sources:.1}: \
             composing adds {added:.1} (load average {})",
            cpu::load_average()
        );
        rows.push((
            format!("{count} guests: composing would add CPU-s/min"),
            format!("{added:.1}"),
        ));
    }
    Ok(rows)
}

fn join_to_first_frame() -> anyhow::Result<Vec<Row>> {
    let net = TestNetwork::create().context("creating the test network (run as root)")?;
    let (host, join_url) = hosting(&net)?;
    let name = "Timer";
    let pages = BrowserPeer::guest_pages_reporting(
        &join_url,
        &[name],
        PIN,
        &host.cert_path(),
        Duration::from_millis(50),
    )?;
    let mut times = Vec::new();
    for run in 0..JOIN_RUNS {
        if run > 0 {
            let from = pages.line_count();
            pages.command(&json!({ "guest": name, "press": "leave" }))?;
            pages.wait_for_after(from, "left", STATE_TIMEOUT, |l| {
                view(l, name).is_some_and(|v| v["phase"] != "joined")
            })?;
            pages.command(&json!({ "guest": name, "join": true }))?;
        }
        let id = hosted::in_the_lobby(&host, name, STATE_TIMEOUT)?;
        let from = pages.line_count();
        let admitted = Instant::now();
        host.command("meeting.admit", &json!({ "participant": id }))?;
        pages.wait_for_after(from, "the room's first frame", STATE_TIMEOUT, |l| {
            view(l, name).is_some_and(|v| frames(&v["room"]) > 0)
        })?;
        let ms = admitted.elapsed().as_millis();
        println!(
            "run {}: admitted → the room's first frame shown in {ms} ms",
            run + 1
        );
        times.push(ms);
    }
    if times.is_empty() {
        bail!("no run");
    }
    times.sort_unstable();
    Ok(vec![(
        "admitted → the room's first frame on the guest page, median of 3 (ms)".to_owned(),
        times[times.len() / 2].to_string(),
    )])
}
