//! `make bench`: start-up time, idle memory and API throughput of the roomd binary in
//! `ROOMD_BIN` (the release build), against the foundation's targets. Exits 1 if a target is
//! missed, so the numbers cannot silently regress. `BENCH_NO_PIN=1` skips the CPU pinning.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use roomd_tests::{ADMIN_PASSWORD, ADMIN_USERNAME, Roomd, roomd_bin};

const STARTS: usize = 10;
const READY_TARGET: Duration = Duration::from_millis(200);
const RSS_TARGET_MIB: f64 = 30.0;
const THROUGHPUT_TARGET: f64 = 15_000.0;
const P99_TARGET_MS: f64 = 5.0;
const TARGET_CONNECTIONS: u32 = 16;
const STRESS_CONNECTIONS: u32 = 64;
/// Login flood (issue 11, point 7): parallel logins with random usernames, each from its own
/// loopback address; `BENCH_LOGIN_FLOOD` changes the number.
const LOGIN_FLOOD: usize = 500;
const LOGIN_FLOOD_RSS_TARGET_MIB: f64 = 150.0;
const LOGIN_FLOOD_P99_TARGET_MS: f64 = 50.0;

/// One line of the result table.
struct Row {
    metric: String,
    value: String,
    target: String,
    met: Option<bool>,
}

fn main() -> anyhow::Result<()> {
    let binary = roomd_bin()?;
    println!("roomd foundation benchmark");
    println!("binary: {}", binary.display());
    // BENCH_NO_PIN=1 lets both processes use every CPU, for comparison with the pinned run.
    let pinning = std::env::var_os("BENCH_NO_PIN").is_none() && taskset_available();
    if pinning {
        println!("pinning: roomd started under `taskset -c 0` (it sees one CPU), wrk on CPU 1");
    } else {
        println!(
            "pinning: none (taskset missing or BENCH_NO_PIN set), roomd and wrk share all CPUs"
        );
    }
    println!();

    let mut rows = Vec::new();
    rows.extend(measure_start_up()?);
    rows.push(measure_idle_rss()?);
    rows.extend(measure_throughput(pinning)?);
    rows.extend(measure_login_flood()?);
    print_table(&rows);

    let missed = rows.iter().filter(|r| r.met == Some(false)).count();
    let unmeasured = rows.iter().filter(|r| r.met.is_none()).count();
    println!();
    println!(
        "{} of {} targets met{}",
        rows.iter().filter(|r| r.met == Some(true)).count(),
        rows.len(),
        if unmeasured > 0 {
            format!(", {unmeasured} not measured")
        } else {
            String::new()
        }
    );
    if missed > 0 || unmeasured > 0 {
        std::process::exit(1);
    }
    Ok(())
}

fn taskset_available() -> bool {
    Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Time from spawn until `/api/v1/health` first answers 200.
fn first_health_200(roomd: &Roomd) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(response) = roomd.get("/api/v1/health").send()
            && response.status == 200
        {
            return Ok(roomd.spawned_at().elapsed());
        }
        if Instant::now() > deadline {
            bail!("/api/v1/health did not answer 200 within 10 s");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Spawn → READY=1 and spawn → first 200, on a fresh state dir (which includes generating the
/// TLS key) and on a restart of the same state dir.
fn measure_start_up() -> anyhow::Result<Vec<Row>> {
    let (mut first_ready, mut first_health) = (Vec::new(), Vec::new());
    let (mut again_ready, mut again_health) = (Vec::new(), Vec::new());
    for _ in 0..STARTS {
        let mut roomd = Roomd::start("").context("fresh start")?;
        first_ready.push(roomd.ready_after());
        first_health.push(first_health_200(&roomd)?);
        roomd.restart().context("restart")?;
        again_ready.push(roomd.ready_after());
        again_health.push(first_health_200(&roomd)?);
    }
    let row = |metric: &str, values: Vec<Duration>| {
        let m = median(values);
        Row {
            metric: format!("{metric} (median of {STARTS})"),
            value: ms(m),
            target: format!("<= {}", ms(READY_TARGET)),
            met: Some(m <= READY_TARGET),
        }
    };
    Ok(vec![
        row("first start: spawn -> READY=1", first_ready),
        row("first start: spawn -> first 200", first_health),
        row("restart: spawn -> READY=1", again_ready),
        row("restart: spawn -> first 200", again_health),
    ])
}

fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/<pid>/status")
}

fn measure_idle_rss() -> anyhow::Result<Row> {
    let roomd = Roomd::start("")?;
    std::thread::sleep(Duration::from_secs(2));
    let pid = roomd.pid().context("roomd is not running")?;
    let mib = vm_rss_kib(pid)? as f64 / 1024.0;
    Ok(Row {
        metric: "idle RSS, 2 s after READY=1".to_owned(),
        value: format!("{mib:.1} MiB"),
        target: format!("<= {RSS_TARGET_MIB} MiB"),
        met: Some(mib <= RSS_TARGET_MIB),
    })
}

/// Results of one wrk run.
struct WrkResult {
    requests_per_second: f64,
    p99_ms: f64,
    failures: String,
}

fn measure_throughput(pinning: bool) -> anyhow::Result<Vec<Row>> {
    let unmeasured = |why: &str| {
        vec![
            Row {
                metric: "GET /api/v1/status throughput".to_owned(),
                value: why.to_owned(),
                target: format!(">= {THROUGHPUT_TARGET} req/s"),
                met: None,
            },
            Row {
                metric: "GET /api/v1/status p99 latency".to_owned(),
                value: why.to_owned(),
                target: format!("<= {P99_TARGET_MS} ms"),
                met: None,
            },
        ]
    };
    if Command::new("wrk").arg("--version").output().is_err() {
        return Ok(unmeasured("wrk not installed (make bench-deps)"));
    }
    // Started under taskset, roomd sizes its worker pools for the one CPU it may use.
    let mut builder = Roomd::builder();
    if pinning {
        builder = builder.launcher(&["taskset", "-c", "0"]);
    }
    let mut roomd = builder.start()?;
    roomd.claim(ADMIN_USERNAME, ADMIN_PASSWORD)?;
    let token = roomd.token_for("user")?;
    let url = format!("{}/api/v1/status", roomd.base_url());
    let header = format!("Authorization: Bearer {token}");
    // wrk gets one core, so one wrk thread: two threads time-sharing a core measure wrk's own
    // scheduling delays as server latency. 16 connections keep roomd's worker saturated.
    let result = run_wrk(pinning, TARGET_CONNECTIONS, &header, &url)?;
    // A heavier run for the record, without a target: how latency grows with queueing.
    let stress = run_wrk(pinning, STRESS_CONNECTIONS, &header, &url)?;
    println!(
        "stress, no target (wrk -t1 -c{STRESS_CONNECTIONS} -d10s): {:.0} req/s, p99 {:.2} ms{}",
        stress.requests_per_second,
        stress.p99_ms,
        if stress.failures.is_empty() {
            String::new()
        } else {
            format!(" ({})", stress.failures)
        }
    );
    println!();
    let clean = result.failures.is_empty();
    let note = if clean {
        String::new()
    } else {
        format!(" ({})", result.failures)
    };
    Ok(vec![
        Row {
            metric: format!("GET /api/v1/status throughput (wrk -t1 -c{TARGET_CONNECTIONS} -d10s)"),
            value: format!("{:.0} req/s{note}", result.requests_per_second),
            target: format!(">= {THROUGHPUT_TARGET:.0} req/s"),
            met: Some(clean && result.requests_per_second >= THROUGHPUT_TARGET),
        },
        Row {
            metric: "GET /api/v1/status p99 latency".to_owned(),
            value: format!("{:.2} ms", result.p99_ms),
            target: format!("<= {P99_TARGET_MS} ms"),
            met: Some(clean && result.p99_ms <= P99_TARGET_MS),
        },
    ])
}

/// Runs wrk (on CPU 1 when pinning) against `url` and reads its report.
fn run_wrk(pinning: bool, connections: u32, header: &str, url: &str) -> anyhow::Result<WrkResult> {
    let connections = format!("-c{connections}");
    let wrk_args = [
        "-t1",
        connections.as_str(),
        "-d10s",
        "--latency",
        "-H",
        header,
        url,
    ];
    let output = if pinning {
        Command::new("taskset")
            .args(["-c", "1", "wrk"])
            .args(wrk_args)
            .output()?
    } else {
        Command::new("wrk").args(wrk_args).output()?
    };
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "wrk failed: {}{text}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    println!("wrk report ({connections}):");
    for line in text.lines() {
        println!("    {line}");
    }
    println!();
    parse_wrk(&text).with_context(|| format!("cannot read wrk's output:\n{text}"))
}

/// Reads "Requests/sec:", the "99%" latency line and any error counts from wrk's report.
fn parse_wrk(text: &str) -> anyhow::Result<WrkResult> {
    let requests_per_second = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .context("no Requests/sec line")?;
    let p99 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .context("no 99% latency line (was --latency given?)")?;
    let p99_ms = duration_ms(p99.trim()).with_context(|| format!("bad latency {p99:?}"))?;
    let failures: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Non-2xx") || l.starts_with("Socket errors"))
        .map(str::to_owned)
        .collect();
    Ok(WrkResult {
        requests_per_second,
        p99_ms,
        failures: failures.join("; "),
    })
}

/// wrk's durations: `812.00us`, `3.21ms`, `1.02s`, `2.00m`.
fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 0.001,
        "ms" => 1.0,
        "s" => 1000.0,
        "m" => 60_000.0,
        _ => return None,
    };
    Some(number * factor)
}

/// An established client's `GET /api/v1/status` latency and roomd's peak RSS while
/// [`LOGIN_FLOOD`] logins with wrong passwords arrive at once (unpinned: the flood is the point).
fn measure_login_flood() -> anyhow::Result<Vec<Row>> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Barrier};

    let flood: usize = match std::env::var("BENCH_LOGIN_FLOOD") {
        Ok(n) => n.parse().context("BENCH_LOGIN_FLOOD is not a number")?,
        Err(_) => LOGIN_FLOOD,
    };
    let roomd = Arc::new(Roomd::start_claimed("")?);
    let pid = roomd.pid().context("roomd is not running")?;
    let token = roomd.token_for("user")?;
    // The established client: its connection is open before the flood begins.
    roomd
        .get("/api/v1/status")
        .bearer(&token)
        .send()?
        .expect_status(200, "status before the flood")?;
    let start = Arc::new(Barrier::new(flood + 1));
    let attackers: Vec<_> = (0..flood)
        .map(|n| {
            let (roomd, start) = (roomd.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                let source = std::net::Ipv4Addr::new(127, 1, (n / 250) as u8, (n % 250 + 1) as u8);
                roomd
                    .request("POST", "/api/v1/session")
                    .json(&serde_json::json!({
                        "username": format!("flood{n}-{}", std::process::id()),
                        "password": "a wrong password!",
                    }))
                    .from_source(source)
                    .send()
                    .map(|r| r.status)
            })
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(vm_rss_kib(pid).unwrap_or(0));
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    start.wait();
    let began = Instant::now();
    let mut latencies = Vec::new();
    let mut status_failures = 0;
    while attackers.iter().any(|a| !a.is_finished()) {
        let asked = Instant::now();
        match roomd.get("/api/v1/status").bearer(&token).send() {
            Ok(r) if r.status == 200 => latencies.push(asked.elapsed()),
            _ => status_failures += 1,
        }
    }
    let took = began.elapsed();
    let mut answers = std::collections::BTreeMap::<String, usize>::new();
    for attacker in attackers {
        let answer = match attacker.join() {
            Ok(Ok(status)) => status.to_string(),
            Ok(Err(e)) => format!("error ({e})"),
            Err(_) => "thread panicked".to_owned(),
        };
        *answers.entry(answer).or_default() += 1;
    }
    done.store(true, Ordering::Relaxed);
    let peak_mib = sampler.join().unwrap_or(0) as f64 / 1024.0;
    latencies.sort();
    let p99 = latencies
        .get((latencies.len() * 99 / 100).min(latencies.len().saturating_sub(1)))
        .copied();
    println!(
        "login flood: {flood} parallel wrong logins answered in {} ({answers:?}); {} status \
         requests meanwhile, {status_failures} failed",
        ms(took),
        latencies.len()
    );
    println!();
    let p99_ms = p99.map(|d| d.as_secs_f64() * 1000.0);
    Ok(vec![
        Row {
            metric: format!("login flood ({flood} parallel): established client's status p99"),
            value: p99_ms.map_or("no answer".to_owned(), |v| format!("{v:.2} ms")),
            target: format!("<= {LOGIN_FLOOD_P99_TARGET_MS} ms"),
            met: Some(
                status_failures == 0 && p99_ms.is_some_and(|v| v <= LOGIN_FLOOD_P99_TARGET_MS),
            ),
        },
        Row {
            metric: format!("login flood ({flood} parallel): roomd peak RSS"),
            value: format!("{peak_mib:.1} MiB"),
            target: format!("< {LOGIN_FLOOD_RSS_TARGET_MIB} MiB"),
            met: Some(peak_mib < LOGIN_FLOOD_RSS_TARGET_MIB),
        },
    ])
}

fn print_table(rows: &[Row]) {
    let width = rows.iter().map(|r| r.metric.len()).max().unwrap_or(0);
    let value_width = rows.iter().map(|r| r.value.len()).max().unwrap_or(0);
    let target_width = rows.iter().map(|r| r.target.len()).max().unwrap_or(0);
    println!(
        "{:width$}  {:value_width$}  {:target_width$}  result",
        "metric", "value", "target"
    );
    for row in rows {
        let result = match row.met {
            Some(true) => "PASS",
            Some(false) => "MISS",
            None => "NOT MEASURED",
        };
        println!(
            "{:width$}  {:value_width$}  {:target_width$}  {result}",
            row.metric, row.value, row.target
        );
    }
}
