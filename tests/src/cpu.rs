//! CPU time of processes and their threads from `/proc`, for the benchmark programs: how many
//! CPU seconds a process (or each of its threads, by name) spent over a window, and how busy the
//! machine was meanwhile.

use std::collections::HashMap;

use crate::HarnessError;

/// utime + stime of process `pid` (all its threads), in seconds.
pub fn process_seconds(pid: u32) -> Result<f64, HarnessError> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path)
        .map_err(|e| HarnessError::io(format!("process {pid} is gone ({path})"), e))?;
    let (_, fields) = stat_fields(&stat).ok_or_else(|| HarnessError::UnexpectedBody {
        what: path.clone(),
        message: format!("malformed stat line: {stat}"),
    })?;
    Ok(ticks(&fields) as f64 / clock_ticks_per_second())
}

/// utime + stime of the fields after the command name of a stat line.
fn ticks(fields: &[&str]) -> u64 {
    fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0)
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    unsafe { nix::libc::sysconf(nix::libc::_SC_CLK_TCK) }.max(1) as f64
}

/// The parent pid and the fields after the command name (field 3 on) of a /proc stat line.
pub fn stat_fields(stat: &str) -> Option<(u32, Vec<&str>)> {
    // The command name (field 2) may hold spaces; count fields after its closing parenthesis.
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    (fields.len() > 12).then_some((parent, fields))
}

/// CPU seconds per thread name of a process (GStreamer names its streaming threads after
/// elements and pads), to show where the time goes. Empty when the process is gone.
pub fn thread_seconds(pid: u32) -> HashMap<String, f64> {
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
            *by_name.entry(name).or_insert(0.0) += ticks(&fields) as f64 / clock_ticks_per_second();
        }
    }
    by_name
}

/// The `top` biggest shares of a CPU window (`after` less `before`), as CPU-s/min, biggest
/// first: "name 1.2, other 0.8, …".
pub fn breakdown(
    before: &HashMap<String, f64>,
    after: &HashMap<String, f64>,
    per_minute: f64,
    top: usize,
) -> String {
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
    shares
        .iter()
        .take(top)
        .map(|(name, t)| format!("{name} {t:.1}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews CPU and latency
/// figures, so benchmarks print them with each figure.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "unknown".to_owned())
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

/// CPU seconds of one browser driver's Chromium.
pub struct ChromiumCpu {
    /// Every process below the driver: Chromium's browser, renderer, GPU and utility processes.
    pub chromium: f64,
    /// The node driver itself (signalling, stats polling): reported, not counted as Chromium.
    pub driver: f64,
    /// How many processes were counted.
    pub processes: usize,
    /// The same per kind of Chromium process.
    pub by_kind: HashMap<String, f64>,
}

/// CPU seconds of a driver's Chromium: all descendants of the node process `driver`
/// ([`crate::BrowserPeer::driver_pid`]).
pub fn chromium_seconds(driver: u32) -> Result<ChromiumCpu, HarnessError> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let entries =
        std::fs::read_dir("/proc").map_err(|e| HarnessError::io("cannot list /proc", e))?;
    for entry in entries.flatten() {
        let Some(pid) = entry
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
        return Err(HarnessError::UnexpectedBody {
            what: format!("the processes below driver {driver}"),
            message: "the driver has no Chromium processes".into(),
        });
    }
    let mut by_kind: HashMap<String, f64> = HashMap::new();
    let mut chromium = 0.0;
    for pid in &below {
        if let Ok(seconds) = process_seconds(*pid) {
            chromium += seconds;
            *by_kind.entry(process_kind(*pid)).or_insert(0.0) += seconds;
        }
    }
    Ok(ChromiumCpu {
        chromium,
        by_kind,
        driver: process_seconds(driver)?,
        processes: below.len(),
    })
}
