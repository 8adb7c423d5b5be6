//! `make bench`, media part: what roomd costs on top of the media work itself, and how fast the
//! software encoder turns a frame around.
//!
//! - CPU seconds per minute of roomd running the simulated room (capture, encode, compose and
//!   the audio chain) at 720p30 and 1080p30, against the same two pipelines run by two bare
//!   `gst-launch-1.0` processes in the same run. Target: roomd / gst-launch <= 1.10.
//! - Per-frame encode latency (GStreamer's latency tracer on the encoder element inside roomd),
//!   p50 and p95 at 720p30 with x264enc. Target: p95 <= 15 ms.
//!
//! Exits 1 if a target is missed or could not be measured.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use roomd_tests::Roomd;

const WARM_UP: Duration = Duration::from_secs(5);
const MEASURE: Duration = Duration::from_secs(20);
/// roomd and gst-launch take turns this many times per size; the median of each counts, so
/// that a burst of other work on the machine does not decide the ratio.
const ROUNDS: usize = 3;
const LATENCY_RUN: Duration = Duration::from_secs(10);
const RATIO_TARGET: f64 = 1.10;
const P95_TARGET_MS: f64 = 15.0;

/// The resolutions measured, as (profile, width, height, fps).
const SIZES: [(&str, u32, u32, u32); 2] = [
    ("simulated-720p", 1280, 720, 30),
    ("simulated-1080p", 1920, 1080, 30),
];

fn main() -> anyhow::Result<()> {
    println!("roomd media benchmark");
    println!(
        "CPU: {} s warm-up, then {} s measured; roomd and gst-launch-1.0 take turns, {ROUNDS} \
         rounds, median of each",
        WARM_UP.as_secs(),
        MEASURE.as_secs()
    );
    println!("load average before: {}", load_average());
    println!();
    let mut rows = Vec::new();
    for (profile, width, height, fps) in SIZES {
        let (mut roomd_runs, mut bare_runs) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            roomd_runs.push(roomd_cpu_per_minute(profile)?);
            bare_runs.push(gst_launch_cpu_per_minute(width, height, fps)?);
        }
        println!("{height}p{fps}: roomd {roomd_runs:.1?}, gst-launch {bare_runs:.1?} CPU-s/min");
        let (roomd, bare) = (median(roomd_runs), median(bare_runs));
        let ratio = roomd / bare;
        rows.push((
            format!("{height}p{fps} roomd CPU-s/min"),
            format!("{roomd:.2}"),
            String::new(),
            None,
        ));
        rows.push((
            format!("{height}p{fps} gst-launch CPU-s/min"),
            format!("{bare:.2}"),
            String::new(),
            None,
        ));
        rows.push((
            format!("{height}p{fps} ratio roomd / gst-launch"),
            format!("{ratio:.3}"),
            format!("<= {RATIO_TARGET:.2}"),
            Some(ratio <= RATIO_TARGET),
        ));
    }
    let (p50, p95, frames) = encode_latency_ms()?;
    rows.push((
        format!("720p30 x264enc encode latency p50 ({frames} frames)"),
        format!("{p50:.2} ms"),
        String::new(),
        None,
    ));
    rows.push((
        "720p30 x264enc encode latency p95".to_owned(),
        format!("{p95:.2} ms"),
        format!("<= {P95_TARGET_MS:.0} ms"),
        Some(p95 <= P95_TARGET_MS),
    ));

    println!("load average after: {}", load_average());
    println!();
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    println!(
        "{:width$}  {:>10}  {:>10}  result",
        "metric", "value", "target"
    );
    for (metric, value, target, met) in &rows {
        let result = match met {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "",
        };
        println!("{metric:width$}  {value:>10}  {target:>10}  {result}");
    }
    if rows.iter().any(|r| r.3 == Some(false)) {
        std::process::exit(1);
    }
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Other work on the machine skews CPU figures; the output says how busy it was.
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

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; count fields after its closing parenthesis.
    let after_name = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("malformed /proc/<pid>/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // SAFETY: sysconf only reads a constant of the running system.
    let per_second = unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }.max(1) as f64;
    Ok(ticks as f64 / per_second)
}

/// CPU seconds per minute of `pids` together, after the warm-up.
fn cpu_per_minute(pids: &[u32]) -> anyhow::Result<f64> {
    std::thread::sleep(WARM_UP);
    let total = || -> anyhow::Result<f64> { pids.iter().map(|p| cpu_seconds(*p)).sum() };
    let before = total()?;
    std::thread::sleep(MEASURE);
    let after = total()?;
    Ok((after - before) * 60.0 / MEASURE.as_secs_f64())
}

fn roomd_cpu_per_minute(profile: &str) -> anyhow::Result<f64> {
    let roomd = Roomd::start_claimed(&format!("[system]\nhardware_profile = \"{profile}\"\n"))
        .with_context(|| format!("starting roomd with {profile}"))?;
    let admin = roomd.admin_token()?;
    let media = roomd
        .get("/api/v1/status/system/media")
        .bearer(&admin)
        .send()?
        .json()?;
    let pid = roomd.pid().context("roomd has no pid")?;
    let cpu = cpu_per_minute(&[pid])?;
    let media_after = roomd
        .get("/api/v1/status/system/media")
        .bearer(&admin)
        .send()?
        .json()?;
    if media_after["state"] != "running" || media_after["encoder"] != "x264enc" {
        bail!("roomd's media engine is not running x264enc: {media} then {media_after}");
    }
    Ok(cpu)
}

/// The graphs roomd builds for the simulated room after a claim (speaker layout, self-view
/// lower right, three simulated far-end pictures, content stopped): the video pipeline and the
/// audio pipeline, each one gst-launch line, as roomd runs them as two pipelines.
/// Mirrors daemon/src/media/video.rs, audio.rs and encoder_choice.rs.
fn reference_graphs(width: u32, height: u32, fps: u32) -> [String; 2] {
    let (w, h) = (width as i32, height as i32);
    let bitrate = match width * height {
        0..=230_400 => 500,
        230_401..=921_600 => 1500,
        _ => 3000,
    };
    let gop = fps * 10;
    let caps = format!("video/x-raw,format=I420,width={width},height={height},framerate={fps}/1");
    let (thumb_w, thumb_h) = (w / 5, h / 5);
    let (self_w, self_h, margin) = (w / 4, h / 4, h / 30);
    let mut graph = format!(
        "videotestsrc is-live=true pattern=ball motion=wavy \
           ! clockoverlay time-format=%H:%M:%S halignment=right valignment=bottom \
             font-desc=\"Sans 16\" shaded-background=true \
           ! capsfilter caps={caps} ! videocrop ! videoscale ! capsfilter caps={caps} \
           ! tee name=camera_tee \
         camera_tee. ! queue leaky=downstream max-size-buffers=2 max-size-time=0 max-size-bytes=0 \
           ! videoconvert ! x264enc name=encoder tune=zerolatency speed-preset=ultrafast pass=cbr \
             bitrate={bitrate} bframes=0 b-adapt=false key-int-max={gop} \
           ! fakesink sync=false async=false \
         camera_tee. ! queue leaky=downstream max-size-buffers=2 max-size-time=0 max-size-bytes=0 \
           ! mix.sink_0 \
         compositor name=mix background=black ignore-inactive-pads=true \
           sink_0::zorder=20 sink_0::xpos={sx} sink_0::ypos={sy} sink_0::width={self_w} sink_0::height={self_h} \
           sink_1::zorder=10 sink_1::alpha=0 \
           sink_2::zorder=1 sink_2::xpos=0 sink_2::ypos=0 sink_2::width={w} sink_2::height={h} \
           sink_3::zorder=2 sink_3::xpos=0 sink_3::ypos={ty} sink_3::width={thumb_w} sink_3::height={thumb_h} \
           sink_4::zorder=3 sink_4::xpos={thumb_w} sink_4::ypos={ty} sink_4::width={thumb_w} sink_4::height={thumb_h} \
           ! video/x-raw,width={w},height={h},framerate={fps}/1 \
           ! textoverlay valignment=top halignment=left font-desc=\"Sans 11\" shaded-background=true \
             text=\"roomd  |  NO CALL\" \
           ! textoverlay valignment=center halignment=center font-desc=\"Sans 22\" \
             line-alignment=center text=\" \" \
           ! queue leaky=downstream max-size-buffers=1 \
           ! appsink sync=false drop=true max-buffers=1 enable-last-sample=true \
         videotestsrc is-live=true pattern=bar \
           ! timeoverlay halignment=center valignment=bottom font-desc=\"Sans 16\" \
             text=\"Shared content\" shaded-background=true \
           ! capsfilter caps={caps} ! valve drop=true \
           ! queue leaky=downstream max-size-buffers=2 ! mix.sink_1 ",
        sx = w - self_w - margin,
        sy = h - self_h - margin,
        ty = h - thumb_h,
    );
    for (i, pattern) in ["smpte75", "colors", "pinwheel"].iter().enumerate() {
        graph.push_str(&format!(
            "videotestsrc is-live=true pattern={pattern} \
               ! video/x-raw,width=320,height=180,framerate={fps}/1 \
               ! textoverlay text=\"Remote {n}\" valignment=bottom halignment=left \
                 font-desc=\"Sans 14\" shaded-background=true \
               ! queue leaky=downstream max-size-buffers=2 ! mix.sink_{pad} ",
            n = i + 1,
            pad = i + 2,
        ));
    }
    let audio = String::from(
        "audiotestsrc is-live=true wave=sine freq=440 volume=0.1 ! audioconvert ! audioresample \
           ! audio/x-raw,format=S16LE,rate=48000,channels=1 ! identity \
           ! webrtcdsp probe=bench_probe echo-cancel=true noise-suppression=true \
             gain-control=true high-pass-filter=true \
           ! level interval=200000000 post-messages=true \
           ! audioconvert ! audioresample \
           ! opusenc audio-type=voice frame-size=20 inband-fec=true bitrate=32000 \
           ! fakesink sync=false async=false \
         audiotestsrc is-live=true wave=silence ! audio/x-raw,format=S16LE,rate=48000,channels=1 \
           ! audiomixer ! volume volume=0.125 ! webrtcechoprobe name=bench_probe \
           ! audioconvert ! audioresample ! fakesink sync=true",
    );
    [graph, audio]
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gst_launch_cpu_per_minute(width: u32, height: u32, fps: u32) -> anyhow::Result<f64> {
    let mut children = Vec::new();
    for graph in reference_graphs(width, height, fps) {
        // gst-launch joins its arguments back into one description; hand over the words
        // directly rather than quoting them for a shell.
        let child = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(shell_words(&graph))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run gst-launch-1.0 (Debian package gstreamer1.0-tools)")?;
        children.push(KillOnDrop(child));
    }
    // A graph that does not parse ends at once; tell that apart from a measurement.
    std::thread::sleep(Duration::from_secs(1));
    let all_running = |children: &mut Vec<KillOnDrop>| -> anyhow::Result<bool> {
        for child in children.iter_mut() {
            if child.0.try_wait()?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let cpu = if all_running(&mut children)? {
        let pids: Vec<u32> = children.iter().map(|c| c.0.id()).collect();
        Some(cpu_per_minute(&pids)?)
    } else {
        None
    };
    for child in &mut children {
        if let Some(status) = child.0.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.0.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            bail!("gst-launch-1.0 stopped early ({status}): {stderr}");
        }
    }
    cpu.context("gst-launch-1.0 was not measured")
}

/// Splits a launch description into words, keeping "double-quoted" values together (the quotes
/// are dropped, as a shell would).
fn shell_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// p50 and p95 of the encoder's per-frame latency inside roomd at 720p30, from GStreamer's
/// latency tracer (time from a frame entering the encoder to its encoded frame leaving it).
fn encode_latency_ms() -> anyhow::Result<(f64, f64, usize)> {
    let roomd = Roomd::builder()
        .config("[system]\nhardware_profile = \"simulated-720p\"\n")
        .env("GST_TRACERS", "latency(flags=element)")
        .env("GST_DEBUG", "GST_TRACER:7")
        .env("GST_DEBUG_NO_COLOR", "1")
        .start()?;
    std::thread::sleep(WARM_UP + LATENCY_RUN);
    let log = roomd.stderr_text();
    drop(roomd);
    let mut latencies: Vec<f64> = log
        .lines()
        .filter(|line| {
            line.contains("element-latency") && line.contains("element=(string)encoder,")
        })
        .filter_map(|line| {
            let value = line.split("time=(guint64)").nth(1)?.split(',').next()?;
            value.trim().parse::<u64>().ok()
        })
        .map(|ns| ns as f64 / 1e6)
        .collect();
    // Skip the warm-up (the encoder's first frames include its start-up).
    let skip = (WARM_UP.as_secs() * 30) as usize;
    if latencies.len() <= skip + 30 {
        bail!(
            "the latency tracer reported {} encoder frames; is GStreamer's tracer available?",
            latencies.len()
        );
    }
    latencies.drain(..skip);
    let frames = latencies.len();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((frames - 1) as f64 * q).round() as usize];
    Ok((at(0.50), at(0.95), frames))
}
